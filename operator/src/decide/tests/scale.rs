//! Scaling up and down, one member at a time, including interrupted steps.

use super::*;
use ConditionType::{Degraded, Progressing};
use Learner::{Started, Unstarted};

#[test]
fn scale_up_table() {
    run(vec![
        case("3->5 step 1: add a learner for ordinal 3", Fixture::healthy(3).want(5))
            .action(add_learner(3))
            .phase(Phase::Scaling)
            .reason(Progressing, Reason::ScalingUp),
        case(
            "3->5 step 2 (also: operator restarted between MemberAdd and the StatefulSet change): \
             grow the StatefulSet, never a second MemberAdd",
            Fixture::healthy(3).want(5).learner(3, Unstarted),
        )
        .action(Action::SetStatefulSetReplicas { replicas: 4 })
        .phase(Phase::Scaling)
        .reason(Progressing, Reason::ScalingUp),
        case("3->5 step 3: the learner's pod is being created", {
            Fixture::healthy(3)
                .want(5)
                .learner(3, Unstarted)
                .statefulset_replicas(4)
        })
        .action(wait(WaitReason::MemberNotStarted { pod: pod(3) }))
        .reason(Progressing, Reason::AddingMember),
        case("3->5 step 3': the learner's pod is up and picks the membership up", {
            Fixture::healthy(3)
                .want(5)
                .learner(3, Unstarted)
                .statefulset_replicas(4)
                .volume_lost(3)
        })
        .action(wait(WaitReason::MemberNotStarted { pod: pod(3) })),
        case("3->5 step 4: the learner is catching up", {
            Fixture::healthy(3)
                .want(5)
                .learner(3, Started(3_000))
                .statefulset_replicas(4)
        })
        .action(wait(WaitReason::LearnerCatchingUp {
            pod: pod(3),
            applied_index: 3_000,
            leader_applied_index: APPLIED,
        }))
        .phase(Phase::Scaling)
        .reason(Progressing, Reason::AddingMember),
        case("a learner that never catches up keeps waiting and is never promoted", {
            Fixture::healthy(3)
                .want(5)
                .learner(3, Started(7))
                .statefulset_replicas(4)
        })
        .action(wait(WaitReason::LearnerCatchingUp {
            pod: pod(3),
            applied_index: 7,
            leader_applied_index: APPLIED,
        }))
        .message(Progressing, "learner kvc-3 is catching up (applied 7 of 5000")
        .message(Progressing, "promotion waits"),
        case("a started learner whose pod stopped answering: wait", {
            Fixture::healthy(3)
                .want(5)
                .learner(3, Started(APPLIED))
                .statefulset_replicas(4)
                .down(3)
        })
        .action(wait(WaitReason::LearnerUnreachable { pod: pod(3) })),
        case("3->5 step 5: the caught-up learner is promoted", {
            Fixture::healthy(3)
                .want(5)
                .learner(3, Started(APPLIED - 1_000))
                .statefulset_replicas(4)
        })
        .action(Action::PromoteLearner { id: new_id(3) })
        .reason(Progressing, Reason::AddingMember),
        case("3->5 step 6: add a learner for ordinal 4", {
            Fixture::healthy(3)
                .want(5)
                .learner(3, Started(APPLIED))
                .promoted(3)
                .statefulset_replicas(4)
        })
        .action(add_learner(4))
        .phase(Phase::Scaling),
        case(
            "scale-up paused while a member is unhealthy",
            Fixture::healthy(4).want(5).down(1),
        )
        .action(wait(WaitReason::MembersUnhealthy {
            paused: "scale-up",
            pods: vec![pod(1)],
        }))
        .phase(Phase::Degraded)
        .reason(Progressing, Reason::WaitingForHealthyMembers)
        .reason(Degraded, Reason::MembersUnhealthy)
        .message(Progressing, "scale-up paused until kvc-1"),
        case(
            "a caught-up learner is promoted even with another voter down (tolerance never drops)",
            Fixture::healthy(3)
                .want(5)
                .learner(3, Started(APPLIED))
                .statefulset_replicas(4)
                .down(1),
        )
        .action(Action::PromoteLearner { id: new_id(3) }),
        case(
            "growing over an ordinal with a retained volume: delete the stale claim first",
            Fixture::healthy(3).want(5).pvc(3),
        )
        .action(Action::DeletePvc { ordinal: 3 })
        .reason(Progressing, Reason::ScalingUp),
        case("scale-up cancelled: the learner above spec.replicas is removed", {
            Fixture::healthy(3).learner(3, Unstarted)
        })
        .action(Action::MemberRemove { id: new_id(3) })
        .reason(Progressing, Reason::ScalingDown),
        case(
            "scale-up cancelled after the StatefulSet grew: learner removed first",
            Fixture::healthy(3).learner(3, Started(APPLIED)).statefulset_replicas(4),
        )
        .action(Action::MemberRemove { id: new_id(3) }),
        case("1->3: add a learner for ordinal 1", Fixture::healthy(1).want(3)).action(add_learner(1)),
        case("5 reached: idle", Fixture::healthy(5))
            .action(Action::Idle)
            .phase(Phase::Running),
    ]);
}

#[test]
fn scale_down_table() {
    let five_to_three = || Fixture::healthy(5).want(3);
    run(vec![
        case("5->3 step 1: remove the highest member", five_to_three())
            .action(Action::MemberRemove { id: id(4) })
            .phase(Phase::Scaling)
            .reason(Progressing, Reason::ScalingDown),
        case(
            "5->3 step 1 when the highest member leads: transfer leadership first",
            five_to_three().leader(4),
        )
        .action(Action::TransferLeadership { from: id(4), to: id(0) })
        .reason(Progressing, Reason::ScalingDown),
        case("leadership goes to the most advanced staying voter", {
            five_to_three()
                .leader(4)
                .applied(0, APPLIED - 10)
                .applied(2, APPLIED - 10)
                .applied(3, APPLIED + 1)
        })
        .action(Action::TransferLeadership { from: id(4), to: id(1) }),
        case(
            "5->3 step 2 (also: operator restarted between MemberRemove and the StatefulSet change)",
            five_to_three().without_member(4),
        )
        .action(Action::SetStatefulSetReplicas { replicas: 4 })
        .reason(Progressing, Reason::ScalingDown),
        case("5->3 step 3: wait for the removed member's pod to terminate", {
            five_to_three().without_member(4).statefulset_replicas(4).terminating(4)
        })
        .action(wait(WaitReason::PodTerminating { pod: pod(4) })),
        case("5->3 step 4, pvcRetention Delete: delete the removed member's claim", {
            five_to_three()
                .without_member(4)
                .statefulset_replicas(4)
                .no_pod(4)
                .retention(PvcRetention::Delete)
        })
        .action(Action::DeletePvc { ordinal: 4 })
        .reason(Progressing, Reason::ScalingDown),
        case(
            "5->3 step 5, pvcRetention Delete: claim gone, remove the next member",
            {
                let f = five_to_three()
                    .without_member(4)
                    .statefulset_replicas(4)
                    .no_pod(4)
                    .no_pvc(4);
                f.retention(PvcRetention::Delete)
            },
        )
        .action(Action::MemberRemove { id: id(3) }),
        case(
            "5->3 step 4, pvcRetention Retain: keep the claim, remove the next member",
            five_to_three().without_member(4).statefulset_replicas(4).no_pod(4),
        )
        .action(Action::MemberRemove { id: id(3) }),
        case("5->3 last step: shrink the StatefulSet to 3", {
            five_to_three()
                .without_member(4)
                .without_member(3)
                .statefulset_replicas(4)
                .no_pod(4)
        })
        .action(Action::SetStatefulSetReplicas { replicas: 3 }),
        case(
            "5->3 done with Retain: the claims of ordinals 3 and 4 stay, idle",
            Fixture::healthy(3).pvc(3).pvc(4),
        )
        .action(Action::Idle)
        .phase(Phase::Running),
        case("5->3 done with Delete: leftover claims are deleted, highest first", {
            Fixture::healthy(3).pvc(3).pvc(4).retention(PvcRetention::Delete)
        })
        .action(Action::DeletePvc { ordinal: 4 }),
        case(
            "scale-down paused while another member is unhealthy",
            five_to_three().down(1),
        )
        .action(wait(WaitReason::MembersUnhealthy {
            paused: "scale-down",
            pods: vec![pod(1)],
        }))
        .phase(Phase::Degraded)
        .reason(Progressing, Reason::WaitingForHealthyMembers),
        case(
            "scale-down removes the highest member even if it is the unhealthy one",
            five_to_three().down(4),
        )
        .action(Action::MemberRemove { id: id(4) }),
        case("3->1: remove ordinal 2, then 1", Fixture::healthy(3).want(1)).action(Action::MemberRemove { id: id(2) }),
    ]);
}
