//! Log replication (§5.3), the commit rule (§5.4.2), heartbeats and flow control.

use bytes::Bytes;

use super::{Proposed, Raft, Role};
use crate::error::RaftError;
use crate::message::{MessageBody, RejectHint};
use crate::progress::ProgressState;
use crate::types::{Entry, EntryPayload, Index, NodeId, Term};

impl Raft {
    /// Proposes a command. On success the entry is in the leader's log (not yet durable or
    /// committed); watch [`crate::Ready::committed_entries`] for `(index, term)`.
    pub fn propose(&mut self, data: Bytes) -> Result<Proposed, RaftError> {
        self.check_can_append()?;
        let size = data.len() as u64 + crate::types::ENTRY_OVERHEAD_BYTES;
        if self.uncommitted_bytes > 0 && self.uncommitted_bytes + size > self.cfg.max_uncommitted_bytes {
            return Err(RaftError::UncommittedLogFull {
                uncommitted_bytes: self.uncommitted_bytes,
                limit_bytes: self.cfg.max_uncommitted_bytes,
            });
        }
        Ok(self.append_entry(EntryPayload::Command(data)))
    }

    /// Refuses appends from non-leaders and during a leadership transfer.
    pub(super) fn check_can_append(&self) -> Result<(), RaftError> {
        if self.role != Role::Leader {
            return Err(RaftError::NotLeader { leader: self.leader });
        }
        if let Some(t) = &self.transfer {
            return Err(RaftError::TransferInProgress { target: t.target });
        }
        Ok(())
    }

    /// Leader: appends a new entry of the current term. Sending happens in `ready`, so
    /// proposals made between two Readies travel together.
    pub(super) fn append_entry(&mut self, payload: EntryPayload) -> Proposed {
        let index = self.log.last_index() + 1;
        let entry = Entry {
            term: self.term,
            index,
            payload,
        };
        self.uncommitted_bytes += entry.size_bytes();
        let conf_change = match &entry.payload {
            EntryPayload::ConfChange(cc) => Some(*cc),
            _ => None,
        };
        self.log.append(entry);
        if let Some(cc) = conf_change {
            self.confs.push(index, cc);
            self.on_conf_changed();
        }
        // A single-voter cluster commits as soon as the entry is durable (see `advance`).
        Proposed { index, term: self.term }
    }

    /// Leader: whether any follower can be sent entries or commit news now.
    pub(super) fn has_appends_to_send(&self) -> bool {
        let last = self.log.last_index();
        let commit = self.log.committed();
        self.progress
            .values()
            .any(|pr| !pr.is_paused() && (pr.next_index <= last || pr.sent_commit < commit))
    }

    /// Leader: sends every follower what it can take within its window.
    pub(super) fn flush_appends(&mut self) {
        let peers: Vec<NodeId> = self.progress.keys().copied().collect();
        let last = self.log.last_index();
        for to in peers {
            loop {
                let pr = &self.progress[&to];
                if pr.is_paused() || (pr.next_index > last && pr.sent_commit >= self.log.committed()) {
                    break;
                }
                if !self.send_append(to) {
                    break;
                }
            }
        }
    }

    /// Sends one AppendEntries (or a snapshot when the entries are compacted). Returns whether
    /// it carried entries, i.e. whether sending more could make sense.
    pub(super) fn send_append(&mut self, to: NodeId) -> bool {
        let pr = &self.progress[&to];
        let prev_log_index = pr.next_index - 1;
        let Some(prev_log_term) = self.log.term(prev_log_index) else {
            self.send_snapshot(to);
            return false;
        };
        let last = self.log.last_index();
        let entries = if pr.next_index <= last {
            self.log.slice(pr.next_index, last, self.cfg.max_append_bytes)
        } else {
            Vec::new()
        };
        let bytes: u64 = entries.iter().map(Entry::size_bytes).sum();
        let sent_to = entries.last().map_or(prev_log_index, |e| e.index);
        let carried = !entries.is_empty();
        let leader_commit = self.log.committed();
        let pr = self.progress.get_mut(&to).expect("progress exists");
        pr.sent_entries(sent_to, bytes);
        pr.sent_commit = leader_commit;
        self.send(
            to,
            MessageBody::AppendEntries {
                prev_log_index,
                prev_log_term,
                entries,
                leader_commit,
            },
        );
        carried
    }

    /// Follower: AppendEntries from the leader of our term (§5.3).
    pub(super) fn on_append_entries(
        &mut self,
        from: NodeId,
        mut prev_index: Index,
        mut prev_term: Term,
        mut entries: Vec<Entry>,
        leader_commit: Index,
    ) {
        let committed = self.log.committed();
        if prev_index < committed {
            // Everything up to our commit index already matches (Log Matching); skip it.
            entries.retain(|e| e.index > committed);
            prev_index = committed;
            prev_term = self.log.term(committed).expect("committed entry's term is known");
            if entries.first().is_some_and(|e| e.index != committed + 1) {
                entries.clear();
            }
        }
        if !self.log.matches(prev_index, prev_term) {
            let hint_index = prev_index.min(self.log.last_index());
            let (index, term) = self.log.find_conflict_by_term(hint_index, prev_term);
            let reject = Some(RejectHint { index, term });
            self.send(
                from,
                MessageBody::AppendEntriesResponse {
                    index: prev_index,
                    reject,
                },
            );
            return;
        }
        let first_new = entries.first().map(|e| e.index);
        let last_new = self.log.append_from_leader(prev_index, entries);
        if let Some(first) = first_new {
            self.track_appended_confs(first);
        }
        self.log.commit_to(leader_commit.min(last_new));
        self.send(
            from,
            MessageBody::AppendEntriesResponse {
                index: last_new,
                reject: None,
            },
        );
    }

    /// Rebuilds the configuration history from `first` on, after a follower append that may
    /// have truncated configuration entries (§4.1: the latest one in the log is in force).
    fn track_appended_confs(&mut self, first: Index) {
        let before = (self.confs.last_change_index(), self.confs.current().clone());
        self.confs.truncate_from(first);
        for index in first..=self.log.last_index() {
            if let Some(EntryPayload::ConfChange(cc)) = self.log.entry(index).map(|e| &e.payload) {
                let cc = *cc;
                self.confs.push(index, cc);
            }
        }
        if before != (self.confs.last_change_index(), self.confs.current().clone()) {
            self.on_conf_changed();
        }
    }

    /// Leader: a follower's answer to AppendEntries.
    pub(super) fn on_append_response(&mut self, from: NodeId, index: Index, reject: Option<RejectHint>) {
        let last = self.log.last_index();
        let first = self.log.first_index();
        let Some(pr) = self.progress.get_mut(&from) else { return };
        if index > last {
            // Nobody can hold entries this leader never appended: a faulty peer. Ignore it
            // rather than let a bogus match index drive the commit index past the log.
            return;
        }
        pr.recent_active = true;
        if let Some(hint) = reject {
            let probe_from = if hint.term > 0 {
                self.log.find_conflict_by_term(hint.index, hint.term).0
            } else {
                hint.index
            };
            let pr = self.progress.get_mut(&from).expect("checked above");
            if pr.maybe_decrease(index, probe_from) && pr.state == ProgressState::Replicate {
                pr.become_probe();
            }
            return;
        }
        if !pr.maybe_update(index) {
            return;
        }
        match pr.state {
            ProgressState::Probe => pr.become_replicate(),
            ProgressState::Snapshot { .. } if pr.match_index + 1 >= first => pr.become_replicate(),
            _ => {}
        }
        let caught_up = pr.match_index == last;
        self.maybe_commit();
        if caught_up && self.transfer_target() == Some(from) {
            self.send(from, MessageBody::TimeoutNow);
        }
    }

    /// Leader: commits the highest index stored on a quorum — but only by counting replicas of
    /// an entry of the current term (§5.4.2, Figure 8; LogCabin#44).
    pub(super) fn maybe_commit(&mut self) {
        let candidate = self.quorum_match_index();
        if candidate <= self.log.committed() || self.log.term(candidate) != Some(self.term) {
            return;
        }
        let old = self.log.committed();
        self.log.commit_to(candidate);
        self.on_commit_advanced(old);
    }

    fn on_commit_advanced(&mut self, old: Index) {
        let commit = self.log.committed();
        let mut released = 0;
        for i in old + 1..=commit {
            if let Some(e) = self.log.entry(i).filter(|e| e.term == self.term) {
                released += e.size_bytes();
            }
        }
        self.uncommitted_bytes = self.uncommitted_bytes.saturating_sub(released);
        if self.log.term(old) != Some(self.term) {
            // First commit of the term: reads held back for it can now be scheduled.
            self.reads.release_term_waiters(commit);
        }
        self.step_down_if_removed();
    }

    /// Leader: heartbeats to every member (§5.2), carrying the commit index each can use.
    pub(super) fn broadcast_heartbeat(&mut self) {
        let commit = self.log.committed();
        let read_round = self.reads.current_round();
        for to in self.peers() {
            let Some(pr) = self.progress.get(&to) else { continue };
            // A follower must not learn a commit index beyond what it is known to match.
            let commit = commit.min(pr.match_index);
            self.send(to, MessageBody::Heartbeat { commit, read_round });
        }
    }

    /// Follower: a heartbeat from the leader of our term.
    pub(super) fn on_heartbeat(&mut self, from: NodeId, commit: Index, read_round: u64) {
        self.log.commit_to(commit.min(self.log.last_index()));
        self.send(from, MessageBody::HeartbeatResponse { read_round });
    }

    /// Leader: a heartbeat answer proves the follower is alive and confirms read rounds.
    pub(super) fn on_heartbeat_response(&mut self, from: NodeId, read_round: u64) {
        let last = self.log.last_index();
        let Some(pr) = self.progress.get_mut(&from) else { return };
        pr.recent_active = true;
        pr.probe_sent = false;
        pr.read_round_acked = pr.read_round_acked.max(read_round);
        let behind = pr.match_index < last;
        if behind && pr.state == ProgressState::Replicate && pr.is_paused() {
            // Appends may have been lost: free a slot so a probe can reveal the gap.
            pr.free_oldest_inflight();
        }
        if behind && !self.progress[&from].is_paused() {
            self.send_append(from);
        }
        self.complete_reads();
    }
}
