//! The Wing & Gong search with Lowe's improvements, over one key's operations.
//!
//! Every operation becomes a call entry and, unless its outcome is unknown, a return entry; the
//! entries form one doubly linked list sorted by time. The search walks the list from the head:
//!
//! ```text
//!   head ─▶ call A ─▶ call B ─▶ ret A ─▶ call C ─▶ ret B ─▶ ret C
//!           └────────┬───────┘  │
//!        candidates: A, B       └ first return: A must be linearized before anything invoked
//!                                 after this point, so C is not a candidate yet
//! ```
//!
//! Linearizing a candidate "lifts" its call and return out of the list and restarts at the head;
//! reaching a return entry means that operation's deadline passed with no legal order found from
//! here, so the search pops the last lifted operation, puts it back (dancing links: re-insertion
//! in reverse order of removal restores the list exactly) and tries the next candidate after it.
//!
//! On top of Lowe's memoization, four prunings keep real histories cheap; each is argued where
//! it is implemented, and `tests/differential.rs` checks them all against brute force:
//!
//! - forced reads (`Phase::Forced`): a read-only candidate that fits is taken without branching;
//! - dominance of unknown outcomes (`Memo`): fewer unknown operations linearized is never worse;
//! - irrelevant unknowns (`Search::ignores_unknown_on_top`): an unknown operation immediately
//!   overwritten is pruned, since skipping it reaches the same state;
//! - model lookahead ([`Model::may_still_linearize`]): a state that a pending read can no longer
//!   grow into is dropped at once.

use super::bitset::Bitset;
use super::memo::Memo;
use super::model::Model;

/// Marks "no node" in the entry list's links.
const NIL: usize = usize::MAX;
/// The sentinel node before the first entry, so unlinking never special-cases the head.
const HEAD: usize = 0;

/// What the search needs to know about one operation, borrowed from the history.
pub(super) struct SearchOp<'a, C, R> {
    pub(super) call: &'a C,
    /// `None` for an unknown outcome.
    pub(super) ret: Option<&'a R>,
    pub(super) invoke_time: u64,
    /// `None` for an unknown outcome: no deadline, so no return entry.
    pub(super) deadline: Option<u64>,
}

/// How the search over one key ended. Indices are positions in the `ops` slice.
pub(super) enum SearchResult<S> {
    Linearizable {
        explored_states: u64,
    },
    Violation {
        explored_states: u64,
        /// The longest linearization found, in order.
        longest_prefix: Vec<usize>,
        /// The model state after `longest_prefix`.
        state: S,
        /// The not-yet-linearized operation with the earliest deadline.
        deadline_op: usize,
        /// Completed operations invoked by that deadline that cannot come next from `state`.
        stuck: Vec<usize>,
    },
    TooComplex {
        explored_states: u64,
    },
}

/// The time-ordered list of call and return entries, with links that survive removal so that
/// lifted entries can be put back in O(1).
struct EntryList {
    next: Vec<usize>,
    prev: Vec<usize>,
    /// The operation each node belongs to; meaningless for `HEAD`.
    op: Vec<usize>,
    is_call: Vec<bool>,
    /// The return node of each operation, `NIL` for unknown outcomes.
    return_node: Vec<usize>,
}

impl EntryList {
    fn new<C, R>(ops: &[SearchOp<'_, C, R>]) -> Self {
        // (time, is_return, op): at equal times calls sort first, so touching intervals count as
        // concurrent (see `Operation`); the op index makes the order total and reproducible.
        let mut events: Vec<(u64, bool, usize)> = Vec::with_capacity(2 * ops.len());
        for (index, op) in ops.iter().enumerate() {
            events.push((op.invoke_time, false, index));
            if let Some(deadline) = op.deadline {
                events.push((deadline, true, index));
            }
        }
        events.sort_unstable();

        let nodes = events.len() + 1;
        let mut list = EntryList {
            next: (1..=nodes).map(|n| if n == nodes { NIL } else { n }).collect(),
            prev: (0..nodes).map(|n| n.wrapping_sub(1)).collect(),
            op: vec![NIL; nodes],
            is_call: vec![false; nodes],
            return_node: vec![NIL; ops.len()],
        };
        for (position, &(_, is_return, index)) in events.iter().enumerate() {
            let node = position + 1;
            list.op[node] = index;
            list.is_call[node] = !is_return;
            if is_return {
                list.return_node[index] = node;
            }
        }
        list
    }

    fn first(&self) -> usize {
        self.next[HEAD]
    }

    fn unlink(&mut self, node: usize) {
        let (prev, next) = (self.prev[node], self.next[node]);
        self.next[prev] = next;
        if next != NIL {
            self.prev[next] = prev;
        }
    }

    /// Undoes `unlink`; valid only in reverse order of the unlinks (the node's own links are
    /// stale otherwise).
    fn relink(&mut self, node: usize) {
        let (prev, next) = (self.prev[node], self.next[node]);
        self.next[prev] = node;
        if next != NIL {
            self.prev[next] = node;
        }
    }

    /// The first `limit` operations not linearized yet, in invocation order, other than
    /// `except`: what the model's lookahead is asked about. Operations past the first return
    /// entry are included on purpose: they too must be linearized after the current state, and
    /// they are the reads that pin down the order of the candidates.
    fn unlinearized(&self, except: usize, limit: usize) -> impl Iterator<Item = usize> + '_ {
        std::iter::successors(Some(self.first()), |&node| self.next.get(node).copied())
            .take_while(|&node| node != NIL)
            .filter(|&node| self.is_call[node])
            .take(limit)
            .map(|node| self.op[node])
            .filter(move |&op| op != except)
    }

    fn lift(&mut self, call_node: usize) {
        self.unlink(call_node);
        let return_node = self.return_node[self.op[call_node]];
        if return_node != NIL {
            self.unlink(return_node);
        }
    }

    fn unlift(&mut self, call_node: usize) {
        let return_node = self.return_node[self.op[call_node]];
        if return_node != NIL {
            self.relink(return_node);
        }
        self.relink(call_node);
    }
}

/// Where each operation lives in the linearized sets: completed operations and unknown ones in
/// separate bitsets (memoization treats them differently), each numbered in invocation order so
/// the sets' compact keys stay short.
struct Slots {
    /// For each operation, its bit in `Linearized::definite` or `Linearized::unknown`.
    bit: Vec<usize>,
    definite_len: usize,
    unknown_len: usize,
}

impl Slots {
    fn new<C, R>(ops: &[SearchOp<'_, C, R>]) -> Self {
        let mut order: Vec<usize> = (0..ops.len()).collect();
        order.sort_by_key(|&index| (ops[index].invoke_time, index));
        let mut slots = Slots {
            bit: vec![0; ops.len()],
            definite_len: 0,
            unknown_len: 0,
        };
        for index in order {
            let next = if ops[index].deadline.is_some() {
                &mut slots.definite_len
            } else {
                &mut slots.unknown_len
            };
            slots.bit[index] = *next;
            *next += 1;
        }
        slots
    }
}

/// The operations linearized so far.
struct Linearized {
    definite: Bitset,
    unknown: Bitset,
}

impl Linearized {
    fn set(&mut self, slots: &Slots, op: &SearchOp<'_, impl Sized, impl Sized>, index: usize, linearized: bool) {
        let set = if op.deadline.is_some() {
            &mut self.definite
        } else {
            &mut self.unknown
        };
        if linearized {
            set.insert(slots.bit[index]);
        } else {
            set.remove(slots.bit[index]);
        }
    }
}

/// Which candidates the walk over the entry list is currently trying, in this order at every
/// configuration:
///
/// 1. `Forced`: a completed read-only operation ([`Model::is_read_only`]: a read, a failed
///    compare-and-set) that fits the current state is linearized at once, without branching.
///    Any linearization that places it later can place it now instead: it is already invoked,
///    everything that had to precede it is already linearized, and it changes no state wherever
///    it lands. So if the configuration after it fails, the one before it fails too.
/// 2. `Definite`: completed operations, each a branch.
/// 3. `Unknown`: operations with unknown outcomes, last: they never have to be placed, and
///    trying them after the rest means the memo sees a configuration without an unknown
///    operation before the ones with it, which is what lets dominance prune the latter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Forced,
    Definite,
    Unknown,
}

/// What trying one candidate did.
enum Tried {
    /// Not eligible in this phase, refused by the model, or already explored: try the next.
    Rejected,
    /// Linearized: the search moved to a new configuration.
    Entered,
    /// A forced operation leads to an explored configuration, so this one fails as well.
    DeadEnd,
}

/// One linearized operation on the search stack.
struct Frame<S> {
    call_node: usize,
    /// The state before the operation, restored on backtracking.
    before: S,
    /// Linearized without alternatives (see `Phase::Forced`): backtracking passes through it.
    forced: bool,
}

/// The longest linearization seen so far, kept up to date in amortized O(1) per step: only the
/// part of the stack that changed since the last record is copied.
struct Longest<S> {
    ops: Vec<usize>,
    state: S,
    /// How many leading stack entries are known to equal `ops`.
    agree: usize,
}

/// Searches for a linearization of `ops` (one key's operations) against `model`, entering at
/// most `max_states` distinct configurations.
pub(super) fn search<M: Model>(
    model: &M,
    ops: &[SearchOp<'_, M::Call, M::Ret>],
    max_states: u64,
) -> SearchResult<M::State> {
    let slots = Slots::new(ops);
    let state = model.init();
    Search {
        model,
        ops,
        list: EntryList::new(ops),
        linearized: Linearized {
            definite: Bitset::new(slots.definite_len),
            unknown: Bitset::new(slots.unknown_len),
        },
        // Success does not require linearizing unknown operations: one that never happened
        // is indistinguishable from one that happened after everything else.
        pending_deadlines: slots.definite_len,
        slots,
        memo: Memo::new(),
        stack: Vec::new(),
        longest: Longest {
            ops: Vec::new(),
            state: state.clone(),
            agree: 0,
        },
        state,
    }
    .run(max_states)
}

/// The search's whole mutable state.
struct Search<'s, 'a, M: Model> {
    model: &'s M,
    ops: &'s [SearchOp<'a, M::Call, M::Ret>],
    list: EntryList,
    slots: Slots,
    linearized: Linearized,
    memo: Memo<M::State>,
    stack: Vec<Frame<M::State>>,
    state: M::State,
    longest: Longest<M::State>,
    /// Completed operations not linearized yet; the search succeeds when none are left.
    pending_deadlines: usize,
}

impl<M: Model> Search<'_, '_, M> {
    fn run(mut self, max_states: u64) -> SearchResult<M::State> {
        let mut phase = Phase::Forced;
        let mut node = self.list.first();
        while self.pending_deadlines > 0 {
            // Cannot be NIL: a return entry is still in the list and the walk never passes one.
            let tried = if self.list.is_call[node] {
                self.try_candidate(node, phase)
            } else {
                Tried::DeadEnd
            };
            match tried {
                Tried::Rejected => node = self.list.next[node],
                Tried::Entered if self.memo.len() > max_states => {
                    return SearchResult::TooComplex {
                        explored_states: self.memo.len(),
                    };
                }
                Tried::Entered => (phase, node) = (Phase::Forced, self.list.first()),
                Tried::DeadEnd => {
                    let at_return = !self.list.is_call[node];
                    let has_unknown = self.slots.unknown_len > 0;
                    // Reaching a return entry ends the current phase's candidates.
                    match phase {
                        Phase::Forced if at_return => (phase, node) = (Phase::Definite, self.list.first()),
                        Phase::Definite if at_return && has_unknown => {
                            (phase, node) = (Phase::Unknown, self.list.first())
                        }
                        _ => match self.backtrack() {
                            Some((resume_phase, call_node)) => {
                                (phase, node) = (resume_phase, self.list.next[call_node])
                            }
                            None => return violation(self.model, self.ops, self.longest, self.memo.len()),
                        },
                    }
                }
            }
        }
        SearchResult::Linearizable {
            explored_states: self.memo.len(),
        }
    }

    /// Tries to linearize the operation whose call entry is `node` next.
    fn try_candidate(&mut self, node: usize, phase: Phase) -> Tried {
        let index = self.list.op[node];
        let op = &self.ops[index];
        let definite = op.deadline.is_some();
        if definite != (phase != Phase::Unknown) {
            return Tried::Rejected;
        }
        let forced = phase == Phase::Forced;
        if forced && !self.model.is_read_only(op.call, op.ret) {
            return Tried::Rejected;
        }
        let pending = self
            .list
            .unlinearized(index, M::LOOKAHEAD_OPS)
            .map(|other| &self.ops[other]);
        let Some(next_state) = advance(self.model, &self.state, op, pending) else {
            return Tried::Rejected;
        };
        if self.ignores_unknown_on_top(op, &next_state) {
            return Tried::Rejected;
        }
        self.linearized.set(&self.slots, op, index, true);
        if !self
            .memo
            .enter(&self.linearized.definite, &self.linearized.unknown, &next_state)
        {
            self.linearized.set(&self.slots, op, index, false);
            return if forced { Tried::DeadEnd } else { Tried::Rejected };
        }
        self.stack.push(Frame {
            call_node: node,
            before: std::mem::replace(&mut self.state, next_state),
            forced,
        });
        self.list.lift(node);
        self.pending_deadlines -= usize::from(definite);
        let longest = &mut self.longest;
        if self.stack.len() > longest.ops.len() {
            longest.ops.truncate(longest.agree);
            longest.ops.extend(
                self.stack[longest.agree..]
                    .iter()
                    .map(|frame| self.list.op[frame.call_node]),
            );
            longest.agree = self.stack.len();
            longest.state = self.state.clone();
        }
        Tried::Entered
    }

    /// Whether the most recent step linearized an unknown operation that `op` makes irrelevant:
    /// `op` reaches `next_state` from the state before it as well. Then the configuration
    /// without the unknown operation has the same state and fewer unknowns, so it dominates
    /// this one, and it is explored from the configuration below (the unknown operation's call
    /// precedes the same first return, so `op` is a candidate there too). The memo catches this
    /// for completed operations, which are tried first; for unknown ones, which are tried in
    /// list order, it would otherwise explore every subset of the pending unknown operations.
    fn ignores_unknown_on_top(&self, op: &SearchOp<'_, M::Call, M::Ret>, next_state: &M::State) -> bool {
        let Some(top) = self.stack.last() else {
            return false;
        };
        let top_is_unknown = !top.forced && self.ops[self.list.op[top.call_node]].deadline.is_none();
        top_is_unknown && self.model.step(&top.before, op.call, op.ret).as_ref() == Some(next_state)
    }

    /// Undoes linearized operations up to and including the most recent one that was a choice,
    /// and returns where to resume trying its alternatives; `None` when there are none left.
    fn backtrack(&mut self) -> Option<(Phase, usize)> {
        loop {
            let frame = self.stack.pop()?;
            self.state = frame.before;
            let undone = self.list.op[frame.call_node];
            let op = &self.ops[undone];
            self.linearized.set(&self.slots, op, undone, false);
            self.list.unlift(frame.call_node);
            self.pending_deadlines += usize::from(op.deadline.is_some());
            self.longest.agree = self.longest.agree.min(self.stack.len());
            if !frame.forced {
                let phase = if op.deadline.is_some() {
                    Phase::Definite
                } else {
                    Phase::Unknown
                };
                return Some((phase, frame.call_node));
            }
        }
    }
}

/// The state after `op`, if the model accepts it from `state` and every completed operation in
/// `pending` can still be linearized afterwards.
fn advance<'a, M: Model + 'a>(
    model: &M,
    state: &M::State,
    op: &SearchOp<'a, M::Call, M::Ret>,
    pending: impl Iterator<Item = &'a SearchOp<'a, M::Call, M::Ret>>,
) -> Option<M::State> {
    let next_state = model.step(state, op.call, op.ret)?;
    let mut pending = pending.filter_map(|other| other.ret.map(|ret| (other.call, ret)));
    pending
        .all(|(call, ret)| model.may_still_linearize(&next_state, call, ret))
        .then_some(next_state)
}

/// Explains a failed search from its deepest point: which operation's deadline could not be met
/// and which candidates the model refused there.
fn violation<M: Model>(
    model: &M,
    ops: &[SearchOp<'_, M::Call, M::Ret>],
    longest: Longest<M::State>,
    explored_states: u64,
) -> SearchResult<M::State> {
    let mut done = vec![false; ops.len()];
    for &index in &longest.ops {
        done[index] = true;
    }
    // Same tie-break as the entry list: earliest deadline, then lowest index.
    let deadline_op = (0..ops.len())
        .filter(|&index| !done[index])
        .filter_map(|index| ops[index].deadline.map(|deadline| (deadline, index)))
        .min()
        .map(|(_, index)| index)
        .expect("a failed search leaves an operation with a deadline unlinearized");
    let deadline = ops[deadline_op].deadline.unwrap_or(u64::MAX);
    let candidates: Vec<usize> = (0..ops.len())
        .filter(|&index| !done[index] && ops[index].invoke_time <= deadline)
        .collect();
    let stuck = candidates
        .iter()
        .copied()
        .filter(|&index| ops[index].deadline.is_some())
        .filter(|&index| {
            let others = candidates
                .iter()
                .filter(|&&other| other != index)
                .map(|&other| &ops[other]);
            advance(model, &longest.state, &ops[index], others).is_none()
        })
        .collect();
    SearchResult::Violation {
        explored_states,
        longest_prefix: longest.ops,
        state: longest.state,
        deadline_op,
        stuck,
    }
}

#[cfg(test)]
mod tests {
    use super::{EntryList, HEAD, NIL, SearchOp};

    fn walk(list: &EntryList) -> Vec<(usize, bool)> {
        let mut out = Vec::new();
        let mut node = list.next[HEAD];
        while node != NIL {
            out.push((list.op[node], list.is_call[node]));
            node = list.next[node];
        }
        out
    }

    #[test]
    fn entries_sort_calls_before_returns_at_equal_times_and_lift_restores_order() {
        let op = |invoke_time, deadline| SearchOp::<(), ()> {
            call: &(),
            ret: None,
            invoke_time,
            deadline,
        };
        // Op 0 completes at 10, exactly when op 1 is invoked; op 2 has no deadline.
        let ops = [op(0, Some(10)), op(10, Some(20)), op(5, None)];
        let mut list = EntryList::new(&ops);
        let original = vec![(0, true), (2, true), (1, true), (0, false), (1, false)];
        assert_eq!(walk(&list), original);

        list.lift(list.first());
        assert_eq!(walk(&list), vec![(2, true), (1, true), (1, false)]);
        let op1_call = list.next[list.first()];
        list.lift(op1_call);
        assert_eq!(walk(&list), vec![(2, true)]);
        list.unlift(op1_call);
        list.unlift(1);
        assert_eq!(walk(&list), original, "unlifting in reverse order restores the list");
    }
}
