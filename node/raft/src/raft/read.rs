//! Linearizable reads with ReadIndex (thesis §6.4), batched so one heartbeat round confirms
//! every read that arrived before it started.
//!
//! A read records the commit index when it arrives. At the next `ready` all new reads join a
//! fresh round `r`, and heartbeats carry `r`. Once a quorum of voters has acknowledged a round
//! ≥ `r`, the leader was still leader after every read of round `r` arrived, so each read may
//! be served at its recorded index. A read never joins a round that started before it arrived
//! (the reuse of an older round's confirmation is tikv#7971's stale read). Reads that arrive
//! before the leader commits an entry of its own term wait for it: until then its commit index
//! may lag the previous leader's (§6.4 step 1).

use std::collections::VecDeque;

use super::{Raft, Role};
use crate::message::{MessageBody, ReadId};
use crate::ready::ReadState;
use crate::types::{Index, NodeId};

/// A read waiting for confirmation. `from` is the follower that forwarded it, if any.
#[derive(Clone, Copy, Debug)]
struct PendingRead {
    id: ReadId,
    from: Option<NodeId>,
    index: Index,
    round: u64,
}

/// Reads in their stages: waiting for a term commit, unscheduled, confirming, done.
#[derive(Debug, Default)]
pub struct ReadQueue {
    /// Latest round started; only grows.
    round: u64,
    /// Round number below which acks from an earlier leadership must not count.
    term_first_round: u64,
    awaiting_term_commit: Vec<(ReadId, Option<NodeId>)>,
    unscheduled: Vec<PendingRead>,
    confirming: VecDeque<PendingRead>,
    ready: Vec<ReadState>,
    dropped: Vec<ReadId>,
}

impl ReadQueue {
    pub(super) fn current_round(&self) -> u64 {
        self.round
    }

    pub(super) fn has_unscheduled(&self) -> bool {
        !self.unscheduled.is_empty()
    }

    pub(super) fn has_output(&self) -> bool {
        !self.ready.is_empty() || !self.dropped.is_empty()
    }

    pub(super) fn take_output(&mut self) -> (Vec<ReadState>, Vec<ReadId>) {
        (std::mem::take(&mut self.ready), std::mem::take(&mut self.dropped))
    }

    /// A new leadership starts: acknowledgements of earlier rounds mean nothing now.
    pub(super) fn reset_rounds(&mut self) {
        self.term_first_round = self.round + 1;
    }

    /// Leadership is lost: every local read fails (forwarded ones time out at the follower).
    pub(super) fn drop_all(&mut self) {
        let local = |from: &Option<NodeId>| from.is_none();
        self.dropped.extend(
            self.awaiting_term_commit
                .drain(..)
                .filter(|(_, f)| local(f))
                .map(|(id, _)| id),
        );
        self.dropped
            .extend(self.unscheduled.drain(..).filter(|r| local(&r.from)).map(|r| r.id));
        self.dropped
            .extend(self.confirming.drain(..).filter(|r| local(&r.from)).map(|r| r.id));
    }

    pub(super) fn release_term_waiters(&mut self, commit: Index) {
        for (id, from) in self.awaiting_term_commit.drain(..) {
            self.unscheduled.push(PendingRead {
                id,
                from,
                index: commit,
                round: 0,
            });
        }
    }

    /// Follower: the leader answered a forwarded read.
    pub(super) fn on_response(&mut self, id: ReadId, index: Option<Index>) {
        match index {
            Some(index) => self.ready.push(ReadState { id, index }),
            None => self.dropped.push(id),
        }
    }
}

impl Raft {
    /// Requests a linearizable read. The answer arrives in a later [`crate::Ready`]: in
    /// `read_states` (serve it once applied ≥ its index) or in `dropped_reads` (retry).
    /// Followers ask the leader; with no known leader the read is dropped at once.
    pub fn read_index(&mut self, id: ReadId) {
        match (self.role, self.leader) {
            (Role::Leader, _) => self.leader_read(id, None),
            (_, Some(leader)) => self.send(leader, MessageBody::ReadIndex { id }),
            (_, None) => self.reads.dropped.push(id),
        }
    }

    pub(super) fn on_read_index_request(&mut self, from: NodeId, id: ReadId) {
        if self.role == Role::Leader {
            self.leader_read(id, Some(from));
        } else {
            self.send(from, MessageBody::ReadIndexResponse { id, index: None });
        }
    }

    fn leader_read(&mut self, id: ReadId, from: Option<NodeId>) {
        let commit = self.log.committed();
        if self.log.term(commit) != Some(self.term) {
            self.reads.awaiting_term_commit.push((id, from));
        } else {
            self.reads.unscheduled.push(PendingRead {
                id,
                from,
                index: commit,
                round: 0,
            });
        }
    }

    /// Leader: starts one confirmation round for all reads that arrived since the last one.
    pub(super) fn flush_reads(&mut self) {
        if self.reads.unscheduled.is_empty() {
            return;
        }
        self.reads.round += 1;
        let round = self.reads.round;
        for mut read in self.reads.unscheduled.drain(..) {
            read.round = round;
            self.reads.confirming.push_back(read);
        }
        self.broadcast_heartbeat();
        self.complete_reads();
    }

    /// Leader: serves every read whose round a quorum of voters has acknowledged.
    pub(super) fn complete_reads(&mut self) {
        if self.role != Role::Leader || self.reads.confirming.is_empty() {
            return;
        }
        let conf = self.confs.current();
        let first = self.reads.term_first_round;
        let mut acked: Vec<u64> = conf
            .voters
            .iter()
            .map(|v| {
                if *v == self.cfg.id {
                    self.reads.round
                } else {
                    self.progress.get(v).map_or(0, |p| p.read_round_acked)
                }
            })
            .map(|r| if r >= first { r } else { 0 })
            .collect();
        acked.sort_unstable_by(|a, b| b.cmp(a));
        let confirmed = acked.get(conf.quorum() - 1).copied().unwrap_or(0);
        while let Some(read) = self.reads.confirming.front().copied() {
            if read.round > confirmed {
                break;
            }
            self.reads.confirming.pop_front();
            match read.from {
                None => self.reads.ready.push(ReadState {
                    id: read.id,
                    index: read.index,
                }),
                Some(to) => self.send(
                    to,
                    MessageBody::ReadIndexResponse {
                        id: read.id,
                        index: Some(read.index),
                    },
                ),
            }
        }
    }
}
