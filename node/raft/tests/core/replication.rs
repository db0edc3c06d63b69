//! Log replication (§5.3): the consistency check, fast backtracking, truncation of conflicting
//! suffixes, what followers may apply, and heartbeats.

use bytes::Bytes;
use kvorum_raft::{HardState, Role};

use crate::helpers::*;

fn no_pre_vote(cfg: &mut kvorum_raft::Config) {
    cfg.pre_vote = false;
}

/// §5.3 consistency check: "If the follower does not find an entry in its log with the same
/// index and term, then it refuses the new entries". The rejection names the failed
/// `prev_log_index` and hints the follower's last entry of a term ≤ the leader's `prev` term.
#[test]
fn the_consistency_check_rejects_a_mismatched_prev_entry() {
    // Follower: term 2, log [2@1, 3@1, 4@1].
    let follower = || restarted(2, &[1, 2, 3], (2, None, 1), ents(2, &[1, 1, 1]), |_| {});
    let mut n = follower();
    n.step(append(1, 2, 2, (4, 2), vec![ent(5, 2)], 4));
    let ready = take(&mut n);
    assert_eq!(ready.messages, vec![append_resp(2, 1, 2, 4, Some((4, 1)))]);
    assert!(ready.entries.is_empty(), "nothing appended");
    assert_eq!((n.log().last_index(), n.log().committed()), (4, 1));

    // prev beyond the follower's log: the hint is clamped to its last entry.
    let mut n = follower();
    n.step(append(1, 2, 2, (7, 2), vec![ent(8, 2)], 1));
    assert_eq!(take(&mut n).messages, vec![append_resp(2, 1, 2, 7, Some((4, 1)))]);

    // A matching prev is accepted: the entries are appended and acknowledged up to the last.
    let mut n = follower();
    n.step(append(1, 2, 2, (4, 1), ents(5, &[2, 2]), 4));
    let ready = take(&mut n);
    assert_eq!(ready.entries, ents(5, &[2, 2]));
    assert_eq!(ready.messages, vec![append_resp(2, 1, 2, 6, None)]);
}

/// §5.3 ("the follower can include the term of the conflicting entry and the first index it
/// stores for that term … one AppendEntries RPC will be required for each term with
/// conflicting entries"): a follower holding six uncommitted term-2 entries where the leader
/// has three term-4 entries is repaired in two AppendEntries, not one per entry.
#[test]
fn the_reject_hint_skips_a_whole_conflicting_term_in_one_round_trip() {
    // Leader: [2..4]@1, [5..7]@4; elected in term 5. Follower: [2..4]@1, [5..10]@2.
    let mut leader = restarted(1, &[1, 2, 3], (4, None, 4), ents(2, &[1, 1, 1, 4, 4, 4]), no_pre_vote);
    let mut follower = restarted(
        2,
        &[1, 2, 3],
        (2, None, 4),
        ents(2, &[1, 1, 1, 2, 2, 2, 2, 2, 2]),
        |_| {},
    );
    leader.campaign_now();
    take(&mut leader);
    leader.step(vote_resp(3, 1, 5, false, true));
    assert_eq!(leader.role(), Role::Leader);
    let ready = take(&mut leader);
    assert_eq!(ready.entries, vec![noop(8, 5)]);
    let first = to_node(&ready.messages, 2);
    assert_eq!(first, vec![append(1, 2, 5, (7, 4), vec![noop(8, 5)], 4)]);

    follower.step(first[0].clone());
    let reply = take(&mut follower);
    assert_eq!(reply.messages, vec![append_resp(2, 1, 5, 7, Some((7, 2)))]);

    leader.step(reply.messages[0].clone());
    let second = to_node(&take(&mut leader).messages, 2);
    let mut repair = ents(5, &[4, 4, 4]);
    repair.push(noop(8, 5));
    assert_eq!(
        second,
        vec![append(1, 2, 5, (4, 1), repair.clone(), 4)],
        "the leader skipped the follower's whole term 2 (and its own term 4) at once"
    );

    follower.step(second[0].clone());
    let reply = take(&mut follower);
    assert_eq!(reply.entries, repair, "appended from the conflict on");
    assert_eq!(reply.messages, vec![append_resp(2, 1, 5, 8, None)]);
    assert_eq!(follower.log().last_index(), 8, "entries 9 and 10 of term 2 are gone");
    assert_eq!(follower.log().entry(9), None);

    leader.step(reply.messages[0].clone());
    assert_eq!(leader.progress()[&2].match_index, 8);
    assert_eq!(leader.log().committed(), 8, "the follower's ack commits the no-op");
}

/// §5.3 / Figure 2 receiver rule 3: "If an existing entry conflicts with a new one (same index
/// but different terms), delete the existing entry and all that follow it"; rule 4 appends the
/// rest. The Ready hands storage exactly the entries from the conflict on.
#[test]
fn a_follower_truncates_its_conflicting_uncommitted_suffix() {
    // Follower: log [2@1, 3@1, 4@2, 5@2], commit 3.
    let mut n = restarted(2, &[1, 2, 3], (2, None, 3), ents(2, &[1, 1, 2, 2]), |_| {});
    n.step(append(1, 2, 3, (3, 1), vec![ent(4, 3)], 3));
    let ready = take(&mut n);
    assert_eq!(ready.entries, vec![ent(4, 3)]);
    assert_eq!(ready.messages, vec![append_resp(2, 1, 3, 4, None)]);
    assert_eq!(n.log().last_index(), 4, "entry 5@2 was deleted with 4@2");
    assert_eq!(n.log().term(4), Some(3));
}

/// Figure 2 receiver rule 3 only deletes on a conflict: a delayed, shorter append whose entries
/// all match truncates nothing and persists nothing.
#[test]
fn a_matching_stale_append_truncates_nothing() {
    let mut n = restarted(2, &[1, 2, 3], (2, None, 3), ents(2, &[1, 1, 2, 2]), |_| {});
    n.step(append(1, 2, 2, (2, 1), vec![ent(3, 1)], 3));
    let ready = take(&mut n);
    assert!(ready.entries.is_empty());
    assert_eq!(ready.messages, vec![append_resp(2, 1, 2, 3, None)]);
    assert_eq!(n.log().last_index(), 5);
}

/// §5.3: "Once the follower learns that a log entry is committed, it applies the entry": only
/// entries up to the leader's commit, and only after they are durable (persist before apply).
#[test]
fn entries_beyond_the_commit_index_are_never_applied() {
    let mut n = fresh(2, &[1, 2, 3], |_| {});
    n.step(append(1, 2, 1, (1, 0), ents(2, &[1, 1, 1]), 3));
    let ready = take(&mut n);
    assert_eq!(ready.entries, ents(2, &[1, 1, 1]));
    assert_eq!(
        ready.hard_state,
        Some(HardState {
            term: 1,
            vote: None,
            commit: 3
        })
    );
    assert!(ready.committed_entries.is_empty(), "not durable yet when handed out");
    let ready = take(&mut n);
    assert_eq!(ready.committed_entries, ents(2, &[1, 1]), "entry 4 is not committed");
    assert!(!n.has_ready());
    n.step(heartbeat(1, 2, 1, 4, 0));
    assert_eq!(take(&mut n).committed_entries, ents(4, &[1]));
}

/// Figure 2 receiver rule 5: "set commitIndex = min(leaderCommit, index of last new entry)", not
/// the follower's last index: its entries after `prev` may be ones the leader does not have.
#[test]
fn the_follower_commit_is_capped_by_the_last_entry_the_append_vouched_for() {
    // Follower: [2@1, 3@1, 4@1], commit 1. Leader of term 2 holds 2@1 but 3@2, 4@2.
    let mut n = restarted(2, &[1, 2, 3], (1, None, 1), ents(2, &[1, 1, 1]), |_| {});
    n.step(append(1, 2, 2, (2, 1), vec![], 4));
    let ready = take(&mut n);
    assert_eq!(ready.messages, vec![append_resp(2, 1, 2, 2, None)]);
    assert_eq!(n.log().committed(), 2);
    assert_eq!(ready.committed_entries, ents(2, &[1]));
}

/// §5.3 heartbeats: each carries `min(leader commit, follower's match index)`, so a lagging
/// follower never marks entries committed that it may not hold (or holds from another leader).
#[test]
fn heartbeats_carry_the_commit_index_capped_by_each_followers_match() {
    let mut c = Cluster::new(3, |_| {});
    c.elect(1);
    c.isolate(3);
    for i in 0..3u8 {
        c.n(1).propose(Bytes::from(vec![i])).expect("leader");
    }
    c.pump();
    assert_eq!(c.n(1).log().committed(), 5);
    assert_eq!(c.n(1).progress()[&3].match_index, 2);
    let ticks = c.n(1).config().heartbeat_interval_ticks;
    for _ in 0..ticks {
        c.n(1).tick();
    }
    let beats: Vec<_> = take(c.n(1))
        .messages
        .into_iter()
        .filter(|m| m.kind() == "Heartbeat")
        .collect();
    assert_eq!(beats, vec![heartbeat(1, 2, 1, 5, 0), heartbeat(1, 3, 1, 2, 0)]);
}

/// §5.2 heartbeats reach followers every heartbeat interval, not before.
#[test]
fn a_leader_sends_heartbeats_every_interval() {
    let mut c = Cluster::new(3, |_| {});
    c.elect(1);
    let ticks = c.n(1).config().heartbeat_interval_ticks;
    for _ in 0..ticks - 1 {
        c.n(1).tick();
    }
    assert!(!c.n(1).has_ready());
    c.n(1).tick();
    let ready = take(c.n(1));
    assert_eq!(ready.messages, vec![heartbeat(1, 2, 1, 2, 0), heartbeat(1, 3, 1, 2, 0)]);
}
