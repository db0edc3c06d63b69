//! Flow control and admission: inflight windows, batching, the uncommitted-log bound, and
//! proposals on followers (etcd's MaxInflightMsgs / MaxInflightBytes / MaxSizePerMsg /
//! MaxUncommittedEntriesSize; thesis §6.2 for redirecting clients).

use bytes::Bytes;
use kvorum_raft::{Config, ENTRY_OVERHEAD_BYTES, Entry, Message, RaftError};

use crate::helpers::*;

const PAYLOAD: usize = 10;
/// Accounted size of one proposal of `PAYLOAD` bytes.
const ENTRY: u64 = PAYLOAD as u64 + ENTRY_OVERHEAD_BYTES;

fn propose_n(c: &mut Cluster, n: usize) {
    for i in 0..n {
        c.n(1).propose(Bytes::from(vec![i as u8; PAYLOAD])).expect("leader");
    }
}

/// The AppendEntries carrying entries to `to`, as (first, last) index ranges.
fn appends_to(msgs: &[Message], to: u64) -> Vec<(u64, u64)> {
    msgs.iter()
        .filter(|m| m.to == to && !entries_of(m).is_empty())
        .map(|m| {
            let e = entries_of(m);
            (e[0].index, e[e.len() - 1].index)
        })
        .collect()
}

fn bytes(entries: &[Entry]) -> u64 {
    entries.iter().map(Entry::size_bytes).sum()
}

/// MaxInflightMsgs: to followers that do not answer, the leader sends at most
/// `max_inflight_msgs` AppendEntries, however much is proposed; an acknowledgement frees one
/// slot for one more message.
#[test]
fn max_inflight_msgs_bounds_appends_to_a_silent_follower() {
    let mut c = Cluster::new(3, |cfg| {
        cfg.max_inflight_msgs = 3;
        cfg.max_append_bytes = 1; // one entry per message
    });
    c.elect(1);
    propose_n(&mut c, 10);
    let sent = take(c.n(1)).messages;
    assert_eq!(appends_to(&sent, 2), vec![(3, 3), (4, 4), (5, 5)]);
    assert_eq!(appends_to(&sent, 3), vec![(3, 3), (4, 4), (5, 5)]);
    propose_n(&mut c, 2);
    let sent = take(c.n(1)).messages;
    assert_eq!(
        (appends_to(&sent, 2), appends_to(&sent, 3)),
        (vec![], vec![]),
        "both windows are full"
    );

    c.n(1).step(append_resp(2, 1, 1, 3, None));
    let sent = take(c.n(1)).messages;
    assert_eq!(appends_to(&sent, 2), vec![(6, 6)], "one slot freed, one message");
    assert_eq!(appends_to(&sent, 3), vec![]);
    assert_eq!(c.n(1).progress()[&3].inflight_count(), 3);
}

/// MaxInflightBytes: the window also closes once the entry bytes in flight reach the limit.
#[test]
fn max_inflight_bytes_bounds_appends_to_a_silent_follower() {
    let mut c = Cluster::new(3, |cfg| {
        cfg.max_inflight_bytes = 2 * ENTRY - 1;
        cfg.max_append_bytes = 1;
    });
    c.elect(1);
    propose_n(&mut c, 10);
    let sent = take(c.n(1)).messages;
    assert_eq!(
        appends_to(&sent, 2),
        vec![(3, 3), (4, 4)],
        "the second message fills the byte window"
    );
    assert_eq!(appends_to(&sent, 3), vec![(3, 3), (4, 4)]);
}

/// MaxSizePerMsg: proposals made between two Readies are batched, each AppendEntries holding as
/// many entries as fit in `max_append_bytes` — many small proposals, few messages.
#[test]
fn batching_respects_max_append_bytes() {
    let mut c = Cluster::new(3, |cfg: &mut Config| cfg.max_append_bytes = 3 * ENTRY);
    c.elect(1);
    propose_n(&mut c, 20);
    let sent = take(c.n(1)).messages;
    let expected: Vec<(u64, u64)> = (0..7).map(|k| (3 + 3 * k, (5 + 3 * k).min(22))).collect();
    assert_eq!(appends_to(&sent, 2), expected, "20 entries in 7 messages of ≤ 3");
    for m in sent.iter().filter(|m| m.to == 2) {
        assert!(bytes(entries_of(m)) <= 3 * ENTRY);
    }

    // With the default budget all 20 travel in one message per follower.
    let mut c = Cluster::new(3, |_| {});
    c.elect(1);
    propose_n(&mut c, 20);
    let sent = take(c.n(1)).messages;
    assert_eq!(
        (appends_to(&sent, 2), appends_to(&sent, 3)),
        (vec![(3, 22)], vec![(3, 22)])
    );
}

/// A single entry larger than `max_append_bytes` still goes out, alone (Config docs).
#[test]
fn an_oversized_entry_is_sent_alone() {
    let mut c = Cluster::new(3, |cfg| cfg.max_append_bytes = 16);
    c.elect(1);
    propose_n(&mut c, 2);
    let sent = take(c.n(1)).messages;
    assert_eq!(appends_to(&sent, 2), vec![(3, 3), (4, 4)]);
}

/// MaxUncommittedEntriesSize: once the uncommitted bytes of the term would exceed the limit,
/// propose returns UncommittedLogFull (retryable); after the entries commit it accepts again.
#[test]
fn the_uncommitted_log_bound_refuses_and_then_recovers() {
    let mut c = Cluster::new(3, |cfg| cfg.max_uncommitted_bytes = 3 * ENTRY - 1);
    c.elect(1);
    assert_eq!(c.n(1).uncommitted_bytes(), 0, "the no-op committed");
    propose_n(&mut c, 2);
    let full = c.n(1).propose(Bytes::from(vec![0; PAYLOAD]));
    assert_eq!(
        full,
        Err(RaftError::UncommittedLogFull {
            uncommitted_bytes: 2 * ENTRY,
            limit_bytes: 3 * ENTRY - 1
        })
    );
    assert!(full.unwrap_err().is_retryable());
    assert_eq!(c.n(1).log().last_index(), 4, "the refused entry was not appended");
    c.pump();
    assert_eq!((c.n(1).log().committed(), c.n(1).uncommitted_bytes()), (4, 0));
    let accepted = c.n(1).propose(Bytes::from(vec![0; PAYLOAD])).expect("room again");
    assert_eq!(accepted.index, 5);
}

/// The uncommitted bound never wedges the leader: with nothing uncommitted, even an entry
/// larger than the limit is accepted.
#[test]
fn an_oversized_proposal_is_accepted_when_nothing_is_uncommitted() {
    let mut c = Cluster::new(3, |cfg| cfg.max_uncommitted_bytes = 50);
    c.elect(1);
    assert!(c.n(1).propose(Bytes::from(vec![0; 200])).is_ok());
    assert!(matches!(
        c.n(1).propose(Bytes::from_static(b"y")),
        Err(RaftError::UncommittedLogFull { .. })
    ));
}

/// §6.2 ("If a client contacts a follower, the follower rejects the request and supplies
/// information about the most recent leader it has heard from"): NotLeader with the hint, or
/// with none when no leader is known.
#[test]
fn a_proposal_on_a_follower_is_redirected_to_the_leader() {
    let mut c = Cluster::new(3, |_| {});
    c.elect(1);
    let err = c.n(2).propose(Bytes::from_static(b"x")).unwrap_err();
    assert_eq!(err, RaftError::NotLeader { leader: Some(1) });
    assert_eq!(err.leader_hint(), Some(1));
    assert!(err.is_retryable());
    assert_eq!(c.n(2).log().last_index(), 2);

    let mut lone = fresh(2, &[1, 2, 3], |_| {});
    assert_eq!(
        lone.propose(Bytes::from_static(b"x")),
        Err(RaftError::NotLeader { leader: None })
    );
}
