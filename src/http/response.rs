//! The response side: a plain [`Response`] value that handlers build, and the writer that puts
//! it on the wire with `Date`, `Server`, framing and `Connection: close` when we will close.
//!
//! Handlers never set framing: `Content-Length`, `Transfer-Encoding`, `Connection` (other than
//! asking for close), `Date` and `Server` are the writer's. Header names and values are checked
//! here, so a handler cannot inject a line break. This module does not decide keep-alive; the
//! server tells the writer.

use std::io::{self, Read};
use std::time::SystemTime;

use super::conn::ConnIo;

/// The `Server` header: says what it is without a version to fingerprint.
const SERVER: &str = "ocivision";

/// Headers the writer owns; a handler's copies are dropped (`Connection: close` is honoured).
const MANAGED: [&str; 7] = [
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "date",
    "server",
    "upgrade",
];

/// A response body.
pub(crate) enum Body {
    Bytes(Vec<u8>),
    Stream {
        reader: Box<dyn Read + Send>,
        len: Option<u64>,
    },
}

/// An HTTP response as a plain value. Build with a constructor, add headers with
/// [`Response::with_header`].
pub struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Body,
    abort: bool,
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .finish_non_exhaustive()
    }
}

impl Response {
    /// A response with this status and an empty body. Statuses outside 200–999 are sent as 500.
    pub fn new(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Body::Bytes(Vec::new()),
            abort: false,
        }
    }

    /// `text/plain; charset=utf-8`.
    pub fn text(status: u16, body: impl Into<String>) -> Response {
        Response::new(status)
            .with_header("Content-Type", "text/plain; charset=utf-8")
            .with_body(body.into().into_bytes())
    }

    /// `text/html; charset=utf-8`. The caller is responsible for escaping.
    pub fn html(status: u16, body: impl Into<String>) -> Response {
        Response::new(status)
            .with_header("Content-Type", "text/html; charset=utf-8")
            .with_body(body.into().into_bytes())
    }

    /// `application/json`. Takes a JSON value rather than anything serialisable, so it cannot
    /// fail: a `Value` always prints as JSON (its keys are strings, its numbers finite). Callers
    /// with a `Serialize` type of their own make the value with `serde_json::json!`.
    pub fn json(status: u16, value: &serde_json::Value) -> Response {
        Response::new(status)
            .with_header("Content-Type", "application/json")
            .with_body(value.to_string().into_bytes())
    }

    /// The server's error answer: `text/plain`, body `"<status> <reason phrase>\n"` plus
    /// `detail` on a second line when given (only text safe to show a client).
    pub fn error(status: u16, detail: Option<&str>) -> Response {
        let mut text = format!("{status} {}\n", reason_phrase(status));
        if let Some(d) = detail {
            text.push_str(d);
            text.push('\n');
        }
        Response::text(status, text)
    }

    /// Adds a header (kept in order; duplicates allowed). Names must be tokens and values must
    /// not contain CR, LF or NUL; bad ones are dropped with a warning when written.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Response {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Replaces the body with these bytes.
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Response {
        self.body = Body::Bytes(body.into());
        self
    }

    /// Replaces the body with a stream. With `Some(len)` exactly `len` bytes are sent with
    /// `Content-Length` (a shorter stream closes the connection); with `None` the body is sent
    /// chunked (close-delimited to HTTP/1.0 clients).
    pub fn with_reader(mut self, reader: impl Read + Send + 'static, len: Option<u64>) -> Response {
        self.body = Body::Stream {
            reader: Box::new(reader),
            len,
        };
        self
    }

    /// No answer at all: the server closes the connection without writing a byte. Only the
    /// emulator uses it, to inject dropped connections.
    pub fn abort() -> Response {
        Response {
            abort: true,
            ..Response::new(500)
        }
    }

    /// True for [`Response::abort`].
    pub(crate) fn is_abort(&self) -> bool {
        self.abort
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body when it is held in memory (for handler tests); `None` for a stream.
    pub fn body_bytes(&self) -> Option<&[u8]> {
        match &self.body {
            Body::Bytes(b) => Some(b),
            Body::Stream { .. } => None,
        }
    }

    /// This answer gzip-compressed when it is worth it and the client accepts it: an in-memory
    /// body of a text type (see [`compressible`](super::compress::compressible)) of at least
    /// [`MIN_COMPRESS_BYTES`](super::compress::MIN_COMPRESS_BYTES), not yet encoded, to a `GET`
    /// (`head` is false: a HEAD has no body to compress) with a status that carries a body.
    /// Every text answer gets `Vary: Accept-Encoding`, compressed or not, so caches keep the
    /// variants apart; a compressed one's strong `ETag` becomes weak. Streams (images) are
    /// never touched.
    pub fn compressed_for(mut self, accept_encoding: Option<&str>, head: bool) -> Response {
        use super::compress;
        let text = self
            .header("content-type")
            .is_some_and(compress::compressible);
        if !text {
            return self;
        }
        let vary = self.header("vary").is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("accept-encoding"))
        });
        if !vary {
            self = self.with_header("Vary", "Accept-Encoding");
        }
        let bodiless = head || matches!(self.status, 204 | 304);
        let big_enough =
            matches!(&self.body, Body::Bytes(b) if b.len() >= compress::MIN_COMPRESS_BYTES);
        if bodiless
            || !big_enough
            || self.header("content-encoding").is_some()
            || !compress::accepts_gzip(accept_encoding)
        {
            return self;
        }
        if let Body::Bytes(b) = &self.body {
            let packed = compress::gzip(b);
            if packed.len() < b.len() {
                self.body = Body::Bytes(packed);
                self = self.with_header("Content-Encoding", "gzip");
                // Another encoding is another representation: a strong validator becomes weak
                // (If-None-Match compares weakly, so revalidation still answers 304).
                for (name, value) in &mut self.headers {
                    if name.eq_ignore_ascii_case("etag") && value.starts_with('"') {
                        *value = format!("W/{value}");
                    }
                }
            }
        }
        self
    }

    /// True when the handler asked for the connection to be closed.
    pub(crate) fn asks_close(&self) -> bool {
        self.headers.iter().any(|(n, v)| {
            n.eq_ignore_ascii_case("connection")
                && v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close"))
        })
    }

    /// True when the body length is unknown and the client cannot take chunked: close-delimited.
    pub(crate) fn needs_close_delimiting(&self, http10: bool) -> bool {
        http10 && matches!(self.body, Body::Stream { len: None, .. })
    }
}

/// The reason phrase for the statuses we send.
pub(crate) fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        417 => "Expectation Failed",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn valid_value(v: &str) -> bool {
    v.bytes().all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

/// How the writer frames the response.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WriteMode {
    /// HEAD request: headers as for GET, no body.
    pub(crate) head_only: bool,
    /// We close after this response: send `Connection: close`.
    pub(crate) close: bool,
    /// The client speaks HTTP/1.0: no chunked.
    pub(crate) http10: bool,
}

/// Serialises the head for `resp` (pure, for tests).
pub(crate) fn head_bytes(resp: &Response, mode: WriteMode, date: &str) -> Vec<u8> {
    let status = if (200..=999).contains(&resp.status) {
        resp.status
    } else {
        500
    };
    let mut h = Vec::with_capacity(256);
    h.extend_from_slice(
        format!(
            "HTTP/1.1 {status} {}\r\nDate: {date}\r\nServer: {SERVER}\r\n",
            reason_phrase(status)
        )
        .as_bytes(),
    );
    for (n, v) in &resp.headers {
        if MANAGED.iter().any(|m| n.eq_ignore_ascii_case(m)) {
            continue;
        }
        if !valid_name(n) || !valid_value(v) {
            log::warn!(target: "http", "dropped an invalid response header");
            continue;
        }
        h.extend_from_slice(n.as_bytes());
        h.extend_from_slice(b": ");
        h.extend_from_slice(v.as_bytes());
        h.extend_from_slice(b"\r\n");
    }
    let bodiless = status == 204 || status == 304;
    if !bodiless {
        match &resp.body {
            Body::Bytes(b) => push_length(&mut h, b.len() as u64),
            Body::Stream { len: Some(n), .. } => push_length(&mut h, *n),
            Body::Stream { len: None, .. } if !mode.http10 => {
                h.extend_from_slice(b"Transfer-Encoding: chunked\r\n")
            }
            Body::Stream { len: None, .. } => {}
        }
    }
    if mode.close {
        h.extend_from_slice(b"Connection: close\r\n");
    } else if mode.http10 {
        h.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    h.extend_from_slice(b"\r\n");
    h
}

fn push_length(h: &mut Vec<u8>, n: u64) {
    h.extend_from_slice(format!("Content-Length: {n}\r\n").as_bytes());
}

/// Writes `resp`; returns the body bytes sent. An error means the connection must be closed.
pub(crate) fn write(io: &ConnIo, resp: Response, mode: WriteMode) -> io::Result<u64> {
    let date = httpdate::fmt_http_date(SystemTime::now());
    let mut out = head_bytes(&resp, mode, &date);
    let no_body = mode.head_only || resp.status == 204 || resp.status == 304;
    match resp.body {
        Body::Bytes(b) => {
            if no_body || b.is_empty() {
                io.write_all(&out)?;
                return Ok(0);
            }
            // One write for small answers: fewer packets and syscalls on keep-alive.
            if b.len() <= 64 * 1024 {
                out.extend_from_slice(&b);
                io.write_all(&out)?;
            } else {
                io.write_all(&out)?;
                io.write_all(&b)?;
            }
            Ok(b.len() as u64)
        }
        Body::Stream { reader, len } => {
            io.write_all(&out)?;
            if no_body {
                return Ok(0);
            }
            let chunked = len.is_none() && !mode.http10;
            copy_body(io, reader, len, chunked)
        }
    }
}

/// A small in-memory answer as one run of bytes, for the readiness loop's refusals (it writes
/// once without blocking and never streams). A streamed body is left out: only its head goes.
pub(crate) fn to_bytes(resp: Response, mode: WriteMode) -> Vec<u8> {
    let date = httpdate::fmt_http_date(SystemTime::now());
    let mut out = head_bytes(&resp, mode, &date);
    let no_body = mode.head_only || resp.status == 204 || resp.status == 304;
    if let (Body::Bytes(b), false) = (&resp.body, no_body) {
        out.extend_from_slice(b);
    }
    out
}

fn copy_body(
    io: &ConnIo,
    reader: Box<dyn Read + Send>,
    len: Option<u64>,
    chunked: bool,
) -> io::Result<u64> {
    let mut reader = reader.take(len.unwrap_or(u64::MAX));
    let mut buf = vec![0u8; 16 * 1024];
    let mut sent = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunked {
            let mut frame = format!("{n:x}\r\n").into_bytes();
            frame.extend_from_slice(&buf[..n]);
            frame.extend_from_slice(b"\r\n");
            io.write_all(&frame)?;
        } else {
            io.write_all(&buf[..n])?;
        }
        sent += n as u64;
    }
    if chunked {
        io.write_all(b"0\r\n\r\n")?;
    }
    if let Some(n) = len {
        if sent < n {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "response body shorter than its length",
            ));
        }
    }
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEEP: WriteMode = WriteMode {
        head_only: false,
        close: false,
        http10: false,
    };

    fn text(resp: &Response, mode: WriteMode) -> String {
        String::from_utf8(head_bytes(resp, mode, "DATE")).unwrap()
    }

    #[test]
    fn head_has_date_server_length_and_close_when_closing() {
        let r = Response::text(200, "hi");
        let t = text(&r, KEEP);
        assert!(t.starts_with("HTTP/1.1 200 OK\r\nDate: DATE\r\nServer: ocivision\r\n"));
        assert!(t.contains("Content-Length: 2\r\n"));
        assert!(!t.contains("Connection"));
        let t = text(
            &r,
            WriteMode {
                close: true,
                ..KEEP
            },
        );
        assert!(t.ends_with("Connection: close\r\n\r\n"), "{t}");
    }

    #[test]
    fn handler_cannot_set_framing_or_inject_lines() {
        let r = Response::new(200)
            .with_header("Content-Length", "999")
            .with_header("Transfer-Encoding", "chunked")
            .with_header("X-Bad", "a\r\nSet-Cookie: x")
            .with_header("Bad Name", "v")
            .with_header("X-Ok", "a\tb")
            .with_header("Connection", "close");
        assert!(r.asks_close());
        let t = text(&r, KEEP);
        assert!(t.contains("Content-Length: 0\r\n"));
        assert!(!t.contains("999") && !t.contains("chunked") && !t.contains("Set-Cookie"));
        assert!(t.contains("X-Ok: a\tb\r\n"));
    }

    #[test]
    fn streams_are_chunked_for_11_and_close_delimited_for_10() {
        let r = Response::new(200).with_reader(&b"abc"[..], None);
        assert!(text(&r, KEEP).contains("Transfer-Encoding: chunked"));
        assert!(!r.needs_close_delimiting(false));
        assert!(r.needs_close_delimiting(true));
        let t = text(
            &r,
            WriteMode {
                http10: true,
                close: true,
                ..KEEP
            },
        );
        assert!(!t.contains("chunked") && !t.contains("Content-Length"));
        let r = Response::new(200).with_reader(&b"abc"[..], Some(3));
        assert!(text(&r, KEEP).contains("Content-Length: 3\r\n"));
    }

    #[test]
    fn text_answers_are_gzipped_when_accepted_and_large_enough() {
        let page = "<p>hello, gallery</p>\n".repeat(100);
        let r = Response::html(200, page.clone())
            .with_header("ETag", "\"abc\"")
            .compressed_for(Some("gzip, br"), false);
        assert_eq!(r.header("content-encoding"), Some("gzip"));
        assert_eq!(r.header("etag"), Some("W/\"abc\""));
        assert_eq!(r.header("vary"), Some("Accept-Encoding"));
        assert!(r.body_bytes().unwrap().len() < page.len() / 5);
        for (accept, head, status) in [
            (None, false, 200),
            (Some("gzip;q=0"), false, 200),
            (Some("gzip"), true, 200),
            (Some("gzip"), false, 304),
        ] {
            let r = Response::html(status, page.clone()).compressed_for(accept, head);
            assert_eq!(
                r.header("content-encoding"),
                None,
                "{accept:?} {head} {status}"
            );
            assert_eq!(r.header("vary"), Some("Accept-Encoding"));
            assert_eq!(r.body_bytes().unwrap().len(), page.len());
        }
        let small = Response::json(200, &serde_json::json!({"a": 1}));
        let small = small.compressed_for(Some("gzip"), false);
        assert_eq!(small.header("content-encoding"), None, "below the minimum");
        let jpeg = Response::new(200)
            .with_header("Content-Type", "image/jpeg")
            .with_body(vec![0u8; 4096])
            .compressed_for(Some("gzip"), false);
        assert_eq!(
            (jpeg.header("content-encoding"), jpeg.header("vary")),
            (None, None)
        );
        let stream = Response::new(200)
            .with_header("Content-Type", "text/plain")
            .with_reader(&b"abc"[..], Some(3))
            .compressed_for(Some("gzip"), false);
        assert!(stream.body_bytes().is_none() && stream.header("content-encoding").is_none());
        let already = Response::new(200)
            .with_header("Content-Type", "text/css")
            .with_header("Content-Encoding", "gzip")
            .with_header("Vary", "accept-encoding")
            .with_body(vec![b'a'; 4096])
            .compressed_for(Some("gzip"), false);
        assert_eq!(
            already.body_bytes().unwrap().len(),
            4096,
            "not compressed twice"
        );
        assert_eq!(
            already.headers.iter().filter(|(n, _)| n == "Vary").count(),
            1
        );
    }

    #[test]
    fn odd_statuses_and_error_bodies() {
        assert!(text(&Response::new(100), KEEP).starts_with("HTTP/1.1 500 "));
        assert!(!text(&Response::new(204), KEEP).contains("Content-Length"));
        let e = Response::error(413, Some("too big"));
        assert_eq!(e.body_bytes().unwrap(), b"413 Content Too Large\ntoo big\n");
        let j = Response::json(200, &serde_json::json!({"a": 1, "b": ["<\u{e9}>"]}));
        assert_eq!(j.header("content-type"), Some("application/json"));
        assert_eq!(
            j.body_bytes().unwrap(),
            "{\"a\":1,\"b\":[\"<\u{e9}>\"]}".as_bytes()
        );
    }
}
