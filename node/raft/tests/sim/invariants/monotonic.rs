//! Monotonicity: a node's term, commit index and applied index never decrease, across restarts
//! too (term and applied are persistent; commit is restored from the hard state). A commit
//! regression crashed etcd (etcd-io/raft#104).

use std::collections::HashMap;

use kvorum_raft::{Index, NodeId, Raft, Term};

use crate::node::SmState;

#[derive(Default)]
pub struct Monotonic {
    last: HashMap<NodeId, (Term, Index, Index)>,
}

impl Monotonic {
    pub fn check(&mut self, raft: &Raft, sm: &SmState) {
        let now = (raft.term(), raft.log().committed(), sm.applied);
        if let Some(&(term, commit, applied)) = self.last.get(&raft.id()) {
            assert!(
                now.0 >= term,
                "node {}: term went back from {term} to {}",
                raft.id(),
                now.0
            );
            assert!(
                now.1 >= commit,
                "node {}: commit went back from {commit} to {}",
                raft.id(),
                now.1
            );
            assert!(
                now.2 >= applied,
                "node {}: applied went back from {applied} to {}",
                raft.id(),
                now.2
            );
        }
        self.last.insert(raft.id(), now);
    }
}
