//! A linearizability checker for histories recorded against a kvorum cluster, and a checker for
//! watch streams.
//!
//! A *history* is what concurrent clients observed: for every operation, who issued it, when it
//! was invoked, when it completed and what came back ([`Operation`]). It is *linearizable*
//! (Herlihy & Wing 1990) if one total order of its operations both respects real time (an
//! operation that completed before another was invoked comes first) and is a legal run of the
//! sequential object (a [`Model`]): every read in that order returns what the writes before it
//! leave behind.
//!
//! # The search
//!
//! Deciding this is NP-complete in general (Gibbons & Korach 1997), so the checker searches, as
//! Knossos and porcupine do:
//!
//! ```text
//!  time ─────────────────────────────────────────────────────────▶
//!  client 1  [── Write(1) ──]          [── Read → 2 ──]
//!  client 2        [──── Write(2) ────]
//!  client 3           [── Cas(1→3) … (timed out: may take effect any time, or never)
//!
//!  candidates at the start: Write(1), Write(2), Cas  (invoked before Write(1)'s completion)
//!  try Write(1) ─▶ state 1 ─▶ try Write(2) ─▶ state 2 ─▶ Read → 2 fits ─▶ linearizable
//! ```
//!
//! - **Wing & Gong (1993)**: depth-first search over "which pending operation takes effect
//!   next", applying each choice to the model and backtracking when the model refuses.
//! - **Lowe (2017)**, two improvements that make it practical: *just-in-time linearization*
//!   only considers operations invoked before the earliest completion among the operations not
//!   yet linearized (anything later cannot come first), and *memoization* of
//!   `(set of linearized operations, model state)`: two paths that reach the same configuration
//!   have the same future, so the second is pruned. The set is a bitset; the cache is a hash set.
//! - **Per-key partitioning** (Herlihy & Wing's locality theorem; Horn & Kroening 2015,
//!   "P-compositionality"): a history is linearizable iff each key's sub-history is, so keys are
//!   searched separately and a violation names its key.
//! - **Four sound prunings of our own**, without which the workloads below blow up (see
//!   `search.rs`, and `tests/differential.rs`, which checks them against brute force): a read
//!   that fits the current state is taken without branching; a configuration that linearized
//!   more unknown operations than an explored one with the same state is skipped; an unknown
//!   operation whose effect the next step overwrites is skipped; and a model may declare a state
//!   dead early ([`Model::may_still_linearize`]), which the list model does when a pending read
//!   cannot extend the list any more.
//!
//! The search is bounded by [`CheckConfig::max_states_per_key`]; past it the answer is
//! [`Verdict::TooComplex`], never a hang and never a silent pass.
//!
//! # Cost
//!
//! A linearizable history is cheap: one key, 2,000 operations from ten concurrent clients, 3%
//! unknown outcomes, takes 10–70 thousand configurations, tens of milliseconds in a release
//! build. Proving a violation costs more, because every order of everything before the bad
//! operation has to be ruled out: 20–100 thousand configurations on that key with unique or
//! known-outcome writes, but millions when many timed-out writes reuse values that other writes
//! also wrote (each could explain any later read of its value). So record histories over many
//! keys (a few hundred operations each is ideal) and write unique values.
//!
//! # Unknown and failed outcomes
//!
//! A client that timed out cannot say whether its write happened. With Raft it may commit much
//! later: the proposal sits in a deposed leader's log until the next leader replicates it. So an
//! [`Outcome::Unknown`] operation is given a completion time of +infinity: it may linearize
//! anywhere after its invocation. It may also never happen; the search needs no special case for
//! that, because "never" is indistinguishable from "after every operation with a deadline", so
//! the search succeeds once every operation with a known outcome is placed. Treating unknown
//! operations as failed would report false violations when a timed-out write is later read;
//! treating them as succeeded would report false violations when it never committed (Kingsbury,
//! "Knossos" and Jepsen's `:info`). Unknown reads are dropped: they change nothing and their
//! result is not known. [`Outcome::Fail`] operations are dropped too: the client was told they
//! did not happen, so a read that sees their effect is a violation.
//!
//! # Workloads
//!
//! - [`register`]: `Read`, `Write`, `Cas` on one value per key ([`check_registers`]).
//! - [`list_append`]: `Append` and whole-list `Read` per key, Elle's workload
//!   ([`check_list_append`]).
//! - [`watch`]: order, duplicates, atomic revisions, gaps and resumption of watch streams.
//!
//! # References
//!
//! - M. Herlihy, J. Wing. *Linearizability: A Correctness Condition for Concurrent Objects.*
//!   TOPLAS 12(3), 1990.
//! - J. Wing, C. Gong. *Testing and Verifying Concurrent Objects.* JPDC 17(1–2), 1993.
//! - P. Gibbons, E. Korach. *Testing Shared Memories.* SIAM J. Computing 26(4), 1997: checking
//!   linearizability is NP-complete.
//! - G. Lowe. *Testing for Linearizability.* Concurrency and Computation: Practice and
//!   Experience 29(4), 2017.
//! - A. Horn, D. Kroening. *Faster Linearizability Checking via P-Compositionality.* FORTE 2015.
//! - porcupine (A. Athalye), <https://github.com/anishathalye/porcupine>: the same algorithm
//!   in Go; our entry list and tie-break (calls before returns at equal times) follow it.
//! - Knossos (K. Kingsbury), <https://github.com/jepsen-io/knossos>: Jepsen's checker, and the
//!   source of the ok/fail/info outcome model.
//! - K. Kingsbury, P. Alvaro. *Elle: Inferring Isolation Anomalies from Experimental
//!   Observations.* VLDB 2020: the list-append workload.

#![deny(missing_docs)]

mod bitset;
mod history;
pub mod list_append;
mod memo;
mod model;
mod partition;
pub mod register;
mod search;
mod verdict;
pub mod watch;

#[cfg(test)]
mod tests;

pub use history::{Operation, Outcome};
pub use list_append::{AppendList, ListAppendModel, ListCall, ListOp, ListRet, check_list_append};
pub use model::Model;
pub use partition::{CheckConfig, check_history};
pub use register::{RegisterCall, RegisterModel, RegisterOp, RegisterRet, check_registers};
pub use verdict::{CheckStats, IndexedOp, Verdict, Violation};
pub use watch::{
    EventKind, KeyRange, Position, WatchEvent, WatchSpec, WatchSummary, WatchViolation, check_watch_resume,
    check_watch_stream,
};
