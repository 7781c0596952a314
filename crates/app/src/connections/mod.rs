//! The connections of a listener: our own accept loop around hyper,
//! because what an exposed server must bound lives below axum and neither
//! hyper nor axum-server bounds it: a socket that never sends a byte, or
//! only the HTTP/2 preface, an idle HTTP/2 connection, the number of open
//! connections (docs/configuration.md, "Connections").
//!
//! - a TLS handshake must end within `tls_handshake_timeout`;
//! - a new connection must deliver its first request's headers within
//!   `header_read_timeout` of its start (after TLS);
//! - on HTTP/1, later requests' headers within `header_read_timeout` of
//!   their first byte (a slowloris trickling them is cut off);
//! - a connection with no request in flight for `idle_timeout` is closed
//!   (keep-alive; HTTP/2 gets a GOAWAY first);
//! - at most `max_connections` are open. One more takes the place of the
//!   connection idle the longest; when every connection has a request in
//!   flight it waits, unread, and the listener accepts nothing until one
//!   ends or goes idle (later clients wait in the kernel's listen backlog).
//!
//! Requests in flight are never cut (the request timeout bounds them).

mod activity;

use std::collections::HashMap;
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

pub use activity::CloseReason;
use activity::{Activity, Clock, IdleSignal, Watched};

/// How long a peer may take to complete an HTTP/2 GOAWAY once a connection
/// with nothing in flight is being closed.
const GOAWAY_GRACE: Duration = Duration::from_secs(1);
/// How long a stopping server lets requests in flight finish.
const DRAIN: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub tls_handshake_timeout: Duration,
}

impl ConnectionLimits {
    pub fn from_http(limits: &latchkey_http::HttpLimits) -> Self {
        ConnectionLimits {
            max_connections: limits.max_connections,
            header_read_timeout: Duration::from_secs(limits.header_read_timeout_secs),
            idle_timeout: Duration::from_secs(limits.idle_timeout_secs),
            tls_handshake_timeout: Duration::from_secs(limits.tls_handshake_timeout_secs),
        }
    }
}

/// Counts a listener's connections (read by tests; exported as metrics
/// when the listener has them).
#[derive(Default)]
pub struct ConnectionStats {
    open: AtomicUsize,
    closed: [AtomicU64; CloseReason::ALL.len()],
    metrics: Option<Arc<latchkey_http::Metrics>>,
}

impl ConnectionStats {
    pub fn new(metrics: Option<Arc<latchkey_http::Metrics>>) -> Self {
        ConnectionStats {
            metrics,
            ..ConnectionStats::default()
        }
    }

    /// Connections open now (from accept to close, TLS handshake included).
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    /// Connections the server closed for `reason`.
    pub fn closed(&self, reason: CloseReason) -> u64 {
        self.closed[Self::index(reason)].load(Ordering::Acquire)
    }

    fn index(reason: CloseReason) -> usize {
        CloseReason::ALL
            .iter()
            .position(|r| *r == reason)
            .expect("every reason is listed")
    }

    fn opened(&self) {
        let open = self.open.fetch_add(1, Ordering::AcqRel) + 1;
        if let Some(m) = &self.metrics {
            m.connections_open(open);
        }
    }

    fn ended(&self) {
        let open = self.open.fetch_sub(1, Ordering::AcqRel) - 1;
        if let Some(m) = &self.metrics {
            m.connections_open(open);
        }
    }

    fn closed_by_server(&self, reason: CloseReason) {
        self.closed[Self::index(reason)].fetch_add(1, Ordering::AcqRel);
        if let Some(m) = &self.metrics {
            m.connection_closed(reason.label());
        }
    }
}

/// The open connections, for finding the one idle the longest.
struct Registry {
    clock: Clock,
    next_id: AtomicU64,
    open: Mutex<HashMap<u64, Arc<Activity>>>,
    idle_signal: Arc<IdleSignal>,
}

impl Registry {
    fn add(&self) -> (u64, Arc<Activity>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let activity = Arc::new(Activity::new(self.clock, self.idle_signal.clone()));
        self.open
            .lock()
            .expect("connection registry lock")
            .insert(id, activity.clone());
        (id, activity)
    }

    fn remove(&self, id: u64) {
        self.open
            .lock()
            .expect("connection registry lock")
            .remove(&id);
    }

    /// Asks the connection idle the longest to close; false when every
    /// connection has a request in flight.
    fn evict_idlest(&self) -> bool {
        let open = self.open.lock().expect("connection registry lock");
        let idlest = open
            .values()
            .filter_map(|a| a.evictable_since().map(|since| (since, a)))
            .min_by_key(|(since, _)| *since);
        match idlest {
            Some((_, activity)) => {
                activity.evict();
                true
            }
            None => false,
        }
    }
}

/// What a stopping listener does with its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Serving,
    /// Finish what is in flight, accept no new request.
    Draining,
    /// Close everything now.
    Closed,
}

/// One listener's serving loop, until `stop` turns true; then it drains
/// (up to 30 s for requests in flight) and returns.
pub struct Listener {
    pub listener: TcpListener,
    pub tls: Option<TlsAcceptor>,
    pub router: Router,
    pub limits: ConnectionLimits,
    pub http: Builder<TokioExecutor>,
    pub stats: Arc<ConnectionStats>,
}

/// The HTTP protocol settings of every connection: header sizes from the
/// limits; timeouts are the watchdog's (hyper's own HTTP/1 header timer
/// would also end keep-alive at the header timeout).
pub fn http_builder(limits: &latchkey_http::HttpLimits) -> Builder<TokioExecutor> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        .max_buf_size(limits.max_header_bytes)
        .max_headers(limits.max_headers);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(limits.max_header_bytes as u32);
    builder
}

impl Listener {
    pub async fn serve(self, mut stop: watch::Receiver<bool>) -> io::Result<()> {
        let Listener {
            listener,
            tls,
            router,
            limits,
            http,
            stats,
        } = self;
        let max = limits.max_connections.clamp(1, Semaphore::MAX_PERMITS);
        let slots = Arc::new(Semaphore::new(max));
        let registry = Arc::new(Registry {
            clock: Clock::new(),
            next_id: AtomicU64::new(0),
            open: Mutex::new(HashMap::new()),
            idle_signal: Arc::new(IdleSignal {
                waiting: AtomicBool::new(false),
                notify: Notify::new(),
            }),
        });
        let (phase, phase_rx) = watch::channel(Phase::Serving);
        let http = Arc::new(http);
        let mut accept_errors = AcceptErrors::default();
        'accept: loop {
            let accepted = tokio::select! {
                biased;
                _ = stop.wait_for(|stop| *stop) => break 'accept,
                accepted = listener.accept() => accepted,
            };
            let (tcp, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors: an idle connection gives one
                    // back.
                    if matches!(e.raw_os_error(), Some(code) if code == EMFILE || code == ENFILE) {
                        registry.evict_idlest();
                    }
                    accept_errors.log(&e);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            };
            let permit = match slots.clone().try_acquire_owned() {
                Ok(permit) => permit,
                Err(_) => tokio::select! {
                    biased;
                    _ = stop.wait_for(|stop| *stop) => break 'accept,
                    permit = make_room(&registry, &slots) => permit,
                },
            };
            let _ = tcp.set_nodelay(true);
            let (id, activity) = registry.add();
            let slot = Slot {
                id,
                registry: registry.clone(),
                stats: stats.clone(),
                _permit: permit,
            };
            stats.opened();
            let connection = Connection {
                activity,
                limits,
                phase: phase_rx.clone(),
                stats: stats.clone(),
            };
            let (router, http, tls) = (router.clone(), http.clone(), tls.clone());
            tokio::spawn(async move {
                let _slot = slot;
                connection.run(tcp, peer, tls, router, http).await;
            });
        }
        drop(listener);
        // Drain: every connection finishes what it has in flight, then the
        // rest are closed.
        let _ = phase.send(Phase::Draining);
        let all = max as u32;
        if tokio::time::timeout(DRAIN, slots.acquire_many(all))
            .await
            .is_err()
        {
            let _ = phase.send(Phase::Closed);
            let _ = tokio::time::timeout(Duration::from_secs(1), slots.acquire_many(all)).await;
        }
        Ok(())
    }
}

#[cfg(unix)]
const EMFILE: i32 = libc::EMFILE;
#[cfg(unix)]
const ENFILE: i32 = libc::ENFILE;
#[cfg(not(unix))]
const EMFILE: i32 = -1;
#[cfg(not(unix))]
const ENFILE: i32 = -1;

/// At the cap: closes the connection idle the longest, or waits until one
/// goes idle or ends, and returns its slot.
async fn make_room(registry: &Registry, slots: &Arc<Semaphore>) -> OwnedSemaphorePermit {
    let signal = &registry.idle_signal;
    loop {
        let became_idle = signal.notify.notified();
        tokio::pin!(became_idle);
        became_idle.as_mut().enable();
        signal.waiting.store(true, Ordering::Release);
        let evicted = registry.evict_idlest();
        tokio::select! {
            permit = slots.clone().acquire_owned() => {
                signal.waiting.store(false, Ordering::Release);
                return permit.expect("the semaphore is never closed");
            }
            _ = became_idle, if !evicted => {}
        }
    }
}

/// Accept errors, logged at most once a second (a full file table fails
/// every accept).
#[derive(Default)]
struct AcceptErrors {
    last: Option<std::time::Instant>,
    suppressed: u64,
}

impl AcceptErrors {
    fn log(&mut self, e: &io::Error) {
        if self
            .last
            .is_some_and(|last| last.elapsed() < Duration::from_secs(1))
        {
            self.suppressed += 1;
            return;
        }
        tracing::warn!(
            error = e.to_string(),
            suppressed = self.suppressed,
            "cannot accept a connection"
        );
        self.last = Some(std::time::Instant::now());
        self.suppressed = 0;
    }
}

/// A connection's place in the registry and under the cap, given back when
/// its task ends, however it ends.
struct Slot {
    id: u64,
    registry: Arc<Registry>,
    stats: Arc<ConnectionStats>,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.registry.remove(self.id);
        self.stats.ended();
    }
}

struct Connection {
    activity: Arc<Activity>,
    limits: ConnectionLimits,
    phase: watch::Receiver<Phase>,
    stats: Arc<ConnectionStats>,
}

impl Connection {
    async fn run(
        mut self,
        tcp: TcpStream,
        peer: SocketAddr,
        tls: Option<TlsAcceptor>,
        router: Router,
        http: Arc<Builder<TokioExecutor>>,
    ) {
        let Some(tls) = tls else {
            self.activity.ready();
            return self.serve(tcp, peer, router, &http).await;
        };
        let handshake = tokio::time::timeout(self.limits.tls_handshake_timeout, tls.accept(tcp));
        let evicted = self.activity.changed.notified();
        let stream = tokio::select! {
            done = handshake => match done {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => {
                    tracing::debug!(error = e.to_string(), "TLS handshake failed");
                    return;
                }
                Err(_) => return self.stats.closed_by_server(CloseReason::TlsHandshake),
            },
            _ = evicted => return self.stats.closed_by_server(CloseReason::Evicted),
            _ = self.phase.wait_for(|p| *p != Phase::Serving) => return,
        };
        self.activity.ready();
        self.serve(stream, peer, router, &http).await
    }

    async fn serve<S>(
        mut self,
        stream: S,
        peer: SocketAddr,
        router: Router,
        http: &Builder<TokioExecutor>,
    ) where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let activity = self.activity.clone();
        let io = TokioIo::new(Watched {
            inner: stream,
            activity: activity.clone(),
        });
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            let in_flight = activity.begin();
            let answer = router.clone().oneshot(request);
            async move {
                let response = answer.await;
                drop(in_flight);
                Ok::<_, Infallible>(response.unwrap_or_else(|never| match never {}))
            }
        });
        let connection = http.serve_connection(io, service);
        tokio::pin!(connection);
        let activity = &self.activity;
        let clock = activity.clock();
        let reason = loop {
            let changed = activity.changed.notified();
            let deadline = activity.deadline(&self.limits);
            let timer = async {
                match deadline {
                    Some((at, _)) => tokio::time::sleep_until(clock.instant(at)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = connection.as_mut() => return,
                _ = self.phase.wait_for(|p| *p != Phase::Serving) => break CloseReason::Shutdown,
                _ = changed => {
                    if activity.was_evicted() {
                        break CloseReason::Evicted;
                    }
                }
                _ = timer => {
                    if let Some((at, reason)) = activity.deadline(&self.limits)
                        && clock.now() >= at
                    {
                        break reason;
                    }
                }
            }
        };
        activity.closing();
        if reason != CloseReason::Shutdown {
            self.stats.closed_by_server(reason);
        }
        // HTTP/1 with nothing in flight, or a connection that never sent a
        // request: nothing to finish, the socket just closes.
        let graceful =
            reason == CloseReason::Shutdown || (activity.is_http2() && activity.has_served());
        if !graceful {
            return;
        }
        connection.as_mut().graceful_shutdown();
        loop {
            tokio::select! {
                _ = connection.as_mut() => return,
                _ = self.phase.wait_for(|p| *p == Phase::Closed) => return,
                _ = tokio::time::sleep(GOAWAY_GRACE), if reason != CloseReason::Shutdown => {
                    if activity.in_flight() == 0 {
                        return;
                    }
                }
            }
        }
    }
}

/// The open-file limit (`ulimit -n`), when the platform tells it.
pub fn open_file_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes into the struct we pass and nothing else.
        let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
        // rlim_t is not u64 on every platform.
        #[allow(clippy::unnecessary_cast)]
        let current = limit.rlim_cur as u64;
        (ok && limit.rlim_cur != libc::RLIM_INFINITY).then_some(current)
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// The connection cap that fits under the open-file limit, keeping room
/// for the database connections (SQLite: three files each), the listeners
/// and the logs: beyond it, accepting fails and no idle connection can be
/// closed to make room.
pub fn fitting_cap(wanted: usize, open_files: Option<u64>, db_connections: u32) -> usize {
    let Some(open_files) = open_files else {
        return wanted;
    };
    let reserve = 64 + 3 * u64::from(db_connections);
    let room = open_files.saturating_sub(reserve).max(8);
    wanted.min(usize::try_from(room).unwrap_or(usize::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_stays_under_the_open_file_limit() {
        assert_eq!(fitting_cap(4096, None, 16), 4096);
        assert_eq!(fitting_cap(4096, Some(1_048_576), 16), 4096);
        assert_eq!(fitting_cap(4096, Some(256), 4), 256 - 64 - 12);
        assert_eq!(fitting_cap(4096, Some(10), 4), 8);
    }
}
