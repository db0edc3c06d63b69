//! State-machine snapshots: a consistent copy of the store (one read transaction), streamed in
//! chunks, and installed atomically (one write transaction) on another member.
//!
//! ```text
//! "KVRMSNP1" | record* | 0xFF | crc32c(everything before): u32 LE
//! record = tag: u8 | key_len: u32 | key | value_len: u32 | value
//!   tag 1 history row   key = main: u64 | sub: u32        value = history record
//!   tag 2 lease row     key = id: i64                     value = ttl | remaining
//!   tag 3 meta counter  key = name (UTF-8)                value = i64
//!   tag 4 member        key = id: u64                     value = member metadata
//! ```
//! Integers little-endian. A snapshot carries its own applied index (in the meta counters):
//! the installing member skips log entries up to it, so the snapshot may be newer than the Raft
//! snapshot metadata it travels with.

use std::io::Read;

use bytes::{BufMut, Bytes, BytesMut};
use redb::{Durability, Range, ReadableTable};

use super::range::HISTORY;
use super::state::{APPLIED_INDEX, LEASES, MEMBERS, META, State};
use super::store::Store;
use crate::storage::{ReadGuard, StorageError};

const MAGIC: &[u8; 8] = b"KVRMSNP1";
const END: u8 = 0xff;
const TAG_HISTORY: u8 = 1;
const TAG_LEASE: u8 = 2;
const TAG_META: u8 = 3;
const TAG_MEMBER: u8 = 4;

/// Why a snapshot could not be installed. The store is unchanged.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// Reading the stream failed.
    #[error("reading the snapshot: {0}")]
    Io(#[from] std::io::Error),
    /// The stream is not a snapshot, or is cut short.
    #[error("malformed snapshot: {0}")]
    Malformed(&'static str),
    /// The stream was damaged in transit.
    #[error("snapshot checksum mismatch: expected {expected:08x}, computed {computed:08x}")]
    Checksum {
        /// From the stream's trailer.
        expected: u32,
        /// Over what was received.
        computed: u32,
    },
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<redb::StorageError> for SnapshotError {
    fn from(e: redb::StorageError) -> Self {
        SnapshotError::Storage(e.into())
    }
}

impl From<redb::TableError> for SnapshotError {
    fn from(e: redb::TableError) -> Self {
        SnapshotError::Storage(e.into())
    }
}

enum Phase {
    Magic,
    Meta(Range<'static, &'static str, i64>),
    Leases(Range<'static, i64, &'static [u8]>),
    Members(Range<'static, u64, &'static [u8]>),
    History(Range<'static, (u64, u32), &'static [u8]>),
    Trailer,
    Done,
}

/// A snapshot being read out, chunk by chunk, from one read transaction.
pub struct SnapshotReader {
    _txn: ReadGuard,
    phase: Phase,
    crc: u32,
    chunk_bytes: usize,
    applied_index: u64,
    revision: i64,
}

impl SnapshotReader {
    /// The Raft index the snapshot reflects.
    pub fn applied_index(&self) -> u64 {
        self.applied_index
    }

    /// The store revision the snapshot reflects.
    pub fn revision(&self) -> i64 {
        self.revision
    }

    fn fill(&mut self, buf: &mut BytesMut) -> Result<(), StorageError> {
        while buf.len() < self.chunk_bytes {
            match &mut self.phase {
                Phase::Magic => {
                    buf.put_slice(MAGIC);
                    let txn = &self._txn;
                    self.phase = Phase::Meta(txn.open_table(META)?.range::<&str>(..)?);
                }
                Phase::Meta(it) => match it.next() {
                    Some(row) => {
                        let (k, v) = row?;
                        put_record(buf, TAG_META, k.value().as_bytes(), &v.value().to_le_bytes());
                    }
                    None => self.phase = Phase::Leases(self._txn.open_table(LEASES)?.range::<i64>(..)?),
                },
                Phase::Leases(it) => match it.next() {
                    Some(row) => {
                        let (k, v) = row?;
                        put_record(buf, TAG_LEASE, &k.value().to_le_bytes(), v.value());
                    }
                    None => self.phase = Phase::Members(self._txn.open_table(MEMBERS)?.range::<u64>(..)?),
                },
                Phase::Members(it) => match it.next() {
                    Some(row) => {
                        let (k, v) = row?;
                        put_record(buf, TAG_MEMBER, &k.value().to_le_bytes(), v.value());
                    }
                    None => {
                        self.phase = Phase::History(self._txn.open_table(HISTORY)?.range::<(u64, u32)>(..)?);
                    }
                },
                Phase::History(it) => match it.next() {
                    Some(row) => {
                        let (k, v) = row?;
                        let (main, sub) = k.value();
                        let mut key = [0u8; 12];
                        key[..8].copy_from_slice(&main.to_le_bytes());
                        key[8..].copy_from_slice(&sub.to_le_bytes());
                        put_record(buf, TAG_HISTORY, &key, v.value());
                    }
                    None => self.phase = Phase::Trailer,
                },
                Phase::Trailer => {
                    buf.put_u8(END);
                    self.phase = Phase::Done;
                    return Ok(());
                }
                Phase::Done => return Ok(()),
            }
        }
        Ok(())
    }
}

impl Iterator for SnapshotReader {
    type Item = Result<Bytes, StorageError>;

    fn next(&mut self) -> Option<Self::Item> {
        if matches!(self.phase, Phase::Done) {
            return None;
        }
        let mut buf = BytesMut::with_capacity(self.chunk_bytes + 1024);
        if let Err(e) = self.fill(&mut buf) {
            self.phase = Phase::Done;
            return Some(Err(e));
        }
        self.crc = crc32c::crc32c_append(self.crc, &buf);
        if matches!(self.phase, Phase::Done) {
            buf.put_u32_le(self.crc);
        }
        Some(Ok(buf.freeze()))
    }
}

fn put_record(buf: &mut BytesMut, tag: u8, key: &[u8], value: &[u8]) {
    buf.put_u8(tag);
    buf.put_u32_le(key.len() as u32);
    buf.put_slice(key);
    buf.put_u32_le(value.len() as u32);
    buf.put_slice(value);
}

/// A snapshot as `Maintenance.Snapshot` streams it to clients: the snapshot, zero padding to a
/// multiple of 512 bytes, then the SHA-256 of everything before it — the layout `etcdctl
/// snapshot save` checks for (and `kvorum snapshot restore` verifies).
pub struct ClientSnapshot {
    inner: SnapshotReader,
    sha: ring::digest::Context,
    len: u64,
    done: bool,
}

impl ClientSnapshot {
    /// Wraps a snapshot reader.
    pub fn new(inner: SnapshotReader) -> Self {
        ClientSnapshot {
            inner,
            sha: ring::digest::Context::new(&ring::digest::SHA256),
            len: 0,
            done: false,
        }
    }

    /// The store revision the snapshot reflects.
    pub fn revision(&self) -> i64 {
        self.inner.revision()
    }
}

impl Iterator for ClientSnapshot {
    type Item = Result<Bytes, StorageError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.inner.next() {
            Some(Ok(chunk)) => {
                self.sha.update(&chunk);
                self.len += chunk.len() as u64;
                Some(Ok(chunk))
            }
            Some(Err(e)) => {
                self.done = true;
                Some(Err(e))
            }
            None => {
                self.done = true;
                let pad = vec![0u8; ((512 - self.len % 512) % 512) as usize];
                self.sha.update(&pad);
                let digest =
                    std::mem::replace(&mut self.sha, ring::digest::Context::new(&ring::digest::SHA256)).finish();
                let mut tail = BytesMut::from(&pad[..]);
                tail.put_slice(digest.as_ref());
                Some(Ok(tail.freeze()))
            }
        }
    }
}

/// Verifies a client snapshot's SHA-256 trailer and returns the snapshot inside it. Data
/// without a trailer (a raw snapshot) is returned as is.
pub fn strip_client_checksum(data: &[u8]) -> Result<&[u8], SnapshotError> {
    if data.len() < 32 || data.len() % 512 != 32 {
        return Ok(data);
    }
    let (body, trailer) = data.split_at(data.len() - 32);
    let digest = ring::digest::digest(&ring::digest::SHA256, body);
    if digest.as_ref() != trailer {
        return Err(SnapshotError::Malformed("SHA-256 trailer does not match the snapshot"));
    }
    Ok(body)
}

/// Reads exactly `n` bytes, folding them into the checksum.
struct Checked<R> {
    inner: R,
    crc: u32,
}

impl<R: Read> Checked<R> {
    fn take(&mut self, n: usize) -> Result<Vec<u8>, SnapshotError> {
        let mut v = vec![0; n];
        self.inner.read_exact(&mut v).map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => SnapshotError::Malformed("stream ends before its trailer"),
            _ => SnapshotError::Io(e),
        })?;
        self.crc = crc32c::crc32c_append(self.crc, &v);
        Ok(v)
    }

    fn u32(&mut self) -> Result<u32, SnapshotError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }
}

impl Store {
    /// Starts reading a consistent snapshot, in chunks of about `chunk_bytes`.
    pub fn snapshot(&self, chunk_bytes: usize) -> Result<SnapshotReader, StorageError> {
        // The read lock pins the state, so the read transaction begins at exactly the revision
        // and applied index the lock shows.
        let st = self.state().read();
        let txn = self.db().read()?;
        let (applied_index, revision) = (st.applied_index, st.current_rev);
        drop(st);
        Ok(SnapshotReader {
            _txn: txn,
            phase: Phase::Magic,
            crc: 0,
            chunk_bytes: chunk_bytes.max(1024),
            applied_index,
            revision,
        })
    }

    /// Replaces the whole state with a snapshot, atomically: on any error nothing changes.
    /// Returns the applied index the snapshot carries.
    pub fn install_snapshot(&self, reader: impl Read) -> Result<u64, SnapshotError> {
        let mut st = self.state().write();
        let mut input = Checked { inner: reader, crc: 0 };
        if input.take(8)?.as_slice() != MAGIC {
            return Err(SnapshotError::Malformed("not a kvorum snapshot (bad magic)"));
        }
        let txn = self.db().write(Durability::Immediate)?;
        {
            let mut history = txn.open_table(HISTORY)?;
            let mut leases = txn.open_table(LEASES)?;
            let mut meta = txn.open_table(META)?;
            let mut members = txn.open_table(MEMBERS)?;
            history.retain(|_, _| false)?;
            leases.retain(|_, _| false)?;
            meta.retain(|_, _| false)?;
            members.retain(|_, _| false)?;
            loop {
                let tag = input.take(1)?[0];
                if tag == END {
                    break;
                }
                let key_len = input.u32()? as usize;
                let key = input.take(key_len)?;
                let value_len = input.u32()? as usize;
                let value = input.take(value_len)?;
                match (tag, key.len()) {
                    (TAG_HISTORY, 12) => {
                        let main = u64::from_le_bytes(key[..8].try_into().expect("8 bytes"));
                        let sub = u32::from_le_bytes(key[8..].try_into().expect("4 bytes"));
                        history.insert((main, sub), value.as_slice())?;
                    }
                    (TAG_LEASE, 8) => {
                        leases.insert(i64::from_le_bytes(key.try_into().expect("8 bytes")), value.as_slice())?;
                    }
                    (TAG_MEMBER, 8) => {
                        members.insert(u64::from_le_bytes(key.try_into().expect("8 bytes")), value.as_slice())?;
                    }
                    (TAG_META, _) if value.len() == 8 => {
                        let name = std::str::from_utf8(&key).map_err(|_| SnapshotError::Malformed("meta name"))?;
                        meta.insert(name, i64::from_le_bytes(value.try_into().expect("8 bytes")))?;
                    }
                    _ => return Err(SnapshotError::Malformed("unknown record or bad key length")),
                }
            }
            let computed = input.crc;
            let mut trailer = [0u8; 4];
            input
                .inner
                .read_exact(&mut trailer)
                .map_err(|_| SnapshotError::Malformed("missing checksum trailer"))?;
            let expected = u32::from_le_bytes(trailer);
            if expected != computed {
                return Err(SnapshotError::Checksum { expected, computed });
            }
            if meta.get(APPLIED_INDEX)?.is_none() {
                return Err(SnapshotError::Malformed("no applied index"));
            }
        }
        txn.commit()?;
        let fresh = State::load(self.db())?;
        let applied = fresh.applied_index;
        *st = fresh;
        let rev = st.current_rev;
        drop(st);
        self.watch_hub().reset(rev);
        Ok(applied)
    }
}
