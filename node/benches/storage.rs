//! Storage and state-machine throughput on one core (issue targets in parentheses):
//! - `log_append`: group commit of 100 × 256-byte entries per fsynced redb transaction
//!   (≥ 100,000 entries/s);
//! - `apply_puts`: applying 256-byte puts into MVCC, 100 per transaction (≥ 100,000 puts/s);
//! - `point_read`: reading one key of 10,000 from MVCC (≥ 500,000 reads/s).
//!
//! Run: `cargo bench -p kvorum --bench storage` (data on the working directory's filesystem,
//! with real fsync).

use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kvorum::mvcc::{MvccConfig, Store};
use kvorum::proto::etcdserverpb::{PutRequest, RangeRequest};
use kvorum::proto::kvorum::internal::{Command, command::Op};
use kvorum::storage::{Db, DbConfig, LogStore, LogWrite, RedbLogStore};
use kvorum_raft::{Entry, EntryPayload, HardState};
use prost::Message as _;

const BATCH: u64 = 100;
const VALUE_BYTES: usize = 256;

fn put_entry(index: u64, keys: u64) -> Entry {
    let cmd = Command {
        op: Some(Op::Put(PutRequest {
            key: Bytes::from(format!("/config/app-{:06}", index % keys)),
            value: Bytes::from(vec![b'v'; VALUE_BYTES]),
            ..Default::default()
        })),
    };
    Entry {
        term: 1,
        index,
        payload: EntryPayload::Command(cmd.encode_to_vec().into()),
    }
}

fn bench_dir() -> tempfile::TempDir {
    // On the working directory's filesystem (a real disk), not a tmpfs.
    tempfile::tempdir_in(".").expect("temp dir")
}

fn log_append(c: &mut Criterion) {
    let dir = bench_dir();
    let db = Db::open(&dir.path().join("log.redb"), &DbConfig::default()).unwrap();
    let mut log = RedbLogStore::open(db).unwrap();
    let mut next = 1;
    let mut g = c.benchmark_group("log_append");
    g.throughput(Throughput::Elements(BATCH));
    g.bench_function("100x256B_fsync", |b| {
        b.iter_batched(
            || {
                let batch: Vec<Entry> = (next..next + BATCH).map(|i| put_entry(i, 10_000)).collect();
                next += BATCH;
                batch
            },
            |batch| {
                log.persist(LogWrite {
                    snapshot: None,
                    entries: &batch,
                    hard_state: Some(HardState {
                        term: 1,
                        vote: Some(1),
                        commit: batch[0].index,
                    }),
                })
                .unwrap()
            },
            criterion::BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn apply_puts(c: &mut Criterion) {
    let dir = bench_dir();
    let db = Db::open(&dir.path().join("mvcc.redb"), &DbConfig::default()).unwrap();
    let store = Store::open(db, MvccConfig::default()).unwrap();
    let mut next = 1;
    let mut g = c.benchmark_group("apply_puts");
    g.throughput(Throughput::Elements(BATCH));
    g.bench_function("100x256B", |b| {
        b.iter_batched(
            || {
                let batch: Vec<Entry> = (next..next + BATCH).map(|i| put_entry(i, 10_000)).collect();
                next += BATCH;
                batch
            },
            |batch| store.apply(&batch).unwrap(),
            criterion::BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn point_read(c: &mut Criterion) {
    let store = Store::open(Db::in_memory(), MvccConfig::default()).unwrap();
    let keys = 10_000;
    for chunk in (1..=keys).collect::<Vec<_>>().chunks(500) {
        let batch: Vec<Entry> = chunk.iter().map(|i| put_entry(*i, keys)).collect();
        store.apply(&batch).unwrap();
    }
    let requests: Vec<RangeRequest> = (0..keys)
        .map(|i| RangeRequest {
            key: Bytes::from(format!("/config/app-{:06}", (i * 7919) % keys)),
            ..Default::default()
        })
        .collect();
    let mut g = c.benchmark_group("point_read");
    g.throughput(Throughput::Elements(1));
    let mut i = 0;
    g.bench_function("range_single_key", |b| {
        b.iter(|| {
            i = (i + 1) % requests.len();
            black_box(store.range(&requests[i]).unwrap())
        })
    });
    g.bench_function("get_current", |b| {
        b.iter(|| {
            i = (i + 1) % requests.len();
            black_box(store.get(&requests[i].key).unwrap())
        })
    });
    g.finish();
}

criterion_group!(benches, log_append, apply_puts, point_read);
criterion_main!(benches);
