//! One member's Raft core bound to its storage: the deterministic half of the driver.
//!
//! [`Replica`] carries out the core's Ready contract (`kvorum_raft::ready`) against a
//! [`LogStore`] and the [`Store`]: persist (snapshot data first, then log and hard state, one
//! fsync), hand back the messages to send, apply committed entries, acknowledge. It does no I/O
//! of its own beyond storage and knows no clock, so the async server and the storage simulator
//! (`node/tests/replica_sim.rs`) drive the very same code.
//!
//! ```text
//!  persist() ─► LogWrite (fsync) ─► Persisted { messages } ─► caller sends ─► apply() ─► Applied
//! ```

use std::sync::Arc;

use kvorum_raft::{
    BOOTSTRAP_INDEX, Config, ConfigError, Entry, Index, Message, PersistedState, Raft, ReadId, ReadState, Ready,
    SnapshotMeta, Term,
};

use crate::mvcc::{ApplyOutput, SnapshotError, Store};
use crate::storage::{LogStore, LogWrite, StorageError};

/// Why the replica cannot continue. All are fatal for the member.
#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A snapshot from the leader could not be installed.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// The core asked to install a snapshot whose data never arrived.
    #[error("asked to install snapshot {index} but no snapshot data was staged")]
    MissingSnapshotData {
        /// The snapshot's index.
        index: Index,
    },
    /// The state machine is behind the log's snapshot: the log was compacted past it.
    #[error("state machine applied {applied} is behind the log's snapshot at {snapshot}")]
    StateBehindLog {
        /// The state machine's applied index.
        applied: Index,
        /// The log's snapshot index.
        snapshot: Index,
    },
    /// The Raft configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// The first half of a Ready, done: what to send now.
#[derive(Debug)]
pub struct Persisted {
    /// Messages that may go out now that their state is durable.
    pub messages: Vec<Message>,
    ready: Ready,
}

/// The second half: what was applied.
#[derive(Debug, Default)]
pub struct Applied {
    /// Index and term of every committed entry applied, in order (for matching proposals).
    pub entries: Vec<(Index, Term)>,
    /// The state machine's results.
    pub output: ApplyOutput,
    /// Reads that may be served now (the state machine has applied their index).
    pub read_states: Vec<ReadState>,
    /// Reads that failed (leadership changed); retry them.
    pub dropped_reads: Vec<ReadId>,
    /// A snapshot from the leader was installed in this Ready.
    pub installed_snapshot: Option<Index>,
}

/// A member's core and storage.
pub struct Replica<L: LogStore> {
    raft: Raft,
    log: L,
    store: Arc<Store>,
    staged_snapshot: Option<Vec<u8>>,
}

impl<L: LogStore> Replica<L> {
    /// Restores a member from its storage. A member with an empty log and `bootstrap` set
    /// founds a cluster with those voters; with `bootstrap` empty it waits to be added.
    pub fn open(
        cfg: Config,
        mut log: L,
        store: Arc<Store>,
        bootstrap: &[kvorum_raft::NodeId],
        rng: Box<dyn rand_core::Rng + Send>,
    ) -> Result<Replica<L>, ReplicaError> {
        let mut state = log.load()?;
        if state.snapshot.index == 0 && state.entries.is_empty() && !bootstrap.is_empty() {
            let initial = PersistedState::bootstrap(bootstrap.iter().copied());
            log.persist(LogWrite {
                snapshot: Some(&initial.snapshot),
                entries: &[],
                hard_state: Some(initial.hard_state),
            })?;
            state = log.load()?;
        }
        let last = state.entries.last().map_or(state.snapshot.index, |e| e.index);
        let store_applied = store.applied_index();
        if store_applied < state.snapshot.index && !(state.snapshot.index == BOOTSTRAP_INDEX && store_applied == 0) {
            return Err(ReplicaError::StateBehindLog {
                applied: store_applied,
                snapshot: state.snapshot.index,
            });
        }
        // The state machine may be ahead of the log (a snapshot installed just before a crash);
        // the core only needs to know how far its own log is applied, and the store skips
        // entries it already has.
        let applied = store_applied.min(last).max(state.snapshot.index);
        let persisted = PersistedState {
            hard_state: state.hard_state,
            snapshot: state.snapshot,
            entries: state.entries,
            applied,
        };
        let raft = Raft::new(cfg, persisted, rng)?;
        Ok(Replica {
            raft,
            log,
            store,
            staged_snapshot: None,
        })
    }

    /// The core, for inputs (tick, step, propose, …) and inspection.
    pub fn raft(&mut self) -> &mut Raft {
        &mut self.raft
    }

    /// The core, read-only.
    pub fn raft_ref(&self) -> &Raft {
        &self.raft
    }

    /// The state machine.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Snapshot data received from the leader, to install when the core says so.
    pub fn stage_snapshot(&mut self, data: Vec<u8>) {
        self.staged_snapshot = Some(data);
    }

    /// Whether there is a Ready to process.
    pub fn has_ready(&self) -> bool {
        self.raft.has_ready()
    }

    /// Step 1 of a Ready: makes its state durable. Returns `None` when there is no Ready.
    pub fn persist(&mut self) -> Result<Option<Persisted>, ReplicaError> {
        if !self.raft.has_ready() {
            return Ok(None);
        }
        let mut ready = self.raft.ready();
        if let Some(meta) = &ready.snapshot {
            let data = self
                .staged_snapshot
                .take()
                .ok_or(ReplicaError::MissingSnapshotData { index: meta.index })?;
            // The data first: a crash before the log write leaves the store ahead of the log,
            // which is safe (entries it already reflects are skipped); the reverse is not.
            self.store.install_snapshot(data.as_slice())?;
        }
        self.log.persist(LogWrite {
            snapshot: ready.snapshot.as_ref(),
            entries: &ready.entries,
            hard_state: ready.hard_state,
        })?;
        let messages = std::mem::take(&mut ready.messages);
        Ok(Some(Persisted { messages, ready }))
    }

    /// Step 2: applies the committed entries and acknowledges the Ready.
    pub fn apply(&mut self, persisted: Persisted) -> Result<Applied, ReplicaError> {
        let ready = persisted.ready;
        let output = self.store.apply(&ready.committed_entries)?;
        let ack = ready.ack();
        self.raft.advance(ack);
        Ok(Applied {
            entries: ready.committed_entries.iter().map(|e| (e.index, e.term)).collect(),
            output,
            read_states: ready.read_states,
            dropped_reads: ready.dropped_reads,
            installed_snapshot: ready.snapshot.map(|s| s.index),
        })
    }

    /// Both steps at once, for callers that send after applying anyway.
    pub fn process(&mut self) -> Result<Option<(Vec<Message>, Applied)>, ReplicaError> {
        let Some(mut p) = self.persist()? else { return Ok(None) };
        let messages = std::mem::take(&mut p.messages);
        Ok(Some((messages, self.apply(p)?)))
    }

    /// Takes a snapshot and compacts the log once `every` entries were applied since the last
    /// one. Returns the new snapshot, if one was taken.
    pub fn maybe_compact(&mut self, every: u64) -> Result<Option<SnapshotMeta>, ReplicaError> {
        let applied = self.raft.log().applied();
        if applied < self.raft.log().snapshot().index + every.max(1) {
            return Ok(None);
        }
        let Ok(compaction) = self.raft.compact(applied) else {
            return Ok(None);
        };
        self.log.compact(&compaction.snapshot, compaction.log_compacted_to)?;
        Ok(Some(compaction.snapshot))
    }

    /// Entries still in the core's log (for diagnostics and tests).
    pub fn log_entries(&self, lo: Index, hi: Index) -> Result<Vec<Entry>, StorageError> {
        self.log.entries(lo, hi)
    }
}
