//! Pre-vote (thesis §9.6), CheckQuorum (§6.2) and the leader lease against disruptive servers
//! (§4.2.3).

use kvorum_raft::{HardState, Role};

use crate::helpers::*;

/// §9.6: "a candidate only increments its term if it first learns from a majority of the
/// cluster that they would be willing to grant the candidate their votes": neither the
/// pre-candidate nor the voter changes term or vote (nothing to persist) until the pre-vote wins.
#[test]
fn pre_vote_changes_no_term_until_it_wins() {
    let mut n1 = fresh(1, &[1, 2, 3], |_| {});
    let mut n2 = fresh(2, &[1, 2, 3], |_| {});
    n1.campaign_now();
    let ready = take(&mut n1);
    assert_eq!((n1.role(), n1.term(), n1.vote()), (Role::PreCandidate, 0, None));
    assert_eq!(ready.hard_state, None);
    assert_eq!(ready.messages, vec![pre_vote(1, 2, 1, 1, 0), pre_vote(1, 3, 1, 1, 0)]);

    n2.step(ready.messages[0].clone());
    let reply = take(&mut n2);
    assert_eq!(reply.hard_state, None, "the voter persists nothing");
    assert_eq!(reply.messages, vec![vote_resp(2, 1, 1, true, true)]);
    assert_eq!((n2.term(), n2.vote(), n2.role()), (0, None, Role::Follower));

    n1.step(reply.messages[0].clone());
    assert_eq!(
        (n1.role(), n1.term()),
        (Role::Candidate, 1),
        "only the win moves the term"
    );
    let ready = take(&mut n1);
    assert_eq!(
        ready.hard_state,
        Some(HardState {
            term: 1,
            vote: Some(1),
            commit: 1
        })
    );
    assert_eq!(ready.messages, vec![vote(1, 2, 1, 1, 0), vote(1, 3, 1, 1, 0)]);
}

/// §9.6 motivation: a partitioned server that keeps timing out does not raise its term, so on
/// rejoining it does not depose the leader; the leader's heartbeat brings it back as follower.
#[test]
fn a_partitioned_node_does_not_raise_its_term() {
    let mut c = Cluster::new(3, |_| {});
    c.elect(1);
    c.isolate(3);
    let max = c.n(3).config().election_timeout_max_ticks;
    let sent = c.tick_pump(3, 10 * max);
    assert_eq!(c.n(3).term(), 1, "ten timeouts later, still term 1");
    let from3: Vec<_> = sent.iter().filter(|m| m.from == 3).collect();
    assert!(from3.len() >= 2 * 9, "it did campaign: {from3:?}");
    assert!(from3.iter().all(|m| m.term == 2 && m.kind() == "PreVote"), "{from3:?}");

    c.heal();
    c.heartbeat(1);
    assert_eq!((c.n(1).role(), c.n(1).term()), (Role::Leader, 1), "leader undisturbed");
    assert_eq!(
        (c.n(3).role(), c.n(3).term(), c.n(3).leader()),
        (Role::Follower, 1, Some(1))
    );
}

/// canonical/raft#279, openraft d6a6d562: a pre-candidate whose term is stale (e.g. restarted)
/// learns the current term from a voter's rejection and adopts it; its next pre-vote asks for
/// the term after that.
#[test]
fn a_pre_vote_rejection_from_a_higher_term_moves_the_pre_candidate_to_that_term() {
    let mut stale = fresh(1, &[1, 2, 3], |_| {});
    let mut voter = restarted(2, &[1, 2, 3], (5, None, 1), vec![], |_| {});
    stale.campaign_now();
    let ready = take(&mut stale);
    voter.step(ready.messages[0].clone());
    let reply = take(&mut voter);
    assert_eq!(
        reply.messages,
        vec![vote_resp(2, 1, 5, true, false)],
        "rejected in term 5"
    );
    assert_eq!(voter.term(), 5);

    stale.step(reply.messages[0].clone());
    assert_eq!((stale.role(), stale.term(), stale.vote()), (Role::Follower, 5, None));
    assert_eq!(
        take(&mut stale).hard_state,
        Some(HardState {
            term: 5,
            vote: None,
            commit: 1
        })
    );
    stale.campaign_now();
    assert_eq!(take(&mut stale).messages[0], pre_vote(1, 2, 6, 1, 0));
}

/// §9.6: a granted pre-vote carries the future term but moves nobody to it, not even the
/// pre-candidate that counts it (one grant of three is not a win).
#[test]
fn a_granted_pre_vote_from_a_higher_term_moves_no_one() {
    let mut n = fresh(1, &[1, 2, 3, 4, 5], |_| {});
    n.campaign_now();
    take(&mut n);
    n.step(vote_resp(2, 1, 1, true, true));
    assert_eq!((n.role(), n.term(), n.vote()), (Role::PreCandidate, 0, None));
    assert!(!n.has_ready());
}

/// §6.2: "a leader in Raft steps down if an election timeout elapses without a successful round
/// of heartbeats to a majority of its cluster". The election's replies count for the first
/// check; the second check, with no reply since, deposes it (same term, no leader known).
#[test]
fn check_quorum_leader_steps_down_without_a_quorum() {
    let mut c = Cluster::new(3, |_| {});
    c.elect(1);
    let min = c.n(1).config().election_timeout_min_ticks;
    c.isolate(2);
    c.isolate(3);
    c.tick_pump(1, 2 * min - 1);
    assert_eq!(
        c.n(1).role(),
        Role::Leader,
        "one check passed on the election's replies"
    );
    c.tick_pump(1, 1);
    assert_eq!(
        (c.n(1).role(), c.n(1).term(), c.n(1).leader()),
        (Role::Follower, 1, None)
    );

    // With its followers reachable a leader keeps leading indefinitely.
    let mut c = Cluster::new(3, |_| {});
    c.elect(1);
    c.tick_pump(1, 10 * min);
    assert_eq!(c.n(1).role(), Role::Leader);
}

/// §6.2: one reachable follower of two is a quorum of three; the leader stays.
#[test]
fn check_quorum_counts_the_leader_itself() {
    let mut c = Cluster::new(3, |_| {});
    c.elect(1);
    c.isolate(3);
    let min = c.n(1).config().election_timeout_min_ticks;
    c.tick_pump(1, 5 * min);
    assert_eq!(c.n(1).role(), Role::Leader);
}

/// §4.2.3: "if a server receives a RequestVote request within the minimum election timeout of
/// hearing from a current leader, it does not update its term or grant its vote": no reply, no
/// term change, for votes and pre-votes alike.
#[test]
fn a_follower_in_its_leader_lease_ignores_higher_term_vote_requests() {
    let mut c = Cluster::new(3, |_| {});
    c.elect(1);
    let n2 = c.n(2);
    n2.step(vote(3, 2, 2, 2, 1));
    n2.step(pre_vote(3, 2, 2, 2, 1));
    assert!(!n2.has_ready(), "no reply at all");
    assert_eq!((n2.term(), n2.vote(), n2.leader()), (1, Some(1), Some(1)));
}

/// §4.2.3: the lease does not bind a leadership-transfer campaign ("I have permission to
/// disrupt the leader"): the voter moves to the new term and grants, persisting the vote first.
#[test]
fn the_leader_lease_yields_to_a_transfer_campaign() {
    let mut c = Cluster::new(3, |_| {});
    c.elect(1);
    let n2 = c.n(2);
    n2.step(vote_req(3, 2, 2, 2, 1, false, true));
    let ready = take(n2);
    assert_eq!(
        ready.hard_state,
        Some(HardState {
            term: 2,
            vote: Some(3),
            commit: 2
        })
    );
    assert_eq!(ready.messages, vec![vote_resp(2, 3, 2, false, true)]);
}

/// §4.2.3: the lease lasts the minimum election timeout from the last contact; once it lapses
/// the vote request is answered (and granted to an up-to-date candidate).
#[test]
fn the_leader_lease_lapses_after_the_minimum_election_timeout() {
    let mut c = Cluster::new(3, |_| {});
    c.elect(1);
    let min = c.n(2).config().election_timeout_min_ticks;
    for _ in 0..min - 1 {
        c.n(2).tick();
    }
    c.n(2).step(vote(3, 2, 2, 2, 1));
    assert!(!c.n(2).has_ready(), "still within the lease");
    c.n(2).tick();
    c.n(2).step(vote(3, 2, 2, 2, 1));
    let ready = take(c.n(2));
    let replies: Vec<_> = of_kind(&ready.messages, "VoteResp").into_iter().cloned().collect();
    assert_eq!(replies, vec![vote_resp(2, 3, 2, false, true)]);
    assert_eq!((c.n(2).term(), c.n(2).vote()), (2, Some(3)));
}

/// §4.2.3 with CheckQuorum off (etcd's rule, see `in_leader_lease`): no lease, so a higher-term
/// vote is answered at once.
#[test]
fn without_check_quorum_there_is_no_lease() {
    let mut c = Cluster::new(3, |cfg| cfg.check_quorum = false);
    c.elect(1);
    c.n(2).step(vote(3, 2, 2, 2, 1));
    let ready = take(c.n(2));
    assert_eq!(ready.messages, vec![vote_resp(2, 3, 2, false, true)]);
}
