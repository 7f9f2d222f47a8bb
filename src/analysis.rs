//! What the function does with one Object Storage event: check the object, ask Vision, and keep
//! exactly one analysis document per object, idempotently.
//!
//! - create / update: read the document; when it is already `done` for the event's eTag, this
//!   is a duplicate delivery and nothing changes. Then one ranged GET gives the object's headers
//!   and first bytes (gone → remove any document; a different eTag → the event is stale and
//!   ignored; a 404 about the bucket, which is also OCI's answer to a caller without `read
//!   objects`, → a `failed` document naming both causes). Files that cannot be analysed (not
//!   JPEG/PNG, under 32 px a side, a panorama past 50 MP) get a `failed` document with a
//!   reason and no Vision call. Otherwise the document goes `analyzing` with the photo's
//!   upright size, date taken and camera; Vision runs on the OBJECT_STORAGE source when it can
//!   take the object as stored, else on an upright copy within its limits sent inline (turned
//!   by EXIF, over 5 MB, over 10,000 px a side: `picture::analysis_copy`); the result is
//!   written, and the object is checked again: if it was deleted meanwhile, the document is
//!   removed.
//! - delete: the document is removed.
//! - objects under the web app's rendition prefixes (`thumbs/`, `previews/`) are ignored.
//!
//! Vision calls are paced (`pacer.rs`): each takes a send slot shared by every instance, so
//! Vision sees a steady stream at `VISION_TPS`. When no slot is free within what the call can
//! wait, or Vision keeps answering 429, the document goes `waiting` with its `next_attempt` and
//! the call answers success: throttling is never a failure, and nothing is retried blindly
//! (the reconciler invokes waiting images again; docs/SCALING.md).
//!
//! Every outbound call is bounded by the call's deadline minus a margin; retries happen in the
//! transport, except Vision's, which this module makes itself so that each one takes a slot.
//! Failures the pipeline cannot finish become a `failed` document (when the database is
//! reachable) and a 502, so the platform's logs show them.

use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{json, Value};

use crate::config::{self, CloudConfig};
use crate::document::{self, AnalysisDocument, AnalyzedImage, Failure, Status, UprightCopy};
use crate::error::{Error, ServiceError};
use crate::event::{EventKind, ObjectEvent};
use crate::exif::Orientation;
use crate::fdk::CallResult;
use crate::image_info::{self, ImageInfo};
use crate::oci::auth::{self, KeyProvider, ResourcePrincipalProvider};
use crate::oci::client::{Auth, RetryPolicy, Transport, TransportConfig};
use crate::oci::object_storage::{Bucket, Download, ObjectInfo, ObjectStorage};
use crate::oci::secrets::Secrets;
use crate::oci::vision::{Analysis, AnalyzeImage, ImageSource, Vision};
use crate::pacer::{self, Reservation};
use crate::picture;
use crate::soda::{document_key, CachedSoda};
use crate::vision_fallback::InlineFallback;

/// How much of an image comes with its headers: enough for its type and dimensions in nearly
/// every file (a PNG needs 24 bytes; a JPEG's frame header follows its metadata segments).
const FIRST_BYTES: u64 = 64 * 1024;

/// How far a JPEG's frame header is looked for when large metadata pushes it past
/// [`FIRST_BYTES`] (a second, ranged GET).
const HEADER_BYTES: u64 = 256 * 1024;

/// Largest original the function reads (streamed, for its upright copy): far past any photo,
/// a bound on what a stray object can cost.
const MAX_ORIGINAL_BYTES: u64 = 1024 * 1024 * 1024;

/// The image's kind, upright size and EXIF from its first bytes, refused as the upload would
/// refuse it (not JPEG or PNG, empty, under 32 px a side, a panorama past 50 MP). Larger than
/// Vision takes is fine: the upright copy fits.
fn photo_info(head: &[u8], size: u64) -> Result<ImageInfo, image_info::Refusal> {
    image_info::validate(head, size, MAX_ORIGINAL_BYTES)
}

/// Time kept back from the call's deadline for the Vision call itself and the writes after
/// it: a send slot later than the deadline minus this defers the image instead.
const VISION_ALLOWANCE: Duration = Duration::from_secs(15);

/// 429s in one call (despite pacing) after which the image is deferred rather than retried.
const MAX_THROTTLED: u32 = 3;

/// Failed Vision attempts (5xx, unreachable) in one call before the analysis fails.
const MAX_VISION_ATTEMPTS: u32 = 5;

/// Unpaced (`VISION_TPS=0`), the longest wait after a 429 (full jitter below it).
const THROTTLE_PAUSE: Duration = Duration::from_secs(1);

/// When an image deferred by sustained 429s is tried again (plus up to as much again, random,
/// so deferred images do not all come back together).
const THROTTLED_RETRY: Duration = Duration::from_secs(10);

/// The function's settings.
#[derive(Debug, Clone)]
pub struct AnalyzerConfig {
    /// Only events for this bucket are handled.
    pub bucket: String,
    /// The compartment billed for Vision calls.
    pub compartment_id: String,
    /// OBJECT_DETECTION `maxResults`.
    pub max_results: u32,
    /// Also ask for image-level labels (this many).
    pub max_labels: Option<u32>,
    /// Also ask for TEXT_DETECTION in the same call (`VISION_TEXT`, on by default).
    pub text: bool,
    /// Time kept back from the call's deadline to answer in time.
    pub margin: Duration,
    /// Largest image analysed.
    pub max_image_bytes: u64,
    /// Vision requests per second shared by every instance (the tenancy's limit); 0 turns
    /// pacing off (`VISION_TPS`; default from the region, `pacer::default_tps`).
    pub vision_tps: f64,
    /// The longest a call waits for its send slot before deferring the image
    /// (`VISION_MAX_WAIT`, seconds; default: as long as the deadline allows).
    pub max_slot_wait: Option<Duration>,
    /// Shared schedule, or per instance where ORDS ignores conditional writes
    /// (`ORDS_CONDITIONAL_WRITES`, `FUNCTION_MAX_INSTANCES`; pacer.rs).
    pub pacing: pacer::Pacing,
}

/// How the paced Vision call ended.
enum Paced {
    /// Vision answered, or failed for good.
    Answered(crate::Result<Analysis>),
    /// No slot in time, or sustained 429: try again at this time.
    Deferred(SystemTime, &'static str),
}

/// Turns events into documents. Built once per container; `handle` is called per event.
#[derive(Debug)]
pub struct Analyzer {
    object_storage: ObjectStorage,
    vision: Vision,
    soda: CachedSoda,
    config: AnalyzerConfig,
    /// Images sent inline where Vision refuses the object source (vision_fallback.rs).
    inline: crate::vision_fallback::InlineFallback,
}

impl Analyzer {
    /// Wraps the clients.
    pub fn new(
        object_storage: ObjectStorage,
        vision: Vision,
        soda: CachedSoda,
        config: AnalyzerConfig,
    ) -> Analyzer {
        Analyzer {
            object_storage,
            vision,
            soda,
            config,
            inline: Default::default(),
        }
    }

    /// Builds the clients and the analyzer from the environment, once per container:
    /// credentials (resource principal when `OCI_RESOURCE_PRINCIPAL_VERSION` is set, else the
    /// OCI config file), endpoints, and the function's settings (see func/main.rs).
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> crate::Result<Analyzer> {
        let (keys, own_compartment): (Arc<dyn KeyProvider>, Option<String>) =
            if lookup("OCI_RESOURCE_PRINCIPAL_VERSION").is_some() {
                let provider = ResourcePrincipalProvider::from_env(lookup)?;
                let compartment = provider.claims().res_compartment.clone();
                (Arc::new(provider), compartment)
            } else {
                (auth::from_env(lookup)?, None)
            };
        let provider_region = keys.region();
        let region = lookup(config::vars::REGION).or(provider_region.clone());
        let cloud = CloudConfig::from_lookup(lookup, provider_region)?;
        let compartment_id = cloud
            .compartment_id
            .clone()
            .or(own_compartment)
            .ok_or_else(|| {
                Error::Config(format!(
                    "{} is not set and the credentials name no compartment",
                    config::vars::COMPARTMENT
                ))
            })?;
        // A function must answer before Fn-Deadline: few, quick retries; the deadline caps them.
        // Vision's own transport makes one attempt: the analyzer retries, each time with a
        // send slot from the pacer, so no retry reaches Vision unpaced.
        let vision_transport = Transport::new(
            Auth::Oci(Arc::clone(&keys)),
            TransportConfig {
                retry: RetryPolicy {
                    max_attempts: 1,
                    ..RetryPolicy::default()
                },
                ..TransportConfig::default()
            },
        );
        let transport = Transport::new(
            Auth::Oci(keys),
            TransportConfig {
                retry: RetryPolicy {
                    max_attempts: 5,
                    base_backoff: Duration::from_millis(200),
                    max_backoff: Duration::from_secs(5),
                },
                ..TransportConfig::default()
            },
        );
        let secrets = Secrets::new(transport.clone(), &cloud.secrets_url);
        let max_labels = config::number(lookup, "VISION_MAX_LABELS", 0u32)?;
        let vision_tps =
            config::number(lookup, "VISION_TPS", pacer::default_tps(region.as_deref()))?.max(0.0);
        Ok(Analyzer::new(
            ObjectStorage::new(transport.clone(), &cloud.object_storage_url),
            Vision::new(vision_transport, &cloud.vision_url),
            CachedSoda::new(
                transport,
                cloud.soda.clone(),
                Some(secrets),
                cloud.secret_ttl,
            ),
            AnalyzerConfig {
                bucket: cloud.bucket.clone(),
                compartment_id,
                max_results: config::number(lookup, "VISION_MAX_RESULTS", 50)?,
                max_labels: (max_labels > 0).then_some(max_labels),
                text: config::switch(lookup, "VISION_TEXT", true)?,
                margin: Duration::from_secs(2),
                max_image_bytes: config::number(lookup, "MAX_IMAGE_BYTES", image_info::MAX_BYTES)?,
                vision_tps,
                max_slot_wait: match config::number(lookup, "VISION_MAX_WAIT", 0u64)? {
                    0 => None,
                    secs => Some(Duration::from_secs(secs)),
                },
                pacing: pacer::Pacing::from_lookup(lookup, vision_tps)?,
            },
        ))
    }

    /// Handles one event body by the call's `deadline`.
    pub fn handle(&self, body: &[u8], deadline: Instant, call_id: &str) -> CallResult {
        // `webapp doctor`'s self-test: probes as this function, nothing written (selftest.rs).
        if let Some(asked) = crate::selftest::request(body) {
            return CallResult::Success(crate::selftest::run(
                &self.object_storage,
                &self.vision,
                &self.config.compartment_id,
                &asked,
                deadline,
            ));
        }
        let event = match ObjectEvent::parse(body) {
            Ok(event) => event,
            Err(reason) => {
                log::error!(target: "analysis", "call {call_id}: malformed event, ignored: {reason}");
                return CallResult::Failed(format!("malformed event: {reason}"));
            }
        };
        let work_deadline = deadline
            .checked_sub(self.config.margin)
            .filter(|d| *d > Instant::now());
        let Some(work_deadline) = work_deadline else {
            return CallResult::TimedOut("not enough time left before the deadline".into());
        };
        if event.bucket != self.config.bucket {
            return CallResult::Success(json!({"action": "ignored", "reason": "another bucket"}));
        }
        // The web app's thumbnails and previews: its own renditions, not images to analyse (the
        // Terraform rule already filters them out; events from elsewhere may not).
        if document::is_rendition(&event.name) {
            return CallResult::Success(json!({"action": "ignored", "reason": "a rendition"}));
        }
        let result = match event.kind {
            EventKind::Delete => self.forget(&event, work_deadline),
            EventKind::Create | EventKind::Update => self.analyze(&event, work_deadline),
        };
        match result {
            Ok(value) => {
                log::info!(
                    target: "analysis",
                    "call {call_id}: {} {:?}: {}",
                    event.event_id,
                    event.name,
                    value["action"].as_str().unwrap_or("")
                );
                CallResult::Success(value)
            }
            Err(Error::Deadline { .. }) => {
                CallResult::TimedOut(format!("deadline reached while handling {:?}", event.name))
            }
            Err(e) => CallResult::Failed(format!("{:?}: {e}", event.name)),
        }
    }

    fn key(event: &ObjectEvent) -> String {
        document_key(&event.namespace, &event.bucket, &event.name)
    }

    fn bucket(event: &ObjectEvent) -> Bucket {
        Bucket {
            namespace: event.namespace.clone(),
            name: event.bucket.clone(),
        }
    }

    fn forget(&self, event: &ObjectEvent, deadline: Instant) -> crate::Result<Value> {
        let existed = self.soda.with(deadline, |soda| {
            soda.delete(&Analyzer::key(event), deadline)
        })?;
        Ok(json!({"action": if existed { "deleted" } else { "nothing to delete" }}))
    }

    fn analyze(&self, event: &ObjectEvent, deadline: Instant) -> crate::Result<Value> {
        let received = SystemTime::now();
        let bucket = Analyzer::bucket(event);
        let key = Analyzer::key(event);
        let db_started = Instant::now();
        let existing = self
            .soda
            .with(deadline, |soda| soda.get(&key, deadline))?
            .and_then(|doc| AnalysisDocument::from_json(doc.value).ok());
        let mut db_time = db_started.elapsed();
        let is_done = |etag: &str| {
            existing
                .as_ref()
                .filter(|d| d.etag == etag && d.status == Status::Done)
                .map(|d| d.objects.len())
        };
        if let Some(objects) = event.etag.as_deref().and_then(is_done) {
            return Ok(json!({"action": "duplicate", "objects": objects}));
        }
        let start = match self
            .object_storage
            .get_start(&bucket, &event.name, FIRST_BYTES, deadline)
        {
            // Object-level 404s are `Ok(None)`; this one is about the bucket.
            Err(Error::Service(e)) if e.status == 404 => {
                return self.unreadable_bucket(event, &key, existing, e, deadline);
            }
            other => other?,
        };
        let Some(Download {
            info,
            body: mut first_bytes,
            ..
        }) = start
        else {
            // Gone already: whatever the order of events, no document may outlive its object.
            self.forget(event, deadline)?;
            return Ok(json!({"action": "object gone"}));
        };
        if event.etag.as_ref().is_some_and(|etag| *etag != info.etag) {
            return Ok(json!({"action": "stale", "current_etag": info.etag}));
        }
        if let Some(objects) = is_done(&info.etag) {
            return Ok(json!({"action": "duplicate", "objects": objects}));
        }
        let mut request = AnalyzeImage {
            image: ImageSource::ObjectStorage {
                namespace: event.namespace.clone(),
                bucket: event.bucket.clone(),
                object: event.name.clone(),
            },
            max_objects: self.config.max_results,
            max_labels: self.config.max_labels,
            text: self.config.text,
            compartment_id: self.config.compartment_id.clone(),
        };
        let mut doc = AnalysisDocument::from_event(existing, event, &info, received);
        doc.timings.event_lag_ms = event
            .event_time
            .and_then(|t| received.duration_since(t).ok())
            .map(|d| d.as_millis() as u64);

        let photo =
            match self.check_image(&bucket, &event.name, &info, &mut first_bytes, deadline)? {
                Ok(photo) => photo,
                Err(refusal) => {
                    doc.status = Status::Failed;
                    doc.error = Some(Failure {
                        code: refusal.code().into(),
                        message: refusal.to_string(),
                    });
                    self.write(&key, &mut doc, deadline)?;
                    return Ok(json!({"action": "rejected", "reason": refusal.to_string()}));
                }
            };
        drop(first_bytes);
        doc.describe_photo(&photo);
        let copy_because = self.copy_reason(&photo, info.content_length);

        doc.status = Status::Analyzing;
        doc.next_attempt = None;
        doc.attempts += 1;
        let writing = Instant::now();
        self.write(&key, &mut doc, deadline)?;
        db_time += writing.elapsed();
        doc.timings.db_ms = Some(db_time.as_millis() as u64);

        let vision_started = Instant::now();
        let limit = self.config.max_image_bytes;
        doc.analyzed = Some(AnalyzedImage {
            object: event.name.clone(),
            upright_copy: None,
        });
        if let Some(reason) = copy_because {
            match self.upright_copy(&bucket, &event.name, &photo, reason, deadline)? {
                Ok((jpeg, copy)) => {
                    request.image = ImageSource::Inline(jpeg);
                    doc.analyzed = Some(AnalyzedImage {
                        object: event.name.clone(),
                        upright_copy: Some(copy),
                    });
                }
                Err(why) => {
                    doc.status = Status::Failed;
                    doc.error = Some(Failure {
                        code: "UnreadableImage".into(),
                        message: format!("no upright copy could be made for Vision: {why}"),
                    });
                    self.write(&key, &mut doc, deadline)?;
                    return Ok(json!({"action": "rejected", "reason": why}));
                }
            }
        } else if self.inline.is_on() {
            if let Some(inline) =
                InlineFallback::read(&self.object_storage, &bucket, &event.name, limit, deadline)?
            {
                request.image = inline;
            }
        }
        let mut analysis = self.paced_analyze(&request, deadline)?;
        if let Paced::Answered(Err(e)) = &analysis {
            if InlineFallback::is_refusal(&request.image, e) {
                if let Some(inline) = InlineFallback::read(
                    &self.object_storage,
                    &bucket,
                    &event.name,
                    limit,
                    deadline,
                )? {
                    request.image = inline;
                    analysis = self.paced_analyze(&request, deadline)?;
                    if matches!(analysis, Paced::Answered(Ok(_))) {
                        self.inline.worked();
                    }
                }
            }
        }
        doc.timings.vision_ms = Some(vision_started.elapsed().as_millis() as u64);
        let analysis = match analysis {
            Paced::Answered(Ok(analysis)) => analysis,
            Paced::Deferred(at, why) => {
                // Waiting, not failed: a deferral is not an attempt, and the call succeeds so
                // that nothing retries it blindly; the reconciler invokes it again at `at`.
                doc.status = Status::Waiting;
                doc.attempts = doc.attempts.saturating_sub(1);
                doc.error = None;
                let at = document::timestamp(at);
                doc.next_attempt = Some(at.clone());
                self.write(&key, &mut doc, deadline)?;
                return Ok(json!({"action": "deferred", "next_attempt": at, "reason": why}));
            }
            Paced::Answered(Err(e)) => {
                doc.status = Status::Failed;
                doc.error = Some(Failure::vision(&e, doc.attempts));
                // Best effort: the call fails either way, and says why.
                let _ = self.write(&key, &mut doc, Instant::now() + Duration::from_secs(2));
                return Err(e);
            }
        };
        doc.record_analysis(&analysis, SystemTime::now());
        self.write(&key, &mut doc, deadline)?;

        // The object may have been deleted while Vision ran; its delete event may even have been
        // handled already. Undo rather than leave a document behind.
        if self
            .object_storage
            .head(&bucket, &event.name, deadline)?
            .is_none()
        {
            self.forget(event, deadline)?;
            return Ok(json!({"action": "object deleted during analysis"}));
        }
        Ok(json!({
            "action": if doc.status == Status::Done { "analyzed" } else { "failed" },
            "objects": doc.objects.len(),
            "etag": doc.etag,
        }))
    }

    /// Asks Vision, each attempt in a send slot from the pacer (when `vision_tps` > 0): 5xx and
    /// unreachable are retried with backoff, a 429 leaves one slot of the shared stream empty
    /// (every instance backs off), and too long a wait or sustained 429s defer the image.
    fn paced_analyze(&self, request: &AnalyzeImage, deadline: Instant) -> crate::Result<Paced> {
        let tps = self.config.vision_tps;
        let mut throttled = 0u32;
        let mut failed = 0u32;
        loop {
            // The latest a slot may start and leave the call and its writes time to finish.
            let left = deadline
                .saturating_duration_since(Instant::now())
                .saturating_sub(VISION_ALLOWANCE);
            let patience = self.config.max_slot_wait.map_or(left, |w| w.min(left));
            let latest = SystemTime::now() + patience;
            if tps > 0.0 {
                match self
                    .config
                    .pacing
                    .reserve(&self.soda, tps, latest, deadline)?
                {
                    Reservation::Slot(slot) => pacer::wait_for(slot, deadline),
                    Reservation::Defer(at) => {
                        return Ok(Paced::Deferred(at, "no Vision send slot in time"))
                    }
                }
            }
            let error = match self.vision.analyze(request, deadline) {
                Ok(analysis) => return Ok(Paced::Answered(Ok(analysis))),
                Err(e) => e,
            };
            let status = error.service_error().map(|e| e.status);
            let wait = if status == Some(429) {
                throttled += 1;
                if tps > 0.0 {
                    self.config.pacing.back_off(&self.soda, tps, deadline)?;
                }
                if throttled >= MAX_THROTTLED {
                    let again = THROTTLED_RETRY.mul_f64(1.0 + crate::random::unit());
                    return Ok(Paced::Deferred(
                        SystemTime::now() + again,
                        "Vision kept answering 429",
                    ));
                }
                // Paced, the next slot is the wait; unpaced, a jittered backoff.
                if tps > 0.0 {
                    Duration::ZERO
                } else {
                    THROTTLE_PAUSE.mul_f64(crate::random::unit())
                }
            } else if matches!(error, Error::Transport { .. })
                || status.is_some_and(|s| s >= 500 && s != 501)
            {
                failed += 1;
                if failed >= MAX_VISION_ATTEMPTS {
                    return Ok(Paced::Answered(Err(error)));
                }
                Duration::from_millis(200 << failed.min(5)).mul_f64(crate::random::unit())
            } else {
                return Ok(Paced::Answered(Err(error)));
            };
            if Instant::now() + wait + VISION_ALLOWANCE >= deadline {
                return Ok(match status {
                    Some(429) => Paced::Deferred(
                        SystemTime::now() + THROTTLED_RETRY,
                        "Vision kept answering 429",
                    ),
                    _ => Paced::Answered(Err(error)),
                });
            }
            log::debug!(target: "analysis", "Vision attempt failed ({error}); again in {} ms", wait.as_millis());
            std::thread::sleep(wait);
        }
    }

    /// GetObject answered `404 BucketNotFound` (or `NotAuthorizedOrNotFound`): OCI's answer
    /// both for a bucket that does not exist and for a caller whose policy lacks `read objects`
    /// on it. The object may well exist, so this is not "object gone": the document says
    /// `failed`, naming both causes, the log says so, and the call fails.
    fn unreadable_bucket(
        &self,
        event: &ObjectEvent,
        key: &str,
        existing: Option<AnalysisDocument>,
        error: ServiceError,
        deadline: Instant,
    ) -> crate::Result<Value> {
        let reason = format!(
            "the function could not read the image: Object Storage answered 404 {} for bucket \
             '{}' (namespace '{}'). Either the function's dynamic group has no policy statement \
             allowing it to `read objects` in that bucket (terraform/policies.tpl), or the \
             bucket does not exist there.",
            error.code, event.bucket, event.namespace
        );
        log::warn!(target: "analysis", "{:?}: {reason}", event.name);
        let mut doc = existing.unwrap_or_else(|| {
            AnalysisDocument::new(&event.namespace, &event.bucket, &event.name, Status::Failed)
        });
        doc.status = Status::Failed;
        doc.error = Some(Failure {
            code: error.code.clone(),
            message: reason,
        });
        self.write(key, &mut doc, deadline)?;
        Err(Error::Service(error))
    }

    /// Why Vision cannot take the stored image as it is, when it cannot: it then analyses an
    /// upright copy within its limits (`picture::analysis_copy`).
    fn copy_reason(&self, photo: &ImageInfo, size: u64) -> Option<String> {
        let orientation = photo.exif.orientation;
        if orientation != Orientation::Upright {
            Some(format!(
                "turned upright (EXIF orientation {})",
                orientation.tag()
            ))
        } else if size > self.config.max_image_bytes {
            Some(format!(
                "the original is {:.1} MB, over Vision's {:.1} MB",
                size as f64 / 1e6,
                self.config.max_image_bytes as f64 / 1e6
            ))
        } else if photo.width.max(photo.height) > image_info::MAX_SIDE {
            Some(format!(
                "the original is {} × {} px, over Vision's {} px a side",
                photo.width,
                photo.height,
                image_info::MAX_SIDE
            ))
        } else {
            None
        }
    }

    /// Reads the stored image as a stream and makes the upright copy Vision analyses instead,
    /// sent inline (so the function needs no write access to the bucket and leaves nothing to
    /// clean up). `Ok(Err(why))` when the image cannot be decoded within the limits.
    fn upright_copy(
        &self,
        bucket: &Bucket,
        name: &str,
        photo: &ImageInfo,
        reason: String,
        deadline: Instant,
    ) -> crate::Result<Result<(Vec<u8>, UprightCopy), String>> {
        let download = self
            .object_storage
            .get(bucket, name, None, MAX_ORIGINAL_BYTES, deadline)?;
        Ok(
            picture::analysis_copy(download.body, photo.kind).map(|(jpeg, width, height)| {
                let copy = UprightCopy {
                    width,
                    height,
                    bytes: jpeg.len() as u64,
                    reason,
                };
                (jpeg, copy)
            }),
        )
    }

    /// `Ok(Err(refusal))` when the file cannot be analysed, judged from its size and its
    /// first bytes: `first`, then up to [`HEADER_BYTES`] when a JPEG's frame header is further.
    /// Sides over Vision's 10,000 px and sizes over its 5 MB pass: an upright copy within its
    /// limits is analysed instead.
    fn check_image(
        &self,
        bucket: &Bucket,
        name: &str,
        info: &ObjectInfo,
        first: &mut dyn Read,
        deadline: Instant,
    ) -> crate::Result<Result<ImageInfo, image_info::Refusal>> {
        if info.content_length > MAX_ORIGINAL_BYTES {
            return Ok(Err(image_info::Refusal::TooLarge {
                size: info.content_length,
                limit: MAX_ORIGINAL_BYTES,
            }));
        }
        let reading = |e: std::io::Error| Error::Transport {
            service: "objectstorage",
            detail: format!("reading the image header: {e}"),
        };
        let mut bytes = Vec::with_capacity(FIRST_BYTES.min(info.content_length) as usize);
        first.read_to_end(&mut bytes).map_err(reading)?;
        let verdict = photo_info(&bytes, info.content_length);
        let have = bytes.len() as u64;
        let cut_short = matches!(verdict, Err(image_info::Refusal::Unreadable(_)))
            && have < info.content_length.min(HEADER_BYTES);
        if !cut_short {
            return Ok(verdict);
        }
        let mut rest = self.object_storage.get(
            bucket,
            name,
            Some((have, Some(HEADER_BYTES - 1))),
            HEADER_BYTES - have,
            deadline,
        )?;
        rest.body.read_to_end(&mut bytes).map_err(reading)?;
        Ok(photo_info(&bytes, info.content_length))
    }

    fn write(&self, key: &str, doc: &mut AnalysisDocument, deadline: Instant) -> crate::Result<()> {
        doc.updated_at = document::now();
        let value = doc.to_json();
        self.soda
            .with(deadline, |soda| match soda.put(key, &value, deadline) {
                // A new database: create the collection (client-assigned keys) on first write.
                Err(Error::Service(e)) if e.status == 404 => {
                    soda.ensure_collection(deadline)?;
                    soda.put(key, &value, deadline)
                }
                other => other,
            })?;
        Ok(())
    }
}
