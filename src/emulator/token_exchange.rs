//! The resource principal 2.1.x token exchange, as Oracle's SDKs call it
//! (`src/oci/auth/token_exchange.rs` has the client side and the sources).
//!
//! `GET /20180711/resourcePrincipalTokenV2/{id}` (or `…V212/{id}`), signed with a key trusted
//! for `resource/v2.1…/{id}` ([`crate::emulator::Emulator::trust_resource_key`]), answers a
//! resource principal token and a service principal session token, both opaque here; `POST
//! /v1/resourcePrincipalSessionToken` with the pair and a session public key answers a session
//! token minted for that key, which the emulator then accepts as `ST$…` like any other it
//! minted. A pair is good for one session token and a few minutes.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use serde_json::json;

use super::auth::KeyRing;
use super::iam::Principal;
use super::wire::{EmuRequest, EmuResponse};

/// The session tokens' lifetime (the platform's are about an hour too).
const SESSION_LIFETIME: Duration = Duration::from_secs(3600);
/// How long a token pair may wait for its exchange.
const PAIR_LIFETIME: Duration = Duration::from_secs(300);
const RPT_PREFIXES: [&str; 2] = [
    "/20180711/resourcePrincipalTokenV2/",
    "/20180711/resourcePrincipalTokenV212/",
];
const RPST_PATH: &str = "/v1/resourcePrincipalSessionToken";

/// Token pairs handed out and not yet exchanged.
#[derive(Default)]
pub(crate) struct Exchanges {
    pairs: Mutex<HashMap<String, Pair>>,
}

struct Pair {
    service_token: String,
    principal: Principal,
    issued: SystemTime,
}

/// Whether `path` is one of the exchange's endpoints.
pub(crate) fn is_exchange(path: &str) -> bool {
    path == RPST_PATH || RPT_PREFIXES.iter().any(|p| path.starts_with(p))
}

fn refused(message: &str) -> EmuResponse {
    EmuResponse::error(404, "NotAuthorizedOrNotFound", message)
}

impl Exchanges {
    /// Answers an exchange call signed by `principal`.
    pub(crate) fn handle(
        &self,
        request: &EmuRequest,
        principal: &Principal,
        keys: &KeyRing,
        tenancy: &str,
    ) -> EmuResponse {
        let Principal::Resource {
            resource_type,
            id,
            compartment_id,
        } = principal
        else {
            return refused("only a resource's own key may exchange its tokens");
        };
        let now = SystemTime::now();
        let mut pairs = self.pairs.lock().unwrap_or_else(|e| e.into_inner());
        pairs.retain(|_, pair| now < pair.issued + PAIR_LIFETIME);
        if request.method == "GET" {
            let asked = RPT_PREFIXES
                .iter()
                .find_map(|p| request.raw_path.strip_prefix(p));
            if asked != Some(id.as_str()) {
                return refused("the token asked for is not the signer's resource");
            }
            let token = crate::random::hex::<16>();
            let service_token = crate::random::hex::<16>();
            pairs.insert(
                token.clone(),
                Pair {
                    service_token: service_token.clone(),
                    principal: principal.clone(),
                    issued: now,
                },
            );
            return EmuResponse::json(
                200,
                &json!({"resourcePrincipalToken": token, "servicePrincipalSessionToken": service_token}),
            );
        }
        if request.method != "POST" || request.raw_path != RPST_PATH {
            return EmuResponse::error(404, "NotFound", "unknown token exchange operation");
        }
        let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap_or_default();
        let text = |name: &str| body[name].as_str().unwrap_or("").to_string();
        let Some(pair) = pairs.remove(&text("resourcePrincipalToken")) else {
            return EmuResponse::error(
                401,
                "NotAuthenticated",
                "unknown or expired resourcePrincipalToken",
            );
        };
        if pair.service_token != text("servicePrincipalSessionToken")
            || pair.principal != *principal
        {
            return EmuResponse::error(401, "NotAuthenticated", "the token pair does not match");
        }
        let Ok(public_key) =
            base64::engine::general_purpose::STANDARD.decode(text("sessionPublicKey"))
        else {
            return EmuResponse::error(400, "InvalidParameter", "sessionPublicKey is not base64");
        };
        let token = keys.mint_token(
            public_key,
            resource_type,
            id,
            tenancy,
            compartment_id,
            now,
            SESSION_LIFETIME,
        );
        EmuResponse::json(200, &json!({ "token": token }))
    }
}
