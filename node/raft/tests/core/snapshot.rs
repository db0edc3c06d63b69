//! Log compaction and InstallSnapshot (§7).

use bytes::Bytes;
use kvorum_raft::progress::ProgressState;
use kvorum_raft::{Compaction, ConfState, HardState, MessageBody, RaftError, SnapshotMeta, SnapshotStatus};

use crate::helpers::*;

fn meta(index: u64, term: u64, voters: &[u64]) -> SnapshotMeta {
    SnapshotMeta {
        index,
        term,
        conf: ConfState::with_voters(voters.iter().copied()),
    }
}

/// A single-voter leader that applied up to index 5 (no-op at 2, commands 3..=5).
fn applied_leader(tweak: impl Fn(&mut kvorum_raft::Config) + Copy) -> Cluster {
    let mut c = Cluster::new(1, tweak);
    c.elect(1);
    for i in 0..3u8 {
        c.n(1).propose(Bytes::from(vec![i])).expect("leader");
    }
    c.pump();
    assert_eq!(c.n(1).log().applied(), 5);
    c
}

/// §7: a snapshot covers only applied state, and only moves forward: `compact(i)` refuses
/// `i > applied` and `i ≤ snapshot` with SnapshotOutOfRange, and otherwise drops the entries
/// it covers while remembering the last one's term.
#[test]
fn compact_accepts_only_indexes_above_the_snapshot_and_applied() {
    let mut c = applied_leader(|_| {});
    let n = c.n(1);
    let out_of_range = |index, snapshot_index| RaftError::SnapshotOutOfRange {
        index,
        snapshot_index,
        applied: 5,
    };
    assert_eq!(n.compact(6), Err(out_of_range(6, 1)), "not applied yet");
    assert_eq!(n.compact(1), Err(out_of_range(1, 1)), "not newer than the snapshot");
    assert_eq!(
        n.compact(4),
        Ok(Compaction {
            snapshot: meta(4, 1, &[1]),
            log_compacted_to: 4
        })
    );
    assert_eq!(n.log().first_index(), 5);
    assert_eq!((n.log().entry(4), n.log().entry(3)), (None, None), "entries dropped");
    assert_eq!((n.log().term(4), n.log().term(3)), (Some(1), None));
    assert_eq!(n.log().snapshot(), &meta(4, 1, &[1]));
    assert_eq!(n.compact(4), Err(out_of_range(4, 4)));
    assert_eq!(n.compact(3), Err(out_of_range(3, 4)));
    assert!(n.compact(5).is_ok());
}

/// §7 ("leave a few entries behind"): `compaction_retain_entries` keeps a tail behind the
/// snapshot so a briefly lagging follower catches up from the log.
#[test]
fn compaction_retains_the_configured_tail() {
    let mut c = applied_leader(|cfg| cfg.compaction_retain_entries = 2);
    let n = c.n(1);
    let done = n.compact(5).expect("applied");
    assert_eq!(done.log_compacted_to, 3);
    assert_eq!(n.log().first_index(), 4);
    assert!(n.log().entry(4).is_some());
    assert_eq!(n.log().snapshot().index, 5);
}

/// Leader 1 has compacted through 7; node 3 was cut off at match 2 and is reachable again.
fn lagging_follower() -> Cluster {
    lagging_follower_with(|_| {})
}

fn lagging_follower_with(tweak: impl Fn(&mut kvorum_raft::Config) + Copy) -> Cluster {
    let mut c = Cluster::new(3, tweak);
    c.elect(1);
    c.isolate(3);
    for i in 0..5u8 {
        c.n(1).propose(Bytes::from(vec![i])).expect("leader");
    }
    c.pump();
    assert_eq!(c.n(1).log().applied(), 7);
    c.n(1).compact(7).expect("applied");
    c.heal();
    c
}

/// §7: "the leader must occasionally send snapshots to followers that lag behind … when it has
/// already discarded the next log entry that it needs to send". Node 3's answer to a heartbeat
/// reveals the gap; the probe at 7 is refused; the entry it then needs is compacted, so the
/// leader sends InstallSnapshot with its latest snapshot, and pauses replication to node 3.
#[test]
fn a_follower_behind_the_first_index_is_sent_a_snapshot() {
    let mut c = lagging_follower();
    c.n(1).step(heartbeat_resp(3, 1, 1, 0));
    let probe = take(c.n(1)).messages;
    assert_eq!(probe, vec![append(1, 3, 1, (7, 1), vec![], 7)]);
    c.n(3).step(probe[0].clone());
    let reject = take(c.n(3)).messages;
    assert_eq!(reject, vec![append_resp(3, 1, 1, 7, Some((2, 1)))]);
    c.n(1).step(reject[0].clone());
    let ready = take(c.n(1));
    let snapshot = MessageBody::InstallSnapshot {
        snapshot: meta(7, 1, &[1, 2, 3]),
    };
    assert_eq!(ready.messages, vec![msg(1, 3, 1, snapshot)]);
    assert_eq!(
        c.n(1).progress()[&3].state,
        ProgressState::Snapshot { pending_index: 7 }
    );

    // While the snapshot streams, new entries go to node 2 only.
    c.n(1).propose(Bytes::from_static(b"y")).expect("leader");
    let sent = take(c.n(1)).messages;
    assert!(to_node(&sent, 3).is_empty(), "{sent:?}");
    assert_eq!(to_node(&sent, 2).len(), 1);
}

/// §7 / `compaction_retain_entries`: a follower whose next entry is still in the retained tail
/// catches up from the log, with no snapshot.
#[test]
fn a_follower_within_the_retained_tail_catches_up_without_a_snapshot() {
    let mut c = lagging_follower_with(|cfg| cfg.compaction_retain_entries = 5);
    assert_eq!(c.n(1).log().first_index(), 3);
    c.n(1).step(heartbeat_resp(3, 1, 1, 0));
    let probe = take(c.n(1)).messages;
    c.n(3).step(probe[0].clone());
    let reject = take(c.n(3)).messages;
    c.n(1).step(reject[0].clone());
    let sent = take(c.n(1)).messages;
    let missing: Vec<_> = (3..=7)
        .map(|i| c.n(1).log().entry(i).cloned().expect("retained"))
        .collect();
    assert_eq!(sent, vec![append(1, 3, 1, (2, 1), missing, 7)]);
}

/// §7 and the progress state machine: Delivered moves the follower to Probe just past the
/// snapshot, paused until it answers; its reply moves it to Replicate and entries flow again.
#[test]
fn report_snapshot_delivered_then_the_reply_resumes_replication() {
    let mut c = lagging_follower();
    c.n(1).step(heartbeat_resp(3, 1, 1, 0));
    let probe = take(c.n(1)).messages;
    c.n(3).step(probe[0].clone());
    let reject = take(c.n(3)).messages;
    c.n(1).step(reject[0].clone());
    let install = take(c.n(1)).messages;
    assert_eq!(install[0].kind(), "Snapshot");

    c.n(1).report_snapshot(3, SnapshotStatus::Delivered);
    let pr = &c.n(1).progress()[&3];
    assert_eq!((pr.state, pr.next_index), (ProgressState::Probe, 8));
    assert!(pr.is_paused(), "wait for the follower's answer");

    c.n(3).step(install[0].clone());
    let reply = take(c.n(3)).messages;
    assert_eq!(reply, vec![append_resp(3, 1, 1, 7, None)]);
    c.n(1).step(reply[0].clone());
    let pr = &c.n(1).progress()[&3];
    assert_eq!((pr.state, pr.match_index), (ProgressState::Replicate, 7));
    c.n(1).propose(Bytes::from_static(b"z")).expect("leader");
    let to3 = to_node(&take(c.n(1)).messages, 3);
    assert_eq!(to3, vec![append(1, 3, 1, (7, 1), vec![cmd(8, 1, b"z")], 7)]);
}

/// A failed transfer: back to Probe from the match index, paused; the next heartbeat answer
/// lets the leader probe again, which needs the compacted entries: a fresh InstallSnapshot.
#[test]
fn report_snapshot_failed_retries_with_a_new_snapshot() {
    let mut c = lagging_follower();
    c.n(1).step(heartbeat_resp(3, 1, 1, 0));
    let probe = take(c.n(1)).messages;
    c.n(3).step(probe[0].clone());
    let reject = take(c.n(3)).messages;
    c.n(1).step(reject[0].clone());
    assert_eq!(take(c.n(1)).messages[0].kind(), "Snapshot");

    c.n(1).report_snapshot(3, SnapshotStatus::Failed);
    let pr = &c.n(1).progress()[&3];
    assert_eq!((pr.state, pr.next_index), (ProgressState::Probe, 3));
    assert!(pr.is_paused());
    assert!(!c.n(1).has_ready(), "nothing is sent before the follower is heard from");

    c.n(1).step(heartbeat_resp(3, 1, 1, 0));
    let snapshot = MessageBody::InstallSnapshot {
        snapshot: meta(7, 1, &[1, 2, 3]),
    };
    assert_eq!(take(c.n(1)).messages, vec![msg(1, 3, 1, snapshot)]);
}

/// §7 receiver: "If existing log entry has same index and term as snapshot's last included
/// entry, retain log entries following it … Discard the entire log": installing is one Ready
/// carrying the snapshot, no entries, the new commit index, and the acknowledgement.
#[test]
fn a_follower_installs_a_snapshot_atomically_and_acknowledges_it_in_the_same_ready() {
    // Follower: term 1, log [2@1, 3@1], commit 2; its entry 3 is not in the snapshot's history.
    let mut n = restarted(3, &[1, 2, 3], (1, Some(1), 2), ents(2, &[1, 1]), |_| {});
    take(&mut n);
    let snapshot = meta(10, 1, &[1, 2, 3]);
    n.step(msg(
        1,
        3,
        1,
        MessageBody::InstallSnapshot {
            snapshot: snapshot.clone(),
        },
    ));
    let ready = take(&mut n);
    assert_eq!(ready.snapshot, Some(snapshot.clone()));
    assert!(ready.entries.is_empty() && ready.committed_entries.is_empty());
    assert_eq!(
        ready.hard_state,
        Some(HardState {
            term: 1,
            vote: Some(1),
            commit: 10
        })
    );
    assert_eq!(ready.messages, vec![append_resp(3, 1, 1, 10, None)]);
    let log = n.log();
    assert_eq!((log.first_index(), log.last_index(), log.committed()), (11, 10, 10));
    assert_eq!((log.applied(), log.snapshot()), (10, &snapshot));
    assert_eq!(log.entry(3), None, "the old log is gone");
}

/// §7 receiver: a snapshot the follower already covers (index ≤ commit) is not installed; the
/// follower just tells the leader how far it is.
#[test]
fn a_stale_snapshot_is_acknowledged_without_installing() {
    let mut n = restarted(3, &[1, 2, 3], (1, None, 3), ents(2, &[1, 1, 1]), |_| {});
    take(&mut n);
    n.step(msg(
        1,
        3,
        1,
        MessageBody::InstallSnapshot {
            snapshot: meta(2, 1, &[1, 2, 3]),
        },
    ));
    let ready = take(&mut n);
    assert_eq!(ready.snapshot, None);
    assert_eq!(ready.messages, vec![append_resp(3, 1, 1, 3, None)]);
    assert_eq!(n.log().last_index(), 4);
}
