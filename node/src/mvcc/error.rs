//! Request errors of the state machine, with etcd's exact messages: client libraries (Go
//! clientv3's `rpctypes`, etcdctl) recognise errors by these strings and gRPC codes.

use crate::storage::StorageError;

/// Why a request was refused. Nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum MvccError {
    /// A request named no key.
    #[error("etcdserver: key is not provided")]
    EmptyKey,
    /// `ignore_value`/`ignore_lease` on a key that does not exist.
    #[error("etcdserver: key not found")]
    KeyNotFound,
    /// `ignore_value` together with a value.
    #[error("etcdserver: value is provided")]
    ValueProvided,
    /// `ignore_lease` together with a lease.
    #[error("etcdserver: lease is provided")]
    LeaseProvided,
    /// More operations in one txn than allowed.
    #[error("etcdserver: too many operations in txn request")]
    TooManyOps,
    /// One key modified twice in one txn.
    #[error("etcdserver: duplicate key given in txn request")]
    DuplicateKey,
    /// The revision asked for was compacted away.
    #[error("etcdserver: mvcc: required revision has been compacted")]
    Compacted {
        /// The current compaction revision.
        compact_revision: i64,
    },
    /// The revision asked for does not exist yet.
    #[error("etcdserver: mvcc: required revision is a future revision")]
    FutureRevision,
    /// The logical size would exceed the space quota.
    #[error("etcdserver: mvcc: database space exceeded")]
    NoSpace,
    /// The request is larger than the request size limit.
    #[error("etcdserver: request is too large")]
    RequestTooLarge,
    /// No lease with that ID.
    #[error("etcdserver: requested lease not found")]
    LeaseNotFound,
    /// A lease with that ID exists already.
    #[error("etcdserver: lease already exists")]
    LeaseExists,
    /// The TTL exceeds the maximum.
    #[error("etcdserver: too large lease TTL")]
    LeaseTtlTooLarge,
    /// A sort order or target outside the enum.
    #[error("etcdserver: invalid sort option")]
    InvalidSortOption,
    /// A compare or filter enum outside its range, or a request with no operation.
    #[error("etcdserver: {0}")]
    InvalidRequest(InvalidRequest),
    /// The node's storage failed; the node stops.
    #[error("etcdserver: storage failure: {0}")]
    Storage(#[from] StorageError),
}

/// The ways a request can be structurally invalid beyond etcd's named errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvalidRequest {
    /// An operation with none of its variants set.
    #[error("request has no operation")]
    EmptyOperation,
    /// A compare result or target outside the enum.
    #[error("invalid compare result or target")]
    BadCompare,
    /// A watch filter outside the enum.
    #[error("invalid watch filter")]
    BadFilter,
}

impl From<redb::StorageError> for MvccError {
    fn from(e: redb::StorageError) -> Self {
        MvccError::Storage(e.into())
    }
}

impl From<redb::TableError> for MvccError {
    fn from(e: redb::TableError) -> Self {
        MvccError::Storage(e.into())
    }
}

impl MvccError {
    /// The gRPC status code etcd uses for this error.
    pub fn code(&self) -> tonic::Code {
        use tonic::Code;
        match self {
            MvccError::EmptyKey
            | MvccError::KeyNotFound
            | MvccError::ValueProvided
            | MvccError::LeaseProvided
            | MvccError::TooManyOps
            | MvccError::DuplicateKey
            | MvccError::RequestTooLarge
            | MvccError::InvalidSortOption
            | MvccError::InvalidRequest(_) => Code::InvalidArgument,
            MvccError::Compacted { .. } | MvccError::FutureRevision | MvccError::LeaseTtlTooLarge => Code::OutOfRange,
            MvccError::NoSpace => Code::ResourceExhausted,
            MvccError::LeaseNotFound => Code::NotFound,
            MvccError::LeaseExists => Code::FailedPrecondition,
            MvccError::Storage(_) => Code::Internal,
        }
    }
}
