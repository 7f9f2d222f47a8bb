//! The harness's one HTTP client: exact bytes out over a raw socket, and one reply reader for
//! every answer a test or benchmark reads (length-framed, chunked, or until the close; interim
//! `1xx` answers too). [`Client`] keeps a connection for pipelining and hostile cases;
//! [`request`] is one request on a fresh connection.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde_json::Value;

/// One parsed answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// The body, chunked framing removed.
    pub body: Vec<u8>,
}

impl Reply {
    /// The first header called `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the server said it closes the connection.
    pub fn closes(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics, showing the body, when it is not (tests).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    /// The body as JSON, or null when it is not (benchmarks, which count what they get).
    pub fn json_or_null(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// `Retry-After`, when present and in seconds.
    pub fn retry_after(&self) -> Option<Duration> {
        self.header("retry-after")?
            .parse()
            .ok()
            .map(Duration::from_secs)
    }
}

/// A raw client: exact bytes out, answers parsed in order, leftovers kept for pipelining.
pub struct Client {
    pub stream: TcpStream,
    buf: Vec<u8>,
    /// Why the last read ended the input, when it was an error (a timeout, a reset).
    ended: Option<std::io::Error>,
}

impl Client {
    /// Connects with 10 s read and write timeouts; panics when it cannot.
    pub fn connect(addr: SocketAddr) -> Client {
        Client::open(addr, Duration::from_secs(10)).expect("connect")
    }

    /// Connects with `timeout` for each read and write.
    pub fn open(addr: SocketAddr, timeout: Duration) -> std::io::Result<Client> {
        let stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        Ok(Client {
            stream,
            buf: Vec::new(),
            ended: None,
        })
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
    }

    /// Reads more bytes; false at the end of input (EOF, or an error kept in `ended`).
    fn more(&mut self) -> bool {
        let mut chunk = [0u8; 65536];
        match self.stream.read(&mut chunk) {
            Ok(0) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
            Err(e) => {
                self.ended = Some(e);
                false
            }
        }
    }

    /// Reads until `buf` holds `n` bytes; false when the input ends first.
    fn fill(&mut self, n: usize) -> bool {
        while self.buf.len() < n {
            if !self.more() {
                return false;
            }
        }
        true
    }

    /// The next answer (a `100 Continue` is an answer too), or `None` when the connection
    /// ended before it was complete.
    pub fn response(&mut self) -> Option<Reply> {
        self.answer(false)
    }

    /// The next answer; with `to_head`, the answer to a `HEAD`, whose framing headers describe
    /// a body that is not sent.
    fn answer(&mut self, to_head: bool) -> Option<Reply> {
        let end = loop {
            if let Some(p) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
            if !self.more() {
                return None;
            }
        };
        let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
        self.buf.drain(..end);
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        assert!(
            status_line.starts_with("HTTP/1.1 "),
            "status line {status_line:?}"
        );
        let status: u16 = status_line[9..12].parse().expect("status code");
        let headers: Vec<(String, String)> = lines
            .filter(|l| !l.is_empty())
            .map(|l| {
                let (n, v) = l.split_once(':').expect("header colon");
                (n.trim().to_string(), v.trim().to_string())
            })
            .collect();
        let mut reply = Reply {
            status,
            headers,
            body: Vec::new(),
        };
        if to_head || status < 200 || status == 204 || status == 304 {
            return Some(reply);
        }
        if let Some(len) = reply.header("content-length") {
            let len: usize = len.parse().expect("content-length");
            if !self.fill(len) {
                return None;
            }
            reply.body = self.buf.drain(..len).collect();
        } else if reply
            .header("transfer-encoding")
            .is_some_and(|v| v.contains("chunked"))
        {
            loop {
                let line_end = loop {
                    if let Some(p) = self.buf.windows(2).position(|w| w == b"\r\n") {
                        break p;
                    }
                    if !self.more() {
                        return None;
                    }
                };
                let size = std::str::from_utf8(&self.buf[..line_end]).unwrap().trim();
                let size = usize::from_str_radix(size, 16).expect("chunk size");
                self.buf.drain(..line_end + 2);
                if !self.fill(size + 2) {
                    return None;
                }
                reply.body.extend(self.buf.drain(..size));
                self.buf.drain(..2);
                if size == 0 {
                    break;
                }
            }
        } else if reply.closes() {
            while self.more() {}
            reply.body = std::mem::take(&mut self.buf);
        }
        Some(reply)
    }

    /// True when the server has closed the connection (EOF or reset) with nothing more to read.
    pub fn closed(&mut self) -> bool {
        self.buf.is_empty() && !self.more()
    }
}

/// Bodies larger than this are written on a thread of their own, so an early answer (413, 400)
/// is read while the server refuses the rest; smaller ones fit the socket's buffers.
const WRITE_APART: usize = 64 * 1024;

/// One request on a fresh connection (`Connection: close`, `headers` as extra lines
/// `"Name: value"`), each read and write within `timeout`: the final answer.
pub fn request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[&str],
    body: &[u8],
    timeout: Duration,
) -> std::io::Result<Reply> {
    let mut client = Client::open(addr, timeout)?;
    let mut head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for line in headers {
        head.push_str(line);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    client.stream.write_all(head.as_bytes())?;
    let sender = if body.len() > WRITE_APART {
        let mut writer = client.stream.try_clone()?;
        let owned = body.to_vec();
        Some(std::thread::spawn(move || {
            let _ = writer.write_all(&owned);
        }))
    } else {
        // A refusal may close the connection before the body is read: the answer says why.
        let _ = client.stream.write_all(body);
        None
    };
    let reply = loop {
        match client.answer(method == "HEAD") {
            Some(r) if r.status < 200 => continue,
            Some(r) => break Ok(r),
            None => {
                break Err(client.ended.take().unwrap_or_else(|| {
                    std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        format!("{method} {target}: the connection closed before the answer"),
                    )
                }))
            }
        }
    };
    if let Some(sender) = sender {
        let _ = sender.join();
    }
    reply
}
