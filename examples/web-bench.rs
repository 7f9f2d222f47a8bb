//! `web-bench`: measures the web app against the local emulator and prints the figures.
//!
//! 1. The gallery page (50 images) with 10 000 objects and documents stored.
//! 2. A 5 MB upload through the app divided by a direct PUT of the same size to the emulator
//!    (target ≤ 1.25).
//! 3. The app's peak RSS (VmHWM) after 1, 2.5 and 5 MB uploads (should stay flat).
//!
//! The app runs as a child process (this binary with `--serve-app`), so its memory is measured
//! apart from the emulator's. Run with `cargo run --release --example web-bench`. Linux only (reads
//! `/proc`). Not a test: it prints numbers and asserts nothing.

#[path = "../tests/support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use ocivision::document::{AnalysisDocument, DetectedObject, Status};
use ocivision::local::Wiring;
use ocivision::oci::client::Transport;
use ocivision::oci::object_storage::ObjectStorage;
use ocivision::soda::document_key;
use ocivision::Error;
use support::bench::median;
use support::emulator::{
    bucket_of, deadline, on_four_threads, put_jpeg, rectangle, soda_on, Env, STUB_JPEG,
};

const SEED: usize = 10_000;

/// Where the app child's log goes: here with `WEB_BENCH_DEBUG`, else nowhere.
fn stderr() -> std::process::Stdio {
    if debug() {
        std::process::Stdio::inherit()
    } else {
        std::process::Stdio::null()
    }
}

/// `WEB_BENCH_DEBUG` set: the app child logs at debug level to this process's stderr.
fn debug() -> bool {
    std::env::var_os("WEB_BENCH_DEBUG").is_some()
}

/// One request over a fresh connection; returns the status.
fn request(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> Result<u16, Error> {
    Ok(support::request(addr, method, path, &[], body, Duration::from_secs(120))?.status)
}

/// A JPEG of `size` bytes: dog.jpg, then trailing bytes that differ per `n`.
fn jpeg(size: usize, n: u64) -> Vec<u8> {
    let dog = include_bytes!("../tests/fixtures/photos/dog.jpg");
    let mut bytes = dog.to_vec();
    let mut x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while bytes.len() < size {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        // High bytes only: never `<`, so never mistaken for markup.
        bytes.push((x as u8) | 0x80);
    }
    bytes
}

fn seed(wiring: &Wiring, transport: &Transport) -> Result<(), Error> {
    let started = Instant::now();
    let clients = || {
        let os = ObjectStorage::new(transport.clone(), &wiring.cloud().object_storage_url);
        Ok((
            os,
            soda_on(wiring, transport, "IMAGE_ANALYSIS")?,
            bucket_of(wiring),
        ))
    };
    on_four_threads(SEED, clients, |(os, soda, b), i| {
        let name = format!(
            "uploads/{:011x}{:013x}.jpg",
            0x100_0000_0000u64 + i as u64,
            i
        );
        let mut doc = AnalysisDocument::new(&b.namespace, &b.name, &name, Status::Done);
        doc.etag = put_jpeg(os, b, &name, STUB_JPEG)?;
        doc.original_name = Some(format!("photo {i}.jpg"));
        doc.objects = (0..3)
            .map(|k| DetectedObject {
                name: ["Dog", "Car", "Person"][k].into(),
                confidence: 0.5 + k as f64 / 10.0,
                polygon: rectangle([0.1, 0.1, 0.5, 0.5]),
            })
            .collect();
        soda.put(
            &document_key(&b.namespace, &b.name, &name),
            &doc.to_json(),
            deadline(60),
        )
    })?;
    eprintln!(
        "seeded {SEED} objects and documents in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn run() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--serve-app") {
        if debug() {
            ocivision::logger::init(log::LevelFilter::Debug);
        }
        return support::bench::serve_app(&args[2], Path::new(&args[3]), &args[4]);
    }
    let env = Env::start("web-bench");
    let (base, dir) = (env.emulator.base_url().to_string(), env.dir.path());
    let (wiring, transport) = (env.wiring(), &env.transport);
    for collection in ["IMAGE_ANALYSIS", "BENCH_UPLOADS"] {
        env.soda(collection).ensure_collection(deadline(60))?;
    }

    // 1. Gallery with 10 000 images.
    seed(wiring, transport)?;
    let app = support::bench::AppProcess::start(&base, dir, "IMAGE_ANALYSIS", &[], stderr())?;
    request(app.addr, "GET", "/", b"")?;
    let mut times = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let status = request(app.addr, "GET", "/", b"")?;
        assert_eq!(status, 200);
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let deep = request(
        app.addr,
        "GET",
        "/?start=uploads%2F100000013880000000001388.jpg",
        b"",
    )?;
    println!(
        "gallery page (50 of {SEED} images): median {:.1} ms, max {:.1} ms (deep page status {deep})",
        median(times.clone()),
        times.iter().cloned().fold(0.0, f64::max)
    );
    drop(app);
    // Where the time goes: the same two service calls the page makes, made directly.
    let os = ObjectStorage::new(transport.clone(), &base);
    let docs = env.soda("IMAGE_ANALYSIS");
    let (mut list_ms, mut query_ms) = (Vec::new(), Vec::new());
    for _ in 0..10 {
        let t = Instant::now();
        let names: Vec<String> = os
            .list(
                &env.bucket(),
                ocivision::oci::object_storage::ListOptions {
                    prefix: Some("uploads/".into()),
                    page_size: Some(51),
                    fields: Some("name,size,timeCreated".into()),
                    ..Default::default()
                },
                deadline(60),
            )
            .take(51)
            .map(|o| o.map(|o| o.name))
            .collect::<Result<_, _>>()?;
        list_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        let keys: Vec<String> = names
            .iter()
            .map(|n| document_key("emulatorns", "images", n))
            .collect();
        let t = Instant::now();
        let found = docs
            .query(&serde_json::json!({"$id": keys}), deadline(60))?
            .count();
        query_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(found, 51);
    }
    println!(
        "  of which (emulator): object listing median {:.1} ms, SODA $id query median {:.1} ms",
        median(list_ms),
        median(query_ms)
    );

    // 2. 5 MB through the app vs a direct PUT.
    let app = support::bench::AppProcess::start(&base, dir, "BENCH_UPLOADS", &[], stderr())?;
    let os = ObjectStorage::new(transport.clone(), &base);
    let size = 5 * 1024 * 1024;
    let (mut direct, mut through) = (Vec::new(), Vec::new());
    // Pairs, one right after the other: the emulator fsyncs each object, and the disk's pace
    // drifts with other writers, so a pair's ratio is steadier than a ratio of medians.
    for n in 0..20u64 {
        let bytes = jpeg(size, 1000 + n);
        let t = Instant::now();
        put_jpeg(&os, &env.bucket(), &format!("direct/{n}.jpg"), &bytes)?;
        direct.push(t.elapsed().as_secs_f64() * 1000.0);
        let bytes = jpeg(size, 2000 + n);
        let t = Instant::now();
        let status = request(
            app.addr,
            "PUT",
            &format!("/api/images/bench{n}.jpg"),
            &bytes,
        )?;
        through.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(status, 201, "upload through the app");
    }
    let ratios: Vec<f64> = direct.iter().zip(&through).map(|(d, a)| a / d).collect();
    let (d, a) = (median(direct), median(through));
    println!(
        "5 MB upload: direct PUT {d:.1} ms, through the app {a:.1} ms, ratio {:.2} (median of 20 paired ratios; of the medians {:.2}; target ≤ 1.25)",
        median(ratios),
        a / d
    );
    drop(app);

    // 3. Peak RSS per upload size, a fresh app process each.
    for (label, size) in [
        ("1 MB", 1024 * 1024),
        ("2.5 MB", 5 * 512 * 1024),
        ("5 MB", 5 * 1024 * 1024),
    ] {
        let app = support::bench::AppProcess::start(&base, dir, "BENCH_UPLOADS", &[], stderr())?;
        request(app.addr, "GET", "/healthz", b"")?;
        let before = app.peak_rss_kib();
        for n in 0..5u64 {
            let status = request(
                app.addr,
                "PUT",
                &format!("/api/images/rss{n}.jpg"),
                &jpeg(size, size as u64 + n),
            )?;
            assert_eq!(status, 201);
        }
        let after = app.peak_rss_kib();
        println!(
            "peak RSS, 5 sequential {label} uploads: {:.1} MiB (idle {:.1} MiB, +{:.1} MiB)",
            after as f64 / 1024.0,
            before as f64 / 1024.0,
            (after - before) as f64 / 1024.0
        );
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    support::bench::exit_code("web-bench", run())
}
