//! The list-append workload: each key holds a list, appends push, reads return the whole list.
//!
//! This is Elle's workload (Kingsbury & Alvaro 2020) as run on etcd: an append is a `Txn` that
//! reads the key's value and writes it back extended, guarded by a `mod_revision` compare, and a
//! read returns the list. Reads reveal the entire order of past appends, which makes lost,
//! reordered and phantom appends visible long after they happen. Here each key is checked for
//! linearizability with the same search as registers; Elle's cross-key cycle analysis is not
//! attempted.

use std::fmt;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::marker::PhantomData;
use std::sync::Arc;

use super::history::Operation;
use super::model::Model;
use super::partition::{CheckConfig, check_history};
use super::verdict::Verdict;

/// A call on one list.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ListCall<E> {
    /// Push `E` at the end; answered by [`ListRet::Append`].
    Append(E),
    /// Read the whole list; answered by [`ListRet::Read`].
    Read,
}

/// A list's answer.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ListRet<E> {
    /// The append was applied.
    Append,
    /// The list as read, oldest element first; empty if the key was absent.
    Read(Vec<E>),
}

/// One operation of the list-append workload.
pub type ListOp<K, E> = Operation<K, ListCall<E>, ListRet<E>>;

/// A persistent (shared-tail) list: the list model's state.
///
/// The search clones and hashes the state on every step and memoizes every state it enters, so
/// a `Vec` would make each step cost the list's length in time and memory. Here an append
/// allocates one node that points at the previous list, and each node caches its length and a
/// hash of the whole list up to it, so clone and hash are O(1) and equality is O(1) unless the
/// hashes collide or the lists really are equal but built separately.
pub struct AppendList<E> {
    last: Option<Arc<Node<E>>>,
}

struct Node<E> {
    element: E,
    before: Option<Arc<Node<E>>>,
    len: usize,
    /// Hash of the elements up to and including this one, chained from `before`'s.
    hash: u64,
}

impl<E> Drop for Node<E> {
    /// Frees the chain iteratively: the default recursive drop would use one stack frame per
    /// element and overflow on lists of a few hundred thousand appends.
    fn drop(&mut self) {
        let mut before = self.before.take();
        while let Some(node) = before {
            match Arc::into_inner(node) {
                Some(mut node) => before = node.before.take(),
                None => break,
            }
        }
    }
}

impl<E> AppendList<E> {
    /// The empty list.
    pub fn new() -> Self {
        AppendList { last: None }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.last.as_ref().map_or(0, |node| node.len)
    }

    /// Whether the list has no elements.
    pub fn is_empty(&self) -> bool {
        self.last.is_none()
    }

    /// The most recently appended element.
    pub fn last(&self) -> Option<&E> {
        self.last.as_ref().map(|node| &node.element)
    }

    fn hash_value(&self) -> u64 {
        self.last.as_ref().map_or(0, |node| node.hash)
    }

    /// The elements from last to first.
    fn iter_rev(&self) -> impl Iterator<Item = &E> {
        std::iter::successors(self.last.as_deref(), |node| node.before.as_deref()).map(|node| &node.element)
    }

    /// Whether the list holds exactly `elements`, in order.
    pub fn matches(&self, elements: &[E]) -> bool
    where
        E: PartialEq,
    {
        self.len() == elements.len() && self.iter_rev().eq(elements.iter().rev())
    }

    /// The list as a `Vec`, oldest first.
    pub fn to_vec(&self) -> Vec<E>
    where
        E: Clone,
    {
        let mut elements: Vec<E> = self.iter_rev().cloned().collect();
        elements.reverse();
        elements
    }
}

impl<E: Hash> AppendList<E> {
    /// This list with `element` appended; `self` is unchanged and shares its nodes.
    pub fn push(&self, element: E) -> Self {
        let mut hasher = DefaultHasher::new();
        self.hash_value().hash(&mut hasher);
        element.hash(&mut hasher);
        let node = Node {
            hash: hasher.finish(),
            len: self.len() + 1,
            before: self.last.clone(),
            element,
        };
        AppendList {
            last: Some(Arc::new(node)),
        }
    }
}

impl<E> Default for AppendList<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E> Clone for AppendList<E> {
    fn clone(&self) -> Self {
        AppendList {
            last: self.last.clone(),
        }
    }
}

impl<E: PartialEq> PartialEq for AppendList<E> {
    fn eq(&self, other: &Self) -> bool {
        let (mut mine, mut theirs) = (self.last.as_ref(), other.last.as_ref());
        if self.len() != other.len() || self.hash_value() != other.hash_value() {
            return false;
        }
        // Walk back only until the lists share a node: everything before it is shared too.
        loop {
            match (mine, theirs) {
                (Some(a), Some(b)) if Arc::ptr_eq(a, b) => return true,
                (Some(a), Some(b)) if a.element == b.element => (mine, theirs) = (a.before.as_ref(), b.before.as_ref()),
                (None, None) => return true,
                _ => return false,
            }
        }
    }
}

impl<E: Eq> Eq for AppendList<E> {}

impl<E> Hash for AppendList<E> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_usize(self.len());
        state.write_u64(self.hash_value());
    }
}

impl<E: fmt::Debug> fmt::Debug for AppendList<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut elements: Vec<&E> = self.iter_rev().collect();
        elements.reverse();
        f.debug_list().entries(elements).finish()
    }
}

/// The sequential list-append object: its state is the list.
#[derive(Debug)]
pub struct ListAppendModel<E> {
    elements: PhantomData<E>,
}

impl<E> ListAppendModel<E> {
    /// The list-append model.
    pub fn new() -> Self {
        ListAppendModel { elements: PhantomData }
    }
}

impl<E> Default for ListAppendModel<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E: Clone + Eq + Hash + fmt::Debug> Model for ListAppendModel<E> {
    type Call = ListCall<E>;
    type Ret = ListRet<E>;
    type State = AppendList<E>;

    /// Enough to reach past a run of concurrent appends to the next reads, which fix their
    /// order; each check is O(1).
    const LOOKAHEAD_OPS: usize = 32;

    fn init(&self) -> AppendList<E> {
        AppendList::new()
    }

    fn step(&self, state: &AppendList<E>, call: &ListCall<E>, ret: Option<&ListRet<E>>) -> Option<AppendList<E>> {
        match (call, ret) {
            (ListCall::Append(element), None | Some(ListRet::Append)) => Some(state.push(element.clone())),
            (ListCall::Read, None) => Some(state.clone()),
            (ListCall::Read, Some(ListRet::Read(seen))) => state.matches(seen).then(|| state.clone()),
            (call, Some(ret)) => panic!("malformed history: list call {call:?} answered with {ret:?}"),
        }
    }

    fn is_read_only(&self, call: &ListCall<E>, _ret: Option<&ListRet<E>>) -> bool {
        matches!(call, ListCall::Read)
    }

    fn may_still_linearize(&self, state: &AppendList<E>, call: &ListCall<E>, ret: &ListRet<E>) -> bool {
        // Lists only grow, so a pending read must extend the current list. Comparing only the
        // last element keeps this O(1) and still catches the dead end that matters: an append
        // placed before a read that did not see it there.
        match (call, ret) {
            (ListCall::Read, ListRet::Read(seen)) => {
                state.last().is_none_or(|last| seen.get(state.len() - 1) == Some(last))
            }
            _ => true,
        }
    }
}

/// Checks a list-append history, key by key. See [`check_history`].
pub fn check_list_append<K, E>(history: &[ListOp<K, E>], config: &CheckConfig) -> Verdict<K, ListAppendModel<E>>
where
    K: Ord + Clone + fmt::Debug,
    E: Clone + Eq + Hash + fmt::Debug,
{
    check_history(&ListAppendModel::new(), history, config)
}

#[cfg(test)]
mod tests {
    use std::hash::{BuildHasher, RandomState};

    use super::AppendList;

    #[test]
    fn lists_built_separately_are_equal_and_hash_alike() {
        let a = AppendList::new().push(1).push(2).push(3);
        let b = AppendList::new().push(1).push(2).push(3);
        let c = AppendList::new().push(1).push(3).push(2);
        let hasher = RandomState::new();
        assert_eq!(a, b);
        assert_eq!(hasher.hash_one(&a), hasher.hash_one(&b));
        assert_ne!(a, c, "same elements, different order");
        assert_ne!(a, a.push(4));
        assert!(a.matches(&[1, 2, 3]) && !a.matches(&[1, 2]) && !a.matches(&[2, 1, 3]));
        assert_eq!(format!("{a:?}"), "[1, 2, 3]");
        assert_eq!(a.to_vec(), vec![1, 2, 3]);
    }

    #[test]
    fn shared_tails_survive_and_long_lists_drop_without_recursion() {
        let base = AppendList::new().push(0u32);
        let extended = base.push(1);
        drop(extended);
        assert!(
            base.matches(&[0]),
            "dropping an extension must not free the shared prefix"
        );
        let mut long = AppendList::new();
        for element in 0..200_000u32 {
            long = long.push(element);
        }
        assert_eq!(long.len(), 200_000);
        drop(long);
    }
}
