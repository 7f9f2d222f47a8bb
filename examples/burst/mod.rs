//! `loadtest --burst N [--tps T] [--instances C]`: a photo-library import at cloud scale. N
//! small distinct JPEGs are uploaded through the web app's API as fast as its upload gate
//! allows, against a Vision limited to T requests a second (the emulator's token bucket, 429
//! `TooManyRequests` beyond it) and C function instances (C `func` processes, each on its own
//! socket, events delivered to them C at a time, as OCI Functions scales out). Defaults: 10 TPS
//! (Vision in Ashburn, Phoenix, London) and 50 instances.
//!
//! Processes, as in the other modes: the emulator (`--burst-emulator-child`, with the instant
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

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use ocivision::emulator::iam::Principal;
use ocivision::emulator::secrets::SecretEntry;
use ocivision::emulator::{Emulator, EmulatorConfig, DEV_KEY_PEM};
use ocivision::local::FUNCTION_ID;
use ocivision::oci::auth::ConfigFileProvider;
use ocivision::oci::client::{Auth, Transport, TransportConfig};
use ocivision::oci::functions::Functions;
use ocivision::oci::object_storage::{Bucket, ObjectStorage};
use ocivision::oci::secrets::Secrets;
use ocivision::oci::sign::PrivateKey;
use ocivision::soda::{Password, Soda, SodaConfig};
use ocivision::web::{App, Invoker, Settings};

use super::{common, Counters, EmulatorProc, Proc, CHECKER, COMPARTMENT, SECRET_ID, TENANCY, USER};

/// Clients uploading at once: enough to keep the upload gate busy (a `503 Busy` is waited out
/// as in the other modes).
const UPLOADERS: usize = 8;
/// The bounds the run must meet (issue 17).
const MAX_RATIO: f64 = 1.25;
const MAX_REQUESTS_PER_IMAGE: f64 = 1.2;
/// How long deferred images are sent again for, after the event queue drained.
const DRIP_TIME: Duration = Duration::from_secs(600);

/// What `--burst` asks for.
struct BurstArgs {
    images: usize,
    tps: f64,
    instances: usize,
    /// The functions' `VISION_TPS`: the limit, or 0 with `--unpaced`.
    paced_tps: f64,
}

/// Runs the burst mode or its emulator child when `args` ask for it; the exit code, or `None`
/// for the other modes.
pub fn dispatch(args: &[String]) -> Option<i32> {
    if let [flag, dir, tps, instances] = args {
        if flag == "--burst-emulator-child" {
            let tps = tps.parse().unwrap_or(10.0);
            let instances = instances.parse().unwrap_or(1);
            return Some(match emulator_child(Path::new(dir), tps, instances) {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("loadtest burst emulator: {e}");
                    2
                }
            });
        }
    }
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
    };
    if burst.images == 0 || burst.tps <= 0.0 || burst.instances == 0 {
        eprintln!("usage: loadtest --burst N [--tps T] [--instances C] [--unpaced] (all positive)");
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

/// The emulator in its own process, with Vision limited to `tps` and events delivered to
/// `instances` function sockets (`run/{i}/lsnr.sock`). Its stdin takes `idle SECONDS` and
/// `vision`; each answers one line.
fn emulator_child(dir: &Path, tps: f64, instances: usize) -> Result<(), String> {
    let err = |e: ocivision::Error| e.to_string();
    let mut config = EmulatorConfig::new(dir.join("data"));
    config.secrets.push(SecretEntry {
        id: SECRET_ID.into(),
        name: "db".into(),
        vault_id: "ocid1.vault.oc1..loadtest".into(),
        value: config.ords_password.clone(),
    });
    config.compartment_id = COMPARTMENT.into();
    config.record_limit = 0;
    config.vision_tps = Some(tps);
    config.function_instances = instances;
    let emulator = Emulator::start(config).map_err(err)?;
    emulator.set_detector(Some(Arc::new(common::InstantDetector)));
    let key = PrivateKey::from_pem(DEV_KEY_PEM, "dev-key.pem").map_err(err)?;
    emulator.trust_api_key_as(
        &format!("{TENANCY}/{USER}/{}", key.fingerprint()),
        &key,
        emulator.web_app_principal(),
    );
    emulator.trust_api_key_as(
        &format!("{TENANCY}/{CHECKER}/{}", key.fingerprint()),
        &key,
        Principal::administrator(CHECKER),
    );
    let run = dir.join("run");
    std::fs::create_dir_all(&run).map_err(|e| e.to_string())?;
    let token = emulator.mint_token(&key, FUNCTION_ID, Duration::from_secs(24 * 3600));
    std::fs::write(run.join("rpst"), token).map_err(|e| e.to_string())?;
    let sockets = (0..instances).map(|i| socket(&run, i)).collect();
    emulator.register_function_instances(FUNCTION_ID, sockets, true);
    let mut out = std::io::stdout().lock();
    let mut say = |line: String| -> Result<(), String> {
        writeln!(out, "{line}")
            .and_then(|_| out.flush())
            .map_err(|e| e.to_string())
    };
    say(format!("ready {}", emulator.base_url()))?;
    for line in std::io::stdin().lock().lines() {
        let line = line.map_err(|e| e.to_string())?;
        let (command, rest) = line.split_once(' ').unwrap_or((line.as_str(), ""));
        let answer = match command {
            "idle" => {
                let secs = rest.parse().unwrap_or(60);
                let idle = emulator.events().wait_idle(Duration::from_secs(secs));
                format!("idle {idle}")
            }
            "vision" => {
                let counts = emulator.vision_counts();
                format!("vision {} {}", counts.requests, counts.throttled)
            }
            other => format!("unknown {other}"),
        };
        say(answer)?;
    }
    Ok(())
}

/// Function instance `i`'s socket.
fn socket(run: &Path, i: usize) -> PathBuf {
    run.join(i.to_string()).join("lsnr.sock")
}

fn start_emulator(dir: &Path, burst: &BurstArgs) -> Result<EmulatorProc, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let log = dir.join("emulator.log");
    let file = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    let mut child = Command::new(&exe)
        .arg("--burst-emulator-child")
        .arg(dir)
        .arg(burst.tps.to_string())
        .arg(burst.instances.to_string())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("LOG_LEVEL", "error")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(file)
        .spawn()
        .map_err(|e| format!("{}: {e}", exe.display()))?;
    let input = child.stdin.take().ok_or("no stdin")?;
    let output = BufReader::new(child.stdout.take().ok_or("no stdout")?);
    let mut emulator = EmulatorProc {
        proc: Proc {
            name: "emulator",
            child,
            log,
        },
        input,
        output,
        base_url: String::new(),
    };
    let ready = emulator.read_line()?;
    emulator.base_url = ready
        .strip_prefix("ready ")
        .ok_or_else(|| format!("emulator: {ready:?}\n{}", emulator.proc.log_tail(20)))?
        .to_string();
    Ok(emulator)
}

/// Vision requests so far and how many the limit refused.
fn vision_counts(emulator: &mut EmulatorProc) -> Result<(u64, u64), String> {
    let answer = emulator.ask("vision")?;
    let numbers: Vec<u64> = answer
        .split_whitespace()
        .skip(1)
        .filter_map(|n| n.parse().ok())
        .collect();
    match numbers.as_slice() {
        [requests, throttled] => Ok((*requests, *throttled)),
        _ => Err(format!("emulator: {answer:?}")),
    }
}

struct Stack {
    // Declared first, so they are stopped before the emulator they call.
    webapp: Proc,
    functions: Vec<Proc>,
    emulator: EmulatorProc,
    app: Arc<App>,
    base: SocketAddr,
    soda: Soda,
}

fn start(dir: &Path, burst: &BurstArgs) -> Result<Stack, String> {
    let (webapp_exe, func_exe) = super::binaries()?;
    let err = |e: ocivision::Error| e.to_string();
    let emulator = start_emulator(dir, burst)?;
    let key = PrivateKey::from_pem(DEV_KEY_PEM, "dev-key.pem").map_err(err)?;
    let base = emulator.base_url.clone();
    let namespace = EmulatorConfig::new(dir).namespace;
    let key_file = dir.join("api-key.pem");
    std::fs::write(&key_file, DEV_KEY_PEM).map_err(|e| e.to_string())?;
    let config_file = |user: &str, name: &str| -> Result<PathBuf, String> {
        let path = dir.join(name);
        std::fs::write(
            &path,
            format!(
                "[DEFAULT]\nuser={user}\ntenancy={TENANCY}\nfingerprint={}\nkey_file={}\nregion=us-ashburn-1\n",
                key.fingerprint(),
                key_file.display()
            ),
        )
        .map_err(|e| e.to_string())?;
        Ok(path)
    };
    let webapp_config = config_file(USER, "oci-config")?;
    let checker_config = config_file(CHECKER, "oci-config-checker")?;
    let shared = |extra: &[(&'static str, String)]| -> Vec<(&'static str, String)> {
        let mut vars = vec![
            ("OCIVISION_OBJECTSTORAGE_URL", base.clone()),
            ("OCIVISION_VISION_URL", base.clone()),
            ("OCIVISION_SECRETS_URL", base.clone()),
            ("BUCKET_NAME", "images".into()),
            ("DB_ORDS_BASE_URL", format!("{base}/ords/")),
            ("DB_PASSWORD_SECRET_OCID", SECRET_ID.into()),
        ];
        vars.extend_from_slice(extra);
        vars
    };

    // C function instances, each as the Fn agent starts one, on its own socket.
    let run = dir.join("run");
    std::fs::write(run.join("private.pem"), DEV_KEY_PEM).map_err(|e| e.to_string())?;
    let mut functions = Vec::new();
    for i in 0..burst.instances {
        let socket = socket(&run, i);
        let home = socket.parent().ok_or("no socket directory")?.to_path_buf();
        std::fs::create_dir_all(&home).map_err(|e| e.to_string())?;
        functions.push(Proc::spawn(
            "func",
            &func_exe,
            &shared(&[
                ("FN_LISTENER", format!("unix:{}", socket.display())),
                ("FN_FORMAT", "http-stream".into()),
                ("OCI_RESOURCE_PRINCIPAL_VERSION", "2.2".into()),
                (
                    "OCI_RESOURCE_PRINCIPAL_RPST",
                    run.join("rpst").display().to_string(),
                ),
                (
                    "OCI_RESOURCE_PRINCIPAL_PRIVATE_PEM",
                    run.join("private.pem").display().to_string(),
                ),
                ("OCI_RESOURCE_PRINCIPAL_REGION", "us-ashburn-1".into()),
                ("VISION_TPS", burst.paced_tps.to_string()),
                ("LOG_LEVEL", "warn".into()),
            ]),
            &home,
        )?);
    }
    for (i, function) in functions.iter_mut().enumerate() {
        let socket = socket(&run, i);
        function.wait_for(Duration::from_secs(30), || {
            std::fs::symlink_metadata(&socket).ok()
        })?;
    }

    let mut webapp = Proc::spawn(
        "webapp",
        &webapp_exe,
        &shared(&[
            ("OCIVISION_MODE", "cloud".into()),
            ("OCI_CONFIG_FILE", webapp_config.display().to_string()),
            ("OS_NAMESPACE", namespace.clone()),
            ("COMPARTMENT_ID", COMPARTMENT.into()),
            ("FUNCTION_ID", FUNCTION_ID.into()),
            ("FUNCTION_INVOKE_ENDPOINT", base.clone()),
            ("BIND", "127.0.0.1".into()),
            ("PORT", "0".into()),
            ("LOG_LEVEL", "info".into()),
        ]),
        dir,
    )?;
    let log = webapp.log.clone();
    let addr = webapp.wait_for(Duration::from_secs(30), || {
        let text = std::fs::read_to_string(&log).ok()?;
        let rest = text.split("listening on http://").nth(1)?;
        rest.lines().next()?.trim().parse::<SocketAddr>().ok()
    })?;

    let provider = ConfigFileProvider::from_file(&checker_config, "DEFAULT", None).map_err(err)?;
    let transport = Transport::new(Auth::Oci(Arc::new(provider)), TransportConfig::default());
    let deadline = Instant::now() + Duration::from_secs(10);
    let secrets = Secrets::new(transport.clone(), &base);
    let soda_config = SodaConfig {
        base_url: format!("{base}/ords/"),
        schema: "admin".into(),
        collection: "IMAGE_ANALYSIS".into(),
        user: "ADMIN".into(),
        password: Password::SecretId(SECRET_ID.into()),
    };
    let soda = Soda::connect(&transport, &soda_config, Some(&secrets), deadline).map_err(err)?;
    soda.ensure_collection(deadline).map_err(err)?;
    let bucket = Bucket {
        namespace,
        name: "images".into(),
    };
    let settings = Settings {
        reconcile_grace: Duration::ZERO,
        ..Settings::default()
    };
    let app = Arc::new(App::new(
        ObjectStorage::new(transport.clone(), &base),
        bucket,
        Soda::connect(&transport, &soda_config, Some(&secrets), deadline).map_err(err)?,
        Some(Invoker {
            client: Functions::new(transport.clone(), &base),
            function_id: FUNCTION_ID.into(),
            compartment_id: COMPARTMENT.into(),
        }),
        settings,
    ));
    Ok(Stack {
        webapp,
        functions,
        emulator,
        app,
        base: addr,
        soda,
    })
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
            match common::request(addr, "GET", "/", &[], b"", Duration::from_secs(60)) {
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
            .and_then(ocivision::timefmt::parse);
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
        if burst.paced_tps > 0.0 { "" } else { ", unpaced" },
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
    while view.values().any(|(s, _)| s == "waiting") && Instant::now() < drip_end {
        // Images the function deferred: the reconciler's drip sends them again when due.
        drip_passes += 1;
        let report = ocivision::web::reconcile(&stack.app).map_err(|e| e.to_string())?;
        println!(
            "loadtest: reconcile pass {drip_passes}: {} waiting images sent again",
            report.invoked.len()
        );
        if report.invoked.is_empty() {
            std::thread::sleep(Duration::from_secs(2));
        }
        stack.emulator.wait_idle(patience)?;
        view = documents(&stack.soda)?;
    }
    stop.store(true, Ordering::SeqCst);
    let mut gallery = gallery.join().map_err(|_| "the gallery prober panicked")?;
    let (vision_requests, throttled) = vision_counts(&mut stack.emulator)?;

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
    let mut p = |q: f64| common::percentile(&mut gallery, q);
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
    if ratio > MAX_RATIO {
        violations.push(format!(
            "wall time is {ratio:.2}× the minimum (bound {MAX_RATIO})"
        ));
    }
    if per_image > MAX_REQUESTS_PER_IMAGE {
        violations.push(format!(
            "{per_image:.2} Vision requests per image (bound {MAX_REQUESTS_PER_IMAGE})"
        ));
    }
    for child in stack
        .functions
        .iter_mut()
        .chain([&mut stack.webapp, &mut stack.emulator.proc])
    {
        if let Some(how) = child.exited() {
            violations.push(format!("{} exited during the run ({how})", child.name));
        }
    }
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
        for child in [&stack.webapp, &stack.emulator.proc]
            .into_iter()
            .chain(stack.functions.iter().take(1))
        {
            println!(
                "--- last lines of {} ---\n{}",
                child.log.display(),
                child.log_tail(20)
            );
        }
    }
    println!(
        "burst: {} uploads, {} TPS, {} instances: done {done}, failed {failed}, lost {lost}, \
         wall {wall:.1} s (minimum {minimum:.1} s, ratio {ratio:.3}), vision requests \
         {vision_requests} (per image {per_image:.3})",
        burst.images, burst.tps, burst.instances
    );
    Ok(violations.is_empty())
}
