//! `func-bench`: how fast the function starts and how little time it adds per call.
//!
//! Run with `cargo run --release --example func-bench` (it starts `target/release/func`:
//! `cargo build --release --bin func` first). The emulator runs in this process with a detector that answers at once;
//! the function runs as a child exactly as the Fn agent starts it. Printed:
//! - exec → socket ready: from spawning the process to the `lsnr.sock` link appearing;
//! - first call and warm calls (median, p90 of `--calls N`, default 200): wall time of one
//!   `POST /call` for a new object's create event, and the function's own part of it, which is
//!   the wall time minus the time the emulator spent serving the function's outbound requests;
//! - the function's CPU time per event (user + system, all its threads, from /proc/PID/stat
//!   over the warm calls), beside the latency;
//! - outbound requests per call, and the function's peak RSS (VmHWM).
//!
//! `FUNC_BENCH_TRACE=1` also lists the last call's outbound requests with the emulator's time.
//!
//! `--python FDK SCRIPT` measures another function the same way instead: `FDK SCRIPT handler`,
//! the Python fdk's entry point as a Fn image runs it (the benchmark's Python fdk + OCI SDK
//! handler, bench/python/func.py), with the same environment; `--json`
//! prints the figures as one JSON line for `bench` (examples/bench.rs) to read.

#[path = "../tests/support/mod.rs"]
mod support;

use std::io::Cursor;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use ocivision::emulator::agent::FnAgent;
use ocivision::emulator::events::{cloud_event, Change, ChangeKind};
use ocivision::local::Vision;
use ocivision::oci::client::{Auth, Transport, TransportConfig};
use ocivision::oci::object_storage::{Condition, ObjectStorage};
use support::bench::{cpu_ticks, Guard, TICKS_PER_SECOND};
use support::emulator::FixedDetector;

fn main() {
    let calls = support::bench::number_arg("--calls", 200).unwrap_or(200);
    let args: Vec<String> = std::env::args().collect();
    let python = args
        .iter()
        .position(|a| a == "--python")
        .and_then(|i| Some((args.get(i + 1)?.clone(), args.get(i + 2)?.clone())));
    let json = args.iter().any(|a| a == "--json");
    let dir = std::env::temp_dir().join(format!("ocivision-func-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let result = bench(&dir, calls, python, json);
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(e) = result {
        eprintln!("func-bench: {e}");
        std::process::exit(1);
    }
}

fn bench(
    dir: &std::path::Path,
    calls: usize,
    python: Option<(String, String)>,
    json: bool,
) -> Result<(), String> {
    let mut options = support::emulator::stack(dir);
    options.vision = Vision::Given(Arc::new(FixedDetector::default()));
    let stack = options.start().map_err(|e| e.to_string())?;
    let emulator = &stack.emulator;

    // Objects to analyse, uploaded before any timing.
    let credentials = stack.wiring().credentials().map_err(|e| e.to_string())?;
    let storage = ObjectStorage::new(
        Transport::new(Auth::Oci(credentials), TransportConfig::default()),
        emulator.base_url(),
    );
    let bucket = support::emulator::bucket_of(stack.wiring());
    let image = include_bytes!("../tests/fixtures/photos/dog.jpg");
    let mut etags = Vec::new();
    for i in 0..=calls {
        let etag = storage
            .put(
                &bucket,
                &format!("bench/{i:05}.jpg"),
                &mut Cursor::new(image.to_vec()),
                image.len() as u64,
                "image/jpeg",
                &[],
                Condition::None,
                Instant::now() + Duration::from_secs(10),
            )
            .map_err(|e| e.to_string())?;
        etags.push(etag);
    }

    // The function as the agent starts it, with the stack's resource-principal token.
    let socket = dir.join("run").join("lsnr.sock");
    let (func, args) = match &python {
        Some((fdk, script)) => (PathBuf::from(fdk), vec![script.clone(), "handler".into()]),
        None => (support::bench::binary("func")?, Vec::new()),
    };
    let spawned = Instant::now();
    // Killed and reaped on every way out of this function, errors included: a child left
    // running keeps our stderr (which it inherits) open, so `bench`, reading it to the end,
    // would wait for it forever.
    let mut child = Guard(
        Command::new(&func)
            .args(&args)
            .env_clear()
            // Python needs somewhere to look for user files; the Rust function ignores it.
            .env("HOME", dir)
            .envs(stack.wiring().function_env(&socket))
            // The pacer runs (its document's read and write are in every call) at a rate
            // back-to-back calls never reach: these figures are the function's own cost, not
            // Vision's limit (the region's default, 10 a second, would space calls 100 ms
            // apart; docs/SCALING.md measures the limit).
            .env("VISION_TPS", "1000")
            .env("LOG_LEVEL", "warn")
            .stdin(Stdio::null())
            // Our stdout carries the figures (`--json`).
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting {}: {e}", func.display()))?,
    );
    while std::fs::symlink_metadata(&socket).is_err() {
        // Generous: the Python stack imports the OCI SDK before it listens.
        if spawned.elapsed() > Duration::from_secs(60) {
            return Err("the function did not create its socket within 60 s".into());
        }
        if let Ok(Some(status)) = child.0.try_wait() {
            return Err(format!("the function exited during start-up: {status}"));
        }
        std::thread::sleep(Duration::from_micros(50));
    }
    let ready = spawned.elapsed();
    let agent = FnAgent::new(&socket);
    let mut samples = Vec::new();
    let mut outbound = Vec::new();
    let mut cpu_after_first = None;
    for (i, etag) in etags.iter().enumerate() {
        if i == 1 {
            cpu_after_first = cpu_ticks(child.0.id());
        }
        let change = Change {
            kind: ChangeKind::Created,
            namespace: emulator.namespace().into(),
            bucket: "images".into(),
            name: format!("bench/{i:05}.jpg"),
            etag: Some(etag.clone()),
        };
        let body = serde_json::to_vec(&cloud_event(&change, "c", SystemTime::now())).unwrap();
        emulator.clear_requests();
        let started = Instant::now();
        let reply = agent
            .call(&body, "application/json", &[], Duration::from_secs(30))
            .map_err(|e| e.to_string())?;
        let wall = started.elapsed();
        if reply.status != 200 {
            return Err(format!(
                "call {i} answered {}: {}",
                reply.status,
                String::from_utf8_lossy(&reply.body)
            ));
        }
        let seen = emulator.requests();
        let served: u64 = seen.iter().map(|r| r.micros).sum();
        if std::env::var("FUNC_BENCH_TRACE").is_ok() && i == etags.len() - 1 {
            for r in &seen {
                eprintln!("{} {} {} {} us", r.method, r.target, r.status, r.micros);
            }
        }
        samples.push((wall, wall.saturating_sub(Duration::from_micros(served))));
        outbound.push(seen.len());
    }
    let rss = support::bench::peak_rss_kib(child.0.id());
    let warm_cpu_ms = cpu_after_first
        .zip(cpu_ticks(child.0.id()))
        .map(|(before, after)| {
            (after - before) as f64 * 1000.0 / TICKS_PER_SECOND / (etags.len() - 1) as f64
        });
    drop(child);

    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let (first_wall, first_own) = samples[0];
    let warm_calls = samples.len() - 1;
    // The median and 90th percentile of the warm calls' wall or own time, in ms.
    let warm = |pick: fn(&(Duration, Duration)) -> Duration| {
        let mut values: Vec<Duration> = samples[1..].iter().map(pick).collect();
        values.sort();
        let at = |p: f64| ms(values[((values.len() - 1) as f64 * p).round() as usize]);
        (at(0.5), at(0.9))
    };
    let (wall_median, wall_p90) = warm(|s| s.0);
    let (own_median, own_p90) = warm(|s| s.1);
    if json {
        let value = serde_json::json!({
            "ready_ms": ms(ready),
            "first_wall_ms": ms(first_wall),
            "first_own_ms": ms(first_own),
            "warm_calls": warm_calls,
            "warm_wall_median_ms": wall_median,
            "warm_wall_p90_ms": wall_p90,
            "warm_own_median_ms": own_median,
            "warm_own_p90_ms": own_p90,
            "outbound_first": outbound[0],
            "outbound_warm": outbound.last().copied().unwrap_or(0),
            "peak_rss_kib": rss,
            "warm_cpu_ms": warm_cpu_ms,
        });
        println!("{value}");
        return Ok(());
    }
    println!("| figure | value | target |");
    println!("|---|---|---|");
    println!("| exec → socket ready | {:.2} ms | ≤ 5 ms |", ms(ready));
    println!("| first call, wall | {:.2} ms | |", ms(first_wall));
    println!(
        "| first call, function's own time | {:.2} ms | ≤ 5 ms |",
        ms(first_own)
    );
    println!(
        "| warm call, wall (median / p90 of {warm_calls}) | {wall_median:.2} / {wall_p90:.2} ms | |"
    );
    println!(
        "| warm call, function's own time (median / p90) | {own_median:.2} / {own_p90:.2} ms | ≤ 1 ms |"
    );
    match warm_cpu_ms {
        Some(cpu) => {
            println!("| warm call, function's CPU time (mean, all threads) | {cpu:.2} ms | |")
        }
        None => println!("| warm call, function's CPU time | unknown | |"),
    }
    println!(
        "| outbound requests per call (first / warm) | {} / {} | |",
        outbound[0],
        outbound.last().copied().unwrap_or(0)
    );
    match rss {
        Some(kib) => println!(
            "| function peak RSS | {:.1} MB | ≤ 10 MB |",
            kib as f64 / 1024.0
        ),
        None => println!("| function peak RSS | unknown | ≤ 10 MB |"),
    }
    Ok(())
}
