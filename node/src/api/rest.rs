//! The config REST API: raw values at `/v1/kv/{key}` for people and applications.
//!
//! - `GET /v1/kv/{key}` → the value as the body; `ETag` is the key's mod revision.
//!   `?revision=N` reads history; `?consistency=serializable` skips the leader round trip;
//!   `?index=N&wait=30s` blocks (Consul-style) until the key changes after revision N.
//!   `?prefix` lists keys under `{key}` as JSON (`?limit=`, `?keys_only`).
//! - `PUT /v1/kv/{key}` with the value as the body. `If-Match: "<rev>"` writes only if the key
//!   is still at that revision; `If-None-Match: *` only if it does not exist; `?lease=ID`.
//! - `DELETE /v1/kv/{key}` (`?prefix` for a subtree), with the same preconditions.
//! - `GET /v1/watch/{key}` (`?prefix`, `?revision=`): Server-Sent Events, one per change,
//!   `id:` = revision, resumable with `Last-Event-ID`.
//! - `GET /v1/openapi.yaml`: this API's OpenAPI document (`docs/openapi.yaml`).
//!
//! Errors are JSON `{"code": "<stable code>", "message": "…"}`.

use std::collections::HashMap;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use super::concurrency::prefix_end;
use super::service::Api;
use crate::mvcc::index::KeySpan;
use crate::mvcc::{WatchSpec, WatchUpdate};
use crate::proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use crate::proto::etcdserverpb::{
    Compare, DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest, request_op, response_op,
};
use crate::proto::mvccpb::{KeyValue, event::EventType};

/// The OpenAPI document of this API.
pub const OPENAPI: &str = include_str!("../../../docs/openapi.yaml");

/// The REST routes.
pub fn router(api: Api) -> axum::Router {
    let limit = api.state().config.mvcc.max_request_bytes;
    axum::Router::new()
        .route("/v1/kv/{*key}", get(get_kv).put(put_kv).delete(delete_kv))
        .route("/v1/watch/{*key}", get(watch))
        .route("/v1/openapi.yaml", get(openapi))
        .layer(DefaultBodyLimit::max(limit + 1))
        .layer(axum::middleware::from_fn(move |req, next| {
            refuse_large(limit, req, next)
        }))
        .with_state(api)
}

/// Refuses a request whose declared body exceeds the limit before reading any of it, so the
/// client gets a 413 instead of a connection closed under its upload.
async fn refuse_large(limit: usize, req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        let mut r = rest_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the body exceeds the request limit of {limit} bytes"),
        );
        r.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return r;
    }
    next.run(req).await
}

#[derive(Debug, Serialize)]
struct ErrorBody {
    code: &'static str,
    message: String,
}

/// An error answer: HTTP status, stable code, message.
#[derive(Debug)]
struct RestError {
    status: StatusCode,
    body: ErrorBody,
}

impl IntoResponse for RestError {
    fn into_response(self) -> Response {
        (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            serde_json::to_string(&self.body).expect("serializable"),
        )
            .into_response()
    }
}

fn bad(status: StatusCode, code: &'static str, message: impl Into<String>) -> RestError {
    RestError {
        status,
        body: ErrorBody {
            code,
            message: message.into(),
        },
    }
}

fn rest_error(status: StatusCode, code: &'static str, message: impl Into<String>) -> Response {
    bad(status, code, message).into_response()
}

/// Maps an API status to a REST error with a stable code.
fn from_status(s: &Status) -> Response {
    use tonic::Code;
    let m = s.message();
    let (status, code) = match s.code() {
        Code::OutOfRange if m.contains("compacted") => (StatusCode::GONE, "compacted"),
        Code::OutOfRange if m.contains("future revision") => (StatusCode::BAD_REQUEST, "future_revision"),
        Code::InvalidArgument if m.contains("too large") => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
        Code::InvalidArgument | Code::OutOfRange => (StatusCode::BAD_REQUEST, "invalid_request"),
        Code::NotFound => (StatusCode::NOT_FOUND, "not_found"),
        Code::ResourceExhausted if m.contains("space") => (StatusCode::INSUFFICIENT_STORAGE, "no_space"),
        Code::ResourceExhausted => (StatusCode::TOO_MANY_REQUESTS, "too_many_requests"),
        Code::FailedPrecondition => (StatusCode::CONFLICT, "failed_precondition"),
        Code::Unavailable if m.contains("timed out") => (StatusCode::GATEWAY_TIMEOUT, "timeout"),
        Code::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
    };
    rest_error(status, code, m)
}

/// The key from the raw request path: percent-decoded bytes, which must be UTF-8 here (binary
/// keys are for the etcd APIs).
fn key_of(uri: &Uri, route: &str) -> Result<bytes::Bytes, RestError> {
    let raw = uri.path().strip_prefix(route).unwrap_or_default();
    let mut out = Vec::with_capacity(raw.len());
    let b = raw.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3).unwrap_or_default()).ok();
            match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                Some(v) => {
                    out.push(v);
                    i += 3;
                    continue;
                }
                None => {
                    return Err(bad(
                        StatusCode::BAD_REQUEST,
                        "invalid_key",
                        "malformed percent-encoding in the key",
                    ));
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    if out.is_empty() {
        return Err(bad(StatusCode::BAD_REQUEST, "invalid_key", "the key is empty"));
    }
    if std::str::from_utf8(&out).is_err() {
        return Err(bad(
            StatusCode::BAD_REQUEST,
            "invalid_key",
            "the key is not valid UTF-8; use the etcd API (gRPC or /v3) for binary keys",
        ));
    }
    Ok(bytes::Bytes::from(out))
}

type Params = Query<HashMap<String, String>>;

fn flag(q: &HashMap<String, String>, name: &str) -> bool {
    q.get(name).is_some_and(|v| v.is_empty() || v == "true" || v == "1")
}

fn int(q: &HashMap<String, String>, name: &str) -> Result<i64, RestError> {
    match q.get(name) {
        None => Ok(0),
        Some(v) => v.parse().map_err(|_| {
            bad(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                format!("{name} must be an integer"),
            )
        }),
    }
}

fn parse_wait(q: &HashMap<String, String>) -> Result<Duration, RestError> {
    let Some(w) = q.get("wait") else {
        return Ok(Duration::from_secs(300));
    };
    let (num, unit) = w.split_at(w.find(|c: char| !c.is_ascii_digit()).unwrap_or(w.len()));
    let n: u64 = num.parse().map_err(|_| {
        bad(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "wait must look like 30s or 5m",
        )
    })?;
    let d = match unit {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "m" => Duration::from_secs(n * 60),
        _ => {
            return Err(bad(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "wait unit must be ms, s or m",
            ));
        }
    };
    Ok(d.min(Duration::from_secs(600)))
}

#[derive(Serialize)]
struct Item {
    key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value_base64: Option<String>,
    create_revision: i64,
    mod_revision: i64,
    version: i64,
    lease: i64,
}

impl Item {
    fn from_kv(kv: &KeyValue, with_value: bool) -> Item {
        use base64::Engine as _;
        let (value, value_base64) = if !with_value {
            (None, None)
        } else {
            match std::str::from_utf8(&kv.value) {
                Ok(s) => (Some(s.to_string()), None),
                Err(_) => (None, Some(base64::engine::general_purpose::STANDARD.encode(&kv.value))),
            }
        };
        Item {
            key: String::from_utf8_lossy(&kv.key).into_owned(),
            value,
            value_base64,
            create_revision: kv.create_revision,
            mod_revision: kv.mod_revision,
            version: kv.version,
            lease: kv.lease,
        }
    }
}

#[derive(Serialize)]
struct Listing {
    revision: i64,
    count: i64,
    more: bool,
    items: Vec<Item>,
}

fn etag(rev: i64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{rev}\"")).expect("digits")
}

async fn get_kv(State(api): State<Api>, uri: Uri, Query(q): Params) -> Response {
    let key = match key_of(&uri, "/v1/kv/") {
        Ok(k) => k,
        Err(r) => return r.into_response(),
    };
    let (revision, index) = match (int(&q, "revision"), int(&q, "index")) {
        (Ok(r), Ok(i)) => (r, i),
        (Err(r), _) | (_, Err(r)) => return r.into_response(),
    };
    let prefix = flag(&q, "prefix");
    if index > 0 && !prefix {
        let wait = match parse_wait(&q) {
            Ok(w) => w,
            Err(r) => return r.into_response(),
        };
        if let Err(e) = block_until_changed(&api, &key, index, wait).await {
            return from_status(&e);
        }
    }
    let serializable = q.get("consistency").is_some_and(|c| c == "serializable");
    let limit = match int(&q, "limit") {
        Ok(l) => l,
        Err(r) => return r.into_response(),
    };
    let req = RangeRequest {
        key: key.clone(),
        range_end: if prefix { prefix_end(&key) } else { bytes::Bytes::new() },
        revision,
        serializable,
        limit: if prefix { limit } else { 0 },
        keys_only: prefix && flag(&q, "keys_only"),
        ..Default::default()
    };
    let resp = match api.range(req).await {
        Ok(r) => r,
        Err(e) => return from_status(&e),
    };
    let store_rev = resp.header.as_ref().map_or(0, |h| h.revision);
    if prefix {
        let listing = Listing {
            revision: store_rev,
            count: resp.count,
            more: resp.more,
            items: resp
                .kvs
                .iter()
                .map(|kv| Item::from_kv(kv, !flag(&q, "keys_only")))
                .collect(),
        };
        let mut r = (
            [(header::CONTENT_TYPE, "application/json")],
            serde_json::to_string(&listing).expect("serializable"),
        )
            .into_response();
        r.headers_mut().insert("x-kvorum-revision", store_rev.into());
        return r;
    }
    let Some(kv) = resp.kvs.into_iter().next() else {
        let mut r = rest_error(StatusCode::NOT_FOUND, "not_found", "no such key");
        r.headers_mut().insert("x-kvorum-revision", store_rev.into());
        return r;
    };
    let mut r = (StatusCode::OK, kv.value.clone()).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::ETAG, etag(kv.mod_revision));
    h.insert("x-kvorum-revision", store_rev.into());
    h.insert("x-kvorum-create-revision", kv.create_revision.into());
    h.insert("x-kvorum-version", kv.version.into());
    h.insert("x-kvorum-lease", kv.lease.into());
    r
}

/// Waits until `key` changes after revision `index`, or `wait` passes (then the caller answers
/// with the current value, as Consul does).
async fn block_until_changed(api: &Api, key: &bytes::Bytes, index: i64, wait: Duration) -> Result<(), Status> {
    let store = api.node()?.store().clone();
    if store.get(key).is_some_and(|kv| kv.mod_revision > index) {
        return Ok(());
    }
    let mut w = store.watch(WatchSpec {
        span: KeySpan::Single(key.clone()),
        start_revision: index + 1,
        prev_kv: false,
        no_put: false,
        no_delete: false,
    });
    match tokio::time::timeout(wait, w.recv()).await {
        Ok(Some(WatchUpdate::Canceled { .. })) | Ok(Some(WatchUpdate::Events(_))) | Ok(None) | Err(_) => Ok(()),
    }
}

/// `If-Match: "<rev>"` (or `*`), `If-None-Match: *`.
fn precondition(headers: &HeaderMap, key: &bytes::Bytes) -> Result<Option<Compare>, RestError> {
    let bad = |m: &str| bad(StatusCode::BAD_REQUEST, "invalid_request", m.to_string());
    let cmp = |target: CompareTarget, result: CompareResult, union: TargetUnion| Compare {
        result: result as i32,
        target: target as i32,
        key: key.clone(),
        target_union: Some(union),
        range_end: bytes::Bytes::new(),
    };
    if let Some(v) = headers.get(header::IF_MATCH) {
        let v = v.to_str().map_err(|_| bad("If-Match must be ASCII"))?.trim();
        if v == "*" {
            return Ok(Some(cmp(
                CompareTarget::Version,
                CompareResult::Greater,
                TargetUnion::Version(0),
            )));
        }
        let rev: i64 = v
            .trim_start_matches("W/")
            .trim_matches('"')
            .parse()
            .map_err(|_| bad("If-Match must be an ETag returned by this API (a quoted revision) or *"))?;
        return Ok(Some(cmp(
            CompareTarget::Mod,
            CompareResult::Equal,
            TargetUnion::ModRevision(rev),
        )));
    }
    if let Some(v) = headers.get(header::IF_NONE_MATCH) {
        if v.as_bytes() != b"*" {
            return Err(bad("If-None-Match only supports *"));
        }
        return Ok(Some(cmp(
            CompareTarget::Create,
            CompareResult::Equal,
            TargetUnion::CreateRevision(0),
        )));
    }
    Ok(None)
}

#[derive(Serialize)]
struct Written {
    revision: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    deleted: Option<i64>,
}

fn written(revision: i64, deleted: Option<i64>, etag_rev: Option<i64>) -> Response {
    let mut r = (
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::to_string(&Written { revision, deleted }).expect("serializable"),
    )
        .into_response();
    if let Some(rev) = etag_rev {
        r.headers_mut().insert(header::ETAG, etag(rev));
    }
    r.headers_mut().insert("x-kvorum-revision", revision.into());
    r
}

fn precondition_failed() -> Response {
    rest_error(
        StatusCode::PRECONDITION_FAILED,
        "precondition_failed",
        "the key changed (or exists, or does not exist) since the ETag was read",
    )
}

async fn put_kv(State(api): State<Api>, uri: Uri, headers: HeaderMap, Query(q): Params, body: Bytes) -> Response {
    let key = match key_of(&uri, "/v1/kv/") {
        Ok(k) => k,
        Err(r) => return r.into_response(),
    };
    let lease = match int(&q, "lease") {
        Ok(l) => l,
        Err(r) => return r.into_response(),
    };
    let put = PutRequest {
        key: key.clone(),
        value: body,
        lease,
        ..Default::default()
    };
    let cond = match precondition(&headers, &key) {
        Ok(c) => c,
        Err(r) => return r.into_response(),
    };
    match cond {
        None => match api.put(put).await {
            Ok(p) => {
                let rev = p.header.map_or(0, |h| h.revision);
                written(rev, None, Some(rev))
            }
            Err(e) => from_status(&e),
        },
        Some(c) => {
            let t = TxnRequest {
                compare: vec![c],
                success: vec![RequestOp {
                    request: Some(request_op::Request::RequestPut(put)),
                }],
                failure: vec![],
            };
            match api.txn(t).await {
                Ok(t) if t.succeeded => {
                    let rev = t.header.map_or(0, |h| h.revision);
                    written(rev, None, Some(rev))
                }
                Ok(_) => precondition_failed(),
                Err(e) => from_status(&e),
            }
        }
    }
}

async fn delete_kv(State(api): State<Api>, uri: Uri, headers: HeaderMap, Query(q): Params) -> Response {
    let key = match key_of(&uri, "/v1/kv/") {
        Ok(k) => k,
        Err(r) => return r.into_response(),
    };
    let del = DeleteRangeRequest {
        key: key.clone(),
        range_end: if flag(&q, "prefix") {
            prefix_end(&key)
        } else {
            bytes::Bytes::new()
        },
        prev_kv: false,
    };
    let cond = match precondition(&headers, &key) {
        Ok(c) => c,
        Err(r) => return r.into_response(),
    };
    match cond {
        None => match api.delete_range(del).await {
            Ok(d) => written(d.header.map_or(0, |h| h.revision), Some(d.deleted), None),
            Err(e) => from_status(&e),
        },
        Some(c) => {
            let t = TxnRequest {
                compare: vec![c],
                success: vec![RequestOp {
                    request: Some(request_op::Request::RequestDeleteRange(del)),
                }],
                failure: vec![],
            };
            match api.txn(t).await {
                Ok(t) if t.succeeded => {
                    let deleted = match t.responses.first().and_then(|r| r.response.as_ref()) {
                        Some(response_op::Response::ResponseDeleteRange(d)) => d.deleted,
                        _ => 0,
                    };
                    written(t.header.map_or(0, |h| h.revision), Some(deleted), None)
                }
                Ok(_) => precondition_failed(),
                Err(e) => from_status(&e),
            }
        }
    }
}

async fn watch(State(api): State<Api>, uri: Uri, headers: HeaderMap, Query(q): Params) -> Response {
    let key = match key_of(&uri, "/v1/watch/") {
        Ok(k) => k,
        Err(r) => return r.into_response(),
    };
    let node = match api.node() {
        Ok(n) => n,
        Err(e) => return from_status(&e),
    };
    // Resume after the last event the client saw, else from ?revision=, else from now.
    let start = match headers.get("last-event-id").and_then(|v| v.to_str().ok()) {
        Some(id) => match id.trim().parse::<i64>() {
            Ok(rev) => rev + 1,
            Err(_) => {
                return rest_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "Last-Event-ID must be a revision",
                );
            }
        },
        None => match int(&q, "revision") {
            Ok(r) => r,
            Err(r) => return r.into_response(),
        },
    };
    let span = if flag(&q, "prefix") {
        KeySpan::Range(key.clone(), Some(prefix_end(&key)))
    } else {
        KeySpan::Single(key)
    };
    let mut w = node.store().watch(WatchSpec {
        span,
        start_revision: start,
        prev_kv: false,
        no_put: false,
        no_delete: false,
    });
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::convert::Infallible>>(64);
    tokio::spawn(async move {
        let _ = tx.send(Ok(Bytes::from_static(b": watching\n\n"))).await;
        loop {
            let update = match tokio::time::timeout(Duration::from_secs(15), w.recv()).await {
                Ok(Some(u)) => u,
                Ok(None) => return,
                Err(_) => {
                    // A comment line keeps proxies from closing an idle stream.
                    if tx.send(Ok(Bytes::from_static(b": keep-alive\n\n"))).await.is_err() {
                        return;
                    }
                    continue;
                }
            };
            match update {
                WatchUpdate::Events(events) => {
                    for e in events {
                        let kv = e.kv.unwrap_or_default();
                        let kind = if e.r#type == EventType::Delete as i32 {
                            "delete"
                        } else {
                            "put"
                        };
                        let data = serde_json::to_string(&Item::from_kv(&kv, kind == "put")).expect("serializable");
                        let frame = format!("id: {}\nevent: {kind}\ndata: {data}\n\n", kv.mod_revision);
                        if tx.send(Ok(Bytes::from(frame))).await.is_err() {
                            return;
                        }
                    }
                }
                WatchUpdate::Canceled { compact_revision } => {
                    let data = serde_json::to_string(&ErrorBody {
                        code: "compacted",
                        message: format!(
                            "history before revision {compact_revision} was compacted; read the current state and watch from its revision"
                        ),
                    })
                    .expect("serializable");
                    let _ = tx
                        .send(Ok(Bytes::from(format!("event: error\ndata: {data}\n\n"))))
                        .await;
                    return;
                }
            }
        }
    });
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(ReceiverStream::new(rx)),
    )
        .into_response()
}

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/yaml")], OPENAPI)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_percent_decoded_and_must_be_utf8() {
        let k = |p: &str| key_of(&p.parse::<Uri>().unwrap(), "/v1/kv/");
        assert_eq!(k("/v1/kv/app/config").unwrap().as_ref(), b"app/config");
        assert_eq!(k("/v1/kv/a%20b%2Fc").unwrap().as_ref(), b"a b/c");
        assert_eq!(k("/v1/kv/caf%C3%A9").unwrap().as_ref(), "café".as_bytes());
        assert_eq!(k("/v1/kv/%FF%FE").unwrap_err().body.code, "invalid_key");
        assert_eq!(k("/v1/kv/bad%G0").unwrap_err().status, StatusCode::BAD_REQUEST);
        assert_eq!(k("/v1/kv/").unwrap_err().status, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn waits_parse_with_units_and_a_cap() {
        let q = |w: &str| HashMap::from([("wait".to_string(), w.to_string())]);
        assert_eq!(parse_wait(&q("30s")).unwrap(), Duration::from_secs(30));
        assert_eq!(parse_wait(&q("250ms")).unwrap(), Duration::from_millis(250));
        assert_eq!(
            parse_wait(&q("60m")).unwrap(),
            Duration::from_secs(600),
            "capped at 10 minutes"
        );
        assert!(parse_wait(&q("soon")).is_err());
    }

    #[test]
    fn statuses_map_to_stable_codes() {
        let code = |s: Status| from_status(&s).status();
        assert_eq!(
            code(Status::out_of_range(
                "etcdserver: mvcc: required revision has been compacted"
            )),
            StatusCode::GONE
        );
        assert_eq!(
            code(Status::resource_exhausted("etcdserver: mvcc: database space exceeded")),
            StatusCode::INSUFFICIENT_STORAGE
        );
        assert_eq!(
            code(Status::invalid_argument("etcdserver: request is too large")),
            StatusCode::PAYLOAD_TOO_LARGE
        );
        assert_eq!(
            code(Status::unavailable("etcdserver: no leader")),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
}
