//! Txn: compares, branches, nesting, one revision per txn, duplicate keys (etcd-v3-api.md §1.3).

use super::*;
use crate::proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use crate::proto::etcdserverpb::{Compare, RequestOp, request_op, response_op};

fn cmp(key: &str, target: CompareTarget, result: CompareResult, union: TargetUnion) -> Compare {
    Compare {
        result: result as i32,
        target: target as i32,
        key: b(key),
        target_union: Some(union),
        range_end: Bytes::new(),
    }
}

fn put(k: &str, v: &str) -> RequestOp {
    RequestOp {
        request: Some(request_op::Request::RequestPut(PutRequest {
            key: b(k),
            value: b(v),
            ..Default::default()
        })),
    }
}

fn get(k: &str) -> RequestOp {
    RequestOp {
        request: Some(request_op::Request::RequestRange(RangeRequest {
            key: b(k),
            ..Default::default()
        })),
    }
}

fn del(k: &str) -> RequestOp {
    RequestOp {
        request: Some(request_op::Request::RequestDeleteRange(DeleteRangeRequest {
            key: b(k),
            ..Default::default()
        })),
    }
}

fn txn(compare: Vec<Compare>, success: Vec<RequestOp>, failure: Vec<RequestOp>) -> TxnRequest {
    TxnRequest {
        compare,
        success,
        failure,
    }
}

fn succeeded(h: &mut Harness, c: Compare) -> bool {
    h.txn(txn(vec![c], vec![], vec![])).unwrap().succeeded
}

#[test]
fn every_target_and_result() {
    use CompareResult::*;
    use CompareTarget as T;
    let mut h = Harness::new();
    h.grant(5, 60);
    h.put("k", "m"); // rev 2, version 1 (a grant does not consume a revision)
    h.put_lease("k", "m", 5).unwrap(); // rev 3, version 2
    let cases = [
        (T::Version, TargetUnion::Version(2), Equal, true),
        (T::Version, TargetUnion::Version(1), Greater, true),
        (T::Version, TargetUnion::Version(3), Less, true),
        (T::Version, TargetUnion::Version(2), NotEqual, false),
        (T::Create, TargetUnion::CreateRevision(2), Equal, true),
        (T::Mod, TargetUnion::ModRevision(3), Equal, true),
        (T::Mod, TargetUnion::ModRevision(2), Greater, true),
        (T::Value, TargetUnion::Value(b("m")), Equal, true),
        (T::Value, TargetUnion::Value(b("a")), Greater, true),
        (T::Value, TargetUnion::Value(b("z")), Less, true),
        (T::Value, TargetUnion::Value(b("m")), NotEqual, false),
        (T::Lease, TargetUnion::Lease(5), Equal, true),
        (T::Lease, TargetUnion::Lease(0), Greater, true),
    ];
    for (target, union, result, want) in cases {
        let got = succeeded(&mut h, cmp("k", target, result, union.clone()));
        assert_eq!(got, want, "{target:?} {result:?} {union:?}");
    }
    assert_eq!(h.rev(), 3, "read-only txns do not consume revisions");
}

#[test]
fn missing_keys_compare_as_zero_except_value() {
    let mut h = Harness::new();
    use CompareResult::*;
    use CompareTarget as T;
    assert!(succeeded(
        &mut h,
        cmp("nope", T::Version, Equal, TargetUnion::Version(0))
    ));
    assert!(succeeded(
        &mut h,
        cmp("nope", T::Create, Equal, TargetUnion::CreateRevision(0))
    ));
    assert!(succeeded(
        &mut h,
        cmp("nope", T::Mod, Less, TargetUnion::ModRevision(1))
    ));
    assert!(succeeded(&mut h, cmp("nope", T::Lease, Equal, TargetUnion::Lease(0))));
    assert!(
        !succeeded(&mut h, cmp("nope", T::Value, Equal, TargetUnion::Value(Bytes::new()))),
        "a VALUE compare on a missing key always fails"
    );
    assert!(!succeeded(
        &mut h,
        cmp("nope", T::Value, NotEqual, TargetUnion::Value(b("x")))
    ));
}

#[test]
fn create_if_absent_and_compare_and_swap() {
    let mut h = Harness::new();
    let absent = cmp(
        "lock",
        CompareTarget::Create,
        CompareResult::Equal,
        TargetUnion::CreateRevision(0),
    );
    let r = h
        .txn(txn(vec![absent.clone()], vec![put("lock", "me")], vec![get("lock")]))
        .unwrap();
    assert!(r.succeeded);
    let r = h
        .txn(txn(vec![absent], vec![put("lock", "you")], vec![get("lock")]))
        .unwrap();
    assert!(!r.succeeded);
    let Some(response_op::Response::ResponseRange(range)) = &r.responses[0].response else {
        panic!()
    };
    assert_eq!(range.kvs[0].value, b("me"), "the failure branch read the holder");

    let mod_rev = h.get("lock").unwrap().mod_revision;
    let cas = |rev| {
        cmp(
            "lock",
            CompareTarget::Mod,
            CompareResult::Equal,
            TargetUnion::ModRevision(rev),
        )
    };
    assert!(
        h.txn(txn(vec![cas(mod_rev)], vec![put("lock", "v2")], vec![]))
            .unwrap()
            .succeeded
    );
    assert!(
        !h.txn(txn(vec![cas(mod_rev)], vec![put("lock", "v3")], vec![]))
            .unwrap()
            .succeeded,
        "a stale mod revision loses"
    );
    assert_eq!(h.get("lock").unwrap().value, b("v2"));
}

#[test]
fn compare_over_a_range_needs_every_key() {
    let mut h = Harness::new();
    h.put("svc/a", "up");
    h.put("svc/b", "up");
    let mut all_up = cmp(
        "svc/",
        CompareTarget::Value,
        CompareResult::Equal,
        TargetUnion::Value(b("up")),
    );
    all_up.range_end = b("svc0");
    assert!(succeeded(&mut h, all_up.clone()));
    h.put("svc/c", "down");
    assert!(!succeeded(&mut h, all_up));
}

#[test]
fn one_revision_per_txn_and_reads_see_earlier_writes() {
    let mut h = Harness::new();
    h.put("gone", "x"); // 2
    let r = h
        .txn(txn(
            vec![],
            vec![put("a", "1"), get("a"), put("b", "2"), del("gone")],
            vec![],
        ))
        .unwrap();
    assert_eq!(header_rev(&r.header), 3);
    let Some(response_op::Response::ResponseRange(seen)) = &r.responses[1].response else {
        panic!()
    };
    assert_eq!(
        seen.kvs[0].value,
        b("1"),
        "a range in a txn sees the txn's own earlier put"
    );
    assert_eq!(seen.kvs[0].mod_revision, 3);
    for k in ["a", "b"] {
        assert_eq!(h.get(k).unwrap().mod_revision, 3);
    }
    assert_eq!(h.get_at("gone", 3).unwrap(), None);
    assert_eq!(h.get_at("gone", 2).unwrap().unwrap().value, b("x"));
}

#[test]
fn nested_compares_are_evaluated_before_any_operation_runs() {
    let mut h = Harness::new();
    // The inner compare asks whether "flag" is absent. The outer branch creates it first, but
    // etcd evaluates the whole path up front, so the inner txn still takes its success branch.
    let inner = TxnRequest {
        compare: vec![cmp(
            "flag",
            CompareTarget::Version,
            CompareResult::Equal,
            TargetUnion::Version(0),
        )],
        success: vec![put("inner", "saw-absent")],
        failure: vec![put("inner", "saw-present")],
    };
    let r = h
        .txn(txn(
            vec![],
            vec![
                put("flag", "set"),
                RequestOp {
                    request: Some(request_op::Request::RequestTxn(inner)),
                },
            ],
            vec![],
        ))
        .unwrap();
    assert!(r.succeeded);
    let Some(response_op::Response::ResponseTxn(inner)) = &r.responses[1].response else {
        panic!()
    };
    assert!(inner.succeeded);
    assert_eq!(h.get("inner").unwrap().value, b("saw-absent"));
    assert_eq!(
        h.get("inner").unwrap().mod_revision,
        h.get("flag").unwrap().mod_revision
    );
}

#[test]
fn invalid_txns_are_refused_whole() {
    let mut h = Harness::new();
    h.put("a", "0");
    let before = (h.rev(), h.store.hash_kv(0).unwrap().hash);
    let err = h
        .txn(txn(vec![], vec![put("a", "1"), put("a", "2")], vec![]))
        .unwrap_err();
    assert_eq!(err.to_string(), "etcdserver: duplicate key given in txn request");
    let too_many = (0..129).map(|i| put(&format!("k{i}"), "v")).collect();
    let err = h.txn(txn(vec![], too_many, vec![])).unwrap_err();
    assert_eq!(err.to_string(), "etcdserver: too many operations in txn request");
    // A later operation that cannot run stops the earlier ones too.
    let mut leased = put("b", "x");
    if let Some(request_op::Request::RequestPut(p)) = &mut leased.request {
        p.lease = 77;
    }
    let err = h.txn(txn(vec![], vec![put("a", "1"), leased], vec![])).unwrap_err();
    assert_eq!(err.to_string(), "etcdserver: requested lease not found");
    let future = RequestOp {
        request: Some(request_op::Request::RequestRange(RangeRequest {
            key: b("a"),
            revision: 1000,
            ..Default::default()
        })),
    };
    let err = h.txn(txn(vec![], vec![put("a", "1"), future], vec![])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "etcdserver: mvcc: required revision is a future revision"
    );
    assert_eq!((h.rev(), h.store.hash_kv(0).unwrap().hash), before);
    assert_eq!(h.get("a").unwrap().value, b("0"));
}

#[test]
fn max_txn_ops_is_configurable() {
    let mut h = Harness::with_config(crate::mvcc::MvccConfig {
        max_txn_ops: 2,
        ..Default::default()
    });
    assert!(h.txn(txn(vec![], vec![put("a", "1"), put("b", "1")], vec![])).is_ok());
    assert!(matches!(
        h.txn(txn(vec![], vec![put("a", "1"), put("b", "1"), put("c", "1")], vec![])),
        Err(MvccError::TooManyOps)
    ));
}
