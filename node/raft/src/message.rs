//! Messages exchanged between cores. The transport carries them; their encoding is its business.

use crate::types::{Entry, Index, NodeId, SnapshotMeta, Term};

/// Identifies one linearizable read request; chosen by the caller, echoed in [`crate::ReadState`].
pub type ReadId = u64;

/// A message from one core to another.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// Sender.
    pub from: NodeId,
    /// Recipient.
    pub to: NodeId,
    /// Sender's term (for a pre-vote request: the term it would campaign in).
    pub term: Term,
    /// What the message says.
    pub body: MessageBody,
}

/// The kinds of message, named after the paper's RPCs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MessageBody {
    /// RequestVote (§5.2) or a pre-vote probe (thesis §9.6).
    RequestVote {
        /// A pre-vote asks "would you vote for me?" without anyone changing term.
        pre_vote: bool,
        /// Index of the candidate's last entry.
        last_log_index: Index,
        /// Term of the candidate's last entry.
        last_log_term: Term,
        /// Set by a leadership-transfer campaign: voters ignore their leader lease (§4.2.3).
        transfer: bool,
    },
    /// Reply to [`MessageBody::RequestVote`].
    RequestVoteResponse {
        /// Echoes the request kind.
        pre_vote: bool,
        /// Whether the vote was granted.
        granted: bool,
    },
    /// AppendEntries (§5.3): replicates entries and the commit index.
    AppendEntries {
        /// Index of the entry preceding `entries`.
        prev_log_index: Index,
        /// Term of that entry.
        prev_log_term: Term,
        /// Entries to append, possibly empty.
        entries: Vec<Entry>,
        /// Leader's commit index.
        leader_commit: Index,
    },
    /// Reply to [`MessageBody::AppendEntries`].
    AppendEntriesResponse {
        /// On success, the follower's log matches the leader's up to `index`. On rejection,
        /// `index` is the `prev_log_index` that failed the consistency check.
        index: Index,
        /// Present on rejection: the fast-backtracking hint (§5.3, "conflict term"): the
        /// largest index in the follower's log whose term is ≤ the rejected `prev_log_term`,
        /// and its term.
        reject: Option<RejectHint>,
    },
    /// Leader heartbeat; carries the commit index the follower can safely use and the
    /// latest read round, so acknowledgements also confirm pending ReadIndex requests.
    Heartbeat {
        /// `min(leader commit, follower's match index)`.
        commit: Index,
        /// Latest ReadIndex round started by the leader.
        read_round: u64,
    },
    /// Reply to [`MessageBody::Heartbeat`].
    HeartbeatResponse {
        /// Echoes the heartbeat's read round.
        read_round: u64,
    },
    /// InstallSnapshot (§7). Carries only metadata: the transport streams the snapshot data
    /// itself in chunks and delivers this message once the whole snapshot has arrived.
    InstallSnapshot {
        /// The snapshot being installed.
        snapshot: SnapshotMeta,
    },
    /// Tells a caught-up follower to campaign at once (leadership transfer, thesis §3.10).
    TimeoutNow,
    /// A follower asks the leader for a read index on behalf of one of its clients.
    ReadIndex {
        /// The follower's request id.
        id: ReadId,
    },
    /// The leader's answer to [`MessageBody::ReadIndex`].
    ReadIndexResponse {
        /// Echoes the request id.
        id: ReadId,
        /// The index to wait for, or `None` if the recipient could not serve the read
        /// (it is not the leader); the follower reports it as dropped.
        index: Option<Index>,
    },
}

/// The conflict hint in a rejected [`MessageBody::AppendEntriesResponse`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RejectHint {
    /// The follower's candidate match position.
    pub index: Index,
    /// Term of the follower's entry at `index` (0 if none).
    pub term: Term,
}

impl Message {
    /// A short name of the message kind, for logs and scenario renderings.
    pub fn kind(&self) -> &'static str {
        match &self.body {
            MessageBody::RequestVote { pre_vote: true, .. } => "PreVote",
            MessageBody::RequestVote { .. } => "Vote",
            MessageBody::RequestVoteResponse { pre_vote: true, .. } => "PreVoteResp",
            MessageBody::RequestVoteResponse { .. } => "VoteResp",
            MessageBody::AppendEntries { .. } => "App",
            MessageBody::AppendEntriesResponse { .. } => "AppResp",
            MessageBody::Heartbeat { .. } => "Heartbeat",
            MessageBody::HeartbeatResponse { .. } => "HeartbeatResp",
            MessageBody::InstallSnapshot { .. } => "Snapshot",
            MessageBody::TimeoutNow => "TimeoutNow",
            MessageBody::ReadIndex { .. } => "ReadIndex",
            MessageBody::ReadIndexResponse { .. } => "ReadIndexResp",
        }
    }
}

/// Why a message from a peer was refused before reaching the state machine.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MalformedMessage {
    /// Node id 0 is reserved.
    #[error("message from {from} to {to} uses the reserved node id 0")]
    ZeroId {
        /// Sender.
        from: NodeId,
        /// Recipient.
        to: NodeId,
    },
    /// AppendEntries entries must follow `prev_log_index` without gaps.
    #[error(
        "append entries are not contiguous after index {prev_log_index}: found index {found} at position {position}"
    )]
    NotContiguous {
        /// The message's previous index.
        prev_log_index: Index,
        /// Offending entry index.
        found: Index,
        /// Its position in the message.
        position: usize,
    },
    /// Entry terms must not decrease and must not exceed the leader's term.
    #[error(
        "entry {index} has term {entry_term}, impossible in a term-{message_term} append after term {previous_term}"
    )]
    BadEntryTerm {
        /// Offending entry index.
        index: Index,
        /// Its term.
        entry_term: Term,
        /// The message's term.
        message_term: Term,
        /// The term before it.
        previous_term: Term,
    },
    /// A snapshot must cover at least the bootstrap index and name at least one voter.
    #[error("snapshot at index {index} with {voters} voters is not installable")]
    BadSnapshot {
        /// Snapshot index.
        index: Index,
        /// Number of voters in its configuration.
        voters: usize,
    },
}

impl Message {
    /// Structural checks a transport should run on every decoded message (and log failures
    /// with the sender). [`crate::Raft::step`] runs them too and drops what fails.
    pub fn validate(&self) -> Result<(), MalformedMessage> {
        if self.from == 0 || self.to == 0 {
            return Err(MalformedMessage::ZeroId {
                from: self.from,
                to: self.to,
            });
        }
        match &self.body {
            MessageBody::AppendEntries {
                prev_log_index,
                prev_log_term,
                entries,
                ..
            } => {
                let mut previous_term = *prev_log_term;
                for (position, e) in entries.iter().enumerate() {
                    if e.index != prev_log_index + 1 + position as u64 {
                        return Err(MalformedMessage::NotContiguous {
                            prev_log_index: *prev_log_index,
                            found: e.index,
                            position,
                        });
                    }
                    if e.term < previous_term || e.term > self.term {
                        return Err(MalformedMessage::BadEntryTerm {
                            index: e.index,
                            entry_term: e.term,
                            message_term: self.term,
                            previous_term,
                        });
                    }
                    previous_term = e.term;
                }
                Ok(())
            }
            MessageBody::InstallSnapshot { snapshot } if snapshot.index == 0 || snapshot.conf.voters.is_empty() => {
                Err(MalformedMessage::BadSnapshot {
                    index: snapshot.index,
                    voters: snapshot.conf.voters.len(),
                })
            }
            _ => Ok(()),
        }
    }
}
