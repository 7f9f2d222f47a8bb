//! Uploads: the browser form (`POST /upload`), multipart for curl (`POST /api/images`) and raw
//! bodies (`PUT /api/images/{name}`), all ending in one [`store`].
//!
//! Order of checks: the upload gate (`503` + `Retry-After`), the declared length (`413` naming
//! the limit, before any body byte is invited), the content type (`415`), the form token
//! (browser form only; it must be the first part), then each file: its first 256 KiB judged
//! (format, `415` naming HEIC, WebP, RAW…; upright size and EXIF, `422`), then the rest streamed
//! through a spool file (`spool.rs`), never held whole, while the thumbnail decoder reads the
//! same spool. Only once the whole file has passed (it decodes, `422` otherwise; no markup
//! hidden in it, `415`; not identical to an image already stored, which is answered instead)
//! is the `pending` document written (with the content hash) and the object allowed to exist:
//! a raw `PUT` streams the object alongside its body but holds its last byte back until then;
//! a form part is stored from the spool after. The object's create event starts the function,
//! so a document written after the object could overwrite the function's `done`. When the
//! object PUT fails the document (and any rendition) is removed again. The renditions are
//! stored beside the object; the original is stored as uploaded (EXIF kept).

use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;
use serde_json::json;

use super::auth::{self, Action};
use super::catalog::key_of;
use super::renditions;
use super::spool::Spool;
use super::view;
use super::App;
use crate::document::{self, meta, object_name, AnalysisDocument};
use crate::error::{self, Error, Result};
use crate::http::{Multipart, MultipartLimits, Request, Response};
use crate::image_info::{self, Refusal};
use crate::oci::encode;
use crate::oci::object_storage::{Condition, ObjectInfo};
use crate::picture;

/// Room for multipart framing and a form token around the files of one request.
const FORM_OVERHEAD: u64 = 64 * 1024;
/// Files in one browser form post (the page's script sends one per request).
pub(crate) const MAX_FILES: usize = 10;
/// Longest display name kept, in characters.
const MAX_NAME_CHARS: usize = 100;

/// What happened to one file.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct FileResult {
    /// The sanitised name the file had.
    pub file: String,
    /// Stored, or recognised as already stored.
    pub ok: bool,
    /// HTTP status for this file.
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Set when the same content was uploaded before: that image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate_of: Option<Duplicate>,
    /// Stable code of a refusal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// A sentence for a person.
    pub message: String,
}

/// The earlier upload of identical content.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Duplicate {
    pub id: String,
    pub file: String,
    pub uploaded_at: String,
}

impl FileResult {
    fn duplicate(file: &str, twin: Duplicate) -> FileResult {
        let message = format!(
            "identical to {}, uploaded {}; not stored again",
            twin.file,
            view::when(&twin.uploaded_at)
        );
        FileResult {
            file: file.into(),
            ok: true,
            status: 200,
            url: Some(format!("/images/{}", twin.id)),
            id: Some(twin.id.clone()),
            duplicate_of: Some(twin),
            error: None,
            message,
        }
    }

    fn refused(file: &str, err: &Error) -> FileResult {
        let (status, code, message) = match err {
            Error::BadRequest { status, reason } => (*status, err.code(), reason.clone()),
            other => {
                log::warn!(target: "webapp", "upload of {file:?} failed: {other}");
                (
                    502,
                    "StorageUnavailable",
                    "the image store is unavailable right now; try again in a minute".into(),
                )
            }
        };
        FileResult {
            file: file.to_string(),
            ok: false,
            status,
            id: None,
            url: None,
            duplicate_of: None,
            error: Some(code.into()),
            message,
        }
    }
}

fn refusal(r: &Refusal) -> Error {
    Error::bad_request(r.status(), r.to_string())
}

/// Display text from a client file name: no control or bidi characters, no path separators,
/// at most 100 characters; `unnamed` when nothing is left.
pub(crate) fn display_name(raw: &str) -> String {
    let bidi = |c: char| matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
    let cleaned: String = raw
        .chars()
        .filter(|&c| !c.is_control() && !bidi(c) && c != '/' && c != '\\')
        .take(MAX_NAME_CHARS)
        .collect();
    let trimmed = cleaned.trim();
    if trimmed.is_empty() {
        "unnamed".into()
    } else {
        trimmed.to_string()
    }
}

fn too_big(app: &App) -> Error {
    let limit = app.settings.max_upload_bytes;
    Error::bad_request(
        413,
        format!(
            "this file is larger than the {:.1} MB limit",
            limit as f64 / 1_048_576.0
        ),
    )
}

/// SHA-256 computed on a helper thread while the upload is still arriving, so hashing 5 MB
/// does not add to the upload's time (the bench's ratio). Falls back to hashing inline when no
/// thread can be started.
pub(crate) struct Sha256 {
    feed: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
    worker: Option<std::thread::JoinHandle<String>>,
    inline: Option<ring::digest::Context>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Sha256 {
    pub(crate) fn new() -> Sha256 {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(4);
        let spawned = std::thread::Builder::new()
            .name("upload-sha256".into())
            .spawn(move || {
                let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
                for piece in rx {
                    ctx.update(&piece);
                }
                hex(ctx.finish().as_ref())
            });
        match spawned {
            Ok(worker) => Sha256 {
                feed: Some(tx),
                worker: Some(worker),
                inline: None,
            },
            Err(_) => Sha256 {
                feed: None,
                worker: None,
                inline: Some(ring::digest::Context::new(&ring::digest::SHA256)),
            },
        }
    }

    pub(crate) fn update(&mut self, piece: &[u8]) {
        if let Some(ctx) = &mut self.inline {
            ctx.update(piece);
        } else if let Some(feed) = &self.feed {
            let _ = feed.send(piece.to_vec());
        }
    }

    /// The hex digest of everything given.
    pub(crate) fn finish(mut self) -> String {
        drop(self.feed.take());
        if let Some(ctx) = self.inline.take() {
            return hex(ctx.finish().as_ref());
        }
        self.worker
            .take()
            .and_then(|w| w.join().ok())
            .unwrap_or_default()
    }

    /// The digest of bytes already in memory.
    #[cfg(test)]
    pub(crate) fn of(bytes: &[u8]) -> Sha256 {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(bytes);
        Sha256 {
            feed: None,
            worker: None,
            inline: Some(ctx),
        }
    }
}

/// The first bytes of a file, read before anything else happens: what it is, its size and its
/// EXIF come from here (a JPEG's frame header can sit after large metadata segments).
const HEAD_BYTES: usize = 256 * 1024;
/// The HTTP layer's body deadline (`Limits::body_timeout`): an object PUT fed from an arriving
/// body lasts as long as that body.
const BODY_WINDOW: Duration = Duration::from_secs(120);

/// Where one file's bytes come from: the next piece into the buffer, `0` at the end, failures
/// as the HTTP error to answer.
pub(crate) type Source<'a> = &'a mut dyn FnMut(&mut [u8]) -> Result<usize>;

/// What the checks that need the whole file decided.
enum Verdict {
    Store,
    Refuse(Error),
    Twin(Duplicate),
}

/// Stores one image read from `source`, or finds its identical twin. `length` is the file's
/// exact size when the request says it (a raw `PUT`): the object PUT then starts at once and
/// runs alongside the body, held back from its last byte until the whole file has been judged.
/// Without it (a form part, a chunked body) the file is spooled whole first, then stored. Either
/// way the bytes go through a spool on disk (`spool.rs`), so memory does not grow with the file,
/// and the thumbnail decoder reads the same spool as it fills.
pub(crate) fn store(
    app: &App,
    request_id: &str,
    file: &str,
    source: Source<'_>,
    length: Option<u64>,
) -> Result<FileResult> {
    let started = Instant::now();
    let max = app.settings.max_upload_bytes;
    if length.is_some_and(|n| n > max) {
        return Err(too_big(app));
    }
    let mut head = vec![0; length.map_or(HEAD_BYTES, |n| (n as usize).min(HEAD_BYTES))];
    let got = fill(source, &mut head)?;
    head.truncate(got);
    let info =
        image_info::validate(&head, length.unwrap_or(got as u64), max).map_err(|r| refusal(&r))?;
    let spool = Spool::new(&std::env::temp_dir()).map_err(|e| Error::Transport {
        service: "webapp",
        detail: format!("no room to take the upload: {e}"),
    })?;
    let mut digest = Sha256::new();
    spool.append(&head)?;
    digest.update(&head);
    drop(head);

    let id = document::new_id(info.kind.extension());
    let name = object_name(&id);
    let key = key_of(app, &id);
    let encoded_name = encode::component(file);
    let (width, height) = (info.width.to_string(), info.height.to_string());
    let metadata = [
        (meta::ORIGINAL_NAME, encoded_name.as_str()),
        (meta::REQUEST_ID, request_id),
        (meta::WIDTH, width.as_str()),
        (meta::HEIGHT, height.as_str()),
    ];
    let deadline = Instant::now() + BODY_WINDOW + app.settings.service_timeout;
    let put = |size: u64, hold_last: bool| {
        app.storage.put(
            &app.bucket,
            &name,
            &mut spool.reader(hold_last),
            size,
            info.kind.content_type(),
            &metadata,
            Condition::Absent,
            deadline,
        )
    };

    let received = std::thread::scope(|scope| {
        let early_put = length.map(|size| scope.spawn(move || put(size, true)));
        // Only a slot free right now: the upload never waits for a decoder while it arrives.
        // The decoder says whether the data decodes as soon as it knows; the encoding of the
        // renditions goes on while the object is finished.
        let (tell, verdict) = std::sync::mpsc::channel();
        let (reader, kind) = (spool.reader(false), info.kind);
        let decoder = scope.spawn(move || {
            let tell = |damaged| {
                let _ = tell.send(damaged);
            };
            renditions::make_telling(app, request_id, reader, kind, Duration::ZERO, tell)
        });
        // Fails the spool, so a PUT under way ends mid-body and nothing is stored.
        let abandon = |early_put: Option<std::thread::ScopedJoinHandle<'_, Result<String>>>| {
            spool.fail();
            if let Some(p) = early_put {
                let _ = p.join();
            }
        };
        if let Err(e) = copy_rest(source, &spool, &mut digest, max, length) {
            abandon(early_put);
            let _ = decoder.join();
            return Err(if e.status() == 413 { too_big(app) } else { e });
        }
        spool.complete();
        let arrived = started.elapsed();
        // No answer (the channel closed unsent) when no decoder slot was free.
        let damaged = verdict.recv().ok().flatten();
        let sha = digest.finish();
        match judge(app, request_id, &spool, damaged, &sha) {
            Verdict::Store => {}
            Verdict::Refuse(e) => {
                abandon(early_put);
                let _ = decoder.join();
                return Err(e);
            }
            Verdict::Twin(twin) => {
                abandon(early_put);
                let _ = decoder.join();
                return Ok(Received::Twin(twin));
            }
        }
        let judged = started.elapsed();
        // The document goes first, the object after: the object's create event starts the
        // function, so a document written after it could land (delayed by retries) on top of
        // the function's `analyzing` or `done`. A short deadline of its own keeps a slow
        // database from holding the upload up; nothing is lost when it fails (the function
        // writes the document from the event, the reconciler any still missing).
        let size = spool.len();
        let doc = pending_document(app, &name, &info, &sha, size, &metadata);
        if let Err(e) = app.soda.put(&key, &doc.to_json(), soon(app)) {
            log::warn!(target: "webapp", "{request_id} pending document for {id} not written: {e}");
        }
        spool.release();
        // The renditions travel while the object's last bytes do (withdrawn with it if it
        // fails).
        let (stored, made) = std::thread::scope(|inner| {
            // The renditions are finished and stored while the object's last bytes travel
            // (withdrawn with it if it fails).
            let renditions = inner.spawn(|| {
                let made = decoder
                    .join()
                    .unwrap_or(None)
                    .map(picture::Outcome::into_renditions);
                if let Some(r) = &made {
                    renditions::store(app, request_id, &id, r, app.deadline());
                }
                made
            });
            let stored = match early_put {
                Some(p) => p.join().unwrap_or_else(|_| Err(panicked())),
                None => put(size, false),
            };
            (stored, renditions.join().unwrap_or(None))
        });
        log::debug!(
            target: "webapp",
            "{request_id} upload timings: body {arrived:?}, checks {:?}, document and object {:?}",
            judged - arrived,
            started.elapsed() - judged
        );
        Ok(Received::Stored { stored, made, size })
    })?;
    let (stored, made, size) = match received {
        Received::Twin(twin) => return Ok(FileResult::duplicate(file, twin)),
        Received::Stored { stored, made, size } => (stored, made, size),
    };
    if let Err(e) = stored {
        if super::confirm::stored_by_this_upload(app, &name, request_id, size, soon(app)) {
            // The answer was lost and the retry refused (412): the image is stored.
            log::warn!(target: "webapp", "{request_id} {id}: the object PUT reported {e}, but the object is this upload's; kept");
        } else {
            // Even when the document write reported a failure: it may have landed all the same.
            withdraw(app, request_id, &id, &name, &key);
            return Err(e);
        }
    }
    let placeholder = match made {
        Some(r) => r.placeholder,
        // No decoder was free while the bytes arrived: make the renditions from the spool now,
        // waiting for a slot as long as the reconciler would be slower.
        None => renditions::make(
            app,
            request_id,
            spool.reader(false),
            info.kind,
            renditions::DECODE_WAIT,
        )
        .map(picture::Outcome::into_renditions)
        .and_then(|r| {
            renditions::store(app, request_id, &id, &r, app.deadline());
            r.placeholder
        }),
    };
    drop(spool);
    log::info!(target: "webapp", "{request_id} stored {name} ({size} bytes, {}×{} upright)", info.width, info.height);
    let message = match placeholder {
        None => "uploaded; analysis pending".to_string(),
        Some(why) => format!("uploaded; analysis pending; shown as a placeholder ({why})"),
    };
    Ok(FileResult {
        file: file.into(),
        ok: true,
        status: 201,
        url: Some(format!("/images/{id}")),
        id: Some(id),
        duplicate_of: None,
        error: None,
        message,
    })
}

/// What became of a received file.
enum Received {
    Stored {
        stored: Result<String>,
        made: Option<picture::Renditions>,
        size: u64,
    },
    Twin(Duplicate),
}

fn panicked() -> Error {
    Error::Transport {
        service: "objectstorage",
        detail: "the upload thread panicked".into(),
    }
}

/// Reads into `buf` until it is full or the source ends; how much was read.
fn fill(source: Source<'_>, buf: &mut [u8]) -> Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        let n = source(&mut buf[filled..])?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(filled)
}

/// Copies the rest of the file into the spool, hashing it, refusing more than `max` bytes
/// (413) and, when the length was declared, a body that ends short of it.
fn copy_rest(
    source: Source<'_>,
    spool: &Spool,
    digest: &mut Sha256,
    max: u64,
    length: Option<u64>,
) -> Result<()> {
    let mut chunk = vec![0; 64 * 1024];
    loop {
        let n = source(&mut chunk)?;
        if n == 0 {
            break;
        }
        if spool.len() + n as u64 > max {
            return Err(Error::bad_request(413, "too large"));
        }
        spool.append(&chunk[..n])?;
        digest.update(&chunk[..n]);
    }
    if length.is_some_and(|n| n != spool.len()) {
        return Err(Error::bad_request(
            400,
            "the body ended before its declared length",
        ));
    }
    Ok(())
}

/// The checks that need the whole file: the data decodes (when it was decoded), no markup is
/// hidden in it, and it is not already stored.
fn judge(
    app: &App,
    request_id: &str,
    spool: &Spool,
    damaged: Option<String>,
    sha: &str,
) -> Verdict {
    if let Some(why) = damaged {
        return Verdict::Refuse(Error::bad_request(
            422,
            format!("this image is damaged and cannot be shown: {why}; nothing was stored"),
        ));
    }
    match image_info::contains_markup_in(spool) {
        Ok(false) => {}
        Ok(true) => {
            return Verdict::Refuse(Error::bad_request(
                415,
                "this file carries HTML or script markup besides the image, so it is refused",
            ))
        }
        Err(e) => return Verdict::Refuse(Error::Io(e)),
    }
    match find_duplicate(app, sha) {
        Ok(Some(twin)) => Verdict::Twin(twin),
        Ok(None) => Verdict::Store,
        // Without the database we cannot tell; storing a second copy is the lesser harm.
        Err(e) => {
            log::warn!(target: "webapp", "{request_id} duplicate check skipped: {e}");
            Verdict::Store
        }
    }
}

/// The `pending` document of the object about to be stored, built as from any object, with
/// what only the upload knows: the content hash and the EXIF read from the head. No eTag yet:
/// the function sees one that differs from the object's, treats the document as describing a
/// new version and fills eTag, size, type and metadata from the object (document.rs,
/// `AnalysisDocument::from_event`), keeping what is written here.
fn pending_document(
    app: &App,
    name: &str,
    info: &image_info::ImageInfo,
    sha: &str,
    size: u64,
    metadata: &[(&str, &str)],
) -> AnalysisDocument {
    let object = ObjectInfo {
        etag: String::new(),
        content_length: size,
        content_type: info.kind.content_type().into(),
        last_modified: String::new(),
        metadata: metadata
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    };
    let mut doc = AnalysisDocument::from_object(&app.bucket, name, &object, SystemTime::now());
    doc.sha256 = Some(sha.to_string());
    doc.describe_photo(info);
    doc
}

/// Deadline of the bookkeeping around the object PUT (the `pending` document, its removal):
/// a quarter of a service call's, so it never holds an upload up for long.
fn soon(app: &App) -> std::time::Instant {
    std::time::Instant::now() + app.settings.service_timeout / 4
}

/// After a failed object PUT, removes the `pending` document written for it and any rendition
/// stored beside it, so that no document outlives a missing object (the duplicate check
/// would find it). A PUT can fail on
/// our side and still have been stored (an answer lost, the retry then refused by
/// `if-none-match`), so the object is looked for first: when it exists its document stays.
/// Best effort: a document left behind is ignored by [`find_duplicate`] and removed by the
/// reconciler.
fn withdraw(app: &App, request_id: &str, id: &str, name: &str, key: &str) {
    let deadline = soon(app);
    match app.storage.head(&app.bucket, name, deadline) {
        Ok(Some(_)) => {
            log::warn!(target: "webapp", "{request_id} {id}: the object PUT failed but the object exists; its document is kept");
            return;
        }
        Ok(None) => {}
        // Most likely missing. Were it there after all, its event makes the function write the
        // document again, and the reconciler covers the rest.
        Err(e) => {
            log::warn!(target: "webapp", "{request_id} {id}: object not checked after a failed PUT: {e}")
        }
    }
    if let Err(e) = app.soda.delete(key, deadline) {
        log::warn!(target: "webapp", "{request_id} pending document for {id} not removed (the reconciler will): {e}");
    }
    // Renditions stored beside the failed object go too (else the reconciler sweeps them).
    for rendition in [document::thumb_name(id), document::preview_name(id)] {
        let _ = app
            .storage
            .delete(&app.bucket, &rendition, Condition::None, deadline);
    }
}

/// Earlier uploads of the same content looked at: more than one only when the first have no
/// object.
const MAX_TWINS: usize = 3;

/// The earlier upload of identical content, if its object still exists. A document can outlive
/// its object for a while (an upload whose object PUT failed and whose document could not be
/// removed, a delete half done) until the reconciler removes it, so each candidate's object is
/// looked up: a twin that does not exist is never offered.
fn find_duplicate(app: &App, sha: &str) -> Result<Option<Duplicate>> {
    let deadline = app.deadline();
    let filter = json!({"sha256": sha, "bucket_name": app.bucket.name});
    for doc in app.soda.query(&filter, deadline)?.take(MAX_TWINS) {
        let doc = AnalysisDocument::from_json(doc?.value)?;
        let Some(id) = document::id_of(&doc.image_name) else {
            continue;
        };
        if app
            .storage
            .head(&app.bucket, &doc.image_name, deadline)?
            .is_none()
        {
            log::info!(target: "webapp", "duplicate check: {id} has a document but no object; not offered");
            continue;
        }
        return Ok(Some(Duplicate {
            id: id.to_string(),
            file: doc.original_name.clone().unwrap_or_else(|| id.to_string()),
            uploaded_at: doc.uploaded_at.clone(),
        }));
    }
    Ok(None)
}

fn busy() -> Response {
    Response::json(
        503,
        &error::json_body(
            503,
            "the server is handling other uploads; retry in 5 seconds",
        ),
    )
    .with_header("Retry-After", "5")
}

/// Which multipart endpoint is being served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Form {
    /// The page's form: a token is required and must come first.
    Browser,
    /// `POST /api/images`: no token (not a browser form; the origin check still applies).
    Api,
}

/// Reads a multipart upload of up to 10 files; each file is judged on its own.
pub(crate) fn multipart(app: &App, req: &Request, form: Form) -> Result<(u16, Vec<FileResult>)> {
    let content_type = req.header("content-type").unwrap_or("");
    let mut parts = Multipart::new(
        content_type,
        req.body(),
        MultipartLimits {
            max_parts: MAX_FILES + 1,
            ..MultipartLimits::default()
        },
    )?;
    let mut outcomes = Vec::new();
    let mut token_seen = form == Form::Api;
    while let Some(head) = parts.next_part()? {
        match (head.name.as_str(), &head.filename) {
            (auth::TOKEN_FIELD, None) if !token_seen => {
                let token = parts.read_to_vec(512, || Error::bad_request(400, "token too long"))?;
                auth::check_token(app, Action::Upload, std::str::from_utf8(&token).ok())?;
                token_seen = true;
            }
            ("file", Some(filename)) => {
                if !token_seen {
                    return Err(Error::bad_request(
                        403,
                        "the form token must come before the files",
                    ));
                }
                // Browsers escape these three in file names (WHATWG form-data encoding).
                let unescaped = filename
                    .replace("%22", "\"")
                    .replace("%0D", "\r")
                    .replace("%0A", "\n");
                let file = display_name(&unescaped);
                let mut source = |buf: &mut [u8]| parts.read_data(buf);
                let outcome = match store(app, req.request_id(), &file, &mut source, None) {
                    Ok(stored) => stored,
                    Err(e) if e.status() == 413 => {
                        // The rest of the body is not worth reading: answer now.
                        outcomes.push(FileResult::refused(&file, &e));
                        return Ok((413, outcomes));
                    }
                    Err(e) => FileResult::refused(&file, &e),
                };
                outcomes.push(outcome);
            }
            (name, _) => {
                return Err(Error::bad_request(
                    400,
                    format!(
                        "unexpected form field {:?}: send the image in a field named \"file\"",
                        display_name(name)
                    ),
                ))
            }
        }
    }
    if outcomes.is_empty() {
        return Err(Error::bad_request(
            400,
            "no file in the upload: choose an image and try again",
        ));
    }
    let status = if outcomes.iter().any(|o| o.ok) {
        outcomes.iter().find(|o| o.ok).map_or(200, |o| o.status)
    } else {
        outcomes[0].status
    };
    Ok((status, outcomes))
}

fn check_length(app: &App, req: &Request, overhead: u64) -> Result<()> {
    if req
        .content_length()
        .is_some_and(|n| n > app.settings.max_upload_bytes * MAX_FILES as u64 + overhead)
    {
        return Err(too_big(app));
    }
    Ok(())
}

/// `POST /upload` (the page) and `POST /api/images` (curl): JSON for scripts, a result page
/// for the plain form.
pub(crate) fn post(app: &App, req: &Request, form: Form) -> Result<Response> {
    let Some(_pass) = app.uploads.try_enter() else {
        return Ok(busy());
    };
    check_length(app, req, FORM_OVERHEAD)?;
    let (status, outcomes) = multipart(app, req, form)?;
    let wants_json = form == Form::Api
        || req
            .header("accept")
            .is_some_and(|a| a.contains("application/json"));
    if wants_json {
        Ok(Response::json(status, &json!({ "results": outcomes })))
    } else {
        result_page(app, status, &outcomes)
    }
}

/// The page after a plain form upload (no JavaScript).
fn result_page(app: &App, status: u16, outcomes: &[FileResult]) -> Result<Response> {
    let items = outcomes
        .iter()
        .map(|o| view::result_item(o.ok, &o.file, &o.message, o.url.as_deref()))
        .collect::<Result<Vec<_>>>()?;
    let stored = outcomes.iter().filter(|o| o.ok).count();
    let heading = format!(
        "{stored} of {} file{} uploaded",
        outcomes.len(),
        if outcomes.len() == 1 { "" } else { "s" }
    );
    view::results_page(app, status, "Upload", &heading, items)
}

/// `PUT /api/images/{name}`: the raw bytes of one image; `name` is kept as display text.
pub(crate) fn put(app: &App, req: &Request, raw_name: &str) -> Result<Response> {
    let Some(_pass) = app.uploads.try_enter() else {
        return Ok(busy());
    };
    let file = display_name(&encode::percent_decode(raw_name).unwrap_or_else(|| raw_name.into()));
    if req
        .content_length()
        .is_some_and(|n| n > app.settings.max_upload_bytes)
    {
        return Err(too_big(app));
    }
    let mut source = |buf: &mut [u8]| req.read_body_part(buf);
    let outcome = store(
        app,
        req.request_id(),
        &file,
        &mut source,
        req.content_length(),
    )?;
    Ok(Response::json(outcome.status, &json!(outcome)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_are_cleaned() {
        assert_eq!(display_name("../../etc/passwd"), "....etcpasswd");
        assert_eq!(display_name("a\u{202E}gpj.exe"), "agpj.exe");
        assert_eq!(display_name("C:\\x\r\n\0y.jpg"), "C:xy.jpg");
        assert_eq!(display_name("  "), "unnamed");
        assert_eq!(display_name(&"é".repeat(300)).chars().count(), 100);
        assert_eq!(
            display_name("<script>\"'.jpg"),
            "<script>\"'.jpg",
            "escaped on output, not here"
        );
    }

    #[test]
    fn hashing_on_the_side_matches_hashing_at_once() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let mut side = Sha256::new();
        for piece in data.chunks(7_777) {
            side.update(piece);
        }
        let expected = Sha256::of(&data).finish();
        assert_eq!(side.finish(), expected);
        assert_eq!(
            Sha256::of(b"abc").finish(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(Sha256::new().finish(), Sha256::of(b"").finish());
    }
}
