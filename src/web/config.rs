//! The web app's own settings, read once from a lookup function next to the shared
//! [`CloudConfig`]. Every variable is listed in README.md (Configuration); every error names its variable.
//!
//! Not here: reading secrets (the binary resolves `APP_PASSWORD_SECRET_OCID` and
//! `SESSION_SECRET_OCID` with the Secrets client once it has credentials).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::throttle::TrustedProxies;
use crate::config::{number, CloudConfig};
use crate::error::{Error, Result};
use crate::secret::Secret;

/// Variable names, in one place.
pub mod vars {
    /// Listen port.
    pub const PORT: &str = "PORT";
    /// Listen address.
    pub const BIND: &str = "BIND";
    /// Shared password.
    pub const APP_PASSWORD: &str = "APP_PASSWORD";
    /// Vault secret holding the shared password.
    pub const APP_PASSWORD_SECRET: &str = "APP_PASSWORD_SECRET_OCID";
    /// The origin browsers use.
    pub const PUBLIC_ORIGIN: &str = "PUBLIC_ORIGIN";
    /// The analysis function's OCID.
    pub const FUNCTION_ID: &str = "FUNCTION_ID";
    /// The function's invoke endpoint.
    pub const FUNCTION_ENDPOINT: &str = "FUNCTION_INVOKE_ENDPOINT";
    /// Upload cap in bytes.
    pub const MAX_UPLOAD: &str = "MAX_UPLOAD_BYTES";
    /// Seconds between reconciler runs inside the server; 0 = off.
    pub const RECONCILE_INTERVAL: &str = "RECONCILE_INTERVAL_SECS";
    /// Seconds a reconciler lease lasts unless renewed.
    pub const RECONCILE_LEASE: &str = "RECONCILE_LEASE_SECS";
    /// Key material for session cookies and form tokens (development).
    pub const SESSION_SECRET: &str = "SESSION_SECRET";
    /// Vault secret holding that key material.
    pub const SESSION_SECRET_ID: &str = "SESSION_SECRET_OCID";
    /// Addresses or ranges whose `X-Forwarded-For` is believed.
    pub const TRUSTED_PROXIES: &str = "TRUSTED_PROXIES";
}

/// Fewest characters a session secret may have.
pub const MIN_SESSION_SECRET: usize = 24;

/// Where the shared password comes from.
#[derive(Debug, Clone)]
pub enum PasswordSource {
    /// No password: the app is open.
    None,
    /// Given in the environment.
    Literal(Secret),
    /// A Vault secret, read at start.
    SecretId(String),
}

/// Where the session secret comes from.
#[derive(Debug, Clone)]
pub enum SessionSecretSource {
    /// None configured: a random key per process (one instance only).
    None,
    /// Given in the environment.
    Literal(Secret),
    /// A Vault secret, read at start.
    SecretId(String),
}

/// Everything the `webapp` binary reads from the environment.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// Service endpoints, bucket and collection.
    pub cloud: CloudConfig,
    /// Listen address: `BIND` (default `127.0.0.1`) and `PORT` (default 5000).
    pub addr: SocketAddr,
    /// `LOG_LEVEL`, default `info`.
    pub log_level: log::LevelFilter,
    /// The shared password's source.
    pub password: PasswordSource,
    /// `PUBLIC_ORIGIN`, e.g. `https://vision.example.com` (no trailing slash).
    pub public_origin: Option<String>,
    /// `FUNCTION_ID` and `FUNCTION_INVOKE_ENDPOINT`, both or neither.
    pub function: Option<(String, String)>,
    /// `MAX_UPLOAD_BYTES`, default 5 MiB.
    pub max_upload_bytes: u64,
    /// `RECONCILE_INTERVAL_SECS`, default 0 (off).
    pub reconcile_interval: Option<Duration>,
    /// `RECONCILE_LEASE_SECS`, default 120.
    pub reconcile_lease: Duration,
    /// `SESSION_SECRET_OCID` or `SESSION_SECRET`.
    pub session_secret: SessionSecretSource,
    /// `TRUSTED_PROXIES`, default none.
    pub trusted_proxies: TrustedProxies,
}

impl WebConfig {
    /// Reads and checks the configuration.
    pub fn from_lookup(
        lookup: &dyn Fn(&str) -> Option<String>,
        provider_region: Option<String>,
    ) -> Result<WebConfig> {
        WebConfig::with_cloud(CloudConfig::from_lookup(lookup, provider_region)?, lookup)
    }

    /// The web app's own settings from `lookup`, the services' given as a value (local mode,
    /// whose stack knows where they are).
    pub(crate) fn with_cloud(
        cloud: CloudConfig,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<WebConfig> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let ip: IpAddr = match get(vars::BIND) {
            None => IpAddr::from([127, 0, 0, 1]),
            Some(v) => v
                .parse()
                .map_err(|_| Error::Config(format!("{}={v:?} is not an IP address", vars::BIND)))?,
        };
        let port: u16 = number(lookup, vars::PORT, 5000)?;
        let log_level = crate::logger::parse_level(get(crate::config::vars::LOG_LEVEL).as_deref())?;
        let password = match (get(vars::APP_PASSWORD_SECRET), lookup(vars::APP_PASSWORD)) {
            (Some(id), _) => PasswordSource::SecretId(id),
            (None, Some(p)) if !p.is_empty() => PasswordSource::Literal(Secret::new(p)),
            _ => PasswordSource::None,
        };
        let public_origin = match get(vars::PUBLIC_ORIGIN) {
            None => None,
            Some(o) => {
                let o = o.trim_end_matches('/').to_string();
                let scheme_ok = o.starts_with("https://") || o.starts_with("http://");
                let rest = o.split_once("://").map_or("", |(_, r)| r);
                if !scheme_ok || rest.is_empty() || rest.contains('/') {
                    return Err(Error::Config(format!(
                        "{}={o:?} must be scheme://host[:port], e.g. https://vision.example.com",
                        vars::PUBLIC_ORIGIN
                    )));
                }
                Some(o)
            }
        };
        let function = match (get(vars::FUNCTION_ID), get(vars::FUNCTION_ENDPOINT)) {
            (Some(id), Some(url)) => {
                if !url.starts_with("https://") && !url.starts_with("http://") {
                    return Err(Error::Config(format!(
                        "{}={url:?} is not an http(s) URL",
                        vars::FUNCTION_ENDPOINT
                    )));
                }
                Some((id, url.trim_end_matches('/').to_string()))
            }
            (None, None) => None,
            (id, _) => {
                let (set, unset) = match id {
                    Some(_) => (vars::FUNCTION_ID, vars::FUNCTION_ENDPOINT),
                    None => (vars::FUNCTION_ENDPOINT, vars::FUNCTION_ID),
                };
                return Err(Error::Config(format!("{set} is set but {unset} is not")));
            }
        };
        let max_upload_bytes: u64 =
            number(lookup, vars::MAX_UPLOAD, super::DEFAULT_MAX_UPLOAD_BYTES)?;
        if !(1024..=1024 * 1024 * 1024).contains(&max_upload_bytes) {
            return Err(Error::Config(format!(
                "{}={max_upload_bytes} must be between 1024 and 1073741824",
                vars::MAX_UPLOAD
            )));
        }
        let secs: u64 = number(lookup, vars::RECONCILE_INTERVAL, 0)?;
        let lease_secs: u64 = number(lookup, vars::RECONCILE_LEASE, 120)?;
        if !(1..=3600).contains(&lease_secs) {
            return Err(Error::Config(format!(
                "{}={lease_secs} must be between 1 and 3600",
                vars::RECONCILE_LEASE
            )));
        }
        let session_secret = match (get(vars::SESSION_SECRET_ID), lookup(vars::SESSION_SECRET)) {
            (Some(id), _) => SessionSecretSource::SecretId(id),
            (None, Some(s)) if !s.is_empty() => {
                if s.len() < MIN_SESSION_SECRET {
                    return Err(Error::Config(format!(
                        "{} is {} characters; use at least {MIN_SESSION_SECRET} random ones \
                         (e.g. `openssl rand -hex 32`)",
                        vars::SESSION_SECRET,
                        s.len()
                    )));
                }
                SessionSecretSource::Literal(Secret::new(s))
            }
            _ => SessionSecretSource::None,
        };
        let trusted_proxies = match get(vars::TRUSTED_PROXIES) {
            None => TrustedProxies::none(),
            Some(list) => TrustedProxies::parse(&list).map_err(|bad| {
                Error::Config(format!(
                    "{}: {bad:?} is not an IP address or CIDR range (e.g. 10.20.0.0/24)",
                    vars::TRUSTED_PROXIES
                ))
            })?,
        };
        Ok(WebConfig {
            cloud,
            addr: SocketAddr::new(ip, port),
            log_level,
            password,
            public_origin,
            function,
            max_upload_bytes,
            reconcile_interval: (secs > 0).then(|| Duration::from_secs(secs)),
            reconcile_lease: Duration::from_secs(lease_secs),
            session_secret,
            trusted_proxies,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(extra: &[(&str, &str)]) -> Result<WebConfig> {
        let mut map: HashMap<String, String> = [
            ("OCI_REGION", "iad"),
            ("BUCKET_NAME", "images"),
            ("DB_ORDS_BASE_URL", "https://db.example.com/ords/"),
            ("DB_PASSWORD", "pw"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in extra {
            map.insert(k.to_string(), v.to_string());
        }
        WebConfig::from_lookup(&|k| map.get(k).cloned(), None)
    }

    #[test]
    fn defaults() {
        let c = config(&[]).unwrap();
        assert_eq!(c.addr, "127.0.0.1:5000".parse().unwrap());
        assert!(matches!(c.password, PasswordSource::None));
        assert_eq!(c.max_upload_bytes, 50 * 1024 * 1024);
        assert_eq!(c.reconcile_interval, None);
        assert_eq!(c.reconcile_lease, Duration::from_secs(120));
        assert!(matches!(c.session_secret, SessionSecretSource::None));
        assert!(c.trusted_proxies.is_empty());
        assert!(c.function.is_none());
    }

    #[test]
    fn values_are_checked_and_errors_name_the_variable() {
        let c = config(&[
            ("PORT", "8080"),
            ("BIND", "0.0.0.0"),
            ("APP_PASSWORD", "s3cret"),
            ("PUBLIC_ORIGIN", "https://v.example.com/"),
            ("FUNCTION_ID", "ocid1.fnfunc.oc1..x"),
            ("FUNCTION_INVOKE_ENDPOINT", "https://fn.example.com"),
            ("RECONCILE_INTERVAL_SECS", "60"),
            ("SESSION_SECRET", "0123456789abcdef0123456789abcdef"),
            ("TRUSTED_PROXIES", "10.20.0.0/24, 192.0.2.7"),
        ])
        .unwrap();
        assert!(matches!(c.session_secret, SessionSecretSource::Literal(_)));
        assert!(!format!("{c:?}").contains("0123456789abcdef"));
        assert!(!c.trusted_proxies.is_empty());
        let vault = config(&[
            ("SESSION_SECRET", "0123456789abcdef0123456789abcdef"),
            ("SESSION_SECRET_OCID", "ocid1.vaultsecret.oc1..s"),
        ])
        .unwrap();
        assert!(matches!(
            vault.session_secret,
            SessionSecretSource::SecretId(ref id) if id == "ocid1.vaultsecret.oc1..s"
        ));
        assert_eq!(c.addr.port(), 8080);
        assert!(matches!(c.password, PasswordSource::Literal(_)));
        assert!(!format!("{c:?}").contains("s3cret"), "Debug must redact");
        assert_eq!(c.public_origin.as_deref(), Some("https://v.example.com"));
        assert_eq!(c.reconcile_interval, Some(Duration::from_secs(60)));
        for (k, v) in [
            ("PORT", "x"),
            ("BIND", "nope"),
            ("PUBLIC_ORIGIN", "v.example.com"),
            ("PUBLIC_ORIGIN", "https://v.example.com/path"),
            ("FUNCTION_ID", "x"),
            ("MAX_UPLOAD_BYTES", "10"),
            ("RECONCILE_INTERVAL_SECS", "-1"),
            ("RECONCILE_LEASE_SECS", "0"),
            ("SESSION_SECRET", "short"),
            ("TRUSTED_PROXIES", "10.20.0.0/33"),
            ("TRUSTED_PROXIES", "lb.example.com"),
        ] {
            let err = config(&[(k, v)]).unwrap_err().to_string();
            assert!(err.contains(k), "{k}={v}: {err}");
        }
    }
}
