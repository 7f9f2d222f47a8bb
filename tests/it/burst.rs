//! Issue 17 (https://github.com/ocivision/ocivision/issues/17), small: a burst of uploads
//! against the emulator's rate-limited Vision, delivered to several real `func` processes at
//! once. Paced through the shared pacer document, nothing fails and Vision sees about one
//! request per image; with pacing off the limit really refuses, and throttled images wait
//! instead of failing; with a short patience the function defers images (`waiting`, with their
//! next attempt) rather than queueing them. The full-size figures come from
//! `loadtest --burst` (docs/SCALING.md), not from here.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ocivision::document::{AnalysisDocument, Status};

use crate::support::emulator::{func_env, Env, FixedDetector, FuncProcess, FUNCTION_ID};

const DOG: &[u8] = include_bytes!("../fixtures/photos/dog.jpg");

/// An emulator with Vision limited to `tps`, and `instances` function processes receiving its
/// events, each run with the extra settings `vars` (e.g. `VISION_TPS`).
fn start(tag: &str, tps: f64, instances: usize, vars: &[(&str, &str)]) -> (Env, Vec<FuncProcess>) {
    let env = Env::start_with(tag, |config| {
        config.vision_tps = Some(tps);
        config.function_instances = instances;
    });
    env.emulator
        .set_detector(Some(Arc::new(FixedDetector::default())));
    // Once: it writes the token file every instance reads.
    let base_vars = func_env(&env);
    let mut functions = Vec::new();
    for i in 0..instances {
        let home = env.dir.path().join(format!("instance-{i}"));
        std::fs::create_dir_all(&home).unwrap();
        let socket = home.join("lsnr.sock");
        let mut env_vars = base_vars.clone();
        for (name, value) in env_vars.iter_mut() {
            if name == "FN_LISTENER" {
                *value = format!("unix:{}", socket.display());
            }
        }
        env_vars.extend(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_func"))
            .env_clear()
            .envs(env_vars)
            .stdin(std::process::Stdio::null())
            .spawn()
            .expect("start func");
        functions.push(FuncProcess {
            child,
            socket,
            ready_after: Duration::ZERO,
        });
    }
    let started = Instant::now();
    for f in &functions {
        while std::fs::symlink_metadata(&f.socket).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "a func did not create its socket"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let sockets: Vec<PathBuf> = functions.iter().map(|f| f.socket.clone()).collect();
    env.emulator
        .register_function_instances(FUNCTION_ID, sockets, true);
    (env, functions)
}

/// Uploads `count` images and waits until every event is handled.
fn burst(env: &Env, count: usize) {
    for i in 0..count {
        env.put_object(&format!("uploads/burst-{i:03}.jpg"), DOG, &[]);
    }
    assert!(
        env.emulator.events().wait_idle(Duration::from_secs(120)),
        "events still pending after 120 s"
    );
}

/// Every image's document, by object name (the pacer's document left out).
fn documents(env: &Env) -> BTreeMap<String, AnalysisDocument> {
    env.soda("IMAGE_ANALYSIS")
        .list(crate::support::emulator::deadline(30))
        .map(Result::unwrap)
        .filter(|d| d.value.get("kind").is_none())
        .map(|d| {
            let doc = AnalysisDocument::from_json(d.value).unwrap();
            (doc.image_name.clone(), doc)
        })
        .collect()
}

fn count(docs: &BTreeMap<String, AnalysisDocument>, status: Status) -> usize {
    docs.values().filter(|d| d.status == status).count()
}

#[test]
fn issue_17_a_paced_burst_ends_done_with_one_vision_request_per_image() {
    let (env, _functions) = start("burst-paced", 20.0, 10, &[("VISION_TPS", "20")]);
    burst(&env, 200);
    let docs = documents(&env);
    assert_eq!(docs.len(), 200);
    assert_eq!(count(&docs, Status::Done), 200, "{docs:?}");
    let vision = env.emulator.vision_counts();
    assert!(
        vision.requests as f64 <= 1.2 * 200.0,
        "{} Vision requests for 200 images ({} refused)",
        vision.requests,
        vision.throttled
    );
    // The events really were handled by several function processes (one delivery thread
    // per instance, each calling its own), every event answered once...
    let answered = env.emulator.events().answered_per_instance();
    assert!(
        answered.iter().filter(|&&calls| calls > 0).count() >= 2,
        "calls answered per instance: {answered:?}"
    );
    assert_eq!(answered.iter().sum::<u64>(), 200, "{answered:?}");
    // ...and they took their slots from one shared document.
    let pacer = env
        .soda("IMAGE_ANALYSIS")
        .get("vision-pacer", crate::support::emulator::deadline(5))
        .unwrap()
        .expect("the pacer's document");
    assert_eq!(pacer.value["kind"], "vision-pacer");
    assert!(pacer.value["next_slot_us"].as_u64().unwrap() > 0);
}

#[test]
fn issue_17_unpaced_instances_are_refused_by_the_limit_and_wait_instead_of_failing() {
    // Pacing off: ten instances call Vision as fast as the instant detector answers.
    let (env, _functions) = start("burst-unpaced", 5.0, 10, &[("VISION_TPS", "0")]);
    burst(&env, 60);
    let vision = env.emulator.vision_counts();
    assert!(
        vision.throttled > 0,
        "the limit refused nothing: {vision:?}"
    );
    let docs = documents(&env);
    assert_eq!(docs.len(), 60);
    assert_eq!(count(&docs, Status::Failed), 0, "{docs:?}");
    assert_eq!(
        count(&docs, Status::Done) + count(&docs, Status::Waiting),
        60
    );
    for doc in docs.values().filter(|d| d.status == Status::Waiting) {
        assert!(doc.next_attempt.is_some(), "{doc:?}");
        assert!(doc.error.is_none(), "{doc:?}");
    }
}

#[test]
fn issue_17_an_instance_that_cannot_get_a_slot_in_time_defers_the_image() {
    // Ten instances at 2 a second queue up to 5 s; they may wait 1 s.
    let (env, _functions) = start(
        "burst-defer",
        2.0,
        10,
        &[("VISION_TPS", "2"), ("VISION_MAX_WAIT", "1")],
    );
    burst(&env, 30);
    let docs = documents(&env);
    assert_eq!(docs.len(), 30);
    let waiting: Vec<&AnalysisDocument> = docs
        .values()
        .filter(|d| d.status == Status::Waiting)
        .collect();
    assert!(!waiting.is_empty(), "nothing deferred: {docs:?}");
    assert_eq!(count(&docs, Status::Done) + waiting.len(), 30);
    for doc in waiting {
        // A deferral is not an attempt: the image never reached Vision.
        assert_eq!(doc.attempts, 0, "{doc:?}");
        assert!(doc.next_attempt.is_some(), "{doc:?}");
    }
    let vision = env.emulator.vision_counts();
    assert_eq!(vision.throttled, 0, "paced: {vision:?}");
    assert_eq!(vision.requests as usize, count(&docs, Status::Done));
}

#[test]
fn issue_17_sustained_429s_leave_the_image_waiting_and_the_call_successful() {
    use ocivision::emulator::events::DeliveryResult;
    use ocivision::emulator::faults::FaultPlan;
    let (env, _functions) = start("burst-429", 100.0, 1, &[("VISION_TPS", "10")]);
    // Another caller in the tenancy takes every request Vision allows.
    env.emulator
        .set_faults(FaultPlan::parse("vision=rate:1.0,status:429").unwrap());
    burst(&env, 1);
    let docs = documents(&env);
    let doc = docs.values().next().expect("a document");
    assert_eq!(doc.status, Status::Waiting, "{doc:?}");
    assert!(doc.next_attempt.is_some() && doc.error.is_none(), "{doc:?}");
    assert_eq!(doc.attempts, 0, "{doc:?}");
    // Three tries, each in its own slot, then the call answers success: nothing retries it
    // blindly (the reconciler's drip sends it again at `next_attempt`).
    assert_eq!(env.emulator.vision_counts().requests, 3);
    let outcomes: Vec<DeliveryResult> = env
        .emulator
        .events()
        .deliveries()
        .into_iter()
        .map(|d| d.outcome)
        .collect();
    assert_eq!(outcomes, [DeliveryResult::Answered(200)]);
}

#[test]
fn issue_17_the_reconciler_drips_due_waiting_images_and_the_gallery_shows_them_waiting() {
    use crate::support::emulator::deadline;
    use crate::support::web::{body_text, Web};
    let settings = ocivision::web::Settings {
        reconcile_grace: Duration::ZERO,
        ..ocivision::web::Settings::default()
    };
    let web = Web::start("burst-drip", settings, true);
    let png = |tag: &[u8]| crate::support::photos::png(40, 40, tag);
    let due = web.upload("due.png", &png(b"due"));
    let later = web.upload("later.png", &png(b"later"));
    let defer = |id: &str, at: &str| {
        let mut doc = web.document(id).unwrap();
        doc.status = Status::Waiting;
        doc.next_attempt = Some(at.into());
        web.soda
            .put(&web.key(id), &doc.to_json(), deadline(5))
            .unwrap();
    };
    defer(&due, "2020-01-01T00:00:00.000Z");
    defer(&later, "2999-01-01T00:00:00.000Z");
    let page = body_text(&web.handle("GET", "/", &[], b""));
    assert!(
        page.contains("waiting · next try 2999-01-01 00:00:00 UTC"),
        "{page}"
    );
    assert_eq!(page.matches("data-status=\"waiting\"").count(), 2, "{page}");
    assert!(
        !page.contains("class=\"badge failed"),
        "waiting is not failed: {page}"
    );
    let status = web.get(&format!("/api/status?ids={later}")).json();
    assert_eq!(status["items"][&later]["status"], "waiting");

    let report = ocivision::web::reconcile(&web.app).unwrap();
    assert_eq!(report.invoked, [Web::object_name(&due)], "{report:?}");
    let sent = web.document(&due).unwrap();
    assert_eq!(sent.status, Status::Pending);
    assert_eq!(sent.next_attempt, None);
    assert_eq!(web.document(&later).unwrap().status, Status::Waiting);
}
