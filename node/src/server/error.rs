//! Errors of node requests, each mapped to the gRPC status etcd uses, so clients react as
//! they do with etcd (retry on Unavailable, give up on InvalidArgument, …).

use kvorum_raft::{NodeId, RaftError};

use crate::mvcc::MvccError;
use crate::storage::StorageError;

/// Why a request to the node failed.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The state machine refused the request (nothing changed).
    #[error(transparent)]
    Mvcc(#[from] MvccError),
    /// No leader is known; the cluster may be electing one or lack quorum.
    #[error("etcdserver: no leader")]
    NoLeader,
    /// This member cannot serve the request and could not reach the leader.
    #[error("etcdserver: not leader (leader is {leader:?})")]
    NotLeader {
        /// The leader, if known.
        leader: Option<NodeId>,
    },
    /// Leadership changed before the request committed; it did not take effect.
    #[error("etcdserver: leader changed")]
    LeaderChanged,
    /// The request did not complete in time; it may or may not have taken effect.
    #[error("etcdserver: request timed out")]
    Timeout,
    /// Too much work is queued; retry later.
    #[error("etcdserver: too many requests")]
    TooManyRequests,
    /// The Raft core refused the request.
    #[error("etcdserver: {0}")]
    Raft(#[from] RaftError),
    /// The node is stopping or stopped.
    #[error("etcdserver: server stopped")]
    Stopped,
    /// A member with this ID is not in the cluster.
    #[error("etcdserver: member not found")]
    MemberNotFound,
    /// Peer URLs already used by another member.
    #[error("etcdserver: Peer URLs already exists")]
    PeerUrlExists,
    /// A learner not yet caught up cannot be promoted.
    #[error("etcdserver: can only promote a learner member which is in sync with leader")]
    LearnerNotReady,
    /// Only learners can be promoted.
    #[error("etcdserver: can only promote a learner member")]
    NotLearner,
    /// A request only the leader can answer could not be forwarded.
    #[error("etcdserver: {0}")]
    Peer(String),
    /// A request that is invalid for this node.
    #[error("etcdserver: {0}")]
    Invalid(String),
    /// A peer answered with an error to pass on.
    #[error("{message}")]
    Remote {
        /// gRPC code.
        code: tonic::Code,
        /// Message.
        message: String,
    },
    /// The node's storage failed; it stops.
    #[error("etcdserver: storage failure: {0}")]
    Storage(#[from] StorageError),
}

impl NodeError {
    /// The gRPC status code for this error.
    pub fn code(&self) -> tonic::Code {
        use tonic::Code;
        match self {
            NodeError::Mvcc(e) => e.code(),
            NodeError::NoLeader
            | NodeError::NotLeader { .. }
            | NodeError::LeaderChanged
            | NodeError::Timeout
            | NodeError::Stopped
            | NodeError::Peer(_) => Code::Unavailable,
            NodeError::TooManyRequests => Code::ResourceExhausted,
            NodeError::Raft(e) if e.is_retryable() => Code::Unavailable,
            NodeError::Raft(_) | NodeError::LearnerNotReady | NodeError::NotLearner => Code::FailedPrecondition,
            NodeError::MemberNotFound => Code::NotFound,
            NodeError::PeerUrlExists => Code::FailedPrecondition,
            NodeError::Invalid(_) => Code::InvalidArgument,
            NodeError::Remote { code, .. } => *code,
            NodeError::Storage(_) => Code::Internal,
        }
    }

    /// Whether the same request may be retried safely (it certainly did not take effect).
    pub fn is_retryable(&self) -> bool {
        match self {
            NodeError::NoLeader | NodeError::NotLeader { .. } | NodeError::LeaderChanged => true,
            NodeError::Raft(e) => e.is_retryable(),
            _ => false,
        }
    }
}

impl From<NodeError> for tonic::Status {
    fn from(e: NodeError) -> Self {
        tonic::Status::new(e.code(), e.to_string())
    }
}
