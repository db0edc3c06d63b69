//! Range reads with etcd's semantics: `limit` + `more`, `count` unaffected by limit and
//! revision filters, sorting, `keys_only`, `count_only`, min/max mod/create filters.
//!
//! Current values come from the index's cache; values of older revisions from the history
//! table through a [`History`], which is the read transaction for client reads and the write
//! transaction itself for ranges inside a txn (so they see the txn's own earlier writes).

use std::cmp::Ordering;

use redb::{ReadableTable, TableDefinition};

use super::MvccError;
use super::index::{self, KeyAt, KeySpan, Revision};
use super::record;
use super::state::State;
use crate::proto::etcdserverpb::{RangeRequest, RangeResponse, range_request::SortOrder, range_request::SortTarget};
use crate::proto::mvccpb::KeyValue;
use crate::storage::StorageError;

/// The history table: revision → record.
pub const HISTORY: TableDefinition<(u64, u32), &[u8]> = TableDefinition::new("mvcc_history");

/// Where records of past revisions are read from.
pub trait History {
    /// The record stored at `rev` (it must exist).
    fn record(&self, rev: Revision) -> Result<record::Record, StorageError>;
}

impl<T: ReadableTable<(u64, u32), &'static [u8]>> History for T {
    fn record(&self, rev: Revision) -> Result<record::Record, StorageError> {
        let row = self.get((rev.main as u64, rev.sub))?.ok_or(StorageError::Corrupt {
            what: "history record",
            index: rev.main as u64,
            reason: "indexed revision missing from the history table",
        })?;
        record::decode(rev, row.value())
    }
}

/// Resolves a request's revision against the store: 0 or less means current.
pub fn read_revision(st: &State, requested: i64, current: i64) -> Result<i64, MvccError> {
    let rev = if requested <= 0 { current } else { requested };
    if rev > current {
        return Err(MvccError::FutureRevision);
    }
    if rev < st.compact_rev {
        return Err(MvccError::Compacted {
            compact_revision: st.compact_rev,
        });
    }
    Ok(rev)
}

/// The full key-value of `key` as seen in `at`.
pub fn key_value(key: &bytes::Bytes, at: &KeyAt<'_>, history: &dyn History) -> Result<KeyValue, StorageError> {
    match at.current {
        Some(cur) => Ok(KeyValue {
            key: key.clone(),
            create_revision: at.created,
            mod_revision: at.modified.main,
            version: at.version,
            value: cur.value.clone(),
            lease: cur.lease,
        }),
        None => Ok(history.record(at.modified)?.kv),
    }
}

/// Runs a (checked) range request at revision `rev` (already resolved).
pub fn range(st: &State, history: &dyn History, r: &RangeRequest, rev: i64) -> Result<RangeResponse, MvccError> {
    let span = KeySpan::new(&r.key, &r.range_end);
    let order = SortOrder::try_from(r.sort_order).map_err(|_| MvccError::InvalidSortOption)?;
    let target = SortTarget::try_from(r.sort_target).map_err(|_| MvccError::InvalidSortOption)?;
    let order = match (order, target) {
        (SortOrder::None, SortTarget::Key) => SortOrder::Ascend,
        (SortOrder::None, _) => SortOrder::Ascend,
        (o, _) => o,
    };
    let filtered =
        r.min_mod_revision > 0 || r.max_mod_revision > 0 || r.min_create_revision > 0 || r.max_create_revision > 0;
    let natural = target == SortTarget::Key && order == SortOrder::Ascend;
    let limit = usize::try_from(r.limit).ok().filter(|l| *l > 0);

    let visible = index::range(&st.index, &span).filter_map(|(k, h)| h.at(rev).map(|at| (k, at)));
    if r.count_only {
        let count = visible.count() as i64;
        return Ok(RangeResponse {
            header: None,
            kvs: Vec::new(),
            more: false,
            count,
        });
    }

    let mut count = 0i64;
    let mut kvs = Vec::new();
    // Without sorting or filters, materialize only limit + 1 entries (to know `more`).
    let cap = if natural && !filtered {
        limit.map(|l| l + 1)
    } else {
        None
    };
    for (k, at) in visible {
        count += 1;
        if cap.is_some_and(|c| kvs.len() >= c) {
            continue;
        }
        if filtered && !passes_filters(r, &at) {
            continue;
        }
        let mut kv = key_value(k, &at, history)?;
        if r.keys_only && target != SortTarget::Value {
            kv.value = bytes::Bytes::new();
        }
        kvs.push(kv);
    }
    if !natural {
        sort(&mut kvs, target, order);
    }
    if r.keys_only {
        kvs.iter_mut().for_each(|kv| kv.value = bytes::Bytes::new());
    }
    let more = limit.is_some_and(|l| kvs.len() > l);
    if let Some(l) = limit {
        kvs.truncate(l);
    }
    Ok(RangeResponse {
        header: None,
        kvs,
        more,
        count,
    })
}

fn passes_filters(r: &RangeRequest, at: &KeyAt<'_>) -> bool {
    let m = at.modified.main;
    let c = at.created;
    !(r.min_mod_revision > 0 && m < r.min_mod_revision
        || r.max_mod_revision > 0 && m > r.max_mod_revision
        || r.min_create_revision > 0 && c < r.min_create_revision
        || r.max_create_revision > 0 && c > r.max_create_revision)
}

fn sort(kvs: &mut [KeyValue], target: SortTarget, order: SortOrder) {
    let key = |a: &KeyValue, b: &KeyValue| -> Ordering {
        match target {
            SortTarget::Key => a.key.cmp(&b.key),
            SortTarget::Version => a.version.cmp(&b.version),
            SortTarget::Create => a.create_revision.cmp(&b.create_revision),
            SortTarget::Mod => a.mod_revision.cmp(&b.mod_revision),
            SortTarget::Value => a.value.cmp(&b.value),
        }
    };
    match order {
        SortOrder::Descend => kvs.sort_by(|a, b| key(b, a)),
        _ => kvs.sort_by(key),
    }
}
