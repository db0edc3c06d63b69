//! Pod replacement: a pod that comes back with its data needs nothing; a pod whose volume was
//! lost never reuses its identity: the dead member is removed and the pod joins as a new
//! learner. Repairs proceed while other members are unhealthy, as long as a quorum holds.

use super::*;
use ConditionType::{Degraded, Progressing, QuorumAvailable};
use Learner::{Started, Unstarted};

#[test]
fn replacement_table() {
    let lost_two_of_five = || Fixture::healthy(5).volume_lost(3).volume_lost(4);
    run(vec![
        case(
            "volume lost on a follower: remove its dead identity",
            Fixture::healthy(3).volume_lost(2),
        )
        .action(Action::MemberRemove { id: id(2) })
        .phase(Phase::Degraded)
        .reason(Degraded, Reason::MemberDataLost)
        .reason(Progressing, Reason::ReplacingMember),
        case(
            "dead identity removed (also: operator restarted right after): add the waiting pod as a new learner",
            Fixture::healthy(3).volume_lost(2).without_member(2),
        )
        .action(add_learner(2))
        .phase(Phase::Degraded)
        .reason(Degraded, Reason::MemberDataLost)
        .reason(Progressing, Reason::ReplacingMember),
        case("replacement learner added, the pod has not joined yet: wait", {
            Fixture::healthy(3)
                .volume_lost(2)
                .without_member(2)
                .learner(2, Unstarted)
        })
        .action(wait(WaitReason::MemberNotStarted { pod: pod(2) }))
        .phase(Phase::Scaling)
        .reason(Progressing, Reason::AddingMember),
        case("replacement learner caught up: promote it", {
            Fixture::healthy(3).without_member(2).learner(2, Started(APPLIED))
        })
        .action(Action::PromoteLearner { id: new_id(2) }),
        case(
            "the leader's volume cannot be 'lost' while it leads: a stale leader ID waits",
            Fixture::healthy(3).volume_lost(0),
        )
        .action(wait(WaitReason::NoLeader)),
        case(
            "two volumes lost of five: remove the first dead identity",
            lost_two_of_five(),
        )
        .action(Action::MemberRemove { id: id(3) })
        .phase(Phase::Degraded)
        .reason(Degraded, Reason::MemberDataLost)
        .reason(QuorumAvailable, Reason::QuorumHealthy)
        .message(Degraded, "kvc-3, kvc-4 lost their data"),
        case(
            "two lost of five: then the second, before any replacement",
            lost_two_of_five().without_member(3),
        )
        .action(Action::MemberRemove { id: id(4) }),
        case(
            "two lost of five: then one replacement learner, lowest ordinal first",
            lost_two_of_five().without_member(3).without_member(4),
        )
        .action(add_learner(3))
        .reason(Degraded, Reason::MemberDataLost),
        case("two lost of five: one replacement at a time (no second learner)", {
            lost_two_of_five()
                .without_member(3)
                .without_member(4)
                .learner(3, Unstarted)
        })
        .action(wait(WaitReason::MemberNotStarted { pod: pod(3) })),
        case("two lost of five: the first replacement is promoted", {
            lost_two_of_five()
                .without_member(3)
                .without_member(4)
                .learner(3, Started(APPLIED))
        })
        .action(Action::PromoteLearner { id: new_id(3) }),
        case("two lost of five: then the second replacement", {
            lost_two_of_five()
                .without_member(3)
                .without_member(4)
                .learner(3, Started(APPLIED))
                .promoted(3)
        })
        .action(add_learner(4)),
        case("three volumes lost of five: quorum lost, no change", {
            Fixture::healthy(5).volume_lost(2).volume_lost(3).volume_lost(4)
        })
        .action(wait(WaitReason::QuorumLost { healthy: 2, voters: 5 }))
        .phase(Phase::QuorumLost)
        .reason(QuorumAvailable, Reason::QuorumLost),
        case(
            "volume lost while another member is down: the repair proceeds (quorum holds)",
            Fixture::healthy(5).volume_lost(4).down(1),
        )
        .action(Action::MemberRemove { id: id(4) })
        .phase(Phase::Degraded)
        .reason(Degraded, Reason::MemberDataLost)
        .message(Degraded, "kvc-1 not answering"),
        case("replacement learner added while another member is down", {
            Fixture::healthy(5).volume_lost(4).without_member(4).down(1)
        })
        .action(add_learner(4)),
        case("a started learner whose volume is lost again is removed too", {
            Fixture::healthy(3)
                .without_member(2)
                .learner(2, Started(APPLIED))
                .volume_lost(2)
        })
        .action(Action::MemberRemove { id: new_id(2) }),
        case(
            "member removed but its pod is not answering yet: wait for it to report",
            Fixture::healthy(3).without_member(2).down(2),
        )
        .action(wait(WaitReason::PodNotReporting { pod: pod(2) })),
        case(
            "a pod answers as an identity that is not in the cluster (stale data): wait, never wipe",
            Fixture::healthy(3).without_member(2).serving_as(2, 0x77),
        )
        .action(wait(WaitReason::StaleMemberData {
            pod: pod(2),
            serving: 0x77,
        }))
        .phase(Phase::Degraded)
        .reason(Degraded, Reason::StaleMemberData)
        .reason(Progressing, Reason::StaleMemberData),
        case(
            "a member's pod answers as another member: wait, report it",
            Fixture::healthy(3).serving_as(2, 0x77),
        )
        .action(wait(WaitReason::StaleMemberData {
            pod: pod(2),
            serving: 0x77,
        }))
        .reason(Degraded, Reason::StaleMemberData),
    ]);
}
