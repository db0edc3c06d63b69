//! The `KvorumCluster` custom resource (`kvorum.io/v1alpha1`).
//!
//! The CRD YAML in `crds/kvorumcluster.yaml` is generated from these types; regenerate it with
//!
//! ```sh
//! cargo run -p kvorum-operator -- crd > crds/kvorumcluster.yaml
//! ```
//!
//! and a test (`operator/tests/crd_drift.rs`) fails while the checked-in copy is stale.
//!
//! Validation lives in the schema, so the API server rejects bad specs before the operator sees
//! them: `replicas` must be 1, 3, 5 or 7; `storage` is immutable; the election timeout must be at
//! least five heartbeats; TLS settings must match the chosen mode. Rules are CEL
//! (`x-kubernetes-validations`), which Kubernetes 1.29+ evaluates server-side.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Affinity, ResourceRequirements, Toleration, TopologySpreadConstraint};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Desired state of a kvorum cluster: a StatefulSet of `replicas` Raft voters.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "kvorum.io",
    version = "v1alpha1",
    kind = "KvorumCluster",
    namespaced,
    shortname = "kvc",
    category = "kvorum",
    status = "KvorumClusterStatus",
    derive = "PartialEq",
    doc = "A replicated kvorum configuration store: a StatefulSet of Raft members managed by kvorum-operator.",
    validation = Rule::new("size(self.metadata.name) <= 52")
        .message("metadata.name must be at most 52 characters (StatefulSet pod labels derive from it)"),
    scale(
        spec_replicas_path = ".spec.replicas",
        status_replicas_path = ".status.replicas",
        label_selector_path = ".status.selector"
    ),
    printcolumn(name = "Replicas", type_ = "integer", json_path = ".spec.replicas", description = "Desired voting members"),
    printcolumn(name = "Ready", type_ = "integer", json_path = ".status.readyReplicas", description = "Ready pods"),
    printcolumn(name = "Leader", type_ = "string", json_path = ".status.leader", description = "Pod of the Raft leader"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase", description = "Lifecycle phase"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct KvorumClusterSpec {
    /// Number of voting members: 1, 3, 5 or 7. An odd size, because an even one tolerates no
    /// more failures than the odd size below it. The operator changes membership one member at
    /// a time, so scaling 3 to 5 passes through 4.
    #[x_kube(validation = Rule::new("self in [1, 3, 5, 7]").message("replicas must be 1, 3, 5 or 7"))]
    pub replicas: i32,

    /// Container image of the kvorum node, e.g. `kvorum:0.1.0`. Changing it rolls the pods one
    /// at a time, followers first and the leader last.
    #[schemars(length(min = 1))]
    pub image: String,

    /// Persistent volume of each member. Immutable: a member's data lives on it, so it cannot be
    /// resized or moved by editing the cluster.
    #[serde(default)]
    #[x_kube(validation = Rule::new("self == oldSelf").message("storage is immutable"))]
    pub storage: StorageSpec,

    /// Compute resources of the kvorum container. Changing them rolls the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,

    /// Where the peer (mutual TLS) and client certificates come from.
    #[serde(default)]
    pub tls: TlsSpec,

    /// Raft timing. Changing it rolls the pods.
    #[serde(default)]
    pub raft: RaftSpec,

    /// Additions to the pods the operator builds (labels, scheduling, priority).
    #[serde(default)]
    pub pod_template: PodTemplateOverrides,

    /// The client Service.
    #[serde(default)]
    pub service: ServiceSpec,

    /// What happens to a removed member's volume claim on scale-in. `Retain` (the default)
    /// keeps it until the ordinal is needed again: when the cluster later grows back over that
    /// ordinal the operator deletes it first, because its data belongs to a removed member and
    /// a Raft identity is never reused.
    #[serde(default)]
    pub pvc_retention: PvcRetention,
}

/// The persistent volume each member stores its Raft log and state on.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StorageSpec {
    /// Requested size of each member's volume.
    pub size: Quantity,
    /// StorageClass of the volumes; the cluster's default class when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class_name: Option<String>,
}

impl Default for StorageSpec {
    fn default() -> Self {
        Self {
            size: Quantity("1Gi".to_string()),
            storage_class_name: None,
        }
    }
}

/// Certificates for peer traffic (always mutual TLS) and the client API.
///
/// A union in the Kubernetes style: `mode` says which source is used, and only the matching
/// member (`secrets` or `certManager`) may be set.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.mode == 'Secrets' ? has(self.secrets) : !has(self.secrets)")
        .message("tls.secrets must be set exactly when tls.mode is Secrets"),
    validation = Rule::new("self.mode == 'CertManager' ? has(self.certManager) : !has(self.certManager)")
        .message("tls.certManager must be set exactly when tls.mode is CertManager")
)]
pub struct TlsSpec {
    /// Certificate source; `Auto` by default.
    #[serde(default)]
    pub mode: TlsMode,
    /// The user's Secrets, when `mode` is `Secrets`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets: Option<TlsSecretRefs>,
    /// The cert-manager issuer, when `mode` is `CertManager`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_manager: Option<CertManagerTls>,
}

/// Where a cluster's certificates come from.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum TlsMode {
    /// The operator generates a CA and the peer and server certificates, and keeps them in
    /// Secrets it owns.
    #[default]
    Auto,
    /// The user provides the Secrets named in `tls.secrets`.
    Secrets,
    /// cert-manager issues the certificates from the issuer in `tls.certManager`.
    CertManager,
}

/// Names of user-provided Secrets (in the cluster's namespace), each of type `kubernetes.io/tls`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TlsSecretRefs {
    /// Secret whose `ca.crt` is the CA that peers and clients are verified against.
    #[schemars(length(min = 1))]
    pub ca_secret_name: String,
    /// Secret with the peer certificate (`tls.crt`, `tls.key`); its SANs must cover every pod's
    /// peer DNS name (`*.<cluster>-peer.<namespace>.svc`).
    #[schemars(length(min = 1))]
    pub peer_secret_name: String,
    /// Secret with the client-API serving certificate; its SANs must cover the client Service
    /// and the pods' DNS names.
    #[schemars(length(min = 1))]
    pub server_secret_name: String,
}

/// A cert-manager issuer that signs the cluster's certificates.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CertManagerTls {
    /// The issuer to request certificates from.
    pub issuer_ref: IssuerRef,
}

/// Reference to a cert-manager `Issuer` or `ClusterIssuer`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IssuerRef {
    /// Name of the issuer.
    #[schemars(length(min = 1))]
    pub name: String,
    /// `Issuer` (namespaced, the default) or `ClusterIssuer`.
    #[serde(default = "default_issuer_kind")]
    pub kind: String,
    /// API group of the issuer; `cert-manager.io` by default.
    #[serde(default = "default_issuer_group")]
    pub group: String,
}

fn default_issuer_kind() -> String {
    "Issuer".to_string()
}

fn default_issuer_group() -> String {
    "cert-manager.io".to_string()
}

/// Raft timing, in milliseconds (units last). Every node of a cluster uses the same values.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.electionMillis >= 5 * self.heartbeatMillis")
        .message("raft.electionMillis must be at least 5 times raft.heartbeatMillis")
)]
pub struct RaftSpec {
    /// Interval between leader heartbeats.
    #[serde(default = "default_heartbeat_millis")]
    #[schemars(range(min = 10, max = 10_000))]
    pub heartbeat_millis: i32,
    /// Base election timeout; each node randomizes it in `[electionMillis, 2 * electionMillis)`.
    /// At least five heartbeats, so one or two delayed heartbeats do not start an election.
    #[serde(default = "default_election_millis")]
    #[schemars(range(min = 50, max = 60_000))]
    pub election_millis: i32,
}

/// Default heartbeat interval: 100 ms, as etcd.
fn default_heartbeat_millis() -> i32 {
    100
}

/// Default election timeout: 1000 ms, as etcd.
fn default_election_millis() -> i32 {
    1000
}

impl Default for RaftSpec {
    fn default() -> Self {
        Self {
            heartbeat_millis: default_heartbeat_millis(),
            election_millis: default_election_millis(),
        }
    }
}

/// Additions to the pod template the operator builds. The operator's own labels, containers,
/// volumes and probes always win; these fields only add to them.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodTemplateOverrides {
    /// Extra pod labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Extra pod annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Pod affinity and anti-affinity (spreading members over nodes or zones is recommended).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    /// Pod tolerations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    /// Node selector.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// Topology spread constraints.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub topology_spread_constraints: Vec<TopologySpreadConstraint>,
    /// PriorityClass of the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,
}

/// The client Service.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSpec {
    /// Service type; `ClusterIP` by default.
    #[serde(default, rename = "type")]
    pub type_: ServiceType,
    /// Service annotations (e.g. for a cloud load balancer).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// Kubernetes Service types the client Service may have.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum ServiceType {
    /// Reachable inside the Kubernetes cluster only.
    #[default]
    ClusterIP,
    /// Also exposed on a port of every node.
    NodePort,
    /// Also exposed through a cloud load balancer.
    LoadBalancer,
}

/// What happens to a removed member's PersistentVolumeClaim on scale-in.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum PvcRetention {
    /// Delete the claim once the member is removed and its pod is gone.
    Delete,
    /// Keep the claim (and so the volume) until its ordinal is reused by a later scale-up.
    #[default]
    Retain,
}

/// Observed state of a kvorum cluster, written by the operator.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct KvorumClusterStatus {
    /// `metadata.generation` of the spec this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Coarse lifecycle phase; the conditions carry the detail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// Current number of voting members (the scale subresource's status replicas).
    #[serde(default)]
    pub replicas: i32,
    /// Pods that are ready.
    #[serde(default)]
    pub ready_replicas: i32,
    /// Pod name of the current Raft leader.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<String>,
    /// Raft members as the cluster reports them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["id".into()]))]
    pub members: Vec<MemberStatus>,
    /// Standard conditions: `Available`, `Progressing`, `Degraded`, `QuorumAvailable`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
    /// ID of the Raft cluster (16 hex digits), recorded once it has formed. A different ID
    /// later means the cluster was re-created underneath the resource.
    #[serde(default, rename = "clusterID", skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<String>,
    /// URL applications connect to (the client Service).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Label selector of the pods, for the scale subresource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
}

/// Coarse lifecycle phase of a cluster. `Pending`, then `Bootstrapping` until the cluster has
/// formed; after that, when several apply, the most severe is reported: `QuorumLost`, then
/// `Degraded`, `Scaling`, `Upgrading`, `Running`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum Phase {
    /// The child objects have not been created yet.
    Pending,
    /// The initial members are starting and forming the cluster.
    Bootstrapping,
    /// All members are healthy and nothing is changing.
    Running,
    /// Members are being added or removed to reach `spec.replicas`.
    Scaling,
    /// Pods are being restarted one at a time onto a new template.
    Upgrading,
    /// A quorum is available but some member is unhealthy, lost its data, or the cluster cannot
    /// be reached.
    Degraded,
    /// Fewer than a majority of voters are healthy: the cluster cannot commit, and the operator
    /// makes no membership change.
    QuorumLost,
}

/// One Raft member as reported in `status.members`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemberStatus {
    /// Member name (the pod name); empty for a member that was added but has not started.
    pub name: String,
    /// Raft member ID, 16 hex digits as `etcdctl member list` prints it.
    pub id: String,
    /// Role in the cluster.
    pub role: MemberRole,
    /// Whether the member's pod answers as this member.
    pub healthy: bool,
    /// Last log index the member applied, when it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_index: Option<i64>,
}

/// Role of a Raft member.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum MemberRole {
    /// The voter that currently leads.
    Leader,
    /// A voter that follows.
    Follower,
    /// A non-voting member catching up before promotion.
    Learner,
}
