//! The status half of a decision: member list, recorded cluster ID, condition timestamps.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use super::*;
use crate::crd::{MemberRole, MemberStatus};

fn time(seconds: i64) -> Time {
    Time(Timestamp::from_second(seconds).expect("valid timestamp"))
}

#[test]
fn member_list_roles_ids_and_counts() {
    let observed = Fixture::healthy(3)
        .want(5)
        .leader(1)
        .down(2)
        .learner(3, Learner::Started(42))
        .build();
    let status = decide(&observed).status;
    let member = |name: &str, id: &str, role, healthy, applied_index| MemberStatus {
        name: name.into(),
        id: id.into(),
        role,
        healthy,
        applied_index,
    };
    assert_eq!(
        status.members,
        vec![
            member("kvc-0", "00000000000000a0", MemberRole::Follower, true, Some(5_000)),
            member("kvc-1", "00000000000000a1", MemberRole::Leader, true, Some(5_000)),
            member("kvc-2", "00000000000000a2", MemberRole::Follower, false, None),
            member("kvc-3", "00000000000000b3", MemberRole::Learner, true, Some(42)),
        ]
    );
    assert_eq!(status.leader.as_deref(), Some("kvc-1"));
    assert_eq!(status.voters, 3);
    assert_eq!(status.ready_replicas, 3);
    assert_eq!(status.endpoint, "https://kvc.prod.svc:2379");
    assert_eq!(
        status.selector,
        "app.kubernetes.io/instance=kvc,app.kubernetes.io/name=kvorum"
    );
    assert_eq!(status.observed_generation, Some(1));
}

#[test]
fn cluster_id_is_recorded_once_every_initial_member_is_healthy() {
    let forming = decide(&Fixture::healthy(3).bootstrapping().down(2).build()).status;
    assert_eq!(forming.cluster_id, None, "not while a member is still starting");
    let formed = decide(&Fixture::healthy(3).bootstrapping().build()).status;
    assert_eq!(formed.cluster_id, Some(CLUSTER_ID));
    let later = decide(&Fixture::healthy(3).down(2).build()).status;
    assert_eq!(later.cluster_id, Some(CLUSTER_ID), "once recorded, kept");
}

#[test]
fn conditions_keep_their_transition_time_until_their_status_changes() {
    let healthy = decide(&Fixture::healthy(3).build()).status;
    let first = healthy.clone().into_status(None, &time(100));
    assert!(first.conditions.iter().all(|c| c.last_transition_time == time(100)));
    assert_eq!(first.phase, Some(Phase::Running));
    assert_eq!(first.replicas, 3);
    assert_eq!(first.cluster_id.as_deref(), Some("000000000000c1c1"));

    // Unchanged statuses keep the old time.
    let again = healthy.into_status(Some(&first), &time(200));
    assert!(again.conditions.iter().all(|c| c.last_transition_time == time(100)));

    // A member goes down: only Degraded flips (Progressing stays False: nothing to change).
    let degraded = decide(&Fixture::healthy(3).down(2).build())
        .status
        .into_status(Some(&again), &time(300));
    let at = |type_: &str| {
        let c = degraded
            .conditions
            .iter()
            .find(|c| c.type_ == type_)
            .expect("condition present");
        (c.status.as_str(), c.last_transition_time.clone())
    };
    assert_eq!(at("Degraded"), ("True", time(300)));
    assert_eq!(at("Available"), ("True", time(100)));
    assert_eq!(at("QuorumAvailable"), ("True", time(100)));
    assert_eq!(at("Progressing"), ("False", time(100)));
    assert!(degraded.conditions.iter().all(|c| c.observed_generation == Some(1)));
}

#[test]
fn every_decision_reports_the_four_conditions_in_order() {
    let situations = [
        Fixture::new_cluster(3),
        Fixture::healthy(3).unreachable(),
        Fixture::healthy(3).bootstrapping().unreachable(),
        Fixture::healthy(3),
        Fixture::healthy(3).down(1).down(2),
    ];
    for fixture in situations {
        let status = decide(&fixture.build()).status;
        let types: Vec<_> = status.conditions.iter().map(|c| c.type_).collect();
        use ConditionType::*;
        assert_eq!(types, [Available, Progressing, Degraded, QuorumAvailable]);
        assert!(status.conditions.iter().all(|c| !c.message.is_empty()));
    }
}

#[test]
fn member_ids_round_trip_through_their_text_form() {
    use crate::decide::{format_member_id, parse_member_id};
    for id in [0, 1, 0xc1c1, u64::MAX] {
        assert_eq!(parse_member_id(&format_member_id(id)), Some(id));
    }
    for text in ["", "xyz", "+1", "00000000000000000", " 1"] {
        assert_eq!(parse_member_id(text), None, "{text:?}");
    }
}
