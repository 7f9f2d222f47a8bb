//! `http-bench`: the HTTP layer under real traffic (issue 13's figures), on the `webapp` binary in
//! local mode beside nginx (one worker answering `return 200 ""`), all on 127.0.0.1.
//!
//! 1. `/healthz` under `wrk -t2 -c32 -d10s --latency`, three pairs, ours and nginx interleaved:
//!    requests/s (median of the pairs' ratios; target ≥ 0.8× nginx) and p99 beside nginx's.
//! 2. The same with `-c1000` (wrk runs with its open-file limit raised): non-2xx answers and
//!    socket errors (target none) and requests/s (target ≥ 0.7× nginx).
//! 3. 10,000 idle keep-alive connections, each after one `GET /healthz`: a new visitor's
//!    `GET /healthz` while they are held (target ≤ 50 ms; the slowest of 20 visitors), and the
//!    server's RSS holding them (target ≤ 64 MB) beside nginx's (master + worker).
//! 4. 1,000 connections dripping a request head at one byte a second plus 200 uploads stalled
//!    after their first KiB, while a visitor fetches `/healthz` on a new connection 20 times a
//!    second: the visitors' p99 (target ≤ 50 ms, no errors), and when each slow connection got
//!    its answer (target: `408` at the head deadline, 10 s, or the body deadline, 120 s).
//! 5. Every worker held by a request whose body stalls after the loop's pre-read window: a new
//!    visitor's `GET /healthz` gets `503` + `Retry-After` (time to the answer, slowest of 10),
//!    and is served again once they go.
//!
//! `cargo run --release --example http-bench` (builds `webapp` first); `-- --json` prints the
//! figures as one JSON object for `bench` (examples/bench.rs), which writes them into
//! docs/PERFORMANCE.md. Needs `nginx` and `wrk` (`apt-get install -y nginx wrk`; `bench`
//! installs them). Takes about five minutes, most of it waiting for the 120 s body deadline.
//! Not a test: it prints numbers and asserts nothing. Every loop is bounded in count and time.

#[path = "../tests/support/mod.rs"]
mod support;
use support::bench::{
    free_port, have, percentile, start_local_webapp, wait_healthy, wrk, Guard, Wrk,
};

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// nginx with one worker; stopped with `nginx -s stop` when dropped (killing the master would
/// leave its worker running).
struct Nginx {
    child: Guard,
    prefix: String,
    conf: String,
    port: u16,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = Command::new("nginx")
            .args(["-p", &self.prefix, "-c", &self.conf, "-s", "stop"])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.0.wait();
    }
}

const IDLE: usize = 10_000;
const DRIPS: usize = 1_000;
const STALLED: usize = 200;

fn main() {
    let json = std::env::args().any(|a| a == "--json");
    let dir = std::env::temp_dir().join(format!("ocivision-http-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let result = std::fs::create_dir_all(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))
        .and_then(|()| run(&dir));
    let _ = std::fs::remove_dir_all(&dir);
    match result {
        Ok(figures) if json => println!("{figures}"),
        Ok(figures) => print_figures(&figures),
        Err(e) => {
            eprintln!("http-bench: {e}");
            std::process::exit(1);
        }
    }
}

fn run(dir: &Path) -> Result<Value, String> {
    let bin_dir = support::bench::fresh_binaries(&["webapp"], &[])?;
    for tool in ["nginx", "wrk"] {
        if !have(tool) {
            return Err(format!(
                "{tool} is missing: apt-get install -y nginx wrk (examples/bench.rs installs them)"
            ));
        }
    }
    // This process holds 10,000 connections at once.
    let files = rlimit::increase_nofile_limit(1 << 20).map_err(|e| e.to_string())?;
    if files < (IDLE + 500) as u64 {
        return Err(format!(
            "the open-file limit is {files}; figure 3 needs {}: raise the hard limit",
            IDLE + 500
        ));
    }
    let (mut app, app_port) =
        start_local_webapp(&bin_dir.join("webapp"), &dir.join("webapp-data"))?;
    let nginx = start_nginx(dir)?;

    eprintln!("http-bench: 1. /healthz, wrk -t2 -c32 -d10s, 3 interleaved pairs");
    let c32 = interleaved(app_port, nginx.port, 32)?;
    eprintln!("http-bench: 2. /healthz, wrk -t2 -c1000 -d10s, 3 interleaved pairs");
    let c1000 = interleaved(app_port, nginx.port, 1000)?;
    eprintln!("http-bench: 3. {IDLE} idle keep-alive connections");
    let idle_app = hold_idle(app_port, &[app.0.id()])?;
    let nginx_pids = process_tree(nginx.child.0.id());
    let idle_nginx = hold_idle(nginx.port, &nginx_pids)?;
    eprintln!(
        "http-bench: 4. {DRIPS} dripping heads + {STALLED} stalled uploads (about 2 minutes)"
    );
    let slow = slow_clients(app_port)?;
    eprintln!("http-bench: 5. every worker busy");
    let busy = workers_busy(app_port)?;
    if let Ok(Some(status)) = app.0.try_wait() {
        return Err(format!("the webapp exited during the run: {status}"));
    }
    Ok(json!({
        "workers": ocivision::http::Limits::public().workers,
        "c32": c32,
        "c1000": c1000,
        "idle": {"connections": IDLE, "ocivision": idle_app, "nginx": idle_nginx},
        "slow": slow,
        "busy": busy,
    }))
}

fn print_figures(f: &Value) {
    let pair = |v: &Value, what: &str| {
        println!(
            "{what}: ocivision {:.0} req/s (p99 {:.2} ms), nginx {:.0} req/s (p99 {:.2} ms), \
             ratio {:.3} (median of {} pairs: {}); non-2xx {}, socket errors {} (nginx: {}, {})",
            v["ours"]["rps"].as_f64().unwrap_or(0.0),
            v["ours"]["p99_ms"].as_f64().unwrap_or(0.0),
            v["nginx"]["rps"].as_f64().unwrap_or(0.0),
            v["nginx"]["p99_ms"].as_f64().unwrap_or(0.0),
            v["ratio"].as_f64().unwrap_or(0.0),
            v["pairs"].as_array().map_or(0, Vec::len),
            v["pairs"],
            v["ours"]["non_2xx"],
            v["ours"]["socket_errors"],
            v["nginx"]["non_2xx"],
            v["nginx"]["socket_errors"],
        )
    };
    pair(&f["c32"], "1. /healthz, 32 connections");
    pair(&f["c1000"], "2. /healthz, 1000 connections");
    let idle = &f["idle"];
    for side in ["ocivision", "nginx"] {
        let s = &idle[side];
        println!(
            "3. {} idle keep-alive connections, {side}: visitor GET /healthz median {:.2} ms, \
             slowest of {} {:.2} ms (all 200: {}); RSS {:.1} MB holding them ({:.1} MB before)",
            idle["connections"],
            s["visitor_median_ms"].as_f64().unwrap_or(0.0),
            s["visitors"],
            s["visitor_max_ms"].as_f64().unwrap_or(0.0),
            s["visitors_ok"],
            s["rss_mb"].as_f64().unwrap_or(0.0),
            s["rss_before_mb"].as_f64().unwrap_or(0.0),
        );
    }
    let slow = &f["slow"];
    println!(
        "4. {} dripping heads + {} stalled uploads: visitors {} (errors {}), p50 {:.2} ms, \
         p99 {:.2} ms, max {:.2} ms; drips answered {} (408: {}) after {:.2}–{:.2} s; stalled \
         uploads answered {} (408: {}) after {:.2}–{:.2} s",
        slow["drips"],
        slow["stalled"],
        slow["visitors"],
        slow["visitor_errors"],
        slow["visitor_p50_ms"].as_f64().unwrap_or(0.0),
        slow["visitor_p99_ms"].as_f64().unwrap_or(0.0),
        slow["visitor_max_ms"].as_f64().unwrap_or(0.0),
        slow["drips_answered"],
        slow["drips_408"],
        slow["drip_answer_min_s"].as_f64().unwrap_or(0.0),
        slow["drip_answer_max_s"].as_f64().unwrap_or(0.0),
        slow["stalled_answered"],
        slow["stalled_408"],
        slow["stalled_answer_min_s"].as_f64().unwrap_or(0.0),
        slow["stalled_answer_max_s"].as_f64().unwrap_or(0.0),
    );
    let busy = &f["busy"];
    println!(
        "5. every worker busy ({} workers held): {} of {} visitors got 503 with Retry-After {}, \
         median {:.1} ms, slowest {:.1} ms; served again afterwards: {}",
        busy["held"],
        busy["busy_503"],
        busy["visitors"],
        busy["retry_after"],
        busy["median_ms"].as_f64().unwrap_or(0.0),
        busy["max_ms"].as_f64().unwrap_or(0.0),
        busy["served_after"],
    );
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// nginx, one worker, the same empty 200, room for 10,000 connections.
fn start_nginx(dir: &Path) -> Result<Nginx, String> {
    let nginx_dir: PathBuf = dir.join("nginx");
    std::fs::create_dir_all(&nginx_dir).map_err(|e| e.to_string())?;
    let port = free_port()?;
    let d = nginx_dir.display();
    let conf = format!(
        "daemon off;\nworker_processes 1;\nworker_rlimit_nofile 40000;\n\
         error_log {d}/error.log warn;\npid {d}/nginx.pid;\n\
         events {{ worker_connections 30000; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  \
         fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n  \
         keepalive_timeout 330s;\n  \
         server {{\n    listen 127.0.0.1:{port} backlog=4096;\n    location = /healthz {{ return 200 \"\"; }}\n  }}\n}}\n"
    );
    let conf_path = nginx_dir.join("nginx.conf");
    std::fs::write(&conf_path, conf).map_err(|e| e.to_string())?;
    let conf = conf_path.display().to_string();
    let prefix = format!("{d}/");
    let mut child = Command::new("nginx")
        .args(["-p", &prefix, "-c", &conf])
        .stdin(Stdio::null())
        .spawn()
        .map_err(|e| format!("nginx: {e}"))?;
    wait_healthy(port, &mut child, "nginx")?;
    Ok(Nginx {
        child: Guard(child),
        prefix,
        conf,
        port,
    })
}

/// The middle of `values` (the mean of the two middle ones for an even count); 0 when empty.
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// Three pairs, ours then nginx's, back to back: the machine's pace drifts, so each pair is
/// compared on its own and the median pair ratio is the claim.
fn interleaved(ours: u16, nginx: u16, conns: usize) -> Result<Value, String> {
    let mut pairs = Vec::new();
    for _ in 0..3 {
        let a = wrk(ours, conns)?;
        let b = wrk(nginx, conns)?;
        pairs.push((a, b));
    }
    let side = |pick: &dyn Fn(&(Wrk, Wrk)) -> Wrk| {
        let runs: Vec<Wrk> = pairs.iter().map(pick).collect();
        let mut rps: Vec<f64> = runs.iter().map(|w| w.rps).collect();
        let mut p99: Vec<f64> = runs.iter().map(|w| w.p99_ms).collect();
        json!({
            "rps": median(&mut rps),
            "p99_ms": median(&mut p99),
            "non_2xx": runs.iter().map(|w| w.non_2xx).sum::<u64>(),
            "socket_errors": runs.iter().map(|w| w.socket_errors).sum::<u64>(),
        })
    };
    let mut ratios: Vec<f64> = pairs.iter().map(|(a, b)| a.rps / b.rps.max(1.0)).collect();
    let listed: Vec<String> = ratios.iter().map(|r| format!("{r:.3}")).collect();
    Ok(json!({
        "connections": conns,
        "ours": side(&|p| p.0),
        "nginx": side(&|p| p.1),
        "ratio": median(&mut ratios),
        "pairs": listed,
    }))
}

/// Resident memory of `pids` together, in MB.
fn rss_mb(pids: &[u32]) -> f64 {
    pids.iter()
        .filter_map(|pid| support::status_field(&format!("/proc/{pid}/status"), "VmRSS"))
        .sum::<f64>()
        / 1024.0
}

/// `pid` and its children (nginx's master and worker).
fn process_tree(pid: u32) -> Vec<u32> {
    let mut pids = vec![pid];
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            // The parent pid is the second field after the parenthesised command name.
            let parent = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok());
            if parent == Some(pid) {
                pids.push(child);
            }
        }
    }
    pids
}

const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: bench\r\n\r\n";

fn status_of(bytes: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(bytes.get(..12)?).ok()?;
    text.strip_prefix("HTTP/1.1 ")?.parse().ok()
}

/// A new visitor: `GET /healthz` on a new connection, read to the end. Status and milliseconds.
fn visit(port: u16) -> (u16, f64) {
    let started = Instant::now();
    let status = support::request(
        addr(port),
        "GET",
        "/healthz",
        &[],
        b"",
        Duration::from_secs(10),
    )
    .map_or(0, |r| r.status);
    (status, started.elapsed().as_secs_f64() * 1000.0)
}

/// Figure 3 for one server: `IDLE` keep-alive connections after one request each, then 20
/// visitors, and the RSS of `pids` while holding them.
fn hold_idle(port: u16, pids: &[u32]) -> Result<Value, String> {
    let rss_before = rss_mb(pids);
    let mut held = Vec::with_capacity(IDLE);
    let opened = Instant::now();
    for i in 0..IDLE {
        let mut c = support::Client::open(addr(port), Duration::from_secs(10))
            .map_err(|e| format!("connection {i}: {e}"))?;
        c.send(HEALTHZ);
        match c.response().map(|r| r.status) {
            Some(200) => held.push(c),
            Some(other) => return Err(format!("connection {i} got {other}")),
            None => return Err(format!("connection {i}: no answer")),
        }
    }
    let open_secs = opened.elapsed().as_secs_f64();
    let rss = rss_mb(pids);
    let mut times = Vec::new();
    let mut ok = 0;
    for _ in 0..20 {
        let (status, ms) = visit(port);
        ok += usize::from(status == 200);
        times.push(ms);
    }
    // The held connections are still open and usable: one more request on the first.
    held[0].send(HEALTHZ);
    let reused = held[0].response().is_some_and(|r| r.status == 200);
    drop(held);
    let max = times.iter().copied().fold(0.0, f64::max);
    Ok(json!({
        "visitors": times.len(),
        "visitors_ok": ok,
        "visitor_median_ms": median(&mut times),
        "visitor_max_ms": max,
        "rss_mb": rss,
        "rss_before_mb": rss_before,
        "open_secs": open_secs,
        "held_reused": reused,
    }))
}

/// One slow connection of figure 4.
struct Slow {
    stream: TcpStream,
    /// When its clock started: the first head byte (drips) or the end of the head (uploads).
    since: Instant,
    sent: usize,
    answer: Option<(u16, Duration)>,
}

/// Figure 4: drips and stalled uploads against the webapp while a visitor keeps coming.
fn slow_clients(port: u16) -> Result<Value, String> {
    let drip_head =
        b"GET /healthz HTTP/1.1\r\nHost: bench\r\nUser-Agent: one-byte-a-second\r\n\r\n";
    let mut drips = Vec::with_capacity(DRIPS);
    for _ in 0..DRIPS {
        let stream = TcpStream::connect(addr(port)).map_err(|e| e.to_string())?;
        stream.set_nonblocking(true).map_err(|e| e.to_string())?;
        drips.push(Slow {
            stream,
            since: Instant::now(),
            sent: 0,
            answer: None,
        });
    }
    let mut stalled = Vec::with_capacity(STALLED);
    for i in 0..STALLED {
        let mut stream = TcpStream::connect(addr(port)).map_err(|e| e.to_string())?;
        let head = format!(
            "PUT /api/images/stalled-{i}.jpg HTTP/1.1\r\nHost: bench\r\nContent-Type: image/jpeg\r\n\
             Content-Length: 5000000\r\n\r\n"
        );
        let mut first = head.into_bytes();
        first.extend_from_slice(&[0xFF, 0xD8, 0xFF, 0xE0]);
        first.resize(first.len() + 1020, 0);
        stream.write_all(&first).map_err(|e| e.to_string())?;
        stream.set_nonblocking(true).map_err(|e| e.to_string())?;
        stalled.push(Slow {
            stream,
            since: Instant::now(),
            sent: first.len(),
            answer: None,
        });
    }
    // Visitors, 20 a second, on their own thread until the slow ones are all answered.
    let stop = Arc::new(AtomicBool::new(false));
    let stop_visitors = Arc::clone(&stop);
    let visitors = std::thread::spawn(move || {
        let mut results = Vec::new();
        let until = Instant::now() + Duration::from_secs(200);
        while !stop_visitors.load(Ordering::SeqCst) && Instant::now() < until {
            results.push(visit(port));
            std::thread::sleep(Duration::from_millis(50));
        }
        results
    });
    let started = Instant::now();
    let mut next_drip = started;
    let mut scratch = [0u8; 1024];
    let give_up = started + Duration::from_secs(180);
    loop {
        let now = Instant::now();
        if now >= next_drip {
            for d in drips.iter_mut().filter(|d| d.answer.is_none()) {
                if d.sent < drip_head.len()
                    && d.stream.write(&drip_head[d.sent..d.sent + 1]).is_ok()
                {
                    if d.sent == 0 {
                        d.since = Instant::now();
                    }
                    d.sent += 1;
                }
            }
            next_drip += Duration::from_secs(1);
        }
        for s in drips
            .iter_mut()
            .chain(stalled.iter_mut())
            .filter(|s| s.answer.is_none())
        {
            match s.stream.read(&mut scratch) {
                Ok(0) => s.answer = Some((0, s.since.elapsed())),
                Ok(n) => {
                    s.answer = Some((status_of(&scratch[..n]).unwrap_or(0), s.since.elapsed()))
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => s.answer = Some((0, s.since.elapsed())),
            }
        }
        let waiting = drips
            .iter()
            .chain(&stalled)
            .filter(|s| s.answer.is_none())
            .count();
        if waiting == 0 || now >= give_up {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::SeqCst);
    let visits = visitors.join().map_err(|_| "the visitor thread panicked")?;
    let summary = |set: &[Slow]| {
        let mut secs: Vec<f64> = set
            .iter()
            .filter_map(|s| s.answer.map(|(_, t)| t.as_secs_f64()))
            .collect();
        secs.sort_by(f64::total_cmp);
        let answered = secs.len();
        let count_408 = set
            .iter()
            .filter(|s| s.answer.is_some_and(|(status, _)| status == 408))
            .count();
        (
            answered,
            count_408,
            secs.first().copied().unwrap_or(0.0),
            secs.last().copied().unwrap_or(0.0),
        )
    };
    let (drips_answered, drips_408, drip_min, drip_max) = summary(&drips);
    let (stalled_answered, stalled_408, stalled_min, stalled_max) = summary(&stalled);
    let mut times: Vec<f64> = visits.iter().map(|(_, ms)| *ms).collect();
    times.sort_by(f64::total_cmp);
    let errors = visits.iter().filter(|(status, _)| *status != 200).count();
    Ok(json!({
        "drips": DRIPS,
        "stalled": STALLED,
        "visitors": visits.len(),
        "visitor_errors": errors,
        "visitor_p50_ms": percentile(&mut times, 50.0),
        "visitor_p99_ms": percentile(&mut times, 99.0),
        "visitor_max_ms": times.last().copied().unwrap_or(0.0),
        "drips_answered": drips_answered,
        "drips_408": drips_408,
        "drip_answer_min_s": drip_min,
        "drip_answer_max_s": drip_max,
        "stalled_answered": stalled_answered,
        "stalled_408": stalled_408,
        "stalled_answer_min_s": stalled_min,
        "stalled_answer_max_s": stalled_max,
    }))
}

/// Figure 5: as many requests as the web app has workers, each sending more body than the
/// loop pre-reads and then nothing, so each holds a worker inside its handler; then visitors.
fn workers_busy(port: u16) -> Result<Value, String> {
    let workers = ocivision::http::Limits::public().workers;
    let mut held = Vec::with_capacity(workers);
    for _ in 0..workers {
        let mut stream = TcpStream::connect(addr(port)).map_err(|e| e.to_string())?;
        let mut wire = b"POST /api/images/delete HTTP/1.1\r\nHost: bench\r\n\
            Content-Type: application/json\r\nContent-Length: 200000\r\n\r\n{\"ids\": ["
            .to_vec();
        wire.resize(wire.len() + 20 * 1024, b' ');
        stream.write_all(&wire).map_err(|e| e.to_string())?;
        held.push(stream);
    }
    // The loop hands them out and wakes workers as the queue stops moving (1 ms apart).
    std::thread::sleep(Duration::from_millis(300));
    let mut times = Vec::new();
    let mut busy_503 = 0;
    let mut retry_after = Vec::new();
    for _ in 0..10 {
        let started = Instant::now();
        let reply = support::request(
            addr(port),
            "GET",
            "/healthz",
            &[],
            b"",
            Duration::from_secs(30),
        );
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        if let Ok(r) = reply {
            if r.status == 503 {
                busy_503 += 1;
                retry_after.extend(r.retry_after().map(|d| d.as_secs()));
            }
        }
    }
    drop(held);
    // Freed workers: the next visitor is served (allow the handlers a moment to see the close).
    let recovered = Instant::now() + Duration::from_secs(10);
    let mut served_after = false;
    while !served_after && Instant::now() < recovered {
        served_after = visit(port).0 == 200;
        if !served_after {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    retry_after.dedup();
    let max = times.iter().copied().fold(0.0, f64::max);
    Ok(json!({
        "held": workers,
        "visitors": times.len(),
        "busy_503": busy_503,
        "retry_after": retry_after,
        "median_ms": median(&mut times),
        "max_ms": max,
        "served_after": served_after,
    }))
}
