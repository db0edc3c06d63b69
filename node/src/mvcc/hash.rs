//! A digest of the keyspace at a revision (etcd's HashKV), so members can be checked against
//! each other: members that applied the same log have the same digest at every revision.
//!
//! The digest covers every change the index still holds up to the revision, in key then
//! revision order: the key, the revision, and the stored record (value, lease, versions). It
//! depends only on replicated state, not on when compacted rows were physically purged.

use super::MvccError;
use super::range::{self, HISTORY};
use super::store::Store;

/// The result of [`Store::hash_kv`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KvHash {
    /// CRC-32C of the keyspace up to `revision`.
    pub hash: u32,
    /// The compaction revision at the time.
    pub compact_revision: i64,
    /// The revision hashed.
    pub revision: i64,
}

impl Store {
    /// Digest of the keyspace as of `revision` (0 or less: the current revision).
    pub fn hash_kv(&self, revision: i64) -> Result<KvHash, MvccError> {
        let st = self.state().read();
        let rev = range::read_revision(&st, revision, st.current_rev)?;
        let r = self.db().read()?;
        let history = r.open_table(HISTORY)?;
        let mut crc = 0u32;
        for (key, h) in &st.index {
            for change in h.changes().take_while(|c| c.rev.main <= rev) {
                let row = history.get((change.rev.main as u64, change.rev.sub))?.ok_or(
                    crate::storage::StorageError::Corrupt {
                        what: "history record",
                        index: change.rev.main as u64,
                        reason: "indexed revision missing from the history table",
                    },
                )?;
                crc = crc32c::crc32c_append(crc, key);
                crc = crc32c::crc32c_append(crc, &change.rev.main.to_le_bytes());
                crc = crc32c::crc32c_append(crc, &change.rev.sub.to_le_bytes());
                crc = crc32c::crc32c_append(crc, row.value());
            }
        }
        Ok(KvHash {
            hash: crc,
            compact_revision: st.compact_rev,
            revision: rev,
        })
    }
}
