//! Emulated ORDS SODA for REST: collections of JSON documents, keyed, versioned and queryable.
//!
//! [`SodaService::handle`] answers requests under `/ords/{schema}/soda/{version}/` the way
//! `soda-rest.md` §2–§4 and §9 describe: collection create (201, then 200 for the same metadata,
//! 409 for different key assignment), drop, list; document get/put/delete with `ETag`
//! conditionals; paged listings with the `items`/`hasMore`/`count` envelope; and the `query`,
//! `delete`, `truncate` and `insert` actions with a QBE subset (implicit `$eq` on dotted paths,
//! `$eq $ne $gt $gte $lt $lte $in $nin $exists $startsWith $hasSubstring $not`, `$and $or
//! $nor`, `$id`, and `$orderby` in object or array form). Each collection is one [`Store`];
//! documents keep their etag (64 upper-hex), creation and modification times across restarts.
//!
//! Deliberately not here: Basic-auth checks and fault injection (done before `handle`), schema
//! separation (every alias sees the same collections), `update`/`PATCH`, indexes, the
//! `custom-actions` and `metadata-catalog` paths, `fromID`-style paging, item methods such as
//! `$lower`, and 23ai native (`_id`) collections. One lock serialises all requests: an emulator
//! wants clear ordering more than throughput.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::store::{self, Store};
use super::wire::{EmuRequest, EmuResponse};
use crate::oci::encode;
use crate::timefmt::Precision;

/// Documents per page when `limit` is absent.
const DEFAULT_LIMIT: usize = 100;
/// Largest page served; larger `limit`s are lowered to it.
const MAX_LIMIT: usize = 1000;
/// Longest document key.
const MAX_KEY: usize = 255;
/// Path names ORDS reserves below the version segment.
const RESERVED: &[&str] = &["custom-actions", "metadata-catalog"];

/// SODA over a data directory.
pub struct SodaService {
    root: PathBuf,
    state: Mutex<State>,
}

impl std::fmt::Debug for SodaService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SodaService")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

struct State {
    /// Collection name → [`CollectionInfo`] (no body).
    catalog: Store,
    /// Document stores opened so far.
    open: HashMap<String, Store>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct CollectionInfo {
    metadata: Value,
    created_us: u64,
}

impl CollectionInfo {
    fn client_keys(&self) -> bool {
        assignment_method(&self.metadata) == "CLIENT"
    }
}

/// What each document keeps besides its content.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct DocMeta {
    etag: String,
    created_us: u64,
    modified_us: u64,
}

/// A document loaded for listing or querying.
struct Doc {
    id: String,
    meta: DocMeta,
    value: Value,
}

/// How much of each item a listing shows (`fields=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fields {
    All,
    Id,
    Value,
}

/// Paging options shared by list and query.
struct Paging {
    limit: usize,
    offset: usize,
    fields: Fields,
    total: bool,
}

/// A parsed QBE: a filter and sort keys (path, descending).
struct Qbe {
    filter: Map<String, Value>,
    order: Vec<(String, bool)>,
}

/// The URL prefix of the collections, for `Location` and `links`.
struct Base(String);

impl Base {
    fn collection(&self, name: &str) -> String {
        format!("{}/{}", self.0, encode::component(name))
    }

    fn document(&self, name: &str, id: &str) -> String {
        format!("{}/{}", self.collection(name), encode::component(id))
    }
}

impl SodaService {
    /// Opens (or creates) the SODA data under `data_dir`; collections and documents written by
    /// an earlier instance on the same directory are still there.
    pub fn new(data_dir: impl AsRef<Path>) -> crate::Result<SodaService> {
        let root = data_dir.as_ref().join("soda");
        let catalog = Store::open(root.join("catalog"))?;
        Ok(SodaService {
            root,
            state: Mutex::new(State {
                catalog,
                open: HashMap::new(),
            }),
        })
    }

    /// Answers one request. Storage failures become 500.
    pub fn handle(&self, req: &EmuRequest) -> EmuResponse {
        let Some(segments) = req.segments_after("/ords") else {
            return not_found("the request could not be mapped to any database object");
        };
        if segments.len() < 3 || segments[1] != "soda" {
            return not_found("the request could not be mapped to any database object");
        }
        let base = Base(format!(
            "{}/ords/{}/soda/{}",
            req.header("host")
                .map(|h| format!("http://{h}"))
                .unwrap_or_default(),
            encode::component(&segments[0]),
            encode::component(&segments[2])
        ));
        let rest = &segments[3..];
        if rest.first().is_some_and(|s| RESERVED.contains(&s.as_str())) {
            return not_found("custom-actions and metadata-catalog are not emulated");
        }
        // Every request holds the one lock (see the module header).
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let result = match (req.method.as_str(), rest) {
            ("GET", []) => state.list_collections(&base, &segments[0]),
            ("PUT", [name]) => self.create_collection(&mut state, req, &base, name),
            ("DELETE", [name]) => self.drop_collection(&mut state, name),
            (_, [name, rest @ ..]) => self.in_collection(&mut state, req, &base, name, rest),
            _ => Ok(method_not_allowed()),
        };
        result.unwrap_or_else(|e| {
            log::warn!("emulator soda: {} {}: {e}", req.method, req.raw_path);
            soda_error(500, "InternalServerError", "the emulator's store failed")
        })
    }

    fn collection_dir(&self, name: &str) -> PathBuf {
        let digest = ring::digest::digest(&ring::digest::SHA256, name.as_bytes());
        self.root
            .join(format!("c-{}", store::hex_lower(&digest.as_ref()[..16])))
    }

    fn create_collection(
        &self,
        state: &mut State,
        req: &EmuRequest,
        base: &Base,
        name: &str,
    ) -> crate::Result<EmuResponse> {
        let given = if req.body.iter().all(u8::is_ascii_whitespace) {
            None
        } else {
            match serde_json::from_slice::<Value>(&req.body) {
                Ok(v @ Value::Object(_)) => Some(v),
                _ => return Ok(bad_request("collection metadata must be a JSON object")),
            }
        };
        let catalog = state.catalog.lock();
        if let Some(existing) = catalog.meta(name)? {
            let existing: CollectionInfo = serde_json::from_value(existing)?;
            let same = given
                .as_ref()
                .is_none_or(|g| essentials(g) == essentials(&existing.metadata));
            return Ok(if same {
                EmuResponse::empty(200)
            } else {
                soda_error(
                    409,
                    "CollectionMetadataMismatch",
                    "ORA-40669: collection create failed: collection with same name but different metadata exists",
                )
            });
        }
        let metadata = merge(default_metadata(), given.unwrap_or_else(|| json!({})));
        // A crash during an earlier drop can leave documents behind; a new collection starts empty.
        let dir = self.collection_dir(name);
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        let documents = Store::open(&dir)?;
        let info = CollectionInfo {
            metadata,
            created_us: store::now_micros(),
        };
        catalog.put(name, &serde_json::to_value(&info)?, b"")?;
        drop(catalog);
        state.open.insert(name.to_string(), documents);
        Ok(EmuResponse::empty(201).with_header("location", format!("{}/", base.collection(name))))
    }

    fn drop_collection(&self, state: &mut State, name: &str) -> crate::Result<EmuResponse> {
        // The catalog entry goes first: once it is gone the collection is gone, whatever
        // happens to its files.
        if !state.catalog.lock().delete(name)? {
            return Ok(collection_not_found(name));
        }
        let documents = state.open.remove(name);
        let dir = documents
            .as_ref()
            .map(|s| s.dir().to_path_buf())
            .unwrap_or_else(|| self.collection_dir(name));
        drop(documents);
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        Ok(EmuResponse::empty(200))
    }

    fn in_collection(
        &self,
        state: &mut State,
        req: &EmuRequest,
        base: &Base,
        name: &str,
        rest: &[String],
    ) -> crate::Result<EmuResponse> {
        let Some(info) = state.catalog.lock().meta(name)? else {
            return Ok(collection_not_found(name));
        };
        let info: CollectionInfo = serde_json::from_value(info)?;
        if !state.open.contains_key(name) {
            let opened = Store::open(self.collection_dir(name))?;
            state.open.insert(name.to_string(), opened);
        }
        let documents = &state.open[name];
        let collection = Collection {
            name,
            info: &info,
            store: documents,
            base,
        };
        match (req.method.as_str(), rest) {
            ("GET", []) => collection.list(req),
            ("POST", []) => collection.post(req),
            ("GET", [key]) => collection.get(req, key),
            ("PUT", [key]) => collection.put(req, key),
            ("DELETE", [key]) => collection.delete(req, key),
            _ => Ok(method_not_allowed()),
        }
    }
}

impl State {
    fn list_collections(&self, base: &Base, schema: &str) -> crate::Result<EmuResponse> {
        let mut entries = self.catalog.lock().list()?;
        entries.sort_by(|a, b| a.key.cmp(&b.key));
        let mut items = Vec::new();
        for entry in entries {
            let info: CollectionInfo = serde_json::from_value(entry.meta)?;
            let mut properties = info.metadata.clone();
            properties["schemaName"] = json!(schema.to_ascii_uppercase());
            properties["tableName"] = json!(entry.key);
            items.push(json!({
                "name": entry.key,
                "properties": properties,
                "links": [{"rel": "canonical", "href": base.collection(&entry.key)}],
            }));
        }
        Ok(EmuResponse::json(
            200,
            &json!({"items": items, "hasMore": false}),
        ))
    }
}

/// One existing collection while the service lock is held.
struct Collection<'a> {
    name: &'a str,
    info: &'a CollectionInfo,
    store: &'a Store,
    base: &'a Base,
}

impl Collection<'_> {
    fn list(&self, req: &EmuRequest) -> crate::Result<EmuResponse> {
        let paging = match paging(req) {
            Ok(p) => p,
            Err(r) => return Ok(r),
        };
        let qbe = match req.query_param("q") {
            None => Qbe {
                filter: Map::new(),
                order: Vec::new(),
            },
            Some(q) => match parse_qbe(q.as_bytes()) {
                Ok(qbe) => qbe,
                Err(message) => return Ok(bad_request(&message)),
            },
        };
        self.query_page(&qbe, &paging)
    }

    fn query_page(&self, qbe: &Qbe, paging: &Paging) -> crate::Result<EmuResponse> {
        let docs = match self.select(qbe)? {
            Ok(docs) => docs,
            Err(message) => return Ok(bad_request(&message)),
        };
        let total = docs.len();
        let items: Vec<Value> = docs
            .iter()
            .skip(paging.offset)
            .take(paging.limit)
            .map(|doc| self.item(doc, paging.fields))
            .collect();
        let count = items.len();
        let has_more = paging.offset + count < total;
        let mut page = json!({
            "items": items,
            "hasMore": has_more,
            "count": count,
            "offset": paging.offset,
            "limit": paging.limit,
        });
        if paging.total {
            page["totalResults"] = json!(total);
        }
        if has_more {
            page["links"] = json!([{
                "rel": "next",
                "href": format!(
                    "{}?offset={}&limit={}",
                    self.base.collection(self.name),
                    paging.offset + count,
                    paging.limit
                ),
            }]);
        }
        Ok(EmuResponse::json(200, &page))
    }

    /// Documents matching `qbe`, sorted by its order and then by id (so pages are stable);
    /// the inner error is a QBE the emulator refuses.
    fn select(&self, qbe: &Qbe) -> crate::Result<Result<Vec<Doc>, String>> {
        let mut docs = Vec::new();
        for doc in self.load_all()? {
            match matches(&qbe.filter, &doc) {
                Ok(true) => docs.push(doc),
                Ok(false) => {}
                Err(message) => return Ok(Err(message)),
            }
        }
        docs.sort_by(|a, b| {
            for (path, descending) in &qbe.order {
                let ordering = order_values(
                    resolve(&a.value, path).first().copied(),
                    resolve(&b.value, path).first().copied(),
                );
                let ordering = if *descending {
                    ordering.reverse()
                } else {
                    ordering
                };
                if ordering != Ordering::Equal {
                    return ordering;
                }
            }
            a.id.cmp(&b.id)
        });
        Ok(Ok(docs))
    }

    fn load_all(&self) -> crate::Result<Vec<Doc>> {
        let locked = self.store.lock();
        let mut docs = Vec::new();
        for entry in locked.list()? {
            // Listed and read under one guard, so the record cannot vanish in between.
            if let Some((meta, body)) = locked.get(&entry.key)? {
                docs.push(Doc {
                    id: entry.key,
                    meta: serde_json::from_value(meta)?,
                    value: serde_json::from_slice(&body)?,
                });
            }
        }
        Ok(docs)
    }

    fn item(&self, doc: &Doc, fields: Fields) -> Value {
        if fields == Fields::Value {
            return json!({"id": doc.id, "value": doc.value});
        }
        let mut item = json!({
            "id": doc.id,
            "etag": doc.meta.etag,
            "lastModified": store::rfc3339(doc.meta.modified_us, Precision::Micros),
            "created": store::rfc3339(doc.meta.created_us, Precision::Micros),
            "links": [{"rel": "self", "href": self.base.document(self.name, &doc.id)}],
        });
        if fields == Fields::All {
            item["value"] = doc.value.clone();
        }
        item
    }

    fn post(&self, req: &EmuRequest) -> crate::Result<EmuResponse> {
        let action = req.query_param("action");
        match action.as_deref() {
            None | Some("insert") if self.info.client_keys() => Ok(soda_error(
                405,
                "MethodNotAllowed",
                "POST inserts need server-assigned keys; this collection uses client-assigned keys (PUT by key)",
            )),
            None => self.insert(req, false),
            Some("insert") => self.insert(req, true),
            Some("query") => {
                let paging = match paging(req) {
                    Ok(p) => p,
                    Err(r) => return Ok(r),
                };
                match parse_qbe(&req.body) {
                    Ok(qbe) => self.query_page(&qbe, &paging),
                    Err(message) => Ok(bad_request(&message)),
                }
            }
            Some("delete") => {
                if req.body.iter().all(u8::is_ascii_whitespace) {
                    return Ok(bad_request("action=delete needs a QBE body"));
                }
                let qbe = match parse_qbe(&req.body) {
                    Ok(qbe) => qbe,
                    Err(message) => return Ok(bad_request(&message)),
                };
                let doomed = match self.select(&qbe)? {
                    Ok(docs) => docs,
                    Err(message) => return Ok(bad_request(&message)),
                };
                let locked = self.store.lock();
                for doc in &doomed {
                    locked.delete(&doc.id)?;
                }
                Ok(EmuResponse::json(
                    200,
                    &json!({"count": doomed.len(), "itemsDeleted": doomed.len()}),
                ))
            }
            Some("truncate") => {
                let locked = self.store.lock();
                for entry in locked.list()? {
                    locked.delete(&entry.key)?;
                }
                Ok(EmuResponse::empty(200))
            }
            // Accepted and ignored: every query here is a scan over an in-memory set anyway.
            Some("index" | "unindex") => {
                let named = serde_json::from_slice::<Value>(&req.body)
                    .ok()
                    .is_some_and(|spec| spec["name"].is_string());
                Ok(if named {
                    EmuResponse::empty(200)
                } else {
                    bad_request("an index specification needs a name")
                })
            }
            Some(other) => Ok(bad_request(&format!(
                "action '{other}' is not supported by the emulator"
            ))),
        }
    }

    /// POST of one document (201) or, with `action=insert`, an array (200); server keys only.
    fn insert(&self, req: &EmuRequest, bulk: bool) -> crate::Result<EmuResponse> {
        let values = match (serde_json::from_slice::<Value>(&req.body), bulk) {
            (Ok(Value::Array(values)), true) if values.iter().all(Value::is_object) => values,
            (Ok(value @ Value::Object(_)), false) => vec![value],
            _ => {
                return Ok(bad_request(if bulk {
                    "action=insert needs a JSON array of objects"
                } else {
                    "the document must be a JSON object"
                }))
            }
        };
        let locked = self.store.lock();
        let mut items = Vec::new();
        for value in values {
            let id = store::hex_upper(&crate::random::bytes::<16>());
            let body = serde_json::to_vec(&value)?;
            let meta = new_meta(&id, &body, None);
            locked.put(&id, &serde_json::to_value(&meta)?, &body)?;
            items.push(json!({
                "id": id,
                "etag": meta.etag,
                "lastModified": store::rfc3339(meta.modified_us, Precision::Micros),
                "created": store::rfc3339(meta.created_us, Precision::Micros),
            }));
        }
        let count = items.len();
        let location = items[0]["id"]
            .as_str()
            .map(|id| self.base.document(self.name, id));
        let response = EmuResponse::json(
            if bulk { 200 } else { 201 },
            &json!({"items": items, "hasMore": false, "count": count}),
        );
        Ok(match (bulk, location) {
            (false, Some(location)) => response.with_header("location", location),
            _ => response,
        })
    }

    fn get(&self, req: &EmuRequest, key: &str) -> crate::Result<EmuResponse> {
        let Some((meta, body)) = self.store.lock().get(key)? else {
            return Ok(document_not_found(key));
        };
        let meta: DocMeta = serde_json::from_value(meta)?;
        if req
            .header("if-none-match")
            .is_some_and(|tags| etag_matches(&meta.etag, tags))
        {
            return Ok(with_version(EmuResponse::empty(304), &meta));
        }
        let mut response = with_version(EmuResponse::empty(200), &meta)
            .with_header("content-type", "application/json");
        response.body = body;
        Ok(response)
    }

    fn put(&self, req: &EmuRequest, key: &str) -> crate::Result<EmuResponse> {
        if key.len() > MAX_KEY {
            return Ok(bad_request("keys are at most 255 characters"));
        }
        if !matches!(
            serde_json::from_slice::<Value>(&req.body),
            Ok(Value::Object(_))
        ) {
            return Ok(bad_request("the document must be a JSON object"));
        }
        let locked = self.store.lock();
        let existing: Option<DocMeta> =
            locked.meta(key)?.map(serde_json::from_value).transpose()?;
        if existing.is_none() && !self.info.client_keys() {
            // Server-assigned keys: PUT only replaces.
            return Ok(document_not_found(key));
        }
        if let Some(tags) = req.header("if-match") {
            if !existing
                .as_ref()
                .is_some_and(|m| etag_matches(&m.etag, tags))
            {
                return Ok(precondition_failed());
            }
        }
        let meta = new_meta(key, &req.body, existing.as_ref());
        locked.put(key, &serde_json::to_value(&meta)?, &req.body)?;
        Ok(match existing {
            Some(_) => with_version(EmuResponse::empty(200), &meta),
            None => with_version(EmuResponse::empty(201), &meta)
                .with_header("location", self.base.document(self.name, key)),
        })
    }

    fn delete(&self, req: &EmuRequest, key: &str) -> crate::Result<EmuResponse> {
        let locked = self.store.lock();
        let Some(meta) = locked.meta(key)? else {
            return Ok(document_not_found(key));
        };
        let meta: DocMeta = serde_json::from_value(meta)?;
        if let Some(tags) = req.header("if-match") {
            if !etag_matches(&meta.etag, tags) {
                return Ok(precondition_failed());
            }
        }
        locked.delete(key)?;
        Ok(EmuResponse::empty(200))
    }
}

/// Version metadata for a write of `body` under `id`, keeping the creation time of `previous`.
fn new_meta(id: &str, body: &[u8], previous: Option<&DocMeta>) -> DocMeta {
    let now = store::now_micros();
    let mut input = Vec::with_capacity(body.len() + id.len() + 8);
    input.extend_from_slice(body);
    input.extend_from_slice(&now.to_le_bytes());
    input.extend_from_slice(id.as_bytes());
    let digest = ring::digest::digest(&ring::digest::SHA256, &input);
    DocMeta {
        etag: store::hex_upper(digest.as_ref()),
        created_us: previous.map_or(now, |p| p.created_us),
        modified_us: now,
    }
}

fn with_version(response: EmuResponse, meta: &DocMeta) -> EmuResponse {
    response.with_header("etag", meta.etag.clone()).with_header(
        "last-modified",
        httpdate::fmt_http_date(store::system_time(meta.modified_us)),
    )
}

fn paging(req: &EmuRequest) -> Result<Paging, EmuResponse> {
    let mut paging = Paging {
        limit: DEFAULT_LIMIT,
        offset: 0,
        fields: Fields::All,
        total: false,
    };
    for (key, value) in req.query() {
        match key.as_str() {
            "limit" => {
                paging.limit = value
                    .parse::<usize>()
                    .ok()
                    .filter(|&n| n >= 1)
                    .ok_or_else(|| bad_request("limit must be a positive integer"))?
                    .min(MAX_LIMIT);
            }
            "offset" => {
                paging.offset = value
                    .parse()
                    .map_err(|_| bad_request("offset must be a non-negative integer"))?;
            }
            "fields" => {
                paging.fields = match value.as_str() {
                    "all" => Fields::All,
                    "id" => Fields::Id,
                    "value" => Fields::Value,
                    _ => return Err(bad_request("fields must be all, id or value")),
                };
            }
            "totalResults" => paging.total = value == "true",
            _ => {}
        }
    }
    Ok(paging)
}

/// ADB's default collection metadata (server-assigned UUID keys).
fn default_metadata() -> Value {
    json!({
        "keyColumn": {"name": "ID", "sqlType": "VARCHAR2", "maxLength": 255, "assignmentMethod": "UUID"},
        "contentColumn": {"name": "JSON_DOCUMENT", "sqlType": "BLOB", "jsonFormat": "OSON"},
        "versionColumn": {"name": "VERSION", "method": "UUID"},
        "lastModifiedColumn": {"name": "LAST_MODIFIED"},
        "creationTimeColumn": {"name": "CREATED_ON"},
        "readOnly": false
    })
}

/// `given` over `base`, one level deep (column objects merge field by field).
fn merge(mut base: Value, given: Value) -> Value {
    if let (Value::Object(base_map), Value::Object(given_map)) = (&mut base, given) {
        for (key, value) in given_map {
            match (base_map.get_mut(&key), value) {
                (Some(Value::Object(inner)), Value::Object(value)) => inner.extend(value),
                (_, value) => {
                    base_map.insert(key, value);
                }
            }
        }
    }
    base
}

fn assignment_method(metadata: &Value) -> String {
    metadata["keyColumn"]["assignmentMethod"]
        .as_str()
        .unwrap_or("UUID")
        .to_ascii_uppercase()
}

/// The parts of collection metadata whose difference makes a re-create a conflict.
fn essentials(metadata: &Value) -> (String, String, String, bool) {
    let merged = merge(default_metadata(), metadata.clone());
    let text = |v: &Value| v.as_str().unwrap_or("").to_ascii_uppercase();
    (
        assignment_method(&merged),
        text(&merged["contentColumn"]["sqlType"]),
        text(&merged["versionColumn"]["method"]),
        merged["readOnly"].as_bool().unwrap_or(false),
    )
}

// ---- QBE ----------------------------------------------------------------------------------

/// Parses a QBE body: a filter, or `{"$query": filter, "$orderby": …}`. Empty means "all".
fn parse_qbe(body: &[u8]) -> Result<Qbe, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Qbe {
            filter: Map::new(),
            order: Vec::new(),
        });
    }
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("the QBE is not valid JSON: {e}"))?;
    let Value::Object(mut map) = value else {
        return Err("a QBE must be a JSON object".into());
    };
    if !map.contains_key("$query") && !map.contains_key("$orderby") {
        return Ok(Qbe {
            filter: map,
            order: Vec::new(),
        });
    }
    let filter = match map.remove("$query") {
        None => Map::new(),
        Some(Value::Object(filter)) => filter,
        Some(_) => return Err("$query must be an object".into()),
    };
    let order = match map.remove("$orderby") {
        None => Vec::new(),
        Some(orderby) => parse_orderby(&orderby)?,
    };
    Ok(Qbe { filter, order })
}

/// `{"path": ±n, …}` (sign = direction, magnitude = precedence), `[{"path", "order"}]`, or
/// `{"$fields": [...]}`.
fn parse_orderby(orderby: &Value) -> Result<Vec<(String, bool)>, String> {
    match orderby {
        Value::Object(map) if map.contains_key("$fields") => parse_orderby(&map["$fields"]),
        Value::Object(map) => {
            let mut keys = Vec::new();
            for (path, n) in map {
                let n = n.as_f64().filter(|n| *n != 0.0).ok_or_else(|| {
                    format!("$orderby value for '{path}' must be a non-zero number")
                })?;
                keys.push((n.abs(), path.clone(), n < 0.0));
            }
            keys.sort_by(|a, b| a.0.total_cmp(&b.0));
            Ok(keys
                .into_iter()
                .map(|(_, path, desc)| (path, desc))
                .collect())
        }
        Value::Array(items) => items
            .iter()
            .map(|item| {
                let path = item["path"]
                    .as_str()
                    .ok_or("each $orderby entry needs a path")?;
                let descending = match item.get("order").and_then(Value::as_str) {
                    None => false,
                    Some(o) if o.eq_ignore_ascii_case("asc") => false,
                    Some(o) if o.eq_ignore_ascii_case("desc") => true,
                    Some(o) => return Err(format!("unknown order '{o}'")),
                };
                Ok((path.to_string(), descending))
            })
            .collect(),
        _ => Err("$orderby must be an object or an array".into()),
    }
}

/// True when `doc` satisfies every clause of `filter`.
fn matches(filter: &Map<String, Value>, doc: &Doc) -> Result<bool, String> {
    for (key, condition) in filter {
        let ok = match key.as_str() {
            "$and" | "$or" | "$nor" => {
                let clauses = condition
                    .as_array()
                    .filter(|c| !c.is_empty())
                    .ok_or_else(|| format!("{key} needs a non-empty array"))?;
                let mut hits = 0;
                for clause in clauses {
                    let clause = clause
                        .as_object()
                        .ok_or_else(|| format!("{key} entries must be objects"))?;
                    if matches(clause, doc)? {
                        hits += 1;
                    }
                }
                match key.as_str() {
                    "$and" => hits == clauses.len(),
                    "$or" => hits > 0,
                    _ => hits == 0,
                }
            }
            "$id" => match condition {
                Value::String(id) => *id == doc.id,
                Value::Array(ids) => ids.iter().any(|id| id.as_str() == Some(doc.id.as_str())),
                _ => return Err("$id needs a key or an array of keys".into()),
            },
            other if other.starts_with('$') => {
                return Err(format!("unsupported QBE operator {other} at the top level"))
            }
            path => field_matches(&resolve(&doc.value, path), condition)?,
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The values at a dotted path; arrays on the way are searched element by element, and a
/// numeric step indexes an array.
fn resolve<'v>(value: &'v Value, path: &str) -> Vec<&'v Value> {
    let mut current = vec![value];
    for step in path.split('.') {
        let mut next = Vec::new();
        for value in current {
            match value {
                Value::Object(map) => next.extend(map.get(step)),
                Value::Array(items) => match step.parse::<usize>() {
                    Ok(i) => next.extend(items.get(i)),
                    Err(_) => next.extend(items.iter().filter_map(|item| item.get(step))),
                },
                _ => {}
            }
        }
        current = next;
    }
    current
}

/// Whether the values at a path satisfy a condition: operators, or a value meaning `$eq`.
fn field_matches(values: &[&Value], condition: &Value) -> Result<bool, String> {
    match condition {
        Value::Object(ops) if !ops.is_empty() && ops.keys().all(|k| k.starts_with('$')) => {
            for (op, operand) in ops {
                if !operator_matches(values, op, operand)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        _ => Ok(any(values, |v| json_eq(v, condition))),
    }
}

fn operator_matches(values: &[&Value], op: &str, operand: &Value) -> Result<bool, String> {
    let cmp = |wanted: &[Ordering]| {
        any(values, |v| {
            compare(v, operand).is_some_and(|o| wanted.contains(&o))
        })
    };
    let in_list = || -> Result<bool, String> {
        let list = operand
            .as_array()
            .ok_or_else(|| format!("{op} needs an array"))?;
        Ok(list.iter().any(|item| any(values, |v| json_eq(v, item))))
    };
    let text = || {
        operand
            .as_str()
            .ok_or_else(|| format!("{op} needs a string"))
    };
    Ok(match op {
        "$eq" => any(values, |v| json_eq(v, operand)),
        "$ne" => !any(values, |v| json_eq(v, operand)),
        "$gt" => cmp(&[Ordering::Greater]),
        "$gte" => cmp(&[Ordering::Greater, Ordering::Equal]),
        "$lt" => cmp(&[Ordering::Less]),
        "$lte" => cmp(&[Ordering::Less, Ordering::Equal]),
        "$in" => in_list()?,
        "$nin" => !in_list()?,
        "$exists" => {
            let wanted = match operand {
                Value::Bool(b) => *b,
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::String(s) => s == "true",
                _ => return Err("$exists needs true or false".into()),
            };
            values.is_empty() != wanted
        }
        "$startsWith" => {
            let prefix = text()?;
            any(values, |v| {
                v.as_str().is_some_and(|s| s.starts_with(prefix))
            })
        }
        "$hasSubstring" => {
            let part = text()?;
            any(values, |v| v.as_str().is_some_and(|s| s.contains(part)))
        }
        "$not" => !field_matches(values, operand)?,
        other => return Err(format!("unsupported QBE operator {other}")),
    })
}

/// True when `test` holds for a value, or for an element of an array value.
fn any(values: &[&Value], test: impl Fn(&Value) -> bool) -> bool {
    values
        .iter()
        .any(|v| test(v) || v.as_array().is_some_and(|items| items.iter().any(&test)))
}

/// JSON equality with numbers compared by value (`1` equals `1.0`).
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

/// Order of two scalars of the same kind; `None` across kinds (a comparison then fails).
fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// A total order for sorting: missing, null, booleans, numbers, strings, then the rest.
fn order_values(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    let rank = |v: Option<&Value>| match v {
        None => 0,
        Some(Value::Null) => 1,
        Some(Value::Bool(_)) => 2,
        Some(Value::Number(_)) => 3,
        Some(Value::String(_)) => 4,
        Some(_) => 5,
    };
    match (a, b) {
        (Some(x), Some(y)) => compare(x, y).unwrap_or_else(|| rank(a).cmp(&rank(b))),
        _ => rank(a).cmp(&rank(b)),
    }
}

/// True when an `If-Match`/`If-None-Match` value names `etag` (quotes and `W/` ignored) or is `*`.
fn etag_matches(etag: &str, header: &str) -> bool {
    header.split(',').any(|tag| {
        let tag = tag.trim();
        let tag = tag.strip_prefix("W/").unwrap_or(tag).trim_matches('"');
        tag == "*" || tag == etag
    })
}

// ---- errors -------------------------------------------------------------------------------

/// An ORDS-like problem body; clients decide on the status alone.
fn soda_error(status: u16, code: &str, message: &str) -> EmuResponse {
    let mut response = EmuResponse::json(
        status,
        &json!({
            "code": code,
            "message": message,
            "type": format!("tag:oracle.com,2020:error/{code}"),
            "title": message,
            "status": status,
        }),
    );
    response.headers.retain(|(n, _)| n != "content-type");
    response.with_header("content-type", "application/problem+json")
}

fn not_found(message: &str) -> EmuResponse {
    soda_error(404, "NotFound", message)
}

fn collection_not_found(name: &str) -> EmuResponse {
    not_found(&format!("collection {name} not found"))
}

fn document_not_found(key: &str) -> EmuResponse {
    not_found(&format!("document {key} not found"))
}

fn bad_request(message: &str) -> EmuResponse {
    soda_error(400, "BadRequest", message)
}

fn method_not_allowed() -> EmuResponse {
    soda_error(405, "MethodNotAllowed", "method not allowed here")
}

fn precondition_failed() -> EmuResponse {
    soda_error(
        412,
        "PreconditionFailed",
        "the If-Match etag does not match the document's current etag",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    const BASE: &str = "/ords/admin/soda/latest";

    fn request(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> EmuRequest {
        EmuRequest::new(method, path, headers, body)
    }

    fn call(svc: &SodaService, method: &str, path: &str, body: &str) -> EmuResponse {
        svc.handle(&request(method, path, &[], body.as_bytes()))
    }

    fn doc_path(collection: &str, key: &str) -> String {
        format!("{BASE}/{collection}/{}", encode::component(key))
    }

    fn body(response: &EmuResponse) -> Value {
        serde_json::from_slice(&response.body).unwrap()
    }

    fn ok_json(response: &EmuResponse) -> Value {
        assert_eq!(
            response.status,
            200,
            "{}",
            String::from_utf8_lossy(&response.body)
        );
        body(response)
    }

    fn ids(page: &Value) -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap().to_string())
            .collect()
    }

    /// A service with a CLIENT-key collection `C`.
    fn with_collection(tag: &str) -> (PathBuf, SodaService) {
        let dir = store::test_dir(tag);
        let svc = SodaService::new(&dir).unwrap();
        let metadata = crate::soda::collection_metadata().to_string();
        assert_eq!(
            call(&svc, "PUT", &format!("{BASE}/C"), &metadata).status,
            201
        );
        (dir, svc)
    }

    #[test]
    fn collections_create_compare_list_and_drop() {
        let dir = store::test_dir("soda-coll");
        let svc = SodaService::new(&dir).unwrap();
        let page = ok_json(&call(&svc, "GET", &format!("{BASE}/"), ""));
        assert_eq!(page, json!({"items": [], "hasMore": false}));

        let client = crate::soda::collection_metadata().to_string();
        let r = svc.handle(&request(
            "PUT",
            &format!("{BASE}/IMAGE_ANALYSIS"),
            &[("host", "127.0.0.1:9")],
            client.as_bytes(),
        ));
        assert_eq!(r.status, 201);
        assert!(r.body.is_empty());
        assert_eq!(
            r.header("location"),
            Some("http://127.0.0.1:9/ords/admin/soda/latest/IMAGE_ANALYSIS/")
        );
        let again = |body: &str| call(&svc, "PUT", &format!("{BASE}/IMAGE_ANALYSIS"), body).status;
        assert_eq!(again(&client), 200);
        assert_eq!(again(""), 200);
        assert_eq!(again(r#"{"keyColumn":{"assignmentMethod":"client"}}"#), 200);
        assert_eq!(again(r#"{"keyColumn":{"assignmentMethod":"UUID"}}"#), 409);
        assert_eq!(again("{}"), 409);
        assert_eq!(again("{not json"), 400);
        // No body: default (server-assigned) keys.
        assert_eq!(call(&svc, "PUT", &format!("{BASE}/plain/"), "").status, 201);

        let page = ok_json(&call(&svc, "GET", &format!("{BASE}/"), ""));
        assert_eq!(page["hasMore"], false);
        let items = page["items"].as_array().unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0]["name"], "IMAGE_ANALYSIS");
        assert_eq!(
            items[0]["properties"]["keyColumn"]["assignmentMethod"],
            "CLIENT"
        );
        assert_eq!(
            items[1]["properties"]["keyColumn"]["assignmentMethod"],
            "UUID"
        );

        // Names are case-sensitive.
        assert_eq!(
            call(&svc, "GET", &format!("{BASE}/image_analysis"), "").status,
            404
        );
        assert_eq!(
            call(&svc, "DELETE", &format!("{BASE}/IMAGE_ANALYSIS"), "").status,
            200
        );
        let r = call(&svc, "DELETE", &format!("{BASE}/IMAGE_ANALYSIS"), "");
        assert_eq!(r.status, 404);
        assert_eq!(r.header("content-type"), Some("application/problem+json"));
        assert_eq!(body(&r)["code"], "NotFound");
        assert_eq!(
            call(&svc, "GET", &format!("{BASE}/IMAGE_ANALYSIS"), "").status,
            404
        );
        assert_eq!(
            call(&svc, "GET", &doc_path("IMAGE_ANALYSIS", "k"), "").status,
            404
        );
        assert_eq!(
            call(&svc, "PUT", &doc_path("IMAGE_ANALYSIS", "k"), "{}").status,
            404
        );
        // Re-created after a drop, it starts empty.
        assert_eq!(
            call(&svc, "PUT", &format!("{BASE}/IMAGE_ANALYSIS"), &client).status,
            201
        );
        let page = ok_json(&call(&svc, "GET", &format!("{BASE}/IMAGE_ANALYSIS"), ""));
        assert_eq!(page["count"], 0);

        assert_eq!(
            call(&svc, "GET", "/ords/admin/other/latest/", "").status,
            404
        );
        assert_eq!(call(&svc, "GET", "/elsewhere", "").status, 404);
        assert_eq!(call(&svc, "POST", &format!("{BASE}/"), "").status, 405);
        assert_eq!(
            call(&svc, "GET", &format!("{BASE}/metadata-catalog/"), "").status,
            404
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn documents_put_get_delete_with_etags() {
        let (dir, svc) = with_collection("soda-docs");
        let path = doc_path("C", "K1");
        let r = call(&svc, "PUT", &path, r#"{"image_name":"a.jpg","n":1}"#);
        assert_eq!(r.status, 201);
        let etag1 = r.header("etag").unwrap().to_string();
        assert_eq!(etag1.len(), 64);
        assert!(etag1
            .chars()
            .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase()));
        assert!(httpdate::parse_http_date(r.header("last-modified").unwrap()).is_ok());

        let r = call(&svc, "GET", &path, "");
        assert_eq!(r.status, 200);
        assert_eq!(body(&r), json!({"image_name": "a.jpg", "n": 1}));
        assert_eq!(r.header("etag"), Some(etag1.as_str()));
        assert_eq!(r.header("content-type"), Some("application/json"));
        let r = svc.handle(&request("GET", &path, &[("if-none-match", &etag1)], b""));
        assert_eq!((r.status, r.body.len()), (304, 0));
        let quoted = format!("\"{etag1}\"");
        let r = svc.handle(&request("GET", &path, &[("if-none-match", &quoted)], b""));
        assert_eq!(r.status, 304);

        let r = call(&svc, "PUT", &path, r#"{"image_name":"a.jpg","n":2}"#);
        assert_eq!(r.status, 200);
        let etag2 = r.header("etag").unwrap().to_string();
        assert_ne!(etag1, etag2);
        let put_if = |tag: &str| {
            svc.handle(&request("PUT", &path, &[("if-match", tag)], br#"{"n":3}"#))
                .status
        };
        assert_eq!(put_if(&etag1), 412);
        assert_eq!(put_if(&etag2), 200);
        let r = svc.handle(&request(
            "PUT",
            &doc_path("C", "new"),
            &[("if-match", &etag2)],
            b"{}",
        ));
        assert_eq!(r.status, 412);

        for bad in ["{oops", "", "[1,2]", "\"text\""] {
            assert_eq!(call(&svc, "PUT", &path, bad).status, 400, "{bad:?}");
        }
        assert_eq!(
            call(&svc, "PUT", &doc_path("C", &"k".repeat(256)), "{}").status,
            400
        );
        assert_eq!(call(&svc, "POST", &format!("{BASE}/C"), "{}").status, 405);
        assert_eq!(call(&svc, "POST", &format!("{BASE}/C/"), "{}").status, 405);
        assert_eq!(
            call(&svc, "POST", &format!("{BASE}/C?action=insert"), "[{}]").status,
            405
        );
        assert_eq!(call(&svc, "POST", &path, "{}").status, 405);

        let current = call(&svc, "GET", &path, "")
            .header("etag")
            .unwrap()
            .to_string();
        let r = svc.handle(&request("DELETE", &path, &[("if-match", &etag1)], b""));
        assert_eq!(r.status, 412);
        let r = svc.handle(&request("DELETE", &path, &[("if-match", &current)], b""));
        assert_eq!((r.status, r.body.len()), (200, 0));
        assert_eq!(call(&svc, "DELETE", &path, "").status, 404);
        assert_eq!(call(&svc, "GET", &path, "").status, 404);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn server_key_collections_insert_by_post() {
        let dir = store::test_dir("soda-server");
        let svc = SodaService::new(&dir).unwrap();
        assert_eq!(call(&svc, "PUT", &format!("{BASE}/S"), "").status, 201);
        let r = call(&svc, "POST", &format!("{BASE}/S"), r#"{"a":1}"#);
        assert_eq!(r.status, 201);
        let item = &body(&r)["items"][0];
        let id = item["id"].as_str().unwrap().to_string();
        assert_eq!(id.len(), 32);
        assert_eq!(item["etag"].as_str().unwrap().len(), 64);
        assert!(r.header("location").unwrap().ends_with(&format!("/S/{id}")));
        let r = call(
            &svc,
            "POST",
            &format!("{BASE}/S?action=insert"),
            r#"[{"a":2},{"a":3}]"#,
        );
        let inserted = ok_json(&r);
        assert_eq!(
            (inserted["count"].clone(), inserted["hasMore"].clone()),
            (json!(2), json!(false))
        );
        assert_eq!(
            call(&svc, "PUT", &doc_path("S", "unknown"), "{}").status,
            404
        );
        assert_eq!(
            call(&svc, "PUT", &doc_path("S", &id), r#"{"a":9}"#).status,
            200
        );
        assert_eq!(
            body(&call(&svc, "GET", &doc_path("S", &id), "")),
            json!({"a": 9})
        );
        assert_eq!(
            call(&svc, "POST", &format!("{BASE}/S?action=insert"), "{}").status,
            400
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn listing_pages_past_a_hundred() {
        let (dir, svc) = with_collection("soda-page");
        for i in 0..250 {
            let r = call(
                &svc,
                "PUT",
                &doc_path("C", &format!("K{i:03}")),
                &format!(r#"{{"i":{i}}}"#),
            );
            assert_eq!(r.status, 201);
        }
        let list = |query: &str| call(&svc, "GET", &format!("{BASE}/C?{query}"), "");
        let first = ok_json(&list(""));
        assert_eq!(
            (
                &first["count"],
                &first["offset"],
                &first["limit"],
                &first["hasMore"]
            ),
            (&json!(100), &json!(0), &json!(100), &json!(true))
        );
        assert!(first.get("totalResults").is_none());
        assert_eq!(first["links"][0]["rel"], "next");
        let item = &first["items"][0];
        assert_eq!(
            (&item["id"], &item["value"]),
            (&json!("K000"), &json!({"i": 0}))
        );
        assert_eq!(item["etag"].as_str().unwrap().len(), 64);
        let created = item["created"].as_str().unwrap();
        assert_eq!(
            (created.len(), &created[19..20], &created[26..]),
            (27, ".", "Z")
        );
        assert_eq!(item["links"][0]["rel"], "self");

        // The client's loop: offset += count while hasMore.
        let mut seen = Vec::new();
        let mut offset = 0;
        loop {
            let page = ok_json(&list(&format!("limit=100&offset={offset}")));
            seen.extend(ids(&page));
            offset += page["count"].as_u64().unwrap() as usize;
            if page["hasMore"] == false {
                break;
            }
        }
        let expected: Vec<String> = (0..250).map(|i| format!("K{i:03}")).collect();
        assert_eq!(seen, expected);

        let page = ok_json(&list("limit=5000&totalResults=true&fields=id"));
        assert_eq!(
            (&page["count"], &page["limit"], &page["totalResults"]),
            (&json!(250), &json!(1000), &json!(250))
        );
        assert_eq!(page["hasMore"], false);
        assert!(page["items"][0].get("value").is_none());
        assert!(page["items"][0].get("etag").is_some());
        let page = ok_json(&list("fields=value&offset=249"));
        assert_eq!(page["items"], json!([{"id": "K249", "value": {"i": 249}}]));
        let page = ok_json(&list("offset=300"));
        assert_eq!(
            (&page["count"], &page["hasMore"]),
            (&json!(0), &json!(false))
        );
        for bad in ["limit=0", "limit=x", "offset=-1", "fields=some"] {
            assert_eq!(list(bad).status, 400, "{bad}");
        }
        let page = ok_json(&list("q=%7B%22i%22%3A%7B%22%24gte%22%3A248%7D%7D"));
        assert_eq!(ids(&page), ["K248", "K249"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn seed_for_queries(svc: &SodaService) {
        let docs = [
            (
                "a",
                json!({"image_name": "a.jpg", "bucket_name": "b", "timestamp": "2025-01-03", "score": 0.9,
                         "analysis_results": {"labels": [{"name": "cat"}, {"name": "sofa"}]}, "tags": ["pet", "indoor"]}),
            ),
            (
                "b",
                json!({"image_name": "b.png", "bucket_name": "b", "timestamp": "2025-01-01", "score": 0.5,
                         "analysis_results": {"labels": [{"name": "dog"}]}, "tags": ["pet"]}),
            ),
            (
                "c",
                json!({"image_name": "c.jpg", "bucket_name": "other", "timestamp": "2025-01-02", "score": 2}),
            ),
            (
                "d",
                json!({"image_name": "d.gif", "bucket_name": "b", "timestamp": "2025-01-02", "score": null}),
            ),
        ];
        for (key, doc) in docs {
            assert_eq!(
                call(svc, "PUT", &doc_path("C", key), &doc.to_string()).status,
                201
            );
        }
    }

    fn query(svc: &SodaService, qbe: Value) -> Vec<String> {
        let r = call(
            svc,
            "POST",
            &format!("{BASE}/C?action=query"),
            &qbe.to_string(),
        );
        ids(&ok_json(&r))
    }

    #[test]
    fn qbe_operators() {
        let (dir, svc) = with_collection("soda-qbe");
        seed_for_queries(&svc);
        let cases = [
            (json!({}), vec!["a", "b", "c", "d"]),
            (json!({"image_name": "a.jpg"}), vec!["a"]),
            (json!({"bucket_name": {"$eq": "b"}}), vec!["a", "b", "d"]),
            (json!({"bucket_name": {"$ne": "b"}}), vec!["c"]),
            (json!({"score": {"$gt": 0.5}}), vec!["a", "c"]),
            (json!({"score": {"$gte": 0.5}}), vec!["a", "b", "c"]),
            (json!({"score": {"$lt": 2}}), vec!["a", "b"]),
            (json!({"score": {"$lte": 2.0, "$gt": 0.6}}), vec!["a", "c"]),
            (json!({"score": 2.0}), vec!["c"]),
            (
                json!({"timestamp": {"$gt": "2025-01-01"}}),
                vec!["a", "c", "d"],
            ),
            (
                json!({"image_name": {"$in": ["a.jpg", "b.png", "z"]}}),
                vec!["a", "b"],
            ),
            (
                json!({"image_name": {"$nin": ["a.jpg", "b.png"]}}),
                vec!["c", "d"],
            ),
            (
                json!({"analysis_results": {"$exists": true}}),
                vec!["a", "b"],
            ),
            (
                json!({"analysis_results": {"$exists": false}}),
                vec!["c", "d"],
            ),
            (
                json!({"score": {"$exists": true}}),
                vec!["a", "b", "c", "d"],
            ),
            (json!({"image_name": {"$startsWith": "c."}}), vec!["c"]),
            (
                json!({"image_name": {"$hasSubstring": "jp"}}),
                vec!["a", "c"],
            ),
            (
                json!({"image_name": {"$not": {"$startsWith": "a"}}}),
                vec!["b", "c", "d"],
            ),
            (json!({"analysis_results.labels.name": "dog"}), vec!["b"]),
            (json!({"analysis_results.labels.0.name": "cat"}), vec!["a"]),
            (json!({"tags": "indoor"}), vec!["a"]),
            (json!({"tags": ["pet"]}), vec!["b"]),
            (
                json!({"$and": [{"bucket_name": "b"}, {"score": {"$gt": 0.6}}]}),
                vec!["a"],
            ),
            (
                json!({"$or": [{"image_name": "c.jpg"}, {"score": null}]}),
                vec!["c", "d"],
            ),
            (json!({"$nor": [{"bucket_name": "b"}]}), vec!["c"]),
            (json!({"$id": "b"}), vec!["b"]),
            (json!({"$id": ["d", "a", "zz"]}), vec!["a", "d"]),
            (
                json!({"$id": ["a", "b"], "bucket_name": "b", "score": {"$lt": 0.6}}),
                vec!["b"],
            ),
        ];
        for (qbe, expected) in cases {
            assert_eq!(query(&svc, qbe.clone()), expected, "{qbe}");
        }
        let refuse =
            |body: &str| call(&svc, "POST", &format!("{BASE}/C?action=query"), body).status;
        for bad in [
            r#"{"a":{"$regexish":1}}"#,
            r#"{"$where":"x"}"#,
            r#"{"a":{"$in":"x"}}"#,
            r#"{"$and":{}}"#,
            r#"{"$id":5}"#,
            "[1]",
            "{oops",
            r#"{"$query":{},"$orderby":{"a":0}}"#,
            r#"{"$orderby":[{"path":"a","order":"sideways"}]}"#,
        ] {
            assert_eq!(refuse(bad), 400, "{bad}");
        }
        assert_eq!(refuse(""), 200);
        assert_eq!(
            call(&svc, "POST", &format!("{BASE}/C?action=frobnicate"), "{}").status,
            400
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn qbe_orderby_paging_delete_and_truncate() {
        let (dir, svc) = with_collection("soda-order");
        seed_for_queries(&svc);
        let order = json!({"$query": {"bucket_name": "b"}, "$orderby": {"timestamp": -1}});
        assert_eq!(query(&svc, order), ["a", "d", "b"]);
        let two_keys = json!({"$orderby": {"timestamp": 1, "image_name": -2}});
        assert_eq!(query(&svc, two_keys), ["b", "d", "c", "a"]);
        let array_form = json!({"$query": {}, "$orderby": [
            {"path": "timestamp", "datatype": "string", "order": "desc"},
            {"path": "image_name", "order": "asc"}
        ]});
        assert_eq!(query(&svc, array_form.clone()), ["a", "c", "d", "b"]);
        let fields_form = json!({"$orderby": {"$fields": [{"path": "score", "order": "asc"}]}});
        // Missing and null sort first, then numbers by value.
        assert_eq!(query(&svc, fields_form), ["d", "b", "a", "c"]);

        let r = call(
            &svc,
            "POST",
            &format!("{BASE}/C?action=query&limit=2&offset=1&totalResults=true"),
            &array_form.to_string(),
        );
        let page = ok_json(&r);
        assert_eq!(ids(&page), ["c", "d"]);
        assert_eq!(
            (&page["hasMore"], &page["totalResults"], &page["count"]),
            (&json!(true), &json!(4), &json!(2))
        );

        let r = call(
            &svc,
            "POST",
            &format!("{BASE}/C?action=delete"),
            r#"{"bucket_name":"b","score":{"$lt":0.8}}"#,
        );
        assert_eq!(ok_json(&r), json!({"count": 1, "itemsDeleted": 1}));
        assert_eq!(query(&svc, json!({})), ["a", "c", "d"]);
        assert_eq!(
            call(&svc, "POST", &format!("{BASE}/C?action=delete"), "").status,
            400
        );
        let r = call(&svc, "POST", &format!("{BASE}/C?action=truncate"), "");
        assert_eq!(r.status, 200);
        assert_eq!(query(&svc, json!({})), Vec::<String>::new());
        // The collection itself survives a truncate.
        assert_eq!(
            ok_json(&call(&svc, "GET", &format!("{BASE}/C"), ""))["count"],
            0
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn awkward_keys_and_restart() {
        let (dir, svc) = with_collection("soda-restart");
        let keys = ["a b", "100%", "x/y", "caf\u{e9} \u{1F600}", "?&=#+"];
        for key in keys {
            let r = call(
                &svc,
                "PUT",
                &doc_path("C", key),
                &json!({"key": key}).to_string(),
            );
            assert_eq!(r.status, 201, "{key}");
        }
        let before = call(&svc, "GET", &format!("{BASE}/C?totalResults=true"), "");
        let before = ok_json(&before);
        drop(svc);

        let svc = SodaService::new(&dir).unwrap();
        for key in keys {
            let r = call(&svc, "GET", &doc_path("C", key), "");
            assert_eq!((r.status, body(&r)), (200, json!({"key": key})), "{key}");
        }
        let after = ok_json(&call(
            &svc,
            "GET",
            &format!("{BASE}/C?totalResults=true"),
            "",
        ));
        assert_eq!(before, after);
        let page = ok_json(&call(&svc, "GET", &format!("{BASE}/"), ""));
        assert_eq!(
            page["items"][0]["properties"]["keyColumn"]["assignmentMethod"],
            "CLIENT"
        );
        // Replacing keeps the creation time and moves lastModified on.
        let r = call(&svc, "PUT", &doc_path("C", "a b"), "{}");
        assert_eq!(r.status, 200);
        let item = &ok_json(&call(
            &svc,
            "POST",
            &format!("{BASE}/C?action=query"),
            r#"{"$id":"a b"}"#,
        ))["items"][0];
        let old = before["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["id"] == "a b")
            .unwrap();
        assert_eq!(item["created"], old["created"]);
        assert_ne!(item["etag"], old["etag"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn concurrent_upserts_all_land() {
        let (dir, svc) = with_collection("soda-threads");
        let svc = Arc::new(svc);
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let svc = Arc::clone(&svc);
                std::thread::spawn(move || {
                    (0..10)
                        .map(|i| {
                            call(&svc, "PUT", &doc_path("C", &format!("t{t}-{i}")), "{}").status
                        })
                        .collect::<Vec<u16>>()
                })
            })
            .collect();
        for t in threads {
            assert!(t.join().unwrap().iter().all(|s| *s == 201));
        }
        let page = ok_json(&call(
            &svc,
            "GET",
            &format!("{BASE}/C?totalResults=true"),
            "",
        ));
        assert_eq!(page["totalResults"], 40);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
