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
//! 2. A 4 MB upload through the app beside a direct PUT of the same bytes (21 of each), and the
//!    thumbnail and preview the app makes of it on each upload, as the app itself times them
//!    (median of 20, from its debug log).
//! 3. The app's peak RSS during 3 concurrent 5 MB uploads.
//! 4. 16 clients uploading ten 4 MB photos each at once: `503`s, the app's peak RSS, the
//!    median upload time beside one client's.
//! 5. Search over 10 000 documents, each with labels and five lines of detected text: a page of
//!    `GET /api/images?label=…` (a label) and of `GET /api/images?q=…` (a word of the text)
//!    through the app, in 5 interleaved rounds: the median and the spread of the rounds.
//!
//! `-- --skip-page` leaves out part 1 (the slowest); `-- --search-only` runs part 5 alone. Not a
//! test: it prints numbers and asserts nothing.

#[path = "../tests/support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use ocivision::document::{AnalysisDocument, DetectedObject, Status, TextLine, TextWord};
use ocivision::oci::object_storage::ObjectStorage;
use ocivision::oci::vision::Vertex;
use ocivision::soda::document_key;
use ocivision::Error;
use serde_json::{json, Value};
use support::bench::{median, AppProcess};
use support::emulator::{deadline, on_four_threads, put_jpeg, Env};

const WIDTH: u32 = 4000;
const HEIGHT: u32 = 3000;
const SEARCH_DOCS: usize = 10_000;

/// `PUT /api/images/{name}` to the app: status and milliseconds.
fn upload(app: &AppProcess, name: &str, bytes: &[u8]) -> Result<(u16, f64), Error> {
    let started = Instant::now();
    let reply = support::request(
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
        return support::bench::serve_app(&args[2], Path::new(&args[3]), &args[4]);
    }
    let env = Env::start("gallery-bench");
    let (base, dir) = (env.emulator.base_url().to_string(), env.dir.path());
    for collection in ["GALLERY", "UPLOADS", "CROWD", "SEARCH"] {
        env.soda(collection).ensure_collection(deadline(120))?;
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
        return search(&env);
    }
    if !args.iter().any(|a| a == "--skip-page") {
        gallery_page(&base, dir, &bases)?;
    }
    let four_mb: Vec<u8> = {
        let amplitude = amplitude_for(&bases[0], 4_000_000);
        photo_under(&bases[0], 4, amplitude, 4_200_000)
    };
    renditions(&env, &four_mb)?;
    three_uploads(&base, dir, &bases)?;
    crowd(&base, dir, &bases)?;
    search(&env)?;
    Ok(())
}

/// Part 1: 50 photos, one page, before and after.
fn gallery_page(base: &str, dir: &Path, bases: &[Vec<u8>]) -> Result<(), Error> {
    let app = AppProcess::start(base, dir, "GALLERY", &[], Stdio::null())?;
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
    let page = support::request(app.addr, "GET", "/", &[], b"", Duration::from_secs(60))?;
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
    let port = support::bench::free_port().map_err(Error::Config)?;
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

/// Part 2: a 4 MB photo uploaded through the app beside a direct PUT of the same bytes, and
/// the thumbnail and preview the app makes of it, as the app times them (its debug line
/// `renditions made in …`: the library keeps its rendition code to itself).
fn renditions(env: &Env, four_mb: &[u8]) -> Result<(), Error> {
    let base = env.emulator.base_url();
    let log = env.dir.path().join("uploads-app.log");
    let stderr = Stdio::from(std::fs::File::create(&log)?);
    let app = AppProcess::start(
        base,
        env.dir.path(),
        "UPLOADS",
        &[("LOG_LEVEL", "debug")],
        stderr,
    )?;
    let os = ObjectStorage::new(env.transport.clone(), base);
    let (mut direct, mut through) = (Vec::new(), Vec::new());
    let mut cpu_start = 0.0;
    for n in 0..21u64 {
        if n == 1 {
            cpu_start = cpu_seconds(app.pid());
        }
        let bytes = unique(four_mb, 10 + n);
        let started = Instant::now();
        put_jpeg(&os, &env.bucket(), &format!("direct/{n}.jpg"), &bytes)?;
        direct.push(started.elapsed().as_secs_f64() * 1000.0);
        let (status, ms) = upload(&app, &format!("four{n}.jpg"), &unique(four_mb, 100 + n))?;
        assert_eq!(status, 201);
        through.push(ms);
    }
    let cpu_ms = (cpu_seconds(app.pid()) - cpu_start) * 1000.0 / 20.0;
    drop(app);
    let text = std::fs::read_to_string(&log)?;
    assert!(!text.contains("placeholder renditions"), "{text}");
    // `… renditions made in 117.2ms (thumbnail 22528 B, preview 237568 B)`, one per upload.
    let made: Vec<(f64, f64, f64)> = text
        .lines()
        .filter_map(|line| {
            let rest = line.split("renditions made in ").nth(1)?;
            let (took, sizes) = rest.split_once(" (thumbnail ")?;
            let (thumb, preview) = sizes.split_once(" B, preview ")?;
            let preview = preview.strip_suffix(" B)")?;
            Some((
                duration_ms(took)?,
                thumb.parse().ok()?,
                preview.parse().ok()?,
            ))
        })
        .collect();
    if made.len() != through.len() {
        return Err(Error::Config(format!(
            "{} uploads but {} renditions in the app's log",
            through.len(),
            made.len()
        )));
    }
    let times: Vec<f64> = made[1..].iter().map(|m| m.0).collect();
    let (_, thumb, preview) = made[made.len() - 1];
    println!(
        "thumbnail + preview of a {:.2} MB 4000×3000 JPEG: median {:.1} ms, p90 {:.1} ms, as the app times them on upload (its CPU time {cpu_ms:.1} ms per upload, all threads, receiving and storing included; thumbnail {:.0} KB, preview {:.0} KB)",
        four_mb.len() as f64 / 1e6,
        median(times.clone()),
        percentile(times, 0.9),
        thumb / 1024.0,
        preview / 1024.0
    );
    println!(
        "4 MB upload: through the app median {:.1} ms (renditions included), direct PUT median {:.1} ms",
        median(through),
        median(direct)
    );
    Ok(())
}

/// A `Duration`'s `Debug` text (`117.2ms`, `1.5s`, `950µs`) in milliseconds.
fn duration_ms(text: &str) -> Option<f64> {
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (n, unit) = text.split_at(split);
    let n: f64 = n.parse().ok()?;
    Some(match unit {
        "ns" => n / 1e6,
        "µs" => n / 1e3,
        "ms" => n,
        "s" => n * 1e3,
        _ => return None,
    })
}

/// A process's CPU time so far (user + system, all threads), in seconds; 0 once it is gone.
fn cpu_seconds(pid: u32) -> f64 {
    support::bench::cpu_ticks(pid).unwrap_or(0) as f64 / support::bench::TICKS_PER_SECOND
}

/// Part 3: three 5 MB uploads at once, a fresh app.
fn three_uploads(base: &str, dir: &Path, bases: &[Vec<u8>]) -> Result<(), Error> {
    // Just under the 5 MiB limit, trailing bytes included.
    let amplitude = amplitude_for(&bases[2], 5_000_000);
    let photos: Vec<Vec<u8>> = (0..3)
        .map(|n| photo_under(&bases[2], 500 + n, amplitude, 5 * 1024 * 1024 - 64))
        .collect();
    let app = AppProcess::start(base, dir, "UPLOADS", &[], Stdio::null())?;
    support::request(
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
    let app = AppProcess::start(base, dir, "CROWD", env, Stdio::null())?;
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

/// Rounds of part 5: each round asks every query in turn (so the kinds interleave), and a
/// query's figure in a round is the median of its 10 timed requests after one untimed.
const SEARCH_ROUNDS: usize = 5;

/// Part 5: label and word search over 10 000 documents, each with labels and five lines of
/// text.
fn search(env: &Env) -> Result<(), Error> {
    eprintln!("gallery-bench: seeding {SEARCH_DOCS} documents");
    let started = Instant::now();
    let clients = || Ok((env.soda("SEARCH"), env.bucket()));
    on_four_threads(SEARCH_DOCS, clients, |(soda, b), i| {
        let name = format!(
            "uploads/{:011x}{:013x}.jpg",
            0x100_0000_0000u64 - i as u64,
            i
        );
        let mut doc = AnalysisDocument::new(&b.namespace, &b.name, &name, Status::Done);
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
            .map(|l| DetectedObject {
                name: l.to_string(),
                confidence: 0.8,
                polygon: vec![Vertex { x: 0.1, y: 0.1 }, Vertex { x: 0.5, y: 0.5 }],
            })
            .collect();
        if labels.contains(&"Car") {
            doc.ontology.push(ocivision::document::Ontology {
                name: "Car".into(),
                parents: vec!["Vehicle".into()],
            });
        }
        doc.text = seeded_text(i);
        doc.terms = doc.search_terms();
        soda.put(
            &document_key(&b.namespace, &b.name, &name),
            &doc.to_json(),
            deadline(120),
        )
    })?;
    eprintln!(
        "gallery-bench: seeded in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // The web binary declares the gallery's indexes at start (src/main.rs); the harness's app
    // does not, so they are declared here, once the documents are in, as on a database that
    // already holds them.
    env.soda("SEARCH").ensure_gallery_indexes(deadline(120))?;
    let app = AppProcess::start(
        env.emulator.base_url(),
        env.dir.path(),
        "SEARCH",
        &[],
        Stdio::null(),
    )?;
    let queries = [
        ("label", "giraffe", "0"),
        ("label", "giraffe", "50"),
        ("label", "vehicle", "0"),
        ("label", "vehicle", "2500"),
        ("q", "receipt", "0"),
        ("q", "receipt", "50"),
        ("q", "open", "0"),
        ("q", "open", "2500"),
        ("q", "caf%C3%A9", "0"),
    ];
    env.emulator.clear_requests();
    // rounds[r][k]: the median of query k in round r.
    let mut rounds = vec![vec![0.0; queries.len()]; SEARCH_ROUNDS];
    let mut counts = vec![0; queries.len()];
    for round in rounds.iter_mut() {
        for (k, (param, term, start)) in queries.iter().enumerate() {
            let target = format!("/api/images?{param}={term}&start={start}");
            let mut times = Vec::new();
            for n in 0..11 {
                let t = Instant::now();
                let reply =
                    support::request(app.addr, "GET", &target, &[], b"", Duration::from_secs(60))?;
                if reply.status != 200 {
                    return Err(Error::Io(std::io::Error::other(format!(
                        "{target}: {}",
                        reply.status
                    ))));
                }
                if n > 0 {
                    times.push(t.elapsed().as_secs_f64() * 1000.0);
                }
                counts[k] = reply.json_or_null()["items"].as_array().map_or(0, Vec::len);
            }
            round[k] = median(times);
        }
    }
    // Of each page, the database's part: the emulator's time for the SODA query it answered.
    let soda: Vec<f64> = env
        .emulator
        .requests()
        .iter()
        .filter(|r| r.target.contains("/SEARCH?action=query"))
        .map(|r| r.micros as f64 / 1000.0)
        .collect();
    let soda_count = soda.len();
    let soda_median = median(soda);
    for kind in ["label", "q"] {
        let chosen: Vec<usize> = (0..queries.len())
            .filter(|&k| queries[k].0 == kind)
            .collect();
        // A round's figure for the kind: the median over its queries' medians.
        let per_round: Vec<f64> = rounds
            .iter()
            .map(|r| median(chosen.iter().map(|&k| r[k]).collect()))
            .collect();
        let (low, high) = spread(&per_round);
        let detail: Vec<String> = chosen
            .iter()
            .map(|&k| {
                let (param, term, start) = queries[k];
                let per: Vec<f64> = rounds.iter().map(|r| r[k]).collect();
                let (lo, hi) = spread(&per);
                format!(
                    "{param}={term} from {start}: {:.1} ms ({lo:.1}–{hi:.1}; {} items)",
                    median(per.clone()),
                    counts[k]
                )
            })
            .collect();
        let what = if kind == "q" {
            "word search (q=)"
        } else {
            "label search"
        };
        println!(
            "{what} over {SEARCH_DOCS} documents with text, one page through the app: median {:.1} ms over {SEARCH_ROUNDS} interleaved rounds (spread {low:.1}–{high:.1} ms) ({})",
            median(per_round.clone()),
            detail.join("; ")
        );
    }
    println!(
        "of which the SODA query in the emulator: median {soda_median:.1} ms ({soda_count} queries, both kinds)"
    );
    Ok(())
}

/// The smallest and largest of `values`.
fn spread(values: &[f64]) -> (f64, f64) {
    values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        })
}

fn main() -> std::process::ExitCode {
    support::bench::exit_code("gallery-bench", run())
}
