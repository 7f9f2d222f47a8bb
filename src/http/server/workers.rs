//! The worker pool: threads that run handlers, fed by the readiness loop through a queue.
//!
//! A worker takes a [`Job`] (a connection whose request head is complete, plus the bytes the
//! loop already read), runs the handler under `catch_unwind`, writes the answer, and hands the
//! connection back to the loop: for keep-alive, for a short linger after an answer sent while
//! input was still coming, or to be closed. Body reads happen here, in blocking mode with the
//! profile's timeouts and the body deadline. Workers start as needed, up to `Limits::workers`,
//! and stay; they end when the server stops and the queue is empty. The queue itself is
//! bounded in time by the loop (`Limits::queue_timeout`), not here.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::net::{Shutdown, SocketAddr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use super::{hand_back, lock, After, Shared};
use crate::http::conn::{ByteStream, ConnIo};
use crate::http::request::{self, BodyState, Framing, Head, Request, Source};
use crate::http::response::{self, Response, WriteMode};

/// A request ready for a handler.
pub(crate) struct Job {
    pub(crate) id: u64,
    /// Shared with the loop's record of the connection (see `server::hand_back`).
    pub(crate) handoff: Arc<AtomicU8>,
    /// The loop took the connection out of the poller while its body is read.
    pub(crate) deregistered: bool,
    pub(crate) stream: Arc<dyn ByteStream>,
    pub(crate) peer: Option<SocketAddr>,
    pub(crate) head: Head,
    pub(crate) path: String,
    pub(crate) query: Option<String>,
    pub(crate) framing: Framing,
    pub(crate) expect: bool,
    /// What the loop read: the head (`head_len` bytes), then the start of what follows.
    pub(crate) bytes: Vec<u8>,
    pub(crate) head_len: usize,
    /// The head's first byte (for the access log's time).
    pub(crate) started: Instant,
    /// The head's end: the body deadline counts from here (unless the client waits for `100`).
    pub(crate) head_done: Instant,
    /// When the loop queued it (the loop answers `503` once it waited `queue_timeout`).
    pub(crate) queued: Instant,
}

/// The queue and the workers' bookkeeping.
pub(crate) struct Pool {
    pub(crate) state: Mutex<PoolState>,
    wakeup: Condvar,
    /// Workers kept awake for the queue: about the number of cores. More workers are woken only
    /// when the queue stops moving (see [`Pool::spill`]), because waking a sleeping thread for
    /// every request costs more than the request when handlers are quick.
    awake_target: usize,
}

pub(crate) struct PoolState {
    pub(crate) queue: VecDeque<Job>,
    /// Workers started (they never end before the server stops).
    started: usize,
    /// Workers waiting for a job.
    sleeping: usize,
    /// Sleeping workers told to wake that have not woken yet.
    wakeups: usize,
    /// When a worker last took a job (or one was woken because none had).
    progress: Instant,
    /// No more jobs will come: workers end once the queue is empty.
    closed: bool,
}

/// What the caller of [`Pool::push`] or [`Pool::spill`] must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Grow {
    Nothing,
    /// A sleeping worker was told to wake.
    Woken,
    /// Start one more worker thread (already counted).
    Spawn,
}

/// A queue that has not moved for this long gets another worker.
pub(crate) const SPILL_DELAY: std::time::Duration = std::time::Duration::from_millis(1);

impl Pool {
    pub(crate) fn new() -> Pool {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Pool::with_target(cores.max(2))
    }

    fn with_target(awake_target: usize) -> Pool {
        Pool {
            state: Mutex::new(PoolState {
                queue: VecDeque::new(),
                started: 0,
                sleeping: 0,
                wakeups: 0,
                progress: Instant::now(),
                closed: false,
            }),
            wakeup: Condvar::new(),
            awake_target,
        }
    }

    /// Queues `jobs` (emptying it), waking workers until the target are awake; returns how many
    /// new workers to start.
    pub(crate) fn push(&self, jobs: &mut Vec<Job>, max_workers: usize) -> usize {
        let mut st = lock(&self.state);
        let n = jobs.len();
        st.queue.extend(jobs.drain(..));
        let awake = st.started - st.sleeping + st.wakeups;
        let mut spawn = 0;
        for _ in 0..n.min(self.awake_target.saturating_sub(awake)) {
            match self.add_worker(&mut st, max_workers) {
                Grow::Spawn => spawn += 1,
                Grow::Woken => {}
                Grow::Nothing => break,
            }
        }
        spawn
    }

    /// While jobs wait: if no worker took one for [`SPILL_DELAY`] (the awake ones are stuck in
    /// slow handlers), wakes or starts one more. Returns what to do and when to check again.
    pub(crate) fn spill(&self, now: Instant, max_workers: usize) -> (Grow, Option<Instant>) {
        let mut st = lock(&self.state);
        if st.queue.is_empty() {
            return (Grow::Nothing, None);
        }
        let mut grow = Grow::Nothing;
        if now >= st.progress + SPILL_DELAY {
            grow = self.add_worker(&mut st, max_workers);
            st.progress = now;
        }
        let more_possible = st.sleeping > st.wakeups || st.started < max_workers;
        // Every worker awake and busy: the next to finish takes the next job; nothing to check.
        (grow, more_possible.then_some(st.progress + SPILL_DELAY))
    }

    fn add_worker(&self, st: &mut PoolState, max_workers: usize) -> Grow {
        if st.sleeping > st.wakeups {
            st.wakeups += 1;
            self.wakeup.notify_one();
            Grow::Woken
        } else if st.started < max_workers {
            st.started += 1;
            Grow::Spawn
        } else {
            Grow::Nothing
        }
    }

    /// Jobs that waited `longer` than allowed, oldest first, taken off the queue.
    pub(crate) fn expired(&self, now: Instant, longer: std::time::Duration) -> Vec<Job> {
        let mut st = lock(&self.state);
        let mut out = Vec::new();
        while st.queue.front().is_some_and(|j| j.queued + longer <= now) {
            out.extend(st.queue.pop_front());
        }
        out
    }

    /// When the oldest queued job was queued.
    pub(crate) fn oldest(&self) -> Option<Instant> {
        lock(&self.state).queue.front().map(|j| j.queued)
    }

    pub(crate) fn close(&self) {
        lock(&self.state).closed = true;
        self.wakeup.notify_all();
    }

    fn next(&self) -> Option<Job> {
        let mut st = lock(&self.state);
        loop {
            if let Some(job) = st.queue.pop_front() {
                st.progress = Instant::now();
                return Some(job);
            }
            if st.closed {
                return None;
            }
            st.sleeping += 1;
            loop {
                st = self.wakeup.wait(st).unwrap_or_else(|e| e.into_inner());
                if st.wakeups > 0 {
                    st.wakeups -= 1;
                    break;
                }
                if st.closed {
                    break;
                }
            }
            st.sleeping -= 1;
        }
    }
}

/// Starts one more worker thread; false when the system refuses a thread.
pub(crate) fn spawn(shared: &Arc<Shared>) -> bool {
    let s = Arc::clone(shared);
    let started = std::thread::Builder::new()
        .name(shared.thread_name.clone())
        .spawn(move || run(&s));
    if let Err(e) = started {
        log::warn!(target: "http", "could not start a worker thread: {e}");
        lock(&shared.pool.state).started -= 1;
        return false;
    }
    true
}

fn run(shared: &Arc<Shared>) {
    // The worker's read buffer, lent to each request in turn (lost only if a request panics).
    let mut spare: Option<Box<[u8]>> = None;
    while let Some(job) = shared.pool.next() {
        let lease = Lease {
            shared,
            id: job.id,
            stream: Arc::clone(&job.stream),
            handoff: Arc::clone(&job.handoff),
            deregistered: job.deregistered,
            done: false,
        };
        // The handler runs under its own catch_unwind; this one catches a panic in our code or
        // a response body reader: the lease then closes the connection, and the worker lives.
        if catch_unwind(AssertUnwindSafe(|| serve(shared, job, &mut spare, lease))).is_err() {
            log::error!(target: "http", "worker panicked; connection closed");
        }
    }
}

/// A connection while a worker has it: handed back exactly once, closed if the worker unwinds.
struct Lease<'a> {
    shared: &'a Shared,
    id: u64,
    stream: Arc<dyn ByteStream>,
    handoff: Arc<AtomicU8>,
    deregistered: bool,
    done: bool,
}

impl Lease<'_> {
    fn finish(mut self, leftover: Vec<u8>, after: After) {
        self.give_back(leftover, after);
    }

    /// Hands the connection back to the loop unless that was done already.
    fn give_back(&mut self, leftover: Vec<u8>, after: After) {
        if !std::mem::replace(&mut self.done, true) {
            hand_back(
                self.shared,
                self.id,
                &self.stream,
                &self.handoff,
                self.deregistered,
                leftover,
                after,
            );
        }
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        self.give_back(Vec::new(), After::Close);
        self.shared.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
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

fn serve(shared: &Shared, job: Job, spare: &mut Option<Box<[u8]>>, lease: Lease<'_>) {
    let limits = &shared.limits;
    let Job {
        stream,
        peer,
        head,
        path,
        query,
        framing,
        expect,
        bytes,
        head_len,
        started,
        head_done,
        ..
    } = job;
    let buffer = spare
        .take()
        .unwrap_or_else(|| vec![0u8; limits.max_head_bytes.max(64)].into_boxed_slice());
    let io = ConnIo::new(stream, buffer, &bytes[head_len..], limits.read_timeout);
    drop(bytes);
    let client_close = request::client_wants_close(&head);
    let http10 = head.version == request::Version::Http10;
    let mut body = BodyState::new(Source::Conn(io), framing, limits, expect);
    if !expect {
        body = body.deadline_from(head_done);
    }
    let req = Request {
        request_id: request::request_id(&head),
        method: head.method,
        path,
        query,
        version: head.version,
        headers: head.headers,
        peer,
        framing,
        body: RefCell::new(body),
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
    let Source::Conn(io) = std::mem::replace(&mut state.source, Source::Taken) else {
        unreachable!("the connection is put in every request");
    };
    let body_unread = !state.done;
    drop(state);
    if resp.is_abort() {
        log::info!(target: "access", "{} {} aborted {} (connection dropped)", req.method, req.path, req.request_id);
        return lease.finish(Vec::new(), After::Close);
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
    let (stream, buffer, leftover) = io.into_parts();
    *spare = Some(buffer);
    let after = if written.is_err() {
        After::Close
    } else if close && body_unread {
        // Input is still coming: let the loop read and drop it for a moment, so our answer is
        // not destroyed by a reset caused by unread bytes.
        stream.shutdown(Shutdown::Write);
        After::Linger
    } else if close {
        After::Close
    } else {
        After::KeepAlive
    };
    lease.finish(leftover, after);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;
    use std::time::Duration;

    fn job(queued: Instant) -> Job {
        let (ours, _theirs) = UnixStream::pair().unwrap();
        Job {
            id: 7,
            handoff: Arc::new(AtomicU8::new(0)),
            deregistered: false,
            stream: Arc::new(ours),
            peer: None,
            head: Head {
                method: "GET".into(),
                target: "/".into(),
                version: request::Version::Http11,
                headers: Vec::new(),
            },
            path: "/".into(),
            query: None,
            framing: Framing::Length(0),
            expect: false,
            bytes: Vec::new(),
            head_len: 0,
            started: queued,
            head_done: queued,
            queued,
        }
    }

    #[test]
    fn only_the_target_is_woken_and_a_stalled_queue_gets_one_more_worker_at_a_time() {
        let pool = Pool::with_target(2);
        let t = lock(&pool.state).progress;
        let mut jobs: Vec<Job> = (0..5).map(|_| job(t)).collect();
        assert_eq!(pool.push(&mut jobs, 4), 2, "two started for five jobs");
        assert!(jobs.is_empty());
        assert_eq!(pool.push(&mut vec![job(t)], 4), 0, "two already awake");
        let (grow, next) = pool.spill(t, 4);
        assert_eq!(grow, Grow::Nothing, "the queue moved just now");
        assert_eq!(next, Some(t + SPILL_DELAY));
        let later = t + Duration::from_millis(5);
        assert_eq!(pool.spill(later, 4).0, Grow::Spawn, "stalled: one more");
        assert_eq!(pool.spill(later, 4).0, Grow::Nothing, "one per delay");
        let after = later + SPILL_DELAY;
        assert_eq!(pool.spill(after, 4), (Grow::Spawn, None), "the last one");
        assert_eq!(pool.spill(after + SPILL_DELAY, 4), (Grow::Nothing, None));
        assert_eq!(pool.oldest(), Some(t));
        assert_eq!(
            pool.expired(t + Duration::from_millis(499), Duration::from_millis(500))
                .len(),
            0
        );
        assert_eq!(
            pool.expired(t + Duration::from_millis(500), Duration::from_millis(500))
                .len(),
            6
        );
        assert_eq!(pool.spill(after, 4), (Grow::Nothing, None), "empty queue");
    }

    #[test]
    fn a_sleeping_worker_is_woken_before_a_new_one_is_started() {
        let pool = Pool::with_target(1);
        {
            let mut st = lock(&pool.state);
            st.started = 3;
            st.sleeping = 3;
        }
        let t = Instant::now();
        assert_eq!(
            pool.push(&mut vec![job(t), job(t)], 8),
            0,
            "woken, not started"
        );
        let st = lock(&pool.state);
        assert_eq!(
            (st.started, st.wakeups),
            (3, 1),
            "one woken: the target is one"
        );
    }
}
