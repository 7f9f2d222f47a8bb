//! IAM ablation: the whole product (the `webapp` and `func` binaries against the emulator, the
//! web app as its container instance, the function with its resource principal) run once under
//! every statement of terraform/policies.tpl, then once per statement with that one removed.
//! Each run exercises every feature (doctor, upload, analysis, gallery, re-analysis, delete) and
//! notes what differs from the full policy and how the product shows it; the test prints the
//! table (`cargo test --test it iam:: -- --nocapture`; docs/EMULATOR.md has a copy) and fails
//! if a statement's removal breaks nothing it should, or anything breaks under the full policy.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ocivision::doctor::{self, Verdict};
use ocivision::emulator::events::Outcome;
use ocivision::emulator::EmulatorConfig;
use ocivision::local::{Function, Role};
use serde_json::Value;

use crate::support::emulator::{func_env, Env, FixedDetector, FUNCTION_ID};

const DOG: &[u8] = include_bytes!("../fixtures/photos/dog.jpg");

/// A child process whose stderr is collected; killed on drop.
struct Logged {
    child: Child,
    log: Arc<Mutex<String>>,
}

impl Logged {
    fn spawn(mut command: Command, on_line: impl Fn(&str) + Send + 'static) -> Logged {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let pipe = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                on_line(&line);
                let mut text = sink.lock().unwrap();
                text.push_str(&line);
                text.push('\n');
            }
        });
        Logged { child, log }
    }

    /// The first WARN or ERROR line, without its timestamp (the web app's warnings about its
    /// unset password and session secret are there in every run and say nothing about IAM).
    fn first_problem(&self) -> Option<String> {
        let log = self.log.lock().unwrap();
        log.lines()
            .filter(|l| {
                !l.contains("APP_PASSWORD is not set")
                    && !l.contains("SESSION_SECRET(_OCID) is not set")
            })
            .find(|l| l.contains(" WARN ") || l.contains(" ERROR ") || odd_outcome(l))
            .map(|l| {
                l.split_once(' ')
                    .map_or(l, |(_, rest)| rest)
                    .trim()
                    .to_string()
            })
    }
}

/// The function's INFO line for an event it handled without analysing it (its object looked
/// gone, or stale).
fn odd_outcome(line: &str) -> bool {
    line.contains(" INFO  analysis: call ")
        && !["analyzed", "duplicate", "deleted", "nothing to delete"]
            .iter()
            .any(|usual| line.ends_with(usual))
}

impl Drop for Logged {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What one run saw, feature by feature: `None` works, `Some(what the user sees)` does not.
#[derive(Debug, Default)]
struct Run {
    features: Vec<(&'static str, Option<String>)>,
    function_log: Option<String>,
    webapp_log: Option<String>,
    /// Event deliveries the emulator refused for want of a policy statement.
    undelivered: usize,
}

impl Run {
    fn note(&mut self, feature: &'static str, broken: Option<String>) {
        self.features.push((feature, broken));
    }

    fn broken(&self) -> Vec<(&'static str, &str)> {
        self.features
            .iter()
            .filter_map(|(f, b)| b.as_deref().map(|b| (*f, b)))
            .collect()
    }
}

struct Http {
    addr: SocketAddr,
}

impl Http {
    fn call(&self, method: &str, path: &str, headers: &[&str], body: &[u8]) -> (u16, Value) {
        let timeout = Duration::from_secs(60);
        match crate::support::request(self.addr, method, path, headers, body, timeout) {
            Ok(reply) => (reply.status, reply.json_or_null()),
            Err(_) => (0, Value::Null),
        }
    }
}

fn short(value: &Value) -> String {
    let message = value["message"]
        .as_str()
        .or(value["error"].as_str())
        .unwrap_or("");
    message.chars().take(160).collect()
}

/// Runs the product under `policy` and observes every feature.
fn exercise(tag: &str, policy: Vec<String>) -> Run {
    // The web app's key stands for its container instance, as deployed.
    let env = Env::start_from(tag, |stack| {
        stack.emulator.policy = Some(policy);
        stack.web_app = Role::WebApp;
        stack.function = Function::Processes;
    });
    env.emulator
        .set_detector(Some(std::sync::Arc::new(FixedDetector::default())));

    // The function, as the Fn agent starts it.
    let vars = func_env(&env);
    let socket = PathBuf::from(
        vars.iter()
            .find(|(k, _)| k == "FN_LISTENER")
            .unwrap()
            .1
            .trim_start_matches("unix:"),
    );
    let mut command = Command::new(env!("CARGO_BIN_EXE_func"));
    command.env_clear().envs(vars).env("LOG_LEVEL", "info");
    let function = Logged::spawn(command, |_| {});
    let started = Instant::now();
    while std::fs::symlink_metadata(&socket).is_err() {
        assert!(started.elapsed() < Duration::from_secs(10), "func starts");
        std::thread::sleep(Duration::from_millis(5));
    }
    env.emulator.register_function(FUNCTION_ID, &socket, true);

    // The web app in cloud mode, with the key the emulator takes for its container instance.
    let web_env = env.wiring().webapp_env();
    let (tx, rx) = std::sync::mpsc::channel();
    let tx = Mutex::new(tx);
    let mut command = Command::new(env!("CARGO_BIN_EXE_webapp"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(web_env.iter().cloned())
        .env("PORT", "0")
        .env("BIND", "127.0.0.1")
        .env("LOG_LEVEL", "info");
    let webapp = Logged::spawn(command, move |line| {
        if let Some(addr) = line.split("listening on http://").nth(1) {
            let _ = tx
                .lock()
                .unwrap()
                .send(addr.trim().parse::<SocketAddr>().unwrap());
        }
    });
    let mut run = Run::default();
    match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(addr) => {
            run.note("web app start", None);
            use_the_web_app(&Http { addr }, &mut run, &function);
        }
        Err(_) => {
            // It exits with the reason as its last line.
            std::thread::sleep(Duration::from_millis(200));
            let log = webapp.log.lock().unwrap().clone();
            let last = log.lines().last().unwrap_or("").to_string();
            run.note(
                "web app start",
                Some(format!("the web app exits: `{last}`")),
            );
        }
    }
    let lookup = |name: &str| {
        web_env
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    for check in doctor::run(&lookup) {
        let broken = match &check.verdict {
            Verdict::Fail { problem, .. } => Some(format!(
                "`webapp doctor`: {} ✗ {}",
                check.name,
                problem.chars().take(140).collect::<String>()
            )),
            _ => None,
        };
        run.note(
            match check.name {
                "bucket access" => "doctor: bucket access",
                "object events" => "doctor: object events",
                "vision" => "doctor: vision",
                "ORDS" => "doctor: ORDS",
                "database password" => "doctor: database password",
                "collection" => "doctor: collection",
                "function" => "doctor: function",
                _ => "doctor: other",
            },
            broken,
        );
    }
    // Let the last deliveries land before the logs are read.
    env.emulator.events().wait_idle(Duration::from_secs(10));
    run.webapp_log = webapp.first_problem();
    run.undelivered = env
        .emulator
        .events()
        .deliveries()
        .iter()
        .filter(|d| d.outcome == Outcome::NotAuthorized)
        .count();
    run
}

/// Upload, analysis, re-analysis, gallery and delete, through the web app's JSON API.
fn use_the_web_app(http: &Http, run: &mut Run, function: &Logged) {
    let (status, body) = http.call(
        "PUT",
        "/api/images/dog.jpg",
        &["Content-Type: image/jpeg"],
        DOG,
    );
    let id = body["id"].as_str().map(str::to_string);
    run.note(
        "upload",
        (status != 201).then(|| format!("PUT /api/images → {status} {}", short(&body))),
    );
    if let Some(id) = &id {
        // The analysis: event → function → Vision → document.
        let mut last = Value::Null;
        let end = Instant::now() + Duration::from_secs(6);
        while Instant::now() < end {
            let (_, page) = http.call("GET", "/api/images", &[], b"");
            last = page["items"]
                .as_array()
                .and_then(|items| items.iter().find(|i| i["id"] == id.as_str()).cloned())
                .unwrap_or(Value::Null);
            if last["status"] == "done" || last["status"] == "failed" {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        run.note(
            "analysis",
            match last["status"].as_str() {
                Some("done") => None,
                Some("failed") => Some(format!(
                    "the image shows \"failed\": {}",
                    last["error"].as_str().unwrap_or("")
                )),
                other => Some(format!(
                    "the image stays \"{}\" (no document is written)",
                    other.unwrap_or("missing")
                )),
            },
        );
        // What the function said about the upload's event (the re-analysis comes next).
        run.function_log = function.first_problem();
        let (status, body) = http.call(
            "POST",
            &format!("/api/images/{id}/reanalyze"),
            &["Sec-Fetch-Site: same-origin"],
            b"",
        );
        run.note(
            "re-analysis",
            (status != 202).then(|| {
                format!(
                    "POST /api/images/{{id}}/reanalyze → {status} {}",
                    short(&body)
                )
            }),
        );
    }
    let (status, body) = http.call("GET", "/api/images", &[], b"");
    run.note(
        "gallery",
        if status != 200 {
            Some(format!("GET /api/images → {status} {}", short(&body)))
        } else if body["documents_available"] == false {
            Some("the gallery lists the images without results (documents_available: false)".into())
        } else {
            None
        },
    );
    if let Some(id) = &id {
        let (status, body) = http.call("DELETE", &format!("/api/images/{id}"), &[], b"");
        run.note(
            "delete",
            (status != 200)
                .then(|| format!("DELETE /api/images/{{id}} → {status} {}", short(&body))),
        );
    }
}

/// The statement with its names shortened for the table.
fn label(statement: &str) -> String {
    let text = statement
        .replace("Allow ", "")
        .replace(" in compartment id ocid1.compartment.oc1..emulator", "");
    text.replace("ocivision-", "")
}

#[test]
fn removing_each_policy_statement_breaks_what_it_grants() {
    let statements = {
        let mut config = EmulatorConfig::new("/nonexistent");
        config
            .secrets
            .push(ocivision::emulator::secrets::SecretEntry {
                id: crate::support::emulator::SODA_SECRET_ID.into(),
                name: "soda-password".into(),
                vault_id: crate::support::emulator::VAULT_ID.into(),
                value: String::new(),
            });
        config.policy_statements().unwrap()
    };
    assert_eq!(statements.len(), 12, "{statements:#?}");

    let full = exercise("iam-full", statements.clone());
    assert!(
        full.broken().is_empty(),
        "under the full policy everything works: {full:#?}"
    );

    let mut table = String::from(
        "| statement removed | feature broken | what the user sees |\n|---|---|---|\n",
    );
    let mut failures = Vec::new();
    for (i, removed) in statements.iter().enumerate() {
        let mut rest = statements.clone();
        rest.remove(i);
        let run = exercise(&format!("iam-{i}"), rest);
        let broken = run.broken();
        let features: Vec<&str> = broken.iter().map(|(f, _)| *f).collect();
        let mut seen: Vec<String> = broken.iter().map(|(_, s)| s.to_string()).collect();
        if features.contains(&"analysis") {
            if let Some(line) = &run.function_log {
                seen.push(format!("function log: `{line}`"));
            }
            if run.undelivered > 0 {
                seen.push(format!(
                    "emulator log: `event … not delivered: no policy statement lets service \
                     cloudEvents use functions-family` ({} deliveries; OCI drops them silently)",
                    run.undelivered
                ));
            }
        }
        if let Some(line) = &run.webapp_log {
            seen.push(format!("web app log: `{line}`"));
        }
        // Statements for what the emulator does not model (pulling images, attaching to the
        // VCN) break nothing locally; every other statement must break something.
        let deploy_only = removed.contains(" repos ") || removed.contains("virtual-network-family");
        let expected: &[&str] = if deploy_only {
            &[]
        } else if removed.contains("func-dg to read objects")
            || removed.contains("func-dg to use ai-service-vision-family")
            || removed.contains("cloudEvents")
        {
            &["analysis"]
        } else if removed.contains("func-dg to read secret-bundles") {
            &["analysis", "doctor: function"]
        } else if removed.contains("webapp-dg to manage objects") {
            &["upload", "doctor: bucket access"]
        } else if removed.contains("webapp-dg to read buckets") {
            &["doctor: object events"]
        } else if removed.contains("webapp-dg to read secret-bundles") {
            &["web app start", "doctor: database password"]
        } else if removed.contains("webapp-dg to use fn-invocation") {
            &["re-analysis", "doctor: function"]
        } else if removed.contains("webapp-dg to use ai-service-vision-family") {
            &["doctor: vision"]
        } else {
            panic!("a statement this test does not know: {removed}");
        };
        for feature in expected {
            if !features.contains(feature) {
                failures.push(format!(
                    "without `{removed}`, {feature} still works ({features:?})"
                ));
            }
        }
        if deploy_only && !features.is_empty() {
            failures.push(format!(
                "without `{removed}` (not emulated) something broke: {features:?}"
            ));
        }
        table.push_str(&format!(
            "| `{}` | {} | {} |\n",
            label(removed),
            if deploy_only {
                "nothing locally (not emulated: needed at deployment)".to_string()
            } else {
                features.join(", ")
            },
            if deploy_only {
                "—".to_string()
            } else {
                seen.join("; ").replace('|', "\\|")
            }
        ));
    }
    println!("\n{table}");
    assert!(failures.is_empty(), "{failures:#?}\n{table}");
}
