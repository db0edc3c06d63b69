//! Tolerance for one etcd client quirk: etcdctl 3.4 dials single endpoints (`endpoint status`,
//! `endpoint hashkv`, `defrag`, `move-leader`) through grpc-go's passthrough resolver, which
//! sends the whole endpoint URL as the HTTP/2 `:authority` (`http://127.0.0.1:2379`). etcd's
//! grpc-go server accepts that; hyper's HTTP/2 stack rejects the stream as malformed.
//!
//! [`AuthorityFix`] sits between the socket and hyper and reads the client's side of an HTTP/2
//! connection frame by frame. It decodes every header block (it must, to follow the client's
//! HPACK dynamic table), and once it has seen a URL-shaped authority it re-encodes that block
//! and every later one as plain literals (which never touch the server's table, so both
//! tables stay consistent) with the scheme stripped from `:authority`. Connections that never
//! send such an authority are passed through byte for byte; HTTP/1.1 connections are not
//! touched at all.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, BufMut, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const HEADERS: u8 = 0x1;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;
/// The largest frame payload every HTTP/2 peer accepts (SETTINGS_MAX_FRAME_SIZE default).
const MAX_FRAME: usize = 16_384;
/// Header blocks beyond this are not ours to fix; pass them on and let HTTP/2 judge.
const MAX_BLOCK: usize = 1 << 20;

enum Mode {
    /// Waiting for the first bytes to tell HTTP/2 from HTTP/1.
    Sniff,
    /// HTTP/1.x or undecodable input: bytes flow unchanged.
    Passthrough,
    /// HTTP/2 frames.
    Frames,
}

/// Header-block state of the client's HTTP/2 stream.
struct Blocks {
    decoder: loona_hpack::Decoder<'static>,
    /// Set once a block had to be fixed: from then on every block is re-encoded.
    rewriting: bool,
    /// A HEADERS frame whose block continues in CONTINUATION frames.
    pending: Option<Pending>,
}

struct Pending {
    flags: u8,
    stream: u32,
    priority: Option<[u8; 5]>,
    block: Vec<u8>,
    /// The original frames, forwarded as they were if no rewrite is needed.
    raw: Vec<u8>,
}

/// An I/O wrapper that repairs URL-shaped `:authority` headers on the way in.
pub struct AuthorityFix<IO> {
    inner: IO,
    mode: Mode,
    blocks: Blocks,
    /// Bytes read from the client, not yet processed.
    input: BytesMut,
    /// Bytes ready for the server.
    output: BytesMut,
}

impl<IO> AuthorityFix<IO> {
    /// Wraps a client connection.
    pub fn new(inner: IO) -> Self {
        let mut decoder = loona_hpack::Decoder::new();
        decoder.set_max_allowed_table_size(64 << 10);
        AuthorityFix {
            inner,
            mode: Mode::Sniff,
            blocks: Blocks {
                decoder,
                rewriting: false,
                pending: None,
            },
            input: BytesMut::new(),
            output: BytesMut::new(),
        }
    }

    /// Moves what can be processed from `input` to `output`.
    fn process(&mut self) {
        loop {
            match self.mode {
                Mode::Sniff => {
                    let n = self.input.len().min(PREFACE.len());
                    if self.input[..n] != PREFACE[..n] {
                        self.mode = Mode::Passthrough;
                    } else if n == PREFACE.len() {
                        self.output.put(self.input.split_to(n));
                        self.mode = Mode::Frames;
                    } else {
                        return;
                    }
                }
                Mode::Passthrough => {
                    self.output.put(self.input.split());
                    return;
                }
                Mode::Frames => {
                    if self.input.len() < 9 {
                        return;
                    }
                    let len = u32::from_be_bytes([0, self.input[0], self.input[1], self.input[2]]) as usize;
                    if self.input.len() < 9 + len {
                        return;
                    }
                    let frame = self.input.split_to(9 + len);
                    if let Err(raw) = self.blocks.frame(&frame, &mut self.output) {
                        // Not something we understand: stop interfering.
                        self.output.put(&raw[..]);
                        self.mode = Mode::Passthrough;
                    }
                }
            }
        }
    }
}

impl Blocks {
    /// Handles one complete frame. `Err` carries bytes to forward unchanged before giving up.
    fn frame(&mut self, frame: &[u8], out: &mut BytesMut) -> Result<(), Vec<u8>> {
        let kind = frame[3];
        let flags = frame[4];
        let stream = u32::from_be_bytes([frame[5], frame[6], frame[7], frame[8]]) & 0x7fff_ffff;
        let payload = &frame[9..];
        match (kind, self.pending.as_mut()) {
            (HEADERS, None) => {
                let mut p = payload;
                let mut pad = 0;
                if flags & PADDED != 0 {
                    let Some((&n, rest)) = p.split_first() else {
                        return Err(frame.to_vec());
                    };
                    pad = n as usize;
                    p = rest;
                }
                let priority = if flags & PRIORITY != 0 {
                    if p.len() < 5 {
                        return Err(frame.to_vec());
                    }
                    let (pr, rest) = p.split_at(5);
                    p = rest;
                    Some(pr.try_into().expect("5 bytes"))
                } else {
                    None
                };
                if pad > p.len() {
                    return Err(frame.to_vec());
                }
                let block = p[..p.len() - pad].to_vec();
                let pending = Pending {
                    flags,
                    stream,
                    priority,
                    block,
                    raw: frame.to_vec(),
                };
                if flags & END_HEADERS != 0 {
                    self.finish(pending, out)
                } else {
                    self.pending = Some(pending);
                    Ok(())
                }
            }
            (CONTINUATION, Some(p)) if stream == p.stream => {
                p.block.extend_from_slice(payload);
                p.raw.extend_from_slice(frame);
                if p.block.len() > MAX_BLOCK {
                    let raw = std::mem::take(&mut p.raw);
                    self.pending = None;
                    return Err(raw);
                }
                if flags & END_HEADERS != 0 {
                    let p = self.pending.take().expect("present");
                    self.finish(p, out)
                } else {
                    Ok(())
                }
            }
            (_, Some(p)) => {
                // Anything but CONTINUATION inside a header block is a protocol error the
                // server will report; hand it everything as it came.
                let mut raw = std::mem::take(&mut p.raw);
                raw.extend_from_slice(frame);
                self.pending = None;
                Err(raw)
            }
            _ => {
                out.put_slice(frame);
                Ok(())
            }
        }
    }

    fn finish(&mut self, p: Pending, out: &mut BytesMut) -> Result<(), Vec<u8>> {
        let mut headers: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let mut needs_fix = false;
        let decoded = self.decoder.decode_with_cb(&p.block, |name, value| {
            let (name, mut value) = (name.into_owned(), value.into_owned());
            if name == b":authority" {
                for scheme in [&b"http://"[..], b"https://"] {
                    if let Some(rest) = value.strip_prefix(scheme) {
                        value = rest.strip_suffix(b"/").unwrap_or(rest).to_vec();
                        needs_fix = true;
                    }
                }
            }
            headers.push((name, value));
        });
        if decoded.is_err() {
            return Err(p.raw);
        }
        self.rewriting |= needs_fix;
        if !self.rewriting {
            out.put_slice(&p.raw);
            return Ok(());
        }
        let block = encode_literals(&headers);
        write_header_frames(out, p.stream, p.flags & END_STREAM, p.priority, &block);
        Ok(())
    }
}

/// HPACK "literal header field without indexing, new name", no Huffman: the server's
/// dynamic table is never touched.
fn encode_literals(headers: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in headers {
        out.push(0x00);
        put_string(&mut out, name);
        put_string(&mut out, value);
    }
    out
}

/// An HPACK string literal with a 7-bit-prefix length.
fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    let mut len = s.len();
    if len < 127 {
        out.push(len as u8);
    } else {
        out.push(127);
        len -= 127;
        while len >= 128 {
            out.push((len % 128) as u8 | 0x80);
            len /= 128;
        }
        out.push(len as u8);
    }
    out.extend_from_slice(s);
}

fn write_header_frames(out: &mut BytesMut, stream: u32, end_stream: u8, priority: Option<[u8; 5]>, block: &[u8]) {
    let first_room = MAX_FRAME - priority.map_or(0, |_| 5);
    let (first, mut rest) = block.split_at(block.len().min(first_room));
    let mut flags = end_stream;
    if rest.is_empty() {
        flags |= END_HEADERS;
    }
    if priority.is_some() {
        flags |= PRIORITY;
    }
    let len = first.len() + priority.map_or(0, |_| 5);
    put_frame_header(out, len, HEADERS, flags, stream);
    if let Some(pr) = priority {
        out.put_slice(&pr);
    }
    out.put_slice(first);
    while !rest.is_empty() {
        let (chunk, tail) = rest.split_at(rest.len().min(MAX_FRAME));
        rest = tail;
        let flags = if rest.is_empty() { END_HEADERS } else { 0 };
        put_frame_header(out, chunk.len(), CONTINUATION, flags, stream);
        out.put_slice(chunk);
    }
}

fn put_frame_header(out: &mut BytesMut, len: usize, kind: u8, flags: u8, stream: u32) {
    out.put_slice(&(len as u32).to_be_bytes()[1..]);
    out.put_u8(kind);
    out.put_u8(flags);
    out.put_u32(stream);
}

impl<IO: AsyncRead + Unpin> AsyncRead for AuthorityFix<IO> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if !this.output.is_empty() {
                let n = this.output.len().min(buf.remaining());
                buf.put_slice(&this.output[..n]);
                this.output.advance(n);
                return Poll::Ready(Ok(()));
            }
            let mut chunk = [0u8; 16 << 10];
            let mut rb = ReadBuf::new(&mut chunk);
            match Pin::new(&mut this.inner).poll_read(cx, &mut rb) {
                Poll::Ready(Ok(())) => {
                    if rb.filled().is_empty() {
                        // End of stream: flush whatever could not be framed.
                        if !this.input.is_empty() {
                            this.output.put(this.input.split());
                            continue;
                        }
                        return Poll::Ready(Ok(()));
                    }
                    this.input.extend_from_slice(rb.filled());
                    this.process();
                }
                other => return other,
            }
        }
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for AuthorityFix<IO> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = BytesMut::new();
        put_frame_header(&mut out, payload.len(), kind, flags, stream);
        out.put_slice(payload);
        out.to_vec()
    }

    /// Runs bytes through the fixer in chunks of `step`, returning what the server sees.
    fn through(input: &[u8], step: usize) -> Vec<u8> {
        let mut f = AuthorityFix::new(());
        let mut out = Vec::new();
        for chunk in input.chunks(step) {
            f.input.extend_from_slice(chunk);
            f.process();
            out.extend_from_slice(&f.output.split());
        }
        out
    }

    /// Decodes the header blocks a server would see.
    fn server_view(bytes: &[u8]) -> Vec<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut dec = loona_hpack::Decoder::new();
        let mut rest = &bytes[PREFACE.len()..];
        let mut blocks = Vec::new();
        let mut block = Vec::new();
        while rest.len() >= 9 {
            let len = u32::from_be_bytes([0, rest[0], rest[1], rest[2]]) as usize;
            let (kind, flags) = (rest[3], rest[4]);
            let mut payload = &rest[9..9 + len];
            if kind == HEADERS && flags & PRIORITY != 0 {
                payload = &payload[5..];
            }
            if kind == HEADERS || kind == CONTINUATION {
                block.extend_from_slice(payload);
                if flags & END_HEADERS != 0 {
                    blocks.push(
                        dec.decode(&block)
                            .unwrap()
                            .into_iter()
                            .map(|(n, v)| (n.to_vec(), v.to_vec()))
                            .collect(),
                    );
                    block.clear();
                }
            }
            rest = &rest[9 + len..];
        }
        blocks
    }

    fn request(authority: &str, path: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
        [
            (":method", "POST"),
            (":scheme", "http"),
            (":authority", authority),
            (":path", path),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
        ]
        .iter()
        .map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect()
    }

    fn client_connection(requests: &[Vec<(Vec<u8>, Vec<u8>)>]) -> Vec<u8> {
        let mut enc = loona_hpack::Encoder::new();
        let mut out = PREFACE.to_vec();
        out.extend(frame(0x4, 0, 0, &[])); // SETTINGS
        for (i, r) in requests.iter().enumerate() {
            let block = enc.encode(r.iter().map(|(n, v)| (&n[..], &v[..])));
            let stream = 1 + 2 * i as u32;
            // Split the block over HEADERS + CONTINUATION to exercise both.
            let (a, b) = block.split_at(block.len() / 2);
            out.extend(frame(HEADERS, 0, stream, a));
            out.extend(frame(CONTINUATION, END_HEADERS, stream, b));
            out.extend(frame(0x0, END_STREAM, stream, b"\0\0\0\0\0")); // DATA
        }
        out
    }

    #[test]
    fn url_authorities_are_repaired_and_later_blocks_stay_consistent() {
        let reqs = vec![
            request("127.0.0.1:2379", "/etcdserverpb.KV/Range"),
            request("http://127.0.0.1:2379", "/etcdserverpb.Maintenance/Status"),
            request("http://127.0.0.1:2379", "/etcdserverpb.Maintenance/Status"),
            request("127.0.0.1:2379", "/etcdserverpb.KV/Put"),
        ];
        let input = client_connection(&reqs);
        for step in [1, 7, 64, input.len()] {
            let seen = server_view(&through(&input, step));
            assert_eq!(seen.len(), 4, "step {step}");
            for (got, sent) in seen.iter().zip(&reqs) {
                let mut want = sent.clone();
                for (n, v) in &mut want {
                    if n == b":authority" {
                        *v = b"127.0.0.1:2379".to_vec();
                    }
                }
                assert_eq!(got, &want, "step {step}");
            }
        }
    }

    #[test]
    fn well_formed_connections_pass_byte_for_byte() {
        let input = client_connection(&[
            request("127.0.0.1:2379", "/etcdserverpb.KV/Range"),
            request("localhost:2379", "/etcdserverpb.KV/Put"),
        ]);
        assert_eq!(through(&input, 5), input);
        let http1 = b"GET /v1/kv/a HTTP/1.1\r\nHost: h\r\n\r\n".to_vec();
        assert_eq!(through(&http1, 3), http1);
    }

    #[test]
    fn garbage_is_forwarded_for_the_server_to_reject() {
        let mut input = PREFACE.to_vec();
        input.extend(frame(HEADERS, END_HEADERS, 1, &[0xff, 0xff, 0xff]));
        input.extend(frame(0x0, 0, 1, b"x"));
        assert_eq!(through(&input, 4), input);
    }
}
