//! The search against brute force on thousands of tiny random histories.
//!
//! The search prunes aggressively (memoization, dominance of unknown outcomes, forced reads,
//! lookahead); each rule is argued sound in a comment, and this is the check on the arguments.
//! Brute force tries every order that respects real time, with nothing but the model to cut
//! branches, so on histories of up to seven operations it is the ground truth. The histories
//! are random, results included, so both verdicts occur often.

use rand_core::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::linearizability::{
    CheckConfig, ListAppendModel, ListCall, ListRet, Model, Operation, Outcome, RegisterCall, RegisterModel,
    RegisterRet, check_history,
};

const CASES: u64 = 4_000;
const MAX_OPERATIONS: u64 = 9;

fn below(rng: &mut Xoshiro256PlusPlus, bound: u64) -> u64 {
    rng.next_u64() % bound
}

/// Whether some order of `ops` respecting real time is a legal run of `model`, where failed
/// operations are left out and unknown ones may be left out.
fn brute_force<M: Model>(model: &M, ops: &[Operation<u8, M::Call, M::Ret>]) -> bool {
    let live: Vec<&Operation<u8, M::Call, M::Ret>> =
        ops.iter().filter(|op| !matches!(op.outcome, Outcome::Fail)).collect();
    let mut placed = vec![false; live.len()];
    extend(model, &live, &mut placed, &model.init())
}

fn extend<M: Model>(model: &M, ops: &[&Operation<u8, M::Call, M::Ret>], placed: &mut [bool], state: &M::State) -> bool {
    let done = (0..ops.len()).all(|i| placed[i] || matches!(ops[i].outcome, Outcome::Unknown));
    if done {
        return true;
    }
    for next in 0..ops.len() {
        // `next` may go now unless an unplaced operation completed before it was invoked.
        let blocked =
            (0..ops.len()).any(|i| !placed[i] && ops[i].deadline().is_some_and(|end| end < ops[next].invoke_time));
        if placed[next] || blocked {
            continue;
        }
        if let Some(after) = model.step(state, &ops[next].call, ops[next].outcome.result()) {
            placed[next] = true;
            let found = extend(model, ops, placed, &after);
            placed[next] = false;
            if found {
                return true;
            }
        }
    }
    false
}

/// A random interval and outcome for a call whose completed result `result` draws. Four in ten
/// outcomes are unknown: the dominance rules only matter with several unknown operations
/// pending, and at this rate a wrong rule fails within the first few thousand cases.
fn random_op<C, R>(
    rng: &mut Xoshiro256PlusPlus,
    call: C,
    result: impl FnOnce(&mut Xoshiro256PlusPlus) -> R,
) -> Operation<u8, C, R> {
    let client = below(rng, 3);
    let invoke_time = below(rng, 30);
    let complete_time = invoke_time + below(rng, 15);
    match below(rng, 10) {
        0..=3 => Operation::unknown(client, 0, call, invoke_time, complete_time),
        4 => Operation::fail(client, 0, call, invoke_time, complete_time),
        _ => Operation::ok(client, 0, call, invoke_time, complete_time, result(rng)),
    }
}

fn random_value(rng: &mut Xoshiro256PlusPlus) -> Option<u8> {
    (below(rng, 4) > 0).then(|| below(rng, 3) as u8)
}

/// Asserts both checkers give the same verdict and returns it.
fn agree<M: Model>(model: &M, history: &[Operation<u8, M::Call, M::Ret>], case: u64) -> bool {
    let verdict = check_history(model, history, &CheckConfig::default());
    let expected = brute_force(model, history);
    assert_eq!(
        verdict.is_linearizable(),
        expected,
        "case {case}: search says {verdict}\nhistory: {history:#?}"
    );
    expected
}

/// Asserts that both verdicts were common enough for the comparison to mean something.
fn assert_mixed(linearizable: u64) {
    assert!(
        (CASES / 5..CASES * 4 / 5).contains(&linearizable),
        "{linearizable} of {CASES} linearizable"
    );
}

#[test]
fn search_agrees_with_brute_force_on_small_register_histories() {
    let model = RegisterModel::<u8>::new();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(41);
    let mut linearizable = 0;
    for case in 0..CASES {
        let len = 1 + below(&mut rng, MAX_OPERATIONS);
        let history: Vec<_> = (0..len)
            .map(|_| match below(&mut rng, 3) {
                0 => random_op(&mut rng, RegisterCall::Read, |rng| RegisterRet::Read(random_value(rng))),
                1 => {
                    let value = below(&mut rng, 3) as u8;
                    random_op(&mut rng, RegisterCall::Write(value), |_| RegisterRet::Write)
                }
                _ => {
                    let call = RegisterCall::Cas {
                        expected: random_value(&mut rng),
                        new: below(&mut rng, 3) as u8,
                    };
                    random_op(&mut rng, call, |rng| RegisterRet::Cas(below(rng, 2) == 0))
                }
            })
            .collect();
        linearizable += u64::from(agree(&model, &history, case));
    }
    assert_mixed(linearizable);
}

#[test]
fn search_agrees_with_brute_force_on_small_list_append_histories() {
    let model = ListAppendModel::<u8>::new();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(42);
    let mut linearizable = 0;
    for case in 0..CASES {
        let len = 1 + below(&mut rng, MAX_OPERATIONS);
        let mut appended: Vec<u8> = Vec::new();
        let history: Vec<_> = (0..len)
            .map(|_| {
                if below(&mut rng, 2) == 0 {
                    appended.push(appended.len() as u8 + 1);
                    random_op(&mut rng, ListCall::Append(appended.len() as u8), |_| ListRet::Append)
                } else {
                    // A random selection of the elements appended so far, in random order: often
                    // plausible, often not.
                    let mut seen: Vec<u8> = appended.iter().copied().filter(|_| below(&mut rng, 3) > 0).collect();
                    if below(&mut rng, 4) == 0 && seen.len() > 1 {
                        let swap = below(&mut rng, seen.len() as u64 - 1) as usize;
                        seen.swap(swap, swap + 1);
                    }
                    random_op(&mut rng, ListCall::Read, |_| ListRet::Read(seen))
                }
            })
            .collect();
        linearizable += u64::from(agree(&model, &history, case));
    }
    assert_mixed(linearizable);
}
