//! Splitting a history by key and searching each key on its own.
//!
//! Linearizability is local (Herlihy & Wing 1990, Theorem 1): a history is linearizable iff each
//! object's sub-history is. Every key of the store is an object, so a 2,000-operation history
//! over 20 keys is 20 searches of about 100 operations instead of one search whose configuration
//! space is the product of theirs (Horn & Kroening's P-compositionality).

use std::collections::BTreeMap;
use std::fmt::Debug;

use super::history::{Operation, Outcome};
use super::model::Model;
use super::search::{SearchOp, SearchResult, search};
use super::verdict::{CheckStats, IndexedOp, Verdict, Violation, prefix_tail};

/// Limits for one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckConfig {
    /// Configurations the search may memoize on one key before answering
    /// [`Verdict::TooComplex`]. Each takes roughly 150 bytes plus one model state, so the default
    /// bounds the memo near 200 MiB and the time near two seconds in a release build.
    pub max_states_per_key: u64,
}

impl Default for CheckConfig {
    fn default() -> Self {
        CheckConfig {
            max_states_per_key: 1_000_000,
        }
    }
}

/// Checks `history` against `model`, one key at a time, and reports the first key (in key order)
/// that has no linearization.
///
/// Failed operations are ignored (they did not happen) and unknown read-only operations are
/// dropped (they observed nothing the checker could use); unknown writes may take effect at any
/// point after their invocation, or never.
///
/// # Panics
///
/// If an operation with a known outcome completes before it was invoked, or if the model finds
/// a call paired with a result of the wrong kind: both are bugs in the recording harness.
pub fn check_history<K, M>(model: &M, history: &[Operation<K, M::Call, M::Ret>], config: &CheckConfig) -> Verdict<K, M>
where
    K: Ord + Clone + Debug,
    M: Model,
{
    let mut by_key: BTreeMap<&K, Vec<usize>> = BTreeMap::new();
    for (index, op) in history.iter().enumerate() {
        if let Some(deadline) = op.deadline() {
            assert!(
                deadline >= op.invoke_time,
                "malformed history: #{index} {op} completes before it starts"
            );
        }
        let dropped = match op.outcome {
            Outcome::Ok(_) => false,
            Outcome::Fail => true,
            Outcome::Unknown => model.is_read_only(&op.call, None),
        };
        if !dropped {
            by_key.entry(&op.key).or_default().push(index);
        }
    }

    let mut stats = CheckStats {
        keys: by_key.len(),
        operations: 0,
        explored_states: 0,
    };
    let mut too_complex = None;
    for (key, indices) in by_key {
        let ops: Vec<SearchOp<'_, M::Call, M::Ret>> = indices
            .iter()
            .map(|&index| {
                let op = &history[index];
                SearchOp {
                    call: &op.call,
                    ret: op.outcome.result(),
                    invoke_time: op.invoke_time,
                    deadline: op.deadline(),
                }
            })
            .collect();
        stats.operations += ops.len();
        match search(model, &ops, config.max_states_per_key) {
            SearchResult::Linearizable { explored_states } => stats.explored_states += explored_states,
            SearchResult::TooComplex { explored_states } => {
                too_complex.get_or_insert(Verdict::TooComplex {
                    key: key.clone(),
                    explored_states,
                });
            }
            SearchResult::Violation {
                explored_states,
                longest_prefix,
                state,
                deadline_op,
                stuck,
            } => {
                // Search indices are positions in this key's `indices`; report history indices.
                let indexed = |position: usize| IndexedOp {
                    index: indices[position],
                    op: history[indices[position]].clone(),
                };
                return Verdict::Violation(Box::new(Violation {
                    key: key.clone(),
                    prefix_len: longest_prefix.len(),
                    prefix_tail: prefix_tail(longest_prefix).into_iter().map(indexed).collect(),
                    state,
                    deadline_op: indexed(deadline_op),
                    stuck: stuck.into_iter().map(indexed).collect(),
                    key_operations: indices.len(),
                    explored_states,
                }));
            }
        }
    }
    too_complex.unwrap_or(Verdict::Linearizable(stats))
}
