//! Leases in the state machine (etcd-v3-api.md §1.5). The clock side is in `lease.rs`.

use super::*;
use crate::mvcc::{LeaseChange, MvccConfig};
use crate::proto::etcdserverpb::{LeaseCheckpoint, LeaseCheckpointRequest, LeaseRevokeRequest};

fn revoke(h: &mut Harness, id: i64) -> Result<Response, MvccError> {
    h.apply(Op::LeaseRevoke(LeaseRevokeRequest { id }))
}

#[test]
fn grant_errors() {
    let mut h = Harness::new();
    let r = h.apply(Op::LeaseGrant(LeaseGrantRequest { ttl: 30, id: 9 })).unwrap();
    let Response::LeaseGrant(g) = r else { panic!() };
    assert_eq!((g.id, g.ttl), (9, 30));
    let err = h
        .apply(Op::LeaseGrant(LeaseGrantRequest { ttl: 30, id: 9 }))
        .unwrap_err();
    assert_eq!(err.to_string(), "etcdserver: lease already exists");
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);
    let err = h
        .apply(Op::LeaseGrant(LeaseGrantRequest {
            ttl: crate::mvcc::MAX_LEASE_TTL_SECONDS + 1,
            id: 10,
        }))
        .unwrap_err();
    assert_eq!(err.to_string(), "etcdserver: too large lease TTL");
    assert_eq!(h.rev(), 1, "lease grants do not change the keyspace revision");
}

#[test]
fn revoke_deletes_attached_keys_in_one_revision() {
    let mut h = Harness::new();
    h.grant(1, 60);
    h.grant(2, 60);
    h.put_lease("svc/a", "10.0.0.1", 1).unwrap();
    h.put_lease("svc/b", "10.0.0.2", 1).unwrap();
    h.put_lease("svc/c", "10.0.0.3", 2).unwrap();
    h.put("static", "x");
    assert_eq!(h.store.lease(1).unwrap().keys, vec![b("svc/a"), b("svc/b")]);
    let mut watch = h.store.watch(crate::mvcc::WatchSpec {
        span: crate::mvcc::index::KeySpan::new(&b("svc/"), &b("svc0")),
        start_revision: 0,
        prev_kv: false,
        no_put: false,
        no_delete: false,
    });
    let rev = h.rev();
    let Response::LeaseRevoke(r) = revoke(&mut h, 1).unwrap() else {
        panic!()
    };
    assert_eq!(header_rev(&r.header), rev + 1, "all attached keys go in one revision");
    assert_eq!(h.get("svc/a"), None);
    assert_eq!(h.get("svc/b"), None);
    assert!(h.get("svc/c").is_some() && h.get("static").is_some());
    assert_eq!(h.store.lease(1), None);
    let Some(crate::mvcc::WatchUpdate::Events(events)) = watch.try_recv() else {
        panic!("no events")
    };
    assert_eq!(events.len(), 2);
    assert!(
        events
            .iter()
            .all(|e| e.r#type == 1 && e.kv.as_ref().unwrap().mod_revision == rev + 1)
    );
    let err = revoke(&mut h, 1).unwrap_err();
    assert_eq!(err.to_string(), "etcdserver: requested lease not found");
}

#[test]
fn keys_move_between_leases_and_detach_on_delete() {
    let mut h = Harness::new();
    h.grant(1, 60);
    h.grant(2, 60);
    h.put_lease("k", "v", 1).unwrap();
    h.put_lease("k", "v", 2).unwrap();
    assert!(h.store.lease(1).unwrap().keys.is_empty());
    assert_eq!(h.store.lease(2).unwrap().keys, vec![b("k")]);
    h.put("k", "no lease");
    assert!(h.store.lease(2).unwrap().keys.is_empty());
    h.put_lease("k", "v", 2).unwrap();
    h.delete("k", "");
    assert!(h.store.lease(2).unwrap().keys.is_empty());
    // Revoking lease 1 now must not touch "k", which left it.
    h.put("k", "plain");
    revoke(&mut h, 1).unwrap();
    assert_eq!(h.get("k").unwrap().value, b("plain"));
}

#[test]
fn leases_and_checkpoints_survive_a_restart() {
    let mut h = Harness::new();
    h.grant(7, 100);
    h.put_lease("a", "1", 7).unwrap();
    let r = h
        .apply(Op::LeaseCheckpoint(LeaseCheckpointRequest {
            checkpoints: vec![
                LeaseCheckpoint {
                    id: 7,
                    remaining_ttl: 42,
                },
                LeaseCheckpoint {
                    id: 404,
                    remaining_ttl: 1,
                },
            ],
        }))
        .unwrap();
    assert_eq!(r, Response::LeaseCheckpoint);
    let reopened = Store::open(h.db.clone(), MvccConfig::default()).unwrap();
    let l = reopened.lease(7).unwrap();
    assert_eq!((l.ttl, l.checkpointed_remaining, l.keys), (100, 42, vec![b("a")]));
    assert_eq!(reopened.leases().len(), 1, "checkpoints of unknown leases are ignored");
}

#[test]
fn apply_reports_lease_changes_for_the_lessor() {
    let h = Harness::new();
    let index = h.next_index;
    let out = h
        .store
        .apply(&[
            entry(index, Op::LeaseGrant(LeaseGrantRequest { ttl: 5, id: 3 })),
            entry(
                index + 1,
                Op::LeaseCheckpoint(LeaseCheckpointRequest {
                    checkpoints: vec![LeaseCheckpoint {
                        id: 3,
                        remaining_ttl: 2,
                    }],
                }),
            ),
            entry(index + 2, Op::LeaseRevoke(LeaseRevokeRequest { id: 3 })),
        ])
        .unwrap();
    assert_eq!(
        out.lease_changes,
        vec![
            LeaseChange::Granted { id: 3, ttl: 5 },
            LeaseChange::Checkpointed { id: 3, remaining: 2 },
            LeaseChange::Revoked { id: 3 },
        ]
    );
}

#[test]
fn member_metadata_merges_and_leaves_with_the_member() {
    use crate::proto::kvorum::internal::MemberAttributes;
    use kvorum_raft::{ConfChange, Entry, EntryPayload};
    let mut h = Harness::new();
    let attrs = |id, name: &str, peer: &[&str], client: &[&str]| {
        Op::Member(MemberAttributes {
            id,
            name: name.into(),
            peer_urls: peer.iter().map(|s| s.to_string()).collect(),
            client_urls: client.iter().map(|s| s.to_string()).collect(),
        })
    };
    h.apply(attrs(7, "", &["https://n7:2380"], &[])).unwrap();
    h.apply(attrs(7, "n7", &[], &["https://n7:2379"])).unwrap();
    h.apply(attrs(8, "n8", &["https://n8:2380"], &[])).unwrap();
    let m = &h.store.members()[0];
    assert_eq!(
        (m.name.as_str(), m.peer_urls.as_slice(), m.client_urls.as_slice()),
        (
            "n7",
            &["https://n7:2380".to_string()][..],
            &["https://n7:2379".to_string()][..]
        )
    );
    assert_eq!(h.rev(), 1, "membership metadata is not part of the keyspace revision");
    let index = h.next_index;
    h.store
        .apply(&[Entry {
            term: 1,
            index,
            payload: EntryPayload::ConfChange(ConfChange::RemoveNode(7)),
        }])
        .unwrap();
    assert_eq!(h.store.members().iter().map(|m| m.id).collect::<Vec<_>>(), vec![8]);
    let reopened = Store::open(h.db.clone(), MvccConfig::default()).unwrap();
    assert_eq!(reopened.members(), h.store.members());
}
