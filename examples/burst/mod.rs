//! `loadtest --burst N [--tps T] [--instances C]`: a photo-library import at cloud scale. N
//! small distinct JPEGs are uploaded through the web app's API as fast as its upload gate
//! allows, against a Vision limited to T requests a second (the emulator's token bucket, 429
//! `TooManyRequests` beyond it) and C function instances (C `func` processes, each on its own
//! socket, events delivered to them C at a time, as OCI Functions scales out). Defaults: 10 TPS
//! (Vision in Ashburn, Phoenix, London) and 50 instances.
//!
//! Processes, as in the other modes: the emulator (`--emulator-child DIR T C`, with the instant
//! detector, so the limit and not the detector is measured), the real `webapp` (cloud mode) and
//! C real `func` binaries, and this one (the uploading clients, a gallery prober and the
//! checker). While the burst runs, one client fetches the gallery page (`GET /`) once a
//! second; its p99 is reported. When the uploads are acknowledged and the event queue has
//! drained, any image the function deferred (`waiting`) is sent again by the app's own
//! reconciler, run in this process until none is left (the drip of docs/SCALING.md). Then:
//! failed = documents `failed`; lost = acknowledged uploads without a `done` document; wall =
//! from the first upload to the last `analyzed_at`; minimum = N ÷ T; Vision requests = every
//! request the emulator's Vision saw, refused ones included. The last line printed is
//!
//! `burst: N uploads, T TPS, C instances: done D, failed F, lost L, wall W s (minimum M s,
//! ratio R), vision requests V (per image X)`
//!
//! and the exit code is 1 when F > 0, L > 0, R > 1.25 or X > 1.2. `--unpaced` runs the
//! functions with `VISION_TPS=0` (no pacer: each instance calls Vision at once and backs off
//! after a 429 on its own), to show what the pacer saves.
//!
//! `--switch ords-ignores-conditions` (issue 24) runs it against an ORDS that ignores `If-Match`
//! and `If-None-Match` (the emulator switch of that name): the functions then run with
//! `ORDS_CONDITIONAL_WRITES=off` and `FUNCTION_MAX_INSTANCES=C`, each pacing itself at T ÷ C,
//! and the bounds are the issue's: F = 0, L = 0, X ≤ 1.5 (the wall-time ratio is reported, not
//! bounded: a per-instance share leaves slots unused whenever fewer than C instances are busy).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use ocivision::soda::Soda;
use ocivision::web::Settings;

use super::{instance_socket, support, Counters, EmulatorProc, Instances, Proc, Stack};

/// Clients uploading at once: enough to keep the upload gate busy (a `503 Busy` is waited out
/// as in the other modes).
const UPLOADERS: usize = 8;
/// The bounds the run must meet (issue 17).
const MAX_RATIO: f64 = 1.25;
const MAX_REQUESTS_PER_IMAGE: f64 = 1.2;
/// Issue 24's bound with the conditions ignored (per-instance pacing).
const MAX_REQUESTS_PER_IMAGE_PER_INSTANCE: f64 = 1.5;
/// How long deferred images are sent again for, after the event queue drained.
const DRIP_TIME: Duration = Duration::from_secs(600);

/// What `--burst` asks for.
struct BurstArgs {
    images: usize,
    tps: f64,
    instances: usize,
    /// The functions' `VISION_TPS`: the limit, or 0 with `--unpaced`.
    paced_tps: f64,
    /// Emulator switches (`--switch`, e.g. `ords-ignores-conditions`).
    switches: String,
}

impl BurstArgs {
    fn conditions_ignored(&self) -> bool {
        self.switches.contains("ords-ignores-conditions")
    }
}

/// Runs the burst mode or its emulator child when `args` ask for it; the exit code, or `None`
/// for the other modes.
pub fn dispatch(args: &[String]) -> Option<i32> {
    let at = args.iter().position(|a| a == "--burst")?;
    let value = |flag: &str, default: f64| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(default)
    };
    let tps = value("--tps", 10.0);
    let burst = BurstArgs {
        images: args
            .get(at + 1)
            .and_then(|n| n.parse().ok())
            .unwrap_or(2000),
        tps,
        instances: value("--instances", 50.0) as usize,
        paced_tps: if args.iter().any(|a| a == "--unpaced") {
            0.0
        } else {
            tps
        },
        switches: args
            .iter()
            .position(|a| a == "--switch")
            .and_then(|i| args.get(i + 1))
            .cloned()
            .unwrap_or_default(),
    };
    if burst.images == 0 || burst.tps <= 0.0 || burst.instances == 0 {
        eprintln!("usage: loadtest --burst N [--tps T] [--instances C] [--unpaced] [--switch ords-ignores-conditions] (all positive)");
        return Some(2);
    }
    let dir = std::env::temp_dir().join(format!("ocivision-burst-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("loadtest: {}: {e}", dir.display());
        return Some(2);
    }
    let result = run(&dir, &burst);
    let _ = std::fs::remove_dir_all(&dir);
    Some(match result {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(e) => {
            eprintln!("loadtest: {e}");
            2
        }
    })
}

fn start(dir: &Path, burst: &BurstArgs) -> Result<Stack, String> {
    let binaries = super::binaries()?;
    let emulator =
        EmulatorProc::start_with(dir, Some((burst.tps, burst.instances)), &burst.switches)?;
    let run = dir.join("run");
    let mut env = vec![("VISION_TPS", burst.paced_tps.to_string())];
    if burst.conditions_ignored() {
        env.push(("ORDS_CONDITIONAL_WRITES", "off".into()));
        env.push(("FUNCTION_MAX_INSTANCES", burst.instances.to_string()));
    }
    let instances = Instances {
        sockets: (0..burst.instances)
            .map(|i| instance_socket(&run, i))
            .collect(),
        env: &env,
    };
    let settings = Settings {
        reconcile_grace: Duration::ZERO,
        ..Settings::default()
    };
    super::start(dir, &binaries, emulator, instances, settings)
}

/// A small baseline JPEG (96×64, a gradient): cheap to upload and to make renditions of,
/// and within Vision's size limits. Each upload gets its own comment segment (`unique`).
fn small_jpeg() -> Result<Vec<u8>, String> {
    let (width, height) = (96u16, 64u16);
    let mut pixels = Vec::with_capacity(usize::from(width) * usize::from(height) * 3);
    for y in 0..height {
        for x in 0..width {
            pixels.extend_from_slice(&[(x * 2) as u8, (y * 3) as u8, 128]);
        }
    }
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, 80)
        .encode(&pixels, width, height, jpeg_encoder::ColorType::Rgb)
        .map_err(|e| format!("encoding the burst's JPEG: {e}"))?;
    Ok(out)
}

/// The gallery page's latencies, one request a second until `stop`.
fn probe_gallery(addr: SocketAddr, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Vec<f64>> {
    std::thread::spawn(move || {
        let mut millis = Vec::new();
        while !stop.load(Ordering::SeqCst) {
            let started = Instant::now();
            match support::request(addr, "GET", "/", &[], b"", Duration::from_secs(60)) {
                Ok(r) if r.status == 200 => millis.push(started.elapsed().as_secs_f64() * 1e3),
                Ok(r) => eprintln!("loadtest: gallery answered {}", r.status),
                Err(e) => eprintln!("loadtest: gallery: {e}"),
            }
            std::thread::sleep(Duration::from_secs(1).saturating_sub(started.elapsed()));
        }
        millis
    })
}

/// Every document's status and `analyzed_at`, by object name (the pacer and the lease left out).
fn documents(soda: &Soda) -> Result<HashMap<String, (String, Option<SystemTime>)>, String> {
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut out = HashMap::new();
    for doc in soda.list(deadline) {
        let doc = doc.map_err(|e| e.to_string())?;
        if doc.value.get("kind").is_some() {
            continue;
        }
        let text = |k: &str| doc.value[k].as_str().unwrap_or("").to_string();
        let analyzed = doc.value["analyzed_at"]
            .as_str()
            .and_then(support::timefmt::parse);
        out.insert(text("image_name"), (text("status"), analyzed));
    }
    Ok(out)
}

fn run(dir: &Path, burst: &BurstArgs) -> Result<bool, String> {
    let mut stack = start(dir, burst)?;
    let photo = small_jpeg()?;
    println!(
        "loadtest: burst of {} uploads, Vision at {} TPS, {} function instances{} (pids {}…), webapp on http://{}",
        burst.images,
        burst.tps,
        burst.instances,
        match (burst.paced_tps > 0.0, burst.conditions_ignored()) {
            (false, _) => ", unpaced",
            (true, true) => ", ORDS ignoring conditions: paced per instance",
            (true, false) => "",
        },
        stack.functions.first().map_or(0, Proc::pid),
        stack.base
    );
    let counters = Arc::new(Counters::default());
    let stop = Arc::new(AtomicBool::new(false));
    let gallery = probe_gallery(stack.base, Arc::clone(&stop));
    let first_upload = SystemTime::now();
    let started = Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    let ids = Arc::new(Mutex::new(Vec::new()));
    let uploaders: Vec<_> = (0..UPLOADERS)
        .map(|_| {
            let (next, ids, counters) =
                (Arc::clone(&next), Arc::clone(&ids), Arc::clone(&counters));
            let (photo, addr, images) = (photo.clone(), stack.base, burst.images);
            std::thread::spawn(move || loop {
                let i = next.fetch_add(1, Ordering::SeqCst) as usize;
                if i >= images {
                    return;
                }
                let body = super::unique(&photo, 0, i);
                if let Some(id) =
                    super::upload(addr, &format!("burst-{i:05}.jpg"), &body, &counters)
                {
                    ids.lock().unwrap().push(id);
                }
            })
        })
        .collect();
    let mut reported = 0;
    while uploaders.iter().any(|t| !t.is_finished()) {
        std::thread::sleep(Duration::from_millis(500));
        let done = counters.uploads_acknowledged.load(Ordering::SeqCst);
        if done >= reported + 1000 {
            reported = done;
            println!(
                "loadtest: {done} uploads acknowledged after {:.0} s",
                started.elapsed().as_secs_f64()
            );
        }
    }
    for t in uploaders {
        t.join().map_err(|_| "an upload thread panicked")?;
    }
    let uploaded = started.elapsed();
    let ids = ids.lock().unwrap().clone();
    println!(
        "loadtest: {} uploads acknowledged in {:.1} s ({:.1}/s; {} waits for `503 Busy`)",
        ids.len(),
        uploaded.as_secs_f64(),
        ids.len() as f64 / uploaded.as_secs_f64(),
        counters.upload_busy.load(Ordering::SeqCst)
    );

    // The pipeline drains at Vision's rate: about N ÷ T from the start, plus a margin.
    let minimum = burst.images as f64 / burst.tps;
    let patience = Duration::from_secs_f64(minimum * 2.0 + 300.0);
    let drained = stack.emulator.wait_idle(patience)?;
    let mut view = documents(&stack.soda)?;
    let mut drip_passes = 0;
    let drip_end = Instant::now() + DRIP_TIME;
    // Settled once no image is in flight: `waiting` ones are sent again by the reconciler's
    // drip when due; `analyzing` ones are in a call that waits for its send slot (a drip's
    // invocations among them), which the emulator's idleness does not cover.
    let in_flight = |s: &String| matches!(s.as_str(), "waiting" | "analyzing" | "pending");
    while view.values().any(|(s, _)| in_flight(s)) && Instant::now() < drip_end {
        if view.values().any(|(s, _)| s == "waiting") {
            drip_passes += 1;
            let report = ocivision::web::reconcile(&stack.app).map_err(|e| e.to_string())?;
            println!(
                "loadtest: reconcile pass {drip_passes}: {} waiting images sent again",
                report.invoked.len()
            );
            if !report.invoked.is_empty() {
                stack.emulator.wait_idle(patience)?;
            }
        }
        std::thread::sleep(Duration::from_secs(2));
        view = documents(&stack.soda)?;
    }
    stop.store(true, Ordering::SeqCst);
    let mut gallery = gallery.join().map_err(|_| "the gallery prober panicked")?;
    let (vision_requests, throttled) = stack.emulator.vision_counts()?;

    let mut statuses: HashMap<&str, usize> = HashMap::new();
    for (status, _) in view.values() {
        *statuses.entry(status.as_str()).or_default() += 1;
    }
    let done = statuses.get("done").copied().unwrap_or(0);
    let failed = statuses.get("failed").copied().unwrap_or(0);
    let lost = ids
        .iter()
        .filter(|id| {
            view.get(&format!("uploads/{id}"))
                .is_none_or(|(status, _)| status != "done")
        })
        .count();
    let gave_up = counters.gave_up.load(Ordering::SeqCst);
    let last_done = view.values().filter_map(|(_, at)| *at).max();
    let wall = last_done
        .and_then(|t| t.duration_since(first_upload).ok())
        .unwrap_or_else(|| started.elapsed())
        .as_secs_f64();
    let ratio = wall / minimum;
    let per_image = vision_requests as f64 / burst.images as f64;
    let mut p = |q: f64| support::bench::percentile(&mut gallery, q);
    let (p50, p99, max) = (p(50.0), p(99.0), p(100.0));

    let mut violations = Vec::new();
    if !drained {
        violations.push(format!(
            "the event queue did not drain within {} s",
            patience.as_secs()
        ));
    }
    if failed > 0 {
        violations.push(format!("{failed} documents failed"));
    }
    if gave_up > 0 {
        violations.push(format!(
            "{gave_up} uploads were refused {} times",
            super::MAX_TRIES
        ));
    }
    if lost > 0 {
        violations.push(format!("{lost} acknowledged uploads have no done document"));
    }
    let per_image_bound = if burst.conditions_ignored() {
        MAX_REQUESTS_PER_IMAGE_PER_INSTANCE
    } else {
        MAX_REQUESTS_PER_IMAGE
    };
    if ratio > MAX_RATIO && !burst.conditions_ignored() {
        violations.push(format!(
            "wall time is {ratio:.2}× the minimum (bound {MAX_RATIO})"
        ));
    }
    if per_image > per_image_bound {
        violations.push(format!(
            "{per_image:.2} Vision requests per image (bound {per_image_bound})"
        ));
    }
    violations.extend(stack.exited());
    let mut by_status: Vec<_> = statuses.into_iter().collect();
    by_status.sort();
    println!(
        "\n| figure | value |\n|---|---|\n\
         | uploads acknowledged / in | {} / {:.1} s ({:.1} per second) |\n\
         | documents by status | {by_status:?} |\n\
         | Vision requests / refused with 429 | {vision_requests} / {throttled} |\n\
         | reconcile passes for deferred images | {drip_passes} |\n\
         | gallery page (`GET /`, one a second during the burst): requests, p50 / p99 / max | {} requests, {p50:.1} / {p99:.1} / {max:.1} ms |\n",
        ids.len(),
        uploaded.as_secs_f64(),
        ids.len() as f64 / uploaded.as_secs_f64(),
        gallery.len(),
    );
    for v in &violations {
        println!("violation: {v}");
    }
    if !violations.is_empty() {
        stack.print_log_tails(1);
    }
    println!(
        "burst: {} uploads, {} TPS, {} instances: done {done}, failed {failed}, lost {lost}, \
         wall {wall:.1} s (minimum {minimum:.1} s, ratio {ratio:.3}), vision requests \
         {vision_requests} (per image {per_image:.3})",
        burst.images, burst.tps, burst.instances
    );
    Ok(violations.is_empty())
}
