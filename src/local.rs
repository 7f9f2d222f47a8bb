//! Local mode, and the one builder of the local stack that local mode, the integration tests, the
//! benchmarks and the `emulator` binary all start.
//!
//! [`LocalStack::start`] is local mode: it opens a data directory, generates the keys it needs
//! once (an API key for the web app, a key for the function's resource principal, the web app's
//! session secret in `keys/session-secret`, mode 0600), starts the emulator on a loopback port
//! with the local detector (and the local text reader, loading in the background), and serves the real function code through the real Fn contract on a
//! unix socket, authenticated with a resource-principal token the emulator minted.
//! [`LocalStack::web_config`] gives the web app its configuration as a value. Everything persists
//! in the data directory, so a restart keeps every image and result. Stopping the process
//! (Ctrl-C) loses nothing that was acknowledged: every write is a temp file, fsync and rename.
//!
//! [`LocalStack::options`] starts the same stack with its parts chosen: the shipped development
//! key instead of generated ones, an administrator instead of the web app's principal, a given
//! detector, the function run as separate `func` processes. Whatever starts it, a stack is
//! wired the same way ([`Wiring`]): one OCI config file, one resource-principal token, and the
//! variables a child process (`webapp`, `func`) reads, made in one place from those values.
//!
//! IAM: the emulator enforces `terraform/policies.tpl`, the statements Terraform deploys, filled
//! with local names. The function's resource-principal token makes it a function of the
//! emulator's compartment, so a member of the function's dynamic group; the web app's API key
//! (in the OCI config file under `keys/`) is trusted as the web app's container instance, so a
//! member of the web app's dynamic group. Neither is an administrator: a statement missing from
//! the template fails here the way it would after deployment.
//!
//! Not here: the web server itself (the `webapp` binary starts it with these settings).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::analysis::Analyzer;
use crate::config::CloudConfig;
use crate::detect::{Detector, LocalTextReader, TextReader};
use crate::emulator::iam::Principal;
use crate::emulator::secrets::SecretEntry;
use crate::emulator::{Emulator, EmulatorConfig, DEV_KEY_PEM};
use crate::error::{Error, Result};
use crate::fdk::{FnConfig, FnServer};
use crate::oci::auth::{ConfigFileProvider, KeyProvider};
use crate::oci::client::{Auth, Transport, TransportConfig};
use crate::oci::keys::PrivateKey;
use crate::oci::secrets::Secrets;
use crate::oci::vision::ImageText;
use crate::secret::Secret;
use crate::soda::{Password, Soda, SodaConfig};
use crate::web::WebConfig;

/// The function's id in local mode.
pub const FUNCTION_ID: &str = "ocid1.fnfunc.oc1..local";
/// The Vault secret holding the local database password (the stack's first secret).
pub const DB_SECRET_ID: &str = "ocid1.vaultsecret.oc1..local-db";
/// The vault the stack's secrets are in.
pub const VAULT_ID: &str = "ocid1.vault.oc1..local";
/// The tenancy of the stack's API keys.
pub const TENANCY: &str = "ocid1.tenancy.oc1..local";
/// The web app's user: the `DEFAULT` profile of the stack's OCI config file.
pub const USER: &str = "ocid1.user.oc1..local";
/// The administrator's user: the `ADMIN` profile, with [`StackOptions::administrator`].
const ADMIN_USER: &str = "ocid1.user.oc1..local-admin";
/// The profile of the stack's OCI config file that signs as the administrator.
const ADMIN_PROFILE: &str = "ADMIN";
const REGION: &str = "us-ashburn-1";
/// Resource-principal tokens in the cloud live about an hour; locally one lasts a week so a
/// long-running laptop session never sees it expire.
const TOKEN_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

/// Where local mode keeps its data: `OCIVISION_DATA`, else `$XDG_DATA_HOME/ocivision`, else
/// `$HOME/.local/share/ocivision`.
pub fn default_data_dir(lookup: &dyn Fn(&str) -> Option<String>) -> Result<PathBuf> {
    let set = |name: &str| {
        lookup(name)
            .filter(|v| !v.trim().is_empty())
            .map(PathBuf::from)
    };
    if let Some(dir) = set("OCIVISION_DATA") {
        return Ok(dir);
    }
    if let Some(dir) = set("XDG_DATA_HOME") {
        return Ok(dir.join("ocivision"));
    }
    set("HOME")
        .map(|home| home.join(".local/share/ocivision"))
        .ok_or_else(|| Error::Config("set OCIVISION_DATA (HOME is not set)".into()))
}

/// The API key id of `key` for `user` of the stack's tenancy.
pub fn key_id(user: &str, key: &PrivateKey) -> String {
    format!("{TENANCY}/{user}/{}", key.fingerprint())
}

/// What a trusted API key acts as under the emulator's IAM policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A tenancy administrator: allowed everything.
    Administrator,
    /// The web app's container instance (the web app's dynamic group).
    WebApp,
    /// The analysis function (the function's dynamic group).
    Function,
    /// A user in no group: allowed nothing.
    User,
}

impl Role {
    /// `admin`, `webapp`, `function` or `user`.
    pub fn parse(text: &str) -> Option<Role> {
        Some(match text {
            "admin" => Role::Administrator,
            "webapp" => Role::WebApp,
            "function" => Role::Function,
            "user" => Role::User,
            _ => return None,
        })
    }

    /// The principal the key `key_id` acts as on `emulator`.
    pub fn principal(self, emulator: &Emulator, key_id: &str) -> Principal {
        let user = key_id.split('/').nth(1).unwrap_or(key_id);
        match self {
            Role::Administrator => Principal::administrator(user),
            Role::WebApp => emulator.web_app_principal(),
            Role::Function => emulator.function_principal(FUNCTION_ID),
            Role::User => Principal::User {
                id: user.to_string(),
                groups: Vec::new(),
            },
        }
    }
}

/// Where the stack's keys come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keys {
    /// Made once with `openssl` and kept in `keys/` (local mode).
    Generated,
    /// The shipped development key, for the API key and the function alike: quick and the same
    /// on every run (tests, benchmarks, the `emulator` binary).
    Development,
}

/// Which detector answers Vision.
#[derive(Clone)]
pub enum Vision {
    /// None: Vision answers 501.
    None,
    /// The shipped local model; when it does not load, none (with a warning).
    Local,
    /// This one.
    Given(Arc<dyn Detector>),
}

/// Which text reader answers Vision's TEXT_DETECTION.
#[derive(Clone)]
pub enum Text {
    /// None: TEXT_DETECTION is reported as that feature's error; objects are still found.
    None,
    /// The shipped PP-OCRv4 models, loaded before the stack starts; when they do not load, none
    /// (with a warning).
    Local,
    /// The shipped models, loaded on a thread of their own so start-up does not wait (local
    /// mode); a read waits for them.
    LocalInBackground,
    /// This one.
    Given(Arc<dyn TextReader>),
}

/// How the analysis function runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    /// Not at all; the web app is given no function.
    None,
    /// In this process, through the Fn contract on `run/lsnr.sock` (local mode).
    InProcess,
    /// As `func` processes the caller starts with [`Wiring::function_env`] and registers with
    /// the emulator; the web app is given the function.
    Processes,
}

/// A stack to start ([`LocalStack::options`]): its parts, each with a default.
pub struct StackOptions {
    dir: PathBuf,
    /// The emulator's configuration; its first secret is the database password.
    pub emulator: EmulatorConfig,
    /// Where the keys come from. Default [`Keys::Development`].
    pub keys: Keys,
    /// What the web app's API key (the config file's `DEFAULT` profile) acts as. Default
    /// [`Role::WebApp`], as deployed.
    pub web_app: Role,
    /// Whether the OCI config file also has an administrator's profile (`ADMIN`), for
    /// a harness that checks what the web app did with more rights than it has. Default no.
    pub administrator: bool,
    /// Which detector answers Vision. Default [`Vision::None`].
    pub vision: Vision,
    /// Which text reader answers Vision. Default [`Text::None`].
    pub text: Text,
    /// How the function runs. Default [`Function::None`].
    pub function: Function,
}

impl StackOptions {
    /// How the stack is wired once its emulator listens at `base_url`: what a process that did
    /// not start it (the load suite's driver, a benchmark's app child) needs to reach it.
    pub fn wiring(&self, base_url: &str) -> Wiring {
        let keys = self.dir.join("keys");
        let config = &self.emulator;
        let (user, password) = (
            config.ords_user.clone(),
            Password::SecretId(db_secret(config)),
        );
        Wiring {
            cloud: CloudConfig {
                object_storage_url: base_url.to_string(),
                vision_url: base_url.to_string(),
                secrets_url: base_url.to_string(),
                bucket: config.buckets.first().cloned().unwrap_or_default(),
                namespace: Some(config.namespace.clone()),
                compartment_id: Some(config.compartment_id.clone()),
                soda: SodaConfig {
                    base_url: format!("{base_url}/ords/"),
                    schema: config.ords_schema.clone(),
                    collection: "IMAGE_ANALYSIS".into(),
                    user,
                    password,
                },
                secret_ttl: crate::config::SECRET_TTL,
            },
            config_file: keys.join("oci-config"),
            function_key: keys.join("function-key.pem"),
            token: self.dir.join("run").join("rpst"),
            function: self.function != Function::None,
        }
    }

    /// Starts it: keys, the emulator, IAM trust, the OCI config file, the detector, the
    /// function's token and, with [`Function::InProcess`], the function.
    pub fn start(self) -> Result<LocalStack> {
        let keys = self.dir.join("keys");
        let run = self.dir.join("run");
        create_private_dir(&keys)?;
        create_private_dir(&run)?;
        let (api_key_file, api_key) = key(&keys, "api-key.pem", self.keys)?;
        let (_, function_key) = key(&keys, "function-key.pem", self.keys)?;
        let session_secret = session_secret(&keys)?;

        let emulator = Emulator::start(self.emulator.clone())?;
        let wiring = self.wiring(emulator.base_url());
        let mut profiles = vec![("DEFAULT", USER, self.web_app)];
        if self.administrator {
            profiles.push((ADMIN_PROFILE, ADMIN_USER, Role::Administrator));
        }
        let mut config_text = String::new();
        for (profile, user, role) in profiles {
            let id = key_id(user, &api_key);
            emulator.trust_api_key_as(&id, &api_key, role.principal(&emulator, &id));
            config_text.push_str(&format!(
                "[{profile}]\nuser={user}\ntenancy={TENANCY}\nfingerprint={}\nkey_file={}\nregion={REGION}\n\n",
                api_key.fingerprint(),
                api_key_file.display()
            ));
        }
        // As a developer's laptop would have it.
        write_private(&wiring.config_file, &config_text)?;
        write_private(
            &wiring.token,
            &emulator.mint_token(&function_key, FUNCTION_ID, TOKEN_LIFETIME),
        )?;
        let detector = attach_detector(&emulator, self.vision);
        let text = attach_text_reader(&emulator, self.text);

        let mut stack = LocalStack {
            function: None,
            emulator,
            wiring,
            data_dir: self.dir,
            detector,
            text,
            session_secret,
        };
        if self.function == Function::InProcess {
            stack.function = Some(stack.serve_function(&run.join("lsnr.sock"))?);
        }
        Ok(stack)
    }
}

/// How the web app and the function reach a stack: the services as values, the OCI config file
/// and the function's resource-principal files.
#[derive(Debug, Clone)]
pub struct Wiring {
    cloud: CloudConfig,
    config_file: PathBuf,
    function_key: PathBuf,
    token: PathBuf,
    function: bool,
}

impl Wiring {
    /// Where the services are, which bucket and which collection.
    pub fn cloud(&self) -> &CloudConfig {
        &self.cloud
    }

    /// The web app's credentials: the `DEFAULT` profile of the stack's OCI config file.
    pub fn credentials(&self) -> Result<Arc<dyn KeyProvider>> {
        self.profile("DEFAULT")
    }

    /// The administrator's credentials ([`StackOptions::administrator`]).
    pub fn admin_credentials(&self) -> Result<Arc<dyn KeyProvider>> {
        self.profile(ADMIN_PROFILE)
    }

    fn profile(&self, profile: &str) -> Result<Arc<dyn KeyProvider>> {
        Ok(Arc::new(ConfigFileProvider::from_file(
            &self.config_file,
            profile,
            None,
        )?))
    }

    /// The variables of a `webapp` process (cloud mode) pointed at the stack, and of
    /// `webapp doctor`: README.md's names, made from the values.
    pub fn webapp_env(&self) -> Vec<(String, String)> {
        let mut env = vec![
            ("OCI_CONFIG_FILE", self.config_file.display().to_string()),
            ("OCI_CLI_PROFILE", "DEFAULT".into()),
            (crate::config::vars::REGION, REGION.into()),
        ];
        if self.function {
            // The emulator answers Functions invoke on the same origin.
            env.push(("FUNCTION_ID", FUNCTION_ID.into()));
            env.push((
                "FUNCTION_INVOKE_ENDPOINT",
                self.cloud.object_storage_url.clone(),
            ));
        }
        env.extend(self.cloud.to_env());
        owned(env)
    }

    /// The variables of a `func` process listening on `socket`, as the Fn agent starts it:
    /// the Fn contract's, the resource principal's (the stack's token and key files) and the
    /// services'.
    pub fn function_env(&self, socket: &Path) -> Vec<(String, String)> {
        let mut env = vec![
            ("FN_LISTENER", format!("unix:{}", socket.display())),
            ("FN_FORMAT", "http-stream".into()),
            ("OCI_RESOURCE_PRINCIPAL_VERSION", "2.2".into()),
            (
                "OCI_RESOURCE_PRINCIPAL_RPST",
                self.token.display().to_string(),
            ),
            (
                "OCI_RESOURCE_PRINCIPAL_PRIVATE_PEM",
                self.function_key.display().to_string(),
            ),
            ("OCI_RESOURCE_PRINCIPAL_REGION", REGION.into()),
        ];
        env.extend(self.cloud.to_env());
        owned(env)
    }
}

fn owned(env: Vec<(&str, String)>) -> Vec<(String, String)> {
    env.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// The running local services. Dropping it stops the function and the emulator.
pub struct LocalStack {
    // Declared first: the function stops before the emulator it calls.
    function: Option<FnServer>,
    /// The emulator: tests and benchmarks drive it directly (faults, detector, request record).
    pub emulator: Emulator,
    wiring: Wiring,
    data_dir: PathBuf,
    detector: String,
    text: String,
    session_secret: Secret,
}

impl LocalStack {
    /// Local mode: the stack on `data_dir` with generated keys, the local detector and the
    /// function in this process, the SODA collection created.
    pub fn start(data_dir: &Path) -> Result<LocalStack> {
        let mut options = LocalStack::options(data_dir);
        options.keys = Keys::Generated;
        options.vision = Vision::Local;
        options.text = Text::LocalInBackground;
        options.function = Function::InProcess;
        let stack = options.start()?;
        stack.ensure_collection()?;
        Ok(stack)
    }

    /// A stack on `dir` (data in `emulator/`, keys and the OCI config file in `keys/`, the
    /// function's token and socket in `run/`) with the defaults of [`StackOptions`] and the
    /// database password as the emulator's first secret.
    pub fn options(dir: &Path) -> StackOptions {
        let mut emulator = EmulatorConfig::new(dir.join("emulator"));
        emulator.secrets.push(SecretEntry {
            id: DB_SECRET_ID.into(),
            name: "db-password".into(),
            vault_id: VAULT_ID.into(),
            value: emulator.ords_password.clone(),
        });
        StackOptions {
            dir: dir.to_path_buf(),
            emulator,
            keys: Keys::Development,
            web_app: Role::WebApp,
            administrator: false,
            vision: Vision::None,
            text: Text::None,
            function: Function::None,
        }
    }

    /// How the web app and the function reach this stack.
    pub fn wiring(&self) -> &Wiring {
        &self.wiring
    }

    /// The web app's configuration in local mode: the stack's services and function, the
    /// session secret kept in the data directory unless `lookup` gives one, and everything
    /// else (port, password, limits) from `lookup`.
    pub fn web_config(&self, lookup: &dyn Fn(&str) -> Option<String>) -> Result<WebConfig> {
        let mut config = WebConfig::with_cloud(self.wiring.cloud.clone(), lookup)?;
        config.function = self.wiring.function.then(|| {
            (
                FUNCTION_ID.to_string(),
                self.emulator.base_url().to_string(),
            )
        });
        if let crate::web::SessionSecretSource::None = config.session_secret {
            config.session_secret =
                crate::web::SessionSecretSource::Literal(self.session_secret.clone());
        }
        Ok(config)
    }

    /// Creates the SODA collection and the gallery's indexes (which the emulator keeps, as
    /// the database does) so the gallery can query it before the first analysis.
    pub fn ensure_collection(&self) -> Result<()> {
        let transport = Transport::new(
            Auth::Oci(self.wiring.credentials()?),
            TransportConfig::default(),
        );
        let cloud = &self.wiring.cloud;
        let deadline = Instant::now() + Duration::from_secs(10);
        let secrets = Secrets::new(transport.clone(), &cloud.secrets_url);
        let soda = Soda::connect(&transport, &cloud.soda, Some(&secrets), deadline)?;
        soda.ensure_collection(deadline)?;
        if let Err(e) = soda.ensure_gallery_indexes(deadline) {
            // Queries work without indexes; they only make the database's work smaller.
            log::warn!(target: "local", "the gallery's indexes were not created: {e}");
        }
        Ok(())
    }

    /// Where the data lives.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Which detector answers Vision, in words.
    pub fn detector(&self) -> &str {
        &self.detector
    }

    /// Which text reader answers Vision, in words.
    pub fn text_reader(&self) -> &str {
        &self.text
    }

    /// Serves the real function code through the Fn contract on `socket`, configured exactly
    /// as a `func` process would be ([`Wiring::function_env`]), and registers it with the
    /// emulator for events and invocations.
    fn serve_function(&self, socket: &Path) -> Result<FnServer> {
        let env = self.wiring.function_env(socket);
        let lookup = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let analyzer = Analyzer::from_lookup(&lookup)?;
        let server = FnServer::start(&FnConfig::from_lookup(&lookup)?, move |invocation| {
            analyzer.handle(&invocation.body, invocation.deadline, &invocation.call_id)
        })?;
        self.emulator.register_function(FUNCTION_ID, socket, true);
        Ok(server)
    }
}

/// The stack's database password secret: the emulator's first, as in its policy.
fn db_secret(config: &EmulatorConfig) -> String {
    config
        .secrets
        .first()
        .map_or_else(|| DB_SECRET_ID.to_string(), |s| s.id.clone())
}

/// Reads `dir/session-secret`, first writing 32 random bytes there (as hex, mode 0600) if there
/// is none.
fn session_secret(dir: &Path) -> Result<Secret> {
    let path = dir.join("session-secret");
    if !path.exists() {
        write_private(&path, &crate::random::hex::<32>())?;
    }
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
    let text = text.trim();
    if text.len() < crate::web::MIN_SESSION_SECRET {
        return Err(Error::Config(format!(
            "{} holds fewer than {} characters: delete it and a new one is made",
            path.display(),
            crate::web::MIN_SESSION_SECRET
        )));
    }
    Ok(Secret::new(text))
}

/// Gives Vision its detector; says which, in words.
fn attach_detector(emulator: &Emulator, vision: Vision) -> String {
    let detector: Arc<dyn Detector> = match vision {
        Vision::None => return "none".into(),
        Vision::Given(detector) => detector,
        Vision::Local => match crate::detect::LocalDetector::load(Default::default()) {
            Ok(detector) => Arc::new(detector),
            Err(e) => {
                log::warn!(target: "local", "the local detector did not load: {e}; analyses will fail");
                return format!("none ({e})");
            }
        },
    };
    let version = detector.model_version();
    emulator.set_detector(Some(detector));
    version
}

/// Gives Vision its text reader; says which, in words.
fn attach_text_reader(emulator: &Emulator, text: Text) -> String {
    let reader: Arc<dyn TextReader> = match text {
        Text::None => return "none".into(),
        Text::Given(reader) => reader,
        Text::Local => match LocalTextReader::load(Default::default()) {
            Ok(reader) => Arc::new(reader),
            Err(e) => {
                log::warn!(target: "local", "the local text reader did not load: {e}; text detection will be reported unavailable");
                return format!("none ({e})");
            }
        },
        Text::LocalInBackground => match LoadingTextReader::start() {
            Ok(reader) => reader,
            Err(e) => {
                log::warn!(target: "local", "the local text reader could not be loaded: {e}");
                return format!("none ({e})");
            }
        },
    };
    let version = reader.model_version();
    emulator.set_text_reader(Some(reader));
    version
}

/// How long a read waits for the local text reader still loading in the background (it takes a
/// few seconds; an image analysed meanwhile gets its text rather than an error).
const TEXT_LOAD_WAIT: Duration = Duration::from_secs(120);

/// The local text reader while it loads on a thread of its own ([`Text::LocalInBackground`]):
/// start-up does not wait for the OCR graphs to be optimised, a read does (at most
/// [`TEXT_LOAD_WAIT`]).
struct LoadingTextReader {
    state: std::sync::Mutex<Loading>,
    ready: std::sync::Condvar,
}

enum Loading {
    Pending,
    Ready(Box<LocalTextReader>),
    Failed(String),
}

impl LoadingTextReader {
    fn start() -> std::io::Result<Arc<LoadingTextReader>> {
        let reader = Arc::new(LoadingTextReader {
            state: std::sync::Mutex::new(Loading::Pending),
            ready: std::sync::Condvar::new(),
        });
        let filled = Arc::clone(&reader);
        std::thread::Builder::new()
            .name("text-reader-load".into())
            .spawn(move || {
                let loaded = match LocalTextReader::load(Default::default()) {
                    Ok(reader) => {
                        log::info!(target: "local", "local text reader loaded");
                        Loading::Ready(Box::new(reader))
                    }
                    Err(e) => {
                        log::warn!(target: "local", "the local text reader did not load: {e}; text detection will be reported unavailable");
                        Loading::Failed(format!("the local OCR models did not load: {e}"))
                    }
                };
                *filled.lock() = loaded;
                filled.ready.notify_all();
            })?;
        Ok(reader)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Loading> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl TextReader for LoadingTextReader {
    fn read(&self, image: &[u8]) -> std::result::Result<ImageText, String> {
        let state = self
            .ready
            .wait_timeout_while(self.lock(), TEXT_LOAD_WAIT, |s| {
                matches!(s, Loading::Pending)
            })
            .map(|(guard, _)| guard)
            .unwrap_or_else(|e| e.into_inner().0);
        match &*state {
            Loading::Ready(reader) => reader.read(image),
            Loading::Failed(message) => Err(message.clone()),
            Loading::Pending => Err(format!(
                "the local OCR models were still loading after {} s",
                TEXT_LOAD_WAIT.as_secs()
            )),
        }
    }

    fn model_version(&self) -> String {
        match &*self.lock() {
            Loading::Ready(reader) => reader.model_version(),
            _ => "PP-OCRv4 (local, loading)".into(),
        }
    }
}

/// Loads `dir/name`; the development key, or (with [`Keys::Generated`]) a 2048-bit RSA key
/// generated there first if there is none. ring cannot generate RSA keys, so `openssl` does
/// it; without `openssl`, the development key stands in (it only ever authenticates to this
/// local emulator).
fn key(dir: &Path, name: &str, keys: Keys) -> Result<(PathBuf, PrivateKey)> {
    let path = dir.join(name);
    if keys == Keys::Development {
        write_private(&path, DEV_KEY_PEM)?;
    } else if !path.exists() {
        let partial = dir.join(format!(".{name}.partial"));
        let generated = std::process::Command::new("openssl")
            .args([
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
            ])
            .arg(&partial)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !generated {
            log::warn!(target: "local", "openssl is not available: using the shipped development key for {name}");
            write_private(&partial, DEV_KEY_PEM)?;
        }
        std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o600))?;
        std::fs::rename(&partial, &path)?;
    }
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
    let key = PrivateKey::from_pem(&text, &path.display().to_string())?;
    Ok((path, key))
}

fn create_private_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::Config(format!("creating {}: {e}", dir.display())))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    Ok(())
}

fn write_private(path: &Path, text: &str) -> Result<()> {
    let partial = path.with_extension("partial");
    std::fs::write(&partial, text)?;
    std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o600))?;
    std::fs::rename(&partial, path)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_secret_is_made_once_private_and_kept() {
        let dir = std::env::temp_dir().join(format!("ocivision-secret-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        create_private_dir(&dir).unwrap();
        let first = session_secret(&dir).unwrap();
        assert_eq!(first.expose().len(), 64);
        let mode = std::fs::metadata(dir.join("session-secret"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(session_secret(&dir).unwrap(), first, "kept across restarts");
        std::fs::write(dir.join("session-secret"), "short").unwrap();
        assert!(session_secret(&dir).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn data_dir_prefers_ocivision_data_then_xdg_then_home() {
        let lookup = |pairs: Vec<(&'static str, &'static str)>| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let all = lookup(vec![
            ("OCIVISION_DATA", "/d"),
            ("XDG_DATA_HOME", "/x"),
            ("HOME", "/h"),
        ]);
        assert_eq!(default_data_dir(&all).unwrap(), PathBuf::from("/d"));
        let xdg = lookup(vec![("XDG_DATA_HOME", "/x"), ("HOME", "/h")]);
        assert_eq!(
            default_data_dir(&xdg).unwrap(),
            PathBuf::from("/x/ocivision")
        );
        let home = lookup(vec![("HOME", "/h")]);
        assert_eq!(
            default_data_dir(&home).unwrap(),
            PathBuf::from("/h/.local/share/ocivision")
        );
        assert!(default_data_dir(&lookup(vec![]))
            .unwrap_err()
            .to_string()
            .contains("OCIVISION_DATA"));
    }

    #[test]
    fn the_web_app_and_the_function_read_the_wiring_back_as_its_values() {
        let mut options = LocalStack::options(Path::new("/s"));
        options.function = Function::Processes;
        let wiring = options.wiring("http://127.0.0.1:7");
        let web = wiring.webapp_env();
        let lookup = |name: &str| web.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let config = WebConfig::from_lookup(&lookup, None).unwrap();
        assert_eq!(
            format!("{:?}", config.cloud),
            format!("{:?}", wiring.cloud())
        );
        assert_eq!(
            config.function,
            Some((FUNCTION_ID.to_string(), "http://127.0.0.1:7".to_string()))
        );
        let func = wiring.function_env(Path::new("/s/run/lsnr.sock"));
        let lookup = |name: &str| func.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let fn_config = FnConfig::from_lookup(&lookup).unwrap();
        assert_eq!(fn_config.socket, PathBuf::from("/s/run/lsnr.sock"));
        assert_eq!(
            lookup("OCI_RESOURCE_PRINCIPAL_RPST").unwrap(),
            "/s/run/rpst"
        );
        assert_eq!(lookup("DB_PASSWORD_SECRET_OCID").unwrap(), DB_SECRET_ID);
    }
}
