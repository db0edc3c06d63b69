//! Online space reclamation: how long does `Db::compact_now` pause the database, and how much
//! does it give back? Builds a store with heavy churn (every key rewritten many times), compacts
//! the MVCC history, purges, then compacts the file, and prints the figures.
//!
//! Run: `cargo bench -p kvorum --bench db_compaction` (`-- --test` for a quick small run).

use std::time::Instant;

use bytes::Bytes;
use kvorum::mvcc::{MvccConfig, Store};
use kvorum::proto::etcdserverpb::{CompactionRequest, PutRequest};
use kvorum::proto::kvorum::internal::{Command, command::Op};
use kvorum::storage::{Db, DbConfig};
use kvorum_raft::{Entry, EntryPayload};
use prost::Message as _;

fn entry(index: u64, op: Op) -> Entry {
    Entry {
        term: 1,
        index,
        payload: EntryPayload::Command(Command { op: Some(op) }.encode_to_vec().into()),
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--test");
    let (keys, rounds) = if quick { (500, 4) } else { (10_000, 20) };
    let dir = tempfile::tempdir_in(".").unwrap();
    let path = dir.path().join("churn.redb");
    let db = Db::open(&path, &DbConfig::default()).unwrap();
    let store = Store::open(db.clone(), MvccConfig::default()).unwrap();
    let mut index = 1;
    let started = Instant::now();
    for _ in 0..rounds {
        let batch: Vec<Entry> = (0..keys)
            .map(|k| {
                index += 1;
                entry(
                    index,
                    Op::Put(PutRequest {
                        key: Bytes::from(format!("/churn/{k:06}")),
                        value: Bytes::from(vec![b'x'; 256]),
                        ..Default::default()
                    }),
                )
            })
            .collect();
        for chunk in batch.chunks(1000) {
            store.apply(chunk).unwrap();
        }
    }
    let written = started.elapsed();
    index += 1;
    let rev = store.current_revision();
    store
        .apply(&[entry(
            index,
            Op::Compaction(CompactionRequest {
                revision: rev,
                physical: false,
            }),
        )])
        .unwrap();
    let purge_started = Instant::now();
    let mut longest_purge_step = std::time::Duration::ZERO;
    loop {
        let step = Instant::now();
        let left = store.purge(10_000).unwrap();
        longest_purge_step = longest_purge_step.max(step.elapsed());
        if left == 0 {
            break;
        }
    }
    let purged = purge_started.elapsed();
    let before = db.stats().unwrap();
    let report = loop {
        if let Some(r) = db.compact_now().unwrap() {
            break r;
        }
    };
    let after = db.stats().unwrap();
    println!(
        "churn: {keys} keys x {rounds} rewrites of 256 B in {written:?}; purge of {} rows in {purged:?} \
         (longest 10k-row step {longest_purge_step:?})",
        keys * (rounds - 1)
    );
    println!(
        "file {} -> {} bytes (fragmented {} -> {}); compaction pause {:?}",
        report.file_bytes_before,
        report.file_bytes_after,
        before.fragmented_bytes,
        after.fragmented_bytes,
        report.pause
    );
    assert!(
        report.file_bytes_after < report.file_bytes_before,
        "compaction gave space back"
    );
}
