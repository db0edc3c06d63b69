//! Exact assertions for behaviour the scenario scripts do not walk through. Each test names the
//! rule it checks.

use bytes::Bytes;
use kvorum_raft::{
    ConfChange, Config, ConfigError, Message, MessageBody, PersistedState, Raft, RaftError, ReadState, Ready, Role,
    SnapshotStatus,
};
use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

fn node(id: u64, voters: &[u64], seed: u64, tweak: impl Fn(&mut Config)) -> Raft {
    let mut cfg = Config::new(id);
    tweak(&mut cfg);
    let rng = Xoshiro256PlusPlus::seed_from_u64(seed * 100 + id);
    Raft::new(cfg, PersistedState::bootstrap(voters.iter().copied()), Box::new(rng)).expect("valid config")
}

/// A cluster with an instant network; messages to ids in `cut` are dropped.
struct Cluster {
    nodes: Vec<Raft>,
    cut: Vec<u64>,
    reads: Vec<ReadState>,
    dropped_reads: Vec<u64>,
}

impl Cluster {
    fn new(n: u64, tweak: impl Fn(&mut Config) + Copy) -> Cluster {
        let voters: Vec<u64> = (1..=n).collect();
        let nodes = voters.iter().map(|&id| node(id, &voters, 1, tweak)).collect();
        Cluster {
            nodes,
            cut: Vec::new(),
            reads: Vec::new(),
            dropped_reads: Vec::new(),
        }
    }

    fn n(&mut self, id: u64) -> &mut Raft {
        &mut self.nodes[(id - 1) as usize]
    }

    fn elect(&mut self, id: u64) {
        self.n(id).campaign_now();
        self.pump();
        assert_eq!(self.n(id).role(), Role::Leader);
    }

    fn take(node: &mut Raft) -> Ready {
        let ready = node.ready();
        node.advance(ready.ack());
        ready
    }

    fn pump(&mut self) -> Vec<Message> {
        let mut sent = Vec::new();
        loop {
            let mut inbox = Vec::new();
            for node in &mut self.nodes {
                while node.has_ready() {
                    let ready = Self::take(node);
                    self.reads.extend(ready.read_states.iter().copied());
                    self.dropped_reads.extend(ready.dropped_reads.iter().copied());
                    inbox.extend(ready.messages);
                }
            }
            if inbox.is_empty() {
                return sent;
            }
            for m in inbox {
                sent.push(m.clone());
                if !self.cut.contains(&m.to) && !self.cut.contains(&m.from) {
                    let to = m.to;
                    self.n(to).step(m);
                }
            }
        }
    }
}

/// §5.2 / thesis §9.3: timeouts are drawn from [min, max) and differ between nodes and draws.
#[test]
fn election_timeouts_are_randomized_within_the_range() {
    let drawn: Vec<u32> = (0..200)
        .map(|seed| node(1, &[1, 2, 3], seed, |_| {}).randomized_election_timeout())
        .collect();
    assert!(drawn.iter().all(|t| (15..30).contains(t)), "{drawn:?}");
    let distinct: std::collections::BTreeSet<_> = drawn.iter().collect();
    assert!(
        distinct.len() >= 10,
        "only {} distinct timeouts in 200 draws",
        distinct.len()
    );
}

/// Config validation gives a readable error instead of a core that never elects anyone.
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

/// Thesis §3.10: proposals are refused during a transfer, which aborts after an election timeout.
#[test]
fn transfer_refuses_proposals_and_aborts_after_an_election_timeout() {
    let mut c = Cluster::new(3, |_| {});
    c.elect(1);
    c.cut = vec![2]; // the target never answers
    c.n(1).transfer_leader(2).expect("voter target");
    assert_eq!(c.n(1).transfer_target(), Some(2));
    let refused = c.n(1).propose(Bytes::from_static(b"x"));
    assert_eq!(refused, Err(RaftError::TransferInProgress { target: 2 }));
    assert!(refused.unwrap_err().is_retryable());
    for _ in 0..c.n(1).config().election_timeout_min_ticks {
        c.n(1).tick();
    }
    c.pump();
    assert_eq!(c.n(1).transfer_target(), None, "transfer aborted");
    assert_eq!(c.n(1).role(), Role::Leader);
    assert!(
        c.n(1).propose(Bytes::from_static(b"x")).is_ok(),
        "proposals accepted again"
    );
}

/// The target must be caught up before TimeoutNow; a non-voter cannot be a target.
#[test]
fn transfer_sends_timeout_now_only_to_a_caught_up_voter() {
    let mut c = Cluster::new(3, |_| {});
    c.elect(1);
    c.cut = vec![3];
    c.n(1).propose(Bytes::from_static(b"x")).expect("leader");
    c.pump();
    c.cut.clear();
    c.n(1).transfer_leader(3).expect("voter");
    let first = Cluster::take(c.n(1));
    assert!(
        !first.messages.iter().any(|m| m.body == MessageBody::TimeoutNow),
        "node 3 lacks an entry: catch it up first"
    );
    for m in first.messages {
        let to = m.to;
        c.n(to).step(m);
    }
    // The appends node 3 missed are found lost at the next heartbeat answer.
    for _ in 0..c.n(1).config().heartbeat_interval_ticks {
        c.n(1).tick();
    }
    let sent = c.pump();
    let timeout_now = sent.iter().position(|m| m.body == MessageBody::TimeoutNow && m.to == 3);
    assert!(timeout_now.is_some(), "TimeoutNow once node 3 matched the log");
    assert_eq!(c.n(3).role(), Role::Leader);
    assert_eq!(c.n(3).term(), 2, "took over in a new term, without pre-vote");
    assert_eq!(
        c.n(3).transfer_leader(9),
        Err(RaftError::TransferTargetNotVoter { node: 9 })
    );
}

/// A learner is promoted only when nearly caught up, so promotion never stalls commits.
#[test]
fn promotion_of_a_lagging_learner_is_refused() {
    let mut c = Cluster::new(3, |cfg| cfg.promotion_max_lag_entries = 2);
    c.elect(1);
    c.cut = vec![4]; // the learner's process is not running: it never catches up
    c.n(1)
        .propose_conf_change(ConfChange::AddLearner(4))
        .expect("add learner");
    c.pump();
    for i in 0..5u8 {
        c.n(1).propose(Bytes::from(vec![i])).expect("leader");
    }
    c.pump();
    let err = c.n(1).propose_conf_change(ConfChange::PromoteLearner(4)).unwrap_err();
    assert!(
        matches!(
            err,
            RaftError::LearnerBehind {
                node: 4,
                matched: 0,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_retryable());
    assert_eq!(
        c.n(1).propose_conf_change(ConfChange::RemoveNode(1)).map(|_| ()),
        Ok(()),
        "other changes are still possible"
    );
}

/// Removing the last voter would leave a cluster that can never commit again.
#[test]
fn removing_the_last_voter_is_refused() {
    let mut c = Cluster::new(1, |_| {});
    c.elect(1);
    assert_eq!(
        c.n(1).propose_conf_change(ConfChange::RemoveNode(1)),
        Err(RaftError::LastVoter { node: 1 })
    );
}

/// openraft d6a6d562 / canonical/raft#279: a pre-candidate rejected by a node of a higher term
/// adopts that term, so a restarted node with a stale term catches up.
#[test]
fn pre_vote_rejection_from_a_higher_term_moves_the_pre_candidate_forward() {
    let mut n = node(1, &[1, 2, 3], 1, |_| {});
    n.campaign_now();
    assert_eq!(
        (n.role(), n.term()),
        (Role::PreCandidate, 0),
        "pre-vote changes no term"
    );
    n.step(Message {
        from: 2,
        to: 1,
        term: 7,
        body: MessageBody::RequestVoteResponse {
            pre_vote: true,
            granted: false,
        },
    });
    assert_eq!((n.role(), n.term()), (Role::Follower, 7));
}

/// A granted pre-vote carries the future term but moves nobody to it.
#[test]
fn granting_a_pre_vote_changes_neither_term_nor_vote() {
    let mut n = node(2, &[1, 2, 3], 1, |_| {});
    n.step(Message {
        from: 1,
        to: 2,
        term: 1,
        body: MessageBody::RequestVote {
            pre_vote: true,
            last_log_index: 1,
            last_log_term: 0,
            transfer: false,
        },
    });
    let ready = Cluster::take(&mut n);
    assert_eq!(ready.hard_state, None, "nothing to persist");
    assert_eq!(
        ready.messages[0].body,
        MessageBody::RequestVoteResponse {
            pre_vote: true,
            granted: true
        }
    );
    assert_eq!(ready.messages[0].term, 1);
    assert_eq!((n.term(), n.vote()), (0, None));
}

/// A leader that loses leadership fails its pending local reads at once (so clients retry
/// elsewhere); a follower with no known leader drops reads immediately.
#[test]
fn reads_are_dropped_when_leadership_is_lost_or_unknown() {
    let mut c = Cluster::new(3, |_| {});
    c.elect(1);
    c.cut = vec![2, 3];
    c.n(1).read_index(7);
    c.pump();
    assert!(c.reads.is_empty(), "no quorum confirmed the read");
    for _ in 0..2 * c.n(1).config().election_timeout_min_ticks {
        c.n(1).tick();
    }
    c.pump();
    assert_eq!(c.n(1).role(), Role::Follower, "check quorum");
    assert_eq!(c.dropped_reads, vec![7]);

    let mut lone = node(2, &[1, 2, 3], 1, |_| {});
    lone.read_index(9);
    assert_eq!(Cluster::take(&mut lone).dropped_reads, vec![9]);
}

/// A failed snapshot transfer returns the follower to probing, paused until it answers.
#[test]
fn failed_snapshot_transfer_falls_back_to_probe() {
    let mut c = Cluster::new(3, |_| {});
    c.elect(1);
    c.cut = vec![3];
    for i in 0..4u8 {
        c.n(1).propose(Bytes::from(vec![i])).expect("leader");
    }
    c.pump();
    let applied = c.n(1).log().applied();
    c.n(1).compact(applied).expect("applied index");
    c.cut.clear();
    for _ in 0..c.n(1).config().heartbeat_interval_ticks {
        c.n(1).tick();
    }
    // Heartbeat, its answer, then an append that needs compacted entries: a snapshot.
    let mut snapshot_sent = false;
    for _ in 0..4 {
        let ready = Cluster::take(c.n(1));
        for m in ready.messages {
            if matches!(m.body, MessageBody::InstallSnapshot { .. }) {
                snapshot_sent = true;
                continue; // the transport fails to stream it
            }
            let to = m.to;
            c.n(to).step(m);
            let reply = Cluster::take(c.n(to));
            for r in reply.messages {
                c.n(1).step(r);
            }
        }
    }
    assert!(snapshot_sent);
    assert!(matches!(
        c.n(1).progress()[&3].state,
        kvorum_raft::progress::ProgressState::Snapshot { .. }
    ));
    c.n(1).report_snapshot(3, SnapshotStatus::Failed);
    let pr = &c.n(1).progress()[&3];
    assert_eq!(pr.state, kvorum_raft::progress::ProgressState::Probe);
    assert!(pr.is_paused(), "wait for the next heartbeat answer before retrying");
}

/// Errors say whether to retry and where to redirect.
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

/// Bad input from a peer is refused with a reason and never crashes the node.
#[test]
fn malformed_and_impossible_peer_messages_are_dropped() {
    use kvorum_raft::{Entry, EntryPayload, MalformedMessage, SnapshotMeta};
    let gap = Message {
        from: 1,
        to: 2,
        term: 1,
        body: MessageBody::AppendEntries {
            prev_log_index: 1,
            prev_log_term: 0,
            entries: vec![Entry {
                term: 1,
                index: 3,
                payload: EntryPayload::Noop,
            }],
            leader_commit: 3,
        },
    };
    assert_eq!(
        gap.validate(),
        Err(MalformedMessage::NotContiguous {
            prev_log_index: 1,
            found: 3,
            position: 0
        })
    );
    let mut future = gap.clone();
    if let MessageBody::AppendEntries { entries, .. } = &mut future.body {
        entries[0] = Entry {
            term: 9,
            index: 2,
            payload: EntryPayload::Noop,
        };
    }
    assert!(matches!(
        future.validate(),
        Err(MalformedMessage::BadEntryTerm { entry_term: 9, .. })
    ));
    let empty_snapshot = Message {
        from: 1,
        to: 2,
        term: 1,
        body: MessageBody::InstallSnapshot {
            snapshot: SnapshotMeta {
                index: 5,
                term: 1,
                conf: Default::default(),
            },
        },
    };
    assert!(
        empty_snapshot
            .validate()
            .unwrap_err()
            .to_string()
            .contains("not installable")
    );

    let mut follower = node(2, &[1, 2, 3], 1, |_| {});
    for m in [gap, future, empty_snapshot] {
        follower.step(m);
    }
    assert_eq!(
        (follower.term(), follower.log().last_index()),
        (0, 1),
        "nothing was applied from them"
    );

    // A leader gets an acknowledgement for entries it never appended, and a second "leader" of
    // its own term: it ignores both and keeps leading.
    let mut c = Cluster::new(3, |_| {});
    c.elect(1);
    let (term, last) = (c.n(1).term(), c.n(1).log().last_index());
    c.n(1).step(Message {
        from: 2,
        to: 1,
        term,
        body: MessageBody::AppendEntriesResponse {
            index: last + 100,
            reject: None,
        },
    });
    c.n(1).step(Message {
        from: 3,
        to: 1,
        term,
        body: MessageBody::Heartbeat {
            commit: 0,
            read_round: 0,
        },
    });
    c.pump();
    assert_eq!(c.n(1).role(), Role::Leader);
    assert_eq!(c.n(1).log().committed(), last);
    assert_eq!(c.n(1).progress()[&2].match_index, last);
}
