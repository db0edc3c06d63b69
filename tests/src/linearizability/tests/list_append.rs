//! Hand-built list-append histories whose answer is known.

use super::{List, append, read_list};
use crate::linearizability::{CheckConfig, ListAppendModel, ListCall, ListOp, Verdict, check_list_append};

fn check(history: &[List]) -> Verdict<&'static str, ListAppendModel<u64>> {
    check_list_append(history, &CheckConfig::default())
}

fn assert_linearizable(history: &[List]) {
    let verdict = check(history);
    assert!(verdict.is_linearizable(), "expected linearizable, got {verdict}");
}

fn assert_violation_on(history: &[List], key: &str) {
    match check(history) {
        Verdict::Violation(violation) if violation.key == key => {}
        other => panic!("expected a violation on key {key:?}, got {other}"),
    }
}

#[test]
fn sequential_history_passes() {
    assert_linearizable(&[
        read_list(1, "x", (0, 5), &[]),
        append(1, "x", (10, 20), 1),
        read_list(1, "x", (30, 40), &[1]),
        append(1, "x", (50, 60), 2),
        read_list(1, "x", (70, 80), &[1, 2]),
    ]);
}

/// Concurrent appends may land in either order, but every read must agree on the one chosen.
#[test]
fn concurrent_appends_pass_when_reads_agree_on_an_order() {
    assert_linearizable(&[
        append(1, "x", (0, 50), 1),
        append(2, "x", (10, 60), 2),
        read_list(3, "x", (20, 30), &[2]),
        read_list(3, "x", (70, 80), &[2, 1]),
        read_list(4, "x", (65, 90), &[2, 1]),
    ]);
}

/// An acknowledged append missing from a later read was lost.
#[test]
fn read_missing_an_acknowledged_element_fails() {
    let appends = [append(1, "x", (0, 10), 1), append(2, "x", (20, 30), 2)];
    assert_violation_on(
        &[
            appends[0].clone(),
            appends[1].clone(),
            read_list(3, "x", (40, 50), &[2]),
        ],
        "x",
    );
    assert_violation_on(
        &[
            appends[0].clone(),
            appends[1].clone(),
            read_list(3, "x", (40, 50), &[1]),
        ],
        "x",
    );
}

/// Elements out of real-time order, or two reads that disagree on the order of concurrent
/// appends, cannot come from one list.
#[test]
fn read_with_elements_out_of_order_fails() {
    assert_violation_on(
        &[
            append(1, "x", (0, 10), 1),
            append(2, "x", (20, 30), 2),
            read_list(3, "x", (40, 50), &[2, 1]),
        ],
        "x",
    );
    assert_violation_on(
        &[
            append(1, "y", (0, 50), 1),
            append(2, "y", (10, 60), 2),
            read_list(3, "y", (70, 80), &[1, 2]),
            read_list(4, "y", (90, 100), &[2, 1]),
        ],
        "y",
    );
}

/// Unknown appends may appear (even after the client gave up) or never appear.
#[test]
fn unknown_append_may_or_may_not_take_effect() {
    let unknown = ListOp::unknown(2, "x", ListCall::Append(3), 20, 30);
    assert_linearizable(&[
        append(1, "x", (0, 10), 1),
        unknown.clone(),
        read_list(3, "x", (40, 50), &[1]),
        read_list(3, "x", (60, 70), &[1, 3]),
    ]);
    assert_linearizable(&[
        append(1, "x", (0, 10), 1),
        unknown.clone(),
        read_list(3, "x", (400, 500), &[1]),
    ]);
    // ... but it lands once, at one place.
    assert_violation_on(
        &[
            append(1, "x", (0, 10), 1),
            unknown,
            read_list(3, "x", (40, 50), &[1, 3]),
            append(1, "x", (60, 70), 4),
            read_list(3, "x", (80, 90), &[1, 4, 3]),
        ],
        "x",
    );
}

#[test]
fn failed_append_observed_fails() {
    let failed = ListOp::fail(2, "x", ListCall::Append(3), 20, 30);
    assert_linearizable(&[
        append(1, "x", (0, 10), 1),
        failed.clone(),
        read_list(3, "x", (40, 50), &[1]),
    ]);
    assert_violation_on(
        &[append(1, "x", (0, 10), 1), failed, read_list(3, "x", (40, 50), &[1, 3])],
        "x",
    );
}

/// Keys are independent lists: an element appended to one key never shows up in another.
#[test]
fn violation_names_the_key_whose_list_broke() {
    assert_violation_on(
        &[
            append(1, "x", (0, 10), 1),
            read_list(2, "x", (20, 30), &[1]),
            append(1, "y", (0, 10), 2),
            read_list(2, "y", (20, 30), &[1, 2]),
        ],
        "y",
    );
}
