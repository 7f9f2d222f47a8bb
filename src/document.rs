//! The analysis document's whole life: one JSON document per image in the SODA collection,
//! written by the function (and, as `pending`, by the web app at upload and by the reconciler)
//! and read by the web app. Here are what it holds, how it is built (from an object's headers
//! and metadata, from an object event, from Vision's answer), its statuses and their names, and
//! the object names around it (`uploads/{id}`, `thumbs/{id}.jpg`, `previews/{id}.jpg`).
//!
//! Its key is [`crate::soda::document_key`] of namespace, bucket and object name, so every
//! writer finds the same document. The field list is documented in docs/API.md; unknown fields
//! are ignored on read, so older and newer writers can share a collection.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::event::ObjectEvent;
use crate::oci::object_storage::{Bucket, ObjectInfo};
use crate::oci::vision::{Analysis, ImageText, Vertex};
use crate::timefmt::{self, Precision};

/// Object metadata keys (`opc-meta-…`) the web app sets at upload and the function reads.
pub mod meta {
    use crate::oci::object_storage::ObjectInfo;

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

    /// The value of metadata `key` on `object`. Keys are compared without case: they travel as
    /// HTTP header names, which any proxy or service may re-case.
    pub(crate) fn get<'a>(object: &'a ObjectInfo, key: &str) -> Option<&'a str> {
        object
            .metadata
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }
}

/// The folder every upload goes to: the image with id `{id}` is the object `uploads/{id}`.
pub(crate) const UPLOAD_PREFIX: &str = "uploads/";
/// Where the web app stores each image's thumbnail (`thumbs/{id}.jpg`).
pub(crate) const THUMB_PREFIX: &str = "thumbs/";
/// Where the web app stores each image's preview (`previews/{id}.jpg`).
pub(crate) const PREVIEW_PREFIX: &str = "previews/";

/// Checks an image id (from a URL, a form, an object name): `None` unless it has exactly the
/// generated shape, `{24 lower-case hex}.{jpg|png}`, so no client text reaches a storage path.
pub(crate) fn parse_id(id: &str) -> Option<&str> {
    let (stem, ext) = id.split_once('.')?;
    let ok = stem.len() == 24
        && stem
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && matches!(ext, "jpg" | "png");
    ok.then_some(id)
}

/// A new image id: the inverted millisecond clock (so listings, which sort by name, put the
/// newest first) and 52 random bits (so ids made in the same millisecond never collide in
/// practice; the upload's PUT is `if-none-match: *` as well).
pub(crate) fn new_id(ext: &str) -> String {
    let millis = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64;
    let inverted = 0xFFF_FFFF_FFFF_u64.saturating_sub(millis);
    let random = u64::from_le_bytes(crate::random::bytes::<8>()) & 0xF_FFFF_FFFF_FFFF;
    format!("{inverted:011x}{random:013x}.{ext}")
}

/// The object name of an image id.
pub(crate) fn object_name(id: &str) -> String {
    format!("{UPLOAD_PREFIX}{id}")
}

/// The image id of an object name, when it is one of the web app's uploads.
pub(crate) fn id_of(name: &str) -> Option<&str> {
    name.strip_prefix(UPLOAD_PREFIX).and_then(parse_id)
}

/// The object name of an image's thumbnail.
pub(crate) fn thumb_name(id: &str) -> String {
    format!("{THUMB_PREFIX}{id}.jpg")
}

/// The object name of an image's preview.
pub(crate) fn preview_name(id: &str) -> String {
    format!("{PREVIEW_PREFIX}{id}.jpg")
}

/// The image id a rendition's object name belongs to (`thumbs/{id}.jpg` → `{id}`).
pub(crate) fn id_of_rendition(name: &str) -> Option<&str> {
    let rest = name
        .strip_prefix(THUMB_PREFIX)
        .or_else(|| name.strip_prefix(PREVIEW_PREFIX))?;
    parse_id(rest.strip_suffix(".jpg")?)
}

/// True for the web app's renditions (thumbnails, previews): objects that are never analysed.
pub(crate) fn is_rendition(name: &str) -> bool {
    name.starts_with(THUMB_PREFIX) || name.starts_with(PREVIEW_PREFIX)
}

/// A time as documents write it (RFC 3339, UTC, milliseconds).
pub(crate) fn timestamp(at: SystemTime) -> String {
    timefmt::format(at, Precision::Millis)
}

/// Now, as documents write it.
pub(crate) fn now() -> String {
    timestamp(SystemTime::now())
}

/// A time as documents and Object Storage write it: RFC 3339 (documents, listings) or an HTTP
/// date (`last-modified`). The one parser for both, so no reader accepts only one of them.
pub(crate) fn parse_time(text: &str) -> Option<SystemTime> {
    timefmt::parse(text).or_else(|| httpdate::parse_http_date(text).ok())
}

/// Where an image is in the pipeline. Its name ([`Status::name`]) is what documents store, and
/// what markup classes, query strings and the JSON API use.
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

impl Status {
    /// Every status, in pipeline order.
    pub const ALL: [Status; 5] = [
        Status::Pending,
        Status::Analyzing,
        Status::Waiting,
        Status::Done,
        Status::Failed,
    ];

    /// The status's name, as stored (`pending`, `analyzing`, `waiting`, `done`, `failed`).
    pub fn name(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Analyzing => "analyzing",
            Status::Waiting => "waiting",
            Status::Done => "done",
            Status::Failed => "failed",
        }
    }

    /// The status named `text`, in any case; `None` for anything else.
    pub fn parse(text: &str) -> Option<Status> {
        Status::ALL
            .into_iter()
            .find(|s| s.name().eq_ignore_ascii_case(text))
    }
}

/// Why an analysis failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// A stable code (`TooLarge`, `VisionUnavailable`, the service's own code, …).
    pub code: String,
    /// A sentence for a person.
    pub message: String,
}

impl Failure {
    /// The failure of an analysis whose Vision call failed for good after `attempts`: the
    /// service's code when it gave one (`Http{status}` when not), `VisionUnavailable` when it
    /// could not be reached.
    pub(crate) fn vision(error: &Error, attempts: u32) -> Failure {
        let (code, detail) = match error.service_error() {
            Some(e) if !e.code.is_empty() => (
                e.code.clone(),
                format!("Vision answered {} {}: {}", e.status, e.code, e.message),
            ),
            Some(e) => (
                format!("Http{}", e.status),
                format!("Vision answered {}: {}", e.status, e.message),
            ),
            None => (
                "VisionUnavailable".to_string(),
                format!("Vision could not be reached: {error}"),
            ),
        };
        Failure {
            message: format!("analysis attempt {attempts} failed after retries. {detail}"),
            code,
        }
    }
}

/// One detected object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectedObject {
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

/// One line of text found in the image (TEXT_DETECTION), with its words.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextLine {
    /// The line as read.
    pub text: String,
    /// 0..1.
    pub confidence: f64,
    /// Corners as fractions of width and height, clockwise from the top-left.
    pub polygon: Vec<Vertex>,
    /// Its words, left to right.
    #[serde(default)]
    pub words: Vec<TextWord>,
}

/// One word of a [`TextLine`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextWord {
    /// The word as read.
    pub text: String,
    /// 0..1.
    pub confidence: f64,
    /// Corners as fractions of width and height, clockwise from the top-left.
    pub polygon: Vec<Vertex>,
}

/// Most detected words that become search terms (a page of small print stays a small document).
const MAX_WORD_TERMS: usize = 500;

/// A term as searches compare it: lower case, accents folded to their base letter (`Café` →
/// `cafe`, `Straße` → `strasse`), inner runs of white space made one space, ends trimmed. Both
/// the terms a document stores and the term a search asks for go through here.
pub fn search_form(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.trim().chars().flat_map(char::to_lowercase) {
        if c.is_whitespace() {
            if !out.ends_with(' ') {
                out.push(' ');
            }
            continue;
        }
        match fold(c) {
            Some(base) => out.push_str(base),
            None => out.push(c),
        }
    }
    out
}

/// The base letters of a lower-case Latin letter with a diacritic (Latin-1 and Latin
/// Extended-A, which cover the languages Vision reads in Latin script); `None` for the rest.
fn fold(c: char) -> Option<&'static str> {
    Some(match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' => "a",
        'ç' | 'ć' | 'ĉ' | 'ċ' | 'č' => "c",
        'ď' | 'đ' | 'ð' => "d",
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ĕ' | 'ė' | 'ę' | 'ě' => "e",
        'ĝ' | 'ğ' | 'ġ' | 'ģ' => "g",
        'ĥ' | 'ħ' => "h",
        'ì' | 'í' | 'î' | 'ï' | 'ĩ' | 'ī' | 'ĭ' | 'į' | 'ı' => "i",
        'ĵ' => "j",
        'ķ' => "k",
        'ĺ' | 'ļ' | 'ľ' | 'ŀ' | 'ł' => "l",
        'ñ' | 'ń' | 'ņ' | 'ň' => "n",
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ŏ' | 'ő' => "o",
        'ŕ' | 'ŗ' | 'ř' => "r",
        'ś' | 'ŝ' | 'ş' | 'š' | 'ș' => "s",
        'ţ' | 'ť' | 'ŧ' | 'ț' => "t",
        'ù' | 'ú' | 'û' | 'ü' | 'ũ' | 'ū' | 'ŭ' | 'ů' | 'ű' | 'ų' => "u",
        'ŵ' => "w",
        'ý' | 'ÿ' | 'ŷ' => "y",
        'ź' | 'ż' | 'ž' => "z",
        'ß' => "ss",
        'æ' => "ae",
        'œ' => "oe",
        'þ' => "th",
        _ => return None,
    })
}

/// The whole words of `text` in [`search_form`]: runs of letters and digits, two characters or
/// more (a lone letter is mostly noise from the reader).
fn words_of(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= 2)
        .map(search_form)
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
    /// `textDetectionModelVersion`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_detection: Option<String>,
}

/// What Vision analysed for a document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnalyzedImage {
    /// The object the analysis is of.
    pub object: String,
    /// Set when Vision saw an upright copy instead of the stored bytes (turned by EXIF, over
    /// 5 MB, or over 10,000 px a side), made by the function and sent inline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upright_copy: Option<UprightCopy>,
}

/// The upright copy Vision analysed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UprightCopy {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Size of the JPEG sent.
    pub bytes: u64,
    /// Why the original was not sent as it is.
    pub reason: String,
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
    /// Width in pixels, upright (the EXIF orientation applied), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    /// Height in pixels, upright, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// When the photo was taken (RFC 3339), when the camera recorded its time zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub taken_at: Option<String>,
    /// The camera's clock when the photo was taken (`YYYY-MM-DDTHH:MM:SS`, EXIF
    /// `DateTimeOriginal`); its zone is known only when [`AnalysisDocument::taken_at`] is set.
    /// The gallery's "date taken" order sorts on this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub taken_local: Option<String>,
    /// Camera maker (EXIF `Make`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub camera_make: Option<String>,
    /// Camera model (EXIF `Model`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub camera_model: Option<String>,
    /// What Vision analysed: the stored image, or an upright copy of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analyzed: Option<AnalyzedImage>,
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
    pub objects: Vec<DetectedObject>,
    /// Image-level labels, when requested.
    #[serde(default)]
    pub labels: Vec<LabelScore>,
    /// Label ontology.
    #[serde(default)]
    pub ontology: Vec<Ontology>,
    /// Lines of text found in the image (TEXT_DETECTION), in reading order; absent when text
    /// was not asked for, none was found, or the document predates text.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub text: Vec<TextLine>,
    /// Why text detection failed, when it did while objects were found (the analysis is still
    /// `done`: its objects are good).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_error: Option<Failure>,
    /// What a search matches: [`AnalysisDocument::search_terms`] as written with the analysis
    /// (lower case, unique), so one QBE (`{"terms": "vehicle"}`) searches everything.
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
            width: None,
            height: None,
            taken_at: None,
            taken_local: None,
            camera_make: None,
            camera_model: None,
            analyzed: None,
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
            text: Vec::new(),
            text_error: None,
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

    /// A `pending` document for object `name` of `bucket`, from its headers and metadata as of
    /// `now`: what the web app writes at upload (from the object it is about to store, eTag not
    /// yet known) and for an object found without a document.
    pub(crate) fn from_object(
        bucket: &Bucket,
        name: &str,
        object: &ObjectInfo,
        now: SystemTime,
    ) -> AnalysisDocument {
        let mut doc = AnalysisDocument::new(&bucket.namespace, &bucket.name, name, Status::Pending);
        doc.describe(object, now);
        doc
    }

    /// The document an object event leads to, once the object has been read: the stored one
    /// (`existing`), or a new `pending` one, brought up to date with the object and marked with
    /// the event's id.
    pub(crate) fn from_event(
        existing: Option<AnalysisDocument>,
        event: &ObjectEvent,
        object: &ObjectInfo,
        now: SystemTime,
    ) -> AnalysisDocument {
        let mut doc = existing.unwrap_or_else(|| {
            AnalysisDocument::new(
                &event.namespace,
                &event.bucket,
                &event.name,
                Status::Pending,
            )
        });
        doc.describe(object, now);
        doc.event_id = Some(event.event_id.clone()).filter(|e| !e.is_empty());
        doc
    }

    /// Brings the document up to date with what the object says about itself; every builder
    /// goes through here. Another version of the object (another eTag) starts over: attempts
    /// and results are cleared. Metadata the object lacks keeps the document's value, and the
    /// upload time, once known, is kept (the upload writes it before the object exists).
    fn describe(&mut self, object: &ObjectInfo, now: SystemTime) {
        if self.etag != object.etag {
            self.attempts = 0;
            self.objects.clear();
            self.labels.clear();
            self.ontology.clear();
            self.text.clear();
            self.text_error = None;
            self.terms.clear();
            self.analyzed_at = None;
        }
        let metadata = |key: &str| meta::get(object, key).map(str::to_string);
        self.etag = object.etag.clone();
        self.size = object.content_length;
        self.content_type = object.content_type.clone();
        // The web app percent-encodes the name (metadata headers are ASCII); the document holds
        // it as the person typed it.
        self.original_name = metadata(meta::ORIGINAL_NAME)
            .map(|v| crate::oci::encode::percent_decode(&v).unwrap_or(v))
            .or(self.original_name.take());
        self.sha256 = metadata(meta::SHA256).or(self.sha256.take());
        self.correlation_id = metadata(meta::REQUEST_ID).or(self.correlation_id.take());
        if self.uploaded_at.is_empty() {
            self.uploaded_at = timestamp(parse_time(&object.last_modified).unwrap_or(now));
        }
        self.updated_at = timestamp(now);
    }

    /// Records what the photo's header says: its upright size and its EXIF date and camera
    /// (never its location: `exif.rs` does not read GPS).
    pub(crate) fn describe_photo(&mut self, info: &crate::image_info::ImageInfo) {
        self.width = Some(info.width);
        self.height = Some(info.height);
        self.taken_at = info.exif.taken_at();
        self.taken_local = info.exif.taken_local.clone();
        self.camera_make = info.exif.make.clone();
        self.camera_model = info.exif.model.clone();
    }

    /// Records Vision's answer as of `now`: its results copied in, then `done`, or `failed`
    /// with the first feature error Vision reported. A feature error with the objects answered
    /// (not null) belongs to another feature, in practice text: the analysis is `done` and the
    /// error kept as `text_error`.
    pub(crate) fn record_analysis(&mut self, analysis: &Analysis, now: SystemTime) {
        self.set_analysis(analysis);
        let objects_answered = analysis
            .raw
            .get("imageObjects")
            .is_some_and(|v| !v.is_null());
        let first_error = analysis.errors.first().map(|e| Failure {
            code: e.code.clone(),
            message: e.message.clone(),
        });
        self.text_error = None;
        match first_error {
            Some(failure) if objects_answered => {
                self.status = Status::Done;
                self.error = None;
                self.text_error = Some(failure);
            }
            Some(failure) => {
                self.status = Status::Failed;
                self.error = Some(failure);
            }
            None => {
                self.status = Status::Done;
                self.error = None;
            }
        }
        self.analyzed_at = Some(timestamp(now));
    }

    /// Copies a Vision answer in: objects (best first), labels, ontology, model versions.
    fn set_analysis(&mut self, analysis: &Analysis) {
        let mut objects: Vec<DetectedObject> = analysis
            .image_objects
            .iter()
            .map(|o| DetectedObject {
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
        self.text = analysis
            .image_text
            .as_ref()
            .map(text_lines)
            .unwrap_or_default();
        self.model_versions = ModelVersions {
            object_detection: analysis.object_detection_model_version.clone(),
            image_classification: analysis.image_classification_model_version.clone(),
            text_detection: analysis.text_detection_model_version.clone(),
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

    /// Every term this image can be found by: object names, labels and their ontology parents
    /// (lower case, as `label=` compares them, and in [`search_form`] too when that differs),
    /// and the whole words of its text in [`search_form`] (at most 500); sorted, unique.
    pub fn search_terms(&self) -> Vec<String> {
        let labels = self
            .objects
            .iter()
            .map(|o| o.name.as_str())
            .chain(self.labels.iter().map(|l| l.name.as_str()))
            .chain(self.ontology.iter().flat_map(|o| {
                std::iter::once(o.name.as_str()).chain(o.parents.iter().map(String::as_str))
            }));
        let mut terms: Vec<String> = Vec::new();
        for label in labels {
            terms.push(label.to_lowercase());
            terms.push(search_form(label));
        }
        let words = self
            .text
            .iter()
            .flat_map(|line| line.words.iter())
            .flat_map(|word| words_of(&word.text))
            .take(MAX_WORD_TERMS);
        terms.extend(words);
        terms.sort();
        terms.dedup();
        terms
    }

    /// The text found, one line per entry, in reading order.
    pub fn text_lines(&self) -> impl Iterator<Item = &str> {
        self.text.iter().map(|l| l.text.as_str())
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

/// Vision's lines with their words nested (a word in no line is dropped: Vision puts every word
/// in a line).
fn text_lines(text: &ImageText) -> Vec<TextLine> {
    text.lines
        .iter()
        .map(|line| TextLine {
            text: line.text.clone(),
            confidence: line.confidence,
            polygon: line.bounding_polygon.normalized_vertices.clone(),
            words: line
                .word_indexes
                .iter()
                .filter_map(|&i| text.words.get(i))
                .map(|w| TextWord {
                    text: w.text.clone(),
                    confidence: w.confidence,
                    polygon: w.bounding_polygon.normalized_vertices.clone(),
                })
                .collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ServiceError;
    use crate::event::EventKind;
    use serde_json::json;

    fn object(etag: &str, last_modified: &str, metadata: &[(&str, &str)]) -> ObjectInfo {
        ObjectInfo {
            etag: etag.into(),
            content_length: 1234,
            content_type: "image/jpeg".into(),
            last_modified: last_modified.into(),
            metadata: metadata
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn bucket() -> Bucket {
        Bucket {
            namespace: "ns".into(),
            name: "images".into(),
        }
    }

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
    fn a_document_written_before_still_reads() {
        let stored = json!({
            "schema": 1, "image_name": "uploads/0123456789abcdef01234567.jpg",
            "bucket_name": "images", "namespace": "ns", "etag": "e", "size": 5,
            "content_type": "image/jpeg", "original_name": "My Dog.jpg", "sha256": "abc",
            "status": "done", "attempts": 1, "uploaded_at": "2025-03-01T10:15:31.000Z",
            "analyzed_at": "2025-03-01T10:15:33.000Z", "updated_at": "2025-03-01T10:15:33.000Z",
            "objects": [{"name": "Dog", "confidence": 0.9, "polygon": [{"x": 0.1, "y": 0.2}]}],
            "labels": [], "ontology": [{"name": "Dog", "parents": ["Animal"]}],
            "terms": ["animal", "dog"], "model_versions": {"object_detection": "1.3"},
            "timings": {"vision_ms": 800}, "correlation_id": "req-1", "event_id": "e-1"
        });
        let doc = AnalysisDocument::from_json(stored.clone()).unwrap();
        assert_eq!(doc.status, Status::Done);
        assert_eq!(
            doc.to_json(),
            stored,
            "same field names, nothing added or lost"
        );
    }

    #[test]
    fn status_names_round_trip() {
        for status in Status::ALL {
            assert_eq!(Status::parse(status.name()), Some(status));
            assert_eq!(json!(status), json!(status.name()), "the stored name");
            assert_eq!(
                serde_json::from_value::<Status>(json!(status.name())).unwrap(),
                status
            );
        }
        assert_eq!(Status::parse("Done"), Some(Status::Done));
        assert_eq!(Status::parse("FAILED"), Some(Status::Failed));
        assert_eq!(Status::parse("x"), None);
        assert_eq!(Status::parse(""), None);
    }

    #[test]
    fn ids_and_object_names_map_both_ways() {
        let a = new_id("jpg");
        assert!(parse_id(&a).is_some(), "{a}");
        std::thread::sleep(std::time::Duration::from_millis(3));
        let b = new_id("png");
        assert!(b < a, "newer ids sort first: {b} {a}");
        assert_ne!(new_id("jpg"), new_id("jpg"));
        for bad in [
            "",
            "../x.jpg",
            "0123456789abcdef01234567.gif",
            "0123456789ABCDEF01234567.jpg",
            "0123456789abcdef0123456.jpg",
            "0123456789abcdef01234567.jpg/raw",
            "0123456789abcdef01234567",
        ] {
            assert!(parse_id(bad).is_none(), "{bad}");
        }
        let id = "0123456789abcdef01234567.png";
        assert_eq!(object_name(id), "uploads/0123456789abcdef01234567.png");
        assert_eq!(id_of(&object_name(id)), Some(id));
        assert_eq!(id_of("other/0123456789abcdef01234567.jpg"), None);
        assert_eq!(thumb_name(id), "thumbs/0123456789abcdef01234567.png.jpg");
        assert_eq!(
            preview_name(id),
            "previews/0123456789abcdef01234567.png.jpg"
        );
        assert_eq!(id_of_rendition(&thumb_name(id)), Some(id));
        assert_eq!(id_of_rendition(&preview_name(id)), Some(id));
        assert_eq!(id_of_rendition(&object_name(id)), None);
        assert!(is_rendition(&thumb_name(id)) && is_rendition(&preview_name(id)));
        assert!(!is_rendition(&object_name(id)));
    }

    #[test]
    fn built_from_an_object_with_keys_in_any_case() {
        let now = timefmt::parse("2026-01-02T03:04:05.678Z").unwrap();
        let info = object(
            "e1",
            "Sun, 06 Nov 1994 08:49:37 GMT",
            &[
                ("Original-Name", "My%20Dog.jpg"),
                ("SHA256", "abc"),
                ("request-id", "req-1"),
            ],
        );
        let doc = AnalysisDocument::from_object(&bucket(), "uploads/x.jpg", &info, now);
        assert_eq!(doc.status, Status::Pending);
        assert_eq!(
            (doc.namespace.as_str(), doc.bucket_name.as_str()),
            ("ns", "images")
        );
        assert_eq!(doc.original_name.as_deref(), Some("My Dog.jpg"));
        assert_eq!(doc.sha256.as_deref(), Some("abc"));
        assert_eq!(doc.correlation_id.as_deref(), Some("req-1"));
        assert_eq!((doc.etag.as_str(), doc.size), ("e1", 1234));
        assert_eq!(doc.content_type, "image/jpeg");
        assert_eq!(doc.uploaded_at, "1994-11-06T08:49:37.000Z");
        assert_eq!(doc.updated_at, "2026-01-02T03:04:05.678Z");
        assert_eq!(meta::get(&info, "original-NAME"), Some("My%20Dog.jpg"));
    }

    #[test]
    fn object_times_are_read_in_both_forms() {
        let now = timefmt::parse("2026-01-02T03:04:05.678Z").unwrap();
        let uploaded = |last_modified: &str| {
            AnalysisDocument::from_object(&bucket(), "x", &object("e", last_modified, &[]), now)
                .uploaded_at
        };
        assert_eq!(
            uploaded("Sun, 06 Nov 1994 08:49:37 GMT"),
            "1994-11-06T08:49:37.000Z"
        );
        assert_eq!(
            uploaded("1994-11-06T08:49:37.250Z"),
            "1994-11-06T08:49:37.250Z"
        );
        assert_eq!(uploaded(""), "2026-01-02T03:04:05.678Z", "unknown: now");
        assert_eq!(uploaded("yesterday"), "2026-01-02T03:04:05.678Z");
    }

    #[test]
    fn an_event_keeps_what_the_object_does_not_say_and_starts_over_on_a_new_version() {
        let now = timefmt::parse("2026-01-02T03:04:05.678Z").unwrap();
        let mut event = ObjectEvent::new(EventKind::Update, "ns", "images", "uploads/x.jpg", None);
        event.event_id = "e-9".into();
        // The upload's pending document: no eTag yet, its own upload time.
        let mut upload = AnalysisDocument::new("ns", "images", "uploads/x.jpg", Status::Pending);
        upload.original_name = Some("cat.jpg".into());
        upload.uploaded_at = "2025-01-01T00:00:00.000Z".into();
        let info = object("e1", "Sun, 06 Nov 1994 08:49:37 GMT", &[("sha256", "abc")]);
        let mut doc = AnalysisDocument::from_event(Some(upload), &event, &info, now);
        assert_eq!(doc.original_name.as_deref(), Some("cat.jpg"), "kept");
        assert_eq!(doc.sha256.as_deref(), Some("abc"));
        assert_eq!(doc.uploaded_at, "2025-01-01T00:00:00.000Z", "kept");
        assert_eq!(doc.event_id.as_deref(), Some("e-9"));
        assert_eq!(doc.etag, "e1");

        doc.attempts = 2;
        doc.objects.push(DetectedObject {
            name: "Cat".into(),
            confidence: 0.9,
            polygon: Vec::new(),
        });
        let same = AnalysisDocument::from_event(Some(doc.clone()), &event, &info, now);
        assert_eq!((same.attempts, same.objects.len()), (2, 1), "same version");
        let replaced = object("e2", "", &[]);
        let fresh = AnalysisDocument::from_event(Some(doc), &event, &replaced, now);
        assert_eq!((fresh.attempts, fresh.objects.len()), (0, 0), "new version");

        let none = AnalysisDocument::from_event(None, &event, &info, now);
        assert_eq!(none.status, Status::Pending);
        assert_eq!(none.uploaded_at, "1994-11-06T08:49:37.000Z");
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
        let mut doc = AnalysisDocument::new("ns", "b", "x.jpg", Status::Analyzing);
        doc.record_analysis(&analysis, SystemTime::UNIX_EPOCH);
        assert_eq!(doc.status, Status::Done);
        assert_eq!(doc.analyzed_at.as_deref(), Some("1970-01-01T00:00:00.000Z"));
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
    }

    #[test]
    fn vision_failures_are_recorded_with_a_code() {
        let refused = Analysis::from_json(json!({
            "imageObjects": null,
            "errors": [{"code": "InvalidImage", "message": "cannot read"}]
        }))
        .unwrap();
        let mut doc = AnalysisDocument::new("ns", "b", "x.jpg", Status::Analyzing);
        doc.record_analysis(&refused, SystemTime::UNIX_EPOCH);
        assert_eq!(doc.status, Status::Failed);
        assert_eq!(doc.error.as_ref().unwrap().code, "InvalidImage");
        assert_eq!(doc.text_error, None);

        // Objects answered, text failed: done, with the text's error beside the objects.
        let text_failed = Analysis::from_json(json!({
            "imageObjects": [{"name": "Dog", "confidence": 0.9, "boundingPolygon": {"normalizedVertices": []}}],
            "imageText": null,
            "errors": [{"code": "ModelFailure", "message": "text model broke"}]
        }))
        .unwrap();
        doc.record_analysis(&text_failed, SystemTime::UNIX_EPOCH);
        assert_eq!((doc.status, doc.error.as_ref()), (Status::Done, None));
        assert_eq!(doc.text_error.as_ref().unwrap().code, "ModelFailure");
        assert_eq!(doc.objects.len(), 1);

        let answer = |status: u16, code: &str| {
            Error::Service(ServiceError {
                service: "vision",
                status,
                code: code.into(),
                message: "m".into(),
                request_id: String::new(),
                retry_after: None,
            })
        };
        assert_eq!(
            Failure::vision(&answer(429, "TooManyRequests"), 2).code,
            "TooManyRequests"
        );
        assert_eq!(Failure::vision(&answer(503, ""), 1).code, "Http503");
        let unreachable = Error::Transport {
            service: "vision",
            detail: "refused".into(),
        };
        let failure = Failure::vision(&unreachable, 3);
        assert_eq!(failure.code, "VisionUnavailable");
        assert!(failure.message.starts_with("analysis attempt 3 failed"));
    }

    #[test]
    fn search_form_folds_case_accents_and_spaces() {
        assert_eq!(search_form("  Café  Crème "), "cafe creme");
        assert_eq!(search_form("STRASSE"), search_form("Straße"));
        assert_eq!(search_form("Łódź Ñandú"), "lodz nandu");
        assert_eq!(search_form("Hot Dog"), "hot dog");
        assert_eq!(search_form("東京"), "東京", "other scripts are kept");
        let words: Vec<String> = words_of("Fresh-bread, 7am! a Café").collect();
        assert_eq!(words, ["fresh", "bread", "7am", "cafe"]);
    }

    #[test]
    fn text_is_stored_by_line_with_words_and_searchable_by_word() {
        let polygon = json!({"normalizedVertices": [{"x": 0.1, "y": 0.1}, {"x": 0.6, "y": 0.1},
            {"x": 0.6, "y": 0.2}, {"x": 0.1, "y": 0.2}]});
        let analysis = Analysis::from_json(json!({
            "imageObjects": [{"name": "Stop Sign", "confidence": 0.8, "boundingPolygon": polygon}],
            "imageText": {
                "words": [{"text": "CAFÉ", "confidence": 0.97, "boundingPolygon": polygon},
                          {"text": "Open,", "confidence": 0.91, "boundingPolygon": polygon},
                          {"text": "x", "confidence": 0.5, "boundingPolygon": polygon}],
                "lines": [{"text": "CAFÉ Open, x", "confidence": 0.93, "boundingPolygon": polygon,
                           "wordIndexes": [0, 1, 2, 9]}]
            },
            "objectDetectionModelVersion": "1.3", "textDetectionModelVersion": "PP-OCRv4 (local)",
            "errors": []
        }))
        .unwrap();
        let mut doc = AnalysisDocument::new("ns", "b", "x.jpg", Status::Analyzing);
        doc.record_analysis(&analysis, SystemTime::UNIX_EPOCH);
        assert_eq!(doc.status, Status::Done);
        assert_eq!(doc.text.len(), 1);
        assert_eq!(
            doc.text[0].words.len(),
            3,
            "the out-of-range index is dropped"
        );
        assert_eq!(doc.text[0].words[0].confidence, 0.97);
        assert_eq!(doc.text[0].polygon.len(), 4);
        assert_eq!(doc.text_lines().collect::<Vec<_>>(), ["CAFÉ Open, x"]);
        assert_eq!(
            doc.model_versions.text_detection.as_deref(),
            Some("PP-OCRv4 (local)")
        );
        assert_eq!(doc.terms, ["cafe", "open", "stop sign"]);
        let json = doc.to_json();
        assert_eq!(json["text"][0]["words"][1]["text"], "Open,");
        assert_eq!(json["model_versions"]["text_detection"], "PP-OCRv4 (local)");
        assert_eq!(AnalysisDocument::from_json(json).unwrap(), doc);

        // Without text: no text field at all, as documents were before.
        let objects_only =
            Analysis::from_json(json!({"imageObjects": [], "imageText": null})).unwrap();
        doc.record_analysis(&objects_only, SystemTime::UNIX_EPOCH);
        let json = doc.to_json();
        assert!(json.get("text").is_none() && json.get("text_error").is_none());
        assert!(json["model_versions"].get("text_detection").is_none());
    }
}
