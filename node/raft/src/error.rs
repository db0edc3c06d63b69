//! Errors returned to the driver. Each says whether retrying, or redirecting to another member,
//! can help. Broken invariants are bugs and panic instead.

use crate::types::{Index, NodeId};

/// Why a request to the core was refused. Nothing was appended or changed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RaftError {
    /// Only the leader accepts this request.
    #[error("not the leader{}", leader_hint_text(*.leader))]
    NotLeader {
        /// The leader this node currently follows, if it knows one: redirect there.
        leader: Option<NodeId>,
    },
    /// A leadership transfer is under way; retry once it completes or aborts.
    #[error("leadership transfer to {target} in progress")]
    TransferInProgress {
        /// The member taking over.
        target: NodeId,
    },
    /// Too many uncommitted bytes are in the log; retry after replication catches up.
    #[error("uncommitted log is full ({uncommitted_bytes} bytes, limit {limit_bytes})")]
    UncommittedLogFull {
        /// Bytes currently uncommitted.
        uncommitted_bytes: u64,
        /// The configured limit.
        limit_bytes: u64,
    },
    /// A new leader must commit an entry of its term before changing membership
    /// (Ongaro, raft-dev 2015); retry shortly.
    #[error("leader has not yet committed an entry of its term; retry the membership change")]
    LeaderNotReady,
    /// Only one membership change may be in flight.
    #[error("membership change at index {index} is not committed yet")]
    ConfChangeInProgress {
        /// Index of the pending change.
        index: Index,
    },
    /// The node is already a member (voter or learner).
    #[error("node {node} is already a member")]
    AlreadyMember {
        /// The node.
        node: NodeId,
    },
    /// The node is not a member.
    #[error("node {node} is not a member")]
    NotMember {
        /// The node.
        node: NodeId,
    },
    /// Only learners can be promoted.
    #[error("node {node} is not a learner")]
    NotLearner {
        /// The node.
        node: NodeId,
    },
    /// The learner is too far behind to be promoted safely; retry once it catches up.
    #[error("learner {node} is behind (matched {matched}, leader at {last_index}); retry when caught up")]
    LearnerBehind {
        /// The learner.
        node: NodeId,
        /// Its match index.
        matched: Index,
        /// The leader's last index.
        last_index: Index,
    },
    /// Removing the last voter would leave a cluster that can never commit again.
    #[error("cannot remove node {node}: it is the last voter")]
    LastVoter {
        /// The node.
        node: NodeId,
    },
    /// Leadership can only move to a voter.
    #[error("node {node} is not a voter and cannot become leader")]
    TransferTargetNotVoter {
        /// The node.
        node: NodeId,
    },
    /// The snapshot index is not applied yet, or is older than the current snapshot.
    #[error("cannot snapshot at index {index}: it must lie in ({snapshot_index}, {applied}]")]
    SnapshotOutOfRange {
        /// Requested index.
        index: Index,
        /// Current snapshot index.
        snapshot_index: Index,
        /// Highest applied index.
        applied: Index,
    },
}

fn leader_hint_text(leader: Option<NodeId>) -> String {
    match leader {
        Some(id) => format!("; the leader is node {id}"),
        None => "; no leader is known".to_string(),
    }
}

impl RaftError {
    /// The member a client should retry against, when the core knows one.
    pub fn leader_hint(&self) -> Option<NodeId> {
        match self {
            RaftError::NotLeader { leader } => *leader,
            _ => None,
        }
    }

    /// Whether the same request may succeed later without change.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            RaftError::NotLeader { .. }
                | RaftError::TransferInProgress { .. }
                | RaftError::UncommittedLogFull { .. }
                | RaftError::LeaderNotReady
                | RaftError::ConfChangeInProgress { .. }
                | RaftError::LearnerBehind { .. }
        )
    }
}
