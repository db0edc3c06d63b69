//! Put, Range and DeleteRange (etcd-v3-api.md §1.3).

use super::*;
use crate::proto::etcdserverpb::range_request::{SortOrder, SortTarget};

#[test]
fn revisions_and_versions_follow_etcd() {
    let mut h = Harness::new();
    assert_eq!(h.rev(), 1, "an empty etcd store is at revision 1");
    let r = h.put("foo", "bar");
    assert_eq!(header_rev(&r.header), 2);
    let kv = h.get("foo").unwrap();
    assert_eq!((kv.create_revision, kv.mod_revision, kv.version), (2, 2, 1));
    h.put("foo", "bar");
    let kv = h.get("foo").unwrap();
    assert_eq!(
        (kv.create_revision, kv.mod_revision, kv.version),
        (2, 3, 2),
        "an identical put still makes a new revision and version"
    );
    h.put("other", "x");
    let d = h.delete("foo", "");
    assert_eq!(d.deleted, 1);
    assert_eq!(header_rev(&d.header), 5);
    assert_eq!(h.get("foo"), None);
    h.put("foo", "again");
    let kv = h.get("foo").unwrap();
    assert_eq!(
        (kv.create_revision, kv.mod_revision, kv.version),
        (6, 6, 1),
        "delete resets the version; re-creation starts a new life"
    );
}

#[test]
fn put_returns_prev_kv_only_when_asked_and_when_it_existed() {
    let mut h = Harness::new();
    let first = h
        .try_put(PutRequest {
            key: b("k"),
            value: b("v1"),
            prev_kv: true,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(first.prev_kv, None, "nothing before the first put");
    let second = h
        .try_put(PutRequest {
            key: b("k"),
            value: b("v2"),
            prev_kv: true,
            ..Default::default()
        })
        .unwrap();
    let prev = second.prev_kv.unwrap();
    assert_eq!((prev.value, prev.mod_revision, prev.version), (b("v1"), 2, 1));
    let third = h.put("k", "v3");
    assert_eq!(third.prev_kv, None, "not asked");
}

#[test]
fn ignore_value_and_ignore_lease() {
    let mut h = Harness::new();
    h.grant(10, 60);
    h.put_lease("k", "keep-me", 10).unwrap();
    h.try_put(PutRequest {
        key: b("k"),
        ignore_value: true,
        ..Default::default()
    })
    .unwrap();
    let kv = h.get("k").unwrap();
    assert_eq!(
        (kv.value, kv.lease, kv.version),
        (b("keep-me"), 0, 2),
        "ignore_value keeps the value"
    );
    h.put_lease("k", "new", 10).unwrap();
    h.try_put(PutRequest {
        key: b("k"),
        value: b("newer"),
        ignore_lease: true,
        ..Default::default()
    })
    .unwrap();
    let kv = h.get("k").unwrap();
    assert_eq!((kv.value, kv.lease), (b("newer"), 10), "ignore_lease keeps the lease");

    for r in [
        PutRequest {
            key: b("missing"),
            ignore_value: true,
            ..Default::default()
        },
        PutRequest {
            key: b("missing"),
            ignore_lease: true,
            ..Default::default()
        },
    ] {
        let err = h.try_put(r).unwrap_err();
        assert_eq!(err.to_string(), "etcdserver: key not found");
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
    }
    let err = h
        .try_put(PutRequest {
            key: b("k"),
            value: b("x"),
            ignore_value: true,
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(err.to_string(), "etcdserver: value is provided");
    let err = h
        .try_put(PutRequest {
            key: b("k"),
            lease: 10,
            ignore_lease: true,
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(err.to_string(), "etcdserver: lease is provided");
}

#[test]
fn refused_requests_change_nothing() {
    let mut h = Harness::new();
    h.put("a", "1");
    let before = (h.rev(), h.store.hash_kv(0).unwrap());
    let err = h.put_lease("a", "2", 404).unwrap_err();
    assert_eq!(err.to_string(), "etcdserver: requested lease not found");
    assert_eq!(err.code(), tonic::Code::NotFound);
    let err = h
        .try_put(PutRequest {
            key: Bytes::new(),
            value: b("v"),
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(err.to_string(), "etcdserver: key is not provided");
    assert_eq!((h.rev(), h.store.hash_kv(0).unwrap()), before);
    assert_eq!(h.get("a").unwrap().value, b("1"));
    // A delete that matches nothing does not consume a revision either.
    let d = h.delete("zzz", "");
    assert_eq!(d.deleted, 0);
    assert_eq!(h.rev(), before.0);
}

#[test]
fn range_end_conventions() {
    let mut h = Harness::new();
    for k in ["a", "ab", "abc", "b", "c", "\u{7f}"] {
        h.put(k, "v");
    }
    let q = |key: &[u8], end: &[u8]| RangeRequest {
        key: Bytes::copy_from_slice(key),
        range_end: Bytes::copy_from_slice(end),
        ..Default::default()
    };
    assert_eq!(h.keys(q(b"ab", b"")), vec!["ab"], "no range_end: one key");
    assert_eq!(h.keys(q(b"a", b"b")), vec!["a", "ab", "abc"], "prefix a");
    assert_eq!(
        h.keys(q(b"b", b"\0")),
        vec!["b", "c", "\u{7f}"],
        "\\0: every key from b"
    );
    assert_eq!(h.keys(q(b"\0", b"\0")).len(), 6, "\\0..\\0: the whole keyspace");
    assert!(
        h.keys(q(b"c", b"a")).is_empty(),
        "a range ending before it starts is empty"
    );
    let err = h.range(q(b"", b"z")).unwrap_err();
    assert_eq!(err.to_string(), "etcdserver: key is not provided");
}

#[test]
fn limit_more_and_count() {
    let mut h = Harness::new();
    for i in 0..10 {
        h.put(&format!("k{i}"), &format!("v{i}"));
    }
    let all = RangeRequest {
        key: b("k"),
        range_end: b("l"),
        ..Default::default()
    };
    let r = h
        .range(RangeRequest {
            limit: 3,
            ..all.clone()
        })
        .unwrap();
    assert_eq!(r.kvs.len(), 3);
    assert!(r.more);
    assert_eq!(r.count, 10, "count ignores the limit");
    let r = h
        .range(RangeRequest {
            limit: 10,
            ..all.clone()
        })
        .unwrap();
    assert!(!r.more, "exactly the limit: nothing more");
    let r = h
        .range(RangeRequest {
            count_only: true,
            ..all.clone()
        })
        .unwrap();
    assert!(r.kvs.is_empty());
    assert_eq!(r.count, 10);
    let r = h
        .range(RangeRequest {
            keys_only: true,
            limit: 2,
            ..all.clone()
        })
        .unwrap();
    assert!(r.kvs.iter().all(|kv| kv.value.is_empty() && kv.version == 1));
    assert_eq!(r.kvs[1].key, b("k1"));
}

#[test]
fn paging_at_a_fixed_revision_sees_a_consistent_snapshot() {
    let mut h = Harness::new();
    for i in 0..25 {
        h.put(&format!("page/{i:02}"), "v");
    }
    let rev = h.rev();
    let mut key = b("page/");
    let mut seen = Vec::new();
    loop {
        let r = h
            .range(RangeRequest {
                key: key.clone(),
                range_end: b("page0"),
                limit: 10,
                revision: rev,
                ..Default::default()
            })
            .unwrap();
        seen.extend(r.kvs.iter().map(|kv| kv.key.clone()));
        // Concurrent writes between pages do not show up at the fixed revision.
        h.put("page/99-late", "x");
        if !r.more {
            break;
        }
        let mut next = r.kvs.last().unwrap().key.to_vec();
        next.push(0);
        key = Bytes::from(next);
    }
    assert_eq!(seen.len(), 25);
    assert!(seen.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn sorting() {
    let mut h = Harness::new();
    h.put("a", "3");
    h.put("b", "1");
    h.put("c", "2");
    h.put("b", "1b");
    let sorted = |order: SortOrder, target: SortTarget| {
        h.keys(RangeRequest {
            key: b("a"),
            range_end: b("z"),
            sort_order: order as i32,
            sort_target: target as i32,
            ..Default::default()
        })
    };
    assert_eq!(sorted(SortOrder::Descend, SortTarget::Key), ["c", "b", "a"]);
    assert_eq!(sorted(SortOrder::Ascend, SortTarget::Value), ["b", "c", "a"]);
    assert_eq!(sorted(SortOrder::Descend, SortTarget::Mod), ["b", "c", "a"]);
    assert_eq!(sorted(SortOrder::Ascend, SortTarget::Create), ["a", "b", "c"]);
    assert_eq!(sorted(SortOrder::Descend, SortTarget::Version)[0], "b");
    assert_eq!(
        sorted(SortOrder::None, SortTarget::Mod),
        ["a", "c", "b"],
        "a non-key target without an order sorts ascending"
    );
    let r = h
        .range(RangeRequest {
            key: b("a"),
            range_end: b("z"),
            sort_order: SortOrder::Descend as i32,
            sort_target: SortTarget::Mod as i32,
            limit: 1,
            ..Default::default()
        })
        .unwrap();
    assert_eq!((r.kvs.len(), r.more, r.count), (1, true, 3), "sort, then truncate");
    assert_eq!(r.kvs[0].key, b("b"));
    let err = h
        .range(RangeRequest {
            key: b("a"),
            sort_target: 42,
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(err.to_string(), "etcdserver: invalid sort option");
}

#[test]
fn revision_filters_do_not_change_count() {
    let mut h = Harness::new();
    h.put("a", "1"); // 2
    h.put("b", "1"); // 3
    h.put("c", "1"); // 4
    h.put("a", "2"); // 5
    let q = |min_mod, max_mod, min_create, max_create| RangeRequest {
        key: b("a"),
        range_end: b("z"),
        min_mod_revision: min_mod,
        max_mod_revision: max_mod,
        min_create_revision: min_create,
        max_create_revision: max_create,
        ..Default::default()
    };
    let r = h.range(q(4, 0, 0, 0)).unwrap();
    assert_eq!(
        r.kvs.iter().map(|kv| kv.key.clone()).collect::<Vec<_>>(),
        [b("a"), b("c")]
    );
    assert_eq!(r.count, 3, "count is over the range, not the filtered result");
    assert_eq!(h.keys(q(0, 3, 0, 0)), ["b"]);
    assert_eq!(h.keys(q(0, 0, 3, 0)), ["b", "c"]);
    assert_eq!(h.keys(q(0, 0, 0, 2)), ["a"]);
}

#[test]
fn history_reads_and_revision_errors() {
    let mut h = Harness::new();
    h.put("k", "v1"); // 2
    h.put("k", "v2"); // 3
    h.delete("k", ""); // 4
    h.put("k", "v3"); // 5
    assert_eq!(h.get_at("k", 1).unwrap(), None);
    assert_eq!(h.get_at("k", 2).unwrap().unwrap().value, b("v1"));
    let at3 = h.get_at("k", 3).unwrap().unwrap();
    assert_eq!((at3.value, at3.version, at3.create_revision), (b("v2"), 2, 2));
    assert_eq!(h.get_at("k", 4).unwrap(), None);
    assert_eq!(h.get_at("k", 5).unwrap().unwrap().value, b("v3"));
    let err = h.get_at("k", 6).unwrap_err();
    assert_eq!(
        err.to_string(),
        "etcdserver: mvcc: required revision is a future revision"
    );
    assert_eq!(err.code(), tonic::Code::OutOfRange);
    let r = h
        .range(RangeRequest {
            key: b("k"),
            revision: 3,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(header_rev(&r.header), 5, "the header carries the current revision");
}

#[test]
fn delete_range_deletes_in_one_revision_and_returns_prev_kvs() {
    let mut h = Harness::new();
    for k in ["p/1", "p/2", "p/3", "q"] {
        h.put(k, k);
    }
    let d = h.delete("p/", "p0");
    assert_eq!(d.deleted, 3);
    assert_eq!(
        d.prev_kvs.iter().map(|kv| kv.value.clone()).collect::<Vec<_>>(),
        [b("p/1"), b("p/2"), b("p/3")]
    );
    assert_eq!(header_rev(&d.header), 6, "three deletes, one revision");
    assert_eq!(
        h.keys(RangeRequest {
            key: b("\0"),
            range_end: b("\0"),
            ..Default::default()
        }),
        ["q"]
    );
    // Each deleted key is visible at the previous revision.
    assert_eq!(h.get_at("p/2", 5).unwrap().unwrap().value, b("p/2"));
}
