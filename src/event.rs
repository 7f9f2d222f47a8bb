//! The Object Storage CloudEvent (CloudEvents 0.1, as OCI Events sends it): built here for the
//! emulator's event bus, the web app's re-analysis and the doctor's probe, and read here by the
//! function, so every writer and the one reader agree on its shape.
//!
//! Reading is lenient (any source, missing milliseconds, extra fields); writing gives OCI's
//! envelope with the fields the function reads and the ones OCI always sends beside them.

use std::time::SystemTime;

use serde_json::{json, Value};

use crate::timefmt::{self, Precision};

/// The kind of object change an event reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventKind {
    /// `createobject`.
    Create,
    /// `updateobject`.
    Update,
    /// `deleteobject`.
    Delete,
}

impl EventKind {
    /// The CloudEvents `eventType`.
    pub(crate) fn event_type(self) -> &'static str {
        match self {
            EventKind::Create => "com.oraclecloud.objectstorage.createobject",
            EventKind::Update => "com.oraclecloud.objectstorage.updateobject",
            EventKind::Delete => "com.oraclecloud.objectstorage.deleteobject",
        }
    }
}

/// The parts of an Object Storage CloudEvent we write and read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ObjectEvent {
    /// What happened.
    pub kind: EventKind,
    /// `eventID`.
    pub event_id: String,
    /// `eventTime`, when readable.
    pub event_time: Option<SystemTime>,
    /// `additionalDetails.namespace`.
    pub namespace: String,
    /// `additionalDetails.bucketName`.
    pub bucket: String,
    /// `resourceName`: the raw object name.
    pub name: String,
    /// `additionalDetails.eTag`, when present (never for a delete).
    pub etag: Option<String>,
}

impl ObjectEvent {
    /// A new event about object `name`: a fresh id, the time now.
    pub(crate) fn new(
        kind: EventKind,
        namespace: &str,
        bucket: &str,
        name: &str,
        etag: Option<&str>,
    ) -> ObjectEvent {
        ObjectEvent {
            kind,
            event_id: crate::random::uuid(),
            event_time: Some(SystemTime::now()),
            namespace: namespace.to_string(),
            bucket: bucket.to_string(),
            name: name.to_string(),
            etag: etag.map(str::to_string),
        }
    }

    /// The CloudEvents 0.1 envelope OCI Events sends, from `source` for `compartment_id`.
    pub(crate) fn to_json(&self, source: &str, compartment_id: &str) -> Value {
        let mut details = json!({"bucketName": self.bucket, "namespace": self.namespace});
        if let Some(etag) = &self.etag {
            details["eTag"] = json!(etag);
            details["archivalState"] = json!("Available");
        }
        let mut event = json!({
            "eventType": self.kind.event_type(),
            "cloudEventsVersion": "0.1",
            "eventTypeVersion": "2.0",
            "source": source,
            "contentType": "application/json",
            "eventID": self.event_id,
            "extensions": {"compartmentId": compartment_id},
            "data": {
                "compartmentId": compartment_id,
                "resourceName": self.name,
                "resourceId": format!("/n/{}/b/{}/o/{}", self.namespace, self.bucket, self.name),
                "additionalDetails": details,
            }
        });
        if let Some(at) = self.event_time {
            event["eventTime"] = json!(timefmt::format(at, Precision::Millis));
        }
        event
    }

    /// Reads an event leniently (source case, missing milliseconds, extra fields); the error
    /// says which field is missing.
    pub(crate) fn parse(body: &[u8]) -> Result<ObjectEvent, String> {
        let event: Value =
            serde_json::from_slice(body).map_err(|e| format!("the event is not JSON: {e}"))?;
        let text = |value: &Value| value.as_str().map(str::to_string);
        let event_type = text(&event["eventType"]).ok_or("the event has no eventType")?;
        let kind = match event_type.rsplit('.').next().unwrap_or("") {
            "createobject" => EventKind::Create,
            "updateobject" => EventKind::Update,
            "deleteobject" => EventKind::Delete,
            _ => return Err(format!("event type {event_type:?} is not an object event")),
        };
        let data = &event["data"];
        let details = &data["additionalDetails"];
        let name = text(&data["resourceName"])
            .filter(|n| !n.is_empty())
            .ok_or("the event has no data.resourceName")?;
        let bucket = text(&details["bucketName"]).ok_or("the event has no bucketName")?;
        let namespace = text(&details["namespace"]).ok_or("the event has no namespace")?;
        Ok(ObjectEvent {
            kind,
            event_id: text(&event["eventID"]).unwrap_or_default(),
            event_time: text(&event["eventTime"]).and_then(|t| timefmt::parse(&t)),
            namespace,
            bucket,
            name,
            etag: text(&details["eTag"]).filter(|e| !e.is_empty()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_oci_events_leniently() {
        let body = br#"{"eventType": "com.oraclecloud.objectstorage.createobject", "cloudEventsVersion": "0.1",
            "source": "objectstorage", "eventTime": "2025-03-01T10:15:31Z", "eventID": "e-1",
            "data": {"resourceName": "uploads/cat.jpg", "resourceId": "",
                     "additionalDetails": {"bucketName": "images", "namespace": "ns", "eTag": "t-1"}},
            "freeFormTags": {}}"#;
        let event = ObjectEvent::parse(body).unwrap();
        assert_eq!(event.kind, EventKind::Create);
        assert_eq!(
            (event.bucket.as_str(), event.name.as_str()),
            ("images", "uploads/cat.jpg")
        );
        assert_eq!(event.etag.as_deref(), Some("t-1"));
        assert_eq!(event.event_time, timefmt::parse("2025-03-01T10:15:31.000Z"));
        let delete = br#"{"eventType": "com.oraclecloud.objectstorage.deleteobject",
            "data": {"resourceName": "a", "additionalDetails": {"bucketName": "b", "namespace": "n"}}}"#;
        assert_eq!(ObjectEvent::parse(delete).unwrap().etag, None);
    }

    #[test]
    fn malformed_events_say_what_is_missing() {
        assert!(ObjectEvent::parse(b"{not json")
            .unwrap_err()
            .contains("not JSON"));
        assert!(ObjectEvent::parse(
            br#"{"eventType": "com.oraclecloud.computeapi.launchinstance"}"#
        )
        .unwrap_err()
        .contains("not an object event"));
        assert!(
            ObjectEvent::parse(br#"{"eventType": "x.createobject", "data": {}}"#)
                .unwrap_err()
                .contains("resourceName")
        );
    }

    #[test]
    fn what_is_written_reads_back_the_same() {
        for (kind, etag) in [
            (
                EventKind::Create,
                Some("0f8c1f9e-1c1d-4d36-9a6e-2f1d2b8f4c11"),
            ),
            (EventKind::Update, Some("e2")),
            (EventKind::Delete, None),
        ] {
            let mut event = ObjectEvent::new(kind, "ns", "images", "uploads/cat 1.jpg", etag);
            event.event_time = Some(SystemTime::UNIX_EPOCH);
            let json = event.to_json("ObjectStorage", "ocid1.compartment.oc1..c");
            assert_eq!(json["cloudEventsVersion"], "0.1");
            assert_eq!(json["eventTypeVersion"], "2.0");
            assert_eq!(json["eventTime"], "1970-01-01T00:00:00.000Z");
            assert_eq!(json["eventID"].as_str().unwrap().len(), 36);
            assert_eq!(
                json["data"]["resourceId"],
                "/n/ns/b/images/o/uploads/cat 1.jpg"
            );
            assert_eq!(
                json["extensions"]["compartmentId"],
                "ocid1.compartment.oc1..c"
            );
            assert_eq!(
                json["data"]["additionalDetails"].get("eTag").is_some(),
                etag.is_some()
            );
            let body = serde_json::to_vec(&json).unwrap();
            assert_eq!(ObjectEvent::parse(&body).unwrap(), event, "{kind:?}");
        }
        let mut untimed = ObjectEvent::new(EventKind::Delete, "n", "b", "x", None);
        untimed.event_time = None;
        assert!(untimed.to_json("s", "c").get("eventTime").is_none());
    }
}
