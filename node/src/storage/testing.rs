//! The [`LogStore`] conformance suite: one named check per clause of the correctness contract,
//! run against every implementation (see the `conformance_tests!` invocations at the bottom of
//! this file). A check panics with what it expected.

use bytes::Bytes;
use kvorum_raft::{ConfChange, ConfState, Entry, EntryPayload, HardState, Index, SnapshotMeta, Term};

use super::{LogStore, LogWrite, StorageError};

/// How the suite makes stores and simulates restarts.
pub trait Harness {
    /// The store under test.
    type Store: LogStore;
    /// An empty store.
    fn fresh(&mut self) -> Self::Store;
    /// The same durable state, opened again as after a process restart.
    fn reopen(&mut self, store: Self::Store) -> Self::Store;
}

/// An entry whose payload encodes its position, so misplaced data is visible.
pub fn entry(index: Index, term: Term) -> Entry {
    let payload = match index % 5 {
        0 => EntryPayload::Noop,
        1 => EntryPayload::ConfChange(ConfChange::AddLearner(index)),
        _ => EntryPayload::Command(Bytes::from(format!("cmd {index}@{term}"))),
    };
    Entry { term, index, payload }
}

/// Entries `lo..=hi`, all of `term`.
pub fn entries(lo: Index, hi: Index, term: Term) -> Vec<Entry> {
    (lo..=hi).map(|i| entry(i, term)).collect()
}

fn snapshot(index: Index, term: Term) -> SnapshotMeta {
    SnapshotMeta {
        index,
        term,
        conf: ConfState {
            voters: [1, 2, 3].into(),
            learners: [4].into(),
        },
    }
}

fn append<S: LogStore>(s: &mut S, es: &[Entry]) {
    s.persist(LogWrite {
        entries: es,
        ..LogWrite::default()
    })
    .expect("append");
}

fn indexes<S: LogStore>(s: &S) -> Vec<(Index, Term)> {
    s.load()
        .expect("load")
        .entries
        .iter()
        .map(|e| (e.index, e.term))
        .collect()
}

fn span(lo: Index, hi: Index, term: Term) -> Vec<(Index, Term)> {
    (lo..=hi).map(|i| (i, term)).collect()
}

/// A new store holds nothing.
pub fn empty_store_loads_empty<H: Harness>(h: &mut H) {
    let s = h.fresh();
    let st = s.load().unwrap();
    assert_eq!(st.hard_state, HardState::default());
    assert_eq!(st.snapshot, SnapshotMeta::default());
    assert!(st.entries.is_empty());
    assert_eq!(s.last_index().unwrap(), 0);
    let s = h.reopen(s);
    assert!(s.load().unwrap().entries.is_empty());
}

/// Entries and hard state written together come back together, after a restart too.
pub fn persists_entries_and_hard_state<H: Harness>(h: &mut H) {
    let mut s = h.fresh();
    let es = entries(1, 10, 1);
    let hs = HardState {
        term: 1,
        vote: Some(2),
        commit: 4,
    };
    s.persist(LogWrite {
        snapshot: None,
        entries: &es,
        hard_state: Some(hs),
    })
    .unwrap();
    let s = h.reopen(s);
    let st = s.load().unwrap();
    assert_eq!(st.entries, es, "entries must come back byte for byte");
    assert_eq!(st.hard_state, hs);
    assert_eq!(s.last_index().unwrap(), 10);
}

/// A hard state alone is a valid write, and a vote of `None` stays `None`.
pub fn persists_hard_state_alone<H: Harness>(h: &mut H) {
    let mut s = h.fresh();
    for hs in [
        HardState {
            term: 3,
            vote: Some(1),
            commit: 0,
        },
        HardState {
            term: 4,
            vote: None,
            commit: 0,
        },
    ] {
        s.persist(LogWrite {
            hard_state: Some(hs),
            ..LogWrite::default()
        })
        .unwrap();
        s = h.reopen(s);
        assert_eq!(s.load().unwrap().hard_state, hs);
    }
}

/// Batches appended one after another form one contiguous log.
pub fn appends_batches_contiguously<H: Harness>(h: &mut H) {
    let mut s = h.fresh();
    append(&mut s, &entries(1, 3, 1));
    append(&mut s, &entries(4, 4, 1));
    append(&mut s, &entries(5, 9, 2));
    let s = h.reopen(s);
    let mut want = span(1, 4, 1);
    want.extend(span(5, 9, 2));
    assert_eq!(indexes(&s), want);
}

/// A write that would leave a gap is refused and changes nothing (contract 2).
pub fn refuses_holes<H: Harness>(h: &mut H) {
    let mut s = h.fresh();
    append(&mut s, &entries(1, 5, 1));
    let hs = HardState {
        term: 9,
        vote: Some(1),
        commit: 1,
    };
    let err = s
        .persist(LogWrite {
            snapshot: None,
            entries: &entries(7, 8, 1),
            hard_state: Some(hs),
        })
        .expect_err("a hole must be refused");
    assert!(matches!(err, StorageError::Hole { expected: 6, found: 7 }), "{err}");
    let mut gappy = entries(6, 6, 1);
    gappy.push(entry(8, 1));
    let err = s
        .persist(LogWrite {
            entries: &gappy,
            ..LogWrite::default()
        })
        .expect_err("a non-contiguous batch must be refused");
    assert!(matches!(err, StorageError::Hole { .. }), "{err}");
    let s = h.reopen(s);
    assert_eq!(indexes(&s), span(1, 5, 1), "a refused write must change nothing");
    assert_eq!(
        s.load().unwrap().hard_state,
        HardState::default(),
        "not even the hard state"
    );
}

/// Appending inside the log replaces the suffix, and entries beyond the new batch's end are
/// gone for good (contract 3, etcd#22442).
pub fn truncation_never_resurrects<H: Harness>(h: &mut H) {
    let mut s = h.fresh();
    append(&mut s, &entries(1, 10, 1));
    append(&mut s, &entries(4, 5, 2));
    let mut want = span(1, 3, 1);
    want.extend(span(4, 5, 2));
    assert_eq!(indexes(&s), want);
    assert_eq!(s.last_index().unwrap(), 5);
    let mut s = h.reopen(s);
    assert_eq!(indexes(&s), want, "entries 6..=10 must not come back after a restart");
    assert_eq!(s.last_index().unwrap(), 5);
    assert!(s.entries(6, 10).unwrap().is_empty());
    // Appending at last+1 after the truncation works and is not mistaken for a hole.
    append(&mut s, &entries(6, 6, 3));
    assert_eq!(s.last_index().unwrap(), 6);
}

/// Overwriting the first entry replaces the whole log.
pub fn truncation_from_the_first_entry<H: Harness>(h: &mut H) {
    let mut s = h.fresh();
    append(&mut s, &entries(1, 4, 1));
    append(&mut s, &entries(1, 2, 2));
    let s = h.reopen(s);
    assert_eq!(indexes(&s), span(1, 2, 2));
}

/// A received snapshot replaces the whole log, including entries past its index (contract 4).
pub fn snapshot_replaces_the_log<H: Harness>(h: &mut H) {
    let mut s = h.fresh();
    append(&mut s, &entries(1, 20, 1));
    let snap = snapshot(8, 3);
    s.persist(LogWrite {
        snapshot: Some(&snap),
        entries: &entries(9, 11, 3),
        hard_state: Some(HardState {
            term: 3,
            vote: None,
            commit: 8,
        }),
    })
    .unwrap();
    let s = h.reopen(s);
    let st = s.load().unwrap();
    assert_eq!(st.snapshot, snap);
    assert_eq!(
        st.entries.iter().map(|e| (e.index, e.term)).collect::<Vec<_>>(),
        span(9, 11, 3),
        "old entries, before and after the snapshot index, must be gone"
    );
    assert_eq!(s.last_index().unwrap(), 11);
}

/// After a snapshot with no entries, the last index is the snapshot's and the next append
/// starts right after it.
pub fn snapshot_alone_sets_the_last_index<H: Harness>(h: &mut H) {
    let mut s = h.fresh();
    append(&mut s, &entries(1, 3, 1));
    s.persist(LogWrite {
        snapshot: Some(&snapshot(50, 4)),
        ..LogWrite::default()
    })
    .unwrap();
    let mut s = h.reopen(s);
    assert_eq!(s.last_index().unwrap(), 50);
    assert!(s.load().unwrap().entries.is_empty());
    let err = s
        .persist(LogWrite {
            entries: &entries(52, 52, 4),
            ..LogWrite::default()
        })
        .expect_err("hole after a snapshot");
    assert!(matches!(err, StorageError::Hole { expected: 51, .. }), "{err}");
    let err = s
        .persist(LogWrite {
            entries: &entries(50, 50, 4),
            ..LogWrite::default()
        })
        .expect_err("an append at or below the snapshot index");
    assert!(matches!(err, StorageError::Hole { .. }), "{err}");
    append(&mut s, &entries(51, 52, 4));
    assert_eq!(indexes(&h.reopen(s)), span(51, 52, 4));
}

/// A snapshot no newer than the stored one is refused, by both kinds of write.
pub fn refuses_stale_snapshots<H: Harness>(h: &mut H) {
    let mut s = h.fresh();
    s.persist(LogWrite {
        snapshot: Some(&snapshot(10, 2)),
        ..LogWrite::default()
    })
    .unwrap();
    for index in [5, 10] {
        let err = s
            .persist(LogWrite {
                snapshot: Some(&snapshot(index, 2)),
                ..LogWrite::default()
            })
            .expect_err("stale snapshot install");
        assert!(matches!(err, StorageError::StaleSnapshot { .. }), "{err}");
        let err = s.compact(&snapshot(index, 2), index).expect_err("stale compaction");
        assert!(matches!(err, StorageError::StaleSnapshot { .. }), "{err}");
    }
    assert_eq!(h.reopen(s).load().unwrap().snapshot.index, 10);
}

/// Compaction drops entries up to `compact_to` only, keeping a retained tail behind the
/// snapshot, and appends continue after it.
pub fn compaction_keeps_the_tail<H: Harness>(h: &mut H) {
    let mut s = h.fresh();
    append(&mut s, &entries(1, 30, 1));
    let snap = snapshot(20, 1);
    s.compact(&snap, 15).unwrap();
    let mut s = h.reopen(s);
    let st = s.load().unwrap();
    assert_eq!(st.snapshot, snap);
    assert_eq!(
        st.entries.iter().map(|e| (e.index, e.term)).collect::<Vec<_>>(),
        span(16, 30, 1)
    );
    append(&mut s, &entries(31, 32, 2));
    s.compact(&snapshot(32, 2), 32).unwrap();
    let s = h.reopen(s);
    assert!(s.load().unwrap().entries.is_empty());
    assert_eq!(s.last_index().unwrap(), 32);
}

/// `entries(lo, hi)` returns exactly the stored entries in `lo..=hi`.
pub fn reads_ranges<H: Harness>(h: &mut H) {
    let mut s = h.fresh();
    let es = entries(1, 40, 2);
    append(&mut s, &es);
    assert_eq!(s.entries(5, 9).unwrap(), es[4..9].to_vec());
    assert_eq!(s.entries(40, 40).unwrap(), es[39..].to_vec());
    assert_eq!(s.entries(38, 100).unwrap(), es[37..].to_vec());
    assert!(s.entries(9, 5).unwrap().is_empty());
    assert!(s.entries(41, 50).unwrap().is_empty());
}

/// An empty write is accepted and changes nothing.
pub fn empty_write_changes_nothing<H: Harness>(h: &mut H) {
    let mut s = h.fresh();
    append(&mut s, &entries(1, 2, 1));
    s.persist(LogWrite::default()).unwrap();
    assert_eq!(indexes(&h.reopen(s)), span(1, 2, 1));
}

/// Large batches and large entries survive intact.
pub fn large_batches<H: Harness>(h: &mut H) {
    let mut s = h.fresh();
    let mut es = entries(1, 2000, 7);
    es[1000].payload = EntryPayload::Command(Bytes::from(vec![0xab; 3 << 20]));
    append(&mut s, &es);
    let s = h.reopen(s);
    assert_eq!(s.load().unwrap().entries, es);
}

/// Generates one `#[test]` per conformance check for a harness constructor.
#[macro_export]
macro_rules! log_store_conformance {
    ($harness:expr) => {
        $crate::log_store_conformance!(@checks $harness;
            empty_store_loads_empty, persists_entries_and_hard_state, persists_hard_state_alone,
            appends_batches_contiguously, refuses_holes, truncation_never_resurrects,
            truncation_from_the_first_entry, snapshot_replaces_the_log,
            snapshot_alone_sets_the_last_index, refuses_stale_snapshots, compaction_keeps_the_tail,
            reads_ranges, empty_write_changes_nothing, large_batches);
    };
    (@checks $harness:expr; $($check:ident),* $(,)?) => {
        $(
            #[test]
            fn $check() {
                $crate::storage::testing::$check(&mut $harness);
            }
        )*
    };
}

#[cfg(test)]
mod mem {
    use super::Harness;
    use crate::storage::MemLogStore;

    struct Mem;
    impl Harness for Mem {
        type Store = MemLogStore;
        fn fresh(&mut self) -> MemLogStore {
            MemLogStore::new()
        }
        fn reopen(&mut self, store: MemLogStore) -> MemLogStore {
            store
        }
    }

    crate::log_store_conformance!(Mem);
}

#[cfg(test)]
mod redb_file {
    use super::Harness;
    use crate::storage::{Db, DbConfig, RedbLogStore};

    /// A real database file, closed and reopened on every restart.
    struct File {
        dir: tempfile::TempDir,
    }
    impl File {
        fn new() -> Self {
            File {
                dir: tempfile::tempdir().unwrap(),
            }
        }
        fn open(&self) -> RedbLogStore {
            let db = Db::open(&self.dir.path().join("kvorum.redb"), &DbConfig::default()).unwrap();
            RedbLogStore::open(db).unwrap()
        }
    }
    impl Harness for File {
        type Store = RedbLogStore;
        fn fresh(&mut self) -> RedbLogStore {
            self.open()
        }
        fn reopen(&mut self, store: RedbLogStore) -> RedbLogStore {
            drop(store);
            self.open()
        }
    }

    crate::log_store_conformance!(File::new());
}

#[cfg(test)]
mod redb_power_loss {
    use super::Harness;
    use crate::storage::{CrashMode, Db, DbConfig, FaultyDisk, RedbLogStore};

    /// Every restart is a power cut that scrambles whatever was not synced: the suite passing
    /// means every acknowledged write was synced before its call returned.
    struct PowerLoss {
        disk: FaultyDisk,
        crashes: u64,
    }
    impl PowerLoss {
        fn new() -> Self {
            PowerLoss {
                disk: FaultyDisk::new(),
                crashes: 0,
            }
        }
        fn open(&self) -> RedbLogStore {
            let db = Db::with_backend(self.disk.backend(), &DbConfig::default()).unwrap();
            RedbLogStore::open(db).unwrap()
        }
    }
    impl Harness for PowerLoss {
        type Store = RedbLogStore;
        fn fresh(&mut self) -> RedbLogStore {
            self.disk = FaultyDisk::new();
            self.open()
        }
        fn reopen(&mut self, store: RedbLogStore) -> RedbLogStore {
            self.crashes += 1;
            self.disk.crash(CrashMode::Scramble { seed: self.crashes });
            drop(store);
            self.open()
        }
    }

    crate::log_store_conformance!(PowerLoss::new());
}
