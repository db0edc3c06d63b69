//! The checker's answer, and how it reads to a human.

use std::fmt;

use super::history::Operation;
use super::model::Model;

/// How many operations of the longest linearizable prefix a report prints: the end of the
/// prefix is what explains the state; the rest is noise in a CI log.
const PREFIX_TAIL_SHOWN: usize = 8;

/// An operation together with its position in the history passed to the checker, so a report
/// can be matched against the harness's log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexedOp<K, C, R> {
    /// Index into the checked history slice.
    pub index: usize,
    /// The operation itself.
    pub op: Operation<K, C, R>,
}

/// Totals for a history that was found linearizable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckStats {
    /// Distinct keys checked.
    pub keys: usize,
    /// Operations that took part in the search (failed operations and unknown reads excluded).
    pub operations: usize,
    /// Configurations memoized across all keys; a measure of how concurrent the history was.
    pub explored_states: u64,
}

/// The result of checking a history.
pub enum Verdict<K, M: Model> {
    /// Every key's sub-history has a linearization.
    Linearizable(CheckStats),
    /// Some key's sub-history has none; the first such key in key order is reported.
    Violation(Box<Violation<K, M>>),
    /// The search for `key` hit the configured state budget before finding an answer. Not a
    /// pass: shorten the history, reduce concurrency or raise the budget. Reported only if no
    /// key has a violation.
    TooComplex {
        /// The first key whose search ran out of budget.
        key: K,
        /// States explored on that key before giving up.
        explored_states: u64,
    },
}

/// Why one key's sub-history is not linearizable, described from the deepest point the search
/// reached.
pub struct Violation<K, M: Model> {
    /// The key whose sub-history failed.
    pub key: K,
    /// How many operations the longest linearizable prefix has.
    pub prefix_len: usize,
    /// The last operations of that prefix (at most eight), in linearization order.
    pub prefix_tail: Vec<IndexedOp<K, M::Call, M::Ret>>,
    /// The model state after the prefix.
    pub state: M::State,
    /// The unlinearized operation with the earliest completion: it had to take effect before
    /// then, and no order of the remaining candidates allows it.
    pub deadline_op: IndexedOp<K, M::Call, M::Ret>,
    /// The operations that could take effect next (invoked before that deadline) but that the
    /// model refuses in `state`; usually the read that saw something impossible.
    pub stuck: Vec<IndexedOp<K, M::Call, M::Ret>>,
    /// Operations of this key that took part in the search.
    pub key_operations: usize,
    /// Configurations explored on this key before every order was ruled out.
    pub explored_states: u64,
}

impl<K, M: Model> Verdict<K, M> {
    /// Whether the history was proven linearizable.
    pub fn is_linearizable(&self) -> bool {
        matches!(self, Verdict::Linearizable(_))
    }

    /// The violation, if one was found.
    pub fn violation(&self) -> Option<&Violation<K, M>> {
        match self {
            Verdict::Violation(violation) => Some(violation),
            Verdict::Linearizable(_) | Verdict::TooComplex { .. } => None,
        }
    }
}

impl<K: fmt::Debug, M: Model> fmt::Display for Verdict<K, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Linearizable(stats) => write!(
                f,
                "linearizable: {} operations on {} keys ({} states explored)",
                stats.operations, stats.keys, stats.explored_states
            ),
            Verdict::Violation(violation) => violation.fmt(f),
            Verdict::TooComplex { key, explored_states } => write!(
                f,
                "unknown: the search on key {key:?} gave up after {explored_states} states; \
                 shorten the history or raise CheckConfig::max_states_per_key"
            ),
        }
    }
}

impl<K: fmt::Debug, M: Model> fmt::Display for Violation<K, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "not linearizable: key {:?} ({} operations, {} states explored)",
            self.key, self.key_operations, self.explored_states
        )?;
        writeln!(f, "  longest linearizable prefix: {} operations", self.prefix_len)?;
        if self.prefix_tail.len() < self.prefix_len {
            writeln!(f, "    ... {} earlier", self.prefix_len - self.prefix_tail.len())?;
        }
        for entry in &self.prefix_tail {
            writeln!(f, "    #{} {}", entry.index, entry.op)?;
        }
        writeln!(f, "  state after it: {:?}", self.state)?;
        if self.stuck.is_empty() {
            writeln!(
                f,
                "  every operation that could take effect next fits, but each leads to a dead end"
            )?;
        } else {
            writeln!(f, "  operations that could take effect next but contradict that state:")?;
        }
        for entry in &self.stuck {
            writeln!(f, "    #{} {}", entry.index, entry.op)?;
        }
        let deadline = &self.deadline_op;
        if self.stuck.iter().any(|entry| entry.index == deadline.index) {
            write!(
                f,
                "  and #{} had to take effect by {}, when it completed",
                deadline.index, deadline.op.complete_time
            )
        } else {
            write!(
                f,
                "  and #{} {} had to take effect by its completion",
                deadline.index, deadline.op
            )
        }
    }
}

impl<K: fmt::Debug, M: Model> fmt::Debug for Verdict<K, M> {
    /// The same as `Display`, so `assert!(v.is_linearizable(), "{v:?}")` and `unwrap`-style
    /// helpers print something readable.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl<K: fmt::Debug, M: Model> fmt::Debug for Violation<K, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Keeps the last `PREFIX_TAIL_SHOWN` entries of a prefix.
pub(super) fn prefix_tail<T>(mut prefix: Vec<T>) -> Vec<T> {
    let skip = prefix.len().saturating_sub(PREFIX_TAIL_SHOWN);
    prefix.drain(..skip);
    prefix
}
