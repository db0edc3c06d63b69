//! Membership changes, one server at a time (thesis §4.1; see the `membership` module docs).

use super::{Proposed, Raft, Role};
use crate::error::RaftError;
use crate::message::MessageBody;
use crate::progress::Progress;
use crate::types::{ConfChange, EntryPayload};

impl Raft {
    /// Proposes a membership change. It takes effect as soon as it is appended.
    pub fn propose_conf_change(&mut self, change: ConfChange) -> Result<Proposed, RaftError> {
        self.check_can_append()?;
        let commit = self.log.committed();
        if self.log.term(commit) != Some(self.term) {
            // Ongaro's fix for the single-server change bug (raft-dev, 2015).
            return Err(RaftError::LeaderNotReady);
        }
        let pending = self.confs.last_change_index();
        if pending > commit {
            return Err(RaftError::ConfChangeInProgress { index: pending });
        }
        self.validate_conf_change(change)?;
        Ok(self.append_entry(EntryPayload::ConfChange(change)))
    }

    fn validate_conf_change(&self, change: ConfChange) -> Result<(), RaftError> {
        let conf = self.confs.current();
        match change {
            ConfChange::AddLearner(node) if conf.contains(node) => Err(RaftError::AlreadyMember { node }),
            ConfChange::AddLearner(_) => Ok(()),
            ConfChange::PromoteLearner(node) if conf.voters.contains(&node) => Err(RaftError::NotLearner { node }),
            ConfChange::PromoteLearner(node) if !conf.learners.contains(&node) => Err(RaftError::NotMember { node }),
            ConfChange::PromoteLearner(node) => {
                let matched = self.progress.get(&node).map_or(0, |p| p.match_index);
                let last_index = self.log.last_index();
                if last_index - matched > self.cfg.promotion_max_lag_entries {
                    Err(RaftError::LearnerBehind {
                        node,
                        matched,
                        last_index,
                    })
                } else {
                    Ok(())
                }
            }
            ConfChange::RemoveNode(node) if !conf.contains(node) => Err(RaftError::NotMember { node }),
            ConfChange::RemoveNode(node) if conf.voters.len() == 1 && conf.voters.contains(&node) => {
                Err(RaftError::LastVoter { node })
            }
            ConfChange::RemoveNode(_) => Ok(()),
        }
    }

    /// The configuration in force changed (append, truncation or snapshot).
    pub(super) fn on_conf_changed(&mut self) {
        if self.role != Role::Leader {
            return;
        }
        self.sync_progress_with_conf();
        if let Some(target) = self.transfer_target()
            && !self.confs.current().voters.contains(&target)
        {
            self.transfer = None;
        }
        // A smaller quorum may already hold more entries, or confirm pending reads.
        self.maybe_commit();
        self.complete_reads();
    }

    /// Leader: one progress record per other member of the configuration in force.
    pub(super) fn sync_progress_with_conf(&mut self) {
        let peers = self.peers();
        self.progress.retain(|id, _| peers.contains(id));
        let last = self.log.last_index();
        for id in peers {
            self.progress
                .entry(id)
                .or_insert_with(|| Progress::new(last, self.cfg.max_inflight_msgs, self.cfg.max_inflight_bytes));
        }
    }

    /// §4.2.2: a leader that removed itself leads until the change commits, then steps down,
    /// handing over to the most caught-up voter so the cluster need not wait for a timeout.
    pub(super) fn step_down_if_removed(&mut self) {
        if self.role != Role::Leader
            || self.confs.current().voters.contains(&self.cfg.id)
            || self.log.committed() < self.confs.last_change_index()
        {
            return;
        }
        let last = self.log.last_index();
        let successor = self
            .confs
            .current()
            .voters
            .iter()
            .copied()
            .find(|v| self.progress.get(v).is_some_and(|p| p.match_index == last));
        if let Some(to) = successor {
            self.send(to, MessageBody::TimeoutNow);
        }
        self.become_follower(self.term, None);
    }
}
