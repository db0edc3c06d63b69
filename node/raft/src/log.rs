//! The in-memory Raft log: every entry since the last compaction, plus the bookkeeping of what
//! the driver has persisted and applied.
//!
//! ```text
//!   compacted      retained (may be empty)   ...                          unstable
//! ──────────────┤·························┤──────────────────────────┤─────────────────┤
//!           offset              snapshot.index      applied ≤ commit      stable      last
//! ```
//!
//! Invariants (checked by [`RaftLog::assert_invariants`] in tests and the simulator):
//! - `offset ≤ snapshot.index ≤ applied ≤ applying ≤ committed ≤ last_index`
//! - `applying ≤ stable ≤ handed_out ≤ last_index`, and `offset ≤ stable`
//! - entries are contiguous: `entries[k].index == offset + 1 + k`

use std::collections::VecDeque;

use crate::types::{Entry, Index, SnapshotMeta, Term};

/// The log of one core.
#[derive(Debug)]
pub struct RaftLog {
    /// Index of the entry just before `entries[0]`. Entries at or below it are compacted.
    offset: Index,
    /// Term of the entry at `offset`, when known (always known when `offset == snapshot.index`).
    offset_term: Option<Term>,
    entries: VecDeque<Entry>,
    /// The latest snapshot. Invariant: `offset ≤ snapshot.index ≤ applied`.
    snapshot: SnapshotMeta,
    /// Highest index known committed. Never decreases.
    committed: Index,
    /// Entries up to here were handed to the driver for persistence.
    handed_out: Index,
    /// Entries up to here are durable. Use: the leader's own match index; what may be applied.
    stable: Index,
    /// Committed entries up to here were handed to the driver for applying.
    applying: Index,
    /// The driver confirmed it applied up to here.
    applied: Index,
}

impl RaftLog {
    /// A log restored from persisted state: everything given is durable.
    pub fn restore(snapshot: SnapshotMeta, entries: Vec<Entry>, committed: Index, applied: Index) -> Self {
        let (offset, offset_term) = match entries.first() {
            Some(first) if first.index <= snapshot.index => (first.index - 1, None),
            Some(first) => {
                assert_eq!(
                    first.index,
                    snapshot.index + 1,
                    "hole between snapshot {} and first entry {}",
                    snapshot.index,
                    first.index
                );
                (snapshot.index, Some(snapshot.term))
            }
            None => (snapshot.index, Some(snapshot.term)),
        };
        for (k, e) in entries.iter().enumerate() {
            assert_eq!(
                e.index,
                offset + 1 + k as u64,
                "restored log is not contiguous at index {}",
                e.index
            );
        }
        let last = offset + entries.len() as u64;
        assert!(
            snapshot.index <= applied,
            "applied {applied} is behind the snapshot {}",
            snapshot.index
        );
        let committed = committed.max(applied).min(last.max(snapshot.index));
        assert!(
            applied <= committed,
            "applied {applied} beyond the persisted log {last}"
        );
        let log = RaftLog {
            offset,
            offset_term,
            entries: entries.into(),
            snapshot,
            committed,
            handed_out: last,
            stable: last,
            applying: applied,
            applied,
        };
        if offset_term.is_none() {
            // Retained entries behind the snapshot: the snapshot's term pins one of them.
            assert_eq!(
                log.term(log.snapshot.index),
                Some(log.snapshot.term),
                "snapshot term disagrees with the retained log"
            );
        }
        log
    }

    /// Index of the first entry still in the log.
    pub fn first_index(&self) -> Index {
        self.offset + 1
    }

    /// Index of the last entry (the snapshot index when the log is empty).
    pub fn last_index(&self) -> Index {
        self.offset + self.entries.len() as u64
    }

    /// Term of the last entry.
    pub fn last_term(&self) -> Term {
        self.term(self.last_index())
            .expect("the last entry's term is always known")
    }

    /// Highest committed index.
    pub fn committed(&self) -> Index {
        self.committed
    }

    /// Highest index known durable.
    pub fn stable(&self) -> Index {
        self.stable
    }

    /// Highest index the driver confirmed applied.
    pub fn applied(&self) -> Index {
        self.applied
    }

    /// The latest snapshot.
    pub fn snapshot(&self) -> &SnapshotMeta {
        &self.snapshot
    }

    /// Term of the entry at `index`, or `None` if it is compacted away or beyond the log.
    pub fn term(&self, index: Index) -> Option<Term> {
        if index == self.snapshot.index {
            return Some(self.snapshot.term);
        }
        if index == self.offset {
            return self.offset_term;
        }
        if index < self.offset {
            return None;
        }
        self.entry(index).map(|e| e.term)
    }

    /// The entry at `index`, if it is in the log.
    pub fn entry(&self, index: Index) -> Option<&Entry> {
        if index <= self.offset {
            return None;
        }
        self.entries.get((index - self.offset - 1) as usize)
    }

    /// Entries in `[lo, hi]`, stopping once `max_bytes` is reached (always at least one entry).
    pub fn slice(&self, lo: Index, hi: Index, max_bytes: u64) -> Vec<Entry> {
        assert!(
            lo > self.offset,
            "slice from compacted index {lo} (offset {})",
            self.offset
        );
        let mut out = Vec::new();
        let mut bytes = 0;
        for index in lo..=hi.min(self.last_index()) {
            let entry = self.entry(index).expect("index within log bounds");
            bytes += entry.size_bytes();
            if !out.is_empty() && bytes > max_bytes {
                break;
            }
            out.push(entry.clone());
        }
        out
    }

    /// Whether the log holds an entry at `index` with `term`.
    pub fn matches(&self, index: Index, term: Term) -> bool {
        self.term(index) == Some(term)
    }

    /// §5.4.1: a candidate's log is at least as up-to-date as ours.
    pub fn is_up_to_date(&self, last_index: Index, last_term: Term) -> bool {
        last_term > self.last_term() || (last_term == self.last_term() && last_index >= self.last_index())
    }

    /// Appends entries created by this node as leader. Leader Append-Only: never truncates.
    pub fn append(&mut self, entry: Entry) {
        assert_eq!(entry.index, self.last_index() + 1, "leader append out of order");
        self.entries.push_back(entry);
    }

    /// The follower side of AppendEntries after the consistency check at `prev_index` passed:
    /// skips entries already present, truncates at the first conflict and appends the rest.
    /// Returns the index of the last entry the leader sent.
    pub fn append_from_leader(&mut self, prev_index: Index, entries: Vec<Entry>) -> Index {
        let last_new = prev_index + entries.len() as u64;
        let skip = entries.iter().take_while(|e| self.matches(e.index, e.term)).count();
        if let Some(first) = entries.get(skip) {
            let at = first.index;
            assert!(
                at > self.committed,
                "leader asked to overwrite committed entry {at} (commit {})",
                self.committed
            );
            if at <= self.last_index() {
                self.truncate_from(at);
            }
            self.entries.extend(entries.into_iter().skip(skip));
        }
        last_new
    }

    /// Removes every entry at or after `index` (never a committed one).
    fn truncate_from(&mut self, index: Index) {
        assert!(
            index > self.committed && index > self.offset,
            "truncating committed or compacted entry {index}"
        );
        self.entries.truncate((index - self.offset - 1) as usize);
        self.handed_out = self.handed_out.min(index - 1);
        self.stable = self.stable.min(index - 1);
    }

    /// Fast backtracking (§5.3): the largest index ≤ `index` whose term is ≤ `term`, and its term.
    pub fn find_conflict_by_term(&self, index: Index, term: Term) -> (Index, Term) {
        let mut i = index.min(self.last_index());
        loop {
            match self.term(i) {
                Some(t) if t > term => i -= 1,
                Some(t) => return (i, t),
                None => return (i, 0),
            }
        }
    }

    /// Raises the commit index. Never lowers it (etcd-io/raft#104 was a commit regression).
    pub fn commit_to(&mut self, index: Index) -> bool {
        if index <= self.committed {
            return false;
        }
        assert!(
            index <= self.last_index(),
            "commit {index} beyond last index {}",
            self.last_index()
        );
        self.committed = index;
        true
    }

    /// Entries not yet handed to the driver for persistence; marks them handed out.
    pub fn take_unstable(&mut self) -> Vec<Entry> {
        let from = self.handed_out + 1;
        let to = self.last_index();
        if from > to {
            return Vec::new();
        }
        self.handed_out = to;
        self.entries
            .range((from - self.offset - 1) as usize..)
            .cloned()
            .collect()
    }

    /// Whether some entries wait to be handed out for persistence.
    pub fn has_unstable(&self) -> bool {
        self.handed_out < self.last_index()
    }

    /// Committed, durable entries not yet handed out for applying; marks them handed out.
    pub fn take_committed(&mut self) -> Vec<Entry> {
        let to = self.committed.min(self.stable);
        if to <= self.applying {
            return Vec::new();
        }
        let from = self.applying + 1;
        self.applying = to;
        self.slice(from, to, u64::MAX)
    }

    /// Whether committed entries wait to be handed out for applying.
    pub fn has_committed(&self) -> bool {
        self.committed.min(self.stable) > self.applying
    }

    /// The driver persisted entries up to `index`, the last of which had `term`. A stale
    /// acknowledgement (the entry was since overwritten) is ignored.
    pub fn stable_to(&mut self, index: Index, term: Term) {
        if index <= self.handed_out && self.matches(index, term) {
            self.stable = self.stable.max(index);
        }
    }

    /// The driver applied every entry handed out so far.
    pub fn applied_to_handed_out(&mut self) {
        self.applied = self.applying;
    }

    /// Records a snapshot of the state machine at `snapshot` and drops entries up to `compact_to`.
    pub fn compact(&mut self, snapshot: SnapshotMeta, compact_to: Index) {
        assert!(snapshot.index <= self.applied && snapshot.index > self.snapshot.index);
        assert!(compact_to <= snapshot.index);
        self.snapshot = snapshot;
        if compact_to > self.offset {
            let term = self.term(compact_to);
            self.entries.drain(..(compact_to - self.offset) as usize);
            self.offset = compact_to;
            self.offset_term = term;
        }
    }

    /// Replaces the whole log by a snapshot received from the leader.
    pub fn install(&mut self, snapshot: SnapshotMeta) {
        assert!(
            snapshot.index > self.committed,
            "installing snapshot {} at or below commit {}",
            snapshot.index,
            self.committed
        );
        self.entries.clear();
        self.offset = snapshot.index;
        self.offset_term = Some(snapshot.term);
        self.committed = snapshot.index;
        self.handed_out = snapshot.index;
        self.stable = self.stable.min(self.applying);
        self.applying = snapshot.index;
        self.snapshot = snapshot;
    }

    /// The driver persisted an installed snapshot and loaded it into the state machine.
    pub fn snapshot_installed(&mut self, index: Index) {
        if index == self.snapshot.index {
            self.stable = self.stable.max(index);
            self.applied = self.applied.max(index);
        }
    }

    /// Panics if a documented invariant does not hold.
    pub fn assert_invariants(&self) {
        assert!(
            self.offset <= self.snapshot.index,
            "offset {} > snapshot {}",
            self.offset,
            self.snapshot.index
        );
        assert!(self.applied <= self.applying && self.applying <= self.committed);
        assert!(
            self.committed <= self.last_index(),
            "commit {} > last {}",
            self.committed,
            self.last_index()
        );
        assert!(self.stable <= self.handed_out && self.handed_out <= self.last_index());
        for (k, e) in self.entries.iter().enumerate() {
            assert_eq!(e.index, self.offset + 1 + k as u64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::EntryPayload;

    fn e(index: Index, term: Term) -> Entry {
        Entry {
            index,
            term,
            payload: EntryPayload::Noop,
        }
    }

    /// A log holding `terms[k]` at index k + 1, all durable, committed up to `commit`.
    fn log_of(terms: &[Term], commit: Index) -> RaftLog {
        let entries = terms.iter().enumerate().map(|(k, &t)| e(k as u64 + 1, t)).collect();
        RaftLog::restore(SnapshotMeta::default(), entries, commit, 0)
    }

    /// etcd#22442: truncated entries must never come back. The Ready after a conflicting append
    /// starts exactly at the truncation point (so storage discards everything after it), and the
    /// in-memory log forgets the old suffix too.
    #[test]
    fn truncation_hands_out_from_the_conflict_and_forgets_the_old_suffix() {
        let mut log = log_of(&[1, 1, 2, 2, 2, 2, 2, 2], 4);
        let last = log.append_from_leader(6, vec![e(7, 3)]);
        assert_eq!(last, 7);
        assert_eq!(log.last_index(), 7, "entry 8 of the old term is gone");
        assert_eq!(log.entry(8), None);
        assert_eq!(log.stable(), 6, "only the untouched prefix is still known durable");
        let unstable = log.take_unstable();
        assert_eq!(
            unstable,
            vec![e(7, 3)],
            "storage is told to append at 7, discarding 7.. and 8"
        );
        // A late acknowledgement of the overwritten entry 8 must not mark anything durable.
        log.stable_to(8, 2);
        assert_eq!(log.stable(), 6);
        log.stable_to(7, 2);
        assert_eq!(log.stable(), 6, "ack for the old entry 7 (term 2) is stale");
        log.stable_to(7, 3);
        assert_eq!(log.stable(), 7);
        log.assert_invariants();
    }

    #[test]
    fn entries_already_present_are_not_rewritten() {
        let mut log = log_of(&[1, 1, 2], 1);
        log.append_from_leader(1, vec![e(2, 1), e(3, 2)]);
        assert!(!log.has_unstable(), "nothing new to persist");
        assert_eq!(log.last_index(), 3);
    }

    #[test]
    #[should_panic(expected = "overwrite committed")]
    fn overwriting_a_committed_entry_is_a_bug() {
        let mut log = log_of(&[1, 1, 2], 3);
        log.append_from_leader(2, vec![e(3, 5)]);
    }

    #[test]
    fn commit_never_regresses_and_never_passes_the_log() {
        let mut log = log_of(&[1, 1, 1], 2);
        assert!(!log.commit_to(1));
        assert_eq!(log.committed(), 2);
        assert!(log.commit_to(3));
    }

    #[test]
    fn find_conflict_by_term_skips_whole_terms() {
        let log = log_of(&[1, 1, 2, 2, 2, 4, 4], 0);
        assert_eq!(log.find_conflict_by_term(7, 3), (5, 2), "skips the term-4 run");
        assert_eq!(log.find_conflict_by_term(7, 4), (7, 4));
        assert_eq!(log.find_conflict_by_term(4, 1), (2, 1));
        assert_eq!(log.find_conflict_by_term(9, 9), (7, 4), "clamped to the last index");
    }

    #[test]
    fn committed_entries_are_applied_only_once_durable() {
        let mut log = log_of(&[1], 1);
        log.append(e(2, 1));
        log.commit_to(2);
        assert_eq!(
            log.take_committed(),
            vec![e(1, 1)],
            "entry 2 is committed but not yet durable here"
        );
        let _ = log.take_unstable();
        log.stable_to(2, 1);
        assert_eq!(log.take_committed(), vec![e(2, 1)]);
    }

    #[test]
    fn compaction_keeps_the_retained_tail_and_the_snapshot_term() {
        let mut log = log_of(&[1, 1, 2, 2, 3], 5);
        let _ = log.take_committed();
        log.applied_to_handed_out();
        log.compact(
            SnapshotMeta {
                index: 4,
                term: 2,
                conf: Default::default(),
            },
            2,
        );
        assert_eq!(log.first_index(), 3);
        assert_eq!(log.term(2), Some(1), "the entry at the offset keeps its term");
        assert_eq!(log.term(1), None, "compacted");
        assert_eq!(log.term(4), Some(2));
        log.assert_invariants();
    }
}
