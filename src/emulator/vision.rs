//! Emulated AI Vision `analyzeImage`: validates requests as the service does and answers from a
//! pluggable [`Detector`] (objects, labels) and [`TextReader`] (text).
//!
//! Images must be JPEG or PNG, at most 5 MB, and 32×32 to 10,000×10,000 pixels, as on OCI.
//! Without any model (the local models did not load, and no test registered one) every valid
//! request gets a clear `501 DetectorUnavailable`; so does a request for objects or labels
//! without a detector. TEXT_DETECTION answers `imageText` (words, lines) and
//! `textDetectionModelVersion`; without a text reader, or when it fails, that feature alone is
//! reported in `errors` and the other features still answer, as Vision reports a feature's
//! failure inside a 200. A `language` outside Vision's list is a 400. The face features are
//! accepted and answered null.

use std::sync::Arc;

use base64::Engine as _;
use serde_json::{json, Value};

use crate::detect::{Detector, TextReader};
use crate::emulator::wire::{EmuRequest, EmuResponse};

/// Vision's per-image size limit.
pub const MAX_IMAGE_BYTES: usize = 5 * 1024 * 1024;

/// The path of the one operation.
pub const ANALYZE_PATH: &str = "/20220125/actions/analyzeImage";

const FEATURE_TYPES: [&str; 5] = [
    "OBJECT_DETECTION",
    "IMAGE_CLASSIFICATION",
    "TEXT_DETECTION",
    "FACE_DETECTION",
    "FACE_EMBEDDING",
];

/// TEXT_DETECTION's `language` values (the SDK's `ImageTextDetectionFeature.language`).
const TEXT_LANGUAGES: [&str; 25] = [
    "ENG", "CES", "DAN", "NLD", "FIN", "FRA", "DEU", "ELL", "HUN", "ITA", "NOR", "POL", "POR",
    "RON", "RUS", "SLK", "SPA", "SWE", "TUR", "ARA", "CHI_SIM", "HIN", "JPN", "KOR", "OTHERS",
];

/// The models answering for Vision; either may be missing.
#[derive(Clone, Default)]
pub(crate) struct Models {
    /// Objects and labels.
    pub detector: Option<Arc<dyn Detector>>,
    /// Text.
    pub text: Option<Arc<dyn TextReader>>,
}

/// Reads an object for OBJECT_STORAGE sources: (namespace, bucket, name) → bytes.
pub type ObjectReader<'a> = &'a dyn Fn(&str, &str, &str) -> Option<Vec<u8>>;

/// Answers one `analyzeImage` request.
pub fn analyze(
    request: &EmuRequest,
    models: &Models,
    read_object: ObjectReader<'_>,
) -> EmuResponse {
    if request.method != "POST" {
        return EmuResponse::error(405, "MethodNotAllowed", "analyzeImage takes POST");
    }
    let body: Value = match serde_json::from_slice(&request.body) {
        Ok(v) => v,
        Err(e) => return invalid(&format!("request body is not JSON: {e}")),
    };
    let features = match parse_features(&body) {
        Ok(f) => f,
        Err(message) => return invalid(&message),
    };
    let image = match load_image(&body["image"], read_object) {
        Ok(bytes) => bytes,
        Err(response) => return response,
    };
    if image.len() > MAX_IMAGE_BYTES {
        return invalid("image is larger than 5 MB");
    }
    if !is_jpeg_or_png(&image) {
        return invalid("image format is not supported: only JPEG and PNG");
    }
    // Vision's documented resolution limits (oci-limits.md §1): 32×32 to 10,000×10,000 pixels.
    let (min, max) = (crate::image_info::MIN_SIDE, crate::image_info::MAX_SIDE);
    match crate::image_info::inspect(&image) {
        Ok(info) if (min..=max).contains(&info.width) && (min..=max).contains(&info.height) => {}
        Ok(info) => {
            return invalid(&format!(
                "image is {}x{} pixels; the supported sizes are {min}x{min} to {max}x{max}",
                info.width, info.height
            ))
        }
        Err(_) => return invalid("the image could not be decoded"),
    }
    let wants_detector = features
        .iter()
        .any(|(f, _)| matches!(f.as_str(), "OBJECT_DETECTION" | "IMAGE_CLASSIFICATION"));
    let detector = match &models.detector {
        Some(detector) => Some(detector),
        None if wants_detector || models.text.is_none() => {
            return EmuResponse::error(
                501,
                "DetectorUnavailable",
                "this emulator has no object detector: the local model did not load \
                 (see models/README.md) and none was registered",
            )
        }
        None => None,
    };

    let mut result = json!({
        "imageObjects": null, "labels": null, "ontologyClasses": null, "imageText": null,
        "objectProposals": null, "detectedFaces": null,
        "objectDetectionModelVersion": null, "imageClassificationModelVersion": null,
        "textDetectionModelVersion": null, "objectProposalModelVersion": null,
        "faceDetectionModelVersion": null, "errors": []
    });
    let mut errors = Vec::new();
    for (feature, max_results) in features {
        match (feature.as_str(), detector) {
            ("OBJECT_DETECTION", Some(detector)) => match detector.detect(&image, max_results) {
                Ok(objects) => {
                    let mut names: Vec<&str> = objects.iter().map(|o| o.name.as_str()).collect();
                    names.sort_unstable();
                    names.dedup();
                    result["ontologyClasses"] = names
                        .iter()
                        .map(|n| {
                            let parents = crate::detect::parent_names(n);
                            json!({"name": n, "parentNames": parents, "synonymNames": []})
                        })
                        .collect();
                    result["imageObjects"] = json!(objects);
                    result["objectDetectionModelVersion"] = json!(detector.model_version());
                }
                Err(message) => errors.push(json!({"code": "ModelFailure", "message": message})),
            },
            ("IMAGE_CLASSIFICATION", Some(detector)) => {
                // Labels from the detector's objects: one per name, best confidence.
                let mut labels: Vec<(String, f64)> = Vec::new();
                if let Ok(objects) = detector.detect(&image, 100) {
                    for object in objects {
                        match labels.iter_mut().find(|(n, _)| *n == object.name) {
                            Some((_, c)) => *c = c.max(object.confidence),
                            None => labels.push((object.name, object.confidence)),
                        }
                    }
                }
                labels.truncate(max_results);
                result["labels"] = labels
                    .iter()
                    .map(|(name, confidence)| json!({"name": name, "confidence": confidence}))
                    .collect();
                result["imageClassificationModelVersion"] = json!(detector.model_version());
            }
            ("TEXT_DETECTION", _) => match &models.text {
                Some(reader) => match reader.read(&image) {
                    Ok(text) => {
                        result["imageText"] = json!(text);
                        result["textDetectionModelVersion"] = json!(reader.model_version());
                    }
                    Err(message) => {
                        errors.push(json!({"code": "ModelFailure", "message": message}))
                    }
                },
                None => errors.push(json!({
                    "code": "TextDetectionUnavailable",
                    "message": "this emulator has no text reader: the local OCR models did not \
                                load (see models/README.md) and none was registered",
                })),
            },
            _ => {}
        }
    }
    result["errors"] = Value::Array(errors);
    EmuResponse::json(200, &result)
}

fn invalid(message: &str) -> EmuResponse {
    EmuResponse::error(400, "InvalidParameter", message)
}

/// `(featureType, maxResults)` pairs; `maxResults` defaults to 100 and must be 1..=1000.
fn parse_features(body: &Value) -> Result<Vec<(String, usize)>, String> {
    let list = body["features"]
        .as_array()
        .filter(|l| !l.is_empty())
        .ok_or("features is required and must be a non-empty array")?;
    let mut out = Vec::new();
    for feature in list {
        let kind = feature["featureType"]
            .as_str()
            .ok_or("every feature needs a featureType")?;
        if !FEATURE_TYPES.contains(&kind) {
            return Err(format!("unknown featureType {kind:?}"));
        }
        match &feature["language"] {
            Value::Null => {}
            Value::String(l)
                if kind == "TEXT_DETECTION" && TEXT_LANGUAGES.contains(&l.as_str()) => {}
            other => {
                return Err(format!(
                    "language {other} is not one of Vision's text detection languages"
                ))
            }
        }
        let max = match &feature["maxResults"] {
            Value::Null => 100,
            v => match v.as_u64() {
                Some(n @ 1..=1000) => n as usize,
                _ => return Err("maxResults must be an integer from 1 to 1000".into()),
            },
        };
        out.push((kind.to_string(), max));
    }
    Ok(out)
}

fn load_image(image: &Value, read_object: ObjectReader<'_>) -> Result<Vec<u8>, EmuResponse> {
    match image["source"].as_str() {
        Some("INLINE") => {
            let data = image["data"]
                .as_str()
                .ok_or_else(|| invalid("image.data is required for INLINE images"))?;
            if data.len() > MAX_IMAGE_BYTES / 3 * 4 + 4 {
                return Err(invalid("image is larger than 5 MB"));
            }
            base64::engine::general_purpose::STANDARD
                .decode(data)
                .map_err(|_| invalid("image.data is not valid base64"))
        }
        Some("OBJECT_STORAGE") => {
            let field = |name: &str| image[name].as_str().filter(|s| !s.is_empty());
            let (Some(namespace), Some(bucket), Some(object)) = (
                field("namespaceName"),
                field("bucketName"),
                field("objectName"),
            ) else {
                return Err(invalid(
                    "namespaceName, bucketName and objectName are required for OBJECT_STORAGE images",
                ));
            };
            read_object(namespace, bucket, object).ok_or_else(|| {
                EmuResponse::error(
                    404,
                    "NotAuthorizedOrNotFound",
                    &format!(
                        "object {object:?} in bucket {bucket:?} was not found or is not readable"
                    ),
                )
            })
        }
        _ => Err(invalid("image.source must be INLINE or OBJECT_STORAGE")),
    }
}

/// JPEG (`FF D8 FF`) or PNG (signature then `IHDR`), by content.
pub fn is_jpeg_or_png(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0xFF, 0xD8, 0xFF])
        || (bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.get(12..16) == Some(b"IHDR"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::vision::{BoundingPolygon, ImageObject, ImageText, Line, Vertex, Word};

    struct Fixed;

    impl Detector for Fixed {
        fn detect(&self, _: &[u8], max: usize) -> Result<Vec<ImageObject>, String> {
            let object = |name: &str, confidence| ImageObject {
                name: name.into(),
                confidence,
                bounding_polygon: BoundingPolygon {
                    normalized_vertices: vec![Vertex { x: 0.1, y: 0.1 }, Vertex { x: 0.5, y: 0.5 }],
                },
            };
            let mut all = vec![
                object("Dog", 0.9),
                object("Dog", 0.7),
                object("Person", 0.6),
            ];
            all.truncate(max);
            Ok(all)
        }

        fn model_version(&self) -> String {
            "test-1".into()
        }
    }

    /// Reads "HELLO WORLD" on one line, or fails when built with `fail`.
    struct FixedText {
        fail: bool,
    }

    impl TextReader for FixedText {
        fn read(&self, _: &[u8]) -> Result<ImageText, String> {
            if self.fail {
                return Err("the text model broke".into());
            }
            let polygon = BoundingPolygon {
                normalized_vertices: vec![Vertex { x: 0.1, y: 0.1 }, Vertex { x: 0.5, y: 0.2 }],
            };
            let word = |text: &str| Word {
                text: text.into(),
                confidence: 0.9,
                bounding_polygon: polygon.clone(),
            };
            Ok(ImageText {
                words: vec![word("HELLO"), word("WORLD")],
                lines: vec![Line {
                    text: "HELLO WORLD".into(),
                    confidence: 0.9,
                    bounding_polygon: polygon.clone(),
                    word_indexes: vec![0, 1],
                }],
            })
        }

        fn model_version(&self) -> String {
            "text-1".into()
        }
    }

    fn objects_only(detector: &Arc<dyn Detector>) -> Models {
        Models {
            detector: Some(Arc::clone(detector)),
            text: None,
        }
    }

    /// A PNG header claiming `width`×`height` (enough for the size check and the fake detector).
    fn png(width: u32, height: u32) -> Vec<u8> {
        let mut bytes = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        bytes.extend_from_slice(&width.to_be_bytes());
        bytes.extend_from_slice(&height.to_be_bytes());
        bytes.extend_from_slice(b"\x08\x02\0\0\0rest");
        bytes
    }

    const PNG: &[u8] = &[
        0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n', 0, 0, 0, 0x0d, b'I', b'H', b'D', b'R',
        0, 0, 0, 64, 0, 0, 0, 48, 8, 2, 0, 0, 0,
    ];

    fn request(body: Value) -> EmuRequest {
        EmuRequest {
            method: "POST".into(),
            raw_path: ANALYZE_PATH.into(),
            body: serde_json::to_vec(&body).unwrap(),
            ..EmuRequest::default()
        }
    }

    fn inline(bytes: &[u8], features: Value) -> Value {
        json!({"features": features, "compartmentId": "c",
               "image": {"source": "INLINE", "data": base64::engine::general_purpose::STANDARD.encode(bytes)}})
    }

    fn no_objects(_: &str, _: &str, _: &str) -> Option<Vec<u8>> {
        None
    }

    #[test]
    fn detection_answer_has_the_service_shape() {
        let detector: Arc<dyn Detector> = Arc::new(Fixed);
        let body = inline(
            PNG,
            json!([{"featureType": "OBJECT_DETECTION", "maxResults": 2},
                                      {"featureType": "IMAGE_CLASSIFICATION", "maxResults": 5}]),
        );
        let response = analyze(&request(body), &objects_only(&detector), &no_objects);
        assert_eq!(response.status, 200);
        let json: Value = serde_json::from_slice(&response.body).unwrap();
        assert_eq!(json["imageObjects"].as_array().unwrap().len(), 2);
        assert_eq!(
            json["labels"],
            json!([{"name": "Dog", "confidence": 0.9}, {"name": "Person", "confidence": 0.6}])
        );
        assert_eq!(json["objectDetectionModelVersion"], "test-1");
        assert_eq!(json["errors"], json!([]));
        assert!(json["imageText"].is_null() && json.get("objectProposals").is_some());
    }

    #[test]
    fn object_storage_sources_are_read_and_missing_ones_are_404() {
        let detector: Arc<dyn Detector> = Arc::new(Fixed);
        let reader = |ns: &str, b: &str, o: &str| {
            ((ns, b, o) == ("ns", "images", "a.png")).then(|| PNG.to_vec())
        };
        let body = |object: &str| {
            json!({"features": [{"featureType": "OBJECT_DETECTION"}],
            "image": {"source": "OBJECT_STORAGE", "namespaceName": "ns", "bucketName": "images", "objectName": object}})
        };
        assert_eq!(
            analyze(&request(body("a.png")), &objects_only(&detector), &reader).status,
            200
        );
        assert_eq!(
            analyze(&request(body("b.png")), &objects_only(&detector), &reader).status,
            404
        );
    }

    #[test]
    fn invalid_requests_are_400_and_no_detector_is_501() {
        let detector: Arc<dyn Detector> = Arc::new(Fixed);
        let cases = [
            json!({"image": {"source": "INLINE", "data": "AAAA"}}),
            inline(PNG, json!([{"featureType": "NOPE"}])),
            inline(
                PNG,
                json!([{"featureType": "OBJECT_DETECTION", "maxResults": 0}]),
            ),
            inline(b"GIF89a....", json!([{"featureType": "OBJECT_DETECTION"}])),
            json!({"features": [{"featureType": "OBJECT_DETECTION"}], "image": {"source": "INLINE", "data": "@@@"}}),
            json!({"features": [{"featureType": "OBJECT_DETECTION"}], "image": {"source": "URL"}}),
        ];
        for body in cases {
            let response = analyze(
                &request(body.clone()),
                &objects_only(&detector),
                &no_objects,
            );
            assert_eq!(response.status, 400, "{body}");
        }
        let big = inline(
            &[0xFF; MAX_IMAGE_BYTES + 1],
            json!([{"featureType": "OBJECT_DETECTION"}]),
        );
        assert_eq!(
            analyze(&request(big), &objects_only(&detector), &no_objects).status,
            400
        );
        for (width, height) in [(1, 1), (31, 64), (64, 31), (10_001, 64)] {
            let small = inline(
                &png(width, height),
                json!([{"featureType": "OBJECT_DETECTION"}]),
            );
            let response = analyze(&request(small), &objects_only(&detector), &no_objects);
            assert_eq!(response.status, 400, "{width}x{height}");
            assert!(String::from_utf8_lossy(&response.body).contains("32x32"));
        }
        let edge = inline(
            &png(32, 10_000),
            json!([{"featureType": "OBJECT_DETECTION"}]),
        );
        assert_eq!(
            analyze(&request(edge), &objects_only(&detector), &no_objects).status,
            200
        );
        let ok = inline(PNG, json!([{"featureType": "OBJECT_DETECTION"}]));
        let response = analyze(&request(ok), &Models::default(), &no_objects);
        assert_eq!(response.status, 501);
        assert!(String::from_utf8_lossy(&response.body).contains("no object detector"));
    }

    #[test]
    fn text_detection_answers_words_and_lines_alone_or_beside_objects() {
        let both = Models {
            detector: Some(Arc::new(Fixed)),
            text: Some(Arc::new(FixedText { fail: false })),
        };
        let text_only = json!([{"featureType": "TEXT_DETECTION", "language": "ENG"}]);
        let response = analyze(&request(inline(PNG, text_only.clone())), &both, &no_objects);
        assert_eq!(response.status, 200);
        let json: Value = serde_json::from_slice(&response.body).unwrap();
        assert_eq!(json["imageText"]["lines"][0]["text"], "HELLO WORLD");
        assert_eq!(json["imageText"]["lines"][0]["wordIndexes"], json!([0, 1]));
        assert_eq!(json["imageText"]["words"][1]["text"], "WORLD");
        assert!(json["imageText"]["words"][0]["boundingPolygon"]["normalizedVertices"].is_array());
        assert_eq!(json["textDetectionModelVersion"], "text-1");
        assert!(json["imageObjects"].is_null(), "objects were not asked for");

        let features = json!([{"featureType": "OBJECT_DETECTION", "maxResults": 5},
                              {"featureType": "TEXT_DETECTION"}]);
        let response = analyze(&request(inline(PNG, features.clone())), &both, &no_objects);
        let json: Value = serde_json::from_slice(&response.body).unwrap();
        assert_eq!(json["imageObjects"].as_array().unwrap().len(), 3);
        assert_eq!(json["imageText"]["words"].as_array().unwrap().len(), 2);
        assert_eq!(json["errors"], json!([]));

        // A text reader alone serves text, and refuses objects as a missing detector.
        let reader_only = Models {
            detector: None,
            text: Some(Arc::new(FixedText { fail: false })),
        };
        let response = analyze(&request(inline(PNG, text_only)), &reader_only, &no_objects);
        assert_eq!(response.status, 200);
        let response = analyze(&request(inline(PNG, features)), &reader_only, &no_objects);
        assert_eq!(response.status, 501);
    }

    #[test]
    fn a_text_failure_is_that_feature_s_error_and_objects_still_answer() {
        let features =
            json!([{"featureType": "OBJECT_DETECTION"}, {"featureType": "TEXT_DETECTION"}]);
        let broken = Models {
            detector: Some(Arc::new(Fixed)),
            text: Some(Arc::new(FixedText { fail: true })),
        };
        for (models, code) in [
            (broken, "ModelFailure"),
            (
                objects_only(&(Arc::new(Fixed) as Arc<dyn Detector>)),
                "TextDetectionUnavailable",
            ),
        ] {
            let response = analyze(
                &request(inline(PNG, features.clone())),
                &models,
                &no_objects,
            );
            assert_eq!(response.status, 200);
            let json: Value = serde_json::from_slice(&response.body).unwrap();
            assert_eq!(json["errors"][0]["code"], code);
            assert!(json["imageText"].is_null() && json["textDetectionModelVersion"].is_null());
            assert_eq!(json["imageObjects"].as_array().unwrap().len(), 3);
        }
    }

    #[test]
    fn an_unknown_text_language_is_400() {
        let detector: Arc<dyn Detector> = Arc::new(Fixed);
        for features in [
            json!([{"featureType": "TEXT_DETECTION", "language": "KLINGON"}]),
            json!([{"featureType": "TEXT_DETECTION", "language": 7}]),
            json!([{"featureType": "OBJECT_DETECTION", "language": "ENG"}]),
        ] {
            let response = analyze(
                &request(inline(PNG, features.clone())),
                &objects_only(&detector),
                &no_objects,
            );
            assert_eq!(response.status, 400, "{features}");
            assert!(String::from_utf8_lossy(&response.body).contains("InvalidParameter"));
        }
    }
}
