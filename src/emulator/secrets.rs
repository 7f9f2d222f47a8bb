//! Emulated Secrets retrieval: bundles by OCID (`GET`) and by name (`POST …/getByName`).
//!
//! Secrets are given at start-up and held in memory only. Each has one version, number 1, in the
//! stages `CURRENT` and `LATEST`, so that is what a bundle request may select: `versionNumber=1`
//! or `stage=CURRENT|LATEST` answer it, any other version, stage or `secretVersionName` answers
//! 404 as OCI does for a version that does not exist (an unknown stage name is 400).

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

/// Answers one request under [`PREFIX`]. `allowed(secret)` says whether the caller may read
/// the secret's bundles (IAM); a refusal looks exactly like an unknown secret, as on OCI.
pub fn handle(
    request: &EmuRequest,
    secrets: &[SecretEntry],
    allowed: &dyn Fn(&SecretEntry) -> bool,
) -> EmuResponse {
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
    let Some(secret) = found.filter(|secret| allowed(secret)) else {
        return not_found();
    };
    match selected_version(request) {
        Ok(true) => {}
        Ok(false) => return not_found(),
        Err(response) => return response,
    }
    EmuResponse::json(
        200,
        &json!({
            "secretId": secret.id,
            "versionNumber": 1,
            "versionName": null,
            "timeCreated": null,
            "timeOfDeletion": null,
            "timeOfExpiry": null,
            "secretBundleContent": {
                "contentType": "BASE64",
                "content": base64::engine::general_purpose::STANDARD.encode(&secret.value),
            },
            "stages": ["CURRENT", "LATEST"],
            "metadata": null,
        }),
    )
}

/// Whether the version the query selects (`versionNumber`, `secretVersionName`, `stage`;
/// `CURRENT` when none is given) is the one version every secret here has.
fn selected_version(request: &EmuRequest) -> Result<bool, EmuResponse> {
    if let Some(number) = request.query_param("versionNumber") {
        return match number.trim().parse::<u64>() {
            Ok(n) => Ok(n == 1),
            Err(_) => Err(EmuResponse::error(
                400,
                "InvalidParameter",
                "versionNumber must be a whole number",
            )),
        };
    }
    if request.query_param("secretVersionName").is_some() {
        // No version here has a name.
        return Ok(false);
    }
    match request.query_param("stage").as_deref() {
        None | Some("CURRENT") | Some("LATEST") => Ok(true),
        Some("PENDING") | Some("PREVIOUS") | Some("DEPRECATED") => Ok(false),
        Some(other) => Err(EmuResponse::error(
            400,
            "InvalidParameter",
            &format!(
                "stage {other:?} is not one of CURRENT, PENDING, LATEST, PREVIOUS, DEPRECATED"
            ),
        )),
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

    const BY_ID: &str = "/20190301/secretbundles/ocid1.vaultsecret.oc1..a";
    const BY_NAME: &str = "/20190301/secretbundles/actions/getByName";
    const NAMED: &str = "secretName=db-password&vaultId=ocid1.vault.oc1..v";

    /// Answers one request against [`secrets`], as a caller who may (or may not) read them.
    fn call(method: &str, path: &str, query: &str, allowed: bool) -> EmuResponse {
        let req = EmuRequest {
            method: method.into(),
            raw_path: path.into(),
            raw_query: query.into(),
            ..EmuRequest::default()
        };
        handle(&req, &secrets(), &|_| allowed)
    }

    #[test]
    fn both_routes_answer_base64_bundles() {
        let by_id = call("GET", BY_ID, "", true);
        assert_eq!(by_id.status, 200);
        let json: serde_json::Value = serde_json::from_slice(&by_id.body).unwrap();
        assert_eq!(
            json["secretBundleContent"]["content"],
            "c3VwZXItc2VjcmV0LXB3"
        );
        assert_eq!(call("POST", BY_NAME, NAMED, true).status, 200);
    }

    #[test]
    fn unknown_secrets_and_get_on_get_by_name_are_404() {
        let nope = "/20190301/secretbundles/nope";
        let unknown_name = "secretName=x&vaultId=ocid1.vault.oc1..v";
        for (method, path, query, status) in [
            ("GET", nope, "", 404),
            ("GET", BY_NAME, NAMED, 404),
            ("POST", BY_NAME, unknown_name, 404),
            ("POST", BY_NAME, "", 400),
        ] {
            let r = call(method, path, query, true);
            assert_eq!(r.status, status, "{method} {path}?{query}");
        }
        assert!(!format!("{:?}", secrets()).contains("super-secret"));
    }

    #[test]
    fn versions_and_stages_select_the_one_version() {
        let get = |query: &str| call("GET", BY_ID, query, true).status;
        for query in ["versionNumber=1", "stage=CURRENT", "stage=LATEST", ""] {
            assert_eq!(get(query), 200, "{query}");
        }
        for query in [
            "versionNumber=7",
            "versionNumber=0",
            "stage=PREVIOUS",
            "stage=PENDING",
            "secretVersionName=v1",
        ] {
            assert_eq!(get(query), 404, "{query}");
        }
        assert_eq!(get("stage=current"), 400);
        assert_eq!(get("versionNumber=one"), 400);
        let by_name = call("POST", BY_NAME, &format!("{NAMED}&versionNumber=2"), true);
        assert_eq!(by_name.status, 404);
        assert_eq!(
            call("GET", BY_ID, "", false),
            not_found(),
            "a refusal is the unknown-secret answer"
        );
    }
}
