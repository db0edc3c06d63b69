//! Peer framing and message encoding. Pure: works on byte buffers, no sockets, so every edge
//! (partial frames, corrupt input, oversized lengths) is unit-tested directly.
//!
//! A peer stream is a sequence of frames:
//!
//! ```text
//! len: u32 LE (bytes after this field) | kind: u8 | body
//!   kind 1 HELLO    cluster_id: u64 | from: u64 | to: u64        (first frame of every stream)
//!   kind 2 MESSAGES count: u32 | message*                        (a batch, sent as one write)
//! message = from: u64 | to: u64 | term: u64 | tag: u8 | fields…  (see `encode_message`)
//! ```
//!
//! [`decode_frame`] follows mini-redis's check-then-parse: it returns `Ok(None)` when more bytes
//! are needed, a frame when one is complete, and an error for input no valid peer sends.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kvorum_raft::{ConfState, Entry, Message, MessageBody, RejectHint, SnapshotMeta};

use crate::storage::{decode_entry, encode_entry};

/// Largest frame accepted: a batch of appends is bounded by the core's `max_append_bytes`
/// (1 MiB by default) times a few messages; anything far beyond is not a peer speaking.
pub const MAX_FRAME_BYTES: usize = 64 << 20;

const KIND_HELLO: u8 = 1;
const KIND_MESSAGES: u8 = 2;

/// The first frame of a stream: who is talking to whom, in which cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hello {
    /// The cluster both sides must belong to.
    pub cluster_id: u64,
    /// Sender's member ID.
    pub from: u64,
    /// Intended recipient's member ID.
    pub to: u64,
}

/// One decoded frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// Stream opening.
    Hello(Hello),
    /// A batch of Raft messages.
    Messages(Vec<Message>),
}

/// Why input could not be decoded. The connection is closed; nothing reaches the core.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// A length beyond [`MAX_FRAME_BYTES`].
    #[error("frame of {0} bytes exceeds the limit")]
    TooLarge(usize),
    /// An unknown frame kind.
    #[error("unknown frame kind {0}")]
    UnknownKind(u8),
    /// An unknown message tag.
    #[error("unknown message tag {0}")]
    UnknownTag(u8),
    /// A frame whose body is shorter or longer than its fields.
    #[error("malformed frame: {0}")]
    Malformed(&'static str),
}

/// Appends one frame to `out`.
pub fn encode_frame(frame: &Frame, out: &mut BytesMut) {
    let start = out.len();
    out.put_u32_le(0);
    match frame {
        Frame::Hello(h) => {
            out.put_u8(KIND_HELLO);
            out.put_u64_le(h.cluster_id);
            out.put_u64_le(h.from);
            out.put_u64_le(h.to);
        }
        Frame::Messages(msgs) => {
            out.put_u8(KIND_MESSAGES);
            out.put_u32_le(msgs.len() as u32);
            for m in msgs {
                encode_message(m, out);
            }
        }
    }
    let len = (out.len() - start - 4) as u32;
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
}

/// Decodes one frame from the front of `buf`, consuming it. `Ok(None)`: need more bytes.
pub fn decode_frame(buf: &mut BytesMut) -> Result<Option<Frame>, CodecError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let len = u32::from_le_bytes(buf[..4].try_into().expect("4 bytes")) as usize;
    if len > MAX_FRAME_BYTES {
        return Err(CodecError::TooLarge(len));
    }
    if buf.len() < 4 + len {
        buf.reserve(4 + len - buf.len());
        return Ok(None);
    }
    buf.advance(4);
    let mut body = buf.split_to(len).freeze();
    let kind = take_u8(&mut body)?;
    let frame = match kind {
        KIND_HELLO => Frame::Hello(Hello {
            cluster_id: take_u64(&mut body)?,
            from: take_u64(&mut body)?,
            to: take_u64(&mut body)?,
        }),
        KIND_MESSAGES => {
            let count = take_u32(&mut body)? as usize;
            // Every message has at least a 25-byte header, so a count beyond that is a lie.
            if count > body.len() / 25 {
                return Err(CodecError::Malformed("message count exceeds the frame"));
            }
            let mut msgs = Vec::with_capacity(count);
            for _ in 0..count {
                msgs.push(decode_message(&mut body)?);
            }
            Frame::Messages(msgs)
        }
        other => return Err(CodecError::UnknownKind(other)),
    };
    if body.has_remaining() {
        return Err(CodecError::Malformed("trailing bytes after the frame's fields"));
    }
    Ok(Some(frame))
}

/// Appends one message.
pub fn encode_message(m: &Message, out: &mut BytesMut) {
    out.put_u64_le(m.from);
    out.put_u64_le(m.to);
    out.put_u64_le(m.term);
    match &m.body {
        MessageBody::RequestVote {
            pre_vote,
            last_log_index,
            last_log_term,
            transfer,
        } => {
            out.put_u8(1);
            out.put_u8(u8::from(*pre_vote) | (u8::from(*transfer) << 1));
            out.put_u64_le(*last_log_index);
            out.put_u64_le(*last_log_term);
        }
        MessageBody::RequestVoteResponse { pre_vote, granted } => {
            out.put_u8(2);
            out.put_u8(u8::from(*pre_vote) | (u8::from(*granted) << 1));
        }
        MessageBody::AppendEntries {
            prev_log_index,
            prev_log_term,
            entries,
            leader_commit,
        } => {
            out.put_u8(3);
            out.put_u64_le(*prev_log_index);
            out.put_u64_le(*prev_log_term);
            out.put_u64_le(*leader_commit);
            out.put_u32_le(entries.len() as u32);
            for e in entries {
                out.put_u64_le(e.index);
                let rec = encode_entry(e);
                out.put_u32_le(rec.len() as u32);
                out.put_slice(&rec);
            }
        }
        MessageBody::AppendEntriesResponse { index, reject } => {
            out.put_u8(4);
            out.put_u64_le(*index);
            match reject {
                None => out.put_u8(0),
                Some(h) => {
                    out.put_u8(1);
                    out.put_u64_le(h.index);
                    out.put_u64_le(h.term);
                }
            }
        }
        MessageBody::Heartbeat { commit, read_round } => {
            out.put_u8(5);
            out.put_u64_le(*commit);
            out.put_u64_le(*read_round);
        }
        MessageBody::HeartbeatResponse { read_round } => {
            out.put_u8(6);
            out.put_u64_le(*read_round);
        }
        MessageBody::InstallSnapshot { snapshot } => {
            out.put_u8(7);
            out.put_u64_le(snapshot.index);
            out.put_u64_le(snapshot.term);
            out.put_u32_le(snapshot.conf.voters.len() as u32);
            snapshot.conf.voters.iter().for_each(|v| out.put_u64_le(*v));
            out.put_u32_le(snapshot.conf.learners.len() as u32);
            snapshot.conf.learners.iter().for_each(|v| out.put_u64_le(*v));
        }
        MessageBody::TimeoutNow => out.put_u8(8),
        MessageBody::ReadIndex { id } => {
            out.put_u8(9);
            out.put_u64_le(*id);
        }
        MessageBody::ReadIndexResponse { id, index } => {
            out.put_u8(10);
            out.put_u64_le(*id);
            match index {
                None => out.put_u8(0),
                Some(i) => {
                    out.put_u8(1);
                    out.put_u64_le(*i);
                }
            }
        }
    }
}

/// Decodes one message from the front of `buf`.
pub fn decode_message(buf: &mut Bytes) -> Result<Message, CodecError> {
    let from = take_u64(buf)?;
    let to = take_u64(buf)?;
    let term = take_u64(buf)?;
    let tag = take_u8(buf)?;
    let body = match tag {
        1 => {
            let flags = take_u8(buf)?;
            MessageBody::RequestVote {
                pre_vote: flags & 1 != 0,
                transfer: flags & 2 != 0,
                last_log_index: take_u64(buf)?,
                last_log_term: take_u64(buf)?,
            }
        }
        2 => {
            let flags = take_u8(buf)?;
            MessageBody::RequestVoteResponse {
                pre_vote: flags & 1 != 0,
                granted: flags & 2 != 0,
            }
        }
        3 => {
            let prev_log_index = take_u64(buf)?;
            let prev_log_term = take_u64(buf)?;
            let leader_commit = take_u64(buf)?;
            let count = take_u32(buf)? as usize;
            if count > buf.len() / 12 {
                return Err(CodecError::Malformed("entry count exceeds the frame"));
            }
            let mut entries = Vec::with_capacity(count);
            for _ in 0..count {
                let index = take_u64(buf)?;
                let len = take_u32(buf)? as usize;
                if buf.remaining() < len {
                    return Err(CodecError::Malformed("entry longer than the frame"));
                }
                let rec = buf.split_to(len);
                let entry: Entry =
                    decode_entry(index, &rec).map_err(|_| CodecError::Malformed("entry failed its checksum"))?;
                entries.push(entry);
            }
            MessageBody::AppendEntries {
                prev_log_index,
                prev_log_term,
                entries,
                leader_commit,
            }
        }
        4 => {
            let index = take_u64(buf)?;
            let reject = match take_u8(buf)? {
                0 => None,
                1 => Some(RejectHint {
                    index: take_u64(buf)?,
                    term: take_u64(buf)?,
                }),
                _ => return Err(CodecError::Malformed("bad reject flag")),
            };
            MessageBody::AppendEntriesResponse { index, reject }
        }
        5 => MessageBody::Heartbeat {
            commit: take_u64(buf)?,
            read_round: take_u64(buf)?,
        },
        6 => MessageBody::HeartbeatResponse {
            read_round: take_u64(buf)?,
        },
        7 => {
            let index = take_u64(buf)?;
            let term = take_u64(buf)?;
            let mut conf = ConfState::default();
            for set in [&mut conf.voters, &mut conf.learners] {
                let n = take_u32(buf)? as usize;
                if n > buf.len() / 8 {
                    return Err(CodecError::Malformed("member count exceeds the frame"));
                }
                for _ in 0..n {
                    set.insert(take_u64(buf)?);
                }
            }
            MessageBody::InstallSnapshot {
                snapshot: SnapshotMeta { index, term, conf },
            }
        }
        8 => MessageBody::TimeoutNow,
        9 => MessageBody::ReadIndex { id: take_u64(buf)? },
        10 => {
            let id = take_u64(buf)?;
            let index = match take_u8(buf)? {
                0 => None,
                1 => Some(take_u64(buf)?),
                _ => return Err(CodecError::Malformed("bad read index flag")),
            };
            MessageBody::ReadIndexResponse { id, index }
        }
        other => return Err(CodecError::UnknownTag(other)),
    };
    Ok(Message { from, to, term, body })
}

fn take_u8(buf: &mut Bytes) -> Result<u8, CodecError> {
    if buf.remaining() < 1 {
        return Err(CodecError::Malformed("truncated field"));
    }
    Ok(buf.get_u8())
}

fn take_u32(buf: &mut Bytes) -> Result<u32, CodecError> {
    if buf.remaining() < 4 {
        return Err(CodecError::Malformed("truncated field"));
    }
    Ok(buf.get_u32_le())
}

fn take_u64(buf: &mut Bytes) -> Result<u64, CodecError> {
    if buf.remaining() < 8 {
        return Err(CodecError::Malformed("truncated field"));
    }
    Ok(buf.get_u64_le())
}

#[cfg(test)]
mod tests {
    use kvorum_raft::{ConfChange, EntryPayload};

    use super::*;

    fn every_message() -> Vec<Message> {
        let m = |body| Message {
            from: 1,
            to: 2,
            term: 7,
            body,
        };
        vec![
            m(MessageBody::RequestVote {
                pre_vote: true,
                last_log_index: 9,
                last_log_term: 6,
                transfer: false,
            }),
            m(MessageBody::RequestVote {
                pre_vote: false,
                last_log_index: 1,
                last_log_term: 1,
                transfer: true,
            }),
            m(MessageBody::RequestVoteResponse {
                pre_vote: false,
                granted: true,
            }),
            m(MessageBody::AppendEntries {
                prev_log_index: 4,
                prev_log_term: 3,
                entries: vec![
                    Entry {
                        term: 7,
                        index: 5,
                        payload: EntryPayload::Noop,
                    },
                    Entry {
                        term: 7,
                        index: 6,
                        payload: EntryPayload::Command(Bytes::from_static(b"put x")),
                    },
                    Entry {
                        term: 7,
                        index: 7,
                        payload: EntryPayload::ConfChange(ConfChange::AddLearner(4)),
                    },
                ],
                leader_commit: 5,
            }),
            m(MessageBody::AppendEntriesResponse { index: 6, reject: None }),
            m(MessageBody::AppendEntriesResponse {
                index: 6,
                reject: Some(RejectHint { index: 3, term: 2 }),
            }),
            m(MessageBody::Heartbeat {
                commit: 5,
                read_round: 11,
            }),
            m(MessageBody::HeartbeatResponse { read_round: 11 }),
            m(MessageBody::InstallSnapshot {
                snapshot: SnapshotMeta {
                    index: 100,
                    term: 6,
                    conf: ConfState {
                        voters: [1, 2, 3].into(),
                        learners: [4].into(),
                    },
                },
            }),
            m(MessageBody::TimeoutNow),
            m(MessageBody::ReadIndex { id: 42 }),
            m(MessageBody::ReadIndexResponse { id: 42, index: Some(9) }),
            m(MessageBody::ReadIndexResponse { id: 43, index: None }),
        ]
    }

    fn encoded(frames: &[Frame]) -> BytesMut {
        let mut out = BytesMut::new();
        frames.iter().for_each(|f| encode_frame(f, &mut out));
        out
    }

    #[test]
    fn every_message_kind_round_trips() {
        let hello = Frame::Hello(Hello {
            cluster_id: 0xfeed,
            from: 1,
            to: 2,
        });
        let batch = Frame::Messages(every_message());
        let mut buf = encoded(&[hello.clone(), batch.clone()]);
        assert_eq!(decode_frame(&mut buf).unwrap(), Some(hello));
        assert_eq!(decode_frame(&mut buf).unwrap(), Some(batch));
        assert_eq!(decode_frame(&mut buf).unwrap(), None);
        assert!(buf.is_empty());
    }

    #[test]
    fn partial_input_asks_for_more_at_every_cut() {
        let full = encoded(&[Frame::Messages(every_message())]);
        for cut in 0..full.len() {
            let mut buf = BytesMut::from(&full[..cut]);
            assert_eq!(decode_frame(&mut buf).unwrap(), None, "cut at {cut}");
            assert_eq!(buf.len(), cut, "nothing consumed while incomplete");
            buf.extend_from_slice(&full[cut..]);
            assert!(matches!(decode_frame(&mut buf).unwrap(), Some(Frame::Messages(m)) if m.len() == 13));
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut buf = BytesMut::from(&[0xff, 0xff, 0xff, 0x7f][..]);
        assert!(matches!(decode_frame(&mut buf), Err(CodecError::TooLarge(_))));
        let mut buf = encoded(&[Frame::Hello(Hello {
            cluster_id: 1,
            from: 1,
            to: 2,
        })]);
        buf[4] = 99;
        assert_eq!(decode_frame(&mut buf), Err(CodecError::UnknownKind(99)));
        // A batch claiming a billion messages.
        let mut liar = BytesMut::new();
        liar.put_u32_le(5);
        liar.put_u8(KIND_MESSAGES);
        liar.put_u32_le(1_000_000_000);
        assert!(matches!(decode_frame(&mut liar), Err(CodecError::Malformed(_))));
        // Corrupting any byte after the length field yields a decoded frame or an error,
        // never a request for more input (the frame is complete) and never a panic.
        let good = encoded(&[Frame::Messages(every_message())]);
        for at in 4..good.len() {
            for flip in [0x01u8, 0x80] {
                let mut bad = good.clone();
                bad[at] ^= flip;
                assert_ne!(decode_frame(&mut bad), Ok(None), "flip {flip:#x} at {at}");
            }
        }
        let mut short = good.clone();
        let len = u32::from_le_bytes(short[..4].try_into().unwrap()) - 3;
        short[..4].copy_from_slice(&len.to_le_bytes());
        short.truncate(4 + len as usize);
        assert!(decode_frame(&mut short).is_err());
    }

    #[test]
    fn a_corrupted_entry_fails_its_checksum() {
        let msg = every_message().into_iter().nth(3).unwrap();
        let mut good = encoded(&[Frame::Messages(vec![msg])]);
        let n = good.len();
        good[n - 2] ^= 0x10; // inside the last entry's record
        assert_eq!(
            decode_frame(&mut good),
            Err(CodecError::Malformed("entry failed its checksum"))
        );
    }
}
