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

use clarifai_status::pb;

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
/// `REFUSED_STREAM`). Header lists (name + value + 32 bytes per field, pseudo-headers included,
/// as RFC 9113 section 6.5.2 counts them) are held to
/// [`max_header_list_size`](Limits::max_header_list_size) by the server itself: a request whose
/// list is longer is answered `RPC_MAX_MESSAGE_SIZE_EXCEEDED` (40033: gRPC `RESOURCE_EXHAUSTED`,
/// REST 413, not retryable) on its own stream, and the connection and its other streams go on.
/// h2 reads lists up to [`header_list_read_size`] before that, and advertises that size as its
/// `SETTINGS_MAX_HEADER_LIST_SIZE`; what h2 answers past it is in the crate's docs ("What the
/// stack answers by itself").
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use clarifai_status_testing::{Limits, TestServer};
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
    /// The longest request header list served, in bytes (name + value + 32 per field), on both
    /// listeners. Default: 16 KiB. A longer one is answered 40033 on its own stream, up to
    /// [`header_list_read_size`] on the gRPC listener (and hyper's HTTP/1.1 head buffer, about
    /// 400 KiB, on the HTTP one).
    pub max_header_list_size: u32,
}

/// How long a listener waits before accepting again after running out of file descriptors.
///
/// # Examples
///
/// ```
/// assert_eq!(clarifai_status_testing::ACCEPT_BACKOFF.as_millis(), 100);
/// ```
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The least header list size h2 reads on the gRPC listener before the server answers it: a
/// list up to 256 KiB of metadata, with room for the request's own headers, reaches the server
/// and gets 40033 on its stream.
const HEADER_LIST_READ_MIN: u32 = 258 * 1024;

/// The header list size h2 reads on the gRPC listener, and advertises as
/// `SETTINGS_MAX_HEADER_LIST_SIZE`, for a server serving lists up to `max_header_list_size`:
/// the larger of that size plus 2 KiB and 258 KiB.
///
/// Every list above `max_header_list_size` and below this size is answered 40033 on its own
/// stream. At this size and above, h2 answers by itself (it compares with `>=`, so a list of
/// exactly the advertised size is h2's): an HTTP `431` on the stream up to four times the size,
/// a `GOAWAY` past that.
///
/// What a hostile client can make the server hold for it: h2 decodes one header block at a time
/// per connection, keeping at most this many bytes of the block and of its decoded fields, and
/// the server answers an over-size request without waiting on anything, so each connection holds
/// about twice this size (516 KiB by default) for header lists in flight.
///
/// # Examples
///
/// ```
/// use clarifai_status_testing::header_list_read_size;
///
/// assert_eq!(header_list_read_size(16 * 1024), 258 * 1024);
/// assert_eq!(header_list_read_size(1 << 20), (1 << 20) + 2048);
/// ```
pub fn header_list_read_size(max_header_list_size: u32) -> u32 {
    max_header_list_size
        .saturating_add(2 * 1024)
        .max(HEADER_LIST_READ_MIN)
}

/// How many connections over the cap a listener answers at a time; more are closed at once.
const MAX_REFUSING: usize = 16;
/// How long answering a connection over the cap may take, lingering included.
const REFUSAL_TIME: Duration = Duration::from_secs(1);

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
    /// Whether this is the HTTP (REST) listener: connections over the cap are then answered in
    /// the REST shape only.
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
                    return Poll::Ready((Guarded::new(stream, permit, &self.limits), addr));
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
        let status = crate::service::server_busy(format!(
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

/// Answers `status` on `stream` and closes it, with hyper: every request the client sends before
/// the connection closes gets it, as a gRPC answer on an HTTP/2 connection of the gRPC listener
/// and in the REST shape otherwise; after the first answer the connection shuts down gracefully
/// (HTTP/2 `GOAWAY`, HTTP/1.1 `connection: close`).
async fn refuse(stream: TcpStream, status: &pb::Status, http1: bool) {
    use hyper_util::rt::{TokioExecutor, TokioIo};

    let answered = Arc::new(tokio::sync::Notify::new());
    let service = {
        let answered = answered.clone();
        let status = status.clone();
        hyper::service::service_fn(move |request: http::Request<hyper::body::Incoming>| {
            answered.notify_one();
            let grpc = !http1 && request.version() == http::Version::HTTP_2;
            let answer = if grpc {
                grpc_answer(&status)
            } else {
                rest_answer(&status)
            };
            std::future::ready(Ok::<_, std::convert::Infallible>(answer))
        })
    };
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    let mut connection = std::pin::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => {}
        () = answered.notified() => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}

/// `status` as a gRPC trailers-only answer.
pub(crate) fn grpc_answer(status: &pb::Status) -> http::Response<tonic::body::Body> {
    tonic::Status::from(status).into_http()
}

/// `status` in the REST shape ([`rest::response`](clarifai_status::rest::response)), closing
/// the connection.
pub(crate) fn rest_answer(status: &pb::Status) -> http::Response<tonic::body::Body> {
    let mut answer = clarifai_status::rest::response(status).map(tonic::body::Body::new);
    answer.headers_mut().insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("close"),
    );
    answer
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

/// The gRPC side: tonic takes a stream of connections.
impl tonic::codegen::tokio_stream::Stream for Accepting {
    type Item = io::Result<Guarded>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut()
            .poll_next_conn(cx)
            .map(|(conn, _)| Some(Ok(conn)))
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
        let written = Pin::new(&mut this.io).poll_write(cx, buf);
        this.after_write(cx, written)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
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
    fn the_default_idle_timeout_outlasts_the_longest_scenario_delay() {
        // A call delayed by `delay_ms` moves no byte meanwhile: a shorter idle timeout would cut
        // it and report a transport failure instead of the scenario's code.
        let longest = Duration::from_millis(u64::from(crate::MAX_DELAY_MS));
        assert!(Limits::default().idle_timeout > longest);
    }
}
