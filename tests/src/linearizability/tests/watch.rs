//! Watch streams with a known verdict, against one authoritative log.

use crate::linearizability::{
    KeyRange, Position, WatchEvent, WatchSpec, WatchSummary, WatchViolation, check_watch_resume, check_watch_stream,
};

type Event = WatchEvent<&'static str, u64>;

/// Revisions 2..=7 of a store; revision 4 is a transaction touching two keys, and "z" is
/// outside the watched range `[a, m)`.
fn committed() -> Vec<Event> {
    vec![
        WatchEvent::put(2, "a", 1),
        WatchEvent::put(3, "b", 1),
        WatchEvent::put(4, "a", 2),
        WatchEvent::delete(4, "b"),
        WatchEvent::put(5, "z", 9),
        WatchEvent::put(6, "c", 3),
        WatchEvent::put(7, "a", 4),
    ]
}

fn spec(start_revision: i64) -> WatchSpec<&'static str> {
    WatchSpec {
        range: KeyRange::half_open("a", "m"),
        start_revision: Some(start_revision),
    }
}

/// What a correct watcher from revision 2 receives, in four responses; the empty one is a
/// progress notification.
fn good_stream() -> Vec<Vec<Event>> {
    let log = committed();
    vec![
        vec![log[0].clone(), log[1].clone()],
        vec![log[2].clone(), log[3].clone()],
        vec![],
        vec![log[5].clone(), log[6].clone()],
    ]
}

fn check(stream: &[Vec<Event>]) -> Result<WatchSummary, WatchViolation<&'static str>> {
    check_watch_stream(&spec(2), stream, Some(&committed()))
}

#[test]
fn good_stream_passes() {
    assert_eq!(
        check(&good_stream()),
        Ok(WatchSummary {
            events: 6,
            last_revision: Some(7)
        })
    );
    // A watcher cut off early only owes what came before its last revision.
    assert_eq!(
        check(&good_stream()[..2]),
        Ok(WatchSummary {
            events: 4,
            last_revision: Some(4)
        })
    );
    // Without the log, only the stream's own order is judged.
    assert!(check_watch_stream(&spec(2), &good_stream(), None).is_ok());
}

#[test]
fn duplicated_event_fails() {
    let mut stream = good_stream();
    stream[3].insert(0, WatchEvent::put(4, "a", 2));
    let error = check(&stream).unwrap_err();
    assert_eq!(
        error,
        WatchViolation::Duplicate {
            revision: 4,
            key: "a",
            first: Position { batch: 1, event: 0 },
            again: Position { batch: 3, event: 0 },
        }
    );
    assert!(error.to_string().contains("already delivered"), "{error}");
}

#[test]
fn gap_fails() {
    let mut stream = good_stream();
    stream[1].remove(1);
    let error = check(&stream).unwrap_err();
    assert_eq!(
        error,
        WatchViolation::Missing {
            revision: 4,
            key: "b",
            last_received: 7
        }
    );
    assert!(error.to_string().starts_with("gap"), "{error}");
    // A missing first event counts too: the window starts at the start revision.
    let late = vec![good_stream()[1].clone()];
    assert_eq!(
        check(&late),
        Err(WatchViolation::Missing {
            revision: 2,
            key: "a",
            last_received: 4
        })
    );
}

#[test]
fn revision_split_across_batches_fails() {
    let mut stream = good_stream();
    let second_half = stream[1].pop().expect("revision 4 has two events");
    stream[2].push(second_half);
    assert_eq!(
        check(&stream),
        Err(WatchViolation::SplitRevision {
            revision: 4,
            first_batch: 1,
            later_batch: 2
        })
    );
}

#[test]
fn out_of_order_event_fails() {
    let mut stream = good_stream();
    stream[3].swap(0, 1);
    assert_eq!(
        check(&stream),
        Err(WatchViolation::OutOfOrder {
            at: Position { batch: 3, event: 1 },
            revision: 6,
            previous_revision: 7
        })
    );
}

#[test]
fn events_outside_the_watch_or_the_log_fail() {
    let log = committed();
    let mut before_start = good_stream();
    before_start[0].insert(0, WatchEvent::put(1, "a", 0));
    assert!(matches!(
        check(&before_start),
        Err(WatchViolation::BeforeStart {
            revision: 1,
            start_revision: 2,
            ..
        })
    ));

    let mut out_of_range = good_stream();
    out_of_range[2].push(log[4].clone());
    assert!(matches!(
        check(&out_of_range),
        Err(WatchViolation::OutOfRange { key: "z", .. })
    ));

    let mut invented = good_stream();
    invented[2].push(WatchEvent::put(5, "c", 3));
    assert!(matches!(
        check(&invented),
        Err(WatchViolation::NotCommitted {
            revision: 5,
            key: "c",
            ..
        })
    ));

    let mut wrong_value = good_stream();
    wrong_value[3][1] = WatchEvent::put(7, "a", 5);
    assert!(matches!(
        check(&wrong_value),
        Err(WatchViolation::WrongEffect {
            revision: 7,
            key: "a",
            ..
        })
    ));
}

#[test]
fn watch_resumed_from_a_revision_receives_exactly_the_rest() {
    let range = KeyRange::half_open("a", "m");
    let log = committed();
    let first = good_stream();
    let resumed = vec![vec![log[2].clone(), log[3].clone()], vec![log[5].clone()]];
    assert_eq!(
        check_watch_resume(&range, 4, &first, &resumed, Some(&log)),
        Ok(WatchSummary {
            events: 3,
            last_revision: Some(6)
        })
    );

    // Without the log the comparison with the first watcher is what catches the lost event.
    let lossy = vec![vec![log[2].clone()], vec![log[5].clone()]];
    assert_eq!(
        check_watch_resume(&range, 4, &first, &lossy, None),
        Err(WatchViolation::ResumeDiverged {
            resume_revision: 4,
            index: 1,
            first: Some((4, "b")),
            second: Some((6, "c"))
        })
    );
    // A resumed watch that replays a revision before its start is caught as such.
    let replaying = vec![vec![log[1].clone()], vec![log[2].clone(), log[3].clone()]];
    assert!(matches!(
        check_watch_resume(&range, 4, &first, &replaying, Some(&log)),
        Err(WatchViolation::BeforeStart {
            revision: 3,
            start_revision: 4,
            ..
        })
    ));
}
