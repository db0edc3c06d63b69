//! One simulated member: a Raft core, its disk (what survives a crash) and its state machine.

use std::collections::{BTreeMap, hash_map::DefaultHasher};
use std::hash::{Hash, Hasher};

use kvorum_raft::{Config, Entry, EntryPayload, HardState, Index, NodeId, PersistedState, Raft, Ready, SnapshotMeta};
use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

/// The state machine: a hash chain over every applied command, so two members agree on their
/// state at an index exactly when they applied the same entries up to it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SmState {
    pub applied: Index,
    pub chain: u64,
}

impl SmState {
    pub fn apply(&mut self, entry: &Entry) {
        assert_eq!(entry.index, self.applied + 1, "state machine applied out of order");
        self.applied = entry.index;
        self.chain = chain_hash(self.chain, entry);
    }
}

pub fn chain_hash(prev: u64, entry: &Entry) -> u64 {
    let mut h = DefaultHasher::new();
    prev.hash(&mut h);
    entry_digest(entry).hash(&mut h);
    h.finish()
}

/// Identity of an entry's content (index, term and payload).
pub fn entry_digest(entry: &Entry) -> u64 {
    let mut h = DefaultHasher::new();
    entry.index.hash(&mut h);
    entry.term.hash(&mut h);
    match &entry.payload {
        EntryPayload::Noop => 0u8.hash(&mut h),
        EntryPayload::Command(data) => data.hash(&mut h),
        EntryPayload::ConfChange(cc) => format!("{cc:?}").hash(&mut h),
    }
    h.finish()
}

/// Everything a member persisted. Writes are atomic: a crash keeps all of one or none of it.
#[derive(Clone, Debug, Default)]
pub struct Disk {
    pub hard_state: HardState,
    pub snapshot: SnapshotMeta,
    pub snapshot_data: SmState,
    pub entries: Vec<Entry>,
    /// The state machine and its applied index, written together (never one without the other).
    pub sm: SmState,
}

impl Disk {
    pub fn bootstrap(voters: &[NodeId]) -> Self {
        let s = PersistedState::bootstrap(voters.iter().copied());
        let sm = SmState {
            applied: s.applied,
            chain: 0,
        };
        Disk {
            hard_state: s.hard_state,
            snapshot: s.snapshot,
            snapshot_data: sm,
            entries: Vec::new(),
            sm,
        }
    }

    /// Step 1 of the Ready contract: snapshot, entries, hard state, in one atomic write.
    pub fn persist(&mut self, ready: &Ready, received: &BTreeMap<Index, SmState>) {
        if let Some(meta) = &ready.snapshot {
            let data = *received
                .get(&meta.index)
                .expect("snapshot data arrived before the snapshot message");
            assert_eq!(data.applied, meta.index);
            self.snapshot = meta.clone();
            self.snapshot_data = data;
            self.entries.clear();
            self.sm = data;
        }
        if let Some(first) = ready.entries.first() {
            // Appending at index i discards everything stored at i and above.
            self.entries.retain(|e| e.index < first.index);
            if let Some(last) = self.entries.last() {
                assert_eq!(last.index + 1, first.index, "a hole in the stored log");
            }
            self.entries.extend(ready.entries.iter().cloned());
        }
        if let Some(hs) = ready.hard_state {
            self.hard_state = hs;
        }
    }

    pub fn persisted_state(&self) -> PersistedState {
        PersistedState {
            hard_state: self.hard_state,
            snapshot: self.snapshot.clone(),
            entries: self.entries.clone(),
            applied: self.sm.applied,
        }
    }

    pub fn compact(&mut self, snapshot: SnapshotMeta, log_compacted_to: Index) {
        assert_eq!(snapshot.index, self.sm.applied, "snapshot taken at the applied index");
        self.snapshot_data = self.sm;
        self.snapshot = snapshot;
        self.entries.retain(|e| e.index > log_compacted_to);
    }
}

pub struct SimNode {
    pub id: NodeId,
    pub raft: Option<Raft>,
    pub disk: Disk,
    pub cfg: Config,
    /// Length of this node's tick in simulated µs (clock skew between nodes).
    pub tick_us: u64,
    pub next_tick_us: u64,
    /// A paused node (GC pause, VM migration) processes nothing until then.
    pub paused_until_us: u64,
    /// Snapshot data streamed to this node, by snapshot index.
    pub received_snapshots: BTreeMap<Index, SmState>,
    /// Proposals made as leader, by index: (term, payload). Cleared on crash: the client's
    /// connection dies with the node, so those are never acknowledged.
    pub pending: BTreeMap<Index, (u64, u64)>,
    /// The next Ready is taken and then the node dies before persisting it.
    pub crash_in_next_ready: bool,
    pub restarts: u64,
}

impl SimNode {
    pub fn new(id: NodeId, cfg: Config, disk: Disk, tick_us: u64, now_us: u64) -> Self {
        let mut node = SimNode {
            id,
            raft: None,
            disk,
            cfg,
            tick_us,
            next_tick_us: now_us + tick_us,
            paused_until_us: 0,
            received_snapshots: BTreeMap::new(),
            pending: BTreeMap::new(),
            crash_in_next_ready: false,
            restarts: 0,
        };
        node.start(now_us);
        node
    }

    /// (Re)starts the core from what is on disk.
    pub fn start(&mut self, now_us: u64) {
        let seed = self.id * 1_000_003 + self.restarts;
        let rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let raft = Raft::new(self.cfg.clone(), self.disk.persisted_state(), Box::new(rng)).expect("valid config");
        self.raft = Some(raft);
        self.next_tick_us = now_us + self.tick_us;
        self.restarts += 1;
    }

    /// Loses everything not on disk.
    pub fn crash(&mut self) {
        self.raft = None;
        self.pending.clear();
        self.received_snapshots.clear();
        self.crash_in_next_ready = false;
    }

    pub fn is_up(&self) -> bool {
        self.raft.is_some()
    }

    pub fn raft(&self) -> &Raft {
        self.raft.as_ref().expect("node is up")
    }

    pub fn raft_mut(&mut self) -> &mut Raft {
        self.raft.as_mut().expect("node is up")
    }
}
