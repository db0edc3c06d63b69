//! Safety properties checked after every simulation step, one checker per property.
//! Raft paper Figure 3 (dissertation Figure 3.2), plus the bookkeeping invariants openraft's
//! fuzzer checks. A violation panics with a description; the simulator adds the seed.

#[cfg(test)]
mod checker_tests;
mod election_safety;
mod index_order;
mod leader_append_only;
mod leader_completeness;
mod log_matching;
mod monotonic;
mod read_index;
mod state_machine_safety;

use kvorum_raft::{Entry, Index, NodeId, Raft, Term};

use crate::node::SmState;

pub use read_index::ReadIndexSafety;

/// All checkers, fed by the simulator's hooks.
#[derive(Default)]
pub struct Checker {
    pub(crate) election: election_safety::ElectionSafety,
    append_only: leader_append_only::LeaderAppendOnly,
    matching: log_matching::LogMatching,
    pub(crate) completeness: leader_completeness::LeaderCompleteness,
    sm_safety: state_machine_safety::StateMachineSafety,
    pub(crate) monotonic: monotonic::Monotonic,
    pub reads: ReadIndexSafety,
}

impl Checker {
    /// After every step, for every live node.
    pub fn check_node(&mut self, raft: &Raft, sm: &SmState) {
        self.election.check(raft);
        self.append_only.check(raft);
        self.completeness.observe_commit(raft);
        self.completeness.check_new_leader(raft);
        self.monotonic.check(raft, sm);
        index_order::check(raft, sm);
    }

    /// A node persisted entries (before it sends anything that depends on them).
    pub fn on_persisted_entries(&mut self, raft: &Raft, entries: &[Entry]) {
        self.matching.check_appended(raft, entries);
    }

    /// A node applied an entry; `after` is its state machine afterwards.
    pub fn on_apply(&mut self, node: NodeId, entry: &Entry, after: &SmState) {
        self.sm_safety.check_apply(node, entry, after);
    }

    /// A node installed a snapshot.
    pub fn on_snapshot_installed(&mut self, node: NodeId, sm: &SmState) {
        self.sm_safety.check_snapshot(node, sm);
    }

    /// A node restarted from disk: forget the in-memory values of its previous life that need
    /// not survive (role), keep the persistent ones.
    pub fn on_restart(&mut self, node: NodeId) {
        self.append_only.forget(node);
        self.completeness.forget(node);
    }

    /// The committed prefix as observed so far: index → term.
    pub fn committed_term(&self, index: Index) -> Option<Term> {
        self.completeness.committed_term(index)
    }

    pub fn applied_digest(&self, index: Index) -> Option<u64> {
        self.sm_safety.digest(index)
    }
}
