//! `login-bench`: an online password-guessing attack on the web app, and what it costs everyone
//! else.
//!
//! The app (password set, default throttle: 5 failures at once, then one per 20 s per address)
//! runs in this process against the emulator, on loopback. First `/healthz` is timed alone for
//! a few seconds (the baseline); then 1,000 wrong passwords are sent from one address over one
//! minute, half through the login form and half as `Authorization: Bearer`, from four
//! connections at a time, while `/healthz` is timed again. It prints how many of the 1,000 were
//! actually compared with the password (answered 401) and how many were refused unchecked (429),
//! how fast the refusals came back, and `/healthz` p50/p99 with and without the attack.
//!
//! `cargo run --release --example login-bench [-- --seconds 60 --attempts 1000]`. Not a test: it
//! prints figures and asserts nothing.

#[path = "../tests/support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ocivision::secret::Secret;
use ocivision::web::Settings;

const ATTACKERS: usize = 4;

fn main() -> ExitCode {
    support::bench::exit_code("login-bench", run())
}

/// Times `/healthz` on fresh connections until `stop` is set; milliseconds per request.
fn probe(addr: SocketAddr, stop: &AtomicBool) -> Vec<f64> {
    let mut times = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        let t = Instant::now();
        match support::request(addr, "GET", "/healthz", &[], b"", Duration::from_secs(10)) {
            Ok(r) if r.status == 200 => times.push(t.elapsed().as_secs_f64() * 1000.0),
            Ok(r) => eprintln!("/healthz answered {}", r.status),
            Err(e) => eprintln!("/healthz failed: {e}"),
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    times
}

/// Runs `probe` for `secs` seconds.
fn probe_for(addr: SocketAddr, secs: u64) -> Vec<f64> {
    let stop = Arc::new(AtomicBool::new(false));
    let prober = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || probe(addr, &stop))
    };
    std::thread::sleep(Duration::from_secs(secs));
    stop.store(true, Ordering::SeqCst);
    prober.join().unwrap_or_default()
}

fn summary(times: &mut [f64]) -> String {
    format!(
        "{} requests, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        times.len(),
        support::bench::percentile(times, 50.0),
        support::bench::percentile(times, 99.0),
        support::bench::percentile(times, 100.0)
    )
}

/// The login form's token, read from the login page.
fn login_token(addr: SocketAddr) -> Result<String, String> {
    let page = support::request(addr, "GET", "/login", &[], b"", Duration::from_secs(10))
        .map_err(|e| e.to_string())?;
    let html = String::from_utf8_lossy(&page.body);
    let form = html
        .find("action=\"/login\"")
        .ok_or("no login form on /login")?;
    let rest = &html[form..];
    let start = rest
        .find("name=\"csrf\" value=\"")
        .ok_or("no token field")?
        + 19;
    let end = rest[start..].find('"').ok_or("unterminated token")?;
    Ok(rest[start..start + end].to_string())
}

/// One wrong password: the form for even `n`, `Bearer` for odd. Status and milliseconds.
fn guess(addr: SocketAddr, token: &str, n: u64) -> (u16, f64) {
    let t = Instant::now();
    let reply = if n % 2 == 0 {
        let body = format!("csrf={token}&password=guess-{n}");
        support::request(
            addr,
            "POST",
            "/login",
            &[
                "Sec-Fetch-Site: same-origin",
                "Content-Type: application/x-www-form-urlencoded",
            ],
            body.as_bytes(),
            Duration::from_secs(10),
        )
    } else {
        let header = format!("Authorization: Bearer guess-{n}");
        support::request(
            addr,
            "GET",
            "/api/images",
            &[&header],
            b"",
            Duration::from_secs(10),
        )
    };
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    (reply.map_or(0, |r| r.status), ms)
}

fn run() -> Result<(), String> {
    let secs = support::bench::number_arg("--seconds", 60u64)?;
    let attempts = support::bench::number_arg("--attempts", 1000u64)?;
    let env = support::emulator::Env::start("login-bench");
    env.ensure_collection().map_err(|e| e.to_string())?;
    let settings = Settings {
        password: Some(Secret::new("the right password")),
        session_secret: Some(Secret::new("login-bench session secret, 32+ chars")),
        ..Settings::default()
    };
    let throttle = settings.login_throttle;
    let app = Arc::new(env.app(settings));
    let server =
        ocivision::web::serve(app, "127.0.0.1:0".parse().unwrap()).map_err(|e| e.to_string())?;
    let addr = server.tcp_addr().ok_or("no TCP address")?;
    let token = login_token(addr)?;

    eprintln!("baseline: /healthz alone for 5 s");
    let mut baseline = probe_for(addr, 5);

    eprintln!("attack: {attempts} wrong passwords over {secs} s from {ATTACKERS} connections");
    let stop = Arc::new(AtomicBool::new(false));
    let prober = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || probe(addr, &stop))
    };
    let start = Instant::now();
    let spacing = Duration::from_secs(secs).as_secs_f64() / attempts as f64;
    let attackers: Vec<_> = (0..ATTACKERS as u64)
        .map(|k| {
            let token = token.clone();
            std::thread::spawn(move || {
                let mut results = Vec::new();
                for n in (k..attempts).step_by(ATTACKERS) {
                    let due = start + Duration::from_secs_f64(n as f64 * spacing);
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    results.push(guess(addr, &token, n));
                }
                results
            })
        })
        .collect();
    let results: Vec<(u16, f64)> = attackers
        .into_iter()
        .flat_map(|a| a.join().unwrap_or_default())
        .collect();
    let attack_time = start.elapsed();
    stop.store(true, Ordering::SeqCst);
    let mut during = prober.join().unwrap_or_default();

    let checked = results.iter().filter(|(s, _)| *s == 401).count();
    let mut refused: Vec<f64> = results
        .iter()
        .filter(|(s, _)| *s == 429)
        .map(|(_, ms)| *ms)
        .collect();
    let other = results.len() - checked - refused.len();
    println!(
        "throttle: {} failures at once, then one per {} s per address",
        throttle.burst,
        throttle.refill.as_secs()
    );
    println!(
        "{} wrong passwords from 127.0.0.1 in {:.1} s ({} form, {} Bearer):",
        results.len(),
        attack_time.as_secs_f64(),
        results.len().div_ceil(2),
        results.len() / 2
    );
    println!("  checked against the password (401): {checked}");
    println!(
        "  refused unchecked (429 + Retry-After): {}, answered in p50 {:.2} ms, p99 {:.2} ms",
        refused.len(),
        support::bench::percentile(&mut refused, 50.0),
        support::bench::percentile(&mut refused, 99.0)
    );
    if other > 0 {
        println!("  other answers: {other}");
    }
    println!("/healthz alone:            {}", summary(&mut baseline));
    println!("/healthz during the attack: {}", summary(&mut during));
    Ok(())
}
