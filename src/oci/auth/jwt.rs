//! The claims of an OCI session token, a JWT: when it expires and whose it is.
//!
//! Both resource-principal tokens and CLI session tokens are read here. The signature is not
//! checked: OCI checks it, and we only need the expiry and the tenancy.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD_INDIFFERENT;
use base64::Engine as _;
use serde::Deserialize;

use crate::{Error, Result};

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

#[cfg(test)]
mod tests {
    use super::*;

    fn token(payload: &str) -> String {
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!(
            "{}.{}.{}",
            b64(r#"{"alg":"RS256"}"#),
            b64(payload),
            b64("sig")
        )
    }

    #[test]
    fn claims_decode_and_refusals_name_the_source_not_the_token() {
        let claims =
            TokenClaims::decode(&token(r#"{"exp":1700003600,"res_type":"fnfunc"}"#), "t").unwrap();
        assert_eq!(
            claims.expires_at(),
            UNIX_EPOCH + Duration::from_secs(1_700_003_600)
        );
        assert_eq!(claims.res_type.as_deref(), Some("fnfunc"));
        for (bad, why) in [
            ("a.b".to_string(), "three dot-separated parts"),
            ("a.!!!.c".to_string(), "not base64url"),
            (token("[1]"), "not a JSON object"),
            (token(r#"{"iat":1}"#), "no exp claim"),
            (token(r#"{"exp":-5}"#), "no exp claim"),
        ] {
            let err = TokenClaims::decode(&bad, "RPST (file /x)")
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("RPST (file /x)") && err.contains(why),
                "{bad}: {err}"
            );
            assert!(!err.contains(&bad), "token echoed: {err}");
        }
    }
}
