//! Hand-built register histories whose answer is known.

use super::{Reg, cas, read, write};
use crate::linearizability::{
    CheckConfig, RegisterCall, RegisterModel, RegisterOp, Verdict, Violation, check_registers,
};

fn check(history: &[Reg]) -> Verdict<&'static str, RegisterModel<u64>> {
    check_registers(history, &CheckConfig::default())
}

fn assert_linearizable(history: &[Reg]) {
    let verdict = check(history);
    assert!(verdict.is_linearizable(), "expected linearizable, got {verdict}");
}

/// Asserts a violation on `key` and returns its report.
fn expect_violation(history: &[Reg], key: &str) -> Box<Violation<&'static str, RegisterModel<u64>>> {
    match check(history) {
        Verdict::Violation(violation) if violation.key == key => violation,
        other => panic!("expected a violation on key {key:?}, got {other}"),
    }
}

/// A single client's history is linearizable iff it is a legal sequential run.
#[test]
fn sequential_history_passes() {
    assert_linearizable(&[
        read(1, "a", (0, 5), None),
        write(1, "a", (10, 20), 1),
        read(1, "a", (30, 40), Some(1)),
        cas(1, "a", (50, 60), (Some(1), 2), true),
        read(1, "a", (70, 80), Some(2)),
        cas(1, "a", (90, 100), (Some(1), 3), false),
        cas(1, "a", (110, 120), (None, 4), false),
        read(1, "a", (130, 140), Some(2)),
    ]);
}

/// Overlapping operations may take effect in either order, as long as one order explains every
/// read: here the reads force Write(2) before Write(1) although Write(1) was invoked first.
#[test]
fn concurrent_overlapping_history_passes() {
    assert_linearizable(&[
        write(1, "a", (0, 100), 1),
        write(2, "a", (10, 50), 2),
        read(3, "a", (5, 15), Some(2)),
        read(4, "a", (0, 8), None),
        read(5, "a", (20, 60), Some(2)),
        read(3, "a", (30, 120), Some(1)),
        read(4, "a", (110, 130), Some(1)),
        cas(2, "a", (105, 140), (Some(1), 7), true),
        read(5, "a", (150, 160), Some(7)),
    ]);
}

/// A completion and an invocation at the same instant are concurrent: a coarse clock cannot
/// order them, so the read may still miss the write.
#[test]
fn touching_intervals_are_concurrent() {
    assert_linearizable(&[write(1, "a", (0, 10), 1), read(2, "a", (10, 20), None)]);
    expect_violation(&[write(1, "a", (0, 10), 1), read(2, "a", (11, 20), None)], "a");
}

/// The classic stale read: a read that starts after a write completed returns an older value.
/// Only the broken key is reported; the others are fine.
#[test]
fn stale_read_after_completed_write_fails_on_its_key() {
    let history = [
        write(1, "a", (0, 10), 1),
        read(2, "a", (20, 30), Some(1)),
        write(1, "b", (0, 10), 1),
        write(1, "b", (20, 30), 2),
        read(2, "b", (40, 50), Some(1)),
        write(3, "c", (0, 100), 9),
    ];
    let violation = expect_violation(&history, "b");
    assert_eq!(
        violation.stuck.iter().map(|op| op.index).collect::<Vec<_>>(),
        vec![4],
        "{violation}"
    );
    assert_eq!(violation.state, Some(2));
    assert_eq!(violation.prefix_len, 2);
    let report = violation.to_string();
    assert!(
        report.contains("key \"b\"") && report.contains("#4 client 2"),
        "{report}"
    );
}

/// An acknowledged write that no later read sees was lost.
#[test]
fn lost_write_fails() {
    expect_violation(
        &[
            write(1, "a", (0, 10), 1),
            read(2, "a", (20, 30), None),
            read(3, "a", (40, 50), None),
        ],
        "a",
    );
}

/// Two compare-and-sets from the same expected value cannot both succeed.
#[test]
fn cas_succeeding_twice_from_same_expected_value_fails() {
    let winner_and_loser = [
        write(1, "a", (0, 10), 0),
        cas(2, "a", (20, 40), (Some(0), 1), true),
        cas(3, "a", (25, 45), (Some(0), 2), false),
        read(1, "a", (50, 60), Some(1)),
    ];
    assert_linearizable(&winner_and_loser);
    expect_violation(
        &[
            write(1, "a", (0, 10), 0),
            cas(2, "a", (20, 40), (Some(0), 1), true),
            cas(3, "a", (25, 45), (Some(0), 2), true),
        ],
        "a",
    );
}

/// A timed-out write that a later read observes took effect; one that commits after its client
/// gave up is just as real.
#[test]
fn unknown_write_needed_to_explain_a_read_passes() {
    assert_linearizable(&[
        write(1, "a", (0, 10), 1),
        RegisterOp::unknown(2, "a", RegisterCall::Write(2), 20, 30),
        read(3, "a", (40, 50), Some(1)),
        read(3, "a", (60, 70), Some(2)),
        read(1, "a", (80, 90), Some(2)),
    ]);
    assert_linearizable(&[
        write(1, "a", (0, 10), 1),
        RegisterOp::unknown(
            2,
            "a",
            RegisterCall::Cas {
                expected: Some(1),
                new: 5,
            },
            20,
            30,
        ),
        read(3, "a", (40, 50), Some(5)),
    ]);
}

/// A timed-out write that nobody ever observes may simply not have happened.
#[test]
fn unknown_write_never_observed_passes() {
    assert_linearizable(&[
        write(1, "a", (0, 10), 1),
        RegisterOp::unknown(2, "a", RegisterCall::Write(2), 20, 30),
        read(3, "a", (40, 50), Some(1)),
        read(1, "a", (1_000, 1_010), Some(1)),
        RegisterOp::unknown(4, "a", RegisterCall::Read, 5, 15),
    ]);
}

/// An unknown write takes effect at most once: once seen, it cannot be un-seen.
#[test]
fn unknown_write_seen_then_unseen_fails() {
    expect_violation(
        &[
            write(1, "a", (0, 10), 1),
            RegisterOp::unknown(2, "a", RegisterCall::Write(2), 20, 30),
            read(3, "a", (40, 50), Some(2)),
            read(3, "a", (60, 70), Some(1)),
        ],
        "a",
    );
}

/// A write the client was told failed must not be observed.
#[test]
fn failed_write_observed_fails() {
    let failed = RegisterOp::fail(2, "a", RegisterCall::Write(2), 20, 30);
    assert_linearizable(&[
        write(1, "a", (0, 10), 1),
        failed.clone(),
        read(3, "a", (40, 50), Some(1)),
    ]);
    expect_violation(
        &[write(1, "a", (0, 10), 1), failed, read(3, "a", (40, 50), Some(2))],
        "a",
    );
}

#[test]
fn empty_history_passes_and_stats_count_what_was_searched() {
    assert!(check(&[]).is_linearizable());
    let verdict = check(&[
        write(1, "a", (0, 10), 1),
        write(1, "b", (0, 10), 1),
        RegisterOp::fail(2, "a", RegisterCall::Write(2), 20, 30),
        RegisterOp::unknown(2, "b", RegisterCall::Read, 20, 30),
    ]);
    match verdict {
        Verdict::Linearizable(stats) => assert_eq!((stats.keys, stats.operations), (2, 2)),
        other => panic!("expected linearizable, got {other}"),
    }
}

/// The budget turns a search that would run too long into an explicit "unknown".
#[test]
fn search_budget_reports_too_complex() {
    let history: Vec<Reg> = (0..20).map(|client| write(client, "k", (0, 100), client)).collect();
    let verdict = check_registers(&history, &CheckConfig { max_states_per_key: 5 });
    match verdict {
        Verdict::TooComplex { key, explored_states } => assert_eq!((key, explored_states), ("k", 6)),
        other => panic!("expected too complex, got {other}"),
    }
}

/// An operation that completes before it starts is a bug in the recording harness, not a
/// verdict about the cluster.
#[test]
#[should_panic(expected = "malformed history")]
fn completion_before_invocation_panics() {
    check(&[write(1, "a", (10, 5), 1)]);
}
