//! The deterministic cluster simulator.
//!
//! One seed decides everything: cluster size, latency, loss, clock skew, the fault rates, and
//! every individual fault and client request. Each run has a fault phase (crashes, power loss
//! mid-write, partitions including one-way ones, pauses, drops, duplicates, reordering,
//! membership changes, leader transfers, snapshots and compaction, writes and linearizable
//! reads) followed by a liveness phase (heal everything and require progress). Invariants are
//! checked after every step (see `invariants/`).
//!
//! - CI: `cargo test -p kvorum-raft --test sim` runs a fixed budget of seeds in four shards.
//! - Reproduce a failure: `KVORUM_SIM_SEED=<seed> cargo test -p kvorum-raft --test sim -- simulate --nocapture`
//!   (prints the full event trace; the run is identical to the failing one).
//! - Soak: `KVORUM_SIM_SECONDS=<n> cargo test --release -p kvorum-raft --test sim -- simulate --nocapture`.

mod cluster;
mod faults;
mod invariants;
mod network;
mod node;
mod rng;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use cluster::{Sim, Stats};
use faults::Knobs;

/// Seeds per shard (four shards) and fault-phase steps per seed in the CI budget.
const CI_SEEDS_PER_SHARD: u64 = 800;
const CI_STEPS: u64 = 25_000;
/// Simulated time allowed for recovery once faults stop.
const LIVENESS_BUDGET_MS: u64 = 20_000;

/// Runs one seed to completion; returns its stats and trace digest, or the failure message.
fn run_seed(seed: u64, steps: u64, verbose: bool) -> Result<(Stats, u64), String> {
    catch_unwind(AssertUnwindSafe(|| {
        let mut sim = Sim::new(seed, verbose);
        let knobs = Knobs::draw(&mut sim);
        for _ in 0..steps {
            sim.inject(&knobs);
            sim.step();
        }
        sim.end_faults();
        sim.check_liveness(LIVENESS_BUDGET_MS);
        sim.stats.reads_served = sim.checker.reads.served;
        (sim.stats.clone(), sim.trace_digest())
    }))
    .map_err(|panic| {
        let msg = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        format!(
            "simulation seed {seed} failed: {msg}\n  reproduce with: KVORUM_SIM_SEED={seed} KVORUM_SIM_STEPS={steps} \
             cargo test -p kvorum-raft --test sim -- simulate --nocapture"
        )
    })
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, got {v:?}"))
    })
}

/// The CI budget, in shards so they run in parallel and each stays far inside the test timeout.
#[test]
fn simulate_seeds_0() {
    run_shard(0);
}
#[test]
fn simulate_seeds_1() {
    run_shard(1);
}
#[test]
fn simulate_seeds_2() {
    run_shard(2);
}
#[test]
fn simulate_seeds_3() {
    run_shard(3);
}

fn run_shard(shard: u64) {
    let steps = env_u64("KVORUM_SIM_STEPS").unwrap_or(CI_STEPS);
    let seeds = shard * CI_SEEDS_PER_SHARD..(shard + 1) * CI_SEEDS_PER_SHARD;
    let total = run_seeds(seeds.clone(), steps);
    println!("shard {shard}: seeds {seeds:?} × {steps} fault steps: {total:?}");
    assert!(
        total.elections_won >= CI_SEEDS_PER_SHARD,
        "every run elects at least one leader"
    );
    assert!(
        total.acked_writes > 0 && total.reads_served > 0,
        "the workload reached the state machine"
    );
    assert!(
        total.snapshots_installed > 0 && total.conf_changes > 0,
        "snapshots and membership changes happened"
    );
    assert!(total.crashes > 0 && total.partitions > 0, "faults were injected");
}

fn run_seeds(seeds: impl Iterator<Item = u64>, steps: u64) -> Stats {
    let mut total = Stats::default();
    for seed in seeds {
        let (s, _) = run_seed(seed, steps, false).unwrap_or_else(|e| panic!("{e}"));
        accumulate(&mut total, &s);
    }
    total
}

/// Replays one seed with its full trace (`KVORUM_SIM_SEED`), or soaks fresh seeds for
/// `KVORUM_SIM_SECONDS`. Without either it replays seed 0 quietly.
#[test]
fn simulate() {
    let steps = env_u64("KVORUM_SIM_STEPS").unwrap_or(CI_STEPS);
    if let Some(secs) = env_u64("KVORUM_SIM_SECONDS") {
        let start = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs()
            << 20;
        let deadline = Instant::now() + Duration::from_secs(secs);
        println!("soak from seed {start} for {secs} s");
        let mut seed = start;
        let mut total = Stats::default();
        while Instant::now() < deadline {
            accumulate(&mut total, &run_seeds(seed..seed + 1, steps));
            seed += 1;
        }
        println!("simulated {} seeds × {steps} fault steps: {total:?}", seed - start);
        return;
    }
    let seed = env_u64("KVORUM_SIM_SEED").unwrap_or(0);
    let verbose = std::env::var_os("KVORUM_SIM_SEED").is_some();
    let (stats, digest) = run_seed(seed, steps, verbose).unwrap_or_else(|e| panic!("{e}"));
    println!("seed {seed}: {stats:?}, trace digest {digest:016x}");
    assert!(stats.elections_won > 0, "seed {seed} elected a leader");
}

fn accumulate(total: &mut Stats, s: &Stats) {
    total.steps += s.steps;
    total.sim_ms += s.sim_ms;
    total.elections_won += s.elections_won;
    total.acked_writes += s.acked_writes;
    total.reads_served += s.reads_served;
    total.crashes += s.crashes;
    total.partitions += s.partitions;
    total.snapshots_installed += s.snapshots_installed;
    total.conf_changes += s.conf_changes;
    total.transfers += s.transfers;
}

/// A fixed seed replays byte for byte: same events, same order, same digest.
#[test]
fn same_seed_replays_identically() {
    let a = run_seed(7, 3_000, false).expect("seed 7 passes");
    let b = run_seed(7, 3_000, false).expect("seed 7 passes");
    assert_eq!(a.1, b.1, "trace digests differ between two runs of one seed");
    assert_eq!(format!("{:?}", a.0), format!("{:?}", b.0));
    let c = run_seed(8, 3_000, false).expect("seed 8 passes");
    assert_ne!(a.1, c.1, "different seeds should produce different runs");
}
