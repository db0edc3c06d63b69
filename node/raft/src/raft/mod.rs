//! The Raft state machine of one node: roles, terms, and the driver-facing API.
//!
//! Inputs change state and queue outputs; [`Raft::ready`] hands the outputs over. Handlers live
//! in one file per concern: `election`, `replication`, `snapshot`, `membership`, `transfer`,
//! `read`.

mod election;
mod membership;
mod read;
mod replication;
mod snapshot;
mod transfer;

use std::collections::BTreeMap;

use rand_core::Rng;

use crate::config::{Config, ConfigError};
use crate::log::RaftLog;
use crate::membership::ConfHistory;
use crate::message::{Message, MessageBody};
use crate::progress::Progress;
use crate::ready::{Ready, ReadyAck};
use crate::types::{ConfState, HardState, Index, NodeId, PersistedState, SnapshotMeta, Term};

pub use read::ReadQueue;
pub use snapshot::{Compaction, SnapshotStatus};
use transfer::Transfer;

/// The role a node plays in its current term (§5.1, plus the pre-vote phase of §9.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Follows a leader, or waits for one.
    Follower,
    /// Asks whether it could win before disturbing anyone's term.
    PreCandidate,
    /// Campaigns in a new term.
    Candidate,
    /// Leads its term.
    Leader,
}

/// Where a proposal landed in the log. The entry is durable and applied only once it shows up
/// in [`Ready::committed_entries`] with the same term.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Proposed {
    /// Log index of the new entry.
    pub index: Index,
    /// Term it was proposed in.
    pub term: Term,
}

/// A Raft node's consensus state. See the crate docs for how to drive it.
pub struct Raft {
    cfg: Config,
    rng: Box<dyn Rng + Send>,
    /// Current term. Persistent; never decreases.
    term: Term,
    /// Vote in `term`. Persistent.
    vote: Option<NodeId>,
    log: RaftLog,
    confs: ConfHistory,
    role: Role,
    /// The leader of `term`, when known.
    leader: Option<NodeId>,
    /// Ticks since the last valid leader contact (followers) or the last CheckQuorum (leader).
    election_elapsed: u32,
    heartbeat_elapsed: u32,
    /// Drawn from `[min, max)` each time the timer resets, so split votes do not repeat.
    randomized_election_timeout: u32,
    /// Votes received in the current campaign: granted or not.
    votes: BTreeMap<NodeId, bool>,
    /// Leader only: every other member's replication progress.
    progress: BTreeMap<NodeId, Progress>,
    transfer: Option<Transfer>,
    /// Leader only: bytes of this term's entries not yet committed.
    uncommitted_bytes: u64,
    reads: ReadQueue,
    msgs: Vec<Message>,
    /// The hard state last handed out in a Ready.
    persisted_hard_state: HardState,
    snapshot_to_install: Option<SnapshotMeta>,
    awaiting_ack: bool,
}

impl Raft {
    /// Creates a node from what it persisted (or a bootstrap state, see
    /// [`PersistedState::bootstrap`]). `rng` drives election jitter; seed it for reproducibility.
    pub fn new(cfg: Config, state: PersistedState, rng: Box<dyn Rng + Send>) -> Result<Raft, ConfigError> {
        cfg.validate()?;
        let PersistedState {
            hard_state,
            snapshot,
            entries,
            applied,
        } = state;
        let mut confs = ConfHistory::new(snapshot.index, snapshot.conf.clone());
        for e in entries.iter().filter(|e| e.index > snapshot.index) {
            if let crate::types::EntryPayload::ConfChange(cc) = &e.payload {
                confs.push(e.index, *cc);
            }
        }
        let log = RaftLog::restore(snapshot, entries, hard_state.commit, applied);
        let mut raft = Raft {
            term: hard_state.term,
            vote: hard_state.vote,
            log,
            confs,
            role: Role::Follower,
            leader: None,
            election_elapsed: 0,
            heartbeat_elapsed: 0,
            randomized_election_timeout: cfg.election_timeout_min_ticks,
            votes: BTreeMap::new(),
            progress: BTreeMap::new(),
            transfer: None,
            uncommitted_bytes: 0,
            reads: ReadQueue::default(),
            msgs: Vec::new(),
            persisted_hard_state: hard_state,
            snapshot_to_install: None,
            awaiting_ack: false,
            cfg,
            rng,
        };
        raft.reset_election_timer();
        Ok(raft)
    }

    // ---- inspection ----

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.cfg.id
    }
    /// Current term.
    pub fn term(&self) -> Term {
        self.term
    }
    /// Vote cast in the current term.
    pub fn vote(&self) -> Option<NodeId> {
        self.vote
    }
    /// Current role.
    pub fn role(&self) -> Role {
        self.role
    }
    /// The leader this node knows of in its term.
    pub fn leader(&self) -> Option<NodeId> {
        self.leader
    }
    /// The log.
    pub fn log(&self) -> &RaftLog {
        &self.log
    }
    /// The configuration in force (the latest one in the log).
    pub fn conf(&self) -> &ConfState {
        self.confs.current()
    }
    /// The configuration's history, for checking snapshots.
    pub fn conf_at(&self, index: Index) -> &ConfState {
        self.confs.at(index)
    }
    /// Leader only: progress of each other member.
    pub fn progress(&self) -> &BTreeMap<NodeId, Progress> {
        &self.progress
    }
    /// The member leadership is being transferred to, if any.
    pub fn transfer_target(&self) -> Option<NodeId> {
        self.transfer.as_ref().map(|t| t.target)
    }
    /// The configuration this node was created with.
    pub fn config(&self) -> &Config {
        &self.cfg
    }
    /// The hard state as it is now (persisted or about to be).
    pub fn hard_state(&self) -> HardState {
        HardState {
            term: self.term,
            vote: self.vote,
            commit: self.log.committed(),
        }
    }
    /// Leader only: bytes of uncommitted entries of this term.
    pub fn uncommitted_bytes(&self) -> u64 {
        self.uncommitted_bytes
    }

    // ---- the driver loop ----

    /// Advances logical time by one tick.
    pub fn tick(&mut self) {
        match self.role {
            Role::Leader => self.tick_leader(),
            _ => self.tick_election(),
        }
    }

    /// Starts an election now, as if the election timer had fired (pre-vote first when
    /// enabled). Does nothing on a leader or a non-voter.
    pub fn campaign_now(&mut self) {
        if self.role != Role::Leader && self.promotable() {
            self.start_election();
        }
    }

    /// Whether [`Raft::ready`] has work to hand out.
    pub fn has_ready(&self) -> bool {
        if self.awaiting_ack {
            return false;
        }
        self.snapshot_to_install.is_some()
            || self.log.has_unstable()
            || self.hard_state() != self.persisted_hard_state
            || !self.msgs.is_empty()
            || self.log.has_committed()
            || self.reads.has_output()
            || (self.role == Role::Leader && (self.reads.has_unscheduled() || self.has_appends_to_send()))
    }

    /// Hands out the pending work. Carry it out as the [`crate::ready`] module says, then call
    /// [`Raft::advance`] before the next `ready`.
    pub fn ready(&mut self) -> Ready {
        assert!(
            !self.awaiting_ack,
            "node {}: ready() called before advance() of the previous Ready",
            self.cfg.id
        );
        if self.role == Role::Leader {
            self.flush_reads();
            self.flush_appends();
        }
        let hard_state = self.hard_state();
        let changed = hard_state != self.persisted_hard_state;
        self.persisted_hard_state = hard_state;
        let (read_states, dropped_reads) = self.reads.take_output();
        let ready = Ready {
            snapshot: self.snapshot_to_install.take(),
            entries: self.log.take_unstable(),
            hard_state: changed.then_some(hard_state),
            messages: std::mem::take(&mut self.msgs),
            committed_entries: self.log.take_committed(),
            read_states,
            dropped_reads,
        };
        self.awaiting_ack = true;
        ready
    }

    /// Acknowledges that the last [`Ready`] was carried out.
    pub fn advance(&mut self, ack: ReadyAck) {
        self.awaiting_ack = false;
        if let Some(index) = ack.snapshot_index {
            self.log.snapshot_installed(index);
        }
        if let Some((index, term)) = ack.last_entry {
            self.log.stable_to(index, term);
        }
        if ack.applied {
            self.log.applied_to_handed_out();
        }
        if self.role == Role::Leader {
            self.maybe_commit();
        }
    }

    /// Feeds a message from a peer. Messages addressed elsewhere, or failing
    /// [`Message::validate`], are dropped: a faulty peer must not crash this node.
    pub fn step(&mut self, m: Message) {
        if m.to != self.cfg.id || m.from == self.cfg.id || m.validate().is_err() {
            return;
        }
        if m.term > self.term {
            if !self.on_higher_term(&m) {
                return;
            }
        } else if m.term < self.term {
            self.on_lower_term(&m);
            return;
        }
        self.dispatch(m);
    }

    /// A message from a later term. Returns whether to go on handling it.
    fn on_higher_term(&mut self, m: &Message) -> bool {
        match &m.body {
            MessageBody::RequestVote { pre_vote, transfer, .. } => {
                if !transfer && self.in_leader_lease() {
                    // §4.2.3: a current leader is known; a disruptive (possibly removed) server
                    // must not make it step down.
                    return false;
                }
                if !pre_vote {
                    self.become_follower(m.term, None);
                }
            }
            // A granted pre-vote carries the term the candidate would use; nobody moves there yet.
            MessageBody::RequestVoteResponse {
                pre_vote: true,
                granted: true,
            } => {}
            MessageBody::AppendEntries { .. } | MessageBody::Heartbeat { .. } | MessageBody::InstallSnapshot { .. } => {
                self.become_follower(m.term, Some(m.from));
            }
            _ => self.become_follower(m.term, None),
        }
        true
    }

    /// A message from an earlier term: answer just enough to move the sender forward.
    fn on_lower_term(&mut self, m: &Message) {
        match &m.body {
            // A stale leader (e.g. one that was partitioned away) learns the new term from the
            // reply and steps down; without this, CheckQuorum + PreVote can leave it stranded.
            MessageBody::AppendEntries { .. } | MessageBody::Heartbeat { .. } => {
                self.send(m.from, MessageBody::AppendEntriesResponse { index: 0, reject: None });
            }
            // A node with a stale term (e.g. restarted) learns the current term from the
            // rejection (canonical/raft#279, openraft d6a6d562).
            MessageBody::RequestVote { pre_vote: true, .. } => {
                self.send(
                    m.from,
                    MessageBody::RequestVoteResponse {
                        pre_vote: true,
                        granted: false,
                    },
                );
            }
            _ => {}
        }
    }

    fn dispatch(&mut self, m: Message) {
        let from = m.from;
        let term = m.term;
        match m.body {
            MessageBody::RequestVote {
                pre_vote,
                last_log_index,
                last_log_term,
                ..
            } => self.on_request_vote(from, term, pre_vote, last_log_index, last_log_term),
            MessageBody::RequestVoteResponse { pre_vote, granted } => self.on_vote_response(from, pre_vote, granted),
            MessageBody::AppendEntries {
                prev_log_index,
                prev_log_term,
                entries,
                leader_commit,
            } => {
                if self.accept_leader(from) {
                    self.on_append_entries(from, prev_log_index, prev_log_term, entries, leader_commit);
                }
            }
            MessageBody::AppendEntriesResponse { index, reject } => {
                if self.role == Role::Leader {
                    self.on_append_response(from, index, reject);
                }
            }
            MessageBody::Heartbeat { commit, read_round } => {
                if self.accept_leader(from) {
                    self.on_heartbeat(from, commit, read_round);
                }
            }
            MessageBody::HeartbeatResponse { read_round } => {
                if self.role == Role::Leader {
                    self.on_heartbeat_response(from, read_round);
                }
            }
            MessageBody::InstallSnapshot { snapshot } => {
                if self.accept_leader(from) {
                    self.on_install_snapshot(from, snapshot);
                }
            }
            MessageBody::TimeoutNow => self.on_timeout_now(),
            MessageBody::ReadIndex { id } => self.on_read_index_request(from, id),
            MessageBody::ReadIndexResponse { id, index } => self.reads.on_response(id, index),
        }
    }

    /// A leader's message in our term: candidates give up (§5.2), everyone resets the timer.
    /// A leader never gets one from a correct peer (one leader per term); it ignores it rather
    /// than let a faulty peer take it down.
    fn accept_leader(&mut self, from: NodeId) -> bool {
        match self.role {
            Role::Leader => return false,
            Role::Candidate | Role::PreCandidate => self.become_follower(self.term, Some(from)),
            Role::Follower => self.leader = Some(from),
        }
        self.election_elapsed = 0;
        true
    }

    // ---- role transitions ----

    fn become_follower(&mut self, term: Term, leader: Option<NodeId>) {
        assert!(term >= self.term);
        if term > self.term {
            self.term = term;
            self.vote = None;
        }
        if self.role == Role::Leader {
            self.reads.drop_all();
        }
        self.role = Role::Follower;
        self.leader = leader;
        self.progress.clear();
        self.transfer = None;
        self.uncommitted_bytes = 0;
        self.reset_election_timer();
    }

    fn become_leader(&mut self) {
        assert!(
            matches!(self.role, Role::Candidate),
            "only a candidate can become leader"
        );
        self.role = Role::Leader;
        self.leader = Some(self.cfg.id);
        self.heartbeat_elapsed = 0;
        self.election_elapsed = 0;
        self.reads.reset_rounds();
        self.sync_progress_with_conf();
        // §5.4.2: a no-op opens the term so entries of earlier terms can commit.
        self.append_entry(crate::types::EntryPayload::Noop);
    }

    fn reset_election_timer(&mut self) {
        self.election_elapsed = 0;
        let span = u64::from(self.cfg.election_timeout_max_ticks - self.cfg.election_timeout_min_ticks);
        self.randomized_election_timeout = self.cfg.election_timeout_min_ticks + (self.rng.next_u64() % span) as u32;
    }

    /// The election timeout currently drawn (for tests of the randomization).
    pub fn randomized_election_timeout(&self) -> u32 {
        self.randomized_election_timeout
    }

    /// Whether this node may campaign: voters, and a voter whose removal is not committed yet.
    ///
    /// The second case matters for liveness (thesis §4.2.2: a removed leader "may still time
    /// out and become leader again"). With voters {A, B}, A appends "remove A" and loses
    /// leadership before B receives it: B still counts A's vote, and A holds the longer log, so
    /// only A can win. A campaigns in its latest configuration ({B}), commits the removal, then
    /// steps down. Learners never campaign.
    fn promotable(&self) -> bool {
        let id = self.cfg.id;
        if self.confs.current().voters.contains(&id) {
            return true;
        }
        let change = self.confs.last_change_index();
        change > self.log.committed() && self.confs.at(change - 1).voters.contains(&id)
    }

    fn tick_election(&mut self) {
        self.election_elapsed = self.election_elapsed.saturating_add(1);
        if self.election_elapsed < self.randomized_election_timeout {
            return;
        }
        if self.promotable() {
            self.election_elapsed = 0;
            self.start_election();
        } else {
            // Silent for a whole timeout: the leader is gone as far as we know. Keep counting,
            // so the §4.2.3 lease lapses and this node answers others' vote requests.
            self.leader = None;
        }
    }

    fn tick_leader(&mut self) {
        self.heartbeat_elapsed += 1;
        self.election_elapsed += 1;
        if self.election_elapsed >= self.cfg.election_timeout_min_ticks {
            self.election_elapsed = 0;
            if self.cfg.check_quorum && !self.quorum_recently_active() {
                // §6.2: clients of a leader that cannot reach a quorum should go elsewhere.
                self.become_follower(self.term, None);
                return;
            }
        }
        self.tick_transfer();
        if self.heartbeat_elapsed >= self.cfg.heartbeat_interval_ticks {
            self.heartbeat_elapsed = 0;
            self.broadcast_heartbeat();
        }
    }

    /// CheckQuorum: whether a quorum was heard from since the last check; resets the marks.
    fn quorum_recently_active(&mut self) -> bool {
        let conf = self.confs.current();
        let mut active = usize::from(conf.voters.contains(&self.cfg.id));
        for (id, pr) in self.progress.iter_mut() {
            if pr.recent_active && conf.voters.contains(id) {
                active += 1;
            }
            pr.recent_active = false;
        }
        active >= conf.quorum()
    }

    fn send(&mut self, to: NodeId, body: MessageBody) {
        self.msgs.push(Message {
            from: self.cfg.id,
            to,
            term: self.term,
            body,
        });
    }

    /// Peers (members other than this node) of the current configuration.
    fn peers(&self) -> Vec<NodeId> {
        let id = self.cfg.id;
        self.confs.current().members().filter(|&p| p != id).collect()
    }

    /// Leader only: the highest index replicated on a quorum of voters.
    fn quorum_match_index(&self) -> Index {
        let conf = self.confs.current();
        let mut matched: Vec<Index> = conf
            .voters
            .iter()
            .map(|v| {
                if *v == self.cfg.id {
                    self.log.stable()
                } else {
                    self.progress.get(v).map_or(0, |p| p.match_index)
                }
            })
            .collect();
        if matched.is_empty() {
            return 0;
        }
        matched.sort_unstable_by(|a, b| b.cmp(a));
        matched[conf.quorum() - 1]
    }
}

impl PersistedState {
    /// The state of a founding member of a new cluster whose initial voters are `voters`.
    ///
    /// The initial configuration is recorded as a snapshot of the empty state machine at index
    /// 1 (term 0), so it is part of the replicated history: a member that joins later starts
    /// from [`PersistedState::default`] (no configuration, so it never campaigns) and receives
    /// the configuration with that snapshot, instead of replaying a log that never mentions it.
    pub fn bootstrap(voters: impl IntoIterator<Item = NodeId>) -> Self {
        PersistedState {
            hard_state: HardState {
                term: 0,
                vote: None,
                commit: BOOTSTRAP_INDEX,
            },
            snapshot: SnapshotMeta {
                index: BOOTSTRAP_INDEX,
                term: 0,
                conf: ConfState::with_voters(voters),
            },
            entries: Vec::new(),
            applied: BOOTSTRAP_INDEX,
        }
    }
}

/// Index of the bootstrap snapshot that holds a new cluster's initial configuration.
pub const BOOTSTRAP_INDEX: Index = 1;

impl std::fmt::Debug for Raft {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Raft")
            .field("id", &self.cfg.id)
            .field("role", &self.role)
            .field("term", &self.term)
            .field("vote", &self.vote)
            .field("leader", &self.leader)
            .field("last_index", &self.log.last_index())
            .field("commit", &self.log.committed())
            .finish()
    }
}
