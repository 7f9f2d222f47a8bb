//! Resource principals: [`ResourcePrincipalProvider`] signs as `ST$<RPST>` with the key
//! issued with the token.
//!
//! Functions and Container Instances set `OCI_RESOURCE_PRINCIPAL_*`. With version 2.2 the token
//! and the key are given, each literally or as a file path; files are re-read before the token
//! expires and after a 401, key and token together so that a pair is never mixed. With 2.1,
//! 2.1.1 and 2.1.2 only the key and a resource id are given, and the token is fetched by a token
//! exchange (`token_exchange.rs`), again before it expires and after a 401.

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::token_exchange::{self, Exchange};
use super::{
    lock, needs_refresh, read_text, system_clock, var, Clock, Credentials, KeyProvider,
    TokenClaims, ENV_RP_VERSION, TOKEN_KEY_ID_PREFIX,
};
use crate::oci::keys::PrivateKey;
use crate::{Error, Result};

const ENV_RP_RPST: &str = "OCI_RESOURCE_PRINCIPAL_RPST";
const ENV_RP_PEM: &str = "OCI_RESOURCE_PRINCIPAL_PRIVATE_PEM";
const ENV_RP_PASSPHRASE: &str = "OCI_RESOURCE_PRINCIPAL_PRIVATE_PEM_PASSPHRASE";
const ENV_RP_REGION: &str = "OCI_RESOURCE_PRINCIPAL_REGION";

const SUPPORTED_RP_VERSION: &str = "2.2";

/// A value given either literally or as an absolute path to a file holding it.
enum Source {
    File(PathBuf),
    Literal(String),
}

impl Source {
    /// The file-or-literal rule: a leading `/` means a path. PEMs start `-----BEGIN` and tokens
    /// `eyJ`, so the two cannot be confused.
    fn from_var(
        lookup: &dyn Fn(&str) -> Option<String>,
        name: &str,
        version: &str,
    ) -> Result<Source> {
        let value = var(lookup, name).ok_or_else(|| {
            Error::Config(format!(
                "{name} is not set (required with {ENV_RP_VERSION}={version})"
            ))
        })?;
        Ok(if value.starts_with('/') {
            Source::File(PathBuf::from(value))
        } else {
            Source::Literal(value)
        })
    }

    fn read(&self, name: &str) -> Result<String> {
        match self {
            Source::File(path) => read_text(path, name),
            Source::Literal(value) => Ok(value.clone()),
        }
    }

    /// Where the value came from, safe to print.
    fn describe(&self, name: &str) -> String {
        match self {
            Source::File(path) => format!("{name} (file {})", path.display()),
            Source::Literal(_) => format!("{name} (literal value)"),
        }
    }

    fn is_file(&self) -> bool {
        matches!(self, Source::File(_))
    }
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::File(path) => write!(f, "File({})", path.display()),
            Source::Literal(_) => f.write_str("Literal(<redacted>)"),
        }
    }
}

/// A resource principal: `ST$<RPST>` signed with the paired key, renewed before expiry.
pub struct ResourcePrincipalProvider {
    key: Source,
    /// 2.2: where the token is read; `None` when it is exchanged.
    token: Option<Source>,
    /// 2.1.x: how the token is fetched.
    exchange: Option<Exchange>,
    region: Option<String>,
    clock: Clock,
    state: Mutex<RpState>,
}

/// One consistent read: a key and the token issued for it.
struct RpState {
    credentials: Credentials,
    claims: TokenClaims,
}

impl ResourcePrincipalProvider {
    /// Reads `OCI_RESOURCE_PRINCIPAL_VERSION` (`2.2`, or `2.1`, `2.1.1`, `2.1.2` with the
    /// exchange's variables), `_RPST` (2.2), `_PRIVATE_PEM`, `_PRIVATE_PEM_PASSPHRASE` and
    /// `_REGION` through `lookup`, and loads key and token once (2.1.x: exchanges once).
    pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> Result<ResourcePrincipalProvider> {
        let version = var(&lookup, ENV_RP_VERSION)
            .ok_or_else(|| Error::Config(format!("{ENV_RP_VERSION} is not set")))?;
        let exchange = if version == SUPPORTED_RP_VERSION {
            None
        } else if token_exchange::VERSIONS.contains(&version.as_str()) {
            Some(Exchange::from_env(&lookup, &version)?)
        } else {
            return Err(Error::Config(format!(
                "{ENV_RP_VERSION}={version} is not supported: 2.2, 2.1, 2.1.1 and 2.1.2 are \
                 (1.1 and 3.0 are not)"
            )));
        };
        let token = match exchange {
            None => Some(Source::from_var(&lookup, ENV_RP_RPST, &version)?),
            Some(_) => None,
        };
        let key = Source::from_var(&lookup, ENV_RP_PEM, &version)?;
        if var(&lookup, ENV_RP_PASSPHRASE).is_some() {
            // Platform keys are unencrypted; an encrypted one fails below with the openssl fix.
            log::debug!(
                "credentials: {ENV_RP_PASSPHRASE} is set but ocivision does not decrypt keys"
            );
        }
        let clock = system_clock();
        let state = load(&key, token.as_ref(), exchange.as_ref())?;
        Ok(ResourcePrincipalProvider {
            key,
            token,
            exchange,
            region: var(&lookup, ENV_RP_REGION),
            clock,
            state: Mutex::new(state),
        })
    }

    /// Replaces the clock used to decide when to re-read.
    pub fn with_clock(mut self, clock: Clock) -> ResourcePrincipalProvider {
        self.clock = clock;
        self
    }

    /// The claims of the current token (tenancy, compartment, expiry, …).
    pub fn claims(&self) -> TokenClaims {
        lock(&self.state).claims.clone()
    }

    /// The resource principal version in use: `2.2`, `2.1`, `2.1.1` or `2.1.2`.
    pub fn version(&self) -> &str {
        self.exchange
            .as_ref()
            .map_or(SUPPORTED_RP_VERSION, Exchange::version)
    }

    fn can_reload(&self) -> bool {
        self.exchange.is_some()
            || self.key.is_file()
            || self.token.as_ref().is_some_and(Source::is_file)
    }

    fn reload(&self) -> Result<RpState> {
        load(&self.key, self.token.as_ref(), self.exchange.as_ref())
    }
}

/// One consistent state: read (2.2) or exchanged (2.1.x).
fn load(key: &Source, token: Option<&Source>, exchange: Option<&Exchange>) -> Result<RpState> {
    match (token, exchange) {
        (Some(token), _) => read_rp(key, token),
        (None, Some(exchange)) => {
            let (credentials, claims) = exchange.fetch(read_key(key)?)?;
            Ok(RpState {
                credentials,
                claims,
            })
        }
        (None, None) => Err(Error::Config(format!("{ENV_RP_RPST} is not set"))),
    }
}

fn read_key(key: &Source) -> Result<PrivateKey> {
    let key_pem = key.read(ENV_RP_PEM)?;
    let origin = match key {
        Source::File(path) => path.display().to_string(),
        Source::Literal(_) => ENV_RP_PEM.to_owned(),
    };
    PrivateKey::from_pem(&key_pem, &origin)
}

/// Reads the key first, then the token, into one state; nothing is kept from a failed read.
fn read_rp(key: &Source, token: &Source) -> Result<RpState> {
    let private = read_key(key)?;
    let rpst = token.read(ENV_RP_RPST)?.trim().to_owned();
    let claims = TokenClaims::decode(&rpst, &token.describe(ENV_RP_RPST))?;
    Ok(RpState {
        credentials: Credentials {
            key_id: format!("{TOKEN_KEY_ID_PREFIX}{rpst}"),
            key: Arc::new(private),
        },
        claims,
    })
}

impl KeyProvider for ResourcePrincipalProvider {
    fn credentials(&self) -> Result<Credentials> {
        let mut state = lock(&self.state);
        let now = (self.clock)();
        let expires = state.claims.expires_at();
        if self.can_reload() && needs_refresh(Some(expires), now) {
            log::debug!("credentials: resource principal token near expiry; renewing");
            match self.reload() {
                Ok(fresh) => *state = fresh,
                Err(e) if now >= expires => return Err(e),
                Err(e) => {
                    log::warn!("credentials: re-reading failed, keeping the current token: {e}")
                }
            }
        }
        Ok(state.credentials.clone())
    }

    fn refresh(&self) -> Result<()> {
        if !self.can_reload() {
            return Ok(());
        }
        let fresh = self.reload()?;
        *lock(&self.state) = fresh;
        Ok(())
    }

    fn region(&self) -> Option<String> {
        self.region.clone()
    }
}

impl fmt::Debug for ResourcePrincipalProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResourcePrincipalProvider")
            .field("key", &self.key)
            .field("token", &self.token)
            .field("version", &self.version())
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::super::from_env;
    use super::super::test_support::{
        env, fake_clock, fixture, jwt, rp_env, rp_files, TempDir, TENANCY,
    };
    use super::*;

    #[test]
    fn resource_principal_path_mode_reads_files_and_decodes_claims() {
        let f = fixture();
        let dir = TempDir::new("rp-path");
        let token = jwt(1_700_003_600);
        let (key, rpst) = rp_files(&dir, &f.pkcs1, &format!("{token}\n"));
        let pairs = rp_env(key.to_str().unwrap(), rpst.to_str().unwrap());
        let provider = from_env(env(&pairs)).unwrap();
        let c = provider.credentials().unwrap();
        assert_eq!(c.key_id, format!("ST${token}"));
        assert_eq!(c.key.fingerprint(), f.fingerprint);
        assert_eq!(provider.region().as_deref(), Some("us-phoenix-1"));

        let rp = ResourcePrincipalProvider::from_env(env(&pairs)).unwrap();
        let claims = rp.claims();
        assert_eq!(claims.exp, 1_700_003_600);
        assert_eq!(claims.iat, Some(1_700_002_400));
        assert_eq!(claims.res_tenant.as_deref(), Some(TENANCY));
        assert_eq!(claims.res_type.as_deref(), Some("fnfunc"));
    }

    #[test]
    fn resource_principal_literal_mode_and_fixture_token() {
        let f = fixture();
        let v: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/oci-signing-vectors.json"
            ))
            .unwrap(),
        )
        .unwrap();
        let token = v["extra_key_sets"][0]["security_token_jwt_example"]
            .as_str()
            .unwrap();
        let pairs = rp_env(&f.pkcs8, token);
        let rp = ResourcePrincipalProvider::from_env(env(&pairs)).unwrap();
        assert_eq!(rp.credentials().unwrap().key_id, format!("ST${token}"));
        assert_eq!(rp.claims().exp, 1_700_003_600);
        assert_eq!(
            rp.claims().res_compartment.as_deref(),
            Some("ocid1.compartment.oc1..aaaaexample")
        );
        rp.refresh().unwrap();
    }

    #[test]
    fn resource_principal_errors_name_the_variable() {
        let f = fixture();
        let token = jwt(10_000);
        let mut pairs = rp_env(&f.pkcs1, &token);
        pairs[0].1 = "3.0";
        let err = from_env(env(&pairs)).err().unwrap().to_string();
        assert!(err.contains("OCI_RESOURCE_PRINCIPAL_VERSION=3.0"), "{err}");
        pairs[0].1 = "2.1";
        let err = from_env(env(&pairs)).err().unwrap().to_string();
        assert!(
            err.contains("OCI_RESOURCE_PRINCIPAL_RESOURCE_ID is not set"),
            "{err}"
        );

        let pairs = vec![
            ("OCI_RESOURCE_PRINCIPAL_VERSION", "2.2"),
            ("OCI_RESOURCE_PRINCIPAL_PRIVATE_PEM", f.pkcs1.as_str()),
        ];
        let err = from_env(env(&pairs)).err().unwrap().to_string();
        assert!(
            err.contains("OCI_RESOURCE_PRINCIPAL_RPST is not set"),
            "{err}"
        );

        let pairs = rp_env(&f.pkcs1, "/nonexistent/rpst");
        let err = from_env(env(&pairs)).err().unwrap().to_string();
        assert!(
            err.contains("OCI_RESOURCE_PRINCIPAL_RPST") && err.contains("/nonexistent/rpst"),
            "{err}"
        );

        let pairs = rp_env(&f.pkcs1, "not-a-jwt");
        let err = from_env(env(&pairs)).err().unwrap().to_string();
        assert!(
            err.contains("OCI_RESOURCE_PRINCIPAL_RPST (literal value)"),
            "{err}"
        );
        assert!(!err.contains("not-a-jwt"), "token echoed: {err}");

        let pairs = rp_env(&f.encrypted, &token);
        let err = from_env(env(&pairs)).err().unwrap().to_string();
        assert!(
            err.contains("OCI_RESOURCE_PRINCIPAL_PRIVATE_PEM") && err.contains("openssl pkey"),
            "{err}"
        );
    }

    #[test]
    fn resource_principal_refreshes_before_exp_and_never_mixes_reads() {
        let f = fixture();
        let dir = TempDir::new("rp-refresh");
        let first = jwt(10_000);
        let (key, rpst) = rp_files(&dir, &f.pkcs1, &first);
        let pairs = rp_env(key.to_str().unwrap(), rpst.to_str().unwrap());
        let now = Arc::new(AtomicU64::new(9_000));
        let rp = ResourcePrincipalProvider::from_env(env(&pairs))
            .unwrap()
            .with_clock(fake_clock(&now));

        let second = jwt(20_000);
        dir.write("rp/rpst", &second);
        assert_eq!(
            rp.credentials().unwrap().key_id,
            format!("ST${first}"),
            "10 min before exp: cached"
        );
        now.store(10_000 - 300, Ordering::SeqCst);
        assert_eq!(
            rp.credentials().unwrap().key_id,
            format!("ST${second}"),
            "5 min before exp: re-read"
        );
        assert_eq!(rp.claims().exp, 20_000);

        // A broken key file during a refresh keeps the old pair whole, even though the token
        // file already holds a new token.
        let third = jwt(30_000);
        dir.write("rp/rpst", &third);
        dir.write("rp/private.pem", "garbage");
        now.store(20_000 - 60, Ordering::SeqCst);
        assert_eq!(
            rp.credentials().unwrap().key_id,
            format!("ST${second}"),
            "old pair kept"
        );
        let err = rp.refresh().unwrap_err().to_string();
        assert!(err.contains(key.to_str().unwrap()), "{err}");
        now.store(20_001, Ordering::SeqCst);
        assert!(rp.credentials().is_err(), "expired and unreadable: error");

        // refresh() forces a re-read regardless of the clock.
        dir.write("rp/private.pem", &f.pkcs8);
        now.store(0, Ordering::SeqCst);
        rp.refresh().unwrap();
        assert_eq!(rp.credentials().unwrap().key_id, format!("ST${third}"));
    }
}
