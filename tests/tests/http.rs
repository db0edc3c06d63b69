//! The config REST API and etcd's JSON gateway over plain HTTP: values, ETag compare-and-set,
//! history, listings, blocking reads, SSE watch with resume, the gateway's protojson, health
//! and metrics.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use kvorum_tests::harness::Cluster;
use serde_json::{Value, json};

fn text(b: &Bytes) -> String {
    String::from_utf8_lossy(b).into_owned()
}

async fn put(c: &Cluster, i: usize, key: &str, value: &str, headers: &[(&str, &str)]) -> (u16, Bytes) {
    c.http_request(
        i,
        "PUT",
        &format!("/v1/kv/{key}"),
        Bytes::from(value.to_string()),
        headers,
    )
    .await
    .expect("answered")
}

fn json_of(b: &Bytes) -> Value {
    serde_json::from_slice(b).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(b)))
}

#[tokio::test(flavor = "multi_thread")]
async fn rest_values_etags_history_and_listing() {
    let c = Cluster::start(3).await;
    let (status, body) = put(&c, 0, "app/config", "v1", &[]).await;
    assert_eq!(status, 200, "{}", text(&body));
    let rev1 = json_of(&body)["revision"].as_i64().unwrap();
    // Read through another member: raw body, ETag = mod revision.
    let (status, body) = c.http_get(1, "/v1/kv/app/config").await.unwrap();
    assert_eq!((status, text(&body).as_str()), (200, "v1"));
    // Compare-and-set with If-Match.
    let stale = format!("\"{}\"", rev1 - 1);
    let (status, body) = put(&c, 2, "app/config", "lost", &[("if-match", &stale)]).await;
    assert_eq!(status, 412, "{}", text(&body));
    assert_eq!(json_of(&body)["code"], "precondition_failed");
    let current = format!("\"{rev1}\"");
    let (status, body) = put(&c, 2, "app/config", "v2", &[("if-match", &current)]).await;
    assert_eq!(status, 200, "{}", text(&body));
    let rev2 = json_of(&body)["revision"].as_i64().unwrap();
    // Create-only with If-None-Match: *.
    let (status, _) = put(&c, 0, "app/new", "x", &[("if-none-match", "*")]).await;
    assert_eq!(status, 200);
    let (status, _) = put(&c, 0, "app/new", "y", &[("if-none-match", "*")]).await;
    assert_eq!(status, 412);
    // History.
    let (status, body) = c
        .http_get(0, &format!("/v1/kv/app/config?revision={rev1}"))
        .await
        .unwrap();
    assert_eq!((status, text(&body).as_str()), (200, "v1"));
    // Listing.
    let (status, body) = c.http_get(0, "/v1/kv/app/?prefix").await.unwrap();
    assert_eq!(status, 200);
    let list = json_of(&body);
    let keys: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["app/config", "app/new"]);
    assert_eq!(list["items"][0]["value"], "v2");
    assert_eq!(list["items"][0]["mod_revision"], rev2);
    // Delete, then 404 with a stable code.
    let (status, body) = c
        .http_request(0, "DELETE", "/v1/kv/app/config", Bytes::new(), &[])
        .await
        .unwrap();
    assert_eq!((status, json_of(&body)["deleted"].as_i64()), (200, Some(1)));
    let (status, body) = c.http_get(0, "/v1/kv/app/config").await.unwrap();
    assert_eq!((status, json_of(&body)["code"].as_str()), (404, Some("not_found")));
}

#[tokio::test(flavor = "multi_thread")]
async fn blocking_read_returns_on_change_or_timeout() {
    let c = Cluster::start(3).await;
    let (_, body) = put(&c, 0, "flag", "off", &[]).await;
    let rev = json_of(&body)["revision"].as_i64().unwrap();
    // Nothing changes: the wait ends at its limit with the current value.
    let started = std::time::Instant::now();
    let (status, body) = c
        .http_get(1, &format!("/v1/kv/flag?index={rev}&wait=300ms"))
        .await
        .unwrap();
    assert_eq!((status, text(&body).as_str()), (200, "off"));
    assert!(started.elapsed() >= Duration::from_millis(250), "it blocked");
    // A change wakes it up at once.
    let waiter = {
        let path = format!("/v1/kv/flag?index={rev}&wait=30s");
        let port = c.members[1].client_port;
        tokio::spawn(async move {
            let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<http_body_util::Full<Bytes>>();
            let resp = client
                .get(format!("http://127.0.0.1:{port}{path}").parse().unwrap())
                .await
                .unwrap();
            resp.into_body().collect().await.unwrap().to_bytes()
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    put(&c, 2, "flag", "on", &[]).await;
    let body = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(text(&body), "on");
}

/// Reads SSE events (id, event, data) until `n` arrived.
async fn sse_events(c: &Cluster, path: &str, last_event_id: Option<&str>, n: usize) -> Vec<(i64, String, Value)> {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Full<Bytes>>();
    let mut req = hyper::Request::get(format!("http://127.0.0.1:{}{path}", c.members[0].client_port));
    if let Some(id) = last_event_id {
        req = req.header("last-event-id", id);
    }
    let resp = client.request(req.body(Default::default()).unwrap()).await.unwrap();
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut body = resp.into_body();
    let mut buf = String::new();
    let mut events = Vec::new();
    while events.len() < n {
        let frame = tokio::time::timeout(Duration::from_secs(10), body.frame())
            .await
            .expect("an event in time")
            .unwrap()
            .unwrap();
        if let Ok(d) = frame.into_data() {
            buf.push_str(&String::from_utf8_lossy(&d));
        }
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let mut id = None;
            let mut kind = String::new();
            let mut data = Value::Null;
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id: ") {
                    id = v.parse().ok();
                } else if let Some(v) = line.strip_prefix("event: ") {
                    kind = v.to_string();
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data = serde_json::from_str(v).unwrap();
                }
            }
            if let Some(id) = id {
                events.push((id, kind, data));
            }
        }
    }
    events
}

#[tokio::test(flavor = "multi_thread")]
async fn sse_watch_resumes_from_last_event_id() {
    let c = Cluster::start(3).await;
    let (_, body) = put(&c, 0, "cfg/a", "1", &[]).await;
    let first = json_of(&body)["revision"].as_i64().unwrap();
    put(&c, 1, "cfg/b", "2", &[]).await;
    c.http_request(2, "DELETE", "/v1/kv/cfg/a", Bytes::new(), &[])
        .await
        .unwrap();
    let events = sse_events(&c, &format!("/v1/watch/cfg/?prefix&revision={first}"), None, 3).await;
    let summary: Vec<(String, String)> = events
        .iter()
        .map(|(_, k, d)| (k.clone(), d["key"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(
        summary,
        [
            ("put".into(), "cfg/a".into()),
            ("put".into(), "cfg/b".into()),
            ("delete".into(), "cfg/a".into())
        ]
    );
    assert_eq!(events[0].0, first);
    // A client that saw the first event reconnects and gets exactly the rest.
    let resumed = sse_events(&c, "/v1/watch/cfg/?prefix", Some(&first.to_string()), 2).await;
    assert_eq!(
        resumed.iter().map(|e| e.0).collect::<Vec<_>>(),
        events[1..].iter().map(|e| e.0).collect::<Vec<_>>()
    );
}

async fn gateway(c: &Cluster, path: &str, body: Value) -> (u16, Value) {
    let (status, bytes) = c
        .http_request(
            0,
            "POST",
            path,
            Bytes::from(body.to_string()),
            &[("content-type", "application/json")],
        )
        .await
        .expect("answered");
    (status, json_of(&bytes))
}

#[tokio::test(flavor = "multi_thread")]
async fn json_gateway_speaks_etcds_protojson() {
    let c = Cluster::start(3).await;
    // "foo" = Zm9v, "bar" = YmFy, "foo0" = Zm9vMA==
    let (status, r) = gateway(&c, "/v3/kv/put", json!({"key": "Zm9v", "value": "YmFy"})).await;
    assert_eq!(status, 200, "{r}");
    assert!(r["header"]["revision"].is_string(), "int64 as strings: {r}");
    let (status, r) = gateway(&c, "/v3beta/kv/range", json!({"key": "Zm9v"})).await;
    assert_eq!(status, 200, "/v3beta is accepted");
    assert_eq!(
        (r["kvs"][0]["value"].as_str(), r["count"].as_str()),
        (Some("YmFy"), Some("1"))
    );
    let (status, r) = gateway(&c, "/v3/lease/grant", json!({"TTL": "30"})).await;
    assert_eq!((status, r["TTL"].as_str()), (200, Some("30")));
    let (status, r) = gateway(&c, "/v3/kv/range", json!({"key": ""})).await;
    assert_eq!(
        (status, r["code"].as_i64()),
        (400, Some(3)),
        "empty key → InvalidArgument: {r}"
    );
    assert_eq!(r["error"], "etcdserver: key is not provided");
    let (status, r) = gateway(&c, "/v3/kv/range", json!({"key": "Zm9v", "revision": "999"})).await;
    assert_eq!(
        (status, r["code"].as_i64()),
        (400, Some(11)),
        "future revision → OutOfRange: {r}"
    );
    let (status, r) = gateway(&c, "/v3/maintenance/status", json!({})).await;
    assert_eq!(status, 200);
    assert!(r["leader"].as_str().is_some_and(|l| l != "0"), "{r}");
}

#[tokio::test(flavor = "multi_thread")]
async fn json_gateway_watch_streams_ndjson() {
    let c = Cluster::start(3).await;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Full<Bytes>>();
    let req = hyper::Request::post(format!("http://127.0.0.1:{}/v3/watch", c.members[0].client_port))
        .body(http_body_util::Full::new(Bytes::from(
            json!({"create_request": {"key": "Zm9v"}}).to_string(),
        )))
        .unwrap();
    let mut body = client.request(req).await.unwrap().into_body();
    let mut lines = Vec::new();
    let mut buf = String::new();
    let mut wrote = false;
    while lines.len() < 2 {
        let frame = tokio::time::timeout(Duration::from_secs(10), body.frame())
            .await
            .expect("a watch response in time")
            .unwrap()
            .unwrap();
        if let Ok(d) = frame.into_data() {
            buf.push_str(&String::from_utf8_lossy(&d));
        }
        while let Some(end) = buf.find('\n') {
            let line: String = buf.drain(..=end).collect();
            lines.push(serde_json::from_str::<Value>(line.trim()).unwrap());
        }
        if !wrote && !lines.is_empty() {
            wrote = true;
            gateway(&c, "/v3/kv/put", json!({"key": "Zm9v", "value": "YmFy"})).await;
        }
    }
    assert_eq!(lines[0]["result"]["created"], true, "{:?}", lines[0]);
    assert_eq!(lines[1]["result"]["events"][0]["kv"]["value"], "YmFy", "{:?}", lines[1]);
}

#[tokio::test(flavor = "multi_thread")]
async fn health_metrics_and_openapi() {
    let c = Cluster::start(3).await;
    c.put(0, "m", "1").await.unwrap();
    assert_eq!(c.http_get(1, "/healthz").await.unwrap().0, 200);
    assert_eq!(c.http_get(1, "/readyz").await.unwrap().0, 200);
    let (status, body) = c.http_get(0, "/metrics").await.unwrap();
    assert_eq!(status, 200);
    let m = text(&body);
    for series in [
        "kvorum_raft_term ",
        "kvorum_raft_commit_index ",
        "kvorum_raft_applied_index ",
        "kvorum_raft_leader_changes_total ",
        "kvorum_disk_fsync_seconds_bucket",
        "kvorum_proposal_seconds_bucket",
        "kvorum_requests_total{method=\"KV/Put\",code=\"Ok\"}",
        "kvorum_watchers ",
        "kvorum_db_size_bytes ",
        "kvorum_db_logical_bytes ",
    ] {
        assert!(m.contains(series), "/metrics lacks {series}:\n{m}");
    }
    let (status, doc) = c.http_get(0, "/v1/openapi.yaml").await.unwrap();
    assert_eq!(status, 200);
    let doc = text(&doc);
    assert_eq!(
        doc,
        include_str!("../../docs/openapi.yaml"),
        "served document == docs/openapi.yaml"
    );
    for path in ["/v1/kv/{key}:", "/v1/watch/{key}:", "/v1/node:", "/readyz:"] {
        assert!(doc.contains(path), "OpenAPI covers {path}");
    }
    let view = c.node_view(2).await.unwrap();
    assert_eq!(view["phase"], "running");
    assert_eq!(view["data_dir_empty"], false);
}
