//! An emulator on 127.0.0.1:0 with a temp data dir, a trusted API key written to a real
//! `~/.oci/config`-style file, and clients pointed at it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use ocivision::detect::Detector;
use ocivision::emulator::secrets::SecretEntry;
use ocivision::emulator::{Emulator, EmulatorConfig, DEV_KEY_PEM};
use ocivision::oci::auth::ConfigFileProvider;
use ocivision::oci::client::{Auth, RetryPolicy, Transport, TransportConfig};
use ocivision::oci::object_storage::{Bucket, ObjectStorage};
use ocivision::oci::secrets::Secrets;
use ocivision::oci::sign::PrivateKey;
use ocivision::oci::vision::Vision;
use ocivision::oci::vision::{BoundingPolygon, ImageObject, Vertex};
use ocivision::soda::{Password, Soda, SodaConfig};

pub const TENANCY: &str = "ocid1.tenancy.oc1..test";
pub const USER: &str = "ocid1.user.oc1..test";
pub const SODA_SECRET_ID: &str = "ocid1.vaultsecret.oc1..soda";
pub const VAULT_ID: &str = "ocid1.vault.oc1..test";

/// A unique empty directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir =
            std::env::temp_dir().join(format!("ocivision-it-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn dev_key() -> PrivateKey {
    PrivateKey::from_pem(DEV_KEY_PEM, "dev-key.pem").expect("dev key loads")
}

pub fn key_id(key: &PrivateKey) -> String {
    format!("{TENANCY}/{USER}/{}", key.fingerprint())
}

/// A retry policy with short waits, so fault tests run quickly.
pub fn fast_retries(max_attempts: u32) -> TransportConfig {
    TransportConfig {
        retry: RetryPolicy {
            max_attempts,
            base_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(50),
        },
        ..TransportConfig::default()
    }
}

pub struct Env {
    pub emulator: Emulator,
    pub transport: Transport,
    pub dir: TempDir,
}

impl Env {
    pub fn start(tag: &str) -> Env {
        Env::start_with(tag, |_| {})
    }

    pub fn start_with(tag: &str, configure: impl FnOnce(&mut EmulatorConfig)) -> Env {
        let dir = TempDir::new(tag);
        let mut config = EmulatorConfig::new(dir.path().join("data"));
        config.secrets.push(SecretEntry {
            id: SODA_SECRET_ID.into(),
            name: "soda-password".into(),
            vault_id: VAULT_ID.into(),
            value: config.ords_password.clone(),
        });
        configure(&mut config);
        let emulator = Emulator::start(config).expect("emulator starts");
        let key = dev_key();
        emulator.trust_api_key(&key_id(&key), &key);
        let transport = Transport::new(
            Auth::Oci(config_file_provider(dir.path(), &key)),
            fast_retries(4),
        );
        Env {
            emulator,
            transport,
            dir,
        }
    }

    pub fn bucket(&self) -> Bucket {
        Bucket {
            namespace: self.emulator.namespace().to_string(),
            name: "images".into(),
        }
    }

    /// Uploads `bytes` as `name` with `metadata`; the content type follows the magic number.
    pub fn put_object(&self, name: &str, bytes: &[u8], metadata: &[(&str, &str)]) -> String {
        let content_type = match bytes {
            [0xFF, 0xD8, ..] => "image/jpeg",
            [0x89, b'P', b'N', b'G', ..] => "image/png",
            _ => "application/octet-stream",
        };
        self.object_storage()
            .put(
                &self.bucket(),
                name,
                &mut std::io::Cursor::new(bytes.to_vec()),
                bytes.len() as u64,
                content_type,
                metadata,
                ocivision::oci::object_storage::Condition::None,
                deadline(10),
            )
            .expect("put")
    }

    pub fn object_storage(&self) -> ObjectStorage {
        ObjectStorage::new(self.transport.clone(), self.emulator.base_url())
    }

    pub fn vision(&self) -> Vision {
        Vision::new(self.transport.clone(), self.emulator.base_url())
    }

    pub fn secrets(&self) -> Secrets {
        Secrets::new(self.transport.clone(), self.emulator.base_url())
    }

    pub fn soda(&self, collection: &str) -> Soda {
        let config = SodaConfig {
            base_url: format!("{}/ords/", self.emulator.base_url()),
            schema: "admin".into(),
            collection: collection.into(),
            user: "ADMIN".into(),
            password: Password::SecretId(SODA_SECRET_ID.into()),
        };
        Soda::connect(
            &self.transport,
            &config,
            Some(&self.secrets()),
            deadline(10),
        )
        .expect("soda client")
    }
}

/// The environment of a web app deployed against this emulator as if it were OCI: the OCI
/// config file `Env::start` wrote, endpoints, bucket, database and its password secret.
pub fn cloud_env(env: &Env) -> Vec<(String, String)> {
    let base = env.emulator.base_url();
    [
        (
            "OCI_CONFIG_FILE",
            env.dir.path().join("config").display().to_string(),
        ),
        ("OCIVISION_OBJECTSTORAGE_URL", base.to_string()),
        ("OCIVISION_VISION_URL", base.to_string()),
        ("OCIVISION_SECRETS_URL", base.to_string()),
        ("BUCKET_NAME", "images".into()),
        ("OS_NAMESPACE", env.emulator.namespace().to_string()),
        ("COMPARTMENT_ID", "ocid1.compartment.oc1..emulator".into()),
        ("DB_ORDS_BASE_URL", format!("{base}/ords/")),
        ("DB_PASSWORD_SECRET_OCID", SODA_SECRET_ID.into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// Writes a key file and an OCI config file for it, and loads them as a real provider would.
pub fn config_file_provider(dir: &Path, key: &PrivateKey) -> Arc<ConfigFileProvider> {
    let key_file = dir.join("api-key.pem");
    std::fs::write(&key_file, DEV_KEY_PEM).expect("write key");
    let config = dir.join("config");
    std::fs::write(
        &config,
        format!(
            "[DEFAULT]\nuser={USER}\ntenancy={TENANCY}\nfingerprint={}\nkey_file={}\nregion=us-ashburn-1\n",
            key.fingerprint(),
            key_file.display()
        ),
    )
    .expect("write config");
    Arc::new(ConfigFileProvider::from_file(&config, "DEFAULT", None).expect("provider"))
}

pub fn deadline(secs: u64) -> Instant {
    Instant::now() + Duration::from_secs(secs)
}

/// A detector that answers at once: "Dog" for JPEGs, "Cat" for PNGs, one box each.
pub struct FixedDetector;

impl Detector for FixedDetector {
    fn detect(&self, image: &[u8], max: usize) -> Result<Vec<ImageObject>, String> {
        let name = if image.starts_with(&[0xFF, 0xD8]) {
            "Dog"
        } else {
            "Cat"
        };
        let mut objects = vec![ImageObject {
            name: name.into(),
            confidence: 0.91,
            bounding_polygon: BoundingPolygon {
                normalized_vertices: vec![
                    Vertex { x: 0.1, y: 0.2 },
                    Vertex { x: 0.6, y: 0.2 },
                    Vertex { x: 0.6, y: 0.9 },
                    Vertex { x: 0.1, y: 0.9 },
                ],
            },
        }];
        objects.truncate(max);
        Ok(objects)
    }

    fn model_version(&self) -> String {
        "fixed-1.0".into()
    }
}

/// [`FixedDetector`] once the test lets it: each call waits for [`HeldDetector::release`] (or
/// 30 s), so a test can act while an analysis is in progress.
#[derive(Default)]
pub struct HeldDetector {
    /// Calls that have arrived, and whether they may go on.
    state: Mutex<(usize, bool)>,
    released: Condvar,
}

impl HeldDetector {
    /// How many calls have arrived so far.
    pub fn arrived(&self) -> usize {
        self.state.lock().unwrap().0
    }

    /// Lets every call, held or to come, go on.
    pub fn release(&self) {
        self.state.lock().unwrap().1 = true;
        self.released.notify_all();
    }
}

impl Detector for HeldDetector {
    fn detect(&self, image: &[u8], max: usize) -> Result<Vec<ImageObject>, String> {
        let mut state = self.state.lock().unwrap();
        state.0 += 1;
        let (state, _) = self
            .released
            .wait_timeout_while(state, Duration::from_secs(30), |s| !s.1)
            .unwrap();
        drop(state);
        FixedDetector.detect(image, max)
    }

    fn model_version(&self) -> String {
        "held-1.0".into()
    }
}

pub const FUNCTION_ID: &str = "ocid1.fnfunc.oc1..analyzer";

/// The real `func` binary, started as the Fn agent would start it: `FN_LISTENER`, resource
/// principal files minted by the emulator, endpoints pointing at the emulator. Killed on drop.
pub struct FuncProcess {
    pub child: std::process::Child,
    pub socket: PathBuf,
    pub ready_after: Duration,
}

impl Drop for FuncProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The environment the function runs with (FN_LISTENER and resource principal included).
pub fn func_env(env: &Env) -> Vec<(String, String)> {
    let iofs = env.dir.path().join("iofs");
    std::fs::create_dir_all(&iofs).unwrap();
    let key_text = rp_key_pem();
    let key = PrivateKey::from_pem(&key_text, "rp key").unwrap();
    let token = env
        .emulator
        .mint_token(&key, FUNCTION_ID, Duration::from_secs(3600));
    std::fs::write(iofs.join("rpst"), &token).unwrap();
    std::fs::write(iofs.join("private.pem"), &key_text).unwrap();
    let base = env.emulator.base_url();
    [
        (
            "FN_LISTENER",
            format!("unix:{}", iofs.join("lsnr.sock").display()),
        ),
        ("FN_FORMAT", "http-stream".into()),
        ("OCI_RESOURCE_PRINCIPAL_VERSION", "2.2".into()),
        (
            "OCI_RESOURCE_PRINCIPAL_RPST",
            iofs.join("rpst").display().to_string(),
        ),
        (
            "OCI_RESOURCE_PRINCIPAL_PRIVATE_PEM",
            iofs.join("private.pem").display().to_string(),
        ),
        ("OCI_RESOURCE_PRINCIPAL_REGION", "us-ashburn-1".into()),
        ("OCIVISION_OBJECTSTORAGE_URL", base.to_string()),
        ("OCIVISION_VISION_URL", base.to_string()),
        ("OCIVISION_SECRETS_URL", base.to_string()),
        ("BUCKET_NAME", "images".into()),
        ("DB_ORDS_BASE_URL", format!("{base}/ords/")),
        ("DB_PASSWORD_SECRET_OCID", SODA_SECRET_ID.into()),
        ("LOG_LEVEL", "warn".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// The resource principal's key: the 2048-bit key of the signing fixtures (not the API key).
pub fn rp_key_pem() -> String {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/oci-signing-vectors.json"
    ))
    .unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json["extra_key_sets"][0]["key_pem_pkcs8"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Starts `func` and registers it with the emulator for events and invocations.
pub fn spawn_func(env: &Env) -> FuncProcess {
    spawn_func_with(env, &[])
}

/// [`spawn_func`] with `extra` settings added to (or replacing) [`func_env`]'s.
pub fn spawn_func_with(env: &Env, extra: &[(&str, &str)]) -> FuncProcess {
    let mut vars = func_env(env);
    vars.retain(|(k, _)| !extra.iter().any(|(name, _)| name == k));
    vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let socket = PathBuf::from(
        vars.iter()
            .find(|(k, _)| k == "FN_LISTENER")
            .unwrap()
            .1
            .trim_start_matches("unix:"),
    );
    let started = Instant::now();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_func"))
        .env_clear()
        .envs(vars)
        .stdin(std::process::Stdio::null())
        .spawn()
        .expect("start func");
    let mut process = FuncProcess {
        child,
        socket,
        ready_after: Duration::ZERO,
    };
    while std::fs::symlink_metadata(&process.socket).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "func did not create its socket within 5 s"
        );
        if let Ok(Some(status)) = process.child.try_wait() {
            panic!("func exited during start-up: {status}");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    process.ready_after = started.elapsed();
    env.emulator
        .register_function(FUNCTION_ID, &process.socket, true);
    process
}
