//! Region and realm → service endpoints.
//!
//! A region name (id like `ca-toronto-1` or short code like `YYZ`, any case) resolves to a
//! [`Region`]: its id, realm and second-level domain. Unknown names are looked up, in order, in
//! `~/.oci/regions-config.json`, then `OCI_REGION_METADATA`; a name containing `.` is taken as a
//! full domain; anything else lands in the `OCI_DEFAULT_REALM` realm, else oc1. This mirrors the
//! SDKs' order minus the instance-metadata lookup, which needs the network.
//!
//! Only hosts and base paths are built here; callers keep every base URL overridable so tests
//! can point at the emulator.

use std::path::PathBuf;

use serde::Deserialize;

use crate::{Error, Result};

/// oc1 short codes and region ids.
const OC1_REGIONS: &[(&str, &str)] = &[
    ("hsg", "ap-batam-1"),
    ("yny", "ap-chuncheon-1"),
    ("onm", "ap-delhi-1"),
    ("hyd", "ap-hyderabad-1"),
    ("jbp", "ap-kulai-2"),
    ("mel", "ap-melbourne-1"),
    ("bom", "ap-mumbai-1"),
    ("kix", "ap-osaka-1"),
    ("icn", "ap-seoul-1"),
    ("sin", "ap-singapore-1"),
    ("xsp", "ap-singapore-2"),
    ("syd", "ap-sydney-1"),
    ("nrt", "ap-tokyo-1"),
    ("lej", "af-casablanca-1"),
    ("jnb", "af-johannesburg-1"),
    ("mtz", "il-jerusalem-1"),
    ("auh", "me-abudhabi-1"),
    ("dxb", "me-dubai-1"),
    ("jed", "me-jeddah-1"),
    ("ruh", "me-riyadh-1"),
    ("yul", "ca-montreal-1"),
    ("yyz", "ca-toronto-1"),
    ("mty", "mx-monterrey-1"),
    ("qro", "mx-queretaro-1"),
    ("bog", "sa-bogota-1"),
    ("scl", "sa-santiago-1"),
    ("gru", "sa-saopaulo-1"),
    ("vap", "sa-valparaiso-1"),
    ("vcp", "sa-vinhedo-1"),
    ("iad", "us-ashburn-1"),
    ("ord", "us-chicago-1"),
    ("phx", "us-phoenix-1"),
    ("aga", "us-saltlake-2"),
    ("sjc", "us-sanjose-1"),
    ("ams", "eu-amsterdam-1"),
    ("fra", "eu-frankfurt-1"),
    ("mad", "eu-madrid-1"),
    ("orf", "eu-madrid-3"),
    ("mrs", "eu-marseille-1"),
    ("lin", "eu-milan-1"),
    ("cdg", "eu-paris-1"),
    ("arn", "eu-stockholm-1"),
    ("nrq", "eu-turin-1"),
    ("zrh", "eu-zurich-1"),
    ("cwl", "uk-cardiff-1"),
    ("lhr", "uk-london-1"),
];

/// Realms whose domain is not `oraclecloud<N>.com`.
const NAMED_REALMS: &[(&str, &str)] = &[
    ("oc1", "oraclecloud.com"),
    ("oc2", "oraclegovcloud.com"),
    ("oc3", "oraclegovcloud.com"),
    ("oc4", "oraclegovcloud.uk"),
    ("oc19", "oraclecloud.eu"),
];

/// Realms whose domain is `oraclecloud<N>.com`.
const NUMBERED_REALMS: &[u32] = &[8, 9, 10, 14, 15, 20, 21, 23, 24, 26, 29, 35, 42, 51, 52];

const DEFAULT_REALM: &str = "oc1";
const ENV_REGION_METADATA: &str = "OCI_REGION_METADATA";
const ENV_DEFAULT_REALM: &str = "OCI_DEFAULT_REALM";

/// An OCI service we call, with the host label and API version it uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// Object Storage: `https://objectstorage.{region}.{domain}`, paths start at `/n/…`.
    ObjectStorage,
    /// AI Vision: `https://vision.aiservice.{region}.oci.{domain}/20220125`.
    Vision,
    /// Secrets retrieval: `https://secrets.vaults.{region}.oci.{domain}/20190301`.
    Secrets,
}

impl Service {
    fn host_label(self) -> &'static str {
        match self {
            Service::ObjectStorage => "objectstorage",
            Service::Vision => "vision.aiservice",
            Service::Secrets => "secrets.vaults",
        }
    }

    /// Newer services sit under an extra `oci.` label; Object Storage predates it.
    fn under_oci_label(self) -> bool {
        !matches!(self, Service::ObjectStorage)
    }
}

/// A resolved region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    id: String,
    key: Option<String>,
    realm: Option<String>,
    domain: String,
    full_domain: bool,
}

impl Region {
    /// Resolves a region id or short code, reading `HOME`, `OCI_REGION_METADATA` and
    /// `OCI_DEFAULT_REALM` through `lookup` (and `~/.oci/regions-config.json` only when the
    /// built-in table does not know the name).
    pub fn resolve(name: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<Region> {
        let name = name.trim();
        if name.is_empty() || name.contains(|c: char| c.is_whitespace() || c == '/') {
            return Err(Error::Config(format!("region name {name:?} is not valid")));
        }
        if let Some(region) = builtin(name) {
            return Ok(region);
        }
        if let Some(home) = lookup("HOME").filter(|h| !h.is_empty()) {
            let path = PathBuf::from(home).join(".oci").join("regions-config.json");
            match std::fs::read_to_string(&path) {
                Ok(text) => {
                    if let Some(region) =
                        from_regions_config(name, &text, &path.display().to_string())?
                    {
                        return Ok(region);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(Error::Config(format!("{}: {e}", path.display())));
                }
            }
        }
        if let Some(text) = lookup(ENV_REGION_METADATA).filter(|t| !t.trim().is_empty()) {
            let entry: Metadata = serde_json::from_str(&text).map_err(|e| {
                Error::Config(format!("{ENV_REGION_METADATA} is not a JSON object: {e}"))
            })?;
            let region = entry.into_region(ENV_REGION_METADATA)?;
            if region.matches(name) {
                return Ok(region);
            }
        }
        if name.contains('.') {
            return Ok(Region {
                id: name.to_ascii_lowercase(),
                key: None,
                realm: None,
                domain: name.to_ascii_lowercase(),
                full_domain: true,
            });
        }
        let (realm, domain) = match lookup(ENV_DEFAULT_REALM).filter(|r| !r.trim().is_empty()) {
            Some(value) => {
                let value = value.trim().to_ascii_lowercase();
                match realm_domain(&value) {
                    Some(domain) => (Some(value), domain),
                    // The SDKs put the domain itself in this variable.
                    None if value.contains('.') => (None, value),
                    None => {
                        return Err(Error::Config(format!(
                            "{ENV_DEFAULT_REALM}={value} is neither a known realm (oc1, oc2, …) nor a domain"
                        )))
                    }
                }
            }
            None => (
                Some(DEFAULT_REALM.to_owned()),
                realm_domain(DEFAULT_REALM).unwrap_or_default(),
            ),
        };
        log::debug!("region {name} not in any table; assuming realm domain {domain}");
        Ok(Region {
            id: name.to_ascii_lowercase(),
            key: None,
            realm,
            domain,
            full_domain: false,
        })
    }

    /// The region id, e.g. `ca-toronto-1` (or the full domain given as the region).
    #[cfg(test)] // read by the tests; the product only needs endpoints
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The upper-case short code, e.g. `YYZ`, when known.
    #[cfg(test)] // read by the tests; the product only needs endpoints
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// The realm key, e.g. `oc1`, when known.
    #[cfg(test)] // read by the tests; the product only needs endpoints
    pub fn realm(&self) -> Option<&str> {
        self.realm.as_deref()
    }

    /// The realm's second-level domain, e.g. `oraclecloud.com` (the region itself for a full
    /// domain).
    #[cfg(test)] // read by the tests; the product only needs endpoints
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// `https://host` of `service` in this region, without the base path.
    pub fn endpoint(&self, service: Service) -> String {
        let label = service.host_label();
        if self.full_domain {
            return format!("https://{label}.{}", self.id);
        }
        let oci = if service.under_oci_label() {
            "oci."
        } else {
            ""
        };
        format!("https://{label}.{}.{oci}{}", self.id, self.domain)
    }

    fn matches(&self, name: &str) -> bool {
        self.id.eq_ignore_ascii_case(name)
            || self
                .key
                .as_deref()
                .is_some_and(|k| k.eq_ignore_ascii_case(name))
    }
}

/// The second-level domain of a realm key (`oc1` → `oraclecloud.com`), when known.
pub fn realm_domain(realm: &str) -> Option<String> {
    let realm = realm.trim().to_ascii_lowercase();
    if let Some((_, domain)) = NAMED_REALMS.iter().find(|(r, _)| *r == realm) {
        return Some((*domain).to_owned());
    }
    let n: u32 = realm.strip_prefix("oc")?.parse().ok()?;
    NUMBERED_REALMS
        .contains(&n)
        .then(|| format!("oraclecloud{n}.com"))
}

fn builtin(name: &str) -> Option<Region> {
    let (code, id) = OC1_REGIONS
        .iter()
        .find(|(code, id)| code.eq_ignore_ascii_case(name) || id.eq_ignore_ascii_case(name))?;
    Some(Region {
        id: (*id).to_owned(),
        key: Some(code.to_ascii_uppercase()),
        realm: Some(DEFAULT_REALM.to_owned()),
        domain: realm_domain(DEFAULT_REALM)?,
        full_domain: false,
    })
}

/// One entry of `regions-config.json` or the `OCI_REGION_METADATA` object.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Metadata {
    realm_key: Option<String>,
    realm_domain_component: Option<String>,
    region_key: Option<String>,
    region_identifier: Option<String>,
}

impl Metadata {
    fn into_region(self, source: &str) -> Result<Region> {
        let need = |value: Option<String>, field: &str| {
            value
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
                .ok_or_else(|| Error::Config(format!("{source}: {field} is missing or empty")))
        };
        Ok(Region {
            realm: Some(need(self.realm_key, "realmKey")?.to_ascii_lowercase()),
            domain: need(self.realm_domain_component, "realmDomainComponent")?,
            key: Some(need(self.region_key, "regionKey")?.to_ascii_uppercase()),
            id: need(self.region_identifier, "regionIdentifier")?.to_ascii_lowercase(),
            full_domain: false,
        })
    }
}

/// Looks `name` up in the text of a `regions-config.json` (a JSON array); `source` names the file.
fn from_regions_config(name: &str, text: &str, source: &str) -> Result<Option<Region>> {
    let entries: Vec<Metadata> = serde_json::from_str(text)
        .map_err(|e| Error::Config(format!("{source}: not a JSON array of regions: {e}")))?;
    for (i, entry) in entries.into_iter().enumerate() {
        let region = entry.into_region(&format!("{source}: entry {i}"))?;
        if region.matches(name) {
            return Ok(Some(region));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::config::test_lookup as env;

    #[test]
    fn short_codes_and_ids_resolve_case_insensitively() {
        for name in ["yyz", "YYZ", "ca-toronto-1", "CA-Toronto-1"] {
            let r = Region::resolve(name, env(&[])).unwrap();
            assert_eq!(r.id(), "ca-toronto-1", "{name}");
            assert_eq!(r.key(), Some("YYZ"), "{name}");
            assert_eq!(r.realm(), Some("oc1"), "{name}");
            assert_eq!(r.domain(), "oraclecloud.com", "{name}");
        }
        assert_eq!(
            Region::resolve("PHX", env(&[])).unwrap().id(),
            "us-phoenix-1"
        );
    }

    #[test]
    fn endpoints_for_each_service() {
        let r = Region::resolve("ca-toronto-1", env(&[])).unwrap();
        assert_eq!(
            r.endpoint(Service::ObjectStorage),
            "https://objectstorage.ca-toronto-1.oraclecloud.com"
        );
        assert_eq!(
            r.endpoint(Service::Vision),
            "https://vision.aiservice.ca-toronto-1.oci.oraclecloud.com"
        );
        assert_eq!(
            r.endpoint(Service::Secrets),
            "https://secrets.vaults.ca-toronto-1.oci.oraclecloud.com"
        );
    }

    #[test]
    fn realm_table() {
        assert_eq!(realm_domain("oc1").as_deref(), Some("oraclecloud.com"));
        assert_eq!(realm_domain("OC2").as_deref(), Some("oraclegovcloud.com"));
        assert_eq!(realm_domain("oc3").as_deref(), Some("oraclegovcloud.com"));
        assert_eq!(realm_domain("oc4").as_deref(), Some("oraclegovcloud.uk"));
        assert_eq!(realm_domain("oc19").as_deref(), Some("oraclecloud.eu"));
        assert_eq!(realm_domain("oc8").as_deref(), Some("oraclecloud8.com"));
        assert_eq!(realm_domain("oc52").as_deref(), Some("oraclecloud52.com"));
        assert_eq!(realm_domain("oc5"), None);
        assert_eq!(realm_domain("ocx"), None);
    }

    #[test]
    fn region_metadata_env_describes_an_unknown_region() {
        let meta = r#"{"realmDomainComponent":"oraclecloud8.com","realmKey":"oc8","regionIdentifier":"ap-chiyoda-1","regionKey":"NJA"}"#;
        let lookup = env(&[("OCI_REGION_METADATA", meta)]);
        for name in ["ap-chiyoda-1", "nja"] {
            let r = Region::resolve(name, &lookup).unwrap();
            assert_eq!(r.id(), "ap-chiyoda-1");
            assert_eq!(r.realm(), Some("oc8"));
            assert_eq!(
                r.endpoint(Service::Secrets),
                "https://secrets.vaults.ap-chiyoda-1.oci.oraclecloud8.com"
            );
        }
        // A region the metadata does not describe falls through to the default realm.
        assert_eq!(
            Region::resolve("xx-new-1", &lookup).unwrap().realm(),
            Some("oc1")
        );
    }

    #[test]
    fn region_metadata_needs_all_four_keys_and_names_the_variable() {
        let meta = r#"{"realmDomainComponent":"","realmKey":"oc8","regionIdentifier":"ap-chiyoda-1","regionKey":"NJA"}"#;
        let err =
            Region::resolve("ap-chiyoda-1", env(&[("OCI_REGION_METADATA", meta)])).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("OCI_REGION_METADATA") && text.contains("realmDomainComponent"),
            "{text}"
        );
        let err = Region::resolve("x-y-1", env(&[("OCI_REGION_METADATA", "[1]")])).unwrap_err();
        assert!(err.to_string().contains("OCI_REGION_METADATA"), "{err}");
    }

    #[test]
    fn regions_config_array_is_read_from_home() {
        let home = std::env::temp_dir().join(format!("ocivision-region-{}", std::process::id()));
        std::fs::create_dir_all(home.join(".oci")).unwrap();
        let file = home.join(".oci/regions-config.json");
        std::fs::write(
            &file,
            r#"[{"realmKey":"oc2","realmDomainComponent":"oraclegovcloud.com","regionKey":"LFI","regionIdentifier":"us-langley-1"}]"#,
        )
        .unwrap();
        let lookup = env(&[("HOME", home.to_str().unwrap())]);
        let r = Region::resolve("lfi", &lookup).unwrap();
        assert_eq!(r.id(), "us-langley-1");
        assert_eq!(
            r.endpoint(Service::ObjectStorage),
            "https://objectstorage.us-langley-1.oraclegovcloud.com"
        );
        std::fs::write(&file, r#"[{"realmKey":"oc2"}]"#).unwrap();
        let err = Region::resolve("lfi", &lookup).unwrap_err().to_string();
        assert!(
            err.contains("regions-config.json") && err.contains("entry 0"),
            "{err}"
        );
        std::fs::remove_dir_all(&home).unwrap();
    }

    #[test]
    fn dotted_region_is_a_full_domain() {
        let r = Region::resolve("us-gov-1.example.com", env(&[])).unwrap();
        assert_eq!(
            r.endpoint(Service::ObjectStorage),
            "https://objectstorage.us-gov-1.example.com"
        );
        assert_eq!(
            r.endpoint(Service::Vision),
            "https://vision.aiservice.us-gov-1.example.com"
        );
    }

    #[test]
    fn default_realm_from_env_or_oc1() {
        let r = Region::resolve("eu-new-1", env(&[("OCI_DEFAULT_REALM", "oc19")])).unwrap();
        assert_eq!(r.domain(), "oraclecloud.eu");
        assert_eq!(r.realm(), Some("oc19"));
        let r =
            Region::resolve("eu-new-1", env(&[("OCI_DEFAULT_REALM", "example.cloud")])).unwrap();
        assert_eq!(
            r.endpoint(Service::Vision),
            "https://vision.aiservice.eu-new-1.oci.example.cloud"
        );
        let err = Region::resolve("eu-new-1", env(&[("OCI_DEFAULT_REALM", "oc99")])).unwrap_err();
        assert!(err.to_string().contains("OCI_DEFAULT_REALM"), "{err}");
        let r = Region::resolve("eu-new-1", env(&[])).unwrap();
        assert_eq!(r.domain(), "oraclecloud.com");
        assert!(Region::resolve(" ", env(&[])).is_err());
    }
}
