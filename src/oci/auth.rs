//! Who signs: key providers for API keys, session tokens and resource principals v2.2.
//!
//! A [`KeyProvider`] hands out a key id and the private key that goes with it, always from one
//! read so the two match. [`ConfigFileProvider`] reads a `~/.oci/config` profile (API key, or
//! `security_token_file` for a CLI session token); [`ResourcePrincipalProvider`] reads the
//! `OCI_RESOURCE_PRINCIPAL_*` variables set in Functions and Container Instances and re-reads its
//! files before the token expires. [`from_env`] picks one the way our binaries need.
//!
//! The environment is read only through a lookup function, and time through a [`Clock`], so tests
//! pass a map and a fake clock. Keys and tokens never reach `Debug` output, errors or logs.
//! Deliberately not here: encrypted keys (refused with the `openssl` line that decrypts them),
//! resource-principal versions other than 2.2 and instance principals (they need token-exchange
//! calls), and signing itself (`sign`).

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD_INDIFFERENT;
use base64::Engine as _;
use serde::Deserialize;

use crate::oci::sign::PrivateKey;
use crate::{Error, Result};

const ENV_HOME: &str = "HOME";
const ENV_CONFIG_FILE: &str = "OCI_CONFIG_FILE";
const ENV_PROFILE: &str = "OCI_CLI_PROFILE";
const ENV_REGION: &str = "OCI_REGION";
const ENV_RP_VERSION: &str = "OCI_RESOURCE_PRINCIPAL_VERSION";
const ENV_RP_RPST: &str = "OCI_RESOURCE_PRINCIPAL_RPST";
const ENV_RP_PEM: &str = "OCI_RESOURCE_PRINCIPAL_PRIVATE_PEM";
const ENV_RP_PASSPHRASE: &str = "OCI_RESOURCE_PRINCIPAL_PRIVATE_PEM_PASSPHRASE";
const ENV_RP_REGION: &str = "OCI_RESOURCE_PRINCIPAL_REGION";

const SUPPORTED_RP_VERSION: &str = "2.2";
const DEFAULT_PROFILE: &str = "DEFAULT";
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

// ---------------------------------------------------------------------------------------------
// ~/.oci/config

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

/// A value from the config file with the line it came from, for error messages.
#[derive(Debug, Clone)]
struct Entry {
    value: String,
    line: usize,
}

/// The keys of one profile after `[DEFAULT]` inheritance.
struct Profile {
    file: String,
    name: String,
    entries: HashMap<String, Entry>,
}

impl Profile {
    fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.get(key).filter(|e| !e.value.is_empty())
    }

    fn require(&self, key: &str) -> Result<&Entry> {
        self.get(key).ok_or_else(|| {
            Error::Config(format!(
                "{}: profile [{}]: {key} is missing",
                self.file, self.name
            ))
        })
    }

    fn at(&self, entry: &Entry) -> String {
        format!("{}:{}", self.file, entry.line)
    }
}

/// Parses INI text into `profile`, inheriting missing keys from `[DEFAULT]`.
fn parse_profile(text: &str, file: &str, profile: &str) -> Result<Profile> {
    let mut sections: HashMap<String, HashMap<String, Entry>> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut current: Option<String> = None;
    for (index, raw) in text.lines().enumerate() {
        let line_no = index + 1;
        let line = raw.trim().trim_start_matches('\u{feff}');
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(rest) = line.strip_prefix('[') {
            let name = rest
                .strip_suffix(']')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .ok_or_else(|| {
                    Error::Config(format!("{file}:{line_no}: malformed [PROFILE] line"))
                })?;
            if !sections.contains_key(name) {
                order.push(name.to_owned());
            }
            sections.entry(name.to_owned()).or_default();
            current = Some(name.to_owned());
            continue;
        }
        // Values may contain '=' (base64, URLs): split at the first one only.
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| Error::Config(format!("{file}:{line_no}: expected key=value")))?;
        let key = key.trim().to_ascii_lowercase();
        if key.is_empty() {
            return Err(Error::Config(format!("{file}:{line_no}: empty key")));
        }
        let section = current.as_ref().ok_or_else(|| {
            Error::Config(format!(
                "{file}:{line_no}: key {key} comes before any [PROFILE]"
            ))
        })?;
        let entry = Entry {
            value: value.trim().to_owned(),
            line: line_no,
        };
        sections.get_mut(section).map(|s| s.insert(key, entry));
    }
    let mut entries = sections.get(DEFAULT_PROFILE).cloned().unwrap_or_default();
    match sections.get(profile) {
        Some(own) => entries.extend(own.iter().map(|(k, v)| (k.clone(), v.clone()))),
        None => {
            return Err(Error::Config(format!(
                "{file}: profile [{profile}] not found (profiles: {})",
                if order.is_empty() {
                    "none".to_owned()
                } else {
                    order.join(", ")
                }
            )))
        }
    }
    Ok(Profile {
        file: file.to_owned(),
        name: profile.to_owned(),
        entries,
    })
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

/// Expands a leading `~` to `home` and makes relative paths absolute against the current
/// directory, so error messages show the file actually tried.
fn expand_path(value: &str, home: Option<&Path>, what: &str) -> Result<PathBuf> {
    let path = if value == "~" || value.starts_with("~/") {
        let home = home.ok_or_else(|| {
            Error::Config(format!(
                "{what}: {value} starts with ~ but {ENV_HOME} is not set"
            ))
        })?;
        home.join(value.trim_start_matches('~').trim_start_matches('/'))
    } else {
        PathBuf::from(value)
    };
    if path.is_absolute() {
        return Ok(path);
    }
    let cwd = std::env::current_dir().map_err(|e| {
        Error::Config(format!(
            "{what}: {value} is relative and the current directory is unknown: {e}"
        ))
    })?;
    Ok(cwd.join(path))
}

fn read_text(path: &Path, what: &str) -> Result<String> {
    std::fs::read_to_string(path)
        .map_err(|e| Error::Credentials(format!("{what}: cannot read {}: {e}", path.display())))
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

// ---------------------------------------------------------------------------------------------
// Resource principal v2.2

/// Claims of a resource-principal session token (RPST) that callers may need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenClaims {
    /// `exp`: seconds since the epoch after which the token is refused.
    pub exp: u64,
    /// `iat`: when the token was issued.
    pub iat: Option<u64>,
    /// `res_tenant`: the tenancy OCID.
    pub res_tenant: Option<String>,
    /// `res_compartment`: the resource's compartment OCID.
    pub res_compartment: Option<String>,
    /// `res_type`, e.g. `fnfunc` or `computecontainerinstance`.
    pub res_type: Option<String>,
    /// `res_id`: the resource's OCID.
    pub res_id: Option<String>,
}

impl TokenClaims {
    /// Decodes the payload of a JWT without checking its signature (OCI checks it; we only
    /// need the expiry and the tenancy). `source` names where the token came from.
    pub fn decode(token: &str, source: &str) -> Result<TokenClaims> {
        #[derive(Deserialize)]
        struct Raw {
            exp: Option<f64>,
            iat: Option<f64>,
            res_tenant: Option<String>,
            res_compartment: Option<String>,
            res_type: Option<String>,
            res_id: Option<String>,
        }
        let bad =
            |why: &str| Error::Credentials(format!("{source}: token is not a usable JWT: {why}"));
        let mut parts = token.trim().split('.');
        let (Some(_header), Some(payload), Some(_signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("expected three dot-separated parts"));
        };
        let json = URL_SAFE_NO_PAD_INDIFFERENT
            .decode(payload)
            .map_err(|_| bad("payload is not base64url"))?;
        let raw: Raw =
            serde_json::from_slice(&json).map_err(|_| bad("payload is not a JSON object"))?;
        let seconds = |v: f64| (v.is_finite() && v >= 0.0).then_some(v as u64);
        Ok(TokenClaims {
            exp: raw
                .exp
                .and_then(seconds)
                .ok_or_else(|| bad("no exp claim"))?,
            iat: raw.iat.and_then(seconds),
            res_tenant: raw.res_tenant,
            res_compartment: raw.res_compartment,
            res_type: raw.res_type,
            res_id: raw.res_id,
        })
    }

    /// `exp` as a time.
    pub fn expires_at(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(self.exp)
    }
}

/// A value given either literally or as an absolute path to a file holding it.
enum Source {
    File(PathBuf),
    Literal(String),
}

impl Source {
    /// The file-or-literal rule: a leading `/` means a path. PEMs start `-----BEGIN` and tokens
    /// `eyJ`, so the two cannot be confused.
    fn from_var(lookup: &dyn Fn(&str) -> Option<String>, name: &str) -> Result<Source> {
        let value = var(lookup, name).ok_or_else(|| {
            Error::Config(format!(
                "{name} is not set (required with {ENV_RP_VERSION}={SUPPORTED_RP_VERSION})"
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

/// Resource principal v2.2: `ST$<RPST>` signed with the paired key, re-read before expiry.
pub struct ResourcePrincipalProvider {
    key: Source,
    token: Source,
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
    /// Reads `OCI_RESOURCE_PRINCIPAL_VERSION` (must be `2.2`), `_RPST`, `_PRIVATE_PEM`,
    /// `_PRIVATE_PEM_PASSPHRASE` and `_REGION` through `lookup`, and loads key and token once.
    pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> Result<ResourcePrincipalProvider> {
        let version = var(&lookup, ENV_RP_VERSION)
            .ok_or_else(|| Error::Config(format!("{ENV_RP_VERSION} is not set")))?;
        if version != SUPPORTED_RP_VERSION {
            return Err(Error::Config(format!(
                "{ENV_RP_VERSION}={version} is not supported: only {SUPPORTED_RP_VERSION} is \
                 (1.1, 2.1, 2.1.1, 2.1.2 and 3.0 need token-exchange calls)"
            )));
        }
        let token = Source::from_var(&lookup, ENV_RP_RPST)?;
        let key = Source::from_var(&lookup, ENV_RP_PEM)?;
        if var(&lookup, ENV_RP_PASSPHRASE).is_some() {
            // Platform keys are unencrypted; an encrypted one fails below with the openssl fix.
            log::debug!(
                "credentials: {ENV_RP_PASSPHRASE} is set but ocivision does not decrypt keys"
            );
        }
        let clock = system_clock();
        let state = read_rp(&key, &token)?;
        Ok(ResourcePrincipalProvider {
            key,
            token,
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

    fn can_reload(&self) -> bool {
        self.key.is_file() || self.token.is_file()
    }
}

/// Reads the key first, then the token, into one state; nothing is kept from a failed read.
fn read_rp(key: &Source, token: &Source) -> Result<RpState> {
    let key_pem = key.read(ENV_RP_PEM)?;
    let origin = match key {
        Source::File(path) => path.display().to_string(),
        Source::Literal(_) => ENV_RP_PEM.to_owned(),
    };
    let private = PrivateKey::from_pem(&key_pem, &origin)?;
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
            log::debug!("credentials: resource principal token near expiry; re-reading");
            match read_rp(&self.key, &self.token) {
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
        let fresh = read_rp(&self.key, &self.token)?;
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
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    struct Fixture {
        pkcs1: String,
        pkcs8: String,
        encrypted: String,
        key_id: String,
        fingerprint: String,
    }

    fn fixture() -> Fixture {
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
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            static COUNTER: AtomicU64 = AtomicU64::new(0);
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let dir = std::env::temp_dir()
                .join(format!("ocivision-auth-{}-{name}-{n}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }

        fn write(&self, name: &str, text: &str) -> PathBuf {
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

    use crate::config::test_lookup as env;

    const TENANCY: &str =
        "ocid1.tenancy.oc1..aaaaaaaaba3pv6wkcr4jqae5f15p2b2m2yt2j6rx32uzr4h25vqstifsfdsq";
    const USER: &str =
        "ocid1.user.oc1..aaaaaaaat5nvwcna5j6aqzjcaty5eqbb6qt2jvpkanghtgdaqedqw3rynjq";

    fn jwt(exp: u64) -> String {
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

    fn fake_clock(seconds: &Arc<AtomicU64>) -> Clock {
        let seconds = Arc::clone(seconds);
        Arc::new(move || UNIX_EPOCH + Duration::from_secs(seconds.load(Ordering::SeqCst)))
    }

    #[test]
    fn parser_handles_comments_first_equals_and_default_inheritance() {
        let text = "# comment\n; other comment\n[DEFAULT]\ntenancy = t0\nregion=us-ashburn-1\n\n[dev]\n  user =u1  \nextra = a=b==\n";
        let p = parse_profile(text, "cfg", "dev").unwrap();
        assert_eq!(
            p.get("tenancy").unwrap().value,
            "t0",
            "inherited from DEFAULT"
        );
        assert_eq!(p.get("user").unwrap().value, "u1", "trimmed");
        assert_eq!(p.get("extra").unwrap().value, "a=b==", "split at first =");
        assert_eq!(p.get("extra").unwrap().line, 9);
        let own = parse_profile("[DEFAULT]\nregion=a\n[x]\nregion=b\n", "cfg", "x").unwrap();
        assert_eq!(
            own.get("region").unwrap().value,
            "b",
            "profile overrides DEFAULT"
        );
    }

    #[test]
    fn parser_errors_name_file_line_and_profile() {
        let err = parse_profile("[DEFAULT]\nno equals here\n", "/c/config", "DEFAULT")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("/c/config:2"), "{err}");
        let err = parse_profile("user=x\n", "/c/config", "DEFAULT")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("/c/config:1"), "{err}");
        let err = parse_profile("[DEFAULT\n", "/c/config", "DEFAULT")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("/c/config:1"), "{err}");
        let err = parse_profile("[DEFAULT]\n[a]\n", "/c/config", "prod")
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("[prod]") && err.contains("DEFAULT, a"),
            "{err}"
        );
    }

    #[test]
    fn fingerprint_format() {
        assert!(valid_fingerprint(
            "ad:df:eb:55:f8:ba:b5:21:8b:48:35:cf:47:5e:24:bb"
        ));
        assert!(!valid_fingerprint(
            "AD:DF:EB:55:F8:BA:B5:21:8B:48:35:CF:47:5E:24:BB"
        ));
        assert!(!valid_fingerprint(
            "ad:df:eb:55:f8:ba:b5:21:8b:48:35:cf:47:5e:24"
        ));
        assert!(!valid_fingerprint("addfeb55f8bab5218b4835cf475e24bb"));
    }

    #[test]
    fn paths_expand_home_and_resolve_relative_against_cwd() {
        let home = Path::new("/home/me");
        assert_eq!(
            expand_path("~/.oci/key.pem", Some(home), "k").unwrap(),
            home.join(".oci/key.pem")
        );
        assert_eq!(
            expand_path("/abs/key.pem", Some(home), "k").unwrap(),
            Path::new("/abs/key.pem")
        );
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(
            expand_path("keys/k.pem", None, "k").unwrap(),
            cwd.join("keys/k.pem")
        );
        let err = expand_path("~/k.pem", None, "key_file (cfg:3)")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("key_file (cfg:3)") && err.contains("HOME"),
            "{err}"
        );
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
        let config = dir.write(
            "config",
            &format!(
                "[DEFAULT]\ntenancy={TENANCY}\nuser={USER}\nfingerprint=AB:CD\nkey_file={}\n",
                key.display()
            ),
        );
        let err = ConfigFileProvider::from_file(&config, "DEFAULT", None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("{}:4", config.display())) && err.contains("fingerprint"),
            "{err}"
        );

        let config = dir.write(
            "config2",
            &format!(
                "[DEFAULT]\ntenancy={TENANCY}\nuser={USER}\nfingerprint={}\n",
                f.fingerprint
            ),
        );
        let err = ConfigFileProvider::from_file(&config, "DEFAULT", None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("key_file is missing") && err.contains("config2"),
            "{err}"
        );

        let config = dir.write(
            "config3",
            &format!("[DEFAULT]\ntenancy={TENANCY}\nkey_file={}\n", key.display()),
        );
        let err = ConfigFileProvider::from_file(&config, "DEFAULT", None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("security_token_file"), "{err}");

        let config = dir.write("config4", &format!("[DEFAULT]\ntenancy={TENANCY}\nuser={USER}\nfingerprint={}\nkey_file=/missing/key.pem\n", f.fingerprint));
        let err = ConfigFileProvider::from_file(&config, "DEFAULT", None)
            .unwrap_err()
            .to_string();
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
        let config = dir.write(
            "config",
            &format!(
                "[DEFAULT]\ntenancy={TENANCY}\nuser={USER}\nfingerprint={}\nkey_file={}\npass_phrase=test-passphrase\n",
                f.fingerprint,
                key.display()
            ),
        );
        let err = ConfigFileProvider::from_file(&config, "DEFAULT", None)
            .unwrap_err()
            .to_string();
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

    fn rp_files(dir: &TempDir, key: &str, token: &str) -> (PathBuf, PathBuf) {
        (
            dir.write("rp/private.pem", key),
            dir.write("rp/rpst", token),
        )
    }

    fn rp_env<'a>(key: &'a str, token: &'a str) -> Vec<(&'a str, &'a str)> {
        vec![
            ("OCI_RESOURCE_PRINCIPAL_VERSION", "2.2"),
            ("OCI_RESOURCE_PRINCIPAL_RPST", token),
            ("OCI_RESOURCE_PRINCIPAL_PRIVATE_PEM", key),
            ("OCI_RESOURCE_PRINCIPAL_REGION", "us-phoenix-1"),
        ]
    }

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
        pairs[0].1 = "2.1";
        let err = from_env(env(&pairs)).err().unwrap().to_string();
        assert!(err.contains("OCI_RESOURCE_PRINCIPAL_VERSION=2.1"), "{err}");

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
