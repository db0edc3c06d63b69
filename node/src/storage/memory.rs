//! [`LogStore`] in memory: the reference the redb store is checked against, and the store of
//! tests that need no disk. Entries are kept encoded, so the codec's pair assertion runs here
//! too.

use std::collections::BTreeMap;

use kvorum_raft::{Entry, HardState, Index, SnapshotMeta};

use super::codec::{decode_entry, encode_entry};
use super::{LogState, LogStore, LogWrite, StorageError, check_append};

/// The Raft log in memory. "Durable" means "stored in this value".
#[derive(Clone, Debug, Default)]
pub struct MemLogStore {
    hard_state: HardState,
    snapshot: SnapshotMeta,
    log: BTreeMap<Index, Vec<u8>>,
}

impl MemLogStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn last(&self) -> Index {
        self.log
            .last_key_value()
            .map_or(self.snapshot.index, |(k, _)| *k)
            .max(self.snapshot.index)
    }
}

impl LogStore for MemLogStore {
    fn load(&self) -> Result<LogState, StorageError> {
        Ok(LogState {
            hard_state: self.hard_state,
            snapshot: self.snapshot.clone(),
            entries: self
                .log
                .iter()
                .map(|(i, r)| decode_entry(*i, r))
                .collect::<Result<_, _>>()?,
        })
    }

    fn persist(&mut self, write: LogWrite<'_>) -> Result<(), StorageError> {
        // Check everything first so that a refused write changes nothing.
        let (first, next) = match write.snapshot {
            Some(s) if s.index <= self.snapshot.index => {
                return Err(StorageError::StaleSnapshot {
                    index: s.index,
                    stored: self.snapshot.index,
                });
            }
            Some(s) => (s.index + 1, s.index + 1),
            None => (self.snapshot.index + 1, self.last() + 1),
        };
        check_append(first, next, write.entries)?;
        if let Some(s) = write.snapshot {
            self.log.clear();
            self.snapshot = s.clone();
        }
        if let Some(head) = write.entries.first() {
            self.log.split_off(&head.index);
            for e in write.entries {
                self.log.insert(e.index, encode_entry(e));
            }
        }
        if let Some(hs) = write.hard_state {
            self.hard_state = hs;
        }
        Ok(())
    }

    fn compact(&mut self, snapshot: &SnapshotMeta, compact_to: Index) -> Result<(), StorageError> {
        if snapshot.index <= self.snapshot.index {
            return Err(StorageError::StaleSnapshot {
                index: snapshot.index,
                stored: self.snapshot.index,
            });
        }
        self.log = self.log.split_off(&(compact_to.min(snapshot.index) + 1));
        self.snapshot = snapshot.clone();
        Ok(())
    }

    fn entries(&self, lo: Index, hi: Index) -> Result<Vec<Entry>, StorageError> {
        if lo > hi {
            return Ok(Vec::new());
        }
        self.log.range(lo..=hi).map(|(i, r)| decode_entry(*i, r)).collect()
    }

    fn last_index(&self) -> Result<Index, StorageError> {
        Ok(self.last())
    }
}
