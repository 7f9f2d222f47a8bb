//! What the benchmarks and the load suite share: finding (and first building) the binaries they
//! measure, one-shot HTTP requests, a detector that answers at once, an emulator with clients
//! and apps pointed at it, and percentiles.
//!
//! Each example includes this module (`mod common;`) and uses part of it.
#![allow(dead_code)] // each example uses a different part of this module

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use ocivision::detect::Detector;
use ocivision::oci::vision::{BoundingPolygon, ImageObject, Vertex};

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
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let path = me
        .parent()
        .and_then(|examples| examples.parent())
        .map(|dir| dir.join(name))
        .ok_or("this program has no directory")?;
    if path.exists() {
        Ok(path)
    } else {
        Err(format!(
            "{} not found: build it first (cargo build --release --bins)",
            path.display()
        ))
    }
}

/// Another example built beside this one.
pub fn example(name: &str) -> Result<PathBuf, String> {
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let path = me.with_file_name(name);
    if path.exists() {
        Ok(path)
    } else {
        Err(format!(
            "{} not found: build it first (cargo build --release --examples)",
            path.display()
        ))
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

/// An answer to [`request`].
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// `Retry-After`, in seconds, when present and numeric.
    pub retry_after: Option<Duration>,
    /// The body as sent (chunked bodies are not decoded: the servers here send lengths).
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as JSON; null when it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// One request on a fresh connection (`Connection: close`), with `headers` as extra lines
/// (`"Name: value"`), read to the end within `timeout`.
pub fn request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[&str],
    body: &[u8],
    timeout: Duration,
) -> std::io::Result<Reply> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let mut head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for line in headers {
        head.push_str(line);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply)?;
    let split = reply
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no end of the answer's head"))?;
    let head = String::from_utf8_lossy(&reply[..split]);
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status line: {:.80}", head)))?;
    let retry_after = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("retry-after")
            .then(|| value.trim().parse().ok().map(Duration::from_secs))?
    });
    Ok(Reply {
        status,
        retry_after,
        body: reply[split + 4..].to_vec(),
    })
}

/// Answers at once with one fixed object, so a run measures the pipeline, not a model.
pub struct InstantDetector;

impl Detector for InstantDetector {
    fn detect(&self, _: &[u8], max_results: usize) -> Result<Vec<ImageObject>, String> {
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
        objects.truncate(max_results);
        Ok(objects)
    }

    fn model_version(&self) -> String {
        "instant".into()
    }
}

/// An emulator in a temp directory, a transport signing with the development key through a real
/// config file, and the clients and web apps the benchmarks build on it. Removes its directory
/// on drop.
pub struct Cloud {
    /// The emulator (for its request record and faults).
    pub emulator: ocivision::emulator::Emulator,
    /// Signs as a trusted API key.
    pub transport: ocivision::oci::client::Transport,
    dir: PathBuf,
}

impl Cloud {
    const TENANCY: &'static str = "ocid1.tenancy.oc1..bench";
    const USER: &'static str = "ocid1.user.oc1..bench";

    /// Starts an emulator with the `IMAGE_ANALYSIS` collection created.
    pub fn start(tag: &str) -> Result<Cloud, ocivision::Error> {
        use ocivision::emulator::{Emulator, EmulatorConfig, DEV_KEY_PEM};
        use ocivision::oci::sign::PrivateKey;
        let dir = std::env::temp_dir().join(format!("ocivision-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let emulator = Emulator::start(EmulatorConfig::new(dir.join("data")))?;
        let key = PrivateKey::from_pem(DEV_KEY_PEM, "dev-key.pem")?;
        let key_id = format!("{}/{}/{}", Self::TENANCY, Self::USER, key.fingerprint());
        emulator.trust_api_key(&key_id, &key);
        let key_file = dir.join("api-key.pem");
        std::fs::write(&key_file, DEV_KEY_PEM)?;
        let config = dir.join("config");
        std::fs::write(
            &config,
            format!(
                "[DEFAULT]\nuser={}\ntenancy={}\nfingerprint={}\nkey_file={}\nregion=us-ashburn-1\n",
                Self::USER,
                Self::TENANCY,
                key.fingerprint(),
                key_file.display()
            ),
        )?;
        let provider =
            ocivision::oci::auth::ConfigFileProvider::from_file(&config, "DEFAULT", None)?;
        let transport = ocivision::oci::client::Transport::new(
            ocivision::oci::client::Auth::Oci(std::sync::Arc::new(provider)),
            ocivision::oci::client::TransportConfig::default(),
        );
        let cloud = Cloud {
            emulator,
            transport,
            dir,
        };
        cloud
            .soda()?
            .ensure_collection(std::time::Instant::now() + Duration::from_secs(10))?;
        Ok(cloud)
    }

    /// The images bucket.
    pub fn bucket(&self) -> ocivision::oci::object_storage::Bucket {
        ocivision::oci::object_storage::Bucket {
            namespace: self.emulator.namespace().to_string(),
            name: "images".into(),
        }
    }

    /// An Object Storage client.
    pub fn object_storage(&self) -> ocivision::oci::object_storage::ObjectStorage {
        ocivision::oci::object_storage::ObjectStorage::new(
            self.transport.clone(),
            self.emulator.base_url(),
        )
    }

    /// A SODA client for `IMAGE_ANALYSIS`.
    pub fn soda(&self) -> Result<ocivision::soda::Soda, ocivision::Error> {
        let (user, password) = self.emulator.ords_credentials();
        let config = ocivision::soda::SodaConfig {
            base_url: format!("{}/ords/", self.emulator.base_url()),
            schema: "admin".into(),
            collection: "IMAGE_ANALYSIS".into(),
            user: user.into(),
            password: ocivision::soda::Password::Literal(ocivision::secret::Secret::new(password)),
        };
        ocivision::soda::Soda::connect(
            &self.transport,
            &config,
            None,
            std::time::Instant::now() + Duration::from_secs(10),
        )
    }

    /// A web app on this emulator (no function).
    pub fn app(
        &self,
        settings: ocivision::web::Settings,
    ) -> Result<ocivision::web::App, ocivision::Error> {
        Ok(ocivision::web::App::new(
            self.object_storage(),
            self.bucket(),
            self.soda()?,
            None,
            settings,
        ))
    }
}

impl Drop for Cloud {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
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
