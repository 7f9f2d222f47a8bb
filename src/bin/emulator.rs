//! The `emulator` binary: runs the local OCI emulator by hand until it is killed.
//!
//! ```text
//! emulator [--data DIR] [--port N] [--bind ADDR] [--bucket NAME]… [--faults SPEC]
//!          [--trust KEY_ID=PEM_FILE]… [--principal KEY_ID=admin|webapp|function|user]…
//!          [--secret NAME=VALUE_FILE]… [--function FUNCTION_ID=SOCKET]… [--ords-schema ALIAS]
//!          [--vision-tps N] [--vision-burst N]
//! ```
//!
//! It trusts the local development key (`src/emulator/dev-key.pem`) under the key id it prints,
//! plus any `--trust` pairs (a private or public key PEM), each as a tenancy administrator
//! unless `--principal` makes it the web app's container instance, the function, or a user in
//! no group; IAM is enforced with `terraform/policies.tpl` filled with the emulator's names
//! (docs/EMULATOR.md). It serves its ORDS password as the secret `db-password`, plus any
//! `--secret`s, and invokes functions listening on unix sockets (the Fn contract) given with
//! `--function` (the same id given several times: instances of one function, invoked in turn).
//! `--vision-tps` gives Vision a rate limit (429 `TooManyRequests` beyond it; `--vision-burst`
//! requests at once, default one second's worth). Faults come from `--faults` or
//! `OCIVISION_FAULTS` (syntax in docs/EMULATOR.md). Vision answers from the shipped local model
//! (`models/`), or with 501 when it does not load. Built only with the `local` feature. Data is written crash-safely, so stopping
//! it with Ctrl-C loses nothing that was acknowledged.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use ocivision::emulator::faults::FaultPlan;
use ocivision::emulator::iam::Principal;
use ocivision::emulator::secrets::SecretEntry;
use ocivision::emulator::{Emulator, EmulatorConfig, DEV_KEY_PEM};
use ocivision::oci::sign::PrivateKey;
use ocivision::Error;

/// The key id the development key is trusted under.
const DEV_KEY_USER: &str = "ocid1.tenancy.oc1..emulator/ocid1.user.oc1..emulator";
/// The vault every secret of the standalone emulator is in.
const VAULT_ID: &str = "ocid1.vault.oc1..emulator";
/// The function OCID `--principal KEY_ID=function` stands for.
const FUNCTION_PRINCIPAL_ID: &str = "ocid1.fnfunc.oc1..emulator";

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("emulator: {e}");
            ExitCode::from(2)
        }
    }
}

struct Args {
    data: PathBuf,
    bind: IpAddr,
    port: u16,
    buckets: Vec<String>,
    faults: Option<String>,
    trust: Vec<(String, PathBuf)>,
    principals: Vec<(String, String)>,
    secrets: Vec<(String, PathBuf)>,
    functions: Vec<(String, PathBuf)>,
    ords_schema: Option<String>,
    vision_tps: Option<f64>,
    vision_burst: Option<f64>,
}

/// `KEY=VALUE` of a flag, split at the first `=`.
fn pair(flag: &str, text: &str, shape: &str) -> Result<(String, String), Error> {
    text.split_once('=')
        .filter(|(k, v)| !k.is_empty() && !v.is_empty())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| Error::Config(format!("{flag} {text:?} is not {shape}")))
}

fn parse(args: Vec<String>) -> Result<Args, Error> {
    let mut parsed = Args {
        data: std::env::temp_dir().join("ocivision-emulator"),
        bind: IpAddr::from([127, 0, 0, 1]),
        port: 7070,
        buckets: Vec::new(),
        faults: std::env::var("OCIVISION_FAULTS").ok(),
        trust: Vec::new(),
        principals: Vec::new(),
        secrets: Vec::new(),
        functions: Vec::new(),
        ords_schema: None,
        vision_tps: None,
        vision_burst: None,
    };
    let mut args = args.into_iter();
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| Error::Config(format!("{flag} needs a value")))
        };
        match flag.as_str() {
            "--data" => parsed.data = PathBuf::from(value()?),
            "--port" => {
                let text = value()?;
                parsed.port = text
                    .parse()
                    .map_err(|_| Error::Config(format!("--port {text:?} is not a port number")))?;
            }
            "--bind" => {
                let text = value()?;
                parsed.bind = text
                    .parse()
                    .map_err(|_| Error::Config(format!("--bind {text:?} is not an IP address")))?;
            }
            "--bucket" => parsed.buckets.push(value()?),
            "--faults" => parsed.faults = Some(value()?),
            "--trust" => {
                let (key_id, file) = pair(&flag, &value()?, "KEY_ID=PEM_FILE")?;
                parsed.trust.push((key_id, PathBuf::from(file)));
            }
            "--principal" => {
                let (key_id, role) = pair(&flag, &value()?, "KEY_ID=admin|webapp|function|user")?;
                parsed.principals.push((key_id, role));
            }
            "--secret" => {
                let (name, file) = pair(&flag, &value()?, "NAME=VALUE_FILE")?;
                parsed.secrets.push((name, PathBuf::from(file)));
            }
            "--function" => {
                let (id, socket) = pair(&flag, &value()?, "FUNCTION_ID=SOCKET")?;
                parsed.functions.push((id, PathBuf::from(socket)));
            }
            "--ords-schema" => parsed.ords_schema = Some(value()?),
            "--vision-tps" | "--vision-burst" => {
                let text = value()?;
                let rate = text
                    .parse::<f64>()
                    .ok()
                    .filter(|r| r.is_finite() && *r > 0.0)
                    .ok_or_else(|| {
                        Error::Config(format!("{flag} {text:?} is not a positive number"))
                    })?;
                match flag.as_str() {
                    "--vision-tps" => parsed.vision_tps = Some(rate),
                    _ => parsed.vision_burst = Some(rate),
                }
            }
            "--help" | "-h" => {
                println!(
                    "emulator [--data DIR] [--port N] [--bind ADDR] [--bucket NAME]... \
                     [--faults SPEC] [--trust KEY_ID=PEM_FILE]... \
                     [--principal KEY_ID=admin|webapp|function|user]... \
                     [--secret NAME=VALUE_FILE]... [--function FUNCTION_ID=SOCKET]... \
                     [--ords-schema ALIAS] [--vision-tps N] [--vision-burst N]"
                );
                std::process::exit(0);
            }
            other => {
                return Err(Error::Config(format!(
                    "unknown argument {other:?} (try --help)"
                )))
            }
        }
    }
    Ok(parsed)
}

fn run(args: Vec<String>) -> Result<(), Error> {
    let args = parse(args)?;
    ocivision::logger::init_from(&|k: &str| std::env::var(k).ok())?;
    let mut config = EmulatorConfig::new(&args.data);
    config.bind = SocketAddr::new(args.bind, args.port);
    if !args.buckets.is_empty() {
        config.buckets = args.buckets;
    }
    if let Some(spec) = &args.faults {
        config.faults = FaultPlan::parse(spec)?;
    }
    if let Some(alias) = &args.ords_schema {
        config.ords_schema = alias.clone();
    }
    config.vision_tps = args.vision_tps;
    config.vision_burst = args.vision_burst;
    // The ORDS password first: it is the database password secret of the policy.
    let mut secrets = vec![("db-password".to_string(), config.ords_password.clone())];
    for (name, file) in &args.secrets {
        let value = std::fs::read_to_string(file)
            .map_err(|e| Error::Config(format!("--secret {name}: {}: {e}", file.display())))?;
        secrets.push((
            name.clone(),
            value.trim_end_matches(['\r', '\n']).to_string(),
        ));
    }
    for (name, value) in secrets {
        config.secrets.push(SecretEntry {
            id: format!("ocid1.vaultsecret.oc1..emulator-{name}"),
            name,
            vault_id: VAULT_ID.into(),
            value,
        });
    }
    let emulator = Emulator::start(config.clone())?;
    let principal_of = |key_id: &str| -> Result<Principal, Error> {
        let role = args
            .principals
            .iter()
            .rev()
            .find(|(k, _)| k == key_id)
            .map_or("admin", |(_, role)| role.as_str());
        Ok(match role {
            "admin" => Principal::administrator(key_id.split('/').nth(1).unwrap_or(key_id)),
            "webapp" => emulator.web_app_principal(),
            "function" => emulator.function_principal(FUNCTION_PRINCIPAL_ID),
            "user" => Principal::User {
                id: key_id.split('/').nth(1).unwrap_or(key_id).to_string(),
                groups: Vec::new(),
            },
            other => {
                return Err(Error::Config(format!(
                    "--principal {key_id}={other}: the role must be admin, webapp, function or user"
                )))
            }
        })
    };
    let dev_key = PrivateKey::from_pem(DEV_KEY_PEM, "src/emulator/dev-key.pem")?;
    let dev_key_id = format!("{DEV_KEY_USER}/{}", dev_key.fingerprint());
    emulator.trust_api_key_as(&dev_key_id, &dev_key, principal_of(&dev_key_id)?);
    let mut trusted = vec![(dev_key_id.clone(), principal_of(&dev_key_id)?)];
    for (key_id, file) in &args.trust {
        let pem = std::fs::read_to_string(file)
            .map_err(|e| Error::Config(format!("--trust {}: {e}", file.display())))?;
        let principal = principal_of(key_id)?;
        emulator.trust_public_key_pem(
            key_id,
            &pem,
            &file.display().to_string(),
            principal.clone(),
        )?;
        trusted.push((key_id.clone(), principal));
    }
    let mut functions: Vec<(&String, Vec<PathBuf>)> = Vec::new();
    for (function_id, socket) in &args.functions {
        match functions.iter_mut().find(|(id, _)| *id == function_id) {
            Some((_, sockets)) => sockets.push(socket.clone()),
            None => functions.push((function_id, vec![socket.clone()])),
        }
    }
    for (function_id, sockets) in functions {
        emulator.register_function_instances(function_id, sockets, false);
    }
    // Vision answers from the local models when they load; otherwise 501 (objects) or a feature
    // error (text).
    let vision = match ocivision::detect::LocalDetector::load(Default::default()) {
        Ok(detector) => {
            let version = ocivision::detect::Detector::model_version(&detector);
            emulator.set_detector(Some(std::sync::Arc::new(detector)));
            version
        }
        Err(e) => format!("none ({e})"),
    };
    let text = match ocivision::detect::LocalTextReader::load(Default::default()) {
        Ok(reader) => {
            let version = ocivision::detect::TextReader::model_version(&reader);
            emulator.set_text_reader(Some(std::sync::Arc::new(reader)));
            version
        }
        Err(e) => format!("none ({e})"),
    };
    let (user, password) = emulator.ords_credentials();
    println!("ocivision emulator listening on {}", emulator.base_url());
    println!("  data directory   {}", args.data.display());
    println!("  namespace        {}", emulator.namespace());
    println!(
        "  ORDS (SODA)      {}/ords/admin/soda/latest/  user {user}  password {password}",
        emulator.base_url()
    );
    for (key_id, principal) in &trusted {
        println!("  trusted key id   {key_id}  as {principal}");
    }
    for secret in &config.secrets {
        println!(
            "  secret           {}  name {}  vault {}",
            secret.id, secret.name, secret.vault_id
        );
    }
    for (function_id, socket) in &args.functions {
        println!("  function         {function_id}  at {}", socket.display());
    }
    println!(
        "  IAM policy       terraform/policies.tpl, {} statements (docs/EMULATOR.md)",
        emulator.policy_statements().len()
    );
    if let Some(spec) = &args.faults {
        println!("  faults           {spec}");
    }
    println!("  vision detector  {vision}");
    println!("  vision text      {text}");
    emulator.wait();
    Ok(())
}
