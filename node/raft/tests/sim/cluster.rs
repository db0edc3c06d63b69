//! The simulated cluster: a discrete-event loop over node ticks and message deliveries, with
//! every node's Ready carried out exactly as the core's ordering contract says.

use std::collections::{BTreeMap, hash_map::DefaultHasher};
use std::hash::{Hash, Hasher};

use bytes::Bytes;
use kvorum_raft::{Config, EntryPayload, Index, MessageBody, NodeId, Role, SnapshotStatus};
use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::invariants::Checker;
use crate::network::{InFlight, NetProfile, Network, Sent};
use crate::node::{Disk, SimNode};
use crate::rng::Draw;

/// Counters reported per run.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub steps: u64,
    pub sim_ms: u64,
    pub elections_won: u64,
    pub acked_writes: u64,
    pub reads_served: u64,
    pub crashes: u64,
    pub partitions: u64,
    pub snapshots_installed: u64,
    pub conf_changes: u64,
    pub transfers: u64,
}

pub struct Sim {
    pub rng: Xoshiro256PlusPlus,
    pub now_us: u64,
    pub nodes: BTreeMap<NodeId, SimNode>,
    pub net: Network,
    pub checker: Checker,
    pub stats: Stats,
    pub next_node_id: NodeId,
    pub max_nodes: u64,
    pub clock_skew_permille: u64,
    /// Drawn per seed: runs with and without pre-vote (CheckQuorum always on; without it a
    /// removed member may disrupt forever, as etcd documents).
    pub pre_vote: bool,
    /// Acknowledged writes: index → payload id. Each was applied by the leader that proposed it.
    pub acked: BTreeMap<Index, u64>,
    pub next_payload: u64,
    pub next_read: u64,
    trace: DefaultHasher,
    pub verbose: bool,
    /// Snapshot transfer outcomes the transport will report to the sender: (sender, follower).
    reports: Vec<(NodeId, NodeId, SnapshotStatus)>,
    leaderships: std::collections::HashSet<(NodeId, u64)>,
}

enum Event {
    Tick(NodeId),
    Deliver(InFlight),
}

impl Sim {
    pub fn new(seed: u64, verbose: bool) -> Sim {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let initial = rng.between(1, 6);
        let min_delay_us = rng.between(100, 2_000);
        let profile = NetProfile {
            min_delay_us,
            max_delay_us: min_delay_us + rng.between(0, 20_000),
            drop_ppm: *rng.pick(&[0, 10_000, 50_000, 150_000]).expect("non-empty"),
            duplicate_ppm: *rng.pick(&[0, 10_000, 50_000]).expect("non-empty"),
        };
        let mut sim = Sim {
            clock_skew_permille: *rng.pick(&[0, 20, 100, 300]).expect("non-empty"),
            pre_vote: rng.between(0, 4) != 0,
            rng,
            now_us: 0,
            nodes: BTreeMap::new(),
            net: Network::new(profile),
            checker: Checker::default(),
            stats: Stats::default(),
            next_node_id: initial + 1,
            max_nodes: 7,
            acked: BTreeMap::new(),
            next_payload: 1,
            next_read: 1,
            trace: DefaultHasher::new(),
            verbose,
            reports: Vec::new(),
            leaderships: Default::default(),
        };
        let voters: Vec<NodeId> = (1..=initial).collect();
        for &id in &voters {
            sim.add_node(id, Disk::bootstrap(&voters));
        }
        let line = format!(
            "seed {seed}: {initial} voters, {:?}, skew {}‰, pre-vote {}",
            sim.net.profile, sim.clock_skew_permille, sim.pre_vote
        );
        sim.log(line);
        sim
    }

    pub fn add_node(&mut self, id: NodeId, disk: Disk) {
        let skew = self.clock_skew_permille;
        let permille = 1000 + self.rng.between(0, 2 * skew + 1) - skew;
        let tick_us = 10_000 * permille / 1000;
        let mut cfg = sim_config(id);
        cfg.pre_vote = self.pre_vote;
        let node = SimNode::new(id, cfg, disk, tick_us, self.now_us);
        self.nodes.insert(id, node);
    }

    pub fn log(&mut self, line: String) {
        line.hash(&mut self.trace);
        if self.verbose {
            println!("[{:>9.3} ms] {line}", self.now_us as f64 / 1000.0);
        }
    }

    /// Digest of everything that happened: equal digests mean byte-identical runs.
    pub fn trace_digest(&self) -> u64 {
        self.trace.finish()
    }

    pub fn up_nodes(&self) -> Vec<NodeId> {
        self.nodes.values().filter(|n| n.is_up()).map(|n| n.id).collect()
    }

    pub fn leaders(&self) -> Vec<NodeId> {
        self.nodes
            .values()
            .filter(|n| n.is_up() && n.raft().role() == Role::Leader)
            .map(|n| n.id)
            .collect()
    }

    /// Runs the next event (a tick or a delivery) and checks every invariant.
    pub fn step(&mut self) {
        self.stats.steps += 1;
        let next_tick = self
            .nodes
            .values()
            .filter(|n| n.is_up())
            .map(|n| (n.next_tick_us.max(n.paused_until_us), n.id))
            .min();
        let next_msg = self.net.next_delivery_us();
        let event = match (next_tick, next_msg) {
            (Some((t, id)), Some(m)) if t <= m => {
                self.now_us = t;
                Event::Tick(id)
            }
            (_, Some(_)) => Event::Deliver(self.net.pop().expect("peeked")),
            (Some((t, id)), None) => {
                self.now_us = t;
                Event::Tick(id)
            }
            (None, None) => return,
        };
        match event {
            Event::Tick(id) => {
                let node = self.nodes.get_mut(&id).expect("node exists");
                node.next_tick_us = self.now_us + node.tick_us;
                node.raft_mut().tick();
                self.drain(id);
            }
            Event::Deliver(m) => {
                self.now_us = self.now_us.max(m.deliver_at_us);
                self.deliver(m);
            }
        }
        self.stats.sim_ms = self.now_us / 1000;
        self.check_all();
    }

    fn deliver(&mut self, m: InFlight) {
        let (from, to) = (m.msg.from, m.msg.to);
        let is_snapshot = m.snapshot_data.is_some();
        let Some(node) = self.nodes.get_mut(&to).filter(|n| n.is_up()) else {
            if is_snapshot {
                self.reports.push((from, to, SnapshotStatus::Failed));
                self.flush_reports();
            }
            return;
        };
        if node.paused_until_us > self.now_us {
            let until = node.paused_until_us;
            self.net.defer(m, until);
            return;
        }
        if let Some(data) = m.snapshot_data {
            node.received_snapshots.insert(data.applied, data);
        }
        self.log(format!("deliver {}->{} {} t{}", from, to, m.msg.kind(), m.msg.term));
        self.nodes.get_mut(&to).expect("up").raft_mut().step(m.msg);
        self.drain(to);
        if is_snapshot {
            self.reports.push((from, to, SnapshotStatus::Delivered));
            self.flush_reports();
        }
    }

    fn flush_reports(&mut self) {
        for (from, to, status) in std::mem::take(&mut self.reports) {
            if let Some(node) = self.nodes.get_mut(&from).filter(|n| n.is_up()) {
                node.raft_mut().report_snapshot(to, status);
                self.drain(from);
            }
        }
    }

    /// Carries out every Ready of node `id`: persist, send, apply, serve reads, advance.
    pub fn drain(&mut self, id: NodeId) {
        loop {
            let node = self.nodes.get_mut(&id).expect("node exists");
            if !node.is_up() || !node.raft().has_ready() {
                return;
            }
            let ready = node.raft_mut().ready();
            if node.crash_in_next_ready {
                // Power loss between handing out the Ready and persisting it: all of it is lost.
                node.crash();
                self.stats.crashes += 1;
                self.log(format!("crash {id} before persisting a Ready"));
                return;
            }
            node.disk.persist(&ready, &node.received_snapshots);
            if let Some(meta) = &ready.snapshot {
                node.received_snapshots.retain(|&i, _| i > meta.index);
                let sm = node.disk.sm;
                self.checker.on_snapshot_installed(id, &sm);
                self.stats.snapshots_installed += 1;
            }
            let node = &self.nodes[&id];
            self.checker.on_persisted_entries(node.raft(), &ready.entries);
            for m in ready.messages.iter().cloned() {
                let data = matches!(m.body, MessageBody::InstallSnapshot { .. }).then(|| {
                    let disk = &self.nodes[&id].disk;
                    assert_eq!(
                        Some(disk.snapshot.index),
                        snapshot_index(&m.body),
                        "sending a snapshot the disk lacks"
                    );
                    disk.snapshot_data
                });
                let (from, to) = (m.from, m.to);
                let is_snapshot = data.is_some();
                if let Sent::Dropped = self.net.send(&mut self.rng, self.now_us, m, data)
                    && is_snapshot
                {
                    self.reports.push((from, to, SnapshotStatus::Failed));
                }
            }
            for e in &ready.committed_entries {
                let node = self.nodes.get_mut(&id).expect("exists");
                node.disk.sm.apply(e);
                let after = node.disk.sm;
                let acked = node.pending.remove(&e.index);
                self.checker.on_apply(id, e, &after);
                if let (Some((term, payload)), EntryPayload::Command(data)) = (acked, &e.payload)
                    && term == e.term
                    && decode(data) == payload
                {
                    self.acked.insert(e.index, payload);
                    self.stats.acked_writes += 1;
                }
            }
            for rs in &ready.read_states {
                self.checker.reads.on_ready(rs.id, rs.index);
            }
            for d in &ready.dropped_reads {
                self.checker.reads.on_dropped(*d);
            }
            let node = self.nodes.get_mut(&id).expect("exists");
            node.raft_mut().advance(ready.ack());
            let (role, term) = (node.raft().role(), node.raft().term());
            self.log(format!("ready {id} {role:?} t{term} +{} msgs", ready.messages.len()));
            self.flush_reports();
        }
    }

    fn check_all(&mut self) {
        for node in self.nodes.values().filter(|n| n.is_up()) {
            self.checker.check_node(node.raft(), &node.disk.sm);
            if node.raft().role() == Role::Leader && self.leaderships.insert((node.id, node.raft().term())) {
                self.stats.elections_won += 1;
            }
        }
    }

    /// The highest acknowledged write index.
    pub fn max_acked(&self) -> Index {
        self.acked.keys().next_back().copied().unwrap_or(0)
    }

    pub fn propose(&mut self, id: NodeId) -> Option<kvorum_raft::Proposed> {
        let payload = self.next_payload;
        self.next_payload += 1;
        let node = self.nodes.get_mut(&id).expect("exists");
        match node.raft_mut().propose(encode(payload)) {
            Ok(p) => {
                node.pending.insert(p.index, (p.term, payload));
                self.drain(id);
                Some(p)
            }
            Err(_) => None,
        }
    }
}

fn snapshot_index(body: &MessageBody) -> Option<Index> {
    match body {
        MessageBody::InstallSnapshot { snapshot } => Some(snapshot.index),
        _ => None,
    }
}

pub fn encode(payload: u64) -> Bytes {
    Bytes::copy_from_slice(&payload.to_be_bytes())
}

pub fn decode(data: &Bytes) -> u64 {
    u64::from_be_bytes(data.as_ref().try_into().expect("8-byte payload"))
}

/// The core configuration used in simulation: production defaults, small message budgets so
/// batching and flow control actually engage, and log retention so snapshots and log catch-up
/// both happen.
pub fn sim_config(id: NodeId) -> Config {
    let mut cfg = Config::new(id);
    cfg.max_append_bytes = 256;
    cfg.max_inflight_msgs = 4;
    cfg.max_uncommitted_bytes = 4096;
    cfg.compaction_retain_entries = 5;
    cfg.promotion_max_lag_entries = 20;
    cfg
}
