//! The decision function: observed state in, the single next action (plus the status to
//! report) out.
//!
//! ```text
//!   API server ──┐                       ┌─> Action ──> controller performs it (one per pass)
//!   Raft cluster ┴─> Observed ─> decide ─┤
//!   (member list,                        └─> StatusSummary ──> status.phase / conditions
//!    per-pod probes)
//! ```
//!
//! `decide` is pure and keeps no memory. Each pass the controller observes, decides, performs
//! one action and observes again. Every step leaves a visible trace (an unstarted member, a
//! StatefulSet one pod larger, a member missing at the top ordinal), so an operator restarted
//! between any two steps resumes exactly where it stopped, and a step that failed is simply
//! chosen again.
//!
//! # Vocabulary
//!
//! - **voter / learner**: a learner replicates the log but does not vote; it is promoted once
//!   caught up. Quorum counts voters only.
//! - **healthy**: the pod at the member's ordinal answers *as that member* (same ID). Members
//!   map to ordinals by name (`<cluster>-<ordinal>`) or, before they start, by peer URL.
//! - **caught up**: healthy, and applied index within [`MAX_CATCH_UP_LAG_ENTRIES`] of the
//!   leader's.
//! - **quorum**: healthy voters ≥ ⌊voters / 2⌋ + 1. Members that do not belong to this cluster
//!   count as voters that are not healthy.
//! - **identity lost**: a member that had started (non-empty name) whose pod now reports an
//!   empty data directory ([`NodeProbe::AwaitingMembership`]). That identity can never come
//!   back; the pod rejoins as a *new* member. A pod that comes back *with* its data answers as
//!   its old member and rejoins by itself: nothing to do.
//!
//! # Rules, in priority order (the first that applies decides)
//!
//! 1. No StatefulSet: `CreateOrUpdateChildren` with the full `spec.replicas` (a new cluster's
//!    initial members found it together), or, if the cluster existed, enough replicas for every
//!    known member or volume.
//! 2. No member reachable: wait (`Bootstrapping` if the cluster never formed).
//! 3. The cluster reports another ID than the one in `status.clusterID`: wait, touch nothing.
//! 4. A member has no pod (an interrupted scale-up, or a StatefulSet shrunk by hand):
//!    `SetStatefulSetReplicas` to cover it. Allowed even without quorum: it only starts pods of
//!    existing members, which can only help.
//! 5. Gate: a member of unknown origin, no quorum, or no healthy leader: wait. No change below
//!    is made then.
//! 6. The StatefulSet's pod template is not the desired one: `CreateOrUpdateChildren` with the
//!    current replicas. Pods only pick the new template up when deleted (update strategy
//!    `OnDelete`), so applying it restarts nothing.
//! 7. Repair: a member whose identity was lost is removed (`MemberRemove`), lowest ordinal
//!    first, all of them before any replacement is added.
//! 8. A learner exists (at most one, by construction): remove it if its ordinal is no longer
//!    wanted; otherwise wait until it started and caught up, then `PromoteLearner`.
//! 9. Scale-in bookkeeping: the StatefulSet shrinks by one once its top member is gone
//!    (`SetStatefulSetReplicas`), waits for that pod to terminate, then deletes the volume claim
//!    if `pvcRetention` is `Delete` (`DeletePvc`).
//! 10. Scale-in: the highest-ordinal member is removed (`MemberRemove`), after moving leadership
//!     away from it if it leads (`TransferLeadership`).
//! 11. Fill the lowest ordinal below `spec.replicas` that has no member: a pod waiting with an
//!     empty data directory is added as a new learner (replacement); beyond the StatefulSet
//!     (scale-up) a retained volume claim of a removed member is deleted first, then a learner
//!     is added for the new ordinal (`MemberAddLearner`).
//! 12. Rolling update: pods whose template is outdated are deleted one at a time
//!     (`DeletePod`): unhealthy ones first, then followers from the highest ordinal, the leader
//!     last and only after `TransferLeadership`.
//! 13. Otherwise: wait for unhealthy members to recover, or `Idle`.
//!
//! # When a change is permitted (repairs vs. unhealthy members)
//!
//! A quorum and a healthy leader are required for every membership change (rule 5), and every
//! change is checked to leave a healthy majority of the new voter set. Beyond that, changes
//! differ in what they do to the number of failures the cluster tolerates:
//!
//! | change | effect on failure tolerance | also requires |
//! |---|---|---|
//! | remove a member whose identity is lost | never lowers it (the member is dead; the majority shrinks) | nothing more |
//! | add a learner for a pod awaiting membership (replacement) | none (learners do not vote) | no other learner |
//! | promote a caught-up learner | never lowers it (one more voter, and it is healthy) | nothing more |
//! | add a learner beyond the StatefulSet (scale-up) | none, but starts growth | every voter healthy |
//! | remove the highest member (scale-in) | lowers it if that member is healthy | every *other* voter healthy |
//! | transfer leadership | brief unavailability | every voter healthy |
//! | restart a pod (rolling update) | lowers it while the pod is down | every *other* voter caught up |
//!
//! So "no change while a member is unhealthy" holds for every change that could make things
//! worse, while the changes that *repair* data loss, which is what made a member unhealthy,
//! proceed whenever a quorum of voters is healthy. With two of five pods' volumes lost, three
//! voters remain healthy: both dead members are removed (5 → 4 → 3 voters, each step keeping a
//! healthy majority and raising tolerance), then the pods are added back one learner at a
//! time. With three of five lost there is no quorum and nothing happens: the phase is
//! `QuorumLost` and the status says what the operator waits for.
//!
//! # Sequences
//!
//! ```text
//! scale up 3 -> 5:   MemberAddLearner(3) -> SetStatefulSetReplicas(4) -> (wait: caught up)
//!                    -> PromoteLearner -> MemberAddLearner(4) -> SetStatefulSetReplicas(5) -> ...
//! scale down 5 -> 3: [TransferLeadership if 4 leads] -> MemberRemove(4)
//!                    -> SetStatefulSetReplicas(4) -> (wait: pod 4 gone) -> [DeletePvc(4)] -> ... 3
//! volume lost on 2:  MemberRemove(old 2) -> MemberAddLearner(2) -> (wait: started, caught up)
//!                    -> PromoteLearner
//! rolling update:    CreateOrUpdateChildren -> DeletePod(2) -> (wait: healthy, caught up)
//!                    -> DeletePod(1) -> ... -> TransferLeadership(0 -> n) -> DeletePod(0)
//! ```

mod assess;
mod observed;
mod rules;
mod status;

#[cfg(test)]
mod tests;

use std::fmt;

pub use assess::MAX_CATCH_UP_LAG_ENTRIES;
pub use observed::{Desired, NodeProbe, Observed, PodState, RaftMember, RaftView, StatefulSetState};
pub use status::{ConditionStatus, ConditionSummary, ConditionType, Reason, StatusSummary};

/// The single next step for the controller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Apply the child objects (Secrets, Services, PodDisruptionBudget, StatefulSet) with the
    /// desired pod template, the StatefulSet at `statefulset_replicas` pods.
    CreateOrUpdateChildren {
        /// Replicas of the StatefulSet to apply: `spec.replicas` when bootstrapping, the
        /// current value otherwise (membership, not this action, moves it).
        statefulset_replicas: u32,
    },
    /// Call `MemberAdd` with `is_learner = true` for the pod at `for_ordinal`.
    MemberAddLearner {
        /// [`ClusterName::peer_url`](crate::naming::ClusterName::peer_url) of the ordinal.
        peer_url: String,
        /// The ordinal whose pod will start as the new member.
        for_ordinal: u32,
    },
    /// Set the StatefulSet's `spec.replicas`.
    SetStatefulSetReplicas {
        /// The new value.
        replicas: u32,
    },
    /// Call `MemberPromote` for the learner `id`.
    PromoteLearner {
        /// The learner's member ID.
        id: u64,
    },
    /// Ask the leader `from` to hand leadership to `to` (Raft `TimeoutNow`).
    TransferLeadership {
        /// The current leader.
        from: u64,
        /// A caught-up voter that stays.
        to: u64,
    },
    /// Call `MemberRemove` for `id`.
    MemberRemove {
        /// The member to remove.
        id: u64,
    },
    /// Delete the PersistentVolumeClaim `data-<cluster>-<ordinal>`.
    DeletePvc {
        /// Its ordinal.
        ordinal: u32,
    },
    /// Delete the pod at `ordinal` so the StatefulSet recreates it from the current template
    /// (ordered restarts under the `OnDelete` update strategy).
    DeletePod {
        /// Its ordinal.
        ordinal: u32,
    },
    /// Nothing can be done now; observe again later.
    Wait {
        /// What the operator waits for.
        reason: WaitReason,
    },
    /// The cluster matches the spec and is healthy.
    Idle,
}

/// What the operator waits for when it returns [`Action::Wait`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WaitReason {
    /// The cluster has never formed and no member answers yet.
    ClusterForming,
    /// No member of a cluster that formed before answers.
    ClusterUnreachable,
    /// The cluster reports a different ID from the one recorded in the status.
    ClusterIdMismatch {
        /// `status.clusterID`.
        recorded: u64,
        /// What the cluster reports now.
        observed: u64,
    },
    /// Members that belong to no ordinal of this cluster; the operator will not reason about
    /// (or remove) members it did not create.
    UnknownMembers {
        /// Their IDs.
        ids: Vec<u64>,
    },
    /// Fewer than a majority of voters are healthy.
    QuorumLost {
        /// Healthy voters.
        healthy: u32,
        /// All voters.
        voters: u32,
    },
    /// No leader is known, or its pod does not answer.
    NoLeader,
    /// A change is paused until these voters are healthy (and caught up, for restarts).
    MembersUnhealthy {
        /// What is paused, e.g. "scale-up".
        paused: &'static str,
        /// Pod names of the voters waited for.
        pods: Vec<String>,
    },
    /// Nothing to change, but these voters are unhealthy. A member whose pod comes back with
    /// its data rejoins by itself; one whose data is lost is replaced (rule 7).
    MembersRecovering {
        /// Pod names of the unhealthy voters.
        pods: Vec<String>,
    },
    /// A member was added but its pod has not started it yet.
    MemberNotStarted {
        /// The pod expected to start it.
        pod: String,
    },
    /// A learner started but its pod does not answer.
    LearnerUnreachable {
        /// The learner's pod.
        pod: String,
    },
    /// A learner trails the leader by more than [`MAX_CATCH_UP_LAG_ENTRIES`].
    LearnerCatchingUp {
        /// The learner's pod.
        pod: String,
        /// The learner's applied index.
        applied_index: u64,
        /// The leader's applied index.
        leader_applied_index: u64,
    },
    /// A pod is being deleted.
    PodTerminating {
        /// The pod.
        pod: String,
    },
    /// A pod that should host a new member does not answer yet.
    PodNotReporting {
        /// The pod.
        pod: String,
    },
    /// A pod answers as a member ID that is not the member of its ordinal: it holds data of
    /// another (removed) identity. The operator does not wipe data it cannot account for; the
    /// user deletes the pod's volume claim and pod, and the pod rejoins as a new member.
    StaleMemberData {
        /// The pod.
        pod: String,
        /// The member ID it answers as.
        serving: u64,
    },
    /// Leadership must move but no other voter is caught up.
    NoTransferTarget,
}

/// The output of [`decide`]: one action, and the status describing the cluster and what the
/// operator does or waits for.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    /// The single next action.
    pub action: Action,
    /// Phase, conditions and member list for the `KvorumCluster` status.
    pub status: StatusSummary,
}

/// Decides the single next action for the cluster in `observed`, and the status to report.
/// Pure: same input, same output. The rules are in the [module documentation](self).
pub fn decide(observed: &Observed) -> Decision {
    rules::decide(observed)
}

/// Formats a member or cluster ID as `etcdctl member list` does: 16 hex digits. Used for
/// `status.members[].id` and `status.clusterID`.
pub fn format_member_id(id: u64) -> String {
    format!("{id:016x}")
}

/// Parses an ID written by [`format_member_id`] (e.g. `status.clusterID` back into
/// [`Observed::recorded_cluster_id`]); `None` if it is not 1 to 16 hex digits.
pub fn parse_member_id(text: &str) -> Option<u64> {
    let hex = !text.is_empty() && text.len() <= 16 && text.bytes().all(|b| b.is_ascii_hexdigit());
    if hex { u64::from_str_radix(text, 16).ok() } else { None }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::CreateOrUpdateChildren { statefulset_replicas } => {
                write!(
                    f,
                    "apply child objects (StatefulSet at {statefulset_replicas} replicas)"
                )
            }
            Action::MemberAddLearner { peer_url, for_ordinal } => {
                write!(f, "add a learner for ordinal {for_ordinal} ({peer_url})")
            }
            Action::SetStatefulSetReplicas { replicas } => write!(f, "set StatefulSet replicas to {replicas}"),
            Action::PromoteLearner { id } => write!(f, "promote learner {}", format_member_id(*id)),
            Action::TransferLeadership { from, to } => {
                write!(
                    f,
                    "transfer leadership from {} to {}",
                    format_member_id(*from),
                    format_member_id(*to)
                )
            }
            Action::MemberRemove { id } => write!(f, "remove member {}", format_member_id(*id)),
            Action::DeletePvc { ordinal } => write!(f, "delete the volume claim of ordinal {ordinal}"),
            Action::DeletePod { ordinal } => write!(f, "restart the pod of ordinal {ordinal}"),
            Action::Wait { reason } => write!(f, "wait: {reason}"),
            Action::Idle => f.write_str("nothing to do"),
        }
    }
}

impl fmt::Display for WaitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WaitReason::ClusterForming => f.write_str("waiting for the initial members to start and form the cluster"),
            WaitReason::ClusterUnreachable => f.write_str("no member answers; waiting for the cluster to be reachable"),
            WaitReason::ClusterIdMismatch { recorded, observed } => write!(
                f,
                "the cluster reports ID {} but {} was recorded; it was re-created underneath this resource, \
                 so the operator changes nothing",
                format_member_id(*observed),
                format_member_id(*recorded)
            ),
            WaitReason::UnknownMembers { ids } => {
                let ids: Vec<_> = ids.iter().map(|id| format_member_id(*id)).collect();
                write!(
                    f,
                    "members {} belong to no pod of this cluster; remove them by hand",
                    ids.join(", ")
                )
            }
            WaitReason::QuorumLost { healthy, voters } => write!(
                f,
                "{healthy} of {voters} voters healthy, {} needed; no change until a quorum is back",
                assess::majority(*voters)
            ),
            WaitReason::NoLeader => f.write_str("waiting for a leader to be elected"),
            WaitReason::MembersUnhealthy { paused, pods } => {
                write!(f, "{paused} paused until {} healthy and caught up", pods.join(", "))
            }
            WaitReason::MembersRecovering { pods } => write!(
                f,
                "waiting for {} to recover (a pod that comes back with its data rejoins as the same member)",
                pods.join(", ")
            ),
            WaitReason::MemberNotStarted { pod } => write!(f, "waiting for {pod} to start as the new member"),
            WaitReason::LearnerUnreachable { pod } => write!(f, "waiting for learner {pod} to answer"),
            WaitReason::LearnerCatchingUp {
                pod,
                applied_index,
                leader_applied_index,
            } => write!(
                f,
                "learner {pod} is catching up (applied {applied_index} of {leader_applied_index}, lag {} > \
                 {MAX_CATCH_UP_LAG_ENTRIES}); promotion waits",
                leader_applied_index.saturating_sub(*applied_index)
            ),
            WaitReason::PodTerminating { pod } => write!(f, "waiting for pod {pod} to terminate"),
            WaitReason::PodNotReporting { pod } => write!(f, "waiting for pod {pod} to report its state"),
            WaitReason::StaleMemberData { pod, serving } => write!(
                f,
                "pod {pod} holds data of member {}, which is not this ordinal's member; delete its volume claim \
                 and pod so it rejoins as a new member",
                format_member_id(*serving)
            ),
            WaitReason::NoTransferTarget => f.write_str("no caught-up voter to transfer leadership to"),
        }
    }
}
