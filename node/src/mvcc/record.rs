//! The `history` table's records: one per change, keyed by revision.
//!
//! ```text
//! kind: u8 (0 put, 1 delete) | create_revision: i64 | version: i64 | lease: i64 |
//! key_len: u32 | key | value
//! ```
//! All integers little-endian. A delete carries only the key (the other fields are 0).

use bytes::Bytes;

use super::index::Revision;
use crate::proto::mvccpb::KeyValue;
use crate::storage::StorageError;

const FIXED_BYTES: usize = 1 + 8 + 8 + 8 + 4;

/// Bytes a record's key takes in the table (the `(u64, u32)` revision).
pub const REVISION_KEY_BYTES: u64 = 12;

/// A decoded history record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Whether this change deleted the key.
    pub tombstone: bool,
    /// The key's state after the change (for a delete: only the key and mod revision).
    pub kv: KeyValue,
}

/// Encodes a put of `kv` (whose `mod_revision` is the table key, not stored again).
pub fn encode_put(kv: &KeyValue) -> Vec<u8> {
    encode(false, &kv.key, kv.create_revision, kv.version, kv.lease, &kv.value)
}

/// Encodes a delete of `key`.
pub fn encode_delete(key: &[u8]) -> Vec<u8> {
    encode(true, key, 0, 0, 0, &[])
}

fn encode(tombstone: bool, key: &[u8], create: i64, version: i64, lease: i64, value: &[u8]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(FIXED_BYTES + key.len() + value.len());
    buf.push(u8::from(tombstone));
    buf.extend_from_slice(&create.to_le_bytes());
    buf.extend_from_slice(&version.to_le_bytes());
    buf.extend_from_slice(&lease.to_le_bytes());
    buf.extend_from_slice(&(key.len() as u32).to_le_bytes());
    buf.extend_from_slice(key);
    buf.extend_from_slice(value);
    buf
}

/// Decodes the record stored under `rev`.
pub fn decode(rev: Revision, bytes: &[u8]) -> Result<Record, StorageError> {
    let corrupt = |reason| StorageError::Corrupt {
        what: "history record",
        index: rev.main as u64,
        reason,
    };
    if bytes.len() < FIXED_BYTES {
        return Err(corrupt("shorter than its header"));
    }
    let i64_at = |at: usize| i64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
    let key_len = u32::from_le_bytes(bytes[25..29].try_into().expect("4 bytes")) as usize;
    if bytes.len() < FIXED_BYTES + key_len {
        return Err(corrupt("key longer than the record"));
    }
    let tombstone = match bytes[0] {
        0 => false,
        1 => true,
        _ => return Err(corrupt("unknown record kind")),
    };
    let key = Bytes::copy_from_slice(&bytes[FIXED_BYTES..FIXED_BYTES + key_len]);
    let value = Bytes::copy_from_slice(&bytes[FIXED_BYTES + key_len..]);
    Ok(Record {
        tombstone,
        kv: KeyValue {
            key,
            create_revision: i64_at(1),
            mod_revision: rev.main,
            version: i64_at(9),
            value,
            lease: i64_at(17),
        },
    })
}

/// Reads only the key of a record, without copying the value.
pub fn key_of(bytes: &[u8]) -> Option<&[u8]> {
    let key_len = u32::from_le_bytes(bytes.get(25..29)?.try_into().ok()?) as usize;
    bytes.get(FIXED_BYTES..FIXED_BYTES + key_len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn puts_and_deletes_round_trip() {
        let rev = Revision { main: 7, sub: 2 };
        let kv = KeyValue {
            key: Bytes::from_static(b"config/app"),
            create_revision: 3,
            mod_revision: 7,
            version: 4,
            value: Bytes::from_static(b"{\"x\":1}"),
            lease: 99,
        };
        let put = decode(rev, &encode_put(&kv)).unwrap();
        assert_eq!(put, Record { tombstone: false, kv });
        let del = decode(rev, &encode_delete(b"gone")).unwrap();
        assert!(del.tombstone);
        assert_eq!(del.kv.key.as_ref(), b"gone");
        assert_eq!(del.kv.mod_revision, 7);
        assert_eq!(key_of(&encode_delete(b"gone")), Some(&b"gone"[..]));
    }

    #[test]
    fn malformed_records_are_refused() {
        let rev = Revision { main: 1, sub: 0 };
        assert!(decode(rev, &[]).is_err());
        let mut bad = encode_delete(b"k");
        bad[0] = 7;
        assert!(decode(rev, &bad).is_err());
        let mut short = encode_delete(b"key");
        short.truncate(short.len() - 1);
        assert!(decode(rev, &short).is_err());
    }
}
