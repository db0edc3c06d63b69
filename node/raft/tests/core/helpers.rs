//! A minimal in-memory driver: nodes built from seeds or chosen persisted logs, Readies carried
//! out in order (persist, send, apply, acknowledge), and an instant network that can cut nodes off.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use kvorum_raft::{
    BOOTSTRAP_INDEX, ConfState, Config, Entry, EntryPayload, HardState, Index, Message, MessageBody, NodeId,
    PersistedState, Raft, ReadId, ReadState, Ready, RejectHint, Role, SnapshotMeta, Term,
};
use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

/// A node of a fresh cluster of `voters`, its RNG seeded from `seed` and its id.
pub fn seeded(id: NodeId, voters: &[NodeId], seed: u64, tweak: impl Fn(&mut Config)) -> Raft {
    let mut cfg = Config::new(id);
    tweak(&mut cfg);
    let rng = Xoshiro256PlusPlus::seed_from_u64(seed.wrapping_mul(1000).wrapping_add(id));
    Raft::new(cfg, PersistedState::bootstrap(voters.iter().copied()), Box::new(rng)).expect("valid config")
}

/// A node of a fresh cluster of `voters`.
pub fn fresh(id: NodeId, voters: &[NodeId], tweak: impl Fn(&mut Config)) -> Raft {
    seeded(id, voters, 1, tweak)
}

/// A node joining an existing cluster: no configuration, so it never campaigns until the leader
/// sends it one (as a learner, via snapshot and log).
pub fn joining(id: NodeId) -> Raft {
    let rng = Xoshiro256PlusPlus::seed_from_u64(id);
    Raft::new(Config::new(id), PersistedState::default(), Box::new(rng)).expect("valid config")
}

/// A node restarted from the bootstrap snapshot of `voters` plus `entries` (from index 2),
/// with the hard state `(term, vote, commit)`.
pub fn restarted(
    id: NodeId,
    voters: &[NodeId],
    hs: (Term, Option<NodeId>, Index),
    entries: Vec<Entry>,
    tweak: impl Fn(&mut Config),
) -> Raft {
    let mut cfg = Config::new(id);
    tweak(&mut cfg);
    let state = PersistedState {
        hard_state: HardState {
            term: hs.0,
            vote: hs.1,
            commit: hs.2,
        },
        snapshot: SnapshotMeta {
            index: BOOTSTRAP_INDEX,
            term: 0,
            conf: ConfState::with_voters(voters.iter().copied()),
        },
        entries,
        applied: BOOTSTRAP_INDEX,
    };
    Raft::new(cfg, state, Box::new(Xoshiro256PlusPlus::seed_from_u64(id))).expect("valid config")
}

/// A command entry whose payload names its position, e.g. `"3@2"`.
pub fn ent(index: Index, term: Term) -> Entry {
    Entry {
        term,
        index,
        payload: EntryPayload::Command(Bytes::from(format!("{index}@{term}"))),
    }
}

/// A command entry with the given payload.
pub fn cmd(index: Index, term: Term, data: &'static [u8]) -> Entry {
    Entry {
        term,
        index,
        payload: EntryPayload::Command(Bytes::from_static(data)),
    }
}

/// Entries at consecutive indexes from `first`, with the given terms.
pub fn ents(first: Index, terms: &[Term]) -> Vec<Entry> {
    terms
        .iter()
        .enumerate()
        .map(|(k, &t)| ent(first + k as u64, t))
        .collect()
}

/// The no-op a leader of `term` appends at `index`.
pub fn noop(index: Index, term: Term) -> Entry {
    Entry {
        term,
        index,
        payload: EntryPayload::Noop,
    }
}

/// Takes a Ready and acknowledges it at once (the driver persisted, sent and applied it).
pub fn take(node: &mut Raft) -> Ready {
    let ready = node.ready();
    node.advance(ready.ack());
    ready
}

pub fn msg(from: NodeId, to: NodeId, term: Term, body: MessageBody) -> Message {
    Message { from, to, term, body }
}

/// A RequestVote (`pre_vote` false, `transfer` false).
pub fn vote(from: NodeId, to: NodeId, term: Term, last_index: Index, last_term: Term) -> Message {
    vote_req(from, to, term, last_index, last_term, false, false)
}

pub fn pre_vote(from: NodeId, to: NodeId, term: Term, last_index: Index, last_term: Term) -> Message {
    vote_req(from, to, term, last_index, last_term, true, false)
}

pub fn vote_req(
    from: NodeId,
    to: NodeId,
    term: Term,
    last_log_index: Index,
    last_log_term: Term,
    pre_vote: bool,
    transfer: bool,
) -> Message {
    let body = MessageBody::RequestVote {
        pre_vote,
        last_log_index,
        last_log_term,
        transfer,
    };
    msg(from, to, term, body)
}

pub fn vote_resp(from: NodeId, to: NodeId, term: Term, pre_vote: bool, granted: bool) -> Message {
    msg(from, to, term, MessageBody::RequestVoteResponse { pre_vote, granted })
}

pub fn append(
    from: NodeId,
    to: NodeId,
    term: Term,
    prev: (Index, Term),
    entries: Vec<Entry>,
    leader_commit: Index,
) -> Message {
    let body = MessageBody::AppendEntries {
        prev_log_index: prev.0,
        prev_log_term: prev.1,
        entries,
        leader_commit,
    };
    msg(from, to, term, body)
}

pub fn append_resp(from: NodeId, to: NodeId, term: Term, index: Index, reject: Option<(Index, Term)>) -> Message {
    let reject = reject.map(|(index, term)| RejectHint { index, term });
    msg(from, to, term, MessageBody::AppendEntriesResponse { index, reject })
}

pub fn heartbeat(from: NodeId, to: NodeId, term: Term, commit: Index, read_round: u64) -> Message {
    msg(from, to, term, MessageBody::Heartbeat { commit, read_round })
}

pub fn heartbeat_resp(from: NodeId, to: NodeId, term: Term, read_round: u64) -> Message {
    msg(from, to, term, MessageBody::HeartbeatResponse { read_round })
}

/// Messages of one kind (see [`Message::kind`]).
pub fn of_kind<'a>(msgs: &'a [Message], kind: &str) -> Vec<&'a Message> {
    msgs.iter().filter(|m| m.kind() == kind).collect()
}

/// Messages addressed to `to`.
pub fn to_node(msgs: &[Message], to: NodeId) -> Vec<Message> {
    msgs.iter().filter(|m| m.to == to).cloned().collect()
}

/// The entries an AppendEntries carries (empty for any other message).
pub fn entries_of(m: &Message) -> &[Entry] {
    match &m.body {
        MessageBody::AppendEntries { entries, .. } => entries,
        _ => &[],
    }
}

/// A cluster with an instant network. Messages from or to a node in `cut` are dropped, as are
/// messages to ids that are not in the cluster.
pub struct Cluster {
    pub nodes: BTreeMap<NodeId, Raft>,
    pub cut: BTreeSet<NodeId>,
    /// Everything handed out for applying, per node, in order.
    pub applied: BTreeMap<NodeId, Vec<Entry>>,
    pub reads: Vec<(NodeId, ReadState)>,
    pub dropped_reads: Vec<(NodeId, ReadId)>,
}

impl Cluster {
    /// Voters `1..=n`, each tweaked the same way.
    pub fn new(n: NodeId, tweak: impl Fn(&mut Config) + Copy) -> Cluster {
        let voters: Vec<NodeId> = (1..=n).collect();
        let mut c = Cluster {
            nodes: BTreeMap::new(),
            cut: BTreeSet::new(),
            applied: BTreeMap::new(),
            reads: Vec::new(),
            dropped_reads: Vec::new(),
        };
        for &id in &voters {
            c.add(fresh(id, &voters, tweak));
        }
        c
    }

    /// Adds a node (e.g. a future learner started from `PersistedState::default()`).
    pub fn add(&mut self, node: Raft) {
        self.nodes.insert(node.id(), node);
    }

    pub fn n(&mut self, id: NodeId) -> &mut Raft {
        self.nodes.get_mut(&id).expect("node exists")
    }

    pub fn isolate(&mut self, id: NodeId) {
        self.cut.insert(id);
    }

    pub fn heal(&mut self) {
        self.cut.clear();
    }

    /// Carries out every pending Ready of every node once; returns the messages to send.
    pub fn process(&mut self) -> Vec<Message> {
        let mut out = Vec::new();
        for (&id, node) in self.nodes.iter_mut() {
            while node.has_ready() {
                let ready = take(node);
                self.applied
                    .entry(id)
                    .or_default()
                    .extend(ready.committed_entries.iter().cloned());
                self.reads.extend(ready.read_states.iter().map(|r| (id, *r)));
                self.dropped_reads.extend(ready.dropped_reads.iter().map(|r| (id, *r)));
                out.extend(ready.messages);
            }
        }
        out
    }

    /// Delivers messages, dropping those the partition cuts.
    pub fn deliver(&mut self, msgs: Vec<Message>) {
        for m in msgs {
            if self.cut.contains(&m.from) || self.cut.contains(&m.to) {
                continue;
            }
            if let Some(node) = self.nodes.get_mut(&m.to) {
                node.step(m);
            }
        }
    }

    /// Processes and delivers until quiet; returns every message sent (dropped ones included).
    pub fn pump(&mut self) -> Vec<Message> {
        let mut sent = Vec::new();
        loop {
            let msgs = self.process();
            if msgs.is_empty() {
                return sent;
            }
            sent.extend(msgs.iter().cloned());
            self.deliver(msgs);
        }
    }

    /// `id` campaigns now and wins.
    pub fn elect(&mut self, id: NodeId) {
        self.n(id).campaign_now();
        self.pump();
        assert_eq!(self.n(id).role(), Role::Leader, "node {id} should have won");
    }

    /// Ticks `id` `ticks` times, pumping after each tick; returns every message sent.
    pub fn tick_pump(&mut self, id: NodeId, ticks: u32) -> Vec<Message> {
        let mut sent = Vec::new();
        for _ in 0..ticks {
            self.n(id).tick();
            sent.extend(self.pump());
        }
        sent
    }

    /// Ticks the leader through one heartbeat interval, pumping.
    pub fn heartbeat(&mut self, leader: NodeId) -> Vec<Message> {
        let ticks = self.n(leader).config().heartbeat_interval_ticks;
        self.tick_pump(leader, ticks)
    }
}
