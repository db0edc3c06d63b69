//! Bad input — a useless configuration or a malformed or impossible peer message — is refused
//! with a reason and never crashes the node; errors say whether to retry and where to go.

use kvorum_raft::{
    Config, ConfigError, Entry, EntryPayload, MalformedMessage, MessageBody, PersistedState, Raft, RaftError, Role,
    SnapshotMeta,
};
use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::helpers::{Cluster, append, fresh, msg};

#[test]
fn invalid_configurations_are_refused_with_a_reason() {
    let mut cfg = Config::new(1);
    cfg.election_timeout_max_ticks = cfg.election_timeout_min_ticks;
    let err = Raft::new(
        cfg,
        PersistedState::bootstrap([1]),
        Box::new(Xoshiro256PlusPlus::seed_from_u64(0)),
    );
    assert_eq!(
        err.err(),
        Some(ConfigError::EmptyElectionRange {
            min_ticks: 15,
            max_ticks: 15
        })
    );
    assert_eq!(Config::new(0).validate(), Err(ConfigError::ZeroId));
    let mut cfg = Config::new(1);
    cfg.heartbeat_interval_ticks = 20;
    assert!(
        cfg.validate()
            .unwrap_err()
            .to_string()
            .contains("longer than the heartbeat interval")
    );
}

#[test]
fn malformed_peer_messages_are_refused_and_change_nothing() {
    let gap = append(
        1,
        2,
        1,
        (1, 0),
        vec![Entry {
            term: 1,
            index: 3,
            payload: EntryPayload::Noop,
        }],
        3,
    );
    assert_eq!(
        gap.validate(),
        Err(MalformedMessage::NotContiguous {
            prev_log_index: 1,
            found: 3,
            position: 0
        })
    );
    let future = append(
        1,
        2,
        1,
        (1, 0),
        vec![Entry {
            term: 9,
            index: 2,
            payload: EntryPayload::Noop,
        }],
        2,
    );
    assert!(matches!(
        future.validate(),
        Err(MalformedMessage::BadEntryTerm { entry_term: 9, .. })
    ));
    let no_voters = msg(
        1,
        2,
        1,
        MessageBody::InstallSnapshot {
            snapshot: SnapshotMeta {
                index: 5,
                term: 1,
                conf: Default::default(),
            },
        },
    );
    assert!(
        no_voters
            .validate()
            .unwrap_err()
            .to_string()
            .contains("not installable")
    );

    let mut follower = fresh(2, &[1, 2, 3], |_| {});
    for m in [gap, future, no_voters] {
        follower.step(m);
    }
    assert_eq!(
        (follower.term(), follower.log().last_index()),
        (0, 1),
        "nothing was taken from them"
    );
    assert!(!follower.has_ready());
}

/// An acknowledgement of entries the leader never appended, or a second "leader" of its own
/// term, comes only from a faulty peer: the leader ignores both and keeps leading.
#[test]
fn a_leader_ignores_impossible_messages_from_a_faulty_peer() {
    let mut c = Cluster::new(3, |_| {});
    c.elect(1);
    let (term, last) = (c.n(1).term(), c.n(1).log().last_index());
    c.n(1).step(msg(
        2,
        1,
        term,
        MessageBody::AppendEntriesResponse {
            index: last + 100,
            reject: None,
        },
    ));
    c.n(1).step(msg(
        3,
        1,
        term,
        MessageBody::Heartbeat {
            commit: 0,
            read_round: 0,
        },
    ));
    c.pump();
    assert_eq!(c.n(1).role(), Role::Leader);
    assert_eq!(c.n(1).log().committed(), last);
    assert_eq!(c.n(1).progress()[&2].match_index, last);
}

#[test]
fn errors_carry_retry_and_redirect_hints() {
    let e = RaftError::NotLeader { leader: Some(3) };
    assert_eq!(e.leader_hint(), Some(3));
    assert!(e.is_retryable());
    assert_eq!(e.to_string(), "not the leader; the leader is node 3");
    assert_eq!(
        RaftError::NotLeader { leader: None }.to_string(),
        "not the leader; no leader is known"
    );
    assert!(!RaftError::LastVoter { node: 1 }.is_retryable());
    assert!(!RaftError::AlreadyMember { node: 1 }.is_retryable());
}
