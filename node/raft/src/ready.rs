//! The work the core hands to its driver, and the order in which it must be done.
//!
//! # The ordering contract
//!
//! The driver loops: feed inputs (`tick`, `step`, `propose`, …), then take a [`Ready`] with
//! [`crate::Raft::ready`] and carry it out **in this order**:
//!
//! 1. **Persist**, as one atomic write: `snapshot` (install the received snapshot data into
//!    the state machine and replace the whole stored log by it), then `entries` (appending an
//!    entry at index *i* discards every stored entry at *i* and above), then `hard_state`.
//!    The write must be durable (fsynced) when this step ends.
//! 2. **Send** `messages`. Each may depend on step 1: a vote grant on the persisted vote, an
//!    append acknowledgement on the persisted entries. Sending any of them before step 1 is
//!    durable can elect two leaders in one term or lose committed entries.
//! 3. **Apply** `committed_entries` to the state machine in order. They are committed and
//!    already durable locally, so this may overlap with the next Ready's persistence. The
//!    applied index must be made durable in the same write as the state it describes.
//! 4. **Serve** `read_states`: each read may run once the state machine has applied its
//!    `index`. Reads in `dropped_reads` failed (leadership changed) and should be retried.
//! 5. **Acknowledge** with [`crate::Raft::advance`], passing [`Ready::ack`]. Only then does the
//!    core count the entries as durable (for instance the leader's own vote in a commit).
//!
//! Snapshot transfers: a message with body [`crate::MessageBody::InstallSnapshot`] asks the
//! transport to stream the driver's latest snapshot to the recipient; the transport reports
//! the outcome with [`crate::Raft::report_snapshot`]. On the receiving side the transport
//! delivers that message to `step` only after the whole snapshot has arrived.

use crate::message::{Message, ReadId};
use crate::types::{Entry, HardState, Index, SnapshotMeta, Term};

/// A read that may be served once the state machine has applied `index`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadState {
    /// The caller's request id.
    pub id: ReadId,
    /// The read index (thesis §6.4).
    pub index: Index,
}

/// One batch of work; see the module docs for the order.
#[derive(Clone, Debug, Default)]
pub struct Ready {
    /// A snapshot received from the leader, to install before anything else.
    pub snapshot: Option<SnapshotMeta>,
    /// Entries to append durably.
    pub entries: Vec<Entry>,
    /// The hard state to persist, when it changed.
    pub hard_state: Option<HardState>,
    /// Messages to send once the above is durable.
    pub messages: Vec<Message>,
    /// Entries to apply, in order.
    pub committed_entries: Vec<Entry>,
    /// Reads that are ready to be served.
    pub read_states: Vec<ReadState>,
    /// Reads that cannot be served here (no leader, leadership lost); retry them.
    pub dropped_reads: Vec<ReadId>,
}

/// What the driver acknowledges with [`crate::Raft::advance`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadyAck {
    /// Index and term of the last entry persisted, if any.
    pub last_entry: Option<(Index, Term)>,
    /// Index of the snapshot installed, if any.
    pub snapshot_index: Option<Index>,
    /// Whether committed entries were handed out (and have now been applied).
    pub applied: bool,
}

impl Ready {
    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.snapshot.is_none()
            && self.entries.is_empty()
            && self.hard_state.is_none()
            && self.messages.is_empty()
            && self.committed_entries.is_empty()
            && self.read_states.is_empty()
            && self.dropped_reads.is_empty()
    }

    /// The acknowledgement to pass to [`crate::Raft::advance`] once this Ready is done.
    pub fn ack(&self) -> ReadyAck {
        ReadyAck {
            last_entry: self.entries.last().map(|e| (e.index, e.term)),
            snapshot_index: self.snapshot.as_ref().map(|s| s.index),
            applied: !self.committed_entries.is_empty(),
        }
    }
}
