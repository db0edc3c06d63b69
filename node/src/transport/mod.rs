//! Peer transport: HTTP/2 between members, over rustls with mutual TLS (plaintext only for
//! loopback development).
//!
//! ```text
//!  driver ─send()─► per-peer queue ─► stream task ─► POST /raft/stream  (one long-lived request
//!                                      (reconnects,        body: HELLO frame, then batches)
//!                                       re-resolves DNS)
//!  driver ─send_snapshot()─► own task ─► POST /raft/snapshot on its own connection
//!  node ─rpc()─► POST /raft/rpc (forwarded proposals, keepalives, membership, probes)
//! ```
//!
//! Each peer has a bounded queue; a full queue drops messages (Raft retransmits) rather than
//! letting a dead peer grow memory. Snapshots travel on a separate connection so heartbeats
//! never wait behind them. Connections are made by host name every time, so a peer that moved
//! to a new IP (a rescheduled pod) is found again; identities come from the member IDs in
//! the stream's HELLO, never from addresses.

pub mod codec;
mod peer_server;

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::future::BoxFuture;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::Frame as BodyFrame;
use hyper_util::rt::{TokioExecutor, TokioIo};
use kvorum_raft::{Message, NodeId, SnapshotStatus};
use parking_lot::RwLock;
use prost::Message as _;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

pub use peer_server::{PeerHandler, serve_peers};

use self::codec::{Frame, Hello, encode_frame};
use crate::config::split_url;
use crate::mvcc::SnapshotReader;
use crate::proto::kvorum::internal::{PeerReply, PeerRequest};
use crate::server::driver::{Input, Outbound};
use crate::server::error::NodeError;

/// A boxed streaming body.
pub type Body = BoxBody<Bytes, std::io::Error>;

/// Messages queued per peer before new ones are dropped.
const PEER_QUEUE: usize = 1024;

/// Largest peer RPC body accepted.
pub const MAX_RPC_BYTES: usize = 16 << 20;

/// Header carrying the cluster ID on snapshot and RPC requests.
pub const CLUSTER_HEADER: &str = "x-kvorum-cluster-id";

/// A request to another member and its answer.
pub trait PeerRpc: Send + Sync {
    /// Sends `req` to member `to` and returns its reply.
    fn rpc(&self, to: NodeId, req: PeerRequest) -> BoxFuture<'static, Result<PeerReply, NodeError>>;
}

struct Peer {
    url: String,
    queue: mpsc::Sender<Vec<Message>>,
}

/// The sending side of the transport.
pub struct PeerTransport {
    /// Itself, for tasks spawned from `&self` methods.
    this: std::sync::Weak<PeerTransport>,
    me: NodeId,
    cluster_id: u64,
    tls: Option<tokio_rustls::TlsConnector>,
    inbound: mpsc::Sender<Input>,
    peers: RwLock<HashMap<NodeId, Peer>>,
    runtime: tokio::runtime::Handle,
}

impl PeerTransport {
    /// A transport for member `me`; `inbound` is the driver's input (for reports).
    pub fn new(
        me: NodeId,
        cluster_id: u64,
        tls: Option<Arc<rustls::ClientConfig>>,
        inbound: mpsc::Sender<Input>,
        runtime: tokio::runtime::Handle,
    ) -> Arc<PeerTransport> {
        Arc::new_cyclic(|this| PeerTransport {
            this: this.clone(),
            me,
            cluster_id,
            tls: tls.map(tokio_rustls::TlsConnector::from),
            inbound,
            peers: RwLock::new(HashMap::new()),
            runtime,
        })
    }

    /// Sets the address book: every other member's peer URL. New peers get a stream task;
    /// removed peers' tasks end; changed URLs are used from the next connection on.
    pub fn set_peers(self: &Arc<Self>, peers: &[(NodeId, String)]) {
        let mut map = self.peers.write();
        map.retain(|id, _| peers.iter().any(|(p, _)| p == id));
        for (id, url) in peers {
            if *id == self.me {
                continue;
            }
            match map.get_mut(id) {
                Some(p) => p.url = url.clone(),
                None => {
                    let (tx, rx) = mpsc::channel(PEER_QUEUE);
                    map.insert(
                        *id,
                        Peer {
                            url: url.clone(),
                            queue: tx,
                        },
                    );
                    let me = self.clone();
                    let id = *id;
                    self.runtime.spawn(async move { me.run_stream(id, rx).await });
                }
            }
        }
    }

    /// The peer URL of `id`, if known.
    pub fn url_of(&self, id: NodeId) -> Option<String> {
        self.peers.read().get(&id).map(|p| p.url.clone())
    }

    /// Opens an HTTP/2 connection to `url`.
    async fn connect(&self, url: &str) -> Result<hyper::client::conn::http2::SendRequest<Body>, String> {
        let (tls, host, port) = split_url(url).ok_or_else(|| format!("bad peer URL {url}"))?;
        let tcp = tokio::time::timeout(Duration::from_secs(3), TcpStream::connect((host, port)))
            .await
            .map_err(|_| format!("connecting to {url} timed out"))?
            .map_err(|e| format!("connecting to {url}: {e}"))?;
        tcp.set_nodelay(true).ok();
        let builder = hyper::client::conn::http2::Builder::new(TokioExecutor::new());
        let mut builder = builder;
        builder
            .initial_stream_window_size(4 << 20)
            .initial_connection_window_size(8 << 20)
            .keep_alive_interval(Duration::from_secs(10))
            .keep_alive_timeout(Duration::from_secs(5))
            .timer(hyper_util::rt::TokioTimer::new());
        match (&self.tls, tls) {
            (Some(connector), true) => {
                let name = rustls::pki_types::ServerName::try_from(host.to_string())
                    .map_err(|e| format!("peer host {host}: {e}"))?;
                let io = connector
                    .connect(name, tcp)
                    .await
                    .map_err(|e| format!("TLS handshake with {url}: {e}"))?;
                let (send, conn) = builder
                    .handshake(TokioIo::new(io))
                    .await
                    .map_err(|e| format!("HTTP/2 with {url}: {e}"))?;
                tokio::spawn(conn);
                Ok(send)
            }
            (None, false) => {
                let (send, conn) = builder
                    .handshake(TokioIo::new(tcp))
                    .await
                    .map_err(|e| format!("HTTP/2 with {url}: {e}"))?;
                tokio::spawn(conn);
                Ok(send)
            }
            (Some(_), false) => Err(format!("peer URL {url} is plaintext but peer TLS is on")),
            (None, true) => Err(format!("peer URL {url} needs TLS but peer TLS is off")),
        }
    }

    fn hello(&self, to: NodeId) -> Bytes {
        let mut buf = BytesMut::new();
        encode_frame(
            &Frame::Hello(Hello {
                cluster_id: self.cluster_id,
                from: self.me,
                to,
            }),
            &mut buf,
        );
        buf.freeze()
    }

    async fn run_stream(self: Arc<Self>, peer: NodeId, mut rx: mpsc::Receiver<Vec<Message>>) {
        let mut backoff = Duration::from_millis(50);
        loop {
            let Some(url) = self.url_of(peer) else { return };
            match self.connect(&url).await {
                Ok(mut send) => {
                    backoff = Duration::from_millis(50);
                    let (body_tx, body_rx) = mpsc::channel::<Result<BodyFrame<Bytes>, std::io::Error>>(64);
                    let body: Body = BodyExt::boxed(StreamBody::new(ReceiverStream::new(body_rx)));
                    let req = hyper::Request::post(format!("{url}/raft/stream"))
                        .body(body)
                        .expect("valid request");
                    if body_tx.send(Ok(BodyFrame::data(self.hello(peer)))).await.is_err() {
                        continue;
                    }
                    let mut response = Box::pin(send.send_request(req));
                    let refused = loop {
                        tokio::select! {
                            batch = rx.recv() => {
                                let Some(mut batch) = batch else { return };
                                while let Ok(more) = rx.try_recv() {
                                    batch.extend(more);
                                }
                                let mut buf = BytesMut::new();
                                encode_frame(&Frame::Messages(batch), &mut buf);
                                if body_tx.send(Ok(BodyFrame::data(buf.freeze()))).await.is_err() {
                                    break false;
                                }
                            }
                            r = &mut response => {
                                match r {
                                    Ok(resp) if !resp.status().is_success() => {
                                        // Not started yet, or another cluster: wait before retrying.
                                        tracing::debug!(peer, status = %resp.status(), "peer refused the stream");
                                        break true;
                                    }
                                    _ => break false,
                                }
                            }
                        }
                    };
                    if refused {
                        while rx.try_recv().is_ok() {}
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(2));
                    }
                }
                Err(e) => {
                    tracing::debug!(peer, error = %e, "peer unreachable");
                    let _ = self.inbound.try_send(Input::Unreachable(peer));
                    // What queued meanwhile is stale; Raft sends fresh messages.
                    while rx.try_recv().is_ok() {}
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
        }
    }

    async fn stream_snapshot(self: Arc<Self>, msg: Message, reader: SnapshotReader) -> SnapshotStatus {
        let Some(url) = self.url_of(msg.to) else {
            return SnapshotStatus::Failed;
        };
        let mut send = match self.connect(&url).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(to = msg.to, error = %e, "cannot send snapshot");
                return SnapshotStatus::Failed;
            }
        };
        let (tx, rx) = mpsc::channel::<Result<BodyFrame<Bytes>, std::io::Error>>(8);
        let mut head = BytesMut::new();
        encode_frame(
            &Frame::Hello(Hello {
                cluster_id: self.cluster_id,
                from: self.me,
                to: msg.to,
            }),
            &mut head,
        );
        encode_frame(&Frame::Messages(vec![msg.clone()]), &mut head);
        let _ = tx.try_send(Ok(BodyFrame::data(head.freeze())));
        // The reader walks a redb read transaction: blocking work, off the async threads.
        tokio::task::spawn_blocking(move || {
            for chunk in reader {
                let item = chunk
                    .map(BodyFrame::data)
                    .map_err(|e| std::io::Error::other(e.to_string()));
                if tx.blocking_send(item).is_err() {
                    return;
                }
            }
        });
        let body: Body = BodyExt::boxed(StreamBody::new(ReceiverStream::new(rx)));
        let req = hyper::Request::post(format!("{url}/raft/snapshot"))
            .header(CLUSTER_HEADER, self.cluster_id.to_string())
            .body(body)
            .expect("valid request");
        match send.send_request(req).await {
            Ok(resp) if resp.status().is_success() => {
                tracing::info!(
                    to = format!("{:x}", msg.to),
                    index = msg_index(&msg),
                    "snapshot delivered"
                );
                SnapshotStatus::Delivered
            }
            Ok(resp) => {
                tracing::warn!(to = msg.to, status = %resp.status(), "snapshot refused");
                SnapshotStatus::Failed
            }
            Err(e) => {
                tracing::warn!(to = msg.to, error = %e, "snapshot transfer failed");
                SnapshotStatus::Failed
            }
        }
    }

    /// Sends one RPC to a peer URL (used before member IDs are known, e.g. probes).
    pub async fn rpc_url(&self, url: &str, req: &PeerRequest) -> Result<PeerReply, NodeError> {
        let mut send = self.connect(url).await.map_err(NodeError::Peer)?;
        let body: Body =
            BodyExt::boxed(Full::new(Bytes::from(req.encode_to_vec())).map_err(|e: Infallible| match e {}));
        let req = hyper::Request::post(format!("{url}/raft/rpc"))
            .header(CLUSTER_HEADER, self.cluster_id.to_string())
            .body(body)
            .expect("valid request");
        let resp = send
            .send_request(req)
            .await
            .map_err(|e| NodeError::Peer(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(NodeError::Peer(format!("peer answered {}", resp.status())));
        }
        let bytes = http_body_util::Limited::new(resp.into_body(), MAX_RPC_BYTES)
            .collect()
            .await
            .map_err(|e| NodeError::Peer(e.to_string()))?
            .to_bytes();
        PeerReply::decode(bytes).map_err(|e| NodeError::Peer(format!("undecodable peer reply: {e}")))
    }
}

fn msg_index(msg: &Message) -> u64 {
    match &msg.body {
        kvorum_raft::MessageBody::InstallSnapshot { snapshot } => snapshot.index,
        _ => 0,
    }
}

impl Outbound for PeerTransport {
    fn send(&self, msgs: Vec<Message>) {
        let mut by_peer: HashMap<NodeId, Vec<Message>> = HashMap::new();
        for m in msgs {
            by_peer.entry(m.to).or_default().push(m);
        }
        let peers = self.peers.read();
        for (to, batch) in by_peer {
            match peers.get(&to) {
                Some(p) => {
                    if p.queue.try_send(batch).is_err() {
                        tracing::trace!(to, "peer queue full; dropping messages");
                    }
                }
                None => tracing::trace!(to, "no address for peer"),
            }
        }
    }

    fn send_snapshot(&self, msg: Message, snapshot: SnapshotReader) {
        let Some(me) = self.this.upgrade() else { return };
        let to = msg.to;
        let inbound = self.inbound.clone();
        self.runtime.spawn(async move {
            let status = me.stream_snapshot(msg, snapshot).await;
            let _ = inbound.send(Input::SnapshotReport { to, status }).await;
        });
    }
}

impl PeerRpc for Arc<PeerTransport> {
    fn rpc(&self, to: NodeId, req: PeerRequest) -> BoxFuture<'static, Result<PeerReply, NodeError>> {
        let me = self.clone();
        Box::pin(async move {
            let url = me
                .url_of(to)
                .ok_or_else(|| NodeError::Peer(format!("no address for member {to:x}")))?;
            me.rpc_url(&url, &req).await
        })
    }
}
