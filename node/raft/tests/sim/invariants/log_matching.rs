//! Log Matching (§5.3, Figure 3): if two logs contain an entry with the same index and term,
//! the logs are identical in all entries up through that index.
//!
//! Checked inductively and cheaply: every persisted entry with a given (index, term) must have
//! the same content and the same predecessor term on every node, ever. By induction on the
//! index, equal (index, term) then implies equal prefixes.

use std::collections::HashMap;

use kvorum_raft::{Entry, Index, NodeId, Raft, Term};

use crate::node::entry_digest;

#[derive(Default)]
pub struct LogMatching {
    /// (index, term) → (content digest, predecessor term, first node seen with it).
    known: HashMap<(Index, Term), (u64, Option<Term>, NodeId)>,
}

impl LogMatching {
    pub fn check_appended(&mut self, raft: &Raft, entries: &[Entry]) {
        for e in entries {
            let prev_term = raft.log().term(e.index - 1);
            let digest = entry_digest(e);
            let (d, p, first) = *self
                .known
                .entry((e.index, e.term))
                .or_insert((digest, prev_term, raft.id()));
            assert_eq!(
                d,
                digest,
                "Log Matching: entry ({}, term {}) differs between nodes {first} and {}",
                e.index,
                e.term,
                raft.id()
            );
            if let (Some(p), Some(prev_term)) = (p, prev_term) {
                assert_eq!(
                    p,
                    prev_term,
                    "Log Matching: entry ({}, term {}) follows term {p} on node {first} but term {prev_term} on node {}",
                    e.index,
                    e.term,
                    raft.id()
                );
            }
        }
    }
}
