//! Leader Append-Only (§5.3, Figure 3): a leader never overwrites or deletes entries in its
//! log; it only appends. Checked over each leadership (node, term): the last index never
//! shrinks, and entries seen in the leader's log keep their term (the newest one on every
//! step, plus a rotating sample of older ones to keep the check cheap).

use std::collections::{BTreeMap, HashMap};

use kvorum_raft::{Index, NodeId, Raft, Role, Term};

#[derive(Default)]
pub struct LeaderAppendOnly {
    /// (node, term) → the leader's entries as first seen: index → entry term.
    seen: HashMap<(NodeId, Term), BTreeMap<Index, Term>>,
    cursor: u64,
}

impl LeaderAppendOnly {
    pub fn check(&mut self, raft: &Raft) {
        if raft.role() != Role::Leader {
            return;
        }
        let log = raft.log();
        let seen = self.seen.entry((raft.id(), raft.term())).or_default();
        let max_seen = seen.keys().next_back().copied().unwrap_or(log.first_index().max(1) - 1);
        assert!(
            log.last_index() >= max_seen,
            "Leader Append-Only: leader {} of term {} shrank its log from {max_seen} to {}",
            raft.id(),
            raft.term(),
            log.last_index()
        );
        for i in (max_seen + 1).max(log.first_index())..=log.last_index() {
            seen.insert(i, log.term(i).expect("entry in log"));
        }
        self.cursor = self.cursor.wrapping_add(7919);
        let sample: Vec<(Index, Term)> = match seen.len() {
            0 => Vec::new(),
            n => {
                let nth = (self.cursor % n as u64) as usize;
                let mut v: Vec<_> = seen.iter().nth(nth).map(|(i, t)| (*i, *t)).into_iter().collect();
                v.extend(seen.iter().next_back().map(|(i, t)| (*i, *t)));
                v
            }
        };
        for (i, t) in sample {
            if i >= log.first_index() {
                assert_eq!(
                    log.term(i),
                    Some(t),
                    "Leader Append-Only: leader {} of term {} changed entry {i}",
                    raft.id(),
                    raft.term()
                );
            }
        }
    }

    pub fn forget(&mut self, node: NodeId) {
        self.seen.retain(|(n, _), _| *n != node);
    }
}
