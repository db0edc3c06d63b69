//! The leader's view of each follower's replication, and the flow control on it.
//!
//! # Design note: the progress state machine
//!
//! ```text
//!                 reject / unreachable                 snapshot sent, reported
//!   ┌─────────┐ ◄──────────────────── ┌───────────┐   ┌──────────┐ ─────────────┐
//!   │  Probe  │ ────────────────────► │ Replicate │   │ Snapshot │              │
//!   └─────────┘    accepted append    └───────────┘   └──────────┘ ◄── needed entry
//!        ▲                                                   │        compacted
//!        └───────────────────────────────────────────────────┘
//! ```
//!
//! - **Probe**: the leader does not know where the follower's log matches. It sends one
//!   AppendEntries and waits for the answer (or the next heartbeat response) before sending
//!   another, backing `next_index` off with the follower's conflict hint.
//! - **Replicate**: the logs match up to `match_index`. The leader streams entries
//!   optimistically, advancing `next_index` as it sends, bounded by a window of
//!   `max_inflight_msgs` messages and `max_inflight_bytes` bytes; acknowledgements free the
//!   window. A rejection drops back to Probe from `match_index + 1`.
//! - **Snapshot**: the entries the follower needs are compacted. The leader sends one
//!   InstallSnapshot and sends nothing else until the transport reports the transfer; the
//!   follower's reply to the next probe then moves it on.
//!
//! The window bounds the bandwidth-delay product per follower, so a slow follower costs the
//! leader bounded memory and never delays the others.

use std::collections::VecDeque;

use crate::types::Index;

/// Replication state of one follower.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgressState {
    /// Finding the match point, one message at a time.
    Probe,
    /// Streaming entries within the inflight window.
    Replicate,
    /// Waiting for a snapshot transfer ending at `pending_index`.
    Snapshot {
        /// Index of the snapshot being sent.
        pending_index: Index,
    },
}

/// What the leader knows about one follower.
#[derive(Clone, Debug)]
pub struct Progress {
    /// Highest index known replicated on the follower (§5.3 `matchIndex`).
    pub match_index: Index,
    /// Next index to send (§5.3 `nextIndex`). Invariant: `match_index < next_index`.
    pub next_index: Index,
    /// See the module docs.
    pub state: ProgressState,
    /// Probe: a message is outstanding; send nothing more until a reply or heartbeat reply.
    pub probe_sent: bool,
    /// Heard from the follower since the last CheckQuorum round.
    pub recent_active: bool,
    /// Latest commit index sent to this follower, so commit news is sent once.
    pub sent_commit: Index,
    /// Latest ReadIndex round the follower acknowledged in this term.
    pub read_round_acked: u64,
    inflight: Inflights,
}

impl Progress {
    /// Progress for a follower when this node becomes leader with `last_index`.
    pub fn new(last_index: Index, max_msgs: usize, max_bytes: u64) -> Self {
        Progress {
            match_index: 0,
            next_index: last_index + 1,
            state: ProgressState::Probe,
            probe_sent: false,
            recent_active: false,
            sent_commit: 0,
            read_round_acked: 0,
            inflight: Inflights::new(max_msgs, max_bytes),
        }
    }

    /// Whether the leader should hold back AppendEntries to this follower.
    pub fn is_paused(&self) -> bool {
        match self.state {
            ProgressState::Probe => self.probe_sent,
            ProgressState::Replicate => self.inflight.is_full(),
            ProgressState::Snapshot { .. } => true,
        }
    }

    /// Switches to Probe, resending from just after what is known to match.
    pub fn become_probe(&mut self) {
        if let ProgressState::Snapshot { pending_index } = self.state {
            self.next_index = self.match_index.max(pending_index) + 1;
        } else {
            self.next_index = self.match_index + 1;
        }
        self.reset(ProgressState::Probe);
    }

    /// Switches to Replicate.
    pub fn become_replicate(&mut self) {
        self.next_index = self.match_index + 1;
        self.reset(ProgressState::Replicate);
    }

    /// Switches to Snapshot for a transfer ending at `pending_index`.
    pub fn become_snapshot(&mut self, pending_index: Index) {
        self.reset(ProgressState::Snapshot { pending_index });
    }

    fn reset(&mut self, state: ProgressState) {
        self.state = state;
        self.probe_sent = false;
        self.inflight.clear();
    }

    /// Records that an AppendEntries ending at `last` with `bytes` of entries was sent.
    pub fn sent_entries(&mut self, last: Index, bytes: u64) {
        match self.state {
            ProgressState::Replicate => {
                if last >= self.next_index {
                    self.next_index = last + 1;
                    self.inflight.add(last, bytes);
                }
            }
            ProgressState::Probe => self.probe_sent = true,
            ProgressState::Snapshot { .. } => unreachable!("entries sent while a snapshot is pending"),
        }
    }

    /// A successful append reply up to `index`. Returns whether it told us anything new.
    pub fn maybe_update(&mut self, index: Index) -> bool {
        let updated = index > self.match_index;
        if updated {
            self.match_index = index;
            self.probe_sent = false;
        }
        self.next_index = self.next_index.max(index + 1);
        self.inflight.free_through(index);
        updated
    }

    /// A rejection of the append at `rejected` with the follower's hint `match_hint`.
    /// Returns false when the rejection is stale (a later message already moved us on).
    pub fn maybe_decrease(&mut self, rejected: Index, match_hint: Index) -> bool {
        if self.state == ProgressState::Replicate {
            if rejected <= self.match_index {
                return false;
            }
            self.next_index = self.match_index + 1;
            return true;
        }
        if self.next_index - 1 != rejected {
            return false;
        }
        self.next_index = (rejected.min(match_hint + 1)).max(self.match_index + 1);
        self.probe_sent = false;
        true
    }

    /// Frees the oldest in-flight message, assuming it was lost.
    pub fn free_oldest_inflight(&mut self) {
        if let Some((_, bytes)) = self.inflight.entries.pop_front() {
            self.inflight.bytes -= bytes;
        }
    }

    /// Messages currently in flight (for status and tests).
    pub fn inflight_count(&self) -> usize {
        self.inflight.entries.len()
    }
}

/// A window of in-flight AppendEntries: (last index, bytes) per message.
#[derive(Clone, Debug)]
struct Inflights {
    entries: VecDeque<(Index, u64)>,
    bytes: u64,
    max_msgs: usize,
    max_bytes: u64,
}

impl Inflights {
    fn new(max_msgs: usize, max_bytes: u64) -> Self {
        Inflights {
            entries: VecDeque::new(),
            bytes: 0,
            max_msgs,
            max_bytes,
        }
    }

    fn is_full(&self) -> bool {
        self.entries.len() >= self.max_msgs || self.bytes >= self.max_bytes
    }

    fn add(&mut self, last: Index, bytes: u64) {
        self.entries.push_back((last, bytes));
        self.bytes += bytes;
    }

    fn free_through(&mut self, index: Index) {
        while let Some(&(last, bytes)) = self.entries.front() {
            if last > index {
                break;
            }
            self.entries.pop_front();
            self.bytes -= bytes;
        }
    }

    fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicate_window_fills_by_count_and_by_bytes_and_frees_on_ack() {
        let mut p = Progress::new(10, 2, 1000);
        p.match_index = 10;
        p.become_replicate();
        p.sent_entries(12, 10);
        assert!(!p.is_paused());
        p.sent_entries(14, 10);
        assert!(p.is_paused(), "two messages fill a window of two");
        assert!(p.maybe_update(12));
        assert!(!p.is_paused());
        assert_eq!(p.next_index, 15);

        let mut q = Progress::new(10, 100, 50);
        q.become_replicate();
        q.sent_entries(11, 60);
        assert!(q.is_paused(), "60 bytes fill a 50-byte window");
    }

    #[test]
    fn stale_rejections_are_ignored() {
        let mut p = Progress::new(10, 8, 1 << 20);
        p.match_index = 5;
        p.become_replicate();
        p.sent_entries(9, 1);
        assert!(!p.maybe_decrease(5, 3), "rejection at or below match is stale");
        assert!(p.maybe_decrease(8, 3));
        assert_eq!(p.next_index, 6, "replicate falls back to match + 1");

        let mut probe = Progress::new(10, 8, 1 << 20);
        assert!(
            !probe.maybe_decrease(7, 3),
            "probe only honours a rejection of its last probe"
        );
        assert!(probe.maybe_decrease(10, 3));
        assert_eq!(probe.next_index, 4, "conflict hint skips back in one step");
    }

    #[test]
    fn probe_sends_one_message_at_a_time() {
        let mut p = Progress::new(10, 8, 1 << 20);
        assert!(!p.is_paused());
        p.sent_entries(11, 1);
        assert!(p.is_paused());
        p.maybe_update(9);
        assert!(!p.is_paused());
    }
}
