//! The local stack for tests and benchmarks: [`LocalStack`] in a temp directory, with the
//! development key (the web app's profile an administrator, unless a test says otherwise),
//! clients signing through the OCI config file the stack wrote, the canned detectors, and the
//! real `func` binary started as the Fn agent starts it.

use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use ocivision::detect::Detector;
use ocivision::emulator::{EmulatorConfig, DEV_KEY_PEM};
use ocivision::local::{LocalStack, Role, StackOptions, Wiring};
use ocivision::oci::auth::KeyProvider;
use ocivision::oci::client::{Auth, RetryPolicy, Transport, TransportConfig};
use ocivision::oci::keys::PrivateKey;
use ocivision::oci::object_storage::{Bucket, ObjectStorage};
use ocivision::oci::secrets::Secrets;
use ocivision::oci::vision::Vision;
use ocivision::oci::vision::{BoundingPolygon, ImageObject, Vertex};
use ocivision::soda::{Soda, SodaConfig};
use ocivision::web::{App, Settings};

#[allow(unused_imports)] // each includer uses a part
pub use ocivision::local::{DB_SECRET_ID as SODA_SECRET_ID, FUNCTION_ID, USER, VAULT_ID};

/// A unique empty directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("ocivision-{tag}-{}-{n}", std::process::id()));
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

/// The key id the stack trusts the development key under, as the web app's user.
pub fn key_id(key: &PrivateKey) -> String {
    ocivision::local::key_id(USER, key)
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

pub fn deadline(secs: u64) -> Instant {
    Instant::now() + Duration::from_secs(secs)
}

/// The harness's stack on `dir`: development keys, the web app's profile an administrator (so
/// a test's own clients may do anything), no detector, no function.
pub fn stack(dir: &Path) -> StackOptions {
    let mut options = LocalStack::options(dir);
    options.web_app = Role::Administrator;
    options
}

/// A started stack in a temp dir, and a transport signing as its web app's profile.
pub struct Env {
    // Declared first: the stack stops before its directory is removed.
    stack: LocalStack,
    pub transport: Transport,
    pub dir: TempDir,
}

impl Deref for Env {
    type Target = LocalStack;

    fn deref(&self) -> &LocalStack {
        &self.stack
    }
}

impl Env {
    pub fn start(tag: &str) -> Env {
        Env::start_with(tag, |_| {})
    }

    /// With the emulator's configuration changed by `configure`.
    pub fn start_with(tag: &str, configure: impl FnOnce(&mut EmulatorConfig)) -> Env {
        Env::start_from(tag, |options| configure(&mut options.emulator))
    }

    /// With the harness's [`stack`] options changed by `choose`.
    pub fn start_from(tag: &str, choose: impl FnOnce(&mut StackOptions)) -> Env {
        let dir = TempDir::new(tag);
        let mut options = stack(dir.path());
        choose(&mut options);
        let stack = options.start().expect("stack starts");
        let transport = Transport::new(Auth::Oci(credentials(&stack)), fast_retries(4));
        Env {
            stack,
            transport,
            dir,
        }
    }

    /// The web app's credentials, from the stack's OCI config file.
    pub fn credentials(&self) -> Arc<dyn KeyProvider> {
        credentials(&self.stack)
    }

    pub fn bucket(&self) -> Bucket {
        bucket_of(self.wiring())
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

    /// A SODA client for `collection`, its password read from the stack's secret.
    pub fn soda(&self, collection: &str) -> Soda {
        soda_on(self.wiring(), &self.transport, collection).expect("soda client")
    }

    /// A web app on this stack with data in [`COLLECTION`](super::web::COLLECTION) and no
    /// function.
    pub fn app(&self, settings: Settings) -> App {
        app_on(
            self.wiring(),
            &self.transport,
            super::web::COLLECTION,
            settings,
        )
        .expect("app")
    }
}

fn credentials(stack: &LocalStack) -> Arc<dyn KeyProvider> {
    stack
        .wiring()
        .credentials()
        .expect("the stack's OCI config file")
}

/// Runs `each(state, i)` (its answer dropped) for every `i` below `count` on four threads, each with the `state`
/// (its clients) `setup` gives it; the first error. The benchmarks seed thousands of objects and
/// documents so.
pub fn on_four_threads<S, T, E: Send>(
    count: usize,
    setup: impl Fn() -> Result<S, E> + Sync,
    each: impl Fn(&S, usize) -> Result<T, E> + Sync,
) -> Result<(), E> {
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..4)
            .map(|t| {
                let (setup, each) = (&setup, &each);
                scope.spawn(move || {
                    let state = setup()?;
                    (t..count)
                        .step_by(4)
                        .try_for_each(|i| each(&state, i).map(drop))
                })
            })
            .collect();
        workers
            .into_iter()
            .try_for_each(|w| w.join().expect("seeding thread"))
    })
}

/// Stores `bytes` as the JPEG `name`, whatever is there; its ETag.
pub fn put_jpeg(
    storage: &ObjectStorage,
    bucket: &Bucket,
    name: &str,
    bytes: &[u8],
) -> Result<String, ocivision::Error> {
    storage.put(
        bucket,
        name,
        &mut std::io::Cursor::new(bytes),
        bytes.len() as u64,
        "image/jpeg",
        &[],
        ocivision::oci::object_storage::Condition::None,
        deadline(120),
    )
}

/// A 7-byte stand-in for a JPEG, for objects only listed, never read.
pub const STUB_JPEG: &[u8] = b"\xFF\xD8\xFFseed";

/// The stack's images bucket.
pub fn bucket_of(wiring: &Wiring) -> Bucket {
    let cloud = wiring.cloud();
    Bucket {
        namespace: cloud.namespace.clone().unwrap_or_default(),
        name: cloud.bucket.clone(),
    }
}

/// A SODA client for `collection` of the stack, signing its Secrets call with `transport`.
pub fn soda_on(
    wiring: &Wiring,
    transport: &Transport,
    collection: &str,
) -> Result<Soda, ocivision::Error> {
    let cloud = wiring.cloud();
    let config = SodaConfig {
        collection: collection.into(),
        ..cloud.soda.clone()
    };
    let secrets = Secrets::new(transport.clone(), &cloud.secrets_url);
    Soda::connect(transport, &config, Some(&secrets), deadline(120))
}

/// A web app (no function) on the stack, with data in `collection`.
pub fn app_on(
    wiring: &Wiring,
    transport: &Transport,
    collection: &str,
    settings: Settings,
) -> Result<App, ocivision::Error> {
    Ok(App::new(
        ObjectStorage::new(transport.clone(), &wiring.cloud().object_storage_url),
        bucket_of(wiring),
        soda_on(wiring, transport, collection)?,
        None,
        settings,
    ))
}

/// The rectangle from (`x0`, `y0`) to (`x1`, `y1`) as a polygon, corners clockwise from the
/// first.
pub fn rectangle([x0, y0, x1, y1]: [f64; 4]) -> Vec<Vertex> {
    vec![
        Vertex { x: x0, y: y0 },
        Vertex { x: x1, y: y0 },
        Vertex { x: x1, y: y1 },
        Vertex { x: x0, y: y1 },
    ]
}

/// Vision's stand-in that answers at once with one box: "Dog" for a JPEG and "Cat" for
/// anything else, or `label` for every image when set.
#[derive(Default)]
pub struct FixedDetector {
    pub label: Option<&'static str>,
}

impl FixedDetector {
    /// One `label` in every image.
    pub fn labelled(label: &'static str) -> FixedDetector {
        FixedDetector { label: Some(label) }
    }
}

impl Detector for FixedDetector {
    fn detect(&self, image: &[u8], max: usize) -> Result<Vec<ImageObject>, String> {
        let name = self.label.unwrap_or(if image.starts_with(&[0xFF, 0xD8]) {
            "Dog"
        } else {
            "Cat"
        });
        let mut objects = vec![ImageObject {
            name: name.into(),
            confidence: 0.91,
            bounding_polygon: BoundingPolygon {
                normalized_vertices: rectangle([0.1, 0.2, 0.6, 0.9]),
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
        FixedDetector::default().detect(image, max)
    }

    fn model_version(&self) -> String {
        "held-1.0".into()
    }
}

/// The real `func` binary, started as the Fn agent would start it. Killed on drop.
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

/// The environment of a function listening at the stack's `run/lsnr.sock` (FN_LISTENER and
/// resource principal included).
pub fn func_env(env: &Env) -> Vec<(String, String)> {
    let mut vars = env
        .wiring()
        .function_env(&env.dir.path().join("run/lsnr.sock"));
    vars.push(("LOG_LEVEL".into(), "warn".into()));
    vars
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
    let socket = env.dir.path().join("run/lsnr.sock");
    let started = Instant::now();
    let child = std::process::Command::new(super::exe("func"))
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
