//! The readiness loop: one thread that owns the listener and every connection not being
//! answered, on epoll (through `mio`), and never blocks on a client.
//!
//! It accepts (surviving `accept()` errors: resource errors pause accepting for a moment), reads
//! request heads without blocking into a per-connection buffer that holds only what arrived,
//! and refuses bad heads itself (`400`/`413`/`414`/`417`/`431`/`501`/`505` + close). A complete
//! head goes to the worker pool once its body is either all there, or has filled the buffer, or
//! the client waits for `100 Continue`: so a client that stalls before sending the start of its
//! body costs a buffer here, never a worker. The loop also enforces the connection-level
//! clocks (idle timeout: silent close; head and pre-read body deadlines: `408` + close), answers
//! `503` + `Retry-After` to requests that waited `queue_timeout` for a worker, answers the
//! health check itself (`200`, close) when every worker is taken (`Limits::busy_health_path`),
//! and lingers after closing answers, discarding input for a moment so the answer is not lost
//! to a reset.
//! Workers hand connections back through [`hand_back`]; only the loop changes the table of
//! connections, so its per-event work takes no contended lock.
//!
//! The registration is edge-triggered: a connection is read until the read would block, or
//! until its request is ready for a worker. While a worker answers a request with nothing left
//! to read, the registration stays: input arriving meanwhile is noted and read as soon as the
//! worker hands the connection back. A connection whose body the worker still has to read
//! leaves the poller until then, so an upload's segments do not wake the loop.

use std::collections::HashMap;
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use super::workers::{self, Grow, Job, SPILL_DELAY};
use super::{lock, After, Listener, Returned, Shared, MISSED, WITH_WORKER};
use crate::http::chunked::ChunkedDecoder;
use crate::http::conn::ByteStream;
use crate::http::request::{self, Framing, Head, Reject};
use crate::http::response::{self, Response, WriteMode};

/// The listener's token; connections use their id.
pub(crate) const LISTENER: Token = Token(0);
/// The token of the waker that [`hand_back`] and shutdown use.
pub(crate) const WAKE: Token = Token(1);
const FIRST_ID: u64 = 2;

/// Requests queued together at most (the rest of a wake-up's requests follow in later groups).
const DISPATCH_BATCH: usize = 16;
/// Connections accepted per wake-up before the loop serves other events.
const ACCEPT_BATCH: usize = 256;
/// Most input discarded while lingering after a closing answer.
const LINGER_BYTES: u64 = 256 * 1024;
/// Clocks are checked at most this often (and at least once a second while connections exist).
const SWEEP_MIN: Duration = Duration::from_millis(20);
const SWEEP_MAX: Duration = Duration::from_secs(1);

/// Every open connection, by id. Only the loop changes it (shutdown reads it).
#[derive(Default)]
pub(crate) struct Conns {
    pub(crate) map: HashMap<u64, Connection>,
}

pub(crate) struct Connection {
    pub(crate) stream: Arc<dyn ByteStream>,
    peer: Option<SocketAddr>,
    pub(crate) phase: Phase,
    /// Bytes read and not yet handed to a worker (a partial head, then the start of a body).
    pending: Vec<u8>,
    /// Shared with the worker that has the connection (see [`hand_back`]).
    handoff: Arc<AtomicU8>,
    /// The connection signalled input while a worker had it: the edge is spent, so the loop
    /// reads as soon as it takes the connection back.
    missed: bool,
    /// Registered with the poller. A request whose body is still to come is taken out while a
    /// worker reads it, or every arriving segment of an upload would wake the loop for nothing.
    registered: bool,
}

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Waiting for the first byte of a request, since then.
    Idle(Instant),
    /// Head incomplete; its first byte came then.
    Head(Instant),
    /// Head complete at `head_done`; the start of the body is arriving (the pre-read).
    Body {
        started: Instant,
        head_done: Instant,
    },
    /// Queued for a worker, or with one.
    Busy,
    /// Answered with close; discarding input until then.
    Linger { until: Instant, discarded: u64 },
}

/// A head that passed every check, with what the worker needs.
struct Parsed {
    head: Head,
    used: usize,
    path: String,
    query: Option<String>,
    framing: Framing,
    expect: bool,
    /// The whole body is in the buffer.
    complete: bool,
}

pub(crate) struct EventLoop {
    shared: Arc<Shared>,
    poll: Poll,
    listener: Option<Listener>,
    /// Where reads land before they are appended to a connection's pending bytes.
    scratch: Box<[u8]>,
    /// Output room for checking whether a chunked body is complete.
    chunk_scratch: Box<[u8]>,
    next_id: u64,
    /// The listener may have connections waiting (edge-triggered: accept until it would block).
    accept_more: bool,
    accept_paused_until: Option<Instant>,
    accept_failures: u64,
    next_sweep: Option<Instant>,
    last_sweep: Instant,
    /// When to check whether queued jobs need another worker.
    spill_at: Option<Instant>,
    /// Reused for taking [`Returned`] connections without allocating.
    returned: Vec<Returned>,
    /// Requests made ready in this wake-up, queued together (one lock, fewer wake-ups).
    ready: Vec<Job>,
}

impl EventLoop {
    pub(crate) fn new(shared: Arc<Shared>, poll: Poll, listener: Listener) -> EventLoop {
        let size = shared.limits.max_head_bytes.max(64);
        EventLoop {
            shared,
            poll,
            listener: Some(listener),
            scratch: vec![0u8; size].into_boxed_slice(),
            chunk_scratch: vec![0u8; 4096].into_boxed_slice(),
            next_id: FIRST_ID,
            accept_more: true,
            accept_paused_until: None,
            accept_failures: 0,
            next_sweep: None,
            last_sweep: Instant::now(),
            spill_at: None,
            returned: Vec::new(),
            ready: Vec::new(),
        }
    }

    pub(crate) fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        loop {
            let timeout = self.poll_timeout(Instant::now());
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() != io::ErrorKind::Interrupted {
                    log::error!(target: "http", "poll failed: {e}");
                    std::thread::sleep(Duration::from_millis(10));
                }
                continue;
            }
            if self.shared.stopping.load(Ordering::SeqCst) {
                break;
            }
            // Connections workers handed back first: an event may be about one of them.
            self.take_back();
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept_more = true,
                    WAKE => {}
                    Token(id) => self.advance(id as u64),
                }
            }
            self.dispatch();
            if self.accept_more {
                self.accept();
            }
            self.dispatch();
            let now = Instant::now();
            if self.spill_at.is_some_and(|t| t <= now) {
                let (grow, next) = self.shared.pool.spill(now, self.shared.limits.workers);
                if grow == Grow::Spawn {
                    workers::spawn(&self.shared);
                }
                self.spill_at = next;
            }
            if self.next_sweep.is_some_and(|t| t <= now) {
                self.sweep(now);
            }
        }
        self.stop();
    }

    /// Applies what workers handed back since the last wake-up.
    fn take_back(&mut self) {
        std::mem::swap(&mut *lock(&self.shared.returns), &mut self.returned);
        if self.returned.is_empty() {
            return;
        }
        let mut returned = std::mem::take(&mut self.returned);
        let shared = Arc::clone(&self.shared);
        for r in returned.drain(..) {
            let mut conns = lock(&shared.conns);
            let Some(slot) = conns.map.get_mut(&r.id) else {
                continue;
            };
            if !slot.registered && r.after != After::Close {
                // Registering reports input that is already there, like an edge would have.
                let fd = slot.stream.raw_fd();
                let token = Token(r.id as usize);
                if self
                    .poll
                    .registry()
                    .register(&mut SourceFd(&fd), token, Interest::READABLE)
                    .is_err()
                {
                    slot.stream.shutdown(Shutdown::Both);
                    conns.map.remove(&r.id);
                    continue;
                }
                slot.registered = true;
            }
            match r.after {
                After::Close => {
                    conns.map.remove(&r.id);
                }
                After::Linger => {
                    let until = r.at + shared.limits.drain_timeout;
                    slot.phase = Phase::Linger {
                        until,
                        discarded: 0,
                    };
                    self.due(until);
                    if std::mem::take(&mut slot.missed) && discard(slot) {
                        conns.map.remove(&r.id);
                    }
                }
                After::KeepAlive => {
                    slot.phase = if r.leftover.is_empty() {
                        Phase::Idle(r.at)
                    } else {
                        Phase::Head(r.at)
                    };
                    slot.pending = r.leftover;
                    // Pipelined bytes (maybe a whole request) or input that came meanwhile: no
                    // event will say so again.
                    if !slot.pending.is_empty() || std::mem::take(&mut slot.missed) {
                        drop(conns);
                        self.advance(r.id);
                    }
                }
            }
        }
        self.returned = returned;
    }

    fn poll_timeout(&self, now: Instant) -> Option<Duration> {
        let mut wake_at = match (self.next_sweep, self.spill_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if self.accept_more {
            let accept_at = self.accept_paused_until.unwrap_or(now);
            wake_at = Some(wake_at.map_or(accept_at, |t| t.min(accept_at)));
        }
        wake_at.map(|t| t.saturating_duration_since(now))
    }

    /// Makes sure the clocks are checked by `at` (but not more often than `SWEEP_MIN`).
    fn due(&mut self, at: Instant) {
        let at = at.max(self.last_sweep + SWEEP_MIN);
        self.next_sweep = Some(self.next_sweep.map_or(at, |t| t.min(at)));
    }

    fn accept(&mut self) {
        let now = Instant::now();
        if let Some(t) = self.accept_paused_until {
            if now < t {
                return;
            }
            self.accept_paused_until = None;
        }
        for _ in 0..ACCEPT_BATCH {
            let accepted: io::Result<(Arc<dyn ByteStream>, Option<SocketAddr>)> =
                match &self.listener {
                    Some(Listener::Tcp(l)) => l.accept().map(|(s, a)| {
                        let _ = s.set_nodelay(true);
                        (Arc::new(s) as Arc<dyn ByteStream>, Some(a))
                    }),
                    Some(Listener::Unix(l)) => l
                        .accept()
                        .map(|(s, _)| (Arc::new(s) as Arc<dyn ByteStream>, None)),
                    None => return,
                };
            match accepted {
                Ok((stream, peer)) => {
                    self.accept_failures = 0;
                    self.admit(stream, peer, now);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.accept_more = false;
                    return;
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
                    // EMFILE, ENFILE, ENOBUFS, ENOMEM and anything unexpected: never stop
                    // accepting for good (a dead listener in a live process is the worst
                    // outcome); pause so a full descriptor table does not spin a core.
                    self.accept_failures += 1;
                    let n = self.accept_failures;
                    if n == 1 || n % 100 == 0 {
                        log::warn!(target: "http", "accept failed ({n} in a row): {e}; retrying");
                    }
                    self.accept_paused_until = Some(now + self.shared.limits.accept_backoff);
                    return;
                }
            }
        }
    }

    /// Registers a new connection, making room by closing the longest-idle one when at
    /// capacity, or answering `503` when nothing is idle.
    fn admit(&mut self, stream: Arc<dyn ByteStream>, peer: Option<SocketAddr>, now: Instant) {
        let limits = &self.shared.limits;
        if stream.set_nonblocking(true).is_err() {
            return;
        }
        // Applies only in blocking mode, i.e. while a worker writes.
        let _ = stream.set_write_timeout(limits.write_timeout);
        let mut conns = lock(&self.shared.conns);
        if conns.map.len() >= self.shared.capacity {
            let oldest_idle = conns
                .map
                .iter()
                .filter_map(|(id, s)| match s.phase {
                    Phase::Idle(since) if s.pending.is_empty() => Some((since, *id)),
                    _ => None,
                })
                .min();
            match oldest_idle {
                Some((_, id)) => {
                    if let Some(old) = conns.map.remove(&id) {
                        old.stream.shutdown(Shutdown::Both);
                    }
                    log::debug!(target: "http", "at {} connections: closed the longest-idle one", self.shared.capacity);
                }
                None => {
                    drop(conns);
                    let busy = Response::error(503, None)
                        .with_header("Retry-After", limits.retry_after_secs.to_string());
                    write_closing(&*stream, busy, false);
                    stream.shutdown(Shutdown::Both);
                    log::info!(target: "access", "- - 503 0 0ms - (at the connection limit, {})", self.shared.capacity);
                    return;
                }
            }
        }
        let id = self.next_id;
        self.next_id += 1;
        let fd = stream.raw_fd();
        if self
            .poll
            .registry()
            .register(&mut SourceFd(&fd), Token(id as usize), Interest::READABLE)
            .is_err()
        {
            return;
        }
        conns.map.insert(
            id,
            Connection {
                stream,
                peer,
                phase: Phase::Idle(now),
                pending: Vec::new(),
                handoff: Arc::new(AtomicU8::new(WITH_WORKER)),
                missed: false,
                registered: true,
            },
        );
        drop(conns);
        let idle_check = limits.idle_timeout.map_or(SWEEP_MAX, |t| t.min(SWEEP_MAX));
        self.due(now + idle_check);
    }

    /// Reads what a connection sent and acts on it: wait for more, refuse, or dispatch.
    fn advance(&mut self, id: u64) {
        let shared = Arc::clone(&self.shared);
        let limits = &shared.limits;
        let mut conns = lock(&shared.conns);
        let Some(slot) = conns.map.get_mut(&id) else {
            return;
        };
        match slot.phase {
            Phase::Busy => {
                slot.missed = true;
                let with_worker = slot
                    .handoff
                    .compare_exchange(WITH_WORKER, MISSED, Ordering::SeqCst, Ordering::SeqCst)
                    .map_or_else(|state| state == MISSED, |_| true);
                if !with_worker {
                    // Handed back just now: take it back, which reads what came.
                    drop(conns);
                    self.take_back();
                }
                return;
            }
            Phase::Linger { .. } => {
                if discard(slot) {
                    conns.map.remove(&id);
                }
                return;
            }
            Phase::Idle(_) | Phase::Head(_) | Phase::Body { .. } => {}
        }
        let mut eof = false;
        loop {
            let now = Instant::now();
            if !slot.pending.is_empty() {
                match self.evaluate(&slot.pending) {
                    Err((rej, method)) => {
                        self.refuse(slot, rej, method.as_deref(), None, now);
                        if discard(slot) {
                            conns.map.remove(&id);
                        }
                        return;
                    }
                    Ok(Some(parsed)) => {
                        let (started, head_done) = match slot.phase {
                            Phase::Body { started, head_done } => (started, head_done),
                            Phase::Head(started) => (started, now),
                            _ => (now, now),
                        };
                        let ready = parsed.expect
                            || parsed.complete
                            || eof
                            || slot.pending.len() >= limits.max_head_bytes;
                        if ready && parsed.complete && self.answers_health(&parsed) {
                            let resp = Response::new(200).with_header("Cache-Control", "no-store");
                            write_closing(&*slot.stream, resp, parsed.head.method == "HEAD");
                            log::info!(
                                target: "access",
                                "{} {} 200 0 0ms {} (answered by the readiness loop: every worker busy)",
                                parsed.head.method,
                                parsed.path,
                                request::request_id(&parsed.head)
                            );
                            self.linger(slot, now);
                            if discard(slot) {
                                conns.map.remove(&id);
                            }
                            return;
                        }
                        if ready {
                            slot.phase = Phase::Busy;
                            slot.missed = false;
                            slot.handoff.store(WITH_WORKER, Ordering::SeqCst);
                            if !parsed.complete {
                                let fd = slot.stream.raw_fd();
                                let gone = self.poll.registry().deregister(&mut SourceFd(&fd));
                                slot.registered = gone.is_err();
                            }
                            let job = Job {
                                deregistered: !slot.registered,
                                handoff: Arc::clone(&slot.handoff),
                                id,
                                stream: Arc::clone(&slot.stream),
                                peer: slot.peer,
                                head: parsed.head,
                                path: parsed.path,
                                query: parsed.query,
                                framing: parsed.framing,
                                expect: parsed.expect,
                                bytes: std::mem::take(&mut slot.pending),
                                head_len: parsed.used,
                                started,
                                head_done,
                                queued: now,
                            };
                            drop(conns);
                            self.ready.push(job);
                            if self.ready.len() >= DISPATCH_BATCH {
                                self.dispatch();
                            }
                            return;
                        }
                        if !matches!(slot.phase, Phase::Body { .. }) {
                            slot.phase = Phase::Body { started, head_done };
                            if let Some(t) = limits.body_timeout {
                                self.due(head_done + t);
                            }
                        }
                    }
                    Ok(None) => {}
                }
            }
            if eof {
                // Idle or mid-head: nobody to answer (RFC 9112 §9.5). A pre-read body went
                // to a worker above, whose handler meets the end of input.
                slot.stream.shutdown(Shutdown::Both);
                conns.map.remove(&id);
                return;
            }
            let space = limits.max_head_bytes.saturating_sub(slot.pending.len());
            if space == 0 {
                // Unreachable: a full buffer holds a complete head (dispatched) or is a 431.
                slot.stream.shutdown(Shutdown::Both);
                conns.map.remove(&id);
                return;
            }
            match slot.stream.read_some(&mut self.scratch[..space]) {
                Ok(0) => eof = true,
                Ok(n) => {
                    if let Phase::Idle(_) = slot.phase {
                        slot.phase = Phase::Head(now);
                        if let Some(t) = limits.head_timeout {
                            self.due(now + t);
                        }
                    }
                    slot.pending.extend_from_slice(&self.scratch[..n]);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    slot.stream.shutdown(Shutdown::Both);
                    conns.map.remove(&id);
                    return;
                }
            }
        }
    }

    /// Whether this complete request is the health check (`Limits::busy_health_path`) arriving
    /// while every worker is taken, so the loop answers it instead of queueing it.
    fn answers_health(&self, parsed: &Parsed) -> bool {
        let shared = &self.shared;
        shared.limits.busy_health_path == Some(parsed.path.as_str())
            && parsed.query.is_none()
            && matches!(parsed.head.method.as_str(), "GET" | "HEAD")
            && parsed.framing == Framing::Length(0)
            && shared.in_flight.load(Ordering::SeqCst) + self.ready.len() >= shared.limits.workers
    }

    /// Parses the buffered bytes: `Ok(None)` needs more, an error is a refusal (with the
    /// method when the head got that far).
    fn evaluate(&mut self, pending: &[u8]) -> Result<Option<Parsed>, (Reject, Option<String>)> {
        let limits = &self.shared.limits;
        let Some((head, used)) = request::parse_head(pending, limits).map_err(|r| (r, None))?
        else {
            return Ok(None);
        };
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
            Err(rej) => return Err((rej, Some(head.method))),
        };
        let body = &pending[used..];
        let complete = match framing {
            Framing::Length(n) => body.len() as u64 >= n,
            Framing::Chunked => chunked_complete(body, limits, &mut self.chunk_scratch),
        };
        Ok(Some(Parsed {
            head,
            used,
            path,
            query,
            framing,
            expect,
            complete,
        }))
    }

    /// Queues the requests made ready since the last call, in one go.
    fn dispatch(&mut self) {
        if self.ready.is_empty() {
            return;
        }
        let now = Instant::now();
        let shared = Arc::clone(&self.shared);
        shared
            .in_flight
            .fetch_add(self.ready.len(), Ordering::SeqCst);
        for _ in 0..shared.pool.push(&mut self.ready, shared.limits.workers) {
            workers::spawn(&shared);
        }
        self.due(now + shared.limits.queue_timeout);
        self.spill_at.get_or_insert(now + SPILL_DELAY);
    }

    /// Answers a refusal without blocking and starts lingering.
    fn refuse(
        &self,
        slot: &mut Connection,
        rej: Reject,
        method: Option<&str>,
        path: Option<&str>,
        now: Instant,
    ) {
        let resp = Response::error(rej.status, Some(rej.reason));
        write_closing(&*slot.stream, resp, method == Some("HEAD"));
        log::info!(
            target: "access",
            "{} {} {} 0 0ms -",
            method.unwrap_or("-"),
            path.unwrap_or("-"),
            rej.status
        );
        self.linger(slot, now);
    }

    fn linger(&self, slot: &mut Connection, now: Instant) {
        slot.stream.shutdown(Shutdown::Write);
        slot.pending = Vec::new();
        slot.phase = Phase::Linger {
            until: now + self.shared.limits.drain_timeout,
            discarded: 0,
        };
    }

    /// Checks every clock: queue waits, idle, head and body deadlines, lingers.
    fn sweep(&mut self, now: Instant) {
        self.last_sweep = now;
        self.next_sweep = None;
        let shared = Arc::clone(&self.shared);
        let limits = &shared.limits;
        let expired = shared.pool.expired(now, limits.queue_timeout);
        let mut conns = lock(&shared.conns);
        for job in expired {
            shared.in_flight.fetch_sub(1, Ordering::SeqCst);
            if let Some(slot) = conns.map.get_mut(&job.id) {
                let busy = Response::error(503, None)
                    .with_header("Retry-After", limits.retry_after_secs.to_string());
                write_closing(&*slot.stream, busy, job.head.method == "HEAD");
                log::info!(
                    target: "access",
                    "{} {} 503 0 {}ms {} (every worker busy)",
                    job.head.method,
                    job.path,
                    job.started.elapsed().as_millis(),
                    request::request_id(&job.head)
                );
                self.linger(slot, now);
            }
        }
        let mut next: Option<Instant> = None;
        let mut soonest = |t: Instant| next = Some(next.map_or(t, |n: Instant| n.min(t)));
        let mut gone = Vec::new();
        for (&id, slot) in conns.map.iter_mut() {
            let (deadline, late) = match slot.phase {
                Phase::Idle(since) => (limits.idle_timeout.map(|t| since + t), None),
                Phase::Head(since) => (
                    limits.head_timeout.map(|t| since + t),
                    Some("request head not received in time"),
                ),
                Phase::Body { head_done, .. } => (
                    limits.body_timeout.map(|t| head_done + t),
                    Some("request body deadline passed"),
                ),
                Phase::Linger { until, .. } => (Some(until), None),
                Phase::Busy => (None, None),
            };
            let Some(deadline) = deadline else { continue };
            if deadline > now {
                soonest(deadline);
                continue;
            }
            match late {
                Some(reason) => {
                    let (method, path) = head_for_log(&slot.pending, limits);
                    let rej = Reject {
                        status: 408,
                        reason,
                    };
                    self.refuse(slot, rej, method.as_deref(), path.as_deref(), now);
                    if discard(slot) {
                        gone.push(id);
                    } else {
                        soonest(now + limits.drain_timeout);
                    }
                }
                None => {
                    // Idle too long (closed without an answer, RFC 9112 §9.5) or done lingering.
                    slot.stream.shutdown(Shutdown::Both);
                    gone.push(id);
                }
            }
        }
        for id in gone {
            conns.map.remove(&id);
        }
        let open = !conns.map.is_empty();
        drop(conns);
        if let Some(t) = shared.pool.oldest() {
            soonest(t + limits.queue_timeout);
        }
        if open {
            soonest(now + SWEEP_MAX);
        }
        if let Some(t) = next {
            self.due(t);
        }
    }

    /// Stops accepting, closes every connection not being answered, and lets the workers end
    /// once the queue is empty.
    fn stop(&mut self) {
        if let Some(listener) = self.listener.take() {
            let fd = listener.raw_fd();
            let _ = self.poll.registry().deregister(&mut SourceFd(&fd));
        }
        // Connections handed back from now on are closed by their workers; requests already
        // read are still answered (with close).
        self.take_back();
        self.dispatch();
        lock(&self.shared.conns).map.retain(|_, slot| {
            if slot.phase == Phase::Busy {
                return true;
            }
            slot.stream.shutdown(Shutdown::Both);
            false
        });
        self.shared.pool.close();
        self.shared.loop_done.store(true, Ordering::SeqCst);
    }
}

/// Whether a chunked body is all in `body` (or is malformed: the handler meets that, so the
/// request goes to a worker either way).
fn chunked_complete(body: &[u8], limits: &crate::http::Limits, out: &mut [u8]) -> bool {
    if body.is_empty() {
        return false;
    }
    let mut decoder = ChunkedDecoder::new(
        limits.max_body_bytes,
        limits.max_chunk_line_bytes,
        limits.max_trailer_bytes,
    );
    let mut input = body;
    loop {
        match decoder.decode(input, out) {
            Err(_) => return true,
            Ok((used, _)) => {
                input = &input[used..];
                if decoder.is_done() {
                    return true;
                }
                if input.is_empty() || used == 0 {
                    return false;
                }
            }
        }
    }
}

/// Method and path of a buffered head, for the access log of a `408`.
fn head_for_log(pending: &[u8], limits: &crate::http::Limits) -> (Option<String>, Option<String>) {
    match request::parse_head(pending, limits) {
        Ok(Some((head, _))) => {
            let path = request::check_target(&head).ok().map(|(p, _)| p);
            (Some(head.method), path)
        }
        _ => (None, None),
    }
}

/// Reads and drops what a lingering connection sent; true when done with it (end of input,
/// an error, or enough discarded), after closing it.
fn discard(slot: &mut Connection) -> bool {
    let Phase::Linger { until, discarded } = &mut slot.phase else {
        return false;
    };
    let _ = until;
    let mut sink = [0u8; 4096];
    loop {
        match slot.stream.read_some(&mut sink) {
            Ok(0) => break,
            Ok(n) => {
                *discarded += n as u64;
                if *discarded >= LINGER_BYTES {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    slot.stream.shutdown(Shutdown::Both);
    true
}

/// Writes a small closing answer once, without blocking; a client that cannot take it at once
/// does not get it.
fn write_closing(stream: &dyn ByteStream, resp: Response, head_only: bool) {
    let mode = WriteMode {
        head_only,
        close: true,
        http10: false,
    };
    let bytes = response::to_bytes(resp, mode);
    let _ = stream.write_some(&bytes);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Limits;

    #[test]
    fn a_chunked_body_is_complete_when_whole_or_malformed_and_not_before() {
        let limits = Limits::public();
        let mut out = [0u8; 8];
        let complete = |body: &[u8], out: &mut [u8]| chunked_complete(body, &limits, out);
        assert!(complete(b"3\r\nabc\r\n0\r\n\r\n", &mut out));
        assert!(
            complete(b"14\r\n01234567890123456789\r\n0\r\n\r\nNEXT", &mut out),
            "longer than the output room"
        );
        assert!(
            !complete(b"3\r\nabc\r\n0\r\n", &mut out),
            "trailers not ended"
        );
        assert!(!complete(b"3\r\nab", &mut out));
        assert!(!complete(b"", &mut out));
        assert!(
            complete(b"zz\r\n", &mut out),
            "malformed: the handler meets the error"
        );
    }

    #[test]
    fn a_408_is_logged_with_method_and_path_but_never_the_query() {
        let limits = Limits::public();
        let (m, p) = head_for_log(
            b"PUT /api/images/x.jpg?token=secret HTTP/1.1\r\nHost: h\r\n\r\n",
            &limits,
        );
        assert_eq!(
            (m.as_deref(), p.as_deref()),
            (Some("PUT"), Some("/api/images/x.jpg"))
        );
        assert_eq!(head_for_log(b"GET /half", &limits), (None, None));
    }
}
