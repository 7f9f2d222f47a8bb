//! `webapp doctor`: checks, from where the app runs, everything the pipeline needs, and says
//! how to fix what fails.
//!
//! Each check is independent and reports pass, fail (with the fix) or skip (with why). These
//! checks only read, except two harmless probes: Vision analyses a blank 32×32 PNG sent inline,
//! and the function is invoked with a delete event for an object that does not exist. Then
//! `assumptions` tries what no Oracle source confirms, on scratch objects and documents of its
//! own that it removes (issue 24).

mod assumptions;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::config::{vars, CloudConfig};
use crate::error::Error;
use crate::event::{EventKind, ObjectEvent};
use crate::oci::auth::{self, KeyProvider, ResourcePrincipalProvider};
use crate::oci::client::{Auth, RetryPolicy, Transport, TransportConfig};
use crate::oci::functions::{Functions, InvokeMode};
use crate::oci::object_storage::{Bucket, ListOptions, ObjectStorage};
use crate::oci::secrets::Secrets;
use crate::oci::vision::{AnalyzeImage, ImageSource, Vision};
use crate::soda::Soda;

/// A blank 32×32 PNG: the smallest image Vision accepts.
const PROBE_PNG: &[u8] = include_bytes!("doctor-probe.png");
const TIMEOUT: Duration = Duration::from_secs(15);

/// How a check ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// It works.
    Pass,
    /// It does not; the text says how to fix it.
    Fail {
        /// What went wrong.
        problem: String,
        /// What to do.
        fix: String,
    },
    /// Not applicable or not configured.
    Skip(String),
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What was checked.
    pub name: &'static str,
    /// What was found (on success: the facts, e.g. which principal).
    pub detail: String,
    /// The outcome.
    pub verdict: Verdict,
}

impl Check {
    fn pass(name: &'static str, detail: impl Into<String>) -> Check {
        Check {
            name,
            detail: detail.into(),
            verdict: Verdict::Pass,
        }
    }

    fn fail(name: &'static str, problem: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            name,
            detail: String::new(),
            verdict: Verdict::Fail {
                problem: problem.into(),
                fix: fix.into(),
            },
        }
    }

    fn skip(name: &'static str, why: impl Into<String>) -> Check {
        Check {
            name,
            detail: String::new(),
            verdict: Verdict::Skip(why.into()),
        }
    }
}

/// Runs every check against the configuration in `lookup`.
pub fn run(lookup: &dyn Fn(&str) -> Option<String>) -> Vec<Check> {
    let mut checks = Vec::new();
    let keys: Arc<dyn KeyProvider> = match credentials(lookup) {
        Ok((keys, detail)) => {
            checks.push(Check::pass("credentials", detail));
            keys
        }
        Err(e) => {
            checks.push(Check::fail(
                "credentials",
                e.to_string(),
                "in OCI, enable the resource principal (Functions and Container Instances set \
                 OCI_RESOURCE_PRINCIPAL_*); elsewhere, create ~/.oci/config with an API key \
                 (oci setup config) or point OCI_CONFIG_FILE at one",
            ));
            return checks;
        }
    };
    let cloud = match CloudConfig::from_lookup(lookup, keys.region()) {
        Ok(cloud) => {
            checks.push(Check::pass(
                "configuration",
                format!(
                    "bucket {}, collection {}",
                    cloud.bucket, cloud.soda.collection
                ),
            ));
            cloud
        }
        Err(e) => {
            checks.push(Check::fail(
                "configuration",
                e.to_string(),
                "set the variable named above (the README lists every setting)",
            ));
            return checks;
        }
    };
    let transport = Transport::new(
        Auth::Oci(Arc::clone(&keys)),
        TransportConfig {
            retry: RetryPolicy {
                max_attempts: 2,
                ..RetryPolicy::default()
            },
            ..TransportConfig::default()
        },
    );
    let deadline = || Instant::now() + TIMEOUT;
    let storage = ObjectStorage::new(transport.clone(), &cloud.object_storage_url);
    let namespace = match &cloud.namespace {
        Some(ns) => Ok(ns.clone()),
        None => storage.namespace(deadline()),
    };
    match namespace {
        Ok(namespace) => {
            let bucket = Bucket {
                namespace: namespace.clone(),
                name: cloud.bucket.clone(),
            };
            checks.push(check_bucket(&storage, &bucket));
            checks.push(check_events(&storage, &bucket));
        }
        Err(e) => checks.push(Check::fail(
            "bucket access",
            format!("the Object Storage namespace could not be read: {e}"),
            access_fix(
                &e,
                "read the tenancy's namespace (any Object Storage permission)",
            ),
        )),
    }
    checks.push(check_vision(&transport, &cloud));
    checks.extend(check_database(&transport, &cloud));
    checks.push(check_function(&transport, lookup));
    // The unconfirmed cloud assumptions, probed (issue 24).
    checks.extend(assumptions::run(&transport, &cloud, lookup));
    checks
}

/// Which principal, and until when its token is good.
fn credentials(
    lookup: &dyn Fn(&str) -> Option<String>,
) -> crate::Result<(Arc<dyn KeyProvider>, String)> {
    if lookup("OCI_RESOURCE_PRINCIPAL_VERSION").is_some() {
        let provider = ResourcePrincipalProvider::from_env(lookup)?;
        let claims = provider.claims();
        let left = claims
            .expires_at()
            .duration_since(SystemTime::now())
            .map(|d| format!("token valid for {} more minutes", d.as_secs() / 60))
            .unwrap_or_else(|_| "token expired (it is re-read before use)".into());
        let detail = format!(
            "resource principal v{} ({}), {left}",
            provider.version(),
            claims.res_type.as_deref().unwrap_or("unknown type")
        );
        provider.credentials()?;
        return Ok((Arc::new(provider), detail));
    }
    let provider = auth::from_env(lookup)?;
    let credentials = provider.credentials()?;
    let detail = if credentials.key_id.starts_with("ST$") {
        "session token from the OCI config file".to_string()
    } else {
        let user = credentials.key_id.split('/').nth(1).unwrap_or("?");
        format!("API key of {user} from the OCI config file")
    };
    Ok((provider, detail))
}

fn access_fix(error: &Error, what: &str) -> String {
    match error.service_error().map(|e| e.status) {
        Some(401) => "the request was not authenticated: check the clock, the key and its fingerprint".into(),
        Some(404) => format!("not found or not authorized: check the name, and a policy that lets this principal {what}"),
        _ if matches!(error, Error::Transport { .. } | Error::Deadline { .. }) => {
            "the service could not be reached: check the region, the endpoint and the network path (NAT or service gateway)".into()
        }
        _ => format!("check that this principal may {what}"),
    }
}

fn check_bucket(storage: &ObjectStorage, bucket: &Bucket) -> Check {
    let options = ListOptions {
        page_size: Some(1),
        ..ListOptions::default()
    };
    match storage
        .list(bucket, options, Instant::now() + TIMEOUT)
        .next()
        .transpose()
    {
        Ok(_) => Check::pass(
            "bucket access",
            format!("listed {} in namespace {}", bucket.name, bucket.namespace),
        ),
        Err(e) => Check::fail(
            "bucket access",
            e.to_string(),
            access_fix(&e, &format!("manage objects in bucket {}", bucket.name)),
        ),
    }
}

fn check_events(storage: &ObjectStorage, bucket: &Bucket) -> Check {
    match storage.bucket_details(bucket, Instant::now() + TIMEOUT) {
        Ok(details) if details["objectEventsEnabled"] == serde_json::json!(true) => {
            Check::pass("object events", "objectEventsEnabled is true")
        }
        Ok(_) => Check::fail(
            "object events",
            format!(
                "bucket {} does not emit object events, so nothing is analysed",
                bucket.name
            ),
            format!(
                "oci os bucket update --name {} --object-events-enabled true \
                 (Terraform: object_events_enabled = true)",
                bucket.name
            ),
        ),
        Err(e) => Check::fail(
            "object events",
            e.to_string(),
            access_fix(&e, &format!("read bucket {}", bucket.name)),
        ),
    }
}

fn check_vision(transport: &Transport, cloud: &CloudConfig) -> Check {
    let Some(compartment_id) = cloud.compartment_id.clone() else {
        return Check::skip("vision", format!("{} is not set", vars::COMPARTMENT));
    };
    let vision = Vision::new(transport.clone(), &cloud.vision_url);
    let request = AnalyzeImage {
        image: ImageSource::Inline(PROBE_PNG.to_vec()),
        max_objects: 1,
        max_labels: None,
        text: false,
        compartment_id,
    };
    match vision.analyze(&request, Instant::now() + TIMEOUT) {
        Ok(analysis) => Check::pass(
            "vision",
            format!(
                "analyzeImage answered (model {})",
                analysis.object_detection_model_version.as_deref().unwrap_or("?")
            ),
        ),
        Err(e) => Check::fail(
            "vision",
            e.to_string(),
            match e.service_error().map(|s| s.status) {
                Some(501) => "the local emulator has no detector: its model did not load (see models/README.md)".to_string(),
                Some(404) => "a policy must allow the function's dynamic group to use ai-service-vision-family (and to read objects in the bucket)".to_string(),
                _ => access_fix(&e, "use ai-service-vision-family"),
            },
        ),
    }
}

fn check_database(transport: &Transport, cloud: &CloudConfig) -> Vec<Check> {
    let deadline = Instant::now() + TIMEOUT;
    let secrets = Secrets::new(transport.clone(), &cloud.secrets_url);
    let soda = match Soda::connect(transport, &cloud.soda, Some(&secrets), deadline) {
        Ok(soda) => soda,
        Err(e) => {
            return vec![Check::fail(
                "database password",
                e.to_string(),
                format!(
                    "{} must name a secret this principal can read (policy: read secret-bundles)",
                    vars::DB_PASSWORD_SECRET
                ),
            )]
        }
    };
    match soda.collection_properties(deadline) {
        Err(e) => vec![Check::fail(
            "ORDS",
            e.to_string(),
            match e.service_error().map(|s| s.status) {
                Some(401) => format!(
                    "ORDS refused the credentials: check {} and the password secret (repeated failures lock the account)",
                    vars::DB_USER
                ),
                Some(404) => format!("check {}: it must end in /ords/ and the schema alias must be REST-enabled", vars::ORDS_URL),
                _ => format!("check {} and the network path to the database", vars::ORDS_URL),
            },
        )],
        Ok(None) => vec![
            Check::pass("ORDS", "credentials accepted"),
            Check::fail(
                "collection",
                format!("collection {} does not exist", cloud.soda.collection),
                "it is created on first use; or create it now by starting the function or the app once",
            ),
        ],
        Ok(Some(properties)) => {
            let method = properties["keyColumn"]["assignmentMethod"].as_str().unwrap_or("");
            let collection = if method.eq_ignore_ascii_case("CLIENT") {
                Check::pass("collection", format!("{} has client-assigned keys", cloud.soda.collection))
            } else {
                Check::fail(
                    "collection",
                    format!("collection {} assigns keys with {method:?}, not CLIENT", cloud.soda.collection),
                    format!("drop it (DELETE …/soda/latest/{}) or set {} to a new name", cloud.soda.collection, vars::COLLECTION),
                )
            };
            vec![Check::pass("ORDS", "credentials accepted"), collection]
        }
    }
}

fn check_function(transport: &Transport, lookup: &dyn Fn(&str) -> Option<String>) -> Check {
    let (Some(function_id), Some(endpoint)) =
        (lookup("FUNCTION_ID"), lookup("FUNCTION_INVOKE_ENDPOINT"))
    else {
        return Check::skip(
            "function",
            "FUNCTION_ID or FUNCTION_INVOKE_ENDPOINT is not set (re-analysis is off)",
        );
    };
    let probe = ObjectEvent {
        event_id: "doctor-probe".into(),
        ..ObjectEvent::new(
            EventKind::Delete,
            &lookup(vars::NAMESPACE).unwrap_or_default(),
            &lookup(vars::BUCKET).unwrap_or_default(),
            "doctor/does-not-exist",
            None,
        )
    };
    let compartment = lookup(vars::COMPARTMENT).unwrap_or_default();
    let functions = Functions::new(transport.clone(), endpoint);
    match functions.invoke(
        &function_id,
        &serde_json::to_vec(&probe.to_json("ocivision-doctor", &compartment)).unwrap_or_default(),
        InvokeMode::Sync,
        64 * 1024,
        Instant::now() + Duration::from_secs(60),
    ) {
        Ok(_) => Check::pass("function", "invoked with a harmless delete event"),
        Err(e) => Check::fail(
            "function",
            e.to_string(),
            match e.service_error().map(|s| s.status) {
                Some(404) => {
                    "check FUNCTION_ID and a policy that lets this principal use fn-invocation"
                        .to_string()
                }
                Some(502) => {
                    "the function ran and failed: read its logs (the Functions application's log)"
                        .to_string()
                }
                _ => access_fix(&e, "use fn-invocation"),
            },
        ),
    }
}

/// The report as a table; true when nothing failed.
pub fn render(checks: &[Check]) -> (String, bool) {
    let mut out = String::from("| check | result | details |\n|---|---|---|\n");
    let mut ok = true;
    for check in checks {
        let (result, details) = match &check.verdict {
            Verdict::Pass => ("pass", check.detail.clone()),
            Verdict::Skip(why) => ("skip", why.clone()),
            Verdict::Fail { problem, fix } => {
                ok = false;
                ("FAIL", format!("{problem} — fix: {fix}"))
            }
        };
        out.push_str(&format!(
            "| {} | {result} | {} |\n",
            check.name,
            details.replace('|', "/")
        ));
    }
    (out, ok)
}
