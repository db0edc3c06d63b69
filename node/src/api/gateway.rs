//! etcd's JSON gateway (grpc-gateway mapping): `POST /v3/<service>/<method>` with the request
//! message as protojson, the response the same way — proto field names, bytes as standard
//! base64, 64-bit integers as strings, defaults omitted. `/v3beta/` is accepted as an alias.
//! Streaming methods (watch, keepalive, snapshot, observe) answer with newline-delimited
//! `{"result": …}` objects. Errors are `{"error", "message", "code"}` with the HTTP status
//! grpc-gateway uses for the gRPC code.

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use futures::StreamExt;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use super::concurrency;
use super::service::Api;
use crate::proto::etcdserverpb::{
    AlarmRequest, CompactionRequest, DefragmentResponse, DeleteRangeRequest, HashKvRequest, LeaseGrantRequest,
    LeaseKeepAliveRequest, LeaseKeepAliveResponse, LeaseRevokeRequest, LeaseTimeToLiveRequest, MemberAddRequest,
    MemberListRequest, MemberPromoteRequest, MemberRemoveRequest, MemberUpdateRequest, MoveLeaderRequest, PutRequest,
    RangeRequest, SnapshotResponse, TxnRequest, WatchRequest, WatchResponse,
};
use crate::proto::v3electionpb::{
    CampaignRequest, CampaignResponse, LeaderRequest, LeaderResponse, ProclaimRequest, ProclaimResponse, ResignRequest,
    ResignResponse,
};
use crate::proto::v3lockpb::{LockRequest, LockResponse, UnlockRequest, UnlockResponse};

/// The HTTP status grpc-gateway answers for a gRPC code.
pub fn http_status(code: tonic::Code) -> StatusCode {
    use tonic::Code;
    match code {
        Code::Ok => StatusCode::OK,
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => StatusCode::BAD_REQUEST,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::Cancelled => StatusCode::REQUEST_TIMEOUT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    message: &'a str,
    code: i32,
}

/// A gateway error response.
pub fn error(status: &Status) -> Response {
    let body = ErrorBody {
        error: status.message(),
        message: status.message(),
        code: status.code() as i32,
    };
    (
        http_status(status.code()),
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::to_string(&body).expect("serializable"),
    )
        .into_response()
}

fn parse<T: DeserializeOwned + Default>(body: &Bytes) -> Result<T, Status> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| Status::invalid_argument(format!("invalid JSON request body: {e}")))
}

fn json<T: Serialize>(value: &T) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::to_string(value).expect("serializable"),
    )
        .into_response()
}

macro_rules! unary {
    ($name:ident, $req:ty, |$api:ident, $r:ident| $call:expr) => {
        async fn $name(State($api): State<Api>, body: Bytes) -> Response {
            let $r: $req = match parse(&body) {
                Ok(r) => r,
                Err(e) => return error(&e),
            };
            let method = concat!("Gateway/", stringify!($name));
            let result = $call.await;
            $api.state().metrics.request(
                method,
                result.as_ref().map_or_else(|s| s.code(), |_| tonic::Code::Ok),
            );
            match result {
                Ok(resp) => json(&resp),
                Err(e) => error(&e),
            }
        }
    };
}

unary!(range, RangeRequest, |api, r| api.range(r));
unary!(put, PutRequest, |api, r| api.put(r));
unary!(delete_range, DeleteRangeRequest, |api, r| api.delete_range(r));
unary!(txn, TxnRequest, |api, r| api.txn(r));
unary!(compaction, CompactionRequest, |api, r| api.compact(r));
unary!(lease_grant, LeaseGrantRequest, |api, r| api.lease_grant(r));
unary!(lease_revoke, LeaseRevokeRequest, |api, r| api.lease_revoke(r));
unary!(lease_time_to_live, LeaseTimeToLiveRequest, |api, r| api
    .lease_time_to_live(r));
unary!(
    lease_leases,
    crate::proto::etcdserverpb::LeaseLeasesRequest,
    |api, _r| api.lease_leases()
);
unary!(member_add, MemberAddRequest, |api, r| api.member_add(r));
unary!(member_remove, MemberRemoveRequest, |api, r| api.member_remove(r));
unary!(member_update, MemberUpdateRequest, |api, r| api.member_update(r));
unary!(member_list, MemberListRequest, |api, r| api.member_list(r));
unary!(member_promote, MemberPromoteRequest, |api, r| api.member_promote(r));
unary!(status, crate::proto::etcdserverpb::StatusRequest, |api, _r| api
    .status());
unary!(hash, crate::proto::etcdserverpb::HashRequest, |api, _r| api.hash());
unary!(hash_kv, HashKvRequest, |api, r| api.hash_kv(r));
unary!(alarm, AlarmRequest, |api, r| api.alarm(r));
unary!(move_leader, MoveLeaderRequest, |api, r| api.move_leader(r));
unary!(
    defragment,
    crate::proto::etcdserverpb::DefragmentRequest,
    |api, _r| async {
        api.defragment()
            .await
            .map(|_| DefragmentResponse { header: api.header(0) })
    }
);
unary!(lock, LockRequest, |api, r| async {
    concurrency::lock(&api, r.name, r.lease)
        .await
        .map(|(header, key)| LockResponse { header, key })
});
unary!(unlock, UnlockRequest, |api, r| async {
    concurrency::unlock(&api, r.key)
        .await
        .map(|header| UnlockResponse { header })
});
unary!(campaign, CampaignRequest, |api, r| async {
    concurrency::campaign(&api, r.name, r.lease, r.value)
        .await
        .map(|leader| CampaignResponse {
            header: api.header(0),
            leader: Some(leader),
        })
});
unary!(proclaim, ProclaimRequest, |api, r| async {
    match r.leader {
        Some(l) => concurrency::proclaim(&api, &l, r.value)
            .await
            .map(|header| ProclaimResponse { header }),
        None => Err(Status::invalid_argument("election: no leader key given")),
    }
});
unary!(leader, LeaderRequest, |api, r| async {
    match concurrency::leader(&api, &r.name).await {
        Ok((header, Some(kv))) => Ok(LeaderResponse { header, kv: Some(kv) }),
        Ok((_, None)) => Err(Status::not_found("election: no leader")),
        Err(e) => Err(e),
    }
});
unary!(resign, ResignRequest, |api, r| async {
    match r.leader {
        Some(l) => concurrency::resign(&api, &l)
            .await
            .map(|header| ResignResponse { header }),
        None => Err(Status::invalid_argument("election: no leader key given")),
    }
});

#[derive(Serialize)]
struct Result_<T> {
    result: T,
}

#[derive(Serialize)]
struct ErrorEnvelope<'a> {
    error: ErrorBody<'a>,
}

/// A newline-delimited JSON stream of `{"result": …}` (or `{"error": …}`) objects.
fn ndjson<T: Serialize + Send + 'static>(mut rx: mpsc::Receiver<Result<T, Status>>) -> Response {
    let (tx, out) = mpsc::channel::<Result<Bytes, Infallible>>(16);
    tokio::spawn(async move {
        while let Some(item) = rx.recv().await {
            let mut line = match &item {
                Ok(v) => serde_json::to_vec(&Result_ { result: v }),
                Err(s) => serde_json::to_vec(&ErrorEnvelope {
                    error: ErrorBody {
                        error: s.message(),
                        message: s.message(),
                        code: s.code() as i32,
                    },
                }),
            }
            .expect("serializable");
            line.push(b'\n');
            if tx.send(Ok(Bytes::from(line))).await.is_err() {
                return;
            }
        }
    });
    (
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(ReceiverStream::new(out)),
    )
        .into_response()
}

async fn watch(State(api): State<Api>, body: Bytes) -> Response {
    // The HTTP gateway carries one request per POST (usually a create); the stream stays open
    // until the client disconnects.
    let req: WatchRequest = match parse(&body) {
        Ok(r) => r,
        Err(e) => return error(&e),
    };
    if let Err(e) = api.node() {
        return error(&e);
    }
    let (tx, rx) = mpsc::channel::<Result<WatchResponse, Status>>(128);
    let requests = futures::stream::once(async move { Ok(req) }).chain(futures::stream::pending());
    tokio::spawn(super::watch::serve(api, Box::pin(requests), tx));
    ndjson(rx)
}

async fn lease_keepalive(State(api): State<Api>, body: Bytes) -> Response {
    let req: LeaseKeepAliveRequest = match parse(&body) {
        Ok(r) => r,
        Err(e) => return error(&e),
    };
    let (tx, rx) = mpsc::channel(1);
    let reply = api.lease_keepalive(req.id).await.map(|ttl| LeaseKeepAliveResponse {
        header: api.header(0),
        id: req.id,
        ttl,
    });
    let _ = tx.send(reply).await;
    ndjson(rx)
}

async fn snapshot(State(api): State<Api>) -> Response {
    let store = match api.node() {
        Ok(n) => n.store().clone(),
        Err(e) => return error(&e),
    };
    let reader = match store.snapshot(32 << 10) {
        Ok(r) => crate::mvcc::ClientSnapshot::new(r),
        Err(e) => return error(&Status::internal(e.to_string())),
    };
    let header = api.header(reader.revision());
    let (tx, rx) = mpsc::channel(4);
    tokio::task::spawn_blocking(move || {
        for chunk in reader {
            let item = chunk
                .map(|blob| SnapshotResponse {
                    header,
                    remaining_bytes: 0,
                    blob,
                    version: super::service::ETCD_API_VERSION.into(),
                })
                .map_err(|e| Status::internal(e.to_string()));
            if tx.blocking_send(item).is_err() {
                return;
            }
        }
    });
    ndjson(rx)
}

async fn observe(State(api): State<Api>, body: Bytes) -> Response {
    let req: LeaderRequest = match parse(&body) {
        Ok(r) => r,
        Err(e) => return error(&e),
    };
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        let mut last = None;
        loop {
            let (header, kv) = match concurrency::leader(&api, &req.name).await {
                Ok(x) => x,
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            };
            let rev = header.as_ref().map_or(0, |h| h.revision);
            if let Some(kv) = kv {
                let id = (kv.key.clone(), kv.mod_revision);
                if last.as_ref() != Some(&id) {
                    last = Some(id);
                    if tx.send(Ok(LeaderResponse { header, kv: Some(kv) })).await.is_err() {
                        return;
                    }
                }
            }
            tokio::select! {
                _ = concurrency::next_change(&api, &req.name, rev) => {}
                _ = tx.closed() => return,
            }
        }
    });
    ndjson(rx)
}

/// The gateway's routes under `prefix` (`/v3` or `/v3beta`).
fn routes(prefix: &str) -> axum::Router<Api> {
    let p = |s: &str| format!("{prefix}{s}");
    axum::Router::new()
        .route(&p("/kv/range"), post(range))
        .route(&p("/kv/put"), post(put))
        .route(&p("/kv/deleterange"), post(delete_range))
        .route(&p("/kv/txn"), post(txn))
        .route(&p("/kv/compaction"), post(compaction))
        .route(&p("/watch"), post(watch))
        .route(&p("/lease/grant"), post(lease_grant))
        .route(&p("/lease/revoke"), post(lease_revoke))
        .route(&p("/kv/lease/revoke"), post(lease_revoke))
        .route(&p("/lease/keepalive"), post(lease_keepalive))
        .route(&p("/lease/timetolive"), post(lease_time_to_live))
        .route(&p("/kv/lease/timetolive"), post(lease_time_to_live))
        .route(&p("/lease/leases"), post(lease_leases))
        .route(&p("/kv/lease/leases"), post(lease_leases))
        .route(&p("/cluster/member/add"), post(member_add))
        .route(&p("/cluster/member/remove"), post(member_remove))
        .route(&p("/cluster/member/update"), post(member_update))
        .route(&p("/cluster/member/list"), post(member_list))
        .route(&p("/cluster/member/promote"), post(member_promote))
        .route(&p("/maintenance/status"), post(status))
        .route(&p("/maintenance/hash"), post(hash))
        .route(&p("/maintenance/hashkv"), post(hash_kv))
        .route(&p("/maintenance/alarm"), post(alarm))
        .route(&p("/maintenance/defragment"), post(defragment))
        .route(&p("/maintenance/snapshot"), post(snapshot))
        .route(&p("/maintenance/transfer-leadership"), post(move_leader))
        .route(&p("/lock/lock"), post(lock))
        .route(&p("/lock/unlock"), post(unlock))
        .route(&p("/election/campaign"), post(campaign))
        .route(&p("/election/proclaim"), post(proclaim))
        .route(&p("/election/leader"), post(leader))
        .route(&p("/election/observe"), post(observe))
        .route(&p("/election/resign"), post(resign))
}

/// The gateway, under `/v3` and `/v3beta`.
pub fn router(api: Api) -> axum::Router {
    routes("/v3").merge(routes("/v3beta")).with_state(api)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::etcdserverpb::{RangeResponse, ResponseHeader};
    use crate::proto::mvccpb::KeyValue;

    #[test]
    fn protojson_matches_etcds_gateway() {
        let r = RangeResponse {
            header: Some(ResponseHeader {
                cluster_id: 1,
                member_id: 2,
                revision: 4,
                raft_term: 3,
            }),
            kvs: vec![KeyValue {
                key: bytes::Bytes::from_static(b"foo"),
                create_revision: 2,
                mod_revision: 4,
                version: 3,
                value: bytes::Bytes::from_static(b"bar"),
                lease: 0,
            }],
            more: false,
            count: 1,
        };
        let v: serde_json::Value = serde_json::to_value(&r).unwrap();
        assert_eq!(v["header"]["revision"], "4", "int64 as a string");
        assert_eq!(v["kvs"][0]["key"], "Zm9v", "bytes as base64");
        assert_eq!(v["kvs"][0]["create_revision"], "2", "proto field names");
        assert!(v.get("more").is_none(), "defaults omitted");
        assert_eq!(v["count"], "1");
        // Input accepts both proto names and lowerCamelCase, and enums by name.
        let q: RangeRequest = serde_json::from_str(
            r#"{"key":"Zm9v","range_end":"Zm9w","limit":"1","sortTarget":"MOD","sort_order":"DESCEND"}"#,
        )
        .unwrap();
        assert_eq!(
            (q.key.as_ref(), q.limit, q.sort_target, q.sort_order),
            (&b"foo"[..], 1, 3, 2)
        );
        let g: LeaseGrantRequest = serde_json::from_str(r#"{"TTL":"30"}"#).unwrap();
        assert_eq!(g.ttl, 30);
    }

    #[test]
    fn gateway_errors_carry_code_and_status() {
        let r = error(&Status::out_of_range(
            "etcdserver: mvcc: required revision has been compacted",
        ));
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert_eq!(http_status(tonic::Code::Unavailable), StatusCode::SERVICE_UNAVAILABLE);
        assert!(parse::<RangeRequest>(&Bytes::from_static(b"{not json")).is_err());
        assert_eq!(parse::<RangeRequest>(&Bytes::new()).unwrap(), RangeRequest::default());
    }
}
