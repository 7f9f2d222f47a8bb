//! Configuration shared by the web app and the function, read once from a lookup function (the
//! real environment in production, a map in tests) into a validated value.
//!
//! Endpoints come from the region (`OCI_REGION`, else the credentials' region) unless an
//! `OCIVISION_*_URL` override points a service elsewhere (the emulator, in local mode and tests).
//! Every error names the variable at fault. Binary-specific settings (ports, passwords, function
//! limits) live with each binary.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::oci::region::{Region, Service};
use crate::secret::Secret;
use crate::soda::{Password, SodaConfig};

/// Environment variable names, in one place.
pub mod vars {
    /// Region id or short code.
    pub const REGION: &str = "OCI_REGION";
    /// The images bucket.
    pub const BUCKET: &str = "BUCKET_NAME";
    /// Object Storage namespace (looked up when absent).
    pub const NAMESPACE: &str = "OS_NAMESPACE";
    /// Compartment billed for Vision calls.
    pub const COMPARTMENT: &str = "COMPARTMENT_ID";
    /// ORDS base URL ending in `/ords/`.
    pub const ORDS_URL: &str = "DB_ORDS_BASE_URL";
    /// Schema alias.
    pub const SCHEMA: &str = "DB_SCHEMA";
    /// SODA collection.
    pub const COLLECTION: &str = "DB_COLLECTION";
    /// Database user.
    pub const DB_USER: &str = "DB_USERNAME";
    /// Database password (development only; prefer the secret).
    pub const DB_PASSWORD: &str = "DB_PASSWORD";
    /// Vault secret holding the database password.
    pub const DB_PASSWORD_SECRET: &str = "DB_PASSWORD_SECRET_OCID";
    /// Override of the Object Storage endpoint.
    pub const OBJECT_STORAGE_URL: &str = "OCIVISION_OBJECTSTORAGE_URL";
    /// Override of the Vision endpoint.
    pub const VISION_URL: &str = "OCIVISION_VISION_URL";
    /// Override of the Secrets endpoint.
    pub const SECRETS_URL: &str = "OCIVISION_SECRETS_URL";
    /// Log level.
    pub const LOG_LEVEL: &str = "LOG_LEVEL";
}

/// Where the services are and which bucket and collection we use.
#[derive(Debug, Clone)]
pub struct CloudConfig {
    /// Object Storage origin.
    pub object_storage_url: String,
    /// Vision origin.
    pub vision_url: String,
    /// Secrets origin.
    pub secrets_url: String,
    /// The bucket holding images.
    pub bucket: String,
    /// The namespace, when configured.
    pub namespace: Option<String>,
    /// The compartment for Vision calls, when configured.
    pub compartment_id: Option<String>,
    /// The SODA collection.
    pub soda: SodaConfig,
    /// How long a Secrets-sourced password is trusted before it is read again.
    pub secret_ttl: Duration,
}

impl CloudConfig {
    /// Reads the configuration. `provider_region` is the credentials' own region, used when
    /// `OCI_REGION` is unset.
    pub fn from_lookup(
        lookup: &dyn Fn(&str) -> Option<String>,
        provider_region: Option<String>,
    ) -> Result<CloudConfig> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let overrides = [
            get(vars::OBJECT_STORAGE_URL),
            get(vars::VISION_URL),
            get(vars::SECRETS_URL),
        ];
        let region = match get(vars::REGION).or(provider_region) {
            Some(name) => Some(Region::resolve(&name, |k| lookup(k))?),
            None if overrides.iter().all(Option::is_some) => None,
            None => {
                return Err(Error::Config(format!(
                    "{} is not set and the credentials name no region",
                    vars::REGION
                )))
            }
        };
        let endpoint = |index: usize, service: Service, var: &str| -> Result<String> {
            match (&overrides[index], &region) {
                (Some(url), _) => check_url(var, url),
                (None, Some(region)) => Ok(region.endpoint(service)),
                (None, None) => Err(Error::Config(format!("{var} is not set"))),
            }
        };
        let bucket = get(vars::BUCKET)
            .ok_or_else(|| Error::Config(format!("{} is not set", vars::BUCKET)))?;
        let base_url = get(vars::ORDS_URL)
            .ok_or_else(|| Error::Config(format!("{} is not set", vars::ORDS_URL)))?;
        check_url(vars::ORDS_URL, &base_url)?;
        let password = match (get(vars::DB_PASSWORD_SECRET), lookup(vars::DB_PASSWORD)) {
            (Some(id), _) => Password::SecretId(id),
            (None, Some(p)) if !p.is_empty() => Password::Literal(Secret::new(p)),
            _ => {
                return Err(Error::Config(format!(
                    "set {} (a Vault secret OCID) or, for development, {}",
                    vars::DB_PASSWORD_SECRET,
                    vars::DB_PASSWORD
                )))
            }
        };
        Ok(CloudConfig {
            object_storage_url: endpoint(0, Service::ObjectStorage, vars::OBJECT_STORAGE_URL)?,
            vision_url: endpoint(1, Service::Vision, vars::VISION_URL)?,
            secrets_url: endpoint(2, Service::Secrets, vars::SECRETS_URL)?,
            bucket,
            namespace: get(vars::NAMESPACE),
            compartment_id: get(vars::COMPARTMENT),
            soda: SodaConfig {
                base_url,
                schema: get(vars::SCHEMA).unwrap_or_else(|| "admin".into()),
                collection: get(vars::COLLECTION).unwrap_or_else(|| "IMAGE_ANALYSIS".into()),
                user: get(vars::DB_USER).unwrap_or_else(|| "ADMIN".into()),
                password,
            },
            secret_ttl: SECRET_TTL,
        })
    }

    /// The variables [`CloudConfig::from_lookup`] reads back as this value: how a child process
    /// (the `webapp` and `func` binaries started by the harness) is given settings held as values.
    #[cfg(feature = "local")]
    pub(crate) fn to_env(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![
            (vars::OBJECT_STORAGE_URL, self.object_storage_url.clone()),
            (vars::VISION_URL, self.vision_url.clone()),
            (vars::SECRETS_URL, self.secrets_url.clone()),
            (vars::BUCKET, self.bucket.clone()),
            (vars::ORDS_URL, self.soda.base_url.clone()),
            (vars::SCHEMA, self.soda.schema.clone()),
            (vars::COLLECTION, self.soda.collection.clone()),
            (vars::DB_USER, self.soda.user.clone()),
        ];
        env.extend(self.namespace.clone().map(|ns| (vars::NAMESPACE, ns)));
        env.extend(self.compartment_id.clone().map(|c| (vars::COMPARTMENT, c)));
        env.push(match &self.soda.password {
            Password::SecretId(id) => (vars::DB_PASSWORD_SECRET, id.clone()),
            Password::Literal(p) => (vars::DB_PASSWORD, p.expose().to_string()),
        });
        env
    }
}

/// How long a Secrets-sourced password is trusted before it is read again.
pub(crate) const SECRET_TTL: Duration = Duration::from_secs(600);

fn check_url(var: &str, url: &str) -> Result<String> {
    let ok = (url.starts_with("https://") || url.starts_with("http://"))
        && url.len() > "https://".len()
        && !url.contains(char::is_whitespace);
    if ok {
        Ok(url.trim_end_matches('/').to_string())
    } else {
        Err(Error::Config(format!(
            "{var}={url:?} is not an http(s) URL"
        )))
    }
}

/// A parsed number from the environment, with the variable named on error.
pub fn number<T: std::str::FromStr>(
    lookup: &dyn Fn(&str) -> Option<String>,
    name: &str,
    default: T,
) -> Result<T> {
    match lookup(name)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
    {
        None => Ok(default),
        Some(text) => text
            .parse()
            .map_err(|_| Error::Config(format!("{name}={text:?} is not a valid number"))),
    }
}

/// An on/off setting from the environment (`on`/`off`, `true`/`false`, `1`/`0`, `yes`/`no`,
/// any case), with the variable named on error.
pub fn switch(lookup: &dyn Fn(&str) -> Option<String>, name: &str, default: bool) -> Result<bool> {
    match lookup(name)
        .map(|v| v.trim().to_ascii_lowercase())
        .filter(|v| !v.is_empty())
        .as_deref()
    {
        None => Ok(default),
        Some("on" | "true" | "1" | "yes") => Ok(true),
        Some("off" | "false" | "0" | "no") => Ok(false),
        Some(other) => Err(Error::Config(format!("{name}={other:?} must be on or off"))),
    }
}

/// An environment made of `pairs`, for tests of code that reads settings through a lookup.
#[cfg(test)]
pub(crate) fn test_lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: std::collections::HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| map.get(k).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    use test_lookup as lookup;

    #[test]
    fn endpoints_follow_the_region_unless_overridden() {
        let env = lookup(&[
            ("OCI_REGION", "yyz"),
            ("BUCKET_NAME", "images"),
            ("DB_ORDS_BASE_URL", "https://db.example.com/ords/"),
            ("DB_PASSWORD_SECRET_OCID", "ocid1.vaultsecret.oc1..x"),
            ("OCIVISION_VISION_URL", "http://127.0.0.1:7070/"),
        ]);
        let config = CloudConfig::from_lookup(&env, None).unwrap();
        assert_eq!(
            config.object_storage_url,
            "https://objectstorage.ca-toronto-1.oraclecloud.com"
        );
        assert_eq!(config.vision_url, "http://127.0.0.1:7070");
        assert_eq!(config.soda.collection, "IMAGE_ANALYSIS");
        assert!(matches!(config.soda.password, Password::SecretId(_)));
    }

    #[test]
    fn errors_name_the_variable() {
        let base = [
            ("BUCKET_NAME", "b"),
            ("DB_ORDS_BASE_URL", "https://db/ords/"),
            ("DB_PASSWORD", "pw"),
        ];
        let err = CloudConfig::from_lookup(&lookup(&base), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("OCI_REGION"), "{err}");
        let mut with_region = base.to_vec();
        with_region.push(("OCI_REGION", "iad"));
        with_region.retain(|(k, _)| *k != "DB_PASSWORD");
        let err = CloudConfig::from_lookup(&lookup(&with_region), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("DB_PASSWORD_SECRET_OCID"), "{err}");
        with_region.push(("DB_PASSWORD", "pw"));
        with_region.push(("OCIVISION_SECRETS_URL", "ftp://x"));
        let err = CloudConfig::from_lookup(&lookup(&with_region), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("OCIVISION_SECRETS_URL"), "{err}");
        let err = number::<u32>(&lookup(&[("N", "x")]), "N", 1)
            .unwrap_err()
            .to_string();
        assert!(err.contains("N=\"x\""), "{err}");
        assert_eq!(number::<u32>(&lookup(&[]), "N", 7).unwrap(), 7);
    }

    #[test]
    #[cfg(feature = "local")]
    fn to_env_reads_back_as_the_same_value() {
        let env = lookup(&[
            ("BUCKET_NAME", "images"),
            ("OS_NAMESPACE", "ns"),
            ("COMPARTMENT_ID", "ocid1.compartment.oc1..c"),
            ("DB_ORDS_BASE_URL", "http://127.0.0.1:9/ords/"),
            ("DB_COLLECTION", "OTHER"),
            ("DB_PASSWORD_SECRET_OCID", "ocid1.vaultsecret.oc1..x"),
            ("OCIVISION_OBJECTSTORAGE_URL", "http://127.0.0.1:9"),
            ("OCIVISION_VISION_URL", "http://127.0.0.1:9"),
            ("OCIVISION_SECRETS_URL", "http://127.0.0.1:9"),
        ]);
        let config = CloudConfig::from_lookup(&env, None).unwrap();
        let pairs: Vec<(&str, String)> = config.to_env();
        let borrowed: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let again = CloudConfig::from_lookup(&lookup(&borrowed), None).unwrap();
        assert_eq!(format!("{again:?}"), format!("{config:?}"));
    }
}
