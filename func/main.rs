//! The `func` binary: the OCI Function that analyses images when Object Storage events arrive.
//!
//! `main` calls `run`, which reads the configuration once, builds the clients once per container
//! (credentials: resource principal v2.2 in OCI, `~/.oci/config` elsewhere), and serves the Fn
//! contract on `FN_LISTENER`. `func --event FILE` runs the handler once on a saved event and
//! prints the outcome, for local debugging. Settings (besides the shared ones in README.md):
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `COMPARTMENT_ID` | the function's own compartment (from its token) | compartment billed for Vision |
//! | `VISION_MAX_RESULTS` | 50 | objects asked of Vision |
//! | `VISION_MAX_LABELS` | 0 (off) | image-level labels asked of Vision |
//! | `MAX_IMAGE_BYTES` | 5242880 | larger images fail without a Vision call |

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ocivision::analysis::{Analyzer, AnalyzerConfig};
use ocivision::config::{self, CloudConfig};
use ocivision::fdk::{FnConfig, FnServer, Outcome};
use ocivision::oci::auth::{self, KeyProvider, ResourcePrincipalProvider};
use ocivision::oci::client::{Auth, RetryPolicy, Transport, TransportConfig};
use ocivision::oci::object_storage::ObjectStorage;
use ocivision::oci::secrets::Secrets;
use ocivision::oci::vision::Vision;
use ocivision::soda::CachedSoda;
use ocivision::Error;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args, &|name| std::env::var(name).ok()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("func: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &[String], lookup: &dyn Fn(&str) -> Option<String>) -> Result<ExitCode, Error> {
    ocivision::logger::init(ocivision::logger::parse_level(
        lookup(config::vars::LOG_LEVEL).as_deref(),
    )?);
    let analyzer = build(lookup)?;
    match args {
        [flag, file] if flag == "--event" => {
            let body =
                std::fs::read(file).map_err(|e| Error::Config(format!("--event {file}: {e}")))?;
            let outcome =
                analyzer.handle(&body, Instant::now() + Duration::from_secs(120), "local");
            let (code, value) = match outcome {
                Outcome::Success(value) => (ExitCode::SUCCESS, value),
                Outcome::Failed(reason) => {
                    (ExitCode::FAILURE, serde_json::json!({"failed": reason}))
                }
                Outcome::TimedOut(reason) => {
                    (ExitCode::FAILURE, serde_json::json!({"timed_out": reason}))
                }
            };
            println!("{value:#}");
            Ok(code)
        }
        [] => {
            let fn_config = FnConfig::from_lookup(lookup)?;
            let server = FnServer::start(&fn_config, move |invocation| {
                analyzer.handle(&invocation.body, invocation.deadline, &invocation.call_id)
            })?;
            server.wait();
            Ok(ExitCode::SUCCESS)
        }
        _ => Err(Error::Config(
            "usage: func (serve the Fn contract) | func --event FILE".into(),
        )),
    }
}

/// Builds the clients and the analyzer once per container.
fn build(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Analyzer, Error> {
    let (keys, own_compartment): (Arc<dyn KeyProvider>, Option<String>) =
        if lookup("OCI_RESOURCE_PRINCIPAL_VERSION").is_some() {
            let provider = ResourcePrincipalProvider::from_env(lookup)?;
            let compartment = provider.claims().res_compartment.clone();
            (Arc::new(provider), compartment)
        } else {
            (auth::from_env(lookup)?, None)
        };
    let cloud = CloudConfig::from_lookup(lookup, keys.region())?;
    let compartment_id = cloud
        .compartment_id
        .clone()
        .or(own_compartment)
        .ok_or_else(|| {
            Error::Config(format!(
                "{} is not set and the credentials name no compartment",
                config::vars::COMPARTMENT
            ))
        })?;
    // A function must answer before Fn-Deadline: few, quick retries; the deadline caps them.
    let transport = Transport::new(
        Auth::Oci(keys),
        TransportConfig {
            retry: RetryPolicy {
                max_attempts: 5,
                base_backoff: Duration::from_millis(200),
                max_backoff: Duration::from_secs(5),
            },
            ..TransportConfig::default()
        },
    );
    let secrets = Secrets::new(transport.clone(), &cloud.secrets_url);
    let max_labels = config::number(lookup, "VISION_MAX_LABELS", 0u32)?;
    Ok(Analyzer::new(
        ObjectStorage::new(transport.clone(), &cloud.object_storage_url),
        Vision::new(transport.clone(), &cloud.vision_url),
        CachedSoda::new(
            transport,
            cloud.soda.clone(),
            Some(secrets),
            cloud.secret_ttl,
        ),
        AnalyzerConfig {
            bucket: cloud.bucket.clone(),
            compartment_id,
            max_results: config::number(lookup, "VISION_MAX_RESULTS", 50)?,
            max_labels: (max_labels > 0).then_some(max_labels),
            margin: Duration::from_secs(2),
            max_image_bytes: config::number(lookup, "MAX_IMAGE_BYTES", 5 * 1024 * 1024)?,
        },
    ))
}
