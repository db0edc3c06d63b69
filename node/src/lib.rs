//! kvorum: a replicated configuration store with an etcd-v3-compatible API.
//!
//! - [`storage`]: the durable Raft log and hard state (redb, plus an in-memory twin).
//! - [`mvcc`]: the replicated state machine with etcd v3 semantics.
//! - [`server`]: the runtime around the Raft core ([`server::replica::Replica`]).
//! - [`proto`]: the wire types.

pub mod api;
pub mod cli;
pub mod config;
pub mod mvcc;
pub mod proto;
pub mod server;
pub mod storage;
pub mod tls;
pub mod transport;
