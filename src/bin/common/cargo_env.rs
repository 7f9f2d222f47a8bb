//! Shared by the `bench` and `loadtest` binaries (each includes this file as a module), which
//! start a nested `cargo build` for the binaries they measure, so that a run never measures
//! binaries older than the source.

use std::path::PathBuf;
use std::process::Command;

/// The directory of this binary, where `bins` are. Under `cargo run` (which sets `CARGO`) they
/// are built first with this binary's profile, target dir and features; run directly, they are
/// used as they are. Fails when one is missing.
pub fn fresh_siblings(bins: &[&str]) -> Result<PathBuf, String> {
    let me = std::env::current_exe().map_err(|e| format!("this binary's path: {e}"))?;
    let bin_dir = me
        .parent()
        .ok_or("this binary has no directory")?
        .to_path_buf();
    if let Ok(cargo) = std::env::var("CARGO") {
        // <target dir>/<profile dir>/<this binary>; the dev profile's directory is `debug`.
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
        if !cfg!(feature = "local-vision") {
            build.arg("--no-default-features");
        }
        without_package_vars(&mut build);
        eprintln!(
            "cargo build --profile {profile} --bin {}",
            bins.join(" --bin ")
        );
        if !build.status().is_ok_and(|s| s.success()) {
            return Err(format!("building {} failed (see above)", bins.join(", ")));
        }
    }
    for bin in bins {
        if !bin_dir.join(bin).exists() {
            return Err(format!(
                "{} not found: build it first (cargo build --release --bins) or use cargo run",
                bin_dir.join(bin).display()
            ));
        }
    }
    Ok(bin_dir)
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
