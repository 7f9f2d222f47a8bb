//! `reconcile-cost`: what one reconciler pass costs in service requests, counted by the emulator.
//!
//! Stores N images (default 10,000) as a healthy deployment would have them (each object with
//! its `done` document), then runs two passes through the real reconciler and lease: the first
//! in a fresh deployment (it also creates the lease document), the second in the steady state.
//! Prints each pass's requests by kind, its wall time and how much of it the emulator spent
//! answering (the emulator's QBE scans the whole collection for every page; ORDS has indexes). A consistent bucket needs no repairs;
//! each repair adds its own requests (an orphan object: HEAD + document PUT, + invoke with a
//! function; an orphan document: DELETE; a stuck analysis: PUT or invoke).
//!
//! `cargo run --release --example reconcile-cost [-- --images 10000]`. Not a test: it prints
//! figures and asserts nothing.

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Instant;

use ocivision::document::{AnalysisDocument, Status};
use ocivision::emulator::faults::Service;
use ocivision::emulator::Recorded;
use ocivision::soda::document_key;
use ocivision::web::Settings;
use support::emulator::{deadline, on_four_threads, put_jpeg, Env, STUB_JPEG};
use support::web::COLLECTION;

fn main() -> ExitCode {
    support::bench::exit_code("reconcile-cost", run())
}

/// Stores `count` objects, each with its `done` document, from four threads.
fn seed(cloud: &Env, count: usize) -> Result<(), String> {
    let started = Instant::now();
    let clients = || {
        Ok((
            cloud.object_storage(),
            cloud.soda(COLLECTION),
            cloud.bucket(),
        ))
    };
    on_four_threads(count, clients, |(storage, soda, bucket), i| {
        let name = format!("uploads/{:024x}.jpg", 0x1000_0000_0000_0000u64 + i as u64);
        let mut doc = AnalysisDocument::new(&bucket.namespace, &bucket.name, &name, Status::Done);
        doc.etag = put_jpeg(storage, bucket, &name, STUB_JPEG)?;
        soda.put(
            &document_key(&bucket.namespace, &bucket.name, &name),
            &doc.to_json(),
            deadline(60),
        )
    })
    .map_err(|e: ocivision::Error| e.to_string())?;
    eprintln!(
        "stored {count} objects and documents in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// What a recorded request was, in the reconciler's terms.
fn kind(r: &Recorded) -> String {
    let lease = r.target.contains("/LEASE-");
    match (r.service, r.method.as_str()) {
        (Some(Service::ObjectStorage), "GET") if r.target.contains("/o?") => {
            "Object Storage: ListObjects page".into()
        }
        (Some(Service::ObjectStorage), m) => format!("Object Storage: {m} object"),
        (Some(Service::Soda), "POST") if r.target.contains("action=query") => {
            "SODA: query page (100 documents)".into()
        }
        (Some(Service::Soda), "GET") if lease => "SODA: lease read".into(),
        (Some(Service::Soda), "PUT") if lease && r.header("if-none-match").is_some() => {
            "SODA: lease create (If-None-Match: *)".into()
        }
        (Some(Service::Soda), "PUT") if lease => {
            "SODA: lease take / renew / free (If-Match)".into()
        }
        (Some(service), m) => format!("{}: {m} {}", service.name(), r.target),
        (None, m) => format!("unrouted: {m} {}", r.target),
    }
}

fn run() -> Result<(), String> {
    let count = support::bench::number_arg("--images", 10_000usize)?;
    let cloud = Env::start("reconcile-cost");
    cloud.ensure_collection().map_err(|e| e.to_string())?;
    seed(&cloud, count)?;
    let app = cloud.app(Settings::default());
    for (n, what) in [(1, "first pass (fresh deployment)"), (2, "steady state")] {
        cloud.emulator.clear_requests();
        let started = Instant::now();
        let report = ocivision::web::reconcile(&app).map_err(|e| e.to_string())?;
        let took = started.elapsed();
        let requests = cloud.emulator.requests();
        let mut kinds: BTreeMap<String, (usize, u64)> = BTreeMap::new();
        for r in &requests {
            let entry = kinds.entry(kind(r)).or_default();
            entry.0 += 1;
            entry.1 += r.micros;
        }
        let served_ms = requests.iter().map(|r| r.micros).sum::<u64>() as f64 / 1000.0;
        println!(
            "pass {n}, {what}: {} requests for {count} images in {:.2} s, {:.2} s of it inside the emulator (repairs: {} created, {} removed, {} errors{})",
            requests.len(),
            took.as_secs_f64(),
            served_ms / 1000.0,
            report.created_documents.len(),
            report.removed_documents.len(),
            report.errors.len(),
            report
                .skipped
                .as_deref()
                .map(|why| format!("; skipped: {why}"))
                .unwrap_or_default()
        );
        for (kind, (n, micros)) in &kinds {
            println!(
                "  {n:6}  {kind} (emulator: {:.1} ms each on average)",
                *micros as f64 / 1000.0 / *n as f64
            );
        }
    }
    Ok(())
}
