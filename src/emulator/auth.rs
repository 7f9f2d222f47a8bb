//! Who may call the emulator: OCI request signatures checked as OCI checks them, resource
//! principal tokens minted here for the function, and ORDS Basic credentials.
//!
//! A signature is refused (401 `NotAuthenticated`) for an unknown key, a signature that does not
//! verify, a required header missing from the signed list, a body whose hash or length differs
//! from the signed one, an expired token, or a date more than 5 minutes off. The Object Storage
//! PutObject exception is honoured: those requests need only `date (request-target) host`, but
//! body headers, if signed, must be right. Tokens are opaque here: the emulator remembers the ones
//! it minted and the public key bound to each, so no token crypto is needed.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use serde_json::json;

use crate::emulator::iam::Principal;
use crate::emulator::signature::{self, Authorization};
use crate::emulator::wire::{EmuRequest, EmuResponse};
use crate::oci::sign::{self, names};

/// How far a request's date may be from the emulator's clock.
pub const MAX_SKEW: Duration = Duration::from_secs(300);

/// The public keys the emulator trusts, and who each one stands for.
#[derive(Default)]
pub struct KeyRing {
    api_keys: RwLock<HashMap<String, (Vec<u8>, Principal)>>,
    tokens: RwLock<HashMap<String, MintedToken>>,
}

struct MintedToken {
    public_key: Vec<u8>,
    expires: SystemTime,
    principal: Principal,
}

/// Why a request was refused, in words for the 401 body.
pub type Refusal = String;

impl KeyRing {
    /// Trusts `public_key` (SPKI DER) for the API key id `key_id` (`tenancy/user/fingerprint`);
    /// requests signed with it act as `principal`.
    pub fn add_api_key(&self, key_id: &str, public_key: Vec<u8>, principal: Principal) {
        self.api_keys
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key_id.to_string(), (public_key, principal));
    }

    /// Mints a resource-principal token (a JWT in shape, with the claims OCI's carry) for a
    /// resource of `resource_type` (`fnfunc`, `computecontainerinstance`), bound to
    /// `public_key`, valid for `lifetime` from `now`.
    #[allow(clippy::too_many_arguments)]
    pub fn mint_token(
        &self,
        public_key: Vec<u8>,
        resource_type: &str,
        resource_id: &str,
        tenancy: &str,
        compartment: &str,
        now: SystemTime,
        lifetime: Duration,
    ) -> String {
        let issued = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header =
            url.encode(json!({"alg": "RS256", "typ": "JWT", "kid": "emulator"}).to_string());
        let claims = url.encode(
            json!({
                "iss": "ocivision-emulator", "sub": resource_id, "res_type": resource_type,
                "res_id": resource_id, "res_tenant": tenancy, "res_compartment": compartment,
                "iat": issued, "exp": issued + lifetime.as_secs(),
                "jti": crate::random::uuid(),
            })
            .to_string(),
        );
        let tag = url.encode(crate::random::bytes::<32>());
        let token = format!("{header}.{claims}.{tag}");
        let mut tokens = self.tokens.write().unwrap_or_else(|e| e.into_inner());
        // Expired tokens are refused anyway; dropping them here bounds the map by the tokens
        // alive at once, however often a long run mints.
        tokens.retain(|_, minted| now < minted.expires);
        tokens.insert(
            token.clone(),
            MintedToken {
                public_key,
                expires: now + lifetime,
                principal: Principal::Resource {
                    resource_type: resource_type.into(),
                    id: resource_id.into(),
                    compartment_id: compartment.into(),
                },
            },
        );
        token
    }

    /// How many API keys are trusted and how many minted tokens are kept (expired ones go at
    /// the next mint).
    pub fn trusted(&self) -> (usize, usize) {
        let keys = self
            .api_keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .len();
        let tokens = self.tokens.read().unwrap_or_else(|e| e.into_inner()).len();
        (keys, tokens)
    }

    fn public_key(&self, key_id: &str, now: SystemTime) -> Result<(Vec<u8>, Principal), Refusal> {
        if let Some(token) = key_id.strip_prefix("ST$") {
            let tokens = self.tokens.read().unwrap_or_else(|e| e.into_inner());
            let minted = tokens.get(token).ok_or("unknown security token")?;
            if now >= minted.expires {
                return Err("security token expired".into());
            }
            return Ok((minted.public_key.clone(), minted.principal.clone()));
        }
        self.api_keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(key_id)
            .cloned()
            .ok_or_else(|| "unknown keyId".into())
    }

    /// Checks an OCI-signed request and names who sent it. `body_exempt` is true for PutObject
    /// (and UploadPart).
    pub fn check_signature(
        &self,
        request: &EmuRequest,
        body_exempt: bool,
        now: SystemTime,
    ) -> Result<Principal, Refusal> {
        let authorization = request
            .header(names::AUTHORIZATION)
            .ok_or("missing Authorization header")?;
        let parsed = Authorization::parse(authorization).map_err(|e| e.to_string())?;
        let signed = parsed.signed_headers();
        let mut required = vec![names::REQUEST_TARGET, names::HOST];
        let has_body = matches!(request.method.as_str(), "POST" | "PUT" | "PATCH");
        if has_body && !body_exempt {
            required.extend([
                names::CONTENT_LENGTH,
                names::CONTENT_TYPE,
                names::X_CONTENT_SHA256,
            ]);
        }
        for name in required {
            if !signed.contains(&name) {
                return Err(format!("required header {name} is not signed"));
            }
        }
        let date_header = if signed.contains(&names::X_DATE) {
            names::X_DATE
        } else if signed.contains(&names::DATE) {
            names::DATE
        } else {
            return Err("neither date nor x-date is signed".into());
        };
        let (public_key, principal) = self.public_key(parsed.key_id(), now)?;
        signature::verify(
            &request.method,
            &request.target(),
            |name| request.header(name).map(str::to_string),
            authorization,
            &public_key,
        )
        .map_err(|e| e.to_string())?;

        let date = request
            .header(date_header)
            .and_then(|d| httpdate::parse_http_date(d).ok())
            .ok_or_else(|| format!("{date_header} is not an HTTP date"))?;
        let skew = match now.duration_since(date) {
            Ok(behind) => behind,
            Err(ahead) => ahead.duration(),
        };
        if skew > MAX_SKEW {
            return Err(format!(
                "request date is {} s away from the server's clock (limit 300 s)",
                skew.as_secs()
            ));
        }
        if signed.contains(&names::X_CONTENT_SHA256)
            && request.header(names::X_CONTENT_SHA256)
                != Some(sign::body_sha256(&request.body).as_str())
        {
            return Err("x-content-sha256 does not match the body".into());
        }
        if signed.contains(&names::CONTENT_LENGTH)
            && request
                .header(names::CONTENT_LENGTH)
                .and_then(|v| v.parse::<usize>().ok())
                != Some(request.body.len())
        {
            return Err("content-length does not match the body".into());
        }
        Ok(principal)
    }
}

/// The 401 a real service sends, with the reason in the message.
pub fn not_authenticated(reason: &str) -> EmuResponse {
    EmuResponse::error(
        401,
        "NotAuthenticated",
        &format!("The required information to complete authentication was not provided or was incorrect: {reason}"),
    )
    .with_header("www-authenticate", "Signature headers=\"date (request-target) host\"")
}

/// Checks `Authorization: Basic …` against the one ORDS user.
pub fn check_basic(request: &EmuRequest, user: &str, password: &str) -> bool {
    let Some(encoded) = request
        .header("authorization")
        .and_then(|v| v.strip_prefix("Basic "))
    else {
        return false;
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return false;
    };
    let expected = format!("{user}:{password}");
    crate::secret::constant_time_eq(&decoded, expected.as_bytes())
}

/// ORDS's 401 body.
pub fn ords_unauthorized() -> EmuResponse {
    let mut response = EmuResponse::json(
        401,
        &json!({"code": "Unauthorized", "message": "Unauthorized",
                "type": "tag:oracle.com,2020:error/Unauthorized",
                "instance": format!("tag:oracle.com,2020:ecid/{}", crate::random::uuid())}),
    );
    response.headers[0].1 = "application/problem+json".into();
    response
}

/// ORDS's 404 for a URL it cannot map to a schema (an unknown alias).
pub fn ords_unmapped() -> EmuResponse {
    let mut response = EmuResponse::json(
        404,
        &json!({"code": "NotFound", "title": "Not Found",
                "message": "The request could not be mapped to any database. Check the request URL is correct, and that URL to database mappings have been correctly configured",
                "type": "tag:oracle.com,2020:error/NotFound",
                "instance": format!("tag:oracle.com,2020:ecid/{}", crate::random::uuid())}),
    );
    response.headers[0].1 = "application/problem+json".into();
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::keys::PrivateKey;
    use crate::oci::sign::{Body, RequestToSign};

    fn key() -> PrivateKey {
        PrivateKey::from_pem(include_str!("dev-key.pem"), "dev-key.pem").unwrap()
    }

    /// A request signed with the dev key as the emulator will receive it.
    fn signed(
        method: &str,
        target: &str,
        body: &[u8],
        unsigned_body: bool,
        now: SystemTime,
    ) -> EmuRequest {
        let (raw_path, raw_query) = target.split_once('?').unwrap_or((target, ""));
        let mut headers = vec![("host".to_string(), "127.0.0.1:7070".to_string())];
        if method == "PUT" || method == "POST" {
            headers.push(("content-type".into(), "application/octet-stream".into()));
            if unsigned_body {
                headers.push(("content-length".into(), body.len().to_string()));
            }
        }
        let borrowed: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let request = RequestToSign {
            method,
            path_and_query: target,
            host: "127.0.0.1:7070",
            headers: &borrowed,
            body: if unsigned_body {
                Body::Unsigned
            } else {
                Body::Signed(body)
            },
        };
        let added = sign::sign(&request, "tenancy/user/fp", &key(), now).unwrap();
        headers.extend(added.into_iter().map(|(n, v)| (n.to_string(), v)));
        EmuRequest {
            method: method.into(),
            raw_path: raw_path.into(),
            raw_query: raw_query.into(),
            headers,
            body: body.to_vec(),
        }
    }

    fn ring_with_key() -> KeyRing {
        let ring = KeyRing::default();
        ring.add_api_key(
            "tenancy/user/fp",
            key().public_key_der(),
            Principal::administrator("user"),
        );
        ring
    }

    fn set(request: &mut EmuRequest, name: &str, value: &str) {
        request.headers.retain(|(n, _)| n != name);
        request.headers.push((name.into(), value.into()));
    }

    /// Swaps the API key id of a signed request for the security token `token`.
    fn with_token(request: &mut EmuRequest, token: &str) {
        let authorization = request.header("authorization").unwrap();
        let authorization = authorization.replace("tenancy/user/fp", &format!("ST${token}"));
        set(request, "authorization", &authorization);
    }

    #[test]
    fn genuine_requests_pass_and_each_tampering_fails() {
        let now = SystemTime::now();
        let ring = ring_with_key();
        let admin = Ok(Principal::administrator("user"));
        let get = signed("GET", "/n/ns/b/images/o?prefix=a%20b", b"", false, now);
        assert_eq!(ring.check_signature(&get, false, now), admin);
        let post = signed("POST", "/20220125/actions/analyzeImage", b"{}", false, now);
        assert_eq!(ring.check_signature(&post, false, now), admin);

        let rejects = |request: &EmuRequest| ring.check_signature(request, false, now).is_err();
        let mut tampered = get.clone();
        tampered.raw_query = "prefix=a%20c".into();
        assert!(rejects(&tampered), "query");
        let mut tampered = post.clone();
        tampered.body = b"{ }".to_vec();
        let why = ring.check_signature(&tampered, false, now).unwrap_err();
        assert!(why.contains("x-content-sha256"), "{why}");
        let mut tampered = post.clone();
        set(&mut tampered, "content-type", "text/plain");
        assert!(rejects(&tampered), "header");
        let stranger = KeyRing::default();
        assert_eq!(
            stranger.check_signature(&get, false, now),
            Err("unknown keyId".into())
        );
        let late = now + Duration::from_secs(301);
        let why = ring.check_signature(&get, false, late).unwrap_err();
        assert!(why.contains("clock"), "{why}");
        assert_eq!(
            ring.check_signature(&get, false, now + Duration::from_secs(299)),
            admin
        );
    }

    #[test]
    fn put_object_needs_only_three_headers_but_other_puts_need_the_body_signed() {
        let now = SystemTime::now();
        let ring = ring_with_key();
        let admin = Ok(Principal::administrator("user"));
        let put = signed("PUT", "/n/ns/b/images/o/a.jpg", b"jpeg bytes", true, now);
        assert_eq!(ring.check_signature(&put, true, now), admin);
        let why = ring.check_signature(&put, false, now).unwrap_err();
        assert!(why.contains("is not signed"), "{why}");
    }

    #[test]
    fn minted_tokens_verify_until_they_expire() {
        let now = SystemTime::now();
        let ring = KeyRing::default();
        let token = ring.mint_token(
            key().public_key_der(),
            "fnfunc",
            "ocid1.fnfunc.x",
            "t",
            "c",
            now,
            Duration::from_secs(600),
        );
        let claims = crate::oci::auth::TokenClaims::decode(&token, "test").unwrap();
        assert_eq!(claims.res_id.as_deref(), Some("ocid1.fnfunc.x"));
        let mut request = signed("GET", "/n", b"", false, now);
        with_token(&mut request, &token);
        // The key id is not part of the signing string, so the same signature stands.
        assert!(matches!(
            ring.check_signature(&request, false, now),
            Ok(Principal::Resource { resource_type, id, compartment_id })
                if resource_type == "fnfunc" && id == "ocid1.fnfunc.x" && compartment_id == "c"
        ));
        let later = now + Duration::from_secs(601);
        let mut late = signed("GET", "/n", b"", false, later);
        with_token(&mut late, &token);
        assert_eq!(
            ring.check_signature(&late, false, later),
            Err("security token expired".into())
        );
    }

    #[test]
    fn basic_credentials_are_checked() {
        let mut request = EmuRequest::default();
        assert!(!check_basic(&request, "ADMIN", "pw"));
        set(&mut request, "authorization", "Basic QURNSU46cHc="); // ADMIN:pw
        assert!(check_basic(&request, "ADMIN", "pw"));
        assert!(!check_basic(&request, "ADMIN", "px"));
    }
}
