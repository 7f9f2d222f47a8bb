//! Local mode: the whole pipeline in one process, with no cloud account.
//!
//! [`LocalStack::start`] opens a data directory, generates the keys it needs once (an API key
//! for the web app, a key for the function's resource principal, the web app's session secret
//! in `keys/session-secret`, mode 0600), starts the emulator on a
//! loopback port with the local detector, and serves the real function
//! code through the real Fn contract on a unix socket, authenticated with a resource-principal
//! token the emulator minted. [`LocalStack::webapp_env`] gives the settings that point the web
//! app at all of it. Everything persists in the data directory, so a restart keeps every image
//! and result. Stopping the process (Ctrl-C) loses nothing that was acknowledged: every write is
//! a temp file, fsync and rename.
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
use std::time::{Duration, Instant};

use crate::analysis::Analyzer;
use crate::emulator::secrets::SecretEntry;
use crate::emulator::{Emulator, EmulatorConfig, DEV_KEY_PEM};
use crate::error::{Error, Result};
use crate::fdk::{FnConfig, FnServer};
use crate::oci::client::{Auth, Transport, TransportConfig};
use crate::oci::secrets::Secrets;
use crate::oci::sign::PrivateKey;
use crate::secret::Secret;
use crate::soda::Soda;

/// The function's id in local mode.
pub const FUNCTION_ID: &str = "ocid1.fnfunc.oc1..local";
/// The Vault secret holding the local database password.
pub const DB_SECRET_ID: &str = "ocid1.vaultsecret.oc1..local-db";
const TENANCY: &str = "ocid1.tenancy.oc1..local";
const USER: &str = "ocid1.user.oc1..local";
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

/// The running local services. Dropping it stops the function and the emulator.
pub struct LocalStack {
    // Declared first: the function stops before the emulator it calls.
    function: Option<FnServer>,
    emulator: Emulator,
    data_dir: PathBuf,
    config_file: PathBuf,
    detector: String,
    session_secret: Secret,
}

impl LocalStack {
    /// Starts the emulator and the function on `data_dir`.
    pub fn start(data_dir: &Path) -> Result<LocalStack> {
        let keys = data_dir.join("keys");
        create_private_dir(&keys)?;
        let (api_key_file, api_key) = key(&keys, "api-key.pem")?;
        let (function_key_file, function_key) = key(&keys, "function-key.pem")?;
        let session_secret = session_secret(&keys)?;

        let mut config = EmulatorConfig::new(data_dir.join("emulator"));
        config.secrets.push(SecretEntry {
            id: DB_SECRET_ID.into(),
            name: "db-password".into(),
            vault_id: "ocid1.vault.oc1..local".into(),
            value: config.ords_password.clone(),
        });
        let emulator = Emulator::start(config)?;
        let key_id = format!("{TENANCY}/{USER}/{}", api_key.fingerprint());
        // The web app's API key stands for its container instance: local mode runs under the
        // deployed policy (terraform/policies.tpl), the web app in its dynamic group.
        emulator.trust_api_key_as(&key_id, &api_key, emulator.web_app_principal());
        let detector = attach_detector(&emulator);
        attach_text_reader(&emulator);

        // An OCI config file for the web app, as a developer's laptop would have.
        let config_file = keys.join("oci-config");
        write_private(
            &config_file,
            &format!(
                "[DEFAULT]\nuser={USER}\ntenancy={TENANCY}\nfingerprint={}\nkey_file={}\nregion=us-ashburn-1\n",
                api_key.fingerprint(),
                api_key_file.display()
            ),
        )?;

        let mut stack = LocalStack {
            function: None,
            emulator,
            data_dir: data_dir.to_path_buf(),
            config_file,
            detector,
            session_secret,
        };
        stack.ensure_collection()?;
        stack.function = Some(stack.start_function(&function_key_file, &function_key)?);
        Ok(stack)
    }

    /// Serves the function through the Fn contract, credentials minted by the emulator.
    fn start_function(&self, key_file: &Path, key: &PrivateKey) -> Result<FnServer> {
        let run = self.data_dir.join("run");
        create_private_dir(&run)?;
        serve_function(
            &self.emulator,
            &run,
            key_file,
            key,
            DB_SECRET_ID,
            TOKEN_LIFETIME,
        )
    }

    /// Creates the SODA collection (and the gallery's indexes, which the emulator accepts and
    /// ignores) so the gallery can query it before the first analysis.
    fn ensure_collection(&self) -> Result<()> {
        let lookup = |name: &str| {
            self.webapp_env()
                .into_iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v)
        };
        let keys = crate::oci::auth::from_env(lookup)?;
        let transport = Transport::new(Auth::Oci(keys), TransportConfig::default());
        let cloud = crate::config::CloudConfig::from_lookup(&lookup, Some("us-ashburn-1".into()))?;
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

    /// The settings that point the web app at this stack (they take precedence over the
    /// process environment in local mode).
    pub fn webapp_env(&self) -> Vec<(String, String)> {
        let base = self.emulator.base_url().to_string();
        [
            ("OCI_CONFIG_FILE", self.config_file.display().to_string()),
            ("OCI_CLI_PROFILE", "DEFAULT".into()),
            ("OCI_REGION", "us-ashburn-1".into()),
            ("OCIVISION_OBJECTSTORAGE_URL", base.clone()),
            ("OCIVISION_VISION_URL", base.clone()),
            ("OCIVISION_SECRETS_URL", base.clone()),
            ("BUCKET_NAME", "images".into()),
            ("OS_NAMESPACE", self.emulator.namespace().into()),
            ("COMPARTMENT_ID", "ocid1.compartment.oc1..emulator".into()),
            ("DB_ORDS_BASE_URL", format!("{base}/ords/")),
            ("DB_PASSWORD_SECRET_OCID", DB_SECRET_ID.into()),
            ("FUNCTION_ID", FUNCTION_ID.into()),
            ("FUNCTION_INVOKE_ENDPOINT", base),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// The emulator (for tests and the start-up banner).
    pub fn emulator(&self) -> &Emulator {
        &self.emulator
    }

    /// Where the data lives.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Which detector answers Vision, in words.
    pub fn detector(&self) -> &str {
        &self.detector
    }

    /// The web app's session secret, kept across restarts so sessions survive them.
    pub fn session_secret(&self) -> &Secret {
        &self.session_secret
    }
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

/// Serves the real function code through the Fn contract on `run/lsnr.sock`, authenticated
/// as a resource principal with a token the emulator mints for `key` (valid for `lifetime`), and
/// registers it with the emulator for events and invocations. The database password comes from
/// the emulator's secret `db_secret_id`.
pub fn serve_function(
    emulator: &Emulator,
    run: &Path,
    key_file: &Path,
    key: &PrivateKey,
    db_secret_id: &str,
    lifetime: Duration,
) -> Result<FnServer> {
    let token = emulator.mint_token(key, FUNCTION_ID, lifetime);
    let token_file = run.join("rpst");
    write_private(&token_file, &token)?;
    let base = emulator.base_url().to_string();
    let vars: Vec<(&str, String)> = vec![
        ("OCI_RESOURCE_PRINCIPAL_VERSION", "2.2".into()),
        (
            "OCI_RESOURCE_PRINCIPAL_RPST",
            token_file.display().to_string(),
        ),
        (
            "OCI_RESOURCE_PRINCIPAL_PRIVATE_PEM",
            key_file.display().to_string(),
        ),
        ("OCI_RESOURCE_PRINCIPAL_REGION", "us-ashburn-1".into()),
        ("OCIVISION_OBJECTSTORAGE_URL", base.clone()),
        ("OCIVISION_VISION_URL", base.clone()),
        ("OCIVISION_SECRETS_URL", base.clone()),
        ("BUCKET_NAME", "images".into()),
        ("DB_ORDS_BASE_URL", format!("{base}/ords/")),
        ("DB_PASSWORD_SECRET_OCID", db_secret_id.into()),
    ];
    let lookup = |name: &str| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
    };
    let analyzer = Analyzer::from_lookup(&lookup)?;
    let socket = run.join("lsnr.sock");
    let server = FnServer::start(
        &FnConfig {
            socket: socket.clone(),
            logframe: None,
        },
        move |invocation| {
            analyzer.handle(&invocation.body, invocation.deadline, &invocation.call_id)
        },
    )?;
    emulator.register_function(FUNCTION_ID, &socket, true);
    Ok(server)
}

fn attach_detector(emulator: &Emulator) -> String {
    use crate::detect::Detector as _;
    match crate::detect::LocalDetector::load(Default::default()) {
        Ok(detector) => {
            let version = detector.model_version();
            emulator.set_detector(Some(std::sync::Arc::new(detector)));
            version
        }
        Err(e) => {
            log::warn!(target: "local", "the local detector did not load: {e}; analyses will fail");
            format!("none ({e})")
        }
    }
}

/// Loads the local text reader on a thread of its own and gives it to the emulator when ready:
/// optimising the OCR graphs takes a while, and start-up should not wait for it (until then,
/// text detection is reported as unavailable and objects are still found).
fn attach_text_reader(emulator: &Emulator) {
    let models = emulator.vision_models();
    let spawned = std::thread::Builder::new()
        .name("text-reader-load".into())
        .spawn(move || match crate::detect::LocalTextReader::load(Default::default()) {
            Ok(reader) => {
                log::info!(target: "local", "local text reader loaded");
                models.set_text_reader(Some(std::sync::Arc::new(reader)));
            }
            Err(e) => {
                log::warn!(target: "local", "the local text reader did not load: {e}; text detection will be reported unavailable");
            }
        });
    if let Err(e) = spawned {
        log::warn!(target: "local", "the local text reader could not be loaded: {e}");
    }
}

/// Loads `dir/name`, generating a 2048-bit RSA key there first if there is none. ring cannot
/// generate RSA keys, so `openssl` does it; without `openssl`, the shipped development key
/// stands in (it only ever authenticates to this local emulator).
fn key(dir: &Path, name: &str) -> Result<(PathBuf, PrivateKey)> {
    let path = dir.join(name);
    if !path.exists() {
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
}
