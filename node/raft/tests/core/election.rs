//! Leader election (§5.2) and the election restriction (§5.4.1).

use std::collections::BTreeSet;

use kvorum_raft::{HardState, MessageBody, Role};

use crate::helpers::*;

fn no_pre_vote(cfg: &mut kvorum_raft::Config) {
    cfg.pre_vote = false;
}

/// §5.2: "If a follower receives no communication over a period of time called the election
/// timeout, then it … begins an election": nothing happens one tick before the randomized
/// timeout; on that tick it becomes a candidate of term 1, votes for itself, persists that, and
/// asks every other voter for a vote with its last log position.
#[test]
fn follower_becomes_candidate_exactly_at_its_randomized_timeout() {
    let mut n = fresh(1, &[1, 2, 3], no_pre_vote);
    let timeout = n.randomized_election_timeout();
    for _ in 0..timeout - 1 {
        n.tick();
    }
    assert_eq!(n.role(), Role::Follower);
    assert!(!n.has_ready(), "no action before the timeout elapses");
    n.tick();
    assert_eq!((n.role(), n.term(), n.vote()), (Role::Candidate, 1, Some(1)));
    let ready = take(&mut n);
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

/// §9.6 with §5.2: with pre-vote on, the timeout makes the node a pre-candidate that asks for
/// term + 1 without taking it.
#[test]
fn follower_with_pre_vote_becomes_pre_candidate_at_its_timeout() {
    let mut n = fresh(1, &[1, 2, 3], |_| {});
    for _ in 0..n.randomized_election_timeout() {
        n.tick();
    }
    assert_eq!((n.role(), n.term(), n.vote()), (Role::PreCandidate, 0, None));
    let ready = take(&mut n);
    assert_eq!(ready.hard_state, None);
    assert_eq!(ready.messages, vec![pre_vote(1, 2, 1, 1, 0), pre_vote(1, 3, 1, 1, 0)]);
}

/// §5.2 / §9.3: election timeouts are drawn at random from [min, max): many seeds give several
/// different values, all inside the range, and the ticks a lone node actually waits between its
/// campaigns are redrawn each time, inside the range too.
#[test]
fn election_timeouts_are_randomized_within_min_max() {
    let tweak = |cfg: &mut kvorum_raft::Config| {
        cfg.election_timeout_min_ticks = 10;
        cfg.election_timeout_max_ticks = 20;
        cfg.pre_vote = false;
    };
    let drawn: Vec<u32> = (0..100)
        .map(|seed| seeded(1, &[1, 2, 3], seed, tweak).randomized_election_timeout())
        .collect();
    assert!(drawn.iter().all(|t| (10..20).contains(t)), "{drawn:?}");
    let distinct: BTreeSet<u32> = drawn.iter().copied().collect();
    assert!(distinct.len() >= 5, "only {distinct:?} drawn over 100 seeds");

    // One isolated node: measure the ticks between successive campaigns.
    let mut n = seeded(1, &[1, 2, 3], 7, tweak);
    let mut waits = Vec::new();
    let mut since = 0;
    while waits.len() < 40 {
        let term = n.term();
        n.tick();
        since += 1;
        if n.term() != term {
            waits.push(since);
            since = 0;
            take(&mut n);
        }
    }
    assert!(waits.iter().all(|t| (10..20).contains(t)), "{waits:?}");
    let distinct: BTreeSet<u32> = waits.iter().copied().collect();
    assert!(distinct.len() >= 3, "campaign intervals never vary: {waits:?}");
}

/// §5.2: "each server will vote for at most one candidate in a given term": node 3 grants
/// node 1, then refuses node 2 in the same term, and repeats its grant to node 1 (a retransmit).
#[test]
fn a_node_votes_for_at_most_one_candidate_per_term() {
    let mut n = fresh(3, &[1, 2, 3], no_pre_vote);
    n.step(vote(1, 3, 1, 1, 0));
    assert_eq!(take(&mut n).messages, vec![vote_resp(3, 1, 1, false, true)]);
    n.step(vote(2, 3, 1, 1, 0));
    let ready = take(&mut n);
    assert_eq!(ready.messages, vec![vote_resp(3, 2, 1, false, false)]);
    assert_eq!(ready.hard_state, None, "the vote is unchanged");
    assert_eq!((n.term(), n.vote()), (1, Some(1)));
    n.step(vote(1, 3, 1, 1, 0));
    assert_eq!(take(&mut n).messages, vec![vote_resp(3, 1, 1, false, true)]);
}

/// §5.2 / Figure 2 ("Persistent state … updated on stable storage before responding to RPCs"):
/// the vote is in the hard state of the very Ready whose messages carry the grant.
#[test]
fn the_vote_is_persisted_in_the_same_ready_as_the_grant() {
    let mut n = fresh(2, &[1, 2, 3], no_pre_vote);
    n.step(vote(3, 2, 4, 1, 0));
    let ready = take(&mut n);
    assert_eq!(
        ready.hard_state,
        Some(HardState {
            term: 4,
            vote: Some(3),
            commit: 1
        })
    );
    assert_eq!(ready.messages, vec![vote_resp(2, 3, 4, false, true)]);
}

/// §5.4.1: a voter denies its vote when its own log is more up-to-date: a higher last term wins
/// over length; with equal last terms the longer log wins. The refusal still moves the voter to
/// the candidate's term, with no vote.
#[test]
fn a_candidate_with_a_stale_log_is_refused() {
    // Voter: term 2, log [2@1, 3@2] (last entry index 3, term 2).
    let voter = || restarted(2, &[1, 2, 3], (2, None, 1), ents(2, &[1, 2]), no_pre_vote);
    let cases = [
        ((5, 1), false, "longer log with an older last term"),
        ((2, 2), false, "same last term, shorter log"),
        ((3, 2), true, "identical last entry"),
        ((4, 2), true, "same last term, longer log"),
        ((2, 3), true, "newer last term, shorter log"),
    ];
    for ((last_index, last_term), granted, why) in cases {
        let mut n = voter();
        n.step(vote(1, 2, 3, last_index, last_term));
        let ready = take(&mut n);
        assert_eq!(ready.messages, vec![vote_resp(2, 1, 3, false, granted)], "{why}");
        let expected_vote = granted.then_some(1);
        assert_eq!(
            ready.hard_state,
            Some(HardState {
                term: 3,
                vote: expected_vote,
                commit: 1
            }),
            "{why}"
        );
    }
    // The pre-vote applies the same restriction, without changing the voter's term.
    let mut n = voter();
    n.step(pre_vote(1, 2, 3, 5, 1));
    let ready = take(&mut n);
    assert_eq!(ready.messages, vec![vote_resp(2, 1, 2, true, false)]);
    assert_eq!((ready.hard_state, n.term()), (None, 2));
}

/// §5.2, third outcome: with no majority possible (split vote) the candidate gives up and
/// becomes a follower in the same term, keeping its own vote.
#[test]
fn a_candidate_rejected_by_a_majority_becomes_follower() {
    let mut n = fresh(1, &[1, 2, 3, 4, 5], no_pre_vote);
    n.campaign_now();
    take(&mut n);
    n.step(vote_resp(2, 1, 1, false, true));
    n.step(vote_resp(3, 1, 1, false, false));
    n.step(vote_resp(4, 1, 1, false, false));
    assert_eq!(n.role(), Role::Candidate, "2 yes, 2 no of 5: undecided");
    n.step(vote_resp(5, 1, 1, false, false));
    assert_eq!(
        (n.role(), n.term(), n.vote(), n.leader()),
        (Role::Follower, 1, Some(1), None)
    );
}

/// §5.2: "If election timeout elapses: start new election": a candidate with no answers
/// campaigns again in the next term after its (freshly drawn) timeout, and not a tick earlier.
#[test]
fn a_candidate_retries_in_a_new_term_after_its_timeout() {
    let mut n = fresh(1, &[1, 2, 3], no_pre_vote);
    n.campaign_now();
    assert_eq!(take(&mut n).messages, vec![vote(1, 2, 1, 1, 0), vote(1, 3, 1, 1, 0)]);
    let timeout = n.randomized_election_timeout();
    for _ in 0..timeout - 1 {
        n.tick();
    }
    assert!(!n.has_ready());
    n.tick();
    let ready = take(&mut n);
    assert_eq!((n.role(), n.term()), (Role::Candidate, 2));
    assert_eq!(
        ready.hard_state,
        Some(HardState {
            term: 2,
            vote: Some(1),
            commit: 1
        })
    );
    assert_eq!(ready.messages, vec![vote(1, 2, 2, 1, 0), vote(1, 3, 2, 1, 0)]);
}

/// §5.2: "If the leader's term … is at least as large as the candidate's current term, then the
/// candidate recognizes the leader as legitimate and returns to follower state."
#[test]
fn a_candidate_steps_down_for_a_leader_of_its_term() {
    let mut n = fresh(1, &[1, 2, 3], no_pre_vote);
    n.campaign_now();
    take(&mut n);
    n.step(append(2, 1, 1, (1, 0), vec![noop(2, 1)], 1));
    assert_eq!((n.role(), n.term(), n.leader()), (Role::Follower, 1, Some(2)));
    let ready = take(&mut n);
    assert_eq!(ready.entries, vec![noop(2, 1)]);
    assert_eq!(ready.messages, vec![append_resp(1, 2, 1, 2, None)]);
}

/// §5.2: a candidate that receives votes from a majority becomes leader and at once tells
/// every peer (its first AppendEntries carries the term's no-op, §8).
#[test]
fn a_candidate_with_a_majority_becomes_leader_and_announces_itself() {
    let mut n = fresh(1, &[1, 2, 3], no_pre_vote);
    n.campaign_now();
    take(&mut n);
    n.step(vote_resp(3, 1, 1, false, true));
    assert_eq!((n.role(), n.leader()), (Role::Leader, Some(1)));
    let ready = take(&mut n);
    let sent: Vec<_> = ready.messages.iter().map(|m| (m.to, m.kind())).collect();
    assert_eq!(sent, vec![(2, "App"), (3, "App")]);
    assert!(
        ready
            .messages
            .iter()
            .all(|m| matches!(&m.body, MessageBody::AppendEntries { entries, .. } if entries == &vec![noop(2, 1)]))
    );
}

/// Figure 2: `votedFor` is persistent state, so one vote per term holds across a restart: a
/// node restarted from the hard state it persisted refuses another candidate of that term.
#[test]
fn the_vote_survives_a_restart() {
    let mut n = fresh(3, &[1, 2, 3], no_pre_vote);
    n.step(vote(1, 3, 1, 1, 0));
    let persisted = take(&mut n).hard_state.expect("the vote is persisted");
    let mut n = restarted(
        3,
        &[1, 2, 3],
        (persisted.term, persisted.vote, persisted.commit),
        vec![],
        no_pre_vote,
    );
    n.step(vote(2, 3, 1, 1, 0));
    assert_eq!(take(&mut n).messages, vec![vote_resp(3, 2, 1, false, false)]);
}

/// Figure 2 ("Reply false if term < currentTerm"): a vote request from an older term is never
/// granted and changes nothing.
#[test]
fn a_vote_request_from_an_older_term_is_not_granted() {
    let mut n = restarted(3, &[1, 2, 3], (5, None, 1), vec![], no_pre_vote);
    n.step(vote(1, 3, 4, 1, 0));
    let ready = take(&mut n);
    assert!(!ready.messages.iter().any(|m| m.body
        == MessageBody::RequestVoteResponse {
            pre_vote: false,
            granted: true
        }));
    assert_eq!((n.term(), n.vote(), ready.hard_state), (5, None, None));
}
