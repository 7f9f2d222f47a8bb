//! The server loop: accept on a TCP or unix listener, one thread per connection from a bounded
//! set, keep-alive, timeouts, the answer to every refusal, and graceful shutdown.
//!
//! Only this module (through `conn`) touches sockets. Design: the accept thread counts busy
//! connection slots; when all `max_connections` are taken it answers `503` + `Retry-After` +
//! `Connection: close` itself and never queues. Otherwise it spawns a thread for the connection,
//! which serves requests strictly in order (pipelining included) until close; threads exit with
//! their connection, so an idle server holds one thread. `accept()` errors are logged and
//! survived (resource errors after a short pause). Each handler call runs under `catch_unwind`.
//! It does not route, does not speak TLS (the load balancer does), and does not do HTTP/2.

use std::collections::HashMap;
use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::unix::net::{UnixListener, UnixStream};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::conn::{ConnIo, FillError, Transport};
use super::limits::Limits;
use super::request::{self, BodyState, Framing, Reject, Request, Source};
use super::response::{self, Response, WriteMode};

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

/// Where a server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    /// A TCP address; the real port when bound to port 0.
    Tcp(SocketAddr),
    /// A unix socket path (`None` for an unnamed socket).
    Unix(Option<PathBuf>),
}

struct ConnEntry {
    transport: Arc<dyn Transport>,
    idle: AtomicBool,
}

struct Shared {
    limits: Limits,
    handler: Box<Handler>,
    addr: ListenAddr,
    thread_name: String,
    stopping: AtomicBool,
    accept_done: AtomicBool,
    active: AtomicUsize,
    next_id: AtomicU64,
    conns: Mutex<HashMap<u64, Arc<ConnEntry>>>,
    accept_thread: Mutex<Option<JoinHandle<()>>>,
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
        let shared = Arc::new(Shared {
            limits,
            handler: Box::new(handler),
            addr,
            thread_name,
            stopping: AtomicBool::new(false),
            accept_done: AtomicBool::new(false),
            active: AtomicUsize::new(0),
            next_id: AtomicU64::new(0),
            conns: Mutex::new(HashMap::new()),
            accept_thread: Mutex::new(None),
        });
        let s = Arc::clone(&shared);
        let join = thread::Builder::new()
            .name(format!("{}-accept", shared.thread_name))
            .spawn(move || {
                accept_loop(&s, listener);
                s.accept_done.store(true, Ordering::SeqCst);
            })?;
        *lock(&shared.accept_thread) = Some(join);
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

    /// Connections currently open (each holds one thread).
    pub fn active_connections(&self) -> usize {
        self.shared.active.load(Ordering::SeqCst)
    }

    /// The name every connection thread of this server carries (`http-<port>` or `http-unix`).
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
        let join = lock(&self.shared.accept_thread).take();
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

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic elsewhere must not take the server down with a poisoned lock.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn begin_shutdown(shared: &Shared) {
    if shared.stopping.swap(true, Ordering::SeqCst) {
        return;
    }
    // Wake the blocked accept() with a throwaway connection.
    match &shared.addr {
        ListenAddr::Tcp(a) => {
            let mut a = *a;
            if a.ip().is_unspecified() {
                a.set_ip(match a {
                    SocketAddr::V4(_) => [127, 0, 0, 1].into(),
                    SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
                });
            }
            let _ = TcpStream::connect_timeout(&a, Duration::from_secs(1));
        }
        ListenAddr::Unix(Some(p)) => {
            let _ = UnixStream::connect(p);
        }
        ListenAddr::Unix(None) => {}
    }
    close_idle(shared);
}

fn close_idle(shared: &Shared) {
    for entry in lock(&shared.conns).values() {
        if entry.idle.load(Ordering::SeqCst) {
            entry.transport.shutdown(Shutdown::Both);
        }
    }
}

fn shutdown(shared: &Shared, grace: Duration) -> bool {
    begin_shutdown(shared);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline
        && (shared.active.load(Ordering::SeqCst) > 0 || !shared.accept_done.load(Ordering::SeqCst))
    {
        close_idle(shared);
        thread::sleep(Duration::from_millis(5));
    }
    let clean = shared.active.load(Ordering::SeqCst) == 0;
    if !clean {
        for entry in lock(&shared.conns).values() {
            entry.transport.shutdown(Shutdown::Both);
        }
    }
    if shared.accept_done.load(Ordering::SeqCst) {
        if let Some(j) = lock(&shared.accept_thread).take() {
            let _ = j.join();
        }
    }
    clean
}

fn accept_loop(shared: &Arc<Shared>, listener: Listener) {
    let mut failures = 0u64;
    while !shared.stopping.load(Ordering::SeqCst) {
        let accepted: io::Result<(Arc<dyn Transport>, Option<SocketAddr>)> = match &listener {
            Listener::Tcp(l) => l.accept().map(|(s, a)| {
                let _ = s.set_nodelay(true);
                (Arc::new(s) as Arc<dyn Transport>, Some(a))
            }),
            Listener::Unix(l) => l
                .accept()
                .map(|(s, _)| (Arc::new(s) as Arc<dyn Transport>, None)),
        };
        match accepted {
            Ok((transport, peer)) => {
                failures = 0;
                if shared.stopping.load(Ordering::SeqCst) {
                    break;
                }
                dispatch(shared, transport, peer);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionAborted
                        | io::ErrorKind::ConnectionReset
                        | io::ErrorKind::Interrupted
                ) =>
            {
                log::debug!(target: "http", "accept: {e} (continuing)");
            }
            Err(e) => {
                // EMFILE, ENFILE, ENOBUFS, ENOMEM and anything unexpected: never end the loop
                // (a dead accept thread in a live process is the worst outcome), just pause.
                failures += 1;
                if failures == 1 || failures % 100 == 0 {
                    log::warn!(target: "http", "accept failed ({failures} in a row): {e}; retrying");
                }
                thread::sleep(shared.limits.accept_backoff);
            }
        }
    }
}

/// Frees a connection slot when the connection's thread ends, however it ends.
struct SlotGuard {
    shared: Arc<Shared>,
    id: u64,
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        lock(&self.shared.conns).remove(&self.id);
        self.shared.active.fetch_sub(1, Ordering::SeqCst);
    }
}

fn dispatch(shared: &Arc<Shared>, transport: Arc<dyn Transport>, peer: Option<SocketAddr>) {
    let limits = &shared.limits;
    if shared.active.load(Ordering::SeqCst) >= limits.max_connections {
        answer_busy(transport, limits.retry_after_secs);
        return;
    }
    let _ = transport.set_write_timeout(limits.write_timeout);
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let entry = Arc::new(ConnEntry {
        transport: Arc::clone(&transport),
        idle: AtomicBool::new(false),
    });
    shared.active.fetch_add(1, Ordering::SeqCst);
    lock(&shared.conns).insert(id, Arc::clone(&entry));
    let guard = SlotGuard {
        shared: Arc::clone(shared),
        id,
    };
    let s = Arc::clone(shared);
    let spawned = thread::Builder::new()
        .name(shared.thread_name.clone())
        .spawn(move || {
            let _guard = guard;
            let io = ConnIo::new(
                Arc::clone(&entry.transport),
                s.limits.max_head_bytes,
                s.limits.read_timeout,
            );
            // The handler already runs under catch_unwind; this catches a panic in our own code
            // or a response body reader, so the slot is still freed (by the guard) and logged.
            if catch_unwind(AssertUnwindSafe(|| serve_connection(&s, &entry, io, peer))).is_err() {
                log::error!(target: "http", "connection thread panicked; connection closed");
            }
        });
    if spawned.is_err() {
        // The guard went down with the closure and freed the slot.
        log::warn!(target: "http", "could not start a connection thread; answering 503");
        answer_busy(transport, limits.retry_after_secs);
    }
}

/// The accept thread's fast refusal: never blocks, never reads a request.
fn answer_busy(transport: Arc<dyn Transport>, retry_after: u32) {
    let _ = transport.set_nonblocking(true);
    let io = ConnIo::new(Arc::clone(&transport), 64, None);
    let resp = Response::error(503, None).with_header("Retry-After", retry_after.to_string());
    let mode = WriteMode {
        head_only: false,
        close: true,
        http10: false,
    };
    let _ = response::write(&io, resp, mode);
    transport.shutdown(Shutdown::Write);
    log::info!(target: "access", "- - 503 0 0ms - (all connection slots busy)");
}

/// Access-log fields for one request.
struct Access<'a> {
    method: &'a str,
    path: &'a str,
    id: &'a str,
    started: Instant,
}

fn log_access(a: &Access<'_>, status: u16, bytes: u64) {
    log::info!(
        target: "access",
        "{} {} {} {} {}ms {}",
        a.method,
        a.path,
        status,
        bytes,
        a.started.elapsed().as_millis(),
        a.id
    );
}

/// Answers a refusal decided before the handler, then closes politely.
fn refuse(shared: &Shared, io: ConnIo, rej: Reject, access: &Access<'_>) {
    let mode = WriteMode {
        head_only: access.method == "HEAD",
        close: true,
        http10: false,
    };
    let resp = Response::error(rej.status, Some(rej.reason));
    let bytes = response::write(&io, resp, mode).unwrap_or(0);
    log_access(access, rej.status, bytes);
    io.linger_close(256 * 1024, shared.limits.drain_timeout);
}

fn serve_connection(
    shared: &Arc<Shared>,
    entry: &ConnEntry,
    mut io: ConnIo,
    peer: Option<SocketAddr>,
) {
    let limits = &shared.limits;
    loop {
        if io.buffered().is_empty() {
            entry.idle.store(true, Ordering::SeqCst);
            if shared.stopping.load(Ordering::SeqCst) {
                return;
            }
            // Idle wait: no answer on timeout or EOF, just close (RFC 9112 §9.5).
            if io.fill(None, Some(limits.idle_timeout)).is_err() {
                return;
            }
        }
        entry.idle.store(false, Ordering::SeqCst);
        let started = Instant::now();
        let mut access = Access {
            method: "-",
            path: "-",
            id: "-",
            started,
        };
        let head_deadline = limits.head_timeout.map(|t| started + t);
        let (head, used) = loop {
            match request::parse_head(io.buffered(), limits) {
                Ok(Some(parsed)) => break parsed,
                Ok(None) => match io.fill(head_deadline, None) {
                    Ok(_) => {}
                    Err(FillError::Timeout) => {
                        let rej = Reject {
                            status: 408,
                            reason: "request head not received in time",
                        };
                        return refuse(shared, io, rej, &access);
                    }
                    Err(FillError::Full) => {
                        let rej = Reject {
                            status: 431,
                            reason: "request head too large",
                        };
                        return refuse(shared, io, rej, &access);
                    }
                    // The client went away mid-head: nobody to answer.
                    Err(FillError::Eof | FillError::Io) => return,
                },
                Err(rej) => return refuse(shared, io, rej, &access),
            }
        };
        io.consume(used);
        access.method = &head.method;
        let checked = request::check_target(&head).and_then(|(path, query)| {
            let framing = request::framing(&head)?;
            let expect = request::expects_continue(&head)?;
            if let Framing::Length(n) = framing {
                if n > limits.max_body_bytes {
                    return Err(Reject {
                        status: 413,
                        reason: "request body too large",
                    });
                }
            }
            Ok((path, query, framing, expect))
        });
        let (path, query, framing, expect) = match checked {
            Ok(v) => v,
            Err(rej) => return refuse(shared, io, rej, &access),
        };
        let client_close = request::client_wants_close(&head);
        let http10 = head.version == request::Version::Http10;
        let req = Request {
            request_id: request::request_id(&head),
            method: head.method.clone(),
            path,
            query,
            version: head.version,
            headers: head.headers,
            peer,
            framing,
            body: std::cell::RefCell::new(BodyState::new(
                Source::Conn(io),
                framing,
                limits,
                expect,
            )),
        };
        let outcome = catch_unwind(AssertUnwindSafe(|| (shared.handler)(&req)));
        let mut state = req.body.borrow_mut();
        let (mut resp, mut close) = match outcome {
            Ok(Ok(resp)) => (resp, false),
            Ok(Err(e)) => {
                let status = e.status();
                if status >= 500 {
                    log::error!(target: "http", "{} {}: {e}", req.request_id, req.path);
                } else {
                    log::debug!(target: "http", "{} {}: {e}", req.request_id, req.path);
                }
                let detail = match &e {
                    crate::Error::BadRequest { reason, .. } => Some(reason.as_str()),
                    _ => None,
                };
                (Response::error(status, detail), false)
            }
            Err(_) => {
                log::error!(target: "http", "{} {}: handler panicked", req.request_id, req.path);
                (Response::error(500, None), true)
            }
        };
        if let Some(f) = state.failure {
            // The body was bad (truncated, too slow, malformed, too big): that is the answer,
            // and the connection's framing can no longer be trusted.
            resp = Response::error(f.status(), None);
            close = true;
        }
        close = close
            || client_close
            || resp.asks_close()
            || resp.needs_close_delimiting(http10)
            || shared.stopping.load(Ordering::SeqCst);
        if !close && !state.drain(limits.drain_max_bytes, limits.drain_timeout) {
            close = true;
        }
        let Source::Conn(conn) = std::mem::replace(&mut state.source, Source::Taken) else {
            unreachable!("the connection is put in every request");
        };
        io = conn;
        let body_unread = !state.done;
        drop(state);
        if resp.is_abort() {
            log::info!(target: "access", "{} {} aborted {} (connection dropped)", req.method, req.path, req.request_id);
            io.transport.shutdown(Shutdown::Both);
            return;
        }
        let access = Access {
            method: &req.method,
            path: &req.path,
            id: &req.request_id,
            started,
        };
        let status = resp.status();
        let mode = WriteMode {
            head_only: req.method == "HEAD",
            close,
            http10,
        };
        let written = response::write(&io, resp, mode);
        log_access(&access, status, *written.as_ref().unwrap_or(&0));
        if written.is_err() {
            return;
        }
        if close {
            if body_unread {
                io.linger_close(256 * 1024, limits.drain_timeout);
            } else {
                io.transport.shutdown(Shutdown::Both);
            }
            return;
        }
    }
}
