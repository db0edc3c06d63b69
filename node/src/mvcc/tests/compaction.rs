//! Compaction, purge, restart, the space quota and HashKV.

use super::*;
use crate::proto::etcdserverpb::CompactionRequest;

fn compact(h: &mut Harness, revision: i64) -> Result<Response, MvccError> {
    h.apply(Op::Compaction(CompactionRequest {
        revision,
        physical: false,
    }))
}

fn history_rows(db: &Db) -> usize {
    use redb::ReadableTableMetadata;
    db.read()
        .unwrap()
        .open_table(crate::mvcc::range::HISTORY)
        .unwrap()
        .len()
        .unwrap() as usize
}

#[test]
fn compaction_keeps_reads_at_or_above_it() {
    let mut h = Harness::new();
    h.put("a", "1"); // 2
    h.put("a", "2"); // 3
    h.put("b", "1"); // 4
    h.delete("b", ""); // 5
    h.put("a", "3"); // 6
    compact(&mut h, 4).unwrap();
    let err = h.get_at("a", 3).unwrap_err();
    assert_eq!(
        err.to_string(),
        "etcdserver: mvcc: required revision has been compacted"
    );
    assert_eq!(err.code(), tonic::Code::OutOfRange);
    assert_eq!(
        h.get_at("a", 4).unwrap().unwrap().value,
        b("2"),
        "the compaction revision itself is readable"
    );
    assert_eq!(h.get_at("b", 4).unwrap().unwrap().value, b("1"));
    assert_eq!(h.get_at("b", 5).unwrap(), None);
    assert_eq!(h.get_at("a", 5).unwrap().unwrap().value, b("2"));
    assert_eq!(h.get("a").unwrap().value, b("3"));
    let kv = h.get("a").unwrap();
    assert_eq!((kv.version, kv.create_revision), (3, 2), "versions survive compaction");
}

#[test]
fn compaction_revision_errors() {
    let mut h = Harness::new();
    h.put("a", "1");
    h.put("a", "2");
    let err = compact(&mut h, 10).unwrap_err();
    assert_eq!(
        err.to_string(),
        "etcdserver: mvcc: required revision is a future revision"
    );
    compact(&mut h, 2).unwrap();
    let err = compact(&mut h, 2).unwrap_err();
    assert!(matches!(err, MvccError::Compacted { compact_revision: 2 }));
    compact(&mut h, 3).unwrap();
    assert_eq!(h.store.compact_revision(), 3);
}

#[test]
fn purge_reclaims_rows_without_changing_what_anyone_sees() {
    let mut h = Harness::new();
    for i in 0..50 {
        h.put("hot", &format!("v{i}"));
    }
    h.put("gone", "x");
    h.delete("gone", "");
    let rows_before = history_rows(&h.db);
    let bytes_before = h.store.logical_bytes();
    let rev = h.rev();
    compact(&mut h, rev).unwrap();
    let hash = h.store.hash_kv(0).unwrap();
    assert!(
        h.store.logical_bytes() < bytes_before / 10,
        "compaction lowers the logical size at once"
    );
    assert_eq!(
        h.store.purge_backlog(),
        51,
        "49 old versions of hot, the put and the delete of gone"
    );
    assert_eq!(h.store.purge(10).unwrap(), 41);
    assert_eq!(h.store.purge(1000).unwrap(), 0);
    assert_eq!(history_rows(&h.db), rows_before - 51);
    assert_eq!(h.store.hash_kv(0).unwrap(), hash, "purging is invisible");
    assert_eq!(h.get("hot").unwrap().value, b("v49"));
}

#[test]
fn restart_rebuilds_the_same_state_even_with_an_unfinished_purge() {
    let mut h = Harness::new();
    h.grant(3, 10);
    for i in 0..30 {
        h.put(&format!("k{}", i % 7), &format!("v{i}"));
        if i % 5 == 0 {
            h.delete(&format!("k{}", (i + 3) % 7), "");
        }
    }
    h.put_lease("leased", "x", 3).unwrap();
    let mid = h.rev() - 10;
    compact(&mut h, mid).unwrap();
    h.store.purge(5).unwrap();
    let before = (
        h.store.hash_kv(0).unwrap(),
        h.rev(),
        h.store.applied_index(),
        h.store.logical_bytes(),
    );
    let all = RangeRequest {
        key: b("\0"),
        range_end: b("\0"),
        ..Default::default()
    };
    let kvs = h.range(all.clone()).unwrap().kvs;
    let reopened = Store::open(h.db.clone(), crate::mvcc::MvccConfig::default()).unwrap();
    assert_eq!(
        (
            reopened.hash_kv(0).unwrap(),
            reopened.current_revision(),
            reopened.applied_index(),
            reopened.logical_bytes()
        ),
        before
    );
    assert_eq!(reopened.range(&all).unwrap().kvs, kvs);
    assert_eq!(reopened.compact_revision(), mid);
    assert!(reopened.purge_backlog() > 0, "the rest of the purge is picked up again");
    assert_eq!(reopened.lease(3).unwrap().keys, vec![b("leased")]);
}

#[test]
fn entries_at_or_below_the_applied_index_are_skipped() {
    let mut h = Harness::new();
    h.put("a", "1");
    let applied = h.store.applied_index();
    let out = h
        .store
        .apply(&[
            entry(
                applied,
                Op::Put(PutRequest {
                    key: b("a"),
                    value: b("replayed"),
                    ..Default::default()
                }),
            ),
            entry(
                applied + 1,
                Op::Put(PutRequest {
                    key: b("a"),
                    value: b("new"),
                    ..Default::default()
                }),
            ),
        ])
        .unwrap();
    assert_eq!(out.results.len(), 1, "only the entry above the applied index ran");
    assert_eq!(h.get("a").unwrap().value, b("new"));
    assert_eq!(h.get("a").unwrap().version, 2);
}

#[test]
fn quota_counts_logical_bytes_and_frees_after_compaction() {
    let mut h = Harness::with_config(crate::mvcc::MvccConfig {
        quota_bytes: 20_000,
        ..Default::default()
    });
    let big = "x".repeat(1000);
    while h.store.quota_allows(1100) {
        h.put("blob", &big);
    }
    assert!(h.store.logical_bytes() > 18_000);
    assert!(!h.store.quota_allows(1100), "over quota: the leader refuses new writes");
    // Deleting and compacting bring usage down; writes are allowed again without any alarm.
    h.delete("blob", "");
    let rev = h.rev();
    compact(&mut h, rev).unwrap();
    assert!(h.store.logical_bytes() < 1000);
    assert!(h.store.quota_allows(1100));
}

#[test]
fn admission_refuses_oversized_and_over_quota_writes_but_not_cleanup() {
    let mut h = Harness::with_config(crate::mvcc::MvccConfig {
        quota_bytes: 8_000,
        max_request_bytes: 4_096,
        ..Default::default()
    });
    let put = |v: usize| {
        Op::Put(PutRequest {
            key: b("k"),
            value: Bytes::from(vec![b'x'; v]),
            ..Default::default()
        })
    };
    let err = h.store.admit(&put(5000), 5010).unwrap_err();
    assert_eq!(err.to_string(), "etcdserver: request is too large");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    let empty = Op::Put(PutRequest::default());
    assert!(matches!(h.store.admit(&empty, 2), Err(MvccError::EmptyKey)));
    while h.store.admit(&put(1000), 1010).is_ok() {
        h.apply(put(1000)).unwrap();
    }
    let err = h.store.admit(&put(1000), 1010).unwrap_err();
    assert_eq!(err.to_string(), "etcdserver: mvcc: database space exceeded");
    assert_eq!(err.code(), tonic::Code::ResourceExhausted);
    // Reads, deletes and compaction keep working; once compacted, writes resume by themselves.
    assert!(h.get("k").is_some());
    let delete = Op::DeleteRange(DeleteRangeRequest {
        key: b("k"),
        ..Default::default()
    });
    h.store.admit(&delete, 10).unwrap();
    h.apply(delete).unwrap();
    let compaction = Op::Compaction(CompactionRequest {
        revision: h.rev(),
        physical: false,
    });
    h.store.admit(&compaction, 10).unwrap();
    h.apply(compaction).unwrap();
    h.store.admit(&put(1000), 1010).unwrap();
}

#[test]
fn hash_kv_tracks_content_and_revision() {
    let mut a = Harness::new();
    let mut b2 = Harness::new();
    for h in [&mut a, &mut b2] {
        h.put("x", "1");
        h.put("y", "2");
    }
    assert_eq!(a.store.hash_kv(0).unwrap(), b2.store.hash_kv(0).unwrap());
    let at2 = a.store.hash_kv(2).unwrap();
    a.put("x", "changed");
    b2.put("x", "different");
    assert_ne!(a.store.hash_kv(0).unwrap().hash, b2.store.hash_kv(0).unwrap().hash);
    assert_eq!(
        a.store.hash_kv(2).unwrap(),
        at2,
        "a past revision hashes the same later"
    );
    assert_eq!(a.store.hash_kv(2).unwrap(), b2.store.hash_kv(2).unwrap());
    assert!(matches!(a.store.hash_kv(99), Err(MvccError::FutureRevision)));
}
