//! Resource principal 2.1, 2.1.1 and 2.1.2: the token exchange.
//!
//! Where the platform gives no session token, only a resource id and a key, the token is fetched
//! in two signed calls, as Oracle's SDKs do (facts from Oracle's Python SDK 2.189,
//! `EphemeralResourcePrincipalV21Signer` and `KeyPairSigner`):
//! 1. `GET {OCI_RESOURCE_PRINCIPAL_RPT_ENDPOINT}/20180711/resourcePrincipalTokenV2/{resource}`
//!    (2.1.2: `…/resourcePrincipalTokenV212/{resource}`, or `OCI_RESOURCE_PRINCIPAL_RPT_PATH`
//!    with `{}` for the id, plus a `security-context` header when
//!    `OCI_RESOURCE_PRINCIPAL_SECURITY_CONTEXT` is set) answers a resource principal token and a
//!    service principal session token;
//! 2. `POST {OCI_RESOURCE_PRINCIPAL_RPST_ENDPOINT}/v1/resourcePrincipalSessionToken` with both
//!    and the session public key (base64 DER) answers `{"token": …}`, the session token.
//!
//! Both calls are signed with the resource's own key under the key id `resource/v2.1/{resource}`
//! (2.1) or `resource/v{version}/{tenancy}/{resource}` (2.1.1, 2.1.2, which need
//! `OCI_RESOURCE_PRINCIPAL_TENANCY_ID`). Requests are then signed `ST${token}` with that same key.
//! The key is re-read at each exchange, so a rotated key file is picked up with the next token.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;

use super::{var, Credentials, KeyProvider, TokenClaims, TOKEN_KEY_ID_PREFIX};
use crate::oci::client::{Auth, Call, RetryPolicy, Transport, TransportConfig};
use crate::oci::keys::PrivateKey;
use crate::{Error, Result};

const ENV_RPT_ENDPOINT: &str = "OCI_RESOURCE_PRINCIPAL_RPT_ENDPOINT";
const ENV_RPST_ENDPOINT: &str = "OCI_RESOURCE_PRINCIPAL_RPST_ENDPOINT";
const ENV_RESOURCE_ID: &str = "OCI_RESOURCE_PRINCIPAL_RESOURCE_ID";
const ENV_TENANCY_ID: &str = "OCI_RESOURCE_PRINCIPAL_TENANCY_ID";
const ENV_SECURITY_CONTEXT: &str = "OCI_RESOURCE_PRINCIPAL_SECURITY_CONTEXT";
const ENV_RPT_PATH: &str = "OCI_RESOURCE_PRINCIPAL_RPT_PATH";

/// The versions served by an exchange.
pub(super) const VERSIONS: [&str; 3] = ["2.1", "2.1.1", "2.1.2"];

/// How long both calls of one exchange may take together.
const EXCHANGE_TIME: Duration = Duration::from_secs(30);
/// Largest answer read from the token endpoints.
const ANSWER_LIMIT: u64 = 64 * 1024;

/// Where and as whom to exchange (everything but the key, which is read each time).
pub(super) struct Exchange {
    version: String,
    /// `resource/v…/…`: the key id of the two exchange calls.
    key_id: String,
    rpt: (String, String),
    rpst: (String, String),
    security_context: Option<String>,
}

/// The key given for the exchange calls, as a provider that never changes.
struct ResourceKey {
    key_id: String,
    key: Arc<PrivateKey>,
}

impl KeyProvider for ResourceKey {
    fn credentials(&self) -> Result<Credentials> {
        Ok(Credentials {
            key_id: self.key_id.clone(),
            key: Arc::clone(&self.key),
        })
    }
}

/// `https://host[:port][/base]` split into origin and base path (no trailing slash).
fn split_endpoint(name: &str, url: &str) -> Result<(String, String)> {
    let bad = || Error::Config(format!("{name}={url:?} is not an http(s) URL"));
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(bad)?;
    let scheme = &url[..url.len() - rest.len()];
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    if authority.is_empty() {
        return Err(bad());
    }
    Ok((
        format!("{scheme}{authority}"),
        path.trim_end_matches('/').to_string(),
    ))
}

impl Exchange {
    /// Reads the exchange's variables for `version` (one of [`VERSIONS`]).
    pub(super) fn from_env(
        lookup: &dyn Fn(&str) -> Option<String>,
        version: &str,
    ) -> Result<Exchange> {
        let required = |name: &str| {
            var(lookup, name).ok_or_else(|| {
                Error::Config(format!(
                    "{name} is not set (required with OCI_RESOURCE_PRINCIPAL_VERSION={version})"
                ))
            })
        };
        let resource = required(ENV_RESOURCE_ID)?;
        let key_id = if version == "2.1" {
            format!("resource/v2.1/{resource}")
        } else {
            format!(
                "resource/v{version}/{}/{resource}",
                required(ENV_TENANCY_ID)?
            )
        };
        let (rpt_origin, rpt_base) =
            split_endpoint(ENV_RPT_ENDPOINT, &required(ENV_RPT_ENDPOINT)?)?;
        let rpt_path = match (version, var(lookup, ENV_RPT_PATH)) {
            ("2.1.2", Some(path)) if path.ends_with("{}") => path.replace("{}", &resource),
            ("2.1.2", Some(path)) => format!("{}/{resource}", path.trim_end_matches('/')),
            ("2.1.2", None) => format!("/20180711/resourcePrincipalTokenV212/{resource}"),
            _ => format!("/20180711/resourcePrincipalTokenV2/{resource}"),
        };
        let (rpst_origin, rpst_base) =
            split_endpoint(ENV_RPST_ENDPOINT, &required(ENV_RPST_ENDPOINT)?)?;
        Ok(Exchange {
            version: version.to_string(),
            key_id,
            rpt: (rpt_origin, format!("{rpt_base}{rpt_path}")),
            rpst: (
                rpst_origin,
                format!("{rpst_base}/v1/resourcePrincipalSessionToken"),
            ),
            security_context: (version == "2.1.2")
                .then(|| var(lookup, ENV_SECURITY_CONTEXT))
                .flatten(),
        })
    }

    /// The version this exchange serves.
    pub(super) fn version(&self) -> &str {
        &self.version
    }

    /// Runs both calls with `key`; the session token's credentials and claims.
    pub(super) fn fetch(&self, key: PrivateKey) -> Result<(Credentials, TokenClaims)> {
        let key = Arc::new(key);
        let transport = Transport::new(
            Auth::Oci(Arc::new(ResourceKey {
                key_id: self.key_id.clone(),
                key: Arc::clone(&key),
            })),
            TransportConfig {
                retry: RetryPolicy {
                    max_attempts: 3,
                    ..RetryPolicy::default()
                },
                ..TransportConfig::default()
            },
        );
        let deadline = Instant::now() + EXCHANGE_TIME;
        let mut call = Call::new("auth", "GET", &self.rpt.0, self.rpt.1.clone(), deadline);
        if let Some(context) = &self.security_context {
            call.headers
                .push(("security-context".into(), context.clone()));
        }
        let tokens: serde_json::Value = transport.send(call)?.json(ANSWER_LIMIT)?;
        let field = |value: &serde_json::Value, name: &str| {
            value[name].as_str().map(str::to_string).ok_or_else(|| {
                Error::Credentials(format!(
                    "resource principal {}: the token endpoint's answer has no {name}",
                    self.version
                ))
            })
        };
        let body = serde_json::to_vec(&serde_json::json!({
            "resourcePrincipalToken": field(&tokens, "resourcePrincipalToken")?,
            "servicePrincipalSessionToken": field(&tokens, "servicePrincipalSessionToken")?,
            "sessionPublicKey":
                base64::engine::general_purpose::STANDARD.encode(key.public_key_der()),
        }))?;
        let call =
            Call::new("auth", "POST", &self.rpst.0, self.rpst.1.clone(), deadline).with_json(&body);
        let session: serde_json::Value = transport.send(call)?.json(ANSWER_LIMIT)?;
        let token = field(&session, "token")?;
        let claims = TokenClaims::decode(&token, "the exchanged resource principal session token")?;
        Ok((
            Credentials {
                key_id: format!("{TOKEN_KEY_ID_PREFIX}{token}"),
                key,
            },
            claims,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        }
    }

    const COMMON: [(&str, &str); 4] = [
        (ENV_RPT_ENDPOINT, "https://auth.example.com"),
        (ENV_RPST_ENDPOINT, "https://rpst.example.com/base/"),
        (ENV_RESOURCE_ID, "ocid1.computecontainerinstance.oc1..x"),
        (ENV_TENANCY_ID, "ocid1.tenancy.oc1..t"),
    ];

    #[test]
    fn key_ids_and_paths_follow_the_version() {
        static PAIRS: [(&str, &str); 4] = COMMON;
        let v21 = Exchange::from_env(&lookup(&PAIRS), "2.1").unwrap();
        assert_eq!(
            v21.key_id,
            "resource/v2.1/ocid1.computecontainerinstance.oc1..x"
        );
        assert_eq!(
            v21.rpt,
            (
                "https://auth.example.com".to_string(),
                "/20180711/resourcePrincipalTokenV2/ocid1.computecontainerinstance.oc1..x"
                    .to_string()
            )
        );
        assert_eq!(v21.rpst.1, "/base/v1/resourcePrincipalSessionToken");
        let v211 = Exchange::from_env(&lookup(&PAIRS), "2.1.1").unwrap();
        assert_eq!(
            v211.key_id,
            "resource/v2.1.1/ocid1.tenancy.oc1..t/ocid1.computecontainerinstance.oc1..x"
        );
        let v212 = Exchange::from_env(&lookup(&PAIRS), "2.1.2").unwrap();
        assert!(v212
            .rpt
            .1
            .starts_with("/20180711/resourcePrincipalTokenV212/"));

        static CUSTOM: [(&str, &str); 6] = [
            COMMON[0],
            COMMON[1],
            COMMON[2],
            COMMON[3],
            (ENV_RPT_PATH, "/custom/{}"),
            (ENV_SECURITY_CONTEXT, "ctx"),
        ];
        let custom = Exchange::from_env(&lookup(&CUSTOM), "2.1.2").unwrap();
        assert_eq!(
            custom.rpt.1,
            "/custom/ocid1.computecontainerinstance.oc1..x"
        );
        assert_eq!(custom.security_context.as_deref(), Some("ctx"));
        // 2.1 ignores the 2.1.2-only settings.
        assert!(Exchange::from_env(&lookup(&CUSTOM), "2.1")
            .unwrap()
            .security_context
            .is_none());
    }

    #[test]
    fn missing_settings_are_named() {
        static NO_TENANCY: [(&str, &str); 3] = [COMMON[0], COMMON[1], COMMON[2]];
        assert!(Exchange::from_env(&lookup(&NO_TENANCY), "2.1").is_ok());
        let err = Exchange::from_env(&lookup(&NO_TENANCY), "2.1.1")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains(ENV_TENANCY_ID), "{err}");
        static BAD: [(&str, &str); 3] = [(ENV_RPT_ENDPOINT, "auth"), COMMON[1], COMMON[2]];
        let err = Exchange::from_env(&lookup(&BAD), "2.1")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains(ENV_RPT_ENDPOINT), "{err}");
    }
}
