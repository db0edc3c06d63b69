//! Leader Completeness (§5.4, Figure 3): if a log entry is committed in a given term, that entry
//! will be present in the logs of the leaders for all higher-numbered terms.
//!
//! Also records the committed prefix as nodes report it, and checks it never changes
//! (openraft's "CommittedImmutable"): a committed index keeps its term forever.

use std::collections::{BTreeMap, HashMap, HashSet};

use kvorum_raft::{Index, NodeId, Raft, Role, Term};

#[derive(Default)]
pub struct LeaderCompleteness {
    committed: BTreeMap<Index, Term>,
    /// Per node: the commit index already recorded.
    recorded_commit: HashMap<NodeId, Index>,
    /// Leaderships already checked.
    checked: HashSet<(NodeId, Term)>,
}

impl LeaderCompleteness {
    pub fn observe_commit(&mut self, raft: &Raft) {
        let log = raft.log();
        let from = self.recorded_commit.get(&raft.id()).copied().unwrap_or(0);
        let commit = log.committed();
        for i in (from + 1).max(log.first_index().saturating_sub(1))..=commit {
            let Some(term) = log.term(i) else { continue };
            let known = *self.committed.entry(i).or_insert(term);
            assert_eq!(
                known,
                term,
                "Committed entries are immutable: index {i} was committed with term {known}, node {} has term {term}",
                raft.id()
            );
        }
        self.recorded_commit.insert(raft.id(), commit.max(from));
    }

    pub fn check_new_leader(&mut self, raft: &Raft) {
        if raft.role() != Role::Leader || !self.checked.insert((raft.id(), raft.term())) {
            return;
        }
        let log = raft.log();
        for (&i, &term) in self.committed.range(log.first_index()..) {
            if term >= raft.term() {
                continue;
            }
            assert_eq!(
                log.term(i),
                Some(term),
                "Leader Completeness: index {i} was committed in term {term} but leader {} of term {} lacks it",
                raft.id(),
                raft.term()
            );
        }
    }

    pub fn forget(&mut self, node: NodeId) {
        self.recorded_commit.remove(&node);
    }

    pub fn committed_term(&self, index: Index) -> Option<Term> {
        self.committed.get(&index).copied()
    }
}
