//! Randomized histories that are linearizable by construction, and single mutations of them
//! that are not.
//!
//! The generator runs a sequential object and gives every operation a random interval with its
//! linearization point somewhere inside: applying the operations in point order yields real
//! results, so the history has a linearization (the point order) and the checker must find one.
//! Some operations are marked unknown (taking effect or not, at random) or failed (not taking
//! effect). Register values come from a small domain, so many orders explain the same reads and
//! the search has real work to do.
//!
//! A violation costs more than a pass: the search must rule out every order of everything
//! before the bad read. On one key with ten clients, that is tens of thousands of
//! configurations, and unknown writes of values that other writes also use multiply it (each
//! could explain any later read of its value), so the single-key violation cases run either
//! without unknown outcomes or with unique values. Checks of real clusters spread operations
//! over many keys, where the same faults cost a few hundred configurations (the four-key cases).

use std::collections::BTreeMap;

use rand_core::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::linearizability::{
    CheckConfig, ListCall, ListOp, ListRet, Operation, Outcome, RegisterCall, RegisterOp, RegisterRet, Verdict,
    check_list_append, check_registers,
};

/// About ten operations in flight at any moment, as in the fault-injection tests.
const CLIENTS: usize = 10;
const OPERATIONS: usize = 2_000;
/// Never written by the generator: a read returning it saw something that did not happen.
const NEVER_WRITTEN: u64 = 1_000_000;
/// Percentage of operations that fail outright (and do not take effect).
const FAIL_PERCENT: u64 = 2;

/// The shape of a generated history.
#[derive(Clone, Copy)]
struct Workload {
    seed: u64,
    keys: &'static [&'static str],
    /// Register values are drawn from `0..values`.
    values: u64,
    /// Percentage of operations whose outcome is unknown; half of them take effect.
    unknown_percent: u64,
}

const ONE_KEY: &[&str] = &["k"];
const FOUR_KEYS: &[&str] = &["a", "b", "c", "d"];

fn below(rng: &mut Xoshiro256PlusPlus, bound: u64) -> u64 {
    rng.next_u64() % bound
}

/// One operation's interval and the instant it takes effect.
struct Slot {
    client: u64,
    invoke_time: u64,
    complete_time: u64,
    point: u64,
}

/// `OPERATIONS` intervals over `CLIENTS` clients, each client issuing one operation at a time.
/// The next operation always goes to the client that has been idle longest, so all clients stay
/// busy and intervals overlap about `CLIENTS` deep.
fn slots(rng: &mut Xoshiro256PlusPlus) -> Vec<Slot> {
    let mut free_at = [0u64; CLIENTS];
    (0..OPERATIONS)
        .map(|_| {
            let client = (0..CLIENTS).min_by_key(|&c| free_at[c]).unwrap_or(0);
            let invoke_time = free_at[client] + below(rng, 20);
            let duration = 1 + below(rng, 200);
            let complete_time = invoke_time + duration;
            free_at[client] = complete_time + 1;
            let point = invoke_time + below(rng, duration + 1);
            Slot {
                client: client as u64,
                invoke_time,
                complete_time,
                point,
            }
        })
        .collect()
}

/// Slot indices in linearization-point order: the order the sequential object runs them in.
fn point_order(slots: &[Slot]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..slots.len()).collect();
    order.sort_by_key(|&index| (slots[index].point, index));
    order
}

/// How an operation ended.
enum Fate {
    Ok,
    Unknown { took_effect: bool },
    Fail,
}

impl Fate {
    fn draw(rng: &mut Xoshiro256PlusPlus, unknown_percent: u64) -> Fate {
        let roll = below(rng, 100);
        if roll < unknown_percent {
            Fate::Unknown {
                took_effect: below(rng, 2) == 0,
            }
        } else if roll < unknown_percent + FAIL_PERCENT {
            Fate::Fail
        } else {
            Fate::Ok
        }
    }

    fn takes_effect(&self) -> bool {
        matches!(self, Fate::Ok | Fate::Unknown { took_effect: true })
    }

    fn outcome<R>(self, result: R) -> Outcome<R> {
        match self {
            Fate::Ok => Outcome::Ok(result),
            Fate::Unknown { .. } => Outcome::Unknown,
            Fate::Fail => Outcome::Fail,
        }
    }
}

/// Runs `next` (which draws a key and a call, applies it if the fate says so and returns the
/// result) in linearization-point order and records each call over its slot's interval.
fn generate<C, R>(
    workload: Workload,
    mut next: impl FnMut(&mut Xoshiro256PlusPlus, &'static str, &Fate) -> (C, R),
) -> Vec<Operation<&'static str, C, R>> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(workload.seed);
    let slots = slots(&mut rng);
    let mut history: Vec<Option<Operation<&'static str, C, R>>> = (0..slots.len()).map(|_| None).collect();
    for index in point_order(&slots) {
        let key = workload.keys[below(&mut rng, workload.keys.len() as u64) as usize];
        let fate = Fate::draw(&mut rng, workload.unknown_percent);
        let (call, result) = next(&mut rng, key, &fate);
        let Slot {
            client,
            invoke_time,
            complete_time,
            ..
        } = slots[index];
        let outcome = fate.outcome(result);
        history[index] = Some(Operation {
            client,
            key,
            call,
            invoke_time,
            complete_time,
            outcome,
        });
    }
    history.into_iter().flatten().collect()
}

fn register_history(workload: Workload) -> Vec<RegisterOp<&'static str, u64>> {
    let mut registers: BTreeMap<&str, Option<u64>> = BTreeMap::new();
    generate(workload, |rng, key, fate| {
        let current = registers.get(key).copied().flatten();
        let value = below(rng, workload.values);
        let call = match below(rng, 100) {
            0..45 => RegisterCall::Read,
            45..80 => RegisterCall::Write(value),
            // Half the swaps expect the current value, so a good share succeed.
            _ if below(rng, 2) == 0 => RegisterCall::Cas {
                expected: current,
                new: value,
            },
            _ => RegisterCall::Cas {
                expected: Some(below(rng, workload.values)),
                new: value,
            },
        };
        let (next, result) = match &call {
            RegisterCall::Read => (current, RegisterRet::Read(current)),
            RegisterCall::Write(value) => (Some(*value), RegisterRet::Write),
            RegisterCall::Cas { expected, new } if *expected == current => (Some(*new), RegisterRet::Cas(true)),
            RegisterCall::Cas { .. } => (current, RegisterRet::Cas(false)),
        };
        if fate.takes_effect() {
            registers.insert(key, next);
        }
        (call, result)
    })
}

fn list_history(workload: Workload) -> Vec<ListOp<&'static str, u64>> {
    let mut lists: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    // Elle's rule: every appended element is unique.
    let mut next_element = 0;
    generate(workload, |rng, key, fate| {
        let list = lists.entry(key).or_default();
        if below(rng, 2) == 0 {
            next_element += 1;
            if fate.takes_effect() {
                list.push(next_element);
            }
            (ListCall::Append(next_element), ListRet::Append)
        } else {
            (ListCall::Read, ListRet::Read(list.clone()))
        }
    })
}

/// The index of a completed read on `key` in the second half of the history: late enough that
/// the search must rule out every order of the operations before it.
fn late_read<C: PartialEq, R>(history: &[Operation<&str, C, R>], key: &str, read: &C) -> usize {
    (history.len() / 2..history.len())
        .find(|&index| {
            let op = &history[index];
            op.key == key && op.call == *read && matches!(op.outcome, Outcome::Ok(_))
        })
        .expect("the generator produces plenty of reads")
}

#[test]
fn random_register_histories_are_linearizable() {
    for seed in 0..3 {
        let workload = Workload {
            seed,
            keys: ONE_KEY,
            values: 8,
            unknown_percent: 3,
        };
        let verdict = check_registers(&register_history(workload), &CheckConfig::default());
        assert!(verdict.is_linearizable(), "seed {seed}: {verdict}");
    }
    let workload = Workload {
        seed: 7,
        keys: FOUR_KEYS,
        values: 8,
        unknown_percent: 3,
    };
    let verdict = check_registers(&register_history(workload), &CheckConfig::default());
    assert!(verdict.is_linearizable(), "seed 7, four keys: {verdict}");
}

#[test]
fn random_register_history_with_a_read_of_a_never_written_value_fails() {
    let cases = [
        (
            Workload {
                seed: 11,
                keys: ONE_KEY,
                values: 8,
                unknown_percent: 0,
            },
            "k",
        ),
        (
            Workload {
                seed: 12,
                keys: ONE_KEY,
                values: 1_000_000,
                unknown_percent: 3,
            },
            "k",
        ),
        (
            Workload {
                seed: 13,
                keys: FOUR_KEYS,
                values: 8,
                unknown_percent: 3,
            },
            "c",
        ),
    ];
    for (workload, key) in cases {
        let seed = workload.seed;
        let mut history = register_history(workload);
        assert!(
            check_registers(&history, &CheckConfig::default()).is_linearizable(),
            "seed {seed} unmutated"
        );
        let index = late_read(&history, key, &RegisterCall::Read);
        history[index].outcome = Outcome::Ok(RegisterRet::Read(Some(NEVER_WRITTEN)));
        let verdict = check_registers(&history, &CheckConfig::default());
        let Verdict::Violation(violation) = verdict else {
            panic!("seed {seed}: expected a violation, got {verdict}")
        };
        assert_eq!(violation.key, key, "seed {seed}");
        // The search cannot get past the bad read, so it gets stuck at or before its deadline.
        assert!(
            violation.deadline_op.op.complete_time <= history[index].complete_time,
            "seed {seed}: {violation}"
        );
    }
}

#[test]
fn random_list_append_histories_are_linearizable() {
    for (seed, keys) in [(21, ONE_KEY), (22, FOUR_KEYS)] {
        let workload = Workload {
            seed,
            keys,
            values: 0,
            unknown_percent: 3,
        };
        let verdict = check_list_append(&list_history(workload), &CheckConfig::default());
        assert!(verdict.is_linearizable(), "seed {seed}: {verdict}");
    }
}

#[test]
fn random_list_append_history_with_a_phantom_or_lost_element_fails() {
    let history = list_history(Workload {
        seed: 31,
        keys: ONE_KEY,
        values: 0,
        unknown_percent: 3,
    });
    let index = late_read(&history, "k", &ListCall::Read);
    let Outcome::Ok(ListRet::Read(seen)) = history[index].outcome.clone() else {
        unreachable!("late_read finds completed reads")
    };

    let mut phantom = history.clone();
    let mut with_phantom = seen.clone();
    with_phantom.push(NEVER_WRITTEN);
    phantom[index].outcome = Outcome::Ok(ListRet::Read(with_phantom));
    let verdict = check_list_append(&phantom, &CheckConfig::default());
    assert_eq!(verdict.violation().map(|v| v.key), Some("k"), "{verdict}");

    // Dropping the oldest element loses a write that every later read still shows.
    assert!(seen.len() > 1, "a late read sees several elements");
    let mut lost = history;
    lost[index].outcome = Outcome::Ok(ListRet::Read(seen[1..].to_vec()));
    let verdict = check_list_append(&lost, &CheckConfig::default());
    assert_eq!(verdict.violation().map(|v| v.key), Some("k"), "{verdict}");
}
