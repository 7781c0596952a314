//! What one connection is doing, as its watchdog needs to know: requests
//! in flight, since when it has been idle, whether a new request has begun
//! to arrive. Updated by the socket wrapper (bytes read) and the service
//! wrapper (requests begun and answered), read by the watchdog and by the
//! accept loop when it looks for an idle connection to close.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;

use super::ConnectionLimits;

/// The protocol, known from the first bytes (the HTTP/2 preface starts
/// with `PRI `; no HTTP/1 method does).
const UNKNOWN: u8 = 0;
const HTTP1: u8 = 1;
const HTTP2: u8 = 2;

/// Why the server closed a connection (a metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The TLS handshake took too long.
    TlsHandshake,
    /// No complete first request within the header read timeout.
    NoRequest,
    /// An HTTP/1 request's headers took too long after their first byte.
    SlowHeaders,
    /// Keep-alive: no request for the idle timeout.
    Idle,
    /// Closed (while idle) to make room for a new connection at the cap.
    Evicted,
    /// The server is stopping.
    Shutdown,
}

impl CloseReason {
    pub const ALL: [CloseReason; 6] = [
        CloseReason::TlsHandshake,
        CloseReason::NoRequest,
        CloseReason::SlowHeaders,
        CloseReason::Idle,
        CloseReason::Evicted,
        CloseReason::Shutdown,
    ];

    pub fn label(self) -> &'static str {
        match self {
            CloseReason::TlsHandshake => "tls_handshake_timeout",
            CloseReason::NoRequest => "no_request",
            CloseReason::SlowHeaders => "slow_headers",
            CloseReason::Idle => "idle",
            CloseReason::Evicted => "evicted",
            CloseReason::Shutdown => "shutdown",
        }
    }
}

/// A monotonic clock in nanoseconds since the listener started; 0 means
/// "not set" in the atomics below.
#[derive(Clone, Copy)]
pub struct Clock(Instant);

impl Clock {
    pub fn new() -> Self {
        Clock(Instant::now())
    }
    pub fn now(self) -> u64 {
        self.0.elapsed().as_nanos() as u64 + 1
    }
    pub fn instant(self, at: u64) -> tokio::time::Instant {
        tokio::time::Instant::from_std(self.0 + Duration::from_nanos(at))
    }
}

/// Shared by every connection of a listener: wakes the accept loop when it
/// waits, at the cap, for a connection to go idle.
pub struct IdleSignal {
    pub waiting: AtomicBool,
    pub notify: Notify,
}

pub struct Activity {
    clock: Clock,
    idle_signal: Arc<IdleSignal>,
    in_flight: AtomicUsize,
    /// When the last request in flight was answered (or the connection
    /// became ready, before its first request).
    idle_since: AtomicU64,
    /// The first byte read since the connection went idle (HTTP/1 only: a
    /// request is on its way); 0 when none.
    reading_since: AtomicU64,
    served: AtomicBool,
    protocol: AtomicU8,
    evicted: AtomicBool,
    closing: AtomicBool,
    /// Wakes the watchdog to recompute its deadline.
    pub changed: Notify,
}

impl Activity {
    pub fn new(clock: Clock, idle_signal: Arc<IdleSignal>) -> Self {
        Activity {
            clock,
            idle_signal,
            in_flight: AtomicUsize::new(0),
            idle_since: AtomicU64::new(clock.now()),
            reading_since: AtomicU64::new(0),
            served: AtomicBool::new(false),
            protocol: AtomicU8::new(UNKNOWN),
            evicted: AtomicBool::new(false),
            closing: AtomicBool::new(false),
            changed: Notify::new(),
        }
    }

    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// The TLS handshake is over: the first request's time starts now.
    pub fn ready(&self) {
        self.idle_since.store(self.clock.now(), Ordering::Release);
    }

    /// A request was dispatched to the router; the guard marks its answer.
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.served.store(true, Ordering::Release);
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.changed.notify_one();
        InFlight(self.clone())
    }

    fn end(&self) {
        self.idle_since.store(self.clock.now(), Ordering::Release);
        self.reading_since.store(0, Ordering::Release);
        if self.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.changed.notify_one();
            if self.idle_signal.waiting.load(Ordering::Acquire) {
                self.idle_signal.notify.notify_waiters();
            }
        }
    }

    fn bytes_read(&self, bytes: &[u8]) {
        let mut protocol = self.protocol.load(Ordering::Acquire);
        if protocol == UNKNOWN {
            let n = bytes.len().min(4);
            protocol = if bytes[..n] == b"PRI "[..n] {
                HTTP2
            } else {
                HTTP1
            };
            self.protocol.store(protocol, Ordering::Release);
        }
        // An HTTP/2 client sends frames between requests (WINDOW_UPDATE,
        // PING) that announce nothing; only HTTP/1 bytes start a request.
        if protocol == HTTP1
            && self.in_flight.load(Ordering::Acquire) == 0
            && self
                .reading_since
                .compare_exchange(0, self.clock.now(), Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            self.changed.notify_one();
        }
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    pub fn is_http2(&self) -> bool {
        self.protocol.load(Ordering::Acquire) == HTTP2
    }

    pub fn has_served(&self) -> bool {
        self.served.load(Ordering::Acquire)
    }

    /// When the watchdog closes the connection, and why; `None` while a
    /// request is in flight (the request timeout bounds it).
    pub fn deadline(&self, limits: &ConnectionLimits) -> Option<(u64, CloseReason)> {
        if self.in_flight() > 0 {
            return None;
        }
        let idle_since = self.idle_since.load(Ordering::Acquire);
        let nanos = |d: Duration| d.as_nanos() as u64;
        if !self.has_served() {
            return Some((
                idle_since + nanos(limits.header_read_timeout),
                CloseReason::NoRequest,
            ));
        }
        match self.reading_since.load(Ordering::Acquire) {
            0 => Some((idle_since + nanos(limits.idle_timeout), CloseReason::Idle)),
            since => Some((
                since + nanos(limits.header_read_timeout),
                CloseReason::SlowHeaders,
            )),
        }
    }

    /// Idle since when, if this connection may be closed to make room.
    pub fn evictable_since(&self) -> Option<u64> {
        if self.in_flight() > 0 || self.closing.load(Ordering::Acquire) {
            return None;
        }
        Some(self.idle_since.load(Ordering::Acquire))
    }

    pub fn evict(&self) {
        self.evicted.store(true, Ordering::Release);
        self.closing.store(true, Ordering::Release);
        self.changed.notify_one();
    }

    pub fn was_evicted(&self) -> bool {
        self.evicted.load(Ordering::Acquire)
    }

    pub fn closing(&self) {
        self.closing.store(true, Ordering::Release);
    }
}

/// A request in flight on its connection, until dropped.
pub struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.end();
    }
}

/// The connection's socket (after TLS), noting the bytes it reads.
pub struct Watched<S> {
    pub inner: S,
    pub activity: Arc<Activity>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled
            && buf.filled().len() > before
        {
            self.activity.bytes_read(&buf.filled()[before..]);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ConnectionLimits {
        ConnectionLimits {
            max_connections: 4,
            header_read_timeout: Duration::from_secs(2),
            idle_timeout: Duration::from_secs(60),
            tls_handshake_timeout: Duration::from_secs(5),
        }
    }

    fn activity() -> Arc<Activity> {
        Arc::new(Activity::new(
            Clock::new(),
            Arc::new(IdleSignal {
                waiting: AtomicBool::new(false),
                notify: Notify::new(),
            }),
        ))
    }

    /// The deadline follows the connection's life: first request, busy,
    /// keep-alive, a new HTTP/1 request arriving.
    #[test]
    fn the_deadline_follows_what_the_connection_does() {
        let a = activity();
        let (at, why) = a.deadline(&limits()).unwrap();
        assert_eq!(why, CloseReason::NoRequest);
        assert!(at <= a.clock().now() + 2_000_000_000);
        a.bytes_read(b"GET / HTTP/1.1\r\n");
        assert_eq!(a.deadline(&limits()).unwrap().1, CloseReason::NoRequest);
        let request = a.begin();
        assert_eq!(a.deadline(&limits()), None, "busy: no deadline");
        assert_eq!(a.evictable_since(), None, "busy: never evicted");
        drop(request);
        let (at, why) = a.deadline(&limits()).unwrap();
        assert_eq!(why, CloseReason::Idle);
        assert!(at > a.clock().now() + 50_000_000_000);
        assert!(a.evictable_since().is_some());
        a.bytes_read(b"GE");
        let (at, why) = a.deadline(&limits()).unwrap();
        assert_eq!(why, CloseReason::SlowHeaders);
        assert!(at <= a.clock().now() + 2_000_000_000);
        a.evict();
        assert!(a.was_evicted() && a.evictable_since().is_none());
    }

    #[test]
    fn http2_frames_between_requests_do_not_start_the_header_clock() {
        let a = activity();
        a.bytes_read(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
        assert!(a.is_http2());
        drop(a.begin());
        a.bytes_read(&[0, 0, 4, 8, 0, 0, 0, 0, 0]); // a WINDOW_UPDATE
        assert_eq!(a.deadline(&limits()).unwrap().1, CloseReason::Idle);
    }
}
