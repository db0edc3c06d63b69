//! The status half of a [`Decision`](super::Decision): phase, the four standard conditions and
//! the member list, computed from the same observation as the action.
//!
//! | condition | true when | reasons |
//! |---|---|---|
//! | `Available` | quorum, a healthy leader, and a ready pod behind the client Service | `QuorumAndLeader`; false: `NotCreated`, `Bootstrapping`, `ClusterIDMismatch`, `QuorumLost`, `NoLeader`, `NoReadyEndpoints`; unknown: `ClusterUnreachable` |
//! | `Progressing` | a change is under way and not blocked | the step (`ScalingUp`, `AddingMember`, `ReplacingMember`, `ScalingDown`, `RollingUpdate`, ...); false: `Idle` or what blocks it |
//! | `Degraded` | a member is unhealthy, lost its data, holds stale data, or the cluster is unreachable | `MemberDataLost`, `StaleMemberData`, `MembersUnhealthy`, `UnknownMembers`, `ClusterUnreachable`, `ClusterIDMismatch`; false: `AllMembersHealthy`, `Bootstrapping`, `NotCreated` |
//! | `QuorumAvailable` | healthy voters are a majority | `QuorumHealthy` / `QuorumLost`; unknown: `ClusterUnreachable`, `Bootstrapping`, `NotCreated` |
//!
//! The summary has no timestamps (the decision is pure); [`StatusSummary::into_status`] turns
//! it into the CRD status given the previous status and the current time.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::crd::{KvorumClusterStatus, MemberRole, MemberStatus, Phase};

use super::assess::{Assessment, MemberHealth, majority};
use super::format_member_id;
use super::observed::{NodeProbe, Observed};
use super::rules::Plan;

/// The four condition types the operator maintains.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConditionType {
    /// Clients can use the cluster: quorum, leader, a ready endpoint.
    Available,
    /// A change is under way.
    Progressing,
    /// Something is wrong that the operator waits out or repairs.
    Degraded,
    /// A majority of voters is healthy.
    QuorumAvailable,
}

impl ConditionType {
    /// The `type` string of the condition.
    pub fn as_str(self) -> &'static str {
        match self {
            ConditionType::Available => "Available",
            ConditionType::Progressing => "Progressing",
            ConditionType::Degraded => "Degraded",
            ConditionType::QuorumAvailable => "QuorumAvailable",
        }
    }
}

/// Status of a condition, as Kubernetes spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConditionStatus {
    /// `"True"`.
    True,
    /// `"False"`.
    False,
    /// `"Unknown"`: the operator cannot tell (the cluster does not answer).
    Unknown,
}

impl ConditionStatus {
    /// The `status` string of the condition.
    pub fn as_str(self) -> &'static str {
        match self {
            ConditionStatus::True => "True",
            ConditionStatus::False => "False",
            ConditionStatus::Unknown => "Unknown",
        }
    }

    fn from_bool(value: bool) -> Self {
        if value {
            ConditionStatus::True
        } else {
            ConditionStatus::False
        }
    }
}

/// Machine-readable reason of a condition (CamelCase, as Kubernetes conventions ask).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Available: quorum and a healthy leader, with a ready endpoint.
    QuorumAndLeader,
    /// The child objects do not exist yet.
    NotCreated,
    /// The initial members are forming the cluster.
    Bootstrapping,
    /// No member answers.
    ClusterUnreachable,
    /// The cluster's ID differs from `status.clusterID`.
    ClusterIdMismatch,
    /// Fewer than a majority of voters are healthy.
    QuorumLost,
    /// No leader, or the leader's pod does not answer.
    NoLeader,
    /// No pod is ready, so the client Service has no endpoint.
    NoReadyEndpoints,
    /// A majority of voters is healthy.
    QuorumHealthy,
    /// Every member is healthy.
    AllMembersHealthy,
    /// Members that belong to no ordinal of this cluster.
    UnknownMembers,
    /// A member's pod came back with an empty data directory.
    MemberDataLost,
    /// A pod holds data of a member that is not its ordinal's.
    StaleMemberData,
    /// Voters do not answer.
    MembersUnhealthy,
    /// Nothing to do.
    Idle,
    /// Creating the child objects.
    CreatingChildren,
    /// Applying a changed pod template or child objects.
    UpdatingChildren,
    /// Starting pods for members that have none.
    StartingMembers,
    /// Adding members up to `spec.replicas`.
    ScalingUp,
    /// A learner is being started, caught up and promoted.
    AddingMember,
    /// Replacing a member whose data was lost.
    ReplacingMember,
    /// Removing members down to `spec.replicas`.
    ScalingDown,
    /// Restarting pods onto a new template.
    RollingUpdate,
    /// A change waits for unhealthy members.
    WaitingForHealthyMembers,
}

impl Reason {
    /// The `reason` string of the condition.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::QuorumAndLeader => "QuorumAndLeader",
            Reason::NotCreated => "NotCreated",
            Reason::Bootstrapping => "Bootstrapping",
            Reason::ClusterUnreachable => "ClusterUnreachable",
            Reason::ClusterIdMismatch => "ClusterIDMismatch",
            Reason::QuorumLost => "QuorumLost",
            Reason::NoLeader => "NoLeader",
            Reason::NoReadyEndpoints => "NoReadyEndpoints",
            Reason::QuorumHealthy => "QuorumHealthy",
            Reason::AllMembersHealthy => "AllMembersHealthy",
            Reason::UnknownMembers => "UnknownMembers",
            Reason::MemberDataLost => "MemberDataLost",
            Reason::StaleMemberData => "StaleMemberData",
            Reason::MembersUnhealthy => "MembersUnhealthy",
            Reason::Idle => "Idle",
            Reason::CreatingChildren => "CreatingChildren",
            Reason::UpdatingChildren => "UpdatingChildren",
            Reason::StartingMembers => "StartingMembers",
            Reason::ScalingUp => "ScalingUp",
            Reason::AddingMember => "AddingMember",
            Reason::ReplacingMember => "ReplacingMember",
            Reason::ScalingDown => "ScalingDown",
            Reason::RollingUpdate => "RollingUpdate",
            Reason::WaitingForHealthyMembers => "WaitingForHealthyMembers",
        }
    }
}

/// One condition without its timestamps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConditionSummary {
    /// Which condition.
    pub type_: ConditionType,
    /// Its status.
    pub status: ConditionStatus,
    /// Why.
    pub reason: Reason,
    /// For humans: what is wrong, what happens, or what the operator waits for.
    pub message: String,
}

/// The status part of a decision: everything for `KvorumCluster.status` except timestamps.
#[derive(Clone, Debug, PartialEq)]
pub struct StatusSummary {
    /// The spec generation this was computed from.
    pub observed_generation: Option<i64>,
    /// Coarse phase.
    pub phase: Phase,
    /// `Available`, `Progressing`, `Degraded`, `QuorumAvailable`, in that order.
    pub conditions: Vec<ConditionSummary>,
    /// The member list, by ordinal (members of unknown origin last).
    pub members: Vec<MemberStatus>,
    /// Pod name of the leader the cluster reports.
    pub leader: Option<String>,
    /// Number of voting members.
    pub voters: u32,
    /// Pods that are ready and not terminating.
    pub ready_replicas: u32,
    /// The cluster ID to record: the recorded one, or the observed one once every member of a
    /// bootstrapping cluster is healthy (the end of bootstrap).
    pub cluster_id: Option<u64>,
    /// The client endpoint.
    pub endpoint: String,
    /// The pods' label selector.
    pub selector: String,
}

impl StatusSummary {
    /// The condition of type `type_` (all four are always present).
    pub fn condition(&self, type_: ConditionType) -> Option<&ConditionSummary> {
        self.conditions.iter().find(|c| c.type_ == type_)
    }

    /// The CRD status for this summary. A condition keeps its `lastTransitionTime` from
    /// `previous` while its status is unchanged and takes `now` when it changes, as Kubernetes
    /// conventions ask; time is a parameter so this stays pure.
    pub fn into_status(self, previous: Option<&KvorumClusterStatus>, now: &Time) -> KvorumClusterStatus {
        let conditions = self
            .conditions
            .iter()
            .map(|c| {
                let (type_, status) = (c.type_.as_str(), c.status.as_str());
                let kept = previous
                    .and_then(|p| p.conditions.iter().find(|old| old.type_ == type_))
                    .filter(|old| old.status == status)
                    .map(|old| old.last_transition_time.clone());
                Condition {
                    type_: type_.to_string(),
                    status: status.to_string(),
                    reason: c.reason.as_str().to_string(),
                    message: c.message.clone(),
                    observed_generation: self.observed_generation,
                    last_transition_time: kept.unwrap_or_else(|| now.clone()),
                }
            })
            .collect();
        KvorumClusterStatus {
            observed_generation: self.observed_generation,
            phase: Some(self.phase),
            replicas: i32::try_from(self.voters).unwrap_or(i32::MAX),
            ready_replicas: i32::try_from(self.ready_replicas).unwrap_or(i32::MAX),
            leader: self.leader,
            members: self.members,
            conditions,
            cluster_id: self.cluster_id.map(format_member_id),
            endpoint: Some(self.endpoint),
            selector: Some(self.selector),
        }
    }
}

/// Builds the status for `o`, with `a` its assessment (if the cluster answered) and `plan` the
/// chosen action.
pub(crate) fn summarize(o: &Observed, a: Option<&Assessment<'_>>, plan: &Plan) -> StatusSummary {
    let facts = Facts::new(o, a);
    let degraded = degraded(o, a, &facts);
    let phase = phase(o, a, &facts, degraded.status == ConditionStatus::True);
    let progressing = ConditionSummary {
        type_: ConditionType::Progressing,
        status: ConditionStatus::from_bool(plan.progressing),
        reason: plan.reason,
        message: plan.message.clone(),
    };
    let conditions = vec![available(o, a, &facts), progressing, degraded, quorum(a, &facts)];
    let ready = o.pods.values().filter(|p| p.ready && !p.terminating).count();
    StatusSummary {
        observed_generation: o.generation,
        phase,
        conditions,
        members: a.map(|a| members(o, a)).unwrap_or_default(),
        leader: leader_name(o, a),
        voters: a.map_or(0, Assessment::voter_count),
        ready_replicas: u32::try_from(ready).unwrap_or(u32::MAX),
        cluster_id: o.recorded_cluster_id.or(if facts.formed {
            o.raft.as_ref().map(|r| r.cluster_id)
        } else {
            None
        }),
        endpoint: o.cluster.client_endpoint(),
        selector: o.cluster.selector(),
    }
}

/// Facts several conditions share.
struct Facts {
    /// The StatefulSet has never been created for a cluster that never formed.
    not_created: bool,
    /// The cluster has not formed yet (nothing recorded, not every member healthy).
    bootstrapping: bool,
    /// Every member is a healthy voter and a healthy leader exists.
    formed: bool,
    /// The cluster reports another ID than the recorded one.
    id_mismatch: bool,
}

impl Facts {
    fn new(o: &Observed, a: Option<&Assessment<'_>>) -> Self {
        let formed = a.is_some_and(|a| {
            a.unknown.is_empty()
                && a.leader.is_some()
                && a.members.iter().all(|m| m.is_voter() && m.health.is_healthy())
        });
        let recorded = o.recorded_cluster_id.is_some();
        let id_mismatch = matches!((o.recorded_cluster_id, &o.raft), (Some(id), Some(r)) if id != r.cluster_id);
        Self {
            not_created: o.stateful_set.is_none() && !recorded,
            bootstrapping: !recorded && !formed,
            formed,
            id_mismatch,
        }
    }
}

fn condition(
    type_: ConditionType,
    status: ConditionStatus,
    reason: Reason,
    message: impl Into<String>,
) -> ConditionSummary {
    ConditionSummary {
        type_,
        status,
        reason,
        message: message.into(),
    }
}

fn available(o: &Observed, a: Option<&Assessment<'_>>, f: &Facts) -> ConditionSummary {
    use ConditionStatus::{False, True, Unknown};
    let c = |status, reason, message: String| condition(ConditionType::Available, status, reason, message);
    if f.not_created {
        return c(
            False,
            Reason::NotCreated,
            "the child objects are not created yet".into(),
        );
    }
    let Some(a) = a else {
        return if f.bootstrapping {
            c(
                False,
                Reason::Bootstrapping,
                "the initial members have not formed the cluster yet".into(),
            )
        } else {
            c(Unknown, Reason::ClusterUnreachable, "no member answers".into())
        };
    };
    if f.id_mismatch {
        return c(
            False,
            Reason::ClusterIdMismatch,
            "the cluster is not the one recorded in status.clusterID".into(),
        );
    }
    if !a.has_quorum() {
        return c(False, Reason::QuorumLost, quorum_message(a));
    }
    let Some(leader) = a.leader else {
        return c(False, Reason::NoLeader, "no healthy leader".into());
    };
    if !o.pods.values().any(|p| p.ready && !p.terminating) {
        return c(
            False,
            Reason::NoReadyEndpoints,
            "no pod is ready behind the client Service".into(),
        );
    }
    let message = format!(
        "leader {}; {}; clients connect to {}",
        o.cluster.pod_name(leader.ordinal),
        quorum_message(a),
        o.cluster.client_endpoint()
    );
    c(True, Reason::QuorumAndLeader, message)
}

fn quorum(a: Option<&Assessment<'_>>, f: &Facts) -> ConditionSummary {
    let c = |status, reason, message: String| condition(ConditionType::QuorumAvailable, status, reason, message);
    match a {
        None if f.not_created => c(ConditionStatus::Unknown, Reason::NotCreated, "no members yet".into()),
        None if f.bootstrapping => c(
            ConditionStatus::Unknown,
            Reason::Bootstrapping,
            "no member answers yet".into(),
        ),
        None => c(
            ConditionStatus::Unknown,
            Reason::ClusterUnreachable,
            "no member answers".into(),
        ),
        Some(a) if a.has_quorum() => c(ConditionStatus::True, Reason::QuorumHealthy, quorum_message(a)),
        Some(a) => c(ConditionStatus::False, Reason::QuorumLost, quorum_message(a)),
    }
}

fn quorum_message(a: &Assessment<'_>) -> String {
    let voters = a.voter_count();
    format!(
        "{} of {voters} voters healthy, {} needed",
        a.healthy_voter_count(),
        majority(voters)
    )
}

/// `Degraded`, with every problem found in the message and the most serious as the reason.
fn degraded(o: &Observed, a: Option<&Assessment<'_>>, f: &Facts) -> ConditionSummary {
    use ConditionStatus::{False, True};
    let c = |status, reason, message: String| condition(ConditionType::Degraded, status, reason, message);
    if f.not_created {
        return c(
            False,
            Reason::NotCreated,
            "the child objects are not created yet".into(),
        );
    }
    let Some(a) = a else {
        return if f.bootstrapping {
            c(False, Reason::Bootstrapping, "the initial members are starting".into())
        } else {
            c(True, Reason::ClusterUnreachable, "no member answers".into())
        };
    };
    if f.id_mismatch {
        return c(
            True,
            Reason::ClusterIdMismatch,
            "the cluster is not the one recorded in status.clusterID".into(),
        );
    }
    let problems = problems(o, a);
    match problems.first() {
        // Members not answering yet is the normal course of a bootstrap.
        Some((Reason::MembersUnhealthy, _)) if f.bootstrapping => {
            c(False, Reason::Bootstrapping, "the initial members are starting".into())
        }
        Some(&(reason, _)) => {
            let message: Vec<_> = problems.into_iter().map(|(_, m)| m).collect();
            c(True, reason, message.join("; "))
        }
        None => c(False, Reason::AllMembersHealthy, "every member is healthy".into()),
    }
}

/// What is wrong, most serious first.
fn problems(o: &Observed, a: &Assessment<'_>) -> Vec<(Reason, String)> {
    let pod = |ordinal| o.cluster.pod_name(ordinal);
    let mut problems = Vec::new();
    if !a.unknown.is_empty() {
        let ids: Vec<_> = a.unknown.iter().map(|m| format_member_id(m.id)).collect();
        problems.push((
            Reason::UnknownMembers,
            format!("members {} belong to no pod of this cluster", ids.join(", ")),
        ));
    }
    // Lost data shows first as a member whose pod came back empty, then (after its removal) as
    // a pod waiting with no member at its ordinal. Once a learner is added for the pod, the
    // repair is a membership change under way like any other (`Progressing`).
    let member_less = |ordinal: &u32| a.at(*ordinal).next().is_none();
    let mut lost: Vec<_> = a
        .members
        .iter()
        .filter(|m| m.health == MemberHealth::IdentityLost)
        .map(|m| m.ordinal)
        .collect();
    let statefulset_replicas = o.stateful_set.as_ref().map_or(0, |s| s.replicas);
    lost.extend(
        o.pods
            .iter()
            .filter(|(i, p)| {
                **i < statefulset_replicas
                    && !p.terminating
                    && p.node == NodeProbe::AwaitingMembership
                    && member_less(i)
            })
            .map(|(i, _)| *i),
    );
    if !lost.is_empty() {
        let pods: Vec<_> = lost.into_iter().map(pod).collect();
        problems.push((
            Reason::MemberDataLost,
            format!("{} lost their data; replacing one at a time", pods.join(", ")),
        ));
    }
    let mut stale: Vec<_> = a
        .members
        .iter()
        .filter(|m| matches!(m.health, MemberHealth::IdentityMismatch { .. }))
        .map(|m| m.ordinal)
        .collect();
    stale.extend(
        o.pods
            .iter()
            .filter(|(i, p)| {
                **i < statefulset_replicas
                    && !p.terminating
                    && matches!(p.node, NodeProbe::Serving { .. })
                    && member_less(i)
            })
            .map(|(i, _)| *i),
    );
    if !stale.is_empty() {
        let pods: Vec<_> = stale.into_iter().map(pod).collect();
        problems.push((
            Reason::StaleMemberData,
            format!("{} hold data of another member", pods.join(", ")),
        ));
    }
    let unreachable: Vec<_> = a
        .members
        .iter()
        .filter(|m| m.is_voter() && m.health == MemberHealth::Unreachable)
        .map(|m| pod(m.ordinal))
        .collect();
    if !unreachable.is_empty() {
        problems.push((
            Reason::MembersUnhealthy,
            format!("{} not answering", unreachable.join(", ")),
        ));
    }
    problems
}

fn phase(o: &Observed, a: Option<&Assessment<'_>>, f: &Facts, degraded: bool) -> Phase {
    if f.not_created {
        return Phase::Pending;
    }
    if f.bootstrapping {
        return Phase::Bootstrapping;
    }
    let (Some(a), Some(sts)) = (a, &o.stateful_set) else {
        return Phase::Degraded;
    };
    if f.id_mismatch {
        return Phase::Degraded;
    }
    if !a.has_quorum() {
        return Phase::QuorumLost;
    }
    if degraded {
        return Phase::Degraded;
    }
    let target = o.desired.replicas.max(1);
    if a.voter_count() != target || a.learners().next().is_some() || sts.replicas != target {
        return Phase::Scaling;
    }
    let desired = &o.desired.template_hash;
    if &sts.template_hash != desired || o.pods.values().any(|p| &p.template_hash != desired) {
        return Phase::Upgrading;
    }
    Phase::Running
}

fn members(o: &Observed, a: &Assessment<'_>) -> Vec<MemberStatus> {
    let leader_id = o.raft.as_ref().and_then(|r| r.leader_id);
    let role = |id: u64, learner: bool| match (learner, Some(id) == leader_id) {
        (true, _) => MemberRole::Learner,
        (false, true) => MemberRole::Leader,
        (false, false) => MemberRole::Follower,
    };
    let ours = a.members.iter().map(|m| {
        let applied_index = match m.health {
            MemberHealth::Healthy { applied_index } => Some(i64::try_from(applied_index).unwrap_or(i64::MAX)),
            _ => None,
        };
        MemberStatus {
            name: m.member.name.clone(),
            id: format_member_id(m.member.id),
            role: role(m.member.id, m.member.is_learner),
            healthy: m.health.is_healthy(),
            applied_index,
        }
    });
    let unknown = a.unknown.iter().map(|m| MemberStatus {
        name: m.name.clone(),
        id: format_member_id(m.id),
        role: role(m.id, m.is_learner),
        healthy: false,
        applied_index: None,
    });
    ours.chain(unknown).collect()
}

/// The pod name of the leader the cluster reports (healthy or not).
fn leader_name(o: &Observed, a: Option<&Assessment<'_>>) -> Option<String> {
    let id = o.raft.as_ref()?.leader_id?;
    let member = a?.members.iter().find(|m| m.member.id == id)?;
    Some(o.cluster.pod_name(member.ordinal))
}
