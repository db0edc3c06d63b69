//! What concurrent clients observed: one [`Operation`] per call, with its interval and outcome.

use std::fmt;

/// What a client learned about one operation it issued.
///
/// The three cases are the three things a client of a replicated store can honestly say after
/// a call returns, times out or errors; Jepsen calls them `:ok`, `:fail` and `:info`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Outcome<R> {
    /// The operation took effect exactly once, between invocation and completion, and returned
    /// this result.
    Ok(R),
    /// The operation definitely did not take effect: the server rejected it before proposing it
    /// (for example a `NotLeader` error on a request that never reached the log). The checker
    /// ignores it, so a history in which its effect is observed is reported as a violation.
    Fail,
    /// Nobody knows: the client timed out, the connection broke, the node crashed. The operation
    /// may have taken effect at any moment after its invocation, even long after the client gave
    /// up (a proposal can sit in a leader's log and commit later), or never.
    Unknown,
}

impl<R> Outcome<R> {
    /// The result, if the operation is known to have completed.
    pub fn result(&self) -> Option<&R> {
        match self {
            Outcome::Ok(result) => Some(result),
            Outcome::Fail | Outcome::Unknown => None,
        }
    }
}

/// One call made by one client against one key, as recorded by the test harness.
///
/// Times come from one monotonic clock shared by every client of the history (nanoseconds since
/// the start of the test, or a logical counter that ticks on every invocation and completion).
/// Operation `a` precedes `b` in real time only if `a.complete_time < b.invoke_time`; equal times
/// count as concurrent, because a coarse clock cannot tell which came first and calling them
/// ordered could report violations that did not happen.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Operation<K, C, R> {
    /// The client (Jepsen: process) that issued the call. Used only to describe violations: the
    /// search needs nothing but the intervals.
    pub client: u64,
    /// The key the call addresses; histories are checked one key at a time.
    pub key: K,
    /// What was asked, for example `Write(5)`.
    pub call: C,
    /// When the client sent the request.
    pub invoke_time: u64,
    /// When the client saw the answer. Ignored for [`Outcome::Unknown`], which is treated as
    /// completing at +infinity; must not be before `invoke_time` otherwise.
    pub complete_time: u64,
    /// What came back.
    pub outcome: Outcome<R>,
}

impl<K, C, R> Operation<K, C, R> {
    /// An operation that completed with `result` at `complete_time`.
    pub fn ok(client: u64, key: K, call: C, invoke_time: u64, complete_time: u64, result: R) -> Self {
        Operation {
            client,
            key,
            call,
            invoke_time,
            complete_time,
            outcome: Outcome::Ok(result),
        }
    }

    /// An operation that definitely did not take effect.
    pub fn fail(client: u64, key: K, call: C, invoke_time: u64, complete_time: u64) -> Self {
        Operation {
            client,
            key,
            call,
            invoke_time,
            complete_time,
            outcome: Outcome::Fail,
        }
    }

    /// An operation whose effect is unknown; `gave_up_time` is kept for the record only.
    pub fn unknown(client: u64, key: K, call: C, invoke_time: u64, gave_up_time: u64) -> Self {
        Operation {
            client,
            key,
            call,
            invoke_time,
            complete_time: gave_up_time,
            outcome: Outcome::Unknown,
        }
    }

    /// The time by which the operation must have taken effect, or `None` if it has no deadline
    /// (unknown outcome).
    pub fn deadline(&self) -> Option<u64> {
        match self.outcome {
            Outcome::Ok(_) | Outcome::Fail => Some(self.complete_time),
            Outcome::Unknown => None,
        }
    }
}

impl<K: fmt::Debug, C: fmt::Debug, R: fmt::Debug> fmt::Display for Operation<K, C, R> {
    /// One line such as `client 3 key "a" [120, 180] Write(5) -> Ok(Write)`, so a violation report
    /// can be matched against the harness's own log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "client {} key {:?} [{}, ", self.client, self.key, self.invoke_time)?;
        match &self.outcome {
            Outcome::Ok(result) => write!(f, "{}] {:?} -> Ok({result:?})", self.complete_time, self.call),
            Outcome::Fail => write!(f, "{}] {:?} -> Fail", self.complete_time, self.call),
            Outcome::Unknown => write!(f, "inf) {:?} -> Unknown", self.call),
        }
    }
}
