//! What the controller observes and hands to [`decide`](super::decide).
//!
//! Everything here is a plain snapshot: the controller fills it from the API server (the
//! `KvorumCluster`, its StatefulSet, pods and PVCs) and from the kvorum cluster itself (the
//! member list, the leader, and one probe per pod). No field records what the operator did
//! earlier; the rules derive progress from these facts alone, which is what lets an operator
//! that restarted between two steps carry on correctly.

use std::collections::{BTreeMap, BTreeSet};

use crate::crd::{KvorumClusterSpec, PvcRetention};
use crate::naming::ClusterName;

/// One snapshot of a cluster, as input to [`decide`](super::decide).
#[derive(Clone, Debug, PartialEq)]
pub struct Observed {
    /// Name and namespace of the `KvorumCluster` (to derive pod names and peer URLs).
    pub cluster: ClusterName,
    /// `metadata.generation` of the `KvorumCluster`, echoed into the status.
    pub generation: Option<i64>,
    /// What the spec asks for.
    pub desired: Desired,
    /// The Raft cluster ID recorded in `status.clusterID`, if the cluster has formed before.
    /// `None` means it never has: the cluster is still bootstrapping.
    pub recorded_cluster_id: Option<u64>,
    /// The StatefulSet, or `None` if it does not exist.
    pub stateful_set: Option<StatefulSetState>,
    /// The cluster's pods, by StatefulSet ordinal.
    pub pods: BTreeMap<u32, PodState>,
    /// Ordinals whose PersistentVolumeClaim (`data-<cluster>-<ordinal>`) exists.
    pub pvcs: BTreeSet<u32>,
    /// The cluster's own view of its membership, or `None` if no member could be reached.
    pub raft: Option<RaftView>,
}

/// The desired state, reduced to what the decision needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Desired {
    /// Desired number of voting members (`spec.replicas`).
    pub replicas: u32,
    /// Hash of everything the pods are built from (image, resources, Raft timing, TLS, pod
    /// overrides), computed by whoever renders the StatefulSet and stored on its pod template
    /// as [`TEMPLATE_HASH_ANNOTATION`](crate::naming::TEMPLATE_HASH_ANNOTATION). A pod whose
    /// value differs runs an old template and is restarted in the rolling update.
    pub template_hash: String,
    /// What to do with a removed member's volume claim.
    pub pvc_retention: PvcRetention,
}

impl Desired {
    /// The desired state of `spec`, whose rendered pod template hashes to `template_hash`.
    ///
    /// `spec.replicas` is validated by the CRD to be 1, 3, 5 or 7; a value below 1 (possible
    /// only if validation was bypassed) is treated as 1, because the operator never removes
    /// the last member.
    pub fn from_spec(spec: &KvorumClusterSpec, template_hash: impl Into<String>) -> Self {
        Self {
            replicas: u32::try_from(spec.replicas).unwrap_or(0).max(1),
            template_hash: template_hash.into(),
            pvc_retention: spec.pvc_retention,
        }
    }
}

/// The StatefulSet as it is now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatefulSetState {
    /// `spec.replicas` of the StatefulSet: the pods `0..replicas` should exist.
    pub replicas: u32,
    /// The [`Desired::template_hash`] its pod template was rendered from.
    pub template_hash: String,
}

/// One pod of the StatefulSet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodState {
    /// The pod's `Ready` condition is true (so the client Service routes to it).
    pub ready: bool,
    /// The pod has a deletion timestamp: it is going away and will be recreated (or not, if
    /// its ordinal is beyond the StatefulSet's replicas).
    pub terminating: bool,
    /// The template hash annotation the pod was created with.
    pub template_hash: String,
    /// What the kvorum node in the pod says about itself.
    pub node: NodeProbe,
}

/// The answer of the kvorum node in one pod, probed at its own client URL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeProbe {
    /// No answer (not started, crashed, not scheduled, network).
    Unreachable,
    /// The node started with an empty data directory in a cluster that already exists, and
    /// waits to be added as a NEW member (it never reuses an identity whose data is gone).
    /// This is the `data_dir_empty` signal: the member this pod used to be has lost its data.
    AwaitingMembership,
    /// The node runs as member `member_id` and has applied the log up to `applied_index`.
    Serving {
        /// The Raft member ID stored in the node's data directory.
        member_id: u64,
        /// Last log index applied to the node's state machine.
        applied_index: u64,
    },
}

/// The Raft cluster's membership as its Cluster API reports it.
///
/// The member list may come from any reachable member (a local, serializable read is fine):
/// every membership change additionally requires a healthy leader, so a stale list from a
/// partitioned member cannot cause a wrong change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RaftView {
    /// The cluster ID every member reports.
    pub cluster_id: u64,
    /// The current leader, if one is known.
    pub leader_id: Option<u64>,
    /// All members, voters and learners.
    pub members: Vec<RaftMember>,
}

/// One entry of the member list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RaftMember {
    /// Raft member ID, unique for the life of the cluster.
    pub id: u64,
    /// The member's name, which its node publishes when it starts: the pod name
    /// `<cluster>-<ordinal>`. Empty for a member that was added but has not started yet.
    pub name: String,
    /// The peer URL given to `MemberAdd`; ties an unstarted member to its ordinal.
    pub peer_url: String,
    /// A non-voting learner (added, not yet promoted).
    pub is_learner: bool,
}
