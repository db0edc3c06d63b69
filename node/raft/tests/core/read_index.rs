//! Linearizable reads with ReadIndex (thesis §6.4).

use bytes::Bytes;
use kvorum_raft::{ConfChange, MessageBody, ReadState, Role};

use crate::helpers::*;

fn no_pre_vote(cfg: &mut kvorum_raft::Config) {
    cfg.pre_vote = false;
}

fn heartbeats(msgs: &[kvorum_raft::Message]) -> Vec<kvorum_raft::Message> {
    of_kind(msgs, "Heartbeat").into_iter().cloned().collect()
}

/// Steps every message into its recipient and returns what the recipients answer.
fn exchange(c: &mut Cluster, msgs: Vec<kvorum_raft::Message>) -> Vec<kvorum_raft::Message> {
    let mut to: Vec<u64> = msgs.iter().map(|m| m.to).collect();
    to.dedup();
    for m in msgs {
        let id = m.to;
        c.n(id).step(m);
    }
    to.into_iter().flat_map(|id| take(c.n(id)).messages).collect()
}

/// §6.4 step 1: "If the leader has not yet marked an entry from its current term committed, it
/// waits until it has done so" (tikv#6340): no confirmation round starts until the no-op
/// commits; then one round, and the read is served at the new commit index.
#[test]
fn a_new_leader_defers_reads_until_it_commits_an_entry_of_its_term() {
    let mut n = fresh(1, &[1, 2, 3], no_pre_vote);
    n.campaign_now();
    take(&mut n);
    n.step(vote_resp(2, 1, 1, false, true));
    n.read_index(7);
    let ready = take(&mut n);
    assert!(ready.read_states.is_empty());
    let kinds: Vec<_> = ready.messages.iter().map(|m| (m.to, m.kind())).collect();
    assert_eq!(kinds, vec![(2, "App"), (3, "App")], "no read round yet");

    n.step(append_resp(2, 1, 1, 2, None));
    assert_eq!(n.log().committed(), 2);
    let ready = take(&mut n);
    assert!(ready.read_states.is_empty(), "committed, but not yet confirmed");
    assert_eq!(
        heartbeats(&ready.messages),
        vec![heartbeat(1, 2, 1, 2, 1), heartbeat(1, 3, 1, 0, 1)]
    );
    n.step(heartbeat_resp(2, 1, 1, 1));
    assert_eq!(take(&mut n).read_states, vec![ReadState { id: 7, index: 2 }]);
}

/// §6.4 ("the leader can amortize … by batching many read-only queries"): reads arriving
/// between two Readies share one heartbeat round; one ack from a majority serves them all.
#[test]
fn reads_between_two_readies_share_one_heartbeat_round() {
    let mut c = Cluster::new(3, |_| {});
    c.elect(1);
    for id in 1..=10 {
        c.n(1).read_index(id);
    }
    let ready = take(c.n(1));
    assert!(ready.read_states.is_empty());
    assert_eq!(ready.messages, vec![heartbeat(1, 2, 1, 2, 1), heartbeat(1, 3, 1, 2, 1)]);
    c.deliver(ready.messages);
    let sent = c.pump();
    assert!(heartbeats(&sent).is_empty(), "no further round: {sent:?}");
    let served: Vec<_> = (1..=10).map(|id| (1, ReadState { id, index: 2 })).collect();
    assert_eq!(c.reads, served);
}

/// tikv#7971: a read that arrives after a round started must not be confirmed by that round's
/// acks (they may predate it). Its index is the commit at its arrival (3, not the 2 of the
/// earlier read), and it is served only after a later round.
#[test]
fn a_read_arriving_after_a_round_started_needs_a_later_round() {
    let mut c = Cluster::new(3, |_| {});
    c.elect(1);
    c.n(1).read_index(1);
    let round1 = take(c.n(1)).messages;
    assert_eq!(round1, vec![heartbeat(1, 2, 1, 2, 1), heartbeat(1, 3, 1, 2, 1)]);

    c.n(1).propose(Bytes::from_static(b"x")).expect("leader");
    let appends = take(c.n(1)).messages;
    let acks = exchange(&mut c, appends);
    for m in acks {
        c.n(1).step(m);
    }
    assert_eq!(c.n(1).log().committed(), 3);
    c.n(1).read_index(2);

    // Round 1's acknowledgements arrive only now.
    let round1_acks = exchange(&mut c, round1);
    assert!(
        round1_acks
            .iter()
            .all(|m| m.body == MessageBody::HeartbeatResponse { read_round: 1 })
    );
    for m in round1_acks {
        c.n(1).step(m);
    }
    let ready = take(c.n(1));
    assert_eq!(
        ready.read_states,
        vec![ReadState { id: 1, index: 2 }],
        "read 2 is not confirmed"
    );
    let round2 = heartbeats(&ready.messages);
    assert_eq!(round2, vec![heartbeat(1, 2, 1, 3, 2), heartbeat(1, 3, 1, 3, 2)]);

    let round2_acks = exchange(&mut c, round2);
    c.n(1).step(round2_acks[0].clone());
    assert_eq!(take(c.n(1)).read_states, vec![ReadState { id: 2, index: 3 }]);
}

/// §6.4 ("followers … request the current readIndex from the leader"): the follower sends
/// ReadIndex, the leader confirms a round and answers with its commit index, and the follower
/// reports the read as ready at that index.
#[test]
fn a_follower_obtains_the_read_index_from_the_leader() {
    let mut c = Cluster::new(3, |_| {});
    c.elect(1);
    c.n(2).read_index(42);
    let ready = take(c.n(2));
    assert_eq!(ready.messages, vec![msg(2, 1, 1, MessageBody::ReadIndex { id: 42 })]);
    c.deliver(ready.messages);
    let sent = c.pump();
    let answers: Vec<_> = of_kind(&sent, "ReadIndexResp").into_iter().cloned().collect();
    let answer = MessageBody::ReadIndexResponse { id: 42, index: Some(2) };
    assert_eq!(answers, vec![msg(1, 2, 1, answer)]);
    assert_eq!(c.reads, vec![(2, ReadState { id: 42, index: 2 })]);
}

/// §6.4 step 3 counts voters only: a learner's heartbeat acknowledgement confirms nothing.
#[test]
fn a_learners_acknowledgement_does_not_confirm_a_read() {
    let mut c = Cluster::new(3, |_| {});
    c.elect(1);
    c.add(joining(4));
    c.n(1)
        .propose_conf_change(ConfChange::AddLearner(4))
        .expect("add learner");
    c.pump();
    c.n(1).read_index(1);
    let round = heartbeats(&take(c.n(1)).messages);
    assert_eq!(round.iter().map(|m| m.to).collect::<Vec<_>>(), vec![2, 3, 4]);
    c.n(1).step(heartbeat_resp(4, 1, 1, 1));
    assert!(!c.n(1).has_ready(), "a learner is not part of any quorum");
    c.n(1).step(heartbeat_resp(2, 1, 1, 1));
    assert_eq!(take(c.n(1)).read_states, vec![ReadState { id: 1, index: 3 }]);
}

/// A follower that knows no leader drops the read at once; a non-leader asked for a read index
/// answers "none", and the asking follower reports the read as dropped.
#[test]
fn reads_without_a_leader_are_dropped() {
    let mut lone = fresh(2, &[1, 2, 3], |_| {});
    lone.read_index(5);
    let ready = take(&mut lone);
    assert_eq!((ready.dropped_reads, ready.messages), (vec![5], vec![]));

    let mut not_leader = fresh(3, &[1, 2, 3], |_| {});
    not_leader.step(msg(2, 3, 0, MessageBody::ReadIndex { id: 9 }));
    let answer = MessageBody::ReadIndexResponse { id: 9, index: None };
    assert_eq!(take(&mut not_leader).messages, vec![msg(3, 2, 0, answer.clone())]);
    lone.step(msg(3, 2, 0, answer));
    assert_eq!(take(&mut lone).dropped_reads, vec![9]);
}

/// `Ready::dropped_reads` contract: a leader that steps down fails its pending local reads at
/// once — those confirming a round and those still waiting for the term's first commit — while
/// forwarded ones are left to time out at their follower.
#[test]
fn a_leader_that_steps_down_reports_its_pending_local_reads_as_dropped() {
    let mut c = Cluster::new(3, |_| {});
    c.elect(1);
    c.n(1).read_index(1);
    c.n(1).step(msg(2, 1, 1, MessageBody::ReadIndex { id: 2 }));
    take(c.n(1)); // the round's heartbeats are lost
    c.n(1).step(append(3, 1, 2, (2, 1), vec![], 2));
    assert_eq!((c.n(1).role(), c.n(1).leader()), (Role::Follower, Some(3)));
    let ready = take(c.n(1));
    assert_eq!(ready.dropped_reads, vec![1]);
    assert!(ready.read_states.is_empty());
    assert_eq!(ready.messages, vec![append_resp(1, 3, 2, 2, None)]);

    // A read held back for the term's first commit is dropped too.
    let mut n = fresh(1, &[1, 2, 3], no_pre_vote);
    n.campaign_now();
    take(&mut n);
    n.step(vote_resp(2, 1, 1, false, true));
    n.read_index(3);
    take(&mut n);
    n.step(heartbeat(2, 1, 2, 1, 0));
    assert_eq!(take(&mut n).dropped_reads, vec![3]);
}
