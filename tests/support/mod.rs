//! The harness: what the integration tests (tests/it/main.rs) and the benchmarks (examples/)
//! share, included by each with `#[path]`, so none of it is public in the library.
//!
//! - [`emulator`]: the local stack (`ocivision::local`) in a temp directory, clients on it, the
//!   canned detectors, the `func` binary started as the Fn agent starts it;
//! - [`web`]: the web app in this process on the stack, and what its tests send it;
//! - [`http`]: the one raw-socket HTTP client and reply reader;
//! - [`bench`]: what only the benchmarks use (building what they measure, wrk, percentiles);
//! - here: quick in-process servers, the `webapp` binary as a child (for RSS, fd limits and
//!   thread counts that must not see other tests), and waiting.
//!
//! Nothing here mocks the server: every test talks to a real listener over loopback.

#![allow(dead_code)] // each test module and benchmark uses a different part

pub mod bench;
pub mod emulator;
pub mod http;
pub mod photos;
#[path = "../../src/timefmt.rs"]
pub mod timefmt; // the library's RFC 3339 code, compiled in here rather than made public
pub mod web;

use std::io::{BufRead, BufReader};
use std::net::{Shutdown, SocketAddr};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ocivision::http::{Limits, Request, Response, Server};

#[allow(unused_imports)] // each includer uses a part
pub use self::http::{request, Client, Reply};

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
    let path = format!("/proc/{pid}/status");
    status_field(&path, field).unwrap_or_else(|| panic!("{field} in {path}")) as u64
}

/// A numeric field (in kB for memory) of a `/proc/…/status` file; `None` once the process is
/// gone.
pub fn status_field(path: &str, field: &str) -> Option<f64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// The `webapp` binary running as a child on a free loopback port; killed on drop.
pub struct Webapp {
    child: Child,
    pub addr: SocketAddr,
    stderr: Arc<Mutex<String>>,
    /// The OCI stand-in the child is configured against, kept alive with it (several children
    /// may share one); none in local mode.
    _cloud: Option<Arc<emulator::Env>>,
}

impl Webapp {
    /// Starts the binary, optionally under a wrapper such as `prlimit --nofile=64:64 --`.
    pub fn spawn(wrapper: &[&str]) -> Webapp {
        Webapp::spawn_with(wrapper, Arc::new(emulator::Env::start("webapp-child")), &[])
    }

    /// Starts the production web app (cloud mode) against `cloud` as if it were OCI, with
    /// `extra` variables on top of the stack's.
    pub fn spawn_with(
        wrapper: &[&str],
        cloud: Arc<emulator::Env>,
        extra: &[(&str, &str)],
    ) -> Webapp {
        let mut env = cloud.wiring().webapp_env();
        env.push(("BIND".into(), "127.0.0.1".into()));
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        Webapp::run(wrapper, env, Some(cloud))
    }

    /// Starts the binary with only `env` (and `PATH`, `PORT=0`, `LOG_LEVEL=info` unless `env`
    /// says otherwise); ready once it logs its address.
    pub fn run(
        wrapper: &[&str],
        env: Vec<(String, String)>,
        cloud: Option<Arc<emulator::Env>>,
    ) -> Webapp {
        let exe = exe("webapp");
        let mut cmd = match wrapper.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(&exe);
                c
            }
            None => Command::new(exe),
        };
        let mut child = cmd
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("PORT", "0")
            .env("LOG_LEVEL", "info")
            .envs(env)
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
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
                if let Some(a) = line.split("listening on http://").nth(1) {
                    let _ = tx.send(a.trim().parse::<SocketAddr>().unwrap());
                }
            }
        });
        // Local mode loads the detector and may generate keys first.
        let addr = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("webapp logs its address");
        Webapp {
            child,
            addr,
            stderr,
            _cloud: cloud,
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

/// A binary of this build: cargo's path for it in the integration tests, the one beside the
/// benchmark otherwise.
pub fn exe(name: &str) -> PathBuf {
    let built = match name {
        "webapp" => option_env!("CARGO_BIN_EXE_webapp"),
        "func" => option_env!("CARGO_BIN_EXE_func"),
        _ => None,
    };
    built.map_or_else(
        || bench::binary(name).unwrap_or_else(|e| panic!("{e}")),
        PathBuf::from,
    )
}
