//! The function end to end: the real `func` binary, started as the Fn agent starts it, receives
//! the emulator's Object Storage events through the Fn contract and keeps one document per image.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ocivision::document::{meta, AnalysisDocument, Status};
use ocivision::emulator::agent::FnAgent;
use ocivision::emulator::events::{cloud_event, Change, ChangeKind, DeliveryResult};
use ocivision::emulator::faults::{EventFaults, FaultPlan, Service};
use ocivision::oci::object_storage::Condition;
use ocivision::soda::document_key;
use serde_json::Value;

use crate::support::emulator::{
    deadline, spawn_func, Env, FixedDetector, FuncProcess, HeldDetector,
};
use crate::support::wait_until;

const DOG: &[u8] = include_bytes!("../fixtures/photos/dog.jpg");
const CAT: &[u8] = include_bytes!("../fixtures/photos/chelsea.png");

struct Pipeline {
    env: Env,
    func: FuncProcess,
}

fn start(tag: &str) -> Pipeline {
    let env = Env::start(tag);
    env.emulator
        .set_detector(Some(Arc::new(FixedDetector::default())));
    let func = spawn_func(&env);
    Pipeline { env, func }
}

impl Pipeline {
    fn upload(&self, name: &str, bytes: &[u8], metadata: &[(&str, &str)]) -> String {
        self.env.put_object(name, bytes, metadata)
    }

    fn settle(&self) {
        assert!(
            self.env
                .emulator
                .events()
                .wait_idle(Duration::from_secs(30)),
            "events still pending"
        );
    }

    fn document(&self, name: &str) -> Option<AnalysisDocument> {
        let soda = self.env.soda("IMAGE_ANALYSIS");
        soda.get(&document_key("emulatorns", "images", name), deadline(5))
            .unwrap()
            .map(|d| AnalysisDocument::from_json(d.value).unwrap())
    }

    fn vision_calls(&self) -> usize {
        self.env
            .emulator
            .requests()
            .iter()
            .filter(|r| r.target == "/20220125/actions/analyzeImage")
            .count()
    }

    fn outcomes(&self) -> Vec<DeliveryResult> {
        self.env
            .emulator
            .events()
            .deliveries()
            .into_iter()
            .map(|d| d.outcome)
            .collect()
    }

    /// Calls the function directly, as the agent would, with `body`.
    fn call(&self, body: &[u8]) -> (u16, Value) {
        let reply = FnAgent::new(&self.func.socket)
            .call(body, "application/json", &[], Duration::from_secs(30))
            .unwrap();
        (
            reply.status,
            serde_json::from_slice(&reply.body).unwrap_or(Value::Null),
        )
    }

    fn event(&self, kind: ChangeKind, name: &str, etag: Option<&str>) -> Vec<u8> {
        let change = Change {
            kind,
            namespace: "emulatorns".into(),
            bucket: "images".into(),
            name: name.into(),
            etag: etag.map(str::to_string),
        };
        serde_json::to_vec(&cloud_event(
            &change,
            "ocid1.compartment.oc1..emulator",
            SystemTime::now(),
        ))
        .unwrap()
    }
}

#[test]
fn an_upload_becomes_a_done_document() {
    let p = start("pipe-success");
    let etag = p.upload(
        "uploads/dog one.jpg",
        DOG,
        &[
            (meta::ORIGINAL_NAME, "My%20Dog.jpg"),
            (meta::REQUEST_ID, "req-123"),
            (meta::SHA256, "abc"),
        ],
    );
    p.settle();
    let doc = p.document("uploads/dog one.jpg").expect("a document");
    assert_eq!(doc.status, Status::Done, "{doc:?}");
    assert_eq!(doc.etag, etag);
    assert_eq!(doc.size, DOG.len() as u64);
    assert_eq!(doc.content_type, "image/jpeg");
    assert_eq!(doc.original_name.as_deref(), Some("My Dog.jpg"));
    assert_eq!(doc.correlation_id.as_deref(), Some("req-123"));
    assert_eq!(doc.sha256.as_deref(), Some("abc"));
    assert_eq!(doc.objects[0].name, "Dog");
    assert_eq!(doc.objects[0].polygon.len(), 4);
    assert_eq!(
        doc.model_versions.object_detection.as_deref(),
        Some("fixed-1.0")
    );
    assert_eq!(doc.attempts, 1);
    assert!(doc.analyzed_at.is_some() && !doc.uploaded_at.is_empty());
    assert!(doc.timings.vision_ms.is_some() && doc.timings.event_lag_ms.is_some());
    assert_eq!(p.outcomes(), [DeliveryResult::Answered(200)]);
    // Vision was asked about the object in place, with the function's own compartment.
    let seen = p.env.emulator.requests();
    let vision = seen
        .iter()
        .find(|r| r.target == "/20220125/actions/analyzeImage")
        .unwrap();
    assert!(
        vision
            .header("authorization")
            .unwrap()
            .contains("keyId=\"ST$"),
        "resource principal token used"
    );

    // Deleting the object removes the document.
    p.env
        .object_storage()
        .delete(
            &p.env.bucket(),
            "uploads/dog one.jpg",
            Condition::None,
            deadline(5),
        )
        .unwrap();
    p.settle();
    assert_eq!(p.document("uploads/dog one.jpg"), None);
}

#[test]
fn a_duplicate_delivery_changes_nothing() {
    let p = start("pipe-duplicate");
    let mut plan = FaultPlan::default();
    plan.events = EventFaults {
        duplicate_rate: 1.0,
        ..EventFaults::default()
    };
    p.env.emulator.set_faults(plan);
    p.upload("uploads/cat.png", CAT, &[]);
    p.settle();
    assert_eq!(
        p.outcomes(),
        [DeliveryResult::Answered(200), DeliveryResult::Answered(200)]
    );
    assert_eq!(
        p.vision_calls(),
        1,
        "the second delivery saw a done document"
    );
    let doc = p.document("uploads/cat.png").unwrap();
    assert_eq!((doc.status, doc.attempts), (Status::Done, 1));
    assert_eq!(doc.objects[0].name, "Cat");
}

#[test]
fn stale_and_orphan_events_are_ignored() {
    let p = start("pipe-stale");
    let first = p.upload("uploads/a.jpg", DOG, &[]);
    p.settle();
    let second = p.upload("uploads/a.jpg", DOG, &[]);
    p.settle();
    assert_ne!(first, second);
    let calls = p.vision_calls();
    // The first version's event, delivered late: stale, nothing happens.
    let (status, answer) = p.call(&p.event(ChangeKind::Created, "uploads/a.jpg", Some(&first)));
    assert_eq!(
        (status, answer["action"].as_str()),
        (200, Some("stale")),
        "{answer}"
    );
    assert_eq!(p.vision_calls(), calls);
    assert_eq!(p.document("uploads/a.jpg").unwrap().etag, second);
    // A create event for an object that is already gone (deleted before the analysis).
    let (status, answer) = p.call(&p.event(ChangeKind::Created, "uploads/never.jpg", Some("x")));
    assert_eq!(
        (status, answer["action"].as_str()),
        (200, Some("object gone")),
        "{answer}"
    );
    assert_eq!(p.document("uploads/never.jpg"), None);
}

#[test]
fn an_object_deleted_during_analysis_leaves_no_document() {
    let p = start("pipe-race");
    let vision = Arc::new(HeldDetector::default());
    p.env.emulator.set_detector(Some(vision.clone()));
    p.upload("uploads/racing.jpg", DOG, &[]);
    assert!(
        wait_until(Duration::from_secs(10), || vision.arrived() == 1),
        "analysis never started"
    );
    p.env
        .object_storage()
        .delete(
            &p.env.bucket(),
            "uploads/racing.jpg",
            Condition::None,
            deadline(5),
        )
        .unwrap();
    vision.release();
    p.settle();
    assert_eq!(p.document("uploads/racing.jpg"), None);
    assert_eq!(
        p.outcomes(),
        [DeliveryResult::Answered(200), DeliveryResult::Answered(200)]
    );
}

#[test]
fn vision_429_then_success() {
    let p = start("pipe-429");
    p.env.emulator.fail_next(Service::Vision, 2, 429);
    p.upload("uploads/busy.jpg", DOG, &[]);
    p.settle();
    let doc = p.document("uploads/busy.jpg").unwrap();
    assert_eq!(doc.status, Status::Done);
    assert_eq!(p.vision_calls(), 3);
    assert_eq!(p.outcomes(), [DeliveryResult::Answered(200)]);
}

#[test]
fn vision_failing_for_good_gives_a_failed_document_and_502() {
    let p = start("pipe-vision-down");
    p.env
        .emulator
        .set_faults(FaultPlan::parse("vision=rate:1.0,status:503").unwrap());
    p.upload("uploads/unlucky.jpg", DOG, &[]);
    p.settle();
    let doc = p.document("uploads/unlucky.jpg").unwrap();
    assert_eq!(doc.status, Status::Failed);
    let error = doc.error.unwrap();
    assert_eq!(error.code, "ServiceUnavailable");
    assert!(error.message.contains("attempt 1"), "{}", error.message);
    assert_eq!(p.vision_calls(), 5, "the function's retry budget");
    assert_eq!(p.outcomes(), [DeliveryResult::Answered(502)]);
}

#[test]
fn soda_down_gives_502_and_a_redelivery_succeeds() {
    let p = start("pipe-soda-down");
    p.env
        .emulator
        .set_faults(FaultPlan::parse("soda=rate:1.0,status:503").unwrap());
    let etag = p.upload("uploads/later.jpg", DOG, &[]);
    p.settle();
    assert_eq!(p.outcomes(), [DeliveryResult::Answered(502)]);
    p.env.emulator.set_faults(FaultPlan::default());
    assert_eq!(p.document("uploads/later.jpg"), None);
    let (status, answer) = p.call(&p.event(ChangeKind::Created, "uploads/later.jpg", Some(&etag)));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        p.document("uploads/later.jpg").unwrap().status,
        Status::Done
    );
}

#[test]
fn a_jpeg_whose_frame_header_sits_past_the_first_bytes_is_read_further_and_analysed() {
    let p = start("pipe-deep-frame");
    // Two full metadata segments after the start marker push the frame header past 128 KiB.
    let mut deep = DOG[..2].to_vec();
    for _ in 0..2 {
        deep.extend_from_slice(&[0xFF, 0xEF, 0xFF, 0xFF]);
        deep.extend(std::iter::repeat_n(0u8, 0xFFFF - 2));
    }
    deep.extend_from_slice(&DOG[2..]);
    p.upload("uploads/deep.jpg", &deep, &[]);
    p.settle();
    let doc = p.document("uploads/deep.jpg").unwrap();
    assert_eq!(doc.status, Status::Done, "{doc:?}");
    let gets: Vec<String> = p
        .env
        .emulator
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.target.ends_with("/o/uploads/deep.jpg"))
        .map(|r| r.header("range").unwrap_or("").to_string())
        .collect();
    assert_eq!(gets, ["bytes=0-65535", "bytes=65536-262143"]);
}

#[test]
fn files_vision_would_refuse_fail_without_a_vision_call() {
    let p = start("pipe-refuse");
    p.upload(
        "uploads/fake.jpg",
        b"<html><script>alert(1)</script></html>",
        &[],
    );
    p.settle();
    let doc = p.document("uploads/fake.jpg").unwrap();
    assert_eq!(doc.status, Status::Failed);
    let error = doc.error.unwrap();
    assert_eq!(error.code, "UnsupportedFormat");
    assert!(
        error.message.contains("not a JPEG or PNG"),
        "{}",
        error.message
    );
    assert_eq!(p.vision_calls(), 0);
}

#[test]
fn malformed_events_are_refused_clearly_and_write_nothing() {
    let p = start("pipe-malformed");
    // The collection exists, so that an empty listing means nothing was written.
    let soda = p.env.soda("IMAGE_ANALYSIS");
    soda.ensure_collection(deadline(5)).expect("collection");
    let (status, answer) = p.call(b"{this is not json");
    assert_eq!(status, 502);
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("malformed event"),
        "{answer}"
    );
    let (status, _) =
        p.call(br#"{"eventType": "com.oraclecloud.objectstorage.createobject", "data": {}}"#);
    assert_eq!(status, 502);
    let written: Vec<_> = soda
        .list(deadline(5))
        .collect::<Result<_, _>>()
        .expect("the collection lists");
    assert!(written.is_empty(), "{written:?}");
    // The function is still serving.
    let (status, _) = p.call(&p.event(ChangeKind::Deleted, "uploads/x.jpg", None));
    assert_eq!(status, 200);
}
