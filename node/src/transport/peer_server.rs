//! The receiving side of the peer transport: an HTTP/2 server (TLS with client certificates
//! required, or h2c on loopback) with three routes.
//!
//! - `POST /raft/stream`: a HELLO frame naming the cluster and both members, then message
//!   batches, for as long as the sender keeps the request open. Messages go to the driver.
//! - `POST /raft/snapshot`: HELLO, the InstallSnapshot message, then the snapshot bytes.
//! - `POST /raft/rpc`: one `PeerRequest`, one `PeerReply`.
//!
//! A stream for another cluster or another member is refused before any message reaches the
//! core; so is a message whose sender differs from the stream's HELLO.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures::future::BoxFuture;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use kvorum_raft::MessageBody;
use prost::Message as _;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::codec::{Frame, decode_frame};
use super::{CLUSTER_HEADER, MAX_RPC_BYTES};
use crate::proto::kvorum::internal::{PeerReply, PeerRequest};
use crate::server::driver::Input;

/// Largest snapshot accepted in one transfer.
const MAX_SNAPSHOT_BYTES: usize = 8 << 30;

/// What the peer server serves: the member's current identity and where messages go.
pub trait PeerHandler: Send + Sync + 'static {
    /// The cluster this member belongs to (0 while it has not joined one).
    fn cluster_id(&self) -> u64;
    /// This member's ID (0 while unknown).
    fn member_id(&self) -> u64;
    /// The driver's input, once the member runs.
    fn inbound(&self) -> Option<mpsc::Sender<Input>>;
    /// Answers a peer request.
    fn rpc(&self, req: PeerRequest) -> BoxFuture<'static, PeerReply>;
}

type Reply = Response<Full<Bytes>>;

fn reply(status: StatusCode, text: impl Into<Bytes>) -> Reply {
    let mut r = Response::new(Full::new(text.into()));
    *r.status_mut() = status;
    r
}

/// Serves peers on `listener` until `shutdown` resolves.
pub async fn serve_peers(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    handler: Arc<dyn PeerHandler>,
    shutdown: impl Future<Output = ()> + Send,
) {
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (tcp, addr) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "peer accept failed");
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        tcp.set_nodelay(true).ok();
        let handler = handler.clone();
        let acceptor = acceptor.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let handler = handler.clone();
                async move { Ok::<_, Infallible>(route(handler, req).await) }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let result = match acceptor {
                Some(acceptor) => match acceptor.accept(tcp).await {
                    Ok(tls) => {
                        watcher
                            .watch(builder.serve_connection(TokioIo::new(tls), service).into_owned())
                            .await
                    }
                    Err(e) => {
                        // A peer without a certificate from the cluster CA ends here.
                        tracing::warn!(peer = %addr, error = %e, "peer TLS handshake refused");
                        return;
                    }
                },
                None => {
                    watcher
                        .watch(builder.serve_connection(TokioIo::new(tcp), service).into_owned())
                        .await
                }
            };
            if let Err(e) = result {
                tracing::debug!(peer = %addr, error = %e, "peer connection ended");
            }
        });
    }
    // Peers reconnect to someone else; do not wait long for their streams.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), graceful.shutdown()).await;
}

async fn route(handler: Arc<dyn PeerHandler>, req: Request<Incoming>) -> Reply {
    if req.method() != hyper::Method::POST {
        return reply(StatusCode::METHOD_NOT_ALLOWED, "peer routes take POST");
    }
    match req.uri().path() {
        "/raft/stream" => stream(handler, req).await,
        "/raft/snapshot" => snapshot(handler, req).await,
        "/raft/rpc" => rpc(handler, req).await,
        _ => reply(StatusCode::NOT_FOUND, "unknown peer route"),
    }
}

/// Reads frames off a request body; `Ok(None)` at the end of the body.
struct FrameReader {
    body: Incoming,
    buf: BytesMut,
}

impl FrameReader {
    async fn next(&mut self) -> Result<Option<Frame>, String> {
        loop {
            if let Some(f) = decode_frame(&mut self.buf).map_err(|e| e.to_string())? {
                return Ok(Some(f));
            }
            match self.body.frame().await {
                Some(Ok(f)) => {
                    if let Ok(data) = f.into_data() {
                        self.buf.extend_from_slice(&data);
                    }
                }
                Some(Err(e)) => return Err(e.to_string()),
                None if self.buf.is_empty() => return Ok(None),
                None => return Err("stream ended inside a frame".into()),
            }
        }
    }
}

/// Checks the first frame. Returns the sender's member ID.
async fn hello(handler: &dyn PeerHandler, frames: &mut FrameReader) -> Result<u64, Reply> {
    match frames.next().await {
        Ok(Some(Frame::Hello(h))) => {
            let (cluster, me) = (handler.cluster_id(), handler.member_id());
            if cluster == 0 || me == 0 {
                return Err(reply(StatusCode::SERVICE_UNAVAILABLE, "member not started"));
            }
            if h.cluster_id != cluster {
                return Err(reply(
                    StatusCode::FORBIDDEN,
                    format!(
                        "cluster ID mismatch: {:x} is not this cluster ({cluster:x})",
                        h.cluster_id
                    ),
                ));
            }
            if h.to != me {
                return Err(reply(
                    StatusCode::FORBIDDEN,
                    format!("member ID mismatch: this is member {me:x}, not {:x}", h.to),
                ));
            }
            Ok(h.from)
        }
        Ok(_) => Err(reply(StatusCode::BAD_REQUEST, "a peer stream must start with HELLO")),
        Err(e) => Err(reply(StatusCode::BAD_REQUEST, e)),
    }
}

async fn stream(handler: Arc<dyn PeerHandler>, req: Request<Incoming>) -> Reply {
    let mut frames = FrameReader {
        body: req.into_body(),
        buf: BytesMut::new(),
    };
    let from = match hello(handler.as_ref(), &mut frames).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let Some(inbound) = handler.inbound() else {
        return reply(StatusCode::SERVICE_UNAVAILABLE, "member not started");
    };
    let me = handler.member_id();
    loop {
        match frames.next().await {
            Ok(Some(Frame::Messages(msgs))) => {
                for m in msgs {
                    if m.from != from || m.to != me {
                        return reply(
                            StatusCode::BAD_REQUEST,
                            "message sender or recipient differs from HELLO",
                        );
                    }
                    if inbound.send(Input::Peer(m)).await.is_err() {
                        return reply(StatusCode::SERVICE_UNAVAILABLE, "member stopping");
                    }
                }
            }
            Ok(Some(Frame::Hello(_))) => return reply(StatusCode::BAD_REQUEST, "second HELLO"),
            Ok(None) => return reply(StatusCode::OK, ""),
            Err(e) => return reply(StatusCode::BAD_REQUEST, e),
        }
    }
}

async fn snapshot(handler: Arc<dyn PeerHandler>, req: Request<Incoming>) -> Reply {
    let mut frames = FrameReader {
        body: req.into_body(),
        buf: BytesMut::new(),
    };
    let from = match hello(handler.as_ref(), &mut frames).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let msg = match frames.next().await {
        Ok(Some(Frame::Messages(mut m)))
            if m.len() == 1 && matches!(m[0].body, MessageBody::InstallSnapshot { .. }) && m[0].from == from =>
        {
            m.pop().expect("one message")
        }
        _ => {
            return reply(
                StatusCode::BAD_REQUEST,
                "expected one InstallSnapshot message after HELLO",
            );
        }
    };
    let mut data = frames.buf.split().to_vec();
    let mut body = frames.body;
    while let Some(f) = body.frame().await {
        match f {
            Ok(f) => {
                if let Ok(chunk) = f.into_data() {
                    if data.len() + chunk.len() > MAX_SNAPSHOT_BYTES {
                        return reply(StatusCode::PAYLOAD_TOO_LARGE, "snapshot too large");
                    }
                    data.extend_from_slice(&chunk);
                }
            }
            Err(e) => return reply(StatusCode::BAD_REQUEST, format!("snapshot transfer broke: {e}")),
        }
    }
    let Some(inbound) = handler.inbound() else {
        return reply(StatusCode::SERVICE_UNAVAILABLE, "member not started");
    };
    let input = Input::PeerSnapshot {
        msg,
        data: Box::new(std::io::Cursor::new(data)),
    };
    match inbound.send(input).await {
        Ok(()) => reply(StatusCode::OK, ""),
        Err(_) => reply(StatusCode::SERVICE_UNAVAILABLE, "member stopping"),
    }
}

async fn rpc(handler: Arc<dyn PeerHandler>, req: Request<Incoming>) -> Reply {
    let cluster = req
        .headers()
        .get(CLUSTER_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    let body = match Limited::new(req.into_body(), MAX_RPC_BYTES).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return reply(StatusCode::PAYLOAD_TOO_LARGE, format!("peer request: {e}")),
    };
    let Ok(request) = PeerRequest::decode(body) else {
        return reply(StatusCode::BAD_REQUEST, "undecodable peer request");
    };
    let probe = matches!(
        request.op,
        Some(crate::proto::kvorum::internal::peer_request::Op::Probe(_))
    );
    // Probes come from members that do not know the cluster ID yet; everything else must match.
    if !probe && (cluster == 0 || cluster != handler.cluster_id()) {
        return reply(StatusCode::FORBIDDEN, "cluster ID mismatch");
    }
    let answer = handler.rpc(request).await;
    reply(StatusCode::OK, answer.encode_to_vec())
}
