//! Membership changes one server at a time, with learners (thesis §4.1–§4.2, the 2015 raft-dev
//! fix, and §4.2.2 for a removed leader).

use std::collections::BTreeSet;

use bytes::Bytes;
use kvorum_raft::{ConfChange, Proposed, RaftError, Role};

use crate::helpers::*;

fn set(ids: &[u64]) -> BTreeSet<u64> {
    ids.iter().copied().collect()
}

/// Voters 1..=3 led by 1, plus node 4 added as a learner and caught up.
fn with_learner(tweak: impl Fn(&mut kvorum_raft::Config) + Copy) -> Cluster {
    let mut c = Cluster::new(3, tweak);
    c.elect(1);
    c.add(joining(4));
    c.n(1)
        .propose_conf_change(ConfChange::AddLearner(4))
        .expect("add learner");
    c.pump();
    c
}

/// §4.1 / learners (§4.2.1 "non-voting members"): an added learner receives the log — its
/// configuration included — and applies committed entries like any follower.
#[test]
fn a_learner_receives_and_applies_the_log() {
    let mut c = with_learner(|_| {});
    c.n(1).propose(Bytes::from_static(b"x")).expect("leader");
    c.pump();
    c.heartbeat(1);
    let last = c.n(1).log().last_index();
    assert_eq!(last, 4);
    let n4 = c.n(4);
    assert_eq!((n4.log().last_index(), n4.log().committed()), (4, 4));
    assert_eq!(n4.conf().learners, set(&[4]));
    assert_eq!(n4.conf().voters, set(&[1, 2, 3]));
    assert_eq!(c.applied[&4].last(), Some(&cmd(4, 1, b"x")));
}

/// Learners "never campaign": cut off for ten maximum election timeouts, it sends nothing and
/// stays a follower of term 1; `campaign_now` and TimeoutNow do nothing either.
#[test]
fn a_learner_never_campaigns() {
    let mut c = with_learner(|_| {});
    c.isolate(4);
    let max = c.n(4).config().election_timeout_max_ticks;
    let sent = c.tick_pump(4, 10 * max);
    assert!(sent.iter().all(|m| m.from != 4), "{sent:?}");
    c.n(4).campaign_now();
    c.n(4).step(msg(1, 4, 1, kvorum_raft::MessageBody::TimeoutNow));
    assert!(!c.n(4).has_ready());
    assert_eq!((c.n(4).role(), c.n(4).term()), (Role::Follower, 1));
}

/// Learners' votes never count (§4.2.1): candidates do not ask them, and a grant from one
/// neither wins the pre-vote nor the election; the voter's grant does.
#[test]
fn a_learners_vote_never_counts() {
    let mut c = with_learner(|_| {});
    let (last_index, last_term) = (c.n(2).log().last_index(), c.n(2).log().last_term());
    let n2 = c.n(2);
    n2.campaign_now();
    let asked = take(n2).messages;
    assert_eq!(
        asked,
        vec![
            pre_vote(2, 1, 2, last_index, last_term),
            pre_vote(2, 3, 2, last_index, last_term)
        ]
    );
    n2.step(vote_resp(4, 2, 2, true, true));
    assert_eq!(n2.role(), Role::PreCandidate, "two of three only with the learner");
    n2.step(vote_resp(3, 2, 2, true, true));
    assert_eq!((n2.role(), n2.term()), (Role::Candidate, 2));
    let asked = take(n2).messages;
    assert_eq!(
        asked,
        vec![
            vote(2, 1, 2, last_index, last_term),
            vote(2, 3, 2, last_index, last_term)
        ]
    );
    n2.step(vote_resp(4, 2, 2, false, true));
    assert_eq!(n2.role(), Role::Candidate);
    n2.step(vote_resp(3, 2, 2, false, true));
    assert_eq!(n2.role(), Role::Leader);
}

/// A learner is promoted only once nearly caught up (else the new quorum would stall):
/// LearnerBehind while it lags more than `promotion_max_lag_entries`, accepted once it caught up.
#[test]
fn promotion_is_refused_while_the_learner_is_far_behind() {
    let mut c = Cluster::new(3, |cfg| cfg.promotion_max_lag_entries = 2);
    c.elect(1);
    c.add(joining(4));
    c.isolate(4);
    c.n(1).propose_conf_change(ConfChange::AddLearner(4)).expect("add");
    for i in 0..5u8 {
        c.n(1).propose(Bytes::from(vec![i])).expect("leader");
    }
    c.pump();
    assert_eq!(c.n(1).log().committed(), 8);
    assert_eq!(
        c.n(1).propose_conf_change(ConfChange::PromoteLearner(4)),
        Err(RaftError::LearnerBehind {
            node: 4,
            matched: 0,
            last_index: 8
        })
    );
    c.heal();
    for _ in 0..10 {
        if c.n(1).progress()[&4].match_index == 8 {
            break;
        }
        c.heartbeat(1);
    }
    assert_eq!(c.n(1).progress()[&4].match_index, 8);
    let promoted = c.n(1).propose_conf_change(ConfChange::PromoteLearner(4));
    assert_eq!(promoted, Ok(Proposed { index: 9, term: 1 }));
    c.pump();
    assert_eq!(c.n(4).conf().voters, set(&[1, 2, 3, 4]));
    assert!(c.n(4).conf().learners.is_empty());
}

/// §4.1 / etcd: only one change may be uncommitted; it takes effect when appended. Commands
/// are not held back, and the next change is accepted once the first commits.
#[test]
fn only_one_membership_change_may_be_in_flight() {
    let mut c = Cluster::new(3, |_| {});
    c.elect(1);
    let n1 = c.n(1);
    assert_eq!(
        n1.propose_conf_change(ConfChange::AddLearner(4)),
        Ok(Proposed { index: 3, term: 1 })
    );
    assert_eq!(n1.conf().learners, set(&[4]), "in force as soon as appended");
    let in_progress = Err(RaftError::ConfChangeInProgress { index: 3 });
    assert_eq!(n1.propose_conf_change(ConfChange::AddLearner(5)), in_progress);
    assert_eq!(n1.propose_conf_change(ConfChange::RemoveNode(3)), in_progress);
    assert!(n1.propose(Bytes::from_static(b"x")).is_ok());
    c.pump();
    assert_eq!(
        c.n(1).propose_conf_change(ConfChange::AddLearner(5)),
        Ok(Proposed { index: 5, term: 1 })
    );
}

/// Ongaro, raft-dev 2015 ("a leader may not append a new configuration entry until it has
/// committed an entry from its current term"): LeaderNotReady until the no-op commits.
#[test]
fn a_change_is_refused_before_the_leader_commits_an_entry_of_its_term() {
    let mut n = fresh(1, &[1, 2, 3], |cfg| cfg.pre_vote = false);
    n.campaign_now();
    take(&mut n);
    n.step(vote_resp(2, 1, 1, false, true));
    take(&mut n);
    let refused = n.propose_conf_change(ConfChange::AddLearner(4));
    assert_eq!(refused, Err(RaftError::LeaderNotReady));
    assert!(refused.unwrap_err().is_retryable());
    assert_eq!(n.log().last_index(), 2, "nothing appended");
    n.step(append_resp(2, 1, 1, 2, None));
    assert_eq!(n.log().committed(), 2);
    assert_eq!(
        n.propose_conf_change(ConfChange::AddLearner(4)),
        Ok(Proposed { index: 3, term: 1 })
    );
}

/// §4.2.2: a leader that removes itself keeps leading — without counting itself — until the
/// removal commits, then steps down and hands over (TimeoutNow) to a caught-up voter.
#[test]
fn a_removed_leader_steps_down_once_the_removal_commits() {
    let mut c = Cluster::new(3, |_| {});
    c.elect(1);
    c.isolate(3);
    c.n(1)
        .propose_conf_change(ConfChange::RemoveNode(1))
        .expect("remove self");
    assert_eq!(c.n(1).conf().voters, set(&[2, 3]));
    c.pump();
    assert_eq!(c.n(2).log().last_index(), 3);
    assert_eq!(c.n(1).role(), Role::Leader);
    assert_eq!(
        c.n(1).log().committed(),
        2,
        "1 and 2 hold it, but only 2 and 3 count now"
    );

    c.heal();
    let mut sent = Vec::new();
    for _ in 0..5 {
        if c.n(1).role() != Role::Leader {
            break;
        }
        sent.extend(c.heartbeat(1));
    }
    assert_eq!((c.n(1).role(), c.n(1).log().committed()), (Role::Follower, 3));
    let handover: Vec<_> = sent.iter().filter(|m| m.kind() == "TimeoutNow").collect();
    assert_eq!(handover, vec![&msg(1, 2, 1, kvorum_raft::MessageBody::TimeoutNow)]);
    assert_eq!((c.n(2).role(), c.n(2).term()), (Role::Leader, 2));
}

/// A cluster with no voter can never commit again, so removing the last voter is refused; other
/// impossible changes are refused with the reason.
#[test]
fn removing_the_last_voter_and_other_invalid_changes_are_refused() {
    let mut c = Cluster::new(1, |_| {});
    c.elect(1);
    assert_eq!(
        c.n(1).propose_conf_change(ConfChange::RemoveNode(1)),
        Err(RaftError::LastVoter { node: 1 })
    );
    let mut c = Cluster::new(3, |_| {});
    c.elect(1);
    let n1 = c.n(1);
    let cases = [
        (ConfChange::AddLearner(2), RaftError::AlreadyMember { node: 2 }),
        (ConfChange::PromoteLearner(2), RaftError::NotLearner { node: 2 }),
        (ConfChange::PromoteLearner(9), RaftError::NotMember { node: 9 }),
        (ConfChange::RemoveNode(9), RaftError::NotMember { node: 9 }),
    ];
    for (change, err) in cases {
        assert_eq!(n1.propose_conf_change(change), Err(err));
    }
    assert_eq!(n1.log().last_index(), 2);
}
