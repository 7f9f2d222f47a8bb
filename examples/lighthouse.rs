//! `lighthouse`: Lighthouse 12 on the pages a person sees first (the gallery, a result page, the
//! result page of a photo with text, the sign-in page), mobile and desktop, in local mode with
//! the five sample photos and a receipt.
//!
//! `cargo run --release --example lighthouse [-- --runs 3] [--no-write]`
//!
//! Starts `webapp` in local mode as a new user would (fresh data directory, no password, the
//! local detector and text reader), uploads tests/fixtures/photos and
//! tests/fixtures/text/receipt.png through the JSON API and waits until every one is analysed
//! (the receipt with its lines of text). Then runs the `lighthouse` CLI (npm, pinned in .ci/npm/package-lock.json and
//! installed into `<target dir>/npm` with `npm ci` when missing: never a browser download) on
//! Debian's Chromium (`CHROME_PATH`, default /usr/bin/chromium), headless, each run in a fresh
//! profile, with Lighthouse's default mobile emulation and simulated throttling, or
//! `--preset=desktop`. Each page and form factor runs `--runs` times (default 3); the table
//! gives the median score per category with the spread (min–max) when the runs differ, and
//! the median LCP, CLS and TBT. It is written into docs/PERFORMANCE.md between the
//! `lighthouse` markers (examples/bench.rs keeps that section) unless `--no-write`; the
//! reports are kept under `<target dir>/lighthouse/`. Not a test: it asserts nothing.

#[path = "../tests/support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::bench::Guard;

/// The photos, as tests/fixtures/photos holds them.
const PHOTOS: [(&str, &str); 5] = [
    ("dog.jpg", "image/jpeg"),
    ("horses.jpg", "image/jpeg"),
    ("person.jpg", "image/jpeg"),
    ("chelsea.png", "image/png"),
    ("astronaut.png", "image/png"),
];

/// The page whose result page is measured.
const RESULT_PHOTO: &str = "dog.jpg";

/// The photo with text whose result page is measured too (issue 25), in tests/fixtures/text.
const TEXT_PHOTO: &str = "receipt.png";

/// Markers of the section this program owns in docs/PERFORMANCE.md.
const BEGIN: &str = "<!-- lighthouse -->";
const END: &str = "<!-- /lighthouse -->";

/// What Chromium needs here: headless, no sandbox (containers), no GPU, and nothing that
/// reaches the network on its own.
const CHROME_FLAGS: &str = "--headless=new --no-sandbox --disable-gpu \
--disable-background-networking --disable-component-update --disable-sync --no-first-run \
--disable-default-apps --no-default-browser-check";

fn main() {
    if let Err(e) = run() {
        eprintln!("lighthouse: {e}");
        std::process::exit(1);
    }
}

/// One Lighthouse run's figures.
#[derive(Debug, Clone, Copy)]
struct Scores {
    performance: f64,
    accessibility: f64,
    best_practices: f64,
    lcp_ms: f64,
    cls: f64,
    tbt_ms: f64,
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runs = match args.iter().position(|a| a == "--runs") {
        Some(i) => args
            .get(i + 1)
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| *n > 0)
            .ok_or("--runs takes a positive number")?,
        None => 3,
    };
    let write = !args.iter().any(|a| a == "--no-write");
    let bin_dir = support::bench::fresh_binaries(&["webapp"], &[])?;
    let target_dir = bin_dir.parent().ok_or("no target directory")?.to_path_buf();
    let lighthouse = npm_tools(&target_dir)?;
    let chrome = std::env::var("CHROME_PATH").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !Path::new(&chrome).is_file() {
        return Err(format!(
            "{chrome} not found: apt-get install chromium (or set CHROME_PATH)"
        ));
    }
    let reports = target_dir.join("lighthouse");
    let _ = std::fs::remove_dir_all(&reports);
    std::fs::create_dir_all(&reports).map_err(|e| e.to_string())?;

    // Local mode, as a new user starts it.
    let data = reports.join("data");
    let port = support::bench::free_port()?;
    let mut app = Command::new(bin_dir.join("webapp"));
    app.env("OCIVISION_MODE", "local")
        .env("OCIVISION_DATA", &data)
        .env("BIND", "127.0.0.1")
        .env("PORT", port.to_string())
        .env_remove("APP_PASSWORD")
        .env_remove("BUCKET_NAME")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    support::bench::without_package_vars(&mut app);
    let _app = Guard(app.spawn().map_err(|e| format!("webapp: {e}"))?);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    wait_until("the app answers /healthz", Duration::from_secs(60), || {
        support::request(addr, "GET", "/healthz", &[], b"", Duration::from_secs(2))
            .is_ok_and(|r| r.status == 200)
    })?;
    let photos = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/photos");
    let mut result_id = None;
    for (name, content_type) in PHOTOS {
        let bytes = std::fs::read(photos.join(name)).map_err(|e| format!("{name}: {e}"))?;
        let reply = support::request(
            addr,
            "PUT",
            &format!("/api/images/{name}"),
            &[&format!("Content-Type: {content_type}")],
            &bytes,
            Duration::from_secs(60),
        )
        .map_err(|e| format!("upload {name}: {e}"))?;
        if reply.status != 201 {
            return Err(format!(
                "upload {name}: {} {}",
                reply.status,
                String::from_utf8_lossy(&reply.body)
            ));
        }
        if name == RESULT_PHOTO {
            result_id = reply.json_or_null()["id"].as_str().map(str::to_string);
        }
    }
    let result_id = result_id.ok_or("no id for the result page's photo")?;
    let text_bytes = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/text")
            .join(TEXT_PHOTO),
    )
    .map_err(|e| format!("{TEXT_PHOTO}: {e}"))?;
    let reply = support::request(
        addr,
        "PUT",
        &format!("/api/images/{TEXT_PHOTO}"),
        &["Content-Type: image/png"],
        &text_bytes,
        Duration::from_secs(60),
    )
    .map_err(|e| format!("upload {TEXT_PHOTO}: {e}"))?;
    let text_id = reply.json_or_null()["id"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("upload {TEXT_PHOTO}: {}", reply.status))?;
    wait_until("the receipt's text read", Duration::from_secs(300), || {
        support::request(
            addr,
            "GET",
            &format!("/api/images/{text_id}"),
            &[],
            b"",
            Duration::from_secs(10),
        )
        .map(|r| r.json_or_null())
        .is_ok_and(|v| {
            v["document"]["text"]
                .as_array()
                .is_some_and(|lines| !lines.is_empty())
        })
    })?;
    wait_until("every photo analysed", Duration::from_secs(300), || {
        support::request(
            addr,
            "GET",
            "/api/images",
            &[],
            b"",
            Duration::from_secs(10),
        )
        .map(|r| r.json_or_null())
        .is_ok_and(|v| {
            v["items"].as_array().is_some_and(|items| {
                items.len() == PHOTOS.len() + 1 && items.iter().all(|i| i["status"] == "done")
            })
        })
    })?;

    let base = format!("http://{addr}");
    let pages = [
        ("gallery", format!("{base}/")),
        ("result", format!("{base}/images/{result_id}")),
        ("result with text", format!("{base}/images/{text_id}")),
        ("login", format!("{base}/login")),
    ];
    let mut rows = Vec::new();
    for (page, url) in &pages {
        let mut cells = Vec::new();
        for form in ["mobile", "desktop"] {
            let mut all = Vec::new();
            for n in 0..runs {
                let file = page.replace(' ', "-");
                let out = reports.join(format!("{file}-{form}-{n}.json"));
                let profile = reports.join(format!("profile-{file}-{form}-{n}"));
                // Lighthouse now and then fails to record a trace (NO_NAVSTART): try again.
                let mut attempt = 1;
                let scores = loop {
                    match lighthouse_run(&lighthouse, &chrome, url, form, &out, &profile) {
                        Ok(scores) => break scores,
                        Err(e) if attempt < 3 => {
                            eprintln!(
                                "lighthouse: {page} {form}: attempt {attempt} failed, again: {e}"
                            );
                            let _ = std::fs::remove_dir_all(&profile);
                            attempt += 1;
                        }
                        Err(e) => return Err(e),
                    }
                };
                eprintln!(
                    "lighthouse: {page} {form} run {}: {:.0} / {:.0} / {:.0}, LCP {:.0} ms, CLS {:.3}, TBT {:.0} ms",
                    n + 1,
                    scores.performance,
                    scores.accessibility,
                    scores.best_practices,
                    scores.lcp_ms,
                    scores.cls,
                    scores.tbt_ms
                );
                let _ = std::fs::remove_dir_all(&profile);
                all.push(scores);
            }
            cells.push(summary(&all));
        }
        rows.push(format!("| {page} | {} | {} |", cells[0], cells[1]));
    }
    let lighthouse_version = support::bench::stdout_of(&lighthouse, &["--version"]);
    let chromium_version = support::bench::stdout_of(&chrome, &["--version"]);
    let date = support::timefmt::format(
        std::time::SystemTime::now(),
        support::timefmt::Precision::Seconds,
    );
    let section = format!(
        "{BEGIN}\n## Lighthouse\n\n\
Written by `cargo run --release --example lighthouse` (examples/lighthouse.rs) on {} {} UTC: \
Lighthouse {lighthouse_version} on {chromium_version}, headless, a fresh profile per run; local \
mode with the five sample photos analysed; the result page is {RESULT_PHOTO}'s, the result \
page with text {TEXT_PHOTO}'s (its lines drawn and listed). Each cell: \
performance / accessibility / best practices, the median of {runs} runs (min–max when they \
differ), then the median LCP, CLS and TBT. Mobile is Lighthouse's default emulation (Moto G \
Power, simulated slow 4G and 4× CPU slowdown); desktop is `--preset=desktop`.\n\n\
| page | mobile | desktop |\n|---|---|---|\n{}\n\n\
Before issue 18 (its audit, Lighthouse 12 by hand, performance / accessibility / best \
practices): gallery 86–87 / 100 / 96 mobile (LCP 4.1 s), 95 / 100 / 96 desktop; result \
88–99 / 97 / 96–100 mobile (CLS 0.235), 98 / 97 / 96 desktop; login 100 / 100 / 100 both.\n{END}\n",
        &date[..10],
        &date[11..19],
        rows.join("\n")
    );
    println!("{section}");
    if write {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/PERFORMANCE.md");
        let doc = std::fs::read_to_string(&path).unwrap_or_default();
        let doc = match (doc.find(BEGIN), doc.find(END)) {
            (Some(b), Some(e)) if e > b => {
                format!(
                    "{}{section}{}",
                    &doc[..b],
                    &doc[e + END.len()..].trim_start_matches('\n')
                )
            }
            _ => format!(
                "{}\n{section}",
                doc.trim_end_matches('\n').to_string() + "\n"
            ),
        };
        std::fs::write(&path, doc).map_err(|e| format!("{}: {e}", path.display()))?;
        eprintln!("lighthouse: wrote {}", path.display());
    }
    Ok(())
}

/// `lighthouse` from `<target dir>/npm`, installed from .ci/npm's lockfile when missing.
fn npm_tools(target_dir: &Path) -> Result<PathBuf, String> {
    let npm_dir = target_dir.join("npm");
    let bin = npm_dir.join("node_modules/.bin/lighthouse");
    let ci = Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/npm");
    let lock = std::fs::read(ci.join("package-lock.json")).map_err(|e| format!(".ci/npm: {e}"))?;
    let installed = std::fs::read(npm_dir.join("package-lock.json")).ok();
    if bin.is_file() && installed.as_deref() == Some(&lock[..]) {
        return Ok(bin);
    }
    std::fs::create_dir_all(&npm_dir).map_err(|e| e.to_string())?;
    for file in ["package.json", "package-lock.json"] {
        std::fs::copy(ci.join(file), npm_dir.join(file)).map_err(|e| format!("{file}: {e}"))?;
    }
    eprintln!("npm ci --ignore-scripts in {}", npm_dir.display());
    let ok = Command::new("npm")
        .args(["ci", "--ignore-scripts", "--no-audit", "--no-fund"])
        .current_dir(&npm_dir)
        .env("PUPPETEER_SKIP_DOWNLOAD", "1")
        .status()
        .is_ok_and(|s| s.success());
    if !ok || !bin.is_file() {
        return Err("npm ci failed: apt-get install npm, and reach the npm registry".into());
    }
    Ok(bin)
}

fn lighthouse_run(
    lighthouse: &Path,
    chrome: &str,
    url: &str,
    form: &str,
    out: &Path,
    profile: &Path,
) -> Result<Scores, String> {
    let mut cmd = Command::new(lighthouse);
    cmd.arg(url)
        .args([
            "--output=json",
            "--quiet",
            "--only-categories=performance,accessibility,best-practices",
            "--max-wait-for-load=60000",
        ])
        .arg(format!("--output-path={}", out.display()))
        .arg(format!(
            "--chrome-flags={CHROME_FLAGS} --user-data-dir={}",
            profile.display()
        ))
        .env("CHROME_PATH", chrome)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if form == "desktop" {
        cmd.arg("--preset=desktop");
    }
    let output = cmd.output().map_err(|e| format!("lighthouse: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "lighthouse {url} ({form}) failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out).map_err(|e| format!("{}: {e}", out.display()))?)
            .map_err(|e| format!("{}: {e}", out.display()))?;
    let score = |category: &str| -> Result<f64, String> {
        report["categories"][category]["score"]
            .as_f64()
            .map(|s| (s * 100.0).round())
            .ok_or_else(|| {
                format!(
                    "{url} ({form}): no {category} score (runtime error: {})",
                    report["runtimeError"]
                )
            })
    };
    let audit = |id: &str| {
        report["audits"][id]["numericValue"]
            .as_f64()
            .unwrap_or(f64::NAN)
    };
    Ok(Scores {
        performance: score("performance")?,
        accessibility: score("accessibility")?,
        best_practices: score("best-practices")?,
        lcp_ms: audit("largest-contentful-paint"),
        cls: audit("cumulative-layout-shift"),
        tbt_ms: audit("total-blocking-time"),
    })
}

fn median(mut values: Vec<f64>) -> f64 {
    support::bench::percentile(&mut values, 50.0)
}

/// "98 (96–99) / 100 / 100 · LCP 1.2 s, CLS 0.000, TBT 0 ms".
fn summary(runs: &[Scores]) -> String {
    let cell = |pick: fn(&Scores) -> f64| {
        let values: Vec<f64> = runs.iter().map(pick).collect();
        let (lo, hi) = values
            .iter()
            .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
        let mid = median(values);
        if lo == hi {
            format!("{mid:.0}")
        } else {
            format!("{mid:.0} ({lo:.0}–{hi:.0})")
        }
    };
    format!(
        "{} / {} / {} · LCP {:.1} s, CLS {:.3}, TBT {:.0} ms",
        cell(|s| s.performance),
        cell(|s| s.accessibility),
        cell(|s| s.best_practices),
        median(runs.iter().map(|s| s.lcp_ms).collect()) / 1000.0,
        median(runs.iter().map(|s| s.cls).collect()),
        median(runs.iter().map(|s| s.tbt_ms).collect()),
    )
}

fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) -> Result<(), String> {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if done() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Err(format!("timed out waiting for {what}"))
}
