//! The watch hub: routes committed events to watchers without ever blocking the apply loop.
//!
//! ```text
//!   apply ──notify(events, rev)──► synced watchers ──try_send──► bounded channel ──► client
//!                                     │ channel full
//!                                     ▼
//!                                 unsynced ◄── Store::sync_watchers: replay from history,
//!                                     │        ≤ SYNC_BATCH_REVISIONS at a time
//!                                     └──── caught up ──► synced
//! ```
//!
//! A synced watcher has received every matching event up to the hub's `last_rev`. An unsynced
//! one has received everything before its `next_rev` and is fed from the history table until
//! it catches up; if compaction overtakes it, it is cancelled with the compaction revision
//! (etcd's semantics), never silently skipped. Each watcher has its own bounded channel, so a
//! slow one cannot delay others.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::{Notify, mpsc};

use super::index::KeySpan;
use crate::proto::mvccpb::{Event, event::EventType};

/// Revisions replayed from history per catch-up step.
pub const SYNC_BATCH_REVISIONS: i64 = 1000;

/// What a watcher receives.
#[derive(Clone, Debug, PartialEq)]
pub enum WatchUpdate {
    /// Events of one or more complete revisions, in revision order.
    Events(Vec<Event>),
    /// The watcher's next revision was compacted away; it is closed.
    Canceled {
        /// The store's compaction revision.
        compact_revision: i64,
    },
}

/// What to watch.
#[derive(Clone, Debug)]
pub struct WatchSpec {
    /// Key or range, with etcd's `range_end` conventions.
    pub span: KeySpan,
    /// First revision to deliver; 0 means "after the current revision".
    pub start_revision: i64,
    /// Attach the previous key-value to each event.
    pub prev_kv: bool,
    /// Drop PUT events.
    pub no_put: bool,
    /// Drop DELETE events.
    pub no_delete: bool,
}

struct Watcher {
    spec: WatchSpec,
    tx: mpsc::Sender<WatchUpdate>,
    /// First revision not yet delivered (unsynced), or the first revision to deliver at all
    /// (synced watchers created for a future revision).
    next_rev: i64,
    synced: bool,
}

#[derive(Default)]
struct Hub {
    next_id: u64,
    watchers: HashMap<u64, Watcher>,
    /// Watchers on a single key, by key; the rest are in `ranges`.
    single: HashMap<Bytes, Vec<u64>>,
    ranges: Vec<u64>,
    /// The last revision handed to `notify`.
    last_rev: i64,
}

/// Routes events to watchers.
pub struct WatchHub {
    hub: Mutex<Hub>,
    buffer: usize,
    /// Signalled when some watcher needs a catch-up from history.
    needs_sync: Notify,
}

/// The receiving end of one watcher. Dropping it cancels the watcher.
pub struct WatchStream {
    id: u64,
    rx: mpsc::Receiver<WatchUpdate>,
    hub: Arc<WatchHub>,
}

/// An unsynced watcher's state, copied out of the hub for a catch-up step.
#[derive(Clone, Debug)]
pub struct Lagging {
    /// The watcher.
    pub id: u64,
    /// What it watches.
    pub spec: WatchSpec,
    /// Where to resume.
    pub next_rev: i64,
}

impl WatchHub {
    /// A hub whose watchers buffer up to `buffer` updates each.
    pub fn new(buffer: usize, current_rev: i64) -> Arc<WatchHub> {
        Arc::new(WatchHub {
            hub: Mutex::new(Hub {
                last_rev: current_rev,
                ..Hub::default()
            }),
            buffer: buffer.max(1),
            needs_sync: Notify::new(),
        })
    }

    /// Registers a watcher. `compact_rev` is the store's compaction revision: a start below it
    /// yields a stream whose first update is [`WatchUpdate::Canceled`].
    pub fn watch(self: &Arc<Self>, spec: WatchSpec, compact_rev: i64) -> WatchStream {
        let (tx, rx) = mpsc::channel(self.buffer);
        let mut hub = self.hub.lock();
        let id = hub.next_id;
        hub.next_id += 1;
        let start = spec.start_revision;
        let stream = WatchStream {
            id,
            rx,
            hub: self.clone(),
        };
        if start > 0 && start < compact_rev {
            tx.try_send(WatchUpdate::Canceled {
                compact_revision: compact_rev,
            })
            .expect("a new channel has room");
            return stream;
        }
        let (next_rev, synced) = if start <= 0 || start > hub.last_rev {
            (start.max(hub.last_rev + 1), true)
        } else {
            (start, false)
        };
        match &spec.span {
            KeySpan::Single(k) => hub.single.entry(k.clone()).or_default().push(id),
            KeySpan::Range(..) => hub.ranges.push(id),
        }
        hub.watchers.insert(
            id,
            Watcher {
                spec,
                tx,
                next_rev,
                synced,
            },
        );
        drop(hub);
        if !synced {
            self.needs_sync.notify_one();
        }
        stream
    }

    /// Delivers the events of a just-committed batch ending at revision `rev` to synced
    /// watchers. Never blocks: a watcher whose channel is full falls back to catch-up.
    pub fn notify(&self, events: &[Event], rev: i64) {
        let mut hub = self.hub.lock();
        let from = hub.last_rev + 1;
        hub.last_rev = rev;
        if events.is_empty() || hub.watchers.is_empty() {
            return;
        }
        let mut per_watcher: HashMap<u64, Vec<Event>> = HashMap::new();
        for ev in events {
            let key = &ev.kv.as_ref().expect("events carry a key-value").key;
            let mut route = |id: u64, hub: &Hub| {
                let w = &hub.watchers[&id];
                let ev_rev = ev.kv.as_ref().map_or(0, |kv| kv.mod_revision);
                if w.synced && ev_rev >= w.next_rev && w.spec.span.contains(key) && wants(&w.spec, ev) {
                    per_watcher.entry(id).or_default().push(shape(&w.spec, ev));
                }
            };
            if let Some(ids) = hub.single.get(key) {
                ids.iter().for_each(|id| route(*id, &hub));
            }
            hub.ranges.iter().for_each(|id| route(*id, &hub));
        }
        let mut lagging = false;
        let mut closed = Vec::new();
        for (id, evs) in per_watcher {
            let w = hub.watchers.get_mut(&id).expect("routed to a live watcher");
            match w.tx.try_send(WatchUpdate::Events(evs)) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    w.synced = false;
                    w.next_rev = w.next_rev.max(from);
                    lagging = true;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => closed.push(id),
            }
        }
        for id in closed {
            hub.remove(id);
        }
        drop(hub);
        if lagging {
            self.needs_sync.notify_one();
        }
    }

    /// Everything changed under the watchers (a snapshot was installed at `rev`): all of them
    /// resume from history where they were.
    pub fn reset(&self, rev: i64) {
        let mut hub = self.hub.lock();
        let from = hub.last_rev + 1;
        hub.last_rev = rev;
        for w in hub.watchers.values_mut() {
            if w.synced && w.next_rev <= rev {
                w.synced = false;
                w.next_rev = w.next_rev.max(from);
            }
        }
        drop(hub);
        self.needs_sync.notify_one();
    }

    /// The unsynced watchers and the revision the hub has delivered up to.
    pub fn lagging(&self) -> (Vec<Lagging>, i64) {
        let hub = self.hub.lock();
        let lagging = hub
            .watchers
            .iter()
            .filter(|(_, w)| !w.synced)
            .map(|(id, w)| Lagging {
                id: *id,
                spec: w.spec.clone(),
                next_rev: w.next_rev,
            })
            .collect();
        (lagging, hub.last_rev)
    }

    /// Offers a catch-up step to an unsynced watcher: `events` cover every revision from
    /// `from` to `to` inclusive. Returns false if the watcher had no room (try again later).
    pub fn deliver_catch_up(&self, id: u64, from: i64, to: i64, events: Vec<Event>) -> bool {
        let mut hub = self.hub.lock();
        let last_rev = hub.last_rev;
        let Some(w) = hub.watchers.get_mut(&id) else {
            return true;
        };
        if w.synced || w.next_rev != from {
            return true;
        }
        if !events.is_empty() {
            match w.tx.try_send(WatchUpdate::Events(events)) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => return false,
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    hub.remove(id);
                    return true;
                }
            }
        }
        w.next_rev = to + 1;
        if w.next_rev > last_rev {
            w.synced = true;
        }
        true
    }

    /// Cancels an unsynced watcher overtaken by compaction. Returns false if its channel had
    /// no room for the notice (try again later).
    pub fn cancel_compacted(&self, id: u64, compact_revision: i64) -> bool {
        let mut hub = self.hub.lock();
        let Some(w) = hub.watchers.get(&id) else { return true };
        match w.tx.try_send(WatchUpdate::Canceled { compact_revision }) {
            Err(mpsc::error::TrySendError::Full(_)) => false,
            _ => {
                hub.remove(id);
                true
            }
        }
    }

    /// If every watcher in `ids` is synced, the revision they have all seen up to (for
    /// progress notifications: every event at or below it was delivered).
    pub fn progress(&self, ids: &[u64]) -> Option<i64> {
        let hub = self.hub.lock();
        ids.iter()
            .all(|id| hub.watchers.get(id).is_none_or(|w| w.synced))
            .then_some(hub.last_rev)
    }

    /// Whether the watcher is synced (unknown watchers count as synced).
    pub fn is_synced(&self, id: u64) -> bool {
        self.hub.lock().watchers.get(&id).is_none_or(|w| w.synced)
    }

    /// Number of registered watchers.
    pub fn watcher_count(&self) -> usize {
        self.hub.lock().watchers.len()
    }

    /// Waits until some watcher needs a catch-up.
    pub async fn sync_needed(&self) {
        self.needs_sync.notified().await;
    }

    fn cancel(&self, id: u64) {
        self.hub.lock().remove(id);
    }
}

impl Hub {
    fn remove(&mut self, id: u64) {
        let Some(w) = self.watchers.remove(&id) else { return };
        match &w.spec.span {
            KeySpan::Single(k) => {
                if let Some(ids) = self.single.get_mut(k) {
                    ids.retain(|x| *x != id);
                    if ids.is_empty() {
                        self.single.remove(k);
                    }
                }
            }
            KeySpan::Range(..) => self.ranges.retain(|x| *x != id),
        }
    }
}

/// Whether the watcher's filters let `ev` through.
pub fn wants(spec: &WatchSpec, ev: &Event) -> bool {
    let put = ev.r#type == EventType::Put as i32;
    !(put && spec.no_put || !put && spec.no_delete)
}

/// The event as this watcher sees it (without `prev_kv` unless asked).
pub fn shape(spec: &WatchSpec, ev: &Event) -> Event {
    Event {
        r#type: ev.r#type,
        kv: ev.kv.clone(),
        prev_kv: if spec.prev_kv { ev.prev_kv.clone() } else { None },
    }
}

impl WatchStream {
    /// The hub-wide watcher id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The next update; `None` once the watcher is gone (cancelled after compaction).
    pub async fn recv(&mut self) -> Option<WatchUpdate> {
        self.rx.recv().await
    }

    /// The next update if one is ready.
    pub fn try_recv(&mut self) -> Option<WatchUpdate> {
        self.rx.try_recv().ok()
    }
}

impl Drop for WatchStream {
    fn drop(&mut self) {
        self.hub.cancel(self.id);
    }
}
