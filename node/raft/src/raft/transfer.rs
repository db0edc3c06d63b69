//! Leadership transfer (thesis §3.10): catch the target up, then tell it to campaign at once.

use super::election::Campaign;
use super::{Raft, Role};
use crate::error::RaftError;
use crate::message::MessageBody;
use crate::types::NodeId;

/// A transfer in progress.
#[derive(Clone, Debug)]
pub(super) struct Transfer {
    pub(super) target: NodeId,
    /// Ticks since the transfer began; it aborts after an election timeout.
    pub(super) elapsed_ticks: u32,
}

impl Raft {
    /// Leader: hands leadership to voter `target`. Proposals are refused until the target takes
    /// over or the transfer aborts (after an election timeout). Transferring to oneself is a
    /// no-op.
    pub fn transfer_leader(&mut self, target: NodeId) -> Result<(), RaftError> {
        if self.role != Role::Leader {
            return Err(RaftError::NotLeader { leader: self.leader });
        }
        if target == self.cfg.id {
            return Ok(());
        }
        if !self.confs.current().voters.contains(&target) {
            return Err(RaftError::TransferTargetNotVoter { node: target });
        }
        if self.transfer_target() == Some(target) {
            return Ok(());
        }
        self.transfer = Some(Transfer {
            target,
            elapsed_ticks: 0,
        });
        // The target must hold our whole log first; otherwise `flush_appends` catches it up and
        // the append response that completes it sends TimeoutNow.
        if self.progress[&target].match_index == self.log.last_index() {
            self.send(target, MessageBody::TimeoutNow);
        }
        Ok(())
    }

    pub(super) fn tick_transfer(&mut self) {
        let limit = self.cfg.election_timeout_min_ticks;
        if let Some(t) = &mut self.transfer {
            t.elapsed_ticks += 1;
            if t.elapsed_ticks >= limit {
                self.transfer = None;
            }
        }
    }

    /// Follower: the leader asks us to take over now.
    pub(super) fn on_timeout_now(&mut self) {
        if self.role == Role::Leader || !self.promotable() {
            return;
        }
        self.campaign(Campaign::Transfer);
    }
}
