//! Emulated Object Storage: namespace, put, head, get, delete and list over a [`Store`] per bucket.
//!
//! [`ObjectStorageService::handle`] answers what Oracle's service answers for the calls our
//! client makes (`oci-services.md` §1 and §7): UUID etags, PUT 200 / DELETE 204, the 411, 412,
//! 304, 206 and 416 outcomes, HEAD errors without a body, bytewise-sorted listings paged by
//! `nextStartWith`, and `opc-request-id` on every answer. The object name is everything after
//! `/o/`, decoded once, so `%2F` and `/` name the same object. Mutations are reported to an
//! optional listener (for events) and objects can be read directly (for the Vision emulator).
//!
//! Deliberately not here: signature checks and fault injection (done before `handle` is
//! called), bucket management (buckets are fixed at construction), multipart uploads,
//! pre-authenticated requests, versioning and storage tiers (everything is `Standard`). MD5s
//! are single-part only: `Content-MD5` is checked, `opc-content-md5`, `content-md5` and the
//! `md5` list field are produced. For GET the body's length is the content length: the HTTP
//! glue frames it; only HEAD carries `content-length`. Bodies live on disk; names and metadata
//! are kept in memory, at most [`MAX_INDEX_BYTES`] per bucket.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::RwLock;
use std::time::SystemTime;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::store::{self, Store};
use super::wire::{EmuRequest, EmuResponse};
use crate::oci::encode;
use crate::timefmt::Precision;

/// The service's page size ceiling and default.
const MAX_PAGE: usize = 1000;
/// Longest object name in UTF-8 bytes.
const MAX_NAME: usize = 1024;
/// What a PUT without a content type is stored as.
/// Most bytes of object names and metadata one bucket keeps in memory (its store's index):
/// about 150 000 objects of the web app's shape (a few hundred bytes each). A PUT past it is
/// `507 InsufficientStorage`, the emulator's own answer (OCI has no such limit).
const MAX_INDEX_BYTES: usize = 64 * 1024 * 1024;
const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";
/// Prefix of user metadata headers.
const META_PREFIX: &str = "opc-meta-";
/// Field names ListObjects accepts in `fields`.
const LIST_FIELDS: &[&str] = &[
    "name",
    "size",
    "etag",
    "timeCreated",
    "md5",
    "timeModified",
    "storageTier",
    "archivalState",
];

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// A PUT made a new object.
    Created,
    /// A PUT replaced an existing object.
    Updated,
    /// A DELETE removed it.
    Deleted,
}

/// One mutation, as reported to the listener set with [`ObjectStorageService::on_change`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// What happened.
    pub kind: ChangeKind,
    /// The namespace.
    pub namespace: String,
    /// The bucket.
    pub bucket: String,
    /// The object name, decoded.
    pub name: String,
    /// The new etag; `None` for a delete.
    pub etag: Option<String>,
}

/// Receives every [`Change`]. It runs while the bucket is locked, so changes to one bucket
/// arrive in the order they happened; it must be quick (queue any delivery) and must not call
/// back into the service.
pub type ChangeListener = Box<dyn Fn(&Change) + Send + Sync>;

/// What is known about a stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    /// The object name.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// The etag (a lower-case UUID).
    pub etag: String,
    /// The content type given at upload (or the default).
    pub content_type: String,
    /// When this version was written.
    pub time_created: SystemTime,
    /// When it was last modified (the same as `time_created`: a PUT replaces the object).
    pub time_modified: SystemTime,
    /// `opc-meta-*` headers from the upload, prefix removed, in the order received.
    pub metadata: Vec<(String, String)>,
    /// Base64 MD5 of the content.
    pub md5: String,
}

/// The metadata kept with each object's bytes.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Stored {
    name: String,
    size: u64,
    etag: String,
    content_type: String,
    created_us: u64,
    modified_us: u64,
    metadata: Vec<(String, String)>,
    #[serde(default)]
    md5: String,
}

impl Stored {
    fn to_meta(&self) -> ObjectMeta {
        ObjectMeta {
            name: self.name.clone(),
            size: self.size,
            etag: self.etag.clone(),
            content_type: self.content_type.clone(),
            time_created: store::system_time(self.created_us),
            time_modified: store::system_time(self.modified_us),
            metadata: self.metadata.clone(),
            md5: self.md5.clone(),
        }
    }

    fn last_modified(&self) -> String {
        httpdate::fmt_http_date(store::system_time(self.modified_us))
    }
}

/// What `GetBucket` reports about a bucket beyond its name, kept beside its objects (the file
/// is not a record, so listings never see it).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct BucketInfo {
    created_us: u64,
    etag: String,
}

/// One bucket: its objects and its settings.
struct BucketState {
    store: Store,
    info: BucketInfo,
}

/// Object Storage for one namespace and a fixed set of buckets, persisted under a directory.
pub struct ObjectStorageService {
    namespace: String,
    compartment_id: String,
    buckets: BTreeMap<String, BucketState>,
    listener: RwLock<Option<ChangeListener>>,
    /// The bucket setting `objectEventsEnabled`: without it OCI emits no object events.
    events_enabled: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for ObjectStorageService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectStorageService")
            .field("namespace", &self.namespace)
            .field("buckets", &self.buckets.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Where a request goes, once namespace and bucket are known to exist.
enum Route<'a> {
    Namespace,
    Bucket(&'a str),
    List(&'a str, &'a Store),
    Object(&'a str, &'a Store, String),
}

/// Says whether the caller holds one of the permissions on the bucket (see
/// [`ObjectStorageService::handle`]).
pub type Authorizer<'a> = &'a dyn Fn(&[&'static str], &str) -> bool;

impl ObjectStorageService {
    /// Opens (or creates) the buckets `buckets` of `namespace`, all in `compartment_id`, under
    /// `data_dir`. Objects written by an earlier instance on the same directory are still there.
    pub fn new(
        data_dir: impl AsRef<Path>,
        namespace: &str,
        compartment_id: &str,
        buckets: &[impl AsRef<str>],
    ) -> crate::Result<ObjectStorageService> {
        let root = data_dir.as_ref().join("objectstorage");
        let mut opened = BTreeMap::new();
        for bucket in buckets {
            let bucket = bucket.as_ref();
            // Hashed so that any bucket name is a safe directory name.
            let digest = ring::digest::digest(
                &ring::digest::SHA256,
                format!("{namespace}/{bucket}").as_bytes(),
            );
            let store = Store::open(root.join(store::hex_lower(&digest.as_ref()[..16])))?;
            let info = bucket_info(store.dir())?;
            opened.insert(bucket.to_string(), BucketState { store, info });
        }
        Ok(ObjectStorageService {
            namespace: namespace.to_string(),
            compartment_id: compartment_id.to_string(),
            buckets: opened,
            listener: RwLock::new(None),
            events_enabled: std::sync::atomic::AtomicBool::new(true),
        })
    }

    /// Sets (replacing any earlier one) the listener told about every PUT and DELETE.
    pub fn on_change(&self, listener: ChangeListener) {
        *self.listener.write().unwrap_or_else(|e| e.into_inner()) = Some(listener);
    }

    /// Turns the buckets' `objectEventsEnabled` on or off (default on); off, no events are sent.
    pub fn set_object_events(&self, enabled: bool) {
        self.events_enabled
            .store(enabled, std::sync::atomic::Ordering::SeqCst);
    }

    /// How many objects all buckets hold, and the bytes of their names and metadata kept in
    /// memory (bodies stay on disk).
    pub fn held(&self) -> (usize, usize) {
        self.buckets
            .values()
            .map(|b| b.store.footprint())
            .fold((0, 0), |(n, bytes), (m, more)| (n + m, bytes + more))
    }

    /// Reads an object directly, bypassing HTTP; `None` when it (or its bucket) does not exist.
    pub fn read_object(
        &self,
        namespace: &str,
        bucket: &str,
        name: &str,
    ) -> Option<(ObjectMeta, Vec<u8>)> {
        if namespace != self.namespace {
            return None;
        }
        let store = &self.buckets.get(bucket)?.store;
        let found = store.lock().get(name);
        match found {
            Ok(Some((meta, body))) => {
                let stored: Stored = serde_json::from_value(meta).ok()?;
                Some((stored.to_meta(), body))
            }
            Ok(None) => None,
            Err(e) => {
                log::warn!("emulator object storage: reading {bucket}/{name}: {e}");
                None
            }
        }
    }

    /// Answers one request. `allowed(permissions, bucket)` says whether the caller holds one of
    /// `permissions` on `bucket` (IAM); a refusal is OCI's `404 BucketNotFound`, which cannot be
    /// told from a missing bucket. Never panics on input; storage failures become 500.
    pub fn handle(&self, req: &EmuRequest, allowed: Authorizer<'_>) -> EmuResponse {
        let mut response = match self.route(req) {
            Ok(route) => match self.permission(req, &route) {
                Ok(Some((permissions, bucket))) if !allowed(permissions, bucket) => {
                    bucket_not_found(bucket, &self.namespace)
                }
                Ok(_) => self.dispatch(req, route),
                Err(e) => {
                    log::warn!(
                        "emulator object storage: {} {}: {e}",
                        req.method,
                        req.raw_path
                    );
                    EmuResponse::error(500, "InternalServerError", "the emulator's store failed")
                }
            },
            Err(response) => response,
        };
        if req.method == "HEAD" {
            // HEAD never has a body, errors included; clients classify by status alone.
            response.body.clear();
            if response.status >= 400 {
                response.headers.retain(|(n, _)| n != "content-type");
            }
        }
        response = response.with_header(
            "opc-request-id",
            store::hex_upper(&crate::random::bytes::<16>()),
        );
        if let Some(id) = req.header("opc-client-request-id") {
            response = response.with_header("opc-client-request-id", id);
        }
        response
    }

    /// The permissions (any one suffices) the request needs, and on which bucket; `None` for
    /// GetNamespace (it needs none) and for methods answered 405 anyway.
    fn permission<'a>(
        &self,
        req: &EmuRequest,
        route: &Route<'a>,
    ) -> crate::Result<Option<(&'static [&'static str], &'a str)>> {
        let method = req.method.as_str();
        Ok(match (route, method) {
            (Route::Bucket(bucket), "GET") => Some((&["BUCKET_READ"], bucket)),
            (Route::Bucket(bucket), "HEAD") => Some((&["BUCKET_INSPECT"], bucket)),
            (Route::List(bucket, _), "GET") => Some((&["OBJECT_INSPECT"], bucket)),
            (Route::Object(bucket, _, _), "HEAD") => {
                Some((&["OBJECT_READ", "OBJECT_INSPECT"], bucket))
            }
            (Route::Object(bucket, _, _), "GET") => Some((&["OBJECT_READ"], bucket)),
            (Route::Object(bucket, _, _), "DELETE") => Some((&["OBJECT_DELETE"], bucket)),
            // Creating a name and replacing an object are separate rights (`use objects` may
            // overwrite but not create).
            (Route::Object(bucket, store, name), "PUT") => match store.lock().meta(name)? {
                Some(_) => Some((&["OBJECT_OVERWRITE"], bucket)),
                None => Some((&["OBJECT_CREATE"], bucket)),
            },
            _ => None,
        })
    }

    fn route<'a>(&'a self, req: &EmuRequest) -> Result<Route<'a>, EmuResponse> {
        let path = req.raw_path.as_str();
        if path == "/n" || path == "/n/" {
            return Ok(Route::Namespace);
        }
        let not_found = || EmuResponse::error(404, "NotFound", "no such resource");
        let rest = path.strip_prefix("/n/").ok_or_else(not_found)?;
        let (ns, rest) = rest.split_once('/').unwrap_or((rest, ""));
        if encode::percent_decode(ns).as_deref() != Some(self.namespace.as_str()) {
            return Err(EmuResponse::error(
                404,
                "NamespaceNotFound",
                "either the namespace does not exist or you are not authorized to view it",
            ));
        }
        let rest = rest.strip_prefix("b/").ok_or_else(not_found)?;
        let (bucket, rest) = match rest.split_once('/') {
            Some((bucket, rest)) => (bucket, Some(rest)),
            None => (rest, None),
        };
        let bucket_name = encode::percent_decode(bucket).unwrap_or_default();
        let (bucket, state) = self
            .buckets
            .get_key_value(&bucket_name)
            .ok_or_else(|| bucket_not_found(&bucket_name, &self.namespace))?;
        let store = &state.store;
        match rest {
            None | Some("") => Ok(Route::Bucket(bucket)),
            Some("o") => Ok(Route::List(bucket, store)),
            Some(rest) => {
                let raw_name = rest.strip_prefix("o/").ok_or_else(not_found)?;
                if raw_name.is_empty() && req.method == "GET" {
                    return Ok(Route::List(bucket, store));
                }
                let name = encode::percent_decode(raw_name)
                    .filter(|n| valid_name(n))
                    .ok_or_else(|| {
                        EmuResponse::error(
                            400,
                            "InvalidObjectName",
                            "object names are 1-1024 bytes of UTF-8 without LF, CR or NUL",
                        )
                    })?;
                Ok(Route::Object(bucket, store, name))
            }
        }
    }

    fn dispatch(&self, req: &EmuRequest, route: Route<'_>) -> EmuResponse {
        let method = req.method.as_str();
        let result = match (route, method) {
            (Route::Namespace, "GET" | "HEAD") => {
                Ok(EmuResponse::json(200, &json!(self.namespace)))
            }
            (Route::Bucket(bucket), "GET" | "HEAD") => self.get_bucket(req, bucket),
            (Route::List(_, store), "GET") => list(req, store),
            (Route::Object(bucket, store, name), "PUT") => self.put(req, bucket, store, &name),
            (Route::Object(_, store, name), "GET" | "HEAD") => get(req, store, &name),
            (Route::Object(bucket, store, name), "DELETE") => {
                self.delete(req, bucket, store, &name)
            }
            _ => Ok(EmuResponse::error(
                405,
                "MethodNotAllowed",
                &format!("{method} is not allowed here"),
            )),
        };
        result.unwrap_or_else(|e| {
            log::warn!(
                "emulator object storage: {} {}: {e}",
                req.method,
                req.raw_path
            );
            EmuResponse::error(500, "InternalServerError", "the emulator's store failed")
        })
    }

    /// GetBucket (and HeadBucket, whose body `handle` drops): the `Bucket` shape of the SDKs,
    /// with the approximate count and size only when `fields` asks for them, as on OCI.
    fn get_bucket(&self, req: &EmuRequest, bucket: &str) -> crate::Result<EmuResponse> {
        let state = &self.buckets[bucket];
        let mut wanted = Vec::new();
        for (key, value) in req.query() {
            if key == "fields" {
                for field in value.split(',').map(str::trim).filter(|f| !f.is_empty()) {
                    match field.to_ascii_lowercase().as_str() {
                        "approximatecount" => wanted.push("approximateCount"),
                        "approximatesize" => wanted.push("approximateSize"),
                        "autotiering" => wanted.push("autoTiering"),
                        _ => return Ok(invalid(&format!("unknown field '{field}' in fields"))),
                    }
                }
            }
        }
        let mut body = json!({
            "namespace": self.namespace,
            "name": bucket,
            "compartmentId": self.compartment_id,
            "metadata": {},
            "createdBy": "ocid1.user.oc1..emulator",
            "timeCreated": store::rfc3339(state.info.created_us, Precision::Millis),
            "etag": state.info.etag,
            "publicAccessType": "NoPublicAccess",
            "storageTier": "Standard",
            "objectEventsEnabled": self.events_enabled.load(std::sync::atomic::Ordering::SeqCst),
            "freeformTags": {},
            "definedTags": {},
            "kmsKeyId": null,
            "objectLifecyclePolicyEtag": null,
            "approximateCount": null,
            "approximateSize": null,
            "replicationEnabled": false,
            "isReadOnly": false,
            "id": bucket_id(bucket),
            "versioning": "Disabled",
            "autoTiering": null,
        });
        if wanted.contains(&"approximateCount") || wanted.contains(&"approximateSize") {
            let entries = state.store.lock().list()?;
            let mut size = 0u64;
            for entry in &entries {
                size += entry.meta["size"].as_u64().unwrap_or(0);
            }
            if wanted.contains(&"approximateCount") {
                body["approximateCount"] = json!(entries.len());
            }
            if wanted.contains(&"approximateSize") {
                body["approximateSize"] = json!(size);
            }
        }
        if wanted.contains(&"autoTiering") {
            body["autoTiering"] = json!("Disabled");
        }
        Ok(EmuResponse::json(200, &body).with_header("etag", state.info.etag.clone()))
    }

    fn notify(&self, change: Change) {
        if !self
            .events_enabled
            .load(std::sync::atomic::Ordering::SeqCst)
        {
            return;
        }
        let listener = self.listener.read().unwrap_or_else(|e| e.into_inner());
        if let Some(listener) = listener.as_ref() {
            listener(&change);
        }
    }

    fn put(
        &self,
        req: &EmuRequest,
        bucket: &str,
        store: &Store,
        name: &str,
    ) -> crate::Result<EmuResponse> {
        let Some(length) = req.header("content-length") else {
            return Ok(EmuResponse::error(
                411,
                "LengthRequired",
                "PutObject needs a Content-Length; chunked uploads are not accepted",
            ));
        };
        if length.trim().parse::<u64>().ok() != Some(req.body.len() as u64) {
            return Ok(invalid("Content-Length does not match the body"));
        }
        let md5 = base64::engine::general_purpose::STANDARD.encode(crate::md5::digest(&req.body));
        if let Some(sent) = req.header("content-md5") {
            if sent.trim() != md5 {
                return Ok(EmuResponse::error(
                    400,
                    "UnmatchedContentMD5",
                    "the Content-MD5 header does not match the body",
                ));
            }
        }
        let create_only = match req.header("if-none-match") {
            None => false,
            Some(v) if v.trim() == "*" => true,
            Some(_) => return Ok(invalid("the only valid If-None-Match on PUT is '*'")),
        };
        let content_type = req
            .header("content-type")
            .filter(|v| !v.trim().is_empty())
            .unwrap_or(DEFAULT_CONTENT_TYPE)
            .to_string();
        let metadata: Vec<(String, String)> = req
            .headers
            .iter()
            .filter_map(|(n, v)| {
                let key = n.to_ascii_lowercase();
                let key = key.strip_prefix(META_PREFIX)?;
                Some((key.to_string(), v.clone()))
            })
            .collect();

        let mut locked = store.lock();
        let existing = read_stored(locked.meta(name)?)?;
        if create_only && existing.is_some() {
            return Ok(EmuResponse::error(
                412,
                "IfNoneMatchFailed",
                "the object already exists (If-None-Match: *)",
            ));
        }
        if let Some(wanted) = req.header("if-match") {
            if !existing
                .as_ref()
                .is_some_and(|e| etag_matches(&e.etag, wanted))
            {
                return Ok(if_match_failed());
            }
        }
        let now = store::now_micros();
        let stored = Stored {
            name: name.to_string(),
            size: req.body.len() as u64,
            etag: crate::random::uuid(),
            content_type,
            created_us: now,
            modified_us: now,
            metadata,
            md5,
        };
        let meta = serde_json::to_value(&stored)?;
        if locked.index_bytes() + locked.index_growth(name, &meta)? > MAX_INDEX_BYTES {
            return Ok(EmuResponse::error(
                507,
                "InsufficientStorage",
                "the emulator keeps at most 64 MiB of object names and metadata per bucket; \
                 delete objects first",
            ));
        }
        locked.put(name, &meta, &req.body)?;
        self.notify(Change {
            kind: if existing.is_some() {
                ChangeKind::Updated
            } else {
                ChangeKind::Created
            },
            namespace: self.namespace.clone(),
            bucket: bucket.to_string(),
            name: name.to_string(),
            etag: Some(stored.etag.clone()),
        });
        drop(locked);
        Ok(EmuResponse::empty(200)
            .with_header("etag", stored.etag.clone())
            .with_header("opc-content-md5", stored.md5.clone())
            .with_header("last-modified", stored.last_modified()))
    }

    fn delete(
        &self,
        req: &EmuRequest,
        bucket: &str,
        store: &Store,
        name: &str,
    ) -> crate::Result<EmuResponse> {
        let mut locked = store.lock();
        let Some(existing) = read_stored(locked.meta(name)?)? else {
            return Ok(object_not_found(name));
        };
        if let Some(wanted) = req.header("if-match") {
            if !etag_matches(&existing.etag, wanted) {
                return Ok(if_match_failed());
            }
        }
        locked.delete(name)?;
        self.notify(Change {
            kind: ChangeKind::Deleted,
            namespace: self.namespace.clone(),
            bucket: bucket.to_string(),
            name: name.to_string(),
            etag: None,
        });
        Ok(EmuResponse::empty(204))
    }
}

/// HEAD and GET (with an optional single range).
fn get(req: &EmuRequest, store: &Store, name: &str) -> crate::Result<EmuResponse> {
    let head = req.method == "HEAD";
    let found = {
        let locked = store.lock();
        if head {
            locked.meta(name)?.map(|m| (m, Vec::new()))
        } else {
            locked.get(name)?
        }
    };
    let Some((meta, body)) = found else {
        return Ok(object_not_found(name));
    };
    let stored: Stored = serde_json::from_value(meta)?;
    if let Some(wanted) = req.header("if-match") {
        if !etag_matches(&stored.etag, wanted) {
            return Ok(if_match_failed());
        }
    }
    if let Some(tags) = req.header("if-none-match") {
        if etag_matches(&stored.etag, tags) {
            return Ok(EmuResponse::empty(304)
                .with_header("etag", stored.etag.clone())
                .with_header("last-modified", stored.last_modified()));
        }
    }
    let mut response = EmuResponse::empty(200)
        .with_header("content-type", stored.content_type.clone())
        .with_header("etag", stored.etag.clone())
        .with_header("last-modified", stored.last_modified())
        .with_header("content-md5", stored.md5.clone())
        .with_header("storage-tier", "Standard")
        .with_header("accept-ranges", "bytes");
    for (key, value) in &stored.metadata {
        response = response.with_header(&format!("{META_PREFIX}{key}"), value.clone());
    }
    if head {
        return Ok(response.with_header("content-length", stored.size.to_string()));
    }
    let size = body.len() as u64;
    match req.header("range").map(|r| parse_range(r, size)) {
        None | Some(RangeOutcome::Whole) => {
            response.body = body;
            Ok(response)
        }
        Some(RangeOutcome::Unsatisfiable) => Ok(EmuResponse::error(
            416,
            "InvalidRange",
            "the requested range is not satisfiable",
        )
        .with_header("content-range", format!("bytes */{size}"))),
        Some(RangeOutcome::Part(first, last)) => {
            response.status = 206;
            response.body = body[first as usize..=last as usize].to_vec();
            Ok(response.with_header("content-range", format!("bytes {first}-{last}/{size}")))
        }
    }
}

/// What a `range` header asks of an object of a given size.
#[derive(Debug, PartialEq, Eq)]
enum RangeOutcome {
    /// Ignore the header (malformed, several ranges or another unit), as RFC 9110 allows.
    Whole,
    /// 416.
    Unsatisfiable,
    /// Inclusive first and last byte.
    Part(u64, u64),
}

fn parse_range(header: &str, size: u64) -> RangeOutcome {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return RangeOutcome::Whole;
    };
    if spec.contains(',') {
        return RangeOutcome::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeOutcome::Whole;
    };
    if first.is_empty() {
        return match last.parse::<u64>() {
            Ok(0) => RangeOutcome::Unsatisfiable,
            Ok(_) if size == 0 => RangeOutcome::Unsatisfiable,
            Ok(n) => RangeOutcome::Part(size.saturating_sub(n), size - 1),
            Err(_) => RangeOutcome::Whole,
        };
    }
    let Ok(first) = first.parse::<u64>() else {
        return RangeOutcome::Whole;
    };
    let last = if last.is_empty() {
        u64::MAX
    } else {
        match last.parse::<u64>() {
            Ok(last) if last >= first => last,
            _ => return RangeOutcome::Whole,
        }
    };
    if first >= size {
        return RangeOutcome::Unsatisfiable;
    }
    RangeOutcome::Part(first, last.min(size - 1))
}

/// The listing options of one ListObjects call.
struct ListQuery {
    prefix: String,
    start: Option<String>,
    end: Option<String>,
    start_after: Option<String>,
    limit: usize,
    delimiter: bool,
    fields: Vec<String>,
}

fn list_query(req: &EmuRequest) -> Result<ListQuery, EmuResponse> {
    let mut query = ListQuery {
        prefix: String::new(),
        start: None,
        end: None,
        start_after: None,
        limit: MAX_PAGE,
        delimiter: false,
        fields: Vec::new(),
    };
    for (key, value) in req.query() {
        match key.as_str() {
            "prefix" => query.prefix = value,
            "start" => query.start = Some(value),
            "end" => query.end = Some(value),
            "startAfter" => query.start_after = Some(value),
            "limit" => {
                query.limit = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_PAGE).contains(n))
                    .ok_or_else(|| invalid("limit must be an integer from 1 to 1000"))?;
            }
            "delimiter" if value == "/" => query.delimiter = true,
            "delimiter" => return Err(invalid("the only supported delimiter is '/'")),
            "fields" => {
                // OCI takes the names in any case (`Size,ETag`); they come back in its spelling.
                for field in value.split(',').map(str::trim).filter(|f| !f.is_empty()) {
                    let known = LIST_FIELDS
                        .iter()
                        .find(|known| known.eq_ignore_ascii_case(field))
                        .ok_or_else(|| invalid(&format!("unknown field '{field}' in fields")))?;
                    query.fields.push(known.to_string());
                }
            }
            _ => {}
        }
    }
    Ok(query)
}

fn list(req: &EmuRequest, store: &Store) -> crate::Result<EmuResponse> {
    let query = match list_query(req) {
        Ok(query) => query,
        Err(response) => return Ok(response),
    };
    // Names sort bytewise (the service's order, and the store's), so the listing is one walk
    // from the highest lower bound; the names under a prefix are contiguous in that order.
    let from = [query.start.as_deref(), query.start_after.as_deref()]
        .into_iter()
        .flatten()
        .fold(query.prefix.as_str(), |a, b| a.max(b));
    let locked = store.lock();
    let mut listed = Vec::new();
    let mut prefixes: Vec<String> = Vec::new();
    let mut next_start = None;
    for entry in locked.entries_from(from) {
        let name = entry.key;
        if !name.starts_with(&query.prefix) || query.end.as_deref().is_some_and(|e| name >= e) {
            break;
        }
        if query.start_after.as_deref() == Some(name) {
            continue;
        }
        let folder = if query.delimiter {
            name[query.prefix.len()..]
                .find('/')
                .map(|i| &name[..query.prefix.len() + i + 1])
        } else {
            None
        };
        if folder.is_some() && prefixes.last().map(String::as_str) == folder {
            continue;
        }
        if listed.len() + prefixes.len() == query.limit {
            next_start = Some(folder.unwrap_or(name).to_string());
            break;
        }
        match folder {
            Some(folder) => prefixes.push(folder.to_string()),
            None => {
                listed.push(summary(&entry.meta::<Stored>()?, &query.fields));
            }
        }
    }
    let mut page = json!({ "objects": listed });
    if query.delimiter {
        page["prefixes"] = json!(prefixes);
    }
    if let Some(next) = next_start {
        page["nextStartWith"] = json!(next);
    }
    Ok(EmuResponse::json(200, &page))
}

fn summary(object: &Stored, fields: &[String]) -> Value {
    let mut out = json!({ "name": object.name });
    for field in fields {
        let value = match field.as_str() {
            "size" => json!(object.size),
            "etag" => json!(object.etag),
            "timeCreated" => json!(store::rfc3339(object.created_us, Precision::Millis)),
            "timeModified" => json!(store::rfc3339(object.modified_us, Precision::Millis)),
            "md5" => json!(object.md5),
            "storageTier" => json!("Standard"),
            // archivalState only exists for archived objects, and nothing here is archived.
            _ => continue,
        };
        out[field.as_str()] = value;
    }
    out
}

fn read_stored(meta: Option<Value>) -> crate::Result<Option<Stored>> {
    Ok(meta.map(serde_json::from_value).transpose()?)
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_NAME && !name.contains(['\n', '\r', '\0'])
}

/// True when `header` (an `If-Match`/`If-None-Match` value, maybe a list, quoted or weak)
/// names `etag` or is `*`.
fn etag_matches(etag: &str, header: &str) -> bool {
    header.split(',').any(|tag| {
        let tag = tag.trim();
        let tag = tag.strip_prefix("W/").unwrap_or(tag).trim_matches('"');
        tag == "*" || tag == etag
    })
}

/// The bucket OCID events and GetBucket name (stable: derived from the name).
pub fn bucket_id(bucket: &str) -> String {
    format!("ocid1.bucket.oc1.emulator.{bucket}")
}

/// Reads the bucket's `bucket.json` in `dir`, writing a new one (now, a fresh etag) the first
/// time.
fn bucket_info(dir: &Path) -> crate::Result<BucketInfo> {
    let path = dir.join("bucket.json");
    if let Ok(text) = std::fs::read(&path) {
        if let Ok(info) = serde_json::from_slice(&text) {
            return Ok(info);
        }
    }
    let info = BucketInfo {
        created_us: store::now_micros(),
        etag: crate::random::uuid(),
    };
    let partial = dir.join(".bucket.json.partial");
    std::fs::write(&partial, serde_json::to_vec(&info)?)?;
    std::fs::rename(&partial, &path)?;
    Ok(info)
}

/// Object Storage's answer for a bucket that does not exist, or that the caller may not see.
pub fn bucket_not_found(bucket: &str, namespace: &str) -> EmuResponse {
    EmuResponse::error(
        404,
        "BucketNotFound",
        &format!("Either the bucket named '{bucket}' does not exist in the namespace '{namespace}' or you are not authorized to access it"),
    )
}

fn invalid(message: &str) -> EmuResponse {
    EmuResponse::error(400, "InvalidParameter", message)
}

fn if_match_failed() -> EmuResponse {
    EmuResponse::error(
        412,
        "IfMatchFailed",
        "the If-Match etag does not match the object's current etag",
    )
}

fn object_not_found(name: &str) -> EmuResponse {
    EmuResponse::error(
        404,
        "ObjectNotFound",
        &format!("the object '{name}' was not found"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    const BASE: &str = "/n/ns/b/images/o";

    impl ObjectStorageService {
        /// `handle` for a caller allowed everything.
        fn handle_all(&self, req: &EmuRequest) -> EmuResponse {
            self.handle(req, &|_, _| true)
        }
    }

    #[test]
    fn each_operation_asks_for_its_permission_and_a_refusal_is_bucket_not_found() {
        let (_dir, svc) = setup("os-iam");
        put(&svc, "there", b"x", &[]);
        let asked = std::sync::Mutex::new(Vec::new());
        let deny = |permissions: &[&'static str], bucket: &str| {
            asked
                .lock()
                .unwrap()
                .push((permissions.to_vec(), bucket.to_string()));
            false
        };
        let cases: [(&str, String, &[&str]); 7] = [
            ("GET", "/n/ns/b/images".into(), &["BUCKET_READ"]),
            ("HEAD", "/n/ns/b/images".into(), &["BUCKET_INSPECT"]),
            ("GET", BASE.into(), &["OBJECT_INSPECT"]),
            ("HEAD", object("there"), &["OBJECT_READ", "OBJECT_INSPECT"]),
            ("GET", object("there"), &["OBJECT_READ"]),
            ("DELETE", object("there"), &["OBJECT_DELETE"]),
            ("PUT", object("there"), &["OBJECT_OVERWRITE"]),
        ];
        for (method, path, wanted) in cases {
            asked.lock().unwrap().clear();
            let r = svc.handle(
                &request(method, &path, &[("content-length", "1")], b"y"),
                &deny,
            );
            assert_eq!(r.status, 404, "{method} {path}");
            if method != "HEAD" {
                assert_eq!(code(&r), "BucketNotFound");
            }
            assert_eq!(
                asked.lock().unwrap().as_slice(),
                [(wanted.to_vec(), "images".to_string())],
                "{method} {path}"
            );
        }
        asked.lock().unwrap().clear();
        let r = svc.handle(
            &request("PUT", &object("new"), &[("content-length", "1")], b"y"),
            &deny,
        );
        assert_eq!(r.status, 404);
        assert_eq!(asked.lock().unwrap()[0].0, ["OBJECT_CREATE"]);
        assert_eq!(svc.read_object("ns", "images", "there").unwrap().1, b"x");
        // GetNamespace needs no permission.
        assert_eq!(
            svc.handle(&request("GET", "/n", &[], b""), &deny).status,
            200
        );
    }

    /// A test directory, removed when dropped.
    struct Scratch(std::path::PathBuf);

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A service on a fresh directory, which goes when the returned guard drops.
    fn setup(tag: &str) -> (Scratch, ObjectStorageService) {
        let dir = Scratch(store::test_dir(tag));
        let svc = service(&dir.0);
        (dir, svc)
    }

    fn service(dir: &Path) -> ObjectStorageService {
        ObjectStorageService::new(dir, "ns", "ocid1.compartment.oc1..c", &["images", "other"])
            .unwrap()
    }

    fn request(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> EmuRequest {
        EmuRequest::new(method, path, headers, body)
    }

    fn object(name: &str) -> String {
        format!("{BASE}/{}", encode::object_path(name))
    }

    fn put(
        svc: &ObjectStorageService,
        name: &str,
        body: &[u8],
        extra: &[(&str, &str)],
    ) -> EmuResponse {
        let length = body.len().to_string();
        let mut headers = vec![("content-length", length.as_str())];
        headers.extend_from_slice(extra);
        svc.handle_all(&request("PUT", &object(name), &headers, body))
    }

    fn call(
        svc: &ObjectStorageService,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> EmuResponse {
        svc.handle_all(&request(method, path, headers, b""))
    }

    fn etag(response: &EmuResponse) -> String {
        response.header("etag").unwrap().to_string()
    }

    fn code(response: &EmuResponse) -> String {
        let body: Value = serde_json::from_slice(&response.body).unwrap();
        body["code"].as_str().unwrap().to_string()
    }

    fn names(response: &EmuResponse) -> Vec<String> {
        let body: Value = serde_json::from_slice(&response.body).unwrap();
        body["objects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["name"].as_str().unwrap().to_string())
            .collect()
    }

    fn page(response: &EmuResponse) -> Value {
        assert_eq!(
            response.status,
            200,
            "{:?}",
            String::from_utf8_lossy(&response.body)
        );
        serde_json::from_slice(&response.body).unwrap()
    }

    #[test]
    fn namespace_and_request_ids() {
        let (_dir, svc) = setup("os-ns");
        for path in ["/n", "/n/"] {
            let r = call(&svc, "GET", path, &[("opc-client-request-id", "mine")]);
            assert_eq!((r.status, r.body.as_slice()), (200, b"\"ns\"".as_slice()));
            assert_eq!(r.header("opc-client-request-id"), Some("mine"));
            assert_eq!(r.header("opc-request-id").map(str::len), Some(32));
        }
        let r = call(&svc, "GET", "/n/nope/b/images/o", &[]);
        assert_eq!((r.status, code(&r)), (404, "NamespaceNotFound".into()));
        let r = call(&svc, "GET", "/n/ns/b/nope/o", &[]);
        assert_eq!((r.status, code(&r)), (404, "BucketNotFound".into()));
        assert!(r.header("opc-request-id").is_some());
        let r = call(&svc, "POST", "/n/ns/b/images/o/x", &[]);
        assert_eq!(r.status, 405);
        assert_eq!(call(&svc, "PUT", BASE, &[]).status, 405);
        put(&svc, "one", b"12345", &[]);
        let r = call(
            &svc,
            "GET",
            "/n/ns/b/images?fields=approximateCount,ApproximateSize",
            &[],
        );
        let bucket = page(&r);
        for (field, value) in [
            ("namespace", json!("ns")),
            ("name", json!("images")),
            ("objectEventsEnabled", json!(true)),
            ("compartmentId", json!("ocid1.compartment.oc1..c")),
            ("id", json!("ocid1.bucket.oc1.emulator.images")),
            ("publicAccessType", json!("NoPublicAccess")),
            ("storageTier", json!("Standard")),
            ("versioning", json!("Disabled")),
            ("approximateCount", json!(1)),
            ("approximateSize", json!(5)),
        ] {
            assert_eq!(bucket[field], value, "{field}");
        }
        assert_eq!(bucket["timeCreated"].as_str().map(str::len), Some(24));
        assert_eq!(r.header("etag"), bucket["etag"].as_str());
        let again = page(&call(&svc, "GET", "/n/ns/b/images", &[]));
        assert!(again["approximateCount"].is_null());
        assert_eq!(
            again["timeCreated"], bucket["timeCreated"],
            "kept across calls"
        );
        let r = call(&svc, "HEAD", "/n/ns/b/images", &[]);
        assert_eq!((r.status, r.body.len()), (200, 0));
        assert_eq!(call(&svc, "GET", "/n/ns/b/images/u", &[]).status, 404);
        assert_eq!(call(&svc, "GET", "/v1/other", &[]).status, 404);
    }

    #[test]
    fn put_head_get_delete() {
        let (_dir, svc) = setup("os-crud");
        let r = put(
            &svc,
            "uploads/cat.jpg",
            b"meow",
            &[("opc-meta-original-name", "Cat.JPG")],
        );
        assert_eq!(r.status, 200);
        assert!(r.body.is_empty());
        let etag = etag(&r);
        assert_eq!((etag.len(), &etag[14..15]), (36, "4"));
        assert!(httpdate::parse_http_date(r.header("last-modified").unwrap()).is_ok());

        let r = call(&svc, "HEAD", &object("uploads/cat.jpg"), &[]);
        assert_eq!(r.status, 200);
        assert!(r.body.is_empty());
        assert_eq!(r.header("content-length"), Some("4"));
        assert_eq!(r.header("content-type"), Some(DEFAULT_CONTENT_TYPE));
        assert_eq!(r.header("etag"), Some(etag.as_str()));
        assert_eq!(r.header("opc-meta-original-name"), Some("Cat.JPG"));

        let r = put(&svc, "b.png", b"png", &[("content-type", "image/png")]);
        assert_eq!(r.status, 200);
        let r = call(&svc, "GET", &object("b.png"), &[]);
        assert_eq!((r.status, r.body.as_slice()), (200, b"png".as_slice()));
        assert_eq!(r.header("content-type"), Some("image/png"));

        let r = call(&svc, "DELETE", &object("uploads/cat.jpg"), &[]);
        assert_eq!((r.status, r.body.len()), (204, 0));
        let r = call(&svc, "DELETE", &object("uploads/cat.jpg"), &[]);
        assert_eq!((r.status, code(&r)), (404, "ObjectNotFound".into()));
        let r = call(&svc, "GET", &object("uploads/cat.jpg"), &[]);
        assert_eq!((r.status, code(&r)), (404, "ObjectNotFound".into()));
        let r = call(&svc, "HEAD", &object("uploads/cat.jpg"), &[]);
        assert_eq!((r.status, r.body.len()), (404, 0));
        assert_eq!(r.header("content-type"), None);
    }

    #[test]
    fn refusals_length_and_names() {
        let (_dir, svc) = setup("os-refuse");
        let r = svc.handle_all(&request("PUT", &object("a"), &[], b"abc"));
        assert_eq!(r.status, 411);
        let r = svc.handle_all(&request(
            "PUT",
            &object("a"),
            &[("content-length", "2")],
            b"abc",
        ));
        assert_eq!((r.status, code(&r)), (400, "InvalidParameter".into()));
        let long = "n".repeat(1025);
        for bad in [
            format!("{BASE}/"),
            object(&long),
            format!("{BASE}/a%0Ab"),
            format!("{BASE}/a%00"),
            format!("{BASE}/%FF"),
        ] {
            let r = svc.handle_all(&request("PUT", &bad, &[("content-length", "0")], b""));
            assert_eq!(
                (r.status, code(&r)),
                (400, "InvalidObjectName".into()),
                "{bad}"
            );
        }
        assert_eq!(put(&svc, &"n".repeat(1024), b"", &[]).status, 200);
        let r = put(&svc, "a", b"", &[("if-none-match", "abc")]);
        assert_eq!(r.status, 400);
        let r = put(
            &svc,
            "a",
            b"abc",
            &[("content-md5", "AAAAAAAAAAAAAAAAAAAAAA==")],
        );
        assert_eq!((r.status, code(&r)), (400, "UnmatchedContentMD5".into()));
        assert!(svc.read_object("ns", "images", "a").is_none());
        let r = put(
            &svc,
            "a",
            b"abc",
            &[("content-md5", "kAFQmDzST7DWlj99KOF/cg==")],
        );
        assert_eq!(r.status, 200);
        assert_eq!(
            r.header("opc-content-md5"),
            Some("kAFQmDzST7DWlj99KOF/cg==")
        );
        let r = call(&svc, "HEAD", &object("a"), &[]);
        assert_eq!(r.header("content-md5"), Some("kAFQmDzST7DWlj99KOF/cg=="));
    }

    #[test]
    fn conditionals() {
        let (_dir, svc) = setup("os-cond");
        let first = put(&svc, "x", b"one", &[("if-none-match", "*")]);
        assert_eq!(first.status, 200);
        let first = etag(&first);

        let r = put(&svc, "x", b"two", &[("if-none-match", "*")]);
        assert_eq!((r.status, code(&r)), (412, "IfNoneMatchFailed".into()));
        let r = put(
            &svc,
            "x",
            b"two",
            &[("if-match", "00000000-0000-4000-8000-000000000000")],
        );
        assert_eq!((r.status, code(&r)), (412, "IfMatchFailed".into()));
        let r = put(&svc, "missing", b"two", &[("if-match", &first)]);
        assert_eq!((r.status, code(&r)), (412, "IfMatchFailed".into()));
        assert_eq!(svc.read_object("ns", "images", "x").unwrap().1, b"one");

        for method in ["GET", "HEAD"] {
            let r = call(&svc, method, &object("x"), &[("if-none-match", &first)]);
            assert_eq!((r.status, r.body.len()), (304, 0));
            let quoted = format!("\"{first}\"");
            assert_eq!(
                call(&svc, method, &object("x"), &[("if-none-match", &quoted)]).status,
                304
            );
            let r = call(&svc, method, &object("x"), &[("if-none-match", "other")]);
            assert_eq!(r.status, 200);
        }

        let r = put(&svc, "x", b"two", &[("if-match", &first)]);
        assert_eq!(r.status, 200);
        let current = etag(&r);
        assert_ne!(current, first);
        let r = call(&svc, "DELETE", &object("x"), &[("if-match", &first)]);
        assert_eq!((r.status, code(&r)), (412, "IfMatchFailed".into()));
        let r = call(&svc, "DELETE", &object("x"), &[("if-match", &current)]);
        assert_eq!(r.status, 204);
    }

    #[test]
    fn ranges() {
        let (_dir, svc) = setup("os-range");
        put(&svc, "r", b"0123456789", &[]);
        let get = |range: &str| call(&svc, "GET", &object("r"), &[("range", range)]);
        for (range, body, content_range) in [
            ("bytes=2-4", "234", "bytes 2-4/10"),
            ("bytes=7-", "789", "bytes 7-9/10"),
            ("bytes=-3", "789", "bytes 7-9/10"),
            ("bytes=8-100", "89", "bytes 8-9/10"),
            ("bytes=-50", "0123456789", "bytes 0-9/10"),
        ] {
            let r = get(range);
            assert_eq!(r.status, 206, "{range}");
            assert_eq!(r.body, body.as_bytes(), "{range}");
            assert_eq!(r.header("content-range"), Some(content_range), "{range}");
        }
        for range in ["bytes=10-", "bytes=10-12", "bytes=-0"] {
            let r = get(range);
            assert_eq!(r.status, 416, "{range}");
            assert_eq!(r.header("content-range"), Some("bytes */10"));
        }
        for range in ["bytes=4-2", "items=0-1", "bytes=0-1,3-4", "bytes=x-"] {
            assert_eq!(get(range).status, 200, "{range}");
        }
    }

    #[test]
    fn concurrent_create_only_puts_have_one_winner() {
        let (_dir, svc) = setup("os-race");
        let svc = Arc::new(svc);
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let svc = Arc::clone(&svc);
                std::thread::spawn(move || {
                    let body = format!("writer {i}");
                    let r = put(&svc, "race", body.as_bytes(), &[("if-none-match", "*")]);
                    (r.status, body)
                })
            })
            .collect();
        let results: Vec<(u16, String)> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        let winners: Vec<&String> = results
            .iter()
            .filter(|(s, _)| *s == 200)
            .map(|(_, b)| b)
            .collect();
        assert_eq!(winners.len(), 1, "{results:?}");
        assert!(results.iter().all(|(s, _)| *s == 200 || *s == 412));
        let stored = svc.read_object("ns", "images", "race").unwrap().1;
        assert_eq!(stored, winners[0].as_bytes());
    }

    #[test]
    fn listing_pages_past_a_thousand() {
        let (_dir, svc) = setup("os-page");
        for i in 0..1003 {
            assert_eq!(put(&svc, &format!("img/{i:05}.jpg"), b"x", &[]).status, 200);
        }
        let first = page(&call(&svc, "GET", BASE, &[]));
        assert_eq!(first["objects"].as_array().unwrap().len(), 1000);
        assert_eq!(first["nextStartWith"], "img/01000.jpg");
        assert!(first.get("prefixes").is_none());
        assert_eq!(first["objects"][0], json!({"name": "img/00000.jpg"}));
        let second = page(&call(
            &svc,
            "GET",
            &format!("{BASE}?start=img%2F01000.jpg&limit=1000"),
            &[],
        ));
        assert_eq!(
            second["objects"],
            json!([{"name": "img/01000.jpg"}, {"name": "img/01001.jpg"}, {"name": "img/01002.jpg"}])
        );
        assert!(second.get("nextStartWith").is_none());
        for bad in [
            "limit=0",
            "limit=1001",
            "limit=ten",
            "delimiter=%2C",
            "fields=name,colour",
        ] {
            let r = call(&svc, "GET", &format!("{BASE}?{bad}"), &[]);
            assert_eq!(
                (r.status, code(&r)),
                (400, "InvalidParameter".into()),
                "{bad}"
            );
        }
    }

    #[test]
    fn listing_filters_prefixes_and_fields() {
        let (_dir, svc) = setup("os-list");
        for name in ["b/2", "a", "B", "b/1", "c/x/y", "caf\u{e9}", "d"] {
            put(&svc, name, b"abc", &[]);
        }
        let list = |query: &str| call(&svc, "GET", &format!("{BASE}?{query}"), &[]);
        assert_eq!(
            names(&list("")),
            ["B", "a", "b/1", "b/2", "c/x/y", "caf\u{e9}", "d"]
        );
        assert_eq!(names(&list("prefix=b%2F")), ["b/1", "b/2"]);
        assert_eq!(
            names(&list("start=b%2F2&end=d")),
            ["b/2", "c/x/y", "caf\u{e9}"]
        );
        assert_eq!(
            names(&list("startAfter=b%2F2")),
            ["c/x/y", "caf\u{e9}", "d"]
        );

        let p = page(&list("delimiter=%2F"));
        assert_eq!(p["prefixes"], json!(["b/", "c/"]));
        assert_eq!(names(&list("delimiter=%2F")), ["B", "a", "caf\u{e9}", "d"]);
        let p2 = page(&list("delimiter=%2F&prefix=c%2F"));
        assert_eq!(
            (p2["prefixes"].clone(), p2["objects"].clone()),
            (json!(["c/x/"]), json!([]))
        );
        // Prefixes count towards the limit and page like names.
        let p = page(&list("delimiter=%2F&limit=3"));
        assert_eq!(
            (p["prefixes"].clone(), p["nextStartWith"].clone()),
            (json!(["b/"]), json!("c/"))
        );

        // Field names in any case, as the SDKs and the CLI send them.
        let p = page(&list(
            "fields=name,Size,ETag,timeCreated,TIMEMODIFIED,md5&prefix=d",
        ));
        let d = &p["objects"][0];
        assert_eq!(d["size"], 3);
        assert_eq!(d["etag"].as_str().unwrap().len(), 36);
        let created = d["timeCreated"].as_str().unwrap();
        assert_eq!((created.len(), &created[23..]), (24, "Z"));
        assert_eq!(d["timeModified"], d["timeCreated"]);
        assert_eq!(d["md5"], "kAFQmDzST7DWlj99KOF/cg==");
    }

    #[test]
    fn awkward_names_round_trip() {
        let (_dir, svc) = setup("os-names");
        let awkward = [
            "up loads/my photo #1.jpg",
            "100% real.png",
            "a%2Fb",
            "caf\u{e9}/\u{1F600} ?&=+.png",
            "/leading//double",
        ];
        for name in awkward {
            assert_eq!(put(&svc, name, name.as_bytes(), &[]).status, 200, "{name}");
            let r = call(&svc, "GET", &object(name), &[]);
            assert_eq!(
                (r.status, r.body.as_slice()),
                (200, name.as_bytes()),
                "{name}"
            );
        }
        // %2F and / are the same name once decoded.
        let r = call(
            &svc,
            "GET",
            &format!("{BASE}/up%20loads%2Fmy%20photo%20%231.jpg"),
            &[],
        );
        assert_eq!(r.status, 200);
        let mut expected: Vec<&str> = awkward.to_vec();
        expected.sort();
        assert_eq!(names(&call(&svc, "GET", BASE, &[])), expected);
    }

    #[test]
    fn restart_keeps_objects_and_buckets_are_separate() {
        let dir = Scratch(store::test_dir("os-restart"));
        let etag = {
            let svc = service(&dir.0);
            let r = put(&svc, "keep/me.jpg", b"data", &[("opc-meta-k", "v")]);
            etag(&r)
        };
        let svc = service(&dir.0);
        let (meta, body) = svc.read_object("ns", "images", "keep/me.jpg").unwrap();
        assert_eq!((meta.etag, meta.size, body), (etag, 4, b"data".to_vec()));
        assert_eq!(meta.metadata, [("k".to_string(), "v".to_string())]);
        assert!(svc.read_object("ns", "other", "keep/me.jpg").is_none());
        assert!(svc
            .read_object("elsewhere", "images", "keep/me.jpg")
            .is_none());
        assert_eq!(
            names(&call(&svc, "GET", "/n/ns/b/other/o", &[])),
            Vec::<String>::new()
        );
    }

    #[test]
    fn changes_are_reported() {
        let (_dir, svc) = setup("os-changes");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);
        svc.on_change(Box::new(move |c| sink.lock().unwrap().push(c.clone())));
        let e1 = etag(&put(&svc, "p/q.jpg", b"1", &[]));
        let e2 = etag(&put(&svc, "p/q.jpg", b"2", &[]));
        put(&svc, "p/q.jpg", b"3", &[("if-none-match", "*")]);
        call(&svc, "DELETE", &object("p/q.jpg"), &[]);
        call(&svc, "DELETE", &object("p/q.jpg"), &[]);
        let seen = seen.lock().unwrap();
        let kinds: Vec<(ChangeKind, Option<String>)> =
            seen.iter().map(|c| (c.kind, c.etag.clone())).collect();
        assert_eq!(
            kinds,
            [
                (ChangeKind::Created, Some(e1)),
                (ChangeKind::Updated, Some(e2)),
                (ChangeKind::Deleted, None)
            ]
        );
        assert_eq!(
            (
                seen[0].namespace.as_str(),
                seen[0].bucket.as_str(),
                seen[0].name.as_str()
            ),
            ("ns", "images", "p/q.jpg")
        );
    }
}
