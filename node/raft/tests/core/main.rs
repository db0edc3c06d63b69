//! Exact-action unit tests of the Raft core, in the style of etcd's `raft_paper_test.go`: one
//! input, then the precise messages, hard state and entries the core hands back. Each test's
//! doc names the section of the Raft paper or Ongaro's thesis (or the known bug) it checks.

mod helpers;

mod commit;
mod election;
mod flow_control;
mod membership;
mod prevote_checkquorum;
mod read_index;
mod replication;
mod robustness;
mod snapshot;
mod transfer;
