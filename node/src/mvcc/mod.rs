//! The replicated state machine, with etcd v3's data model.
//!
//! ```text
//!  committed entries ──► Store::apply ──► one redb write txn: history rows, leases,
//!                           │               applied_index, current/compact revision
//!                           ├──► in-memory index (key → generations of revisions, current value)
//!                           └──► WatchHub::notify ──► watchers (bounded, never blocking)
//!  reads ──► Store::range (index + history table at a revision)
//! ```
//!
//! Semantics follow etcd: one revision per write request or txn, per-key `create_revision`,
//! `mod_revision`, `version` and `lease`, history until compaction, ranges with `range_end`
//! conventions, txn compares, leases whose expiry is decided by the leader ([`Lessor`]) and
//! applied through the log, watches from any uncompacted revision.

mod apply;
pub mod check;
mod error;
mod hash;
pub mod index;
mod lease;
mod range;
mod record;
mod snapshot;
mod state;
mod store;
pub mod watch;

pub use apply::MAX_LEASE_TTL_SECONDS;
pub use error::{InvalidRequest, MvccError};
pub use hash::KvHash;
pub use lease::{LeaseIdGenerator, Lessor, LessorConfig, Millis, RenewError, granted_ttl};
pub use snapshot::{ClientSnapshot, SnapshotError, SnapshotReader, strip_client_checksum};
pub use store::{ApplyOutput, LeaseChange, LeaseInfo, Response, Store};
pub use watch::{WatchHub, WatchSpec, WatchStream, WatchUpdate};

/// Tunables of the state machine. Those that change what gets applied (`max_txn_ops`) must be
/// the same on every member.
#[derive(Clone, Debug)]
pub struct MvccConfig {
    /// Most operations per txn list (etcd's `--max-txn-ops`).
    pub max_txn_ops: usize,
    /// Space quota on the logical size (etcd's `--quota-backend-bytes`, default 2 GiB).
    pub quota_bytes: u64,
    /// Updates buffered per watcher before it falls back to catch-up from history.
    pub watch_buffer: usize,
    /// Largest encoded request accepted (etcd's `--max-request-bytes`).
    pub max_request_bytes: usize,
}

impl Default for MvccConfig {
    fn default() -> Self {
        MvccConfig {
            max_txn_ops: check::DEFAULT_MAX_TXN_OPS,
            quota_bytes: 2 << 30,
            watch_buffer: 128,
            max_request_bytes: check::DEFAULT_MAX_REQUEST_BYTES,
        }
    }
}

#[cfg(test)]
mod tests;
