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
//! | `VISION_TEXT` | on | also ask for TEXT_DETECTION (words, lines) in the same call |
//! | `MAX_IMAGE_BYTES` | 5242880 | larger images fail without a Vision call |
//! | `VISION_TPS` | 10 in Ashburn, Phoenix, London; 5 elsewhere | Vision requests per second shared by all instances (0: no pacing) |
//! | `VISION_MAX_WAIT` | 0 (as long as the deadline allows) | seconds a call waits for its Vision slot before deferring |

use std::process::ExitCode;
use std::time::{Duration, Instant};

use ocivision::fdk::{CallResult, FnConfig, FnServer};
use ocivision::Analyzer;
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
    ocivision::check_randomness()?;
    ocivision::logger::init_from(lookup)?;
    let analyzer = Analyzer::from_lookup(lookup)?;
    match args {
        [flag, file] if flag == "--event" => {
            let body =
                std::fs::read(file).map_err(|e| Error::Config(format!("--event {file}: {e}")))?;
            let outcome =
                analyzer.handle(&body, Instant::now() + Duration::from_secs(120), "local");
            let (code, value) = match outcome {
                CallResult::Success(value) => (ExitCode::SUCCESS, value),
                CallResult::Failed(reason) => {
                    (ExitCode::FAILURE, serde_json::json!({"failed": reason}))
                }
                CallResult::TimedOut(reason) => {
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
