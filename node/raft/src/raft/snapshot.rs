//! Snapshots and log compaction (§7): taking them locally, sending them to lagging followers,
//! and installing them atomically.

use super::Raft;
use crate::error::RaftError;
use crate::membership::ConfHistory;
use crate::message::MessageBody;
use crate::progress::ProgressState;
use crate::types::{Index, NodeId, SnapshotMeta};

/// What the driver must do after [`Raft::compact`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Compaction {
    /// The snapshot's metadata, to persist together with the state-machine snapshot.
    pub snapshot: SnapshotMeta,
    /// Log entries up to and including this index may be deleted from storage.
    pub log_compacted_to: Index,
}

/// How a snapshot transfer ended, as reported by the transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnapshotStatus {
    /// The whole snapshot reached the follower.
    Delivered,
    /// The transfer failed; the leader will probe and retry.
    Failed,
}

impl Raft {
    /// The state machine has a snapshot of everything up to `index` (which must be applied).
    /// Records it and compacts the log, keeping `compaction_retain_entries` entries behind it.
    pub fn compact(&mut self, index: Index) -> Result<Compaction, RaftError> {
        let current = self.log.snapshot().index;
        let applied = self.log.applied();
        if index <= current || index > applied {
            return Err(RaftError::SnapshotOutOfRange {
                index,
                snapshot_index: current,
                applied,
            });
        }
        let term = self
            .log
            .term(index)
            .expect("applied entries above the snapshot are in the log");
        let snapshot = SnapshotMeta {
            index,
            term,
            conf: self.confs.at(index).clone(),
        };
        let log_compacted_to = index
            .saturating_sub(self.cfg.compaction_retain_entries)
            .max(self.log.first_index() - 1);
        self.log.compact(snapshot.clone(), log_compacted_to);
        self.confs.compact_to(index);
        Ok(Compaction {
            snapshot,
            log_compacted_to,
        })
    }

    /// Leader: the follower needs entries that are compacted; send the latest snapshot.
    pub(super) fn send_snapshot(&mut self, to: NodeId) {
        let snapshot = self.log.snapshot().clone();
        let pr = self.progress.get_mut(&to).expect("progress exists");
        pr.become_snapshot(snapshot.index);
        self.send(to, MessageBody::InstallSnapshot { snapshot });
    }

    /// Leader: the transport finished (or gave up) streaming a snapshot to `to`.
    pub fn report_snapshot(&mut self, to: NodeId, status: SnapshotStatus) {
        let Some(pr) = self.progress.get_mut(&to) else { return };
        if !matches!(pr.state, ProgressState::Snapshot { .. }) {
            return;
        }
        if status == SnapshotStatus::Failed {
            pr.state = ProgressState::Snapshot { pending_index: 0 };
        }
        // Either way, wait for the follower's reply (or a heartbeat) before sending more.
        pr.become_probe();
        pr.probe_sent = true;
    }

    /// Leader: the transport could not reach `to`; stop streaming optimistically to it.
    pub fn report_unreachable(&mut self, to: NodeId) {
        if let Some(pr) = self.progress.get_mut(&to)
            && pr.state == ProgressState::Replicate
        {
            pr.become_probe();
        }
    }

    /// Follower: the whole snapshot arrived from the leader of our term.
    pub(super) fn on_install_snapshot(&mut self, from: NodeId, snapshot: SnapshotMeta) {
        let committed = self.log.committed();
        if snapshot.index <= committed {
            self.send(
                from,
                MessageBody::AppendEntriesResponse {
                    index: committed,
                    reject: None,
                },
            );
            return;
        }
        if self.log.matches(snapshot.index, snapshot.term) {
            // We already hold that prefix: just learn that it is committed.
            self.log.commit_to(snapshot.index);
            self.send(
                from,
                MessageBody::AppendEntriesResponse {
                    index: snapshot.index,
                    reject: None,
                },
            );
            return;
        }
        let index = snapshot.index;
        self.confs = ConfHistory::new(index, snapshot.conf.clone());
        self.log.install(snapshot.clone());
        self.snapshot_to_install = Some(snapshot);
        self.on_conf_changed();
        // Sent only after the snapshot is durable, as every Ready message is.
        self.send(from, MessageBody::AppendEntriesResponse { index, reject: None });
    }
}
