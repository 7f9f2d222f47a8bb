//! An API key or a CLI session token from an OCI config file profile: [`ConfigFileProvider`].
//!
//! The file is `OCI_CONFIG_FILE`, else `~/.oci/config`; the profile `OCI_CLI_PROFILE`, else
//! `DEFAULT` (parsed by `config_file`). A profile with `user` signs as
//! `tenancy/user/fingerprint`; one with `security_token_file` signs as `ST$<token>` and re-reads
//! the token near its expiry.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use super::config_file::{expand_path, parse_profile, DEFAULT_PROFILE};
use super::{
    lock, needs_refresh, read_text, system_clock, var, Clock, Credentials, KeyProvider,
    TokenClaims, ENV_HOME, ENV_RP_VERSION, TOKEN_KEY_ID_PREFIX,
};
use crate::oci::keys::PrivateKey;
use crate::{Error, Result};

const ENV_CONFIG_FILE: &str = "OCI_CONFIG_FILE";
const ENV_PROFILE: &str = "OCI_CLI_PROFILE";
const ENV_REGION: &str = "OCI_REGION";

/// An API-key or session-token profile from an OCI config file.
pub struct ConfigFileProvider {
    file: PathBuf,
    profile: String,
    home: Option<PathBuf>,
    region: Option<String>,
    clock: Clock,
    state: Mutex<Loaded>,
}

/// One consistent read of a profile.
struct Loaded {
    credentials: Credentials,
    /// Session tokens expire; API keys do not.
    expires: Option<SystemTime>,
    region: Option<String>,
}

impl ConfigFileProvider {
    /// Reads the profile named by `OCI_CLI_PROFILE` (else `DEFAULT`) from `OCI_CONFIG_FILE`, else
    /// `~/.oci/config`, else the legacy `~/.oraclebmc/config`. `OCI_REGION` fills in a missing
    /// `region`.
    pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> Result<ConfigFileProvider> {
        let home = var(&lookup, ENV_HOME).map(PathBuf::from);
        // An explicit variable beats the default location, so a stray ~/.oci/config on a
        // laptop cannot shadow the file a user pointed at.
        let file = match var(&lookup, ENV_CONFIG_FILE) {
            Some(value) => {
                let file = expand_path(&value, home.as_deref(), ENV_CONFIG_FILE)?;
                if !file.is_file() {
                    return Err(Error::Config(format!(
                        "{ENV_CONFIG_FILE}={}: no such file",
                        file.display()
                    )));
                }
                file
            }
            None => {
                let home = home.as_deref().ok_or_else(|| {
                    Error::Config(format!(
                        "neither {ENV_CONFIG_FILE} nor {ENV_HOME} is set, so no OCI config file can be found"
                    ))
                })?;
                let candidates = [home.join(".oci/config"), home.join(".oraclebmc/config")];
                candidates.iter().find(|p| p.is_file()).cloned().ok_or_else(|| {
                    Error::Config(format!(
                        "{} does not exist and {ENV_CONFIG_FILE} is not set (on OCI, {ENV_RP_VERSION} selects resource principals)",
                        candidates[0].display()
                    ))
                })?
            }
        };
        let profile = var(&lookup, ENV_PROFILE).unwrap_or_else(|| DEFAULT_PROFILE.to_owned());
        let provider = ConfigFileProvider::from_file(&file, &profile, home.as_deref())?;
        Ok(ConfigFileProvider {
            region: provider.region.clone().or_else(|| var(&lookup, ENV_REGION)),
            ..provider
        })
    }

    /// Reads `profile` from `file`. A leading `~` in paths expands to `home`; relative paths
    /// resolve against the current directory.
    pub fn from_file(
        file: &Path,
        profile: &str,
        home: Option<&Path>,
    ) -> Result<ConfigFileProvider> {
        let clock = system_clock();
        let loaded = load_profile(file, profile, home, clock())?;
        Ok(ConfigFileProvider {
            file: file.to_owned(),
            profile: profile.to_owned(),
            home: home.map(Path::to_owned),
            region: loaded.region.clone(),
            clock,
            state: Mutex::new(loaded),
        })
    }

    /// Replaces the clock used to decide when a session token is re-read.
    pub fn with_clock(mut self, clock: Clock) -> ConfigFileProvider {
        self.clock = clock;
        self
    }

    fn reload(&self, state: &mut Loaded) -> Result<()> {
        *state = load_profile(
            &self.file,
            &self.profile,
            self.home.as_deref(),
            (self.clock)(),
        )?;
        Ok(())
    }
}

impl KeyProvider for ConfigFileProvider {
    fn credentials(&self) -> Result<Credentials> {
        let mut state = lock(&self.state);
        let now = (self.clock)();
        if needs_refresh(state.expires, now) {
            log::debug!(
                "credentials: session token near expiry; re-reading {}",
                self.file.display()
            );
            if let Err(e) = self.reload(&mut state) {
                if state.expires.is_some_and(|exp| now >= exp) {
                    return Err(e);
                }
                log::warn!(
                    "credentials: re-reading {} failed, keeping the current token: {e}",
                    self.file.display()
                );
            }
        }
        Ok(state.credentials.clone())
    }

    fn refresh(&self) -> Result<()> {
        let mut state = lock(&self.state);
        self.reload(&mut state)
    }

    fn region(&self) -> Option<String> {
        self.region.clone()
    }
}

impl fmt::Debug for ConfigFileProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigFileProvider")
            .field("file", &self.file)
            .field("profile", &self.profile)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

fn valid_fingerprint(value: &str) -> bool {
    let pairs: Vec<&str> = value.split(':').collect();
    pairs.len() == 16
        && pairs.iter().all(|p| {
            p.len() == 2
                && p.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
}

fn load_profile(
    file: &Path,
    profile: &str,
    home: Option<&Path>,
    now: SystemTime,
) -> Result<Loaded> {
    let shown = file.display().to_string();
    let text = std::fs::read_to_string(file)
        .map_err(|e| Error::Config(format!("{shown}: cannot read OCI config file: {e}")))?;
    let profile = parse_profile(&text, &shown, profile)?;
    let tenancy = profile.require("tenancy")?;
    let key_entry = profile.require("key_file")?;
    let key_where = format!("key_file ({})", profile.at(key_entry));
    let key_path = expand_path(&key_entry.value, home, &key_where)?;
    let passphrase = profile
        .get("pass_phrase")
        .or_else(|| profile.get("passphrase"));

    let fingerprint = profile.get("fingerprint");
    if let Some(fp) = fingerprint {
        if !valid_fingerprint(&fp.value) {
            return Err(Error::Config(format!(
                "{}: fingerprint must be 16 lower-case hex pairs separated by ':' (aa:bb:…)",
                profile.at(fp)
            )));
        }
    }

    let key_pem = read_text(&key_path, &key_where)?;
    let key =
        PrivateKey::from_pem(&key_pem, &key_path.display().to_string()).map_err(|e| {
            match (e, passphrase) {
                (Error::Credentials(m), Some(p)) => Error::Credentials(format!(
            "{m}; the pass_phrase at {} cannot be used because ocivision does not decrypt keys",
            profile.at(p)
        )),
                (e, _) => e,
            }
        })?;
    if let Some(p) = passphrase {
        log::debug!(
            "credentials: pass_phrase at {} ignored: the key is not encrypted",
            profile.at(p)
        );
    }

    let (key_id, expires) = match profile.get("user") {
        Some(user) => {
            let fp = fingerprint.ok_or_else(|| {
                Error::Config(format!(
                    "{shown}: profile [{}]: fingerprint is missing",
                    profile.name
                ))
            })?;
            let actual = key.fingerprint();
            if actual != fp.value {
                log::warn!(
                    "credentials: fingerprint at {} is {} but {} has fingerprint {actual}; OCI will answer 401",
                    profile.at(fp),
                    fp.value,
                    key_path.display()
                );
            }
            (
                format!("{}/{}/{}", tenancy.value, user.value, fp.value),
                None,
            )
        }
        None => {
            let token_entry = profile.get("security_token_file").ok_or_else(|| {
                Error::Config(format!(
                    "{shown}: profile [{}]: neither user nor security_token_file is set",
                    profile.name
                ))
            })?;
            let token_where = format!("security_token_file ({})", profile.at(token_entry));
            let token_path = expand_path(&token_entry.value, home, &token_where)?;
            let token = read_text(&token_path, &token_where)?.trim().to_owned();
            if token.is_empty() {
                return Err(Error::Credentials(format!(
                    "{token_where}: {} is empty",
                    token_path.display()
                )));
            }
            // CLI session tokens are JWTs; one we cannot decode is still sent, just never
            // refreshed early.
            let expires = TokenClaims::decode(&token, &token_where)
                .ok()
                .map(|c| c.expires_at());
            if expires.is_some_and(|exp| now >= exp) {
                log::warn!(
                    "credentials: the session token in {} has expired; run `oci session refresh`",
                    token_path.display()
                );
            }
            (format!("{TOKEN_KEY_ID_PREFIX}{token}"), expires)
        }
    };
    Ok(Loaded {
        credentials: Credentials {
            key_id,
            key: Arc::new(key),
        },
        expires,
        region: profile.get("region").map(|r| r.value.clone()),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::super::from_env;
    use super::super::test_support::{env, fake_clock, fixture, jwt, TempDir, TENANCY, USER};
    use super::*;

    /// Writes `text` as the config file `name` in `dir`; the error loading its DEFAULT profile.
    fn config_error(dir: &TempDir, name: &str, text: &str) -> String {
        let config = dir.write(name, text);
        let err = ConfigFileProvider::from_file(&config, "DEFAULT", None).unwrap_err();
        err.to_string()
    }

    #[test]
    fn fingerprint_format() {
        for (fingerprint, valid) in [
            ("ad:df:eb:55:f8:ba:b5:21:8b:48:35:cf:47:5e:24:bb", true),
            ("AD:DF:EB:55:F8:BA:B5:21:8B:48:35:CF:47:5E:24:BB", false),
            ("ad:df:eb:55:f8:ba:b5:21:8b:48:35:cf:47:5e:24", false),
            ("addfeb55f8bab5218b4835cf475e24bb", false),
        ] {
            assert_eq!(valid_fingerprint(fingerprint), valid, "{fingerprint}");
        }
    }

    #[test]
    fn api_key_profile_gives_tenancy_user_fingerprint_from_pkcs1_and_pkcs8() {
        let f = fixture();
        let dir = TempDir::new("apikey");
        dir.write("home/.oci/k1.pem", &f.pkcs1);
        dir.write("k8.pem", &f.pkcs8);
        let config = dir.write(
            "config",
            &format!(
                "[DEFAULT]\ntenancy={TENANCY}\nuser={USER}\nfingerprint={}\nkey_file=~/.oci/k1.pem\nregion=yyz\n\n[pkcs8]\nkey_file={}\n",
                f.fingerprint,
                dir.0.join("k8.pem").display()
            ),
        );
        let home = dir.0.join("home");
        for profile in ["DEFAULT", "pkcs8"] {
            let p = ConfigFileProvider::from_file(&config, profile, Some(&home)).unwrap();
            let c = p.credentials().unwrap();
            assert_eq!(c.key_id, f.key_id, "{profile}");
            assert_eq!(c.key.fingerprint(), f.fingerprint, "{profile}");
            assert_eq!(
                p.region().as_deref(),
                Some("yyz"),
                "{profile}: region inherited"
            );
            p.refresh().unwrap();
        }
    }

    #[test]
    fn from_env_uses_oci_config_file_profile_and_region_fallback() {
        let f = fixture();
        let dir = TempDir::new("fromenv");
        let key = dir.write("key.pem", &f.pkcs1);
        let config = dir.write(
            "my-config",
            &format!(
                "[DEFAULT]\ntenancy={TENANCY}\nuser=ocid1.user.oc1..default\nfingerprint={}\nkey_file={}\n[work]\nuser={USER}\n",
                f.fingerprint,
                key.display()
            ),
        );
        let lookup = env(&[
            ("OCI_CONFIG_FILE", config.to_str().unwrap()),
            ("OCI_CLI_PROFILE", "work"),
            ("OCI_REGION", "eu-frankfurt-1"),
        ]);
        let provider = from_env(&lookup).unwrap();
        assert_eq!(provider.credentials().unwrap().key_id, f.key_id);
        assert_eq!(provider.region().as_deref(), Some("eu-frankfurt-1"));

        // Without OCI_CONFIG_FILE the default file under HOME is used.
        dir.write(
            "home/.oci/config",
            &std::fs::read_to_string(&config).unwrap(),
        );
        let home = dir.0.join("home");
        let provider = from_env(env(&[("HOME", home.to_str().unwrap())])).unwrap();
        assert!(provider
            .credentials()
            .unwrap()
            .key_id
            .contains("ocid1.user.oc1..default"));

        let err = from_env(env(&[("OCI_CONFIG_FILE", "/nonexistent/cfg")]))
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("OCI_CONFIG_FILE") && err.contains("/nonexistent/cfg"),
            "{err}"
        );
        let err = from_env(env(&[])).err().unwrap().to_string();
        assert!(
            err.contains("OCI_CONFIG_FILE") && err.contains("HOME"),
            "{err}"
        );
    }

    #[test]
    fn config_errors_name_the_file_line_or_key() {
        let f = fixture();
        let dir = TempDir::new("cfgerr");
        let key = dir.write("key.pem", &f.pkcs1);
        let err = config_error(
            &dir,
            "config",
            &format!(
                "[DEFAULT]\ntenancy={TENANCY}\nuser={USER}\nfingerprint=AB:CD\nkey_file={}\n",
                key.display()
            ),
        );
        assert!(
            err.contains(&format!("{}:4", dir.0.join("config").display()))
                && err.contains("fingerprint"),
            "{err}"
        );

        let err = config_error(
            &dir,
            "config2",
            &format!(
                "[DEFAULT]\ntenancy={TENANCY}\nuser={USER}\nfingerprint={}\n",
                f.fingerprint
            ),
        );
        assert!(
            err.contains("key_file is missing") && err.contains("config2"),
            "{err}"
        );

        let err = config_error(
            &dir,
            "config3",
            &format!("[DEFAULT]\ntenancy={TENANCY}\nkey_file={}\n", key.display()),
        );
        assert!(err.contains("security_token_file"), "{err}");

        let err = config_error(&dir, "config4", &format!("[DEFAULT]\ntenancy={TENANCY}\nuser={USER}\nfingerprint={}\nkey_file=/missing/key.pem\n", f.fingerprint));
        assert!(
            err.contains("/missing/key.pem") && err.contains("config4:5"),
            "{err}"
        );
    }

    #[test]
    fn encrypted_key_file_is_refused_with_file_name_and_openssl_fix() {
        let f = fixture();
        let dir = TempDir::new("enc");
        let key = dir.write("enc.pem", &f.encrypted);
        let err = config_error(&dir, "config", &format!(
                "[DEFAULT]\ntenancy={TENANCY}\nuser={USER}\nfingerprint={}\nkey_file={}\npass_phrase=test-passphrase\n",
                f.fingerprint,
                key.display()
            ));
        assert!(
            err.contains(&format!(
                "openssl pkey -in {} -out key-plain.pem",
                key.display()
            )),
            "{err}"
        );
        assert!(
            err.contains("pass_phrase") && err.contains("config:6"),
            "{err}"
        );
        assert!(!err.contains("test-passphrase"), "passphrase leaked: {err}");
    }

    #[test]
    fn security_token_profile_uses_trimmed_token_and_refreshes_near_expiry() {
        let f = fixture();
        let dir = TempDir::new("session");
        let key = dir.write("key.pem", &f.pkcs8);
        let first = jwt(10_000);
        dir.write("token", &format!("\n  {first}  \n"));
        let config = dir.write(
            "config",
            &format!("[DEFAULT]\ntenancy={TENANCY}\nfingerprint={}\nkey_file={}\nsecurity_token_file={}\n", f.fingerprint, key.display(), dir.0.join("token").display()),
        );
        let now = Arc::new(AtomicU64::new(9_000));
        let provider = ConfigFileProvider::from_file(&config, "DEFAULT", None)
            .unwrap()
            .with_clock(fake_clock(&now));
        assert_eq!(
            provider.credentials().unwrap().key_id,
            format!("ST${first}")
        );
        let second = jwt(20_000);
        dir.write("token", &second);
        assert_eq!(
            provider.credentials().unwrap().key_id,
            format!("ST${first}"),
            "not yet due"
        );
        now.store(10_000 - 299, Ordering::SeqCst);
        assert_eq!(
            provider.credentials().unwrap().key_id,
            format!("ST${second}"),
            "re-read within 5 min of exp"
        );
    }
}
