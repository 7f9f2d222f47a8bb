//! The request side: strict head parsing on `httparse`, framing decisions, and the streaming
//! body reader (length or chunked, hard cap, total deadline, `100 Continue` on first read).
//!
//! Parsing works on a bounded buffer and never allocates from a declared length. A refused head
//! becomes a [`Reject`] (status + reason) that the server answers and then closes. This module
//! does not write responses (except the one-line `100 Continue`) and does not route.

use std::cell::RefCell;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use super::chunked::{ChunkError, ChunkedDecoder};
use super::conn::{ConnIo, FillError};
use super::limits::Limits;
use crate::Error;

/// The protocol version of a request. Only HTTP/1.0 and HTTP/1.1 are served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// HTTP/1.0: keep-alive only when asked for; no chunked bodies.
    Http10,
    /// HTTP/1.1.
    Http11,
}

/// A refusal decided before the handler runs: answer `status`, then close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reject {
    pub(crate) status: u16,
    pub(crate) reason: &'static str,
}

const fn reject(status: u16, reason: &'static str) -> Reject {
    Reject { status, reason }
}

/// A parsed request head, before framing checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Head {
    pub(crate) method: String,
    pub(crate) target: String,
    pub(crate) version: Version,
    pub(crate) headers: Vec<(String, String)>,
}

impl Head {
    fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Tries to parse a complete head at the start of `buf`. `Ok(None)`: need more bytes.
pub(crate) fn parse_head(buf: &[u8], limits: &Limits) -> Result<Option<(Head, usize)>, Reject> {
    let mut storage = vec![httparse::EMPTY_HEADER; limits.max_headers.max(1)];
    let mut req = httparse::Request::new(&mut storage);
    let status = req.parse(buf);
    let scanned = match status {
        Ok(httparse::Status::Complete(n)) => &buf[..n],
        Ok(httparse::Status::Partial) => buf,
        Err(httparse::Error::Version) => return Err(version_reject(buf)),
        Err(httparse::Error::TooManyHeaders) => return Err(reject(431, "too many headers")),
        Err(_) => {
            check_lines(buf, limits)?;
            return Err(reject(400, "malformed request head"));
        }
    };
    check_lines(scanned, limits)?;
    let n = match status {
        Ok(httparse::Status::Complete(n)) => n,
        _ => {
            if buf.len() >= limits.max_head_bytes {
                return Err(reject(431, "request head too large"));
            }
            return Ok(None);
        }
    };
    let version = match req.version {
        Some(0) => Version::Http10,
        Some(1) => Version::Http11,
        _ => return Err(reject(505, "http version not supported")),
    };
    let headers = req
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_string(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect();
    let head = Head {
        method: req.method.unwrap_or_default().to_string(),
        target: req.path.unwrap_or_default().to_string(),
        version,
        headers,
    };
    Ok(Some((head, n)))
}

/// Bare LF is refused (answer 400, never a hang), and no line may exceed the line limit.
fn check_lines(bytes: &[u8], limits: &Limits) -> Result<(), Reject> {
    let mut line_start = 0usize;
    let mut first = true;
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'\n' {
            if i == 0 || bytes[i - 1] != b'\r' {
                return Err(reject(400, "bare LF in request head"));
            }
            if i - line_start > limits.max_line_bytes {
                return Err(line_too_long(first));
            }
            // Leading empty lines before the request line are tolerated (RFC 9112 §2.2).
            first = first && i - line_start <= 1;
            line_start = i + 1;
        }
    }
    if bytes.len() - line_start > limits.max_line_bytes {
        return Err(line_too_long(first));
    }
    Ok(())
}

fn line_too_long(first: bool) -> Reject {
    if first {
        reject(414, "request line too long")
    } else {
        reject(431, "header line too long")
    }
}

/// `httparse` reports every version it does not know alike; 505 for major ≥ 2 (HTTP/2.0, the
/// h2c preface `PRI * HTTP/2.0`), 400 otherwise (e.g. HTTP/1.2, garbage).
fn version_reject(buf: &[u8]) -> Reject {
    let line_end = buf.iter().position(|&b| b == b'\n').unwrap_or(buf.len());
    let line = &buf[..line_end];
    let major = line
        .windows(5)
        .rposition(|w| w == b"HTTP/")
        .and_then(|p| line.get(p + 5))
        .copied();
    match major {
        Some(b'2'..=b'9') => reject(505, "http version not supported"),
        _ => reject(400, "bad http version"),
    }
}

/// How the request body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// A `Content-Length` (0 when absent).
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// Decides the body framing (R2, R3), refusing anything ambiguous.
pub(crate) fn framing(head: &Head) -> Result<Framing, Reject> {
    let te: Vec<&str> = head.values("transfer-encoding").collect();
    let cl: Vec<&str> = head.values("content-length").collect();
    if !te.is_empty() {
        if !cl.is_empty() {
            return Err(reject(400, "both transfer-encoding and content-length"));
        }
        if head.version == Version::Http10 {
            return Err(reject(400, "transfer-encoding in http/1.0"));
        }
        let codings: Vec<&str> = te
            .iter()
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        if codings.iter().any(|c| c.is_empty()) {
            return Err(reject(400, "empty transfer-coding"));
        }
        if codings.len() == 1 && codings[0].eq_ignore_ascii_case("chunked") {
            return Ok(Framing::Chunked);
        }
        return Err(reject(501, "transfer-coding not implemented"));
    }
    let mut length = None;
    for v in cl {
        let n = parse_content_length(v).ok_or(reject(400, "bad content-length"))?;
        if length.is_some_and(|l| l != n) {
            return Err(reject(400, "conflicting content-length"));
        }
        length = Some(n);
    }
    Ok(Framing::Length(length.unwrap_or(0)))
}

/// ASCII digits only (no sign, space, list or suffix), no overflow.
pub(crate) fn parse_content_length(v: &str) -> Option<u64> {
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok()
}

/// Host rules (R20) and target form: returns (path, query).
pub(crate) fn check_target(head: &Head) -> Result<(String, Option<String>), Reject> {
    let hosts: Vec<&str> = head.values("host").collect();
    if head.version == Version::Http11 && hosts.len() != 1 {
        return Err(reject(400, "http/1.1 needs exactly one host header"));
    }
    if hosts.len() > 1 {
        return Err(reject(400, "more than one host header"));
    }
    if hosts
        .iter()
        .any(|h| h.bytes().any(|b| b <= b' ' || b == b'/' || b >= 0x7f))
    {
        return Err(reject(400, "bad host header"));
    }
    let t = head.target.as_str();
    let origin = if t.starts_with('/') {
        t
    } else if t == "*" && head.method == "OPTIONS" {
        "*"
    } else if let Some(rest) = t
        .strip_prefix("http://")
        .or_else(|| t.strip_prefix("https://"))
    {
        // Absolute form (RFC 9112 §3.2.2): servers must accept it; keep only path and query.
        match rest.find(['/', '?']) {
            Some(i) if rest.as_bytes()[i] == b'/' => &rest[i..],
            _ => return Err(reject(400, "bad request target")),
        }
    } else {
        return Err(reject(400, "bad request target"));
    };
    Ok(match origin.split_once('?') {
        Some((p, q)) => (p.to_string(), Some(q.to_string())),
        None => (origin.to_string(), None),
    })
}

/// What the `Expect` header asks for.
pub(crate) fn expects_continue(head: &Head) -> Result<bool, Reject> {
    let mut cont = false;
    for v in head.values("expect") {
        if v.trim().eq_ignore_ascii_case("100-continue") {
            cont = true;
        } else {
            return Err(reject(417, "expectation not supported"));
        }
    }
    // HTTP/1.0 clients do not understand 100 (RFC 9110 §10.1.1): ignore it there.
    Ok(cont && head.version == Version::Http11)
}

/// Whether the client wants the connection closed after this request (R15).
pub(crate) fn client_wants_close(head: &Head) -> bool {
    let has = |token: &str| {
        head.values("connection")
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    match head.version {
        Version::Http11 => has("close"),
        Version::Http10 => !has("keep-alive") || has("close"),
    }
}

/// A request id: an incoming `opc-request-id` / `x-request-id` when short and plain, else ours.
pub(crate) fn request_id(head: &Head) -> String {
    let incoming = head
        .values("opc-request-id")
        .chain(head.values("x-request-id"))
        .next()
        .filter(|v| {
            (1..=64).contains(&v.len())
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:/".contains(&b))
        });
    match incoming {
        Some(v) => v.to_string(),
        None => new_request_id(),
    }
}

fn new_request_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let ms = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    format!("{ms:x}-{n:x}")
}

/// Why reading the body failed; decides the status the server answers (R5, R9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyFailure {
    Timeout,
    Truncated,
    Chunk(ChunkError),
    Broken,
}

impl BodyFailure {
    pub(crate) fn status(self) -> u16 {
        match self {
            BodyFailure::Timeout => 408,
            BodyFailure::Chunk(e) => e.status(),
            BodyFailure::Truncated | BodyFailure::Broken => 400,
        }
    }

    fn reason(self) -> String {
        match self {
            BodyFailure::Timeout => "request body deadline passed".into(),
            BodyFailure::Truncated => "connection closed before the end of the body".into(),
            BodyFailure::Chunk(e) => e.to_string(),
            BodyFailure::Broken => "connection error while reading the body".into(),
        }
    }

    fn io_error(self) -> io::Error {
        let kind = match self {
            BodyFailure::Timeout => io::ErrorKind::TimedOut,
            BodyFailure::Truncated => io::ErrorKind::UnexpectedEof,
            BodyFailure::Chunk(_) => io::ErrorKind::InvalidData,
            BodyFailure::Broken => io::ErrorKind::ConnectionAborted,
        };
        io::Error::new(kind, self.reason())
    }
}

/// Where body bytes come from: the connection, or memory for [`Request::fake`].
pub(crate) enum Source {
    Conn(ConnIo),
    Memory { data: Vec<u8>, pos: usize },
    Taken,
}

impl Source {
    fn buffered(&self) -> &[u8] {
        match self {
            Source::Conn(c) => c.buffered(),
            Source::Memory { data, pos } => &data[*pos..],
            Source::Taken => &[],
        }
    }

    fn consume(&mut self, n: usize) {
        match self {
            Source::Conn(c) => c.consume(n),
            Source::Memory { pos, .. } => *pos += n,
            Source::Taken => {}
        }
    }

    fn fill(&mut self, deadline: Option<Instant>) -> Result<usize, FillError> {
        match self {
            Source::Conn(c) => c.fill(deadline),
            _ => Err(FillError::Eof),
        }
    }

    /// Reads into `out` past the buffer (see `ConnIo::read_direct`); only a connection can.
    fn read_direct(
        &mut self,
        out: &mut [u8],
        deadline: Option<Instant>,
    ) -> Result<usize, FillError> {
        match self {
            Source::Conn(c) => c.read_direct(out, deadline),
            _ => Err(FillError::Eof),
        }
    }
}

/// A handler reading a `Content-Length` body with at least this much room, when nothing is
/// buffered, is read into directly (uploads read 64 KiB at a time; the connection buffer is
/// 16 KiB, and copying through it made a 5 MB upload 1.4-1.6× a direct PUT).
const DIRECT_READ_MIN: usize = 16 * 1024;

/// The body's progress; lives in a `RefCell` so handlers can stream it through `&Request`.
pub(crate) struct BodyState {
    pub(crate) source: Source,
    framing: Framing,
    remaining: u64,
    decoder: ChunkedDecoder,
    timeout: Option<Duration>,
    /// When the body deadline started counting, if before the handler's first read (the server
    /// starts it when the head is complete, unless the client waits for `100 Continue`).
    clock: Option<Instant>,
    deadline: Option<Instant>,
    pub(crate) expect_continue: bool,
    pub(crate) continue_sent: bool,
    started: bool,
    pub(crate) done: bool,
    pub(crate) failure: Option<BodyFailure>,
}

impl BodyState {
    pub(crate) fn new(
        source: Source,
        framing: Framing,
        limits: &Limits,
        expect_continue: bool,
    ) -> BodyState {
        let remaining = match framing {
            Framing::Length(n) => n,
            Framing::Chunked => 0,
        };
        BodyState {
            source,
            framing,
            remaining,
            decoder: ChunkedDecoder::new(
                limits.max_body_bytes,
                limits.max_chunk_line_bytes,
                limits.max_trailer_bytes,
            ),
            timeout: limits.body_timeout,
            clock: None,
            deadline: None,
            expect_continue,
            continue_sent: false,
            started: false,
            done: framing == Framing::Length(0),
            failure: None,
        }
    }

    /// Counts the body deadline from `since` instead of from the handler's first read.
    pub(crate) fn deadline_from(mut self, since: Instant) -> BodyState {
        self.clock = Some(since);
        self
    }

    fn fail(&mut self, f: BodyFailure) -> io::Error {
        self.failure = Some(f);
        f.io_error()
    }

    fn fill(&mut self) -> Result<(), io::Error> {
        match self.source.fill(self.deadline) {
            Ok(_) => Ok(()),
            Err(FillError::Eof) => Err(self.fail(BodyFailure::Truncated)),
            Err(FillError::Timeout) => Err(self.fail(BodyFailure::Timeout)),
            Err(FillError::Io | FillError::Full) => Err(self.fail(BodyFailure::Broken)),
        }
    }

    fn start(&mut self) -> io::Result<()> {
        self.started = true;
        let since = self.clock.unwrap_or_else(Instant::now);
        self.deadline = self.timeout.map(|t| since + t);
        if self.expect_continue && !self.continue_sent && !self.done {
            self.continue_sent = true;
            if let Source::Conn(c) = &self.source {
                if c.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").is_err() {
                    return Err(self.fail(BodyFailure::Broken));
                }
            }
        }
        Ok(())
    }

    pub(crate) fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if let Some(f) = self.failure {
            return Err(f.io_error());
        }
        if self.done || out.is_empty() {
            return Ok(0);
        }
        if !self.started {
            self.start()?;
        }
        if let Framing::Length(_) = self.framing {
            if self.source.buffered().is_empty() && out.len() >= DIRECT_READ_MIN {
                let want = out
                    .len()
                    .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
                let n = match self.source.read_direct(&mut out[..want], self.deadline) {
                    Ok(n) => n,
                    Err(FillError::Eof) => return Err(self.fail(BodyFailure::Truncated)),
                    Err(FillError::Timeout) => return Err(self.fail(BodyFailure::Timeout)),
                    Err(FillError::Io | FillError::Full) => {
                        return Err(self.fail(BodyFailure::Broken))
                    }
                };
                self.remaining -= n as u64;
                self.done = self.remaining == 0;
                return Ok(n);
            }
        }
        loop {
            let input = self.source.buffered();
            if !input.is_empty() {
                let (consumed, produced) = match self.framing {
                    Framing::Length(_) => {
                        let n = input
                            .len()
                            .min(out.len())
                            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
                        out[..n].copy_from_slice(&input[..n]);
                        self.remaining -= n as u64;
                        self.done = self.remaining == 0;
                        (n, n)
                    }
                    Framing::Chunked => match self.decoder.decode(input, out) {
                        Ok(r) => {
                            self.done = self.decoder.is_done();
                            r
                        }
                        Err(e) => return Err(self.fail(BodyFailure::Chunk(e))),
                    },
                };
                self.source.consume(consumed);
                if produced > 0 || self.done {
                    return Ok(produced);
                }
            }
            self.fill()?;
        }
    }

    /// After the handler: discard what is left of the body if that is cheap, so the connection
    /// can be kept (R6). False means the connection must be closed.
    pub(crate) fn drain(&mut self, max_bytes: u64, timeout: Duration) -> bool {
        if self.done {
            return true;
        }
        if self.failure.is_some() || (self.expect_continue && !self.continue_sent) {
            // Never invite a body only to throw it away.
            return false;
        }
        if let Framing::Length(_) = self.framing {
            if self.remaining > max_bytes {
                return false;
            }
        }
        // No 100 Continue from here on: either it was sent or it was not asked for.
        self.started = true;
        let cap = Instant::now() + timeout;
        self.deadline = Some(self.deadline.map_or(cap, |d| d.min(cap)));
        let mut scratch = [0u8; 4096];
        let mut discarded = 0u64;
        while !self.done {
            match self.read(&mut scratch) {
                Ok(n) => discarded += n as u64,
                Err(_) => return false,
            }
            if discarded > max_bytes {
                return false;
            }
        }
        true
    }
}

/// One HTTP request as a handler sees it. The body is streamed with [`Request::body`].
pub struct Request {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) query: Option<String>,
    pub(crate) version: Version,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) peer: Option<SocketAddr>,
    pub(crate) request_id: String,
    pub(crate) framing: Framing,
    pub(crate) body: RefCell<BodyState>,
}

impl std::fmt::Debug for Request {
    // Header values may carry credentials; show only their names.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("version", &self.version)
            .field(
                "headers",
                &self.headers.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .field("request_id", &self.request_id)
            .finish_non_exhaustive()
    }
}

impl Request {
    /// The method, e.g. `GET` (case as sent; methods are case-sensitive).
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The path as sent (still percent-encoded), without the query; `*` for `OPTIONS *`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The raw query string after `?`, if any (not decoded; may hold secrets, never logged).
    pub fn query(&self) -> Option<&str> {
        self.query.as_deref()
    }

    /// HTTP/1.0 or HTTP/1.1.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The first header with this name, compared case-insensitively. Values that were not UTF-8
    /// have had the bad bytes replaced by U+FFFD.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// All headers in arrival order, names as sent.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// The client's address (TCP); `None` on a unix socket.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.peer
    }

    /// This request's id: a short, safe incoming `opc-request-id`/`x-request-id`, else generated.
    pub fn request_id(&self) -> &str {
        &self.request_id
    }

    /// The declared `Content-Length` (0 when there is neither length nor chunked encoding);
    /// `None` for a chunked body. Already checked against `Limits::max_body_bytes`.
    pub fn content_length(&self) -> Option<u64> {
        match self.framing {
            Framing::Length(n) => Some(n),
            Framing::Chunked => None,
        }
    }

    /// True when the body is sent with `Transfer-Encoding: chunked`.
    pub fn is_chunked(&self) -> bool {
        self.framing == Framing::Chunked
    }

    /// The body as a stream. The first read sends `100 Continue` if the client asked for it.
    /// A read fails when the body is truncated, malformed, over the cap or too slow; the server
    /// then answers 400/413/408 and closes, whatever the handler returns.
    pub fn body(&self) -> BodyReader<'_> {
        BodyReader { request: self }
    }

    /// Reads the whole body, refusing more than `max` bytes with a 413 error (and failures with
    /// the matching 400/408/413), ready for `?` in a handler.
    pub fn read_body(&self, max: usize) -> crate::Result<Vec<u8>> {
        self.read_body_with(max, |_| {})
    }

    /// As [`Request::read_body`], into one buffer sized from `Content-Length` (so a large body
    /// never regrows, which would briefly hold two copies), handing each piece to `each` as it
    /// arrives (an upload hashes while the rest is still on the wire).
    pub fn read_body_with(
        &self,
        max: usize,
        mut each: impl FnMut(&[u8]),
    ) -> crate::Result<Vec<u8>> {
        let declared = self.content_length().unwrap_or(0);
        if declared > max as u64 {
            return Err(Error::bad_request(413, "request body too large"));
        }
        let mut out = Vec::with_capacity(declared as usize);
        let mut chunk = vec![0u8; (declared as usize).clamp(8 * 1024, 64 * 1024)];
        loop {
            let n = self.read_body_part(&mut chunk)?;
            if n == 0 {
                return Ok(out);
            }
            if out.len() + n > max {
                return Err(Error::bad_request(413, "request body too large"));
            }
            each(&chunk[..n]);
            out.extend_from_slice(&chunk[..n]);
        }
    }

    /// Reads the next piece of the body into `buf` (`0` at its end), a failure turned into the
    /// matching 400/408/413 error, for handlers that stream the body themselves.
    pub fn read_body_part(&self, buf: &mut [u8]) -> crate::Result<usize> {
        self.body().read(buf).map_err(|_| {
            let f = self.body.borrow().failure.unwrap_or(BodyFailure::Broken);
            Error::bad_request(f.status(), f.reason())
        })
    }

    /// A request built in memory, for unit-testing handlers without sockets. `target` is the
    /// path with an optional `?query`; the body is framed by its length, unless the headers say
    /// `Transfer-Encoding: chunked`, in which case `body` must be chunked wire bytes.
    pub fn fake(method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Request {
        let head = Head {
            method: method.to_string(),
            target: target.to_string(),
            version: Version::Http11,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        };
        let framing = match framing(&head) {
            Ok(Framing::Chunked) => Framing::Chunked,
            _ => Framing::Length(body.len() as u64),
        };
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p.to_string(), Some(q.to_string())),
            None => (target.to_string(), None),
        };
        let source = Source::Memory {
            data: body.to_vec(),
            pos: 0,
        };
        let limits = Limits::public();
        Request {
            request_id: request_id(&head),
            method: head.method,
            path,
            query,
            version: head.version,
            headers: head.headers,
            peer: None,
            framing,
            body: RefCell::new(BodyState::new(source, framing, &limits, false)),
        }
    }
}

/// A streaming reader over a request body; see [`Request::body`].
pub struct BodyReader<'a> {
    request: &'a Request,
}

impl Read for BodyReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.request.body.borrow_mut().read(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(wire: &[u8]) -> Result<Option<(Head, usize)>, Reject> {
        parse_head(wire, &Limits::public())
    }

    fn complete(wire: &[u8]) -> Head {
        head(wire).unwrap().unwrap().0
    }

    #[test]
    fn parses_a_plain_get_and_leaves_the_rest() {
        let wire = b"GET /a/b?x=1 HTTP/1.1\r\nHost: h\r\nX-Tab: a\tb\r\n\r\nNEXT";
        let (h, n) = head(wire).unwrap().unwrap();
        assert_eq!(&wire[n..], b"NEXT");
        assert_eq!(h.method, "GET");
        assert_eq!(h.version, Version::Http11);
        assert_eq!(h.values("x-tab").next(), Some("a\tb"));
        assert_eq!(
            check_target(&h).unwrap(),
            ("/a/b".to_string(), Some("x=1".to_string()))
        );
    }

    #[test]
    fn partial_heads_wait_and_oversize_heads_are_431() {
        assert_eq!(head(b"GET / HTTP/1.1\r\nHost: h\r\n").unwrap(), None);
        let mut big = b"GET / HTTP/1.1\r\n".to_vec();
        while big.len() < 16 * 1024 {
            big.extend_from_slice(b"X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
        }
        assert_eq!(head(&big).unwrap_err().status, 431);
    }

    #[test]
    fn long_lines_and_many_headers_are_refused() {
        let mut line = b"GET /".to_vec();
        line.extend(std::iter::repeat_n(b'a', 9000));
        assert_eq!(head(&line).unwrap_err().status, 414);
        let mut hdr = b"GET / HTTP/1.1\r\nX: ".to_vec();
        hdr.extend(std::iter::repeat_n(b'a', 9000));
        assert_eq!(head(&hdr).unwrap_err().status, 431);
        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..101 {
            many.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(head(&many).unwrap_err().status, 431);
    }

    #[test]
    fn versions_other_than_1x_are_refused() {
        for (wire, status) in [
            (&b"GET / HTTP/2.0\r\n\r\n"[..], 505),
            (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
            (b"GET / HTTP/3\r\n", 505),
            (b"GET / HTTP/1.2\r\n\r\n", 400),
            (b"GET / FTP/1.0\r\n\r\n", 400),
        ] {
            let shown = String::from_utf8_lossy(wire);
            assert_eq!(head(wire).unwrap_err().status, status, "{shown:?}");
        }
    }

    #[test]
    fn bare_lf_obs_fold_and_bad_bytes_are_400_not_panics() {
        for wire in [
            &b"GET / HTTP/1.1\nHost: h\n\n"[..],
            b"GET / HTTP/1.1\r\nHost: h\n\r\n",
            b"GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n",
            b"GET / HTTP/1.1\r\nX : a\r\n\r\n",
            b"GET / HTTP/1.1\r\nX\xff: a\r\n\r\n",
        ] {
            let shown = String::from_utf8_lossy(wire);
            assert_eq!(head(wire).unwrap_err().status, 400, "{shown:?}");
        }
        let h = complete(b"GET / HTTP/1.1\r\nX: caf\xc3\xa9 \xff\r\n\r\n");
        assert_eq!(h.values("x").next(), Some("caf\u{e9} \u{fffd}"));
    }

    #[test]
    fn framing_refuses_every_ambiguity() {
        let f = |hs: &str| framing(&complete(format!("POST / HTTP/1.1\r\n{hs}\r\n").as_bytes()));
        assert_eq!(f(""), Ok(Framing::Length(0)));
        assert_eq!(f("Content-Length: 42\r\n"), Ok(Framing::Length(42)));
        assert_eq!(
            f("Content-Length: 5\r\ncontent-length: 5\r\n"),
            Ok(Framing::Length(5))
        );
        assert_eq!(f("Transfer-Encoding: Chunked\r\n"), Ok(Framing::Chunked));
        for bad in [
            "Content-Length: 0\r\nContent-Length: 40\r\n",
            "Content-Length: 12abc\r\n",
            "Content-Length: -1\r\n",
            "Content-Length: +5\r\n",
            "Content-Length: 5, 5\r\n",
            "Content-Length: \r\n",
            "Content-Length: 18446744073709551616\r\n",
            "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
            "Transfer-Encoding: chunked,\r\n",
        ] {
            assert_eq!(f(bad).unwrap_err().status, 400, "{bad}");
        }
        for unimplemented in [
            "Transfer-Encoding: gzip\r\n",
            "Transfer-Encoding: chunked, gzip\r\n",
            "Transfer-Encoding: gzip, chunked\r\n",
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
            "Transfer-Encoding: identity\r\n",
        ] {
            assert_eq!(f(unimplemented).unwrap_err().status, 501, "{unimplemented}");
        }
        let h10 = complete(b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert_eq!(framing(&h10).unwrap_err().status, 400);
        assert_eq!(
            parse_content_length("100000000000000"),
            Some(100_000_000_000_000)
        );
    }

    #[test]
    fn host_rules_and_target_forms() {
        let t = |wire: &[u8]| check_target(&complete(wire));
        assert!(t(b"GET / HTTP/1.0\r\n\r\n").is_ok());
        for wire in [
            &b"GET / HTTP/1.1\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            b"GET p HTTP/1.1\r\nHost: h\r\n\r\n",
            b"GET * HTTP/1.1\r\nHost: h\r\n\r\n",
        ] {
            let shown = String::from_utf8_lossy(wire);
            assert_eq!(t(wire).unwrap_err().status, 400, "{shown:?}");
        }
        assert_eq!(
            t(b"GET http://h:8/p?q HTTP/1.1\r\nHost: h\r\n\r\n").unwrap(),
            ("/p".into(), Some("q".into()))
        );
        assert_eq!(t(b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n").unwrap().0, "*");
    }

    #[test]
    fn expect_connection_and_request_id() {
        let h = complete(b"POST / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n");
        assert_eq!(expects_continue(&h), Ok(true));
        let h = complete(b"POST / HTTP/1.1\r\nExpect: something\r\n\r\n");
        assert_eq!(expects_continue(&h).unwrap_err().status, 417);
        assert!(!client_wants_close(&complete(b"GET / HTTP/1.1\r\n\r\n")));
        assert!(client_wants_close(&complete(
            b"GET / HTTP/1.1\r\nConnection: keep-alive, Close\r\n\r\n"
        )));
        assert!(client_wants_close(&complete(b"GET / HTTP/1.0\r\n\r\n")));
        assert!(!client_wants_close(&complete(
            b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
        )));
        let h = complete(b"GET / HTTP/1.1\r\nopc-request-id: ABC/123-x\r\n\r\n");
        assert_eq!(request_id(&h), "ABC/123-x");
        let h = complete(b"GET / HTTP/1.1\r\nx-request-id: <script>\r\n\r\n");
        assert_ne!(request_id(&h), "<script>");
        assert_ne!(new_request_id(), new_request_id());
    }

    #[test]
    fn fake_requests_stream_length_and_chunked_bodies() {
        let r = Request::fake("POST", "/u?k=v", &[("Content-Type", "x")], b"hello");
        assert_eq!(r.header("content-type"), Some("x"));
        assert_eq!(r.query(), Some("k=v"));
        assert_eq!(r.read_body(10).unwrap(), b"hello");
        let r = Request::fake("POST", "/", &[], b"hello");
        assert_eq!(r.read_body(4).unwrap_err().status(), 413);
        let r = Request::fake(
            "POST",
            "/",
            &[("Transfer-Encoding", "chunked")],
            b"3\r\nabc\r\n0\r\n\r\n",
        );
        assert!(r.is_chunked());
        assert_eq!(r.read_body(10).unwrap(), b"abc");
        let r = Request::fake("POST", "/", &[("Transfer-Encoding", "chunked")], b"3\r\nab");
        assert_eq!(r.read_body(10).unwrap_err().status(), 400);
        assert_eq!(r.body.borrow().failure, Some(BodyFailure::Truncated));
    }

    #[test]
    fn a_body_read_with_a_watcher_lands_in_one_buffer_and_shows_every_piece() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let r = Request::fake("PUT", "/", &[], &data);
        let mut seen = Vec::new();
        let body = r
            .read_body_with(data.len(), |p| seen.extend_from_slice(p))
            .unwrap();
        assert_eq!((body.len(), body.capacity()), (data.len(), data.len()));
        assert!(body == data && seen == data);
        let r = Request::fake("PUT", "/", &[], &data);
        assert_eq!(
            r.read_body_with(data.len() - 1, |_| {})
                .unwrap_err()
                .status(),
            413
        );
    }

    #[test]
    fn drain_refuses_large_remainders_and_uninvited_bodies() {
        let r = Request::fake("POST", "/", &[], &[7u8; 100]);
        assert!(r.body.borrow_mut().drain(1000, Duration::from_secs(1)));
        let r = Request::fake("POST", "/", &[], &[7u8; 100]);
        assert!(!r.body.borrow_mut().drain(10, Duration::from_secs(1)));
        let r = Request::fake("POST", "/", &[], &[7u8; 100]);
        r.body.borrow_mut().expect_continue = true;
        assert!(!r.body.borrow_mut().drain(1000, Duration::from_secs(1)));
    }
}
