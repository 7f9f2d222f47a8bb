//! `bench`: every performance figure of the project in one run, side by side with what it
//! replaces or competes with, written to docs/PERFORMANCE.md.
//!
//! `cargo run --release --example bench` (build the other binaries first:
//! `cargo build --release --bins --examples`). It drives the other benchmarks as child processes (so each
//! measures in a fresh process, as it would alone) and adds the comparisons:
//! - the function (`func-bench`) against the seed's stack: Python 3.11 with `fdk` and `oci` from
//!   PyPI (bench/python/func.py) under the same Fn contract, emulator and resource principal;
//! - the HTTP layer under real traffic (`http-bench`, issue 13's figures): `/healthz` under wrk
//!   at 32 and 1000 connections interleaved with nginx (1 worker), 10,000 idle keep-alive
//!   connections, 1,000 dripping heads with 200 stalled uploads, every worker busy;
//! - `/healthz` under wrk (`-t2 -c32 -d10s --latency`) against Flask's development server
//!   (bench/python/healthz.py), on loopback;
//! - the gallery and the 5 MB upload ratio (`web-bench`), the local detector (`detect-bench`),
//!   upload → done in local mode (the `webapp` binary);
//! - the shipped binaries' sizes and the images' content: it builds them itself, as the
//!   Dockerfile does (static musl, without the `local` feature, stripped), when the musl target and
//!   musl-gcc are installed, and says what to install otherwise. `-- --only sizes` runs this
//!   part alone and prints it without touching docs/PERFORMANCE.md.
//!
//! `-- --only function` re-measures the function rows alone (Rust and Python) and replaces just
//! those rows and their note in docs/PERFORMANCE.md, with a note saying when.
//!
//! Setup, only when missing: `apt-get install -y nginx wrk`; a venv in target/bench-venv with
//! `pip install fdk oci flask` (kept, so reruns are fast). Ratios are the claims: absolute times
//! depend on the machine, which the document names.

#[path = "../tests/support/mod.rs"]
mod support;
use support::bench::{free_port, have, stdout_of as sh, wait_healthy, without_package_vars, Guard};

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// One row of the table.
struct Row {
    what: String,
    ours: String,
    other: String,
    ratio: String,
    target: String,
    verdict: String,
}

fn row(
    what: &str,
    ours: String,
    other: String,
    ratio: String,
    target: &str,
    verdict: String,
) -> Row {
    Row {
        what: what.into(),
        ours,
        other,
        ratio,
        target: target.into(),
        verdict,
    }
}

/// A row with nothing to compare against.
fn solo(what: &str, ours: String, target: &str, verdict: String) -> Row {
    row(what, ours, "–".into(), "–".into(), target, verdict)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [] => run(),
        ["--only", "sizes"] => print_section(size_rows),
        ["--only", "gallery", rest @ ..] => only_gallery(rest),
        ["--only", "function"] => only_function(),
        _ => {
            eprintln!("usage: bench (everything, writes docs/PERFORMANCE.md) | bench --only function | bench --only sizes | bench --only gallery [gallery-bench output file]");
            std::process::exit(2);
        }
    };
    if let Err(e) = result {
        eprintln!("bench: {e}");
        std::process::exit(1);
    }
}

/// One section alone (`--only sizes`: builds the shipped binaries): the rows and notes `fill`
/// makes, printed as a table and a list. docs/PERFORMANCE.md stays as it is: a partial table
/// must not replace the whole one.
fn print_section(
    fill: impl FnOnce(&mut Vec<Row>, &mut Vec<String>) -> Result<(), String>,
) -> Result<(), String> {
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    fill(&mut rows, &mut notes)?;
    println!("{}", render(&rows));
    for n in &notes {
        println!("- {n}");
    }
    Ok(())
}

/// The gallery rows alone (from a saved `gallery-bench` output, or a fresh run), printed; like
/// `--only sizes`, it leaves docs/PERFORMANCE.md as it is.
fn only_gallery(saved: &[&str]) -> Result<(), String> {
    let out = match saved {
        [file] => std::fs::read_to_string(file).map_err(|e| format!("{file}: {e}"))?,
        _ => run_sibling("gallery-bench", &[])?,
    };
    print_section(|rows, notes| gallery_rows_from(&out, rows, notes))
}

/// The function rows alone (Rust and Python): they replace the function rows and notes of
/// docs/PERFORMANCE.md in place, and a note says when they were measured; the rest stays.
fn only_function() -> Result<(), String> {
    let load = load_average();
    let date = sh("date", &["-u", "+%Y-%m-%d %H:%M UTC"]);
    support::bench::fresh_binaries(&["func"], &["func-bench"])?;
    let python = ensure_venv()?;
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    eprintln!("bench: function (Rust, then Python)");
    function_rows(&python, &mut rows, &mut notes)?;
    println!("{}", render(&rows));
    notes.push(format!(
        "The function rows were measured again on {date} with `cargo run --release --example \
         bench -- --only function` (load average at start {load}); the other rows are from the \
         run this page names."
    ));
    for n in &notes {
        println!("- {n}");
    }
    let path = root().join("docs/PERFORMANCE.md");
    let old = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let doc = with_function_rows(&old, &render(&rows), &notes)?;
    std::fs::write(&path, doc).map_err(|e| format!("{}: {e}", path.display()))?;
    eprintln!("bench: replaced the function rows of {}", path.display());
    Ok(())
}

/// `doc` with its function rows replaced by those of `table`, in order, and its function notes
/// (those [`function_rows`] and [`only_function`] write) by `notes`, first in the notes.
fn with_function_rows(doc: &str, table: &str, notes: &[String]) -> Result<String, String> {
    const FUNCTION_NOTES: [&str; 3] = [
        "- Function outbound requests",
        "- The Python function",
        "- The function rows were measured again",
    ];
    let mut fresh = table.lines().filter(|l| l.starts_with("| function:"));
    let mut out: Vec<String> = Vec::new();
    let mut lines = doc.lines().peekable();
    while let Some(line) = lines.next() {
        if line.starts_with("| function:") {
            let row = fresh
                .next()
                .ok_or("docs/PERFORMANCE.md has more function rows than were measured")?;
            out.push(row.to_string());
        } else if !FUNCTION_NOTES.iter().any(|n| line.starts_with(n)) {
            out.push(line.to_string());
            if line == "## Notes" {
                // The blank line after the heading, then the new notes before the others.
                out.push(lines.next_if(|l| l.is_empty()).unwrap_or("").to_string());
                out.extend(notes.iter().map(|n| format!("- {n}")));
            }
        }
    }
    if fresh.next().is_some() {
        return Err("docs/PERFORMANCE.md has fewer function rows than were measured".into());
    }
    Ok(out.join("\n") + "\n")
}

/// The first three fields of /proc/loadavg.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// The table of `rows`, as Markdown.
fn render(rows: &[Row]) -> String {
    let mut table = String::from(
        "| figure | ocivision | compared with | ratio | target | verdict |\n|---|---|---|---|---|---|\n",
    );
    for r in rows {
        table.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            r.what, r.ours, r.other, r.ratio, r.target, r.verdict
        ));
    }
    table
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run() -> Result<(), String> {
    let load_at_start = load_average();
    let date = sh("date", &["-u", "+%Y-%m-%d %H:%M UTC"]);
    let machine = machine();
    support::bench::fresh_binaries(
        &["webapp", "func"],
        &[
            "func-bench",
            "web-bench",
            "detect-bench",
            "gallery-bench",
            "http-bench",
        ],
    )?;
    let installed = ensure_packages()?;
    let python = ensure_venv()?;
    let tmp = std::env::temp_dir().join(format!("ocivision-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| e.to_string())?;

    let mut rows = Vec::new();
    let mut notes = Vec::new();
    eprintln!("bench: function (Rust, then Python)");
    function_rows(&python, &mut rows, &mut notes)?;
    eprintln!("bench: the HTTP layer against nginx (http-bench, about 5 minutes)");
    http_rows(&mut rows, &mut notes)?;
    eprintln!("bench: /healthz under wrk (webapp, Flask) and upload → done");
    web_rows(&python, &tmp, &mut rows, &mut notes)?;
    eprintln!("bench: gallery and 5 MB upload (web-bench)");
    web_bench_rows(&mut rows, &mut notes)?;
    eprintln!("bench: the gallery at real-photo scale (gallery-bench)");
    if let Err(e) = gallery_rows(&mut rows, &mut notes) {
        notes.push(format!(
            "The gallery at real-photo scale was not measured: {e}"
        ));
    }
    eprintln!("bench: local detector (detect-bench)");
    detector_rows(&mut rows, &mut notes)?;
    eprintln!("bench: the shipped binaries (static musl build, as in the Dockerfile)");
    if let Err(e) = size_rows(&mut rows, &mut notes) {
        notes.push(format!("The shipped binaries were not measured: {e}"));
    }
    let _ = std::fs::remove_dir_all(&tmp);

    let table = render(&rows);
    println!("{table}");
    let path = root().join("docs/PERFORMANCE.md");
    let mut doc = document(&date, &machine, &load_at_start, &installed, &table, &notes);
    // The Lighthouse section is examples/lighthouse.rs's: carried over as it is.
    let old = std::fs::read_to_string(&path).unwrap_or_default();
    if let (Some(b), Some(e)) = (
        old.find("<!-- lighthouse -->"),
        old.find("<!-- /lighthouse -->"),
    ) {
        doc.push('\n');
        doc.push_str(&old[b..e + "<!-- /lighthouse -->".len()]);
        doc.push('\n');
    }
    std::fs::write(&path, doc).map_err(|e| format!("{}: {e}", path.display()))?;
    eprintln!("bench: wrote {}", path.display());
    Ok(())
}

fn document(
    date: &str,
    machine: &str,
    load: &str,
    installed: &str,
    table: &str,
    notes: &[String],
) -> String {
    let notes: String = notes.iter().map(|n| format!("- {n}\n")).collect();
    format!(
        "# Performance\n\n\
Written by `cargo run --release --example bench` (examples/bench.rs) on {date}.\n\n\
Machine: {machine}. Load average at start: {load}. {installed}\n\n\
Ratios are the claims; absolute times belong to this machine. \"ours/theirs\" ratios below 1\n\
mean ocivision is faster or smaller (for requests per second, above 1 means faster).\n\n\
{table}\n\
## Method\n\n\
- **Function** (`func-bench`, run twice): the emulator runs in the benchmark process with a\n\
  detector that answers at once; the function runs as a child exactly as the Fn agent starts\n\
  it (`FN_LISTENER=unix:…`, `FN_FORMAT=http-stream`, resource principal v2.2 with RPST and\n\
  private key files minted by the emulator, region, endpoints pointing at the emulator).\n\
  *exec → ready* is spawn to the `lsnr.sock` link appearing. Each call is a `POST /call` with\n\
  a fresh object's create event; *own time* is the call's wall time minus the time the\n\
  emulator spent serving that call's outbound requests (the emulator records it per request).\n\
  Calls go back to back over one kept-alive connection, as the Fn agent sends them. *CPU time*\n\
  is the child's user + system time over the warm calls (/proc/PID/stat), all threads, per\n\
  event: one warm call is one event.\n\
  Peak RSS is the child's VmHWM after all calls. The comparison is the seed's stack:\n\
  bench/python/func.py, Python 3.11 with `fdk` and `oci` from PyPI, building the\n\
  resource-principal signer and the Object Storage, Vision and Secrets clients on every call\n\
  as the seed did, sending real signed requests (the emulator verifies the signatures), with\n\
  the function's configuration as Terraform writes it (`COMPARTMENT_ID` among it).\n\
  `VISION_TPS=1000`: the Vision pacer's document read and write are in every call, but calls\n\
  back to back never meet its spacing (the region's 10 a second would space them 100 ms).\n\
  `cargo run --release --example bench -- --only function` runs this part alone and replaces\n\
  its rows.\n\
- **HTTP layer** (`http-bench`, examples/http-bench.rs): the `webapp` binary in local mode\n\
  (`LOG_LEVEL=warn`, so no access line per request, like nginx with `access_log off`) and nginx\n\
  with one worker answering `return 200 \"\"` (config written into a temp dir), both on free\n\
  loopback ports. /healthz: `wrk -t2 -c32 -d10s --latency`, then `-c1000` (wrk started with\n\
  `ulimit -n` raised to the hard limit), each as three pairs run back to back, ours then\n\
  nginx's; the ratio is the median of the pairs' ratios, requests/s and p99 are medians. Idle:\n\
  10,000 connections each make one keep-alive `GET /healthz` and stay open; then 20 new\n\
  visitors each time one `GET /healthz` on a new connection, and RSS is read from /proc (nginx:\n\
  master + worker). Slow clients: 1,000 connections send a request head one byte a second and\n\
  200 send `PUT /api/images/…` with `Content-Length: 5000000` and only the first KiB of the\n\
  body, while a visitor does `GET /healthz` on a new connection every 50 ms until every slow\n\
  connection has its answer. Busy: as many `POST /api/images/delete` with a 200 kB body as the\n\
  app has workers send 20 KiB (past the loop's 16 KiB pre-read) and stall, so each holds a\n\
  worker in its handler; then 10 visitors. wrk, the servers and the clients share the\n\
  machine's cores.\n\
- **/healthz vs Flask**: `wrk -t2 -c32 -d10s --latency` against the `webapp` binary, then Flask's\n\
  development server with `threaded=True`.\n\
- **Gallery, uploads, RSS, phone photos**: `web-bench` (examples/web-bench.rs): 10 000 objects\n\
  and documents in the emulator; median of 20 gallery page loads; for 5 MB and for 20 MB, 15\n\
  pairs of a direct signed PUT to the emulator and, right after it, an upload of the same size\n\
  through the app (`PUT /api/images/…`); the ratio is the median of the pairs' ratios (the\n\
  emulator fsyncs each object, and the disk's pace drifts with other writers), the times are\n\
  medians. Peak RSS (VmHWM) of a fresh app child (cloud mode: the emulator in the benchmark\n\
  process) during 16 concurrent uploads of a generated 6000×4000 JPEG of 9.9 MB, three runs,\n\
  with `MALLOC_MMAP_THRESHOLD_=131072` (large blocks mapped and unmapped, as the shipped musl\n\
  build's allocator does). Last byte to thumbnail: the upload's body written on a raw socket,\n\
  the clock started after its last byte, stopped when the thumbnail's bytes have arrived (the\n\
  upload answers once its renditions are stored), 7 runs. Labels: the `webapp` binary in local\n\
  mode analyses each sample photo as it is, stored sideways with EXIF orientation 6, and\n\
  enlarged past 6000 px with grain to 8–10 MB (both reaching Vision only as the function's\n\
  upright copy).\n\
- **Gallery at real-photo scale**: `gallery-bench` (examples/gallery-bench.rs) generates\n\
  4000×3000 JPEGs (the fixture photos stretched, with seeded noise, quality 90). Page: 50 of\n\
  them uploaded through the app, the gallery's HTML written into a same-origin page of a fresh\n\
  headless Chromium (empty cache; lazy loading off, so every tile loads), once as served\n\
  (thumbnails) and once with the tiles pointing at the originals (the page before); bytes are\n\
  the HTML plus the images' Resource Timing `transferSize`, time is from the write to the last\n\
  image's last byte, median of 3 browsers. Renditions: `web::renditions` on a 4 MB photo,\n\
  median of 20. RSS: the app as a child process, VmHWM. Crowd: 16 threads each PUT ten 4 MB\n\
  photos (unique bytes), after one client's ten. Search: 10 000 documents in the emulator,\n\
  `GET /api/images?label=…` pages (1 % and 50 % of the documents match), median.\n\
- **Detector**: `detect-bench`, median per photo of 10 runs, then the median over the five\n\
  photos in tests/fixtures/photos.\n\
- **Upload → done**: the `webapp` binary in local mode (emulator, local ONNX detector and the\n\
  function in one process, data in a temp dir); `PUT /api/images/dog.jpg`, then `GET\n\
  /api/images` every 10 ms until the image is `done`.\n\
- **Sizes**: the static stripped musl binaries the images ship, built by the benchmark with\n\
  the Dockerfile's command (`cargo run --release --example bench -- --only sizes` runs this part\n\
  alone), against `target/release/{{webapp,func}}` (glibc, default features, with the local\n\
  detector in `webapp`). Image content: the binary plus the /etc/passwd and /etc/group the\n\
  Dockerfile writes.\n\n\
## Notes\n\n{notes}"
    )
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!(
        "{} cores (nproc), {cpu}, Linux {}",
        sh("nproc", &[]),
        sh("uname", &["-r"])
    )
}

/// nginx and wrk from Debian, when absent.
fn ensure_packages() -> Result<String, String> {
    let missing: Vec<&str> = ["nginx", "wrk"].into_iter().filter(|p| !have(p)).collect();
    if missing.is_empty() {
        return Ok("nginx and wrk were already installed.".into());
    }
    eprintln!("bench: apt-get install -y {}", missing.join(" "));
    let ok = Command::new("sh")
        .args([
            "-c",
            &format!(
                "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends {}",
                missing.join(" ")
            ),
        ])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        return Err(format!("could not install {}", missing.join(" ")));
    }
    Ok(format!(
        "Installed by the benchmark with apt-get: {}.",
        missing.join(", ")
    ))
}

/// The venv with fdk, oci and flask, under target/ so reruns reuse it.
fn ensure_venv() -> Result<PathBuf, String> {
    let venv = root().join("target/bench-venv");
    let python = venv.join("bin/python");
    let ready = python.exists()
        && Command::new(&python)
            .args(["-c", "import fdk, oci, flask"])
            .status()
            .is_ok_and(|s| s.success());
    if ready {
        return Ok(python);
    }
    eprintln!(
        "bench: creating {} (pip install fdk oci flask)",
        venv.display()
    );
    let venv_text = venv.display().to_string();
    let ok = Command::new("python3")
        .args(["-m", "venv", &venv_text])
        .status()
        .is_ok_and(|s| s.success())
        && Command::new(venv.join("bin/pip"))
            .args(["install", "-q", "fdk", "oci", "flask"])
            .status()
            .is_ok_and(|s| s.success());
    if ok {
        Ok(python)
    } else {
        Err("could not create the Python venv".into())
    }
}

/// Runs a sibling benchmark; its stdout, or as the error one line: its last line of stderr,
/// cut short, with this checkout's paths relative (a note holds no stack trace and no paths
/// of the machine it ran on).
fn run_sibling(name: &str, args: &[&str]) -> Result<String, String> {
    let output = Command::new(support::bench::example(name)?)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{name}: {e}"))?;
    if output.status.success() {
        return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
    }
    let here = format!("{}/", root().display());
    let err = String::from_utf8_lossy(&output.stderr).replace(&here, "");
    let last = err
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    let mut cut: String = last.chars().take(200).collect();
    if cut.len() < last.len() {
        cut.push('…');
    }
    Err(format!(
        "{name} {} failed: {cut}",
        args.join(" ").replace(&here, "")
    ))
}

fn ratio(ours: f64, theirs: f64) -> String {
    if theirs > 0.0 {
        format!("{:.3}", ours / theirs)
    } else {
        "–".into()
    }
}

/// "ocivision" when `ours` is the smaller (lower is better).
fn lower_wins(ours: f64, theirs: f64) -> String {
    if ours <= theirs {
        format!("ocivision ({:.1}× less)", theirs / ours.max(1e-9))
    } else {
        format!("the other side ({:.1}× less)", ours / theirs.max(1e-9))
    }
}

fn meets(value: f64, limit: f64) -> &'static str {
    if value <= limit {
        "meets"
    } else {
        "misses"
    }
}

fn function_rows(
    python: &Path,
    rows: &mut Vec<Row>,
    notes: &mut Vec<String>,
) -> Result<(), String> {
    let calls = "100";
    let rust: Value = serde_json::from_str(
        run_sibling("func-bench", &["--calls", calls, "--json"])?
            .lines()
            .last()
            .unwrap_or(""),
    )
    .map_err(|e| format!("func-bench output: {e}"))?;
    let script = root().join("bench/python/func.py").display().to_string();
    // The fdk's entry point, as the Fn image runs it: `fdk func.py handler`.
    let python_text = python.with_file_name("fdk").display().to_string();
    let py: Option<Value> = match run_sibling(
        "func-bench",
        &[
            "--calls",
            calls,
            "--json",
            "--python",
            &python_text,
            &script,
        ],
    ) {
        Ok(out) => serde_json::from_str(out.lines().last().unwrap_or("")).ok(),
        Err(e) => {
            notes.push(format!(
                "The Python function could not be measured end to end: {e}"
            ));
            None
        }
    };
    let get = |v: &Value, k: &str| v[k].as_f64().unwrap_or(f64::NAN);
    // The function's figures: start-up, first call, then per event its latency with its CPU
    // time beside it, and memory. ("Own time", the latency minus the emulator's share, is in
    // the notes: a hosted Vision call dwarfs it, so it carries no target.)
    let figures: [(&str, &str, Option<f64>); 4] = [
        ("function: exec → socket ready (ms)", "ready_ms", Some(5.0)),
        ("function: first call, wall (ms)", "first_wall_ms", None),
        (
            "function: per event (warm call), wall, median (ms)",
            "warm_wall_median_ms",
            None,
        ),
        (
            "function: per event (warm call), CPU time, mean, all threads (ms)",
            "warm_cpu_ms",
            None,
        ),
    ];
    // The Python side's cell, the ratio and who wins, from `theirs` of `py`.
    let against = |ours: f64, theirs: &dyn Fn(&Value) -> f64, cell: &dyn Fn(f64) -> String| {
        py.as_ref()
            .map_or(("not measured".into(), "–".into(), "–".into()), |p| {
                let theirs = theirs(p);
                (cell(theirs), ratio(ours, theirs), lower_wins(ours, theirs))
            })
    };
    for (what, key, target) in figures {
        let ours = get(&rust, key);
        let (other, r, verdict) = against(ours, &|p| get(p, key), &|theirs| {
            format!("{theirs:.2} (Python fdk + oci)")
        });
        let (target_text, verdict) = match target {
            Some(t) => (
                format!("≤ {t} ms"),
                format!("{}; {verdict}", meets(ours, t)),
            ),
            None => (String::new(), verdict),
        };
        rows.push(row(
            what,
            format!("{ours:.2}"),
            other,
            r,
            &target_text,
            verdict,
        ));
    }
    let rss = |v: &Value| v["peak_rss_kib"].as_f64().unwrap_or(f64::NAN) / 1024.0;
    let ours = rss(&rust);
    let (other, r, verdict) = against(ours, &rss, &|theirs| format!("{theirs:.1} MB (Python)"));
    rows.push(row(
        "function: peak RSS",
        format!("{ours:.1} MB"),
        other,
        r,
        "≤ 10 MB",
        format!("{}; {verdict}", meets(ours, 10.0)),
    ));
    let own = |v: &Value| {
        format!(
            "{:.2} ms median, {:.2} ms p90",
            get(v, "warm_own_median_ms"),
            get(v, "warm_own_p90_ms")
        )
    };
    notes.push(format!(
        "Function outbound requests per call, first / warm: ocivision {} / {}{}. Warm call own \
         time (wall minus the emulator's time serving the call's requests): ocivision {}{}.",
        rust["outbound_first"],
        rust["outbound_warm"],
        py.as_ref()
            .map(|p| format!(", Python {} / {}", p["outbound_first"], p["outbound_warm"]))
            .unwrap_or_default(),
        own(&rust),
        py.as_ref()
            .map(|p| format!(", Python {}", own(p)))
            .unwrap_or_default(),
    ));
    Ok(())
}

/// One request on a fresh connection: status and body.
fn request(port: u16, method: &str, target: &str, body: &[u8]) -> std::io::Result<(u16, Vec<u8>)> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let reply = support::request(addr, method, target, &[], body, Duration::from_secs(60))?;
    Ok((reply.status, reply.body))
}

/// wrk's requests per second and p99 latency in ms, 32 connections.
fn wrk(port: u16) -> Result<(f64, f64), String> {
    let run = support::bench::wrk(port, 32)?;
    if run.non_2xx > 0 || run.socket_errors > 0 {
        eprintln!(
            "bench: wrk reported {} non-2xx answers and {} socket errors",
            run.non_2xx, run.socket_errors
        );
    }
    Ok((run.rps, run.p99_ms))
}

/// Issue 13's figures from `http-bench`: the HTTP layer against nginx and under slow clients.
fn http_rows(rows: &mut Vec<Row>, notes: &mut Vec<String>) -> Result<(), String> {
    let out = run_sibling("http-bench", &["--json"])?;
    let f: Value = serde_json::from_str(out.lines().last().unwrap_or(""))
        .map_err(|e| format!("http-bench output: {e}: {out}"))?;
    let num = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    let int = |v: &Value| v.as_u64().unwrap_or(u64::MAX);
    for (key, conns, target) in [("c32", 32, 0.8), ("c1000", 1000, 0.7)] {
        let v = &f[key];
        let (ours, theirs) = (num(&v["ours"]["rps"]), num(&v["nginx"]["rps"]));
        let pair_ratio = num(&v["ratio"]);
        let errors = int(&v["ours"]["non_2xx"]).saturating_add(int(&v["ours"]["socket_errors"]));
        let mut verdict = meets_at_least(pair_ratio, target).to_string();
        if conns == 1000 {
            verdict = format!(
                "{verdict}; {}",
                if errors == 0 {
                    "no non-2xx, no socket errors".to_string()
                } else {
                    format!("misses: {errors} non-2xx or socket errors")
                }
            );
        }
        rows.push(row(
            &format!(
                "/healthz, {conns} connections: requests/s vs nginx (1 worker), median of 3 interleaved pairs"
            ),
            format!("{ours:.0}"),
            format!("{theirs:.0}"),
            format!("{pair_ratio:.3}"),
            &format!("≥ {target}× nginx"),
            verdict,
        ));
        let (p_ours, p_theirs) = (num(&v["ours"]["p99_ms"]), num(&v["nginx"]["p99_ms"]));
        rows.push(row(
            &format!("/healthz, {conns} connections: p99 latency vs nginx (ms)"),
            format!("{p_ours:.2}"),
            format!("{p_theirs:.2}"),
            ratio(p_ours, p_theirs),
            "",
            lower_wins(p_ours, p_theirs),
        ));
        notes.push(format!(
            "/healthz at {conns} connections, pair ratios {}; non-2xx + socket errors: ocivision {}, nginx {}.",
            v["pairs"].as_array().map_or_else(String::new, |p| p
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", ")),
            errors,
            int(&v["nginx"]["non_2xx"]).saturating_add(int(&v["nginx"]["socket_errors"])),
        ));
    }
    let idle = &f["idle"];
    let (ours, theirs) = (&idle["ocivision"], &idle["nginx"]);
    let visitor = num(&ours["visitor_max_ms"]);
    rows.push(row(
        "10,000 idle keep-alive connections held: new visitor's GET /healthz, slowest of 20 (ms)",
        format!("{visitor:.2}"),
        format!("{:.2}", num(&theirs["visitor_max_ms"])),
        ratio(visitor, num(&theirs["visitor_max_ms"])),
        "≤ 50 ms",
        meets(visitor, 50.0).to_string(),
    ));
    let rss = num(&ours["rss_mb"]);
    rows.push(row(
        "10,000 idle keep-alive connections held: RSS (MB; nginx: master + worker)",
        format!("{rss:.1}"),
        format!("{:.1}", num(&theirs["rss_mb"])),
        ratio(rss, num(&theirs["rss_mb"])),
        "≤ 64 MB",
        meets(rss, 64.0).to_string(),
    ));
    notes.push(format!(
        "Idle connections: ocivision's RSS was {:.1} MB before the 10,000 and {rss:.1} MB holding \
         them (nginx {:.1} → {:.1} MB); all 20 visitors answered 200: ocivision {}, nginx {}.",
        num(&ours["rss_before_mb"]),
        num(&theirs["rss_before_mb"]),
        num(&theirs["rss_mb"]),
        ours["visitors_ok"],
        theirs["visitors_ok"],
    ));
    let slow = &f["slow"];
    let p99 = num(&slow["visitor_p99_ms"]);
    let visitor_errors = int(&slow["visitor_errors"]);
    rows.push(solo(
        "1,000 heads dripping 1 byte/s + 200 stalled uploads: other visitors' p99 (ms)",
        format!("{p99:.2}"),
        "≤ 50 ms, no errors",
        if p99 <= 50.0 && visitor_errors == 0 {
            "meets".to_string()
        } else {
            format!("misses ({visitor_errors} errors)")
        },
    ));
    let all_408 = int(&slow["drips_408"]) == int(&slow["drips"])
        && int(&slow["stalled_408"]) == int(&slow["stalled"]);
    rows.push(solo("the same: slow connections answered 408 (head deadline 10 s, body deadline 120 s; s after start)", format!(
            "{}/{} heads at {:.1}–{:.1}, {}/{} uploads at {:.1}–{:.1}",
            slow["drips_408"],
            slow["drips"],
            num(&slow["drip_answer_min_s"]),
            num(&slow["drip_answer_max_s"]),
            slow["stalled_408"],
            slow["stalled"],
            num(&slow["stalled_answer_min_s"]),
            num(&slow["stalled_answer_max_s"]),
        ), "each 408 at its deadline", if all_408 { "meets" } else { "misses" }.to_string()));
    notes.push(format!(
        "Slow clients: {} visitor requests, p50 {:.2} ms, p99 {p99:.2} ms, max {:.2} ms, {visitor_errors} errors.",
        slow["visitors"],
        num(&slow["visitor_p50_ms"]),
        num(&slow["visitor_max_ms"]),
    ));
    let busy = &f["busy"];
    let all_503 = int(&busy["busy_503"]) == int(&busy["visitors"]);
    let slowest = num(&busy["max_ms"]);
    rows.push(solo(
        &format!(
            "every worker ({}) busy in a handler: time to 503 + Retry-After, slowest of 10 (ms)",
            f["workers"]
        ),
        format!("{slowest:.1}"),
        "fast 503 + Retry-After, never a hang",
        if all_503 && busy["served_after"] == true {
            format!(
                "meets (Retry-After {}; served again afterwards)",
                busy["retry_after"]
            )
        } else {
            format!(
                "misses ({} of {} got 503; served afterwards: {})",
                busy["busy_503"], busy["visitors"], busy["served_after"]
            )
        },
    ));
    Ok(())
}

/// "meets" when `value` is at least `limit` (higher is better).
fn meets_at_least(value: f64, limit: f64) -> &'static str {
    if value >= limit {
        "meets"
    } else {
        "misses"
    }
}

fn web_rows(
    python: &Path,
    tmp: &Path,
    rows: &mut Vec<Row>,
    notes: &mut Vec<String>,
) -> Result<(), String> {
    // The web app in local mode.
    let exe = support::bench::binary("webapp")?;
    let (app, port) = support::bench::start_local_webapp(&exe, &tmp.join("webapp-data"))?;
    let ours = wrk(port)?;

    // Upload → done on the same instance (the local detector is real).
    let dir = root().join("tests/fixtures/photos");
    let mut done_ms = Vec::new();
    for name in [
        "dog.jpg",
        "horses.jpg",
        "person.jpg",
        "chelsea.png",
        "astronaut.png",
    ] {
        let bytes = std::fs::read(dir.join(name)).map_err(|e| format!("{name}: {e}"))?;
        done_ms.push((name, upload_to_done(port, name, &bytes)?));
    }
    drop(app);

    // Flask's development server.
    let flask_port = free_port()?;
    let mut flask = Guard(
        Command::new(python)
            .arg(root().join("bench/python/healthz.py"))
            .arg(flask_port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("flask: {e}"))?,
    );
    wait_healthy(flask_port, &mut flask.0, "flask")?;
    let flask_figures = wrk(flask_port)?;
    drop(flask);

    let higher_wins = |ours: f64, theirs: f64| {
        if ours >= theirs {
            format!("ocivision ({:.2}×)", ours / theirs)
        } else {
            format!("the other side ({:.2}×)", theirs / ours)
        }
    };
    rows.push(row(
        "/healthz, 32 connections: requests/s vs Flask dev server",
        format!("{:.0}", ours.0),
        format!("{:.0}", flask_figures.0),
        ratio(ours.0, flask_figures.0),
        "",
        higher_wins(ours.0, flask_figures.0),
    ));
    rows.push(row(
        "/healthz, 32 connections: p99 latency vs Flask (ms)",
        format!("{:.2}", ours.1),
        format!("{:.2}", flask_figures.1),
        ratio(ours.1, flask_figures.1),
        "",
        lower_wins(ours.1, flask_figures.1),
    ));
    let dog = done_ms[0].1;
    let mut all: Vec<f64> = done_ms.iter().map(|(_, ms)| *ms).collect();
    all.sort_by(f64::total_cmp);
    rows.push(solo(
        "upload → done, local mode, dog.jpg (ms)",
        format!("{dog:.0}"),
        "",
        "no comparison run".into(),
    ));
    notes.push(format!(
        "Upload → done per photo, local mode (ms): {}; median {:.0}.",
        done_ms
            .iter()
            .map(|(n, ms)| format!("{n} {ms:.0}"))
            .collect::<Vec<_>>()
            .join(", "),
        all[all.len() / 2]
    ));
    Ok(())
}

/// PUT the photo, then poll `GET /api/images` until it is `done`; milliseconds.
fn upload_to_done(port: u16, name: &str, bytes: &[u8]) -> Result<f64, String> {
    let started = Instant::now();
    let (status, body) =
        request(port, "PUT", &format!("/api/images/{name}"), bytes).map_err(|e| e.to_string())?;
    if status != 201 {
        return Err(format!(
            "upload of {name} answered {status}: {}",
            String::from_utf8_lossy(&body)
        ));
    }
    let reply: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
    let id = reply["id"]
        .as_str()
        .ok_or("the upload answer has no id")?
        .to_string();
    loop {
        let (_, body) = request(port, "GET", "/api/images", b"").map_err(|e| e.to_string())?;
        let list: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let status = list["items"]
            .as_array()
            .and_then(|items| items.iter().find(|i| i["id"] == id.as_str()))
            .and_then(|i| i["status"].as_str())
            .unwrap_or("")
            .to_string();
        match status.as_str() {
            "done" => return Ok(started.elapsed().as_secs_f64() * 1000.0),
            "failed" => return Err(format!("{name} failed analysis: {list}")),
            _ => {}
        }
        if started.elapsed() > Duration::from_secs(60) {
            return Err(format!(
                "{name} was not done after 60 s (status {status:?})"
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The first number after `label` in `text`.
fn number_after(text: &str, label: &str) -> Option<f64> {
    let rest = &text[text.find(label)? + label.len()..];
    let start = rest.find(|c: char| c.is_ascii_digit())?;
    let rest = &rest[start..];
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

fn web_bench_rows(rows: &mut Vec<Row>, notes: &mut Vec<String>) -> Result<(), String> {
    let out = run_sibling("web-bench", &[])?;
    let gallery = number_after(&out, "gallery page (50 of 10000 images): median")
        .ok_or_else(|| format!("web-bench output: {out}"))?;
    rows.push(solo(
        "gallery page, 10 000 documents, median (ms)",
        format!("{gallery:.1}"),
        "",
        "no comparison run".into(),
    ));
    for size in ["5 MB", "20 MB"] {
        let line = out
            .lines()
            .find(|l| l.starts_with(&format!("{size} upload:")))
            .ok_or_else(|| format!("web-bench: no {size} upload line"))?;
        let direct = number_after(line, "direct PUT").ok_or("web-bench: no direct PUT figure")?;
        let app = number_after(line, "through the app").ok_or("web-bench: no upload figure")?;
        let paired = number_after(line, ", ratio").ok_or("web-bench: no upload ratio")?;
        rows.push(row(
            &format!(
                "{size} upload: through the app vs direct PUT (ms; ratio: median of 15 interleaved pairs)"
            ),
            format!("{app:.1}"),
            format!("{direct:.1}"),
            format!("{paired:.3}"),
            "≤ 1.25",
            meets(paired, 1.25).to_string(),
        ));
    }
    let peak = out
        .lines()
        .find(|l| l.starts_with("peak RSS, 16 concurrent"))
        .and_then(|l| number_after(l, "median"))
        .ok_or("web-bench: no peak RSS figure")?;
    rows.push(solo(
        "web app peak RSS, 16 concurrent 10 MB 24 MP uploads, cloud mode (MiB, median of 3 runs)",
        format!("{peak:.1}"),
        "≤ 128 MiB",
        meets(peak, 128.0).to_string(),
    ));
    let latency = number_after(&out, "last byte to thumbnail served: median")
        .ok_or("web-bench: no thumbnail latency")?;
    rows.push(solo(
        "10 MB 24 MP upload: last byte to thumbnail served, median of 7 (ms)",
        format!("{latency:.0}"),
        "≤ 400 ms",
        meets(latency, 400.0).to_string(),
    ));
    let same = out.contains("original vs the upright copy: identical");
    rows.push(solo(
        "local detector's labels on the sample photos: original vs the upright copy",
        if same { "identical" } else { "different" }.into(),
        "identical",
        if same { "meets" } else { "misses" }.into(),
    ));
    for line in out.lines() {
        notes.push(format!("web-bench: {}", line.trim()));
    }
    Ok(())
}

/// The numbers after `label` in `text`, in order.
fn numbers_after(text: &str, label: &str) -> Vec<f64> {
    let Some(at) = text.find(label) else {
        return Vec::new();
    };
    let line = text[at + label.len()..].lines().next().unwrap_or("");
    line.split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .filter_map(|n| n.parse().ok())
        .collect()
}

fn gallery_rows(rows: &mut Vec<Row>, notes: &mut Vec<String>) -> Result<(), String> {
    let out = run_sibling("gallery-bench", &[])?;
    gallery_rows_from(&out, rows, notes)
}

fn gallery_rows_from(
    out: &str,
    rows: &mut Vec<Row>,
    notes: &mut Vec<String>,
) -> Result<(), String> {
    let missing = || format!("gallery-bench output: {out}");
    let before = numbers_after(out, "gallery page before (originals):");
    let after = numbers_after(out, "gallery page after (thumbnails):");
    if let ([b_mb, b_ms, ..], [a_mb, a_ms, ..]) = (before.as_slice(), after.as_slice()) {
        rows.push(row(
            "gallery page of 50 phone photos (4000×3000): bytes downloaded, thumbnails vs originals (MB)",
            format!("{a_mb:.2}"),
            format!("{b_mb:.2} (before: originals)"),
            ratio(*a_mb, *b_mb),
            "≤ 3 MB",
            format!("{}; {}", meets(*a_mb, 3.0), lower_wins(*a_mb, *b_mb)),
        ));
        rows.push(row(
            "gallery page of 50 phone photos: every image loaded in headless Chromium (ms)",
            format!("{a_ms:.0}"),
            format!("{b_ms:.0} (before: originals)"),
            ratio(*a_ms, *b_ms),
            "",
            lower_wins(*a_ms, *b_ms),
        ));
    } else {
        notes.push(
            "The gallery page was not measured in Chromium (see gallery-bench's output).".into(),
        );
    }
    let made = numbers_after(out, "JPEG: median");
    let made = *made.first().ok_or_else(missing)?;
    rows.push(solo(
        "thumbnail + preview of a 4 MB 4000×3000 JPEG, median (ms)",
        format!("{made:.1}"),
        "≤ 150 ms",
        meets(made, 150.0).to_string(),
    ));
    let rss = numbers_after(out, "MB photos):");
    let rss = *rss.first().ok_or_else(missing)?;
    rows.push(solo(
        "web app peak RSS during 3 concurrent 5 MB uploads (MiB)",
        format!("{rss:.1}"),
        "≤ 150 MB",
        meets(rss, 150.0).to_string(),
    ));
    let crowd = numbers_after(
        out,
        "16 clients × 10 4 MB uploads (glibc malloc, defaults):",
    );
    let mapped = numbers_after(out, "(large blocks mapped, as musl does)):");
    if let [uploads, busy, _other, _wall, peak, median_ms, _p90, alone, ..] = crowd.as_slice() {
        rows.push(solo(
            "16 clients × ten 4 MB uploads at once: answers 503 (of uploads)",
            format!("{busy:.0} of {uploads:.0}"),
            "0",
            meets(*busy, 0.0).to_string(),
        ));
        rows.push(row(
            "16 clients × ten 4 MB uploads: median upload vs one client alone (ms)",
            format!("{median_ms:.0}"),
            format!("{alone:.0} (one client)"),
            ratio(*median_ms, *alone),
            "",
            "16 uploads share 2 cores and one disk".into(),
        ));
        let (other, r) = match mapped.get(4) {
            Some(m) => (
                format!("{m:.1} (large blocks mapped, as musl's malloc does)"),
                ratio(*peak, *m),
            ),
            None => ("–".into(), "–".into()),
        };
        rows.push(row(
            "16 clients × ten 4 MB uploads: web app peak RSS, glibc malloc defaults (MiB)",
            format!("{peak:.1}"),
            other,
            r,
            "",
            "the memory rule budgets 256 MiB of live data".into(),
        ));
    } else {
        return Err(missing());
    }
    // Part 5's lines: "label search over …: median M ms over R interleaved rounds (spread L–H
    // ms) (…)", and the same for "word search (q=)".
    for (what, figure) in [
        ("label search", "label search"),
        (
            "word search (q=)",
            "word search (q=, a word of the photos' text)",
        ),
    ] {
        let line = out
            .lines()
            .find(|l| l.trim_start().starts_with(what))
            .ok_or_else(missing)?;
        let median = number_after(line, ": median").ok_or_else(missing)?;
        let spread = line
            .find("(spread ")
            .map(|i| &line[i + "(spread ".len()..])
            .and_then(|rest| rest.split(" ms)").next())
            .unwrap_or("");
        rows.push(solo(
            &format!(
                "{figure} over 10 000 documents with text (emulator), one page through the app, median of 5 interleaved rounds (ms; spread)"
            ),
            format!("{median:.1} ({spread})"),
            "≤ 20 ms",
            meets(median, 20.0).to_string(),
        ));
    }
    for line in out.lines() {
        notes.push(format!("gallery-bench: {}", line.trim()));
    }
    Ok(())
}

fn detector_rows(rows: &mut Vec<Row>, notes: &mut Vec<String>) -> Result<(), String> {
    let out = match run_sibling("detect-bench", &[]) {
        Ok(out) => out,
        Err(e) => {
            notes.push(format!("The local detector was not measured: {e}"));
            return Ok(());
        }
    };
    let median = number_after(&out, "median over photos:")
        .ok_or_else(|| format!("detect-bench output: {out}"))?;
    rows.push(solo(
        "local detector, median over the five photos (ms)",
        format!("{median:.1}"),
        "≤ 60 ms",
        meets(median, 60.0).to_string(),
    ));
    for line in out.lines() {
        notes.push(format!("detect-bench: {}", line.trim()));
    }
    Ok(())
}

/// The musl target the images are built for.
const MUSL_TARGET: &str = "x86_64-unknown-linux-musl";
/// The size limit of each shipped binary, as .ci/deploy-checks enforces it (15 MiB).
const MAX_SHIPPED_BYTES: u64 = 15 * 1024 * 1024;

/// The target directory this binary was built into (`<target>/<profile>/bench`), so the musl
/// build lands beside it whatever `CARGO_TARGET_DIR` or `--target-dir` said.
fn target_dir() -> Result<PathBuf, String> {
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    me.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .ok_or_else(|| format!("no target directory above {}", me.display()))
}

/// What is missing for the musl build, as the commands that install it; empty when nothing is.
fn musl_missing() -> Vec<String> {
    let mut missing = Vec::new();
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l.trim() == MUSL_TARGET)
        })
        .unwrap_or(false);
    if !installed {
        missing.push(format!("`rustup target add {MUSL_TARGET}`"));
    }
    if !have("musl-gcc") {
        // ring compiles its C and assembly parts with musl-gcc for the musl target.
        missing.push("`apt-get install musl-tools` (for musl-gcc)".into());
    }
    missing
}

/// The files the Dockerfile writes into each image beside the binary (/etc/passwd and
/// /etc/group), read from its `printf '…' > "/rootfs/${app}/etc/…"` lines so they stay in step.
fn image_extras() -> Result<Vec<(String, usize)>, String> {
    let path = root().join("Dockerfile");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.split("printf '").nth(1) else {
            continue;
        };
        let Some((content, tail)) = rest.split_once('\'') else {
            continue;
        };
        let Some(file) = tail.split("/etc/").nth(1) else {
            continue;
        };
        let name = format!(
            "/etc/{}",
            file.trim_end_matches(['"', ' ', '\\', ';']).trim()
        );
        // printf turns each `\n` into one byte.
        out.push((name, content.replace("\\n", "\n").len()));
    }
    if out.is_empty() {
        return Err(format!("no printf lines found in {}", path.display()));
    }
    Ok(out)
}

/// Builds the shipped binaries exactly as the Dockerfile does (static musl, without the `local` feature,
/// symbols stripped through the environment) and reports their sizes, the images' content
/// and, for comparison, the glibc binaries beside this one (default features).
fn size_rows(rows: &mut Vec<Row>, notes: &mut Vec<String>) -> Result<(), String> {
    let missing = musl_missing();
    if !missing.is_empty() {
        return Err(format!(
            "the {MUSL_TARGET} build needs {}; install and rerun `cargo run --release --example bench -- --only sizes`",
            missing.join(" and ")
        ));
    }
    let target = target_dir()?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let args = [
        "build",
        "--release",
        "--locked",
        "--no-default-features",
        "--target",
        MUSL_TARGET,
        "--bin",
        "webapp",
        "--bin",
        "func",
    ];
    eprintln!(
        "bench: CARGO_PROFILE_RELEASE_STRIP=symbols cargo {} --target-dir {}",
        args.join(" "),
        target.display()
    );
    let started = Instant::now();
    let mut build = Command::new(&cargo);
    build
        .current_dir(root())
        .env("CARGO_PROFILE_RELEASE_STRIP", "symbols")
        .args(args)
        .arg("--target-dir")
        .arg(&target)
        .stdin(Stdio::null());
    without_package_vars(&mut build);
    let ok = build.status().is_ok_and(|s| s.success());
    if !ok {
        return Err(format!("`cargo {}` failed (see above)", args.join(" ")));
    }
    let build_time = started.elapsed();
    let extras = image_extras()?;
    let extra_bytes: usize = extras.iter().map(|(_, n)| n).sum();
    let musl = target.join(MUSL_TARGET).join("release");
    // The glibc builds beside this binary.
    let glibc = support::bench::binary("webapp")
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_default();
    let bytes = |p: &Path| std::fs::metadata(p).ok().map(|m| m.len());
    let mb = |b: u64| b as f64 / 1e6;
    for bin in ["webapp", "func"] {
        let shipped = bytes(&musl.join(bin))
            .ok_or_else(|| format!("{} is missing after the build", musl.join(bin).display()))?;
        let (other, r) = match bytes(&glibc.join(bin)) {
            Some(g) => (
                format!("{:.1} MB (glibc, default features)", mb(g)),
                ratio(mb(shipped), mb(g)),
            ),
            None => ("glibc build not found".into(), "–".into()),
        };
        rows.push(row(
            &format!("binary size: {bin} (static musl, stripped, as shipped)"),
            format!("{:.2} MB ({shipped} bytes)", mb(shipped)),
            other,
            r,
            "≤ 15 MiB (.ci/deploy-checks)",
            meets(shipped as f64, MAX_SHIPPED_BYTES as f64).to_string(),
        ));
        let content = shipped + extra_bytes as u64;
        rows.push(solo(
            &format!("image content: {bin} (scratch)"),
            format!("{:.2} MB ({content} bytes)", mb(content)),
            "",
            "no comparison run".into(),
        ));
    }
    notes.push(format!(
        "The shipped binaries were built by the benchmark with the Dockerfile's command \
         (`CARGO_PROFILE_RELEASE_STRIP=symbols cargo {}`, {:.0} s including any recompilation) \
         into the target directory's {MUSL_TARGET}/release. Each image is `scratch` holding the binary, {} and an empty /tmp: its content \
         is the binary plus {extra_bytes} bytes (compressed layers are smaller).",
        args.join(" "),
        build_time.as_secs_f64(),
        extras
            .iter()
            .map(|(name, n)| format!("{name} ({n} bytes)"))
            .collect::<Vec<_>>()
            .join(", "),
    ));
    Ok(())
}
