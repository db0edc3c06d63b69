//! Tests of the state machine against etcd's documented behaviour
//! (`../shared/reference/etcd-v3-api.md` §1.3–1.5), one file per topic.

mod compaction;
mod kv;
mod lease;
mod model;
mod snapshot;
mod txn;
mod watch;

use bytes::Bytes;
use kvorum_raft::{Entry, EntryPayload};
use prost::Message as _;

use super::{MvccConfig, MvccError, Response, Store};
use crate::proto::etcdserverpb::{
    DeleteRangeRequest, DeleteRangeResponse, LeaseGrantRequest, PutRequest, PutResponse, RangeRequest, RangeResponse,
    TxnRequest, TxnResponse,
};
use crate::proto::kvorum::internal::{Command, command::Op};
use crate::proto::mvccpb::KeyValue;
use crate::storage::Db;

pub fn b(s: &str) -> Bytes {
    Bytes::from(s.to_string())
}

/// A store on an in-memory database, fed one log entry per command.
pub struct Harness {
    pub store: Store,
    pub db: Db,
    pub next_index: u64,
}

pub fn entry(index: u64, op: Op) -> Entry {
    Entry {
        term: 1,
        index,
        payload: EntryPayload::Command(Command { op: Some(op) }.encode_to_vec().into()),
    }
}

impl Harness {
    pub fn new() -> Self {
        Self::with_config(MvccConfig::default())
    }

    pub fn with_config(cfg: MvccConfig) -> Self {
        let db = Db::in_memory();
        Harness {
            store: Store::open(db.clone(), cfg).unwrap(),
            db,
            next_index: 2,
        }
    }

    pub fn apply(&mut self, op: Op) -> Result<Response, MvccError> {
        let index = self.next_index;
        self.next_index += 1;
        let mut out = self.store.apply(&[entry(index, op)]).expect("storage works");
        assert_eq!(out.results.len(), 1);
        let (i, result) = out.results.pop().unwrap();
        assert_eq!(i, index);
        assert_eq!(self.store.applied_index(), index);
        result
    }

    pub fn try_put(&mut self, r: PutRequest) -> Result<PutResponse, MvccError> {
        match self.apply(Op::Put(r))? {
            Response::Put(p) => Ok(p),
            other => panic!("unexpected {other:?}"),
        }
    }

    pub fn put(&mut self, k: &str, v: &str) -> PutResponse {
        self.try_put(PutRequest {
            key: b(k),
            value: b(v),
            ..Default::default()
        })
        .unwrap()
    }

    pub fn put_lease(&mut self, k: &str, v: &str, lease: i64) -> Result<PutResponse, MvccError> {
        self.try_put(PutRequest {
            key: b(k),
            value: b(v),
            lease,
            ..Default::default()
        })
    }

    pub fn delete(&mut self, k: &str, end: &str) -> DeleteRangeResponse {
        match self
            .apply(Op::DeleteRange(DeleteRangeRequest {
                key: b(k),
                range_end: b(end),
                prev_kv: true,
            }))
            .unwrap()
        {
            Response::DeleteRange(d) => d,
            other => panic!("unexpected {other:?}"),
        }
    }

    pub fn txn(&mut self, t: TxnRequest) -> Result<TxnResponse, MvccError> {
        match self.apply(Op::Txn(t))? {
            Response::Txn(r) => Ok(r),
            other => panic!("unexpected {other:?}"),
        }
    }

    pub fn grant(&mut self, id: i64, ttl: i64) {
        self.apply(Op::LeaseGrant(LeaseGrantRequest { ttl, id })).unwrap();
    }

    pub fn range(&self, r: RangeRequest) -> Result<RangeResponse, MvccError> {
        self.store.range(&r)
    }

    pub fn get(&self, k: &str) -> Option<KeyValue> {
        let r = self
            .range(RangeRequest {
                key: b(k),
                ..Default::default()
            })
            .unwrap();
        assert!(r.kvs.len() <= 1);
        let via_range = r.kvs.into_iter().next();
        assert_eq!(via_range, self.store.get(k.as_bytes()), "fast path and range agree");
        via_range
    }

    pub fn get_at(&self, k: &str, revision: i64) -> Result<Option<KeyValue>, MvccError> {
        Ok(self
            .range(RangeRequest {
                key: b(k),
                revision,
                ..Default::default()
            })?
            .kvs
            .into_iter()
            .next())
    }

    pub fn keys(&self, r: RangeRequest) -> Vec<String> {
        self.range(r)
            .unwrap()
            .kvs
            .iter()
            .map(|kv| String::from_utf8(kv.key.to_vec()).unwrap())
            .collect()
    }

    pub fn rev(&self) -> i64 {
        self.store.current_revision()
    }
}

pub fn header_rev(h: &Option<crate::proto::etcdserverpb::ResponseHeader>) -> i64 {
    h.as_ref().expect("responses carry a header").revision
}
