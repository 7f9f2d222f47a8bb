//! The Fn contract over a real unix socket: the start-up dance, body framings, connection reuse,
//! deadlines; and the real `func` binary coming up within the agent's limits.

use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crate::support::timefmt::{self, Precision};
use ocivision::emulator::agent::FnAgent;
use ocivision::fdk::{CallResult, FnConfig, FnServer};

use crate::support::emulator::{spawn_func, Env, TempDir};
use crate::support::wait_until;

/// An echo function that records each call's body, and whether it ran.
fn echo_server(dir: &TempDir) -> (FnServer, std::path::PathBuf, Arc<Mutex<Vec<Vec<u8>>>>) {
    let socket = dir.path().join("lsnr.sock");
    let config = FnConfig::from_lookup(&|name| match name {
        "FN_LISTENER" => Some(format!("unix:{}", socket.display())),
        "FN_FORMAT" => Some("http-stream".into()),
        _ => None,
    })
    .unwrap();
    let calls = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&calls);
    let server = FnServer::start(&config, move |invocation| {
        seen.lock().unwrap().push(invocation.body.clone());
        if invocation.body == b"sleep" {
            std::thread::sleep(Duration::from_millis(300));
        }
        CallResult::Success(
            serde_json::json!({"len": invocation.body.len(), "call": invocation.call_id}),
        )
    })
    .unwrap();
    (server, socket, calls)
}

fn deadline_in(secs: i64) -> String {
    let at = if secs >= 0 {
        SystemTime::now() + Duration::from_secs(secs as u64)
    } else {
        SystemTime::now() - Duration::from_secs((-secs) as u64)
    };
    timefmt::format(at, Precision::Seconds)
}

/// Reads one response (head and a Content-Length body) from the stream.
fn read_response(stream: &mut UnixStream) -> (u16, String, Vec<u8>) {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        assert_eq!(
            stream.read(&mut byte).unwrap(),
            1,
            "connection closed mid-head"
        );
        buf.push(byte[0]);
    }
    let head = String::from_utf8(buf).unwrap();
    let status: u16 = head[9..12].parse().unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length: ")
                .map(|v| v.trim().parse().unwrap())
        })
        .unwrap_or(0);
    let mut body = vec![0; length];
    stream.read_exact(&mut body).unwrap();
    (status, head, body)
}

#[test]
fn the_socket_is_a_relative_link_to_a_0666_socket() {
    let dir = TempDir::new("fdk-dance");
    let (server, socket, _) = echo_server(&dir);
    let link = std::fs::read_link(&socket).unwrap();
    assert_eq!(
        link,
        std::path::PathBuf::from("phonylsnr.sock"),
        "relative, same directory"
    );
    let target = dir.path().join(&link);
    let meta = std::fs::metadata(&target).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o666);
    drop(server);
    assert!(
        std::fs::symlink_metadata(&socket).is_err(),
        "link removed on exit"
    );
    assert!(
        std::fs::symlink_metadata(&target).is_err(),
        "socket removed on exit"
    );
}

#[test]
fn chunked_and_sized_bodies_on_a_reused_then_fresh_connection() {
    let dir = TempDir::new("fdk-bodies");
    let (_server, socket, calls) = echo_server(&dir);
    let deadline = deadline_in(30);
    let mut stream = UnixStream::connect(&socket).unwrap();
    // Chunked, as the agent sends it.
    write!(
        stream,
        "POST /call HTTP/1.1\r\nHost: localhost\r\nFn-Call-Id: 01AAAAAAAAAAAAAAAAAAAAAAAA\r\nFn-Deadline: {deadline}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    )
    .unwrap();
    let (status, head, body) = read_response(&mut stream);
    assert_eq!(status, 200, "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("fn-fdk-version: fdk-rust-ocivision/"),
        "{head}"
    );
    assert!(
        !head.to_ascii_lowercase().contains("connection: close"),
        "{head}"
    );
    let answer: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(answer["len"], 11);
    assert_eq!(answer["call"], "01AAAAAAAAAAAAAAAAAAAAAAAA");
    // Sized, on the same connection.
    write!(
        stream,
        "POST /call HTTP/1.1\r\nHost: localhost\r\nFn-Deadline: {deadline}\r\nContent-Length: 4\r\n\r\nsize"
    )
    .unwrap();
    let (status, _, _) = read_response(&mut stream);
    assert_eq!(status, 200);
    drop(stream);
    // The agent drops idle connections after a second; a new one must be served.
    let mut fresh = UnixStream::connect(&socket).unwrap();
    write!(
        fresh,
        "POST /call HTTP/1.1\r\nHost: localhost\r\nFn-Deadline: {deadline}\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
    )
    .unwrap();
    let mut interim = [0u8; 25];
    fresh.read_exact(&mut interim).unwrap();
    assert!(
        interim.starts_with(b"HTTP/1.1 100 Continue\r\n"),
        "{}",
        String::from_utf8_lossy(&interim)
    );
    fresh.write_all(b"fresh").unwrap();
    let (status, _, _) = read_response(&mut fresh);
    assert_eq!(status, 200);
    assert_eq!(
        *calls.lock().unwrap(),
        vec![b"hello world".to_vec(), b"size".to_vec(), b"fresh".to_vec()]
    );
}

#[test]
fn a_call_past_its_deadline_is_answered_at_once_without_running() {
    let dir = TempDir::new("fdk-deadline");
    let (_server, socket, calls) = echo_server(&dir);
    let mut stream = UnixStream::connect(&socket).unwrap();
    let started = Instant::now();
    write!(
        stream,
        "POST /call HTTP/1.1\r\nHost: localhost\r\nFn-Deadline: {}\r\nContent-Length: 5\r\n\r\nsleep",
        deadline_in(-5)
    )
    .unwrap();
    let (status, _, body) = read_response(&mut stream);
    assert_eq!(status, 504, "{}", String::from_utf8_lossy(&body));
    assert!(started.elapsed() < Duration::from_millis(200));
    assert!(calls.lock().unwrap().is_empty(), "the handler did not run");
}

#[test]
fn the_func_binary_is_ready_within_the_agents_limit() {
    let env = Env::start("func-ready");
    // `spawn_func` fails the test unless the socket appears within the agent's 5 s.
    let func = spawn_func(&env);
    let link = std::fs::read_link(&func.socket).unwrap();
    assert!(link.is_relative(), "{link:?}");
    // It answers the contract: a delete event for a name it never saw is a no-op success.
    let change = ocivision::emulator::events::Change {
        kind: ocivision::emulator::events::ChangeKind::Deleted,
        namespace: "emulatorns".into(),
        bucket: "images".into(),
        name: "nothing.jpg".into(),
        etag: None,
    };
    let event = ocivision::emulator::events::cloud_event(&change, "c", SystemTime::now());
    let reply = FnAgent::new(&func.socket)
        .call(
            &serde_json::to_vec(&event).unwrap(),
            "application/json",
            &[],
            Duration::from_secs(10),
        )
        .unwrap();
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
}

/// A function stand-in that counts connections and calls, and closes its connection after
/// answering a call whose body is `close`, as a function restarting between calls would.
struct CountingFunction {
    socket: std::path::PathBuf,
    connections: Arc<std::sync::atomic::AtomicUsize>,
    calls: Arc<std::sync::atomic::AtomicUsize>,
    /// Connections it has closed.
    closed: Arc<std::sync::atomic::AtomicUsize>,
}

impl CountingFunction {
    fn start(dir: &TempDir) -> CountingFunction {
        use std::sync::atomic::Ordering::SeqCst;
        let socket = dir.path().join("counting.sock");
        let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        let function = CountingFunction {
            socket,
            connections: Arc::default(),
            calls: Arc::default(),
            closed: Arc::default(),
        };
        let (connections, calls, closed) = (
            Arc::clone(&function.connections),
            Arc::clone(&function.calls),
            Arc::clone(&function.closed),
        );
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let mut stream = stream.unwrap();
                connections.fetch_add(1, SeqCst);
                let calls = Arc::clone(&calls);
                let closed = Arc::clone(&closed);
                std::thread::spawn(move || loop {
                    // One chunked POST: the head, then chunks up to the last one.
                    let mut request = Vec::new();
                    let mut byte = [0u8; 1];
                    while !request.ends_with(b"\r\n0\r\n\r\n") {
                        if stream.read(&mut byte).unwrap_or(0) == 0 {
                            return;
                        }
                        request.push(byte[0]);
                    }
                    calls.fetch_add(1, SeqCst);
                    stream
                        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
                        .unwrap();
                    if request.ends_with(b"\r\nclose\r\n0\r\n\r\n") {
                        drop(stream);
                        closed.fetch_add(1, SeqCst);
                        return;
                    }
                });
            }
        });
        function
    }

    fn counts(&self) -> (usize, usize) {
        use std::sync::atomic::Ordering::SeqCst;
        (self.connections.load(SeqCst), self.calls.load(SeqCst))
    }
}

#[test]
fn the_agent_keeps_one_idle_connection_as_fn_does_and_never_sends_a_call_twice() {
    use std::sync::atomic::Ordering::SeqCst;
    let dir = TempDir::new("fn-agent-reuse");
    let function = CountingFunction::start(&dir);
    let call = |agent: &FnAgent, body: &[u8]| {
        let reply = agent
            .call(body, "text/plain", &[], Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("{}: {e}", String::from_utf8_lossy(body)));
        assert_eq!((reply.status, reply.body.as_slice()), (200, &b"{}"[..]));
    };
    let agent = FnAgent::new(&function.socket);
    call(&agent, b"one");
    call(&agent, b"two");
    assert_eq!(
        function.counts(),
        (1, 2),
        "back-to-back calls share a connection"
    );

    // The function drops the connection after answering: the next call notices before writing.
    call(&agent, b"close");
    assert!(
        wait_until(Duration::from_secs(5), || function.closed.load(SeqCst) == 1),
        "the function closed its connection"
    );
    call(&agent, b"four");
    assert_eq!(
        function.counts(),
        (2, 4),
        "a new connection, each call sent once"
    );

    // Idle for longer than the agent keeps a connection (this one keeps none): a new one.
    let impatient = FnAgent::new(&function.socket).with_idle_timeout(Duration::ZERO);
    call(&impatient, b"five");
    call(&impatient, b"six");
    assert_eq!(function.counts(), (4, 6));
}
