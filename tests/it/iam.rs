//! IAM ablation: the whole product (the `webapp` and `func` binaries against the emulator, the
//! web app as its container instance, the function with its resource principal) run once under
//! every statement of terraform/policies.tpl, then once per statement with that one removed.
//! Each run exercises every feature (doctor, upload, analysis, gallery, re-analysis, delete) and
//! notes what differs from the full policy and how the product shows it; the test prints the
//! table (`cargo test --test it iam:: -- --nocapture`; docs/EMULATOR.md has a copy). It fails
//! unless, per removed statement, the emulator refused exactly the call that statement grants
//! (that caller, that service, the status and code OCI's IAM answers) and nothing else, or, for
//! the Events statement, delivered no event; and unless the features that rely on it break.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ocivision::doctor::{self, Verdict};
use ocivision::emulator::events::{DeliveryResult, EventBus};
use ocivision::emulator::faults::Service;
use ocivision::emulator::{EmulatorConfig, Recorded};
use ocivision::local::{Function, Role};
use serde_json::Value;

use crate::support::emulator::{func_env, Env, FixedDetector, FUNCTION_ID, USER};

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

    /// How many calls the function has finished (the fdk's line for each, however it ended).
    fn finished_calls(&self) -> usize {
        let log = self.log.lock().unwrap();
        log.lines()
            .filter(|l| l.contains(" fdk: call "))
            .filter(|l| {
                [" ok in ", " failed in ", " gave up in "]
                    .iter()
                    .any(|end| l.contains(end))
            })
            .count()
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
    /// Event deliveries the function answered.
    delivered: usize,
    /// Every signed call the emulator answered, with who made it.
    calls: Vec<Call>,
}

/// Who signed a call: the function (its resource-principal token) or the web app (its API key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    Function,
    WebApp,
}

/// One signed call as the emulator recorded it.
#[derive(Debug)]
struct Call {
    caller: Caller,
    service: Service,
    method: String,
    target: String,
    status: u16,
    code: Option<String>,
}

impl Call {
    fn from_record(r: &Recorded) -> Option<Call> {
        let auth = r.header("authorization")?;
        let caller = if auth.contains("keyId=\"ST$") {
            Caller::Function
        } else if auth.contains(&format!("/{USER}/")) {
            Caller::WebApp
        } else {
            return None;
        };
        Some(Call {
            caller,
            service: r.service?,
            method: r.method.clone(),
            target: r.target.clone(),
            status: r.status,
            code: r.code.clone(),
        })
    }

    fn describe(&self) -> String {
        format!(
            "{:?} {} {} → {} {}",
            self.caller,
            self.method,
            self.target,
            self.status,
            self.code.as_deref().unwrap_or("(no body)")
        )
    }

    /// How IAM refuses on OCI: `404 NotAuthorizedOrNotFound`, Object Storage's `404
    /// BucketNotFound`, or a HEAD's bare 404.
    fn refused(&self) -> bool {
        self.status == 404
            && match self.code.as_deref() {
                Some(code) => code == "NotAuthorizedOrNotFound" || code == "BucketNotFound",
                None => self.method == "HEAD",
            }
    }
}

/// What must be refused once a statement is removed, as the emulator answers it.
#[derive(Debug, Clone, Copy)]
enum Denial {
    /// Nothing: the statement covers what the emulator does not model.
    Nothing,
    /// `caller`'s calls to `service`: a `method` call answered `status` with `code` (the call
    /// the statement is for), and any other refused in the same way (a HEAD without a body).
    Call {
        caller: Caller,
        service: Service,
        method: &'static str,
        status: u16,
        code: Option<&'static str>,
    },
    /// Every event delivery to the function.
    Events,
}

impl Denial {
    /// Whether `call` is to the service this denial is about, by its caller.
    fn concerns(&self, call: &Call) -> bool {
        match *self {
            Denial::Call {
                caller, service, ..
            } => call.caller == caller && call.service == service,
            _ => false,
        }
    }
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
        // Terraform's event rule fires for uploads only (terraform/events.tf): the doctor's
        // function probe, deleted as soon as it is answered, raises no event to race it.
        stack.emulator.event_prefix = Some("uploads/".into());
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
            use_the_web_app(&Http { addr }, &mut run, &function, env.emulator.events());
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
    let deliveries = env.emulator.events().deliveries();
    let count =
        |f: fn(&DeliveryResult) -> bool| deliveries.iter().filter(|d| f(&d.outcome)).count();
    run.undelivered = count(|o| *o == DeliveryResult::NotAuthorized);
    run.delivered = count(|o| matches!(o, DeliveryResult::Answered(_)));
    run.calls = env
        .emulator
        .requests()
        .iter()
        .filter_map(Call::from_record)
        .collect();
    run
}

/// Upload, analysis, re-analysis, gallery and delete, through the web app's JSON API.
fn use_the_web_app(http: &Http, run: &mut Run, function: &Logged, events: &EventBus) {
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
        // The analysis: event → function → Vision → document. Once the event is handled (or
        // refused) the image's state is final.
        assert!(
            events.wait_idle(Duration::from_secs(60)),
            "the upload's event is handled"
        );
        let (_, page) = http.call("GET", "/api/images", &[], b"");
        let last = page["items"]
            .as_array()
            .and_then(|items| items.iter().find(|i| i["id"] == id.as_str()).cloned())
            .unwrap_or(Value::Null);
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
        let calls_before = function.finished_calls();
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
        if status == 202 {
            // The invocation is detached: let it end before the image is deleted under it.
            let end = Instant::now() + Duration::from_secs(60);
            while function.finished_calls() == calls_before {
                assert!(Instant::now() < end, "the re-analysis call ends");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
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
    let refused: Vec<String> = full
        .calls
        .iter()
        .filter(|c| c.refused())
        .map(Call::describe)
        .collect();
    assert!(
        refused.is_empty(),
        "under the full policy nothing is refused: {refused:#?}"
    );
    assert!(
        full.undelivered == 0 && full.delivered > 0,
        "under the full policy events reach the function: {full:#?}"
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
        let (expected, denial) = expectations(removed);
        let deploy_only = matches!(denial, Denial::Nothing);
        check_denial(&full, &run, removed, denial, &mut failures);
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

/// The features that break without `removed`, and the refusal that breaks them. Statements for
/// what the emulator does not model (pulling images, attaching to the VCN) break nothing
/// locally; every other statement must break something.
fn expectations(removed: &str) -> (&'static [&'static str], Denial) {
    const REFUSED: Option<&str> = Some("NotAuthorizedOrNotFound");
    const NO_BUCKET: Option<&str> = Some("BucketNotFound");
    let call = |caller, service, method, code| Denial::Call {
        caller,
        service,
        method,
        status: 404,
        code,
    };
    use Caller::{Function, WebApp};
    if removed.contains(" repos ") || removed.contains("virtual-network-family") {
        (&[], Denial::Nothing)
    } else if removed.contains("func-dg to read objects") {
        (
            &["analysis"],
            call(Function, Service::ObjectStorage, "GET", NO_BUCKET),
        )
    } else if removed.contains("func-dg to use ai-service-vision-family") {
        (
            &["analysis"],
            call(Function, Service::Vision, "POST", REFUSED),
        )
    } else if removed.contains("cloudEvents") {
        (&["analysis"], Denial::Events)
    } else if removed.contains("func-dg to read secret-bundles") {
        (
            &["analysis", "doctor: function"],
            call(Function, Service::Secrets, "GET", REFUSED),
        )
    } else if removed.contains("webapp-dg to manage objects") {
        (
            &["upload", "doctor: bucket access"],
            call(WebApp, Service::ObjectStorage, "PUT", NO_BUCKET),
        )
    } else if removed.contains("webapp-dg to read buckets") {
        (
            &["doctor: object events"],
            call(WebApp, Service::ObjectStorage, "GET", NO_BUCKET),
        )
    } else if removed.contains("webapp-dg to read secret-bundles") {
        (
            &["web app start", "doctor: database password"],
            call(WebApp, Service::Secrets, "GET", REFUSED),
        )
    } else if removed.contains("webapp-dg to use fn-invocation") {
        (
            &["re-analysis", "doctor: function"],
            call(WebApp, Service::Functions, "POST", REFUSED),
        )
    } else if removed.contains("webapp-dg to use ai-service-vision-family") {
        (
            &["doctor: vision"],
            call(WebApp, Service::Vision, "POST", REFUSED),
        )
    } else {
        panic!("a statement this test does not know: {removed}");
    }
}

/// Whether the run without `removed` saw exactly `denial`: that call refused as OCI's IAM
/// answers it (and the same call served under the full policy), no other call refused, and
/// events undelivered only when the Events statement is the one removed.
fn check_denial(full: &Run, run: &Run, removed: &str, denial: Denial, failures: &mut Vec<String>) {
    let refused: Vec<&Call> = run.calls.iter().filter(|c| c.refused()).collect();
    let list = |calls: &mut dyn Iterator<Item = &Call>| {
        calls.map(Call::describe).collect::<Vec<_>>().join("; ")
    };
    if let Denial::Call {
        method,
        status,
        code,
        ..
    } = denial
    {
        let exact = |c: &&Call| {
            denial.concerns(c)
                && c.method == method
                && (c.status, c.code.as_deref()) == (status, code)
        };
        // The statement's other calls to the same service, refused alike (a HEAD bare).
        let alike = |c: &&Call| {
            denial.concerns(c)
                && c.status == status
                && c.code.as_deref() == if c.method == "HEAD" { None } else { code }
        };
        if !refused.iter().any(exact) {
            failures.push(format!(
                "without `{removed}`, no {denial:?} was refused: {}",
                list(&mut run.calls.iter().filter(|c| denial.concerns(c)))
            ));
        }
        if !full
            .calls
            .iter()
            .any(|c| denial.concerns(c) && c.method == method && c.status < 300)
        {
            failures.push(format!(
                "under the full policy no {denial:?} was served (so its refusal proves nothing)"
            ));
        }
        // Vision reads an OBJECT_STORAGE image with its caller's grant: without the function's
        // `read objects`, Vision refuses the function's analyses too.
        let vision_reads = Denial::Call {
            caller: Caller::Function,
            service: Service::Vision,
            method: "POST",
            status: 404,
            code: Some("NotAuthorizedOrNotFound"),
        };
        let through_vision = |c: &&Call| {
            removed.contains("func-dg to read objects")
                && vision_reads.concerns(c)
                && c.status == 404
        };
        let others = list(
            &mut refused
                .iter()
                .copied()
                .filter(|c| !alike(c) && !through_vision(c)),
        );
        if !others.is_empty() {
            failures.push(format!("without `{removed}`, more was refused: {others}"));
        }
    } else if !refused.is_empty() {
        failures.push(format!(
            "without `{removed}`, calls were refused: {}",
            list(&mut refused.iter().copied())
        ));
    }
    let events_denied = matches!(denial, Denial::Events);
    if events_denied && (run.undelivered == 0 || run.delivered > 0) {
        failures.push(format!(
            "without `{removed}`, events still reached the function ({} delivered, {} refused)",
            run.delivered, run.undelivered
        ));
    }
    if !events_denied && run.undelivered > 0 {
        failures.push(format!(
            "without `{removed}`, {} event deliveries were refused",
            run.undelivered
        ));
    }
}
