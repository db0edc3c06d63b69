//! The driver: one thread that owns the Raft core and its storage (a [`Replica`]) and turns
//! inputs into Readies.
//!
//! ```text
//!  ticks (timer) ─┐
//!  Input channel ─┼─► core ──► Replica::persist (fsync) ──► Outbound::send ──► Replica::apply
//!  (proposals,    │                                                               │
//!   peer msgs,    │       waiters by log index ◄── results ◄──────────────────────┘
//!   reads, …)    ─┘       reads by ReadId ◄── read states (served once applied)
//! ```
//!
//! Batching comes for free: while one Ready is being fsynced, proposals pile up in the input
//! channel, and the next Ready carries them all (group commit). The channel is bounded; a full
//! channel is back-pressure ("too many requests"), never unbounded memory.
//!
//! The driver runs on its own OS thread with a single-threaded tokio runtime, because storage
//! calls block (fsync): they must never stall the runtime that serves clients.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kvorum_raft::{ConfChange, Index, Message, MessageBody, NodeId, Role, SnapshotStatus, Term};
use prost::Message as _;
use tokio::sync::{mpsc, oneshot, watch};

use super::error::NodeError;
use super::metrics::Metrics;
use super::replica::{Applied, Replica, ReplicaError};
use crate::mvcc::{LeaseChange, Lessor, LessorConfig, Millis, MvccError, RenewError, Response, SnapshotReader, Store};
use crate::proto::etcdserverpb::{CompactionRequest, LeaseCheckpointRequest, LeaseRevokeRequest};
use crate::proto::kvorum::internal::{Command, command::Op};
use crate::storage::RedbLogStore;

/// Where the driver's outgoing messages go (the peer transport, or a test network).
pub trait Outbound: Send + Sync {
    /// Queues messages for their recipients. Never blocks; may drop (Raft retries).
    fn send(&self, msgs: Vec<Message>);
    /// Streams a snapshot to `msg.to`, then delivers `msg`. Reports the outcome as
    /// [`Input::SnapshotReport`].
    fn send_snapshot(&self, msg: Message, snapshot: SnapshotReader);
}

/// A request to the driver.
pub enum Input {
    /// Replicate a command; the reply comes once it is applied.
    Propose {
        /// Encoded [`Command`].
        data: Bytes,
        /// Where the result goes.
        reply: oneshot::Sender<Result<Response, NodeError>>,
    },
    /// Change membership; the reply comes once the change is applied.
    ConfChange {
        /// The change.
        change: ConfChange,
        /// Where the result goes.
        reply: oneshot::Sender<Result<(), NodeError>>,
    },
    /// A linearizable read barrier: replies once this member has applied everything committed
    /// when the request arrived.
    ReadIndex {
        /// Where the result goes.
        reply: oneshot::Sender<Result<(), NodeError>>,
    },
    /// Hand leadership to another voter.
    Transfer {
        /// The new leader.
        to: NodeId,
        /// Where the result goes (once the transfer started).
        reply: oneshot::Sender<Result<(), NodeError>>,
    },
    /// A keepalive.
    LeaseRenew {
        /// The lease.
        id: i64,
        /// New TTL, or why not.
        reply: oneshot::Sender<Result<i64, RenewError>>,
    },
    /// Remaining TTL of a lease on this member's clock.
    LeaseRemaining {
        /// The lease.
        id: i64,
        /// Remaining seconds, `None` if unknown; and whether this member is primary.
        reply: oneshot::Sender<(Option<i64>, bool)>,
    },
    /// A message from a peer.
    Peer(Message),
    /// A snapshot from the leader, fully received, and the message that announced it.
    PeerSnapshot {
        /// The InstallSnapshot message.
        msg: Message,
        /// The snapshot data.
        data: Box<dyn Read + Send>,
    },
    /// The transport finished streaming a snapshot.
    SnapshotReport {
        /// Recipient.
        to: NodeId,
        /// Outcome.
        status: SnapshotStatus,
    },
    /// The transport could not reach a peer.
    Unreachable(NodeId),
    /// Start campaigning now (used by tests and single-member clusters).
    Campaign,
    /// Stop the driver.
    Stop,
}

/// What the driver tells the rest of the node after every Ready.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeStatus {
    /// This member.
    pub id: NodeId,
    /// Its role.
    pub role: Option<Role>,
    /// Current term.
    pub term: Term,
    /// The leader it follows, if any.
    pub leader: Option<NodeId>,
    /// Commit index.
    pub commit: Index,
    /// Applied index.
    pub applied: Index,
    /// Last log index.
    pub last_index: Index,
    /// Voting members.
    pub voters: BTreeSet<NodeId>,
    /// Learners.
    pub learners: BTreeSet<NodeId>,
    /// Leader only: every other member's match index.
    pub progress: BTreeMap<NodeId, Index>,
    /// Leader changes seen since start.
    pub leader_changes: u64,
    /// The driver stopped (after a fatal error or a stop request).
    pub stopped: bool,
}

/// Tunables of the driver.
#[derive(Clone, Debug)]
pub struct DriverConfig {
    /// Length of a tick.
    pub tick: Duration,
    /// Applied entries between log compactions.
    pub snapshot_count: u64,
    /// The minimum election timeout (lease grace on a new leader).
    pub election_timeout: Duration,
    /// Revisions kept by automatic compaction (0: off).
    pub auto_compaction_revisions: i64,
    /// Snapshot chunk size for the transport.
    pub snapshot_chunk_bytes: usize,
}

enum Waiter {
    Command(oneshot::Sender<Result<Response, NodeError>>),
    ConfChange(oneshot::Sender<Result<(), NodeError>>),
    /// A lease revocation the driver proposed itself.
    Internal,
}

enum ReadWaiter {
    Client(oneshot::Sender<Result<(), NodeError>>),
    /// The driver's own leadership check for lease expiry, started at this time.
    LeaseCheck(Millis),
}

/// The driver's state. Create with [`Driver::new`], run with [`Driver::run`].
pub struct Driver {
    replica: Replica<RedbLogStore>,
    store: Arc<Store>,
    inputs: mpsc::Receiver<Input>,
    outbound: Arc<dyn Outbound>,
    status: watch::Sender<NodeStatus>,
    metrics: Arc<Metrics>,
    cfg: DriverConfig,
    lessor: Lessor,
    epoch: Instant,
    proposals: HashMap<Index, (Term, Waiter)>,
    reads: HashMap<u64, ReadWaiter>,
    /// Reads confirmed by the leader, waiting for this member to apply their index.
    confirmed_reads: BTreeMap<Index, Vec<ReadWaiter>>,
    next_read_id: u64,
    lease_check_in_flight: bool,
    last_lease_check: Millis,
    revoking: HashSet<i64>,
    was_leader: bool,
    last_leader: Option<NodeId>,
    leader_changes: u64,
    last_auto_compaction: Millis,
    last_db_compaction: Millis,
}

impl Driver {
    /// A driver for `replica`. Inputs arrive on `inputs`; status goes to `status`.
    pub fn new(
        replica: Replica<RedbLogStore>,
        inputs: mpsc::Receiver<Input>,
        outbound: Arc<dyn Outbound>,
        status: watch::Sender<NodeStatus>,
        metrics: Arc<Metrics>,
        cfg: DriverConfig,
    ) -> Driver {
        let store = replica.store().clone();
        let lessor = Lessor::new(LessorConfig::default(), store.leases());
        Driver {
            replica,
            store,
            inputs,
            outbound,
            status,
            metrics,
            cfg,
            lessor,
            epoch: Instant::now(),
            proposals: HashMap::new(),
            reads: HashMap::new(),
            confirmed_reads: BTreeMap::new(),
            next_read_id: 1,
            lease_check_in_flight: false,
            last_lease_check: 0,
            revoking: HashSet::new(),
            was_leader: false,
            last_leader: None,
            leader_changes: 0,
            last_auto_compaction: 0,
            last_db_compaction: 0,
        }
    }

    fn now(&self) -> Millis {
        self.epoch.elapsed().as_millis() as Millis
    }

    /// Runs until stopped or a fatal storage error. Blocking: call on a dedicated thread.
    pub fn run(mut self) -> Result<(), ReplicaError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread runtime builds");
        let result = rt.block_on(async {
            let mut ticker = tokio::time::interval(self.cfg.tick);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    biased;
                    _ = ticker.tick() => self.on_tick(),
                    input = self.inputs.recv() => {
                        let Some(input) = input else { break };
                        if !self.handle(input) {
                            break;
                        }
                        // Take whatever else is queued: it all goes into the next Ready.
                        let mut more = 0;
                        while more < 4096 {
                            match self.inputs.try_recv() {
                                Ok(input) => {
                                    more += 1;
                                    if !self.handle(input) {
                                        return Ok(());
                                    }
                                }
                                Err(_) => break,
                            }
                        }
                    }
                }
                self.process()?;
            }
            Ok(())
        });
        self.fail_all(NodeError::Stopped);
        self.status.send_modify(|s| s.stopped = true);
        if let Err(e) = &result {
            tracing::error!(error = %e, "the driver stopped on a storage failure");
        }
        result
    }

    /// Handles one input; false means stop.
    fn handle(&mut self, input: Input) -> bool {
        match input {
            Input::Propose { data, reply } => match self.replica.raft().propose(data) {
                Ok(p) => {
                    self.proposals.insert(p.index, (p.term, Waiter::Command(reply)));
                }
                Err(e) => {
                    let _ = reply.send(Err(raft_error(e)));
                }
            },
            Input::ConfChange { change, reply } => match self.replica.raft().propose_conf_change(change) {
                Ok(p) => {
                    self.proposals.insert(p.index, (p.term, Waiter::ConfChange(reply)));
                }
                Err(e) => {
                    let _ = reply.send(Err(raft_error(e)));
                }
            },
            Input::ReadIndex { reply } => self.read_index(ReadWaiter::Client(reply)),
            Input::Transfer { to, reply } => {
                let _ = reply.send(self.replica.raft().transfer_leader(to).map_err(raft_error));
            }
            Input::LeaseRenew { id, reply } => {
                let now = self.now();
                let _ = reply.send(self.lessor.renew(id, now));
            }
            Input::LeaseRemaining { id, reply } => {
                let now = self.now();
                let _ = reply.send((self.lessor.remaining(id, now), self.lessor.is_primary()));
            }
            Input::Peer(msg) => self.replica.raft().step(msg),
            Input::PeerSnapshot { msg, data } => {
                let mut buf = Vec::new();
                let mut data = data;
                match data.read_to_end(&mut buf) {
                    Ok(_) => {
                        self.replica.stage_snapshot(buf);
                        self.replica.raft().step(msg);
                    }
                    Err(e) => tracing::warn!(error = %e, "could not read a received snapshot"),
                }
            }
            Input::SnapshotReport { to, status } => self.replica.raft().report_snapshot(to, status),
            Input::Unreachable(to) => self.replica.raft().report_unreachable(to),
            Input::Campaign => self.replica.raft().campaign_now(),
            Input::Stop => return false,
        }
        true
    }

    fn read_index(&mut self, waiter: ReadWaiter) {
        let id = self.next_read_id;
        self.next_read_id += 1;
        self.reads.insert(id, waiter);
        self.replica.raft().read_index(id);
    }

    fn on_tick(&mut self) {
        self.replica.raft().tick();
        let now = self.now();
        self.lessor.tick(now);
        if self.replica.raft_ref().role() == Role::Leader {
            self.lease_duties(now);
            self.auto_compact(now);
        }
        self.maintenance(now);
    }

    /// Leader: confirm leadership, then revoke what expired before the confirmation; and
    /// checkpoint remaining TTLs.
    fn lease_duties(&mut self, now: Millis) {
        if self.lessor.is_empty() {
            return;
        }
        if !self.lease_check_in_flight && now >= self.last_lease_check + 250 {
            self.lease_check_in_flight = true;
            self.last_lease_check = now;
            self.read_index(ReadWaiter::LeaseCheck(now));
        }
        let checkpoints = self.lessor.checkpoints(now);
        if !checkpoints.is_empty() {
            self.propose_internal(Op::LeaseCheckpoint(LeaseCheckpointRequest { checkpoints }));
        }
    }

    fn on_leadership_confirmed(&mut self, started_at: Millis) {
        for id in self.lessor.expired(started_at) {
            if self.revoking.insert(id) {
                tracing::info!(lease = id, "lease expired; revoking");
                self.propose_internal(Op::LeaseRevoke(LeaseRevokeRequest { id }));
            }
        }
    }

    fn auto_compact(&mut self, now: Millis) {
        let keep = self.cfg.auto_compaction_revisions;
        if keep <= 0 || now < self.last_auto_compaction + 5_000 {
            return;
        }
        self.last_auto_compaction = now;
        let (current, compacted) = (self.store.current_revision(), self.store.compact_revision());
        // Compact in steps of a tenth of the retention, not on every new revision.
        let target = current - keep;
        if target > compacted + (keep / 10).max(1) {
            self.propose_internal(Op::Compaction(CompactionRequest {
                revision: target,
                physical: false,
            }));
        }
    }

    /// Purge dead history rows a little at a time; compact the file when half of it is free.
    fn maintenance(&mut self, now: Millis) {
        if self.store.purge_backlog() > 0
            && let Err(e) = self.store.purge(5_000)
        {
            tracing::error!(error = %e, "purging compacted history failed");
        }
        if now >= self.last_db_compaction + 300_000 {
            self.last_db_compaction = now;
            match self.store.db().compact_if_fragmented(64 << 20, 0.5) {
                Ok(Some(r)) => {
                    tracing::info!(
                        pause_ms = r.pause.as_millis() as u64,
                        before = r.file_bytes_before,
                        after = r.file_bytes_after,
                        "compacted the database file"
                    );
                    self.metrics.db_compaction_pause.observe(r.pause.as_secs_f64());
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "database compaction failed"),
            }
        }
    }

    fn propose_internal(&mut self, op: Op) {
        let data = Command { op: Some(op) }.encode_to_vec();
        if let Ok(p) = self.replica.raft().propose(data.into()) {
            self.proposals.insert(p.index, (p.term, Waiter::Internal));
        }
    }

    /// Carries out every pending Ready.
    fn process(&mut self) -> Result<(), ReplicaError> {
        let started = Instant::now();
        let mut any = false;
        while let Some(mut persisted) = {
            let t = Instant::now();
            let p = self.replica.persist()?;
            if p.is_some() {
                self.metrics.fsync_seconds.observe(t.elapsed().as_secs_f64());
            }
            p
        } {
            any = true;
            let messages = std::mem::take(&mut persisted.messages);
            self.dispatch(messages);
            let applied = self.replica.apply(persisted)?;
            self.on_applied(applied);
        }
        if any {
            self.metrics.ready_seconds.observe(started.elapsed().as_secs_f64());
            self.replica.maybe_compact(self.cfg.snapshot_count)?;
        }
        self.after_ready();
        Ok(())
    }

    fn dispatch(&mut self, messages: Vec<Message>) {
        let mut plain = Vec::with_capacity(messages.len());
        for msg in messages {
            if matches!(msg.body, MessageBody::InstallSnapshot { .. }) {
                match self.store.snapshot(self.cfg.snapshot_chunk_bytes) {
                    Ok(reader) => self.outbound.send_snapshot(msg, reader),
                    Err(e) => {
                        tracing::error!(error = %e, "cannot read a snapshot to send");
                        self.replica.raft().report_snapshot(msg.to, SnapshotStatus::Failed);
                    }
                }
            } else {
                plain.push(msg);
            }
        }
        if !plain.is_empty() {
            self.metrics.messages_sent.inc_by(plain.len() as u64);
            self.outbound.send(plain);
        }
    }

    fn on_applied(&mut self, applied: Applied) {
        let now = self.now();
        let mut results: HashMap<Index, Result<Response, MvccError>> = applied.output.results.into_iter().collect();
        for (index, term) in &applied.entries {
            let Some((want_term, waiter)) = self.proposals.remove(index) else {
                continue;
            };
            let ours = want_term == *term;
            match waiter {
                Waiter::Command(reply) => {
                    let result = if ours {
                        match results.remove(index) {
                            Some(r) => r.map_err(NodeError::Mvcc),
                            None => Err(NodeError::LeaderChanged),
                        }
                    } else {
                        Err(NodeError::LeaderChanged)
                    };
                    let _ = reply.send(result);
                }
                Waiter::ConfChange(reply) => {
                    let _ = reply.send(if ours { Ok(()) } else { Err(NodeError::LeaderChanged) });
                }
                Waiter::Internal => {}
            }
        }
        // Proposals at indexes below what was applied and never seen were overwritten.
        if let Some((last, _)) = applied.entries.last() {
            let stale: Vec<Index> = self.proposals.keys().filter(|i| *i <= last).copied().collect();
            for i in stale {
                self.fail_proposal(i, NodeError::LeaderChanged);
            }
        }
        for change in applied.output.lease_changes {
            if let LeaseChange::Revoked { id } = change {
                self.revoking.remove(&id);
            }
            self.lessor.apply(change, now);
        }
        if applied.installed_snapshot.is_some() {
            self.lessor = Lessor::new(LessorConfig::default(), self.store.leases());
            self.revoking.clear();
        }
        for rs in applied.read_states {
            if let Some(w) = self.reads.remove(&rs.id) {
                self.confirmed_reads.entry(rs.index).or_default().push(w);
            }
        }
        for id in applied.dropped_reads {
            match self.reads.remove(&id) {
                Some(ReadWaiter::Client(reply)) => {
                    let _ = reply.send(Err(NodeError::LeaderChanged));
                }
                Some(ReadWaiter::LeaseCheck(_)) => self.lease_check_in_flight = false,
                None => {}
            }
        }
        self.serve_reads();
    }

    fn serve_reads(&mut self) {
        let applied = self.store.applied_index();
        let ready: Vec<Index> = self.confirmed_reads.range(..=applied).map(|(i, _)| *i).collect();
        for index in ready {
            for w in self.confirmed_reads.remove(&index).unwrap_or_default() {
                match w {
                    ReadWaiter::Client(reply) => {
                        let _ = reply.send(Ok(()));
                    }
                    ReadWaiter::LeaseCheck(started) => {
                        self.lease_check_in_flight = false;
                        self.on_leadership_confirmed(started);
                    }
                }
            }
        }
    }

    fn fail_proposal(&mut self, index: Index, err: NodeError) {
        match self.proposals.remove(&index) {
            Some((_, Waiter::Command(reply))) => {
                let _ = reply.send(Err(err));
            }
            Some((_, Waiter::ConfChange(reply))) => {
                let _ = reply.send(Err(err));
            }
            _ => {}
        }
    }

    fn fail_all(&mut self, err: NodeError) {
        let indexes: Vec<Index> = self.proposals.keys().copied().collect();
        for i in indexes {
            self.fail_proposal(i, NodeError::Stopped);
        }
        for (_, w) in self.reads.drain() {
            if let ReadWaiter::Client(reply) = w {
                let _ = reply.send(Err(NodeError::Stopped));
            }
        }
        for (_, ws) in std::mem::take(&mut self.confirmed_reads) {
            for w in ws {
                if let ReadWaiter::Client(reply) = w {
                    let _ = reply.send(Err(NodeError::Stopped));
                }
            }
        }
        drop(err);
    }

    /// Role changes (lease clock ownership) and the status everyone else reads.
    fn after_ready(&mut self) {
        let raft = self.replica.raft_ref();
        let role = raft.role();
        let leader = raft.leader();
        let is_leader = role == Role::Leader;
        if is_leader && !self.was_leader {
            let grace = self.cfg.election_timeout.as_millis() as Millis;
            let now = self.now();
            self.lessor.promote(now, grace);
            self.last_lease_check = now;
        } else if !is_leader && self.was_leader {
            self.lessor.demote();
            self.revoking.clear();
            self.lease_check_in_flight = false;
        }
        self.was_leader = is_leader;
        if leader.is_some() && leader != self.last_leader {
            self.leader_changes += 1;
            self.metrics.leader_changes.inc();
        }
        self.last_leader = leader;
        let raft = self.replica.raft_ref();
        let progress = if is_leader {
            raft.progress().iter().map(|(id, p)| (*id, p.match_index)).collect()
        } else {
            BTreeMap::new()
        };
        let next = NodeStatus {
            id: raft.id(),
            role: Some(role),
            term: raft.term(),
            leader,
            commit: raft.log().committed(),
            applied: raft.log().applied(),
            last_index: raft.log().last_index(),
            voters: raft.conf().voters.clone(),
            learners: raft.conf().learners.clone(),
            progress,
            leader_changes: self.leader_changes,
            stopped: false,
        };
        self.metrics.observe_status(&next);
        self.status.send_if_modified(|s| {
            if *s != next {
                *s = next;
                true
            } else {
                false
            }
        });
    }
}

fn raft_error(e: kvorum_raft::RaftError) -> NodeError {
    match e {
        kvorum_raft::RaftError::NotLeader { leader } => NodeError::NotLeader { leader },
        other => NodeError::Raft(other),
    }
}
