//! Each checker must be able to fail: feed it a history that violates its property (built from
//! independent single-node clusters, which legitimately disagree with each other) and expect
//! the violation to be reported.

use bytes::Bytes;
use kvorum_raft::{Config, Entry, EntryPayload, PersistedState, Raft, Role};
use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

use super::Checker;
use crate::node::SmState;

/// A single-node cluster whose node `id` leads the term after `term`, with `commands` committed.
fn lone_leader(id: u64, term: u64, commands: &[&'static str]) -> Raft {
    let mut state = PersistedState::bootstrap([id]);
    state.hard_state.term = term;
    let rng = Xoshiro256PlusPlus::seed_from_u64(id);
    let mut raft = Raft::new(Config::new(id), state, Box::new(rng)).expect("valid config");
    raft.campaign_now();
    for c in commands {
        pump(&mut raft);
        raft.propose(Bytes::from_static(c.as_bytes())).expect("leader accepts");
    }
    pump(&mut raft);
    assert_eq!(raft.role(), Role::Leader);
    raft
}

fn pump(raft: &mut Raft) {
    while raft.has_ready() {
        let ready = raft.ready();
        raft.advance(ready.ack());
    }
}

fn command(index: u64, term: u64, data: &'static str) -> Entry {
    Entry {
        index,
        term,
        payload: EntryPayload::Command(Bytes::from_static(data.as_bytes())),
    }
}

#[test]
#[should_panic(expected = "Election Safety")]
fn election_safety_catches_two_leaders_in_one_term() {
    let mut c = Checker::default();
    c.check_node(&lone_leader(1, 0, &[]), &SmState { applied: 1, chain: 0 });
    c.check_node(&lone_leader(2, 0, &[]), &SmState { applied: 1, chain: 0 });
}

#[test]
#[should_panic(expected = "Log Matching")]
fn log_matching_catches_different_entries_with_one_index_and_term() {
    let mut c = Checker::default();
    let a = lone_leader(1, 0, &["a"]);
    let b = lone_leader(2, 0, &["b"]);
    c.on_persisted_entries(&a, &[a.log().entry(3).expect("proposed").clone()]);
    c.on_persisted_entries(&b, &[b.log().entry(3).expect("proposed").clone()]);
}

#[test]
#[should_panic(expected = "Leader Completeness")]
fn leader_completeness_catches_a_leader_missing_a_committed_entry() {
    let mut c = Checker::default();
    let a = lone_leader(1, 0, &["a"]);
    c.completeness.observe_commit(&a);
    // Node 2 leads a later term without node 1's committed entry 3.
    c.completeness.check_new_leader(&lone_leader(2, 3, &[]));
}

#[test]
#[should_panic(expected = "Committed entries are immutable")]
fn committed_entries_must_keep_their_term() {
    let mut c = Checker::default();
    c.completeness.observe_commit(&lone_leader(1, 0, &[]));
    c.completeness.observe_commit(&lone_leader(2, 3, &[]));
}

#[test]
#[should_panic(expected = "State Machine Safety")]
fn state_machine_safety_catches_different_applies_at_one_index() {
    let mut c = Checker::default();
    let mut sm = SmState { applied: 1, chain: 0 };
    let first = command(2, 1, "a");
    sm.apply(&first);
    c.on_apply(1, &first, &sm);
    let mut other = SmState { applied: 1, chain: 0 };
    let second = command(2, 1, "b");
    other.apply(&second);
    c.on_apply(2, &second, &other);
}

#[test]
#[should_panic(expected = "snapshot installed")]
fn state_machine_safety_catches_a_wrong_snapshot() {
    let mut c = Checker::default();
    let mut sm = SmState { applied: 1, chain: 0 };
    let e = command(2, 1, "a");
    sm.apply(&e);
    c.on_apply(1, &e, &sm);
    c.on_snapshot_installed(
        2,
        &SmState {
            applied: 2,
            chain: sm.chain ^ 1,
        },
    );
}

#[test]
#[should_panic(expected = "term went back")]
fn monotonic_catches_a_term_regression() {
    let mut c = Checker::default();
    let sm = SmState { applied: 1, chain: 0 };
    c.monotonic.check(&lone_leader(1, 5, &[]), &sm);
    c.monotonic.check(&lone_leader(1, 0, &[]), &sm);
}

#[test]
#[should_panic(expected = "ReadIndex")]
fn read_index_catches_a_stale_read() {
    let mut c = Checker::default();
    c.reads.issue(1, 10);
    c.reads.on_ready(1, 9);
}

#[test]
#[should_panic(expected = "index order")]
fn index_order_catches_applied_beyond_commit() {
    let raft = lone_leader(1, 0, &[]);
    let commit = raft.log().committed();
    super::index_order::check(
        &raft,
        &SmState {
            applied: commit + 1,
            chain: 0,
        },
    );
}
