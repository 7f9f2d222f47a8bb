//! Issue 24: the cloud behaviours no Oracle source confirms, each reproduced by an emulator
//! switch (`src/emulator/switches.rs`): the doctor reports it and the app's fallback holds.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ocivision::emulator::{Switches, WEB_APP_INSTANCE_ID};
use ocivision::oci::auth::{KeyProvider, ResourcePrincipalProvider};
use ocivision::oci::client::{Auth, Transport};
use ocivision::oci::keys::PrivateKey;
use ocivision::oci::object_storage::ObjectStorage;
use ocivision::web::Settings;

use crate::support::emulator::{deadline, fast_retries, Env};
use crate::support::web::Web;

/// A second RSA key (the signing fixtures' extra key set) for the 2.1.x resource principals.
fn rp_key_pem() -> String {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/oci-signing-vectors.json"
    ))
    .unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json["extra_key_sets"][0]["key_pem_pkcs8"]
        .as_str()
        .unwrap()
        .to_string()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

const PHOTO: &[u8] = include_bytes!("../fixtures/photos/dog.jpg");

#[test]
fn a_lost_reply_on_the_image_put_loses_no_upload() {
    let web = Web::start("deploy-lost-reply", Settings::default(), false);
    web.env.emulator.set_switches(Switches {
        lose_put_replies: 1,
        ..Switches::default()
    });
    web.env.emulator.clear_requests();
    // The first PUT is stored and its reply lost; the transport's retry gets 412 (the object
    // exists), and the upload still answers 201 because the object carries its request id.
    let id = web.upload("lost-reply.jpg", PHOTO);
    assert_eq!(
        web.env.emulator.switches().lose_put_replies,
        0,
        "a reply was lost"
    );
    let name = Web::object_name(&id);
    let puts: Vec<u16> = web
        .env
        .emulator
        .requests()
        .iter()
        .filter(|r| r.method == "PUT" && r.target.contains("/o/uploads") && r.target.contains(&id))
        .map(|r| r.status)
        .collect();
    assert_eq!(
        puts,
        vec![0, 412],
        "stored with the reply dropped, then refused"
    );
    let info = web
        .env
        .object_storage()
        .head(&web.env.bucket(), &name, deadline(5))
        .unwrap();
    assert!(info.is_some(), "the object was not withdrawn");
    let doc = web.document(&id).expect("the pending document was kept");
    assert_eq!(doc.image_name, name);
}

#[test]
fn an_invoke_that_reached_the_service_is_not_sent_again() {
    use ocivision::emulator::faults::Service;
    use ocivision::oci::functions::{Functions, InvokeMode};

    let web = Web::start("deploy-invoke-once", Settings::default(), true);
    let functions = Functions::new(web.env.transport.clone(), web.env.emulator.base_url());
    web.env.emulator.fail_next(Service::Functions, 1, 503);
    web.env.emulator.clear_requests();
    let sent = functions.invoke(
        crate::support::web::FUNCTION_ID,
        b"{}",
        InvokeMode::Sync,
        1024,
        deadline(10),
    );
    assert_eq!(
        sent.unwrap_err().service_error().map(|e| e.status),
        Some(503)
    );
    let invokes = web
        .env
        .emulator
        .requests()
        .iter()
        .filter(|r| r.target.ends_with("/actions/invoke"))
        .count();
    assert_eq!(
        invokes, 1,
        "a 503 from Functions is not retried (the function may have run)"
    );
    // Other calls on the same transport still retry a 503.
    web.env.emulator.fail_next(Service::ObjectStorage, 1, 503);
    assert!(web
        .env
        .object_storage()
        .head(&web.env.bucket(), "uploads/none", deadline(10))
        .unwrap()
        .is_none());
}

/// The environment of a container instance whose platform sets resource principal `version`
/// 2.1.x: a resource id and a key, the token to be exchanged at the emulator.
fn rp21_env(env: &Env, version: &str) -> Vec<(String, String)> {
    let key = PrivateKey::from_pem(&rp_key_pem(), "rp key").unwrap();
    env.emulator
        .trust_resource_key(version, &key, env.emulator.web_app_principal());
    let base = env.emulator.base_url();
    [
        ("OCI_RESOURCE_PRINCIPAL_VERSION", version.to_string()),
        ("OCI_RESOURCE_PRINCIPAL_RPT_ENDPOINT", base.to_string()),
        ("OCI_RESOURCE_PRINCIPAL_RPST_ENDPOINT", base.to_string()),
        (
            "OCI_RESOURCE_PRINCIPAL_RESOURCE_ID",
            WEB_APP_INSTANCE_ID.to_string(),
        ),
        (
            "OCI_RESOURCE_PRINCIPAL_TENANCY_ID",
            env.emulator.tenancy_id().to_string(),
        ),
        ("OCI_RESOURCE_PRINCIPAL_PRIVATE_PEM", rp_key_pem()),
        ("OCI_RESOURCE_PRINCIPAL_REGION", "us-ashburn-1".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

fn lookup_in(pairs: &[(String, String)]) -> impl Fn(&str) -> Option<String> + '_ {
    move |name| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }
}

fn exchanges(env: &Env) -> usize {
    env.emulator
        .requests()
        .iter()
        .filter(|r| r.target == "/v1/resourcePrincipalSessionToken" && r.status == 200)
        .count()
}

#[test]
fn resource_principal_2_1_x_exchanges_its_token_and_renews_it_before_expiry() {
    let env = Env::start("deploy-rp21");
    for version in ["2.1", "2.1.1", "2.1.2"] {
        let vars = rp21_env(&env, version);
        env.emulator.clear_requests();
        let provider = ResourcePrincipalProvider::from_env(lookup_in(&vars))
            .unwrap_or_else(|e| panic!("{version}: {e}"));
        assert_eq!(provider.version(), version);
        assert_eq!(exchanges(&env), 1, "{version}: one exchange at start");
        let claims = provider.claims();
        assert_eq!(claims.res_type.as_deref(), Some("computecontainerinstance"));
        let rpt_path = if version == "2.1.2" {
            "/20180711/resourcePrincipalTokenV212/"
        } else {
            "/20180711/resourcePrincipalTokenV2/"
        };
        assert!(
            env.emulator
                .requests()
                .iter()
                .any(|r| r.target.starts_with(rpt_path) && r.status == 200),
            "{version}: the token asked for at {rpt_path}"
        );

        // The exchanged token works: the web app's principal lists its bucket.
        let now = Arc::new(AtomicU64::new(unix_now()));
        let clock_now = Arc::clone(&now);
        let provider = Arc::new(provider.with_clock(Arc::new(move || {
            UNIX_EPOCH + Duration::from_secs(clock_now.load(Ordering::SeqCst))
        })));
        let transport = Transport::new(Auth::Oci(provider.clone()), fast_retries(2));
        let storage = ObjectStorage::new(transport, env.emulator.base_url());
        let first = provider.credentials().unwrap().key_id;
        storage
            .list(&env.bucket(), Default::default(), deadline(5))
            .next()
            .transpose()
            .unwrap_or_else(|e| panic!("{version}: {e}"));
        assert_eq!(
            exchanges(&env),
            1,
            "{version}: the token is kept while valid"
        );

        // Four minutes before expiry (inside the five-minute margin) the token is renewed.
        now.store(claims.exp - 240, Ordering::SeqCst);
        let second = provider.credentials().unwrap().key_id;
        assert_ne!(first, second, "{version}: renewed before expiry");
        assert_eq!(exchanges(&env), 2, "{version}");
    }
}

#[test]
fn without_an_etag_on_put_the_lease_reads_its_version_back() {
    let web = Web::start("deploy-no-etag", Settings::default(), false);
    web.env.emulator.set_switches(Switches {
        ords_no_etag: true,
        ..Switches::default()
    });
    let probe = ocivision::ords_probe::conditional_writes(&web.soda, deadline(10)).unwrap();
    assert!(!probe.put_etag && probe.conditions_honoured(), "{probe:?}");
    // Each pass takes the lease, and frees it with the version it read back: the next pass
    // finds it free. (Without the read-back the free fails and the second pass is skipped.)
    for pass in 0..2 {
        let report = ocivision::web::reconcile(&web.app).unwrap();
        assert_eq!(report.skipped, None, "pass {pass}");
        assert!(report.errors.is_empty(), "pass {pass}: {:?}", report.errors);
    }
}

#[test]
fn with_conditions_ignored_only_the_designated_instance_reconciles() {
    use ocivision::web::{reconciler_runs_here, App, RECONCILER_DESIGNATED};

    let web = Web::start("deploy-ignored", Settings::default(), false);
    web.env.emulator.set_switches(Switches {
        ords_ignores_conditions: true,
        ..Switches::default()
    });
    let probe = ocivision::ords_probe::conditional_writes(&web.soda, deadline(10)).unwrap();
    assert!(!probe.conditions_honoured(), "{probe:?}");
    assert!(!probe.if_none_match_refused && !probe.stale_if_match_refused);
    let second = Arc::new(App::new(
        web.env.object_storage(),
        web.env.bucket(),
        web.env.soda(crate::support::web::COLLECTION),
        None,
        Settings::default(),
    ));
    let designated = |value: &'static str| {
        move |name: &str| (name == RECONCILER_DESIGNATED).then(|| value.to_string())
    };
    let instances = [
        (
            Arc::clone(&web.app),
            reconciler_runs_here(&web.app, &designated("true")),
        ),
        (
            Arc::clone(&second),
            reconciler_runs_here(&second, &designated("false")),
        ),
    ];
    assert_eq!(
        instances.iter().map(|(_, runs)| *runs).collect::<Vec<_>>(),
        vec![true, false],
        "the probe finds conditions ignored: only the designated instance reconciles"
    );
    // Configuration overrides the probe: `on` trusts the lease on every instance.
    let on = |name: &str| (name == "ORDS_CONDITIONAL_WRITES").then(|| "on".to_string());
    assert!(reconciler_runs_here(&second, &on));

    // Both instances run their schedules at once; passes are recorded as (start, end).
    let passes = Arc::new(std::sync::Mutex::new(Vec::new()));
    std::thread::scope(|scope| {
        for (app, runs) in &instances {
            let passes = Arc::clone(&passes);
            scope.spawn(move || {
                if !runs {
                    return;
                }
                for _ in 0..5 {
                    let started = std::time::Instant::now();
                    let report = ocivision::web::reconcile(app).unwrap();
                    if report.skipped.is_none() {
                        passes
                            .lock()
                            .unwrap()
                            .push((started, std::time::Instant::now()));
                    }
                }
            });
        }
    });
    let mut passes = passes.lock().unwrap().clone();
    passes.sort();
    assert_eq!(passes.len(), 5, "the designated instance ran every pass");
    let lease = Settings::default().reconcile_lease;
    for pair in passes.windows(2) {
        let overlap = pair[0].1.saturating_duration_since(pair[1].0);
        assert!(overlap <= lease, "passes overlap by {overlap:?}");
    }
}

/// `webapp doctor` against a local stack with `switches`, and the environment `changes`.
fn doctor_under(
    stack: &ocivision::local::LocalStack,
    switches: Switches,
    changes: &[(&str, Option<String>)],
) -> (Vec<ocivision::doctor::Check>, String, bool) {
    stack.emulator.set_switches(switches);
    let mut env: std::collections::HashMap<String, String> =
        stack.wiring().webapp_env().into_iter().collect();
    env.insert("DOCTOR_DELIVERY_WAIT".into(), "30".into());
    for (name, value) in changes {
        match value {
            Some(v) => env.insert(name.to_string(), v.clone()),
            None => env.remove(*name),
        };
    }
    let checks = ocivision::doctor::run(&|name| env.get(name).cloned());
    let (table, ok) = ocivision::doctor::render(&checks);
    stack.emulator.set_switches(Switches::default());
    (checks, table, ok)
}

fn verdict_of<'a>(
    checks: &'a [ocivision::doctor::Check],
    name: &str,
) -> &'a ocivision::doctor::Verdict {
    &checks
        .iter()
        .find(|c| c.name.starts_with(name))
        .unwrap_or_else(|| panic!("no {name} check in {checks:?}"))
        .verdict
}

fn failed(checks: &[ocivision::doctor::Check], name: &str) -> bool {
    matches!(
        verdict_of(checks, name),
        ocivision::doctor::Verdict::Fail { .. }
    )
}

#[test]
fn the_doctor_reports_each_unconfirmed_behaviour_and_the_fallback_in_force() {
    use ocivision::doctor::Verdict;

    let dir = crate::support::emulator::TempDir::new("deploy-doctor");
    let stack = ocivision::local::LocalStack::start(dir.path()).expect("local stack");
    let objects_before = stack.emulator.held().objects;

    // As documented: every probe passes, and everything written is gone again.
    let (checks, table, ok) = doctor_under(&stack, Switches::default(), &[]);
    println!("doctor, plain:\n{table}");
    assert!(ok, "{table}");
    for name in [
        "SODA If-None-Match",
        "SODA stale If-Match",
        "SODA current If-Match",
        "SODA ETag header on PUT",
        "SODA index creation",
        "SODA QBE: equality",
        "SODA QBE: two fields",
        "SODA QBE: $query with $orderby",
        "SODA QBE: array element",
        "SODA QBE: $id list",
        "SODA QBE: marker fields",
        "Vision reads an OBJECT_STORAGE image as the function",
        "end-to-end delivery",
    ] {
        assert_eq!(verdict_of(&checks, name), &Verdict::Pass, "{name}\n{table}");
    }
    assert!(table.contains("observed: present"), "{table}");
    assert!(
        stack.emulator.events().wait_idle(Duration::from_secs(30)),
        "events drained"
    );
    assert_eq!(
        stack.emulator.held().objects,
        objects_before,
        "the doctor's objects are removed"
    );

    // ORDS ignoring conditions: a required assumption fails, with the configuration that
    // switches the fallbacks on; with that configuration it passes.
    let ignored = Switches {
        ords_ignores_conditions: true,
        ..Switches::default()
    };
    let (checks, table, ok) = doctor_under(&stack, ignored, &[]);
    println!("doctor, ords-ignores-conditions:\n{table}");
    assert!(!ok);
    assert!(failed(&checks, "SODA If-None-Match") && failed(&checks, "SODA stale If-Match"));
    assert!(table.contains("ORDS_CONDITIONAL_WRITES=off"), "{table}");
    let off = [
        ("ORDS_CONDITIONAL_WRITES", Some("off".to_string())),
        ("FUNCTION_MAX_INSTANCES", Some("4".to_string())),
    ];
    let (_, table, ok) = doctor_under(&stack, ignored, &off);
    println!("doctor, ords-ignores-conditions with ORDS_CONDITIONAL_WRITES=off:\n{table}");
    assert!(ok, "{table}");
    assert!(table.contains("pacing per instance"), "{table}");

    // No ETag on PUT: reported, and the fallback needs nothing.
    let no_etag = Switches {
        ords_no_etag: true,
        ..Switches::default()
    };
    let (_, table, ok) = doctor_under(&stack, no_etag, &[]);
    println!("doctor, ords-no-etag:\n{table}");
    assert!(ok, "{table}");
    assert!(table.contains("observed: absent — app: reads each conditional write's version back"));

    // Vision refusing the bucket-scoped grant: the function's self-test finds it.
    let broad = Switches {
        vision_broad_read: true,
        ..Switches::default()
    };
    let (checks, table, ok) = doctor_under(&stack, broad, &[]);
    println!("doctor, vision-broad-read:\n{table}");
    assert!(!ok);
    assert!(failed(&checks, "Vision reads an OBJECT_STORAGE image"));
    assert!(
        table.contains("the same image sent inline is analysed"),
        "{table}"
    );
    assert!(table.contains("no bucket condition"), "{table}");

    // Resource principal 2.1 in the environment: the doctor signs with an exchanged token.
    let key = PrivateKey::from_pem(&rp_key_pem(), "rp key").unwrap();
    stack
        .emulator
        .trust_resource_key("2.1", &key, stack.emulator.web_app_principal());
    let base = stack.emulator.base_url().to_string();
    let rp = [
        ("OCI_CONFIG_FILE", None),
        ("OCI_RESOURCE_PRINCIPAL_VERSION", Some("2.1".to_string())),
        ("OCI_RESOURCE_PRINCIPAL_RPT_ENDPOINT", Some(base.clone())),
        ("OCI_RESOURCE_PRINCIPAL_RPST_ENDPOINT", Some(base)),
        (
            "OCI_RESOURCE_PRINCIPAL_RESOURCE_ID",
            Some(WEB_APP_INSTANCE_ID.to_string()),
        ),
        ("OCI_RESOURCE_PRINCIPAL_PRIVATE_PEM", Some(rp_key_pem())),
        (
            "OCI_RESOURCE_PRINCIPAL_REGION",
            Some("us-ashburn-1".to_string()),
        ),
        ("HOME", Some("/nonexistent".to_string())),
    ];
    let (checks, table, ok) = doctor_under(&stack, Switches::default(), &rp);
    println!("doctor, resource principal 2.1:\n{table}");
    assert!(ok, "{table}");
    assert!(
        table.contains("resource principal v2.1 (computecontainerinstance)"),
        "{table}"
    );
    assert_eq!(
        verdict_of(&checks, "resource principal version"),
        &Verdict::Pass
    );
}

#[test]
fn where_vision_refuses_the_object_source_the_function_sends_images_inline() {
    use crate::support::emulator::{spawn_func, FixedDetector};
    use ocivision::document::{AnalysisDocument, Status};
    use ocivision::soda::document_key;

    let env = Env::start_with("deploy-vision-inline", |config| {
        config.switches.vision_broad_read = true;
    });
    env.emulator
        .set_detector(Some(Arc::new(FixedDetector::default())));
    let _func = spawn_func(&env);
    let soda = env.soda("IMAGE_ANALYSIS");
    for name in ["uploads/first.jpg", "uploads/second.jpg"] {
        env.put_object(name, PHOTO, &[]);
        assert!(env.emulator.events().wait_idle(Duration::from_secs(30)));
        let doc = soda
            .get(&document_key("emulatorns", "images", name), deadline(5))
            .unwrap()
            .map(|d| AnalysisDocument::from_json(d.value).unwrap())
            .expect("a document");
        assert_eq!(doc.status, Status::Done, "{name}: {:?}", doc.error);
    }
    // The first image: refused as an object source, then sent inline; the second inline at
    // once (the instance remembers).
    let sources: Vec<bool> = env
        .emulator
        .requests()
        .iter()
        .filter(|r| r.target.contains("analyzeImage"))
        .map(|r| r.status == 200)
        .collect();
    assert_eq!(
        sources,
        vec![false, true, true],
        "Vision calls: refused, inline, inline"
    );
}
