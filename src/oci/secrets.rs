//! Secrets retrieval (API 20190301): a secret bundle by OCID or by name, decoded.
//!
//! The decoded value is returned as a [`Secret`], which never prints; nothing here logs it.
//! Versions and stages other than the default `CURRENT` are not needed and not offered.

use std::time::Instant;

use base64::Engine as _;
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::oci::client::{Call, Transport};
use crate::oci::encode;
use crate::secret::Secret;

const SERVICE: &str = "secrets";
const JSON_LIMIT: u64 = 1024 * 1024;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Bundle {
    secret_bundle_content: Content,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Content {
    content_type: String,
    content: String,
}

/// A Secrets retrieval client bound to one endpoint.
#[derive(Debug, Clone)]
pub struct Secrets {
    transport: Transport,
    origin: String,
}

impl Secrets {
    /// A client for `origin` (`https://secrets.vaults.{region}.oci.{domain}` or the emulator).
    pub fn new(transport: Transport, origin: impl Into<String>) -> Secrets {
        Secrets {
            transport,
            origin: origin.into().trim_end_matches('/').to_string(),
        }
    }

    /// The current version of the secret `secret_id`, decoded.
    pub fn by_id(&self, secret_id: &str, deadline: Instant) -> Result<Secret> {
        let path = format!("/20190301/secretbundles/{}", encode::component(secret_id));
        self.fetch("GET", path, deadline)
    }

    /// The current version of the secret named `name` in `vault_id`, decoded.
    pub fn by_name(&self, name: &str, vault_id: &str, deadline: Instant) -> Result<Secret> {
        let path = format!(
            "/20190301/secretbundles/actions/getByName{}",
            encode::query(&[("secretName", name), ("vaultId", vault_id)])
        );
        self.fetch("POST", path, deadline)
    }

    fn fetch(&self, method: &'static str, path: String, deadline: Instant) -> Result<Secret> {
        let call = Call::new(SERVICE, method, &self.origin, path, deadline);
        let bundle: Bundle = self.transport.send(call)?.json(JSON_LIMIT)?;
        decode(bundle.secret_bundle_content)
    }
}

fn decode(content: Content) -> Result<Secret> {
    if content.content_type != "BASE64" {
        return Err(Error::Credentials(format!(
            "secret bundle has contentType {:?}; only BASE64 is understood",
            content.content_type
        )));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(content.content.trim())
        .map_err(|_| Error::Credentials("secret bundle content is not valid base64".into()))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| Error::Credentials("secret bundle content is not UTF-8 text".into()))?;
    Ok(Secret::new(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_base64_content() {
        let secret = decode(Content {
            content_type: "BASE64".into(),
            content: "c3VwZXItc2VjcmV0LXB3".into(),
        })
        .unwrap();
        assert_eq!(secret.expose(), "super-secret-pw");
        assert!(decode(Content {
            content_type: "TEXT".into(),
            content: "x".into()
        })
        .is_err());
        assert!(decode(Content {
            content_type: "BASE64".into(),
            content: "!!".into()
        })
        .is_err());
    }
}
