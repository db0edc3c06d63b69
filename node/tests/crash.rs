//! Crash test: a child process appends to the Raft log and applies to the state machine as fast
//! as it can, printing the last index it was told is durable; the parent kills it with SIGKILL
//! at a random moment, reopens the database, and checks that
//!
//! 1. every entry the child was told was durable is there, with the right content;
//! 2. the state machine, after replaying the log suffix above its applied index, equals a
//!    reference store that applied the same commands in memory.
//!
//! The same directory is reused across iterations, so recovery is itself crashed into.
//! `KVORUM_CRASH_ITERATIONS` overrides the default count (50); every failure prints its seed.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command as Process, Stdio};
use std::time::{Duration, Instant};

mod common;

use kvorum::mvcc::{MvccConfig, Store};
use kvorum::storage::{Db, DbConfig, LogStore, RedbLogStore};

use common::{Recovery, run_batch};

const CHILD_ENV: &str = "KVORUM_CRASH_CHILD_DIR";

fn open(dir: &Path) -> (RedbLogStore, Store) {
    let db = Db::open(&dir.join("kvorum.redb"), &DbConfig::default()).unwrap();
    (
        RedbLogStore::open(db.clone()).unwrap(),
        Store::open(db, MvccConfig::default()).unwrap(),
    )
}

/// The child: append, report durability, apply, compact, forever.
fn child(dir: &Path, seed: u64) -> ! {
    let (mut log, store) = open(dir);
    let mut rng = seed | 1;
    let mut next = log.last_index().unwrap() + 1;
    let mut out = std::io::stdout().lock();
    loop {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let last = run_batch(&mut log, &store, &mut next, 1 + rng % 40);
        use std::io::Write;
        writeln!(out, "durable {last}").unwrap();
        out.flush().unwrap();
    }
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        let seed = std::env::var("KVORUM_CRASH_SEED").unwrap().parse().unwrap();
        child(Path::new(&dir), seed);
    }
    let iterations: u64 = std::env::var("KVORUM_CRASH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let base_seed: u64 = std::env::var("KVORUM_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5eed);
    let dir = tempfile::tempdir().unwrap();
    let recovery = Recovery::new();
    let mut acked = 0;
    let started = Instant::now();
    for it in 0..iterations {
        let seed = base_seed.wrapping_add(it.wrapping_mul(0x9e37_79b9));
        acked = run_child(dir.path(), seed, Duration::from_millis(20 + seed % 230)).max(acked);
        let (log, store) = open(dir.path());
        recovery.verify(&log, &store, acked, &format!("iteration {it}, seed {seed}"));
    }
    assert!(acked > iterations * 10, "the children made progress ({acked} entries)");
    eprintln!(
        "{iterations} SIGKILLs, {acked} acknowledged entries, all recovered, in {:?}",
        started.elapsed()
    );
}
/// Runs the child for `run_for`, kills it with SIGKILL, returns the last durable index it
/// reported (0 if none).
fn run_child(dir: &Path, seed: u64, run_for: Duration) -> u64 {
    let mut child = Process::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "acknowledged_writes_survive_sigkill",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir)
        .env("KVORUM_CRASH_SEED", seed.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut last = 0;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(n) = line.strip_prefix("durable ") {
                last = n.parse().unwrap();
            }
        }
        last
    });
    std::thread::sleep(run_for);
    child.kill().unwrap();
    child.wait().unwrap();
    reader.join().unwrap()
}
