//! Checks on what one etcd-style watcher received.
//!
//! A watch is a promise about a stream, not about single operations, so it gets its own checker
//! rather than a model for the linearizability search. The properties are the ones etcd
//! documents for its watch API ("Watch streams are ordered, reliable and atomic"):
//!
//! - **ordered**: events arrive in revision order;
//! - **no duplicates**: each `(revision, key)` arrives at most once;
//! - **atomic**: all events of one revision (one transaction) arrive in the same response;
//! - **reliable**: no gaps: every committed change in the watched range from the start revision
//!   up to the last revision received was received;
//! - **resumable**: a watcher re-created at revision `R` (after a disconnect, typically
//!   `last_received + 1`) receives exactly the changes with revisions `>= R`.
//!
//! Gaps and divergence can only be judged against the authoritative list of committed writes,
//! which a test can read back after the run (a full-range read of every revision, or the MVCC
//! history). Without it, only the stream's internal consistency is checked.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::{Bound, RangeBounds};

/// What happened to a key at a revision.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum EventKind<V> {
    /// The key was created or overwritten with this value.
    Put(V),
    /// The key was deleted.
    Delete,
}

/// One change delivered by a watch, or one committed change of the authoritative log.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WatchEvent<K, V> {
    /// The revision of the change (etcd: the key's `mod_revision`); one transaction's changes
    /// share it.
    pub revision: i64,
    /// The key changed.
    pub key: K,
    /// What changed.
    pub kind: EventKind<V>,
}

impl<K, V> WatchEvent<K, V> {
    /// A put of `value` to `key` at `revision`.
    pub fn put(revision: i64, key: K, value: V) -> Self {
        WatchEvent {
            revision,
            key,
            kind: EventKind::Put(value),
        }
    }

    /// A delete of `key` at `revision`.
    pub fn delete(revision: i64, key: K) -> Self {
        WatchEvent {
            revision,
            key,
            kind: EventKind::Delete,
        }
    }
}

/// The keys a watch covers, with etcd's `key`/`range_end` conventions as constructors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRange<K> {
    /// Lower bound.
    pub start: Bound<K>,
    /// Upper bound.
    pub end: Bound<K>,
}

impl<K: Ord> KeyRange<K> {
    /// Exactly one key (etcd: empty `range_end`).
    pub fn key(key: K) -> Self
    where
        K: Clone,
    {
        KeyRange {
            start: Bound::Included(key.clone()),
            end: Bound::Included(key),
        }
    }

    /// `[start, end)` (etcd: `key = start, range_end = end`).
    pub fn half_open(start: K, end: K) -> Self {
        KeyRange {
            start: Bound::Included(start),
            end: Bound::Excluded(end),
        }
    }

    /// Every key `>= start` (etcd: `range_end = "\0"`).
    pub fn starting_at(start: K) -> Self {
        KeyRange {
            start: Bound::Included(start),
            end: Bound::Unbounded,
        }
    }

    /// Every key.
    pub fn all() -> Self {
        KeyRange {
            start: Bound::Unbounded,
            end: Bound::Unbounded,
        }
    }

    /// Whether `key` is watched.
    pub fn contains(&self, key: &K) -> bool {
        (self.start.as_ref(), self.end.as_ref()).contains(key)
    }
}

/// How a watch was created.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchSpec<K> {
    /// The keys watched.
    pub range: KeyRange<K>,
    /// The `start_revision` the watch was created with. `None` for "from now" (etcd's 0): the
    /// gap check then starts at the first revision received, since the checker cannot know which
    /// revision "now" was.
    pub start_revision: Option<i64>,
}

/// Where an event sits in what the watcher received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    /// Index of the response (batch of events) in arrival order.
    pub batch: usize,
    /// Index of the event within that response.
    pub event: usize,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "batch {} event {}", self.batch, self.event)
    }
}

/// What a stream that passed the checks contained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WatchSummary {
    /// Events received.
    pub events: usize,
    /// The highest revision received; resume from the one after it.
    pub last_revision: Option<i64>,
}

/// The first way a watch stream broke its guarantees.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchViolation<K> {
    /// An event for a key the watch does not cover.
    OutOfRange {
        /// Where it arrived.
        at: Position,
        /// Its revision.
        revision: i64,
        /// Its key.
        key: K,
    },
    /// An event older than the watch's start revision.
    BeforeStart {
        /// Where it arrived.
        at: Position,
        /// Its revision.
        revision: i64,
        /// The revision the watch started at.
        start_revision: i64,
    },
    /// The same change delivered twice.
    Duplicate {
        /// Its revision.
        revision: i64,
        /// Its key.
        key: K,
        /// Where it first arrived.
        first: Position,
        /// Where it arrived again.
        again: Position,
    },
    /// An event with a lower revision than one before it.
    OutOfOrder {
        /// Where it arrived.
        at: Position,
        /// Its revision.
        revision: i64,
        /// The revision of the event just before it.
        previous_revision: i64,
    },
    /// One revision's events spread over two responses: a watcher could act on half a
    /// transaction.
    SplitRevision {
        /// The revision split.
        revision: i64,
        /// The response holding its first part.
        first_batch: usize,
        /// The later response holding the rest.
        later_batch: usize,
    },
    /// An event for a change the authoritative log does not have at that revision.
    NotCommitted {
        /// Where it arrived.
        at: Position,
        /// Its revision.
        revision: i64,
        /// Its key.
        key: K,
    },
    /// An event whose key and revision match a committed change but whose effect (put or delete,
    /// value) does not.
    WrongEffect {
        /// Where it arrived.
        at: Position,
        /// Its revision.
        revision: i64,
        /// Its key.
        key: K,
    },
    /// A committed change inside the watched range and revision window that never arrived.
    Missing {
        /// Its revision.
        revision: i64,
        /// Its key.
        key: K,
        /// The highest revision the watcher did receive.
        last_received: i64,
    },
    /// A resumed watcher's events differ from the first watcher's over the revisions both
    /// covered.
    ResumeDiverged {
        /// The revision the second watcher resumed from.
        resume_revision: i64,
        /// Index of the first differing event, counting from the resume revision.
        index: usize,
        /// The first watcher's event there as `(revision, key)`, if it had one.
        first: Option<(i64, K)>,
        /// The resumed watcher's event there, if it had one.
        second: Option<(i64, K)>,
    },
}

impl<K: fmt::Debug> fmt::Display for WatchViolation<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WatchViolation::OutOfRange { at, revision, key } => {
                write!(
                    f,
                    "{at}: event for key {key:?} at revision {revision} is outside the watched range"
                )
            }
            WatchViolation::BeforeStart {
                at,
                revision,
                start_revision,
            } => {
                write!(
                    f,
                    "{at}: revision {revision} precedes the watch's start revision {start_revision}"
                )
            }
            WatchViolation::Duplicate {
                revision,
                key,
                first,
                again,
            } => {
                write!(
                    f,
                    "{again}: key {key:?} at revision {revision} was already delivered at {first}"
                )
            }
            WatchViolation::OutOfOrder {
                at,
                revision,
                previous_revision,
            } => {
                write!(
                    f,
                    "{at}: revision {revision} arrived after revision {previous_revision}"
                )
            }
            WatchViolation::SplitRevision {
                revision,
                first_batch,
                later_batch,
            } => write!(
                f,
                "revision {revision} was split across responses: batch {first_batch} and batch {later_batch}"
            ),
            WatchViolation::NotCommitted { at, revision, key } => {
                write!(f, "{at}: no committed change to key {key:?} at revision {revision}")
            }
            WatchViolation::WrongEffect { at, revision, key } => {
                write!(
                    f,
                    "{at}: key {key:?} at revision {revision} differs from the committed change"
                )
            }
            WatchViolation::Missing {
                revision,
                key,
                last_received,
            } => write!(
                f,
                "gap: committed change to key {key:?} at revision {revision} never arrived, \
                 though revision {last_received} did"
            ),
            WatchViolation::ResumeDiverged {
                resume_revision,
                index,
                first,
                second,
            } => write!(
                f,
                "watch resumed at revision {resume_revision} diverges at event {index}: \
                 first watcher had {first:?}, resumed watcher had {second:?}"
            ),
        }
    }
}

impl<K: fmt::Debug> std::error::Error for WatchViolation<K> {}

/// Checks one watcher's stream: order, duplicates, atomic revisions, range and start revision,
/// and, if `committed` (every committed change, any order) is given, that each event is a real
/// change and that no change between the start revision and the last revision received is
/// missing.
///
/// Empty batches (progress notifications) are fine. Returns the first violation in arrival
/// order; gaps are reported after everything received checked out, lowest revision first.
///
/// # Panics
///
/// If `committed` holds two changes to one key at one revision (a bug in the harness that
/// built it).
pub fn check_watch_stream<K, V>(
    spec: &WatchSpec<K>,
    batches: &[Vec<WatchEvent<K, V>>],
    committed: Option<&[WatchEvent<K, V>]>,
) -> Result<WatchSummary, WatchViolation<K>>
where
    K: Ord + Clone + fmt::Debug,
    V: PartialEq,
{
    let authoritative = committed.map(index_committed);
    let mut received: BTreeMap<(i64, &K), Position> = BTreeMap::new();
    // (revision, batch) of the event before the current one.
    let mut previous: Option<(i64, usize)> = None;
    let mut first_revision = None;

    for (batch, events) in batches.iter().enumerate() {
        for (event_index, event) in events.iter().enumerate() {
            let at = Position {
                batch,
                event: event_index,
            };
            let (revision, key) = (event.revision, &event.key);
            if !spec.range.contains(key) {
                return Err(WatchViolation::OutOfRange {
                    at,
                    revision,
                    key: key.clone(),
                });
            }
            if let Some(start_revision) = spec.start_revision
                && revision < start_revision
            {
                return Err(WatchViolation::BeforeStart {
                    at,
                    revision,
                    start_revision,
                });
            }
            // Duplicates first: a re-delivered old event is better explained as a duplicate
            // than as disorder.
            if let Some(&first) = received.get(&(revision, key)) {
                return Err(WatchViolation::Duplicate {
                    revision,
                    key: key.clone(),
                    first,
                    again: at,
                });
            }
            if let Some((previous_revision, previous_batch)) = previous {
                if revision < previous_revision {
                    return Err(WatchViolation::OutOfOrder {
                        at,
                        revision,
                        previous_revision,
                    });
                }
                // Order holds, so one revision's events are contiguous: comparing with the
                // previous event is enough to catch a split.
                if revision == previous_revision && batch != previous_batch {
                    return Err(WatchViolation::SplitRevision {
                        revision,
                        first_batch: previous_batch,
                        later_batch: batch,
                    });
                }
            }
            if let Some(authoritative) = &authoritative {
                match authoritative.get(&(revision, key)) {
                    None => {
                        return Err(WatchViolation::NotCommitted {
                            at,
                            revision,
                            key: key.clone(),
                        });
                    }
                    Some(kind) if **kind != event.kind => {
                        return Err(WatchViolation::WrongEffect {
                            at,
                            revision,
                            key: key.clone(),
                        });
                    }
                    Some(_) => {}
                }
            }
            received.insert((revision, key), at);
            first_revision.get_or_insert(revision);
            previous = Some((revision, batch));
        }
    }

    let last_revision = previous.map(|(revision, _)| revision);
    if let (Some(authoritative), Some(last_received), Some(first_received)) =
        (&authoritative, last_revision, first_revision)
    {
        let from = spec.start_revision.unwrap_or(first_received);
        let gap = authoritative
            .keys()
            .map(|&(revision, key)| (revision, key))
            .skip_while(|&(revision, _)| revision < from)
            .take_while(|&(revision, _)| revision <= last_received)
            .find(|&(revision, key)| spec.range.contains(key) && !received.contains_key(&(revision, key)));
        if let Some((revision, key)) = gap {
            return Err(WatchViolation::Missing {
                revision,
                key: key.clone(),
                last_received,
            });
        }
    }
    Ok(WatchSummary {
        events: received.len(),
        last_revision,
    })
}

/// Checks a watcher re-created at `resume_revision` (`second`) against one that was watching
/// the same range before (`first`): the second stream must pass [`check_watch_stream`] on its
/// own, and over the revisions both streams cover it must hold exactly the first stream's events
/// with revision `>= resume_revision`, in the same order.
///
/// Streams end wherever the test stopped reading, so only the common window, up to the lower of
/// the two last revisions, is compared.
pub fn check_watch_resume<K, V>(
    range: &KeyRange<K>,
    resume_revision: i64,
    first: &[Vec<WatchEvent<K, V>>],
    second: &[Vec<WatchEvent<K, V>>],
    committed: Option<&[WatchEvent<K, V>]>,
) -> Result<WatchSummary, WatchViolation<K>>
where
    K: Ord + Clone + fmt::Debug,
    V: PartialEq,
{
    let spec = WatchSpec {
        range: range.clone(),
        start_revision: Some(resume_revision),
    };
    let summary = check_watch_stream(&spec, second, committed)?;

    let before: Vec<&WatchEvent<K, V>> = first
        .iter()
        .flatten()
        .filter(|event| event.revision >= resume_revision)
        .collect();
    let after: Vec<&WatchEvent<K, V>> = second.iter().flatten().collect();
    let (Some(first_last), Some(second_last)) = (before.last(), after.last()) else {
        return Ok(summary);
    };
    let window_end = first_last.revision.min(second_last.revision);
    let in_window = |events: &[&WatchEvent<K, V>]| events.iter().take_while(|e| e.revision <= window_end).count();
    let (before, after) = (&before[..in_window(&before)], &after[..in_window(&after)]);

    let at = |events: &[&WatchEvent<K, V>], index: usize| events.get(index).map(|e| (e.revision, e.key.clone()));
    let diverged = (0..before.len().max(after.len())).find(|&index| match (before.get(index), after.get(index)) {
        (Some(a), Some(b)) => a != b,
        _ => true,
    });
    match diverged {
        Some(index) => Err(WatchViolation::ResumeDiverged {
            resume_revision,
            index,
            first: at(before, index),
            second: at(after, index),
        }),
        None => Ok(summary),
    }
}

/// Indexes the authoritative log by `(revision, key)`, in revision order.
fn index_committed<K: Ord + fmt::Debug, V>(committed: &[WatchEvent<K, V>]) -> BTreeMap<(i64, &K), &EventKind<V>> {
    let mut index = BTreeMap::new();
    for event in committed {
        let previous = index.insert((event.revision, &event.key), &event.kind);
        assert!(
            previous.is_none(),
            "malformed committed log: key {:?} changed twice at revision {}",
            event.key,
            event.revision
        );
    }
    index
}
