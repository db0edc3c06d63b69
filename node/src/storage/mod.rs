//! Durable storage of the Raft log, hard state and snapshot metadata.
//!
//! The Raft core keeps its log in memory since the last compaction and hands every change to the
//! driver in a [`kvorum_raft::Ready`]; a [`LogStore`] makes those changes durable and gives them
//! back after a restart. Two implementations share one contract and one conformance suite
//! ([`testing`]): [`RedbLogStore`] (production, in the node's redb database) and
//! [`MemLogStore`] (tests and the simulator).
//!
//! The state machine's data lives in the same redb database ([`Db`]) but is written by
//! [`crate::mvcc`], in its own transactions, with the applied index beside it.

mod codec;
mod db;
mod faulty;
mod memory;
mod redb_log;
pub mod testing;

use kvorum_raft::{Entry, HardState, Index, SnapshotMeta};

pub use codec::{decode_entry, encode_entry};
pub use db::{CompactReport, Db, DbConfig, DbStats, ReadGuard, WriteGuard};
pub use faulty::{CrashMode, FaultyBackend, FaultyDisk};
pub use memory::MemLogStore;
pub use redb_log::RedbLogStore;

/// One batch of durable changes: the persistence half of a [`kvorum_raft::Ready`].
#[derive(Clone, Copy, Debug, Default)]
pub struct LogWrite<'a> {
    /// A snapshot received from the leader: it replaces the whole stored log.
    pub snapshot: Option<&'a SnapshotMeta>,
    /// Entries to append; appending at index *i* discards every stored entry at *i* and above.
    pub entries: &'a [Entry],
    /// The hard state, when it changed.
    pub hard_state: Option<HardState>,
}

impl LogWrite<'_> {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.snapshot.is_none() && self.entries.is_empty() && self.hard_state.is_none()
    }
}

/// Everything a [`LogStore`] holds, as loaded after a restart.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogState {
    /// The last persisted hard state.
    pub hard_state: HardState,
    /// The latest snapshot metadata (index 0 when there was never one).
    pub snapshot: SnapshotMeta,
    /// The stored entries: contiguous, starting at or before `snapshot.index + 1`.
    pub entries: Vec<Entry>,
}

/// Durable home of one node's Raft log.
///
/// # Correctness contract
///
/// Every implementation, and every caller, relies on these; [`testing::run_suite`] checks them.
///
/// 1. **Durability.** When [`LogStore::persist`] or [`LogStore::compact`] returns `Ok`, the whole
///    write is durable: it survives a crash of the process or the machine. A write that returns
///    `Err`, or is interrupted by a crash, is all-or-nothing: afterwards the store holds either
///    the complete write or none of it.
/// 2. **No holes.** The stored entries are always contiguous. A write whose first entry would
///    leave a gap after the last stored entry (or after the snapshot) is refused with
///    [`StorageError::Hole`] and changes nothing.
/// 3. **Truncation is final.** Appending at index *i* removes every stored entry at *i* and
///    above, including entries beyond the end of the new batch: a removed entry never comes
///    back, after a restart or otherwise (etcd#22442 resurrected truncated entries).
/// 4. **Snapshots replace the log.** A write with a snapshot removes every stored entry and
///    records the snapshot, before the write's own entries are appended. [`LogStore::compact`]
///    records a newer snapshot and removes entries up to `compact_to` only.
/// 5. **Order.** Within one write: snapshot, then entries, then hard state. Writes are
///    serialized: the store has one writer (`&mut self`).
/// 6. **Integrity.** Entries are checksummed when written and verified when read; a mismatch is
///    [`StorageError::Corrupt`], never silently wrong data.
pub trait LogStore: Send {
    /// Everything stored, verified.
    fn load(&self) -> Result<LogState, StorageError>;

    /// Makes one Ready's persistence durable (see the contract).
    fn persist(&mut self, write: LogWrite<'_>) -> Result<(), StorageError>;

    /// Records a local snapshot and drops the entries up to and including `compact_to`.
    fn compact(&mut self, snapshot: &SnapshotMeta, compact_to: Index) -> Result<(), StorageError>;

    /// Stored entries with indexes in `lo..=hi`, verified.
    fn entries(&self, lo: Index, hi: Index) -> Result<Vec<Entry>, StorageError>;

    /// Index of the last stored entry, or the snapshot index when no entry is stored.
    fn last_index(&self) -> Result<Index, StorageError>;
}

/// Why a storage operation failed. Every variant is fatal for the node: its durable state can
/// no longer be trusted to match what it acknowledged, so it must stop rather than continue.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The database reported an error (I/O, corruption it detected, a failed commit).
    #[error("database error: {0}")]
    Db(#[from] redb::Error),
    /// A stored record failed verification.
    #[error("corrupt {what} at index {index}: {reason}")]
    Corrupt {
        /// Which kind of record.
        what: &'static str,
        /// The record's key.
        index: u64,
        /// What was wrong.
        reason: &'static str,
    },
    /// The write would leave a gap in the log.
    #[error("write would leave a hole in the log: next index is {expected}, got {found}")]
    Hole {
        /// The first index the write could start at.
        expected: Index,
        /// The index it started at.
        found: Index,
    },
    /// A snapshot no newer than the stored one.
    #[error("snapshot at index {index} is not newer than the stored snapshot at {stored}")]
    StaleSnapshot {
        /// The refused snapshot's index.
        index: Index,
        /// The stored snapshot's index.
        stored: Index,
    },
    /// The data on disk was written by an incompatible version.
    #[error("storage format version {found} is not supported (expected {expected})")]
    Format {
        /// The version this build writes.
        expected: u64,
        /// The version found.
        found: u64,
    },
}

macro_rules! impl_from_redb {
    ($($t:ty),*) => {
        $(impl From<$t> for StorageError {
            fn from(e: $t) -> Self {
                StorageError::Db(e.into())
            }
        })*
    };
}
impl_from_redb!(
    redb::TransactionError,
    redb::TableError,
    redb::CommitError,
    redb::StorageError,
    redb::DatabaseError
);

/// Checks that `entries` may be written to a log whose valid append positions are
/// `first..=next` (contract point 2), and that they are contiguous among themselves.
pub(crate) fn check_append(first: Index, next: Index, entries: &[Entry]) -> Result<(), StorageError> {
    let Some(head) = entries.first() else { return Ok(()) };
    if head.index > next || head.index < first {
        return Err(StorageError::Hole {
            expected: next,
            found: head.index,
        });
    }
    for (k, e) in entries.iter().enumerate() {
        let expected = head.index + k as u64;
        if e.index != expected {
            return Err(StorageError::Hole {
                expected,
                found: e.index,
            });
        }
    }
    Ok(())
}
