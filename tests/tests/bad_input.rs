//! Bad input on every API gets a clear error; the node keeps serving and nothing is written:
//! malformed protobuf and JSON, oversized requests, invalid UTF-8 in a REST path, unknown
//! methods, garbage on the peer port.

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use kvorum::proto::etcdserverpb::{PutRequest, RangeRequest};
use kvorum_tests::harness::Cluster;

/// The number of keys in the whole keyspace, read linearizably through member 0.
async fn key_count(c: &Cluster) -> i64 {
    let mut kv = c.kv(0).await.unwrap();
    kv.range(RangeRequest {
        key: Bytes::from_static(b"\0"),
        range_end: Bytes::from_static(b"\0"),
        count_only: true,
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner()
    .count
}

/// Still serving: a write and a read through member 0 work.
async fn still_serving(c: &Cluster) {
    c.put(0, "canary", "alive")
        .await
        .expect("the node still accepts writes");
    assert_eq!(c.get(0, "canary", false).await.unwrap().as_deref(), Some(&b"alive"[..]));
    c.http_request(0, "DELETE", "/v1/kv/canary", Bytes::new(), &[])
        .await
        .unwrap();
}

/// Sends one raw gRPC request over h2c; returns (grpc-status, grpc-message).
async fn raw_grpc(port: u16, path: &str, message: &[u8]) -> (String, String) {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut frame = BytesMut::new();
    frame.put_u8(0);
    frame.put_u32(message.len() as u32);
    frame.put_slice(message);
    let req = hyper::Request::post(format!("http://127.0.0.1:{port}{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(Full::new(frame.freeze()))
        .unwrap();
    let resp = send.send_request(req).await.unwrap();
    let (parts, body) = resp.into_parts();
    let collected = body.collect().await.unwrap();
    let trailers = collected.trailers().cloned().unwrap_or_default();
    let pick = |name: &str| {
        trailers
            .get(name)
            .or_else(|| parts.headers.get(name))
            .map(|v| v.to_str().unwrap_or_default().to_string())
            .unwrap_or_default()
    };
    (pick("grpc-status"), pick("grpc-message"))
}

#[tokio::test(flavor = "multi_thread")]
async fn grpc_garbage_unknown_methods_and_oversized_requests() {
    let c = Cluster::start(3).await;
    c.put(0, "seed", "1").await.unwrap();
    let before = key_count(&c).await;
    let port = c.members[1].client_port;
    // Not a protobuf message.
    let (status, message) = raw_grpc(port, "/etcdserverpb.KV/Put", &[0xff, 0xff, 0xff, 0xff, 0x0f]).await;
    assert!(
        status == "13" || status == "3",
        "garbage → an error status, got {status}: {message}"
    );
    assert!(message.to_lowercase().contains("decode"), "{message}");
    // An unknown method.
    let (status, _) = raw_grpc(port, "/etcdserverpb.KV/Frobnicate", &[]).await;
    assert_eq!(status, "12", "Unimplemented");
    // A put over the request limit (1.5 MiB) but within gRPC's own (+512 KiB): etcd's error.
    let mut kv = c.kv(1).await.unwrap();
    let err = kv
        .put(PutRequest {
            key: Bytes::from_static(b"big"),
            value: Bytes::from(vec![b'x'; 1700 << 10]),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert_eq!(err.message(), "etcdserver: request is too large");
    // Far beyond: refused by the transport limit, still cleanly.
    let err = kv
        .put(PutRequest {
            key: Bytes::from_static(b"huge"),
            value: Bytes::from(vec![b'x'; 4 << 20]),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_ne!(err.code(), tonic::Code::Ok);
    // An empty key.
    let err = kv
        .put(PutRequest {
            key: Bytes::new(),
            value: Bytes::from_static(b"v"),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), err.message()),
        (tonic::Code::InvalidArgument, "etcdserver: key is not provided")
    );
    assert_eq!(key_count(&c).await, before, "nothing was written");
    still_serving(&c).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn http_bad_json_bad_paths_bad_methods_big_bodies() {
    let c = Cluster::start(3).await;
    let before = key_count(&c).await;
    let (status, body) = c
        .http_request(0, "POST", "/v3/kv/put", Bytes::from_static(b"{\"key\": "), &[])
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (status, v["code"].as_i64()),
        (400, Some(3)),
        "malformed JSON → InvalidArgument: {v}"
    );
    assert!(v["error"].as_str().unwrap().contains("invalid JSON"), "{v}");
    let (status, body) = c
        .http_request(
            0,
            "POST",
            "/v3/kv/put",
            Bytes::from_static(br#"{"key": "not base64!!"}"#),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    // Invalid UTF-8 in a REST path.
    let (status, body) = c.http_get(0, "/v1/kv/%FF%FE").await.unwrap();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!((status, v["code"].as_str()), (400, Some("invalid_key")));
    // A body over the request limit is refused from its Content-Length, before it is sent.
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", c.members[0].client_port))
            .await
            .unwrap();
        tcp.write_all(b"PUT /v1/kv/big HTTP/1.1\r\nHost: x\r\nContent-Length: 2097152\r\n\r\n")
            .await
            .unwrap();
        let mut head = [0u8; 12];
        tokio::time::timeout(Duration::from_secs(5), tcp.read_exact(&mut head))
            .await
            .expect("an answer before the body")
            .unwrap();
        assert_eq!(&head, b"HTTP/1.1 413");
    }
    // Unknown routes and methods.
    assert_eq!(c.http_get(0, "/v2/keys/foo").await.unwrap().0, 404);
    assert_eq!(
        c.http_request(0, "PATCH", "/v1/kv/x", Bytes::new(), &[])
            .await
            .unwrap()
            .0,
        405
    );
    assert_eq!(
        c.http_get(0, "/v3/kv/put").await.unwrap().0,
        405,
        "gateway routes take POST"
    );
    // A bad precondition header.
    let (status, _) = c
        .http_request(
            0,
            "PUT",
            "/v1/kv/x",
            Bytes::from_static(b"v"),
            &[("if-match", "yesterday")],
        )
        .await
        .unwrap();
    assert_eq!(status, 400);
    assert_eq!(key_count(&c).await, before, "nothing was written");
    still_serving(&c).await;
}

/// A raw POST to a member's peer port; returns the HTTP status.
async fn peer_post(port: u16, path: &str, body: Bytes) -> u16 {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = hyper::Request::post(format!("http://127.0.0.1:{port}{path}"))
        .body(Full::new(body))
        .unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(5), send.send_request(req))
        .await
        .expect("the peer server answers")
        .unwrap();
    resp.status().as_u16()
}

fn hello(cluster_id: u64, from: u64, to: u64) -> Bytes {
    let mut b = BytesMut::new();
    b.put_u32_le(25);
    b.put_u8(1);
    b.put_u64_le(cluster_id);
    b.put_u64_le(from);
    b.put_u64_le(to);
    b.freeze()
}

#[tokio::test(flavor = "multi_thread")]
async fn peer_port_refuses_strangers() {
    let c = Cluster::start(3).await;
    let before = key_count(&c).await;
    let port = c.members[0].peer_port;
    let view = c.node_view(0).await.unwrap();
    let me = u64::from_str_radix(view["member_id"].as_str().unwrap(), 16).unwrap();
    let cluster = u64::from_str_radix(view["cluster_id"].as_str().unwrap(), 16).unwrap();
    assert_eq!(
        peer_post(port, "/raft/stream", Bytes::from_static(b"\x05\0\0\0garbage")).await,
        400
    );
    assert_eq!(
        peer_post(port, "/raft/stream", hello(cluster ^ 1, 7, me)).await,
        403,
        "another cluster"
    );
    assert_eq!(
        peer_post(port, "/raft/stream", hello(cluster, 7, me ^ 1)).await,
        403,
        "another member"
    );
    assert_eq!(
        peer_post(port, "/raft/rpc", Bytes::from_static(b"\xff\xff")).await,
        400,
        "undecodable"
    );
    let request = prost::Message::encode_to_vec(&kvorum::proto::kvorum::internal::PeerRequest {
        op: Some(kvorum::proto::kvorum::internal::peer_request::Op::LeaseTtl(1)),
    });
    assert_eq!(
        peer_post(port, "/raft/rpc", Bytes::from(request)).await,
        403,
        "no cluster header"
    );
    assert_eq!(peer_post(port, "/raft/nope", Bytes::new()).await, 404);
    assert_eq!(key_count(&c).await, before, "nothing was written");
    still_serving(&c).await;
}
