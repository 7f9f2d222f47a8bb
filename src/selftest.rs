//! The function's self-test: `webapp doctor` invokes the function with
//! `{"ocivision-self-test": {"namespace": …, "bucket": …, "object": …}}` naming a scratch
//! image the doctor wrote, and the function answers with what it finds as itself (issue 24):
//! its principal, whether its grants let it read the object, and whether Vision reads the
//! object as an `OBJECT_STORAGE` source for it (the assumption no Oracle source confirms with
//! a bucket-scoped `read objects` grant). When Vision refuses, the same image is sent inline,
//! to tell "Vision cannot read the object" from "Vision refuses this principal".
//!
//! It writes nothing and reads only the object named.

use std::time::Instant;

use serde_json::{json, Value};

use crate::oci::object_storage::{Bucket, ObjectStorage};
use crate::oci::vision::{AnalyzeImage, ImageSource, Vision};

/// The key of a self-test request.
pub const KEY: &str = "ocivision-self-test";
/// Largest scratch image read for the inline comparison.
const MAX_BYTES: u64 = 1024 * 1024;

/// The object a self-test body names, or `None` when the body is not a self-test.
pub fn request(body: &[u8]) -> Option<(Bucket, String)> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let asked = value.get(KEY)?;
    let text = |name: &str| asked[name].as_str().map(str::to_string);
    Some((
        Bucket {
            namespace: text("namespace")?,
            name: text("bucket")?,
        },
        text("object")?,
    ))
}

/// A failure in words: the status and code when the service answered.
fn failure(e: &crate::Error) -> Value {
    match e.service_error() {
        Some(s) => json!({"ok": false, "status": s.status, "code": s.code, "message": s.message}),
        None => json!({"ok": false, "message": e.to_string()}),
    }
}

/// Runs the probes as this function; the answer for the doctor.
pub fn run(
    storage: &ObjectStorage,
    vision: &Vision,
    compartment_id: &str,
    (bucket, object): &(Bucket, String),
    deadline: Instant,
) -> Value {
    let principal = json!({
        "resource_principal_version": std::env::var("OCI_RESOURCE_PRINCIPAL_VERSION").ok(),
    });
    let read = storage.get_start(bucket, object, MAX_BYTES, deadline);
    let mut bytes = Vec::new();
    let object_read = match read {
        Ok(Some(mut download)) => {
            use std::io::Read as _;
            match download.body.read_to_end(&mut bytes) {
                Ok(_) => json!({"ok": true, "bytes": bytes.len()}),
                Err(e) => json!({"ok": false, "message": e.to_string()}),
            }
        }
        Ok(None) => json!({"ok": false, "status": 404, "message": "no such object"}),
        Err(e) => failure(&e),
    };
    let analyze = |image: ImageSource| {
        let request = AnalyzeImage {
            image,
            max_objects: 1,
            max_labels: None,
            text: false,
            compartment_id: compartment_id.to_string(),
        };
        match vision.analyze(&request, deadline) {
            Ok(_) => json!({"ok": true}),
            Err(e) => failure(&e),
        }
    };
    let vision_object = analyze(ImageSource::ObjectStorage {
        namespace: bucket.namespace.clone(),
        bucket: bucket.name.clone(),
        object: object.clone(),
    });
    let vision_inline = if vision_object["ok"] == json!(false) && !bytes.is_empty() {
        analyze(ImageSource::Inline(bytes))
    } else {
        Value::Null
    };
    json!({
        "self_test": 1,
        "principal": principal,
        "object_read": object_read,
        "vision_object_storage": vision_object,
        "vision_inline": vision_inline,
    })
}
