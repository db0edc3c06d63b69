//! The scripted cluster: nodes with an in-memory disk and a tiny state machine, and a network
//! that only moves messages when a script says so.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use kvorum_raft::{
    Config, Entry, EntryPayload, HardState, Index, Message, MessageBody, NodeId, PersistedState, Raft, Ready,
    SnapshotMeta, SnapshotStatus,
};
use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::render;

/// What survives a restart; written atomically per Ready, as the core's contract requires.
#[derive(Clone, Default)]
pub struct Disk {
    pub hard_state: HardState,
    pub snapshot: SnapshotMeta,
    pub entries: Vec<Entry>,
    /// The state machine ("set N" / "add N" over one integer), its applied index, and the
    /// value captured by the latest snapshot.
    pub value: i64,
    pub applied: Index,
    pub snapshot_value: i64,
}

pub struct Node {
    pub raft: Option<Raft>,
    pub disk: Disk,
    pub cfg: Config,
    pub seed: u64,
    pub restarts: u64,
    /// Snapshot values that arrived with InstallSnapshot messages, by index.
    pub received: BTreeMap<Index, i64>,
}

impl Node {
    fn boot(&mut self) {
        let rng = Xoshiro256PlusPlus::seed_from_u64(self.seed * 1000 + self.cfg.id + self.restarts * 7919);
        let state = PersistedState {
            hard_state: self.disk.hard_state,
            snapshot: self.disk.snapshot.clone(),
            entries: self.disk.entries.clone(),
            applied: self.disk.applied,
        };
        self.raft = Some(Raft::new(self.cfg.clone(), state, Box::new(rng)).expect("valid config"));
        self.restarts += 1;
    }

    pub fn raft(&mut self) -> &mut Raft {
        self.raft.as_mut().expect("node is running")
    }
}

#[derive(Default)]
pub struct Env {
    pub nodes: BTreeMap<NodeId, Node>,
    /// Messages sent and not yet delivered, in send order.
    pub queue: Vec<Message>,
    /// Directed links that drop messages.
    pub blocked: BTreeSet<(NodeId, NodeId)>,
}

fn apply_command(value: &mut i64, data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut words = text.split_whitespace();
    let (op, arg) = (words.next(), words.next().and_then(|w| w.parse::<i64>().ok()));
    match (op, arg) {
        (Some("set"), Some(n)) => *value = n,
        (Some("add"), Some(n)) => *value += n,
        _ => {}
    }
}

impl Env {
    pub fn add_node(&mut self, cfg: Config, voters: &[NodeId], seed: u64) {
        let state = if voters.contains(&cfg.id) {
            PersistedState::bootstrap(voters.iter().copied())
        } else {
            PersistedState::default()
        };
        let disk = Disk {
            hard_state: state.hard_state,
            snapshot: state.snapshot,
            applied: state.applied,
            ..Default::default()
        };
        let id = cfg.id;
        let mut node = Node {
            raft: None,
            disk,
            cfg,
            seed,
            restarts: 0,
            received: BTreeMap::new(),
        };
        node.boot();
        self.nodes.insert(id, node);
    }

    pub fn node(&mut self, id: NodeId) -> &mut Node {
        self.nodes.get_mut(&id).unwrap_or_else(|| panic!("no node {id}"))
    }

    pub fn running(&self) -> Vec<NodeId> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.raft.is_some())
            .map(|(id, _)| *id)
            .collect()
    }

    pub fn stop(&mut self, id: NodeId) {
        let node = self.node(id);
        node.raft = None;
        node.received.clear();
        self.queue.retain(|m| m.from != id);
    }

    pub fn restart(&mut self, id: NodeId) {
        self.node(id).boot();
    }

    /// Carries out one Ready of node `id` (persist, queue messages, apply, advance) and
    /// describes it. Returns None when the node had nothing to do.
    pub fn process_ready(&mut self, id: NodeId) -> Option<Vec<String>> {
        let node = self.node(id);
        if !node.raft.as_ref().is_some_and(Raft::has_ready) {
            return None;
        }
        let ready = node.raft().ready();
        let mut out = vec![format!("> {id} handling Ready")];
        persist(node, &ready, &mut out);
        for m in &ready.messages {
            out.push(format!("  send {}", render::message(m)));
        }
        for e in &ready.committed_entries {
            if let EntryPayload::Command(data) = &e.payload {
                apply_command(&mut node.disk.value, data);
            }
            node.disk.applied = e.index;
            out.push(format!("  apply {} -> value={}", render::entry(e), node.disk.value));
        }
        for rs in &ready.read_states {
            out.push(format!("  read {} ready at index {}", rs.id, rs.index));
        }
        for id in &ready.dropped_reads {
            out.push(format!("  read {id} dropped"));
        }
        node.raft().advance(ready.ack());
        self.queue.extend(ready.messages);
        Some(out)
    }

    /// Delivers queued messages matching the filters (all when None), or drops them.
    pub fn deliver(&mut self, from: Option<NodeId>, to: Option<NodeId>, drop: bool) -> Vec<String> {
        let (chosen, rest): (Vec<Message>, Vec<Message>) = std::mem::take(&mut self.queue)
            .into_iter()
            .partition(|m| from.is_none_or(|f| m.from == f) && to.is_none_or(|t| m.to == t));
        self.queue = rest;
        let mut out = Vec::new();
        for m in chosen {
            let line = render::message(&m);
            let up = self.nodes.get(&m.to).is_some_and(|n| n.raft.is_some());
            if drop || self.blocked.contains(&(m.from, m.to)) || !up {
                out.push(format!("  dropped {line}"));
                self.report_snapshot(&m, SnapshotStatus::Failed);
                continue;
            }
            out.push(format!("  {line}"));
            if let MessageBody::InstallSnapshot { snapshot } = &m.body {
                let value = self.nodes[&m.from].disk.snapshot_value;
                self.node(m.to).received.insert(snapshot.index, value);
            }
            let report = m.clone();
            self.node(m.to).raft().step(m);
            self.report_snapshot(&report, SnapshotStatus::Delivered);
        }
        out
    }

    fn report_snapshot(&mut self, m: &Message, status: SnapshotStatus) {
        if matches!(m.body, MessageBody::InstallSnapshot { .. })
            && let Some(raft) = self.nodes.get_mut(&m.from).and_then(|n| n.raft.as_mut())
        {
            raft.report_snapshot(m.to, status);
        }
    }

    /// Process Readies and deliver messages until nothing moves.
    pub fn stabilize(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        for _ in 0..1000 {
            let mut moved = false;
            for id in self.running() {
                while let Some(lines) = self.process_ready(id) {
                    out.extend(lines);
                    moved = true;
                }
            }
            if !self.queue.is_empty() {
                out.push("> deliver".to_string());
                out.extend(self.deliver(None, None, false));
                moved = true;
            }
            if !moved {
                return out;
            }
        }
        panic!("cluster did not stabilize in 1000 rounds");
    }

    pub fn propose(&mut self, id: NodeId, text: &str) -> String {
        match self.node(id).raft().propose(Bytes::copy_from_slice(text.as_bytes())) {
            Ok(p) => format!("proposed at index {} term {}", p.index, p.term),
            Err(e) => format!("error: {e}"),
        }
    }

    pub fn compact(&mut self, id: NodeId, index: Index) -> String {
        let node = self.node(id);
        match node.raft().compact(index) {
            Ok(c) => {
                // The script's state machine can only snapshot what it has applied.
                assert_eq!(index, node.disk.applied, "scripts snapshot at the applied index");
                node.disk.snapshot = c.snapshot;
                node.disk.snapshot_value = node.disk.value;
                node.disk.entries.retain(|e| e.index > c.log_compacted_to);
                format!("snapshot at {index}; log compacted through {}", c.log_compacted_to)
            }
            Err(e) => format!("error: {e}"),
        }
    }
}

fn persist(node: &mut Node, ready: &Ready, out: &mut Vec<String>) {
    if let Some(meta) = &ready.snapshot {
        let value = node
            .received
            .remove(&meta.index)
            .expect("snapshot data arrived with its message");
        node.disk.snapshot = meta.clone();
        node.disk.snapshot_value = value;
        node.disk.value = value;
        node.disk.applied = meta.index;
        node.disk.entries.clear();
        out.push(format!(
            "  install snapshot ({},{}) {} value={value}",
            meta.term,
            meta.index,
            render::conf(&meta.conf)
        ));
    }
    if let Some(first) = ready.entries.first() {
        node.disk.entries.retain(|e| e.index < first.index);
        node.disk.entries.extend(ready.entries.iter().cloned());
        out.push(format!("  persist entries [{}]", render::entries(&ready.entries)));
    }
    if let Some(hs) = ready.hard_state {
        node.disk.hard_state = hs;
        let vote = hs.vote.map_or("-".to_string(), |v| v.to_string());
        out.push(format!(
            "  persist hard state term={} vote={vote} commit={}",
            hs.term, hs.commit
        ));
    }
}
