//! Rolling changes (image, resources, config): one pod at a time, unhealthy ones first, then
//! followers, the leader last after a leadership transfer; never while another member is
//! unhealthy or catching up.

use super::*;
use ConditionType::Progressing;

/// An `n`-member cluster whose spec moved to template "t2", already applied to the StatefulSet.
fn rolling(n: u32) -> Fixture {
    Fixture::healthy(n).desired_template("t2").statefulset_template("t2")
}

#[test]
fn rolling_update_table() {
    run(vec![
        case(
            "new template: apply it to the StatefulSet first",
            Fixture::healthy(3).desired_template("t2"),
        )
        .action(Action::CreateOrUpdateChildren {
            statefulset_replicas: 3,
        })
        .phase(Phase::Upgrading)
        .reason(Progressing, Reason::UpdatingChildren),
        case(
            "new template during a scale-up: applied first, so new pods start on it",
            {
                Fixture::healthy(3)
                    .want(5)
                    .learner(3, Learner::Unstarted)
                    .statefulset_replicas(4)
                    .desired_template("t2")
            },
        )
        .action(Action::CreateOrUpdateChildren {
            statefulset_replicas: 4,
        }),
        case("rolling: the highest follower first", rolling(3))
            .action(Action::DeletePod { ordinal: 2 })
            .phase(Phase::Upgrading)
            .reason(Progressing, Reason::RollingUpdate),
        case(
            "rolling: wait for the restarted pod to terminate",
            rolling(3).terminating(2),
        )
        .action(wait(WaitReason::PodTerminating { pod: pod(2) }))
        .reason(Progressing, Reason::RollingUpdate),
        case(
            "rolling: wait for the restarted pod to answer (normal pace, still progressing)",
            rolling(3).pod_template(&[2], "t2").down(2),
        )
        .action(wait(WaitReason::MembersUnhealthy {
            paused: "rolling update",
            pods: vec![pod(2)],
        }))
        .reason(Progressing, Reason::RollingUpdate),
        case(
            "rolling: wait for the restarted pod to catch up",
            rolling(3).pod_template(&[2], "t2").applied(2, 10),
        )
        .action(wait(WaitReason::MembersUnhealthy {
            paused: "rolling update",
            pods: vec![pod(2)],
        })),
        case("rolling: then the next follower", rolling(3).pod_template(&[2], "t2"))
            .action(Action::DeletePod { ordinal: 1 }),
        case(
            "rolling: the leader last, after moving leadership to an updated member",
            rolling(3).pod_template(&[1, 2], "t2"),
        )
        .action(Action::TransferLeadership { from: id(0), to: id(1) })
        .reason(Progressing, Reason::RollingUpdate),
        case("rolling: leadership goes to the most advanced updated member", {
            rolling(5)
                .pod_template(&[0, 1, 2, 3], "t2")
                .leader(4)
                .applied(2, APPLIED + 5)
        })
        .action(Action::TransferLeadership { from: id(4), to: id(2) }),
        case(
            "rolling: the former leader is restarted once it follows",
            rolling(3).pod_template(&[1, 2], "t2").leader(1),
        )
        .action(Action::DeletePod { ordinal: 0 }),
        case("rolling done: idle", rolling(3).pod_template(&[0, 1, 2], "t2"))
            .action(Action::Idle)
            .phase(Phase::Running),
        case(
            "rolling: an outdated pod that is down anyway is restarted first",
            rolling(3).down(1),
        )
        .action(Action::DeletePod { ordinal: 1 })
        .phase(Phase::Degraded),
        case(
            "rolling paused while another member is unhealthy",
            rolling(5).down(1).down(2),
        )
        .action(wait(WaitReason::MembersUnhealthy {
            paused: "rolling update",
            pods: vec![pod(2)],
        }))
        .phase(Phase::Degraded)
        .reason(Progressing, Reason::WaitingForHealthyMembers),
        case("rolling paused while a learner is in flight: membership first", {
            rolling(3)
                .want(5)
                .learner(3, Learner::Started(10))
                .statefulset_replicas(4)
                .pod_template(&[3], "t2")
        })
        .action(wait(WaitReason::LearnerCatchingUp {
            pod: pod(3),
            applied_index: 10,
            leader_applied_index: APPLIED,
        })),
        case(
            "fixing a bad image: the crashed pod on the bad template is restarted first",
            {
                Fixture::healthy(3)
                    .desired_template("t3")
                    .statefulset_template("t3")
                    .pod_template(&[2], "t2")
                    .down(2)
            },
        )
        .action(Action::DeletePod { ordinal: 2 }),
        case(
            "single member: restarted in place (no one to hand leadership to)",
            rolling(1),
        )
        .action(Action::DeletePod { ordinal: 0 }),
    ]);
}
