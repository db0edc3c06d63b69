//! The in-memory key index: for every key, the revisions at which it changed, grouped in
//! generations (a generation runs from a key's creation to its deletion), plus the current
//! value so that reads of the latest revision never touch the disk.
//!
//! ```text
//! key "a":  gen 1: created 2, versions [2, 5, 9], deleted at 12 (tombstone)
//!           gen 2: created 15, versions [15]            ← current value cached here
//! ```
//!
//! The values of older revisions live in the `history` table, keyed by revision.

use std::collections::BTreeMap;
use std::ops::Bound;

use bytes::Bytes;

/// A store revision: `main` counts write transactions, `sub` orders changes within one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Revision {
    /// The store revision clients see.
    pub main: i64,
    /// Position of the change within its transaction.
    pub sub: u32,
}

/// One change of a key, as the index remembers it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Change {
    /// When it happened.
    pub rev: Revision,
    /// Size of its history record, for logical-size accounting.
    pub bytes: u32,
}

/// The revisions of one life of a key.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Generation {
    /// Revision that created the key (kept even after compaction drops that change).
    created: i64,
    /// Version of `changes[0]`.
    first_version: i64,
    /// Puts, oldest first. Never empty while the generation is in the index.
    changes: Vec<Change>,
    /// The delete that ended this generation.
    tombstone: Option<Change>,
}

/// The current state of a live key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Current {
    /// Its value.
    pub value: Bytes,
    /// Its lease (0 = none).
    pub lease: i64,
}

/// Everything the index knows about one key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyHistory {
    generations: Vec<Generation>,
    current: Option<Current>,
}

/// A key as seen at some revision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyAt<'a> {
    /// Revision of the change visible at the read revision.
    pub modified: Revision,
    /// Revision that created this life of the key.
    pub created: i64,
    /// Number of puts in this life up to `modified`.
    pub version: i64,
    /// The value and lease, when `modified` is the key's latest change (otherwise they are in
    /// the history table).
    pub current: Option<&'a Current>,
}

impl KeyHistory {
    /// The key as of revision `rev`, if it existed then.
    pub fn at(&self, rev: i64) -> Option<KeyAt<'_>> {
        let (gi, g) = self
            .generations
            .iter()
            .enumerate()
            .rev()
            .find(|(_, g)| g.changes[0].rev.main <= rev)?;
        if g.tombstone.is_some_and(|t| t.rev.main <= rev) {
            return None;
        }
        let p = g.changes.partition_point(|c| c.rev.main <= rev) - 1;
        let latest = gi + 1 == self.generations.len() && p + 1 == g.changes.len();
        Some(KeyAt {
            modified: g.changes[p].rev,
            created: g.created,
            version: g.first_version + p as i64,
            current: if latest { self.current.as_ref() } else { None },
        })
    }

    /// The key now, if it exists.
    pub fn latest(&self) -> Option<KeyAt<'_>> {
        self.current.as_ref()?;
        self.at(i64::MAX)
    }

    /// The current value and lease, if the key exists now.
    pub fn current(&self) -> Option<&Current> {
        self.current.as_ref()
    }

    /// Records a put at `rev`; returns the new version and the creation revision.
    pub fn put(&mut self, change: Change, current: Current) -> (i64, i64) {
        let live = self.current.is_some();
        if !live {
            self.generations.push(Generation {
                created: change.rev.main,
                first_version: 1,
                changes: Vec::with_capacity(1),
                tombstone: None,
            });
        }
        let g = self.generations.last_mut().expect("a live generation exists");
        g.changes.push(change);
        self.current = Some(current);
        (g.first_version + g.changes.len() as i64 - 1, g.created)
    }

    /// Records a delete at `rev`. The caller checked that the key exists.
    pub fn delete(&mut self, change: Change) {
        assert!(self.current.is_some(), "delete of a key that does not exist");
        let g = self.generations.last_mut().expect("a live generation exists");
        g.tombstone = Some(change);
        self.current = None;
    }

    /// Drops what a compaction at `at` makes unreachable: every change at or below `at` except
    /// the latest one of a live generation (etcd's semantics: a tombstone at or below `at`
    /// goes with its whole generation). Calls `dropped` for each removed change. Returns
    /// whether the key has nothing left (and can leave the index).
    pub fn compact(&mut self, at: i64, mut dropped: impl FnMut(Change)) -> bool {
        let mut keep_from = 0;
        for (gi, g) in self.generations.iter_mut().enumerate() {
            if g.changes[0].rev.main > at {
                break;
            }
            if let Some(t) = g.tombstone
                && t.rev.main <= at
            {
                g.changes.iter().copied().for_each(&mut dropped);
                dropped(t);
                keep_from = gi + 1;
                continue;
            }
            let p = g.changes.partition_point(|c| c.rev.main <= at) - 1;
            g.changes.drain(..p).for_each(&mut dropped);
            g.first_version += p as i64;
            break;
        }
        self.generations.drain(..keep_from);
        self.generations.is_empty()
    }

    /// Every change still indexed, oldest first (tombstones included).
    pub fn changes(&self) -> impl Iterator<Item = Change> + '_ {
        self.generations
            .iter()
            .flat_map(|g| g.changes.iter().copied().chain(g.tombstone))
    }

    /// The latest change strictly before `rev` that still exists as a put (for `prev_kv`).
    pub fn put_before(&self, rev: Revision) -> Option<KeyAt<'_>> {
        let before = self
            .changes()
            .filter(|c| c.rev < rev)
            .last()
            .filter(|c| !self.is_tombstone(c.rev))?;
        let mut at = self.at(before.rev.main)?;
        at.current = at.current.filter(|_| at.modified == before.rev);
        Some(at)
    }

    fn is_tombstone(&self, rev: Revision) -> bool {
        self.generations
            .iter()
            .any(|g| g.tombstone.is_some_and(|t| t.rev == rev))
    }

    /// Restores one change read back from the history table, in revision order.
    pub fn restore(&mut self, change: Change, tombstone: bool, created: i64, version: i64) {
        if tombstone {
            if let Some(g) = self.generations.last_mut()
                && g.tombstone.is_none()
            {
                g.tombstone = Some(change);
            }
            return;
        }
        match self.generations.last_mut() {
            Some(g) if g.tombstone.is_none() && g.created == created => g.changes.push(change),
            _ => self.generations.push(Generation {
                created,
                first_version: version,
                changes: vec![change],
                tombstone: None,
            }),
        }
    }

    /// Sets the cached current value after a restore.
    pub fn set_current(&mut self, current: Option<Current>) {
        self.current = current;
    }

    /// Whether the key's last indexed change is a put.
    pub fn is_live(&self) -> bool {
        self.generations.last().is_some_and(|g| g.tombstone.is_none())
    }
}

/// The key interval of a request, following etcd's conventions: an empty `range_end` means
/// the single key, `range_end == "\0"` means every key from `key` on, and a `range_end` at or
/// before `key` selects nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySpan {
    /// Exactly one key.
    Single(Bytes),
    /// `[start, end)`, `end` unbounded for from-key ranges.
    Range(Bytes, Option<Bytes>),
}

impl KeySpan {
    /// The span of a request's `key` and `range_end`.
    pub fn new(key: &Bytes, range_end: &Bytes) -> KeySpan {
        if range_end.is_empty() {
            KeySpan::Single(key.clone())
        } else if range_end.as_ref() == [0] {
            KeySpan::Range(key.clone(), None)
        } else {
            KeySpan::Range(key.clone(), Some(range_end.clone()))
        }
    }

    /// Whether `key` lies in the span.
    pub fn contains(&self, key: &[u8]) -> bool {
        match self {
            KeySpan::Single(k) => k.as_ref() == key,
            KeySpan::Range(start, end) => key >= start.as_ref() && end.as_ref().is_none_or(|e| key < e.as_ref()),
        }
    }

    /// Whether two spans share a key.
    pub fn overlaps(&self, other: &KeySpan) -> bool {
        match (self, other) {
            (KeySpan::Single(a), _) => other.contains(a),
            (_, KeySpan::Single(b)) => self.contains(b),
            (KeySpan::Range(s1, e1), KeySpan::Range(s2, e2)) => {
                let before_end = |s: &Bytes, e: &Option<Bytes>| e.as_ref().is_none_or(|e| s < e);
                before_end(s2, e1) && before_end(s1, e2) && !self.is_empty() && !other.is_empty()
            }
        }
    }

    /// Whether the span selects nothing.
    pub fn is_empty(&self) -> bool {
        matches!(self, KeySpan::Range(s, Some(e)) if e <= s)
    }

    /// The span as map bounds.
    pub fn bounds(&self) -> (Bound<&[u8]>, Bound<&[u8]>) {
        match self {
            KeySpan::Single(k) => (Bound::Included(k.as_ref()), Bound::Included(k.as_ref())),
            KeySpan::Range(_, _) if self.is_empty() => (Bound::Excluded(&[][..]), Bound::Excluded(&[][..])),
            KeySpan::Range(s, None) => (Bound::Included(s.as_ref()), Bound::Unbounded),
            KeySpan::Range(s, Some(e)) => (Bound::Included(s.as_ref()), Bound::Excluded(e.as_ref())),
        }
    }

    /// The first key.
    pub fn start(&self) -> &Bytes {
        match self {
            KeySpan::Single(k) | KeySpan::Range(k, _) => k,
        }
    }
}

/// Iterates the index over a span.
pub fn range<'a>(
    index: &'a BTreeMap<Bytes, KeyHistory>,
    span: &KeySpan,
) -> Box<dyn Iterator<Item = (&'a Bytes, &'a KeyHistory)> + 'a> {
    match span {
        KeySpan::Single(k) => Box::new(index.get_key_value(k).into_iter()),
        _ if span.is_empty() => Box::new(std::iter::empty()),
        _ => Box::new(index.range::<[u8], _>(span.bounds())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ch(main: i64) -> Change {
        Change {
            rev: Revision { main, sub: 0 },
            bytes: 10,
        }
    }

    fn cur(v: &str) -> Current {
        Current {
            value: Bytes::from(v.to_string()),
            lease: 0,
        }
    }

    /// put@2 put@5 put@9 del@12 put@15
    fn sample() -> KeyHistory {
        let mut h = KeyHistory::default();
        assert_eq!(h.put(ch(2), cur("a")), (1, 2));
        assert_eq!(h.put(ch(5), cur("b")), (2, 2));
        assert_eq!(h.put(ch(9), cur("c")), (3, 2));
        h.delete(ch(12));
        assert_eq!(h.put(ch(15), cur("d")), (1, 15));
        h
    }

    fn seen(h: &KeyHistory, rev: i64) -> Option<(i64, i64, i64)> {
        h.at(rev).map(|k| (k.modified.main, k.created, k.version))
    }

    #[test]
    fn reads_each_revision_like_etcd() {
        let h = sample();
        assert_eq!(seen(&h, 1), None);
        assert_eq!(seen(&h, 2), Some((2, 2, 1)));
        assert_eq!(seen(&h, 4), Some((2, 2, 1)));
        assert_eq!(seen(&h, 5), Some((5, 2, 2)));
        assert_eq!(seen(&h, 11), Some((9, 2, 3)));
        assert_eq!(seen(&h, 12), None, "deleted at 12");
        assert_eq!(seen(&h, 14), None);
        assert_eq!(seen(&h, 15), Some((15, 15, 1)), "a new life restarts the version at 1");
        assert_eq!(h.latest().unwrap().current, Some(&cur("d")));
        assert_eq!(h.at(9).unwrap().current, None, "old values come from history");
    }

    #[test]
    fn compaction_keeps_the_latest_change_at_or_below() {
        let mut h = sample();
        let mut dropped = Vec::new();
        assert!(!h.compact(6, |c| dropped.push(c.rev.main)));
        assert_eq!(dropped, vec![2], "5 is the latest at or below 6 and stays");
        assert_eq!(seen(&h, 6), Some((5, 2, 2)), "version and create revision survive");
        assert_eq!(seen(&h, 9), Some((9, 2, 3)));
        dropped.clear();
        assert!(!h.compact(13, |c| dropped.push(c.rev.main)));
        assert_eq!(
            dropped,
            vec![5, 9, 12],
            "a generation deleted at or below 13 goes whole"
        );
        assert_eq!(seen(&h, 15), Some((15, 15, 1)));
        assert_eq!(h.changes().map(|c| c.rev.main).collect::<Vec<_>>(), vec![15]);
    }

    #[test]
    fn compacting_a_deleted_key_empties_it() {
        let mut h = KeyHistory::default();
        h.put(ch(2), cur("a"));
        h.delete(ch(3));
        assert!(!h.compact(2, |_| {}), "tombstone above the compaction point keeps it");
        assert!(h.compact(3, |_| {}));
    }

    #[test]
    fn compaction_at_the_exact_put_keeps_it() {
        let mut h = sample();
        let mut dropped = Vec::new();
        h.compact(15, |c| dropped.push(c.rev.main));
        assert_eq!(dropped, vec![2, 5, 9, 12]);
        assert_eq!(seen(&h, 15), Some((15, 15, 1)));
    }

    #[test]
    fn prev_kv_lookup_skips_tombstones() {
        let h = sample();
        let r = |main| Revision { main, sub: 0 };
        assert_eq!(h.put_before(r(9)).map(|k| k.modified.main), Some(5));
        assert_eq!(h.put_before(r(15)), None, "before 15 the key was deleted");
        assert_eq!(h.put_before(r(12)).map(|k| k.modified.main), Some(9));
        assert_eq!(h.put_before(r(2)), None);
    }

    #[test]
    fn restore_rebuilds_the_same_history() {
        let h = sample();
        let mut r = KeyHistory::default();
        r.restore(ch(2), false, 2, 1);
        r.restore(ch(5), false, 2, 2);
        r.restore(ch(9), false, 2, 3);
        r.restore(ch(12), true, 0, 0);
        r.restore(ch(15), false, 15, 1);
        r.set_current(Some(cur("d")));
        assert_eq!(r, h);
    }

    #[test]
    fn spans_follow_etcd_conventions() {
        let b = |s: &str| Bytes::from(s.to_string());
        let single = KeySpan::new(&b("a"), &Bytes::new());
        assert!(single.contains(b"a") && !single.contains(b"ab"));
        let prefix = KeySpan::new(&b("a"), &b("b"));
        assert!(prefix.contains(b"a") && prefix.contains(b"azz") && !prefix.contains(b"b"));
        let from = KeySpan::new(&b("m"), &Bytes::from_static(&[0]));
        assert!(from.contains(b"m") && from.contains(b"\xff\xff") && !from.contains(b"l"));
        let all = KeySpan::new(&Bytes::from_static(&[0]), &Bytes::from_static(&[0]));
        assert!(all.contains(b"\0") && all.contains(b"zzz"));
        let backwards = KeySpan::new(&b("b"), &b("a"));
        assert!(backwards.is_empty() && !backwards.contains(b"b"));
        assert!(prefix.overlaps(&single) && !prefix.overlaps(&KeySpan::new(&b("b"), &b("c"))));
        assert!(from.overlaps(&KeySpan::new(&b("z"), &b("zz"))));
        assert!(!backwards.overlaps(&all));
    }
}
