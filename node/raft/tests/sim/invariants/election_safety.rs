//! Election Safety (§5.2, Figure 3): at most one leader can be elected in a given term.

use std::collections::HashMap;

use kvorum_raft::{NodeId, Raft, Role, Term};

#[derive(Default)]
pub struct ElectionSafety {
    leaders: HashMap<Term, NodeId>,
}

impl ElectionSafety {
    pub fn check(&mut self, raft: &Raft) {
        if raft.role() != Role::Leader {
            return;
        }
        let leader = *self.leaders.entry(raft.term()).or_insert(raft.id());
        assert_eq!(
            leader,
            raft.id(),
            "Election Safety: nodes {leader} and {} both led term {}",
            raft.id(),
            raft.term()
        );
    }
}
