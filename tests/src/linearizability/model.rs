//! The sequential specification a history is checked against.

use std::fmt::Debug;
use std::hash::Hash;

/// A sequential object: a state and a step function, as in porcupine's `Model`.
///
/// The search memoizes `(linearized set, state)` pairs, so `State` must be cheap to clone, hash
/// and compare; the list model shares structure for exactly this reason.
pub trait Model {
    /// What a client asks, for example `Write(5)`.
    type Call: Clone + Debug;
    /// What the object answers, for example `Read(Some(5))`.
    type Ret: Clone + Debug;
    /// The object's state between two operations. Two states that compare equal must behave
    /// identically for every later call, or memoization prunes live branches.
    type State: Clone + Eq + Hash + Debug;

    /// The state before any operation: an absent key.
    fn init(&self) -> Self::State;

    /// Applies `call` to `state` and returns the next state, or `None` if the object could not
    /// have answered `ret` from `state`.
    ///
    /// `ret` is `None` for an operation with an unknown outcome: the answer is unconstrained, so
    /// the step should succeed with whatever effect the call would have had from `state`. The
    /// model must be deterministic (one next state per state, call and answer); the register and
    /// list models are.
    fn step(&self, state: &Self::State, call: &Self::Call, ret: Option<&Self::Ret>) -> Option<Self::State>;

    /// Whether the operation leaves the state unchanged whenever the model accepts it: a read,
    /// or a compare-and-set known to have failed. `ret` is `None` for an unknown outcome.
    ///
    /// Contract: if this is `true`, `step(s, call, ret)` is `None` or `Some(s)` for every `s`.
    ///
    /// The search uses this twice. Unknown read-only operations are dropped: they constrain
    /// nothing, yet each would double the configurations to visit. Completed read-only
    /// operations that fit the current state are linearized without branching (see the search's
    /// `Phase::Forced`), which is only sound because they change nothing wherever they land.
    fn is_read_only(&self, call: &Self::Call, ret: Option<&Self::Ret>) -> bool;

    /// How many not-yet-linearized completed operations, oldest invocation first, the search
    /// passes to [`Model::may_still_linearize`] after each step. Zero (the default) skips the
    /// lookahead, which is right for models that always answer `true`.
    const LOOKAHEAD_OPS: usize = 0;

    /// Whether `call`, completed with `ret` but not linearized yet, could still be linearized at
    /// some later point now that the object is in `state`, whatever happens in between.
    ///
    /// Answering `true` is always correct, and is the default. A model whose states only grow
    /// can often answer `false` early: a list that already ends in an element a pending read did
    /// not see can never become that read's result. The search then drops the branch at once
    /// instead of discovering the dead end at the read's deadline, after trying every order of
    /// the operations in between; without it, concurrent appends cost factorial time.
    fn may_still_linearize(&self, state: &Self::State, call: &Self::Call, ret: &Self::Ret) -> bool {
        let _ = (state, call, ret);
        true
    }
}
