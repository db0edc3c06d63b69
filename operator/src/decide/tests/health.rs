//! Bootstrap, reachability and the health gate: when the operator must not change anything.

use super::*;
use ConditionType::{Available, Degraded, Progressing, QuorumAvailable};

#[test]
fn bootstrap_and_health_table() {
    run(vec![
        case(
            "new cluster: create the children with the full replicas",
            Fixture::new_cluster(3),
        )
        .action(Action::CreateOrUpdateChildren {
            statefulset_replicas: 3,
        })
        .phase(Phase::Pending)
        .reason(Progressing, Reason::CreatingChildren)
        .reason(Available, Reason::NotCreated),
        case(
            "bootstrap: pods starting, no member answers yet",
            Fixture::healthy(3).bootstrapping().unreachable(),
        )
        .action(wait(WaitReason::ClusterForming))
        .phase(Phase::Bootstrapping)
        .reason(Progressing, Reason::Bootstrapping)
        .reason(Degraded, Reason::Bootstrapping)
        .reason(QuorumAvailable, Reason::Bootstrapping),
        case(
            "bootstrap: one of three up, no quorum yet",
            Fixture::healthy(3).bootstrapping().down(1).down(2),
        )
        .action(wait(WaitReason::ClusterForming))
        .phase(Phase::Bootstrapping)
        .reason(Progressing, Reason::Bootstrapping),
        case(
            "bootstrap: two of three up, the third still starting",
            Fixture::healthy(3).bootstrapping().down(2),
        )
        .action(wait(WaitReason::ClusterForming))
        .phase(Phase::Bootstrapping)
        .reason(Degraded, Reason::Bootstrapping),
        case(
            "bootstrap complete: every member healthy",
            Fixture::healthy(3).bootstrapping(),
        )
        .action(Action::Idle)
        .phase(Phase::Running),
        case(
            "StatefulSet deleted, orphaned pods still serve: recreate it over every member",
            Fixture::healthy(3).no_statefulset().want(5),
        )
        .action(Action::CreateOrUpdateChildren {
            statefulset_replicas: 3,
        }),
        case(
            "StatefulSet and pods gone, volumes kept: recreate it over every volume",
            Fixture::healthy(3).no_statefulset().unreachable().want(5),
        )
        .action(Action::CreateOrUpdateChildren {
            statefulset_replicas: 3,
        }),
        case(
            "cluster unreachable after it formed: wait, change nothing",
            Fixture::healthy(3).unreachable(),
        )
        .action(wait(WaitReason::ClusterUnreachable))
        .phase(Phase::Degraded)
        .reason(Available, Reason::ClusterUnreachable)
        .reason(Degraded, Reason::ClusterUnreachable)
        .reason(QuorumAvailable, Reason::ClusterUnreachable)
        .reason(Progressing, Reason::ClusterUnreachable),
        case(
            "cluster ID differs from the recorded one: touch nothing",
            Fixture::healthy(3).cluster_id(0xdead).want(5),
        )
        .action(wait(WaitReason::ClusterIdMismatch {
            recorded: CLUSTER_ID,
            observed: 0xdead,
        }))
        .phase(Phase::Degraded)
        .reason(Degraded, Reason::ClusterIdMismatch)
        .reason(Available, Reason::ClusterIdMismatch),
        case(
            "quorum lost: one of three voters healthy",
            Fixture::healthy(3).down(1).down(2),
        )
        .action(wait(WaitReason::QuorumLost { healthy: 1, voters: 3 }))
        .phase(Phase::QuorumLost)
        .reason(QuorumAvailable, Reason::QuorumLost)
        .reason(Available, Reason::QuorumLost)
        .reason(Progressing, Reason::QuorumLost)
        .reason(Degraded, Reason::MembersUnhealthy)
        .message(Progressing, "1 of 3 voters healthy, 2 needed"),
        case(
            "quorum lost with a scale-up pending: no membership change",
            Fixture::healthy(3).want(5).down(1).down(2),
        )
        .action(wait(WaitReason::QuorumLost { healthy: 1, voters: 3 }))
        .phase(Phase::QuorumLost),
        case(
            "quorum lost with a lost volume: no repair either",
            Fixture::healthy(3).volume_lost(1).down(2),
        )
        .action(wait(WaitReason::QuorumLost { healthy: 1, voters: 3 }))
        .phase(Phase::QuorumLost),
        case("no leader elected", Fixture::healthy(3).no_leader())
            .action(wait(WaitReason::NoLeader))
            .reason(Available, Reason::NoLeader),
        case("the reported leader's pod does not answer", Fixture::healthy(3).down(0))
            .action(wait(WaitReason::NoLeader))
            .phase(Phase::Degraded)
            .reason(Degraded, Reason::MembersUnhealthy),
        case(
            "a member of unknown origin blocks every change",
            Fixture::healthy(3).want(5).unknown_member(0x99),
        )
        .action(wait(WaitReason::UnknownMembers { ids: vec![0x99] }))
        .phase(Phase::Degraded)
        .reason(Degraded, Reason::UnknownMembers),
        case("steady and healthy: idle", Fixture::healthy(3))
            .action(Action::Idle)
            .phase(Phase::Running)
            .reason(Available, Reason::QuorumAndLeader)
            .reason(Progressing, Reason::Idle)
            .reason(Degraded, Reason::AllMembersHealthy)
            .reason(QuorumAvailable, Reason::QuorumHealthy),
        case(
            "a follower is down (data intact): wait for it, never replace it",
            Fixture::healthy(3).down(2),
        )
        .action(wait(WaitReason::MembersRecovering { pods: vec![pod(2)] }))
        .phase(Phase::Degraded)
        .reason(Degraded, Reason::MembersUnhealthy)
        .reason(Available, Reason::QuorumAndLeader)
        .reason(Progressing, Reason::WaitingForHealthyMembers),
        case(
            "a pod rescheduled with its data answers as the same member: nothing to do",
            Fixture::healthy(3).no_pod(1).serving_as(1, id(1)).not_ready(1),
        )
        .action(Action::Idle)
        .phase(Phase::Running),
        case(
            "StatefulSet shrunk by hand below the members: restore the pods, even without quorum",
            Fixture::healthy(3).statefulset_replicas(1).no_pod(1).no_pod(2),
        )
        .action(Action::SetStatefulSetReplicas { replicas: 3 })
        .phase(Phase::QuorumLost)
        .reason(Progressing, Reason::StartingMembers),
        case(
            "no ready pod behind the client Service: not available",
            Fixture::healthy(1).not_ready(0),
        )
        .action(Action::Idle)
        .reason(Available, Reason::NoReadyEndpoints),
    ]);
}
