//! Helpers shared by the integration tests: a raw-socket HTTP client that writes exact bytes and
//! reads responses one by one, quick in-process servers on 127.0.0.1:0, and the `webapp` binary
//! as a child process (for RSS, fd limits and thread counts that must not see other tests).
//!
//! Nothing here mocks the server: every test talks to a real listener over loopback.

#![allow(dead_code)] // each test module uses a different subset

pub mod emulator;
pub mod web;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ocivision::http::{Limits, Request, Response, Server};

/// Small limits so every timeout-driven test finishes in a second or two.
pub fn quick_limits() -> Limits {
    let mut l = Limits::public();
    l.read_timeout = Some(Duration::from_secs(2));
    l.write_timeout = Some(Duration::from_secs(2));
    l.head_timeout = Some(Duration::from_secs(2));
    l.body_timeout = Some(Duration::from_secs(2));
    l.idle_timeout = Some(Duration::from_secs(3));
    l.max_connections = 16;
    l.max_body_bytes = 1024 * 1024;
    l.drain_timeout = Duration::from_millis(300);
    l
}

/// What a test handler saw: how many calls, and each call's path.
#[derive(Clone, Default)]
pub struct Seen {
    pub paths: Arc<Mutex<Vec<String>>>,
}

impl Seen {
    pub fn calls(&self) -> usize {
        self.paths.lock().unwrap().len()
    }
    pub fn saw(&self, path: &str) -> bool {
        self.paths.lock().unwrap().iter().any(|p| p == path)
    }
}

/// Starts an in-process server whose handler records the path and answers
/// `"<method> <path> <body bytes read>"`, reading the body unless the path starts with
/// `/noread`; `/panic` panics; `/close` asks for the connection to be closed.
pub fn echo_server(limits: Limits) -> (Server, Seen) {
    let seen = Seen::default();
    let s = seen.clone();
    let server = Server::bind_tcp("127.0.0.1:0", limits, move |req: &Request| {
        s.paths.lock().unwrap().push(req.path().to_string());
        if req.path() == "/panic" {
            panic!("test handler panics on purpose");
        }
        let n = if req.path().starts_with("/noread") {
            0
        } else {
            req.read_body(4 * 1024 * 1024)?.len()
        };
        let resp = Response::text(200, format!("{} {} {n}", req.method(), req.path()));
        Ok(if req.path() == "/close" {
            resp.with_header("Connection", "close")
        } else {
            resp
        })
    })
    .expect("bind test server");
    (server, seen)
}

/// One parsed response.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn closes(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A raw client: exact bytes out, responses parsed in order, leftovers kept for pipelining.
pub struct Client {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream
            .set_write_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
    }

    /// Reads more bytes; false on EOF or error.
    fn more(&mut self) -> bool {
        let mut chunk = [0u8; 8192];
        match self.stream.read(&mut chunk) {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    /// The next response (skipping none: a `100 Continue` is returned as a response too), or
    /// `None` when the connection closed first.
    pub fn response(&mut self) -> Option<Resp> {
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
                (n.to_string(), v.trim().to_string())
            })
            .collect();
        let mut resp = Resp {
            status,
            headers,
            body: Vec::new(),
        };
        if status < 200 {
            return Some(resp);
        }
        if let Some(len) = resp.header("content-length") {
            let len: usize = len.parse().expect("content-length");
            while self.buf.len() < len {
                if !self.more() {
                    return None;
                }
            }
            resp.body = self.buf.drain(..len).collect();
        } else if resp.header("transfer-encoding").is_some() {
            loop {
                let line_end = loop {
                    if let Some(p) = self.buf.windows(2).position(|w| w == b"\r\n") {
                        break p;
                    }
                    if !self.more() {
                        return None;
                    }
                };
                let size =
                    usize::from_str_radix(std::str::from_utf8(&self.buf[..line_end]).unwrap(), 16)
                        .unwrap();
                self.buf.drain(..line_end + 2);
                while self.buf.len() < size + 2 {
                    if !self.more() {
                        return None;
                    }
                }
                resp.body.extend(self.buf.drain(..size));
                self.buf.drain(..2);
                if size == 0 {
                    break;
                }
            }
        } else if resp.closes() {
            while self.more() {}
            resp.body = std::mem::take(&mut self.buf);
        }
        Some(resp)
    }

    /// True when the server has closed the connection (EOF or reset) with nothing more to read.
    pub fn closed(&mut self) -> bool {
        self.buf.is_empty() && !self.more()
    }
}

/// Proves the server still answers a normal request on a fresh connection.
pub fn assert_serves(addr: SocketAddr) {
    let mut c = Client::connect(addr);
    c.send(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = c.response().expect("server must still answer");
    assert_eq!(r.status, 200, "normal request after the hostile one");
}

/// Threads of this process whose name is exactly `name` (the worker threads of one server).
pub fn threads_named(name: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("comm")).ok())
        .filter(|c| c.trim_end() == name)
        .count()
}

/// A numeric field (in kB for memory) of `/proc/<pid>/status`.
pub fn proc_status(pid: &str, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/{pid}/status"))
}

/// One request on a fresh connection (`Connection: close`, `headers` as extra lines); the raw
/// answer, read to the end or until `timeout` passes without a byte.
pub fn one_shot(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[&str],
    body: &[u8],
    timeout: Duration,
) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(timeout)).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for h in headers {
        head.push_str(h);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    raw
}

/// The `webapp` binary running as a child on a free loopback port; killed on drop.
pub struct Webapp {
    /// The OCI stand-in the child is configured against (kept alive with it; several children
    /// may share one).
    pub cloud: Arc<emulator::Env>,
    child: Child,
    pub addr: SocketAddr,
    stderr: Arc<Mutex<String>>,
}

impl Webapp {
    /// Starts the binary, optionally under a wrapper such as `prlimit --nofile=64:64 --`.
    pub fn spawn(wrapper: &[&str]) -> Webapp {
        Webapp::spawn_with(wrapper, Arc::new(emulator::Env::start("webapp-child")), &[])
    }

    /// Starts the binary against `cloud`, with `extra` variables on top of the cloud settings.
    pub fn spawn_with(
        wrapper: &[&str],
        cloud: Arc<emulator::Env>,
        extra: &[(&str, &str)],
    ) -> Webapp {
        let exe = env!("CARGO_BIN_EXE_webapp");
        let mut cmd = match wrapper.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(exe);
                c
            }
            None => Command::new(exe),
        };
        // The production web app (cloud mode), pointed at an emulator as if it were OCI.
        let mut child = cmd
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(emulator::cloud_env(&cloud))
            .env("PORT", "0")
            .env("BIND", "127.0.0.1")
            .env("LOG_LEVEL", "info")
            .envs(extra.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn webapp");
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let pipe = child.stderr.take().unwrap();
        let sink = Arc::clone(&stderr);
        // Drain stderr for the child's whole life so its logging never blocks.
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                if let Some(a) = line.split("listening on http://").nth(1) {
                    let _ = tx.send(a.trim().parse::<SocketAddr>().unwrap());
                }
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("webapp logs its address");
        Webapp {
            cloud,
            child,
            addr,
            stderr,
        }
    }

    pub fn pid(&self) -> String {
        self.child.id().to_string()
    }

    pub fn rss_kib(&self) -> u64 {
        proc_status(&self.pid(), "VmRSS")
    }

    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    pub fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

impl Drop for Webapp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until `cond` holds or `limit` passes; returns whether it held.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}

/// Half-closes the client's sending side.
pub fn half_close(c: &Client) {
    c.stream.shutdown(Shutdown::Write).unwrap();
}
