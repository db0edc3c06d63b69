//! Tunables of one core. Time is counted in ticks; the driver decides how long a tick is.

use crate::types::NodeId;

/// Configuration of one Raft core.
///
/// Durations are in ticks. With the server's default tick of 10 ms the defaults give the
/// Raft paper's election timeout of 150–300 ms and a 50 ms heartbeat.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// This node's id. Must not be 0.
    pub id: NodeId,
    /// Lower bound of the randomized election timeout, inclusive. Also the leader-lease
    /// length of §4.2.3, the CheckQuorum period and the leader-transfer deadline.
    pub election_timeout_min_ticks: u32,
    /// Upper bound of the randomized election timeout, exclusive.
    pub election_timeout_max_ticks: u32,
    /// How often a leader sends heartbeats.
    pub heartbeat_interval_ticks: u32,
    /// Run a pre-vote round before incrementing the term (thesis §9.6).
    pub pre_vote: bool,
    /// A leader steps down when it has not heard from a quorum for an election timeout (§6.2).
    /// Also enables the leader lease of §4.2.3 (voters ignore disruptive vote requests while
    /// they hear from a leader).
    pub check_quorum: bool,
    /// Upper bound on the entry bytes batched into one AppendEntries message. A single entry
    /// larger than this is still sent, alone.
    pub max_append_bytes: u64,
    /// Per follower: how many AppendEntries may be in flight unacknowledged.
    pub max_inflight_msgs: usize,
    /// Per follower: how many entry bytes may be in flight unacknowledged.
    pub max_inflight_bytes: u64,
    /// Leader: bytes of uncommitted entries beyond which proposals are refused. A proposal is
    /// always accepted when nothing is uncommitted, so one oversized entry cannot wedge it.
    pub max_uncommitted_bytes: u64,
    /// Entries kept behind a snapshot on compaction, so briefly lagging followers catch up from
    /// the log rather than needing a whole snapshot.
    pub compaction_retain_entries: u64,
    /// A learner may be promoted only when its match index is within this many entries of the
    /// leader's last index.
    pub promotion_max_lag_entries: u64,
}

impl Config {
    /// The defaults for node `id`.
    pub fn new(id: NodeId) -> Self {
        Config {
            id,
            election_timeout_min_ticks: 15,
            election_timeout_max_ticks: 30,
            heartbeat_interval_ticks: 5,
            pre_vote: true,
            check_quorum: true,
            max_append_bytes: 1 << 20,
            max_inflight_msgs: 256,
            max_inflight_bytes: 32 << 20,
            max_uncommitted_bytes: 64 << 20,
            compaction_retain_entries: 0,
            promotion_max_lag_entries: 1000,
        }
    }

    /// Checks the configuration is usable.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.id == 0 {
            return Err(ConfigError::ZeroId);
        }
        if self.heartbeat_interval_ticks == 0 {
            return Err(ConfigError::ZeroHeartbeat);
        }
        if self.election_timeout_min_ticks <= self.heartbeat_interval_ticks {
            return Err(ConfigError::ElectionNotAboveHeartbeat {
                election_min_ticks: self.election_timeout_min_ticks,
                heartbeat_ticks: self.heartbeat_interval_ticks,
            });
        }
        if self.election_timeout_max_ticks <= self.election_timeout_min_ticks {
            return Err(ConfigError::EmptyElectionRange {
                min_ticks: self.election_timeout_min_ticks,
                max_ticks: self.election_timeout_max_ticks,
            });
        }
        if self.max_inflight_msgs == 0 || self.max_inflight_bytes == 0 {
            return Err(ConfigError::ZeroInflight);
        }
        if self.max_append_bytes == 0 {
            return Err(ConfigError::ZeroAppendBytes);
        }
        Ok(())
    }
}

/// Why a [`Config`] was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Node id 0 is reserved.
    #[error("node id must not be 0")]
    ZeroId,
    /// A leader would never send heartbeats.
    #[error("heartbeat interval must be at least one tick")]
    ZeroHeartbeat,
    /// Followers would time out between heartbeats.
    #[error(
        "election timeout ({election_min_ticks} ticks) must be longer than the heartbeat interval ({heartbeat_ticks} ticks)"
    )]
    ElectionNotAboveHeartbeat {
        /// Configured lower election bound.
        election_min_ticks: u32,
        /// Configured heartbeat interval.
        heartbeat_ticks: u32,
    },
    /// No room to randomize, so split votes would repeat forever.
    #[error("election timeout range [{min_ticks}, {max_ticks}) is empty; the upper bound must exceed the lower")]
    EmptyElectionRange {
        /// Lower bound.
        min_ticks: u32,
        /// Upper bound.
        max_ticks: u32,
    },
    /// Replication could never send anything.
    #[error("max inflight messages and bytes must be positive")]
    ZeroInflight,
    /// Replication could never batch anything.
    #[error("max append bytes must be positive")]
    ZeroAppendBytes,
}
