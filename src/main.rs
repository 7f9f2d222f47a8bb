//! The `webapp` binary: the web app (`webapp`, the default), one reconciler pass
//! (`webapp reconcile`) or a self-check (`webapp doctor`).
//!
//! Without cloud configuration (no `BUCKET_NAME`, no resource principal) it runs in **local
//! mode**: the whole pipeline in this process (emulator, local detector, the function behind the
//! Fn contract) with data under `OCIVISION_DATA`; `OCIVISION_MODE=local|cloud` forces a mode.
//! The start-up log says which mode and why. Local mode exists only with the `local` feature
//! (on by default); the images are built without it, so there a missing cloud configuration is
//! an error (exit 2) naming the variables to set.
//!
//! `main` calls `run`, prints any error with its causes and picks the exit code (2 for
//! configuration errors, 1 otherwise; the server only returns by failing). Configuration is read
//! once from the environment (README.md lists every variable); credentials come from
//! `oci::auth::from_env` (resource principal in the cloud, `~/.oci/config` locally). No signal
//! handling: the platform stops the process, and nothing here needs a clean flush.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[cfg(feature = "local")]
use ocivision::local::LocalStack;
use ocivision::oci::auth::KeyProvider;
use ocivision::oci::client::{Auth, Transport, TransportConfig};
use ocivision::oci::functions::Functions;
use ocivision::oci::object_storage::{Bucket, ObjectStorage};
use ocivision::oci::secrets::Secrets;
use ocivision::soda::Soda;
use ocivision::web::{
    self, App, Invoker, PasswordSource, SessionSecretSource, Settings, WebConfig,
    MIN_SESSION_SECRET,
};
use ocivision::{logger, Error};

/// What to do.
enum Command {
    Serve,
    Reconcile,
    Doctor,
}

/// Where the services are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// OCI (or anything configured like it).
    Cloud,
    /// Everything in this process, on loopback.
    #[cfg(feature = "local")]
    Local,
}

/// What a cloud deployment must set; named when there is no cloud configuration.
const CLOUD_VARIABLES: &str = "BUCKET_NAME, DB_ORDS_BASE_URL and DB_PASSWORD_SECRET_OCID (or \
     DB_PASSWORD), with credentials from a resource principal (OCI_RESOURCE_PRINCIPAL_VERSION) \
     or ~/.oci/config";

/// Local unless something says this is a cloud deployment; the reason is logged. A build
/// without the `local` feature (the images) has no local mode and refuses to start without a
/// cloud configuration.
fn mode(lookup: &dyn Fn(&str) -> Option<String>) -> Result<(Mode, &'static str), Error> {
    let bucket_set = lookup("BUCKET_NAME").is_some_and(|b| !b.trim().is_empty());
    let forced = match lookup("OCIVISION_MODE").as_deref().map(str::trim) {
        Some("local") => Some("local"),
        Some("cloud") if bucket_set => return Ok((Mode::Cloud, "OCIVISION_MODE=cloud")),
        Some("cloud") => {
            return Err(Error::Config(format!(
                "OCIVISION_MODE=cloud but BUCKET_NAME is not set: set {CLOUD_VARIABLES}"
            )))
        }
        Some("") | None => None,
        Some(other) => {
            return Err(Error::Config(format!(
                "OCIVISION_MODE={other:?} is not local or cloud"
            )))
        }
    };
    if forced.is_none() {
        if bucket_set {
            return Ok((Mode::Cloud, "BUCKET_NAME is set"));
        }
        if lookup("OCI_RESOURCE_PRINCIPAL_VERSION").is_some() {
            return Ok((Mode::Cloud, "a resource principal is configured"));
        }
    }
    #[cfg(feature = "local")]
    return Ok(match forced {
        Some(_) => (Mode::Local, "OCIVISION_MODE=local"),
        None => (
            Mode::Local,
            "no cloud configuration (BUCKET_NAME is not set)",
        ),
    });
    #[cfg(not(feature = "local"))]
    Err(Error::Config(match forced {
        Some(_) => format!(
            "OCIVISION_MODE=local, but this build has no local mode (it is built without the \
             `local` feature); set {CLOUD_VARIABLES}"
        ),
        None => {
            format!("no cloud configuration: set {CLOUD_VARIABLES} (this build has no local mode)")
        }
    }))
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
        ["doctor"] => Ok(Command::Doctor),
        other => Err(Error::Config(format!(
            "unknown arguments {other:?}: use `webapp`, `webapp reconcile` or `webapp doctor`"
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
    } else if let Err(e) = soda.ensure_gallery_indexes(deadline) {
        // Searches still work without them, scanning the collection.
        log::warn!(target: "webapp", "SODA index creation failed: {e}");
    }
    let password = match &config.password {
        PasswordSource::None => None,
        PasswordSource::Literal(p) => Some(p.clone()),
        PasswordSource::SecretId(id) => Some(secrets.by_id(id, deadline)?),
    };
    let session_secret = match &config.session_secret {
        SessionSecretSource::None => None,
        SessionSecretSource::Literal(s) => Some(s.clone()),
        SessionSecretSource::SecretId(id) => {
            let secret = secrets.by_id(id, deadline)?;
            if secret.expose().len() < MIN_SESSION_SECRET {
                return Err(Error::Config(format!(
                    "the Vault secret SESSION_SECRET_OCID names holds fewer than \
                     {MIN_SESSION_SECRET} characters"
                )));
            }
            Some(secret)
        }
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
        session_secret,
        trusted_proxies: config.trusted_proxies.clone(),
        reconcile_lease: config.reconcile_lease,
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
    ocivision::check_randomness()?;
    let env = |k: &str| std::env::var(k).ok();
    logger::init_from(&env)?;
    let (mode, why) = mode(&env)?;
    let local = start_local(mode, why)?;
    if let Command::Doctor = command {
        // The doctor checks settings as a deployment gives them, variables: in local mode the
        // stack's, which win over the environment.
        let overlay = local_env(&local);
        let lookup = |k: &str| {
            overlay
                .iter()
                .find(|(name, _)| name == k)
                .map(|(_, value)| value.clone())
                .or_else(|| env(k))
        };
        let (table, ok) = ocivision::doctor::render(&ocivision::doctor::run(&lookup));
        println!("{table}");
        return if ok {
            Ok(())
        } else {
            Err(Error::Config(
                "some checks failed (see the fixes above)".into(),
            ))
        };
    }
    let (config, provider) = settings(&local, &env)?;
    logger::init(config.log_level);
    let app = Arc::new(build(&config, provider)?);
    match command {
        Command::Reconcile => {
            let report = web::reconcile(&app)?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            if let Some(why) = &report.skipped {
                eprintln!("webapp: no pass ran: {why}");
            }
            if report.errors.is_empty() {
                Ok(())
            } else {
                Err(Error::Config(format!(
                    "{} repairs failed (see the report)",
                    report.errors.len()
                )))
            }
        }
        Command::Doctor => unreachable!("answered above"),
        Command::Serve => {
            if app.settings().password.is_none() {
                log::warn!(target: "webapp", "APP_PASSWORD is not set: anyone who can reach this server can upload and delete");
            }
            if app.settings().session_secret.is_none() {
                log::warn!(target: "webapp", "SESSION_SECRET(_OCID) is not set: sessions and forms are signed with a key of this process only (run one instance)");
            }
            if let Some(interval) = config.reconcile_interval {
                if web::reconciler_runs_here(&app, &env) {
                    web::spawn_reconciler(Arc::clone(&app), interval)?;
                }
            }
            let server = web::serve(app, config.addr)?;
            if let Some(addr) = server.tcp_addr() {
                log::info!(target: "webapp", "listening on http://{addr}");
                #[cfg(feature = "local")]
                if let Some(stack) = &local {
                    println!(
                        "\nocivision is running: open http://{addr} and drop some photos on the page.\n  \
                         data:   {} (kept across restarts; set OCIVISION_DATA to move it)\n  \
                         vision: {}\n  \
                         Ctrl-C stops everything; nothing acknowledged is lost.\n",
                        stack.data_dir().display(),
                        stack.detector()
                    );
                }
            }
            server.wait();
            Err(Error::Config("the server stopped".into()))
        }
    }
}

/// The local stack, started in local mode; `None` in cloud mode.
#[cfg(feature = "local")]
fn start_local(mode: Mode, why: &str) -> Result<Option<LocalStack>, Error> {
    match mode {
        Mode::Local => {
            let env = |k: &str| std::env::var(k).ok();
            let dir = ocivision::local::default_data_dir(&env)?;
            log::info!(target: "webapp", "mode: local ({why}); data in {}", dir.display());
            Ok(Some(LocalStack::start(&dir)?))
        }
        Mode::Cloud => {
            log::info!(target: "webapp", "mode: cloud ({why})");
            Ok(None)
        }
    }
}

/// Builds without local mode run in the cloud only.
#[cfg(not(feature = "local"))]
fn start_local(_: Mode, why: &str) -> Result<Option<()>, Error> {
    log::info!(target: "webapp", "mode: cloud ({why})");
    Ok(None)
}

/// The web app's configuration and credentials: the local stack's in local mode (its services
/// as values, the rest from the environment), else all from the environment.
#[cfg(feature = "local")]
fn settings(
    local: &Option<LocalStack>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(WebConfig, Arc<dyn KeyProvider>), Error> {
    match local {
        Some(stack) => Ok((stack.web_config(env)?, stack.wiring().credentials()?)),
        None => cloud_settings(env),
    }
}

#[cfg(not(feature = "local"))]
fn settings(
    _: &Option<()>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(WebConfig, Arc<dyn KeyProvider>), Error> {
    cloud_settings(env)
}

fn cloud_settings(
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(WebConfig, Arc<dyn KeyProvider>), Error> {
    let provider = ocivision::oci::auth::from_env(env)?;
    let config = WebConfig::from_lookup(env, provider.region())?;
    Ok((config, provider))
}

/// The local stack's variables, for `webapp doctor`.
#[cfg(feature = "local")]
fn local_env(local: &Option<LocalStack>) -> Vec<(String, String)> {
    local
        .as_ref()
        .map(|stack| stack.wiring().webapp_env())
        .unwrap_or_default()
}

#[cfg(not(feature = "local"))]
fn local_env(_: &Option<()>) -> Vec<(String, String)> {
    Vec::new()
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
