//! etcd's Lock and Election services, implemented server-side exactly as etcd's `concurrency`
//! recipes do client-side: each contender owns a key `<name>/<lease hex>` attached to its lease;
//! the contender whose key has the lowest create revision holds the lock (leads); the others
//! wait until every key created before theirs is deleted. Because keys are attached to leases,
//! a crashed holder's key disappears when its lease expires, and the next contender proceeds:
//! the "distributed cron job with failover" pattern.

use bytes::Bytes;
use tonic::Status;

use super::service::Api;
use crate::mvcc::WatchSpec;
use crate::mvcc::index::KeySpan;
use crate::proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use crate::proto::etcdserverpb::range_request::{SortOrder, SortTarget};
use crate::proto::etcdserverpb::{
    Compare, DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, ResponseHeader, TxnRequest, request_op,
    response_op,
};
use crate::proto::mvccpb::{KeyValue, event::EventType};
use crate::proto::v3electionpb::LeaderKey;

/// The prefix every contender key of `name` starts with.
fn prefix(name: &[u8]) -> Bytes {
    let mut p = name.to_vec();
    p.push(b'/');
    Bytes::from(p)
}

/// The first key after every key starting with `p`.
pub fn prefix_end(p: &[u8]) -> Bytes {
    let mut end = p.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Bytes::from(end);
        }
    }
    Bytes::from_static(&[0])
}

fn create_rev_cmp(key: &Bytes, rev: i64) -> Compare {
    Compare {
        result: CompareResult::Equal as i32,
        target: CompareTarget::Create as i32,
        key: key.clone(),
        target_union: Some(TargetUnion::CreateRevision(rev)),
        range_end: Bytes::new(),
    }
}

/// Creates `key` with `value` and `lease` unless it exists; returns the key's create revision
/// and the header revision.
async fn claim(api: &Api, key: &Bytes, value: Bytes, lease: i64) -> Result<(i64, KeyValue), Status> {
    let t = api
        .txn(TxnRequest {
            compare: vec![create_rev_cmp(key, 0)],
            success: vec![RequestOp {
                request: Some(request_op::Request::RequestPut(PutRequest {
                    key: key.clone(),
                    value: value.clone(),
                    lease,
                    ..Default::default()
                })),
            }],
            failure: vec![RequestOp {
                request: Some(request_op::Request::RequestRange(RangeRequest {
                    key: key.clone(),
                    ..Default::default()
                })),
            }],
        })
        .await?;
    let rev = t.header.as_ref().map_or(0, |h| h.revision);
    if t.succeeded {
        return Ok((
            rev,
            KeyValue {
                key: key.clone(),
                create_revision: rev,
                mod_revision: rev,
                version: 1,
                value,
                lease,
            },
        ));
    }
    match t.responses.into_iter().next().and_then(|r| r.response) {
        Some(response_op::Response::ResponseRange(r)) if !r.kvs.is_empty() => {
            Ok((rev, r.kvs.into_iter().next().expect("non-empty")))
        }
        _ => Err(Status::aborted("etcdserver: the contender key vanished; retry")),
    }
}

/// Waits until no key under `pfx` was created before `my_create_rev`. Fails if `my_key` is
/// deleted meanwhile (its lease expired).
async fn wait_for_predecessors(api: &Api, pfx: &Bytes, my_key: &Bytes, my_create_rev: i64) -> Result<(), Status> {
    loop {
        let r = api
            .range(RangeRequest {
                key: pfx.clone(),
                range_end: prefix_end(pfx),
                sort_order: SortOrder::Descend as i32,
                sort_target: SortTarget::Create as i32,
                max_create_revision: my_create_rev - 1,
                limit: 1,
                ..Default::default()
            })
            .await?;
        let Some(pred) = r.kvs.into_iter().next() else {
            return Ok(());
        };
        let rev = r.header.map_or(0, |h| h.revision);
        let mut w = api.node()?.store().watch(WatchSpec {
            span: KeySpan::new(&pred.key, &Bytes::new()),
            start_revision: rev + 1,
            prev_kv: false,
            no_put: true,
            no_delete: false,
        });
        loop {
            match w.recv().await {
                Some(crate::mvcc::WatchUpdate::Events(evs))
                    if evs.iter().any(|e| e.r#type == EventType::Delete as i32) =>
                {
                    break;
                }
                Some(crate::mvcc::WatchUpdate::Events(_)) => {}
                _ => break,
            }
        }
        let mine = api
            .range(RangeRequest {
                key: my_key.clone(),
                ..Default::default()
            })
            .await?;
        if mine.kvs.is_empty() {
            return Err(Status::aborted(
                "etcdserver: session expired: the contender key was deleted",
            ));
        }
    }
}

/// Deletes the contender key if it is still the one created at `rev`.
async fn release(api: &Api, key: &Bytes, rev: i64) -> Result<Option<ResponseHeader>, Status> {
    let t = api
        .txn(TxnRequest {
            compare: vec![create_rev_cmp(key, rev)],
            success: vec![RequestOp {
                request: Some(request_op::Request::RequestDeleteRange(DeleteRangeRequest {
                    key: key.clone(),
                    ..Default::default()
                })),
            }],
            failure: vec![],
        })
        .await?;
    Ok(t.header)
}

/// Removes a contender key when the waiting request is abandoned (client gone or timed out),
/// as etcd's `Mutex.Lock` does.
struct Abandon {
    api: Api,
    key: Bytes,
    rev: i64,
    armed: bool,
}

impl Drop for Abandon {
    fn drop(&mut self) {
        if self.armed {
            let (api, key, rev) = (self.api.clone(), self.key.clone(), self.rev);
            tokio::spawn(async move {
                let _ = release(&api, &key, rev).await;
            });
        }
    }
}

/// Lock: returns the owned key once every earlier contender is gone.
pub async fn lock(api: &Api, name: Bytes, lease: i64) -> Result<(Option<ResponseHeader>, Bytes), Status> {
    if name.is_empty() {
        return Err(Status::invalid_argument("etcdserver: lock name is not provided"));
    }
    if lease == 0 {
        return Err(Status::invalid_argument("etcdserver: a lock needs a lease"));
    }
    let pfx = prefix(&name);
    let key = Bytes::from([pfx.as_ref(), format!("{lease:x}").as_bytes()].concat());
    let (_, kv) = claim(api, &key, Bytes::new(), lease).await?;
    let mut guard = Abandon {
        api: api.clone(),
        key: key.clone(),
        rev: kv.create_revision,
        armed: true,
    };
    wait_for_predecessors(api, &pfx, &key, kv.create_revision).await?;
    guard.armed = false;
    Ok((api.header(0), key))
}

/// Unlock: deletes the lock key.
pub async fn unlock(api: &Api, key: Bytes) -> Result<Option<ResponseHeader>, Status> {
    let d = api
        .delete_range(DeleteRangeRequest {
            key,
            ..Default::default()
        })
        .await?;
    Ok(d.header)
}

/// Campaign: becomes leader of `name` once every earlier candidate is gone.
pub async fn campaign(api: &Api, name: Bytes, lease: i64, value: Bytes) -> Result<LeaderKey, Status> {
    if name.is_empty() {
        return Err(Status::invalid_argument("etcdserver: election name is not provided"));
    }
    if lease == 0 {
        return Err(Status::invalid_argument("etcdserver: a campaign needs a lease"));
    }
    let pfx = prefix(&name);
    let key = Bytes::from([pfx.as_ref(), format!("{lease:x}").as_bytes()].concat());
    let (_, kv) = claim(api, &key, value.clone(), lease).await?;
    let leader = LeaderKey {
        name: name.clone(),
        key: key.clone(),
        rev: kv.create_revision,
        lease,
    };
    if kv.value != value {
        // Resuming an earlier campaign with a new value: proclaim it.
        proclaim(api, &leader, value).await?;
    }
    let mut guard = Abandon {
        api: api.clone(),
        key: key.clone(),
        rev: kv.create_revision,
        armed: true,
    };
    wait_for_predecessors(api, &pfx, &key, kv.create_revision).await?;
    guard.armed = false;
    Ok(leader)
}

/// Proclaim: the leader publishes a new value, if it still leads.
pub async fn proclaim(api: &Api, leader: &LeaderKey, value: Bytes) -> Result<Option<ResponseHeader>, Status> {
    let t = api
        .txn(TxnRequest {
            compare: vec![create_rev_cmp(&leader.key, leader.rev)],
            success: vec![RequestOp {
                request: Some(request_op::Request::RequestPut(PutRequest {
                    key: leader.key.clone(),
                    value,
                    lease: leader.lease,
                    ..Default::default()
                })),
            }],
            failure: vec![],
        })
        .await?;
    if !t.succeeded {
        return Err(Status::failed_precondition("election: not leader"));
    }
    Ok(t.header)
}

/// The current leader's key-value, if any.
pub async fn leader(api: &Api, name: &[u8]) -> Result<(Option<ResponseHeader>, Option<KeyValue>), Status> {
    let pfx = prefix(name);
    let r = api
        .range(RangeRequest {
            key: pfx.clone(),
            range_end: prefix_end(&pfx),
            sort_order: SortOrder::Ascend as i32,
            sort_target: SortTarget::Create as i32,
            limit: 1,
            ..Default::default()
        })
        .await?;
    Ok((r.header, r.kvs.into_iter().next()))
}

/// Resign: gives up leadership (deletes the leader key if it is still ours).
pub async fn resign(api: &Api, leader: &LeaderKey) -> Result<Option<ResponseHeader>, Status> {
    release(api, &leader.key, leader.rev).await
}

/// Waits for the next change under the election prefix after `rev`.
pub async fn next_change(api: &Api, name: &[u8], rev: i64) -> Result<(), Status> {
    let pfx = prefix(name);
    let mut w = api.node()?.store().watch(WatchSpec {
        span: KeySpan::new(&pfx, &prefix_end(&pfx)),
        start_revision: rev + 1,
        prev_kv: false,
        no_put: false,
        no_delete: false,
    });
    match w.recv().await {
        Some(crate::mvcc::WatchUpdate::Events(_)) => Ok(()),
        _ => Err(Status::unavailable("etcdserver: watch ended")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_ends_follow_clientv3() {
        assert_eq!(prefix_end(b"aa"), Bytes::from_static(b"ab"));
        assert_eq!(prefix_end(b"a\xff"), Bytes::from_static(b"b"));
        assert_eq!(prefix_end(b"\xff\xff"), Bytes::from_static(&[0]));
        assert_eq!(prefix(b"job"), Bytes::from_static(b"job/"));
    }
}
