//! `detect-bench`: times the local detector and the local text reader on the sample photos (a
//! benchmark, not a test).
//!
//! ```text
//! cargo run --release --example detect-bench [-- ROUNDS]
//! ```
//!
//! Objects: the model load time, then each photo's median latency over ROUNDS runs (default 10;
//! JPEG/PNG decoding included, file reading excluded) and the median over the photos. The first
//! run of each photo is a warm-up and is not counted.
//!
//! Text (PP-OCRv4): the same photos plus the text fixtures (`tests/fixtures/text/`: a sign, a
//! photo with a sign, a 20-line receipt, a photographed page). Each image runs in a fresh child process
//! (`detect-bench --text-one FILE ROUNDS`), so the peak memory printed (the child's `VmHWM`:
//! both models loaded, one image read) is that image's alone; its CPU time per image is printed
//! beside the wall time, which on a shared machine also counts waiting for a core. It asserts
//! nothing and measures one thread only; tract's multithreaded kernels are not enabled.

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use ocivision::detect::{
    Detector, DetectorConfig, LocalDetector, LocalTextReader, TextConfig, TextReader,
};

const PHOTOS: [&str; 5] = [
    "dog.jpg",
    "person.jpg",
    "horses.jpg",
    "astronaut.png",
    "chelsea.png",
];

/// Images with text, under `tests/fixtures/text/`.
const TEXT_IMAGES: [&str; 4] = ["sign.png", "dog-sign.jpg", "receipt.png", "page.png"];

fn main() -> ExitCode {
    support::bench::exit_code("detect-bench", run())
}

fn rounds(arg: Option<String>) -> Result<usize, String> {
    match arg {
        Some(n) => n
            .parse()
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| "ROUNDS must be a positive integer".to_string()),
        None => Ok(10),
    }
}

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let first = args.next();
    if first.as_deref() == Some("--text-one") {
        let file = args.next().ok_or("--text-one needs a file")?;
        return text_one(&file, rounds(args.next())?);
    }
    let rounds = rounds(first)?;
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let dir = fixtures.join("photos");
    objects(&dir, rounds)?;
    println!();
    println!("text (PP-OCRv4, one child process per image; peak = the child's VmHWM)");
    let images = PHOTOS.iter().map(|name| dir.join(name)).chain(
        TEXT_IMAGES
            .iter()
            .map(|name| fixtures.join("text").join(name)),
    );
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    for path in images {
        let output = std::process::Command::new(&exe)
            .arg("--text-one")
            .arg(&path)
            .arg(rounds.to_string())
            .output()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if !output.status.success() {
            return Err(format!(
                "{}: {}",
                path.display(),
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        print!("{}", String::from_utf8_lossy(&output.stdout));
    }
    Ok(())
}

/// Loads the text reader, reads one image ROUNDS times after a warm-up, prints one line.
fn text_one(file: &str, rounds: usize) -> Result<(), String> {
    let bytes = std::fs::read(file).map_err(|e| format!("{file}: {e}"))?;
    let start = Instant::now();
    let reader = LocalTextReader::load(TextConfig::default()).map_err(|e| e.to_string())?;
    let load = start.elapsed();
    let first = reader.read(&bytes)?;
    let mut times = Vec::with_capacity(rounds);
    let cpu_before = cpu_ms();
    for _ in 0..rounds {
        let start = Instant::now();
        reader.read(&bytes)?;
        times.push(start.elapsed());
    }
    let cpu = cpu_ms()
        .zip(cpu_before)
        .map(|(after, before)| (after - before) / rounds as f64);
    let median = median(&mut times);
    let name = std::path::Path::new(file)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut shown: String = first
        .lines
        .iter()
        .map(|l| l.text.as_str())
        .collect::<Vec<_>>()
        .join(" | ");
    if shown.chars().count() > 60 {
        shown = shown.chars().take(57).collect::<String>() + "...";
    }
    println!(
        "{name:<14} median {}  (min {}, max {})  cpu {} ms/image  load {}  peak {} MB  {} lines, {} words  {shown}",
        ms(median),
        ms(times[0]),
        ms(times[times.len() - 1]),
        cpu.map_or("?".into(), |c| format!("{c:.0}")),
        ms(load),
        peak_mb().map_or("?".into(), |mb| format!("{mb:.0}")),
        first.lines.len(),
        first.words.len(),
    );
    Ok(())
}

/// This process's CPU time so far (user + system, `/proc/self/stat`), in milliseconds: on a
/// shared machine the wall time also counts waiting for a core. Linux only, 100 Hz ticks.
fn cpu_ms() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(')')?.1;
    let mut fields = rest.split_whitespace().skip(11);
    let user: f64 = fields.next()?.parse().ok()?;
    let system: f64 = fields.next()?.parse().ok()?;
    Some((user + system) * 10.0)
}

/// This process's peak resident memory (`VmHWM`), in MB; Linux only.
fn peak_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// The object detector on the sample photos.
fn objects(dir: &std::path::Path, rounds: usize) -> Result<(), String> {
    let start = Instant::now();
    let detector = LocalDetector::load(DetectorConfig::default()).map_err(|e| e.to_string())?;
    println!("model load + optimise: {}", ms(start.elapsed()));

    let mut medians = Vec::new();
    for name in PHOTOS {
        let bytes = std::fs::read(dir.join(name)).map_err(|e| format!("{name}: {e}"))?;
        let first = detector.detect(&bytes, 100)?;
        let mut times = Vec::with_capacity(rounds);
        for _ in 0..rounds {
            let start = Instant::now();
            detector.detect(&bytes, 100)?;
            times.push(start.elapsed());
        }
        let median = median(&mut times);
        medians.push(median);
        let top: Vec<String> = first
            .iter()
            .take(3)
            .map(|o| format!("{} {:.3}", o.name, o.confidence))
            .collect();
        println!(
            "{name:<14} median {}  (min {}, max {})  {}",
            ms(median),
            ms(times[0]),
            ms(times[times.len() - 1]),
            top.join(", ")
        );
    }
    println!("median over photos: {}", ms(median(&mut medians)));
    Ok(())
}

/// Sorts `times` and returns the middle value (upper middle for an even count).
fn median(times: &mut [Duration]) -> Duration {
    times.sort_unstable();
    times[times.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}
