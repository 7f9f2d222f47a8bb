//! Shared by the `bench` and `loadtest` binaries (each includes this file as a module), which
//! start a nested `cargo build` for the binaries they measure.

use std::process::Command;

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
