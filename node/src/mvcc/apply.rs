//! Applying one command: put, delete, txn, compaction and lease changes, each producing its
//! response, its events and the history records, all inside the batch's write transaction.
//!
//! Revisions: a command that changes keys takes the next main revision; its changes are
//! numbered by `sub` in execution order. A command that changes nothing (a delete that matched
//! nothing, a read-only txn, a failed request) does not consume a revision.

use bytes::Bytes;
use redb::Table;

use super::check;
use super::index::{Change, Current, KeySpan, Revision};
use super::range;
use super::record::{self, REVISION_KEY_BYTES};
use super::state::{LEASE_BYTES, Lease, State};
use super::{LeaseChange, MvccError, Response};
use crate::proto::etcdserverpb::{
    CompactionRequest, CompactionResponse, Compare, DeleteRangeRequest, DeleteRangeResponse, LeaseCheckpointRequest,
    LeaseGrantRequest, LeaseGrantResponse, LeaseRevokeRequest, LeaseRevokeResponse, PutRequest, PutResponse,
    RangeRequest, ResponseHeader, ResponseOp, TxnRequest, TxnResponse, compare, request_op, response_op,
};
use crate::proto::kvorum::internal::MemberAttributes;
use crate::proto::kvorum::internal::command::Op;
use crate::proto::mvccpb::{Event, KeyValue, event::EventType};
use crate::storage::StorageError;
use prost::Message as _;

/// etcd's maximum lease TTL in seconds.
pub const MAX_LEASE_TTL_SECONDS: i64 = 9_000_000_000;

/// Applies commands of one batch against the state and the open tables.
pub struct Applier<'a, 't> {
    pub st: &'a mut State,
    pub history: Table<'t, (u64, u32), &'static [u8]>,
    pub leases: Table<'t, i64, &'static [u8]>,
    pub members: Table<'t, u64, &'static [u8]>,
    pub max_txn_ops: usize,
    /// Events of the batch, in revision order.
    pub events: Vec<Event>,
    pub lease_changes: Vec<LeaseChange>,
    /// The revision the current command writes at, and its next sub-revision.
    main: i64,
    sub: u32,
}

impl<'a, 't> Applier<'a, 't> {
    /// An applier over `st` and the batch's tables.
    pub fn new(
        st: &'a mut State,
        history: Table<'t, (u64, u32), &'static [u8]>,
        leases: Table<'t, i64, &'static [u8]>,
        members: Table<'t, u64, &'static [u8]>,
        max_txn_ops: usize,
    ) -> Self {
        Applier {
            st,
            history,
            leases,
            members,
            max_txn_ops,
            events: Vec::new(),
            lease_changes: Vec::new(),
            main: 0,
            sub: 0,
        }
    }

    /// Applies one command. `Err(MvccError::Storage)` is fatal; any other error means the
    /// command was refused and changed nothing.
    pub fn apply(&mut self, op: &Op) -> Result<Response, MvccError> {
        self.main = self.st.current_rev + 1;
        self.sub = 0;
        let result = match op {
            Op::Put(r) => {
                check::put(r)?;
                self.check_put(r)?;
                self.put(r).map(Response::Put)
            }
            Op::DeleteRange(r) => {
                check::delete_range(r)?;
                self.delete_range(r).map(Response::DeleteRange)
            }
            Op::Txn(r) => {
                check::txn(r, self.max_txn_ops)?;
                self.txn(r).map(Response::Txn)
            }
            Op::Compaction(r) => self.compact(r).map(Response::Compaction),
            Op::LeaseGrant(r) => self.lease_grant(r).map(Response::LeaseGrant),
            Op::LeaseRevoke(r) => self.lease_revoke(r).map(Response::LeaseRevoke),
            Op::LeaseCheckpoint(r) => {
                self.lease_checkpoint(r)?;
                Ok(Response::LeaseCheckpoint)
            }
            Op::Member(m) => {
                self.member(m)?;
                Ok(Response::Member)
            }
        };
        if self.sub > 0 {
            self.st.current_rev = self.main;
        }
        let mut response = result?;
        response.set_revision(self.st.current_rev);
        Ok(response)
    }

    fn next_rev(&mut self) -> Revision {
        let rev = Revision {
            main: self.main,
            sub: self.sub,
        };
        self.sub += 1;
        rev
    }

    /// The revision reads inside the current command see: its own writes included.
    fn read_rev(&self) -> i64 {
        if self.sub > 0 { self.main } else { self.st.current_rev }
    }

    fn latest(&self, key: &Bytes) -> Result<Option<KeyValue>, StorageError> {
        let Some(h) = self.st.index.get(key) else {
            return Ok(None);
        };
        match h.latest() {
            Some(at) => range::key_value(key, &at, &self.history).map(Some),
            None => Ok(None),
        }
    }

    fn check_put(&self, r: &PutRequest) -> Result<(), MvccError> {
        if (r.ignore_value || r.ignore_lease) && self.st.index.get(&r.key).and_then(|h| h.current()).is_none() {
            return Err(MvccError::KeyNotFound);
        }
        if r.lease != 0 && !self.st.leases.contains_key(&r.lease) {
            return Err(MvccError::LeaseNotFound);
        }
        Ok(())
    }

    fn put(&mut self, r: &PutRequest) -> Result<PutResponse, MvccError> {
        let prev = self.latest(&r.key)?;
        let value = if r.ignore_value {
            prev.as_ref().map(|p| p.value.clone()).unwrap_or_default()
        } else {
            r.value.clone()
        };
        let lease = if r.ignore_lease {
            prev.as_ref().map_or(0, |p| p.lease)
        } else {
            r.lease
        };
        let rev = self.next_rev();
        let (version, create_revision) = match &prev {
            Some(p) => (p.version + 1, p.create_revision),
            None => (1, rev.main),
        };
        let kv = KeyValue {
            key: r.key.clone(),
            create_revision,
            mod_revision: rev.main,
            version,
            value: value.clone(),
            lease,
        };
        let bytes = self.write_record(rev, &record::encode_put(&kv))?;
        let h = self.st.index.entry(r.key.clone()).or_default();
        h.put(Change { rev, bytes }, Current { value, lease });
        let old_lease = prev.as_ref().map_or(0, |p| p.lease);
        if old_lease != lease {
            self.detach(old_lease, &r.key);
            if lease != 0 {
                self.st
                    .leases
                    .get_mut(&lease)
                    .expect("lease existence was checked")
                    .keys
                    .insert(r.key.clone());
            }
        }
        self.events.push(Event {
            r#type: EventType::Put as i32,
            kv: Some(kv),
            prev_kv: prev.clone(),
        });
        Ok(PutResponse {
            header: None,
            prev_kv: prev.filter(|_| r.prev_kv),
        })
    }

    fn delete_range(&mut self, r: &DeleteRangeRequest) -> Result<DeleteRangeResponse, MvccError> {
        let span = KeySpan::new(&r.key, &r.range_end);
        let keys: Vec<Bytes> = super::index::range(&self.st.index, &span)
            .filter(|(_, h)| h.current().is_some())
            .map(|(k, _)| k.clone())
            .collect();
        let mut prev_kvs = Vec::with_capacity(if r.prev_kv { keys.len() } else { 0 });
        for key in &keys {
            let prev = self.delete_key(key)?;
            if r.prev_kv {
                prev_kvs.push(prev);
            }
        }
        Ok(DeleteRangeResponse {
            header: None,
            deleted: keys.len() as i64,
            prev_kvs,
        })
    }

    /// Deletes one existing key; returns its previous state.
    fn delete_key(&mut self, key: &Bytes) -> Result<KeyValue, MvccError> {
        let prev = self.latest(key)?.expect("only existing keys are deleted");
        let rev = self.next_rev();
        let bytes = self.write_record(rev, &record::encode_delete(key))?;
        self.st
            .index
            .get_mut(key)
            .expect("key exists")
            .delete(Change { rev, bytes });
        self.detach(prev.lease, key);
        self.events.push(Event {
            r#type: EventType::Delete as i32,
            kv: Some(KeyValue {
                key: key.clone(),
                mod_revision: rev.main,
                ..Default::default()
            }),
            prev_kv: Some(prev.clone()),
        });
        Ok(prev)
    }

    fn write_record(&mut self, rev: Revision, rec: &[u8]) -> Result<u32, StorageError> {
        self.history.insert((rev.main as u64, rev.sub), rec)?;
        let bytes = rec.len() as u64 + REVISION_KEY_BYTES;
        self.st.logical_bytes += bytes;
        Ok(bytes as u32)
    }

    fn detach(&mut self, lease: i64, key: &Bytes) {
        if lease != 0
            && let Some(l) = self.st.leases.get_mut(&lease)
        {
            l.keys.remove(key);
        }
    }

    // ---- txn ----

    fn txn(&mut self, r: &TxnRequest) -> Result<TxnResponse, MvccError> {
        // etcd evaluates every compare on the chosen path, nested ones included, against the
        // state before any operation runs; then checks the chosen operations; then runs them.
        let mut path = Vec::new();
        self.choose_path(r, &mut path)?;
        let mut cursor = 0;
        self.check_path(r, &path, &mut cursor)?;
        let mut cursor = 0;
        self.run_txn(r, &path, &mut cursor)
    }

    fn choose_path(&self, r: &TxnRequest, path: &mut Vec<bool>) -> Result<(), MvccError> {
        let mut ok = true;
        for c in &r.compare {
            if !self.compare(c)? {
                ok = false;
                break;
            }
        }
        path.push(ok);
        for op in if ok { &r.success } else { &r.failure } {
            if let Some(request_op::Request::RequestTxn(t)) = &op.request {
                self.choose_path(t, path)?;
            }
        }
        Ok(())
    }

    fn check_path(&self, r: &TxnRequest, path: &[bool], cursor: &mut usize) -> Result<(), MvccError> {
        let ok = path[*cursor];
        *cursor += 1;
        for op in if ok { &r.success } else { &r.failure } {
            match &op.request {
                Some(request_op::Request::RequestRange(q)) => {
                    range::read_revision(self.st, q.revision, self.st.current_rev)?;
                }
                Some(request_op::Request::RequestPut(p)) => self.check_put(p)?,
                Some(request_op::Request::RequestTxn(t)) => self.check_path(t, path, cursor)?,
                _ => {}
            }
        }
        Ok(())
    }

    fn run_txn(&mut self, r: &TxnRequest, path: &[bool], cursor: &mut usize) -> Result<TxnResponse, MvccError> {
        let succeeded = path[*cursor];
        *cursor += 1;
        let ops = if succeeded { &r.success } else { &r.failure };
        let mut responses = Vec::with_capacity(ops.len());
        for op in ops {
            let response = match op.request.as_ref().expect("checked") {
                request_op::Request::RequestRange(q) => response_op::Response::ResponseRange(self.txn_range(q)?),
                request_op::Request::RequestPut(p) => response_op::Response::ResponsePut(self.put(p)?),
                request_op::Request::RequestDeleteRange(d) => {
                    response_op::Response::ResponseDeleteRange(self.delete_range(d)?)
                }
                request_op::Request::RequestTxn(t) => {
                    response_op::Response::ResponseTxn(self.run_txn(t, path, cursor)?)
                }
            };
            responses.push(ResponseOp {
                response: Some(response),
            });
        }
        Ok(TxnResponse {
            header: None,
            succeeded,
            responses,
        })
    }

    fn txn_range(&self, q: &RangeRequest) -> Result<crate::proto::etcdserverpb::RangeResponse, MvccError> {
        let current = self.read_rev();
        let rev = range::read_revision(self.st, q.revision, current)?;
        range::range(self.st, &self.history, q, rev)
    }

    /// etcd's `applyCompare`: every key in the range must satisfy the predicate; with no key,
    /// a VALUE compare fails and the others compare against zero.
    fn compare(&self, c: &Compare) -> Result<bool, MvccError> {
        let span = KeySpan::new(&c.key, &c.range_end);
        let rev = self.st.current_rev;
        let target = compare::CompareTarget::try_from(c.target).expect("checked");
        let mut any = false;
        for (k, h) in super::index::range(&self.st.index, &span) {
            let Some(at) = h.at(rev) else { continue };
            any = true;
            let kv = range::key_value(k, &at, &self.history)?;
            if !compare_kv(c, target, &kv) {
                return Ok(false);
            }
        }
        if !any {
            return Ok(target != compare::CompareTarget::Value && compare_kv(c, target, &KeyValue::default()));
        }
        Ok(true)
    }

    // ---- compaction ----

    fn compact(&mut self, r: &CompactionRequest) -> Result<CompactionResponse, MvccError> {
        let at = r.revision;
        if at > self.st.current_rev {
            return Err(MvccError::FutureRevision);
        }
        if at <= self.st.compact_rev {
            return Err(MvccError::Compacted {
                compact_revision: self.st.compact_rev,
            });
        }
        self.st.compact_rev = at;
        let mut dropped = Vec::new();
        self.st.index.retain(|_, h| !h.compact(at, |c| dropped.push(c)));
        for c in dropped {
            self.st.logical_bytes -= u64::from(c.bytes);
            self.st.purge.push(c.rev);
        }
        Ok(CompactionResponse { header: None })
    }

    // ---- leases ----

    fn lease_grant(&mut self, r: &LeaseGrantRequest) -> Result<LeaseGrantResponse, MvccError> {
        if r.ttl > MAX_LEASE_TTL_SECONDS {
            return Err(MvccError::LeaseTtlTooLarge);
        }
        if r.id == 0 {
            return Err(MvccError::LeaseNotFound);
        }
        if self.st.leases.contains_key(&r.id) {
            return Err(MvccError::LeaseExists);
        }
        let lease = Lease {
            ttl: r.ttl,
            remaining: 0,
            keys: Default::default(),
        };
        self.leases.insert(r.id, lease.encode().as_slice())?;
        self.st.leases.insert(r.id, lease);
        self.st.logical_bytes += LEASE_BYTES;
        self.lease_changes.push(LeaseChange::Granted { id: r.id, ttl: r.ttl });
        Ok(LeaseGrantResponse {
            header: None,
            id: r.id,
            ttl: r.ttl,
            error: String::new(),
        })
    }

    fn lease_revoke(&mut self, r: &LeaseRevokeRequest) -> Result<LeaseRevokeResponse, MvccError> {
        let Some(lease) = self.st.leases.get(&r.id) else {
            return Err(MvccError::LeaseNotFound);
        };
        // All attached keys go in one revision, in key order.
        let keys: Vec<Bytes> = lease.keys.iter().cloned().collect();
        for key in &keys {
            self.delete_key(key)?;
        }
        self.st.leases.remove(&r.id);
        self.leases.remove(r.id)?;
        self.st.logical_bytes -= LEASE_BYTES;
        self.lease_changes.push(LeaseChange::Revoked { id: r.id });
        Ok(LeaseRevokeResponse { header: None })
    }

    fn lease_checkpoint(&mut self, r: &LeaseCheckpointRequest) -> Result<(), MvccError> {
        for cp in &r.checkpoints {
            if let Some(l) = self.st.leases.get_mut(&cp.id) {
                l.remaining = cp.remaining_ttl;
                self.leases.insert(cp.id, l.encode().as_slice())?;
                self.lease_changes.push(LeaseChange::Checkpointed {
                    id: cp.id,
                    remaining: cp.remaining_ttl,
                });
            }
        }
        Ok(())
    }
}

impl Applier<'_, '_> {
    /// Upserts a member's metadata; empty fields keep what is stored.
    fn member(&mut self, m: &MemberAttributes) -> Result<(), MvccError> {
        let entry = self.st.members.entry(m.id).or_insert_with(|| MemberAttributes {
            id: m.id,
            ..Default::default()
        });
        if !m.name.is_empty() {
            entry.name = m.name.clone();
        }
        if !m.peer_urls.is_empty() {
            entry.peer_urls = m.peer_urls.clone();
        }
        if !m.client_urls.is_empty() {
            entry.client_urls = m.client_urls.clone();
        }
        self.members.insert(m.id, entry.encode_to_vec().as_slice())?;
        Ok(())
    }

    /// A member left the configuration: forget its metadata.
    pub fn member_removed(&mut self, id: u64) -> Result<(), MvccError> {
        if self.st.members.remove(&id).is_some() {
            self.members.remove(id)?;
        }
        Ok(())
    }
}

fn compare_kv(c: &Compare, target: compare::CompareTarget, kv: &KeyValue) -> bool {
    use compare::{CompareResult, CompareTarget, TargetUnion};
    let int = |v: Option<i64>| v.unwrap_or(0);
    let ordering = match target {
        CompareTarget::Value => {
            let want = match &c.target_union {
                Some(TargetUnion::Value(v)) => v.as_ref(),
                _ => &[][..],
            };
            kv.value.as_ref().cmp(want)
        }
        CompareTarget::Version => kv.version.cmp(&int(match c.target_union {
            Some(TargetUnion::Version(v)) => Some(v),
            _ => None,
        })),
        CompareTarget::Create => kv.create_revision.cmp(&int(match c.target_union {
            Some(TargetUnion::CreateRevision(v)) => Some(v),
            _ => None,
        })),
        CompareTarget::Mod => kv.mod_revision.cmp(&int(match c.target_union {
            Some(TargetUnion::ModRevision(v)) => Some(v),
            _ => None,
        })),
        CompareTarget::Lease => kv.lease.cmp(&int(match c.target_union {
            Some(TargetUnion::Lease(v)) => Some(v),
            _ => None,
        })),
    };
    match CompareResult::try_from(c.result).expect("checked") {
        CompareResult::Equal => ordering.is_eq(),
        CompareResult::NotEqual => ordering.is_ne(),
        CompareResult::Greater => ordering.is_gt(),
        CompareResult::Less => ordering.is_lt(),
    }
}

impl Response {
    fn set_revision(&mut self, revision: i64) {
        let header = Some(ResponseHeader {
            revision,
            ..Default::default()
        });
        match self {
            Response::Put(r) => r.header = header,
            Response::DeleteRange(r) => r.header = header,
            Response::Txn(r) => r.header = header,
            Response::Compaction(r) => r.header = header,
            Response::LeaseGrant(r) => r.header = header,
            Response::LeaseRevoke(r) => r.header = header,
            Response::LeaseCheckpoint | Response::Member => {}
        }
    }
}
