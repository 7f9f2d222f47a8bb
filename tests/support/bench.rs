//! What only the benchmarks and the load suite use: finding (and first building) the binaries
//! they measure, wrk, child processes and their memory, the web app as a child of its own, and
//! percentiles.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::Duration;

use ocivision::oci::client::{Auth, Transport, TransportConfig};
use ocivision::web::Settings;
use ocivision::Error;

use super::emulator;

/// The directory that holds this build's binaries (`webapp`, `func`, `emulator`): the parent of
/// `examples/`, where cargo puts this program. Under `cargo run` (which sets `CARGO`) the
/// binaries and the `examples` named are built first with this program's profile and target
/// directory, so a run never measures binaries older than the source; run directly, they are
/// used as they are. Fails when one is missing.
pub fn fresh_binaries(bins: &[&str], examples: &[&str]) -> Result<PathBuf, String> {
    let me = std::env::current_exe().map_err(|e| format!("this program's path: {e}"))?;
    let examples_dir = me.parent().ok_or("this program has no directory")?;
    let bin_dir = examples_dir
        .parent()
        .ok_or("the examples directory has no parent")?
        .to_path_buf();
    if let Ok(cargo) = std::env::var("CARGO") {
        // <target dir>/<profile dir>/examples/<this program>; the dev profile's is `debug`.
        let profile = match bin_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") => "dev".to_string(),
            Some(other) => other.to_string(),
            None => return Err(format!("unexpected binary directory {}", bin_dir.display())),
        };
        let target_dir = bin_dir.parent().ok_or("no target directory")?;
        let mut build = Command::new(cargo);
        build
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["build", "--profile", &profile, "--target-dir"])
            .arg(target_dir);
        for bin in bins {
            build.args(["--bin", bin]);
        }
        for example in examples {
            build.args(["--example", example]);
        }
        without_package_vars(&mut build);
        eprintln!(
            "cargo build --profile {profile} {}",
            bins.iter()
                .map(|b| format!("--bin {b}"))
                .chain(examples.iter().map(|e| format!("--example {e}")))
                .collect::<Vec<_>>()
                .join(" ")
        );
        if !build.status().is_ok_and(|s| s.success()) {
            return Err("building the measured programs failed (see above)".into());
        }
    }
    let missing = bins
        .iter()
        .map(|b| bin_dir.join(b))
        .chain(examples.iter().map(|e| bin_dir.join("examples").join(e)))
        .find(|path| !path.exists());
    if let Some(path) = missing {
        return Err(format!(
            "{} not found: run this through `cargo run --release --example …`, which builds it",
            path.display()
        ));
    }
    Ok(bin_dir)
}

/// A built binary (`webapp`, `func`) beside this program's `examples/` directory.
pub fn binary(name: &str) -> Result<PathBuf, String> {
    built(&format!("../{name}"), "--bins")
}

/// Another example built beside this one.
pub fn example(name: &str) -> Result<PathBuf, String> {
    built(name, "--examples")
}

/// `relative` to this program's directory, when it exists.
fn built(relative: &str, what: &str) -> Result<PathBuf, String> {
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let dir = me.parent().ok_or("this program has no directory")?;
    let path = dir.join(relative);
    match std::fs::canonicalize(&path) {
        Ok(path) => Ok(path),
        Err(_) => Err(format!(
            "{} not found: build it first (cargo build --release {what})",
            path.display()
        )),
    }
}

/// Removes the package's variables `cargo run` gave this process from `command`. Passed on to
/// a nested cargo, they reach build scripts that watch them (ring watches CARGO_MANIFEST_DIR and
/// CARGO_PKG_*), which then rebuild everything here and again in the next plain `cargo build`.
pub fn without_package_vars(command: &mut Command) {
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        let injected = name.starts_with("CARGO_PKG_")
            || [
                "CARGO_MANIFEST_DIR",
                "CARGO_MANIFEST_PATH",
                "CARGO_CRATE_NAME",
                "CARGO_BIN_NAME",
                "CARGO_PRIMARY_PACKAGE",
                "CARGO_RUSTC_CURRENT_DIR",
                "OUT_DIR",
            ]
            .contains(&name.as_ref());
        if injected {
            command.env_remove(name.as_ref());
        }
    }
}

/// What wrk reports of one run.
#[derive(Debug, Clone, Copy)]
pub struct Wrk {
    /// Requests per second.
    pub rps: f64,
    /// 99th percentile latency.
    pub p99_ms: f64,
    /// Answers other than 2xx or 3xx.
    pub non_2xx: u64,
    /// Connect, read, write and timeout errors together.
    pub socket_errors: u64,
}

/// `wrk -t2 -c<conns> -d10s --latency` on `/healthz` at `port`, the open-file limit raised for
/// it (1,000 connections need more than the usual 1,024 descriptors with wrk's own).
pub fn wrk(port: u16, conns: usize) -> Result<Wrk, String> {
    let command = format!(
        "ulimit -n \"$(ulimit -Hn)\"; exec wrk -t2 -c{conns} -d10s --latency http://127.0.0.1:{port}/healthz"
    );
    let out = Command::new("sh")
        .args(["-c", &command])
        .output()
        .map_err(|e| format!("wrk: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    // What follows `label` on the line that starts with it.
    let after = |label: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(label))
            .map(str::trim)
    };
    let rps = after("Requests/sec:")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("wrk output without Requests/sec: {text}"))?;
    let p99_ms = after("99%")
        .and_then(duration_ms)
        .ok_or_else(|| format!("wrk output without a 99% line: {text}"))?;
    let non_2xx = after("Non-2xx or 3xx responses:")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    // "Socket errors: connect 0, read 0, write 0, timeout 0"
    let socket_errors = after("Socket errors:").map_or(0, |v| {
        v.split(',')
            .filter_map(|part| part.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum()
    });
    Ok(Wrk {
        rps,
        p99_ms,
        non_2xx,
        socket_errors,
    })
}

/// A wrk duration (`812.00us`, `1.20ms`, `2.00s`) in milliseconds.
fn duration_ms(text: &str) -> Option<f64> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (n, unit) = text.split_at(split);
    let n: f64 = n.parse().ok()?;
    Some(match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        "m" => n * 60_000.0,
        _ => return None,
    })
}

/// A child process killed when dropped.
pub struct Guard(pub Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A process's peak resident set size (VmHWM), in KiB; `None` once it is gone.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    super::status_field(&format!("/proc/{pid}/status"), "VmHWM").map(|kib| kib as u64)
}

/// The argument that makes a benchmark serve the app instead (see [`AppProcess`]).
pub const SERVE_APP: &str = "--serve-app";

/// In the child: the app (default settings) on the harness's stack in `dir` (started by the
/// parent, its emulator at `base`), with data in `collection`, on a free port printed to stdout
/// as `PORT n`; serves until killed. Silent unless `LOG_LEVEL` is set.
pub fn serve_app(base: &str, dir: &Path, collection: &str) -> Result<(), Error> {
    if std::env::var_os("LOG_LEVEL").is_some() {
        ocivision::logger::init_from(&|name| std::env::var(name).ok())?;
    }
    let wiring = emulator::stack(dir).wiring(base);
    let transport = Transport::new(Auth::Oci(wiring.credentials()?), TransportConfig::default());
    let app = emulator::app_on(&wiring, &transport, collection, Settings::default())?;
    let server = ocivision::web::serve(Arc::new(app), "127.0.0.1:0".parse().unwrap())?;
    println!("PORT {}", server.tcp_addr().unwrap().port());
    std::io::stdout().flush()?;
    server.wait();
    Ok(())
}

/// The web app as a child process (this benchmark run with [`SERVE_APP`]), so its memory is
/// measured apart from the emulator's. Killed when dropped.
pub struct AppProcess {
    child: Guard,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl AppProcess {
    /// Starts it with `env` added and its stderr going to `stderr`.
    pub fn start(
        base: &str,
        dir: &Path,
        collection: &str,
        env: &[(&str, &str)],
        stderr: Stdio,
    ) -> Result<AppProcess, Error> {
        let mut child = Command::new(std::env::current_exe()?)
            .args([SERVE_APP, base, &dir.display().to_string(), collection])
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()?;
        let stdout = child.stdout.take().expect("piped");
        let child = Guard(child);
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let port: u16 = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| Error::Config(format!("the app child said {line:?}")))?;
        Ok(AppProcess {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.0.id()
    }

    /// Peak resident set size so far, in KiB (0 once it is gone).
    pub fn peak_rss_kib(&self) -> u64 {
        peak_rss_kib(self.child.0.id()).unwrap_or(0)
    }
}

/// A free loopback port (free when asked: the caller binds it soon after).
pub fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(listener.local_addr().map_err(|e| e.to_string())?.port())
}

/// Waits up to 120 s for the server `child` started on `port` to answer `GET /healthz` with
/// 200; fails early when it exits.
pub fn wait_healthy(port: u16, child: &mut Child, what: &str) -> Result<(), String> {
    let started = std::time::Instant::now();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    loop {
        let reply = super::request(addr, "GET", "/healthz", &[], b"", Duration::from_secs(5));
        if reply.is_ok_and(|r| r.status == 200) {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("{what} exited: {status}"));
        }
        if started.elapsed() > Duration::from_secs(120) {
            return Err(format!("{what} did not answer /healthz within 120 s"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The middle of `values` (the upper one of two).
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The `p`-th percentile (0–100) of `values` (sorted here), nearest rank; 0 when empty.
pub fn percentile(values: &mut [f64], p: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * values.len() as f64).ceil() as usize;
    values[rank.clamp(1, values.len()) - 1]
}

/// A benchmark's exit: success, or `name: error` on stderr and failure.
pub fn exit_code(name: &str, result: Result<(), impl std::fmt::Display>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The number after the command-line flag `name`, or `default` when the flag is absent.
pub fn number_arg<T: std::str::FromStr>(name: &str, default: T) -> Result<T, String> {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == name) {
        None => Ok(default),
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{name} needs a number")),
    }
}

/// Whether `program` is on the `PATH`.
pub fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program} >/dev/null")])
        .status()
        .is_ok_and(|s| s.success())
}

/// The `webapp` binary `exe` in local mode with its data in `data`, on a free port, as `bench`
/// and `http-bench` run it (`LOG_LEVEL=warn`: no access line per request); its port once it
/// answers `/healthz`.
pub fn start_local_webapp(exe: &Path, data: &Path) -> Result<(Guard, u16), String> {
    let port = free_port()?;
    let mut child = Command::new(exe)
        .env("OCIVISION_DATA", data)
        .env("PORT", port.to_string())
        .env("LOG_LEVEL", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| format!("webapp: {e}"))?;
    wait_healthy(port, &mut child, "webapp")?;
    Ok((Guard(child), port))
}

/// What `program args` prints, trimmed; empty when it cannot run.
pub fn stdout_of(program: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// `USER_HZ`, the unit of /proc/PID/stat times: 100 on every Linux architecture we run on.
pub const TICKS_PER_SECOND: f64 = 100.0;

/// User plus system time of a process, its ended threads included, in clock ticks.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; the fields after its closing parenthesis do not.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // utime and stime are fields 14 and 15, so 12 and 13 after the name.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}
