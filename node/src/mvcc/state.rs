//! The state machine's in-memory state, and how it is rebuilt from the database on start and
//! after a snapshot install.
//!
//! Tables (all in the node's database, written in the same transaction as `applied_index`):
//! - `mvcc_history`: revision → record ([`super::record`]), every change since compaction;
//! - `mvcc_leases`: lease ID → granted TTL and last checkpointed remaining TTL;
//! - `mvcc_meta`: `applied_index`, `current_rev`, `compact_rev`.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use redb::{ReadableTable, TableDefinition};

use super::index::{Change, Current, KeyHistory, Revision};
use super::range::HISTORY;
use super::record::{self, REVISION_KEY_BYTES};
use crate::proto::kvorum::internal::MemberAttributes;
use crate::storage::{Db, StorageError};
use prost::Message as _;

/// Lease ID → `ttl: i64 | remaining: i64`.
pub const LEASES: TableDefinition<i64, &[u8]> = TableDefinition::new("mvcc_leases");
/// Named counters.
pub const META: TableDefinition<&str, i64> = TableDefinition::new("mvcc_meta");
/// Member ID → member metadata (`MemberAttributes`, protobuf).
pub const MEMBERS: TableDefinition<u64, &[u8]> = TableDefinition::new("cluster_members");

pub const APPLIED_INDEX: &str = "applied_index";
pub const CURRENT_REV: &str = "current_rev";
pub const COMPACT_REV: &str = "compact_rev";

/// Bytes a lease counts for in the logical size.
pub const LEASE_BYTES: u64 = 8 + 16;

/// A granted lease.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Lease {
    /// TTL in seconds, as granted.
    pub ttl: i64,
    /// Remaining TTL at the last checkpoint (0: never checkpointed).
    pub remaining: i64,
    /// Keys attached to it now.
    pub keys: BTreeSet<Bytes>,
}

impl Lease {
    /// The table record.
    pub fn encode(&self) -> [u8; 16] {
        let mut b = [0; 16];
        b[..8].copy_from_slice(&self.ttl.to_le_bytes());
        b[8..].copy_from_slice(&self.remaining.to_le_bytes());
        b
    }

    fn decode(id: i64, bytes: &[u8]) -> Result<Lease, StorageError> {
        let arr: [u8; 16] = bytes.try_into().map_err(|_| StorageError::Corrupt {
            what: "lease",
            index: id as u64,
            reason: "record has the wrong length",
        })?;
        Ok(Lease {
            ttl: i64::from_le_bytes(arr[..8].try_into().expect("8 bytes")),
            remaining: i64::from_le_bytes(arr[8..].try_into().expect("8 bytes")),
            keys: BTreeSet::new(),
        })
    }
}

/// Everything the state machine keeps in memory.
#[derive(Debug, Default)]
pub struct State {
    /// Key → its history.
    pub index: BTreeMap<Bytes, KeyHistory>,
    /// The latest revision (etcd starts at 1).
    pub current_rev: i64,
    /// Reads below this revision fail as compacted (0: never compacted).
    pub compact_rev: i64,
    /// The last Raft index applied, persisted with the data.
    pub applied_index: u64,
    /// Granted leases.
    pub leases: BTreeMap<i64, Lease>,
    /// Bytes of live history records and leases: what the space quota counts.
    pub logical_bytes: u64,
    /// History rows no longer reachable after compaction, waiting to be deleted.
    pub purge: Vec<Revision>,
    /// Members' metadata (peer URLs, name, client URLs), by ID.
    pub members: BTreeMap<u64, MemberAttributes>,
}

impl State {
    /// Reads the whole state back from the database (creating the tables on first use).
    pub fn load(db: &Db) -> Result<State, StorageError> {
        {
            let txn = db.write(redb::Durability::None)?;
            txn.open_table(HISTORY)?;
            txn.open_table(LEASES)?;
            txn.open_table(META)?;
            txn.open_table(MEMBERS)?;
            txn.commit()?;
        }
        let r = db.read()?;
        let meta = r.open_table(META)?;
        let get = |k| -> Result<i64, StorageError> { Ok(meta.get(k)?.map_or(0, |v| v.value())) };
        let mut st = State {
            current_rev: get(CURRENT_REV)?.max(1),
            compact_rev: get(COMPACT_REV)?,
            applied_index: get(APPLIED_INDEX)? as u64,
            ..State::default()
        };
        for row in r.open_table(LEASES)?.iter()? {
            let (id, v) = row?;
            st.leases.insert(id.value(), Lease::decode(id.value(), v.value())?);
            st.logical_bytes += LEASE_BYTES;
        }
        for row in r.open_table(MEMBERS)?.iter()? {
            let (id, v) = row?;
            let m = MemberAttributes::decode(v.value()).map_err(|_| StorageError::Corrupt {
                what: "member",
                index: id.value(),
                reason: "undecodable member record",
            })?;
            st.members.insert(id.value(), m);
        }
        let history = r.open_table(HISTORY)?;
        for row in history.iter()? {
            let (k, v) = row?;
            let (main, sub) = k.value();
            let rev = Revision { main: main as i64, sub };
            let rec = record::decode(rev, v.value())?;
            let change = Change {
                rev,
                bytes: (v.value().len() as u64 + REVISION_KEY_BYTES) as u32,
            };
            let h = st.index.entry(rec.kv.key.clone()).or_default();
            if rec.tombstone && !h.is_live() {
                // Left over from an interrupted purge: its generation is gone.
                st.purge.push(rev);
                continue;
            }
            h.restore(change, rec.tombstone, rec.kv.create_revision, rec.kv.version);
            h.set_current((!rec.tombstone).then(|| Current {
                value: rec.kv.value.clone(),
                lease: rec.kv.lease,
            }));
        }
        st.index.retain(|_, h| h.changes().next().is_some());
        // Rows a compaction made unreachable but a crash kept: prune them again.
        let compact_rev = st.compact_rev;
        if compact_rev > 0 {
            let mut dropped = Vec::new();
            st.index.retain(|_, h| !h.compact(compact_rev, |c| dropped.push(c.rev)));
            st.purge.extend(dropped);
        }
        for (key, h) in &st.index {
            st.logical_bytes += h.changes().map(|c| u64::from(c.bytes)).sum::<u64>();
            if let Some(cur) = h.current()
                && cur.lease != 0
                && let Some(l) = st.leases.get_mut(&cur.lease)
            {
                l.keys.insert(key.clone());
            }
        }
        Ok(st)
    }
}
