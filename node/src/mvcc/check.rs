//! Structural validation of requests, as etcd does before proposing (`v3rpc/key.go`): pure
//! functions of the request, so the API runs them before anything is replicated and the state
//! machine runs them again when applying (a faulty proposer cannot corrupt the store).

use std::collections::HashSet;

use bytes::Bytes;

use super::MvccError;
use super::error::InvalidRequest;
use super::index::KeySpan;
use crate::proto::etcdserverpb::{
    Compare, DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest, compare, range_request, request_op,
};
use crate::proto::kvorum::internal::command::Op;

/// etcd's default limit on operations per txn list (`--max-txn-ops`).
pub const DEFAULT_MAX_TXN_OPS: usize = 128;

/// etcd's default limit on a request's encoded size (`--max-request-bytes`, 1.5 MiB).
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 1536 * 1024;

/// Bytes a command may add to the logical size, if it adds any: the writes the space quota
/// refuses. Deletes, compactions, revokes and checkpoints free space or are bookkeeping, and
/// are always admitted, so a full store can be cleaned up.
pub fn quota_cost(op: &Op) -> Option<u64> {
    fn put_cost(p: &PutRequest) -> u64 {
        (p.key.len() + p.value.len()) as u64 + 64
    }
    fn txn_cost(t: &TxnRequest) -> u64 {
        t.success
            .iter()
            .chain(&t.failure)
            .map(|op| match &op.request {
                Some(request_op::Request::RequestPut(p)) => put_cost(p),
                Some(request_op::Request::RequestTxn(t)) => txn_cost(t),
                _ => 0,
            })
            .sum()
    }
    match op {
        Op::Put(p) => Some(put_cost(p)),
        Op::Txn(t) => Some(txn_cost(t)).filter(|c| *c > 0),
        Op::LeaseGrant(_) => Some(super::state::LEASE_BYTES),
        Op::DeleteRange(_) | Op::Compaction(_) | Op::LeaseRevoke(_) | Op::LeaseCheckpoint(_) | Op::Member(_) => None,
    }
}

/// Checks a command's structure the way apply will.
pub fn command(op: &Op, max_txn_ops: usize) -> Result<(), MvccError> {
    match op {
        Op::Put(r) => put(r),
        Op::DeleteRange(r) => delete_range(r),
        Op::Txn(r) => txn(r, max_txn_ops),
        Op::Compaction(_) | Op::LeaseGrant(_) | Op::LeaseRevoke(_) | Op::LeaseCheckpoint(_) | Op::Member(_) => Ok(()),
    }
}

/// Checks a range request.
pub fn range(r: &RangeRequest) -> Result<(), MvccError> {
    if r.key.is_empty() {
        return Err(MvccError::EmptyKey);
    }
    if range_request::SortOrder::try_from(r.sort_order).is_err()
        || range_request::SortTarget::try_from(r.sort_target).is_err()
    {
        return Err(MvccError::InvalidSortOption);
    }
    Ok(())
}

/// Checks a put request.
pub fn put(r: &PutRequest) -> Result<(), MvccError> {
    if r.key.is_empty() {
        return Err(MvccError::EmptyKey);
    }
    if r.ignore_value && !r.value.is_empty() {
        return Err(MvccError::ValueProvided);
    }
    if r.ignore_lease && r.lease != 0 {
        return Err(MvccError::LeaseProvided);
    }
    Ok(())
}

/// Checks a delete request.
pub fn delete_range(r: &DeleteRangeRequest) -> Result<(), MvccError> {
    if r.key.is_empty() {
        return Err(MvccError::EmptyKey);
    }
    Ok(())
}

/// Checks a txn: sizes, every operation and compare, and that no key is modified twice in
/// either branch (nested txns included).
pub fn txn(r: &TxnRequest, max_ops: usize) -> Result<(), MvccError> {
    if r.compare.len() > max_ops || r.success.len() > max_ops || r.failure.len() > max_ops {
        return Err(MvccError::TooManyOps);
    }
    for c in &r.compare {
        compare(c)?;
    }
    for op in r.success.iter().chain(&r.failure) {
        request_op(op, max_ops)?;
    }
    writes(&r.success)?;
    writes(&r.failure)?;
    Ok(())
}

fn compare(c: &Compare) -> Result<(), MvccError> {
    if c.key.is_empty() {
        return Err(MvccError::EmptyKey);
    }
    if compare::CompareResult::try_from(c.result).is_err() || compare::CompareTarget::try_from(c.target).is_err() {
        return Err(MvccError::InvalidRequest(InvalidRequest::BadCompare));
    }
    Ok(())
}

fn request_op(op: &RequestOp, max_ops: usize) -> Result<(), MvccError> {
    match &op.request {
        Some(request_op::Request::RequestRange(r)) => range(r),
        Some(request_op::Request::RequestPut(r)) => put(r),
        Some(request_op::Request::RequestDeleteRange(r)) => delete_range(r),
        Some(request_op::Request::RequestTxn(r)) => txn(r, max_ops),
        None => Err(MvccError::InvalidRequest(InvalidRequest::EmptyOperation)),
    }
}

/// The keys one branch puts and the spans it deletes.
#[derive(Default)]
struct Writes {
    puts: HashSet<Bytes>,
    deletes: Vec<KeySpan>,
}

impl Writes {
    fn deleted(&self, key: &[u8]) -> bool {
        self.deletes.iter().any(|d| d.contains(key))
    }
}

/// etcd's `checkIntervals`: within one branch, a key may be put at most once and never inside
/// a deleted range; overlapping deletes are fine. A nested txn's two branches are alternatives,
/// so the same key may be put in both.
fn writes(ops: &[RequestOp]) -> Result<Writes, MvccError> {
    let mut w = Writes::default();
    for op in ops {
        if let Some(request_op::Request::RequestDeleteRange(d)) = &op.request {
            w.deletes.push(KeySpan::new(&d.key, &d.range_end));
        }
    }
    for op in ops {
        let Some(request_op::Request::RequestTxn(t)) = &op.request else {
            continue;
        };
        let then = writes(&t.success)?;
        let otherwise = writes(&t.failure)?;
        for k in &then.puts {
            if w.puts.contains(k) || w.deleted(k) {
                return Err(MvccError::DuplicateKey);
            }
        }
        for k in &otherwise.puts {
            if (w.puts.contains(k) && !then.puts.contains(k)) || w.deleted(k) {
                return Err(MvccError::DuplicateKey);
            }
        }
        w.puts.extend(then.puts);
        w.puts.extend(otherwise.puts);
        w.deletes.extend(then.deletes);
        w.deletes.extend(otherwise.deletes);
    }
    for op in ops {
        let Some(request_op::Request::RequestPut(p)) = &op.request else {
            continue;
        };
        if w.puts.contains(&p.key) || w.deleted(&p.key) {
            return Err(MvccError::DuplicateKey);
        }
        w.puts.insert(p.key.clone());
    }
    Ok(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::from(s.to_string())
    }
    fn put_op(k: &str) -> RequestOp {
        RequestOp {
            request: Some(request_op::Request::RequestPut(PutRequest {
                key: b(k),
                ..Default::default()
            })),
        }
    }
    fn del_op(k: &str, end: &str) -> RequestOp {
        RequestOp {
            request: Some(request_op::Request::RequestDeleteRange(DeleteRangeRequest {
                key: b(k),
                range_end: b(end),
                ..Default::default()
            })),
        }
    }
    fn txn_op(success: Vec<RequestOp>, failure: Vec<RequestOp>) -> RequestOp {
        RequestOp {
            request: Some(request_op::Request::RequestTxn(TxnRequest {
                compare: vec![],
                success,
                failure,
            })),
        }
    }
    fn check(success: Vec<RequestOp>) -> Result<(), MvccError> {
        txn(
            &TxnRequest {
                compare: vec![],
                success,
                failure: vec![],
            },
            DEFAULT_MAX_TXN_OPS,
        )
    }

    #[test]
    fn duplicate_keys_follow_etcd() {
        assert!(matches!(
            check(vec![put_op("a"), put_op("a")]),
            Err(MvccError::DuplicateKey)
        ));
        assert!(matches!(
            check(vec![del_op("a", "c"), put_op("b")]),
            Err(MvccError::DuplicateKey)
        ));
        assert!(matches!(
            check(vec![put_op("b"), del_op("b", "")]),
            Err(MvccError::DuplicateKey)
        ));
        assert!(
            check(vec![del_op("a", "c"), del_op("b", "d")]).is_ok(),
            "overlapping deletes are fine"
        );
        assert!(check(vec![put_op("a"), put_op("b"), del_op("c", "d")]).is_ok());
        // Nested: the two branches are alternatives...
        assert!(check(vec![txn_op(vec![put_op("a")], vec![put_op("a")])]).is_ok());
        // ...but either conflicts with the outer level.
        assert!(matches!(
            check(vec![put_op("a"), txn_op(vec![put_op("a")], vec![])]),
            Err(MvccError::DuplicateKey)
        ));
        assert!(matches!(
            check(vec![del_op("a", "z"), txn_op(vec![], vec![put_op("m")])]),
            Err(MvccError::DuplicateKey)
        ));
        // A nested delete covers an outer put too.
        assert!(matches!(
            check(vec![put_op("m"), txn_op(vec![del_op("a", "z")], vec![])]),
            Err(MvccError::DuplicateKey)
        ));
        // Success and failure of the top level are checked separately.
        let both = TxnRequest {
            compare: vec![],
            success: vec![put_op("a")],
            failure: vec![put_op("a")],
        };
        assert!(txn(&both, DEFAULT_MAX_TXN_OPS).is_ok());
    }

    #[test]
    fn limits_and_empty_parts() {
        let many = (0..129).map(|i| put_op(&format!("k{i}"))).collect();
        assert!(matches!(check(many), Err(MvccError::TooManyOps)));
        let exactly = (0..128).map(|i| put_op(&format!("k{i}"))).collect();
        assert!(check(exactly).is_ok());
        assert!(matches!(check(vec![put_op("")]), Err(MvccError::EmptyKey)));
        assert!(matches!(
            check(vec![RequestOp { request: None }]),
            Err(MvccError::InvalidRequest(InvalidRequest::EmptyOperation))
        ));
        let bad_compare = TxnRequest {
            compare: vec![Compare {
                key: b("k"),
                result: 17,
                ..Default::default()
            }],
            ..Default::default()
        };
        assert!(matches!(
            txn(&bad_compare, 128),
            Err(MvccError::InvalidRequest(InvalidRequest::BadCompare))
        ));
    }

    #[test]
    fn put_flags() {
        let p = |value: &str, lease, iv, il| PutRequest {
            key: b("k"),
            value: b(value),
            lease,
            ignore_value: iv,
            ignore_lease: il,
            prev_kv: false,
        };
        assert!(matches!(put(&p("v", 0, true, false)), Err(MvccError::ValueProvided)));
        assert!(matches!(put(&p("", 5, false, true)), Err(MvccError::LeaseProvided)));
        assert!(put(&p("", 0, true, true)).is_ok());
        let bad_sort = RangeRequest {
            key: b("k"),
            sort_order: 9,
            ..Default::default()
        };
        assert!(matches!(range(&bad_sort), Err(MvccError::InvalidSortOption)));
    }
}
