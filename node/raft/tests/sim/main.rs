//! The deterministic cluster simulator.
//!
//! One seed decides everything: cluster size, latency, loss, clock skew, the fault rates, and
//! every individual fault and client request. Each run has a fault phase (crashes, power loss
//! mid-write, partitions including one-way ones, pauses, drops, duplicates, reordering,
//! membership changes, leader transfers, snapshots and compaction, writes and linearizable
//! reads) followed by a liveness phase (heal everything and require progress). Invariants are
//! checked after every step (see `invariants/`).
//!
//! - CI: `cargo test -p kvorum-raft --test sim` runs a fixed budget of seeds.
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

/// Seeds and fault-phase steps per seed in the CI budget.
const CI_SEEDS: u64 = 300;
const CI_STEPS: u64 = 4_000;
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

#[test]
fn simulate() {
    let steps = env_u64("KVORUM_SIM_STEPS").unwrap_or(CI_STEPS);
    if let Some(seed) = env_u64("KVORUM_SIM_SEED") {
        let (stats, digest) = run_seed(seed, steps, true).unwrap_or_else(|e| panic!("{e}"));
        println!("seed {seed}: {stats:?}, trace digest {digest:016x}");
        return;
    }
    let (first, deadline) = match env_u64("KVORUM_SIM_SECONDS") {
        // Soak: fresh seeds (from the wall clock, printed) for as long as asked.
        Some(secs) => {
            let start = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock")
                .as_secs();
            println!("soak from seed {start} for {secs} s");
            (start << 20, Some(Instant::now() + Duration::from_secs(secs)))
        }
        None => (0, None),
    };
    let mut total = Stats::default();
    let mut seeds = 0;
    let mut seed = first;
    loop {
        match deadline {
            Some(d) if Instant::now() >= d => break,
            None if seeds >= CI_SEEDS => break,
            _ => {}
        }
        let (s, _) = run_seed(seed, steps, false).unwrap_or_else(|e| panic!("{e}"));
        accumulate(&mut total, &s);
        seeds += 1;
        seed += 1;
    }
    println!("simulated {seeds} seeds × {steps} fault steps: {total:?}");
    assert!(total.elections_won >= seeds, "every run elects at least one leader");
    assert!(
        total.acked_writes > 0 && total.reads_served > 0,
        "the workload reached the state machine"
    );
    assert!(
        total.snapshots_installed > 0 && total.conf_changes > 0,
        "snapshots and membership changes happened"
    );
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
