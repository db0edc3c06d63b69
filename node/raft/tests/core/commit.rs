//! The commit rule (§5.4.2, Figure 8) and the new leader's no-op (§8).

use bytes::Bytes;
use kvorum_raft::{ENTRY_OVERHEAD_BYTES, HardState, Role};

use crate::helpers::*;

/// §5.4.2 / Figure 8 (LogCabin#44): "Raft never commits log entries from previous terms by
/// counting replicas". The term-4 leader replicates its term-2 entry 3 to a majority; the commit
/// index does not move. Entry 3 commits only together with the term-4 no-op at index 4.
#[test]
fn an_older_term_entry_on_a_majority_commits_only_with_a_current_term_entry() {
    let tweak = |cfg: &mut kvorum_raft::Config| {
        cfg.pre_vote = false;
        cfg.max_append_bytes = 1; // one entry per AppendEntries, to stop between 3 and 4
    };
    // Node 1 led term 2 and appended 3@2; node 2 never got it. Both are in term 3 now.
    let mut n1 = restarted(1, &[1, 2, 3], (3, None, 2), ents(2, &[1, 2]), tweak);
    let mut n2 = restarted(2, &[1, 2, 3], (3, None, 2), ents(2, &[1]), tweak);
    n1.campaign_now();
    take(&mut n1);
    n1.step(vote_resp(2, 1, 4, false, true));
    assert_eq!((n1.role(), n1.term()), (Role::Leader, 4));
    let ready = take(&mut n1);
    assert_eq!(ready.entries, vec![noop(4, 4)], "§8: the term opens with a no-op");

    // Probe: node 2 lacks entry 3 and says so; the leader backs off to index 2.
    n2.step(to_node(&ready.messages, 2).remove(0));
    let reply = take(&mut n2).messages;
    assert_eq!(reply, vec![append_resp(2, 1, 4, 3, Some((2, 1)))]);
    n1.step(reply[0].clone());
    let sent = to_node(&take(&mut n1).messages, 2);
    assert_eq!(sent, vec![append(1, 2, 4, (2, 1), vec![ent(3, 2)], 2)]);

    // Entry 3@2 now sits on nodes 1 and 2, a majority of three.
    n2.step(sent[0].clone());
    let reply = take(&mut n2).messages;
    assert_eq!(reply, vec![append_resp(2, 1, 4, 3, None)]);
    n1.step(reply[0].clone());
    assert_eq!(n1.progress()[&2].match_index, 3);
    assert_eq!(
        n1.log().committed(),
        2,
        "a term-2 entry is not committed by counting replicas"
    );
    let ready = take(&mut n1);
    assert!(ready.committed_entries.is_empty());
    assert_eq!(ready.hard_state, None);
    let sent = to_node(&ready.messages, 2);
    assert_eq!(
        sent,
        vec![append(1, 2, 4, (3, 2), vec![noop(4, 4)], 2)],
        "commit still 2"
    );

    // The no-op of term 4 reaches the majority: 3 and 4 commit together.
    n2.step(sent[0].clone());
    let reply = take(&mut n2).messages;
    assert_eq!(reply, vec![append_resp(2, 1, 4, 4, None)]);
    n1.step(reply[0].clone());
    assert_eq!(n1.log().committed(), 4);
    let ready = take(&mut n1);
    assert_eq!(ready.committed_entries, vec![ent(3, 2), noop(4, 4)]);
    assert_eq!(
        ready.hard_state,
        Some(HardState {
            term: 4,
            vote: Some(1),
            commit: 4
        })
    );
}

/// §5.4.2 corollary / §8: a new leader appends a no-op of its term right away (counted in its
/// uncommitted bytes), and one follower's acknowledgement commits it.
#[test]
fn a_new_leader_appends_a_noop_at_the_start_of_its_term() {
    let mut n = fresh(1, &[1, 2, 3], |cfg| cfg.pre_vote = false);
    n.campaign_now();
    take(&mut n);
    n.step(vote_resp(2, 1, 1, false, true));
    assert_eq!(n.uncommitted_bytes(), ENTRY_OVERHEAD_BYTES);
    let ready = take(&mut n);
    assert_eq!(ready.entries, vec![noop(2, 1)]);
    assert_eq!(
        ready.messages,
        vec![
            append(1, 2, 1, (1, 0), vec![noop(2, 1)], 1),
            append(1, 3, 1, (1, 0), vec![noop(2, 1)], 1)
        ]
    );
    n.step(append_resp(3, 1, 1, 2, None));
    assert_eq!(n.log().committed(), 2);
    assert_eq!(n.uncommitted_bytes(), 0);
    assert_eq!(take(&mut n).committed_entries, vec![noop(2, 1)]);
}

/// §5.4.2 with a restarted leader: a leader that still holds entries of an older term commits
/// them through its no-op, even though every voter already holds them.
#[test]
fn entries_held_by_every_voter_wait_for_the_noop() {
    let tweak = |cfg: &mut kvorum_raft::Config| cfg.pre_vote = false;
    let mut n1 = restarted(1, &[1, 2], (1, None, 1), ents(2, &[1, 1]), tweak);
    n1.campaign_now();
    take(&mut n1);
    n1.step(vote_resp(2, 1, 2, false, true));
    let ready = take(&mut n1);
    assert_eq!(ready.messages, vec![append(1, 2, 2, (3, 1), vec![noop(4, 2)], 1)]);
    // Node 2 acknowledges only up to 3 (as if the no-op were still in flight).
    n1.step(append_resp(2, 1, 2, 3, None));
    assert_eq!(
        n1.log().committed(),
        1,
        "everyone holds 2 and 3, yet they are of term 1"
    );
    n1.step(append_resp(2, 1, 2, 4, None));
    assert_eq!(n1.log().committed(), 4);
}

/// §10.2.1 and the `ready` contract: the leader counts its own copy only once the driver
/// acknowledged persisting it; a single voter commits on `advance`, not on `propose`.
#[test]
fn the_leader_counts_its_own_entry_only_once_durable() {
    let mut c = Cluster::new(1, |_| {});
    c.elect(1);
    let n = c.n(1);
    let proposed = n.propose(Bytes::from_static(b"x")).expect("leader");
    assert_eq!((proposed.index, proposed.term), (3, 1));
    let ready = n.ready();
    assert_eq!(ready.entries, vec![cmd(3, 1, b"x")]);
    assert_eq!(n.log().committed(), 2, "handed out, not yet durable");
    n.advance(ready.ack());
    assert_eq!(n.log().committed(), 3);
    assert_eq!(take(n).committed_entries, vec![cmd(3, 1, b"x")]);
}
