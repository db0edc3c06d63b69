//! Leader Completeness (§5.4, Figure 3): if a log entry is committed in a given term, that entry
//! will be present in the logs of the leaders for all higher-numbered terms.
//!
//! "Committed in a given term" is the term of the leader that committed it, not the entry's
//! own term: an entry of term 4 that first commits under the leader of term 6 binds the leaders
//! of terms 7 and up; a leader of term 5 elected before that may legitimately lack it. The
//! first node to report an index committed is the leader that committed it (followers and
//! snapshots learn commits from it), so its current term is the commit term.
//!
//! Also records the committed prefix as nodes report it, and checks it never changes
//! (openraft's "CommittedImmutable"): a committed index keeps its entry term forever.

use std::collections::{BTreeMap, HashMap, HashSet};

use kvorum_raft::{Index, NodeId, Raft, Role, Term};

#[derive(Default)]
pub struct LeaderCompleteness {
    /// index → (entry term, term in which it was committed).
    committed: BTreeMap<Index, (Term, Term)>,
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
            let (known, _) = *self.committed.entry(i).or_insert((term, raft.term()));
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
        for (&i, &(term, committed_in)) in self.committed.range(log.first_index()..) {
            if committed_in >= raft.term() {
                continue;
            }
            assert_eq!(
                log.term(i),
                Some(term),
                "Leader Completeness: index {i} (term {term}) was committed in term {committed_in} but leader {} of term {} lacks it",
                raft.id(),
                raft.term()
            );
        }
    }

    pub fn forget(&mut self, node: NodeId) {
        self.recorded_commit.remove(&node);
    }

    pub fn committed_term(&self, index: Index) -> Option<Term> {
        self.committed.get(&index).map(|(term, _)| *term)
    }
}
