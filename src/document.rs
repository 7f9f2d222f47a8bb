//! The analysis document: one JSON document per image in the SODA collection, written by the
//! function (and, as `pending`, by the web app at upload) and read by the web app.
//!
//! Its key is [`crate::soda::document_key`] of namespace, bucket and object name, so every
//! writer finds the same document. The field list is documented in docs/API.md; unknown fields
//! are ignored on read, so older and newer writers can share a collection.

use serde::{Deserialize, Serialize};

use crate::oci::vision::{Analysis, Vertex};

/// Object metadata keys (`opc-meta-…`) the web app sets at upload and the function reads.
pub mod meta {
    /// The name the file had on the uploader's disk (display only).
    pub const ORIGINAL_NAME: &str = "original-name";
    /// Hex SHA-256 of the content (duplicate detection).
    pub const SHA256: &str = "sha256";
    /// The upload's request id, carried into the document as its correlation id.
    pub const REQUEST_ID: &str = "request-id";
    /// Width of the image in pixels, as the upload read it (the result page sizes its picture
    /// from it before it loads).
    pub const WIDTH: &str = "width";
    /// Height of the image in pixels.
    pub const HEIGHT: &str = "height";
}

/// Where the web app stores each image's thumbnail (`thumbs/{id}.jpg`).
pub const THUMB_PREFIX: &str = "thumbs/";
/// Where the web app stores each image's preview (`previews/{id}.jpg`).
pub const PREVIEW_PREFIX: &str = "previews/";

/// True for the web app's renditions (thumbnails, previews): objects that are never analysed.
pub fn is_rendition(name: &str) -> bool {
    name.starts_with(THUMB_PREFIX) || name.starts_with(PREVIEW_PREFIX)
}

/// Where an image is in the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Uploaded; no analysis started yet.
    Pending,
    /// The function is working on it.
    Analyzing,
    /// Vision's rate limit is taken for now: the function deferred the analysis and answered
    /// success; it is invoked again at `next_attempt` (docs/SCALING.md). Not a failure.
    Waiting,
    /// Results are in.
    Done,
    /// Analysis failed; `error` says why.
    Failed,
}

/// Why an analysis failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// A stable code (`TooLarge`, `VisionUnavailable`, the service's own code, …).
    pub code: String,
    /// A sentence for a person.
    pub message: String,
}

/// One detected object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Found {
    /// The label, e.g. `Dog`.
    pub name: String,
    /// 0..1.
    pub confidence: f64,
    /// Corners as fractions of width and height.
    pub polygon: Vec<Vertex>,
}

/// An image-level label.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelScore {
    /// The label.
    pub name: String,
    /// 0..1.
    pub confidence: f64,
}

/// A label with its ontology parents (so "Vehicle" finds "Car").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ontology {
    /// The label.
    pub name: String,
    /// Its parents, e.g. `["Animal"]`.
    #[serde(default)]
    pub parents: Vec<String>,
}

/// Where the time went, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    /// From the event's time to the function receiving it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_lag_ms: Option<u64>,
    /// The Vision call, retries included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vision_ms: Option<u64>,
    /// Database writes before this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db_ms: Option<u64>,
}

/// Model versions reported by Vision.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelVersions {
    /// `objectDetectionModelVersion`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_detection: Option<String>,
    /// `imageClassificationModelVersion`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_classification: Option<String>,
}

/// The document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalysisDocument {
    /// Schema version of this layout.
    #[serde(default = "one")]
    pub schema: u32,
    /// The object name.
    pub image_name: String,
    /// The bucket.
    pub bucket_name: String,
    /// The namespace.
    pub namespace: String,
    /// The object's etag this document describes.
    #[serde(default)]
    pub etag: String,
    /// Size in bytes.
    #[serde(default)]
    pub size: u64,
    /// Content type as stored.
    #[serde(default)]
    pub content_type: String,
    /// The uploader's file name, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_name: Option<String>,
    /// Hex SHA-256 of the content, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Pipeline state.
    pub status: Status,
    /// Why it failed, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Failure>,
    /// Analysis attempts so far (calls that reached Vision; deferrals do not count).
    #[serde(default)]
    pub attempts: u32,
    /// When a `waiting` document is to be analysed again (RFC 3339); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt: Option<String>,
    /// When the object was uploaded (RFC 3339).
    #[serde(default)]
    pub uploaded_at: String,
    /// When the analysis finished (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analyzed_at: Option<String>,
    /// When this document was last written (RFC 3339).
    #[serde(default)]
    pub updated_at: String,
    /// Detected objects, best first.
    #[serde(default)]
    pub objects: Vec<Found>,
    /// Image-level labels, when requested.
    #[serde(default)]
    pub labels: Vec<LabelScore>,
    /// Label ontology.
    #[serde(default)]
    pub ontology: Vec<Ontology>,
    /// What a label search matches: [`AnalysisDocument::search_terms`] as written with the
    /// analysis (lower case, unique), so one QBE (`{"terms": "vehicle"}`) searches everything.
    #[serde(default)]
    pub terms: Vec<String>,
    /// Model versions.
    #[serde(default)]
    pub model_versions: ModelVersions,
    /// Where the time went.
    #[serde(default)]
    pub timings: Timings,
    /// Carried from the upload's request id through the event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// The id of the event that last wrote this document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
}

fn one() -> u32 {
    1
}

impl AnalysisDocument {
    /// A fresh document for an object, in `status`.
    pub fn new(namespace: &str, bucket: &str, name: &str, status: Status) -> AnalysisDocument {
        AnalysisDocument {
            schema: 1,
            image_name: name.to_string(),
            bucket_name: bucket.to_string(),
            namespace: namespace.to_string(),
            etag: String::new(),
            size: 0,
            content_type: String::new(),
            original_name: None,
            sha256: None,
            status,
            error: None,
            attempts: 0,
            next_attempt: None,
            uploaded_at: String::new(),
            analyzed_at: None,
            updated_at: String::new(),
            objects: Vec::new(),
            labels: Vec::new(),
            ontology: Vec::new(),
            terms: Vec::new(),
            model_versions: ModelVersions::default(),
            timings: Timings::default(),
            correlation_id: None,
            event_id: None,
        }
    }

    /// The SODA key of this document.
    pub fn key(&self) -> String {
        crate::soda::document_key(&self.namespace, &self.bucket_name, &self.image_name)
    }

    /// Copies a Vision answer in: objects (best first), labels, ontology, model versions.
    pub fn set_analysis(&mut self, analysis: &Analysis) {
        let mut objects: Vec<Found> = analysis
            .image_objects
            .iter()
            .map(|o| Found {
                name: o.name.clone(),
                confidence: o.confidence,
                polygon: o.bounding_polygon.normalized_vertices.clone(),
            })
            .collect();
        objects.sort_by(|a, b| b.confidence.total_cmp(&a.confidence));
        self.objects = objects;
        self.labels = analysis
            .labels
            .iter()
            .map(|l| LabelScore {
                name: l.name.clone(),
                confidence: l.confidence,
            })
            .collect();
        self.ontology = analysis
            .raw
            .get("ontologyClasses")
            .and_then(|v| v.as_array())
            .map(|classes| {
                classes
                    .iter()
                    .filter_map(|c| {
                        Some(Ontology {
                            name: c.get("name")?.as_str()?.to_string(),
                            parents: c
                                .get("parentNames")
                                .and_then(|p| p.as_array())
                                .map(|p| {
                                    p.iter()
                                        .filter_map(|s| s.as_str().map(str::to_string))
                                        .collect()
                                })
                                .unwrap_or_default(),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        self.model_versions = ModelVersions {
            object_detection: analysis.object_detection_model_version.clone(),
            image_classification: analysis.image_classification_model_version.clone(),
        };
        self.terms = self.search_terms();
    }

    /// Object names with how many boxes each has, most first (then by name).
    pub fn label_counts(&self) -> Vec<(String, usize)> {
        let mut counts: Vec<(String, usize)> = Vec::new();
        for o in &self.objects {
            match counts.iter_mut().find(|(n, _)| *n == o.name) {
                Some((_, c)) => *c += 1,
                None => counts.push((o.name.clone(), 1)),
            }
        }
        counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        counts
    }

    /// Every label this image can be found by: object names, labels and their ontology
    /// parents, lower-cased and deduplicated.
    pub fn search_terms(&self) -> Vec<String> {
        let mut terms: Vec<String> = self
            .objects
            .iter()
            .map(|o| o.name.clone())
            .chain(self.labels.iter().map(|l| l.name.clone()))
            .chain(
                self.ontology
                    .iter()
                    .flat_map(|o| std::iter::once(o.name.clone()).chain(o.parents.iter().cloned())),
            )
            .map(|t| t.to_lowercase())
            .collect();
        terms.sort();
        terms.dedup();
        terms
    }

    /// Reads a stored document (lenient: unknown fields ignored).
    pub fn from_json(value: serde_json::Value) -> crate::Result<AnalysisDocument> {
        Ok(serde_json::from_value(value)?)
    }

    /// The JSON to store.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trips_and_tolerates_unknown_fields() {
        let mut doc = AnalysisDocument::new("ns", "images", "uploads/a.jpg", Status::Pending);
        doc.etag = "e1".into();
        let mut json = doc.to_json();
        assert_eq!(json["status"], "pending");
        assert!(json.get("error").is_none());
        json["future_field"] = json!(1);
        assert_eq!(AnalysisDocument::from_json(json).unwrap(), doc);
        doc.status = Status::Waiting;
        doc.next_attempt = Some("2026-12-04T02:00:00.000Z".into());
        let json = doc.to_json();
        assert_eq!(json["status"], "waiting");
        assert_eq!(json["next_attempt"], "2026-12-04T02:00:00.000Z");
        assert_eq!(AnalysisDocument::from_json(json).unwrap(), doc);
        assert_eq!(
            doc.key(),
            crate::soda::document_key("ns", "images", "uploads/a.jpg")
        );
    }

    #[test]
    fn analysis_is_copied_best_first_with_ontology_terms() {
        let analysis = Analysis::from_json(json!({
            "imageObjects": [
                {"name": "Car", "confidence": 0.5, "boundingPolygon": {"normalizedVertices": [{"x": 0.1, "y": 0.1}]}},
                {"name": "Dog", "confidence": 0.9, "boundingPolygon": {"normalizedVertices": [{"x": 0.2, "y": 0.2}]}}
            ],
            "labels": [{"name": "Pet", "confidence": 0.8}],
            "ontologyClasses": [{"name": "Car", "parentNames": ["Vehicle"]}, {"name": "Dog", "parentNames": ["Animal"]}],
            "objectDetectionModelVersion": "1.3"
        }))
        .unwrap();
        let mut doc = AnalysisDocument::new("ns", "b", "x.jpg", Status::Done);
        doc.set_analysis(&analysis);
        assert_eq!(doc.objects[0].name, "Dog");
        assert_eq!(doc.model_versions.object_detection.as_deref(), Some("1.3"));
        assert_eq!(
            doc.search_terms(),
            ["animal", "car", "dog", "pet", "vehicle"]
        );
        assert_eq!(doc.terms, doc.search_terms(), "stored for the QBE");
        doc.objects.push(doc.objects[1].clone());
        assert_eq!(
            doc.label_counts(),
            [("Car".to_string(), 2), ("Dog".to_string(), 1)]
        );
        assert!(is_rendition("thumbs/a.jpg.jpg") && !is_rendition("uploads/a.jpg"));
    }
}
