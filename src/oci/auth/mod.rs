//! Who signs: key providers for API keys, session tokens and resource principals (2.2, and
//! 2.1, 2.1.1, 2.1.2 through a token exchange).
//!
//! A [`KeyProvider`] hands out a key id and the private key that goes with it, always from one
//! read so the two match. [`ConfigFileProvider`] reads a `~/.oci/config` profile (API key, or
//! `security_token_file` for a CLI session token); [`ResourcePrincipalProvider`] reads the
//! `OCI_RESOURCE_PRINCIPAL_*` variables set in Functions and Container Instances and re-reads its
//! files before the token expires. [`from_env`] picks one the way our binaries need.
//!
//! One provider per file: `api_key` ([`ConfigFileProvider`]) and `resource_principal`
//! ([`ResourcePrincipalProvider`]); `config_file` parses the INI file the first one reads, and
//! `jwt` decodes the token claims ([`TokenClaims`]) both use. This file holds the trait,
//! [`from_env`] and what the providers share.
//!
//! The environment is read only through a lookup function, and time through a [`Clock`], so tests
//! pass a map and a fake clock. Keys and tokens never reach `Debug` output, errors or logs.
//! Deliberately not here: encrypted keys (refused with the `openssl` line that decrypts them),
//! resource-principal versions 1.1 and 3.0 and instance principals (2.1.x's exchange is in
//! `token_exchange`), and signing itself (`sign`).

mod api_key;
mod config_file;
mod jwt;
mod resource_principal;
mod token_exchange;

pub use api_key::ConfigFileProvider;
pub use jwt::TokenClaims;
pub use resource_principal::ResourcePrincipalProvider;

use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use crate::oci::keys::PrivateKey;
use crate::{Error, Result};

const ENV_HOME: &str = "HOME";
const ENV_RP_VERSION: &str = "OCI_RESOURCE_PRINCIPAL_VERSION";

/// Re-read tokens this long before they expire, as the SDKs do.
const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);
/// Prefix of a security-token key id.
const TOKEN_KEY_ID_PREFIX: &str = "ST$";

/// A key id and the key that goes with it, read together so they always match.
#[derive(Clone)]
pub struct Credentials {
    /// `tenancy/user/fingerprint` or `ST$<token>`.
    pub key_id: String,
    /// The private key.
    pub key: Arc<PrivateKey>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Credentials(<redacted>)")
    }
}

/// Supplies credentials for signing.
pub trait KeyProvider: Send + Sync {
    /// Current credentials, refreshed first when close to expiry.
    fn credentials(&self) -> Result<Credentials>;
    /// Forces a re-read after a 401 (no-op for static keys).
    fn refresh(&self) -> Result<()> {
        Ok(())
    }
    /// The region this provider belongs to, when it knows one.
    fn region(&self) -> Option<String> {
        None
    }
}

/// Where "now" comes from; tests inject a fake.
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

fn system_clock() -> Clock {
    Arc::new(SystemTime::now)
}

/// Picks the provider our binaries use: resource principal v2.2 when
/// `OCI_RESOURCE_PRINCIPAL_VERSION` is set, else the config-file profile.
pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> Result<Arc<dyn KeyProvider>> {
    if var(&lookup, ENV_RP_VERSION).is_some() {
        log::debug!("credentials: resource principal ({ENV_RP_VERSION} is set)");
        Ok(Arc::new(ResourcePrincipalProvider::from_env(lookup)?))
    } else {
        log::debug!("credentials: OCI config file ({ENV_RP_VERSION} is not set)");
        Ok(Arc::new(ConfigFileProvider::from_env(lookup)?))
    }
}

/// A non-empty, trimmed variable.
fn var(lookup: &dyn Fn(&str) -> Option<String>, name: &str) -> Option<String> {
    lookup(name)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere cannot leave half-written credentials: state is replaced whole.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn needs_refresh(expires: Option<SystemTime>, now: SystemTime) -> bool {
    expires.is_some_and(|exp| now + REFRESH_MARGIN >= exp)
}

/// Reads a whole text file; errors say what it was for (`what`) and which path failed.
fn read_text(path: &Path, what: &str) -> Result<String> {
    std::fs::read_to_string(path)
        .map_err(|e| Error::Credentials(format!("{what}: cannot read {}: {e}", path.display())))
}

/// What the providers' unit tests share: key fixtures, temp dirs, tokens and a fake clock.
#[cfg(test)]
mod test_support {
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, UNIX_EPOCH};

    use base64::Engine as _;

    use super::Clock;

    pub(super) struct Fixture {
        pub(super) pkcs1: String,
        pub(super) pkcs8: String,
        pub(super) encrypted: String,
        pub(super) key_id: String,
        pub(super) fingerprint: String,
    }

    pub(super) fn fixture() -> Fixture {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/oci-signing-vectors.json"
        );
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let set = &v["extra_key_sets"][0];
        let s = |k: &str| set[k].as_str().unwrap().to_owned();
        Fixture {
            pkcs1: s("key_pem_pkcs1"),
            pkcs8: s("key_pem_pkcs8"),
            encrypted: s("key_pem_pkcs8_encrypted"),
            key_id: s("key_id"),
            fingerprint: s("fingerprint_md5"),
        }
    }

    /// A unique directory under the system temp dir, removed on drop.
    pub(super) struct TempDir(pub(super) PathBuf);

    impl TempDir {
        pub(super) fn new(name: &str) -> TempDir {
            static COUNTER: AtomicU64 = AtomicU64::new(0);
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let dir = std::env::temp_dir()
                .join(format!("ocivision-auth-{}-{name}-{n}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }

        pub(super) fn write(&self, name: &str, text: &str) -> PathBuf {
            let path = self.0.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, text).unwrap();
            path
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    pub(super) use crate::config::test_lookup as env;

    pub(super) const TENANCY: &str =
        "ocid1.tenancy.oc1..aaaaaaaaba3pv6wkcr4jqae5f15p2b2m2yt2j6rx32uzr4h25vqstifsfdsq";
    pub(super) const USER: &str =
        "ocid1.user.oc1..aaaaaaaat5nvwcna5j6aqzjcaty5eqbb6qt2jvpkanghtgdaqedqw3rynjq";

    pub(super) fn jwt(exp: u64) -> String {
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!(
            "{}.{}.{}",
            b64(r#"{"alg":"RS256","typ":"JWT"}"#),
            b64(&format!(
                r#"{{"res_tenant":"{TENANCY}","res_compartment":"ocid1.compartment.oc1..c","res_type":"fnfunc","iat":{},"exp":{exp}}}"#,
                exp - 1200
            )),
            b64("signature")
        )
    }

    pub(super) fn fake_clock(seconds: &Arc<AtomicU64>) -> Clock {
        let seconds = Arc::clone(seconds);
        Arc::new(move || UNIX_EPOCH + Duration::from_secs(seconds.load(Ordering::SeqCst)))
    }

    pub(super) fn rp_files(dir: &TempDir, key: &str, token: &str) -> (PathBuf, PathBuf) {
        (
            dir.write("rp/private.pem", key),
            dir.write("rp/rpst", token),
        )
    }

    pub(super) fn rp_env<'a>(key: &'a str, token: &'a str) -> Vec<(&'a str, &'a str)> {
        vec![
            ("OCI_RESOURCE_PRINCIPAL_VERSION", "2.2"),
            ("OCI_RESOURCE_PRINCIPAL_RPST", token),
            ("OCI_RESOURCE_PRINCIPAL_PRIVATE_PEM", key),
            ("OCI_RESOURCE_PRINCIPAL_REGION", "us-phoenix-1"),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::{env, fixture, jwt, rp_env, rp_files, TempDir, TENANCY, USER};
    use super::*;

    #[test]
    fn debug_output_never_shows_keys_or_tokens() {
        let f = fixture();
        let dir = TempDir::new("redact");
        let token = jwt(1_700_003_600);
        let key = dir.write("key.pem", &f.pkcs1);
        let config = dir.write(
            "config",
            &format!(
                "[DEFAULT]\ntenancy={TENANCY}\nuser={USER}\nfingerprint={}\nkey_file={}\n",
                f.fingerprint,
                key.display()
            ),
        );
        let api = ConfigFileProvider::from_file(&config, "DEFAULT", None).unwrap();
        let literal = ResourcePrincipalProvider::from_env(env(&rp_env(&f.pkcs1, &token))).unwrap();
        let (k, t) = rp_files(&dir, &f.pkcs8, &token);
        let files = ResourcePrincipalProvider::from_env(env(&rp_env(
            k.to_str().unwrap(),
            t.to_str().unwrap(),
        )))
        .unwrap();
        let shown = [
            format!("{api:?}"),
            format!("{:?}", api.credentials().unwrap()),
            format!("{literal:?}"),
            format!("{:?}", literal.credentials().unwrap()),
            format!("{files:?}"),
            format!("{:?}", files.credentials().unwrap().key),
        ];
        let body_line = f.pkcs1.lines().nth(1).unwrap();
        let token_payload = token.split('.').nth(1).unwrap();
        for text in &shown {
            for secret in ["BEGIN", "MII", body_line, token_payload, &token[..20]] {
                assert!(!text.contains(secret), "{secret:?} leaked in {text}");
            }
        }
        assert!(
            shown[4].contains("rpst"),
            "paths are fine to show: {}",
            shown[4]
        );
    }
}
