//! [`Store`]: the state machine's entry points. Apply runs on the driver's thread; reads run
//! on any thread.
//!
//! # Concurrency
//!
//! The in-memory [`State`] sits behind a `RwLock`. Apply holds the write lock from the first
//! change of a batch until its database transaction has committed, so a reader (which holds
//! the read lock while it uses both the index and a database read transaction) always sees
//! memory and disk at the same revision. Apply commits are not fsynced
//! (`Durability::None`): the log entries they come from are durable already, and the next
//! fsynced log write makes them durable too. After a crash, the state and its applied index
//! roll back together and the log suffix is applied again.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use kvorum_raft::{ConfChange, Entry, EntryPayload};
use parking_lot::RwLock;
use prost::Message as _;
use redb::{Durability, ReadOnlyTable};

use super::apply::Applier;
use super::index::{self, KeySpan, Revision};
use super::range::{self, HISTORY, History};
use super::record;
use super::state::{APPLIED_INDEX, COMPACT_REV, CURRENT_REV, LEASES, MEMBERS, META, State};
use super::watch::{SYNC_BATCH_REVISIONS, WatchHub, WatchSpec, WatchStream, shape, wants};
use super::{MvccConfig, MvccError};
use crate::proto::etcdserverpb::{
    CompactionResponse, DeleteRangeResponse, LeaseGrantResponse, LeaseRevokeResponse, PutResponse, RangeRequest,
    RangeResponse, TxnResponse,
};
use crate::proto::kvorum::internal::{Command, command::Op};
use crate::proto::mvccpb::{Event, KeyValue, event::EventType};
use crate::storage::{Db, StorageError};

/// The reply to an applied command.
#[derive(Clone, Debug, PartialEq)]
pub enum Response {
    /// To a put.
    Put(PutResponse),
    /// To a delete.
    DeleteRange(DeleteRangeResponse),
    /// To a txn.
    Txn(TxnResponse),
    /// To a compaction.
    Compaction(CompactionResponse),
    /// To a lease grant.
    LeaseGrant(LeaseGrantResponse),
    /// To a lease revoke.
    LeaseRevoke(LeaseRevokeResponse),
    /// To a lease checkpoint (internal; no client waits for it).
    LeaseCheckpoint,
    /// To a member metadata update.
    Member,
}

/// A lease change, for the leader's lease clock ([`super::Lessor`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseChange {
    /// A lease was granted.
    Granted {
        /// Its ID.
        id: i64,
        /// Its TTL in seconds.
        ttl: i64,
    },
    /// A lease was revoked (explicitly or on expiry).
    Revoked {
        /// Its ID.
        id: i64,
    },
    /// A lease's remaining TTL was recorded.
    Checkpointed {
        /// Its ID.
        id: i64,
        /// Remaining TTL in seconds.
        remaining: i64,
    },
}

/// What applying a batch produced.
#[derive(Debug, Default)]
pub struct ApplyOutput {
    /// One result per command entry applied, by log index.
    pub results: Vec<(u64, Result<Response, MvccError>)>,
    /// Lease changes, in order.
    pub lease_changes: Vec<LeaseChange>,
    /// The store revision after the batch.
    pub revision: i64,
}

/// A lease as the state machine knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseInfo {
    /// ID.
    pub id: i64,
    /// Granted TTL in seconds.
    pub ttl: i64,
    /// Remaining TTL at the last checkpoint (0: never checkpointed).
    pub checkpointed_remaining: i64,
    /// Attached keys.
    pub keys: Vec<bytes::Bytes>,
}

/// The replicated key-value state machine.
pub struct Store {
    db: Db,
    cfg: MvccConfig,
    state: RwLock<State>,
    hub: Arc<WatchHub>,
    /// Set when a storage failure left memory and disk out of step: every later call fails.
    failed: AtomicBool,
}

impl Store {
    /// Opens the state machine in `db`, rebuilding the index from the history table.
    pub fn open(db: Db, cfg: MvccConfig) -> Result<Store, StorageError> {
        let state = State::load(&db)?;
        let hub = WatchHub::new(cfg.watch_buffer, state.current_rev);
        Ok(Store {
            db,
            cfg,
            state: RwLock::new(state),
            hub,
            failed: AtomicBool::new(false),
        })
    }

    /// The database the store lives in.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The configuration.
    pub fn config(&self) -> &MvccConfig {
        &self.cfg
    }

    /// The last Raft index whose effects are in the store.
    pub fn applied_index(&self) -> u64 {
        self.state.read().applied_index
    }

    /// The latest revision.
    pub fn current_revision(&self) -> i64 {
        self.state.read().current_rev
    }

    /// The compaction revision (0: never compacted).
    pub fn compact_revision(&self) -> i64 {
        self.state.read().compact_rev
    }

    /// Bytes counted against the space quota.
    pub fn logical_bytes(&self) -> u64 {
        self.state.read().logical_bytes
    }

    /// Whether a write adding about `cost` bytes fits under the quota. Checked by the leader
    /// before proposing (not at apply, so that members never disagree).
    pub fn quota_allows(&self, cost: u64) -> bool {
        self.state.read().logical_bytes + cost <= self.cfg.quota_bytes
    }

    /// Decides whether a command may be proposed: well-formed, within the request size limit
    /// (`encoded_bytes`), and, for writes that add data, within the space quota. Run by the
    /// member that proposes; apply checks the structure again.
    pub fn admit(&self, op: &Op, encoded_bytes: usize) -> Result<(), MvccError> {
        if encoded_bytes > self.cfg.max_request_bytes {
            return Err(MvccError::RequestTooLarge);
        }
        super::check::command(op, self.cfg.max_txn_ops)?;
        if let Some(cost) = super::check::quota_cost(op)
            && !self.quota_allows(cost)
        {
            return Err(MvccError::NoSpace);
        }
        Ok(())
    }

    fn check_healthy(&self) -> Result<(), StorageError> {
        if self.failed.load(Ordering::Acquire) {
            return Err(StorageError::Corrupt {
                what: "state machine",
                index: 0,
                reason: "an earlier storage failure left it inconsistent; restart the node",
            });
        }
        Ok(())
    }

    /// Applies committed entries in one database transaction. Entries at or below the
    /// applied index (already reflected, e.g. by an installed snapshot) are skipped. A
    /// storage error is fatal: the store refuses everything afterwards.
    pub fn apply(&self, entries: &[Entry]) -> Result<ApplyOutput, StorageError> {
        self.check_healthy()?;
        let result = self.apply_batch(entries);
        if result.is_err() {
            self.failed.store(true, Ordering::Release);
        }
        let (output, events) = result?;
        self.hub.notify(&events, output.revision);
        Ok(output)
    }

    fn apply_batch(&self, entries: &[Entry]) -> Result<(ApplyOutput, Vec<Event>), StorageError> {
        let mut st = self.state.write();
        let mut output = ApplyOutput::default();
        let txn = self.db.write(Durability::None)?;
        let events = {
            let mut ap = Applier::new(
                &mut st,
                txn.open_table(HISTORY)?,
                txn.open_table(LEASES)?,
                txn.open_table(MEMBERS)?,
                self.cfg.max_txn_ops,
            );
            for e in entries {
                if e.index <= ap.st.applied_index {
                    continue;
                }
                ap.st.applied_index = e.index;
                if let EntryPayload::ConfChange(ConfChange::RemoveNode(id)) = &e.payload {
                    if let Err(MvccError::Storage(err)) = ap.member_removed(*id) {
                        return Err(err);
                    }
                    continue;
                }
                let EntryPayload::Command(data) = &e.payload else {
                    continue;
                };
                let result = match Command::decode(data.as_ref()) {
                    Ok(Command { op: Some(op) }) => ap.apply(&op),
                    _ => Err(MvccError::InvalidRequest(super::error::InvalidRequest::EmptyOperation)),
                };
                if let Err(MvccError::Storage(e)) = result {
                    return Err(e);
                }
                output.results.push((e.index, result));
            }
            output.lease_changes = std::mem::take(&mut ap.lease_changes);
            std::mem::take(&mut ap.events)
        };
        {
            let mut meta = txn.open_table(META)?;
            meta.insert(APPLIED_INDEX, st.applied_index as i64)?;
            meta.insert(CURRENT_REV, st.current_rev)?;
            meta.insert(COMPACT_REV, st.compact_rev)?;
        }
        txn.commit()?;
        output.revision = st.current_rev;
        Ok((output, events))
    }

    /// Deletes up to `max_rows` history rows made unreachable by compaction. Returns how many
    /// remain. Safe to run between applies: nothing reads these rows any more.
    pub fn purge(&self, max_rows: usize) -> Result<usize, StorageError> {
        self.check_healthy()?;
        let batch: Vec<Revision> = {
            let mut st = self.state.write();
            let n = st.purge.len().min(max_rows);
            st.purge.drain(..n).collect()
        };
        if !batch.is_empty() {
            let txn = self.db.write(Durability::None)?;
            {
                let mut history = txn.open_table(HISTORY)?;
                for rev in &batch {
                    history.remove((rev.main as u64, rev.sub))?;
                }
            }
            txn.commit()?;
        }
        Ok(self.state.read().purge.len())
    }

    /// A linearizable-or-not read is the caller's business; this serves the request from the
    /// local state (etcd's `Range`).
    pub fn range(&self, r: &RangeRequest) -> Result<RangeResponse, MvccError> {
        super::check::range(r)?;
        self.check_healthy()?;
        let st = self.state.read();
        let rev = range::read_revision(&st, r.revision, st.current_rev)?;
        let history = LazyHistory::new(&self.db);
        let mut resp = range::range(&st, &history, r, rev)?;
        resp.header = Some(crate::proto::etcdserverpb::ResponseHeader {
            revision: st.current_rev,
            ..Default::default()
        });
        Ok(resp)
    }

    /// The current value of one key, served from memory (the fast path of point reads).
    pub fn get(&self, key: &[u8]) -> Option<KeyValue> {
        let st = self.state.read();
        let (k, h) = st.index.get_key_value(key)?;
        let at = h.latest()?;
        let cur = at.current?;
        Some(KeyValue {
            key: k.clone(),
            create_revision: at.created,
            mod_revision: at.modified.main,
            version: at.version,
            value: cur.value.clone(),
            lease: cur.lease,
        })
    }

    /// A granted lease, if it exists.
    pub fn lease(&self, id: i64) -> Option<LeaseInfo> {
        let st = self.state.read();
        st.leases.get(&id).map(|l| LeaseInfo {
            id,
            ttl: l.ttl,
            checkpointed_remaining: l.remaining,
            keys: l.keys.iter().cloned().collect(),
        })
    }

    /// Every lease, by ID.
    pub fn leases(&self) -> Vec<LeaseInfo> {
        let st = self.state.read();
        st.leases
            .iter()
            .map(|(id, l)| LeaseInfo {
                id: *id,
                ttl: l.ttl,
                checkpointed_remaining: l.remaining,
                keys: l.keys.iter().cloned().collect(),
            })
            .collect()
    }

    // ---- watch ----

    /// The hub, for progress queries and waiting on catch-up work.
    pub fn watch_hub(&self) -> &Arc<WatchHub> {
        &self.hub
    }

    /// Starts a watcher (see [`WatchHub::watch`]).
    pub fn watch(&self, spec: WatchSpec) -> WatchStream {
        let compact_rev = self.state.read().compact_rev;
        self.hub.watch(spec, compact_rev)
    }

    /// One round of catch-up for every unsynced watcher: replays up to
    /// [`SYNC_BATCH_REVISIONS`] revisions of history to each. Returns how many watchers are
    /// still behind.
    pub fn sync_watchers(&self) -> Result<usize, StorageError> {
        self.check_healthy()?;
        let (lagging, last_rev) = self.hub.lagging();
        let mut behind = 0;
        for w in lagging {
            let st = self.state.read();
            if w.next_rev < st.compact_rev {
                if !self.hub.cancel_compacted(w.id, st.compact_rev) {
                    behind += 1;
                }
                continue;
            }
            let to = last_rev.min(w.next_rev + SYNC_BATCH_REVISIONS - 1);
            let events = self.replay(&st, &w.spec, w.next_rev, to)?;
            drop(st);
            if !self.hub.deliver_catch_up(w.id, w.next_rev, to, events) || to < last_rev {
                behind += 1;
            }
        }
        Ok(behind)
    }

    /// Events for `spec` in revisions `from..=to`, from the history table.
    fn replay(&self, st: &State, spec: &WatchSpec, from: i64, to: i64) -> Result<Vec<Event>, StorageError> {
        if from > to {
            return Ok(Vec::new());
        }
        let r = self.db.read()?;
        let table = r.open_table(HISTORY)?;
        let mut events = Vec::new();
        for row in table.range((from as u64, 0)..=(to as u64, u32::MAX))? {
            let (k, v) = row?;
            let Some(key) = record::key_of(v.value()) else { continue };
            if !spec.span.contains(key) {
                continue;
            }
            let (main, sub) = k.value();
            let rev = Revision { main: main as i64, sub };
            let rec = record::decode(rev, v.value())?;
            let mut ev = Event {
                r#type: if rec.tombstone {
                    EventType::Delete as i32
                } else {
                    EventType::Put as i32
                },
                kv: Some(rec.kv),
                prev_kv: None,
            };
            if !wants(spec, &ev) {
                continue;
            }
            if spec.prev_kv {
                ev.prev_kv = self.prev_kv(st, &table, &ev, rev)?;
            }
            events.push(shape(spec, &ev));
        }
        Ok(events)
    }

    fn prev_kv(
        &self,
        st: &State,
        table: &ReadOnlyTable<(u64, u32), &'static [u8]>,
        ev: &Event,
        rev: Revision,
    ) -> Result<Option<KeyValue>, StorageError> {
        let key = &ev.kv.as_ref().expect("events carry a key").key;
        let Some((k, h)) = st.index.get_key_value(key) else {
            return Ok(None);
        };
        match h.put_before(rev) {
            Some(at) => range::key_value(k, &at, table).map(Some),
            None => Ok(None),
        }
    }

    /// Members' metadata, by ID (including members not or no longer in the configuration).
    pub fn members(&self) -> Vec<crate::proto::kvorum::internal::MemberAttributes> {
        self.state.read().members.values().cloned().collect()
    }

    /// Makes a restored store the start of a new cluster: the applied index goes back to 0 (the
    /// new cluster's log starts over) and the old cluster's members are forgotten. Keys,
    /// revisions and leases stay. Only for `kvorum snapshot restore`, before the member runs.
    pub fn prepare_restore(&self) -> Result<(), StorageError> {
        let mut st = self.state.write();
        let txn = self.db.write(Durability::Immediate)?;
        {
            txn.open_table(META)?.insert(APPLIED_INDEX, 0)?;
            txn.open_table(MEMBERS)?.retain(|_, _| false)?;
        }
        txn.commit()?;
        st.applied_index = 0;
        st.members.clear();
        Ok(())
    }

    /// Rows waiting to be purged (after a compaction).
    pub fn purge_backlog(&self) -> usize {
        self.state.read().purge.len()
    }

    pub(crate) fn state(&self) -> &RwLock<State> {
        &self.state
    }

    /// Whether a key span holds anything at the latest revision (for tests and tools).
    pub fn count(&self, span: &KeySpan) -> usize {
        let st = self.state.read();
        index::range(&st.index, span)
            .filter(|(_, h)| h.current().is_some())
            .count()
    }
}

/// The history table, opened on first use by a reader.
struct LazyHistory<'a> {
    db: &'a Db,
    table: std::cell::OnceCell<ReadOnlyTable<(u64, u32), &'static [u8]>>,
}

impl<'a> LazyHistory<'a> {
    fn new(db: &'a Db) -> Self {
        LazyHistory {
            db,
            table: std::cell::OnceCell::new(),
        }
    }
}

impl History for LazyHistory<'_> {
    fn record(&self, rev: Revision) -> Result<record::Record, StorageError> {
        if self.table.get().is_none() {
            let table = self.db.read()?.open_table(HISTORY)?;
            let _ = self.table.set(table);
        }
        self.table.get().expect("opened above").record(rev)
    }
}
