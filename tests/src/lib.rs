//! kvorum's system tests: multi-process clusters, fault injection, client compatibility and the
//! operator end-to-end harness. They arrive with the server; the Raft core's own tests,
//! simulator included, live in `node/raft`.
