//! The reconciler lease over loopback against the emulator: two instances racing get one pass;
//! a pass longer than the lease keeps it by renewing; a `webapp reconcile` process killed in the
//! middle of its pass blocks others only until its lease expires.

use std::sync::{Arc, Barrier};
use std::time::Duration;

use ocivision::emulator::faults::{FaultPlan, Service};
use ocivision::emulator::Recorded;
use ocivision::web::{App, ReconcileReport, Settings};
use serde_json::Value;

use crate::support::emulator::{deadline, Env};
use crate::support::wait_until;
use crate::support::web::COLLECTION;

const DOG: &[u8] = include_bytes!("../fixtures/photos/dog.jpg");

/// One web-app instance of a deployment on `env` (several may share it).
fn instance(env: &Env, lease: Duration) -> App {
    App::new(
        env.object_storage(),
        env.bucket(),
        env.soda(COLLECTION),
        None,
        Settings {
            reconcile_grace: Duration::ZERO,
            reconcile_lease: lease,
            ..Settings::default()
        },
    )
}

fn deployment(tag: &str, orphans: usize) -> Arc<Env> {
    let env = Env::start(tag);
    env.soda(COLLECTION)
        .ensure_collection(deadline(5))
        .expect("collection");
    for n in 0..orphans {
        env.put_object(&orphan(n), DOG, &[]);
    }
    Arc::new(env)
}

/// An image object without a document: work for the reconciler.
fn orphan(n: usize) -> String {
    format!("uploads/0000000000b00000000000{n:02x}.jpg")
}

fn slow_object_storage(env: &Env, latency: Duration) {
    let spec = format!("objectstorage=latency:{}ms", latency.as_millis());
    env.emulator.set_faults(FaultPlan::parse(&spec).unwrap());
}

fn is_listing(r: &Recorded) -> bool {
    r.service == Some(Service::ObjectStorage) && r.method == "GET" && r.target.contains("/o?")
}

/// The lease document as stored, found by its `kind` (its key is the app's business).
fn lease_document(env: &Env) -> Option<Value> {
    env.soda(COLLECTION)
        .list(deadline(5))
        .map(|d| d.expect("the collection lists").value)
        .find(|v| v["kind"] == "reconciler-lease")
}

/// The holder named in the lease document while it is held and unexpired.
fn current_holder(env: &Env) -> Option<String> {
    let doc = lease_document(env)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let holder = doc["holder"].as_str()?;
    (doc["expires_at_ms"].as_u64()? > now).then(|| holder.to_string())
}

#[test]
fn lease_two_racing_reconcilers_make_one_pass() {
    let env = deployment("lease-race", 2);
    let a = Arc::new(instance(&env, Duration::from_secs(10)));
    let b = Arc::new(instance(&env, Duration::from_secs(10)));
    // A listing that takes a while, so the two attempts surely overlap in time.
    slow_object_storage(&env, Duration::from_millis(400));
    for round in 0..3 {
        env.emulator.clear_requests();
        let start = Arc::new(Barrier::new(2));
        let racers: Vec<_> = [&a, &b]
            .into_iter()
            .map(|app| {
                let (app, start) = (Arc::clone(app), Arc::clone(&start));
                std::thread::spawn(move || {
                    start.wait();
                    ocivision::web::reconcile(&app).expect("reconcile")
                })
            })
            .collect();
        let reports: Vec<ReconcileReport> = racers.into_iter().map(|t| t.join().unwrap()).collect();
        let ran: Vec<&ReconcileReport> = reports.iter().filter(|r| r.skipped.is_none()).collect();
        assert_eq!(ran.len(), 1, "round {round}: {reports:?}");
        let skipped = reports.iter().find(|r| r.skipped.is_some()).unwrap();
        assert!(
            skipped
                .skipped
                .as_deref()
                .unwrap()
                .contains("another instance"),
            "{skipped:?}"
        );
        assert_eq!(
            *skipped,
            ReconcileReport {
                skipped: skipped.skipped.clone(),
                ..Default::default()
            }
        );
        let listings = env
            .emulator
            .requests()
            .iter()
            .filter(|r| is_listing(r))
            .count();
        // One pass lists each of its three prefixes once: images, thumbnails, previews.
        assert_eq!(
            listings, 3,
            "round {round}: one pass lists each prefix once"
        );
        if round == 0 {
            assert_eq!(ran[0].created_documents, vec![orphan(0), orphan(1)]);
        } else {
            assert_eq!(
                *ran[0],
                ReconcileReport::default(),
                "nothing left to repair"
            );
        }
    }
    // Free again once nobody runs.
    assert_eq!(current_holder(&env), None);
}

#[test]
fn lease_a_pass_longer_than_the_lease_keeps_it_by_renewing() {
    let env = deployment("lease-renew", 1);
    let lease = Duration::from_secs(1);
    let a = Arc::new(instance(&env, lease));
    let b = instance(&env, lease);
    // A's listing alone outlasts the lease more than twice.
    slow_object_storage(&env, Duration::from_millis(2600));
    let runner = {
        let a = Arc::clone(&a);
        std::thread::spawn(move || ocivision::web::reconcile(&a).expect("reconcile"))
    };
    assert!(
        wait_until(Duration::from_secs(5), || current_holder(&env).is_some()),
        "A takes the lease"
    );
    let holder = current_holder(&env).unwrap();
    // Each expiry A's lease document showed while A held it: renewing moves it on.
    let mut expiries = Vec::new();
    let mut attempts = 0;
    let mut b_ran = None;
    while !runner.is_finished() {
        if let Some(doc) = lease_document(&env).filter(|d| d["holder"] == holder.as_str()) {
            let expiry = doc["expires_at_ms"].as_u64().unwrap();
            if expiries.last() != Some(&expiry) {
                expiries.push(expiry);
            }
        }
        let r = ocivision::web::reconcile(&b).unwrap();
        if r.skipped.is_none() {
            // Only possible if A had just finished: then B found nothing left to repair.
            b_ran = Some(r);
            break;
        }
        attempts += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    let report = runner.join().unwrap();
    // The pass (a 2.6 s listing) outlasted the 1 s lease: A renewed it at least twice, each
    // time to a later expiry.
    assert!(
        expiries.len() >= 3 && expiries.windows(2).all(|w| w[0] < w[1]),
        "A renewed its lease: expiries {expiries:?}"
    );
    assert!(attempts >= 10, "B tried throughout ({attempts} attempts)");
    assert_eq!(report.skipped, None);
    assert!(
        report.errors.is_empty(),
        "A kept its lease: {:?}",
        report.errors
    );
    assert_eq!(report.created_documents, vec![orphan(0)]);
    if let Some(b_report) = b_ran {
        assert_eq!(
            b_report,
            ReconcileReport::default(),
            "B's pass overlapped A's"
        );
    }
    env.emulator.set_faults(FaultPlan::default());
    assert_eq!(current_holder(&env), None, "released at the end");
    assert_eq!(ocivision::web::reconcile(&b).unwrap().skipped, None);
}

#[test]
fn lease_a_crashed_holder_blocks_others_only_until_its_lease_expires() {
    let env = deployment("lease-crash", 2);
    // The victim: `webapp reconcile` with a 2 s lease, stuck in a slow listing when killed.
    slow_object_storage(&env, Duration::from_secs(8));
    let mut victim = std::process::Command::new(env!("CARGO_BIN_EXE_webapp"))
        .arg("reconcile")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.wiring().webapp_env())
        .env("RECONCILE_LEASE_SECS", "2")
        .env("LOG_LEVEL", "warn")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn webapp reconcile");
    let taken = wait_until(Duration::from_secs(15), || current_holder(&env).is_some());
    let holder = current_holder(&env);
    victim.kill().unwrap();
    victim.wait().unwrap();
    assert!(taken, "the victim takes the lease");
    env.emulator.set_faults(FaultPlan::default());

    let survivor = instance(&env, Duration::from_secs(2));
    let first = ocivision::web::reconcile(&survivor).unwrap();
    assert!(
        first
            .skipped
            .as_deref()
            .is_some_and(|why| why.contains(holder.as_deref().unwrap())),
        "right after the crash the lease is still the victim's: {first:?}"
    );
    let mut report = None;
    let took_over = wait_until(Duration::from_secs(8), || {
        let r = ocivision::web::reconcile(&survivor).unwrap();
        let ran = r.skipped.is_none();
        report = Some(r);
        ran
    });
    assert!(took_over, "the lease expired and was taken: {report:?}");
    let report = report.unwrap();
    assert_eq!(report.created_documents, vec![orphan(0), orphan(1)]);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
}
