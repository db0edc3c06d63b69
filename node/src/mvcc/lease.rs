//! The leader's lease clock. Pure: the caller passes the time.
//!
//! Leases are replicated (grant, revoke, checkpoint go through the log), but time is not: only
//! the leader (the *primary* lessor) runs expiry clocks, decides that a lease expired, and
//! proposes its revocation through the log so every member deletes the same keys at the same
//! revision. Three rules keep that safe:
//!
//! - **Prove leadership first** (etcd#15247). [`Lessor::expired`] only returns leases that
//!   expired at or before `confirmed_at`, the start of the last heartbeat round a quorum
//!   acknowledged. A deposed or stalled leader, which cannot get such a round, revokes nothing.
//! - **Stalls are not the client's fault.** If the clock jumps (the process was paused, a disk
//!   stalled the loop), [`Lessor::tick`] extends every lease by the gap: clients could not renew.
//! - **Remaining TTLs survive leader changes.** The primary checkpoints remaining TTLs through
//!   the log ([`Lessor::checkpoints`]): renewed leases promptly, others when their remaining TTL
//!   has moved by a tenth of the TTL. A new primary starts each lease from its last checkpoint
//!   (plus an election timeout of grace) instead of a full TTL, or of nothing.

use std::collections::HashMap;

use super::store::{LeaseChange, LeaseInfo};
use crate::proto::etcdserverpb::LeaseCheckpoint;

/// Milliseconds on the leader's monotonic clock.
pub type Millis = u64;

/// Tunables of the lease clock.
#[derive(Clone, Debug)]
pub struct LessorConfig {
    /// How often checkpoints are produced.
    pub checkpoint_interval_ms: Millis,
    /// A gap between ticks longer than this is a stall, and leases are extended by it.
    pub stall_threshold_ms: Millis,
    /// Most leases revoked or checkpointed per call (etcd rate-limits revocations too).
    pub max_per_round: usize,
}

impl Default for LessorConfig {
    fn default() -> Self {
        LessorConfig {
            checkpoint_interval_ms: 1000,
            stall_threshold_ms: 1000,
            max_per_round: 1000,
        }
    }
}

#[derive(Clone, Debug)]
struct Clock {
    ttl_ms: Millis,
    /// Primary only: when the lease expires.
    expiry: Millis,
    /// Remaining TTL as last checkpointed through the log (0: never).
    checkpointed_ms: Millis,
    /// Renewed since the last checkpoint.
    renewed: bool,
}

/// Why a keepalive was not served here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RenewError {
    /// Only the leader renews leases; forward the keepalive.
    NotPrimary,
    /// No such lease (revoked or expired).
    NotFound,
}

/// The lease clocks of one member.
#[derive(Debug)]
pub struct Lessor {
    cfg: LessorConfig,
    leases: HashMap<i64, Clock>,
    primary: bool,
    last_checkpoint: Millis,
    last_tick: Option<Millis>,
}

impl Lessor {
    /// A lessor for the leases the state machine holds.
    pub fn new(cfg: LessorConfig, leases: impl IntoIterator<Item = LeaseInfo>) -> Self {
        let leases = leases
            .into_iter()
            .map(|l| {
                (
                    l.id,
                    Clock {
                        ttl_ms: secs_to_ms(l.ttl),
                        expiry: 0,
                        checkpointed_ms: secs_to_ms(l.checkpointed_remaining),
                        renewed: false,
                    },
                )
            })
            .collect();
        Lessor {
            cfg,
            leases,
            primary: false,
            last_checkpoint: 0,
            last_tick: None,
        }
    }

    /// Whether this member runs the clocks (it is the leader).
    pub fn is_primary(&self) -> bool {
        self.primary
    }

    /// Follows an applied lease change.
    pub fn apply(&mut self, change: LeaseChange, now: Millis) {
        match change {
            LeaseChange::Granted { id, ttl } => {
                let ttl_ms = secs_to_ms(ttl);
                self.leases.insert(
                    id,
                    Clock {
                        ttl_ms,
                        expiry: now + ttl_ms,
                        checkpointed_ms: 0,
                        renewed: false,
                    },
                );
            }
            LeaseChange::Revoked { id } => {
                self.leases.remove(&id);
            }
            LeaseChange::Checkpointed { id, remaining } => {
                if let Some(c) = self.leases.get_mut(&id) {
                    c.checkpointed_ms = secs_to_ms(remaining);
                }
            }
        }
    }

    /// Becomes primary at `now`: each lease runs from its last checkpoint (or its full TTL),
    /// plus `grace_ms` for clients to find the new leader.
    pub fn promote(&mut self, now: Millis, grace_ms: Millis) {
        self.primary = true;
        self.last_checkpoint = now;
        self.last_tick = Some(now);
        for c in self.leases.values_mut() {
            let remaining = if c.checkpointed_ms > 0 {
                c.checkpointed_ms
            } else {
                c.ttl_ms
            };
            c.expiry = now + remaining + grace_ms;
            c.renewed = false;
        }
    }

    /// Stops being primary.
    pub fn demote(&mut self) {
        self.primary = false;
        self.last_tick = None;
    }

    /// Advances the clock; a gap longer than the stall threshold extends every lease by it.
    pub fn tick(&mut self, now: Millis) {
        if let Some(last) = self.last_tick
            && self.primary
        {
            let gap = now.saturating_sub(last);
            if gap > self.cfg.stall_threshold_ms {
                for c in self.leases.values_mut() {
                    c.expiry += gap;
                }
            }
        }
        self.last_tick = Some(now);
    }

    /// A keepalive: restarts the lease's TTL. Returns the TTL in seconds.
    pub fn renew(&mut self, id: i64, now: Millis) -> Result<i64, RenewError> {
        if !self.primary {
            return Err(RenewError::NotPrimary);
        }
        let c = self.leases.get_mut(&id).ok_or(RenewError::NotFound)?;
        if c.expiry <= now {
            // Expired: its revocation is on its way; etcd answers TTL 0 the same way.
            return Err(RenewError::NotFound);
        }
        c.expiry = now + c.ttl_ms;
        c.renewed = true;
        Ok(ms_to_secs(c.ttl_ms))
    }

    /// Remaining TTL in seconds, as well as this member knows it (exact on the primary, the
    /// last checkpoint elsewhere). `None` if the lease does not exist.
    pub fn remaining(&self, id: i64, now: Millis) -> Option<i64> {
        let c = self.leases.get(&id)?;
        Some(if self.primary {
            ms_to_secs(c.expiry.saturating_sub(now))
        } else if c.checkpointed_ms > 0 {
            ms_to_secs(c.checkpointed_ms)
        } else {
            ms_to_secs(c.ttl_ms)
        })
    }

    /// Leases to revoke: expired at or before `confirmed_at`, the start of the latest heartbeat
    /// round a quorum acknowledged. Oldest first, at most `max_per_round`.
    pub fn expired(&self, confirmed_at: Millis) -> Vec<i64> {
        if !self.primary {
            return Vec::new();
        }
        let mut due: Vec<(Millis, i64)> = self
            .leases
            .iter()
            .filter(|(_, c)| c.expiry <= confirmed_at)
            .map(|(id, c)| (c.expiry, *id))
            .collect();
        due.sort_unstable();
        due.truncate(self.cfg.max_per_round);
        due.into_iter().map(|(_, id)| id).collect()
    }

    /// Checkpoints to replicate now (empty between intervals or when nothing moved enough).
    pub fn checkpoints(&mut self, now: Millis) -> Vec<LeaseCheckpoint> {
        if !self.primary || now < self.last_checkpoint + self.cfg.checkpoint_interval_ms {
            return Vec::new();
        }
        self.last_checkpoint = now;
        let mut out = Vec::new();
        for (id, c) in &mut self.leases {
            if out.len() >= self.cfg.max_per_round {
                break;
            }
            let remaining = c.expiry.saturating_sub(now);
            let last = if c.checkpointed_ms > 0 {
                c.checkpointed_ms
            } else {
                c.ttl_ms
            };
            let moved = last.abs_diff(remaining);
            if remaining > 0 && (c.renewed || moved >= (c.ttl_ms / 10).max(1000)) {
                c.renewed = false;
                out.push(LeaseCheckpoint {
                    id: *id,
                    remaining_ttl: ms_to_secs(remaining),
                });
            }
        }
        out.sort_by_key(|cp| cp.id);
        out
    }

    /// Number of leases tracked.
    pub fn len(&self) -> usize {
        self.leases.len()
    }

    /// Whether no lease is tracked.
    pub fn is_empty(&self) -> bool {
        self.leases.is_empty()
    }
}

/// The TTL a grant actually gets: never below `min_ttl` seconds (etcd raises short TTLs to
/// ceil(1.5 × election timeout) so that a lease outlives a leader election).
pub fn granted_ttl(requested: i64, min_ttl: i64) -> i64 {
    requested.max(min_ttl)
}

/// Server-chosen lease IDs, unique across members and restarts without coordination: the
/// member's ID in the top 15 bits, then a counter started from the clock at startup (etcd's
/// `idutil`). Always positive and never 0.
#[derive(Clone, Debug)]
pub struct LeaseIdGenerator {
    prefix: u64,
    counter: u64,
}

impl LeaseIdGenerator {
    /// A generator for `member_id`, seeded with the wall clock in milliseconds.
    pub fn new(member_id: u64, now_unix_ms: u64) -> Self {
        LeaseIdGenerator {
            prefix: (member_id & 0x7fff) << 48,
            counter: (now_unix_ms << 8) & ((1 << 48) - 1),
        }
    }

    /// The next ID.
    pub fn next_id(&mut self) -> i64 {
        loop {
            self.counter = (self.counter + 1) & ((1 << 48) - 1);
            let id = (self.prefix | self.counter) as i64;
            if id > 0 {
                return id;
            }
        }
    }
}

fn secs_to_ms(s: i64) -> Millis {
    (s.max(0) as u64).saturating_mul(1000)
}

fn ms_to_secs(ms: Millis) -> i64 {
    ms.div_ceil(1000) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lessor() -> Lessor {
        Lessor::new(LessorConfig::default(), [])
    }

    #[test]
    fn generated_ids_are_positive_distinct_and_member_scoped() {
        let mut a = LeaseIdGenerator::new(0xffff_ffff_ffff, 1_700_000_000_000);
        let mut b = LeaseIdGenerator::new(2, 1_700_000_000_000);
        let ids: Vec<i64> = (0..1000)
            .map(|_| a.next_id())
            .chain((0..1000).map(|_| b.next_id()))
            .collect();
        assert!(ids.iter().all(|id| *id > 0));
        let unique: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len());
        assert_eq!(granted_ttl(1, 2), 2);
        assert_eq!(granted_ttl(60, 2), 60);
    }

    #[test]
    fn only_a_confirmed_primary_expires_leases() {
        let mut l = lessor();
        l.apply(LeaseChange::Granted { id: 1, ttl: 5 }, 0);
        assert!(l.expired(100_000).is_empty(), "a follower never expires leases");
        l.promote(0, 0);
        assert!(l.expired(4_999).is_empty());
        assert!(
            l.expired(4_000).is_empty(),
            "expired by the clock, but leadership was last proven before expiry: keep it"
        );
        assert_eq!(l.expired(5_000), vec![1]);
        l.demote();
        assert!(l.expired(10_000).is_empty());
    }

    #[test]
    fn keepalive_restarts_the_ttl_on_the_primary_only() {
        let mut l = lessor();
        l.apply(LeaseChange::Granted { id: 7, ttl: 10 }, 0);
        assert_eq!(l.renew(7, 1_000), Err(RenewError::NotPrimary));
        l.promote(0, 0);
        assert_eq!(l.renew(7, 8_000), Ok(10));
        assert_eq!(l.remaining(7, 8_000), Some(10));
        assert!(l.expired(17_999).is_empty());
        assert_eq!(l.expired(18_000), vec![7]);
        assert_eq!(
            l.renew(7, 18_000),
            Err(RenewError::NotFound),
            "an expired lease cannot be renewed"
        );
        assert_eq!(l.renew(99, 0), Err(RenewError::NotFound));
    }

    #[test]
    fn a_new_leader_resumes_from_the_checkpoint_not_a_full_ttl() {
        let mut old = lessor();
        old.apply(LeaseChange::Granted { id: 3, ttl: 10 }, 0);
        old.promote(0, 0);
        // Six seconds on, the old leader checkpoints what is left.
        let cps = old.checkpoints(6_000);
        assert_eq!(
            cps,
            vec![LeaseCheckpoint {
                id: 3,
                remaining_ttl: 4
            }]
        );
        // Every member applies the checkpoint; a follower becomes leader.
        let mut new = Lessor::new(
            LessorConfig::default(),
            [LeaseInfo {
                id: 3,
                ttl: 10,
                checkpointed_remaining: 0,
                keys: vec![],
            }],
        );
        new.apply(LeaseChange::Checkpointed { id: 3, remaining: 4 }, 6_000);
        assert_eq!(new.remaining(3, 6_000), Some(4), "followers report the checkpoint");
        new.promote(50_000, 300);
        assert_eq!(
            new.remaining(3, 50_000),
            Some(5),
            "4 s left plus 300 ms grace, rounded up"
        );
        assert_eq!(new.expired(54_300), vec![3]);
    }

    #[test]
    fn renewed_leases_are_checkpointed_at_the_next_interval() {
        let mut l = lessor();
        l.apply(LeaseChange::Granted { id: 1, ttl: 3600 }, 0);
        l.apply(LeaseChange::Granted { id: 2, ttl: 3600 }, 0);
        l.promote(0, 0);
        assert!(l.checkpoints(500).is_empty(), "before the interval");
        assert!(
            l.checkpoints(1_000).is_empty(),
            "an hour-long lease moved by a second only"
        );
        l.renew(2, 1_500).unwrap();
        assert_eq!(
            l.checkpoints(2_000),
            vec![LeaseCheckpoint {
                id: 2,
                remaining_ttl: 3600
            }]
        );
        assert!(l.checkpoints(3_000).is_empty(), "nothing new");
        // After a tenth of the TTL, both are checkpointed.
        assert_eq!(l.checkpoints(400_000).len(), 2);
    }

    #[test]
    fn a_stall_extends_every_lease_by_its_length() {
        let mut l = lessor();
        l.apply(LeaseChange::Granted { id: 1, ttl: 5 }, 0);
        l.promote(0, 0);
        l.tick(100);
        l.tick(200);
        // The process was paused for 20 s: clients could not renew meanwhile.
        l.tick(20_200);
        assert!(l.expired(20_200).is_empty());
        assert_eq!(l.remaining(1, 20_200), Some(5));
        assert_eq!(l.expired(25_000), vec![1]);
    }

    #[test]
    fn revoked_leases_are_forgotten_and_expiry_is_oldest_first() {
        let mut l = lessor();
        l.promote(0, 0);
        l.apply(LeaseChange::Granted { id: 1, ttl: 9 }, 0);
        l.apply(LeaseChange::Granted { id: 2, ttl: 3 }, 0);
        l.apply(LeaseChange::Granted { id: 3, ttl: 6 }, 0);
        assert_eq!(l.expired(10_000), vec![2, 3, 1]);
        l.apply(LeaseChange::Revoked { id: 3 }, 0);
        assert_eq!(l.expired(10_000), vec![2, 1]);
        assert_eq!(l.remaining(3, 0), None);
        assert_eq!(l.len(), 2);
    }
}
