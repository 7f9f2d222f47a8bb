//! The `emulator` binary: runs the local OCI emulator by hand until it is killed.
//!
//! ```text
//! emulator [--data DIR] [--port N] [--bind ADDR] [--bucket NAME]… [--faults SPEC]
//!          [--trust KEY_ID=PEM_FILE]… [--principal KEY_ID=admin|webapp|function|user]…
//!          [--secret NAME=VALUE_FILE]… [--function FUNCTION_ID=SOCKET]… [--ords-schema ALIAS]
//!          [--vision-tps N] [--vision-burst N]
//! ```
//!
//! It is the local stack of `ocivision::local` without a function of its own: data in
//! `DIR/emulator/`, and the local development key (`src/emulator/dev-key.pem`) trusted under the
//! key id it prints, with an OCI config file for it in `DIR/keys/oci-config`; plus any `--trust` pairs (a private or public key PEM), each as a tenancy administrator
//! unless `--principal` makes it the web app's container instance, the function, or a user in
//! no group; IAM is enforced with `terraform/policies.tpl` filled with the emulator's names
//! (docs/EMULATOR.md). It serves its ORDS password as the secret `db-password`, plus any
//! `--secret`s, and invokes functions listening on unix sockets (the Fn contract) given with
//! `--function` (the same id given several times: instances of one function, invoked in turn).
//! `--vision-tps` gives Vision a rate limit (429 `TooManyRequests` beyond it; `--vision-burst`
//! requests at once, default one second's worth). Faults come from `--faults` or
//! `OCIVISION_FAULTS` (syntax in docs/EMULATOR.md). Vision answers from the shipped local models
//! (`models/`: NanoDet for objects, PP-OCRv4 for text, both loaded before it listens), or with
//! 501 (objects) or a feature error (text) when they do not load. Built only with the `local`
//! feature. Data is written crash-safely, so stopping it with Ctrl-C loses nothing that was
//! acknowledged.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use ocivision::emulator::faults::FaultPlan;
use ocivision::emulator::secrets::SecretEntry;
use ocivision::local::{LocalStack, Role, Text, Vision};
use ocivision::Error;

/// The vault every secret of the standalone emulator is in.
const VAULT_ID: &str = "ocid1.vault.oc1..emulator";

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
    let faults = args.faults.as_deref().map(FaultPlan::parse).transpose()?;
    // Beside the ORDS password (the stack's first secret: the database password of the
    // policy), named for the command line: `ocid1.vaultsecret.oc1..emulator-NAME`.
    let mut secrets = vec![("db-password".to_string(), None)];
    for (name, file) in &args.secrets {
        let value = std::fs::read_to_string(file)
            .map_err(|e| Error::Config(format!("--secret {name}: {}: {e}", file.display())))?;
        let value = value.trim_end_matches(['\r', '\n']).to_string();
        secrets.push((name.clone(), Some(value)));
    }
    let role_of = |key_id: &str| -> Result<Role, Error> {
        let role = args
            .principals
            .iter()
            .rev()
            .find(|(k, _)| k == key_id)
            .map_or("admin", |(_, role)| role.as_str());
        Role::parse(role).ok_or_else(|| {
            Error::Config(format!(
                "--principal {key_id}={role}: the role must be admin, webapp, function or user"
            ))
        })
    };
    let dev_key = ocivision::oci::keys::PrivateKey::from_pem(
        ocivision::emulator::DEV_KEY_PEM,
        "src/emulator/dev-key.pem",
    )?;
    let dev_key_id = ocivision::local::key_id(ocivision::local::USER, &dev_key);
    let mut options = LocalStack::options(&args.data);
    options.web_app = role_of(&dev_key_id)?;
    options.vision = Vision::Local;
    options.text = Text::Local;
    let config = &mut options.emulator;
    config.bind = SocketAddr::new(args.bind, args.port);
    if !args.buckets.is_empty() {
        config.buckets = args.buckets.clone();
    }
    if let Some(plan) = faults {
        config.faults = plan;
    }
    if let Some(alias) = &args.ords_schema {
        config.ords_schema = alias.clone();
    }
    config.vision_tps = args.vision_tps;
    config.vision_burst = args.vision_burst;
    let ords_password = config.ords_password.clone();
    config.secrets = secrets
        .into_iter()
        .map(|(name, value)| SecretEntry {
            id: format!("ocid1.vaultsecret.oc1..emulator-{name}"),
            name,
            vault_id: VAULT_ID.into(),
            value: value.unwrap_or_else(|| ords_password.clone()),
        })
        .collect();
    let served = config.secrets.clone();
    let stack = options.start()?;
    let emulator = &stack.emulator;
    let mut trusted = vec![(dev_key_id.clone(), role_of(&dev_key_id)?)];
    for (key_id, file) in &args.trust {
        let pem = std::fs::read_to_string(file)
            .map_err(|e| Error::Config(format!("--trust {}: {e}", file.display())))?;
        let role = role_of(key_id)?;
        emulator.trust_public_key_pem(
            key_id,
            &pem,
            &file.display().to_string(),
            role.principal(emulator, key_id),
        )?;
        trusted.push((key_id.clone(), role));
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
    let (user, password) = emulator.ords_credentials();
    println!("ocivision emulator listening on {}", emulator.base_url());
    println!("  data directory   {}", args.data.display());
    println!("  namespace        {}", emulator.namespace());
    println!(
        "  ORDS (SODA)      {}/ords/admin/soda/latest/  user {user}  password {password}",
        emulator.base_url()
    );
    println!(
        "  OCI config file  {}  (the development key: profile DEFAULT)",
        args.data.join("keys/oci-config").display()
    );
    for (key_id, role) in &trusted {
        println!(
            "  trusted key id   {key_id}  as {}",
            role.principal(emulator, key_id)
        );
    }
    for secret in &served {
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
    println!("  vision detector  {}", stack.detector());
    println!("  vision text      {}", stack.text_reader());
    stack.emulator.wait();
    Ok(())
}
