//! `loadtest`: the whole pipeline under load and injected faults, then a check that nothing
//! was lost, duplicated or left half-done.
//!
//! `cargo run --release --bin loadtest -- --short` (CI; a few minutes) or `-- --soak SECONDS`
//! (repeats the workload until the time is up and writes docs/RELIABILITY.md). Everything runs
//! in this process on 127.0.0.1: the emulator with a detector that answers at once, the
//! function (`Analyzer::from_lookup` with a resource principal minted by the emulator, behind
//! the Fn contract on a unix socket, receiving the emulator's events), and the web app (`App`
//! served over TCP, OCI-signed clients pointed at the emulator).
//!
//! The workload: 16 clients upload distinct JPEGs with `PUT /api/images/{name}` (200 per round)
//! while Object Storage, Vision and SODA answer 30 % of requests with 429 or 503, and events
//! are duplicated, delayed and reordered; about one upload in five is deleted right after it
//! is acknowledged, racing its analysis. A client whose upload or delete gets an error tries
//! again, as a person would, and the retries are counted. Then the faults stop, one reconcile
//! runs, and the checks: every acknowledged, undeleted upload is an object with exactly one
//! `done` document; deleted uploads have neither; no document is `pending` or `analyzing`; no
//! document lacks its object; the process's RSS stayed bounded. Any violation exits 1.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ocivision::emulator::faults::FaultPlan;
use ocivision::emulator::secrets::SecretEntry;
use ocivision::emulator::vision::Detector;
use ocivision::emulator::{Emulator, EmulatorConfig, DEV_KEY_PEM};
use ocivision::fdk::FnServer;
use ocivision::oci::auth::ConfigFileProvider;
use ocivision::oci::client::{Auth, Transport, TransportConfig};
use ocivision::oci::functions::Functions;
use ocivision::oci::object_storage::{Bucket, ListOptions, ObjectStorage};
use ocivision::oci::secrets::Secrets;
use ocivision::oci::sign::PrivateKey;
use ocivision::oci::vision::{BoundingPolygon, ImageObject, Vertex};
use ocivision::soda::{Password, Soda, SodaConfig};
use ocivision::web::{App, Invoker, Settings};

use ocivision::local::FUNCTION_ID;
const SECRET_ID: &str = "ocid1.vaultsecret.oc1..loadtest-db";
const TENANCY: &str = "ocid1.tenancy.oc1..loadtest";
const USER: &str = "ocid1.user.oc1..loadtest";
const CLIENTS: usize = 16;
const UPLOADS_PER_ROUND: usize = 200;
/// The faults of the run: 30 % errors on the three services the pipeline writes through, and
/// every event fault the emulator has except loss (a lost event is the reconciler's job, and
/// is covered by the final reconcile anyway).
const FAULTS: &str = "objectstorage=rate:0.3,status:503;vision=rate:0.3,status:429;\
                      soda=rate:0.3,status:503;events=duplicate:0.5,delay:200ms,reorder:true";
/// RSS ceiling for the whole process (emulator, function and web app together).
const MAX_RSS_MB: f64 = 512.0;
/// A photo is at most this many times uploaded before the suite gives up on it.
const MAX_TRIES: u32 = 60;

/// Answers at once with one fixed object, so the run measures the pipeline, not a model.
struct FixedDetector;

impl Detector for FixedDetector {
    fn detect(&self, _: &[u8], max: usize) -> Result<Vec<ImageObject>, String> {
        let mut objects = vec![ImageObject {
            name: "Dog".into(),
            confidence: 0.9,
            bounding_polygon: BoundingPolygon {
                normalized_vertices: vec![
                    Vertex { x: 0.1, y: 0.1 },
                    Vertex { x: 0.5, y: 0.1 },
                    Vertex { x: 0.5, y: 0.5 },
                    Vertex { x: 0.1, y: 0.5 },
                ],
            },
        }];
        objects.truncate(max);
        Ok(objects)
    }

    fn model_version(&self) -> String {
        "loadtest-fixed".into()
    }
}

#[derive(Default)]
struct Counters {
    uploads_acknowledged: AtomicU64,
    upload_retries: AtomicU64,
    upload_busy: AtomicU64,
    upload_duplicates: AtomicU64,
    deletes: AtomicU64,
    delete_retries: AtomicU64,
    gave_up: AtomicU64,
}

/// What happened to one photo, as its client saw it.
#[derive(Debug, Clone)]
struct Outcome {
    id: String,
    deleted: bool,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let soak = args.iter().position(|a| a == "--soak").map(|i| {
        args.get(i + 1)
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(600)
    });
    if soak.is_none() && !args.iter().any(|a| a == "--short") {
        eprintln!("usage: loadtest --short | loadtest --soak SECONDS");
        std::process::exit(2);
    }
    let dir = std::env::temp_dir().join(format!("ocivision-loadtest-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let result = run(&dir, soak);
    let _ = std::fs::remove_dir_all(&dir);
    match result {
        Ok(true) => println!("loadtest: all checks passed"),
        Ok(false) => {
            println!("loadtest: FAILED (violations above)");
            std::process::exit(1);
        }
        Err(e) => {
            eprintln!("loadtest: {e}");
            std::process::exit(2);
        }
    }
}

struct Stack {
    emulator: Emulator,
    app: Arc<App>,
    base: SocketAddr,
    storage: ObjectStorage,
    bucket: Bucket,
    soda: Soda,
    // Kept alive for the run.
    _function: FnServer,
    _server: ocivision::http::Server,
}

fn start(dir: &Path) -> Result<Stack, String> {
    let err = |e: ocivision::Error| e.to_string();
    let mut config = EmulatorConfig::new(dir.join("data"));
    config.secrets.push(SecretEntry {
        id: SECRET_ID.into(),
        name: "db".into(),
        vault_id: "ocid1.vault.oc1..loadtest".into(),
        value: config.ords_password.clone(),
    });
    let emulator = Emulator::start(config).map_err(err)?;
    emulator.set_detector(Some(Arc::new(FixedDetector)));
    let key = PrivateKey::from_pem(DEV_KEY_PEM, "dev-key.pem").map_err(err)?;
    emulator.trust_api_key(&format!("{TENANCY}/{USER}/{}", key.fingerprint()), &key);
    let base = emulator.base_url().to_string();

    // The web app's credentials: an API key in an OCI config file, as on a laptop.
    let key_file = dir.join("api-key.pem");
    let config_file = dir.join("oci-config");
    std::fs::write(&key_file, DEV_KEY_PEM).map_err(|e| e.to_string())?;
    std::fs::write(
        &config_file,
        format!(
            "[DEFAULT]\nuser={USER}\ntenancy={TENANCY}\nfingerprint={}\nkey_file={}\nregion=us-ashburn-1\n",
            key.fingerprint(),
            key_file.display()
        ),
    )
    .map_err(|e| e.to_string())?;
    let provider = ConfigFileProvider::from_file(&config_file, "DEFAULT", None).map_err(err)?;
    // The web app's production retry policy (8 attempts, 1 s base backoff).
    let transport = Transport::new(Auth::Oci(Arc::new(provider)), TransportConfig::default());

    // The function, with a resource principal the emulator minted.
    let run = dir.join("run");
    std::fs::create_dir_all(&run).map_err(|e| e.to_string())?;
    std::fs::write(run.join("private.pem"), DEV_KEY_PEM).map_err(|e| e.to_string())?;
    let function = ocivision::local::serve_function(
        &emulator,
        &run,
        &run.join("private.pem"),
        &key,
        SECRET_ID,
        Duration::from_secs(24 * 3600),
    )
    .map_err(err)?;

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
        namespace: emulator.namespace().into(),
        name: "images".into(),
    };
    let storage = ObjectStorage::new(transport.clone(), &base);
    let settings = Settings {
        // The run is minutes long: the final reconcile must not wait out the 5 min grace.
        reconcile_grace: Duration::ZERO,
        stuck_after: Duration::ZERO,
        ..Settings::default()
    };
    let app = Arc::new(App::new(
        storage.clone(),
        bucket.clone(),
        Soda::connect(&transport, &soda_config, Some(&secrets), deadline).map_err(err)?,
        Some(Invoker {
            client: Functions::new(transport.clone(), &base),
            function_id: FUNCTION_ID.into(),
            compartment_id: "ocid1.compartment.oc1..loadtest".into(),
        }),
        settings,
    ));
    let server =
        ocivision::web::serve(Arc::clone(&app), "127.0.0.1:0".parse().unwrap()).map_err(err)?;
    let addr = server.tcp_addr().ok_or("the web app has no TCP address")?;
    Ok(Stack {
        emulator,
        app,
        base: addr,
        storage,
        bucket,
        soda,
        _function: function,
        _server: server,
    })
}

fn run(dir: &Path, soak: Option<u64>) -> Result<bool, String> {
    let started = Instant::now();
    let stack = start(dir)?;
    let rss = RssSampler::start();
    let photos = photos()?;
    let counters = Arc::new(Counters::default());
    stack
        .emulator
        .set_faults(FaultPlan::parse(FAULTS).map_err(|e| e.to_string())?);
    println!(
        "loadtest: {} clients, {} uploads per round, faults {FAULTS}",
        CLIENTS, UPLOADS_PER_ROUND
    );

    let mut outcomes = Vec::new();
    let mut rounds = 0;
    let workload_started = Instant::now();
    loop {
        let round_started = Instant::now();
        outcomes.extend(round(&stack, rounds, &photos, &counters)?);
        rounds += 1;
        println!(
            "loadtest: round {rounds} done in {:.1} s ({} uploads acknowledged so far, RSS {:.1} MB)",
            round_started.elapsed().as_secs_f64(),
            counters.uploads_acknowledged.load(Ordering::SeqCst),
            rss.current_mb()
        );
        match soak {
            Some(secs) if workload_started.elapsed() < Duration::from_secs(secs) => {
                // The function works through events one at a time, slower than 16 clients
                // upload: let each round's events drain so the backlog stays bounded.
                if !stack.emulator.events().wait_idle(Duration::from_secs(600)) {
                    return Err("the event queue did not drain within 600 s".into());
                }
            }
            _ => break,
        }
    }
    let workload = workload_started.elapsed();

    // Let the event queue drain under faults, then stop them and repair.
    let drained = stack.emulator.events().wait_idle(Duration::from_secs(120));
    stack.emulator.set_faults(FaultPlan::default());
    let reconcile_started = Instant::now();
    let report = ocivision::web::reconcile(&stack.app).map_err(|e| e.to_string())?;
    let reconcile_time = reconcile_started.elapsed();
    stack.emulator.events().wait_idle(Duration::from_secs(60));

    let mut violations = Vec::new();
    if !drained {
        violations.push("the event queue did not drain within 120 s".to_string());
    }
    let view = wait_settled(&stack, Duration::from_secs(60))?;
    check(&view, &outcomes, &mut violations);
    let gave_up = counters.gave_up.load(Ordering::SeqCst);
    if gave_up > 0 {
        violations.push(format!(
            "{gave_up} uploads or deletes failed {MAX_TRIES} times"
        ));
    }
    let (rss_start, rss_peak, rss_end, rss_late_growth) = rss.stop();
    if rss_peak > MAX_RSS_MB {
        violations.push(format!("peak RSS {rss_peak:.1} MB is over {MAX_RSS_MB} MB"));
    }

    let deliveries = stack.emulator.events().deliveries();
    let duplicates = deliveries.len().saturating_sub(
        deliveries
            .iter()
            .map(|d| d.event_id.as_str())
            .collect::<std::collections::HashSet<_>>()
            .len(),
    );
    let c = |a: &AtomicU64| a.load(Ordering::SeqCst);
    let deleted = outcomes.iter().filter(|o| o.deleted).count();
    let rows: Vec<(&str, String)> = vec![
        (
            "mode",
            match soak {
                Some(s) => format!("soak {s} s"),
                None => "short".into(),
            },
        ),
        (
            "rounds × uploads",
            format!("{rounds} × {UPLOADS_PER_ROUND}"),
        ),
        ("clients", CLIENTS.to_string()),
        ("faults", format!("`{FAULTS}`")),
        ("workload time", format!("{:.1} s", workload.as_secs_f64())),
        (
            "uploads acknowledged / per second",
            format!(
                "{} / {:.1}",
                c(&counters.uploads_acknowledged),
                c(&counters.uploads_acknowledged) as f64 / workload.as_secs_f64()
            ),
        ),
        (
            "upload retries after an error answer (5xx other than busy)",
            c(&counters.upload_retries).to_string(),
        ),
        (
            "upload retries after `503 busy` (3 uploads at once)",
            c(&counters.upload_busy).to_string(),
        ),
        (
            "uploads answered `duplicate_of` (an earlier failed-looking try had stored it)",
            c(&counters.upload_duplicates).to_string(),
        ),
        ("deletes racing analyses", deleted.to_string()),
        ("delete retries", c(&counters.delete_retries).to_string()),
        (
            "event deliveries / duplicated",
            format!("{} / {duplicates}", deliveries.len()),
        ),
        (
            "reconcile: removed / created / invoked / failed-stuck / errors",
            format!(
                "{} / {} / {} / {} / {} ({:.1} s)",
                report.removed_documents.len(),
                report.created_documents.len(),
                report.invoked.len(),
                report.failed_stuck.len(),
                report.errors.len(),
                reconcile_time.as_secs_f64()
            ),
        ),
        (
            "objects / documents at the end",
            format!("{} / {}", view.objects.len(), view.documents.len()),
        ),
        ("documents by status", format!("{:?}", view.statuses())),
        (
            "RSS of the process: start / peak / end",
            format!("{rss_start:.1} / {rss_peak:.1} / {rss_end:.1} MB"),
        ),
        (
            "RSS growth over the last half of the run",
            format!("{rss_late_growth:+.1} MB"),
        ),
        ("violations", violations.len().to_string()),
        (
            "total time",
            format!("{:.1} s", started.elapsed().as_secs_f64()),
        ),
    ];
    let mut table = String::from("| figure | value |\n|---|---|\n");
    for (k, v) in &rows {
        table.push_str(&format!("| {k} | {v} |\n"));
    }
    println!("\n{table}");
    for v in &violations {
        println!("violation: {v}");
    }
    if let Some(secs) = soak {
        write_reliability(secs, &table, &violations)?;
    }
    Ok(violations.is_empty())
}

/// One round: `UPLOADS_PER_ROUND` photos over `CLIENTS` threads; every fifth is deleted soon
/// after it is acknowledged.
fn round(
    stack: &Stack,
    round: usize,
    photos: &[Vec<u8>],
    counters: &Arc<Counters>,
) -> Result<Vec<Outcome>, String> {
    let next = Arc::new(AtomicU64::new(0));
    let results = Arc::new(Mutex::new(Vec::new()));
    let threads: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let next = Arc::clone(&next);
            let results = Arc::clone(&results);
            let counters = Arc::clone(counters);
            let photos = photos.to_vec();
            let addr = stack.base;
            std::thread::spawn(move || loop {
                let i = next.fetch_add(1, Ordering::SeqCst) as usize;
                if i >= UPLOADS_PER_ROUND {
                    return;
                }
                let body = unique(&photos[i % photos.len()], round, i);
                let name = format!("r{round}-{i:04}.jpg");
                let Some(id) = upload(addr, &name, &body, &counters) else {
                    continue;
                };
                let deleted = i % 5 == 0;
                if deleted {
                    // Soon after the upload: while its event is delayed or being analysed.
                    std::thread::sleep(Duration::from_millis((i as u64 * 37) % 150));
                    delete(addr, &id, &counters);
                }
                results.lock().unwrap().push(Outcome { id, deleted });
            })
        })
        .collect();
    for t in threads {
        t.join().map_err(|_| "a client thread panicked")?;
    }
    let results = results.lock().unwrap().clone();
    Ok(results)
}

/// Uploads until the app acknowledges; the id it names, or `None` after `MAX_TRIES`.
fn upload(addr: SocketAddr, name: &str, body: &[u8], counters: &Counters) -> Option<String> {
    let started = Instant::now();
    let mut tries = 0;
    while tries < MAX_TRIES {
        tries += 1;
        match http(addr, "PUT", &format!("/api/images/{name}"), body) {
            Ok((201, reply)) => {
                counters.uploads_acknowledged.fetch_add(1, Ordering::SeqCst);
                return reply["id"].as_str().map(str::to_string);
            }
            Ok((200, reply)) if reply["duplicate_of"]["id"].is_string() => {
                // An earlier try stored it but its answer was an error: the same content is
                // already there, under that id.
                counters.uploads_acknowledged.fetch_add(1, Ordering::SeqCst);
                counters.upload_duplicates.fetch_add(1, Ordering::SeqCst);
                return reply["duplicate_of"]["id"].as_str().map(str::to_string);
            }
            Ok((503, reply)) if reply["error"].as_str().is_some_and(|e| e.contains("Busy")) => {
                // The gate, not a failure: wait and try again without spending a try (a
                // person would wait the Retry-After; 16 clients share 3 slots here).
                counters.upload_busy.fetch_add(1, Ordering::SeqCst);
                if started.elapsed() > Duration::from_secs(120) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
                tries -= 1;
            }
            Ok((status, reply)) => {
                counters.upload_retries.fetch_add(1, Ordering::SeqCst);
                if status < 500 {
                    eprintln!("loadtest: upload {name} answered {status}: {reply}");
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => {
                counters.upload_retries.fetch_add(1, Ordering::SeqCst);
                eprintln!("loadtest: upload {name}: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
    counters.gave_up.fetch_add(1, Ordering::SeqCst);
    None
}

fn delete(addr: SocketAddr, id: &str, counters: &Counters) {
    for _ in 0..MAX_TRIES {
        match http(addr, "DELETE", &format!("/api/images/{id}"), b"") {
            Ok((200, _)) | Ok((404, _)) => {
                counters.deletes.fetch_add(1, Ordering::SeqCst);
                return;
            }
            Ok(_) | Err(_) => {
                counters.delete_retries.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
    counters.gave_up.fetch_add(1, Ordering::SeqCst);
}

/// One request on a fresh connection; the status and the JSON body (null when not JSON).
fn http(
    addr: SocketAddr,
    method: &str,
    target: &str,
    body: &[u8],
) -> std::io::Result<(u16, serde_json::Value)> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(120)))?;
    let head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply)?;
    let text = String::from_utf8_lossy(&reply);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status line: {:.80}", text)))?;
    let json = text
        .split_once("\r\n\r\n")
        .and_then(|(_, b)| serde_json::from_str(b).ok())
        .unwrap_or(serde_json::Value::Null);
    Ok((status, json))
}

/// The JPEG fixtures.
fn photos() -> Result<Vec<Vec<u8>>, String> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/photos");
    ["dog.jpg", "horses.jpg", "person.jpg"]
        .iter()
        .map(|n| std::fs::read(dir.join(n)).map_err(|e| format!("{n}: {e}")))
        .collect()
}

/// `photo` with a JPEG comment segment after SOI naming the round and index, so every upload
/// has its own content (the app stores identical content once).
fn unique(photo: &[u8], round: usize, i: usize) -> Vec<u8> {
    let text = format!("loadtest {round} {i}");
    let len = (text.len() + 2) as u16;
    let mut out = Vec::with_capacity(photo.len() + text.len() + 4);
    out.extend_from_slice(&photo[..2]);
    out.extend_from_slice(&[0xFF, 0xFE]);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(&photo[2..]);
    out
}

/// Objects and documents as the services hold them.
struct View {
    /// Object names under `uploads/`.
    objects: Vec<String>,
    /// Document status by object name, one entry per document.
    documents: Vec<(String, String)>,
}

impl View {
    fn statuses(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for (_, s) in &self.documents {
            *out.entry(s.clone()).or_insert(0) += 1;
        }
        out
    }
}

fn read_view(stack: &Stack) -> Result<View, String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let objects = stack
        .storage
        .list(
            &stack.bucket,
            ListOptions {
                prefix: Some("uploads/".into()),
                ..ListOptions::default()
            },
            deadline,
        )
        .map(|o| o.map(|o| o.name))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let documents = stack
        .soda
        .list(deadline)
        .map(|d| {
            d.map(|d| {
                (
                    d.value["image_name"].as_str().unwrap_or("").to_string(),
                    d.value["status"].as_str().unwrap_or("").to_string(),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    Ok(View { objects, documents })
}

/// The view once no document is `pending` or `analyzing` (re-analyses the reconcile started
/// may still be running), or the last one read after `timeout`.
fn wait_settled(stack: &Stack, timeout: Duration) -> Result<View, String> {
    let end = Instant::now() + timeout;
    loop {
        let view = read_view(stack)?;
        let busy = view
            .documents
            .iter()
            .any(|(_, s)| s == "pending" || s == "analyzing");
        if !busy || Instant::now() > end {
            return Ok(view);
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn check(view: &View, outcomes: &[Outcome], violations: &mut Vec<String>) {
    let objects: std::collections::HashSet<&str> =
        view.objects.iter().map(|s| s.as_str()).collect();
    let mut documents: HashMap<&str, Vec<&str>> = HashMap::new();
    for (name, status) in &view.documents {
        documents
            .entry(name.as_str())
            .or_default()
            .push(status.as_str());
    }
    let mut report = |what: String| {
        if violations.len() < 50 {
            violations.push(what);
        }
    };
    for o in outcomes {
        let name = format!("uploads/{}", o.id);
        let docs = documents.get(name.as_str()).cloned().unwrap_or_default();
        if o.deleted {
            if objects.contains(name.as_str()) {
                report(format!("{name}: deleted, but the object is still there"));
            }
            if !docs.is_empty() {
                report(format!("{name}: deleted, but has documents {docs:?}"));
            }
        } else {
            if !objects.contains(name.as_str()) {
                report(format!("{name}: acknowledged upload lost (no object)"));
            }
            if docs != ["done"] {
                report(format!(
                    "{name}: documents {docs:?}, expected exactly one done"
                ));
            }
        }
    }
    for (name, statuses) in &documents {
        if !objects.contains(name) {
            report(format!("{name}: documents {statuses:?} without an object"));
        }
        if statuses
            .iter()
            .any(|s| *s == "pending" || *s == "analyzing")
        {
            report(format!("{name}: stuck {statuses:?}"));
        }
    }
    let known: std::collections::HashSet<String> = outcomes
        .iter()
        .map(|o| format!("uploads/{}", o.id))
        .collect();
    for name in &view.objects {
        if !known.contains(name) {
            report(format!("{name}: an object no client was told about"));
        }
    }
}

/// Samples this process's VmRSS every 200 ms.
struct RssSampler {
    samples: Arc<Mutex<Vec<f64>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RssSampler {
    fn start() -> RssSampler {
        let samples = Arc::new(Mutex::new(vec![rss_mb()]));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let samples = Arc::clone(&samples);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(200));
                    samples.lock().unwrap().push(rss_mb());
                }
            })
        };
        RssSampler {
            samples,
            stop,
            thread: Some(thread),
        }
    }

    fn current_mb(&self) -> f64 {
        rss_mb()
    }

    /// Start, peak, end, and the end minus the sample halfway through.
    fn stop(mut self) -> (f64, f64, f64, f64) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let s = self.samples.lock().unwrap();
        let peak = s.iter().cloned().fold(0.0, f64::max);
        let end = *s.last().unwrap_or(&0.0);
        (s[0], peak, end, end - s[s.len() / 2])
    }
}

fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map(|kib| kib / 1024.0)
        .unwrap_or(0.0)
}

fn write_reliability(secs: u64, table: &str, violations: &[String]) -> Result<(), String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/RELIABILITY.md");
    let date = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let verdict = if violations.is_empty() {
        "No violation.".to_string()
    } else {
        format!("Violations:\n\n- {}\n", violations.join("\n- "))
    };
    let text = format!(
        "# Reliability\n\nWritten by `cargo run --release --bin loadtest -- --soak {secs}` on {date}\n\
         (src/bin/loadtest.rs says what it does and checks).\n\n{table}\n{verdict}\n"
    );
    std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    println!("loadtest: wrote {}", path.display());
    Ok(())
}
