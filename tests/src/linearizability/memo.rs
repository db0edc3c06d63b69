//! Lowe's memoization of search configurations, extended with dominance for unknown outcomes.
//!
//! A configuration is the set of operations linearized so far plus the model state they leave.
//! Two paths that reach the same configuration have the same future, so only the first one is
//! explored. Operations with unknown outcomes add one more rule: they have no deadline, so a
//! configuration that has linearized *fewer* of them (same completed operations, same state) can
//! do everything one with more can do. Once `(D, U, s)` has been entered, `(D, U ∪ V, s)` is
//! pruned too. Without this, a timed-out write that was later overwritten would double the
//! configurations to explore for the rest of the history; with it, linearizing it is pruned as
//! soon as the state coincides with a path that skipped it.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::Hash;

use super::bitset::Bitset;

/// The configurations the search has entered.
pub(super) struct Memo<S> {
    /// Keyed by the completed operations' set (compact) and the state; the value lists the
    /// unknown-outcome sets entered with them, usually one.
    entered: HashMap<(Vec<u64>, S), Vec<Bitset>>,
    len: u64,
}

impl<S: Eq + Hash + Clone> Memo<S> {
    pub(super) fn new() -> Self {
        Memo {
            entered: HashMap::new(),
            len: 0,
        }
    }

    /// Records the configuration `(definite ∪ unknown, state)` and returns `true`, or returns
    /// `false` if it was entered before or is dominated by one that was.
    pub(super) fn enter(&mut self, definite: &Bitset, unknown: &Bitset, state: &S) -> bool {
        match self.entered.entry((definite.window_key(), state.clone())) {
            Entry::Occupied(mut entry) => {
                if entry.get().iter().any(|entered| entered.is_subset_of(unknown)) {
                    return false;
                }
                entry.get_mut().push(unknown.clone());
            }
            Entry::Vacant(entry) => {
                entry.insert(vec![unknown.clone()]);
            }
        }
        self.len += 1;
        true
    }

    /// Configurations recorded so far.
    pub(super) fn len(&self) -> u64 {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::Memo;
    use crate::linearizability::bitset::Bitset;

    #[test]
    fn fewer_unknowns_dominate_more() {
        let definite = Bitset::new(10);
        let (none, mut one) = (Bitset::new(3), Bitset::new(3));
        one.insert(1);
        let mut memo = Memo::new();
        assert!(memo.enter(&definite, &one, &7));
        assert!(
            memo.enter(&definite, &none, &7),
            "fewer unknowns linearized: more options, not pruned"
        );
        assert!(!memo.enter(&definite, &one, &7), "dominated by the entry with none");
        assert!(
            memo.enter(&definite, &one, &8),
            "another state is another configuration"
        );
        assert_eq!(memo.len(), 3);
    }
}
