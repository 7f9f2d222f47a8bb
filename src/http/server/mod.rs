//! The server: binds a TCP or unix listener, starts the readiness loop and the worker pool,
//! and stops them (gracefully, or at once when dropped).
//!
//! Design (nginx's idle handling, Apache's event MPM): one readiness loop thread owns the
//! listener and every connection that is idle or still sending its head (see `readiness`), so an
//! idle or slow connection costs a small buffer and a file descriptor, never a thread. A
//! request whose head is complete goes to a bounded pool of worker threads (see `workers`),
//! which run the blocking handler and hand the connection back for keep-alive. When every worker
//! is busy a request waits at most `Limits::queue_timeout`, then gets `503` + `Retry-After`;
//! only the health check (`Limits::busy_health_path`) is answered by the loop instead.
//! At start the soft open-file limit is raised toward the hard one and the connection capacity
//! is logged. It does not route, does not speak TLS (the load balancer does), and does not do
//! HTTP/2.
//!
//! The loop and the workers are this module's children and share its state ([`Shared`]); the
//! hand-back of a connection from a worker to the loop lives here, so neither child imports the
//! other back.

mod readiness;
mod workers;

use std::net::{Shutdown, SocketAddr, TcpListener, ToSocketAddrs};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Interest, Poll, Waker};

use crate::http::conn::ByteStream;
use crate::http::fd_limit;
use crate::http::limits::Limits;
use crate::http::request::Request;
use crate::http::response::Response;
use readiness::{Conns, EventLoop, LISTENER, WAKE};
use workers::Pool;

/// What a handler is: a request in, a plain response value (or an error) out. Errors become
/// `text/plain` answers with the status from [`crate::Error::status`]: `"<status> <reason>\n"`,
/// plus the reason text for [`crate::Error::BadRequest`] (others are logged, not shown).
pub type Handler = dyn Fn(&Request) -> crate::Result<Response> + Send + Sync + 'static;

/// A bound listener to serve.
#[derive(Debug)]
pub enum Listener {
    /// A TCP listener (the public profile).
    Tcp(TcpListener),
    /// A unix-socket listener (the Fn profile).
    Unix(UnixListener),
}

impl Listener {
    pub(crate) fn raw_fd(&self) -> RawFd {
        match self {
            Listener::Tcp(l) => l.as_raw_fd(),
            Listener::Unix(l) => l.as_raw_fd(),
        }
    }
}

/// Where a server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    /// A TCP address; the real port when bound to port 0.
    Tcp(SocketAddr),
    /// A unix socket path (`None` for an unnamed socket).
    Unix(Option<PathBuf>),
}

impl std::fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ListenAddr::Tcp(a) => write!(f, "{a}"),
            ListenAddr::Unix(Some(p)) => write!(f, "{}", p.display()),
            ListenAddr::Unix(None) => f.write_str("(unnamed unix socket)"),
        }
    }
}

/// What the loop, the workers and the server handles share.
pub(crate) struct Shared {
    pub(crate) limits: Limits,
    pub(crate) handler: Box<Handler>,
    pub(crate) addr: ListenAddr,
    /// The name of every worker thread (the loop's adds `-poll`).
    pub(crate) thread_name: String,
    /// Most connections open at once (`max_connections` within the open-file limit).
    pub(crate) capacity: usize,
    pub(crate) stopping: AtomicBool,
    pub(crate) loop_done: AtomicBool,
    pub(crate) conns: Mutex<Conns>,
    /// Connections workers are done with, for the loop to take back.
    pub(crate) returns: Mutex<Vec<Returned>>,
    /// Requests queued for or with a worker.
    pub(crate) in_flight: AtomicUsize,
    pub(crate) pool: Pool,
    pub(crate) waker: Waker,
    loop_thread: Mutex<Option<JoinHandle<()>>>,
}

/// A running server. Dropping it stops accepting and closes idle connections without waiting;
/// call [`Server::shutdown`] to wait for requests in flight, or [`Server::wait`] to serve until
/// another [`ShutdownHandle`] stops it.
pub struct Server {
    shared: Arc<Shared>,
}

/// Stops a server from another thread.
#[derive(Clone)]
pub struct ShutdownHandle {
    shared: Arc<Shared>,
}

impl Server {
    /// Binds a TCP listener at `addr` and serves it.
    pub fn bind_tcp(
        addr: impl ToSocketAddrs,
        limits: Limits,
        handler: impl Fn(&Request) -> crate::Result<Response> + Send + Sync + 'static,
    ) -> crate::Result<Server> {
        Server::start(Listener::Tcp(TcpListener::bind(addr)?), limits, handler)
    }

    /// Binds a unix socket at `path` and serves it (the path must not exist).
    pub fn bind_unix(
        path: impl AsRef<Path>,
        limits: Limits,
        handler: impl Fn(&Request) -> crate::Result<Response> + Send + Sync + 'static,
    ) -> crate::Result<Server> {
        Server::start(Listener::Unix(UnixListener::bind(path)?), limits, handler)
    }

    /// Serves an already bound listener (for callers that prepare the socket themselves, such
    /// as the Fn start-up dance) with the given limits profile.
    pub fn start(
        listener: Listener,
        limits: Limits,
        handler: impl Fn(&Request) -> crate::Result<Response> + Send + Sync + 'static,
    ) -> crate::Result<Server> {
        let addr = match &listener {
            Listener::Tcp(l) => ListenAddr::Tcp(l.local_addr()?),
            Listener::Unix(l) => ListenAddr::Unix(l.local_addr()?.as_pathname().map(Into::into)),
        };
        let thread_name = match &addr {
            ListenAddr::Tcp(a) => format!("http-{}", a.port()),
            ListenAddr::Unix(_) => "http-unix".to_string(),
        };
        match &listener {
            Listener::Tcp(l) => l.set_nonblocking(true)?,
            Listener::Unix(l) => l.set_nonblocking(true)?,
        }
        let files = fd_limit::raise_once();
        let capacity = fd_limit::capacity(&limits, files.soft);
        let poll = Poll::new()?;
        let fd = listener.raw_fd();
        poll.registry()
            .register(&mut SourceFd(&fd), LISTENER, Interest::READABLE)?;
        let shared = Arc::new(Shared {
            handler: Box::new(handler),
            addr,
            thread_name,
            capacity,
            stopping: AtomicBool::new(false),
            loop_done: AtomicBool::new(false),
            conns: Mutex::new(Conns::default()),
            returns: Mutex::new(Vec::new()),
            in_flight: AtomicUsize::new(0),
            pool: Pool::new(),
            waker: Waker::new(poll.registry(), WAKE)?,
            loop_thread: Mutex::new(None),
            limits,
        });
        match files.refused {
            None => log::info!(
                target: "http",
                "{}: up to {capacity} connections, {} worker threads (open-file limit {} of hard {})",
                shared.addr, shared.limits.workers, files.soft, files.hard
            ),
            Some(why) => log::warn!(
                target: "http",
                "{}: up to {capacity} connections, {} worker threads; open-file limit stays {} \
                 (hard {}): {why}",
                shared.addr, shared.limits.workers, files.soft, files.hard
            ),
        }
        let event_loop = EventLoop::new(Arc::clone(&shared), poll, listener);
        let handle = thread::Builder::new()
            .name(format!("{}-poll", shared.thread_name))
            .spawn(move || event_loop.run())?;
        *lock(&shared.loop_thread) = Some(handle);
        Ok(Server { shared })
    }

    /// The bound address (the real port when bound to port 0).
    pub fn local_addr(&self) -> &ListenAddr {
        &self.shared.addr
    }

    /// The bound TCP address, or `None` for a unix socket.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        match self.shared.addr {
            ListenAddr::Tcp(a) => Some(a),
            ListenAddr::Unix(_) => None,
        }
    }

    /// Connections currently open: idle, sending a request, or being answered.
    pub fn active_connections(&self) -> usize {
        lock(&self.shared.conns).map.len()
    }

    /// Most connections this server holds open at once: `Limits::max_connections`, kept within
    /// the process's open-file limit.
    pub fn connection_capacity(&self) -> usize {
        self.shared.capacity
    }

    /// The name every worker thread of this server carries (`http-<port>` or `http-unix`); the
    /// readiness loop's thread adds `-poll`.
    pub fn thread_name(&self) -> &str {
        &self.shared.thread_name
    }

    /// A handle that can stop this server from elsewhere.
    pub fn handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Stops accepting, closes idle connections, lets requests in flight finish (their
    /// responses carry `Connection: close`) and waits up to `grace`; then closes the rest.
    /// True when everything finished within `grace`.
    pub fn shutdown(self, grace: Duration) -> bool {
        shutdown(&self.shared, grace)
    }

    /// Blocks until the server is shut down through a [`ShutdownHandle`].
    pub fn wait(self) {
        let join = lock(&self.shared.loop_thread).take();
        if let Some(j) = join {
            let _ = j.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        begin_shutdown(&self.shared);
    }
}

impl ShutdownHandle {
    /// As [`Server::shutdown`].
    pub fn shutdown(&self, grace: Duration) -> bool {
        shutdown(&self.shared, grace)
    }
}

// ---- the hand-back between a worker and the loop (both children of this module use it) ----

/// [`Connection::handoff`] states: with a worker; with a worker, and the loop saw input meanwhile;
/// handed back (its [`Returned`] is queued).
pub(crate) const WITH_WORKER: u8 = 0;
const MISSED: u8 = 1;
const RETURNED: u8 = 2;

/// What a worker does with a connection it is done with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum After {
    KeepAlive,
    /// The worker shut our sending side; input may still be arriving.
    Linger,
    Close,
}

/// A connection a worker is done with, waiting for the loop to take it back.
pub(crate) struct Returned {
    id: u64,
    /// Input the worker read past its request (pipelining).
    leftover: Vec<u8>,
    after: After,
    at: Instant,
}

/// Returns a connection from a worker to the loop (or closes it). The loop takes it back at its
/// next wake-up. For a request without a body to read, the registration stays armed
/// (edge-triggered) while a worker has the connection, so no system call is needed here: input
/// that arrives later wakes the loop, and input that came while the worker had it was recorded
/// by the loop in `handoff`, in which case the loop is woken to read it. A connection the loop
/// took out of the poller (`deregistered`) always wakes it.
pub(crate) fn hand_back(
    shared: &Shared,
    id: u64,
    stream: &Arc<dyn ByteStream>,
    handoff: &AtomicU8,
    deregistered: bool,
    leftover: Vec<u8>,
    after: After,
) {
    let after = if shared.stopping.load(Ordering::SeqCst) {
        After::Close
    } else {
        after
    };
    if after == After::Close {
        stream.shutdown(Shutdown::Both);
    }
    let has_bytes = !leftover.is_empty();
    lock(&shared.returns).push(Returned {
        id,
        leftover,
        after,
        at: Instant::now(),
    });
    // After the push: a loop that sees RETURNED finds the connection in the returns.
    let missed = handoff.swap(RETURNED, Ordering::SeqCst) == MISSED;
    if after == After::Close {
        return;
    }
    if shared.stopping.load(Ordering::SeqCst) {
        // The loop may have taken its last returns already: nobody would close this one.
        stream.shutdown(Shutdown::Both);
        return;
    }
    // A connection taken out of the poller signals nothing until the loop puts it back.
    if has_bytes || missed || deregistered {
        let _ = shared.waker.wake();
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic elsewhere must not take the server down with a poisoned lock.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn begin_shutdown(shared: &Shared) {
    if shared.stopping.swap(true, Ordering::SeqCst) {
        return;
    }
    // The loop closes the listener and every connection not being answered.
    let _ = shared.waker.wake();
}

fn shutdown(shared: &Shared, grace: Duration) -> bool {
    begin_shutdown(shared);
    let deadline = Instant::now() + grace;
    let finished =
        || shared.loop_done.load(Ordering::SeqCst) && shared.in_flight.load(Ordering::SeqCst) == 0;
    while !finished() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(5));
    }
    let clean = finished();
    if !clean {
        // Blocked reads and writes fail at once; their workers then close the connections.
        // (Once the loop is done, the table holds exactly the connections still being answered.)
        for slot in lock(&shared.conns).map.values() {
            slot.stream.shutdown(Shutdown::Both);
        }
    }
    if shared.loop_done.load(Ordering::SeqCst) {
        if let Some(j) = lock(&shared.loop_thread).take() {
            let _ = j.join();
        }
    }
    clean
}
