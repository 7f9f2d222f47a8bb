//! Emulated Secrets retrieval: bundles by OCID (`GET`) and by name (`POST …/getByName`).
//!
//! Secrets are given at start-up and held in memory only; versions and stages other than
//! `CURRENT` are not modelled.

use base64::Engine as _;
use serde_json::json;

use crate::emulator::wire::{EmuRequest, EmuResponse};

/// The path prefix of secret bundles.
pub const PREFIX: &str = "/20190301/secretbundles";

/// One secret the emulator knows.
#[derive(Clone)]
pub struct SecretEntry {
    /// Its OCID.
    pub id: String,
    /// Its name within the vault.
    pub name: String,
    /// The vault's OCID.
    pub vault_id: String,
    /// The plain value.
    pub value: String,
}

impl std::fmt::Debug for SecretEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretEntry({}, {}, <redacted>)", self.id, self.name)
    }
}

/// Answers one request under [`PREFIX`].
pub fn handle(request: &EmuRequest, secrets: &[SecretEntry]) -> EmuResponse {
    let Some(segments) = request.segments_after(PREFIX) else {
        return not_found();
    };
    let found = match (request.method.as_str(), segments.as_slice()) {
        ("POST", [actions, by_name]) if actions == "actions" && by_name == "getByName" => {
            let (Some(name), Some(vault)) = (
                request.query_param("secretName"),
                request.query_param("vaultId"),
            ) else {
                return EmuResponse::error(
                    400,
                    "MissingParameter",
                    "secretName and vaultId are required",
                );
            };
            secrets
                .iter()
                .find(|s| s.name == name && s.vault_id == vault)
        }
        ("GET", [actions, _]) if actions == "actions" => None,
        ("GET", [id]) => secrets.iter().find(|s| &s.id == id),
        _ => None,
    };
    match found {
        Some(secret) => EmuResponse::json(
            200,
            &json!({
                "secretId": secret.id,
                "versionNumber": 1,
                "secretBundleContent": {
                    "contentType": "BASE64",
                    "content": base64::engine::general_purpose::STANDARD.encode(&secret.value),
                },
                "stages": ["CURRENT", "LATEST"],
                "metadata": null,
            }),
        ),
        None => not_found(),
    }
}

fn not_found() -> EmuResponse {
    EmuResponse::error(
        404,
        "NotAuthorizedOrNotFound",
        "Authorization failed or requested resource not found.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets() -> Vec<SecretEntry> {
        vec![SecretEntry {
            id: "ocid1.vaultsecret.oc1..a".into(),
            name: "db-password".into(),
            vault_id: "ocid1.vault.oc1..v".into(),
            value: "super-secret-pw".into(),
        }]
    }

    fn request(method: &str, path: &str, query: &str) -> EmuRequest {
        EmuRequest {
            method: method.into(),
            raw_path: path.into(),
            raw_query: query.into(),
            ..EmuRequest::default()
        }
    }

    #[test]
    fn both_routes_answer_base64_bundles() {
        let by_id = handle(
            &request(
                "GET",
                "/20190301/secretbundles/ocid1.vaultsecret.oc1..a",
                "",
            ),
            &secrets(),
        );
        assert_eq!(by_id.status, 200);
        let json: serde_json::Value = serde_json::from_slice(&by_id.body).unwrap();
        assert_eq!(
            json["secretBundleContent"]["content"],
            "c3VwZXItc2VjcmV0LXB3"
        );
        let by_name = handle(
            &request(
                "POST",
                "/20190301/secretbundles/actions/getByName",
                "secretName=db-password&vaultId=ocid1.vault.oc1..v",
            ),
            &secrets(),
        );
        assert_eq!(by_name.status, 200);
    }

    #[test]
    fn unknown_secrets_and_get_on_get_by_name_are_404() {
        let s = secrets();
        assert_eq!(
            handle(&request("GET", "/20190301/secretbundles/nope", ""), &s).status,
            404
        );
        assert_eq!(
            handle(
                &request(
                    "GET",
                    "/20190301/secretbundles/actions/getByName",
                    "secretName=db-password&vaultId=ocid1.vault.oc1..v"
                ),
                &s
            )
            .status,
            404
        );
        assert_eq!(
            handle(
                &request(
                    "POST",
                    "/20190301/secretbundles/actions/getByName",
                    "secretName=x&vaultId=ocid1.vault.oc1..v"
                ),
                &s
            )
            .status,
            404
        );
        assert_eq!(
            handle(
                &request("POST", "/20190301/secretbundles/actions/getByName", ""),
                &s
            )
            .status,
            400
        );
        assert!(!format!("{s:?}").contains("super-secret"));
    }
}
