//! Hostile input against our HTTP layer (the project's server hardening checklist), over real
//! loopback sockets.
//!
//! Each test also proves the server still answers a normal request afterwards. In-process
//! servers use `quick_limits()` so timeouts fire in about a second; tests that measure RSS, fd
//! limits or a process's survival run the `webapp` binary as a child. Issue 13's figures 3–5
//! (idle connections, slow heads and bodies, busy workers) are here at a size for CI; their
//! full-size versions are benchmarks (`examples/http-bench.rs`). The checklist's last item
//! (one upload more than the upload gate admits) belongs to the upload route: it is
//! `web::web_uploads_beyond_the_gate_get_503_with_retry_after`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ocivision::http::{Limits, Request, Response, Server};

use crate::support::{
    assert_serves, echo_server, half_close, quick_limits, threads_named, wait_until, Client, Seen,
    Webapp,
};

/// An echo server with `limits`, its address and a client connected to it.
fn echo_with_client(limits: Limits) -> (Server, Seen, SocketAddr, Client) {
    let (server, seen) = echo_server(limits);
    let addr = server.tcp_addr().unwrap();
    let client = Client::connect(addr);
    (server, seen, addr, client)
}

/// Reads the next answer on `c`: `status`, saying `Connection: close`.
fn closing_answer(c: &mut Client, status: u16) {
    let r = c.response().unwrap();
    assert_eq!(r.status, status);
    assert!(r.closes());
}

/// Asserts the time since `t` is at least `min` (the deadline was kept) and under `max`.
fn assert_waited(t: Instant, min: Duration, max: Duration) {
    let waited = t.elapsed();
    assert!(waited >= min && waited < max, "{waited:?}");
}

// --- Content-Length 1e14, 2^63−1, 2^64−1 ------------------------------------------------------

#[test]
fn huge_content_length_is_refused_early_process_stays_up_and_rss_small() {
    let mut app = Webapp::spawn(&[]);
    assert_serves(app.addr);
    let before = app.rss_kib();
    for (len, status) in [
        ("100000000000000", 413),
        ("9223372036854775807", 413),
        ("18446744073709551615", 413),
        ("18446744073709551616", 400),
    ] {
        let mut c = Client::connect(app.addr);
        c.send(
            format!("POST /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: {len}\r\n\r\nabc")
                .as_bytes(),
        );
        let r = c.response().expect("an answer, not a crash");
        assert_eq!(r.status, status, "Content-Length {len}");
        assert!(r.closes(), "refusal must say Connection: close");
        assert!(c.closed());
        assert!(app.alive(), "process must survive Content-Length {len}");
        assert_serves(app.addr);
    }
    let after = app.rss_kib();
    assert!(
        after < before + 8 * 1024,
        "RSS grew from {before} kB to {after} kB"
    );
}

// --- Expect: 100-continue -----------------------------------------------------------------------

#[test]
fn expect_continue_with_oversize_length_gets_413_without_100_and_others_are_served() {
    let mut limits = quick_limits();
    limits.workers = 1;
    let (_server, seen, addr, mut c) = echo_with_client(limits);
    let t = Instant::now();
    c.send(b"POST /up HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 100000000\r\n\r\n");
    let r = c.response().unwrap();
    assert_eq!(r.status, 413, "final status, no 100 first");
    assert!(r.closes());
    assert!(t.elapsed() < Duration::from_secs(1), "answered at once");
    assert_eq!(seen.calls(), 0);
    // The expecting client never sends its body and keeps its socket; others are still served.
    assert_serves(addr);
    drop(c);
}

#[test]
fn expect_continue_sends_100_only_when_the_handler_reads() {
    let (_server, _, _, mut c) = echo_with_client(quick_limits());
    c.send(b"POST /read HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
    let interim = c.response().unwrap();
    assert_eq!(interim.status, 100);
    c.send(b"hello");
    let r = c.response().unwrap();
    assert_eq!((r.status, r.text().as_str()), (200, "POST /read 5"));
    assert!(!r.closes(), "the body was read: keep-alive");
    c.send(b"GET /again HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(c.response().unwrap().status, 200);
}

#[test]
fn expect_continue_answered_before_reading_gets_final_status_without_100_and_close() {
    let (_server, _, addr, mut c) = echo_with_client(quick_limits());
    c.send(
        b"POST /noread HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
    );
    let r = c.response().unwrap();
    assert_eq!(r.status, 200, "the handler's answer, not 100");
    assert!(r.closes(), "an uninvited body is never drained: close");
    assert!(c.closed());
    assert_serves(addr);
}

#[test]
fn expect_continue_client_that_never_sends_the_body_gets_408_at_the_body_deadline() {
    let mut limits = quick_limits();
    limits.body_timeout = Some(Duration::from_millis(800));
    let (_server, _, addr, mut c) = echo_with_client(limits);
    c.send(b"POST /read HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
    let t = Instant::now();
    assert_eq!(c.response().unwrap().status, 100);
    closing_answer(&mut c, 408);
    assert!(t.elapsed() < Duration::from_secs(3));
    assert_serves(addr);
}

#[test]
fn other_expectations_get_417_and_close() {
    let (_server, seen, addr, mut c) = echo_with_client(quick_limits());
    c.send(b"POST /x HTTP/1.1\r\nHost: t\r\nExpect: 200-ok\r\nContent-Length: 1\r\n\r\nx");
    closing_answer(&mut c, 417);
    assert!(c.closed());
    assert_eq!(seen.calls(), 0);
    assert_serves(addr);
}

// --- Slow and truncated bodies ------------------------------------------------------------------

#[test]
fn body_stalling_after_2kb_gets_408_at_the_body_deadline_and_close() {
    let mut limits = quick_limits();
    limits.body_timeout = Some(Duration::from_millis(700));
    let (_server, _, addr, mut c) = echo_with_client(limits);
    c.send(b"POST /read HTTP/1.1\r\nHost: t\r\nContent-Length: 10000\r\n\r\n");
    c.send(&[b'a'; 2048]);
    let t = Instant::now();
    closing_answer(&mut c, 408);
    assert_waited(t, Duration::from_millis(500), Duration::from_secs(2));
    assert_serves(addr);
}

#[test]
fn body_dripped_one_byte_at_a_time_gets_408_at_the_total_body_deadline() {
    let mut limits = quick_limits();
    // Each byte arrives well within the per-read timeout; only the total deadline can trip.
    limits.read_timeout = Some(Duration::from_secs(1));
    limits.body_timeout = Some(Duration::from_millis(1500));
    let (server, _) = echo_server(limits);
    let addr = server.tcp_addr().unwrap();
    let c = Client::connect(addr);
    let mut writer = c.stream.try_clone().unwrap();
    writer
        .write_all(b"POST /read HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n")
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = Arc::clone(&stop);
    let dripper = std::thread::spawn(move || {
        while !stop2.load(Ordering::SeqCst) {
            if writer.write_all(b"x").is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    });
    let t = Instant::now();
    let mut c = c;
    let r = c.response().unwrap();
    stop.store(true, Ordering::SeqCst);
    dripper.join().unwrap();
    assert_eq!(r.status, 408);
    assert!(r.closes());
    assert_waited(t, Duration::from_millis(1200), Duration::from_secs(3));
    assert_serves(addr);
}

#[test]
fn slow_head_gets_408_at_the_head_deadline_and_close() {
    let mut limits = quick_limits();
    limits.head_timeout = Some(Duration::from_millis(600));
    let (_server, seen, addr, mut c) = echo_with_client(limits);
    let t = Instant::now();
    c.send(b"GET /slow HTTP/1.1\r\nHost: t\r\n");
    std::thread::sleep(Duration::from_millis(300));
    c.send(b"X-Drip: 1\r\n");
    closing_answer(&mut c, 408);
    assert!(c.closed());
    assert_waited(t, Duration::from_millis(500), Duration::from_secs(2));
    assert_eq!(seen.calls(), 0);
    assert_serves(addr);
}

#[test]
fn body_cut_short_by_the_client_is_400_never_a_short_success() {
    let (_server, _, addr, mut c) = echo_with_client(quick_limits());
    c.send(b"POST /read HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nonly-ten-b");
    half_close(&c);
    let r = c.response().unwrap();
    assert_eq!(r.status, 400, "truncated body must fail: {}", r.text());
    assert!(r.closes());
    assert_serves(addr);
}

// --- Idle connections, slow clients and busy workers ---------------------------------------------

/// "Max open files" soft limit of this process (the first server started raised it).
fn open_file_limit() -> u64 {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .expect("Max open files in /proc/self/limits")
}

/// One keep-alive `GET /healthz` on `c`, expecting a 200 that keeps the connection open.
fn keep_alive_get(c: &mut Client) {
    c.send(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = c.response().expect("an answer");
    assert_eq!(r.status, 200);
    assert!(!r.closes(), "keep-alive");
}

/// Issue 13, figure 3 at a size for CI: idle keep-alive connections hold neither threads nor
/// workers; a new visitor is served while they stay open; the idle timeout then closes them all.
#[test]
fn two_thousand_idle_keep_alive_connections_hold_no_threads_and_never_keep_a_visitor_out() {
    let mut limits = quick_limits();
    limits.max_connections = 3000;
    limits.workers = 4;
    limits.idle_timeout = Some(Duration::from_secs(10));
    let (server, seen) = echo_server(limits);
    let addr = server.tcp_addr().unwrap();
    // Both ends of every connection live in this process.
    let n = 2000.min((open_file_limit().saturating_sub(300) / 2) as usize);
    assert!(n >= 500, "open-file limit {} too low", open_file_limit());
    let mut idle: Vec<Client> = Vec::with_capacity(n);
    for _ in 0..n {
        let mut c = Client::connect(addr);
        keep_alive_get(&mut c);
        idle.push(c);
    }
    assert_eq!(server.active_connections(), n, "all held open");
    assert!(
        threads_named(server.thread_name()) <= 4,
        "{} worker threads for {n} connections",
        threads_named(server.thread_name())
    );
    // A new visitor, and one of the idle connections reused, are both answered.
    let mut visitor = Client::connect(addr);
    keep_alive_get(&mut visitor);
    keep_alive_get(&mut idle[n / 2]);
    assert_eq!(seen.calls(), n + 2);
    // Every idle connection is then closed by the server (EOF), not left hanging.
    drop(visitor);
    for c in &mut idle {
        c.stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        assert!(c.closed(), "idle connection must be closed");
    }
    assert!(
        wait_until(Duration::from_secs(5), || server.active_connections() == 0),
        "{} connections left",
        server.active_connections()
    );
    assert_serves(addr);
}

/// Issue 13, figure 4 at a size for CI: connections dripping their heads and uploads stalled
/// before their bodies hold no worker (there are only 4 here), so visitors are served
/// meanwhile; each slow one ends with 408 at its deadline.
#[test]
fn three_hundred_dripping_heads_and_fifty_stalled_bodies_never_keep_a_visitor_out() {
    let mut limits = quick_limits();
    limits.max_connections = 1000;
    limits.workers = 4;
    limits.head_timeout = Some(Duration::from_secs(3));
    limits.body_timeout = Some(Duration::from_secs(3));
    let (server, seen) = echo_server(limits);
    let addr = server.tcp_addr().unwrap();
    let head = b"GET /drip HTTP/1.1\r\nHost: t\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let mut drips: Vec<Client> = (0..300).map(|_| Client::connect(addr)).collect();
    let mut stalled: Vec<Client> = (0..50)
        .map(|i| {
            let mut c = Client::connect(addr);
            c.send(
                format!(
                    "PUT /read/stalled-{i}.jpg HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\n\r\n"
                )
                .as_bytes(),
            );
            c.send(&[0xFF; 1024]);
            c
        })
        .collect();
    // Drip one head byte per connection every 200 ms (the head never completes: it is longer
    // than the deadline allows), and serve a visitor between rounds.
    let mut visitors = 0;
    let mut sent = 0;
    while sent < 12 {
        for c in &mut drips {
            let _ = c.stream.write_all(&head[sent..sent + 1]);
        }
        let mut v = Client::connect(addr);
        keep_alive_get(&mut v);
        visitors += 1;
        sent += 1;
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(visitors, 12);
    assert!(
        !seen.saw("/drip")
            && !seen
                .paths
                .lock()
                .unwrap()
                .iter()
                .any(|p| p.contains("stalled")),
        "no slow request reached a handler"
    );
    // Each slow connection then gets its 408 and is closed.
    for c in drips.iter_mut().chain(stalled.iter_mut()) {
        c.stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let r = c.response().expect("an answer before the close");
        assert_eq!(r.status, 408);
        assert!(r.closes() && c.closed());
    }
    assert_serves(addr);
}

/// A server with two workers and a 200 ms queue timeout whose handler answers `answer`, with
/// both workers held inside `/slow` until `release` is sent twice.
fn two_busy_workers(
    mut limits: Limits,
    answer: &'static str,
) -> (
    Server,
    std::net::SocketAddr,
    Vec<Client>,
    std::sync::mpsc::Sender<()>,
) {
    limits.workers = 2;
    limits.queue_timeout = Duration::from_millis(200);
    let inside = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (release, gate) = std::sync::mpsc::channel::<()>();
    let gate = Arc::new(std::sync::Mutex::new(gate));
    let (inside2, gate2) = (Arc::clone(&inside), Arc::clone(&gate));
    let server = Server::bind_tcp("127.0.0.1:0", limits, move |req: &Request| {
        if req.path() == "/slow" {
            inside2.fetch_add(1, Ordering::SeqCst);
            let _ = gate2.lock().unwrap().recv();
        }
        Ok(Response::text(200, answer))
    })
    .unwrap();
    let addr = server.tcp_addr().unwrap();
    let slow: Vec<Client> = (0..2)
        .map(|_| {
            let mut c = Client::connect(addr);
            c.send(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n");
            c
        })
        .collect();
    assert!(wait_until(Duration::from_secs(5), || inside
        .load(Ordering::SeqCst)
        == 2));
    (server, addr, slow, release)
}

/// Issue 13, figure 5: with every worker inside a handler, a new request gets a 503 with
/// Retry-After and close (it does not wait for the busy handlers), and service resumes after.
#[test]
fn every_worker_busy_answers_503_with_retry_after_and_close_without_waiting_for_them() {
    let (_server, addr, mut slow, release) = two_busy_workers(quick_limits(), "done");
    let mut extra = Client::connect(addr);
    extra.send(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = extra
        .response()
        .expect("an answer while the workers are busy");
    assert_eq!(r.status, 503);
    assert_eq!(r.header("retry-after"), Some("1"));
    assert!(r.closes() && extra.closed());
    release.send(()).unwrap();
    release.send(()).unwrap();
    for c in &mut slow {
        assert_eq!(c.response().unwrap().text(), "done");
    }
    assert_serves(addr);
}

/// With every worker inside a slow handler, the health check (`Limits::busy_health_path`, the
/// web app's `/healthz`) still gets 200 at once, from the readiness loop, where any other
/// request gets 503: a load balancer must not take a busy backend for a dead one. With a worker
/// free again the handler answers it as usual.
#[test]
fn health_check_answers_200_while_every_worker_is_busy() {
    let mut limits = quick_limits();
    limits.busy_health_path = Some("/healthz");
    let (_server, addr, mut slow, release) = two_busy_workers(limits, "from the handler");
    for method in ["GET", "HEAD"] {
        let mut check = Client::connect(addr);
        check.send(format!("{method} /healthz HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
        let r = check
            .response()
            .expect("an answer while the workers are busy");
        // A queued request would get 503 after the queue timeout: 200 not from the handler is
        // the readiness loop's own answer.
        assert_eq!(r.status, 200, "{method} /healthz with every worker busy");
        assert_ne!(r.text(), "from the handler");
        assert!(r.closes() && check.closed());
    }
    // Only the health check: anything else still waits, and gets 503.
    for other in ["GET /other", "GET /healthz?full=1", "POST /healthz"] {
        let mut c = Client::connect(addr);
        c.send(format!("{other} HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n").as_bytes());
        assert_eq!(c.response().unwrap().status, 503, "{other}");
    }
    release.send(()).unwrap();
    release.send(()).unwrap();
    for c in &mut slow {
        assert_eq!(c.response().unwrap().text(), "from the handler");
    }
    let mut check = Client::connect(addr);
    check.send(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = check.response().unwrap();
    assert_eq!((r.status, r.text()), (200, "from the handler".to_string()));
    assert!(
        !r.closes(),
        "with a worker free, the usual keep-alive answer"
    );
}

/// At the connection cap the longest-idle connection makes room for a newcomer; when nothing
/// is idle the newcomer gets 503 at once.
#[test]
fn at_the_connection_cap_an_idle_connection_makes_room_else_503() {
    let mut limits = quick_limits();
    limits.max_connections = 10;
    let (server, _) = echo_server(limits);
    let addr = server.tcp_addr().unwrap();
    assert_eq!(server.connection_capacity(), 10);
    let mut idle: Vec<Client> = (0..10)
        .map(|_| {
            let mut c = Client::connect(addr);
            keep_alive_get(&mut c);
            c
        })
        .collect();
    let mut visitor = Client::connect(addr);
    keep_alive_get(&mut visitor);
    assert!(idle[0].closed(), "the longest-idle connection was closed");
    drop(idle);
    drop(visitor);
    assert!(wait_until(Duration::from_secs(5), || server
        .active_connections()
        == 0));
    // Ten connections mid-head: none idle, so a newcomer is refused at once.
    let _slow: Vec<Client> = (0..10)
        .map(|_| {
            let mut c = Client::connect(addr);
            c.send(b"GET /slow HTTP/1.1\r\n");
            c
        })
        .collect();
    assert!(wait_until(Duration::from_secs(5), || server
        .active_connections()
        == 10));
    let mut refused = Client::connect(addr);
    let r = refused.response().expect("an immediate answer");
    assert_eq!(r.status, 503);
    assert_eq!(r.header("retry-after"), Some("1"));
    assert!(r.closes());
}

// --- Oversize heads (child process, RSS measured) ----------------------------------------------

#[test]
fn one_mib_header_line_is_431_with_close_and_rss_barely_moves() {
    let mut app = Webapp::spawn(&[]);
    assert_serves(app.addr);
    let before = app.rss_kib();
    let mut c = Client::connect(app.addr);
    let mut req = b"GET / HTTP/1.1\r\nHost: t\r\nX-Big: ".to_vec();
    req.extend(std::iter::repeat_n(b'a', 1024 * 1024));
    req.extend_from_slice(b"\r\n\r\n");
    let mut writer = c.stream.try_clone().unwrap();
    // Write from another thread: the server answers and stops reading long before 1 MiB.
    let w = std::thread::spawn(move || {
        let _ = writer.write_all(&req);
    });
    let r = c.response().expect("an answer");
    assert_eq!(r.status, 431);
    assert!(r.closes());
    w.join().unwrap();
    assert!(app.alive());
    assert_serves(app.addr);
    let after = app.rss_kib();
    assert!(after < before + 2 * 1024, "RSS {before} → {after} kB");
}

#[test]
fn hundred_and_one_headers_are_431_with_close() {
    let mut app = Webapp::spawn(&[]);
    let before = app.rss_kib();
    let mut c = Client::connect(app.addr);
    let mut req = b"GET / HTTP/1.1\r\nHost: t\r\n".to_vec();
    for i in 0..101 {
        req.extend_from_slice(format!("X-H{i}: v\r\n").as_bytes());
    }
    req.extend_from_slice(b"\r\n");
    c.send(&req);
    closing_answer(&mut c, 431);
    assert!(c.closed());
    assert!(app.alive());
    assert_serves(app.addr);
    assert!(app.rss_kib() < before + 2 * 1024);
}

#[test]
fn two_hundred_mib_header_line_is_cut_off_early_without_holding_it() {
    let mut app = Webapp::spawn(&[]);
    let before = app.rss_kib();
    let c = Client::connect(app.addr);
    let mut writer = c.stream.try_clone().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = Arc::clone(&stop);
    // Stream the line in 64 KiB pieces; stop when the server answers or closes.
    let w = std::thread::spawn(move || {
        let mut sent = 0u64;
        if writer
            .write_all(b"GET / HTTP/1.1\r\nHost: t\r\nX-Big: ")
            .is_err()
        {
            return sent;
        }
        let piece = [b'a'; 64 * 1024];
        while sent < 200 * 1024 * 1024 && !stop2.load(Ordering::SeqCst) {
            match writer.write(&piece) {
                Ok(n) => sent += n as u64,
                Err(_) => break,
            }
        }
        sent
    });
    let mut c = c;
    let r = c.response().expect("an answer before 200 MiB");
    stop.store(true, Ordering::SeqCst);
    let sent = w.join().unwrap();
    assert_eq!(r.status, 431);
    assert!(r.closes());
    assert!(
        sent < 50 * 1024 * 1024,
        "server read {sent} bytes of a hopeless line"
    );
    assert!(app.alive());
    assert_serves(app.addr);
    let after = app.rss_kib();
    assert!(after < before + 4 * 1024, "RSS {before} → {after} kB");
}

// --- Smuggling --------------------------------------------------------------------------------

/// Sends `head` followed by an embedded request, expects `status` + close, and proves the
/// embedded request never reached the handler.
fn refused_without_smuggling(head: &str, status: u16) {
    let (_server, seen, addr, mut c) = echo_with_client(quick_limits());
    let mut wire = head.as_bytes().to_vec();
    wire.extend_from_slice(b"GET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n");
    c.send(&wire);
    let r = c.response().unwrap();
    assert_eq!(r.status, status, "{head:?}");
    assert!(r.closes(), "{head:?}");
    assert!(c.closed(), "nothing after the refusal: {head:?}");
    assert!(
        !seen.saw("/smuggled"),
        "embedded request reached the handler: {head:?}"
    );
    assert_serves(addr);
    assert!(!seen.saw("/smuggled"));
}

#[test]
fn duplicate_differing_content_length_is_400_and_never_smuggles() {
    refused_without_smuggling(
        "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nContent-Length: 40\r\n\r\n",
        400,
    );
}

#[test]
fn content_length_with_trailing_junk_is_400_and_never_smuggles() {
    refused_without_smuggling(
        "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 12abc\r\n\r\n",
        400,
    );
}

#[test]
fn transfer_encoding_with_content_length_is_400_and_never_smuggles() {
    refused_without_smuggling(
        "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
    );
}

#[test]
fn transfer_encodings_other_than_chunked_are_501_and_never_smuggle() {
    refused_without_smuggling(
        "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n",
        501,
    );
    refused_without_smuggling(
        "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
        501,
    );
}

// --- Chunked bodies -----------------------------------------------------------------------------

#[test]
fn chunked_with_oversize_size_line_is_400_and_closed() {
    let (_server, seen, addr, mut c) = echo_with_client(quick_limits());
    let mut wire =
        b"POST /read HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n1;".to_vec();
    wire.extend(std::iter::repeat_n(b'e', 4096));
    wire.extend_from_slice(b"\r\nx\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n");
    c.send(&wire);
    closing_answer(&mut c, 400);
    assert!(c.closed());
    assert!(!seen.saw("/smuggled"));
    assert_serves(addr);
}

#[test]
fn chunked_trailers_are_discarded_and_the_next_request_is_served_in_sync() {
    let (_server, seen, _, mut c) = echo_with_client(quick_limits());
    c.send(
        b"POST /read HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n\
          3\r\nabc\r\n2;ext=v\r\nde\r\n0\r\nX-Trailer: GET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n\
          GET /after HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    let r = c.response().unwrap();
    assert_eq!((r.status, r.text().as_str()), (200, "POST /read 5"));
    let r = c.response().unwrap();
    assert_eq!((r.status, r.text().as_str()), (200, "GET /after 0"));
    assert!(!seen.saw("/smuggled"));
    assert_eq!(seen.calls(), 2);
}

#[test]
fn chunked_truncated_mid_chunk_is_an_error_not_a_short_body() {
    let (_server, _, addr, mut c) = echo_with_client(quick_limits());
    c.send(b"POST /read HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nonly-some");
    half_close(&c);
    closing_answer(&mut c, 400);
    assert_serves(addr);
}

#[test]
fn chunked_body_over_the_cap_is_413_and_closed() {
    let mut limits = quick_limits();
    limits.max_body_bytes = 1000;
    let (_server, _, addr, mut c) = echo_with_client(limits);
    c.send(b"POST /read HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n400\r\n");
    c.send(&[b'z'; 1024]);
    c.send(b"\r\n0\r\n\r\n");
    let r = c.response().unwrap();
    assert_eq!(r.status, 413, "declared chunk size crosses the cap");
    assert!(r.closes());
    assert_serves(addr);
}

#[test]
fn handler_stopping_mid_chunk_never_exposes_chunk_data_as_a_request() {
    let (_server, seen, _, mut c) = echo_with_client(quick_limits());
    let hidden = b"GET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n";
    let mut wire =
        b"POST /noread HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    wire.extend_from_slice(format!("{:x}\r\n", hidden.len()).as_bytes());
    wire.extend_from_slice(hidden);
    wire.extend_from_slice(b"\r\n0\r\n\r\nGET /after HTTP/1.1\r\nHost: t\r\n\r\n");
    c.send(&wire);
    let first = c.response().unwrap();
    assert_eq!(first.text(), "POST /noread 0");
    assert!(
        !first.closes(),
        "the rest of the body was drained: keep-alive"
    );
    assert_eq!(c.response().unwrap().text(), "GET /after 0");
    assert!(!seen.saw("/smuggled"));
}

// --- Odd bytes ----------------------------------------------------------------------------------

#[test]
fn non_ascii_header_bytes_get_a_defined_answer_without_panic() {
    let (_server, seen, addr, mut c) = echo_with_client(quick_limits());
    c.send(b"GET /v HTTP/1.1\r\nHost: t\r\nX-Name: caf\xc3\xa9 \xff\xfe\r\n\r\n");
    assert_eq!(
        c.response().unwrap().status,
        200,
        "obs-text in a value is allowed"
    );
    let mut c = Client::connect(addr);
    c.send(b"GET /n HTTP/1.1\r\nHost: t\r\nX-\xc3\xa9: v\r\n\r\n");
    let r = c.response().unwrap();
    assert_eq!(r.status, 400, "non-ASCII in a name is not");
    assert!(r.closes() && c.closed());
    assert!(!seen.saw("/n"));
    assert_serves(addr);
}

#[test]
fn htab_in_a_header_value_is_accepted() {
    let server = Server::bind_tcp("127.0.0.1:0", quick_limits(), |req: &Request| {
        Ok(Response::text(
            200,
            req.header("x-tab").unwrap_or("missing"),
        ))
    })
    .unwrap();
    let mut c = Client::connect(server.tcp_addr().unwrap());
    c.send(b"GET / HTTP/1.1\r\nHost: t\r\nX-Tab: a\tb\r\n\r\n");
    let r = c.response().unwrap();
    assert_eq!((r.status, r.text().as_str()), (200, "a\tb"));
}

#[test]
fn bare_lf_request_is_400_and_closed_never_held() {
    let (_server, seen, addr, mut c) = echo_with_client(quick_limits());
    let t = Instant::now();
    c.send(b"GET /lf HTTP/1.1\nHost: t\n\n");
    closing_answer(&mut c, 400);
    assert!(c.closed());
    assert!(t.elapsed() < Duration::from_secs(1));
    assert_eq!(seen.calls(), 0);
    assert_serves(addr);
}

// --- Versions -----------------------------------------------------------------------------------

fn refused_quickly(wire: &[u8], status: u16) {
    let (_server, seen, addr, mut c) = echo_with_client(quick_limits());
    let t = Instant::now();
    c.send(wire);
    let r = c.response().unwrap();
    assert_eq!(r.status, status);
    assert!(r.closes() && c.closed());
    assert!(t.elapsed() < Duration::from_secs(1), "within a second");
    assert_eq!(seen.calls(), 0);
    assert_serves(addr);
}

#[test]
fn http2_request_line_is_505_and_closed_within_a_second() {
    refused_quickly(b"GET / HTTP/2.0\r\n\r\n", 505);
}

#[test]
fn h2c_preface_is_505_and_closed_within_a_second() {
    refused_quickly(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505);
}

#[test]
fn http_1_2_is_400_and_closed() {
    refused_quickly(b"GET / HTTP/1.2\r\nHost: t\r\n\r\n", 400);
}

// --- Host and connection handling --------------------------------------------------------------

#[test]
fn http10_without_host_is_served_and_closed() {
    let (_server, _, _, mut c) = echo_with_client(quick_limits());
    c.send(b"GET /old HTTP/1.0\r\n\r\n");
    let r = c.response().unwrap();
    assert_eq!(r.status, 200);
    assert!(
        r.closes(),
        "HTTP/1.0 without keep-alive is closed, and says so"
    );
    assert!(c.closed());
}

#[test]
fn http11_without_host_or_with_two_hosts_is_400() {
    refused_quickly(b"GET / HTTP/1.1\r\n\r\n", 400);
    refused_quickly(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400);
}

#[test]
fn client_half_close_after_a_keep_alive_request_gets_no_stray_400() {
    let (_server, _, addr, mut c) = echo_with_client(quick_limits());
    c.send(b"GET /one HTTP/1.1\r\nHost: t\r\n\r\n");
    half_close(&c);
    let r = c.response().unwrap();
    assert_eq!(r.status, 200);
    assert!(c.response().is_none(), "exactly one response, then EOF");
    assert_serves(addr);
}

#[test]
fn three_pipelined_gets_in_one_write_are_answered_in_order() {
    let (_server, _, _, mut c) = echo_with_client(quick_limits());
    c.send(
        b"GET /1 HTTP/1.1\r\nHost: t\r\n\r\nGET /2 HTTP/1.1\r\nHost: t\r\n\r\nGET /3 HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    for i in 1..=3 {
        assert_eq!(c.response().unwrap().text(), format!("GET /{i} 0"));
    }
}

#[test]
fn a_body_read_by_the_handler_leaves_the_connection_ready_for_the_next_request() {
    let (_server, _, _, mut c) = echo_with_client(quick_limits());
    // More than the loop pre-reads, in two writes: the handler reads the rest itself.
    c.send(b"POST /read HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n");
    c.send(&[b'a'; 40_000]);
    c.send(&[b'b'; 60_000]);
    let r = c.response().unwrap();
    assert_eq!((r.status, r.text().as_str()), (200, "POST /read 100000"));
    assert!(!r.closes());
    // The next request comes only after the answer, on the same connection.
    c.send(b"GET /next HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(c.response().unwrap().text(), "GET /next 0");
}

#[test]
fn head_gets_headers_but_no_body() {
    let (_server, _, _, mut c) = echo_with_client(quick_limits());
    c.send(b"HEAD /h HTTP/1.1\r\nHost: t\r\n\r\nGET /next HTTP/1.1\r\nHost: t\r\n\r\n");
    let mut raw = Vec::new();
    let _ = c.stream.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(
        text.contains("Content-Length: 9\r\n"),
        "length as for GET: {text}"
    );
    let second = text
        .find("HTTP/1.1 200 OK\r\n")
        .map(|_| text.rfind("HTTP/1.1 "));
    assert!(
        text.split("\r\n\r\n")
            .nth(1)
            .unwrap()
            .starts_with("HTTP/1.1 200"),
        "no body between the two heads: {text} {second:?}"
    );
}

// --- Accept errors ------------------------------------------------------------------------------

#[test]
fn emfile_during_accept_is_survived_and_serving_resumes() {
    let mut app = Webapp::spawn(&[]);
    assert_serves(app.addr);
    // Lowered after start, so the connection capacity (sized from the limit at start) is far
    // above what the process can now open: accept() itself must fail with EMFILE.
    let lowered = std::process::Command::new("prlimit")
        .args(["--pid", &app.pid(), "--nofile=64:64"])
        .status()
        .expect("prlimit");
    assert!(lowered.success());
    let conns: Vec<TcpStream> = (0..80)
        .map(|_| TcpStream::connect(app.addr).expect("kernel accepts into the backlog"))
        .collect();
    assert!(
        wait_until(Duration::from_secs(5), || app
            .log()
            .contains("accept failed")),
        "the fd limit was hit (log: {})",
        app.log()
    );
    drop(conns);
    assert!(app.alive());
    assert!(
        wait_until(Duration::from_secs(10), || {
            let mut c = Client::connect(app.addr);
            c.send(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
            c.response().is_some_and(|r| r.status == 200)
        }),
        "serving after EMFILE"
    );
    assert_serves(app.addr);
}

#[test]
fn a_low_open_file_limit_is_logged_with_the_capacity_and_connections_beyond_it_never_hang() {
    let mut app = Webapp::spawn(&["prlimit", "--nofile=64:64", "--"]);
    let log = app.log();
    assert!(
        log.contains("open-file limit 64 of hard 64") && log.contains("up to 32 connections"),
        "start-up log names the limit and the capacity: {log}"
    );
    // 80 idle connections against a capacity of 32: the longest-idle make room, and a
    // visitor arriving after them is served at its first attempt, without waiting.
    let conns: Vec<TcpStream> = (0..80)
        .map(|_| TcpStream::connect(app.addr).expect("connect"))
        .collect();
    let mut visitor = Client::connect(app.addr);
    visitor
        .stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    visitor.send(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
    let answer = visitor.response();
    assert_eq!(
        answer.as_ref().map(|r| r.status),
        Some(200),
        "served at the connection cap (log: {})",
        app.log()
    );
    drop(conns);
    assert!(app.alive());
    assert_serves(app.addr);
}

#[test]
fn start_up_raises_the_open_file_limit_and_logs_the_capacity() {
    let app = Webapp::spawn(&["prlimit", "--nofile=1024:8192", "--"]);
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", app.pid())).unwrap();
    let soft = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))
        .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap();
    assert_eq!(soft, 8192, "soft limit raised to the hard one");
    assert!(
        app.log().contains("open-file limit 8192 of hard 8192"),
        "{}",
        app.log()
    );
}

// --- Handler failures and Connection: close -----------------------------------------------------

#[test]
fn handler_panic_is_500_with_close_and_the_server_keeps_serving() {
    let (server, seen) = echo_server(quick_limits());
    let addr = server.tcp_addr().unwrap();
    for _ in 0..3 {
        let mut c = Client::connect(addr);
        c.send(b"GET /panic HTTP/1.1\r\nHost: t\r\n\r\n");
        let r = c.response().unwrap();
        assert_eq!(r.status, 500);
        assert!(r.closes() && c.closed());
    }
    assert_eq!(seen.calls(), 3);
    assert_serves(addr);
}

#[test]
fn every_response_after_which_we_close_says_connection_close() {
    let (server, _) = echo_server(quick_limits());
    let addr = server.tcp_addr().unwrap();
    for wire in [
        &b"GET /x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"[..],
        b"GET /close HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET /x HTTP/1.0\r\n\r\n",
        b"GET /panic HTTP/1.1\r\nHost: t\r\n\r\n",
        b"POST /noread HTTP/1.1\r\nHost: t\r\nContent-Length: 500000\r\n\r\nabc",
        b"GARBAGE\r\n\r\n",
    ] {
        let mut c = Client::connect(addr);
        c.send(wire);
        let r = c.response().unwrap();
        assert!(
            r.closes(),
            "{:?} → {} without Connection: close",
            String::from_utf8_lossy(wire),
            r.status
        );
        assert!(
            c.closed(),
            "{:?} was not closed",
            String::from_utf8_lossy(wire)
        );
    }
    let mut c = Client::connect(addr);
    c.send(b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = c.response().unwrap();
    assert!(!r.closes(), "keep-alive responses do not say close");
    assert!(r.header("date").is_some());
    assert_eq!(r.header("server"), Some("ocivision"));
}

#[test]
fn handler_errors_map_to_their_status_as_short_plain_text() {
    let server = Server::bind_tcp("127.0.0.1:0", quick_limits(), |req: &Request| {
        match req.path() {
            "/missing" => Err(ocivision::Error::NotFound("internal name".into())),
            _ => Err(ocivision::Error::bad_request(422, "bad widget")),
        }
    })
    .unwrap();
    let addr = server.tcp_addr().unwrap();
    let mut c = Client::connect(addr);
    c.send(b"GET /missing HTTP/1.1\r\nHost: t\r\n\r\nGET /bad HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = c.response().unwrap();
    assert_eq!((r.status, r.text().as_str()), (404, "404 Not Found\n"));
    let r = c.response().unwrap();
    assert_eq!(r.status, 422);
    assert_eq!(r.text(), "422 Unprocessable Content\nbad widget\n");
}

// --- Shutdown and the unix-socket profile ------------------------------------------------------

#[test]
fn graceful_shutdown_finishes_in_flight_requests_and_closes_idle_ones() {
    let in_flight = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&in_flight);
    let server = Server::bind_tcp("127.0.0.1:0", quick_limits(), move |req: &Request| {
        if req.path() == "/slow" {
            flag.store(true, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(400));
        }
        Ok(Response::text(200, "done"))
    })
    .unwrap();
    let addr = server.tcp_addr().unwrap();
    let mut idle = Client::connect(addr);
    idle.send(b"GET /fast HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(idle.response().unwrap().status, 200);
    let mut busy = Client::connect(addr);
    busy.send(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n");
    assert!(wait_until(Duration::from_secs(5), || in_flight.load(Ordering::SeqCst)));
    let t = Instant::now();
    assert!(
        server.shutdown(Duration::from_secs(5)),
        "finished within the grace period"
    );
    assert!(t.elapsed() < Duration::from_secs(2));
    let r = busy.response().expect("in-flight request completes");
    assert_eq!(r.text(), "done");
    assert!(r.closes(), "closing after shutdown, and saying so");
    assert!(idle.closed(), "idle keep-alive connection closed");
    assert!(TcpStream::connect(addr).is_err(), "no longer accepting");
}

#[test]
fn unix_socket_with_the_fn_profile_serves_chunked_bodies_and_keep_alive() {
    use std::os::unix::net::UnixStream;
    let dir = std::env::temp_dir().join(format!("ocv-http-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("lsnr.sock");
    let _ = std::fs::remove_file(&path);
    let server = Server::bind_unix(&path, Limits::fn_socket(), |req: &Request| {
        let body = req.read_body(1 << 20)?;
        Ok(Response::text(200, format!("{} bytes", body.len())))
    })
    .unwrap();
    let mut s = UnixStream::connect(&path).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(
        b"POST /call HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n\
          POST /call HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\n\r\nabc",
    )
    .unwrap();
    let mut got = Vec::new();
    let mut b = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains("3 bytes") {
        let n = s.read(&mut b).unwrap();
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&b[..n]);
    }
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.contains("5 bytes") && !text.contains("Connection: close"),
        "{text}"
    );
    assert!(server.shutdown(Duration::from_secs(2)));
    let _ = std::fs::remove_file(&path);
}
