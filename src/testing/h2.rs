//! The answers h2 gives on its own, below the service, rewritten to carry a Clarifai code.
//!
//! h2 reads a request's header list before any service sees the request, and answers one over
//! `SETTINGS_MAX_HEADER_LIST_SIZE` itself:
//! - up to four times the limit, with an HTTP `431` on that stream and nothing else (a gRPC
//!   client reads an HTTP error without `grpc-status`, and no Clarifai code);
//! - past that (or a single field over the limit, or more CONTINUATION frames than the limit
//!   needs), with a `GOAWAY` that closes the connection before the stream was processed, which
//!   gRPC clients read as `UNAVAILABLE` and retry, though the request can never succeed.
//!
//! It also resets a request whose header block is malformed (a missing or misplaced
//! pseudo-header, a connection-specific header, `te` other than `trailers`) with a bare
//! `RST_STREAM(PROTOCOL_ERROR)`, or, for a block it cannot decode (an upper-case name), with a
//! `GOAWAY(PROTOCOL_ERROR)`.
//!
//! h2 lets no service take part in any of these, so [`H2Answers`] does it on the connection's
//! bytes:
//! - the `431` becomes a gRPC trailers-only answer on the same stream,
//!   `RPC_MAX_MESSAGE_SIZE_EXCEEDED` (40033: `RESOURCE_EXHAUSTED`, not retryable), and the
//!   `RST_STREAM` h2 sends after it says `NO_ERROR` (RFC 9113, section 8.1: a complete answer
//!   sent before the request ended). The connection and its other streams go on.
//! - before the `GOAWAY`, the stream whose header list caused it gets the same answer, and the
//!   `GOAWAY` names it as processed; the connection then closes, after a short linger so the
//!   answer is read rather than lost to a TCP reset.
//! - a malformed request gets `CONN_BAD_REQUEST_FORMAT` (11100: `INVALID_ARGUMENT`) the same
//!   ways: before its `RST_STREAM` (then `NO_ERROR`) if no answer had begun on the stream, or
//!   before the `GOAWAY`.
//! - a client whose first bytes are not the HTTP/2 connection preface (HTTP/1.1, TLS, garbage)
//!   gets 11100 in HTTP/1.1 instead of h2's `SETTINGS` frame and a silent close.
//!
//! To recognise the `431` whatever came before it on the connection, the HPACK encoder of the
//! server must not use its dynamic table: every client `SETTINGS` frame gets
//! `SETTINGS_HEADER_TABLE_SIZE = 0` appended (the last value of a setting in a frame wins). Each
//! header block the server sends is then literal or from the static table, a few bytes longer.
//! The answers themselves use only literals and the static table, so they leave the client's
//! HPACK state as it was.
//!
//! Incoming bytes are handed to h2 one frame at a time: h2 decodes every whole frame it holds
//! before it reads again, so the last frame handed over is the one a connection error is about.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const PREFACE_LEN: usize = PREFACE.len();
const HEAD_LEN: usize = 9;

const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const GOAWAY: u8 = 0x7;
const CONTINUATION: u8 = 0x9;

const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;

const NO_ERROR: u32 = 0x0;
const PROTOCOL_ERROR: u32 = 0x1;
const COMPRESSION_ERROR: u32 = 0x9;
const ENHANCE_YOUR_CALM: u32 = 0xb;

/// `SETTINGS_HEADER_TABLE_SIZE = 0`, as appended to each client `SETTINGS` frame.
const NO_TABLE: [u8; 6] = [0, 1, 0, 0, 0, 0];
/// The smallest `SETTINGS_MAX_FRAME_SIZE` a peer may have: a frame payload this long is always
/// accepted.
const MIN_MAX_FRAME: usize = 16_384;
/// HEADERS frames with END_STREAM and a payload at most this long are looked at before they go
/// out; h2's `431` is a few bytes.
const SMALL_BLOCK: usize = 32;
/// The HPACK Huffman code of `431` (RFC 7541, appendix B), as h2 writes it.
const HUFFMAN_431: [u8; 3] = [0x69, 0x90, 0xff];
/// How long a connection closed after an answer keeps reading (and dropping) what the client
/// still sends, so that its close does not reset the connection before the answer is read.
const LINGER: Duration = Duration::from_secs(2);
/// How much it reads in that time, at most.
const LINGER_BYTES: usize = 16 << 20;
/// How many streams with an answer under way are tracked; past that, a reset of one more is
/// passed on as it is.
const MAX_TRACKED: usize = 1024;
/// How much is read from the socket at a time.
const READ_CHUNK: usize = 8 * 1024;

/// An HTTP/2 server connection whose own answers (to over-size header lists, malformed
/// requests, a client that does not speak HTTP/2) carry a Clarifai code (see the module's
/// documentation).
#[derive(Debug)]
pub(crate) struct H2Answers<T> {
    io: T,
    /// The header list limit h2 enforces, named in the answers.
    limit: u32,
    inbound: Inbound,
    outbound: Outbound,
    linger: Option<Linger>,
}

/// The client's bytes on their way to h2.
#[derive(Debug)]
struct Inbound {
    /// What is read from the socket: `raw[pos..end]` is not handed over yet. Allocated at the
    /// first read ([`READ_CHUNK`] bytes), then kept for the connection's life.
    raw: Vec<u8>,
    pos: usize,
    end: usize,
    /// Bytes of the connection preface still to pass.
    preface_left: usize,
    /// Whether the client's first bytes were not the HTTP/2 connection preface.
    not_h2: bool,
    head: [u8; HEAD_LEN],
    head_len: usize,
    /// Bytes to hand over before anything else from `raw`: a frame head (changed) and a
    /// setting appended.
    emit: Vec<u8>,
    emit_pos: usize,
    payload_left: usize,
    /// Whether the frame being handed over is a client `SETTINGS` frame.
    append: bool,
    kind: u8,
    stream: u32,
    /// The kind and stream of the last whole frame handed over.
    last_frame: Option<(u8, u32)>,
}

/// h2's bytes on their way to the client.
#[derive(Debug, Default)]
struct Outbound {
    /// Ready to write to the socket.
    out: Vec<u8>,
    out_pos: usize,
    head: [u8; HEAD_LEN],
    head_len: usize,
    payload_left: usize,
    /// The payload of a frame held back to be looked at, with its head.
    held: Vec<u8>,
    /// Whether the frame under way is held back.
    holding: bool,
    /// The stream whose `431` was rewritten: h2's `RST_STREAM` on it follows.
    answered: Option<u32>,
    /// Streams whose answer has begun (HEADERS out) and not ended: at most [`MAX_TRACKED`].
    responding: Vec<u32>,
    /// The stream of the `RST_STREAM` going out, if its answer had begun.
    reset_while_responding: Option<u32>,
    /// Whether an answer went out that closes the connection (before a `GOAWAY`, or in HTTP/1.1):
    /// the connection then lingers.
    closing_answered: bool,
}

#[derive(Debug)]
struct Linger {
    deadline: Pin<Box<tokio::time::Sleep>>,
    read: usize,
    done: bool,
}

impl<T> H2Answers<T> {
    /// Wraps a server connection whose h2 enforces `max_header_list_size`.
    pub(crate) fn new(io: T, max_header_list_size: u32) -> H2Answers<T> {
        H2Answers {
            io,
            limit: max_header_list_size,
            inbound: Inbound {
                raw: Vec::new(),
                pos: 0,
                end: 0,
                preface_left: PREFACE_LEN,
                not_h2: false,
                head: [0; HEAD_LEN],
                head_len: 0,
                emit: Vec::new(),
                emit_pos: 0,
                payload_left: 0,
                append: false,
                kind: 0,
                stream: 0,
                last_frame: None,
            },
            outbound: Outbound::default(),
            linger: None,
        }
    }
}

impl Inbound {
    /// Hands over what `raw` holds, into `buf`, up to the end of the frame under way. `true`
    /// when a frame (or the preface) ended: the caller then returns, so h2 acts on it first.
    fn hand_over(&mut self, buf: &mut ReadBuf<'_>) -> bool {
        if self.not_h2 {
            return false;
        }
        loop {
            if self.emit_pos < self.emit.len() {
                let n = (self.emit.len() - self.emit_pos).min(buf.remaining());
                buf.put_slice(&self.emit[self.emit_pos..self.emit_pos + n]);
                self.emit_pos += n;
                if self.emit_pos < self.emit.len() {
                    return false;
                }
                self.emit.clear();
                self.emit_pos = 0;
                if self.head_len == HEAD_LEN && self.payload_left == 0 {
                    if self.take_append() {
                        continue;
                    }
                    return self.frame_done();
                }
            }
            let available = self.end - self.pos;
            if available == 0 || buf.remaining() == 0 {
                return false;
            }
            if self.preface_left > 0 {
                let n = self.preface_left.min(available).min(buf.remaining());
                let at = PREFACE_LEN - self.preface_left;
                if self.raw[self.pos..self.pos + n] != PREFACE[at..at + n] {
                    self.not_h2 = true;
                    return false;
                }
                buf.put_slice(&self.raw[self.pos..self.pos + n]);
                self.pos += n;
                self.preface_left -= n;
                if self.preface_left == 0 {
                    return true;
                }
                continue;
            }
            if self.head_len < HEAD_LEN {
                let n = (HEAD_LEN - self.head_len).min(available);
                self.head[self.head_len..self.head_len + n]
                    .copy_from_slice(&self.raw[self.pos..self.pos + n]);
                self.pos += n;
                self.head_len += n;
                if self.head_len == HEAD_LEN {
                    self.start_frame();
                }
                continue;
            }
            let n = self.payload_left.min(available).min(buf.remaining());
            buf.put_slice(&self.raw[self.pos..self.pos + n]);
            self.pos += n;
            self.payload_left -= n;
            if self.payload_left == 0 {
                if self.take_append() {
                    continue;
                }
                return self.frame_done();
            }
        }
    }

    /// A whole frame head has arrived: queue it (changed for a client `SETTINGS` frame).
    fn start_frame(&mut self) {
        let mut head = self.head;
        let len = frame_len(&head);
        self.kind = head[3];
        self.stream = stream_id(&head[5..9]);
        // A client SETTINGS frame whose length is valid, and which stays within any frame size
        // with one more setting, ends with SETTINGS_HEADER_TABLE_SIZE = 0.
        self.append = self.kind == SETTINGS
            && head[4] & ACK == 0
            && self.stream == 0
            && len.is_multiple_of(6)
            && len + NO_TABLE.len() <= MIN_MAX_FRAME;
        if self.append {
            let longer = (len + NO_TABLE.len()) as u32;
            head[..3].copy_from_slice(&longer.to_be_bytes()[1..]);
        }
        self.emit.extend_from_slice(&head);
        self.payload_left = len;
    }

    /// At the end of a client `SETTINGS` frame's payload: queues the setting appended to it,
    /// once; `true` if it did.
    fn take_append(&mut self) -> bool {
        if std::mem::take(&mut self.append) {
            self.emit.extend_from_slice(&NO_TABLE);
            return true;
        }
        false
    }

    /// The frame under way has been handed over whole.
    fn frame_done(&mut self) -> bool {
        self.last_frame = Some((self.kind, self.stream));
        self.head_len = 0;
        self.append = false;
        true
    }
}

impl Outbound {
    /// Takes h2's bytes into `out`, holding back the frames to look at until they are whole.
    fn take(&mut self, mut bytes: &[u8], limit: u32, last_in: Option<(u8, u32)>) {
        while !bytes.is_empty() {
            if self.head_len < HEAD_LEN {
                let n = (HEAD_LEN - self.head_len).min(bytes.len());
                self.head[self.head_len..self.head_len + n].copy_from_slice(&bytes[..n]);
                self.head_len += n;
                bytes = &bytes[n..];
                if self.head_len < HEAD_LEN {
                    return;
                }
                self.payload_left = frame_len(&self.head);
                self.track();
                if self.looked_at() {
                    self.holding = true;
                } else {
                    self.out.extend_from_slice(&self.head);
                }
                if self.payload_left == 0 {
                    self.frame_done(limit, last_in);
                }
                continue;
            }
            let n = self.payload_left.min(bytes.len());
            if self.holding {
                self.held.extend_from_slice(&bytes[..n]);
            } else {
                self.out.extend_from_slice(&bytes[..n]);
            }
            bytes = &bytes[n..];
            self.payload_left -= n;
            if self.payload_left == 0 {
                self.frame_done(limit, last_in);
            }
        }
    }

    /// Notes which streams have an answer under way, from the head of a frame going out.
    fn track(&mut self) {
        let (kind, flags) = (self.head[3], self.head[4]);
        let stream = stream_id(&self.head[5..9]);
        let ends = match kind {
            HEADERS | DATA => flags & END_STREAM != 0,
            RST_STREAM => true,
            _ => return,
        };
        let at = self.responding.iter().position(|s| *s == stream);
        if kind == RST_STREAM {
            self.reset_while_responding = at.map(|_| stream);
        }
        match (ends, at) {
            (true, Some(at)) => {
                self.responding.swap_remove(at);
            }
            (false, None) if kind == HEADERS && self.responding.len() < MAX_TRACKED => {
                self.responding.push(stream);
            }
            _ => {}
        }
    }

    /// Whether the frame whose head has arrived is held back: a short HEADERS frame that ends
    /// its stream, a `RST_STREAM`, a `GOAWAY`.
    fn looked_at(&self) -> bool {
        let (kind, flags, len) = (self.head[3], self.head[4], frame_len(&self.head));
        match kind {
            HEADERS => {
                flags & (END_STREAM | END_HEADERS) == END_STREAM | END_HEADERS
                    && flags & (PADDED | PRIORITY) == 0
                    && len <= SMALL_BLOCK
            }
            RST_STREAM => len == 4,
            GOAWAY => (8..=MIN_MAX_FRAME).contains(&len),
            _ => false,
        }
    }

    /// A frame has come whole: write it out, or what stands for it.
    fn frame_done(&mut self, limit: u32, last_in: Option<(u8, u32)>) {
        self.head_len = 0;
        if !std::mem::take(&mut self.holding) {
            return;
        }
        let mut payload = std::mem::take(&mut self.held);
        let stream = stream_id(&self.head[5..9]);
        match self.head[3] {
            HEADERS => {
                if let Some(updates) = h2_431(&payload) {
                    let status = header_list_too_large(limit, false);
                    if let Some(answer) = answer(stream, &payload[..updates], &status) {
                        self.out.extend_from_slice(&answer);
                        self.answered = Some(stream);
                        self.keep(payload);
                        return;
                    }
                }
            }
            RST_STREAM => {
                let code = u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]);
                if code == PROTOCOL_ERROR && self.answered == Some(stream) {
                    payload.copy_from_slice(&NO_ERROR.to_be_bytes());
                    self.answered = None;
                } else if code == PROTOCOL_ERROR
                    && !stream.is_multiple_of(2)
                    && !self.was_responding(stream)
                {
                    // h2 resets a request it cannot read (a malformed header block) with
                    // nothing else: answer it first, then the reset only stops the client.
                    if let Some(answer) = answer(stream, &[], &malformed_request(false)) {
                        self.out.extend_from_slice(&answer);
                        payload.copy_from_slice(&NO_ERROR.to_be_bytes());
                    }
                }
            }
            _ => {
                if let Some((stream, status)) = goaway_over_headers(&payload, last_in, limit) {
                    // The answer is literals and static entries only: whatever the state of the
                    // client's HPACK table, it reads the same and leaves it as it was.
                    if let Some(answer) = answer(stream, &[], &status) {
                        self.out.extend_from_slice(&answer);
                        payload[..4].copy_from_slice(&stream.to_be_bytes());
                        self.closing_answered = true;
                    }
                }
            }
        }
        self.out.extend_from_slice(&self.head);
        self.out.extend_from_slice(&payload);
        self.keep(payload);
    }

    /// Whether an answer to `stream` had begun before the reset going out (which
    /// [`Outbound::track`] already took off the streams tracked).
    fn was_responding(&self, stream: u32) -> bool {
        self.reset_while_responding == Some(stream)
    }

    /// Keeps the buffer of a held frame for the next one.
    fn keep(&mut self, mut payload: Vec<u8>) {
        payload.clear();
        self.held = payload;
    }
}

/// The stream a `GOAWAY` payload is about, and the status to answer it with, when h2 sends it
/// over a request's header block (the last frame handed to h2 was that stream's header block,
/// and h2 never processed the stream): a header list too large to read, or one it cannot
/// decode. `None` for any other `GOAWAY`.
fn goaway_over_headers(
    payload: &[u8],
    last_in: Option<(u8, u32)>,
    limit: u32,
) -> Option<(u32, crate::pb::Status)> {
    let last_processed = stream_id(payload.get(..4)?);
    let code = u32::from_be_bytes(payload.get(4..8)?.try_into().ok()?);
    let debug = payload.get(8..)?;
    let (kind, stream) = last_in?;
    if !(kind == HEADERS || kind == CONTINUATION)
        || stream.is_multiple_of(2)
        || stream <= last_processed
    {
        return None;
    }
    let over_size = code == COMPRESSION_ERROR
        || (code == ENHANCE_YOUR_CALM
            && (debug == b"header_list_way_too_large" || debug == b"too_many_continuations"));
    if over_size {
        Some((stream, header_list_too_large(limit, true)))
    } else if code == PROTOCOL_ERROR {
        Some((stream, malformed_request(true)))
    } else {
        None
    }
}

/// Whether an HPACK block is h2's own `:status: 431` and nothing else, as h2 writes it without
/// a dynamic table: then the length of the table size updates in front of it.
fn h2_431(block: &[u8]) -> Option<usize> {
    let mut at = 0;
    while block.get(at)? & 0xe0 == 0x20 {
        at += hpack_int(&block[at..], 5)?.1;
    }
    let updates = at;
    // A literal without indexing (0000) or never indexed (0001), with a name from the static
    // table: one of the `:status` entries (8 to 14).
    if block[at] & 0xe0 != 0 {
        return None;
    }
    let (name, n) = hpack_int(&block[at..], 4)?;
    if !(8..=14).contains(&name) {
        return None;
    }
    at += n;
    let huffman = block.get(at)? & 0x80 != 0;
    let (len, n) = hpack_int(&block[at..], 7)?;
    at += n;
    let value = block.get(at..at.checked_add(len)?)?;
    if at + len != block.len() {
        return None;
    }
    let is_431 = if huffman {
        value == HUFFMAN_431
    } else {
        value == b"431"
    };
    is_431.then_some(updates)
}

/// An HPACK integer with an `n`-bit prefix (RFC 7541, section 5.1): the value and the bytes it
/// takes. `None` when incomplete or too large.
fn hpack_int(bytes: &[u8], n: u32) -> Option<(usize, usize)> {
    let max = (1usize << n) - 1;
    let mut value = usize::from(*bytes.first()?) & max;
    if value < max {
        return Some((value, 1));
    }
    for (i, byte) in bytes.iter().enumerate().skip(1).take(4) {
        value = value.checked_add(usize::from(byte & 0x7f) << (7 * (i - 1)))?;
        if byte & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

/// Appends an HPACK integer with a 7-bit prefix and the first bit clear.
fn put_hpack_int(out: &mut Vec<u8>, mut value: usize) {
    if value < 0x7f {
        out.push(value as u8);
        return;
    }
    out.push(0x7f);
    value -= 0x7f;
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Appends a header as an HPACK literal without indexing, with a literal name and no Huffman
/// coding: it leaves the decoder's table as it was.
fn put_literal(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.push(0x00);
    put_hpack_int(out, name.len());
    out.extend_from_slice(name);
    put_hpack_int(out, value.len());
    out.extend_from_slice(value);
}

/// The status a request h2 cannot read is answered with (a malformed header block).
fn malformed_request(closing: bool) -> crate::pb::Status {
    let closing = if closing {
        "; the connection is closed"
    } else {
        ""
    };
    super::service::bad_request(format!(
        "the request is not valid HTTP/2: its header block is malformed (h2 answered \
         PROTOCOL_ERROR: a missing or misplaced pseudo-header, an invalid or connection-specific \
         header, te other than trailers, ...){closing}"
    ))
}

/// The status an over-size header list is answered with.
pub(crate) fn header_list_too_large(limit: u32, closing: bool) -> crate::pb::Status {
    let closing = if closing {
        "; the connection is closed"
    } else {
        ""
    };
    super::service::request_too_large(format!(
        "the request's header list is larger than this server reads: {limit} bytes \
         (HTTP/2 SETTINGS_MAX_HEADER_LIST_SIZE){closing}"
    ))
}

/// A whole HEADERS frame answering `stream` with a gRPC trailers-only answer carrying `status`;
/// `updates` (HPACK table size updates h2 put first) lead the block. `None` if it would not fit
/// in a frame any peer accepts.
fn answer(stream: u32, updates: &[u8], status: &crate::pb::Status) -> Option<Vec<u8>> {
    let status = tonic::Status::from(status);
    let mut headers = http::HeaderMap::new();
    status.add_header(&mut headers).ok()?;
    let mut block = updates.to_vec();
    block.push(0x88); // :status: 200, from the static table
    put_literal(&mut block, b"content-type", b"application/grpc");
    for (name, value) in &headers {
        put_literal(&mut block, name.as_str().as_bytes(), value.as_bytes());
    }
    if block.len() > MIN_MAX_FRAME {
        return None;
    }
    Some(frame(HEADERS, END_STREAM | END_HEADERS, stream, &block))
}

/// A whole frame.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as u32).to_be_bytes()[1..].to_vec();
    out.extend_from_slice(&[kind, flags]);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// The server's side of the connection preface: a `SETTINGS` frame with no setting.
pub(crate) fn server_preface() -> Vec<u8> {
    frame(SETTINGS, 0, 0, &[])
}

/// What a client sent so far, read as the start of an HTTP/2 connection: `Err` if it is not one
/// (no connection preface), `Ok(None)` until the preface is whole, `Ok(Some(None))` until a
/// request stream opens, then `Ok(Some(Some(id)))` with the first request's stream.
pub(crate) fn first_stream(bytes: &[u8]) -> Result<Option<Option<u32>>, NotHttp2> {
    let n = bytes.len().min(PREFACE_LEN);
    if bytes[..n] != PREFACE[..n] {
        return Err(NotHttp2);
    }
    if n < PREFACE_LEN {
        return Ok(None);
    }
    let mut at = PREFACE_LEN;
    while let Some(head) = bytes.get(at..at + HEAD_LEN) {
        let head: &[u8; HEAD_LEN] = head.try_into().map_err(|_| NotHttp2)?;
        let stream = stream_id(&head[5..9]);
        if head[3] == HEADERS && !stream.is_multiple_of(2) {
            return Ok(Some(Some(stream)));
        }
        at += HEAD_LEN + frame_len(head);
    }
    Ok(Some(None))
}

/// The bytes a client sent are not the start of an HTTP/2 connection.
#[derive(Debug)]
pub(crate) struct NotHttp2;

/// A refusal of the connection: `status` as a gRPC trailers-only answer on `stream`, then a
/// `GOAWAY` that names it as the last stream processed (later ones may go elsewhere).
pub(crate) fn refusal(stream: u32, status: &crate::pb::Status) -> Vec<u8> {
    let mut out = answer(stream, &[], status).unwrap_or_default();
    let mut goaway = stream.to_be_bytes().to_vec();
    goaway.extend_from_slice(&NO_ERROR.to_be_bytes());
    out.extend(frame(GOAWAY, 0, 0, &goaway));
    out
}

fn frame_len(head: &[u8; HEAD_LEN]) -> usize {
    (usize::from(head[0]) << 16) | (usize::from(head[1]) << 8) | usize::from(head[2])
}

fn stream_id(bytes: &[u8]) -> u32 {
    u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) & 0x7fff_ffff
}

impl<T: AsyncRead + AsyncWrite + Unpin> H2Answers<T> {
    /// Writes what `out` holds; `Ready(Ok)` once it is all out. Until the client's connection
    /// preface has been read whole, h2's bytes (its `SETTINGS`) are held back: a client that
    /// does not speak HTTP/2 gets an HTTP/1.1 answer instead.
    fn poll_out(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.inbound.preface_left > 0 && !self.inbound.not_h2 {
            return Poll::Ready(Ok(()));
        }
        let outbound = &mut self.outbound;
        while outbound.out_pos < outbound.out.len() {
            let n = std::task::ready!(
                Pin::new(&mut self.io).poll_write(cx, &outbound.out[outbound.out_pos..])
            )?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            outbound.out_pos += n;
        }
        outbound.out.clear();
        outbound.out_pos = 0;
        if outbound.out.capacity() > 4 * READ_CHUNK {
            outbound.out = Vec::new();
        }
        Poll::Ready(Ok(()))
    }

    /// After an answer that closes the connection: sends the FIN, then reads and drops what the
    /// client still sends, for a while, so that closing does not reset the connection and throw
    /// the answer away before the client reads it. `Ready` when done.
    fn poll_linger(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.linger.is_none() {
            std::task::ready!(Pin::new(&mut self.io).poll_shutdown(cx))?;
            self.linger = Some(Linger {
                deadline: Box::pin(tokio::time::sleep(LINGER)),
                read: 0,
                done: false,
            });
        }
        let Some(linger) = self.linger.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        let mut sink = [0u8; 4096];
        while !linger.done {
            if linger.read >= LINGER_BYTES || linger.deadline.as_mut().poll(cx).is_ready() {
                linger.done = true;
                break;
            }
            let mut read = ReadBuf::new(&mut sink);
            match Pin::new(&mut self.io).poll_read(cx, &mut read) {
                Poll::Ready(Ok(())) if !read.filled().is_empty() => {
                    linger.read += read.filled().len();
                }
                // The client closed, or the connection failed: done either way.
                Poll::Ready(_) => linger.done = true,
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }

    /// The client does not speak HTTP/2: answers `CONN_BAD_REQUEST_FORMAT` in HTTP/1.1 (in
    /// place of h2's `SETTINGS`), lingers, then tells h2 the connection ended.
    fn poll_not_h2(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.outbound.closing_answered {
            self.outbound.closing_answered = true;
            self.outbound.out = super::limits::http1_answer(&super::service::bad_request(
                "this port speaks gRPC: HTTP/2 with prior knowledge (no HTTP/1.1, no TLS); the \
                 request did not start with the HTTP/2 connection preface"
                    .to_owned(),
            ));
            self.outbound.out_pos = 0;
        }
        std::task::ready!(self.poll_out(cx))?;
        self.poll_linger(cx)
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncRead for H2Answers<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        loop {
            if this.inbound.not_h2 {
                if buf.filled().len() > before {
                    return Poll::Ready(Ok(()));
                }
                // Nothing more reaches h2: it reads the end of the connection once answered.
                return this.poll_not_h2(cx);
            }
            let preface_pending = this.inbound.preface_left > 0;
            let ended = this.inbound.hand_over(buf);
            if preface_pending && this.inbound.preface_left == 0 {
                // The preface is whole: h2's held-back SETTINGS can go now.
                if let Poll::Ready(Err(e)) = this.poll_out(cx) {
                    return Poll::Ready(Err(e));
                }
            }
            if this.inbound.not_h2 {
                continue;
            }
            if ended || buf.remaining() == 0 {
                return Poll::Ready(Ok(()));
            }
            if buf.filled().len() > before {
                // Something was handed over: h2 reads again for the rest.
                return Poll::Ready(Ok(()));
            }
            // All of `raw` was handed over: read the next bytes into it.
            let inbound = &mut this.inbound;
            if inbound.raw.is_empty() {
                inbound.raw = vec![0; READ_CHUNK];
            }
            let mut read = ReadBuf::new(&mut inbound.raw);
            std::task::ready!(Pin::new(&mut this.io).poll_read(cx, &mut read))?;
            let n = read.filled().len();
            if n == 0 {
                return Poll::Ready(Ok(()));
            }
            inbound.pos = 0;
            inbound.end = n;
        }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncWrite for H2Answers<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.inbound.not_h2 {
            // h2 has nothing to say to a client that does not speak HTTP/2.
            return Poll::Ready(Ok(buf.len()));
        }
        std::task::ready!(this.poll_out(cx))?;
        let n = buf.len().min(4 * READ_CHUNK);
        this.outbound
            .take(&buf[..n], this.limit, this.inbound.last_frame);
        // Start writing now; what does not go out now goes on the next write or flush.
        if let Poll::Ready(Err(e)) = this.poll_out(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        std::task::ready!(this.poll_out(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.inbound.not_h2 {
            return this.poll_not_h2(cx);
        }
        std::task::ready!(this.poll_out(cx))?;
        if this.outbound.closing_answered {
            // The client is likely still sending the header list that was refused.
            this.poll_linger(cx)
        } else {
            Pin::new(&mut this.io).poll_shutdown(cx)
        }
    }
}

impl<T: tonic::transport::server::Connected> tonic::transport::server::Connected for H2Answers<T> {
    type ConnectInfo = T::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.io.connect_info()
    }
}

#[cfg(any(test, fuzzing))]
/// Hands `bytes` to an `Inbound` in chunks of `chunk` bytes, reading into buffers of
/// `room` bytes; returns what came out, and where each read ended.
fn through_inbound(bytes: &[u8], chunk: usize, room: usize) -> (Vec<u8>, Vec<usize>) {
    let mut inbound = H2Answers::new((), 16_384).inbound;
    let (mut out, mut ends) = (Vec::new(), Vec::new());
    for piece in bytes.chunks(chunk) {
        inbound.raw = piece.to_vec();
        inbound.pos = 0;
        inbound.end = piece.len();
        loop {
            let mut space = vec![0u8; room];
            let mut buf = ReadBuf::new(&mut space);
            inbound.hand_over(&mut buf);
            if buf.filled().is_empty() {
                break;
            }
            out.extend_from_slice(buf.filled());
            ends.push(out.len());
        }
    }
    (out, ends)
}

#[cfg(any(test, fuzzing))]
/// Sends `bytes` through an `Outbound` in chunks; returns what goes out.
fn through_outbound(bytes: &[u8], chunk: usize, last_in: Option<(u8, u32)>) -> Vec<u8> {
    let mut outbound = Outbound::default();
    for piece in bytes.chunks(chunk) {
        outbound.take(piece, 16_384, last_in);
    }
    outbound.out
}

/// Drives both directions with `data`, checking what must hold whatever the bytes (for
/// `fuzz/fuzz_targets/h2_answers.rs`).
#[cfg(fuzzing)]
pub(crate) fn fuzz(data: &[u8]) {
    let [chunk, room, kind, stream, preface, rest @ ..] = data else {
        return;
    };
    let (chunk, room) = (usize::from(*chunk).max(1), usize::from(*room).max(1));
    let (client, server) = rest.split_at(rest.len() / 2);
    let mut input = if preface & 1 == 1 {
        PREFACE.to_vec()
    } else {
        Vec::new()
    };
    input.extend_from_slice(client);
    let (out, _) = through_inbound(&input, chunk, room);
    // Only SETTINGS frames grow, by one setting each.
    assert!(out.len() <= input.len() + NO_TABLE.len() * (input.len() / HEAD_LEN + 1));
    if !input.starts_with(PREFACE) {
        assert!(out.len() < PREFACE_LEN && input.starts_with(&out));
    }
    let _ = through_outbound(server, chunk, Some((*kind % 10, u32::from(*stream))));
    let _ = first_stream(server);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn client_settings_end_with_no_table_and_frames_go_over_one_at_a_time() {
        let mut input = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        let settings = frame(SETTINGS, 0, 0, &[0, 3, 0, 0, 0, 100]);
        let empty = frame(SETTINGS, 0, 0, &[]);
        let ack = frame(SETTINGS, ACK, 0, &[]);
        let headers = frame(HEADERS, END_HEADERS, 1, &[0x83, 0x86]);
        let data = frame(0, END_STREAM, 1, &[7; 40]);
        for f in [&settings, &empty, &ack, &headers, &data] {
            input.extend_from_slice(f);
        }
        let mut want = input[..PREFACE_LEN].to_vec();
        want.extend(frame(
            SETTINGS,
            0,
            0,
            &[0, 3, 0, 0, 0, 100, 0, 1, 0, 0, 0, 0],
        ));
        let mut boundaries = vec![PREFACE_LEN, want.len()];
        // An empty SETTINGS frame (as some clients send) gets the setting too.
        want.extend(frame(SETTINGS, 0, 0, &NO_TABLE));
        boundaries.push(want.len());
        for f in [&ack, &headers, &data] {
            want.extend_from_slice(f);
            boundaries.push(want.len());
        }
        for chunk in [1, 2, 5, 9, 10, 33, 4096] {
            for room in [1, 7, 64, 8192] {
                let (out, ends) = through_inbound(&input, chunk, room);
                assert_eq!(out, want, "chunk {chunk}, room {room}");
                // No read hands over bytes of two frames.
                let mut start = 0;
                for end in ends {
                    let frame_end = boundaries.iter().find(|b| **b > start).unwrap();
                    assert!(
                        end <= *frame_end,
                        "chunk {chunk}, room {room}: {start}..{end}"
                    );
                    start = end;
                }
            }
        }
    }

    #[test]
    fn after_bytes_that_are_not_the_preface_nothing_reaches_h2() {
        // The second byte alone would match the preface's first (a case proptest found).
        assert_eq!(through_inbound(&[0, b'P'], 1, 1).0, b"");
        assert_eq!(through_inbound(b"PRX * HTTP/2.0", 1, 64).0, b"PR");
        assert_eq!(through_inbound(b"PRX * HTTP/2.0", 64, 64).0, b"");
    }

    #[test]
    fn the_last_frame_handed_over_is_known() {
        let mut input = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        input.extend(frame(HEADERS, 0, 5, &[0x83]));
        input.extend(frame(CONTINUATION, 0, 5, &[0x86]));
        let mut inbound = H2Answers::new((), 16_384).inbound;
        inbound.end = input.len();
        inbound.raw = input;
        let mut space = [0u8; 1024];
        let mut seen = Vec::new();
        loop {
            let mut buf = ReadBuf::new(&mut space);
            inbound.hand_over(&mut buf);
            if buf.filled().is_empty() {
                break;
            }
            seen.push(inbound.last_frame);
        }
        assert_eq!(
            seen,
            [None, Some((HEADERS, 5)), Some((CONTINUATION, 5))],
            "one frame per read"
        );
    }

    /// h2's 431 as it writes it without a dynamic table, after a table size update.
    fn h2_431_frame(stream: u32) -> Vec<u8> {
        let mut block = vec![0x20, 0x08, 0x83];
        block.extend_from_slice(&HUFFMAN_431);
        frame(HEADERS, END_STREAM | END_HEADERS, stream, &block)
    }

    #[test]
    fn h2s_431_becomes_a_coded_trailers_only_answer_and_its_reset_no_error() {
        let data = frame(0, 0, 1, &[1; 100]);
        let mut input = data.clone();
        input.extend(h2_431_frame(3));
        input.extend(frame(RST_STREAM, 0, 3, &PROTOCOL_ERROR.to_be_bytes()));
        let mut want = data;
        want.extend(answer(3, &[0x20], &header_list_too_large(16_384, false)).unwrap());
        want.extend(frame(RST_STREAM, 0, 3, &NO_ERROR.to_be_bytes()));
        for chunk in [1, 3, 9, 17, 4096] {
            assert_eq!(through_outbound(&input, chunk, None), want, "chunk {chunk}");
        }
        // The answer: :status 200, then literals only, with the code.
        let answer = answer(3, &[0x20], &header_list_too_large(16_384, false)).unwrap();
        assert_eq!(&answer[9..11], &[0x20, 0x88]);
        let text = String::from_utf8_lossy(&answer);
        assert!(text.contains("clarifai-status-code\u{5}40033"), "{text}");
        assert!(text.contains("grpc-status\u{1}8"), "{text}");
    }

    #[test]
    fn other_short_blocks_and_resets_go_out_as_they_are() {
        let mut input = Vec::new();
        // A raw "431" under another name, a 431 with indexing, an OK trailer, another reset.
        input.extend(frame(
            HEADERS,
            5,
            1,
            &[0x00, 0x01, b'x', 0x03, b'4', b'3', b'1'],
        ));
        input.extend(frame(HEADERS, 5, 3, &[0x48, 0x03, b'4', b'3', b'1']));
        input.extend(frame(HEADERS, 5, 5, &[0x88]));
        // A refused stream, and a malformed one whose answer had begun.
        input.extend(frame(RST_STREAM, 0, 7, &7u32.to_be_bytes()));
        input.extend(frame(HEADERS, END_HEADERS, 9, &[0x88]));
        input.extend(frame(RST_STREAM, 0, 9, &PROTOCOL_ERROR.to_be_bytes()));
        input.extend(frame(
            GOAWAY,
            0,
            0,
            &[0, 0, 0, 1, 0, 0, 0, ENHANCE_YOUR_CALM as u8],
        ));
        for chunk in [1, 8, 4096] {
            assert_eq!(
                through_outbound(&input, chunk, Some((HEADERS, 9))),
                input,
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn a_request_h2_resets_as_malformed_is_answered_first() {
        let reset = frame(RST_STREAM, 0, 11, &PROTOCOL_ERROR.to_be_bytes());
        let mut want = answer(11, &[], &malformed_request(false)).unwrap();
        want.extend(frame(RST_STREAM, 0, 11, &NO_ERROR.to_be_bytes()));
        for chunk in [1, 5, 4096] {
            assert_eq!(through_outbound(&reset, chunk, None), want, "chunk {chunk}");
        }
        let text = String::from_utf8_lossy(&want);
        assert!(text.contains("clarifai-status-code\u{5}11100"), "{text}");
        // A GOAWAY for a header block h2 cannot decode: the same, and the connection closes.
        let mut goaway = vec![0, 0, 0, 0];
        goaway.extend_from_slice(&PROTOCOL_ERROR.to_be_bytes());
        let input = frame(GOAWAY, 0, 0, &goaway);
        let mut want = answer(1, &[], &malformed_request(true)).unwrap();
        want.extend(frame(GOAWAY, 0, 0, &[0, 0, 0, 1, 0, 0, 0, 1]));
        assert_eq!(through_outbound(&input, 3, Some((HEADERS, 1))), want);
    }

    #[test]
    fn a_goaway_over_a_header_list_is_preceded_by_the_answer_on_its_stream() {
        let mut debug = vec![0, 0, 0, 3];
        debug.extend_from_slice(&ENHANCE_YOUR_CALM.to_be_bytes());
        debug.extend_from_slice(b"too_many_continuations");
        let input = frame(GOAWAY, 0, 0, &debug);
        let mut want = answer(5, &[], &header_list_too_large(16_384, true)).unwrap();
        let mut named = debug.clone();
        named[..4].copy_from_slice(&5u32.to_be_bytes());
        want.extend(frame(GOAWAY, 0, 0, &named));
        assert_eq!(through_outbound(&input, 4, Some((CONTINUATION, 5))), want);
        // Not when the last frame in was not a header block, or its stream was processed.
        assert_eq!(through_outbound(&input, 4, Some((0, 5))), input);
        assert_eq!(through_outbound(&input, 4, Some((HEADERS, 3))), input);
        assert_eq!(through_outbound(&input, 4, None), input);
    }

    #[test]
    fn the_first_stream_of_a_client_is_found_in_its_first_bytes() {
        let mut bytes = PREFACE.to_vec();
        assert!(
            first_stream(&bytes[..10]).unwrap().is_none(),
            "half a preface"
        );
        assert!(matches!(first_stream(&bytes), Ok(Some(None))));
        bytes.extend(frame(SETTINGS, 0, 0, &[0, 3, 0, 0, 0, 100]));
        bytes.extend(frame(0x8, 0, 0, &[0, 1, 0, 0]));
        assert!(matches!(first_stream(&bytes), Ok(Some(None))));
        bytes.extend(frame(HEADERS, END_HEADERS, 7, &[0x83]));
        assert!(matches!(first_stream(&bytes), Ok(Some(Some(7)))));
        for not_h2 in [
            &b"GET / HTTP/1.1\r\n"[..],
            b"\x16\x03\x01",
            b"PRI * HTTP/1.1",
        ] {
            assert!(first_stream(not_h2).is_err(), "{not_h2:?}");
        }
        // A refusal: the answer on that stream, then GOAWAY naming it.
        let status = crate::testing::service::server_busy("full".to_owned());
        let refusal = refusal(7, &status);
        assert_eq!(
            &refusal[3..9],
            &[HEADERS, END_STREAM | END_HEADERS, 0, 0, 0, 7]
        );
        let goaway = &refusal[refusal.len() - 17..];
        assert_eq!(
            &goaway[3..],
            &[GOAWAY, 0, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0]
        );
    }

    fn arb_frame(kinds: &'static [u8]) -> impl Strategy<Value = Vec<u8>> {
        (
            proptest::sample::select(kinds),
            any::<u8>(),
            0u32..6,
            proptest::collection::vec(any::<u8>(), 0..40),
        )
            .prop_map(|(kind, flags, stream, mut payload)| {
                if kind == HEADERS {
                    // Led by `:status: 200` from the static table: never h2's 431.
                    payload.insert(0, 0x88);
                }
                frame(kind, flags, stream, &payload)
            })
    }

    proptest! {
        #[test]
        fn any_client_bytes_in_any_chunks_are_handed_over_without_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..600),
            preface in any::<bool>(),
            chunk in 1usize..64,
            room in 1usize..64,
        ) {
            let mut input = if preface { PREFACE.to_vec() } else { Vec::new() };
            input.extend_from_slice(&bytes);
            let (out, _) = through_inbound(&input, chunk, room);
            if !input.starts_with(PREFACE) {
                // Only what matches the preface reaches h2.
                prop_assert!(out.len() < PREFACE_LEN && input.starts_with(&out));
            }
        }

        #[test]
        fn client_frames_in_any_chunks_reach_h2_whole_one_at_a_time(
            frames in proptest::collection::vec(arb_frame(&[0, 1, 3, 4, 6, 8, 9]), 0..12),
            chunk in 1usize..64,
            room in 1usize..64,
        ) {
            let mut input = PREFACE.to_vec();
            let mut want = PREFACE.to_vec();
            let mut boundaries = vec![PREFACE_LEN];
            for f in &frames {
                input.extend_from_slice(f);
                let len = f.len() - HEAD_LEN;
                if f[3] == SETTINGS && f[4] & ACK == 0 && f[5..9] == [0; 4] && len.is_multiple_of(6) {
                    want.extend(frame(SETTINGS, f[4], 0, &[&f[HEAD_LEN..], &NO_TABLE[..]].concat()));
                } else {
                    want.extend_from_slice(f);
                }
                boundaries.push(want.len());
            }
            let (out, ends) = through_inbound(&input, chunk, room);
            prop_assert_eq!(&out, &want);
            let mut start = 0;
            for end in ends {
                let frame_end = boundaries.iter().find(|b| **b > start).unwrap();
                prop_assert!(end <= *frame_end, "{}..{} crosses {}", start, end, frame_end);
                start = end;
            }
        }

        #[test]
        fn any_server_bytes_in_any_chunks_go_out_without_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..600),
            chunk in 1usize..64,
            last_kind in 0u8..10,
            last_stream in 0u32..8,
        ) {
            let _ = through_outbound(&bytes, chunk, Some((last_kind, last_stream)));
        }

        #[test]
        fn server_frames_other_than_h2s_answers_go_out_as_they_are(
            frames in proptest::collection::vec(arb_frame(&[0, 1, 3, 4, 6, 7, 8, 9]), 0..12),
            chunk in 1usize..64,
        ) {
            let input = frames.concat();
            // No header block came in last: no GOAWAY is about a stream.
            prop_assert_eq!(through_outbound(&input, chunk, Some((0, 1))), input);
        }
    }

    #[test]
    fn hpack_integers_read_as_written() {
        for value in [0, 1, 126, 127, 128, 300, 16_384, 1 << 20] {
            let mut out = Vec::new();
            put_hpack_int(&mut out, value);
            assert_eq!(hpack_int(&out, 7), Some((value, out.len())), "{value}");
        }
        assert_eq!(hpack_int(&[0x1f, 0x80], 5), None, "incomplete");
        assert_eq!(hpack_int(&[0x1f, 0xff, 0xff, 0xff, 0xff, 0xff], 5), None);
    }

    #[test]
    fn h2_431_reads_any_bytes_without_panic() {
        // Every short block: none panics, and only the two forms of 431 match.
        let mut matched = 0;
        for a in 0..=255u8 {
            for b in [0u8, 0x03, 0x83, 0x7f, 0xff] {
                for rest in [&[][..], &b"431"[..], &HUFFMAN_431[..], &[0xff, 0xff][..]] {
                    let mut block = vec![a, b];
                    block.extend_from_slice(rest);
                    if h2_431(&block).is_some() {
                        matched += 1;
                    }
                    let _ = h2_431(&block[..1]);
                }
            }
        }
        // :status names 8..=14, without indexing and never indexed, raw and Huffman.
        assert_eq!(matched, 7 * 2 * 2);
    }
}
