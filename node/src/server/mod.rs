//! The running node: storage, the driver thread, the peer transport and the client API, and
//! the bootstrap that decides who this member is.
//!
//! ```text
//!  Server::start ─► open db ─► bind listeners ─► peer server (answers probes at once)
//!                                              ─► client API (503 until running)
//!                 ─► bootstrap: identity from the db, or found / adopt / wait (below)
//!                 ─► Replica + Driver thread + PeerTransport + Node ─► Phase::Running
//! ```
//!
//! # Who am I? (an empty data directory)
//!
//! A member whose data directory is empty first probes the peers it knows. If one of them
//! holds data for this cluster, the cluster exists:
//! - if this member's founder ID is in the configuration but never started (never published
//!   its name), it is a slow founder and starts from the bootstrap configuration;
//! - otherwise its old identity may have had data, so it never reuses it: it waits until the
//!   cluster has added a new, unstarted member with its peer URL (`MemberAdd`), adopts that ID
//!   and joins as a learner. Meanwhile `/readyz` and `/v1/node` say so, which is what the
//!   operator watches for.
//!
//! If no peer holds data and the state is `new`, it founds the cluster.

pub mod driver;
pub mod error;
pub mod identity;
pub mod metrics;
pub mod node;
pub mod replica;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures::future::BoxFuture;
use kvorum_raft::{Config as RaftConfig, NodeId};
use parking_lot::RwLock;
use rand_core::SeedableRng;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use self::driver::{Driver, DriverConfig, Input, NodeStatus};
use self::identity::Identity;
use self::metrics::Metrics;
use self::node::{Node, NodeInfo};
use self::replica::Replica;
use crate::config::{ClusterState, NodeConfig, split_url};
use crate::mvcc::Store;
use crate::proto::kvorum::internal::{PeerReply, PeerRequest, Probe, ProbeReply, peer_reply, peer_request};
use crate::storage::{Db, DbConfig, RedbLogStore};
use crate::tls::{ReloadingCert, TlsError, client_config, ensure_self_signed, server_config};
use crate::transport::{PeerHandler, PeerTransport, serve_peers};

/// Where a member is in its life.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Opening storage, probing peers.
    Starting,
    /// The data directory was empty and the cluster exists: waiting to be added as a new
    /// member with this peer URL.
    AwaitingMembership {
        /// Why, for humans.
        reason: String,
    },
    /// Serving.
    Running,
    /// Stopped (or failed).
    Stopped {
        /// Why.
        reason: String,
    },
}

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Storage could not be opened.
    #[error("opening the data directory {dir}: {error}")]
    Storage {
        /// The data directory.
        dir: PathBuf,
        /// What failed.
        error: String,
    },
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {error}")]
    Bind {
        /// The address.
        addr: String,
        /// The I/O error.
        error: std::io::Error,
    },
    /// TLS material is unusable.
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// What both servers share: the member once it runs, its phase and metrics.
pub struct ServerState {
    node: OnceLock<Node>,
    phase: RwLock<Phase>,
    /// Metrics of this member.
    pub metrics: Arc<Metrics>,
    /// The configuration.
    pub config: NodeConfig,
    identity: RwLock<Option<Identity>>,
    client_tls_ca: Option<PathBuf>,
}

impl ServerState {
    /// The member, once running.
    pub fn node(&self) -> Option<&Node> {
        self.node.get()
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        self.phase.read().clone()
    }

    fn set_phase(&self, phase: Phase) {
        let mut p = self.phase.write();
        if *p != phase {
            tracing::info!(?phase, "member phase");
            *p = phase;
        }
    }

    /// The CA clients should trust (generated or configured), if TLS is on.
    pub fn client_ca(&self) -> Option<&PathBuf> {
        self.client_tls_ca.as_ref()
    }
}

impl PeerHandler for ServerState {
    fn cluster_id(&self) -> u64 {
        self.identity.read().map_or(0, |i| i.cluster_id)
    }

    fn member_id(&self) -> u64 {
        self.identity.read().map_or(0, |i| i.member_id)
    }

    fn inbound(&self) -> Option<mpsc::Sender<Input>> {
        self.node.get().map(|n| n.inputs())
    }

    fn rpc(&self, req: PeerRequest) -> BoxFuture<'static, PeerReply> {
        match self.node.get() {
            Some(node) => {
                let node = node.clone();
                Box::pin(async move { node.handle_peer(req).await })
            }
            None => {
                // Not running yet: a probe learns that this member holds nothing.
                let answer = match req.op {
                    Some(peer_request::Op::Probe(Probe {})) => peer_reply::Result::Probe(ProbeReply::default()),
                    _ => peer_reply::Result::Error(crate::proto::kvorum::internal::PeerError {
                        code: tonic::Code::Unavailable as i32,
                        message: "etcdserver: member not started".into(),
                    }),
                };
                Box::pin(async move { PeerReply { result: Some(answer) } })
            }
        }
    }
}

/// A started node: its shared state, addresses and the means to stop it.
pub struct Server {
    /// Shared state (the member once running).
    pub state: Arc<ServerState>,
    /// The client API address actually bound.
    pub client_addr: std::net::SocketAddr,
    /// The peer address actually bound.
    pub peer_addr: std::net::SocketAddr,
    shutdown: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    driver: Arc<parking_lot::Mutex<Option<std::thread::JoinHandle<()>>>>,
}

struct Tls {
    client: Option<Arc<rustls::ServerConfig>>,
    client_ca: Option<PathBuf>,
    peer_server: Option<Arc<rustls::ServerConfig>>,
    peer_client: Option<Arc<rustls::ClientConfig>>,
}

fn url_hosts(urls: &[String]) -> Vec<String> {
    let mut hosts: Vec<String> = urls
        .iter()
        .filter_map(|u| split_url(u).map(|(_, h, _)| h.to_string()))
        .collect();
    hosts.extend(["localhost".to_string(), "127.0.0.1".to_string()]);
    hosts.sort();
    hosts.dedup();
    hosts
}

fn tls(cfg: &NodeConfig) -> Result<Tls, TlsError> {
    let alpn_client: &[&[u8]] = &[b"h2", b"http/1.1"];
    let (client, client_ca) = match &cfg.client_tls {
        None => (None, None),
        Some(files) => {
            let (cert, key, ca) = match (&files.cert, &files.key) {
                (Some(c), Some(k)) => (c.clone(), k.clone(), files.ca.clone()),
                _ => {
                    let g = ensure_self_signed(
                        &cfg.data_dir.join("tls"),
                        &cfg.name,
                        &url_hosts(&cfg.advertise_client_urls),
                    )?;
                    tracing::info!(ca = %g.ca.display(), "no client certificate given: serving a generated one");
                    (g.cert, g.key, Some(g.ca))
                }
            };
            let verify_clients = if cfg.client_cert_auth { ca.as_deref() } else { None };
            (
                Some(server_config(
                    ReloadingCert::new(&cert, &key)?,
                    verify_clients,
                    alpn_client,
                )?),
                ca,
            )
        }
    };
    let (peer_server, peer_client) = match &cfg.peer_tls {
        None => (None, None),
        Some(files) => {
            let (cert, key, ca) = match (&files.cert, &files.key, &files.ca) {
                (Some(c), Some(k), Some(ca)) => (c.clone(), k.clone(), ca.clone()),
                _ => {
                    let mut urls = vec![cfg.advertise_peer_url.clone()];
                    urls.extend(cfg.advertise_client_urls.iter().cloned());
                    let g = ensure_self_signed(&cfg.data_dir.join("tls"), &cfg.name, &url_hosts(&urls))?;
                    (g.cert, g.key, g.ca)
                }
            };
            let identity = ReloadingCert::new(&cert, &key)?;
            (
                Some(server_config(identity.clone(), Some(&ca), &[b"h2"])?),
                Some(client_config(&ca, Some(identity), &[b"h2"])?),
            )
        }
    };
    Ok(Tls {
        client,
        client_ca,
        peer_server,
        peer_client,
    })
}

impl Server {
    /// Starts a node: binds both listeners, then bootstraps in the background.
    pub async fn start(cfg: NodeConfig) -> Result<Server, StartError> {
        let storage_error = |error: String| StartError::Storage {
            dir: cfg.data_dir.clone(),
            error,
        };
        std::fs::create_dir_all(&cfg.data_dir).map_err(|e| storage_error(e.to_string()))?;
        let db = Db::open(&cfg.data_dir.join("kvorum.redb"), &DbConfig::default())
            .map_err(|e| storage_error(e.to_string()))?;
        let log = RedbLogStore::open(db.clone()).map_err(|e| storage_error(e.to_string()))?;
        let store = Arc::new(Store::open(db.clone(), cfg.mvcc.clone()).map_err(|e| storage_error(e.to_string()))?);
        let tls = tls(&cfg)?;
        let bind = |addr: String| async move {
            TcpListener::bind(&addr)
                .await
                .map_err(|error| StartError::Bind { addr, error })
        };
        let client_listener = bind(cfg.listen_client.clone()).await?;
        let peer_listener = bind(cfg.listen_peer.clone()).await?;
        let client_addr = client_listener.local_addr().expect("bound");
        let peer_addr = peer_listener.local_addr().expect("bound");
        let identity = identity::load(&db).map_err(|e| storage_error(e.to_string()))?;
        let state = Arc::new(ServerState {
            node: OnceLock::new(),
            phase: RwLock::new(Phase::Starting),
            metrics: Arc::new(Metrics::new()),
            config: cfg.clone(),
            identity: RwLock::new(identity),
            client_tls_ca: tls.client_ca.clone(),
        });
        let (shutdown, shutdown_rx) = watch::channel(false);
        let stopped = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let mut tasks = Vec::new();
        tasks.push(tokio::spawn(serve_peers(
            peer_listener,
            tls.peer_server.clone(),
            state.clone(),
            stopped(shutdown_rx.clone()),
        )));
        tasks.push(tokio::spawn(crate::api::serve(
            client_listener,
            tls.client.clone(),
            state.clone(),
            stopped(shutdown_rx.clone()),
        )));
        let driver = Arc::new(parking_lot::Mutex::new(None));
        let boot = Boot {
            state: state.clone(),
            db,
            log,
            store,
            peer_client_tls: tls.peer_client.clone(),
            driver: driver.clone(),
            shutdown: shutdown_rx,
        };
        tasks.push(tokio::spawn(async move {
            if let Err(e) = boot.run().await {
                tracing::error!(error = %e, "member failed to start");
            }
        }));
        Ok(Server {
            state,
            client_addr,
            peer_addr,
            shutdown,
            tasks,
            driver,
        })
    }

    /// The member, once running.
    pub fn node(&self) -> Option<&Node> {
        self.state.node()
    }

    /// Waits until the member runs and knows a leader (or the timeout passes).
    pub async fn ready(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(node) = self.node() {
                let mut rx = node.status_updates();
                return tokio::time::timeout_at(deadline, rx.wait_for(|s| s.leader.is_some()))
                    .await
                    .is_ok_and(|r| r.is_ok());
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops gracefully: a leader hands leadership over first; in-flight requests finish or
    /// fail; then both servers and the driver stop.
    pub async fn shutdown(self) {
        self.stop(true).await
    }

    /// Stops; `handover` first moves leadership away (pointless when every member stops).
    pub async fn stop(self, handover: bool) {
        if let Some(node) = self.state.node() {
            if handover {
                node.step_down(Duration::from_secs(3)).await;
            }
            node.stop().await;
        }
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
        let handle = self.driver.lock().take();
        if let Some(h) = handle {
            let _ = tokio::task::spawn_blocking(move || h.join()).await;
        }
        self.state.set_phase(Phase::Stopped {
            reason: "shut down".into(),
        });
    }
}

struct Boot {
    state: Arc<ServerState>,
    db: Db,
    log: RedbLogStore,
    store: Arc<Store>,
    peer_client_tls: Option<Arc<rustls::ClientConfig>>,
    driver: Arc<parking_lot::Mutex<Option<std::thread::JoinHandle<()>>>>,
    shutdown: watch::Receiver<bool>,
}

impl Boot {
    fn cfg(&self) -> &NodeConfig {
        &self.state.config
    }

    fn founders(&self) -> Vec<(String, String, NodeId)> {
        let token = &self.cfg().cluster_token;
        self.cfg()
            .initial_cluster
            .iter()
            .map(|(n, u)| (n.clone(), u.clone(), identity::founder_id(token, n)))
            .collect()
    }

    async fn run(self) -> Result<(), String> {
        let stored = *self.state.identity.read();
        let identity = match stored {
            Some(id) => id,
            None => {
                let Some(id) = self.decide_identity().await? else {
                    return Ok(());
                };
                identity::save(&self.db, &id).map_err(|e| e.to_string())?;
                *self.state.identity.write() = Some(id);
                id
            }
        };
        self.launch(identity).await
    }

    async fn probe_all(&self, probe: &PeerTransport) -> Vec<ProbeReply> {
        let cfg = self.cfg();
        let urls: Vec<String> = cfg
            .initial_cluster
            .iter()
            .map(|(_, u)| u.clone())
            .filter(|u| *u != cfg.advertise_peer_url)
            .collect();
        let req = PeerRequest {
            op: Some(peer_request::Op::Probe(Probe {})),
        };
        let asks = urls.iter().map(|u| {
            let req = req.clone();
            async move { tokio::time::timeout(Duration::from_secs(1), probe.rpc_url(u, &req)).await }
        });
        futures::future::join_all(asks)
            .await
            .into_iter()
            .filter_map(|r| match r {
                Ok(Ok(PeerReply {
                    result: Some(peer_reply::Result::Probe(p)),
                })) => Some(p),
                _ => None,
            })
            .collect()
    }

    /// Found, adopt an added ID, or wait (see the module docs). `None` when shut down first.
    async fn decide_identity(&self) -> Result<Option<Identity>, String> {
        let cfg = self.cfg().clone();
        let founders = self.founders();
        let founder_ids: Vec<NodeId> = founders.iter().map(|f| f.2).collect();
        let expected_cluster = identity::cluster_id(&cfg.cluster_token, &founder_ids);
        let my_founder_id = identity::founder_id(&cfg.cluster_token, &cfg.name);
        let (inbound, _unused) = mpsc::channel(1);
        let probe = PeerTransport::new(
            0,
            0,
            self.peer_client_tls.clone(),
            inbound,
            tokio::runtime::Handle::current(),
        );
        let mut rounds = 0;
        loop {
            if *self.shutdown.borrow() {
                return Ok(None);
            }
            rounds += 1;
            let replies = self.probe_all(&probe).await;
            let existing = replies.iter().find(|r| {
                r.has_data && (r.cluster_id == expected_cluster || cfg.initial_cluster_state == ClusterState::Existing)
            });
            match existing {
                Some(r) => {
                    let in_conf = |id: u64| r.voters.contains(&id) || r.learners.contains(&id);
                    let started = |id: u64| r.members.iter().any(|m| m.id == id && !m.name.is_empty());
                    if cfg.initial_cluster_state == ClusterState::New
                        && r.cluster_id == expected_cluster
                        && in_conf(my_founder_id)
                        && !started(my_founder_id)
                    {
                        tracing::info!(
                            "the cluster formed without this founder; starting from the bootstrap configuration"
                        );
                        return Ok(Some(Identity {
                            member_id: my_founder_id,
                            cluster_id: expected_cluster,
                            founder: true,
                        }));
                    }
                    let added = r
                        .members
                        .iter()
                        .find(|m| m.name.is_empty() && in_conf(m.id) && m.peer_urls.contains(&cfg.advertise_peer_url));
                    if let Some(m) = added {
                        tracing::info!(
                            member = format!("{:x}", m.id),
                            "joining the cluster as the member added for this peer URL"
                        );
                        return Ok(Some(Identity {
                            member_id: m.id,
                            cluster_id: r.cluster_id,
                            founder: false,
                        }));
                    }
                    self.state.set_phase(Phase::AwaitingMembership {
                        reason: format!(
                            "data directory is empty and cluster {:x} exists: waiting to be added as a new member with peer URL {}",
                            r.cluster_id, cfg.advertise_peer_url
                        ),
                    });
                }
                None if cfg.initial_cluster_state == ClusterState::New
                    && (rounds >= 3 || replies.len() + 1 >= founders.len()) =>
                {
                    tracing::info!(cluster = format!("{expected_cluster:x}"), "founding the cluster");
                    return Ok(Some(Identity {
                        member_id: my_founder_id,
                        cluster_id: expected_cluster,
                        founder: true,
                    }));
                }
                None if cfg.initial_cluster_state == ClusterState::Existing => {
                    self.state.set_phase(Phase::AwaitingMembership {
                        reason: format!(
                            "joining an existing cluster: no member in --initial-cluster answered with data yet; waiting to be added with peer URL {}",
                            cfg.advertise_peer_url
                        ),
                    });
                }
                None => {}
            }
            tokio::time::sleep(Duration::from_millis(if rounds < 3 { 300 } else { 2000 })).await;
        }
    }

    fn raft_config(&self, id: NodeId) -> RaftConfig {
        let cfg = self.cfg();
        let mut r = RaftConfig::new(id);
        r.heartbeat_interval_ticks = cfg.heartbeat_ticks;
        r.election_timeout_min_ticks = cfg.election_ticks;
        r.election_timeout_max_ticks = cfg.election_ticks * 2;
        r.compaction_retain_entries = cfg.snapshot_count.min(5000);
        r
    }

    async fn launch(self, id: Identity) -> Result<(), String> {
        let cfg = self.cfg().clone();
        let founders = self.founders();
        let bootstrap: Vec<NodeId> = if id.founder {
            founders.iter().map(|f| f.2).collect()
        } else {
            Vec::new()
        };
        let seed = getrandom::u64().unwrap_or(id.member_id);
        let rng = rand_xoshiro_free::Rng::seed_from_u64(seed ^ id.member_id);
        let replica = Replica::open(
            self.raft_config(id.member_id),
            self.log,
            self.store.clone(),
            &bootstrap,
            Box::new(rng),
        )
        .map_err(|e| e.to_string())?;
        let (inputs_tx, inputs_rx) = mpsc::channel(4096);
        let transport = PeerTransport::new(
            id.member_id,
            id.cluster_id,
            self.peer_client_tls.clone(),
            inputs_tx.clone(),
            tokio::runtime::Handle::current(),
        );
        let (status_tx, status_rx) = watch::channel(NodeStatus {
            id: id.member_id,
            ..NodeStatus::default()
        });
        let election = cfg.tick * cfg.election_ticks;
        let driver = Driver::new(
            replica,
            inputs_rx,
            transport.clone(),
            status_tx,
            self.state.metrics.clone(),
            DriverConfig {
                tick: cfg.tick,
                snapshot_count: cfg.snapshot_count,
                election_timeout: election,
                auto_compaction_revisions: cfg.auto_compaction_revisions,
                snapshot_chunk_bytes: 256 << 10,
            },
        );
        let handle = std::thread::Builder::new()
            .name(format!("kvorum-driver-{:x}", id.member_id))
            .spawn(move || {
                let _ = driver.run();
            })
            .map_err(|e| e.to_string())?;
        *self.driver.lock() = Some(handle);
        let info = NodeInfo {
            id: id.member_id,
            cluster_id: id.cluster_id,
            name: cfg.name.clone(),
            peer_url: cfg.advertise_peer_url.clone(),
            client_urls: cfg.advertise_client_urls.clone(),
            request_timeout: cfg.request_timeout,
            min_lease_ttl: (election.as_millis() as u64 * 3 / 2).div_ceil(1000).max(2) as i64,
            promotion_max_lag: 1000,
        };
        let node = Node::new(
            info,
            self.store.clone(),
            inputs_tx,
            status_rx,
            Arc::new(transport.clone()),
            self.state.metrics.clone(),
        );
        let _ = self.state.node.set(node.clone());
        self.state.set_phase(Phase::Running);
        refresh_peers(&transport, &self.store, &founders);
        node.spawn_publish();
        if bootstrap.len() == 1 {
            node.campaign();
        }
        tokio::spawn(keep_peers_fresh(
            transport,
            self.store.clone(),
            founders,
            self.shutdown.clone(),
        ));
        tokio::spawn(sync_watchers(node, self.shutdown));
        Ok(())
    }
}

/// The address book: replicated member metadata, falling back to `--initial-cluster`.
fn refresh_peers(transport: &Arc<PeerTransport>, store: &Store, founders: &[(String, String, NodeId)]) {
    let mut peers: Vec<(NodeId, String)> = founders.iter().map(|f| (f.2, f.1.clone())).collect();
    for m in store.members() {
        if let Some(url) = m.peer_urls.first() {
            peers.retain(|(id, _)| *id != m.id);
            peers.push((m.id, url.clone()));
        }
    }
    transport.set_peers(&peers);
}

async fn keep_peers_fresh(
    transport: Arc<PeerTransport>,
    store: Arc<Store>,
    founders: Vec<(String, String, NodeId)>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => refresh_peers(&transport, &store, &founders),
            _ = shutdown.wait_for(|s| *s) => return,
        }
    }
}

/// Feeds lagging watchers from history, off the driver thread.
async fn sync_watchers(node: Node, mut shutdown: watch::Receiver<bool>) {
    let hub = node.store().watch_hub().clone();
    loop {
        tokio::select! {
            _ = hub.sync_needed() => {}
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
        let store = node.store().clone();
        match tokio::task::spawn_blocking(move || store.sync_watchers()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "watch catch-up failed"),
            Err(e) => tracing::error!(error = %e, "watch catch-up panicked"),
        }
        node.metrics().watchers.set(hub.watcher_count() as i64);
    }
}

/// A seedable RNG for the Raft core's election jitter without another dependency.
mod rand_xoshiro_free {
    /// SplitMix64: tiny, seedable, good enough for election timeouts.
    pub struct Rng(u64);

    impl rand_core::SeedableRng for Rng {
        type Seed = [u8; 8];
        fn from_seed(seed: [u8; 8]) -> Self {
            Rng(u64::from_le_bytes(seed))
        }
    }

    impl rand_core::TryRng for Rng {
        type Error = std::convert::Infallible;
        fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
            Ok(self.try_next_u64()? as u32)
        }
        fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            Ok(z ^ (z >> 31))
        }
        fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
            for chunk in dst.chunks_mut(8) {
                let v = self.try_next_u64()?.to_le_bytes();
                chunk.copy_from_slice(&v[..chunk.len()]);
            }
            Ok(())
        }
    }
}
