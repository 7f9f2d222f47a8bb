//! `detect-bench`: times the local detector on the sample photos (a benchmark, not a test).
//!
//! ```text
//! cargo run --release --example detect-bench [-- ROUNDS]
//! ```
//!
//! Prints the model load time, then each photo's median latency over ROUNDS runs (default 10;
//! JPEG/PNG decoding included, file reading excluded) and the median over the photos. The first
//! run of each photo is a warm-up and is not counted. It asserts nothing and measures one
//! thread only; tract's multithreaded kernels are not enabled.

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use ocivision::detect::{Detector, DetectorConfig, LocalDetector};

const PHOTOS: [&str; 5] = [
    "dog.jpg",
    "person.jpg",
    "horses.jpg",
    "astronaut.png",
    "chelsea.png",
];

fn main() -> ExitCode {
    support::bench::exit_code("detect-bench", run())
}

fn run() -> Result<(), String> {
    let rounds: usize = match std::env::args().nth(1) {
        Some(n) => n
            .parse()
            .ok()
            .filter(|&n| n > 0)
            .ok_or("ROUNDS must be a positive integer")?,
        None => 10,
    };
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/photos");

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
