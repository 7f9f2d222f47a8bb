//! `gallery-bench`: the gallery at real-photo scale, against the local emulator.
//!
//! `cargo run --release --example gallery-bench` (Linux: reads `/proc`; headless Chromium and
//! chromedriver for part 1, `apt-get install chromium chromium-driver`). It generates its
//! phone-sized photos: the five fixture photos stretched to 4000 × 3000 with per-photo sensor
//! noise, encoded at quality 90 to the sizes asked for. The app runs as a child process (this
//! program with `--serve-app`), so its memory is measured apart from the emulator's. Prints one
//! line per figure; bench.rs reads them into docs/PERFORMANCE.md.
//!
//! 1. One gallery page of 50 such photos (1.5–3.5 MB each): what the browser downloads for the
//!    page and its images and the time until every image has loaded, with the tiles pointing at
//!    the thumbnails (now) and at the originals (before), each in a fresh headless Chromium.
//! 2. Making the thumbnail and preview of a 4 MB photo (median of 20, in this process), and a
//!    4 MB upload through the app beside a direct PUT of the same bytes.
//! 3. The app's peak RSS during 3 concurrent 5 MB uploads.
//! 4. 16 clients uploading ten 4 MB photos each at once: `503`s, the app's peak RSS, the
//!    median upload time beside one client's.
//! 5. Search over 10 000 documents, each with labels and five lines of detected text: a page of
//!    `GET /api/images?label=…` (a label) and of `GET /api/images?q=…` (a word of the text)
//!    through the app.
//!
//! `-- --skip-page` leaves out part 1 (the slowest); `-- --search-only` runs part 5 alone. Not a test: it prints numbers and asserts
//! nothing.

mod common;

use std::io::Cursor;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use common::AppProcess;
use ocivision::document::{AnalysisDocument, Found, Ontology, Status, TextLine, TextWord};
use ocivision::emulator::{Emulator, EmulatorConfig, DEV_KEY_PEM};
use ocivision::oci::client::Transport;
use ocivision::oci::object_storage::{Condition, ObjectStorage};
use ocivision::oci::sign::PrivateKey;
use ocivision::oci::vision::Vertex;
use ocivision::soda::document_key;
use ocivision::Error;
use serde_json::{json, Value};

const WIDTH: u32 = 4000;
const HEIGHT: u32 = 3000;
const SEARCH_DOCS: usize = 10_000;

fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(120)
}

/// `PUT /api/images/{name}` to the app: status and milliseconds.
fn upload(app: &AppProcess, name: &str, bytes: &[u8]) -> Result<(u16, f64), Error> {
    let started = Instant::now();
    let reply = common::request(
        app.addr,
        "PUT",
        &format!("/api/images/{name}"),
        &["Content-Type: image/jpeg"],
        bytes,
        Duration::from_secs(120),
    )?;
    Ok((reply.status, started.elapsed().as_secs_f64() * 1000.0))
}

/// The app child's peak RSS so far, in MiB.
fn peak_rss_mib(app: &AppProcess) -> f64 {
    app.peak_rss_kib() as f64 / 1024.0
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// A fixture photo stretched to 4000 × 3000, as RGB8.
fn base_photo(name: &str) -> Result<Vec<u8>, Error> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/photos")
        .join(name);
    let image = image::load_from_memory(&std::fs::read(&path)?)
        .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?
        .to_rgb8();
    Ok(
        image::imageops::resize(&image, WIDTH, HEIGHT, image::imageops::FilterType::Triangle)
            .into_raw(),
    )
}

/// `base` with sensor-like noise of `amplitude` (seeded), encoded at quality 90.
fn photo(base: &[u8], seed: u64, amplitude: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let span = amplitude * 2 + 1;
    let pixels: Vec<u8> = base
        .iter()
        .map(|&v| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let noise = (x % u64::from(span)) as i32 - amplitude as i32;
            (i32::from(v) + noise).clamp(0, 255) as u8
        })
        .collect();
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, 90)
        .encode(
            &pixels,
            WIDTH as u16,
            HEIGHT as u16,
            jpeg_encoder::ColorType::Rgb,
        )
        .expect("encoding a generated photo");
    out
}

/// The noise amplitude that makes `base` encode to about `target` bytes (±8 %).
fn amplitude_for(base: &[u8], target: usize) -> u32 {
    let mut amplitude = 12u32;
    for _ in 0..6 {
        let size = photo(base, 1, amplitude).len();
        let ratio = target as f64 / size as f64;
        if (0.92..=1.08).contains(&ratio) {
            break;
        }
        amplitude = ((amplitude as f64 * ratio.powf(1.6)).round() as u32).clamp(1, 120);
    }
    amplitude
}

/// [`photo`] with the amplitude lowered until it is at most `max` bytes.
fn photo_under(base: &[u8], seed: u64, mut amplitude: u32, max: usize) -> Vec<u8> {
    loop {
        let p = photo(base, seed, amplitude);
        if p.len() <= max || amplitude <= 1 {
            return p;
        }
        amplitude = amplitude * 9 / 10;
    }
}

/// `bytes` with a few trailing bytes after the image (ignored by decoders, never `<`), so
/// every upload is new content to the app's duplicate check.
fn unique(bytes: &[u8], n: u64) -> Vec<u8> {
    let mut out = bytes.to_vec();
    out.extend(n.to_le_bytes().iter().map(|b| b | 0x80));
    out
}

fn run() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--serve-app") {
        return common::serve_app(&args[2], Path::new(&args[3]), &args[4]);
    }
    let dir = std::env::temp_dir().join(format!("ocivision-gallery-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let emulator = Emulator::start(EmulatorConfig::new(dir.join("data")))?;
    let key = PrivateKey::from_pem(DEV_KEY_PEM, "dev-key.pem")?;
    emulator.trust_api_key(&common::dev_key_id(&key), &key);
    let base = emulator.base_url().to_string();
    let transport = common::api_key_transport(&dir)?;
    for collection in ["GALLERY", "UPLOADS", "CROWD", "SEARCH"] {
        common::emulator_soda(&transport, &base, collection)?.ensure_collection(deadline())?;
    }
    eprintln!("gallery-bench: generating 4000 × 3000 photos");
    let names = [
        "dog.jpg",
        "horses.jpg",
        "person.jpg",
        "chelsea.png",
        "astronaut.png",
    ];
    let bases = names
        .iter()
        .map(|n| base_photo(n))
        .collect::<Result<Vec<_>, _>>()?;

    if args.iter().any(|a| a == "--search-only") {
        search(&base, &dir, &transport)?;
        drop(emulator);
        let _ = std::fs::remove_dir_all(&dir);
        return Ok(());
    }
    if !args.iter().any(|a| a == "--skip-page") {
        gallery_page(&base, &dir, &bases)?;
    }
    let four_mb: Vec<u8> = {
        let amplitude = amplitude_for(&bases[0], 4_000_000);
        photo_under(&bases[0], 4, amplitude, 4_200_000)
    };
    renditions(&base, &dir, &transport, &four_mb)?;
    three_uploads(&base, &dir, &bases)?;
    crowd(&base, &dir, &bases)?;
    search(&base, &dir, &transport)?;
    drop(emulator);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// Part 1: 50 photos, one page, before and after.
fn gallery_page(base: &str, dir: &Path, bases: &[Vec<u8>]) -> Result<(), Error> {
    let app = AppProcess::start(base, dir, "GALLERY", &[], false)?;
    let mut total = 0usize;
    let amplitudes: Vec<u32> = (0..5)
        .map(|i| amplitude_for(&bases[i], 1_500_000 + 500_000 * i))
        .collect();
    eprintln!("gallery-bench: uploading 50 photos");
    for n in 0..50u64 {
        let i = n as usize % 5;
        let bytes = photo_under(&bases[i], 100 + n, amplitudes[i], 3_600_000);
        total += bytes.len();
        let (status, _) = upload(&app, &format!("phone{n}.jpg"), &bytes)?;
        assert_eq!(status, 201, "upload {n}");
    }
    let page = common::request(app.addr, "GET", "/", &[], b"", Duration::from_secs(60))?;
    let html = String::from_utf8_lossy(&page.body).replace(" loading=\"lazy\"", "");
    let after = html.clone();
    let before = html.replace("/thumb\"", "/raw\"");
    println!(
        "gallery photos: 50 generated 4000×3000 JPEGs, {:.2} MB on average ({:.1} MB in all)",
        total as f64 / 50.0 / 1e6,
        total as f64 / 1e6
    );
    match browser_programs() {
        None => println!(
            "gallery page in Chromium: not measured (apt-get install chromium chromium-driver)"
        ),
        Some((chromium, chromedriver)) => {
            for (label, html) in [
                ("before (originals)", &before),
                ("after (thumbnails)", &after),
            ] {
                let mut times = Vec::new();
                let mut bytes = 0.0;
                for round in 0..3 {
                    let (ms, transferred) =
                        load_in_chromium(&chromium, &chromedriver, dir, app.addr, html, round)?;
                    times.push(ms);
                    bytes = transferred + html.len() as f64;
                }
                println!(
                    "gallery page {label}: {:.2} MB downloaded, every image loaded in {:.0} ms (median of 3 fresh browsers)",
                    bytes / 1e6,
                    median(times)
                );
            }
        }
    }
    Ok(())
}

fn browser_programs() -> Option<(PathBuf, PathBuf)> {
    let find = |names: &[&str]| {
        names.iter().find_map(|n| {
            ["/usr/bin", "/usr/lib/chromium", "/usr/local/bin"]
                .iter()
                .map(|d| Path::new(d).join(n))
                .find(|p| p.is_file())
        })
    };
    Some((
        find(&["chromium", "chromium-browser"])?,
        find(&["chromedriver"])?,
    ))
}

/// Writes `html` into a fresh same-origin page of a fresh Chromium (empty cache) and waits
/// until every image has loaded: milliseconds from the write to the last image's last byte,
/// and the bytes the images took on the wire (Resource Timing `transferSize`).
fn load_in_chromium(
    chromium: &Path,
    chromedriver: &Path,
    dir: &Path,
    app: SocketAddr,
    html: &str,
    round: usize,
) -> Result<(f64, f64), Error> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut driver = Command::new(chromedriver)
        .args([format!("--port={port}"), "--allowed-ips=127.0.0.1".into()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let result = (|| -> Result<(f64, f64), String> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .proxy(None)
            .timeout_global(Some(Duration::from_secs(120)))
            .build()
            .into();
        let url = |p: &str| format!("http://127.0.0.1:{port}{p}");
        let call = |path: &str, body: Value| -> Result<Value, String> {
            let mut r = agent
                .post(&url(path))
                .send_json(body)
                .map_err(|e| format!("webdriver {path}: {e}"))?;
            let v: Value = r.body_mut().read_json().map_err(|e| e.to_string())?;
            Ok(v["value"].clone())
        };
        let until = Instant::now() + Duration::from_secs(20);
        while agent.get(&url("/status")).call().is_err() {
            if Instant::now() > until {
                return Err("chromedriver did not start".into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile = dir.join(format!("chromium-{round}-{}", html.len()));
        let session = call(
            "/session",
            json!({"capabilities": {"alwaysMatch": {"browserName": "chrome",
                "goog:chromeOptions": {"binary": chromium.to_string_lossy(), "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    "--disable-background-networking", "--no-proxy-server",
                    "--window-size=1280,1000", format!("--user-data-dir={}", profile.display())]}}}}),
        )?;
        let id = session["sessionId"]
            .as_str()
            .ok_or("no session")?
            .to_string();
        let s = |p: &str| format!("/session/{id}{p}");
        call(&s("/url"), json!({"url": format!("http://{app}/login")}))?;
        call(
            &s("/execute/sync"),
            json!({"script": "sessionStorage.t0 = String(performance.now());
                document.open(); document.write(arguments[0]); document.close(); return 1;",
                "args": [html]}),
        )?;
        let until = Instant::now() + Duration::from_secs(120);
        let done = loop {
            let v = call(
                &s("/execute/sync"),
                json!({"script": "const t0 = Number(sessionStorage.t0);
                    const imgs = [...document.querySelectorAll('#grid img')];
                    if (imgs.length !== 50 || !imgs.every(i => i.complete)) return null;
                    const res = performance.getEntriesByType('resource')
                        .filter(e => e.initiatorType === 'img' && e.startTime >= t0);
                    return {ms: Math.max(...res.map(e => e.responseEnd)) - t0, n: res.length,
                        bytes: res.reduce((a, e) => a + e.transferSize, 0),
                        broken: imgs.filter(i => i.naturalWidth === 0).length};",
                    "args": []}),
            )?;
            if !v.is_null() {
                break v;
            }
            if Instant::now() > until {
                return Err("the images did not load within 120 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let _ = agent.delete(&url(&format!("/session/{id}"))).call();
        if done["broken"] != 0 || done["n"] != 50 {
            return Err(format!("not every image loaded: {done}"));
        }
        Ok((
            done["ms"].as_f64().unwrap_or(f64::NAN),
            done["bytes"].as_f64().unwrap_or(f64::NAN),
        ))
    })();
    let _ = driver.kill();
    let _ = driver.wait();
    result.map_err(Error::Config)
}

/// Part 2: the renditions of a 4 MB photo, and a 4 MB upload through the app vs direct.
fn renditions(base: &str, dir: &Path, transport: &Transport, four_mb: &[u8]) -> Result<(), Error> {
    let mut times = Vec::new();
    let mut sizes = (0, 0);
    let mut cpu_start = 0.0;
    for round in 0..21 {
        if round == 1 {
            cpu_start = cpu_seconds();
        }
        let started = Instant::now();
        let (thumb, preview, placeholder) = ocivision::web::renditions(four_mb).expect("a JPEG");
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        assert!(placeholder.is_none(), "{placeholder:?}");
        sizes = (thumb.len(), preview.len());
    }
    let cpu_ms = (cpu_seconds() - cpu_start) * 1000.0 / 20.0;
    times.remove(0);
    println!(
        "thumbnail + preview of a {:.2} MB 4000×3000 JPEG: median {:.1} ms, p90 {:.1} ms, CPU time {cpu_ms:.1} ms each, all threads (thumbnail {:.0} KB, preview {:.0} KB)",
        four_mb.len() as f64 / 1e6,
        median(times.clone()),
        percentile(times, 0.9),
        sizes.0 as f64 / 1024.0,
        sizes.1 as f64 / 1024.0
    );
    let app = AppProcess::start(base, dir, "UPLOADS", &[], false)?;
    let os = ObjectStorage::new(transport.clone(), base);
    let (mut direct, mut through) = (Vec::new(), Vec::new());
    for n in 0..10u64 {
        let bytes = unique(four_mb, 10 + n);
        let started = Instant::now();
        os.put(
            &common::emulator_bucket(),
            &format!("direct/{n}.jpg"),
            &mut Cursor::new(&bytes[..]),
            bytes.len() as u64,
            "image/jpeg",
            &[],
            Condition::None,
            deadline(),
        )?;
        direct.push(started.elapsed().as_secs_f64() * 1000.0);
        let (status, ms) = upload(&app, &format!("four{n}.jpg"), &unique(four_mb, 100 + n))?;
        assert_eq!(status, 201);
        through.push(ms);
    }
    println!(
        "4 MB upload: through the app median {:.1} ms (renditions included), direct PUT median {:.1} ms",
        median(through),
        median(direct)
    );
    Ok(())
}

/// This process's CPU time so far (user + system, all threads), in seconds.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses): utime is the 12th, stime the 13th.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// Part 3: three 5 MB uploads at once, a fresh app.
fn three_uploads(base: &str, dir: &Path, bases: &[Vec<u8>]) -> Result<(), Error> {
    // Just under the 5 MiB limit, trailing bytes included.
    let amplitude = amplitude_for(&bases[2], 5_000_000);
    let photos: Vec<Vec<u8>> = (0..3)
        .map(|n| photo_under(&bases[2], 500 + n, amplitude, 5 * 1024 * 1024 - 64))
        .collect();
    let app = AppProcess::start(base, dir, "UPLOADS", &[], false)?;
    common::request(
        app.addr,
        "GET",
        "/healthz",
        &[],
        b"",
        Duration::from_secs(5),
    )?;
    let idle = peak_rss_mib(&app);
    for round in 0..3u64 {
        let barrier = Barrier::new(3);
        let statuses: Vec<u16> = std::thread::scope(|scope| {
            let handles: Vec<_> = photos
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let (app, barrier) = (&app, &barrier);
                    scope.spawn(move || {
                        barrier.wait();
                        upload(app, &format!("five{round}-{i}.jpg"), &unique(p, round))
                            .map(|r| r.0)
                            .unwrap_or(0)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or(0)).collect()
        });
        assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
    }
    println!(
        "peak RSS, 3 concurrent 5 MB uploads (3 rounds, {:.2} MB photos): {:.1} MiB (idle {:.1} MiB)",
        photos[0].len() as f64 / 1e6,
        peak_rss_mib(&app),
        idle
    );
    Ok(())
}

/// Part 4: 16 clients × ten 4 MB photos, after one client alone.
fn crowd(base: &str, dir: &Path, bases: &[Vec<u8>]) -> Result<(), Error> {
    let amplitudes: Vec<u32> = bases.iter().map(|b| amplitude_for(b, 4_000_000)).collect();
    let photos: Vec<Vec<u8>> = (0..10)
        .map(|n| photo_under(&bases[n % 5], 900 + n as u64, amplitudes[n % 5], 4_600_000))
        .collect();
    // glibc's malloc keeps freed 4 MB blocks in per-thread arenas, so with 16 upload threads
    // the peak RSS measures the allocator as much as the app; the images are static musl,
    // whose malloc maps and unmaps large blocks. The second run makes glibc do the same.
    for (salt, (allocator, env)) in [
        ("glibc malloc, defaults", &[][..]),
        (
            "glibc malloc, MALLOC_MMAP_THRESHOLD_=131072 (large blocks mapped, as musl does)",
            &[("MALLOC_MMAP_THRESHOLD_", "131072")][..],
        ),
    ]
    .into_iter()
    .enumerate()
    {
        crowd_once(base, dir, &photos, allocator, env, salt as u64 * 1_000_000)?;
    }
    Ok(())
}

fn crowd_once(
    base: &str,
    dir: &Path,
    photos: &[Vec<u8>],
    allocator: &str,
    env: &[(&str, &str)],
    salt: u64,
) -> Result<(), Error> {
    let app = AppProcess::start(base, dir, "CROWD", env, false)?;
    let mut alone = Vec::new();
    for (n, p) in photos.iter().enumerate() {
        let (status, ms) = upload(&app, &format!("alone{n}.jpg"), &unique(p, salt + n as u64))?;
        assert_eq!(status, 201);
        alone.push(ms);
    }
    let barrier = Barrier::new(16);
    let started = Instant::now();
    let results: Vec<(u16, f64)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..16u64)
            .map(|client| {
                let (app, barrier, photos) = (&app, &barrier, &photos);
                scope.spawn(move || {
                    barrier.wait();
                    photos
                        .iter()
                        .enumerate()
                        .map(|(n, p)| {
                            upload(
                                app,
                                &format!("c{client}-{n}.jpg"),
                                &unique(p, salt + 1000 + client * 100 + n as u64),
                            )
                            .unwrap_or((0, 0.0))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let wall = started.elapsed().as_secs_f64();
    let busy = results.iter().filter(|r| r.0 == 503).count();
    let other = results.iter().filter(|r| r.0 != 201 && r.0 != 503).count();
    let times: Vec<f64> = results.iter().map(|r| r.1).collect();
    println!(
        "16 clients × 10 4 MB uploads ({allocator}): {} uploads, {busy} busy answers, {other} other failures, in {wall:.1} s; peak RSS {:.1} MiB; median upload {:.0} ms (slowest tenth from {:.0} ms) vs one client alone {:.0} ms",
        results.len(),
        peak_rss_mib(&app),
        median(times.clone()),
        percentile(times, 0.9),
        median(alone)
    );
    Ok(())
}

/// Five lines of shop-sign and receipt text for document `i`: "receipt" in 1 % of them, "open"
/// in half, the rest spread over a few hundred distinct words.
fn seeded_text(i: usize) -> Vec<TextLine> {
    let line = |text: String| TextLine {
        words: text
            .split(' ')
            .map(|w| TextWord {
                text: w.to_string(),
                confidence: 0.9,
                polygon: vec![Vertex { x: 0.1, y: 0.1 }, Vertex { x: 0.2, y: 0.1 }],
            })
            .collect(),
        text,
        confidence: 0.9,
        polygon: vec![Vertex { x: 0.1, y: 0.1 }, Vertex { x: 0.5, y: 0.1 }],
    };
    let kind = if i % 100 == 7 { "RECEIPT" } else { "SIGN" };
    let state = if i % 2 == 0 { "OPEN" } else { "CLOSED" };
    vec![
        line(format!("CORNER {kind} No {}", i % 300)),
        line(format!("{state} every day from {}am", i % 12)),
        line(format!("Item{} Item{} Item{}", i % 97, i % 89, i % 83)),
        line(format!("Street {} Café", i % 211)),
        line(format!("Thank you Total {}.{:02}", i % 50, i % 100)),
    ]
}

/// Part 5: label and word search over 10 000 documents.
fn search(base: &str, dir: &Path, transport: &Transport) -> Result<(), Error> {
    eprintln!("gallery-bench: seeding {SEARCH_DOCS} documents");
    let started = Instant::now();
    std::thread::scope(|scope| -> Result<(), Error> {
        let handles: Vec<_> = (0..4usize)
            .map(|t| {
                scope.spawn(move || -> Result<(), Error> {
                    let soda = common::emulator_soda(transport, base, "SEARCH")?;
                    let b = common::emulator_bucket();
                    for i in (t..SEARCH_DOCS).step_by(4) {
                        let name = format!(
                            "uploads/{:011x}{:013x}.jpg",
                            0x100_0000_0000u64 - i as u64,
                            i
                        );
                        let mut doc =
                            AnalysisDocument::new(&b.namespace, &b.name, &name, Status::Done);
                        doc.uploaded_at = format!(
                            "2026-11-{:02}T{:02}:{:02}:{:02}.000Z",
                            1 + i / 86_400,
                            i / 3600 % 24,
                            i / 60 % 60,
                            i % 60
                        );
                        let labels: &[&str] = match i % 100 {
                            0 => &["Giraffe", "Person"],
                            n if n % 2 == 0 => &["Car", "Person"],
                            _ => &["Person", "Dog"],
                        };
                        doc.objects = labels
                            .iter()
                            .map(|l| Found {
                                name: l.to_string(),
                                confidence: 0.8,
                                polygon: vec![Vertex { x: 0.1, y: 0.1 }, Vertex { x: 0.5, y: 0.5 }],
                            })
                            .collect();
                        if labels.contains(&"Car") {
                            doc.ontology.push(Ontology {
                                name: "Car".into(),
                                parents: vec!["Vehicle".into()],
                            });
                        }
                        doc.text = seeded_text(i);
                        doc.terms = doc.search_terms();
                        soda.put(
                            &document_key(&b.namespace, &b.name, &name),
                            &doc.to_json(),
                            deadline(),
                        )?;
                    }
                    Ok(())
                })
            })
            .collect();
        for h in handles {
            h.join().expect("seeding thread")?;
        }
        Ok(())
    })?;
    eprintln!(
        "gallery-bench: seeded in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let app = AppProcess::start(base, dir, "SEARCH", &[], false)?;
    let mut lines = Vec::new();
    let mut all = Vec::new();
    let mut word_lines = Vec::new();
    let mut words = Vec::new();
    for (param, term, start) in [
        ("label", "giraffe", "0"),
        ("label", "giraffe", "50"),
        ("label", "vehicle", "0"),
        ("label", "vehicle", "2500"),
        ("q", "receipt", "0"),
        ("q", "receipt", "50"),
        ("q", "open", "0"),
        ("q", "open", "2500"),
        ("q", "caf%C3%A9", "0"),
    ] {
        let label = format!("{param}={term}");
        let target = format!("/api/images?{label}&start={start}");
        let mut times = Vec::new();
        let mut count = 0;
        for _ in 0..11 {
            let t = Instant::now();
            let reply =
                common::request(app.addr, "GET", &target, &[], b"", Duration::from_secs(60))?;
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            count = reply.json()["items"].as_array().map_or(0, Vec::len);
        }
        times.remove(0);
        let (figures, line) = if param == "q" {
            (&mut words, &mut word_lines)
        } else {
            (&mut all, &mut lines)
        };
        figures.extend(times.iter().copied());
        line.push(format!(
            "{label} from {start}: {:.1} ms ({count} items)",
            median(times)
        ));
    }
    println!(
        "label search over {SEARCH_DOCS} documents, one page through the app: median {:.1} ms ({})",
        median(all),
        lines.join("; ")
    );
    println!(
        "word search (q=) over {SEARCH_DOCS} documents with text, one page through the app: median {:.1} ms, p95 {:.1} ms ({})",
        median(words.clone()),
        percentile(words, 0.95),
        word_lines.join("; ")
    );
    Ok(())
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gallery-bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
