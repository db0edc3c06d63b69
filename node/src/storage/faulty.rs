//! A redb storage backend that can lose power.
//!
//! [`FaultyDisk`] remembers what was last synced and every write since. [`FaultyDisk::crash`]
//! models a power cut: the disk keeps its synced contents plus an arbitrary (seeded) subset of
//! the unsynced writes, and may tear one of them (only a prefix reaches the platter). Backends
//! of the crashed "process" are detached, so a database dropped after the crash cannot write a
//! clean shutdown behind the test's back. Optionally, writes or syncs start failing, as a full
//! or dying disk would.
//!
//! Used by the storage tests to check that everything committed with `Durability::Immediate`
//! survives any crash and that redb always reopens.

use std::io;
use std::sync::Arc;

use parking_lot::Mutex;
use redb::StorageBackend;

/// The shared disk image behind any number of [`FaultyBackend`]s, one per simulated process.
#[derive(Clone, Default)]
pub struct FaultyDisk {
    state: Arc<Mutex<DiskState>>,
}

#[derive(Default)]
struct DiskState {
    /// Contents as of the last sync: what survives a crash for sure.
    synced: Vec<u8>,
    /// Contents as the running process sees them.
    current: Vec<u8>,
    /// Writes since the last sync, in order.
    pending: Vec<Op>,
    /// Bumped by every crash; backends of an older generation are detached.
    generation: u64,
    /// When set, writes and syncs fail (a dying disk).
    failing: bool,
    syncs: u64,
}

#[derive(Clone)]
enum Op {
    Write { offset: u64, data: Vec<u8> },
    SetLen(u64),
}

/// What a crash does to the writes that were not synced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashMode {
    /// Every unsynced write is lost.
    LoseUnsynced,
    /// A seeded random subset of unsynced writes survives, in any combination, and one of
    /// them may be torn.
    Scramble {
        /// Seed of the choice.
        seed: u64,
    },
}

impl FaultyDisk {
    /// An empty disk.
    pub fn new() -> Self {
        Self::default()
    }

    /// A backend for a new database on this disk (a new "process").
    pub fn backend(&self) -> FaultyBackend {
        FaultyBackend {
            disk: self.clone(),
            generation: self.state.lock().generation,
        }
    }

    /// Cuts the power. Backends handed out before this call are detached.
    pub fn crash(&self, mode: CrashMode) {
        let mut st = self.state.lock();
        let mut image = st.synced.clone();
        match mode {
            CrashMode::LoseUnsynced => {}
            CrashMode::Scramble { seed } => {
                let mut rng = SplitMix(seed);
                let torn = if st.pending.is_empty() {
                    usize::MAX
                } else {
                    (rng.next() % (st.pending.len() as u64 * 2)) as usize
                };
                for (k, op) in st.pending.iter().enumerate() {
                    if rng.next().is_multiple_of(2) {
                        continue;
                    }
                    match op {
                        Op::SetLen(len) => image.resize(*len as usize, 0),
                        Op::Write { offset, data } => {
                            let keep = if k == torn {
                                (rng.next() % data.len().max(1) as u64) as usize
                            } else {
                                data.len()
                            };
                            write_at(&mut image, *offset, &data[..keep]);
                        }
                    }
                }
            }
        }
        st.current = image.clone();
        st.synced = image;
        st.pending.clear();
        st.generation += 1;
        st.failing = false;
    }

    /// Makes every later write and sync fail with an I/O error, until the next crash.
    pub fn start_failing(&self) {
        self.state.lock().failing = true;
    }

    /// Number of syncs so far.
    pub fn syncs(&self) -> u64 {
        self.state.lock().syncs
    }
}

fn write_at(image: &mut Vec<u8>, offset: u64, data: &[u8]) {
    let end = offset as usize + data.len();
    if image.len() < end {
        image.resize(end, 0);
    }
    image[offset as usize..end].copy_from_slice(data);
}

/// One process's view of a [`FaultyDisk`].
pub struct FaultyBackend {
    disk: FaultyDisk,
    generation: u64,
}

impl FaultyBackend {
    fn state(&self) -> io::Result<parking_lot::MutexGuard<'_, DiskState>> {
        let st = self.disk.state.lock();
        if st.generation != self.generation {
            return Err(io::Error::other("the disk lost power under this process"));
        }
        Ok(st)
    }

    fn mutable_state(&self) -> io::Result<parking_lot::MutexGuard<'_, DiskState>> {
        let st = self.state()?;
        if st.failing {
            return Err(io::Error::other("injected I/O failure"));
        }
        Ok(st)
    }
}

impl std::fmt::Debug for FaultyBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultyBackend")
            .field("generation", &self.generation)
            .finish()
    }
}

impl StorageBackend for FaultyBackend {
    fn len(&self) -> io::Result<u64> {
        Ok(self.state()?.current.len() as u64)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        let st = self.state()?;
        let end = offset as usize + out.len();
        let src = st
            .current
            .get(offset as usize..end)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "read past the end"))?;
        out.copy_from_slice(src);
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut st = self.mutable_state()?;
        st.current.resize(len as usize, 0);
        st.pending.push(Op::SetLen(len));
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        let mut st = self.mutable_state()?;
        let ops = std::mem::take(&mut st.pending);
        for op in ops {
            match op {
                Op::SetLen(len) => st.synced.resize(len as usize, 0),
                Op::Write { offset, data } => write_at(&mut st.synced, offset, &data),
            }
        }
        st.syncs += 1;
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        let mut st = self.mutable_state()?;
        if offset as usize + data.len() > st.current.len() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "write past the end"));
        }
        write_at(&mut st.current, offset, data);
        st.pending.push(Op::Write {
            offset,
            data: data.to_vec(),
        });
        Ok(())
    }
}

/// A tiny seeded generator, so crash images replay from the seed.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use redb::{Durability, TableDefinition};

    use super::*;
    use crate::storage::{Db, DbConfig};

    const T: TableDefinition<u64, u64> = TableDefinition::new("t");

    fn open(disk: &FaultyDisk) -> Db {
        Db::with_backend(disk.backend(), &DbConfig::default()).expect("redb must reopen after any crash")
    }

    fn put(db: &Db, k: u64, durability: Durability) {
        let txn = db.write(durability).unwrap();
        txn.open_table(T).unwrap().insert(k, k * 10).unwrap();
        txn.commit().unwrap();
    }

    fn keys(db: &Db) -> Vec<u64> {
        let r = db.read().unwrap();
        match r.open_table(T) {
            Ok(t) => {
                use redb::ReadableTable;
                t.iter().unwrap().map(|row| row.unwrap().0.value()).collect()
            }
            Err(_) => Vec::new(),
        }
    }

    #[test]
    fn unsynced_commits_are_lost_and_synced_ones_kept() {
        let disk = FaultyDisk::new();
        let db = open(&disk);
        put(&db, 1, Durability::Immediate);
        put(&db, 2, Durability::None);
        disk.crash(CrashMode::LoseUnsynced);
        drop(db);
        let db = open(&disk);
        assert_eq!(keys(&db), vec![1]);
    }

    #[test]
    fn durable_commits_survive_every_scrambled_crash() {
        for seed in 0..40 {
            let disk = FaultyDisk::new();
            let db = open(&disk);
            let mut durable = Vec::new();
            for k in 0..20u64 {
                let durable_commit = k % 3 == 0;
                let d = if durable_commit {
                    Durability::Immediate
                } else {
                    Durability::None
                };
                put(&db, k, d);
                if durable_commit {
                    durable = (0..=k).collect();
                }
            }
            disk.crash(CrashMode::Scramble { seed });
            drop(db);
            let db = open(&disk);
            let got = keys(&db);
            assert!(
                durable.iter().all(|k| got.contains(k)),
                "seed {seed}: lost a durable key: durable {durable:?}, found {got:?}"
            );
            // Whatever survived is a prefix of the commit order (commits are atomic and ordered).
            assert_eq!(got, (0..got.len() as u64).collect::<Vec<_>>(), "seed {seed}");
        }
    }

    #[test]
    fn a_crashed_process_cannot_write_any_more() {
        let disk = FaultyDisk::new();
        let db = open(&disk);
        put(&db, 1, Durability::Immediate);
        disk.crash(CrashMode::LoseUnsynced);
        let attempt = || -> Result<(), crate::storage::StorageError> {
            let txn = db.write(Durability::Immediate)?;
            txn.open_table(T)?.insert(5, 5)?;
            txn.commit()
        };
        let failed = attempt().is_err();
        assert!(failed, "a detached backend must refuse writes");
        drop(db);
        assert_eq!(keys(&open(&disk)), vec![1]);
    }

    #[test]
    fn failing_disk_fails_commits_without_losing_durable_data() {
        let disk = FaultyDisk::new();
        let db = open(&disk);
        put(&db, 1, Durability::Immediate);
        disk.start_failing();
        let txn = db.write(Durability::Immediate).unwrap();
        txn.open_table(T).unwrap().insert(2, 20).unwrap();
        assert!(
            txn.commit().is_err(),
            "a commit on a failing disk must report the failure"
        );
        disk.crash(CrashMode::LoseUnsynced);
        drop(db);
        assert_eq!(keys(&open(&disk)), vec![1]);
    }
}
