//! AI Vision `analyzeImage` (API 20220125): object detection, image classification and text
//! detection.
//!
//! Parsing is lenient as the service is: unknown fields are ignored, `null` features read as
//! empty, and the raw JSON is kept beside the typed view so nothing the service said is lost.
//! Face detection is not requested by this project and is not modelled.

use std::time::Instant;

use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize};

use crate::error::Result;
use crate::oci::client::{Call, Transport};

const SERVICE: &str = "vision";
const PATH: &str = "/20220125/actions/analyzeImage";
/// Largest answer we read; a 50-object answer is a few KiB.
const JSON_LIMIT: u64 = 4 * 1024 * 1024;

/// Where the image comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageSource {
    /// An object the caller can read.
    ObjectStorage {
        /// Namespace.
        namespace: String,
        /// Bucket.
        bucket: String,
        /// Object name (raw, not encoded).
        object: String,
    },
    /// The image bytes themselves (sent as base64).
    Inline(Vec<u8>),
}

/// What to ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnalyzeImage {
    /// The image.
    pub image: ImageSource,
    /// Maximum objects to detect (OBJECT_DETECTION `maxResults`).
    pub max_objects: u32,
    /// Also ask for IMAGE_CLASSIFICATION with this many labels.
    pub max_labels: Option<u32>,
    /// Also ask for TEXT_DETECTION (words and lines), in the same call.
    pub text: bool,
    /// The compartment billed for the call.
    pub compartment_id: String,
}

impl AnalyzeImage {
    /// The JSON body the service expects (`AnalyzeImageDetails`).
    pub fn to_json(&self) -> serde_json::Value {
        let mut features = vec![serde_json::json!({
            "featureType": "OBJECT_DETECTION",
            "maxResults": self.max_objects,
        })];
        if let Some(labels) = self.max_labels {
            features.push(serde_json::json!({
                "featureType": "IMAGE_CLASSIFICATION",
                "maxResults": labels,
            }));
        }
        if self.text {
            features.push(serde_json::json!({"featureType": "TEXT_DETECTION"}));
        }
        let image = match &self.image {
            ImageSource::ObjectStorage {
                namespace,
                bucket,
                object,
            } => serde_json::json!({
                "source": "OBJECT_STORAGE",
                "namespaceName": namespace,
                "bucketName": bucket,
                "objectName": object,
            }),
            ImageSource::Inline(bytes) => serde_json::json!({
                "source": "INLINE",
                "data": base64::engine::general_purpose::STANDARD.encode(bytes),
            }),
        };
        serde_json::json!({
            "features": features,
            "image": image,
            "compartmentId": self.compartment_id,
        })
    }
}

/// A point as fractions of width and height.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Vertex {
    /// 0..1 from the left.
    pub x: f64,
    /// 0..1 from the top.
    pub y: f64,
}

/// The outline of a detected object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BoundingPolygon {
    /// Corners, usually top-left, top-right, bottom-right, bottom-left.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub normalized_vertices: Vec<Vertex>,
}

/// One detected object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageObject {
    /// English title-case name, e.g. `Bell Pepper`.
    pub name: String,
    /// 0..1.
    pub confidence: f64,
    /// Where it is.
    pub bounding_polygon: BoundingPolygon,
}

/// One image-level label.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Label {
    /// The label.
    pub name: String,
    /// 0..1.
    pub confidence: f64,
}

/// One detected word (`Word`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Word {
    /// The word as read.
    pub text: String,
    /// 0..1.
    pub confidence: f64,
    /// Where it is.
    pub bounding_polygon: BoundingPolygon,
}

/// One detected line of text (`Line`): its words are `words[i]` for `i` in `word_indexes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Line {
    /// The line as read, words separated by spaces.
    pub text: String,
    /// 0..1.
    pub confidence: f64,
    /// Where it is.
    pub bounding_polygon: BoundingPolygon,
    /// Indexes into [`ImageText::words`] of this line's words, in reading order.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub word_indexes: Vec<usize>,
}

/// What TEXT_DETECTION found (`ImageText`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageText {
    /// Every word.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub words: Vec<Word>,
    /// Every line, in reading order.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub lines: Vec<Line>,
}

/// A per-feature failure reported inside a 200 answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeatureError {
    /// Error code.
    #[serde(default)]
    pub code: String,
    /// Error text.
    #[serde(default)]
    pub message: String,
}

/// The typed part of `AnalyzeImageResult`, plus the raw answer.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Analysis {
    /// Detected objects (empty when the feature was not requested).
    #[serde(default, deserialize_with = "null_as_empty")]
    pub image_objects: Vec<ImageObject>,
    /// Classification labels.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub labels: Vec<Label>,
    /// Version of the detection model.
    #[serde(default)]
    pub object_detection_model_version: Option<String>,
    /// Version of the classification model.
    #[serde(default)]
    pub image_classification_model_version: Option<String>,
    /// Detected text (`None` when the feature was not requested or answered null).
    #[serde(default)]
    pub image_text: Option<ImageText>,
    /// Version of the text detection model.
    #[serde(default)]
    pub text_detection_model_version: Option<String>,
    /// Per-feature failures.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub errors: Vec<FeatureError>,
    /// The whole answer as received.
    #[serde(skip)]
    pub raw: serde_json::Value,
}

impl Analysis {
    /// Reads an answer leniently, keeping the raw JSON.
    pub fn from_json(raw: serde_json::Value) -> Result<Analysis> {
        let mut analysis: Analysis = serde_json::from_value(raw.clone())?;
        analysis.raw = raw;
        Ok(analysis)
    }
}

fn null_as_empty<'de, D, T>(deserializer: D) -> std::result::Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(deserializer)?.unwrap_or_default())
}

/// An AI Vision client bound to one endpoint.
#[derive(Debug, Clone)]
pub struct Vision {
    transport: Transport,
    origin: String,
}

impl Vision {
    /// A client for `origin` (`https://vision.aiservice.{region}.oci.{domain}` or the emulator).
    pub fn new(transport: Transport, origin: impl Into<String>) -> Vision {
        Vision {
            transport,
            origin: origin.into().trim_end_matches('/').to_string(),
        }
    }

    /// Runs `analyzeImage`.
    pub fn analyze(&self, request: &AnalyzeImage, deadline: Instant) -> Result<Analysis> {
        let body = serde_json::to_vec(&request.to_json())?;
        let call = Call::new(SERVICE, "POST", &self.origin, PATH.into(), deadline).with_json(&body);
        let raw: serde_json::Value = self.transport.send(call)?.json(JSON_LIMIT)?;
        Analysis::from_json(raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_body_has_the_documented_shape() {
        let request = AnalyzeImage {
            image: ImageSource::ObjectStorage {
                namespace: "ns".into(),
                bucket: "images".into(),
                object: "uploads/cat.jpg".into(),
            },
            max_objects: 50,
            max_labels: Some(5),
            text: true,
            compartment_id: "ocid1.compartment.oc1..x".into(),
        };
        let json = request.to_json();
        assert_eq!(json["features"][0]["featureType"], "OBJECT_DETECTION");
        assert_eq!(json["features"][0]["maxResults"], 50);
        assert_eq!(json["features"][1]["featureType"], "IMAGE_CLASSIFICATION");
        assert_eq!(
            json["features"][2],
            serde_json::json!({"featureType": "TEXT_DETECTION"})
        );
        assert_eq!(json["image"]["source"], "OBJECT_STORAGE");
        assert_eq!(json["image"]["objectName"], "uploads/cat.jpg");
        assert_eq!(json["compartmentId"], "ocid1.compartment.oc1..x");
        let inline = AnalyzeImage {
            image: ImageSource::Inline(b"abc".to_vec()),
            max_labels: None,
            text: false,
            ..request
        };
        let json = inline.to_json();
        assert_eq!(json["image"]["data"], "YWJj");
        assert_eq!(json["features"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn answers_parse_leniently_and_keep_the_raw_json() {
        let raw = serde_json::json!({
            "imageObjects": [{"name": "Cat", "confidence": 0.97,
                "boundingPolygon": {"normalizedVertices": [{"x": 0.1, "y": 0.2}, {"x": 0.5, "y": 0.2},
                    {"x": 0.5, "y": 0.7}, {"x": 0.1, "y": 0.7}]}}],
            "labels": null, "ontologyClasses": [], "imageText": null, "objectProposals": null,
            "objectDetectionModelVersion": "1.3.557", "imageClassificationModelVersion": null,
            "errors": [], "somethingNew": {"a": 1}
        });
        let analysis = Analysis::from_json(raw.clone()).unwrap();
        assert_eq!(analysis.image_objects.len(), 1);
        assert_eq!(analysis.image_objects[0].name, "Cat");
        assert_eq!(
            analysis.image_objects[0]
                .bounding_polygon
                .normalized_vertices[2]
                .y,
            0.7
        );
        assert!(analysis.labels.is_empty());
        assert_eq!(
            analysis.object_detection_model_version.as_deref(),
            Some("1.3.557")
        );
        assert_eq!(analysis.image_classification_model_version, None);
        assert_eq!(analysis.raw["somethingNew"]["a"], 1);
        assert_eq!(analysis.image_text, None, "null text is no text");
        let empty = Analysis::from_json(serde_json::json!({"errors": null})).unwrap();
        assert!(empty.image_objects.is_empty() && empty.errors.is_empty());
    }

    #[test]
    fn text_answers_parse_in_the_sdk_shape() {
        let vertices = serde_json::json!({"normalizedVertices": [{"x": 0.1, "y": 0.2},
            {"x": 0.4, "y": 0.2}, {"x": 0.4, "y": 0.3}, {"x": 0.1, "y": 0.3}]});
        let raw = serde_json::json!({
            "imageText": {
                "words": [{"text": "OPEN", "confidence": 0.98, "boundingPolygon": vertices},
                          {"text": "DAILY", "confidence": 0.9, "boundingPolygon": vertices}],
                "lines": [{"text": "OPEN DAILY", "confidence": 0.94, "boundingPolygon": vertices,
                           "wordIndexes": [0, 1]}]
            },
            "textDetectionModelVersion": "1.0.0", "errors": []
        });
        let analysis = Analysis::from_json(raw).unwrap();
        let text = analysis.image_text.unwrap();
        assert_eq!(text.words[1].text, "DAILY");
        assert_eq!(text.lines[0].word_indexes, [0, 1]);
        assert_eq!(text.lines[0].bounding_polygon.normalized_vertices[1].x, 0.4);
        assert_eq!(
            analysis.text_detection_model_version.as_deref(),
            Some("1.0.0")
        );
    }
}
