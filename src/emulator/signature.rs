//! The emulator's side of OCI request signing: parsing an `Authorization: Signature …` header
//! and checking the signature with a public key, as OCI does on its side.
//!
//! The signing string is rebuilt with the signer's own rules (`oci::sign`), so what the signer
//! writes and what this accepts cannot drift apart. Only the signature is checked here; which
//! headers a request must sign, the date's skew and the body's hash are `auth.rs`'s business.

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ring::signature::{UnparsedPublicKey, RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY};

use crate::oci::keys::rsa_public_key;
use crate::oci::sign::names::{DATE, HOST, REQUEST_TARGET, X_DATE};
use crate::oci::sign::{push_line, request_target, ALGORITHM, VERSION};
use crate::{Error, Result};

/// The parameters of an `Authorization: Signature …` header.
#[derive(Clone, PartialEq, Eq)]
pub struct Authorization {
    key_id: String,
    headers: Vec<String>,
    signature: String,
}

impl Authorization {
    /// Parses `Signature version="1",headers="…",keyId="…",algorithm="rsa-sha256",signature="…"`
    /// (parameters in any order). Rejects other algorithms and versions.
    pub fn parse(value: &str) -> Result<Authorization> {
        let bad = |why: &str| Error::Signing(format!("authorization header: {why}"));
        let rest = value
            .trim()
            .strip_prefix("Signature ")
            .ok_or_else(|| bad("scheme is not Signature"))?;
        let (mut key_id, mut headers, mut algorithm, mut signature, mut version) =
            (None, None, None, None, None);
        let mut rest = rest.trim_start();
        while !rest.is_empty() {
            let (name, after) = rest
                .split_once("=\"")
                .ok_or_else(|| bad("malformed parameter"))?;
            let (param, after) = after
                .split_once('"')
                .ok_or_else(|| bad("unterminated quote"))?;
            let slot = match name.trim() {
                "keyId" => &mut key_id,
                "headers" => &mut headers,
                "algorithm" => &mut algorithm,
                "signature" => &mut signature,
                "version" => &mut version,
                _ => return Err(bad("unknown parameter")),
            };
            if slot.replace(param).is_some() {
                return Err(bad("repeated parameter"));
            }
            rest = after.trim_start();
            rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
        }
        if algorithm != Some(ALGORITHM) {
            return Err(bad("algorithm must be rsa-sha256"));
        }
        if version.is_some_and(|v| v != VERSION) {
            return Err(bad("version must be 1"));
        }
        let headers: Vec<String> = headers
            .ok_or_else(|| bad("headers parameter missing"))?
            .split(' ')
            .filter(|h| !h.is_empty())
            .map(str::to_owned)
            .collect();
        Ok(Authorization {
            key_id: key_id.ok_or_else(|| bad("keyId missing"))?.to_owned(),
            headers,
            signature: signature
                .ok_or_else(|| bad("signature missing"))?
                .to_owned(),
        })
    }

    /// `tenancy/user/fingerprint` or `ST$<token>`.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The signed header names, in order.
    pub fn signed_headers(&self) -> Vec<&str> {
        self.headers.iter().map(String::as_str).collect()
    }

    /// The Base64 signature.
    pub fn signature(&self) -> &str {
        &self.signature
    }
}

impl fmt::Debug for Authorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A security-token key id is a bearer credential: keep only its kind.
        let key_id = if self.key_id.starts_with("ST$") {
            "ST$<redacted>"
        } else {
            &self.key_id
        };
        f.debug_struct("Authorization")
            .field("key_id", &key_id)
            .field("headers", &self.headers)
            .finish_non_exhaustive()
    }
}

/// Checks a signed request with a public key; returns the parsed parameters on success.
///
/// `header` looks up a request header by lower-case name. `public_key` is DER, either a
/// SubjectPublicKeyInfo (`BEGIN PUBLIC KEY`) or a PKCS#1 RSAPublicKey. The list must cover
/// `(request-target)`, `host` and `date` or `x-date`. Only the signature is checked: the caller
/// compares `date` with its clock, `x-content-sha256` with the body, and decides which headers a
/// method must sign. Accepts 1024–8192-bit keys so Oracle's 1024-bit documentation key can be
/// checked too.
pub fn verify(
    method: &str,
    path_and_query: &str,
    header: impl Fn(&str) -> Option<String>,
    authorization: &str,
    public_key: &[u8],
) -> Result<Authorization> {
    let auth = Authorization::parse(authorization)?;
    let listed = |name: &str| auth.headers.iter().any(|h| h == name);
    if !listed(REQUEST_TARGET) || !listed(HOST) || !(listed(DATE) || listed(X_DATE)) {
        return Err(Error::Signing(
            "signed headers must include (request-target), host and date or x-date".into(),
        ));
    }
    let mut text = String::new();
    for name in &auth.headers {
        let value = if name == REQUEST_TARGET {
            request_target(method, path_and_query)
        } else {
            header(name).ok_or_else(|| {
                Error::Signing(format!("signed header {name} is missing from the request"))
            })?
        };
        push_line(&mut text, name, &value);
    }
    let signature = STANDARD
        .decode(&auth.signature)
        .map_err(|_| Error::Signing("signature is not valid Base64".into()))?;
    let rsa_public = rsa_public_key(public_key)?;
    UnparsedPublicKey::new(&RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY, rsa_public)
        .verify(text.as_bytes(), &signature)
        .map_err(|_| Error::Signing("signature does not verify".into()))?;
    Ok(auth)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::sign::authorization;

    #[test]
    fn authorization_uses_doc_parameter_order_and_parses_back() {
        let value = authorization("t/u/f", &[DATE, REQUEST_TARGET, HOST], "c2ln").unwrap();
        assert_eq!(
            value,
            r#"Signature version="1",headers="date (request-target) host",keyId="t/u/f",algorithm="rsa-sha256",signature="c2ln""#
        );
        let parsed = Authorization::parse(&value).unwrap();
        assert_eq!(parsed.key_id(), "t/u/f");
        assert_eq!(parsed.signed_headers(), [DATE, REQUEST_TARGET, HOST]);
        assert_eq!(parsed.signature(), "c2ln");
        // Order does not matter; algorithm does.
        let reordered =
            r#"Signature signature="c2ln", keyId="k",algorithm="rsa-sha256",headers="date""#;
        assert_eq!(Authorization::parse(reordered).unwrap().key_id(), "k");
        assert!(Authorization::parse(&value.replace("rsa-sha256", "hmac-sha256")).is_err());
        assert!(Authorization::parse("Bearer abc").is_err());
    }

    #[test]
    fn authorization_debug_hides_security_tokens() {
        let value = authorization("ST$eyJsecret", &[DATE], "c2ln").unwrap();
        let shown = format!("{:?}", Authorization::parse(&value).unwrap());
        assert!(!shown.contains("eyJsecret"), "{shown}");
    }
}
