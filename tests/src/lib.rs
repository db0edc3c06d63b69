//! kvorum's system tests: multi-process clusters, fault injection, client compatibility and the
//! operator end-to-end harness. They arrive with the server; the Raft core's own tests,
//! simulator included, live in `node/raft`.
//!
//! The [`linearizability`] module is the judge those tests share: it checks recorded client
//! histories for linearizability and watch streams for their ordering and delivery guarantees.

pub mod harness;
pub mod linearizability;
