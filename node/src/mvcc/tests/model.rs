//! Property test: random operation sequences give the same results on the store and on a
//! deliberately naive model of etcd's semantics (every state of every key kept in a list),
//! across restarts, compactions and purges.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::mvcc::MvccConfig;
use crate::mvcc::index::KeySpan;
use crate::proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use crate::proto::etcdserverpb::{CompactionRequest, Compare, RequestOp, request_op};

const KEYS: [&str; 6] = ["a", "b", "ba", "c", "d", "e"];

#[derive(Clone, Debug)]
enum Action {
    Put {
        key: usize,
        value: u8,
    },
    Delete {
        key: usize,
        end: Option<usize>,
    },
    /// If `key` has version `version`, put `then_key`; else delete `else_key`.
    Txn {
        key: usize,
        version: i64,
        then_key: usize,
        else_key: usize,
    },
    Compact {
        back: i64,
    },
    Read {
        key: usize,
        end: Option<usize>,
        back: i64,
        limit: i64,
    },
    Reopen,
    Purge,
}

fn action() -> impl Strategy<Value = Action> {
    let k = 0..KEYS.len();
    prop_oneof![
        6 => (k.clone(), any::<u8>()).prop_map(|(key, value)| Action::Put { key, value }),
        2 => (k.clone(), proptest::option::of(k.clone())).prop_map(|(key, end)| Action::Delete { key, end }),
        2 => (k.clone(), 0..3i64, k.clone(), k.clone())
            .prop_map(|(key, version, then_key, else_key)| Action::Txn { key, version, then_key, else_key }),
        1 => (0..8i64).prop_map(|back| Action::Compact { back }),
        5 => (k.clone(), proptest::option::of(k), 0..12i64, 0..4i64)
            .prop_map(|(key, end, back, limit)| Action::Read { key, end, back, limit }),
        1 => Just(Action::Reopen),
        1 => Just(Action::Purge),
    ]
}

/// etcd's semantics, naively: the full list of states per key.
struct Model {
    rev: i64,
    compact: i64,
    keys: BTreeMap<Bytes, Vec<(i64, Option<KeyValue>)>>,
}

impl Model {
    fn at(&self, k: &Bytes, rev: i64) -> Option<KeyValue> {
        self.keys.get(k)?.iter().rev().find(|(r, _)| *r <= rev)?.1.clone()
    }

    fn put(&mut self, k: &Bytes, v: Bytes, rev: i64) {
        let prev = self.at(k, i64::MAX);
        let kv = KeyValue {
            key: k.clone(),
            create_revision: prev.as_ref().map_or(rev, |p| p.create_revision),
            mod_revision: rev,
            version: prev.as_ref().map_or(1, |p| p.version + 1),
            value: v,
            lease: 0,
        };
        self.keys.entry(k.clone()).or_default().push((rev, Some(kv)));
    }

    fn live_in(&self, span: &KeySpan) -> Vec<Bytes> {
        self.keys
            .keys()
            .filter(|k| span.contains(k) && self.at(k, i64::MAX).is_some())
            .cloned()
            .collect()
    }

    fn delete(&mut self, span: &KeySpan) -> i64 {
        let victims = self.live_in(span);
        if !victims.is_empty() {
            self.rev += 1;
            for k in &victims {
                self.keys.get_mut(k).unwrap().push((self.rev, None));
            }
        }
        victims.len() as i64
    }

    fn read(&self, span: &KeySpan, rev: i64, limit: i64) -> Result<(Vec<KeyValue>, bool, i64), &'static str> {
        let rev = if rev <= 0 { self.rev } else { rev };
        if rev > self.rev {
            return Err("future");
        }
        if rev < self.compact {
            return Err("compacted");
        }
        let all: Vec<KeyValue> = self
            .keys
            .keys()
            .filter(|k| span.contains(k))
            .filter_map(|k| self.at(k, rev))
            .collect();
        let count = all.len() as i64;
        let more = limit > 0 && count > limit;
        let kvs = if limit > 0 {
            all.into_iter().take(limit as usize).collect()
        } else {
            all
        };
        Ok((kvs, more, count))
    }
}

fn span(key: usize, end: Option<usize>) -> (Bytes, Bytes) {
    (b(KEYS[key]), end.map_or(Bytes::new(), |e| b(KEYS[e])))
}

fn run(actions: Vec<Action>) -> Result<(), TestCaseError> {
    let mut h = Harness::new();
    let mut m = Model {
        rev: 1,
        compact: 0,
        keys: BTreeMap::new(),
    };
    for (step, a) in actions.into_iter().enumerate() {
        match a {
            Action::Put { key, value } => {
                let v = char::from(b'a' + value % 26).to_string();
                let r = h.put(KEYS[key], &v);
                m.rev += 1;
                m.put(&b(KEYS[key]), b(&v), m.rev);
                prop_assert_eq!(header_rev(&r.header), m.rev, "step {}", step);
            }
            Action::Delete { key, end } => {
                let (k, e) = span(key, end);
                let d = h
                    .apply(Op::DeleteRange(DeleteRangeRequest {
                        key: k.clone(),
                        range_end: e.clone(),
                        prev_kv: false,
                    }))
                    .unwrap();
                let Response::DeleteRange(d) = d else { panic!() };
                prop_assert_eq!(d.deleted, m.delete(&KeySpan::new(&k, &e)), "step {}", step);
            }
            Action::Txn {
                key,
                version,
                then_key,
                else_key,
            } => {
                let t = TxnRequest {
                    compare: vec![Compare {
                        result: CompareResult::Equal as i32,
                        target: CompareTarget::Version as i32,
                        key: b(KEYS[key]),
                        target_union: Some(TargetUnion::Version(version)),
                        range_end: Bytes::new(),
                    }],
                    success: vec![RequestOp {
                        request: Some(request_op::Request::RequestPut(PutRequest {
                            key: b(KEYS[then_key]),
                            value: b("txn"),
                            ..Default::default()
                        })),
                    }],
                    failure: vec![RequestOp {
                        request: Some(request_op::Request::RequestDeleteRange(DeleteRangeRequest {
                            key: b(KEYS[else_key]),
                            ..Default::default()
                        })),
                    }],
                };
                let r = h.txn(t).unwrap();
                let want = m.at(&b(KEYS[key]), i64::MAX).map_or(0, |kv| kv.version) == version;
                prop_assert_eq!(r.succeeded, want, "step {}", step);
                if want {
                    m.rev += 1;
                    m.put(&b(KEYS[then_key]), b("txn"), m.rev);
                } else {
                    m.delete(&KeySpan::new(&b(KEYS[else_key]), &Bytes::new()));
                }
                prop_assert_eq!(header_rev(&r.header), m.rev, "step {}", step);
            }
            Action::Compact { back } => {
                let at = (m.rev - back).max(1);
                let r = h.apply(Op::Compaction(CompactionRequest {
                    revision: at,
                    physical: false,
                }));
                if at <= m.compact {
                    prop_assert!(matches!(r, Err(MvccError::Compacted { .. })), "step {}", step);
                } else {
                    prop_assert!(r.is_ok(), "step {}: {:?}", step, r);
                    m.compact = at;
                }
            }
            Action::Read { key, end, back, limit } => {
                let (k, e) = span(key, end);
                let rev = m.rev - back;
                let got = h.range(RangeRequest {
                    key: k.clone(),
                    range_end: e.clone(),
                    revision: rev,
                    limit,
                    ..Default::default()
                });
                match m.read(&KeySpan::new(&k, &e), rev, limit) {
                    Ok((kvs, more, count)) => {
                        let got = got.map_err(|e| TestCaseError::fail(format!("step {step}: {e}")))?;
                        prop_assert_eq!(got.kvs, kvs, "step {}", step);
                        prop_assert_eq!((got.more, got.count), (more, count), "step {}", step);
                    }
                    Err("compacted") => prop_assert!(matches!(got, Err(MvccError::Compacted { .. })), "step {}", step),
                    Err(_) => prop_assert!(matches!(got, Err(MvccError::FutureRevision)), "step {}", step),
                }
            }
            Action::Reopen => {
                let hash = h.store.hash_kv(0).unwrap();
                h.store = Store::open(h.db.clone(), MvccConfig::default()).unwrap();
                prop_assert_eq!(h.store.hash_kv(0).unwrap(), hash, "step {}", step);
            }
            Action::Purge => {
                h.store.purge(3).unwrap();
            }
        }
        prop_assert_eq!(h.rev(), m.rev, "step {}", step);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]
    #[test]
    fn store_matches_the_model(actions in proptest::collection::vec(action(), 1..80)) {
        run(actions)?;
    }
}
