//! The workload and the recovery check shared by the crash and power-loss tests.

use bytes::Bytes;
use kvorum::mvcc::{MvccConfig, Store};
use kvorum::proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use kvorum::proto::etcdserverpb::{
    CompactionRequest, Compare, DeleteRangeRequest, LeaseGrantRequest, LeaseRevokeRequest, PutRequest, RangeRequest,
    RequestOp, TxnRequest, request_op,
};
use kvorum::proto::kvorum::internal::{Command, command::Op};
use kvorum::storage::{Db, LogStore, LogWrite};
use kvorum_raft::{ConfState, Entry, EntryPayload, HardState, SnapshotMeta};
use prost::Message as _;

/// The command at log index `i`: a deterministic mix of everything the state machine does.
fn command_for(i: u64) -> Command {
    let key = |n: u64| Bytes::from(format!("key/{:03}", n % 64));
    let value = Bytes::from(format!("{i:0>256}"));
    let op = match i % 29 {
        0 => Op::Compaction(CompactionRequest {
            revision: (i * 3 / 4) as i64,
            physical: false,
        }),
        3 | 17 => Op::DeleteRange(DeleteRangeRequest {
            key: key(i),
            range_end: if i.is_multiple_of(2) { key(i + 3) } else { Bytes::new() },
            prev_kv: false,
        }),
        5 => Op::LeaseGrant(LeaseGrantRequest {
            ttl: 60,
            id: (i / 29 % 8 + 1) as i64,
        }),
        11 => Op::LeaseRevoke(LeaseRevokeRequest {
            id: ((i + 3) / 29 % 8 + 1) as i64,
        }),
        7 | 19 => Op::Txn(TxnRequest {
            compare: vec![Compare {
                result: CompareResult::Greater as i32,
                target: CompareTarget::Version as i32,
                key: key(i),
                target_union: Some(TargetUnion::Version(2)),
                range_end: Bytes::new(),
            }],
            success: vec![RequestOp {
                request: Some(request_op::Request::RequestPut(PutRequest {
                    key: key(i + 1),
                    value: value.clone(),
                    ..Default::default()
                })),
            }],
            failure: vec![RequestOp {
                request: Some(request_op::Request::RequestDeleteRange(DeleteRangeRequest {
                    key: key(i + 2),
                    ..Default::default()
                })),
            }],
        }),
        _ => Op::Put(PutRequest {
            key: key(i),
            value,
            lease: if i.is_multiple_of(5) {
                (i / 29 % 8 + 1) as i64
            } else {
                0
            },
            ..Default::default()
        }),
    };
    Command { op: Some(op) }
}

fn entry_for(i: u64) -> Entry {
    Entry {
        term: 1,
        index: i,
        payload: EntryPayload::Command(command_for(i).encode_to_vec().into()),
    }
}

/// One step of a single-member node: append `n` entries durably (they are committed at once),
/// apply them, purge, and compact the log now and then as the server does. Returns the last
/// index, which the caller may now treat as acknowledged.
pub fn run_batch(log: &mut impl LogStore, store: &Store, next: &mut u64, n: u64) -> u64 {
    let batch: Vec<Entry> = (*next..*next + n).map(entry_for).collect();
    *next += n;
    let last = *next - 1;
    log.persist(LogWrite {
        snapshot: None,
        entries: &batch,
        hard_state: Some(HardState {
            term: 1,
            vote: Some(1),
            commit: last,
        }),
    })
    .unwrap();
    store.apply(&batch).unwrap();
    store.purge(200).unwrap();
    let applied = store.applied_index();
    if applied % 300 < n {
        let snapshot = SnapshotMeta {
            index: applied,
            term: 1,
            conf: ConfState::with_voters([1]),
        };
        log.compact(&snapshot, applied.saturating_sub(50)).unwrap();
    }
    last
}

/// The in-memory reference a recovered node is compared with.
pub struct Recovery {
    reference: Store,
}

impl Recovery {
    pub fn new() -> Self {
        Recovery {
            reference: Store::open(Db::in_memory(), MvccConfig::default()).unwrap(),
        }
    }

    /// Checks a reopened node: every acknowledged entry is durable with the right content;
    /// after replaying the log above its applied index, the state machine equals the
    /// reference's replay of the same log. Returns the last index.
    pub fn verify(&self, log: &impl LogStore, store: &Store, acked: u64, ctx: &str) -> u64 {
        let state = log.load().unwrap();
        let last = log.last_index().unwrap();
        assert!(
            last >= acked,
            "{ctx}: {acked} was acknowledged as durable, but the log ends at {last}"
        );
        for e in &state.entries {
            assert_eq!(e, &entry_for(e.index), "{ctx}: entry {} has the wrong content", e.index);
        }
        let applied = store.applied_index();
        assert!(applied <= last, "{ctx}: applied {applied} beyond the log's end {last}");
        assert!(
            state.entries.first().is_none_or(|f| f.index <= applied + 1),
            "{ctx}: the log was compacted past what the state machine kept ({applied})"
        );
        let suffix: Vec<Entry> = state.entries.into_iter().filter(|e| e.index > applied).collect();
        store.apply(&suffix).unwrap();
        let missing: Vec<Entry> = (self.reference.applied_index() + 1..=last).map(entry_for).collect();
        self.reference.apply(&missing).unwrap();
        let r = &self.reference;
        assert_eq!(store.applied_index(), last, "{ctx}");
        assert_eq!(store.current_revision(), r.current_revision(), "{ctx}");
        assert_eq!(store.hash_kv(0).unwrap(), r.hash_kv(0).unwrap(), "{ctx}");
        assert_eq!(store.leases(), r.leases(), "{ctx}");
        let all = RangeRequest {
            key: Bytes::from_static(b"\0"),
            range_end: Bytes::from_static(b"\0"),
            ..Default::default()
        };
        assert_eq!(store.range(&all).unwrap().kvs, r.range(&all).unwrap().kvs, "{ctx}");
        last
    }
}
