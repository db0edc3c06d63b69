//! Health assessment: what each member's state is, and whether the cluster has a quorum.
//!
//! The rules in [`super`] never look at raw probes; they ask this module. Health is judged by
//! the pod at the member's ordinal: a member is healthy only if that pod answers *as that
//! member* (same ID), so a pod that restarted with an empty volume or with someone else's data
//! never counts for the member it replaced.

use super::observed::{NodeProbe, Observed, RaftMember, RaftView};

/// How far (in log entries) a learner's or follower's applied index may trail the leader's and
/// still count as caught up. A learner is promoted only when caught up, so that the new voter
/// can acknowledge appends right away instead of stalling commits while it catches up; a rolling
/// restart waits for every other member to be caught up before taking the next one down. etcd
/// uses a ratio of revisions (90%); an absolute bound is simpler to reason about and does not
/// loosen as the log grows.
pub const MAX_CATCH_UP_LAG_ENTRIES: u64 = 1_000;

/// Votes needed for a majority of `voters`.
pub(crate) fn majority(voters: u32) -> u32 {
    voters / 2 + 1
}

/// The state of one member, judged by the pod at its ordinal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MemberHealth {
    /// The pod answers as this member.
    Healthy {
        /// The member's applied index.
        applied_index: u64,
    },
    /// Added but never started (its name is still empty): its pod is not up yet, or is waiting
    /// to pick the membership up.
    NotStarted,
    /// The member started once, but its pod now reports an empty data directory: this identity
    /// is gone for good and the member must be removed (it never comes back).
    IdentityLost,
    /// The pod answers as a different member ID.
    IdentityMismatch {
        /// The ID the pod answers as.
        serving: u64,
    },
    /// The pod is missing, terminating or does not answer. The member may come back with its
    /// data intact, so it is waited for, never replaced.
    Unreachable,
}

impl MemberHealth {
    /// Whether the member answers as itself.
    pub(crate) fn is_healthy(self) -> bool {
        matches!(self, MemberHealth::Healthy { .. })
    }
}

/// One member of this cluster (its name or peer URL maps to an ordinal).
#[derive(Clone, Copy, Debug)]
pub(crate) struct MemberView<'a> {
    /// The member list entry.
    pub member: &'a RaftMember,
    /// The StatefulSet ordinal the member belongs to.
    pub ordinal: u32,
    /// Its state.
    pub health: MemberHealth,
}

impl MemberView<'_> {
    /// A voter (not a learner).
    pub(crate) fn is_voter(&self) -> bool {
        !self.member.is_learner
    }
}

/// The leader, when it is known and healthy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LeaderView {
    /// Member ID of the leader.
    pub id: u64,
    /// Ordinal of the leader's pod.
    pub ordinal: u32,
    /// The leader's applied index, the yardstick for "caught up".
    pub applied_index: u64,
}

/// Everything the rules need to know about the cluster's health.
#[derive(Debug)]
pub(crate) struct Assessment<'a> {
    /// Members of this cluster, sorted by ordinal, then ID.
    pub members: Vec<MemberView<'a>>,
    /// Members whose name and peer URL map to no ordinal of this cluster (added by hand?).
    /// They count as voters that are not healthy, and block every change.
    pub unknown: Vec<&'a RaftMember>,
    /// The leader, if known and healthy.
    pub leader: Option<LeaderView>,
}

impl<'a> Assessment<'a> {
    /// Assesses `raft` against the pods in `observed`.
    pub(crate) fn new(observed: &Observed, raft: &'a RaftView) -> Self {
        let mut members = Vec::new();
        let mut unknown = Vec::new();
        for member in &raft.members {
            let ordinal = observed
                .cluster
                .ordinal_of_pod(&member.name)
                .or_else(|| observed.cluster.ordinal_of_peer_url(&member.peer_url));
            match ordinal {
                Some(ordinal) => members.push(MemberView {
                    member,
                    ordinal,
                    health: health(observed, member, ordinal),
                }),
                None => unknown.push(member),
            }
        }
        members.sort_by_key(|m| (m.ordinal, m.member.id));
        let leader = raft.leader_id.and_then(|id| {
            let view = members.iter().find(|m| m.member.id == id && m.is_voter())?;
            match view.health {
                MemberHealth::Healthy { applied_index } => Some(LeaderView {
                    id,
                    ordinal: view.ordinal,
                    applied_index,
                }),
                _ => None,
            }
        });
        Self {
            members,
            unknown,
            leader,
        }
    }

    /// Number of voters, including unknown ones.
    pub(crate) fn voter_count(&self) -> u32 {
        let ours = self.members.iter().filter(|m| m.is_voter()).count();
        let unknown = self.unknown.iter().filter(|m| !m.is_learner).count();
        count(ours + unknown)
    }

    /// Number of voters that are healthy (unknown members never are: nobody probes them).
    pub(crate) fn healthy_voter_count(&self) -> u32 {
        count(
            self.members
                .iter()
                .filter(|m| m.is_voter() && m.health.is_healthy())
                .count(),
        )
    }

    /// Whether a majority of voters is healthy, so the cluster can commit.
    pub(crate) fn has_quorum(&self) -> bool {
        let voters = self.voter_count();
        voters > 0 && self.healthy_voter_count() >= majority(voters)
    }

    /// Whether a quorum would still be healthy after the voters change by `voters_delta`, of
    /// which `healthy_delta` are healthy. Every membership change is checked with it.
    pub(crate) fn keeps_quorum(&self, voters_delta: i64, healthy_delta: i64) -> bool {
        let voters = i64::from(self.voter_count()) + voters_delta;
        let healthy = i64::from(self.healthy_voter_count()) + healthy_delta;
        voters > 0 && healthy > voters / 2
    }

    /// The members at `ordinal` (normally at most one).
    pub(crate) fn at(&self, ordinal: u32) -> impl Iterator<Item = &MemberView<'a>> {
        self.members.iter().filter(move |m| m.ordinal == ordinal)
    }

    /// The learners, lowest ordinal first.
    pub(crate) fn learners(&self) -> impl Iterator<Item = &MemberView<'a>> {
        self.members.iter().filter(|m| m.member.is_learner)
    }

    /// Whether `member` is healthy and within [`MAX_CATCH_UP_LAG_ENTRIES`] of the leader.
    pub(crate) fn is_caught_up(&self, member: &MemberView<'_>) -> bool {
        match (member.health, self.leader) {
            (MemberHealth::Healthy { applied_index }, Some(leader)) => {
                leader.applied_index.saturating_sub(applied_index) <= MAX_CATCH_UP_LAG_ENTRIES
            }
            _ => false,
        }
    }

    /// Pod names of the voters other than `except` that are not healthy (or, with
    /// `require_caught_up`, not caught up). A change that lowers the cluster's failure tolerance
    /// waits until this is empty.
    pub(crate) fn unhealthy_voters(
        &self,
        observed: &Observed,
        except: Option<u32>,
        require_caught_up: bool,
    ) -> Vec<String> {
        self.members
            .iter()
            .filter(|m| m.is_voter() && Some(m.ordinal) != except)
            .filter(|m| {
                if require_caught_up {
                    !self.is_caught_up(m)
                } else {
                    !m.health.is_healthy()
                }
            })
            .map(|m| observed.cluster.pod_name(m.ordinal))
            .collect()
    }
}

/// Judges `member` (at `ordinal`) by the pod at that ordinal.
fn health(observed: &Observed, member: &RaftMember, ordinal: u32) -> MemberHealth {
    let started = !member.name.is_empty();
    let Some(pod) = observed.pods.get(&ordinal) else {
        return if started {
            MemberHealth::Unreachable
        } else {
            MemberHealth::NotStarted
        };
    };
    match pod.node {
        // A terminating pod is about to go down; nothing may count on it.
        _ if pod.terminating => {
            if started {
                MemberHealth::Unreachable
            } else {
                MemberHealth::NotStarted
            }
        }
        NodeProbe::Serving {
            member_id,
            applied_index,
        } if member_id == member.id => MemberHealth::Healthy { applied_index },
        NodeProbe::Serving { member_id, .. } => MemberHealth::IdentityMismatch { serving: member_id },
        // The pod waits to be added as a new member. For an unstarted member that is the pod
        // about to join as it; for a member that had started, its data is gone.
        NodeProbe::AwaitingMembership if started => MemberHealth::IdentityLost,
        NodeProbe::AwaitingMembership => MemberHealth::NotStarted,
        NodeProbe::Unreachable if started => MemberHealth::Unreachable,
        NodeProbe::Unreachable => MemberHealth::NotStarted,
    }
}

/// A member count as `u32` (member lists are tiny; saturate rather than wrap).
fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}
