//! The on-disk encoding of log entries, checksummed so that a record is verified after every
//! read (pair assertion with the write side).
//!
//! ```text
//! crc32c: u32 LE | term: u64 LE | kind: u8 | payload
//!   kind 0 Noop         payload empty
//!   kind 1 Command      payload = the command bytes
//!   kind 2 ConfChange   payload = change: u8 (0 add learner, 1 promote, 2 remove) | node: u64 LE
//! ```
//!
//! The checksum covers the entry's index too, so a record stored under the wrong key fails.

use bytes::Bytes;
use kvorum_raft::{ConfChange, Entry, EntryPayload, Index};

use super::StorageError;

const HEADER_BYTES: usize = 4 + 8 + 1;

/// Encodes `entry` for storage.
pub fn encode_entry(entry: &Entry) -> Vec<u8> {
    let mut buf = Vec::with_capacity(HEADER_BYTES + payload_len(&entry.payload));
    buf.extend_from_slice(&[0; 4]);
    buf.extend_from_slice(&entry.term.to_le_bytes());
    match &entry.payload {
        EntryPayload::Noop => buf.push(0),
        EntryPayload::Command(data) => {
            buf.push(1);
            buf.extend_from_slice(data);
        }
        EntryPayload::ConfChange(change) => {
            buf.push(2);
            let (kind, node) = match change {
                ConfChange::AddLearner(n) => (0u8, *n),
                ConfChange::PromoteLearner(n) => (1, *n),
                ConfChange::RemoveNode(n) => (2, *n),
            };
            buf.push(kind);
            buf.extend_from_slice(&node.to_le_bytes());
        }
    }
    let crc = checksum(entry.index, &buf[4..]);
    buf[..4].copy_from_slice(&crc.to_le_bytes());
    buf
}

/// Decodes and verifies the record stored under `index`.
pub fn decode_entry(index: Index, record: &[u8]) -> Result<Entry, StorageError> {
    let corrupt = |reason| StorageError::Corrupt {
        what: "log entry",
        index,
        reason,
    };
    if record.len() < HEADER_BYTES {
        return Err(corrupt("record shorter than its header"));
    }
    let stored = u32::from_le_bytes(record[..4].try_into().expect("4 bytes"));
    if stored != checksum(index, &record[4..]) {
        return Err(corrupt("checksum mismatch"));
    }
    let term = u64::from_le_bytes(record[4..12].try_into().expect("8 bytes"));
    let body = &record[HEADER_BYTES..];
    let payload = match record[12] {
        0 if body.is_empty() => EntryPayload::Noop,
        1 => EntryPayload::Command(Bytes::copy_from_slice(body)),
        2 if body.len() == 9 => {
            let node = u64::from_le_bytes(body[1..9].try_into().expect("8 bytes"));
            EntryPayload::ConfChange(match body[0] {
                0 => ConfChange::AddLearner(node),
                1 => ConfChange::PromoteLearner(node),
                2 => ConfChange::RemoveNode(node),
                _ => return Err(corrupt("unknown membership change kind")),
            })
        }
        _ => return Err(corrupt("unknown entry kind or bad payload length")),
    };
    Ok(Entry { term, index, payload })
}

fn payload_len(payload: &EntryPayload) -> usize {
    match payload {
        EntryPayload::Noop => 0,
        EntryPayload::Command(data) => data.len(),
        EntryPayload::ConfChange(_) => 9,
    }
}

fn checksum(index: Index, rest: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&index.to_le_bytes()), rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries() -> Vec<Entry> {
        vec![
            Entry {
                term: 3,
                index: 7,
                payload: EntryPayload::Noop,
            },
            Entry {
                term: 3,
                index: 8,
                payload: EntryPayload::Command(Bytes::from_static(b"put a=1")),
            },
            Entry {
                term: u64::MAX,
                index: u64::MAX,
                payload: EntryPayload::ConfChange(ConfChange::PromoteLearner(42)),
            },
            Entry {
                term: 1,
                index: 2,
                payload: EntryPayload::ConfChange(ConfChange::RemoveNode(9)),
            },
        ]
    }

    #[test]
    fn round_trips_every_payload_kind() {
        for e in entries() {
            assert_eq!(decode_entry(e.index, &encode_entry(&e)).unwrap(), e);
        }
    }

    #[test]
    fn a_flipped_bit_anywhere_is_detected() {
        for e in entries() {
            let good = encode_entry(&e);
            for byte in 0..good.len() {
                for bit in 0..8 {
                    let mut bad = good.clone();
                    bad[byte] ^= 1 << bit;
                    assert!(
                        matches!(decode_entry(e.index, &bad), Err(StorageError::Corrupt { .. })),
                        "flip of bit {bit} in byte {byte} of {e:?} went unnoticed"
                    );
                }
            }
        }
    }

    #[test]
    fn a_record_under_the_wrong_index_is_refused() {
        let e = &entries()[1];
        let err = decode_entry(e.index + 1, &encode_entry(e)).unwrap_err();
        assert!(err.to_string().contains("checksum mismatch"), "{err}");
    }

    #[test]
    fn truncated_records_are_refused() {
        let e = &entries()[1];
        let good = encode_entry(e);
        for len in 0..good.len() {
            assert!(decode_entry(e.index, &good[..len]).is_err(), "length {len} accepted");
        }
    }
}
