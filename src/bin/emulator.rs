//! The `emulator` binary: runs the local OCI emulator by hand until it is killed.
//!
//! ```text
//! emulator [--data DIR] [--port N] [--bind ADDR] [--bucket NAME]… [--faults SPEC]
//!          [--trust KEY_ID=PEM_FILE]…
//! ```
//!
//! It trusts the local development key (`src/emulator/dev-key.pem`) under the key id it prints,
//! plus any `--trust` pairs (a private or public key PEM). Faults come from `--faults` or
//! `OCIVISION_FAULTS` (syntax in docs/EMULATOR.md). Vision answers from the shipped local model
//! (`models/`), or with 501 when it does not load. Built only with the `local` feature. Data is written crash-safely, so stopping
//! it with Ctrl-C loses nothing that was acknowledged.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use ocivision::emulator::faults::FaultPlan;
use ocivision::emulator::{Emulator, EmulatorConfig, DEV_KEY_PEM};
use ocivision::oci::sign::PrivateKey;
use ocivision::Error;

/// The key id the development key is trusted under.
const DEV_KEY_USER: &str = "ocid1.tenancy.oc1..emulator/ocid1.user.oc1..emulator";

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
}

fn parse(args: Vec<String>) -> Result<Args, Error> {
    let mut parsed = Args {
        data: std::env::temp_dir().join("ocivision-emulator"),
        bind: IpAddr::from([127, 0, 0, 1]),
        port: 7070,
        buckets: Vec::new(),
        faults: std::env::var("OCIVISION_FAULTS").ok(),
        trust: Vec::new(),
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
                let text = value()?;
                let (key_id, file) = text.split_once('=').ok_or_else(|| {
                    Error::Config(format!("--trust {text:?} is not KEY_ID=PEM_FILE"))
                })?;
                parsed.trust.push((key_id.to_string(), PathBuf::from(file)));
            }
            "--help" | "-h" => {
                println!(
                    "emulator [--data DIR] [--port N] [--bind ADDR] [--bucket NAME]... \
                     [--faults SPEC] [--trust KEY_ID=PEM_FILE]..."
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
    let emulator = Emulator::start(config)?;
    let dev_key = PrivateKey::from_pem(DEV_KEY_PEM, "src/emulator/dev-key.pem")?;
    let dev_key_id = format!("{DEV_KEY_USER}/{}", dev_key.fingerprint());
    emulator.trust_api_key(&dev_key_id, &dev_key);
    for (key_id, file) in &args.trust {
        let pem = std::fs::read_to_string(file)
            .map_err(|e| Error::Config(format!("--trust {}: {e}", file.display())))?;
        emulator.trust_public_key_pem(key_id, &pem, &file.display().to_string())?;
    }
    // Vision answers from the local model when it loads; otherwise 501.
    let vision = match ocivision::detect::LocalDetector::load(Default::default()) {
        Ok(detector) => {
            let version = ocivision::detect::Detector::model_version(&detector);
            emulator.set_detector(Some(std::sync::Arc::new(detector)));
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
    println!("  trusted key id   {dev_key_id}  (src/emulator/dev-key.pem)");
    for (key_id, _) in &args.trust {
        println!("  trusted key id   {key_id}");
    }
    if let Some(spec) = &args.faults {
        println!("  faults           {spec}");
    }
    println!("  vision detector  {vision}");
    emulator.wait();
    Ok(())
}
