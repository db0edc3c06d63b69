//! The node's redb database, shared by the Raft log and the state machine, and its online
//! space reclamation.
//!
//! redb's `Database::compact` needs exclusive access (no live transaction). Every transaction
//! therefore holds a shared lock on the database for its whole life, and compaction takes the
//! lock exclusively only when it is free at once (`try_write`): it never queues behind a long
//! snapshot read, and requests wait for it only while it runs. Reads of current values are
//! served from the state machine's memory and do not touch the database at all, so what a
//! compaction pauses is the write path and history reads; [`CompactReport::pause`] measures it.

use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use parking_lot::lock_api::ArcRwLockReadGuard;
use redb::{Database, Durability, ReadTransaction, ReadableDatabase, StorageBackend, WriteTransaction};

use super::StorageError;

/// How to open the database.
#[derive(Clone, Debug)]
pub struct DbConfig {
    /// redb's page cache. Current values are cached by the state machine itself, so this mostly
    /// serves history reads and writes; a small cache keeps the node's memory low.
    pub cache_bytes: usize,
}

impl Default for DbConfig {
    fn default() -> Self {
        DbConfig { cache_bytes: 32 << 20 }
    }
}

/// A handle on the node's database. Cheap to clone.
#[derive(Clone)]
pub struct Db {
    inner: Arc<RwLock<Database>>,
    path: Option<PathBuf>,
}

/// A read transaction that keeps compaction away while it lives.
pub struct ReadGuard {
    txn: ReadTransaction,
    _lock: ArcRwLockReadGuard<parking_lot::RawRwLock, Database>,
}

/// A write transaction that keeps compaction away while it lives. Dropped without
/// [`WriteGuard::commit`], it aborts.
pub struct WriteGuard {
    txn: WriteTransaction,
    _lock: ArcRwLockReadGuard<parking_lot::RawRwLock, Database>,
}

/// Space figures of the database.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DbStats {
    /// Size of the database file (0 for an in-memory database).
    pub file_bytes: u64,
    /// Bytes of keys and values stored, without index overhead.
    pub stored_bytes: u64,
    /// Bytes lost to fragmentation: what compaction can give back.
    pub fragmented_bytes: u64,
}

/// What one online compaction did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompactReport {
    /// How long requests that need the database waited: the whole exclusive section.
    pub pause: Duration,
    /// File size before.
    pub file_bytes_before: u64,
    /// File size after.
    pub file_bytes_after: u64,
}

impl Db {
    /// Opens (or creates) the database file at `path`.
    pub fn open(path: &Path, cfg: &DbConfig) -> Result<Db, StorageError> {
        let db = Database::builder().set_cache_size(cfg.cache_bytes).create(path)?;
        Ok(Db {
            inner: Arc::new(RwLock::new(db)),
            path: Some(path.to_path_buf()),
        })
    }

    /// A database over any redb backend (in-memory, fault-injecting).
    pub fn with_backend(backend: impl StorageBackend, cfg: &DbConfig) -> Result<Db, StorageError> {
        let db = Database::builder()
            .set_cache_size(cfg.cache_bytes)
            .create_with_backend(backend)?;
        Ok(Db {
            inner: Arc::new(RwLock::new(db)),
            path: None,
        })
    }

    /// A fresh in-memory database, for tests.
    pub fn in_memory() -> Db {
        Db::with_backend(redb::backends::InMemoryBackend::new(), &DbConfig::default())
            .expect("an in-memory database always opens")
    }

    /// Begins a read transaction.
    pub fn read(&self) -> Result<ReadGuard, StorageError> {
        let lock = self.inner.read_arc();
        let txn = lock.begin_read()?;
        Ok(ReadGuard { txn, _lock: lock })
    }

    /// Begins a write transaction with the given durability. Writes are serialized by redb.
    pub fn write(&self, durability: Durability) -> Result<WriteGuard, StorageError> {
        let lock = self.inner.read_arc();
        let mut txn = lock.begin_write()?;
        txn.set_durability(durability).map_err(|e| StorageError::Db(e.into()))?;
        Ok(WriteGuard { txn, _lock: lock })
    }

    /// Space figures (takes a short write transaction).
    pub fn stats(&self) -> Result<DbStats, StorageError> {
        let guard = self.write(Durability::None)?;
        let stats = guard.txn.stats()?;
        drop(guard);
        Ok(DbStats {
            file_bytes: self.file_bytes(),
            stored_bytes: stats.stored_bytes(),
            fragmented_bytes: stats.fragmented_bytes(),
        })
    }

    fn file_bytes(&self) -> u64 {
        self.path
            .as_ref()
            .and_then(|p| std::fs::metadata(p).ok())
            .map_or(0, |m| m.len())
    }

    /// Compacts the file now if nothing holds the database; returns `None` if something does
    /// (try again later) and the pause otherwise.
    pub fn compact_now(&self) -> Result<Option<CompactReport>, StorageError> {
        let before = self.file_bytes();
        let start = Instant::now();
        let Some(mut db) = self.inner.try_write() else {
            return Ok(None);
        };
        match db.compact() {
            Ok(_) => {}
            Err(redb::CompactionError::TransactionInProgress) => return Ok(None),
            Err(e) => return Err(StorageError::Db(e.into())),
        }
        drop(db);
        Ok(Some(CompactReport {
            pause: start.elapsed(),
            file_bytes_before: before,
            file_bytes_after: self.file_bytes(),
        }))
    }

    /// Compacts when at least `min_fragmented_bytes` and `min_fraction` of the file are
    /// reclaimable. Returns `None` when it did not run.
    pub fn compact_if_fragmented(
        &self,
        min_fragmented_bytes: u64,
        min_fraction: f64,
    ) -> Result<Option<CompactReport>, StorageError> {
        let stats = self.stats()?;
        let total = stats.file_bytes.max(stats.stored_bytes + stats.fragmented_bytes).max(1);
        if stats.fragmented_bytes < min_fragmented_bytes
            || (stats.fragmented_bytes as f64) < min_fraction * total as f64
        {
            return Ok(None);
        }
        self.compact_now()
    }
}

impl Deref for ReadGuard {
    type Target = ReadTransaction;
    fn deref(&self) -> &ReadTransaction {
        &self.txn
    }
}

impl WriteGuard {
    /// Commits the transaction (durable on return when begun with `Durability::Immediate`).
    pub fn commit(self) -> Result<(), StorageError> {
        self.txn.commit()?;
        Ok(())
    }
}

impl Deref for WriteGuard {
    type Target = WriteTransaction;
    fn deref(&self) -> &WriteTransaction {
        &self.txn
    }
}

impl DerefMut for WriteGuard {
    fn deref_mut(&mut self) -> &mut WriteTransaction {
        &mut self.txn
    }
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("path", &self.path).finish()
    }
}
