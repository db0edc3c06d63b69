//! State Machine Safety (§5.4.3, Figure 3): if a server has applied a log entry at a given
//! index to its state machine, no other server will ever apply a different log entry for the
//! same index. Snapshots are held to the same standard: a snapshot installed at index i must
//! equal the state every member reached by applying entries up to i.

use std::collections::HashMap;

use kvorum_raft::{Entry, Index, NodeId};

use crate::node::{SmState, entry_digest};

#[derive(Default)]
pub struct StateMachineSafety {
    /// index → (entry digest, state-machine chain after applying it, first node).
    applied: HashMap<Index, (u64, u64, NodeId)>,
}

impl StateMachineSafety {
    pub fn check_apply(&mut self, node: NodeId, entry: &Entry, after: &SmState) {
        let digest = entry_digest(entry);
        let (d, chain, first) = *self.applied.entry(entry.index).or_insert((digest, after.chain, node));
        assert_eq!(
            d, digest,
            "State Machine Safety: nodes {first} and {node} applied different entries at index {}",
            entry.index
        );
        assert_eq!(
            chain, after.chain,
            "State Machine Safety: nodes {first} and {node} reached different states at index {}",
            entry.index
        );
    }

    pub fn check_snapshot(&mut self, node: NodeId, sm: &SmState) {
        if let Some((_, chain, first)) = self.applied.get(&sm.applied) {
            assert_eq!(
                *chain, sm.chain,
                "State Machine Safety: snapshot installed on node {node} at index {} differs from node {first}'s state",
                sm.applied
            );
        }
    }

    pub fn digest(&self, index: Index) -> Option<u64> {
        self.applied.get(&index).map(|(d, _, _)| *d)
    }
}
