//! Power-loss test: the same workload as the crash test, on a disk that loses (or tears) every
//! write not yet synced when the power goes. Anything acknowledged must survive, and the
//! recovered state must equal a replay of the log. Unlike SIGKILL, this catches a missing
//! fsync: the page cache does not survive a power cut.

mod common;

use kvorum::mvcc::{MvccConfig, Store};
use kvorum::storage::{CrashMode, Db, DbConfig, FaultyDisk, RedbLogStore};

use common::{Recovery, run_batch};

#[test]
fn acknowledged_writes_survive_power_loss() {
    let mut crashes = 0;
    for seed in 0..24u64 {
        let disk = FaultyDisk::new();
        let recovery = Recovery::new();
        let mut acked = 0;
        let mut rng = seed.wrapping_mul(0x2545_f491_4f6c_dd1d) | 1;
        for round in 0..6 {
            let db = Db::with_backend(disk.backend(), &DbConfig::default()).unwrap();
            let mut log = RedbLogStore::open(db.clone()).unwrap();
            let store = Store::open(db, MvccConfig::default()).unwrap();
            let ctx = format!("seed {seed}, round {round}");
            let mut next = recovery.verify(&log, &store, acked, &ctx) + 1;
            for _ in 0..(5 + rng % 30) {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                acked = run_batch(&mut log, &store, &mut next, 1 + rng % 60);
            }
            disk.crash(CrashMode::Scramble { seed: rng });
            crashes += 1;
        }
        let db = Db::with_backend(disk.backend(), &DbConfig::default()).unwrap();
        let log = RedbLogStore::open(db.clone()).unwrap();
        let store = Store::open(db, MvccConfig::default()).unwrap();
        recovery.verify(&log, &store, acked, &format!("seed {seed}, final"));
    }
    assert_eq!(crashes, 24 * 6);
}
