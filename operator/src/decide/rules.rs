//! The ordered rules of [`decide`](super::decide); see the [module documentation](super) for
//! the rules in prose and the table of when each change is permitted.
//!
//! Each rule is a function returning `Some(plan)` when it applies; [`with_view`] chains them in
//! priority order. A rule may assume that every earlier rule returned `None`.

use crate::crd::PvcRetention;

use super::assess::{Assessment, MemberHealth, MemberView};
use super::observed::{NodeProbe, Observed, RaftView, StatefulSetState};
use super::status::{self, Reason};
use super::{Action, Decision, WaitReason, format_member_id};

/// A chosen action together with how it reads in the `Progressing` condition.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Plan {
    /// The action.
    pub action: Action,
    /// `Progressing` is true: a change is under way (not blocked, not idle).
    pub progressing: bool,
    /// Reason of the `Progressing` condition.
    pub reason: Reason,
    /// Message of the `Progressing` condition: what happens, or what the operator waits for.
    pub message: String,
}

impl Plan {
    /// A step of a change under way.
    fn step(action: Action, reason: Reason, message: String) -> Self {
        Self {
            action,
            progressing: true,
            reason,
            message,
        }
    }

    /// Waiting. `progressing` says whether the change is still moving (a pod starting, a
    /// learner catching up) or blocked (unhealthy members, no quorum).
    fn wait(wait: WaitReason, reason: Reason, progressing: bool) -> Self {
        let message = wait.to_string();
        Self {
            action: Action::Wait { reason: wait },
            progressing,
            reason,
            message,
        }
    }
}

/// Entry point behind [`super::decide`].
pub(crate) fn decide(o: &Observed) -> Decision {
    let target = o.desired.replicas.max(1);
    let view = o.raft.as_ref().map(|raft| (raft, Assessment::new(o, raft)));
    let assessment = view.as_ref().map(|(_, a)| a);
    let plan = match (&o.stateful_set, &view) {
        (None, _) => create(o, assessment, target),
        (Some(_), None) => match o.recorded_cluster_id {
            None => Plan::wait(WaitReason::ClusterForming, Reason::Bootstrapping, true),
            Some(_) => Plan::wait(WaitReason::ClusterUnreachable, Reason::ClusterUnreachable, false),
        },
        (Some(sts), Some((raft, a))) => with_view(o, raft, sts, a, target),
    };
    let status = status::summarize(o, assessment, &plan);
    Decision {
        action: plan.action,
        status,
    }
}

/// Rule 1: no StatefulSet.
fn create(o: &Observed, a: Option<&Assessment<'_>>, target: u32) -> Plan {
    let highest = match (a, o.recorded_cluster_id) {
        // Pods still run (the StatefulSet was deleted, orphaning them): keep every member.
        (Some(a), _) => a.members.iter().map(|m| m.ordinal + 1).max(),
        // The cluster formed before: bring every volume back so members rejoin with their data.
        (None, Some(_)) => o.pvcs.iter().map(|i| i + 1).max(),
        // A new cluster: the initial members found it together, all at once.
        (None, None) => None,
    };
    let replicas = highest.unwrap_or(target);
    Plan::step(
        Action::CreateOrUpdateChildren {
            statefulset_replicas: replicas,
        },
        Reason::CreatingChildren,
        format!("creating the child objects with {replicas} replicas"),
    )
}

/// Rules 3 to 13, once the StatefulSet exists and the cluster answers.
fn with_view(o: &Observed, raft: &RaftView, sts: &StatefulSetState, a: &Assessment<'_>, target: u32) -> Plan {
    if let Some(recorded) = o.recorded_cluster_id
        && recorded != raft.cluster_id
    {
        let wait = WaitReason::ClusterIdMismatch {
            recorded,
            observed: raft.cluster_id,
        };
        return Plan::wait(wait, Reason::ClusterIdMismatch, false);
    }
    pods_for_members(o, sts, a, target)
        .or_else(|| gate(o, a))
        .or_else(|| apply_template(o, sts))
        .or_else(|| remove_lost_identity(o, a))
        .or_else(|| learner(o, a, target))
        .or_else(|| finish_scale_in(o, sts, a, target))
        .or_else(|| scale_in(o, a, target))
        .or_else(|| fill_ordinals(o, sts, a, target))
        .or_else(|| roll(o, sts, a, target))
        .unwrap_or_else(|| settle(o, a))
}

/// Rule 4: every voter, and every learner still wanted, has a pod.
fn pods_for_members(o: &Observed, sts: &StatefulSetState, a: &Assessment<'_>, target: u32) -> Option<Plan> {
    let uncovered: Vec<_> = a.members.iter().filter(|m| m.ordinal >= sts.replicas).collect();
    let wanted = uncovered.iter().filter(|m| m.is_voter() || m.ordinal < target);
    let replicas = wanted.clone().map(|m| m.ordinal + 1).max()?;
    // Only learners uncovered: the middle step of a scale-up (MemberAdd happened, the
    // StatefulSet change did not yet, e.g. because the operator restarted in between).
    let reason = if wanted.clone().all(|m| m.member.is_learner) {
        Reason::ScalingUp
    } else {
        Reason::StartingMembers
    };
    let pods: Vec<_> = wanted.map(|m| o.cluster.pod_name(m.ordinal)).collect();
    let message = format!(
        "starting pod {} for an existing member (StatefulSet {} -> {replicas} replicas)",
        pods.join(", "),
        sts.replicas
    );
    Some(Plan::step(Action::SetStatefulSetReplicas { replicas }, reason, message))
}

/// Rule 5: no membership change, template change or restart without a quorum, a healthy
/// leader, and a member list the operator fully understands.
fn gate(o: &Observed, a: &Assessment<'_>) -> Option<Plan> {
    if !a.unknown.is_empty() {
        let ids = a.unknown.iter().map(|m| m.id).collect();
        return Some(Plan::wait(
            WaitReason::UnknownMembers { ids },
            Reason::UnknownMembers,
            false,
        ));
    }
    let formed = o.recorded_cluster_id.is_some();
    if !a.has_quorum() || a.leader.is_none() {
        // While bootstrapping, members not answering yet is the expected state.
        if !formed {
            return Some(Plan::wait(WaitReason::ClusterForming, Reason::Bootstrapping, true));
        }
        if !a.has_quorum() {
            let wait = WaitReason::QuorumLost {
                healthy: a.healthy_voter_count(),
                voters: a.voter_count(),
            };
            return Some(Plan::wait(wait, Reason::QuorumLost, false));
        }
        return Some(Plan::wait(WaitReason::NoLeader, Reason::NoLeader, false));
    }
    None
}

/// Rule 6: the StatefulSet carries the desired pod template.
fn apply_template(o: &Observed, sts: &StatefulSetState) -> Option<Plan> {
    (sts.template_hash != o.desired.template_hash).then(|| {
        Plan::step(
            Action::CreateOrUpdateChildren {
                statefulset_replicas: sts.replicas,
            },
            Reason::UpdatingChildren,
            "applying the new pod template; pods are restarted one at a time afterwards".to_string(),
        )
    })
}

/// Rule 7: remove members whose identity is lost (a repair: permitted with other members
/// unhealthy, as long as a quorum remains, which removing a dead voter always keeps).
fn remove_lost_identity(o: &Observed, a: &Assessment<'_>) -> Option<Plan> {
    let lost = a.members.iter().find(|m| m.health == MemberHealth::IdentityLost)?;
    let voters_delta = if lost.is_voter() { -1 } else { 0 };
    if !a.keeps_quorum(voters_delta, 0) {
        let wait = WaitReason::QuorumLost {
            healthy: a.healthy_voter_count(),
            voters: a.voter_count(),
        };
        return Some(Plan::wait(wait, Reason::QuorumLost, false));
    }
    let message = format!(
        "{} lost its data: removing its old member {} so the pod can rejoin as a new member",
        o.cluster.pod_name(lost.ordinal),
        format_member_id(lost.member.id)
    );
    Some(Plan::step(
        Action::MemberRemove { id: lost.member.id },
        Reason::ReplacingMember,
        message,
    ))
}

/// Rule 8: finish the learner in flight (there is at most one; the operator adds the next only
/// after promoting it).
fn learner(o: &Observed, a: &Assessment<'_>, target: u32) -> Option<Plan> {
    let learner = a.learners().next()?;
    let pod = o.cluster.pod_name(learner.ordinal);
    let id = learner.member.id;
    if learner.ordinal >= target {
        let message = format!(
            "removing learner {pod}: spec.replicas no longer includes ordinal {}",
            learner.ordinal
        );
        return Some(Plan::step(Action::MemberRemove { id }, Reason::ScalingDown, message));
    }
    let plan = match learner.health {
        MemberHealth::NotStarted => Plan::wait(WaitReason::MemberNotStarted { pod }, Reason::AddingMember, true),
        MemberHealth::Unreachable | MemberHealth::IdentityLost => {
            Plan::wait(WaitReason::LearnerUnreachable { pod }, Reason::AddingMember, true)
        }
        MemberHealth::IdentityMismatch { serving } => Plan::wait(
            WaitReason::StaleMemberData { pod, serving },
            Reason::StaleMemberData,
            false,
        ),
        MemberHealth::Healthy { applied_index } if !a.is_caught_up(learner) => {
            let leader_applied_index = a.leader.map_or(0, |l| l.applied_index);
            let wait = WaitReason::LearnerCatchingUp {
                pod,
                applied_index,
                leader_applied_index,
            };
            Plan::wait(wait, Reason::AddingMember, true)
        }
        // Promoting a healthy, caught-up learner never lowers the failure tolerance, so it does
        // not wait for other members (it is how a replacement repairs the cluster).
        MemberHealth::Healthy { .. } if a.keeps_quorum(1, 1) => {
            let message = format!("promoting caught-up learner {pod} ({}) to voter", format_member_id(id));
            Plan::step(Action::PromoteLearner { id }, Reason::AddingMember, message)
        }
        MemberHealth::Healthy { .. } => {
            let wait = WaitReason::QuorumLost {
                healthy: a.healthy_voter_count(),
                voters: a.voter_count(),
            };
            Plan::wait(wait, Reason::QuorumLost, false)
        }
    };
    Some(plan)
}

/// Rule 9: after a member above `spec.replicas` was removed, shrink the StatefulSet, wait for
/// the pod to go, and delete its volume claim if asked to.
fn finish_scale_in(o: &Observed, sts: &StatefulSetState, a: &Assessment<'_>, target: u32) -> Option<Plan> {
    if sts.replicas > target {
        let top = sts.replicas - 1;
        if a.at(top).next().is_none() {
            let message = format!(
                "{} is no longer a member: shrinking the StatefulSet to {top} replicas",
                o.cluster.pod_name(top)
            );
            return Some(Plan::step(
                Action::SetStatefulSetReplicas { replicas: top },
                Reason::ScalingDown,
                message,
            ));
        }
    }
    // Rule 4 gave every wanted member a pod, so pods beyond the StatefulSet belong to removed
    // members and are on their way out.
    if let Some((&ordinal, _)) = o.pods.range(sts.replicas..).next() {
        let wait = WaitReason::PodTerminating {
            pod: o.cluster.pod_name(ordinal),
        };
        return Some(Plan::wait(wait, Reason::ScalingDown, true));
    }
    if o.desired.pvc_retention == PvcRetention::Delete
        && let Some(&ordinal) = o.pvcs.range(sts.replicas.max(target)..).next_back()
    {
        let message = format!(
            "deleting volume claim {} of a removed member (pvcRetention: Delete)",
            o.cluster.pvc_name(ordinal)
        );
        return Some(Plan::step(Action::DeletePvc { ordinal }, Reason::ScalingDown, message));
    }
    None
}

/// Rule 10: remove the highest-ordinal voter above `spec.replicas`, leadership first.
fn scale_in(o: &Observed, a: &Assessment<'_>, target: u32) -> Option<Plan> {
    let highest = a.members.iter().rfind(|m| m.is_voter() && m.ordinal >= target)?;
    let pod = o.cluster.pod_name(highest.ordinal);
    // Removing a healthy voter lowers the failure tolerance: every other voter must be healthy.
    let unhealthy = a.unhealthy_voters(o, Some(highest.ordinal), false);
    if !unhealthy.is_empty() {
        let wait = WaitReason::MembersUnhealthy {
            paused: "scale-down",
            pods: unhealthy,
        };
        return Some(Plan::wait(wait, Reason::WaitingForHealthyMembers, false));
    }
    let leader = a.leader?;
    if leader.id == highest.member.id {
        return Some(match transfer_target(a, target, highest.ordinal, |_| true) {
            Some(to) => Plan::step(
                Action::TransferLeadership { from: leader.id, to },
                Reason::ScalingDown,
                format!("moving leadership off {pod} before removing it"),
            ),
            None => Plan::wait(WaitReason::NoTransferTarget, Reason::WaitingForHealthyMembers, false),
        });
    }
    let healthy_delta = if highest.health.is_healthy() { -1 } else { 0 };
    if !a.keeps_quorum(-1, healthy_delta) {
        let wait = WaitReason::MembersUnhealthy {
            paused: "scale-down",
            pods: vec![pod],
        };
        return Some(Plan::wait(wait, Reason::WaitingForHealthyMembers, false));
    }
    let message = format!(
        "scale-down to {target}: removing {pod} ({})",
        format_member_id(highest.member.id)
    );
    Some(Plan::step(
        Action::MemberRemove { id: highest.member.id },
        Reason::ScalingDown,
        message,
    ))
}

/// Rule 11: give the lowest ordinal below `spec.replicas` without a member one.
fn fill_ordinals(o: &Observed, sts: &StatefulSetState, a: &Assessment<'_>, target: u32) -> Option<Plan> {
    let ordinal = (0..target).find(|&i| a.at(i).next().is_none())?;
    let pod = o.cluster.pod_name(ordinal);
    let add = Action::MemberAddLearner {
        peer_url: o.cluster.peer_url(ordinal),
        for_ordinal: ordinal,
    };
    if ordinal < sts.replicas {
        // The pod exists (or should): a replacement. Permitted while other members are
        // unhealthy: adding a learner changes no vote.
        let plan = match o.pods.get(&ordinal) {
            Some(p) if p.terminating => Plan::wait(WaitReason::PodTerminating { pod }, Reason::ReplacingMember, true),
            Some(p) => match p.node {
                NodeProbe::AwaitingMembership => Plan::step(
                    add,
                    Reason::ReplacingMember,
                    format!("adding {pod} back as a new learner (its old identity was removed)"),
                ),
                NodeProbe::Serving { member_id, .. } => {
                    let wait = WaitReason::StaleMemberData {
                        pod,
                        serving: member_id,
                    };
                    Plan::wait(wait, Reason::StaleMemberData, false)
                }
                NodeProbe::Unreachable => {
                    Plan::wait(WaitReason::PodNotReporting { pod }, Reason::ReplacingMember, true)
                }
            },
            None => Plan::wait(WaitReason::PodNotReporting { pod }, Reason::ReplacingMember, true),
        };
        return Some(plan);
    }
    // Growth: only from a fully healthy cluster.
    let unhealthy = a.unhealthy_voters(o, None, false);
    if !unhealthy.is_empty() {
        let wait = WaitReason::MembersUnhealthy {
            paused: "scale-up",
            pods: unhealthy,
        };
        return Some(Plan::wait(wait, Reason::WaitingForHealthyMembers, false));
    }
    // A volume retained from an earlier scale-down holds a removed identity; the new member
    // must start empty.
    if o.pvcs.contains(&ordinal) {
        let message = format!(
            "deleting retained volume claim {} of a removed member before reusing ordinal {ordinal}",
            o.cluster.pvc_name(ordinal)
        );
        return Some(Plan::step(Action::DeletePvc { ordinal }, Reason::ScalingUp, message));
    }
    let voters = a.voter_count();
    let message = format!("scale-up {voters} -> {target}: adding a learner for {pod}");
    Some(Plan::step(add, Reason::ScalingUp, message))
}

/// Rule 12: restart pods running an outdated template, one at a time.
fn roll(o: &Observed, sts: &StatefulSetState, a: &Assessment<'_>, target: u32) -> Option<Plan> {
    let desired = &o.desired.template_hash;
    let outdated: Vec<&MemberView<'_>> = a
        .members
        .iter()
        .filter(|m| o.pods.get(&m.ordinal).is_some_and(|p| &p.template_hash != desired))
        .collect();
    if outdated.is_empty() {
        return None;
    }
    if let Some((&ordinal, _)) = o.pods.range(..sts.replicas).find(|(_, p)| p.terminating) {
        let wait = WaitReason::PodTerminating {
            pod: o.cluster.pod_name(ordinal),
        };
        return Some(Plan::wait(wait, Reason::RollingUpdate, true));
    }
    let leader = a.leader?;
    // Unhealthy pods first (restarting a member that is down costs nothing), then followers
    // from the highest ordinal, the leader last.
    let candidate = outdated
        .iter()
        .find(|m| !m.health.is_healthy())
        .or_else(|| outdated.iter().rev().find(|m| m.member.id != leader.id))
        .or_else(|| outdated.first())?;
    let pod = o.cluster.pod_name(candidate.ordinal);
    let others = a.unhealthy_voters(o, Some(candidate.ordinal), true);
    if !others.is_empty() {
        // Waiting for pods that already run the new template is the rollout's normal pace
        // (the last restarted pod is starting or catching up); waiting for others is a pause.
        let in_flight = others.iter().all(|pod| {
            let ordinal = o.cluster.ordinal_of_pod(pod);
            ordinal
                .and_then(|i| o.pods.get(&i))
                .is_some_and(|p| &p.template_hash == desired)
        });
        let wait = WaitReason::MembersUnhealthy {
            paused: "rolling update",
            pods: others,
        };
        return Some(if in_flight {
            Plan::wait(wait, Reason::RollingUpdate, true)
        } else {
            Plan::wait(wait, Reason::WaitingForHealthyMembers, false)
        });
    }
    if candidate.member.id == leader.id && a.voter_count() > 1 {
        let updated = |m: &MemberView<'_>| o.pods.get(&m.ordinal).is_some_and(|p| &p.template_hash == desired);
        return Some(match transfer_target(a, target, candidate.ordinal, updated) {
            Some(to) => Plan::step(
                Action::TransferLeadership { from: leader.id, to },
                Reason::RollingUpdate,
                format!("moving leadership off {pod} before restarting it"),
            ),
            None => Plan::wait(WaitReason::NoTransferTarget, Reason::WaitingForHealthyMembers, false),
        });
    }
    let message = format!(
        "restarting {pod} onto the new pod template ({} outdated pods left)",
        outdated.len()
    );
    Some(Plan::step(
        Action::DeletePod {
            ordinal: candidate.ordinal,
        },
        Reason::RollingUpdate,
        message,
    ))
}

/// Rule 13: nothing to change; wait for members to recover, or idle.
fn settle(o: &Observed, a: &Assessment<'_>) -> Plan {
    let mismatch = a.members.iter().find_map(|m| match m.health {
        MemberHealth::IdentityMismatch { serving } => Some((m.ordinal, serving)),
        _ => None,
    });
    if let Some((ordinal, serving)) = mismatch {
        let wait = WaitReason::StaleMemberData {
            pod: o.cluster.pod_name(ordinal),
            serving,
        };
        return Plan::wait(wait, Reason::StaleMemberData, false);
    }
    let unhealthy = a.unhealthy_voters(o, None, false);
    if !unhealthy.is_empty() {
        if o.recorded_cluster_id.is_none() {
            return Plan::wait(WaitReason::ClusterForming, Reason::Bootstrapping, true);
        }
        return Plan::wait(
            WaitReason::MembersRecovering { pods: unhealthy },
            Reason::WaitingForHealthyMembers,
            false,
        );
    }
    let message = format!("{} voters healthy; the cluster matches the spec", a.voter_count());
    Plan {
        action: Action::Idle,
        progressing: false,
        reason: Reason::Idle,
        message,
    }
}

/// The voter to hand leadership to: caught up, staying (below `target`), not `leaving`;
/// preferably one for which `preferred` holds, then the most advanced, then the lowest ordinal.
fn transfer_target(
    a: &Assessment<'_>,
    target: u32,
    leaving: u32,
    preferred: impl Fn(&MemberView<'_>) -> bool,
) -> Option<u64> {
    a.members
        .iter()
        .filter(|m| m.is_voter() && m.ordinal < target && m.ordinal != leaving && a.is_caught_up(m))
        .max_by_key(|m| {
            let applied = match m.health {
                MemberHealth::Healthy { applied_index } => applied_index,
                _ => 0,
            };
            (preferred(m), applied, std::cmp::Reverse(m.ordinal))
        })
        .map(|m| m.member.id)
}
