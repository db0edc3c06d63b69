//! The data the core reasons about: log entries, persistent state, configurations.

use std::collections::BTreeSet;

use bytes::Bytes;

/// A member's identity. Stable for the member's lifetime; never reused after its data is lost.
pub type NodeId = u64;
/// A Raft term (§5.1). Term 0 exists only before the first election.
pub type Term = u64;
/// A log position. Index 0 is the empty prefix; the first real entry has index 1.
pub type Index = u64;

/// Per-entry overhead used in size accounting (index, term, framing), so that empty
/// entries still count against byte budgets.
pub const ENTRY_OVERHEAD_BYTES: u64 = 24;

/// What a log entry carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntryPayload {
    /// Appended by every new leader to open its term (§5.4.2, §8): it lets the leader commit
    /// entries of earlier terms and serve ReadIndex.
    Noop,
    /// An opaque command for the state machine.
    Command(Bytes),
    /// A membership change; it takes effect on every node as soon as it is appended.
    ConfChange(ConfChange),
}

/// One log entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Term of the leader that created the entry.
    pub term: Term,
    /// Position in the log.
    pub index: Index,
    /// What the entry carries.
    pub payload: EntryPayload,
}

impl Entry {
    /// Bytes this entry counts for in message, inflight and uncommitted-log budgets.
    pub fn size_bytes(&self) -> u64 {
        let payload = match &self.payload {
            EntryPayload::Noop => 0,
            EntryPayload::Command(data) => data.len() as u64,
            EntryPayload::ConfChange(_) => 16,
        };
        payload + ENTRY_OVERHEAD_BYTES
    }
}

/// The state that must be durable before any message that depends on it is sent (§5.1, Fig. 2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HardState {
    /// Latest term this node has seen.
    pub term: Term,
    /// Candidate this node voted for in `term`, if any.
    pub vote: Option<NodeId>,
    /// Highest index known committed. Persisting it is an optimisation (faster restart),
    /// not a safety requirement; it never exceeds the persisted log.
    pub commit: Index,
}

/// A membership change, applied one at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConfChange {
    /// Add a non-voting member that receives the log.
    AddLearner(NodeId),
    /// Turn a caught-up learner into a voter.
    PromoteLearner(NodeId),
    /// Remove a voter or learner.
    RemoveNode(NodeId),
}

/// A cluster configuration: who votes and who only listens.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfState {
    /// Members whose acknowledgements count towards quorums and who may campaign.
    pub voters: BTreeSet<NodeId>,
    /// Members that receive the log but never count towards a quorum or campaign.
    pub learners: BTreeSet<NodeId>,
}

impl ConfState {
    /// A configuration of voters only.
    pub fn with_voters(voters: impl IntoIterator<Item = NodeId>) -> Self {
        ConfState {
            voters: voters.into_iter().collect(),
            learners: BTreeSet::new(),
        }
    }

    /// Whether `id` is a voter or a learner.
    pub fn contains(&self, id: NodeId) -> bool {
        self.voters.contains(&id) || self.learners.contains(&id)
    }

    /// Every member, voters first.
    pub fn members(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.voters.iter().chain(self.learners.iter()).copied()
    }

    /// Number of voter acknowledgements that make a majority.
    pub fn quorum(&self) -> usize {
        self.voters.len() / 2 + 1
    }

    /// The configuration that results from applying `change`; the caller has validated it.
    pub fn applied(&self, change: ConfChange) -> ConfState {
        let mut next = self.clone();
        match change {
            ConfChange::AddLearner(id) => {
                next.learners.insert(id);
            }
            ConfChange::PromoteLearner(id) => {
                next.learners.remove(&id);
                next.voters.insert(id);
            }
            ConfChange::RemoveNode(id) => {
                next.voters.remove(&id);
                next.learners.remove(&id);
            }
        }
        next
    }
}

/// Describes a state-machine snapshot: the prefix of the log it replaces.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SnapshotMeta {
    /// Index of the last entry the snapshot includes.
    pub index: Index,
    /// Term of that entry.
    pub term: Term,
    /// The configuration in force at `index`.
    pub conf: ConfState,
}

/// Everything a node persisted, handed back to [`crate::Raft::restore`] after a restart.
#[derive(Clone, Debug, Default)]
pub struct PersistedState {
    /// The last persisted hard state.
    pub hard_state: HardState,
    /// The latest persisted snapshot (index 0 when none was ever taken; its `conf` is then
    /// the bootstrap configuration).
    pub snapshot: SnapshotMeta,
    /// Persisted log entries, contiguous, ending at the last persisted index. They may start
    /// at or before `snapshot.index + 1` (entries retained behind a snapshot).
    pub entries: Vec<Entry>,
    /// Highest index the state machine has durably applied (≥ `snapshot.index`).
    pub applied: Index,
}
