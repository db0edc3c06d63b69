//! Names, URLs and labels of a cluster's Kubernetes objects.
//!
//! Every name the operator, the nodes and the child objects must agree on is derived here, from
//! the `KvorumCluster`'s name and namespace and a pod's ordinal. Identity is the StatefulSet's
//! stable DNS name, never a pod IP (the classic failure of Consul, Nacos and ZooKeeper on
//! Kubernetes): a pod that is rescheduled keeps its name and therefore its peer URL.
//!
//! ```text
//! KvorumCluster "conf" in namespace "prod"
//!   StatefulSet      conf                 pods conf-0, conf-1, ...
//!   peer Service     conf-peer (headless) conf-1.conf-peer.prod.svc
//!   client Service   conf                 https://conf.prod.svc:2379
//!   volume claims    data-conf-0, data-conf-1, ...
//!   Raft member      name conf-1, peer URL https://conf-1.conf-peer.prod.svc:2380
//! ```

use std::collections::BTreeMap;

/// Port of the client API (etcd v3 gRPC, JSON gateway, config REST), as in etcd.
pub const CLIENT_PORT: u16 = 2379;

/// Port of the peer (Raft) transport, as in etcd.
pub const PEER_PORT: u16 = 2380;

/// Name of the StatefulSet's volume claim template; PVCs are named `<template>-<pod>`.
pub const DATA_VOLUME: &str = "data";

/// Longest `KvorumCluster` name the CRD accepts. The StatefulSet controller labels every pod with
/// `controller-revision-hash: <statefulset>-<10 characters>`, a label value limited to 63
/// characters, so the StatefulSet name (the cluster name) may have at most 52.
pub const MAX_CLUSTER_NAME_LEN: usize = 52;

/// Label key `app.kubernetes.io/name`; its value on every child object is [`APP_NAME`].
pub const LABEL_NAME: &str = "app.kubernetes.io/name";

/// Label key `app.kubernetes.io/instance`; its value is the cluster name.
pub const LABEL_INSTANCE: &str = "app.kubernetes.io/instance";

/// Label key `app.kubernetes.io/managed-by`; its value is [`MANAGER`].
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";

/// Value of [`LABEL_NAME`].
pub const APP_NAME: &str = "kvorum";

/// Value of [`LABEL_MANAGED_BY`], and the server-side-apply field manager.
pub const MANAGER: &str = "kvorum-operator";

/// Annotation on the StatefulSet's pod template (and therefore on every pod created from it)
/// holding the hash of everything the pods are built from. The operator compares a pod's value
/// with the desired one to find pods that still run an old template (see `decide`).
pub const TEMPLATE_HASH_ANNOTATION: &str = "kvorum.io/template-hash";

/// The name and namespace of one `KvorumCluster`: everything needed to derive its object names.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClusterName {
    /// `metadata.name` of the `KvorumCluster` (also the StatefulSet's name).
    pub name: String,
    /// `metadata.namespace` of the `KvorumCluster`; all children live there.
    pub namespace: String,
}

impl ClusterName {
    /// A cluster called `name` in `namespace`.
    pub fn new(name: impl Into<String>, namespace: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            namespace: namespace.into(),
        }
    }

    /// The pod (and Raft member) name of `ordinal`: `<cluster>-<ordinal>`, as the StatefulSet
    /// names its pods.
    pub fn pod_name(&self, ordinal: u32) -> String {
        format!("{}-{ordinal}", self.name)
    }

    /// The headless Service that gives every pod a stable DNS name: `<cluster>-peer`.
    pub fn peer_service(&self) -> String {
        format!("{}-peer", self.name)
    }

    /// The client Service that load-balances over ready pods: `<cluster>`.
    pub fn client_service(&self) -> String {
        self.name.clone()
    }

    /// The stable DNS name of one pod: `<cluster>-<ordinal>.<cluster>-peer.<ns>.svc`.
    ///
    /// Uses `svc` rather than `svc.cluster.local` so clusters with another DNS domain work.
    pub fn pod_host(&self, ordinal: u32) -> String {
        format!(
            "{}.{}.{}.svc",
            self.pod_name(ordinal),
            self.peer_service(),
            self.namespace
        )
    }

    /// The Raft peer URL of `ordinal`: `https://<cluster>-<ordinal>.<cluster>-peer.<ns>.svc:2380`.
    /// This is the URL given to `MemberAdd`, and the key that ties a not-yet-started member
    /// (whose name is still empty) to its ordinal.
    pub fn peer_url(&self, ordinal: u32) -> String {
        format!("https://{}:{PEER_PORT}", self.pod_host(ordinal))
    }

    /// The client URL of one pod: `https://<cluster>-<ordinal>.<cluster>-peer.<ns>.svc:2379`.
    /// The operator probes each node here (health, applied index, empty data directory).
    pub fn client_url(&self, ordinal: u32) -> String {
        format!("https://{}:{CLIENT_PORT}", self.pod_host(ordinal))
    }

    /// The endpoint applications use: the client Service, `https://<cluster>.<ns>.svc:2379`.
    pub fn client_endpoint(&self) -> String {
        format!("https://{}.{}.svc:{CLIENT_PORT}", self.client_service(), self.namespace)
    }

    /// The PersistentVolumeClaim of `ordinal`: `data-<cluster>-<ordinal>`.
    pub fn pvc_name(&self, ordinal: u32) -> String {
        format!("{DATA_VOLUME}-{}", self.pod_name(ordinal))
    }

    /// The ordinal of a pod or member name `<cluster>-<ordinal>`, or `None` if the name belongs
    /// to something else (another cluster, a hand-added member, an empty name).
    pub fn ordinal_of_pod(&self, pod_name: &str) -> Option<u32> {
        let digits = pod_name.strip_prefix(self.name.as_str())?.strip_prefix('-')?;
        parse_ordinal(digits)
    }

    /// The ordinal whose [`peer_url`](Self::peer_url) is `url`, or `None`. Exact match: a URL
    /// that differs in scheme, namespace or port is not one of ours.
    pub fn ordinal_of_peer_url(&self, url: &str) -> Option<u32> {
        let host = url.strip_prefix("https://")?.strip_suffix(&format!(":{PEER_PORT}"))?;
        let pod = host.strip_suffix(&format!(".{}.{}.svc", self.peer_service(), self.namespace))?;
        let ordinal = self.ordinal_of_pod(pod)?;
        // Round-trip so that e.g. "conf-01" is not taken for ordinal 1.
        (self.peer_url(ordinal) == url).then_some(ordinal)
    }

    /// Labels that select exactly this cluster's pods (the StatefulSet selector).
    pub fn selector_labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (LABEL_NAME.to_string(), APP_NAME.to_string()),
            (LABEL_INSTANCE.to_string(), self.name.clone()),
        ])
    }

    /// [`selector_labels`](Self::selector_labels) as a label-selector string, for
    /// `status.selector` (read by the scale subresource and so by `kubectl scale` and HPAs).
    pub fn selector(&self) -> String {
        self.selector_labels()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Parses a StatefulSet ordinal: decimal digits without a leading zero (except "0" itself).
fn parse_ordinal(digits: &str) -> Option<u32> {
    let canonical =
        !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) && (digits == "0" || !digits.starts_with('0'));
    if canonical { digits.parse().ok() } else { None }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf() -> ClusterName {
        ClusterName::new("conf", "prod")
    }

    #[test]
    fn names_and_urls() {
        let c = conf();
        assert_eq!(c.pod_name(2), "conf-2");
        assert_eq!(c.peer_url(2), "https://conf-2.conf-peer.prod.svc:2380");
        assert_eq!(c.client_url(0), "https://conf-0.conf-peer.prod.svc:2379");
        assert_eq!(c.client_endpoint(), "https://conf.prod.svc:2379");
        assert_eq!(c.pvc_name(1), "data-conf-1");
        assert_eq!(
            c.selector(),
            "app.kubernetes.io/instance=conf,app.kubernetes.io/name=kvorum"
        );
    }

    #[test]
    fn ordinals_round_trip() {
        let c = conf();
        for ordinal in [0, 1, 7, 10, 123] {
            assert_eq!(c.ordinal_of_pod(&c.pod_name(ordinal)), Some(ordinal));
            assert_eq!(c.ordinal_of_peer_url(&c.peer_url(ordinal)), Some(ordinal));
        }
    }

    #[test]
    fn foreign_names_have_no_ordinal() {
        let c = conf();
        for name in [
            "", "conf", "conf-", "conf-01", "conf-x", "other-1", "conf-1-2", "confx-1",
        ] {
            assert_eq!(c.ordinal_of_pod(name), None, "{name:?}");
        }
        for url in [
            "",
            "http://conf-1.conf-peer.prod.svc:2380",
            "https://conf-1.conf-peer.dev.svc:2380",
            "https://conf-1.conf-peer.prod.svc:2379",
            "https://conf-1.conf-peer.prod.svc.cluster.local:2380",
            "https://10.0.0.1:2380",
        ] {
            assert_eq!(c.ordinal_of_peer_url(url), None, "{url:?}");
        }
    }
}
