//! Watch (etcd-v3-api.md §1.4): ordered, no gaps, no duplicates, atomic revisions, resumable,
//! slow watchers isolated and caught up from history, compaction cancels.

use super::*;
use crate::mvcc::index::KeySpan;
use crate::mvcc::{MvccConfig, WatchSpec, WatchStream, WatchUpdate};
use crate::proto::etcdserverpb::CompactionRequest;
use crate::proto::mvccpb::Event;

fn spec(key: &str, end: &str, start_revision: i64) -> WatchSpec {
    WatchSpec {
        span: KeySpan::new(&b(key), &b(end)),
        start_revision,
        prev_kv: false,
        no_put: false,
        no_delete: false,
    }
}

/// Everything delivered so far, as (revision, type, key, value) per message.
fn drain(w: &mut WatchStream) -> Vec<Vec<(i64, i32, String, String)>> {
    let mut out = Vec::new();
    while let Some(u) = w.try_recv() {
        match u {
            WatchUpdate::Events(evs) => out.push(evs.iter().map(describe).collect()),
            WatchUpdate::Canceled { compact_revision } => {
                out.push(vec![(compact_revision, -1, "CANCELED".into(), String::new())])
            }
        }
    }
    out
}

fn describe(e: &Event) -> (i64, i32, String, String) {
    let kv = e.kv.as_ref().unwrap();
    (
        kv.mod_revision,
        e.r#type,
        String::from_utf8(kv.key.to_vec()).unwrap(),
        String::from_utf8(kv.value.to_vec()).unwrap(),
    )
}

fn flat(msgs: &[Vec<(i64, i32, String, String)>]) -> Vec<(i64, i32, String, String)> {
    msgs.iter().flatten().cloned().collect()
}

fn ev(rev: i64, ty: i32, k: &str, v: &str) -> (i64, i32, String, String) {
    (rev, ty, k.to_string(), v.to_string())
}

#[test]
fn live_events_in_order_with_filters_and_prev_kv() {
    let mut h = Harness::new();
    let mut all = h.store.watch(spec("app/", "app0", 0));
    let mut no_put = h.store.watch(WatchSpec {
        no_put: true,
        ..spec("app/", "app0", 0)
    });
    let mut prev = h.store.watch(WatchSpec {
        prev_kv: true,
        ..spec("app/x", "", 0)
    });
    h.put("app/x", "1"); // 2
    h.put("other", "1"); // 3
    h.put("app/x", "2"); // 4
    h.delete("app/x", ""); // 5
    assert_eq!(
        flat(&drain(&mut all)),
        vec![ev(2, 0, "app/x", "1"), ev(4, 0, "app/x", "2"), ev(5, 1, "app/x", "")]
    );
    assert_eq!(flat(&drain(&mut no_put)), vec![ev(5, 1, "app/x", "")]);
    let mut got = Vec::new();
    while let Some(WatchUpdate::Events(evs)) = prev.try_recv() {
        got.extend(evs.into_iter().map(|e| e.prev_kv.map(|p| p.value)));
    }
    assert_eq!(got, vec![None, Some(b("1")), Some(b("2"))]);
}

#[test]
fn events_of_one_revision_arrive_together() {
    let mut h = Harness::new();
    let mut w = h.store.watch(spec("k", "l", 0));
    h.put("k1", "a");
    h.put("k2", "b");
    h.delete("k", "l");
    let msgs = drain(&mut w);
    let last = msgs.last().unwrap();
    assert_eq!(last.len(), 2, "both deletes of revision 4 in one message");
    assert!(last.iter().all(|e| e.0 == 4));
}

#[test]
fn start_revision_replays_history_then_goes_live() {
    let mut h = Harness::new();
    h.put("a", "1"); // 2
    h.put("b", "1"); // 3
    h.put("a", "2"); // 4
    let mut w = h.store.watch(spec("a", "", 2));
    assert!(
        drain(&mut w).is_empty(),
        "history is replayed by the sync step, not inline"
    );
    assert!(!h.store.watch_hub().is_synced(w.id()));
    assert_eq!(h.store.sync_watchers().unwrap(), 0);
    h.put("a", "3"); // 5
    assert_eq!(
        flat(&drain(&mut w)),
        vec![ev(2, 0, "a", "1"), ev(4, 0, "a", "2"), ev(5, 0, "a", "3")]
    );
}

#[test]
fn future_start_revision_waits_for_it() {
    let mut h = Harness::new();
    let mut w = h.store.watch(spec("k", "", 4));
    h.put("k", "2"); // 2
    h.put("k", "3"); // 3
    h.put("k", "4"); // 4
    h.put("k", "5"); // 5
    assert_eq!(flat(&drain(&mut w)), vec![ev(4, 0, "k", "4"), ev(5, 0, "k", "5")]);
}

#[test]
fn compacted_start_is_canceled_with_the_compaction_revision() {
    let mut h = Harness::new();
    for i in 0..5 {
        h.put("k", &i.to_string());
    }
    h.apply(Op::Compaction(CompactionRequest {
        revision: 4,
        physical: false,
    }))
    .unwrap();
    let mut w = h.store.watch(spec("k", "", 3));
    assert_eq!(
        drain(&mut w),
        vec![vec![(4, -1, "CANCELED".to_string(), String::new())]]
    );
    let mut ok = h.store.watch(spec("k", "", 4));
    h.store.sync_watchers().unwrap();
    assert_eq!(
        flat(&drain(&mut ok)).first().map(|e| e.0),
        Some(4),
        "etcd allows the compaction revision"
    );
}

#[test]
fn a_slow_watcher_neither_blocks_nor_loses_events() {
    let mut h = Harness::with_config(MvccConfig {
        watch_buffer: 2,
        ..Default::default()
    });
    let mut slow = h.store.watch(spec("k", "", 0));
    let mut fast = h.store.watch(spec("k", "", 0));
    let mut fast_seen = Vec::new();
    for i in 0..20 {
        h.put("k", &i.to_string());
        fast_seen.extend(flat(&drain(&mut fast)));
    }
    assert_eq!(fast_seen.len(), 20, "the fast watcher got everything live");
    assert!(!h.store.watch_hub().is_synced(slow.id()), "the slow one fell behind");
    assert_eq!(
        h.store.watch_hub().progress(&[slow.id()]),
        None,
        "no progress claim while behind"
    );
    let mut slow_seen = flat(&drain(&mut slow));
    while h.store.sync_watchers().unwrap() > 0 || !h.store.watch_hub().is_synced(slow.id()) {
        slow_seen.extend(flat(&drain(&mut slow)));
    }
    slow_seen.extend(flat(&drain(&mut slow)));
    h.put("k", "live-again");
    slow_seen.extend(flat(&drain(&mut slow)));
    let revs: Vec<i64> = slow_seen.iter().map(|e| e.0).collect();
    assert_eq!(revs, (2..=22).collect::<Vec<_>>(), "in order, no gap, no duplicate");
    assert_eq!(h.store.watch_hub().progress(&[slow.id(), fast.id()]), Some(22));
}

#[test]
fn a_watcher_overtaken_by_compaction_is_canceled() {
    let mut h = Harness::with_config(MvccConfig {
        watch_buffer: 1,
        ..Default::default()
    });
    let mut w = h.store.watch(spec("k", "", 0));
    for i in 0..5 {
        h.put("k", &i.to_string());
    }
    let rev = h.rev();
    h.apply(Op::Compaction(CompactionRequest {
        revision: rev,
        physical: false,
    }))
    .unwrap();
    let first = drain(&mut w);
    assert_eq!(first.len(), 1, "only the buffered message was delivered");
    h.store.sync_watchers().unwrap();
    assert_eq!(
        drain(&mut w),
        vec![vec![(rev, -1, "CANCELED".to_string(), String::new())]],
        "cancelled explicitly with the compaction revision, never silently skipped"
    );
    assert_eq!(h.store.watch_hub().watcher_count(), 0);
}

#[test]
fn dropping_a_stream_removes_its_watcher() {
    let mut h = Harness::new();
    let w = h.store.watch(spec("k", "", 0));
    assert_eq!(h.store.watch_hub().watcher_count(), 1);
    drop(w);
    assert_eq!(h.store.watch_hub().watcher_count(), 0);
    h.put("k", "v");
}

#[test]
fn replayed_history_carries_prev_kv_and_deletes() {
    let mut h = Harness::new();
    h.put("k", "1"); // 2
    h.put("k", "2"); // 3
    h.delete("k", ""); // 4
    let mut w = h.store.watch(WatchSpec {
        prev_kv: true,
        ..spec("k", "", 2)
    });
    h.store.sync_watchers().unwrap();
    let Some(WatchUpdate::Events(evs)) = w.try_recv() else {
        panic!()
    };
    let got: Vec<_> = evs
        .iter()
        .map(|e| (e.r#type, e.prev_kv.as_ref().map(|p| p.value.clone())))
        .collect();
    assert_eq!(got, vec![(0, None), (0, Some(b("1"))), (1, Some(b("2")))]);
}
