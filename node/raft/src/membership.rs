//! The configuration history: which configuration is in force at each log index.
//!
//! # Design note: membership changes
//!
//! kvorum changes membership one server at a time (thesis §4.1), with learners:
//!
//! ```text
//!   (absent) ──AddLearner──► learner ──PromoteLearner──► voter ──RemoveNode──► (absent)
//!                               └──────────────RemoveNode──────────────────────┘
//! ```
//!
//! - A configuration takes effect on a node as soon as its entry is **appended** to that
//!   node's log, committed or not (§4.1); if the entry is later truncated, the node falls back
//!   to the previous configuration. This history is what makes that fall-back possible.
//! - The leader accepts a change only when (a) it has committed an entry of its current term
//!   (the fix for the single-server bug, Ongaro, raft-dev 2015: an uncommitted configuration
//!   of an earlier term can then never be committed), and (b) no other change is uncommitted.
//! - Learners replicate but never count in a quorum and never campaign. A learner is
//!   promoted only when it is nearly caught up, so promotion never stalls commits.
//! - A leader that removes itself keeps leading, without counting its own vote, until the
//!   change commits; then it steps down (§4.2.2).
//! - Every member is added as a learner first, so a new voter never joins empty-handed.

use crate::types::{ConfChange, ConfState, Index};

/// The configuration at the snapshot plus every configuration entry after it.
#[derive(Clone, Debug)]
pub struct ConfHistory {
    base_index: Index,
    base: ConfState,
    /// `(index, resulting configuration)` for each configuration entry after `base_index`.
    changes: Vec<(Index, ConfState)>,
}

impl ConfHistory {
    /// A history whose configuration at `index` is `conf`.
    pub fn new(index: Index, conf: ConfState) -> Self {
        ConfHistory {
            base_index: index,
            base: conf,
            changes: Vec::new(),
        }
    }

    /// The configuration in force now (that of the last configuration entry in the log).
    pub fn current(&self) -> &ConfState {
        self.changes.last().map_or(&self.base, |(_, c)| c)
    }

    /// The configuration in force at `index`.
    pub fn at(&self, index: Index) -> &ConfState {
        assert!(
            index >= self.base_index,
            "configuration before {} is forgotten",
            self.base_index
        );
        self.changes
            .iter()
            .rev()
            .find(|(i, _)| *i <= index)
            .map_or(&self.base, |(_, c)| c)
    }

    /// Index of the latest configuration entry, or of the base.
    pub fn last_change_index(&self) -> Index {
        self.changes.last().map_or(self.base_index, |(i, _)| *i)
    }

    /// Records a configuration entry at `index`.
    pub fn push(&mut self, index: Index, change: ConfChange) {
        assert!(index > self.last_change_index());
        let next = self.current().applied(change);
        self.changes.push((index, next));
    }

    /// Forgets configuration entries at or after `index` (the log was truncated there).
    pub fn truncate_from(&mut self, index: Index) {
        self.changes.retain(|(i, _)| *i < index);
    }

    /// Folds entries up to `index` into the base (a snapshot now covers them).
    pub fn compact_to(&mut self, index: Index) {
        if index <= self.base_index {
            return;
        }
        self.base = self.at(index).clone();
        self.base_index = index;
        self.changes.retain(|(i, _)| *i > index);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_falls_back_to_the_previous_configuration() {
        let mut h = ConfHistory::new(0, ConfState::with_voters([1, 2, 3]));
        h.push(5, ConfChange::AddLearner(4));
        h.push(9, ConfChange::PromoteLearner(4));
        assert_eq!(h.current().voters.len(), 4);
        assert_eq!(h.at(7).learners.len(), 1);
        h.truncate_from(9);
        assert!(h.current().learners.contains(&4), "promotion undone with its entry");
        h.compact_to(6);
        assert_eq!(h.at(6), h.current());
        h.truncate_from(6);
        assert!(h.current().learners.contains(&4), "compacted changes are never undone");
    }
}
