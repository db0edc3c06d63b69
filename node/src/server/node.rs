//! [`Node`]: what the client APIs call. It admits requests, hands them to the driver when this
//! member leads, forwards them to the leader when it does not, waits for the outcome with a
//! deadline, and retries only what certainly did not take effect (the leader changed before
//! the entry committed).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kvorum_raft::{ConfChange, NodeId};
use parking_lot::Mutex;
use prost::Message as _;
use tokio::sync::{mpsc, oneshot, watch};

use super::driver::{Input, NodeStatus};
use super::error::NodeError;
use super::metrics::Metrics;
use crate::mvcc::{LeaseIdGenerator, MvccError, RenewError, Response, Store, granted_ttl};
use crate::proto::etcdserverpb::{LeaseGrantRequest, LeaseRevokeRequest, Member};
use crate::proto::kvorum::internal::{
    Command, Empty, MemberAttributes, MemberChange, MemberChangeReply, PeerError, PeerReply, PeerRequest, Probe,
    ProbeReply, command::Op, member_change, peer_reply, peer_request,
};
use crate::transport::PeerRpc;

/// Committed-but-unapplied entries beyond which new proposals are refused (etcd: 5000).
const MAX_APPLY_LAG: u64 = 5000;

/// Static facts about this member.
#[derive(Clone, Debug)]
pub struct NodeInfo {
    /// Member ID.
    pub id: NodeId,
    /// Cluster ID.
    pub cluster_id: u64,
    /// Name.
    pub name: String,
    /// Peer URL.
    pub peer_url: String,
    /// Client URLs.
    pub client_urls: Vec<String>,
    /// Request deadline.
    pub request_timeout: Duration,
    /// Shortest lease TTL granted, in seconds.
    pub min_lease_ttl: i64,
    /// A learner may be promoted when within this many entries of the leader.
    pub promotion_max_lag: u64,
}

struct Inner {
    info: NodeInfo,
    store: Arc<Store>,
    inputs: mpsc::Sender<Input>,
    status: watch::Receiver<NodeStatus>,
    peers: Arc<dyn PeerRpc>,
    lease_ids: Mutex<LeaseIdGenerator>,
    metrics: Arc<Metrics>,
}

/// A handle on a running member. Cheap to clone.
#[derive(Clone)]
pub struct Node {
    inner: Arc<Inner>,
}

impl Node {
    /// A handle over a running driver.
    pub fn new(
        info: NodeInfo,
        store: Arc<Store>,
        inputs: mpsc::Sender<Input>,
        status: watch::Receiver<NodeStatus>,
        peers: Arc<dyn PeerRpc>,
        metrics: Arc<Metrics>,
    ) -> Node {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        Node {
            inner: Arc::new(Inner {
                lease_ids: Mutex::new(LeaseIdGenerator::new(info.id, now_ms)),
                info,
                store,
                inputs,
                status,
                peers,
                metrics,
            }),
        }
    }

    /// Committed-but-unapplied entries beyond which new proposals are refused (etcd: 5000).
    /// Static facts about this member.
    pub fn info(&self) -> &NodeInfo {
        &self.inner.info
    }

    /// The state machine (for local reads).
    pub fn store(&self) -> &Arc<Store> {
        &self.inner.store
    }

    /// Metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }

    /// The driver's input channel (the peer server feeds messages into it).
    pub(crate) fn inputs(&self) -> mpsc::Sender<Input> {
        self.inner.inputs.clone()
    }

    /// The driver's latest status.
    pub fn status(&self) -> NodeStatus {
        self.inner.status.borrow().clone()
    }

    /// A receiver of status updates.
    pub fn status_updates(&self) -> watch::Receiver<NodeStatus> {
        self.inner.status.clone()
    }

    fn submit(&self, input: Input) -> Result<(), NodeError> {
        self.inner.inputs.try_send(input).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => NodeError::TooManyRequests,
            mpsc::error::TrySendError::Closed(_) => NodeError::Stopped,
        })
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Input) -> Result<T, NodeError> {
        let (tx, rx) = oneshot::channel();
        self.submit(make(tx))?;
        rx.await.map_err(|_| NodeError::Stopped)
    }

    /// Waits until some leader is known (or the deadline passes).
    async fn leader(&self, deadline: Instant) -> Result<NodeId, NodeError> {
        let mut rx = self.inner.status.clone();
        loop {
            {
                let s = rx.borrow_and_update();
                if s.stopped {
                    return Err(NodeError::Stopped);
                }
                if let Some(l) = s.leader {
                    return Ok(l);
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || tokio::time::timeout(left, rx.changed()).await.is_err() {
                return Err(NodeError::NoLeader);
            }
        }
    }

    /// Waits a little for the cluster to settle before a retry.
    async fn settle(&self) {
        let mut rx = self.inner.status.clone();
        let _ = tokio::time::timeout(Duration::from_millis(50), rx.changed()).await;
    }

    fn deadline(&self) -> Instant {
        Instant::now() + self.inner.info.request_timeout
    }

    /// Replicates a state-machine command and returns its result once applied.
    pub async fn propose(&self, op: Op) -> Result<Response, NodeError> {
        let data = Bytes::from(Command { op: Some(op.clone()) }.encode_to_vec());
        self.inner.store.admit(&op, data.len())?;
        // etcd's gate: when applying lags committing this much, more work only queues.
        let s = self.status();
        if s.commit > s.applied + MAX_APPLY_LAG {
            return Err(NodeError::TooManyRequests);
        }
        let started = Instant::now();
        let deadline = self.deadline();
        let result = match tokio::time::timeout_at(deadline.into(), self.propose_until(data, deadline)).await {
            Ok(r) => r,
            Err(_) => Err(NodeError::Timeout),
        };
        self.inner
            .metrics
            .proposal_seconds
            .observe(started.elapsed().as_secs_f64());
        result
    }

    async fn propose_until(&self, data: Bytes, deadline: Instant) -> Result<Response, NodeError> {
        loop {
            let leader = self.leader(deadline).await?;
            let result = if leader == self.inner.info.id {
                self.ask(|reply| Input::Propose {
                    data: data.clone(),
                    reply,
                })
                .await
                .and_then(|r| r)
            } else {
                let cmd = Command::decode(data.clone()).expect("encoded above");
                let req = PeerRequest {
                    op: Some(peer_request::Op::Propose(cmd)),
                };
                self.inner.peers.rpc(leader, req).await.and_then(response_from_reply)
            };
            match result {
                Err(e) if e.is_retryable() => self.settle().await,
                other => return other,
            }
        }
    }

    /// Proposes on this member only (the leader side of a forwarded proposal).
    async fn propose_here(&self, cmd: Command) -> Result<Response, NodeError> {
        let op = cmd.op.clone().ok_or(NodeError::Invalid("empty command".into()))?;
        let data = Bytes::from(cmd.encode_to_vec());
        self.inner.store.admit(&op, data.len())?;
        self.ask(|reply| Input::Propose { data, reply }).await.and_then(|r| r)
    }

    /// A linearizable read barrier: once it returns, the local state machine reflects every
    /// write committed before the call.
    pub async fn read_barrier(&self) -> Result<(), NodeError> {
        let deadline = self.deadline();
        let work = async {
            loop {
                self.leader(deadline).await?;
                match self.ask(|reply| Input::ReadIndex { reply }).await.and_then(|r| r) {
                    Err(e) if e.is_retryable() => self.settle().await,
                    other => return other,
                }
            }
        };
        tokio::time::timeout_at(deadline.into(), work)
            .await
            .unwrap_or(Err(NodeError::Timeout))
    }

    // ---- leases ----

    /// Grants a lease; ID 0 lets the server choose one. The TTL is raised to the minimum.
    pub async fn lease_grant(&self, ttl: i64, id: i64) -> Result<Response, NodeError> {
        if id < 0 {
            return Err(NodeError::Invalid("lease ID must not be negative".into()));
        }
        let id = if id == 0 {
            self.inner.lease_ids.lock().next_id()
        } else {
            id
        };
        let ttl = granted_ttl(ttl, self.inner.info.min_lease_ttl);
        self.propose(Op::LeaseGrant(LeaseGrantRequest { ttl, id })).await
    }

    /// Revokes a lease and deletes its keys.
    pub async fn lease_revoke(&self, id: i64) -> Result<Response, NodeError> {
        self.propose(Op::LeaseRevoke(LeaseRevokeRequest { id })).await
    }

    /// A keepalive: the lease's new TTL, or 0 if it does not exist (etcd's answer).
    pub async fn lease_keepalive(&self, id: i64) -> Result<i64, NodeError> {
        let deadline = self.deadline();
        loop {
            let leader = self.leader(deadline).await?;
            if leader == self.inner.info.id {
                match self.ask(|reply| Input::LeaseRenew { id, reply }).await? {
                    Ok(ttl) => return Ok(ttl),
                    Err(RenewError::NotFound) => return Ok(0),
                    Err(RenewError::NotPrimary) => self.settle().await,
                }
            } else {
                let req = PeerRequest {
                    op: Some(peer_request::Op::LeaseKeepalive(id)),
                };
                match self.inner.peers.rpc(leader, req).await.and_then(ttl_from_reply) {
                    Err(e) if e.is_retryable() && Instant::now() < deadline => self.settle().await,
                    other => return other,
                }
            }
        }
    }

    /// Remaining TTL of a lease on the leader's clock; -1 if it does not exist.
    pub async fn lease_remaining(&self, id: i64) -> Result<i64, NodeError> {
        let deadline = self.deadline();
        loop {
            let leader = self.leader(deadline).await?;
            if leader == self.inner.info.id {
                let (remaining, primary) = self.ask(|reply| Input::LeaseRemaining { id, reply }).await?;
                if primary || Instant::now() >= deadline {
                    return Ok(remaining.unwrap_or(-1));
                }
                self.settle().await;
            } else {
                let req = PeerRequest {
                    op: Some(peer_request::Op::LeaseTtl(id)),
                };
                match self.inner.peers.rpc(leader, req).await.and_then(ttl_from_reply) {
                    Err(e) if e.is_retryable() && Instant::now() < deadline => self.settle().await,
                    other => return other,
                }
            }
        }
    }

    // ---- membership ----

    /// The members: the Raft configuration joined with the replicated metadata.
    pub fn members(&self) -> Vec<Member> {
        let status = self.status();
        let meta = self.inner.store.members();
        let find = |id: u64| meta.iter().find(|m| m.id == id).cloned().unwrap_or_default();
        status
            .voters
            .iter()
            .map(|id| (*id, false))
            .chain(status.learners.iter().map(|id| (*id, true)))
            .map(|(id, is_learner)| {
                let m = find(id);
                Member {
                    id,
                    name: m.name,
                    peer_ur_ls: m.peer_urls,
                    client_ur_ls: m.client_urls,
                    is_learner,
                }
            })
            .collect()
    }

    /// Runs a membership change on the leader (forwarding it there if needed).
    pub async fn member_change(&self, change: MemberChange) -> Result<MemberChangeReply, NodeError> {
        let deadline = Instant::now() + self.inner.info.request_timeout * 2;
        loop {
            let leader = self.leader(deadline).await?;
            let result = if leader == self.inner.info.id {
                self.member_change_here(change.clone()).await
            } else {
                let req = PeerRequest {
                    op: Some(peer_request::Op::MemberChange(change.clone())),
                };
                self.inner.peers.rpc(leader, req).await.and_then(|r| match r.result {
                    Some(peer_reply::Result::MemberChange(m)) => Ok(m),
                    other => Err(error_from_reply(other)),
                })
            };
            match result {
                Err(e) if e.is_retryable() && Instant::now() < deadline => self.settle().await,
                other => return other,
            }
        }
    }

    async fn conf_change(&self, change: ConfChange) -> Result<(), NodeError> {
        let deadline = self.deadline();
        loop {
            match self
                .ask(|reply| Input::ConfChange { change, reply })
                .await
                .and_then(|r| r)
            {
                // A new leader must commit an entry of its term first: wait a moment.
                Err(NodeError::Raft(e)) if e.is_retryable() && Instant::now() < deadline => self.settle().await,
                other => return other,
            }
        }
    }

    async fn member_change_here(&self, change: MemberChange) -> Result<MemberChangeReply, NodeError> {
        let status = self.status();
        let is_member = |id| status.voters.contains(&id) || status.learners.contains(&id);
        match member_change::Kind::try_from(change.kind).map_err(|_| NodeError::Invalid("unknown change".into()))? {
            member_change::Kind::Add => {
                if change.peer_urls.is_empty() {
                    return Err(NodeError::Invalid("member add needs peer URLs".into()));
                }
                let taken = self
                    .members()
                    .iter()
                    .any(|m| m.peer_ur_ls.iter().any(|u| change.peer_urls.contains(u)));
                if taken {
                    return Err(NodeError::PeerUrlExists);
                }
                let id = loop {
                    let id = random_id();
                    if !is_member(id) {
                        break id;
                    }
                };
                let attrs = MemberAttributes {
                    id,
                    name: String::new(),
                    peer_urls: change.peer_urls.clone(),
                    client_urls: Vec::new(),
                };
                self.propose_here(Command {
                    op: Some(Op::Member(attrs.clone())),
                })
                .await?;
                self.conf_change(ConfChange::AddLearner(id)).await?;
                if !change.is_learner {
                    self.spawn_auto_promote(id);
                }
                Ok(MemberChangeReply { member: Some(attrs) })
            }
            member_change::Kind::Remove => {
                if !is_member(change.id) {
                    return Err(NodeError::MemberNotFound);
                }
                self.conf_change(ConfChange::RemoveNode(change.id)).await?;
                Ok(MemberChangeReply { member: None })
            }
            member_change::Kind::Promote => {
                if !is_member(change.id) {
                    return Err(NodeError::MemberNotFound);
                }
                if !status.learners.contains(&change.id) {
                    return Err(NodeError::NotLearner);
                }
                // etcd's rule: the learner must hold at least 90% of the leader's log (and the
                // core's absolute lag bound applies too), so a member that has not received
                // its snapshot yet never becomes a voter.
                let matched = status.progress.get(&change.id).copied().unwrap_or(0);
                if matched == 0 || matched * 10 < status.last_index * 9 {
                    return Err(NodeError::LearnerNotReady);
                }
                match self.conf_change(ConfChange::PromoteLearner(change.id)).await {
                    Err(NodeError::Raft(kvorum_raft::RaftError::LearnerBehind { .. })) => {
                        Err(NodeError::LearnerNotReady)
                    }
                    other => other.map(|_| MemberChangeReply { member: None }),
                }
            }
            member_change::Kind::Update => {
                if !is_member(change.id) {
                    return Err(NodeError::MemberNotFound);
                }
                self.propose_here(Command {
                    op: Some(Op::Member(MemberAttributes {
                        id: change.id,
                        name: String::new(),
                        peer_urls: change.peer_urls,
                        client_urls: Vec::new(),
                    })),
                })
                .await?;
                Ok(MemberChangeReply { member: None })
            }
        }
    }

    /// etcd adds a voting member at once; kvorum adds it as a learner (so the quorum never
    /// counts a member that has not caught up) and promotes it as soon as it has.
    fn spawn_auto_promote(&self, id: NodeId) {
        let node = self.clone();
        tokio::spawn(async move {
            let give_up = Instant::now() + Duration::from_secs(600);
            while Instant::now() < give_up {
                let s = node.status();
                if !s.learners.contains(&id) {
                    return;
                }
                let caught_up = s.progress.get(&id).is_some_and(|m| {
                    *m > 0 && m * 10 >= s.last_index * 9 && m + node.inner.info.promotion_max_lag >= s.last_index
                });
                if caught_up {
                    let change = MemberChange {
                        kind: member_change::Kind::Promote as i32,
                        id,
                        peer_urls: vec![],
                        is_learner: false,
                    };
                    match node.member_change(change).await {
                        Ok(_) => {
                            tracing::info!(member = format!("{id:x}"), "promoted the new member to voter");
                            return;
                        }
                        Err(e) => tracing::debug!(error = %e, "promotion not possible yet"),
                    }
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
    }

    /// Moves leadership to `to` and waits until it has moved.
    pub async fn move_leader(&self, to: NodeId) -> Result<(), NodeError> {
        let deadline = self.deadline();
        let leader = self.leader(deadline).await?;
        if leader == to {
            return Ok(());
        }
        if leader != self.inner.info.id {
            let req = PeerRequest {
                op: Some(peer_request::Op::TransferLeader(to)),
            };
            return self.inner.peers.rpc(leader, req).await.and_then(|r| match r.result {
                Some(peer_reply::Result::Done(_)) => Ok(()),
                other => Err(error_from_reply(other)),
            });
        }
        self.transfer_here(to, deadline).await
    }

    async fn transfer_here(&self, to: NodeId, deadline: Instant) -> Result<(), NodeError> {
        self.ask(|reply| Input::Transfer { to, reply }).await??;
        let mut rx = self.inner.status.clone();
        loop {
            if rx.borrow_and_update().leader == Some(to) {
                return Ok(());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || tokio::time::timeout(left, rx.changed()).await.is_err() {
                return Err(NodeError::Timeout);
            }
        }
    }

    /// Publishes this member's name and URLs through the log (retried until it lands).
    pub fn spawn_publish(&self) {
        let node = self.clone();
        tokio::spawn(async move {
            let info = node.info().clone();
            let attrs = MemberAttributes {
                id: info.id,
                name: info.name.clone(),
                peer_urls: vec![info.peer_url.clone()],
                client_urls: info.client_urls.clone(),
            };
            loop {
                let current = node.inner.store.members().into_iter().find(|m| m.id == info.id);
                if current.as_ref() == Some(&attrs) {
                    return;
                }
                match node.propose(Op::Member(attrs.clone())).await {
                    Ok(_) => return,
                    Err(NodeError::Stopped) => return,
                    Err(e) => {
                        tracing::debug!(error = %e, "publishing member attributes; will retry");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            }
        });
    }

    /// Hands leadership to the most caught-up voter before stopping (graceful shutdown), so
    /// clients see no election timeout. Returns once leadership moved or after `within`.
    pub async fn step_down(&self, within: Duration) {
        let s = self.status();
        if s.leader != Some(self.inner.info.id) {
            return;
        }
        let Some((&to, _)) = s
            .progress
            .iter()
            .filter(|(id, _)| s.voters.contains(id) && **id != self.inner.info.id)
            .max_by_key(|(_, m)| **m)
        else {
            return;
        };
        match self.transfer_here(to, Instant::now() + within).await {
            Ok(()) => tracing::info!(to = format!("{to:x}"), "handed leadership over before stopping"),
            Err(e) => tracing::warn!(error = %e, "leadership transfer before stopping failed"),
        }
    }

    /// Asks the driver to stop.
    pub async fn stop(&self) {
        let _ = self.inner.inputs.send(Input::Stop).await;
    }

    /// Campaigns now (single-member clusters start faster; tests).
    pub fn campaign(&self) {
        let _ = self.submit(Input::Campaign);
    }

    /// What a probing member learns about this one.
    pub fn probe_reply(&self) -> ProbeReply {
        let s = self.status();
        ProbeReply {
            cluster_id: self.inner.info.cluster_id,
            member_id: self.inner.info.id,
            has_data: s.commit > kvorum_raft::BOOTSTRAP_INDEX,
            members: self.inner.store.members(),
            voters: s.voters.iter().copied().collect(),
            learners: s.learners.iter().copied().collect(),
        }
    }

    /// Serves a request from a peer, on this member only.
    pub async fn handle_peer(&self, req: PeerRequest) -> PeerReply {
        let result = match req.op {
            Some(peer_request::Op::Propose(cmd)) => self.propose_here(cmd).await.map(reply_from_response),
            Some(peer_request::Op::LeaseKeepalive(id)) => match self.ask(|reply| Input::LeaseRenew { id, reply }).await
            {
                Ok(Ok(ttl)) => Ok(peer_reply::Result::Ttl(ttl)),
                Ok(Err(RenewError::NotFound)) => Ok(peer_reply::Result::Ttl(0)),
                Ok(Err(RenewError::NotPrimary)) => Err(NodeError::NotLeader { leader: None }),
                Err(e) => Err(e),
            },
            Some(peer_request::Op::LeaseTtl(id)) => match self.ask(|reply| Input::LeaseRemaining { id, reply }).await {
                Ok((_, false)) => Err(NodeError::NotLeader { leader: None }),
                Ok((r, true)) => Ok(peer_reply::Result::Ttl(r.unwrap_or(-1))),
                Err(e) => Err(e),
            },
            Some(peer_request::Op::MemberChange(c)) => {
                if self.status().leader != Some(self.inner.info.id) {
                    Err(NodeError::NotLeader { leader: None })
                } else {
                    self.member_change_here(c).await.map(peer_reply::Result::MemberChange)
                }
            }
            Some(peer_request::Op::TransferLeader(to)) => {
                let deadline = self.deadline();
                self.transfer_here(to, deadline)
                    .await
                    .map(|_| peer_reply::Result::Done(Empty {}))
            }
            Some(peer_request::Op::Probe(Probe {})) => Ok(peer_reply::Result::Probe(self.probe_reply())),
            None => Err(NodeError::Invalid("empty peer request".into())),
        };
        PeerReply {
            result: Some(match result {
                Ok(r) => r,
                Err(e) => peer_reply::Result::Error(error_to_peer(&e)),
            }),
        }
    }
}

fn random_id() -> u64 {
    loop {
        let id = getrandom::u64().expect("the OS provides randomness");
        if id != 0 {
            return id;
        }
    }
}

/// Encodes a node error for a peer, keeping what makes it retryable.
pub fn error_to_peer(e: &NodeError) -> PeerError {
    PeerError {
        code: e.code() as i32,
        message: e.to_string(),
    }
}

fn error_from_peer(e: PeerError) -> NodeError {
    let message = e.message;
    if message.starts_with("etcdserver: not leader") {
        return NodeError::NotLeader { leader: None };
    }
    if message == NodeError::LeaderChanged.to_string() {
        return NodeError::LeaderChanged;
    }
    if message == NodeError::NoLeader.to_string() {
        return NodeError::NoLeader;
    }
    if message == MvccError::NoSpace.to_string() {
        return NodeError::Mvcc(MvccError::NoSpace);
    }
    NodeError::Remote {
        code: tonic::Code::from(e.code),
        message,
    }
}

fn error_from_reply(r: Option<peer_reply::Result>) -> NodeError {
    match r {
        Some(peer_reply::Result::Error(e)) => error_from_peer(e),
        _ => NodeError::Peer("unexpected peer reply".into()),
    }
}

fn reply_from_response(r: Response) -> peer_reply::Result {
    match r {
        Response::Put(p) => peer_reply::Result::Put(p),
        Response::DeleteRange(d) => peer_reply::Result::DeleteRange(d),
        Response::Txn(t) => peer_reply::Result::Txn(t),
        Response::Compaction(c) => peer_reply::Result::Compaction(c),
        Response::LeaseGrant(g) => peer_reply::Result::LeaseGrant(g),
        Response::LeaseRevoke(r) => peer_reply::Result::LeaseRevoke(r),
        Response::LeaseCheckpoint | Response::Member => peer_reply::Result::Done(Empty {}),
    }
}

fn response_from_reply(r: PeerReply) -> Result<Response, NodeError> {
    match r.result {
        Some(peer_reply::Result::Put(p)) => Ok(Response::Put(p)),
        Some(peer_reply::Result::DeleteRange(d)) => Ok(Response::DeleteRange(d)),
        Some(peer_reply::Result::Txn(t)) => Ok(Response::Txn(t)),
        Some(peer_reply::Result::Compaction(c)) => Ok(Response::Compaction(c)),
        Some(peer_reply::Result::LeaseGrant(g)) => Ok(Response::LeaseGrant(g)),
        Some(peer_reply::Result::LeaseRevoke(r)) => Ok(Response::LeaseRevoke(r)),
        Some(peer_reply::Result::Done(_)) => Ok(Response::Member),
        other => Err(error_from_reply(other)),
    }
}

fn ttl_from_reply(r: PeerReply) -> Result<i64, NodeError> {
    match r.result {
        Some(peer_reply::Result::Ttl(t)) => Ok(t),
        other => Err(error_from_reply(other)),
    }
}
