//! An emulator on 127.0.0.1:0 with a temp data dir, a trusted API key written to a real
//! `~/.oci/config`-style file, and clients pointed at it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ocivision::emulator::secrets::SecretEntry;
use ocivision::emulator::{Emulator, EmulatorConfig, DEV_KEY_PEM};
use ocivision::oci::auth::ConfigFileProvider;
use ocivision::oci::client::{Auth, RetryPolicy, Transport, TransportConfig};
use ocivision::oci::object_storage::{Bucket, ObjectStorage};
use ocivision::oci::secrets::Secrets;
use ocivision::oci::sign::PrivateKey;
use ocivision::oci::vision::Vision;
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
