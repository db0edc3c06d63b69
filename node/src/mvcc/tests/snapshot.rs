//! Snapshots: consistent, chunked, installed atomically, verified.

use super::*;
use crate::mvcc::SnapshotError;
use crate::proto::etcdserverpb::CompactionRequest;

fn populated() -> Harness {
    let mut h = Harness::new();
    h.grant(5, 30);
    for i in 0..200 {
        h.put(&format!("cfg/{:03}", i % 40), &format!("value-{i}"));
    }
    h.put_lease("svc/a", "10.0.0.1", 5).unwrap();
    h.apply(Op::Member(crate::proto::kvorum::internal::MemberAttributes {
        id: 42,
        name: "n42".into(),
        peer_urls: vec!["https://n42:2380".into()],
        client_urls: vec![],
    }))
    .unwrap();
    h.delete("cfg/01", "cfg/02");
    h.apply(Op::Compaction(CompactionRequest {
        revision: 150,
        physical: false,
    }))
    .unwrap();
    h
}

fn stream(h: &Harness, chunk: usize) -> (Vec<u8>, usize, u64) {
    let reader = h.store.snapshot(chunk).unwrap();
    let applied = reader.applied_index();
    let mut bytes = Vec::new();
    let mut chunks = 0;
    for c in reader {
        bytes.extend_from_slice(&c.unwrap());
        chunks += 1;
    }
    (bytes, chunks, applied)
}

type Fingerprint = (
    crate::mvcc::KvHash,
    i64,
    u64,
    Vec<crate::mvcc::LeaseInfo>,
    Vec<KeyValue>,
    Vec<crate::proto::kvorum::internal::MemberAttributes>,
);

fn fingerprint(s: &Store) -> Fingerprint {
    let all = RangeRequest {
        key: b("\0"),
        range_end: b("\0"),
        ..Default::default()
    };
    (
        s.hash_kv(0).unwrap(),
        s.current_revision(),
        s.applied_index(),
        s.leases(),
        s.range(&all).unwrap().kvs,
        s.members(),
    )
}

#[test]
fn a_snapshot_reproduces_the_store_exactly() {
    let src = populated();
    let (bytes, chunks, applied) = stream(&src, 4096);
    assert!(chunks > 3, "a larger snapshot comes in several chunks");
    assert_eq!(applied, src.store.applied_index());
    let mut dst = Harness::new();
    dst.put("stale", "to be replaced");
    assert_eq!(dst.store.install_snapshot(bytes.as_slice()).unwrap(), applied);
    assert_eq!(fingerprint(&dst.store), fingerprint(&src.store));
    assert_eq!(dst.get("stale"), None);
    assert_eq!(dst.store.compact_revision(), 150);
    // History above the compaction point came along.
    assert_eq!(dst.get_at("cfg/000", 170).unwrap(), src.get_at("cfg/000", 170).unwrap());
    // And the installed state survives a restart.
    let reopened = Store::open(dst.db.clone(), crate::mvcc::MvccConfig::default()).unwrap();
    assert_eq!(fingerprint(&reopened), fingerprint(&src.store));
}

#[test]
fn damaged_snapshots_are_refused_and_change_nothing() {
    let src = populated();
    let (bytes, _, _) = stream(&src, 64 * 1024);
    let mut dst = Harness::new();
    dst.put("mine", "keep");
    let before = fingerprint(&dst.store);
    for at in [9, bytes.len() / 2, bytes.len() - 5] {
        let mut bad = bytes.clone();
        bad[at] ^= 0x40;
        let err = dst.store.install_snapshot(bad.as_slice()).unwrap_err();
        assert!(
            matches!(err, SnapshotError::Checksum { .. } | SnapshotError::Malformed(_)),
            "flip at {at}: {err}"
        );
        assert_eq!(fingerprint(&dst.store), before);
    }
    for len in [0, 8, bytes.len() / 3, bytes.len() - 1] {
        let err = dst.store.install_snapshot(&bytes[..len]).unwrap_err();
        assert!(matches!(err, SnapshotError::Malformed(_)), "cut at {len}: {err}");
        assert_eq!(fingerprint(&dst.store), before);
    }
    let err = dst
        .store
        .install_snapshot(&b"definitely not a snapshot"[..])
        .unwrap_err();
    assert!(err.to_string().contains("bad magic"), "{err}");
}

#[test]
fn a_snapshot_is_consistent_while_writes_continue() {
    let mut src = populated();
    let expected = fingerprint(&src.store);
    let mut reader = src.store.snapshot(1024).unwrap();
    let mut bytes = reader.next().unwrap().unwrap().to_vec();
    // Writes land while the snapshot is being streamed...
    for i in 0..50 {
        src.put(&format!("late/{i}"), "x");
    }
    for c in reader {
        bytes.extend_from_slice(&c.unwrap());
    }
    // ...and the snapshot still describes the moment it started.
    let dst = Harness::new();
    dst.store.install_snapshot(bytes.as_slice()).unwrap();
    assert_eq!(fingerprint(&dst.store), expected);
}

#[test]
fn watchers_resume_from_history_after_an_install() {
    let src = populated();
    let (bytes, _, _) = stream(&src, 8192);
    let mut dst = Harness::new();
    let mut w = dst.store.watch(crate::mvcc::WatchSpec {
        span: crate::mvcc::index::KeySpan::new(&b("cfg/039"), &Bytes::new()),
        start_revision: 0,
        prev_kv: false,
        no_put: false,
        no_delete: false,
    });
    dst.put("cfg/039", "local"); // revision 2 on the member before it is overwritten
    assert!(matches!(w.try_recv(), Some(crate::mvcc::WatchUpdate::Events(_))));
    dst.store.install_snapshot(bytes.as_slice()).unwrap();
    dst.store.sync_watchers().unwrap();
    // The watcher had seen revision 2; the installed store compacted at 150, so it cannot be
    // resumed without a gap and is cancelled.
    assert_eq!(
        w.try_recv(),
        Some(crate::mvcc::WatchUpdate::Canceled { compact_revision: 150 })
    );
}

#[test]
fn client_snapshots_carry_a_sha256_trailer_that_restore_verifies() {
    let src = populated();
    let mut bytes = Vec::new();
    for c in crate::mvcc::ClientSnapshot::new(src.store.snapshot(4096).unwrap()) {
        bytes.extend_from_slice(&c.unwrap());
    }
    assert_eq!(
        bytes.len() % 512,
        32,
        "etcdctl's check: padded to 512 bytes plus a SHA-256"
    );
    let body = crate::mvcc::strip_client_checksum(&bytes).unwrap();
    let dst = Harness::new();
    dst.store.install_snapshot(body).unwrap();
    assert_eq!(fingerprint(&dst.store), fingerprint(&src.store));
    let mut bad = bytes.clone();
    bad[100] ^= 1;
    assert!(crate::mvcc::strip_client_checksum(&bad).is_err());
}
