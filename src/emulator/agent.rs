//! The emulator's side of the Fn contract: it plays the Fn agent and calls a function over its
//! unix socket, as OCI does for events and invocations.
//!
//! One `POST /call` per invocation, body sent chunked as the real agent sends it, `Fn-Call-Id`
//! and `Fn-Deadline` set, the answer read with a size cap. Like the real agent, it keeps one
//! idle connection for back-to-back calls and drops it after a second of idleness; a connection
//! the function closed while idle is noticed before a call is written on it, so no call is sent
//! twice. The function's status is passed back as is: reading it as a verdict (200, 502, 504) is
//! the caller's job.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crate::error::{Error, Result};
use crate::timefmt::{self, Precision};

/// The largest answer read from a function (OCI's response limit is about 6 MB).
const MAX_REPLY: usize = 6 * 1024 * 1024;
/// The largest response head.
const MAX_HEAD: usize = 16 * 1024;

/// A function's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FnReply {
    /// The status the function answered.
    pub status: u16,
    /// Its headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Its body.
    pub body: Vec<u8>,
}

/// How long the idle connection is kept (the Fn agent's Go client: one idle connection, 1 s).
const IDLE_TIMEOUT: Duration = Duration::from_secs(1);

/// The connection kept between calls, with when it went idle.
type Idle = Option<(BufReader<UnixStream>, Instant)>;

/// Calls one function through its socket. Clones share the idle connection.
#[derive(Debug, Clone)]
pub struct FnAgent {
    socket: PathBuf,
    idle: Arc<Mutex<Idle>>,
    idle_timeout: Duration,
}

impl FnAgent {
    /// An agent for the function listening at `socket` (the `lsnr.sock` path, a symlink).
    pub fn new(socket: impl Into<PathBuf>) -> FnAgent {
        FnAgent {
            socket: socket.into(),
            idle: Arc::default(),
            idle_timeout: IDLE_TIMEOUT,
        }
    }

    /// Keeps the idle connection for `timeout` instead of the agent's second, so a test can
    /// outlast it without waiting.
    pub fn with_idle_timeout(mut self, timeout: Duration) -> FnAgent {
        self.idle_timeout = timeout;
        self
    }

    /// The idle connection, when it is recent and the function has not closed it.
    fn reuse(&self) -> Option<BufReader<UnixStream>> {
        let (connection, since) = self.idle.lock().unwrap_or_else(|e| e.into_inner()).take()?;
        if since.elapsed() >= self.idle_timeout || !connection.buffer().is_empty() {
            return None;
        }
        let mut connection = connection;
        let stream = connection.get_mut();
        stream.set_nonblocking(true).ok()?;
        // Readable while idle means closed (or stray bytes): either way, not for a new call.
        let alive = matches!(
            stream.read(&mut [0u8; 1]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock
        );
        stream.set_nonblocking(false).ok()?;
        alive.then_some(connection)
    }

    fn connect(&self) -> Result<BufReader<UnixStream>> {
        let stream = UnixStream::connect(&self.socket).map_err(|e| {
            Error::Io(std::io::Error::new(
                e.kind(),
                format!(
                    "connecting to function socket {}: {e}",
                    self.socket.display()
                ),
            ))
        })?;
        Ok(BufReader::new(stream))
    }

    /// The socket path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Sends one invocation; gives up at `timeout` (the `Fn-Deadline` sent is now + timeout).
    pub fn call(
        &self,
        body: &[u8],
        content_type: &str,
        extra_headers: &[(&str, &str)],
        timeout: Duration,
    ) -> Result<FnReply> {
        let mut connection = match self.reuse() {
            Some(connection) => connection,
            None => self.connect()?,
        };
        let stream = connection.get_mut();
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        let deadline = SystemTime::now() + timeout;
        let call_id = call_id();
        let mut head = format!(
            "POST /call HTTP/1.1\r\nHost: localhost\r\nUser-Agent: Go-http-client/1.1\r\n\
             Accept-Encoding: gzip\r\nFn-Call-Id: {call_id}\r\nFn-Deadline: {}\r\n\
             Content-Type: {content_type}\r\nDate: {}\r\nTransfer-Encoding: chunked\r\n",
            timefmt::format(deadline, Precision::Seconds),
            httpdate::fmt_http_date(SystemTime::now()),
        );
        for (name, value) in extra_headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        let mut wire = head.into_bytes();
        if !body.is_empty() {
            wire.extend_from_slice(format!("{:x}\r\n", body.len()).as_bytes());
            wire.extend_from_slice(body);
            wire.extend_from_slice(b"\r\n");
        }
        wire.extend_from_slice(b"0\r\n\r\n");
        stream.write_all(&wire)?;
        stream.flush()?;
        let (reply, reusable) = read_reply(&mut connection)?;
        if reusable {
            *self.idle.lock().unwrap_or_else(|e| e.into_inner()) =
                Some((connection, Instant::now()));
        }
        Ok(reply)
    }
}

/// A 26-character id in the ULID alphabet, as the agent sends.
fn call_id() -> String {
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    crate::random::bytes::<26>()
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(b & 31)]))
        .collect()
}

/// The answer, and whether the connection may carry another call.
fn read_reply(mut reader: impl BufRead) -> Result<(FnReply, bool)> {
    let mut head = Vec::new();
    loop {
        let before = head.len();
        let n = reader
            .by_ref()
            .take((MAX_HEAD - head.len()) as u64)
            .read_until(b'\n', &mut head)?;
        if n == 0 {
            return Err(protocol(
                "the function closed the connection without an answer",
            ));
        }
        if head[before..] == *b"\r\n" || head[before..] == *b"\n" {
            break;
        }
        if head.len() >= MAX_HEAD {
            return Err(protocol("response head too large"));
        }
    }
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    match response.parse(&head) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => return Err(protocol("malformed response head")),
    }
    let status = response.code.ok_or_else(|| protocol("no status"))?;
    let headers: Vec<(String, String)> = response
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_ascii_lowercase(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let closing = header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
    let framed = header("transfer-encoding").is_some() || header("content-length").is_some();
    let reusable = framed && !closing;
    let body = if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        read_chunked(&mut reader)?
    } else if let Some(length) = header("content-length") {
        let length: usize = length
            .trim()
            .parse()
            .map_err(|_| protocol("bad content-length"))?;
        if length > MAX_REPLY {
            return Err(protocol("response too large"));
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        body
    } else {
        let mut body = Vec::new();
        reader.take(MAX_REPLY as u64 + 1).read_to_end(&mut body)?;
        if body.len() > MAX_REPLY {
            return Err(protocol("response too large"));
        }
        body
    };
    Ok((
        FnReply {
            status,
            headers,
            body,
        },
        reusable,
    ))
}

fn read_chunked(reader: &mut impl BufRead) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut line = Vec::new();
        reader.by_ref().take(1024).read_until(b'\n', &mut line)?;
        let text = String::from_utf8_lossy(&line);
        let size_text = text.trim().split(';').next().unwrap_or("");
        let size = usize::from_str_radix(size_text, 16).map_err(|_| protocol("bad chunk size"))?;
        if size == 0 {
            // Trailers, up to the blank line.
            loop {
                let mut trailer = Vec::new();
                let n = reader.by_ref().take(8192).read_until(b'\n', &mut trailer)?;
                if n == 0 || trailer == b"\r\n" || trailer == b"\n" {
                    return Ok(body);
                }
            }
        }
        if body.len() + size > MAX_REPLY {
            return Err(protocol("response too large"));
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        let mut crlf = [0u8; 2];
        reader.read_exact(&mut crlf)?;
        if crlf != *b"\r\n" {
            return Err(protocol("chunk not followed by CRLF"));
        }
    }
}

fn protocol(what: &str) -> Error {
    Error::Io(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("function answer: {what}"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_length_and_chunked_answers() {
        let plain =
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
        let (reply, reusable) = read_reply(&plain[..]).unwrap();
        assert_eq!((reply.status, reply.body.as_slice()), (200, &b"{}"[..]));
        assert!(reusable);
        assert_eq!(
            reply.headers[0],
            ("content-type".into(), "application/json".into())
        );
        let chunked = b"HTTP/1.1 502 Bad Gateway\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nTrailer: 1\r\n\r\n";
        let (reply, reusable) = read_reply(&chunked[..]).unwrap();
        assert_eq!((reply.status, reply.body.as_slice()), (502, &b"abcde"[..]));
        assert!(reusable);
        let closing = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
        assert!(!read_reply(&closing[..]).unwrap().1, "connection: close");
        let unframed = b"HTTP/1.1 200 OK\r\n\r\nbody to the end";
        assert!(!read_reply(&unframed[..]).unwrap().1, "body ends at close");
        assert!(read_reply(&b""[..]).is_err());
        assert!(read_reply(&b"HTTP/1.1 200 OK\r\nContent-Length: 99999999\r\n\r\n"[..]).is_err());
    }

    #[test]
    fn call_ids_use_the_ulid_alphabet() {
        let id = call_id();
        assert_eq!(id.len(), 26);
        assert!(id
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase()));
        assert!(!id.contains(['I', 'L', 'O', 'U']));
    }
}
