//! [`LogStore`] in the node's redb database.
//!
//! Tables: `raft_log` maps an index to an encoded, checksummed entry ([`super::codec`]);
//! `raft_state` holds the hard state, the snapshot metadata and the format version. Each
//! [`LogStore::persist`] is one write transaction committed with `Durability::Immediate`: one
//! fsync per Ready, however many entries it carries (group commit).

use kvorum_raft::{ConfState, Entry, HardState, Index, SnapshotMeta};
use redb::{Durability, ReadableTable, ReadableTableMetadata, TableDefinition};

use super::codec::{decode_entry, encode_entry};
use super::{Db, LogState, LogStore, LogWrite, StorageError, check_append};

const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("raft_log");
const STATE: TableDefinition<&str, &[u8]> = TableDefinition::new("raft_state");

const HARD_STATE_KEY: &str = "hard_state";
const SNAPSHOT_KEY: &str = "snapshot";
const FORMAT_KEY: &str = "format";
const FORMAT_VERSION: u64 = 1;

/// The Raft log in redb.
pub struct RedbLogStore {
    db: Db,
    /// Mirrors of what is stored, so appends are checked without reading.
    snapshot: SnapshotMeta,
    last_index: Index,
}

impl RedbLogStore {
    /// Opens the log in `db`, creating its tables on first use.
    pub fn open(db: Db) -> Result<RedbLogStore, StorageError> {
        let txn = db.write(Durability::Immediate)?;
        {
            let mut state = txn.open_table(STATE)?;
            let format = state.get(FORMAT_KEY)?.map(|v| decode_u64s(v.value(), "format", 1));
            match format {
                None => {
                    state.insert(FORMAT_KEY, FORMAT_VERSION.to_le_bytes().as_slice())?;
                }
                Some(Ok(v)) if v[0] == FORMAT_VERSION => {}
                Some(Ok(v)) => {
                    return Err(StorageError::Format {
                        expected: FORMAT_VERSION,
                        found: v[0],
                    });
                }
                Some(Err(e)) => return Err(e),
            }
            txn.open_table(LOG)?;
        }
        txn.commit()?;
        let mut store = RedbLogStore {
            db,
            snapshot: SnapshotMeta::default(),
            last_index: 0,
        };
        let (snapshot, last_index) = {
            let r = store.db.read()?;
            let state = r.open_table(STATE)?;
            let snapshot = match state.get(SNAPSHOT_KEY)? {
                Some(v) => decode_snapshot(v.value())?,
                None => SnapshotMeta::default(),
            };
            let log = r.open_table(LOG)?;
            let last = log.last()?.map_or(snapshot.index, |(k, _)| k.value());
            let last = last.max(snapshot.index);
            (snapshot, last)
        };
        store.snapshot = snapshot;
        store.last_index = last_index;
        Ok(store)
    }

    /// The database this log lives in.
    pub fn db(&self) -> &Db {
        &self.db
    }
}

impl LogStore for RedbLogStore {
    fn load(&self) -> Result<LogState, StorageError> {
        let r = self.db.read()?;
        let state = r.open_table(STATE)?;
        let hard_state = match state.get(HARD_STATE_KEY)? {
            Some(v) => decode_hard_state(v.value())?,
            None => HardState::default(),
        };
        let snapshot = match state.get(SNAPSHOT_KEY)? {
            Some(v) => decode_snapshot(v.value())?,
            None => SnapshotMeta::default(),
        };
        let log = r.open_table(LOG)?;
        let mut entries = Vec::with_capacity(log.len()? as usize);
        for row in log.iter()? {
            let (k, v) = row?;
            let index = k.value();
            if let Some(prev) = entries.last().map(|e: &Entry| e.index)
                && index != prev + 1
            {
                return Err(StorageError::Corrupt {
                    what: "log",
                    index,
                    reason: "hole in the stored log",
                });
            }
            entries.push(decode_entry(index, v.value())?);
        }
        if let Some(first) = entries.first()
            && first.index > snapshot.index + 1
        {
            return Err(StorageError::Corrupt {
                what: "log",
                index: first.index,
                reason: "hole between the snapshot and the first entry",
            });
        }
        Ok(LogState {
            hard_state,
            snapshot,
            entries,
        })
    }

    fn persist(&mut self, write: LogWrite<'_>) -> Result<(), StorageError> {
        if write.is_empty() {
            return Ok(());
        }
        let mut snapshot = &self.snapshot;
        let mut last_index = self.last_index;
        let txn = self.db.write(Durability::Immediate)?;
        {
            let mut log = txn.open_table(LOG)?;
            let mut state = txn.open_table(STATE)?;
            if let Some(s) = write.snapshot {
                if s.index <= snapshot.index {
                    return Err(StorageError::StaleSnapshot {
                        index: s.index,
                        stored: snapshot.index,
                    });
                }
                log.retain(|_, _| false)?;
                state.insert(SNAPSHOT_KEY, encode_snapshot(s).as_slice())?;
                snapshot = s;
                last_index = s.index;
            }
            check_append(snapshot.index + 1, last_index + 1, write.entries)?;
            if let Some(first) = write.entries.first() {
                // Truncation is final: drop everything from the first new index on, even
                // entries beyond the end of this batch.
                log.retain_in(first.index.., |_, _| false)?;
                for e in write.entries {
                    log.insert(e.index, encode_entry(e).as_slice())?;
                }
                last_index = write.entries.last().expect("non-empty").index;
            }
            if let Some(hs) = write.hard_state {
                state.insert(HARD_STATE_KEY, encode_hard_state(&hs).as_slice())?;
            }
        }
        txn.commit()?;
        if let Some(s) = write.snapshot {
            self.snapshot = s.clone();
        }
        self.last_index = last_index;
        Ok(())
    }

    fn compact(&mut self, snapshot: &SnapshotMeta, compact_to: Index) -> Result<(), StorageError> {
        if snapshot.index <= self.snapshot.index {
            return Err(StorageError::StaleSnapshot {
                index: snapshot.index,
                stored: self.snapshot.index,
            });
        }
        let compact_to = compact_to.min(snapshot.index);
        let txn = self.db.write(Durability::Immediate)?;
        {
            let mut log = txn.open_table(LOG)?;
            log.retain_in(..=compact_to, |_, _| false)?;
            let mut state = txn.open_table(STATE)?;
            state.insert(SNAPSHOT_KEY, encode_snapshot(snapshot).as_slice())?;
        }
        txn.commit()?;
        self.snapshot = snapshot.clone();
        self.last_index = self.last_index.max(snapshot.index);
        Ok(())
    }

    fn entries(&self, lo: Index, hi: Index) -> Result<Vec<Entry>, StorageError> {
        if lo > hi {
            return Ok(Vec::new());
        }
        let r = self.db.read()?;
        let log = r.open_table(LOG)?;
        let mut out = Vec::new();
        for row in log.range(lo..=hi)? {
            let (k, v) = row?;
            out.push(decode_entry(k.value(), v.value())?);
        }
        Ok(out)
    }

    fn last_index(&self) -> Result<Index, StorageError> {
        Ok(self.last_index)
    }
}

fn decode_u64s(bytes: &[u8], what: &'static str, min: usize) -> Result<Vec<u64>, StorageError> {
    if !bytes.len().is_multiple_of(8) || bytes.len() / 8 < min {
        return Err(StorageError::Corrupt {
            what,
            index: 0,
            reason: "record has the wrong length",
        });
    }
    Ok(bytes
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
        .collect())
}

fn encode_u64s(values: impl IntoIterator<Item = u64>) -> Vec<u8> {
    values.into_iter().flat_map(u64::to_le_bytes).collect()
}

fn encode_hard_state(hs: &HardState) -> Vec<u8> {
    encode_u64s([hs.term, hs.vote.unwrap_or(0), hs.commit])
}

fn decode_hard_state(bytes: &[u8]) -> Result<HardState, StorageError> {
    let v = decode_u64s(bytes, "hard state", 3)?;
    Ok(HardState {
        term: v[0],
        vote: (v[1] != 0).then_some(v[1]),
        commit: v[2],
    })
}

/// `index | term | #voters | voters… | #learners | learners…`
fn encode_snapshot(s: &SnapshotMeta) -> Vec<u8> {
    let mut v = vec![s.index, s.term, s.conf.voters.len() as u64];
    v.extend(&s.conf.voters);
    v.push(s.conf.learners.len() as u64);
    v.extend(&s.conf.learners);
    encode_u64s(v)
}

fn decode_snapshot(bytes: &[u8]) -> Result<SnapshotMeta, StorageError> {
    let bad = StorageError::Corrupt {
        what: "snapshot metadata",
        index: 0,
        reason: "member counts disagree with the record length",
    };
    let v = decode_u64s(bytes, "snapshot metadata", 4)?;
    let voters = v[2] as usize;
    if v.len() < 4 + voters {
        return Err(bad);
    }
    let learners = v[3 + voters] as usize;
    if v.len() != 4 + voters + learners {
        return Err(bad);
    }
    Ok(SnapshotMeta {
        index: v[0],
        term: v[1],
        conf: ConfState {
            voters: v[3..3 + voters].iter().copied().collect(),
            learners: v[4 + voters..].iter().copied().collect(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_metadata_round_trips() {
        let s = SnapshotMeta {
            index: 9,
            term: 2,
            conf: ConfState {
                voters: [1, 2, 3].into(),
                learners: [7].into(),
            },
        };
        assert_eq!(decode_snapshot(&encode_snapshot(&s)).unwrap(), s);
        let empty = SnapshotMeta::default();
        assert_eq!(decode_snapshot(&encode_snapshot(&empty)).unwrap(), empty);
        let mut bad = encode_snapshot(&s);
        bad.truncate(bad.len() - 8);
        assert!(decode_snapshot(&bad).is_err());
    }

    #[test]
    fn hard_state_round_trips() {
        for hs in [
            HardState::default(),
            HardState {
                term: 5,
                vote: Some(3),
                commit: 17,
            },
        ] {
            assert_eq!(decode_hard_state(&encode_hard_state(&hs)).unwrap(), hs);
        }
        assert!(decode_hard_state(&[1, 2, 3]).is_err());
    }

    #[test]
    fn refuses_a_database_of_another_format() {
        let db = Db::in_memory();
        RedbLogStore::open(db.clone()).unwrap();
        {
            let txn = db.write(Durability::Immediate).unwrap();
            txn.open_table(STATE)
                .unwrap()
                .insert(FORMAT_KEY, 99u64.to_le_bytes().as_slice())
                .unwrap();
            txn.commit().unwrap();
        }
        let err = RedbLogStore::open(db).err().expect("must refuse");
        assert!(matches!(err, StorageError::Format { found: 99, .. }), "{err}");
    }
}
