//! The test server's limits, and the accept loop that enforces them on both listeners.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

/// What the test server holds to, whatever its clients do: connection counts, timeouts, and
/// HTTP/2 settings. Each field has a safe default ([`Limits::default`]); set fields on a default
/// value (the struct is `#[non_exhaustive]`, so more may come) and give it to
/// [`TestServer::limits`](super::TestServer::limits), or use `clarifai-status serve`'s flags.
///
/// They apply to both listeners, gRPC and HTTP, each on its own:
/// - at most [`max_connections`](Limits::max_connections) open connections; one more is
///   answered `RPC_REQUEST_QUEUE_FULL` (40030: gRPC `UNAVAILABLE`, HTTP 503, retryable) in its
///   protocol and closed within a second (on the gRPC listener, on the client's first stream, then
///   `GOAWAY`), or closed at once while 16 others are being answered;
/// - a connection that sends no byte within [`handshake_timeout`](Limits::handshake_timeout)
///   (no HTTP/2 preface, no HTTP/1.1 request) is closed;
/// - a connection on which no byte moves either way for [`idle_timeout`](Limits::idle_timeout)
///   is closed: an HTTP/2 connection without an open stream, a keep-alive HTTP/1.1 connection
///   between requests, a stream whose client never sends its body, a client that stops reading;
/// - when accepting fails for want of file descriptors (`EMFILE`, `ENFILE`), the listener waits
///   [`ACCEPT_BACKOFF`] before it tries again (and logs a `tracing` warning), instead of spinning;
///   it accepts again as soon as descriptors free up.
///
/// On the gRPC listener, HTTP/2 also advertises
/// [`max_concurrent_streams`](Limits::max_concurrent_streams) (streams past it are refused with
/// `REFUSED_STREAM`) and [`max_header_list_size`](Limits::max_header_list_size). A request whose
/// header list is over that is answered `RPC_MAX_MESSAGE_SIZE_EXCEEDED` (40033: gRPC
/// `RESOURCE_EXHAUSTED`, not retryable) on its stream; up to four times the limit the connection
/// and its other streams go on, past that the connection closes after the answer (h2 reads no
/// more of such a list). A request h2 resets as malformed is answered `CONN_BAD_REQUEST_FORMAT`
/// (11100) on its stream first, and a client that does not speak HTTP/2 (HTTP/1.1, TLS,
/// garbage) 11100 in HTTP/1.1.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use clarifai_status::testing::{Limits, TestServer};
///
/// let mut limits = Limits::default();
/// limits.max_connections = 64;
/// limits.idle_timeout = Duration::from_secs(30);
/// let server = TestServer::new().limits(limits);
/// # drop(server);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// The most open connections per listener. Default: 1,000, or less when the process's limit
    /// of open files is low: `(limit - 64) / 2`, so that both listeners at their cap still leave
    /// descriptors free (read from `/proc/self/limits` on Linux).
    pub max_connections: usize,
    /// How long a new connection may take to send its first byte. Default: 10 s.
    pub handshake_timeout: Duration,
    /// How long a connection may go without a byte read or written. Default: 120 s, longer than
    /// the longest scenario delay ([`MAX_DELAY_MS`](super::MAX_DELAY_MS)), so a delayed answer is
    /// never cut.
    pub idle_timeout: Duration,
    /// HTTP/2 `SETTINGS_MAX_CONCURRENT_STREAMS` of the gRPC listener. Default: 100.
    pub max_concurrent_streams: u32,
    /// HTTP/2 `SETTINGS_MAX_HEADER_LIST_SIZE` of the gRPC listener, in bytes (name + value + 32
    /// per header). Default: 16 KiB. A longer header list is answered 40033 on its stream.
    pub max_header_list_size: u32,
}

/// How long a listener waits before accepting again after running out of file descriptors.
///
/// # Examples
///
/// ```
/// assert_eq!(clarifai_status::testing::ACCEPT_BACKOFF.as_millis(), 100);
/// ```
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// How many connections over the cap a listener answers at a time; more are closed at once.
const MAX_REFUSING: usize = 16;
/// How long answering a connection over the cap may take, lingering included.
const REFUSAL_TIME: Duration = Duration::from_secs(1);
/// How much of an HTTP/2 client's first bytes is read to find its first stream.
const REFUSAL_READ: usize = 64 * 1024;

impl Default for Limits {
    fn default() -> Limits {
        let max_connections = match open_files_limit() {
            Some(limit) => (limit.saturating_sub(64) / 2).clamp(1, 1_000),
            None => 1_000,
        };
        Limits {
            max_connections,
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(120),
            max_concurrent_streams: 100,
            max_header_list_size: 16 * 1024,
        }
    }
}

/// The soft limit of open files, from `/proc/self/limits`; `None` where that cannot be read.
fn open_files_limit() -> Option<usize> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// A listener that enforces [`Limits`]: yields [`Guarded`] connections, at most
/// `max_connections` at a time, and backs off when out of descriptors.
#[derive(Debug)]
pub(crate) struct Accepting {
    listener: TcpListener,
    permits: Arc<Semaphore>,
    /// Places for connections over the cap being answered.
    refusing: Arc<Semaphore>,
    limits: Limits,
    backoff: Option<Pin<Box<Sleep>>>,
    /// Whether the last accept failed for want of resources (logged once per episode).
    starved: bool,
    /// Whether the connections speak HTTP/1.1 (the REST listener): hyper's own error answers
    /// are then given a Clarifai code.
    http1: bool,
}

impl Accepting {
    /// The gRPC listener.
    pub(crate) fn grpc(listener: TcpListener, limits: &Limits) -> Accepting {
        Accepting::new(listener, limits, false)
    }

    /// The HTTP listener.
    pub(crate) fn http(listener: TcpListener, limits: &Limits) -> Accepting {
        Accepting::new(listener, limits, true)
    }

    fn new(listener: TcpListener, limits: &Limits, http1: bool) -> Accepting {
        Accepting {
            listener,
            permits: Arc::new(Semaphore::new(limits.max_connections.max(1))),
            refusing: Arc::new(Semaphore::new(MAX_REFUSING)),
            limits: limits.clone(),
            backoff: None,
            starved: false,
            http1,
        }
    }

    /// The next connection within the limits.
    pub(crate) fn poll_next_conn(&mut self, cx: &mut Context<'_>) -> Poll<(Guarded, SocketAddr)> {
        loop {
            if let Some(sleep) = self.backoff.as_mut() {
                std::task::ready!(sleep.as_mut().poll(cx));
                self.backoff = None;
            }
            match self.listener.poll_accept(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok((stream, addr))) => {
                    if std::mem::take(&mut self.starved) {
                        tracing::warn!(target: "clarifai_status", "accepting connections again");
                    }
                    let Ok(permit) = self.permits.clone().try_acquire_owned() else {
                        self.refuse(stream);
                        continue;
                    };
                    let _ = stream.set_nodelay(true);
                    let mut conn = Guarded::new(stream, permit, &self.limits);
                    conn.rewrite = self.http1.then(Rewrite::default);
                    return Poll::Ready((conn, addr));
                }
                Poll::Ready(Err(e)) if is_connection_error(&e) => continue,
                Poll::Ready(Err(e)) => {
                    // Out of descriptors (or another resource): the listener stays readable, so
                    // retrying at once would spin. Wait, then try again.
                    if !std::mem::replace(&mut self.starved, true) {
                        tracing::warn!(
                            target: "clarifai_status",
                            error = %e,
                            "cannot accept connections; retrying every {} ms",
                            ACCEPT_BACKOFF.as_millis()
                        );
                    }
                    self.backoff = Some(Box::pin(tokio::time::sleep(ACCEPT_BACKOFF)));
                }
            }
        }
    }
}

impl Accepting {
    /// Answers a connection over the cap with `RPC_REQUEST_QUEUE_FULL` (40030, retryable) in
    /// its protocol, then closes it, within [`REFUSAL_TIME`]; while [`MAX_REFUSING`] are being
    /// answered, closes it at once instead.
    fn refuse(&self, stream: TcpStream) {
        let Ok(place) = self.refusing.clone().try_acquire_owned() else {
            return;
        };
        let status = super::service::server_busy(format!(
            "this server holds at most {} connections on this port; try again later",
            self.limits.max_connections
        ));
        let http1 = self.http1;
        tokio::spawn(async move {
            let _ = tokio::time::timeout(REFUSAL_TIME, refuse(stream, &status, http1)).await;
            drop(place);
        });
    }
}

/// Answers `status` on `stream` and closes it: in HTTP/1.1 on the HTTP listener; on the gRPC
/// listener, as a gRPC answer on the client's first stream followed by `GOAWAY`, or in
/// HTTP/1.1 if the client does not speak HTTP/2.
async fn refuse(mut stream: TcpStream, status: &crate::pb::Status, http1: bool) -> io::Result<()> {
    use super::h2;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let mut chunk = [0u8; 4096];
    if http1 {
        stream.write_all(&http1_answer(status)).await?;
    } else {
        let mut seen = Vec::new();
        let mut preface_answered = false;
        let answer = loop {
            let n = stream.read(&mut chunk).await?;
            if n == 0 || seen.len() + n > REFUSAL_READ {
                return Ok(());
            }
            seen.extend_from_slice(&chunk[..n]);
            match h2::first_stream(&seen) {
                Err(h2::NotHttp2) => break http1_answer(status),
                Ok(None) => {}
                Ok(Some(stream_id)) => {
                    if !preface_answered {
                        // Some clients wait for the server's preface before they open a stream.
                        stream.write_all(&h2::server_preface()).await?;
                        preface_answered = true;
                    }
                    if let Some(stream_id) = stream_id {
                        break h2::refusal(stream_id, status);
                    }
                }
            }
        };
        stream.write_all(&answer).await?;
    }
    // Read what the client still sends until it closes, so that closing does not reset the
    // connection before the answer is read.
    stream.shutdown().await?;
    while stream.read(&mut chunk).await? > 0 {}
    Ok(())
}

/// Errors of one connection (gone before it was accepted), not of the listener.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

/// The gRPC side: tonic takes a stream of connections, whose own answers to over-size header
/// lists are given a Clarifai code.
impl tonic::codegen::tokio_stream::Stream for Accepting {
    type Item = io::Result<super::h2::H2Answers<Guarded>>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let limit = this.limits.max_header_list_size;
        this.poll_next_conn(cx)
            .map(|(conn, _)| Some(Ok(super::h2::H2Answers::new(conn, limit))))
    }
}

/// The HTTP side: axum takes a listener.
impl axum::serve::Listener for Accepting {
    type Io = Guarded;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Guarded, SocketAddr) {
        std::future::poll_fn(|cx| self.poll_next_conn(cx)).await
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

/// A connection under the limits: holds its place under the cap, and fails its reads and writes
/// with `TimedOut` once the handshake or idle timeout passes, which makes the server close it.
#[derive(Debug)]
pub(crate) struct Guarded {
    io: TcpStream,
    _permit: OwnedSemaphorePermit,
    timer: Pin<Box<Sleep>>,
    opened: Instant,
    /// When a byte last moved; `None` until the first byte is read.
    last: Option<Instant>,
    handshake: Duration,
    idle: Duration,
    /// On HTTP/1.1 connections: hyper's own error answers, rewritten with a Clarifai code.
    rewrite: Option<Rewrite>,
}

/// The state of rewriting hyper's own HTTP/1.1 error answers (400 for a malformed request, 414,
/// 431 for an over-size head, 505), which hyper writes itself with an empty body: the server's
/// handlers always set `clarifai-status-code`, so a response head without it is hyper's.
#[derive(Debug, Default)]
struct Rewrite {
    /// The answer being written instead, and how much of it is out.
    pending: Option<(Vec<u8>, usize)>,
    /// The length of hyper's head it replaces, reported written once the answer is out.
    replaced: usize,
}

/// The answer written instead of hyper's own error `head`, in the REST shape and naming hyper's
/// status: `RPC_MAX_MESSAGE_SIZE_EXCEEDED` (40033) for an over-size head or URI (414, 431),
/// `CONN_BAD_REQUEST_FORMAT` (11100) for the rest; `None` when `head` is not such an answer.
fn clarifai_answer(head: &[u8]) -> Option<Vec<u8>> {
    const CODE: &[u8] = crate::grpc::CODE_HEADER.as_bytes();
    if !head.starts_with(b"HTTP/1.") || !head.ends_with(b"\r\n\r\n") {
        return None;
    }
    if head
        .windows(CODE.len())
        .any(|w| w.eq_ignore_ascii_case(CODE))
    {
        return None;
    }
    let status = std::str::from_utf8(head.get(9..12)?).ok()?;
    let status = http::StatusCode::from_bytes(status.as_bytes()).ok()?;
    if !(status.is_client_error() || status.is_server_error()) {
        return None;
    }
    let what = status.canonical_reason().unwrap_or("");
    let details = format!(
        "the server could not read the request: {} {what}",
        status.as_u16()
    );
    Some(http1_answer(&match status {
        // The same code as an over-size header list on the gRPC port.
        http::StatusCode::URI_TOO_LONG | http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => {
            super::service::request_too_large(details)
        }
        _ => super::service::bad_request(details),
    }))
}

/// A whole HTTP/1.1 answer carrying `status` in the REST shape, that closes the connection.
pub(crate) fn http1_answer(status: &crate::pb::Status) -> Vec<u8> {
    let (parts, body) = crate::rest::response(status).into_parts();
    let mut out = format!(
        "HTTP/1.1 {} {}\r\n",
        parts.status.as_u16(),
        parts.status.canonical_reason().unwrap_or("")
    )
    .into_bytes();
    for (name, value) in &parts.headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(
        format!(
            "content-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    out.extend_from_slice(body.as_bytes());
    out
}

impl Guarded {
    fn new(io: TcpStream, permit: OwnedSemaphorePermit, limits: &Limits) -> Guarded {
        let now = Instant::now();
        let first = limits.handshake_timeout.min(limits.idle_timeout);
        Guarded {
            io,
            _permit: permit,
            timer: Box::pin(tokio::time::sleep_until(now + first)),
            opened: now,
            last: None,
            handshake: limits.handshake_timeout,
            idle: limits.idle_timeout,
            rewrite: None,
        }
    }

    /// Writes the pending rewritten answer, if any: `Ready(Some(n))` once it is all out (`n`:
    /// the bytes of hyper's head it stands for), `Ready(None)` when there is none.
    fn poll_rewrite(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Option<usize>>> {
        let Some(rewrite) = self.rewrite.as_mut() else {
            return Poll::Ready(Ok(None));
        };
        let Some((answer, written)) = rewrite.pending.as_mut() else {
            return Poll::Ready(Ok(None));
        };
        while *written < answer.len() {
            match Pin::new(&mut self.io).poll_write(cx, &answer[*written..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => *written += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {
                    return match self.poll_deadline(cx) {
                        Poll::Ready(e) => Poll::Ready(Err(e)),
                        Poll::Pending => Poll::Pending,
                    }
                }
            }
        }
        rewrite.pending = None;
        Poll::Ready(Ok(Some(std::mem::take(&mut rewrite.replaced))))
    }

    /// Starts rewriting `head` if it is hyper's own error answer; `true` if so.
    fn intercept(&mut self, head: &[u8]) -> bool {
        let Some(rewrite) = self.rewrite.as_mut() else {
            return false;
        };
        match clarifai_answer(head) {
            Some(answer) => {
                rewrite.pending = Some((answer, 0));
                rewrite.replaced = head.len();
                true
            }
            None => false,
        }
    }

    /// What a write to the socket did, seen by the timers: bytes out count as activity once the
    /// connection has sent its first byte, and a write that waits waits no longer than the
    /// idle timeout (a peer that stops reading holds the connection no longer than an idle one).
    fn after_write(
        &mut self,
        cx: &mut Context<'_>,
        written: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        match written {
            Poll::Ready(Ok(n)) => {
                if n > 0 && self.last.is_some() {
                    self.moved();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => self.poll_deadline(cx).map(Err),
        }
    }

    fn moved(&mut self) {
        self.last = Some(Instant::now());
    }

    /// `Ready(TimedOut)` once the connection's deadline has passed; else `Pending`, woken at the
    /// deadline. The timer is only moved when it fires: activity costs one clock read.
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        loop {
            std::task::ready!(self.timer.as_mut().poll(cx));
            let deadline = match self.last {
                None => self.opened + self.handshake,
                Some(last) => last + self.idle,
            };
            if Instant::now() >= deadline {
                let what = if self.last.is_none() {
                    "no request within the handshake timeout"
                } else {
                    "idle timeout"
                };
                return Poll::Ready(io::Error::new(io::ErrorKind::TimedOut, what));
            }
            self.timer.as_mut().reset(deadline);
        }
    }
}

impl AsyncRead for Guarded {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.moved();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => this.poll_deadline(cx).map(Err),
        }
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.rewrite.is_some() {
            if let Some(n) = std::task::ready!(this.poll_rewrite(cx))? {
                return Poll::Ready(Ok(n));
            }
            if this.intercept(buf) {
                return this.poll_rewrite(cx).map_ok(|n| n.unwrap_or(0));
            }
        }
        let written = Pin::new(&mut this.io).poll_write(cx, buf);
        this.after_write(cx, written)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.rewrite.is_some() {
            if let Some(n) = std::task::ready!(this.poll_rewrite(cx))? {
                return Poll::Ready(Ok(n));
            }
            // hyper writes a head as one slice: an error answer's head is the first, alone.
            if let Some(head) = bufs.iter().find(|b| !b.is_empty()) {
                if this.intercept(head) {
                    return this.poll_rewrite(cx).map_ok(|n| n.unwrap_or(0));
                }
            }
        }
        let written = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.after_write(cx, written)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

impl tonic::transport::server::Connected for Guarded {
    type ConnectInfo = tonic::transport::server::TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.io.connect_info()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_safe() {
        let limits = Limits::default();
        assert!((1..=1_000).contains(&limits.max_connections));
        assert!(limits.handshake_timeout <= Duration::from_secs(30));
        assert!(limits.idle_timeout <= Duration::from_secs(300));
        assert!(limits.idle_timeout > Duration::from_millis(u64::from(super::super::MAX_DELAY_MS)));
        assert!(limits.max_concurrent_streams <= 1_000);
        assert!(limits.max_header_list_size <= 64 * 1024);
    }
}
