//! The `webapp` binary: the web app (`webapp`, the default) or one reconciler pass
//! (`webapp reconcile`).
//!
//! `main` calls `run`, prints any error with its causes and picks the exit code (2 for
//! configuration errors, 1 otherwise; the server only returns by failing). Configuration is read
//! once from the environment (docs/CONFIG.md lists every variable); credentials come from
//! `oci::auth::from_env` (resource principal in the cloud, `~/.oci/config` locally). No signal
//! handling: the platform stops the process, and nothing here needs a clean flush.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ocivision::oci::auth::KeyProvider;
use ocivision::oci::client::{Auth, Transport, TransportConfig};
use ocivision::oci::functions::Functions;
use ocivision::oci::object_storage::{Bucket, ObjectStorage};
use ocivision::oci::secrets::Secrets;
use ocivision::soda::Soda;
use ocivision::web::{self, App, Invoker, PasswordSource, Settings, WebConfig};
use ocivision::{logger, Error};

/// What to do.
enum Command {
    Serve,
    Reconcile,
}

fn command() -> Result<Command, Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [] | ["serve"] => Ok(Command::Serve),
        ["reconcile"] => Ok(Command::Reconcile),
        other => Err(Error::Config(format!(
            "unknown arguments {other:?}: use `webapp` or `webapp reconcile`"
        ))),
    }
}

fn build(config: &WebConfig, provider: Arc<dyn KeyProvider>) -> Result<App, Error> {
    let transport = Transport::new(Auth::Oci(provider), TransportConfig::default());
    let cloud = &config.cloud;
    let deadline = Instant::now() + Duration::from_secs(30);
    let storage = ObjectStorage::new(transport.clone(), cloud.object_storage_url.clone());
    let namespace = match &cloud.namespace {
        Some(ns) => ns.clone(),
        None => storage.namespace(deadline)?,
    };
    let secrets = Secrets::new(transport.clone(), cloud.secrets_url.clone());
    let soda = Soda::connect(&transport, &cloud.soda, Some(&secrets), deadline)?;
    if let Err(e) = soda.ensure_collection(deadline) {
        // Uploads still work without the database; the reconciler catches up later.
        log::warn!(target: "webapp", "SODA collection check failed: {e}");
    }
    let password = match &config.password {
        PasswordSource::None => None,
        PasswordSource::Literal(p) => Some(p.clone()),
        PasswordSource::SecretId(id) => Some(secrets.by_id(id, deadline)?),
    };
    let invoker = config.function.as_ref().map(|(id, url)| Invoker {
        client: Functions::new(transport.clone(), url.clone()),
        function_id: id.clone(),
        compartment_id: cloud.compartment_id.clone().unwrap_or_default(),
    });
    let settings = Settings {
        max_upload_bytes: config.max_upload_bytes,
        public_origin: config.public_origin.clone(),
        password,
        ..Settings::default()
    };
    let bucket = Bucket {
        namespace,
        name: cloud.bucket.clone(),
    };
    Ok(App::new(storage, bucket, soda, invoker, settings))
}

fn run() -> Result<(), Error> {
    let command = command()?;
    let lookup = |k: &str| std::env::var(k).ok();
    let provider = ocivision::oci::auth::from_env(lookup)?;
    let config = WebConfig::from_lookup(&lookup, provider.region())?;
    logger::init(config.log_level);
    let app = Arc::new(build(&config, provider)?);
    match command {
        Command::Reconcile => {
            let report = web::reconcile(&app)?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            if report.errors.is_empty() {
                Ok(())
            } else {
                Err(Error::Config(format!(
                    "{} repairs failed (see the report)",
                    report.errors.len()
                )))
            }
        }
        Command::Serve => {
            if app.settings().password.is_none() {
                log::warn!(target: "webapp", "APP_PASSWORD is not set: anyone who can reach this server can upload and delete");
            }
            if let Some(interval) = config.reconcile_interval {
                web::spawn_reconciler(Arc::clone(&app), interval)?;
            }
            let server = web::serve(app, config.addr)?;
            if let Some(addr) = server.tcp_addr() {
                log::info!(target: "webapp", "listening on http://{addr}");
            }
            server.wait();
            Err(Error::Config("the server stopped".into()))
        }
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("webapp: {e}");
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                eprintln!("  caused by: {s}");
                source = s.source();
            }
            match e {
                Error::Config(_) => ExitCode::from(2),
                _ => ExitCode::FAILURE,
            }
        }
    }
}
