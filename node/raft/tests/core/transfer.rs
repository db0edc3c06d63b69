//! Leadership transfer (thesis §3.10).

use bytes::Bytes;
use kvorum_raft::{ConfChange, HardState, MessageBody, RaftError, Role};

use crate::helpers::*;

/// Leader 1 of voters 1..=3; node 3 missed entries 3..=5 (the leader has not noticed yet).
fn lagging_target() -> Cluster {
    let mut c = Cluster::new(3, |_| {});
    c.elect(1);
    c.isolate(3);
    for i in 0..3u8 {
        c.n(1).propose(Bytes::from(vec![i])).expect("leader");
    }
    c.pump();
    c.heal();
    c
}

/// §3.10 step 1–2: "the prior leader sends its log entries to the target server … [then] sends
/// a TimeoutNow request": no TimeoutNow while the target lags; the leader first replicates the
/// missing entries, and sends TimeoutNow exactly once, right after the target matches its log.
#[test]
fn a_lagging_target_is_caught_up_before_timeout_now() {
    let mut c = lagging_target();
    c.n(1).transfer_leader(3).expect("voter target");
    assert_eq!(c.n(1).transfer_target(), Some(3));
    let sent = c.pump();
    assert!(of_kind(&sent, "TimeoutNow").is_empty(), "node 3 lacks 3..=5: {sent:?}");

    let sent = c.heartbeat(1);
    let to3: Vec<_> = sent.iter().filter(|m| m.from == 1 && m.to == 3).collect();
    let catch_up = to3
        .iter()
        .position(|m| entries_of(m).last().is_some_and(|e| e.index == 5))
        .expect("the missing entries are sent");
    let timeout_now = to3.iter().position(|m| m.body == MessageBody::TimeoutNow);
    assert!(timeout_now > Some(catch_up), "TimeoutNow after the catch-up: {to3:?}");
    assert_eq!(of_kind(&sent, "TimeoutNow").len(), 1);
    assert_eq!((c.n(3).role(), c.n(3).term()), (Role::Leader, 2));
    assert_eq!((c.n(1).role(), c.n(1).leader()), (Role::Follower, Some(3)));
}

/// §3.10: a caught-up target is told TimeoutNow in the very Ready after `transfer_leader`.
#[test]
fn a_caught_up_target_gets_timeout_now_at_once() {
    let mut c = Cluster::new(3, |_| {});
    c.elect(1);
    c.n(1).transfer_leader(2).expect("voter target");
    assert_eq!(take(c.n(1)).messages, vec![msg(1, 2, 1, MessageBody::TimeoutNow)]);
}

/// §3.10 step 1: "the prior leader stops accepting new client requests" during the transfer:
/// proposals and membership changes are refused with TransferInProgress.
#[test]
fn proposals_are_refused_during_a_transfer() {
    let mut c = Cluster::new(3, |_| {});
    c.elect(1);
    c.isolate(3);
    c.n(1).transfer_leader(3).expect("voter target");
    let busy = RaftError::TransferInProgress { target: 3 };
    assert_eq!(c.n(1).propose(Bytes::from_static(b"x")), Err(busy.clone()));
    assert_eq!(c.n(1).propose_conf_change(ConfChange::AddLearner(4)), Err(busy));
    assert_eq!(c.n(1).log().last_index(), 2, "nothing appended");
}

/// §3.10: "If the transfer does not complete within an election timeout, the prior leader aborts
/// the transfer and resumes accepting client requests": still refused one tick before
/// `election_timeout_min_ticks`, accepted on that tick, with leadership kept.
#[test]
fn a_transfer_aborts_after_the_minimum_election_timeout() {
    let mut c = Cluster::new(3, |_| {});
    c.elect(1);
    c.isolate(3); // the target never answers
    c.n(1).transfer_leader(3).expect("voter target");
    let min = c.n(1).config().election_timeout_min_ticks;
    c.tick_pump(1, min - 1);
    assert_eq!(c.n(1).transfer_target(), Some(3));
    assert_eq!(
        c.n(1).propose(Bytes::from_static(b"x")),
        Err(RaftError::TransferInProgress { target: 3 })
    );
    c.tick_pump(1, 1);
    assert_eq!(c.n(1).transfer_target(), None);
    assert_eq!((c.n(1).role(), c.n(1).term()), (Role::Leader, 1));
    let accepted = c.n(1).propose(Bytes::from_static(b"x")).expect("accepted again");
    assert_eq!((accepted.index, accepted.term), (3, 1));
}

/// §3.10 step 2 and §4.2.3: TimeoutNow makes the target campaign at once in a new term,
/// skipping pre-vote (it must disrupt the leader), with `transfer` set so voters in their leader
/// lease still answer; its vote is persisted in the same Ready.
#[test]
fn timeout_now_starts_an_election_without_pre_vote_flagged_as_transfer() {
    let mut c = Cluster::new(3, |_| {});
    c.elect(1);
    assert!(c.n(2).config().pre_vote);
    c.n(2).step(msg(1, 2, 1, MessageBody::TimeoutNow));
    assert_eq!((c.n(2).role(), c.n(2).term()), (Role::Candidate, 2));
    let ready = take(c.n(2));
    assert_eq!(
        ready.hard_state,
        Some(HardState {
            term: 2,
            vote: Some(2),
            commit: 2
        })
    );
    assert_eq!(
        ready.messages,
        vec![
            vote_req(2, 1, 2, 2, 1, false, true),
            vote_req(2, 3, 2, 2, 1, false, true)
        ]
    );
    // Node 3 heard from leader 1 this very tick, yet grants.
    c.n(3).step(ready.messages[1].clone());
    assert_eq!(take(c.n(3)).messages, vec![vote_resp(3, 2, 2, false, true)]);
}

/// §3.10: only a voter can take over; transferring to oneself is a no-op; a follower is not
/// the one to ask.
#[test]
fn transfer_targets_must_be_other_voters_and_only_leaders_transfer() {
    let mut c = Cluster::new(3, |_| {});
    c.elect(1);
    assert_eq!(
        c.n(1).transfer_leader(9),
        Err(RaftError::TransferTargetNotVoter { node: 9 })
    );
    assert_eq!(c.n(1).transfer_leader(1), Ok(()));
    assert_eq!(c.n(1).transfer_target(), None);
    assert!(!c.n(1).has_ready());
    assert_eq!(c.n(2).transfer_leader(3), Err(RaftError::NotLeader { leader: Some(1) }));
}
