//! The emulator as a fake worth trusting: it refuses every kind of bad signature as OCI does,
//! injects faults the clients survive (or fail fast on), and delivers object events to a
//! function through the Fn contract.

use std::io::Cursor;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use ocivision::emulator::events::DeliveryResult;
use ocivision::emulator::faults::{EventFaults, FaultPlan, Faults, Service};
use ocivision::http::{Limits, Response, Server};
use ocivision::oci::client::{Auth, Transport};
use ocivision::oci::keys::PrivateKey;
use ocivision::oci::object_storage::{Condition, ListOptions, ObjectStorage};
use ocivision::oci::sign::{self, Body, RequestToSign};
use ocivision::Error;
use serde_json::{json, Value};

use crate::support::emulator::{deadline, dev_key, fast_retries, key_id, Env};

/// Sends a request signed with `key` at `when`, after letting `tamper` change it.
struct Raw {
    method: &'static str,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn signed(env: &Env, method: &'static str, target: &str, body: &[u8], when: SystemTime) -> Raw {
    let host = env
        .emulator
        .base_url()
        .trim_start_matches("http://")
        .to_string();
    let mut headers = vec![("host".to_string(), host.clone())];
    if !body.is_empty() || method == "POST" {
        headers.push(("content-type".into(), "application/json".into()));
    }
    let borrowed: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let key = dev_key();
    let added = sign::sign(
        &RequestToSign {
            method,
            path_and_query: target,
            host: &host,
            headers: &borrowed,
            body: Body::Signed(body),
        },
        &key_id(&key),
        &key,
        when,
    )
    .unwrap();
    headers.extend(added.into_iter().map(|(n, v)| (n.to_string(), v)));
    Raw {
        method,
        target: target.to_string(),
        headers,
        body: body.to_vec(),
    }
}

fn send(env: &Env, raw: &Raw) -> (u16, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut request = ureq::http::Request::builder()
        .method(raw.method)
        .uri(format!("{}{}", env.emulator.base_url(), raw.target));
    for (name, value) in &raw.headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let mut response = agent.run(request.body(raw.body.clone()).unwrap()).unwrap();
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_vec().unwrap_or_default();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// The value of a header the request was signed with.
fn header(raw: &Raw, name: &str) -> String {
    let (_, value) = raw.headers.iter().find(|(n, _)| n == name).unwrap();
    value.clone()
}

fn set(raw: &mut Raw, name: &str, value: &str) {
    raw.headers.retain(|(n, _)| n != name);
    raw.headers.push((name.to_string(), value.to_string()));
}

const ANALYZE: &str = "/20220125/actions/analyzeImage";

#[test]
fn every_tampering_case_is_refused_with_401() {
    let env = Env::start("tamper");
    let now = SystemTime::now();
    let body = br#"{"features":[{"featureType":"OBJECT_DETECTION"}]}"#;

    // The untouched requests pass the signature check (Vision then judges the body).
    let (status, _) = send(&env, &signed(&env, "GET", "/n", b"", now));
    assert_eq!(status, 200);
    // Vision's judgement: the body names no image.
    let (status, answer) = send(&env, &signed(&env, "POST", ANALYZE, body, now));
    assert_eq!(
        (status, answer["code"].as_str()),
        (400, Some("InvalidParameter")),
        "{answer}"
    );

    let mut cases: Vec<(&str, Raw)> = Vec::new();
    let mut raw = signed(&env, "POST", ANALYZE, body, now);
    raw.body = br#"{"features":[{"featureType":"TEXT_DETECTION"}]}"#.to_vec();
    let length = raw.body.len().to_string();
    set(&mut raw, "content-length", &length);
    cases.push(("tampered body", raw));
    let mut raw = signed(&env, "POST", ANALYZE, body, now);
    set(
        &mut raw,
        "x-content-sha256",
        &sign::body_sha256(b"something else"),
    );
    cases.push(("tampered body hash", raw));
    let mut raw = signed(&env, "POST", ANALYZE, body, now);
    set(&mut raw, "content-type", "text/plain");
    cases.push(("tampered signed header", raw));
    let mut raw = signed(&env, "GET", "/n/emulatorns/b/images/o?prefix=a", b"", now);
    raw.target = "/n/emulatorns/b/images/o?prefix=b".into();
    cases.push(("tampered query", raw));
    cases.push((
        "date 6 minutes behind",
        signed(&env, "GET", "/n", b"", now - Duration::from_secs(360)),
    ));
    cases.push((
        "date 6 minutes ahead",
        signed(&env, "GET", "/n", b"", now + Duration::from_secs(360)),
    ));
    // A POST signed with only the GET header list: the body headers are missing from it.
    let mut raw = signed(&env, "POST", ANALYZE, body, now);
    let host = header(&raw, "host");
    let date = header(&raw, "date");
    let key = dev_key();
    let text = format!("date: {date}\n(request-target): post {ANALYZE}\nhost: {host}");
    let signature = {
        use base64::Engine as _;
        let pair = ring::rsa::KeyPair::from_pkcs8(&pkcs8_der()).unwrap();
        let mut out = vec![0; pair.public().modulus_len()];
        pair.sign(
            &ring::signature::RSA_PKCS1_SHA256,
            &ring::rand::SystemRandom::new(),
            text.as_bytes(),
            &mut out,
        )
        .unwrap();
        base64::engine::general_purpose::STANDARD.encode(out)
    };
    let authorization = sign::authorization(
        &key_id(&key),
        &["date", "(request-target)", "host"],
        &signature,
    )
    .unwrap();
    set(&mut raw, "authorization", &authorization);
    cases.push(("missing signed body headers", raw));
    // Signed by a key the emulator does not trust.
    let mut raw = signed(&env, "GET", "/n", b"", now);
    let stranger = PrivateKey::from_pem(&fixture_key_pem(), "fixture").unwrap();
    let auth = header(&raw, "authorization");
    set(
        &mut raw,
        "authorization",
        &auth.replace(&key.fingerprint(), &stranger.fingerprint()),
    );
    cases.push(("unknown key id", raw));
    let mut raw = signed(&env, "GET", "/n", b"", now);
    raw.headers.retain(|(n, _)| n != "authorization");
    cases.push(("no authorization", raw));

    for (name, raw) in &cases {
        let (status, answer) = send(&env, raw);
        assert_eq!(status, 401, "{name}: {answer}");
        assert_eq!(answer["code"], "NotAuthenticated", "{name}");
    }
    // The service is unharmed.
    let (status, _) = send(&env, &signed(&env, "GET", "/n", b"", SystemTime::now()));
    assert_eq!(status, 200);
}

fn fixture_key_pem() -> String {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/oci-signing-vectors.json"
    ))
    .unwrap();
    let json: Value = serde_json::from_str(&text).unwrap();
    json["extra_key_sets"][0]["key_pem_pkcs8"]
        .as_str()
        .unwrap()
        .to_string()
}

fn pkcs8_der() -> Vec<u8> {
    use rustls_pki_types::pem::PemObject as _;
    rustls_pki_types::PrivatePkcs8KeyDer::from_pem_slice(
        ocivision::emulator::DEV_KEY_PEM.as_bytes(),
    )
    .unwrap()
    .secret_pkcs8_der()
    .to_vec()
}

#[test]
fn a_client_with_the_wrong_key_gets_an_authentication_error_naming_the_request_id() {
    let env = Env::start("wrong-key");
    let stranger = PrivateKey::from_pem(&fixture_key_pem(), "fixture").unwrap();
    let dir = crate::support::emulator::TempDir::new("wrong-key-config");
    // A config file whose key the emulator has never seen.
    let key_file = dir.path().join("k.pem");
    std::fs::write(&key_file, fixture_key_pem()).unwrap();
    let config = dir.path().join("config");
    std::fs::write(
        &config,
        format!(
            "[DEFAULT]\nuser=ocid1.user.oc1..x\ntenancy=ocid1.tenancy.oc1..x\nfingerprint={}\nkey_file={}\n",
            stranger.fingerprint(),
            key_file.display()
        ),
    )
    .unwrap();
    let provider =
        ocivision::oci::auth::ConfigFileProvider::from_file(&config, "DEFAULT", None).unwrap();
    let os = ObjectStorage::new(
        Transport::new(Auth::Oci(Arc::new(provider)), fast_retries(4)),
        env.emulator.base_url(),
    );
    let err = os.namespace(deadline(5)).unwrap_err();
    assert!(err.is_authentication(), "{err}");
    let service = err.service_error().unwrap();
    assert_eq!(service.code, "NotAuthenticated");
    assert!(!service.request_id.is_empty());
    let text = err.to_string();
    assert!(
        text.contains("401 NotAuthenticated") && text.contains(&service.request_id),
        "{text}"
    );
    // Refreshed once (the key file is re-read in case it rotated), then not retried again.
    assert_eq!(env.emulator.requests().len(), 2);
}

#[test]
fn with_30_percent_faults_a_workload_completes_through_retries() {
    let mut env = Env::start("faults-30");
    // Attempts are bounded by the deadline rather than a small count: at a 30 % error rate,
    // four failures in a row happen once in 120 calls.
    env.transport = Transport::new(Auth::Oci(env.credentials()), fast_retries(20));
    let soda = env.soda("FAULTS");
    soda.ensure_collection(deadline(5)).unwrap();
    let mut plan = FaultPlan::default();
    for (service, status) in [(Service::ObjectStorage, 503), (Service::Soda, 429)] {
        plan.set(
            service,
            Faults {
                error_rate: 0.3,
                error_status: status,
                ..Faults::default()
            },
        );
    }
    env.emulator.set_faults(plan);
    let os = ObjectStorage::new(env.transport.clone(), env.emulator.base_url());
    let started = Instant::now();
    let workload_deadline = deadline(60);
    for i in 0..40 {
        let body = format!("object {i}").into_bytes();
        os.put(
            &env.bucket(),
            &format!("f/{i:02}"),
            &mut Cursor::new(body.clone()),
            body.len() as u64,
            "text/plain",
            &[],
            Condition::None,
            workload_deadline,
        )
        .unwrap();
        soda.put(
            &format!("D{i:02}"),
            &json!({"i": i, "even": i % 2 == 0}),
            workload_deadline,
        )
        .unwrap();
    }
    let listed = os
        .list(
            &env.bucket(),
            ListOptions {
                prefix: Some("f/".into()),
                page_size: Some(7),
                ..Default::default()
            },
            workload_deadline,
        )
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    assert_eq!(listed.len(), 40);
    let evens = soda
        .query(&json!({"even": true}), workload_deadline)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    assert_eq!(evens.len(), 20);
    let seen = env.emulator.requests();
    let injected = seen
        .iter()
        .filter(|r| r.status == 503 || r.status == 429)
        .count();
    assert!(
        injected > 10,
        "faults were injected ({injected} of {})",
        seen.len()
    );
    assert!(
        Instant::now() < workload_deadline,
        "finished in {:?}",
        started.elapsed()
    );
}

#[test]
fn with_every_request_failing_the_client_fails_fast_and_clearly() {
    let env = Env::start("faults-100");
    env.emulator
        .set_faults(FaultPlan::parse("objectstorage=rate:1.0,status:503").unwrap());
    let os = ObjectStorage::new(env.transport.clone(), env.emulator.base_url());
    let started = Instant::now();
    let err = os.namespace(deadline(10)).unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(
        err.service_error().map(|e| (e.status, e.code.as_str())),
        Some((503, "ServiceUnavailable")),
        "{err}"
    );
    assert_eq!(
        env.emulator.requests().len(),
        4,
        "exactly the policy's 4 attempts"
    );

    // A deadline shorter than the backoff ends the call at once, naming the last error.
    let slow = Transport::new(
        Auth::Oci(env.credentials()),
        ocivision::oci::client::TransportConfig::default(),
    );
    let os = ObjectStorage::new(slow, env.emulator.base_url());
    let started = Instant::now();
    let err = os
        .namespace(Instant::now() + Duration::from_millis(300))
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "took {:?}",
        started.elapsed()
    );
    assert!(matches!(err, Error::Deadline { .. }), "{err}");
    assert!(err.to_string().contains("503"), "{err}");

    // Dropped connections are transport errors, retried like 503s.
    let mut plan = FaultPlan::default();
    plan.set(
        Service::ObjectStorage,
        Faults {
            drop_rate: 1.0,
            ..Faults::default()
        },
    );
    env.emulator.set_faults(plan);
    let os = ObjectStorage::new(env.transport.clone(), env.emulator.base_url());
    let err = os.namespace(deadline(10)).unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err}");
}

/// A tiny function on the Fn contract that records the events it receives.
fn recording_function(env: &Env, status: u16) -> (Server, Arc<Mutex<Vec<Value>>>) {
    let received = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&received);
    let socket = env.dir.path().join("events.sock");
    let server = Server::bind_unix(&socket, Limits::fn_socket(), move |request| {
        assert_eq!((request.method(), request.path()), ("POST", "/call"));
        assert!(request.header("fn-deadline").is_some());
        let event: Value = serde_json::from_slice(&request.read_body(1 << 20)?)?;
        sink.lock().unwrap().push(event);
        Ok(Response::new(status)
            .with_header("content-type", "application/json")
            .with_body("{}"))
    })
    .unwrap();
    env.emulator
        .register_function("ocid1.fnfunc.oc1..events", &socket, true);
    (server, received)
}

#[test]
fn object_events_reach_a_function_over_the_fn_contract() {
    let env = Env::start("events");
    let (_function, received) = recording_function(&env, 200);
    let first = env.put_object("uploads/cat 1.jpg", b"one", &[]);
    let second = env.put_object("uploads/cat 1.jpg", b"two", &[]);
    env.object_storage()
        .delete(
            &env.bucket(),
            "uploads/cat 1.jpg",
            Condition::None,
            deadline(5),
        )
        .unwrap();
    assert!(env.emulator.events().wait_idle(Duration::from_secs(10)));

    let events = received.lock().unwrap().clone();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["eventType"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "com.oraclecloud.objectstorage.createobject",
            "com.oraclecloud.objectstorage.updateobject",
            "com.oraclecloud.objectstorage.deleteobject"
        ]
    );
    let created = &events[0];
    assert_eq!(created["cloudEventsVersion"], "0.1");
    assert_eq!(created["source"], "ObjectStorage");
    assert_eq!(created["data"]["resourceName"], "uploads/cat 1.jpg");
    assert_eq!(created["data"]["additionalDetails"]["bucketName"], "images");
    assert_eq!(
        created["data"]["additionalDetails"]["namespace"],
        "emulatorns"
    );
    assert_eq!(created["data"]["additionalDetails"]["eTag"], first.as_str());
    assert_eq!(
        events[1]["data"]["additionalDetails"]["eTag"],
        second.as_str()
    );
    let ids: std::collections::HashSet<&str> = events
        .iter()
        .map(|e| e["eventID"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 3, "each event has its own id");
    assert!(env
        .emulator
        .events()
        .deliveries()
        .iter()
        .all(|d| d.outcome == DeliveryResult::Answered(200)));
}

#[test]
fn event_faults_duplicate_reorder_and_drop() {
    let env = Env::start("event-faults");
    let (_function, received) = recording_function(&env, 200);

    let mut plan = FaultPlan::default();
    plan.events = EventFaults {
        duplicate_rate: 1.0,
        ..EventFaults::default()
    };
    env.emulator.set_faults(plan.clone());
    env.put_object("dup.jpg", b"x", &[]);
    assert!(env.emulator.events().wait_idle(Duration::from_secs(10)));
    let events = std::mem::take(&mut *received.lock().unwrap());
    assert_eq!(events.len(), 2);
    assert_eq!(
        events[0]["eventID"], events[1]["eventID"],
        "a duplicate is the same event"
    );

    // With a delay, later events overtake earlier ones.
    plan.events = EventFaults {
        reorder: true,
        delay: Duration::from_millis(300),
        ..EventFaults::default()
    };
    env.emulator.set_faults(plan.clone());
    for name in ["r1.jpg", "r2.jpg", "r3.jpg"] {
        env.put_object(name, b"x", &[]);
    }
    assert!(env.emulator.events().wait_idle(Duration::from_secs(10)));
    let order: Vec<String> = std::mem::take(&mut *received.lock().unwrap())
        .iter()
        .map(|e| e["data"]["resourceName"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(order.len(), 3);
    assert_ne!(order, ["r1.jpg", "r2.jpg", "r3.jpg"], "reordered");

    plan.events = EventFaults {
        drop_rate: 1.0,
        ..EventFaults::default()
    };
    env.emulator.set_faults(plan);
    env.put_object("lost.jpg", b"x", &[]);
    assert!(env.emulator.events().wait_idle(Duration::from_secs(10)));
    assert!(received.lock().unwrap().is_empty());
    assert_eq!(
        env.emulator.events().deliveries().last().unwrap().outcome,
        DeliveryResult::Dropped
    );
}

#[test]
fn the_request_record_keeps_at_most_its_limit_and_none_at_zero() {
    // The oldest go first; 0 (the load suite's setting) records nothing and must not panic.
    for (limit, expected) in [(2, 2), (0, 0)] {
        let env = Env::start_with("record-limit", |c| c.record_limit = limit);
        let os = env.object_storage();
        for _ in 0..3 {
            os.namespace(deadline(5)).unwrap();
        }
        assert_eq!(env.emulator.requests().len(), expected, "limit {limit}");
    }
}
