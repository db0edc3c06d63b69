//! Index order: `snapshot ≤ applied ≤ commit ≤ last_index` on every node, and the log's own
//! documented invariants (contiguity, persistence bookkeeping). openraft's fuzzer checks the
//! same chain (`purged ≤ snapshot ≤ applied ≤ committed ≤ last_log`).

use kvorum_raft::Raft;

use crate::node::SmState;

pub fn check(raft: &Raft, sm: &SmState) {
    let log = raft.log();
    log.assert_invariants();
    let (snap, applied, commit, last) = (log.snapshot().index, sm.applied, log.committed(), log.last_index());
    assert!(
        log.first_index() - 1 <= snap && snap <= applied && applied <= commit && commit <= last,
        "node {}: index order broken: first-1={} snapshot={snap} applied={applied} commit={commit} last={last}",
        raft.id(),
        log.first_index() - 1
    );
}
