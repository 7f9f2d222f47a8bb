//! Emulated ORDS SODA for REST: the calls the product's client (`crate::soda`) and the tests
//! make, answered from an in-memory index of every collection.
//!
//! [`SodaService::handle`] answers requests under `/ords/{schema}/soda/{version}/` as
//! `soda-rest.md` §2–§5 describes them: collection create (201, then 200 for the same metadata,
//! 409 for different), drop and list; document GET/PUT/DELETE with `ETag`, `If-Match` (412) and
//! `If-None-Match` (304); listings paged by `limit`/`offset` in the `items`/`hasMore`/`count`
//! envelope; and the `query` and `delete` actions. Their QBE is what the product sends: `$id` (a
//! key or a list of keys), equality on a dotted path (the value there, or any element of an array
//! there, equals a scalar: `soda-index.md` §6), `$in` over scalars, `$exists: true`, and
//! `$orderby` in its `{"path": ±n}` form with the filter under `$query`. Anything else (another operator, `$and`,
//! an array or object operand, another action or listing option) is a 400 that names it, as ORDS
//! answers a QBE it cannot take, never silently ignored.
//!
//! Indexes (`action=index` with `fields`, B-tree or multivalue) are kept as the database keeps
//! them, for speed only: for the first field's path, the keys of the documents holding each
//! string there. A query with an equality or `$in` on an indexed path starts from those keys
//! instead of every document (measured: word search over 10 000 documents with text, docs/
//! PERFORMANCE.md). Answers are the same with or without one. They live in memory: the app
//! declares its indexes at every start, as it must on a fresh database. A JSON search index
//! (no `fields`) is accepted and has no effect. The postings are outside the 256 MiB bound
//! below: one entry per string at an indexed path, each a copy of a key.
//!
//! Every collection is read from disk once, when the service starts, into a map in key order:
//! key → version, the JSON text as stored, and every scalar in it by dotted path (a path crosses
//! arrays at any depth). A write goes to the collection's store (`store.rs`) first (temp file,
//! fsync, rename) and then to the map, so `$id` lists are lookups, equality queries compare
//! scalars, and no request reads a file. Memory is bounded by what is accepted: a document is at
//! most 1 MiB of JSON (413 beyond), and all collections together hold at most 256 MiB of text and
//! scalars (507 beyond: about 130 000 analysis documents). Measured with 10 000 of the 700-byte
//! documents web-bench writes: 30 MB resident this way, 136 MB if they were kept as
//! `serde_json::Value`s. The dotted paths are numbered once per collection and kept.
//!
//! Deliberately not here: Basic-auth checks and fault injection (done before `handle`), schema
//! separation (one schema alias is served; a wrong one is refused in `mod.rs`), POST inserts and the `insert`,
//! `truncate` and `update` actions (the product writes by key), `PATCH`, the `fields`,
//! `totalResults` and id-range listing options, the `custom-actions` and
//! `metadata-catalog` paths, and 23ai native (`_id`) collections. One lock serialises all
//! requests: an emulator wants clear ordering more than throughput.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap};
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
/// Largest document, in bytes of JSON (ORDS takes far more; ours are a few KiB).
const MAX_DOCUMENT: usize = 1024 * 1024;
/// Most bytes of documents (text and scalars) held across all collections; a write past it is
/// refused.
const MAX_HELD: usize = 256 * 1024 * 1024;
/// Path names ORDS reserves below the version segment.
const RESERVED: &[&str] = &["custom-actions", "metadata-catalog"];
/// SODA over a data directory.
pub struct SodaService {
    root: PathBuf,
    /// [`MAX_HELD`], lower in tests.
    max_held: usize,
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
    /// Collection name → [`CollectionInfo`] (no body), on disk.
    catalog: Store,
    /// Every collection, loaded.
    collections: BTreeMap<String, Collection>,
    /// [`Doc::cost`] summed over collections (what [`MAX_HELD`] bounds).
    held: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct CollectionInfo {
    metadata: Value,
    created_us: u64,
}

/// One collection: its documents on disk and, in key order, in memory.
struct Collection {
    name: String,
    /// As created, merged over the defaults.
    metadata: Value,
    store: Store,
    docs: BTreeMap<String, Doc>,
    paths: Paths,
    /// Index name → the path number of its first field (see the module header).
    indexes: BTreeMap<String, u32>,
    /// The indexed paths' strings and the documents holding them.
    postings: Postings,
}

/// What each document keeps besides its content (the record metadata on disk).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct DocMeta {
    etag: String,
    created_us: u64,
    modified_us: u64,
}

/// A document in memory.
struct Doc {
    meta: DocMeta,
    /// The JSON as stored (what GET answers).
    text: Box<str>,
    /// Every scalar in it with its path's number, by path number and then in document order,
    /// so the scalars at one path are found by binary search.
    scalars: Box<[(u32, Scalar)]>,
}

/// A JSON scalar, as QBE compares it: numbers by value (`1` equals `1.0`).
#[derive(Debug, Clone, PartialEq)]
enum Scalar {
    Null,
    Bool(bool),
    Number(f64),
    Text(Box<str>),
}

/// A collection's dotted paths, each numbered once, so a document's scalars carry a number
/// instead of a copy of the path.
#[derive(Default)]
struct Paths(HashMap<String, u32>);

/// A document found, with its key.
type Hit<'d> = (&'d String, &'d Doc);

/// Paging options of a listing or query.
struct Paging {
    limit: usize,
    offset: usize,
}

/// A QBE the emulator answers: every condition must hold.
#[derive(Default)]
struct Qbe {
    /// `$id`: only these keys.
    ids: Option<BTreeSet<String>>,
    /// Path → what a value there must be.
    fields: Vec<(String, Wanted)>,
    /// Sort keys (path, descending), most significant first; ties go by key.
    order: Vec<(String, bool)>,
}

/// A condition on one path.
#[derive(Debug, Clone, PartialEq)]
enum Wanted {
    /// Equal to one of these scalars (implicit `$eq`, `$in`).
    OneOf(Vec<Scalar>),
    /// Any scalar there (`$exists: true`).
    Present,
}

impl Wanted {
    fn accepts(&self, value: &Scalar) -> bool {
        match self {
            Wanted::OneOf(scalars) => scalars.contains(value),
            Wanted::Present => true,
        }
    }
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
    /// Opens (or creates) the SODA data under `data_dir` and loads every collection written by
    /// an earlier instance on the same directory.
    pub fn new(data_dir: impl AsRef<Path>) -> crate::Result<SodaService> {
        let root = data_dir.as_ref().join("soda");
        let catalog = Store::open(root.join("catalog"))?;
        let mut collections = BTreeMap::new();
        let mut held = 0;
        for entry in catalog.lock().list()? {
            let info: CollectionInfo = serde_json::from_value(entry.meta)?;
            let dir = collection_dir(&root, &entry.key);
            let collection = Collection::load(&dir, entry.key, info.metadata)?;
            held += collection.docs.values().map(Doc::cost).sum::<usize>();
            collections.insert(collection.name.clone(), collection);
        }
        Ok(SodaService {
            root,
            max_held: MAX_HELD,
            state: Mutex::new(State {
                catalog,
                collections,
                held,
            }),
        })
    }

    /// How many documents all collections hold, and their bytes of text and scalars (what
    /// [`MAX_HELD`] bounds).
    pub fn held(&self) -> (usize, usize) {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let documents = state.collections.values().map(|c| c.docs.len()).sum();
        (documents, state.held)
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
            ("GET", []) => Ok(state.list_collections(&base, &segments[0])),
            ("PUT", [name]) => state.create_collection(&self.root, req, &base, name),
            ("DELETE", [name]) => state.drop_collection(&self.root, name),
            (_, [name, rest @ ..]) => {
                let State {
                    collections, held, ..
                } = &mut *state;
                match collections.get_mut(name.as_str()) {
                    None => Ok(collection_not_found(name)),
                    Some(collection) => {
                        let mut budget = Budget {
                            held,
                            max: self.max_held,
                        };
                        collection.handle(req, &base, rest, &mut budget)
                    }
                }
            }
            _ => Ok(method_not_allowed()),
        };
        result.unwrap_or_else(|e| {
            log::warn!("emulator soda: {} {}: {e}", req.method, req.raw_path);
            soda_error(500, "InternalServerError", "the emulator's store failed")
        })
    }
}

/// Where a collection's documents live: named by a hash, so any name is safe on disk.
fn collection_dir(root: &Path, name: &str) -> PathBuf {
    let digest = ring::digest::digest(&ring::digest::SHA256, name.as_bytes());
    root.join(format!("c-{}", store::hex_lower(&digest.as_ref()[..16])))
}

/// The bytes held across collections and their ceiling, while one request runs.
struct Budget<'a> {
    held: &'a mut usize,
    max: usize,
}

impl Budget<'_> {
    /// Whether replacing `old` bytes by `new` stays within the ceiling.
    fn allows(&self, old: usize, new: usize) -> bool {
        *self.held - old + new <= self.max
    }

    fn replace(&mut self, old: usize, new: usize) {
        *self.held = *self.held - old + new;
    }
}

impl State {
    fn list_collections(&self, base: &Base, schema: &str) -> EmuResponse {
        let items: Vec<Value> = self
            .collections
            .values()
            .map(|c| {
                let mut properties = c.metadata.clone();
                properties["schemaName"] = json!(schema.to_ascii_uppercase());
                properties["tableName"] = json!(c.name);
                json!({
                    "name": c.name,
                    "properties": properties,
                    "links": [{"rel": "canonical", "href": base.collection(&c.name)}],
                })
            })
            .collect();
        EmuResponse::json(200, &json!({"items": items, "hasMore": false}))
    }

    fn create_collection(
        &mut self,
        root: &Path,
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
        if let Some(existing) = self.collections.get(name) {
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
        let info = CollectionInfo {
            metadata: merge(default_metadata(), given.unwrap_or_else(|| json!({}))),
            created_us: store::now_micros(),
        };
        // A crash during an earlier drop can leave documents behind; a new collection starts empty.
        let dir = collection_dir(root, name);
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        let collection = Collection::load(&dir, name.to_string(), info.metadata.clone())?;
        self.catalog
            .lock()
            .put(name, &serde_json::to_value(&info)?, b"")?;
        self.collections.insert(name.to_string(), collection);
        Ok(EmuResponse::empty(201).with_header("location", format!("{}/", base.collection(name))))
    }

    fn drop_collection(&mut self, root: &Path, name: &str) -> crate::Result<EmuResponse> {
        // The catalog entry goes first: once it is gone the collection is gone, whatever
        // happens to its files.
        if !self.catalog.lock().delete(name)? {
            return Ok(collection_not_found(name));
        }
        if let Some(collection) = self.collections.remove(name) {
            self.held -= collection.docs.values().map(Doc::cost).sum::<usize>();
        }
        let dir = collection_dir(root, name);
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        Ok(EmuResponse::empty(200))
    }
}

impl Collection {
    /// Opens the collection's store in `dir` and reads every document into memory.
    fn load(dir: &Path, name: String, metadata: Value) -> crate::Result<Collection> {
        let store = Store::open(dir)?;
        let mut docs = BTreeMap::new();
        let mut paths = Paths::default();
        {
            let locked = store.lock();
            for entry in locked.list()? {
                if let Some((meta, body)) = locked.get(&entry.key)? {
                    let value = serde_json::from_slice(&body)?;
                    let doc = Doc::new(serde_json::from_value(meta)?, &body, &value, &mut paths);
                    docs.insert(entry.key, doc);
                }
            }
        }
        Ok(Collection {
            name,
            metadata,
            store,
            docs,
            paths,
            indexes: BTreeMap::new(),
            postings: HashMap::new(),
        })
    }

    /// `action=index`: a spec with `fields` indexes its first field's path (B-tree or
    /// multivalue alike: both answer equality on it); one without (a JSON search index) is
    /// accepted and changes nothing. A name given again replaces the index.
    fn create_index(&mut self, spec: &Value) -> EmuResponse {
        let Some(name) = spec["name"].as_str() else {
            return bad_request("an index specification needs a name");
        };
        let Some(fields) = spec.get("fields") else {
            return EmuResponse::empty(200);
        };
        let Some(path) = fields
            .as_array()
            .and_then(|fields| fields.first())
            .and_then(|field| field["path"].as_str())
            .filter(|path| !path.is_empty())
        else {
            return bad_request("an index's fields must be a non-empty array of {\"path\": …}");
        };
        let path = self.paths.number(path);
        self.drop_index(name);
        self.indexes.insert(name.to_string(), path);
        if !self.postings.contains_key(&path) {
            let mut keys_by_text = HashMap::new();
            for (key, doc) in &self.docs {
                record(&mut keys_by_text, key, doc.at(path));
            }
            self.postings.insert(path, keys_by_text);
        }
        EmuResponse::empty(200)
    }

    /// Drops index `name`, and its postings when no other index has its path.
    fn drop_index(&mut self, name: &str) {
        if let Some(path) = self.indexes.remove(name) {
            if !self.indexes.values().any(|p| *p == path) {
                self.postings.remove(&path);
            }
        }
    }

    fn client_keys(&self) -> bool {
        assignment_method(&self.metadata) == "CLIENT"
    }

    fn handle(
        &mut self,
        req: &EmuRequest,
        base: &Base,
        rest: &[String],
        budget: &mut Budget<'_>,
    ) -> crate::Result<EmuResponse> {
        match (req.method.as_str(), rest) {
            ("GET", []) => match (paging(req), req.query_param("q")) {
                (Err(refused), _) => Ok(refused),
                (Ok(paging), None) => self.page(base, self.docs.iter(), &paging),
                // `q=` filters a listing with a QBE, as `action=query` does with its body.
                (Ok(paging), Some(q)) => match Qbe::parse(q.as_bytes()) {
                    Ok(qbe) => {
                        let needed = paging.offset.saturating_add(paging.limit);
                        self.page(base, self.select(&qbe, needed).into_iter(), &paging)
                    }
                    Err(message) => Ok(bad_request(&message)),
                },
            },
            ("POST", []) => self.post(req, base, budget),
            ("GET", [key]) => Ok(self.get(req, key)),
            ("PUT", [key]) => self.put(req, base, key, budget),
            ("DELETE", [key]) => self.delete(req, key, budget),
            _ => Ok(method_not_allowed()),
        }
    }

    /// One page of `matched` (in the order given) in the ORDS envelope. Each document's stored
    /// text goes into `value` as it is: it was parsed when written, and parsing and printing a
    /// page again cost more than choosing it.
    fn page<'d>(
        &self,
        base: &Base,
        matched: impl ExactSizeIterator<Item = Hit<'d>>,
        paging: &Paging,
    ) -> crate::Result<EmuResponse> {
        let total = matched.len();
        let mut body = String::from("{\"items\":[");
        let mut count = 0;
        for (id, doc) in matched.skip(paging.offset).take(paging.limit) {
            if count > 0 {
                body.push(',');
            }
            count += 1;
            let item = json!({
                "id": id,
                "etag": doc.meta.etag,
                "lastModified": store::rfc3339(doc.meta.modified_us, Precision::Micros),
                "created": store::rfc3339(doc.meta.created_us, Precision::Micros),
                "links": [{"rel": "self", "href": base.document(&self.name, id)}],
            })
            .to_string();
            // `item` is an object: its closing brace makes way for the value.
            body.push_str(&item[..item.len() - 1]);
            body.push_str(",\"value\":");
            body.push_str(&doc.text);
            body.push('}');
        }
        let has_more = paging.offset + count < total;
        let mut rest = json!({
            "hasMore": has_more,
            "count": count,
            "offset": paging.offset,
            "limit": paging.limit,
        });
        if has_more {
            let next = format!(
                "{}?offset={}&limit={}",
                base.collection(&self.name),
                paging.offset + count,
                paging.limit
            );
            rest["links"] = json!([{"rel": "next", "href": next}]);
        }
        // `rest` is an object too: its fields follow the items.
        body.push_str("],");
        body.push_str(&rest.to_string()[1..]);
        let mut response = EmuResponse::empty(200).with_header("content-type", "application/json");
        response.body = body.into_bytes();
        Ok(response)
    }

    fn post(
        &mut self,
        req: &EmuRequest,
        base: &Base,
        budget: &mut Budget<'_>,
    ) -> crate::Result<EmuResponse> {
        match req.query_param("action").as_deref() {
            None | Some("insert") => Ok(soda_error(
                405,
                "MethodNotAllowed",
                "the emulator does not insert by POST: write each document with PUT by key",
            )),
            Some("query") => {
                let paging = match paging(req) {
                    Ok(p) => p,
                    Err(refused) => return Ok(refused),
                };
                match Qbe::parse(&req.body) {
                    Ok(qbe) => {
                        let needed = paging.offset.saturating_add(paging.limit);
                        self.page(base, self.select(&qbe, needed).into_iter(), &paging)
                    }
                    Err(message) => Ok(bad_request(&message)),
                }
            }
            Some("delete") => {
                if req.body.iter().all(u8::is_ascii_whitespace) {
                    return Ok(bad_request("action=delete needs a QBE body"));
                }
                let qbe = match Qbe::parse(&req.body) {
                    Ok(qbe) => qbe,
                    Err(message) => return Ok(bad_request(&message)),
                };
                let doomed: Vec<String> = self
                    .select(&qbe, 0)
                    .into_iter()
                    .map(|(key, _)| key.clone())
                    .collect();
                let mut locked = self.store.lock();
                for key in &doomed {
                    locked.delete(key)?;
                    if let Some(doc) = self.docs.remove(key) {
                        budget.replace(doc.cost(), 0);
                        unindex_document(&mut self.postings, key, &doc);
                    }
                }
                Ok(EmuResponse::json(
                    200,
                    &json!({"count": doomed.len(), "itemsDeleted": doomed.len()}),
                ))
            }
            Some(action @ ("index" | "unindex")) => {
                let Ok(spec @ Value::Object(_)) = serde_json::from_slice::<Value>(&req.body) else {
                    return Ok(bad_request("an index specification must be a JSON object"));
                };
                if action == "index" {
                    return Ok(self.create_index(&spec));
                }
                match spec["name"].as_str() {
                    Some(name) => {
                        self.drop_index(name);
                        Ok(EmuResponse::empty(200))
                    }
                    None => Ok(bad_request("an index specification needs a name")),
                }
            }
            Some(other) => Ok(bad_request(&format!(
                "action '{other}' is not supported by the emulator (it answers query, delete, index and unindex)"
            ))),
        }
    }

    /// The documents matching `qbe`: the first `needed` in its order (ties, and no order, by
    /// key), the rest after them in no particular order, so a page does not sort them all.
    fn select(&self, qbe: &Qbe, needed: usize) -> Vec<Hit<'_>> {
        // A path no document has matches nothing.
        let Some(conditions) = qbe
            .fields
            .iter()
            .map(|(path, wanted)| Some((self.paths.find(path)?, wanted)))
            .collect::<Option<Vec<_>>>()
        else {
            return Vec::new();
        };
        // The fewest documents an index points to for one of the conditions (which then needs
        // no checking), unless `$id` names them.
        let indexed = match qbe.ids {
            Some(_) => None,
            None => conditions
                .iter()
                .enumerate()
                .filter_map(|(n, (path, wanted))| Some((n, self.indexed(*path, wanted)?)))
                .min_by_key(|(_, sets)| sets.iter().map(|keys| keys.len()).sum::<usize>()),
        };
        let (candidates, conditions): (Box<dyn Iterator<Item = Hit<'_>>>, Vec<_>) =
            match (&qbe.ids, indexed) {
                // Both sets are in key order, as the map is.
                (Some(ids), _) => (
                    Box::new(ids.iter().filter_map(|id| self.docs.get_key_value(id))),
                    conditions,
                ),
                (None, Some((satisfied, sets))) => (
                    Box::new(union(sets).filter_map(|key| self.docs.get_key_value(key.as_str()))),
                    conditions
                        .into_iter()
                        .enumerate()
                        .filter(|(n, _)| *n != satisfied)
                        .map(|(_, condition)| condition)
                        .collect(),
                ),
                (None, None) => (Box::new(self.docs.iter()), conditions),
            };
        let matched = candidates.filter(|(_, doc)| {
            conditions
                .iter()
                .all(|(path, wanted)| doc.at(*path).any(|value| wanted.accepts(value)))
        });
        if qbe.order.is_empty() {
            return matched.collect();
        }
        let order: Vec<(Option<u32>, bool)> = qbe
            .order
            .iter()
            .map(|(path, descending)| (self.paths.find(path), *descending))
            .collect();
        let mut keyed: Vec<(Vec<Option<&Scalar>>, Hit<'_>)> = matched
            .map(|(key, doc)| {
                let sort_key = order
                    .iter()
                    .map(|(path, _)| path.and_then(|path| doc.first(path)))
                    .collect();
                (sort_key, (key, doc))
            })
            .collect();
        let compare = |(a, (a_key, _)): &(Vec<Option<&Scalar>>, Hit<'_>),
                       (b, (b_key, _)): &(Vec<Option<&Scalar>>, Hit<'_>)| {
            a.iter()
                .zip(b)
                .zip(&order)
                .map(|((a, b), (_, descending))| {
                    let ordering = order_scalars(*a, *b);
                    if *descending {
                        ordering.reverse()
                    } else {
                        ordering
                    }
                })
                .find(|o| *o != Ordering::Equal)
                .unwrap_or_else(|| a_key.cmp(b_key))
        };
        if needed < keyed.len() {
            keyed.select_nth_unstable_by(needed, compare);
        }
        let first = needed.min(keyed.len());
        keyed[..first].sort_unstable_by(compare);
        keyed.into_iter().map(|(_, doc)| doc).collect()
    }

    /// The index's sets of keys of the documents meeting `wanted` at `path`, one per string
    /// wanted; `None` when no index answers it (no index there, or not only strings wanted).
    fn indexed(&self, path: u32, wanted: &Wanted) -> Option<Vec<&BTreeSet<String>>> {
        let keys_by_text = self.postings.get(&path)?;
        let Wanted::OneOf(scalars) = wanted else {
            return None;
        };
        let mut sets = Vec::new();
        for scalar in scalars {
            let Scalar::Text(text) = scalar else {
                return None;
            };
            sets.extend(keys_by_text.get(text));
        }
        Some(sets)
    }

    fn get(&self, req: &EmuRequest, key: &str) -> EmuResponse {
        let Some(doc) = self.docs.get(key) else {
            return document_not_found(key);
        };
        if req
            .header("if-none-match")
            .is_some_and(|tags| etag_matches(&doc.meta.etag, tags))
        {
            return with_version(EmuResponse::empty(304), &doc.meta);
        }
        let mut response = EmuResponse::empty(200).with_header("content-type", "application/json");
        response.body = doc.text.as_bytes().to_vec();
        with_version(response, &doc.meta)
    }

    fn put(
        &mut self,
        req: &EmuRequest,
        base: &Base,
        key: &str,
        budget: &mut Budget<'_>,
    ) -> crate::Result<EmuResponse> {
        if key.len() > MAX_KEY {
            return Ok(bad_request("keys are at most 255 characters"));
        }
        if req.body.len() > MAX_DOCUMENT {
            return Ok(soda_error(
                413,
                "PayloadTooLarge",
                &format!("the emulator takes documents of at most {MAX_DOCUMENT} bytes"),
            ));
        }
        let value = match serde_json::from_slice::<Value>(&req.body) {
            Ok(value @ Value::Object(_)) => value,
            _ => return Ok(bad_request("the document must be a JSON object")),
        };
        let existing = self.docs.get(key);
        if existing.is_none() && !self.client_keys() {
            // Server-assigned keys: PUT only replaces.
            return Ok(document_not_found(key));
        }
        if let Some(tags) = req.header("if-match") {
            if !existing.is_some_and(|d| etag_matches(&d.meta.etag, tags)) {
                return Ok(precondition_failed());
            }
        }
        // `If-None-Match: *` makes the PUT an insert that never replaces.
        if let (Some(tags), Some(doc)) = (req.header("if-none-match"), existing) {
            if etag_matches(&doc.meta.etag, tags) {
                return Ok(precondition_failed());
            }
        }
        let old_cost = existing.map_or(0, Doc::cost);
        let meta = new_meta(key, &req.body, existing.map(|d| &d.meta));
        let doc = Doc::new(meta, &req.body, &value, &mut self.paths);
        if !budget.allows(old_cost, doc.cost()) {
            return Ok(soda_error(
                507,
                "InsufficientStorage",
                &format!(
                    "the emulator holds at most {} bytes of documents",
                    budget.max
                ),
            ));
        }
        self.store
            .lock()
            .put(key, &serde_json::to_value(&doc.meta)?, &req.body)?;
        let response = if self.docs.contains_key(key) {
            with_version(EmuResponse::empty(200), &doc.meta)
        } else {
            with_version(EmuResponse::empty(201), &doc.meta)
                .with_header("location", base.document(&self.name, key))
        };
        budget.replace(old_cost, doc.cost());
        if let Some(old) = self.docs.remove(key) {
            unindex_document(&mut self.postings, key, &old);
        }
        index_document(&mut self.postings, key, &doc);
        self.docs.insert(key.to_string(), doc);
        Ok(response)
    }

    fn delete(
        &mut self,
        req: &EmuRequest,
        key: &str,
        budget: &mut Budget<'_>,
    ) -> crate::Result<EmuResponse> {
        let Some(doc) = self.docs.get(key) else {
            return Ok(document_not_found(key));
        };
        if let Some(tags) = req.header("if-match") {
            if !etag_matches(&doc.meta.etag, tags) {
                return Ok(precondition_failed());
            }
        }
        self.store.lock().delete(key)?;
        if let Some(doc) = self.docs.remove(key) {
            budget.replace(doc.cost(), 0);
            unindex_document(&mut self.postings, key, &doc);
        }
        Ok(EmuResponse::empty(200))
    }
}

/// The keys in `sets`, each once, in key order: the sorted sets merged as they are read.
fn union<'k>(sets: Vec<&'k BTreeSet<String>>) -> Box<dyn Iterator<Item = &'k String> + 'k> {
    sets.into_iter()
        .fold(Box::new(std::iter::empty()), |merged, set| {
            Box::new(Merge {
                a: merged.peekable(),
                b: set.iter().peekable(),
            })
        })
}

/// Two ascending iterators as one, a key both hold given once.
struct Merge<'k, A: Iterator<Item = &'k String>, B: Iterator<Item = &'k String>> {
    a: std::iter::Peekable<A>,
    b: std::iter::Peekable<B>,
}

impl<'k, A: Iterator<Item = &'k String>, B: Iterator<Item = &'k String>> Iterator
    for Merge<'k, A, B>
{
    type Item = &'k String;

    fn next(&mut self) -> Option<&'k String> {
        match (self.a.peek(), self.b.peek()) {
            (Some(a), Some(b)) => match a.cmp(b) {
                Ordering::Less => self.a.next(),
                Ordering::Greater => self.b.next(),
                Ordering::Equal => {
                    self.b.next();
                    self.a.next()
                }
            },
            (Some(_), None) => self.a.next(),
            (None, _) => self.b.next(),
        }
    }
}

/// Indexed path number → each string found there → the keys of the documents holding it.
type Postings = HashMap<u32, HashMap<Box<str>, BTreeSet<String>>>;

/// Records `key`'s strings at every indexed path.
fn index_document(postings: &mut Postings, key: &str, doc: &Doc) {
    for (path, keys_by_text) in postings.iter_mut() {
        record(keys_by_text, key, doc.at(*path));
    }
}

/// Adds `key` under each string of `values` (other scalars are not indexed).
fn record<'v>(
    keys_by_text: &mut HashMap<Box<str>, BTreeSet<String>>,
    key: &str,
    values: impl Iterator<Item = &'v Scalar>,
) {
    for value in values {
        if let Scalar::Text(text) = value {
            keys_by_text
                .entry(text.clone())
                .or_default()
                .insert(key.to_string());
        }
    }
}

/// Forgets what [`index_document`] recorded of `key`.
fn unindex_document(postings: &mut Postings, key: &str, doc: &Doc) {
    for (path, keys_by_text) in postings.iter_mut() {
        for value in doc.at(*path) {
            if let Scalar::Text(text) = value {
                if let Some(keys) = keys_by_text.get_mut(text) {
                    keys.remove(key);
                    if keys.is_empty() {
                        keys_by_text.remove(text);
                    }
                }
            }
        }
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
            "action" | "q" => {}
            // ORDS has more (`fields`, `totalResults`, id ranges): refused, not ignored.
            option => {
                return Err(bad_request(&format!(
                "the emulator does not answer the option {option} (it pages by limit and offset)"
            )))
            }
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

/// What a refused operator is told.
fn unsupported(operator: &str) -> String {
    format!(
        "the emulator does not answer the QBE operator {operator}: it knows $id, equality on a \
         path, $in, $exists: true, and $orderby under $query"
    )
}

impl Qbe {
    /// Parses a filter, or `{"$query": filter, "$orderby": {…}}`; an empty body means "all".
    fn parse(body: &[u8]) -> Result<Qbe, String> {
        let mut qbe = Qbe::default();
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(qbe);
        }
        let value: Value =
            serde_json::from_slice(body).map_err(|e| format!("the QBE is not valid JSON: {e}"))?;
        let Value::Object(mut map) = value else {
            return Err("a QBE must be a JSON object".into());
        };
        let orderby = map.remove("$orderby");
        let query = map.remove("$query");
        let filter = match (query, orderby.is_some()) {
            (None, false) => map,
            (Some(_), _) | (None, true) if !map.is_empty() => {
                return Err("with $query or $orderby, every condition goes inside $query".into())
            }
            (Some(Value::Object(filter)), _) => filter,
            (Some(_), _) => return Err("$query must be an object".into()),
            (None, true) => Map::new(),
        };
        if let Some(orderby) = orderby {
            qbe.order = parse_orderby(&orderby)?;
        }
        for (key, condition) in filter {
            if key == "$id" {
                qbe.ids = Some(parse_ids(condition)?);
            } else if key.starts_with('$') {
                return Err(unsupported(&key));
            } else {
                let wanted = parse_condition(&key, condition)?;
                qbe.fields.push((key, wanted));
            }
        }
        Ok(qbe)
    }
}

/// `"KEY"` or `["K1", "K2", …]`.
fn parse_ids(condition: Value) -> Result<BTreeSet<String>, String> {
    let refused = || "$id needs a key or an array of keys".to_string();
    match condition {
        Value::String(id) => Ok(BTreeSet::from([id])),
        Value::Array(ids) => ids
            .into_iter()
            .map(|id| match id {
                Value::String(id) => Ok(id),
                _ => Err(refused()),
            })
            .collect(),
        _ => Err(refused()),
    }
}

/// A scalar (equality), `{"$in": [scalars]}` or `{"$exists": true}`: what a value at `path`
/// must be.
fn parse_condition(path: &str, condition: Value) -> Result<Wanted, String> {
    match condition {
        Value::Object(operators) => {
            let mut wanted = None;
            for (operator, operand) in operators {
                match (operator.as_str(), operand) {
                    ("$in", Value::Array(items)) => {
                        let items: Option<Vec<Scalar>> = items.iter().map(Scalar::of).collect();
                        wanted = Some(Wanted::OneOf(items.ok_or("$in needs an array of scalars")?));
                    }
                    ("$in", _) => return Err("$in needs an array of scalars".into()),
                    ("$exists", Value::Bool(true)) => wanted = Some(Wanted::Present),
                    ("$exists", _) => {
                        return Err("the emulator answers $exists only as true".into())
                    }
                    (op, _) if op.starts_with('$') => return Err(unsupported(op)),
                    _ => {
                        return Err(format!(
                            "'{path}' holds an object: write nested fields as a dotted path"
                        ))
                    }
                }
            }
            wanted.ok_or_else(|| format!("'{path}' has an empty condition"))
        }
        Value::Array(_) => Err(format!(
            "an array as the value of '{path}' means $all in SODA; the emulator does not answer it"
        )),
        scalar => Ok(Wanted::OneOf(Scalar::of(&scalar).into_iter().collect())),
    }
}

/// Only the `{"path": ±n, …}` form: sign = direction, magnitude = precedence.
fn parse_orderby(orderby: &Value) -> Result<Vec<(String, bool)>, String> {
    let Value::Object(map) = orderby else {
        return Err("the emulator answers $orderby only in its {\"path\": ±n} form".into());
    };
    let mut keys = Vec::new();
    for (path, n) in map {
        if path.starts_with('$') {
            return Err(unsupported(path));
        }
        let n = n
            .as_i64()
            .filter(|n| *n != 0)
            .ok_or_else(|| format!("$orderby value for '{path}' must be a non-zero integer"))?;
        keys.push((n.unsigned_abs(), path.clone(), n < 0));
    }
    keys.sort_by_key(|(precedence, _, _)| *precedence);
    Ok(keys
        .into_iter()
        .map(|(_, path, descending)| (path, descending))
        .collect())
}

impl Scalar {
    /// `None` for an array or object.
    fn of(value: &Value) -> Option<Scalar> {
        Some(match value {
            Value::Null => Scalar::Null,
            Value::Bool(b) => Scalar::Bool(*b),
            // Every JSON number serde_json parses has an f64 value.
            Value::Number(n) => Scalar::Number(n.as_f64().unwrap_or(f64::NAN)),
            Value::String(s) => Scalar::Text(s.as_str().into()),
            Value::Array(_) | Value::Object(_) => return None,
        })
    }
}

/// A total order for sorting: missing, null, booleans, numbers, strings; one kind by value.
fn order_scalars(a: Option<&Scalar>, b: Option<&Scalar>) -> Ordering {
    let rank = |v: Option<&Scalar>| match v {
        None => 0,
        Some(Scalar::Null) => 1,
        Some(Scalar::Bool(_)) => 2,
        Some(Scalar::Number(_)) => 3,
        Some(Scalar::Text(_)) => 4,
    };
    match (a, b) {
        (Some(Scalar::Bool(x)), Some(Scalar::Bool(y))) => x.cmp(y),
        (Some(Scalar::Number(x)), Some(Scalar::Number(y))) => x.total_cmp(y),
        (Some(Scalar::Text(x)), Some(Scalar::Text(y))) => x.cmp(y),
        _ => rank(a).cmp(&rank(b)),
    }
}

impl Paths {
    /// The number of `path`, given one if it has none yet.
    fn number(&mut self, path: &str) -> u32 {
        if let Some(&n) = self.0.get(path) {
            return n;
        }
        let n = u32::try_from(self.0.len()).unwrap_or(u32::MAX);
        self.0.insert(path.to_string(), n);
        n
    }

    /// The number of `path`, if a document ever had it.
    fn find(&self, path: &str) -> Option<u32> {
        self.0.get(path).copied()
    }
}

impl Doc {
    /// `value` must be `text` parsed.
    fn new(meta: DocMeta, text: &[u8], value: &Value, paths: &mut Paths) -> Doc {
        let mut scalars = Vec::new();
        collect_scalars(value, &mut String::new(), paths, &mut scalars);
        // Stable: the scalars at one path keep their document order.
        scalars.sort_by_key(|(path, _)| *path);
        Doc {
            meta,
            text: String::from_utf8_lossy(text).into(),
            scalars: scalars.into(),
        }
    }

    /// What the document counts against [`MAX_HELD`]: its text and its scalars (whose strings
    /// are no longer than the text).
    fn cost(&self) -> usize {
        self.text.len() + self.scalars.len() * std::mem::size_of::<(u32, Scalar)>()
    }

    /// The scalars at path number `path`, in document order.
    fn at(&self, path: u32) -> impl Iterator<Item = &Scalar> {
        let start = self.scalars.partition_point(|(p, _)| *p < path);
        self.scalars[start..]
            .iter()
            .take_while(move |(p, _)| *p == path)
            .map(|(_, value)| value)
    }

    /// The first scalar at path number `path`.
    fn first(&self, path: u32) -> Option<&Scalar> {
        self.at(path).next()
    }
}

/// Every scalar under `value` with the number of its dotted path; arrays add no step, so the
/// elements of `terms` are all at `terms` and the names in `objects: [{name}]` at `objects.name`.
fn collect_scalars(
    value: &Value,
    path: &mut String,
    paths: &mut Paths,
    out: &mut Vec<(u32, Scalar)>,
) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                let len = path.len();
                if len > 0 {
                    path.push('.');
                }
                path.push_str(key);
                collect_scalars(value, path, paths, out);
                path.truncate(len);
            }
        }
        Value::Array(items) => {
            for item in items {
                collect_scalars(item, path, paths, out);
            }
        }
        scalar => {
            if let Some(scalar) = Scalar::of(scalar) {
                out.push((paths.number(path), scalar));
            }
        }
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
        assert_eq!(items[0]["properties"]["schemaName"], "ADMIN");
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
            call(&svc, "PUT", &doc_path("IMAGE_ANALYSIS", "k"), "{}").status,
            201
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
        // Re-created after a drop, it starts empty, in memory and after a restart.
        assert_eq!(
            call(&svc, "PUT", &format!("{BASE}/IMAGE_ANALYSIS"), &client).status,
            201
        );
        let page = ok_json(&call(&svc, "GET", &format!("{BASE}/IMAGE_ANALYSIS"), ""));
        assert_eq!(page["count"], 0);
        drop(svc);
        let svc = SodaService::new(&dir).unwrap();
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
        assert!(r.header("location").unwrap().ends_with("/C/K1"));
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
        let r = svc.handle(&request("GET", &path, &[("if-none-match", "other")], b""));
        assert_eq!(r.status, 200);

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
        assert_eq!(body(&call(&svc, "GET", &path, "")), json!({"n": 3}));
        let r = svc.handle(&request(
            "PUT",
            &doc_path("C", "new"),
            &[("if-match", &etag2)],
            b"{}",
        ));
        assert_eq!(r.status, 412);
        assert_eq!(call(&svc, "GET", &doc_path("C", "new"), "").status, 404);
        // `If-None-Match: *` inserts once and never replaces.
        let insert_once = |key: &str| {
            svc.handle(&request(
                "PUT",
                &doc_path("C", key),
                &[("if-none-match", "*")],
                br#"{"lease":1}"#,
            ))
            .status
        };
        assert_eq!(insert_once("K1"), 412);
        assert_eq!(insert_once("fresh"), 201);
        assert_eq!(insert_once("fresh"), 412);

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
    fn server_key_collections_only_replace() {
        let dir = store::test_dir("soda-server");
        let svc = SodaService::new(&dir).unwrap();
        assert_eq!(call(&svc, "PUT", &format!("{BASE}/S"), "").status, 201);
        assert_eq!(
            call(&svc, "PUT", &doc_path("S", "unknown"), "{}").status,
            404
        );
        for target in [format!("{BASE}/S"), format!("{BASE}/S?action=insert")] {
            let r = call(&svc, "POST", &target, r#"{"a":1}"#);
            assert_eq!(r.status, 405, "{target}");
            assert!(body(&r)["message"].as_str().unwrap().contains("PUT"));
        }
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
        assert!(first["links"][0]["href"]
            .as_str()
            .unwrap()
            .ends_with("/C?offset=100&limit=100"));
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
        assert_eq!(item["lastModified"].as_str().unwrap().len(), 27);
        assert_eq!(item["links"][0]["rel"], "self");

        // The client's loop: offset += count while hasMore.
        let mut seen = Vec::new();
        let mut offset = 0;
        loop {
            let page = ok_json(&list(&format!("limit=100&offset={offset}")));
            seen.extend(ids(&page));
            offset += page["count"].as_u64().unwrap() as usize;
            if page["hasMore"] == false {
                assert!(page.get("links").is_none());
                break;
            }
        }
        let expected: Vec<String> = (0..250).map(|i| format!("K{i:03}")).collect();
        assert_eq!(seen, expected);

        let page = ok_json(&list("limit=5000"));
        assert_eq!(
            (&page["count"], &page["limit"], &page["hasMore"]),
            (&json!(250), &json!(1000), &json!(false))
        );
        let page = ok_json(&list("offset=249"));
        assert_eq!(ids(&page), ["K249"]);
        let page = ok_json(&list("offset=300"));
        assert_eq!(
            (&page["count"], &page["hasMore"]),
            (&json!(0), &json!(false))
        );
        for bad in ["limit=0", "limit=x", "offset=-1"] {
            assert_eq!(list(bad).status, 400, "{bad}");
        }
        // Options ORDS honours and the emulator does not are refused, never ignored.
        // `q=` filters the listing with a QBE (`{}`: everything).
        assert_eq!(list("q=%7B%7D").status, 200);
        assert_eq!(list("q=%7B%22%24gt%22%3A1%7D").status, 400);
        for option in ["fields=id", "totalResults=true", "fromID=K100"] {
            let r = list(option);
            assert_eq!(r.status, 400, "{option}");
            let name = option.split('=').next().unwrap();
            assert!(body(&r)["message"].as_str().unwrap().contains(name));
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn seed_for_queries(svc: &SodaService) {
        let docs = [
            (
                "a",
                json!({"image_name": "a.jpg", "bucket_name": "b", "timestamp": "2025-01-03", "score": 0.9,
                       "status": "done", "terms": ["cat", "sofa", "animal"],
                       "objects": [{"name": "Cat"}, {"name": "Sofa"}], "model": {"version": "1.3"}}),
            ),
            (
                "b",
                json!({"image_name": "b.png", "bucket_name": "b", "timestamp": "2025-01-01", "score": 0.5,
                       "status": "done", "terms": ["dog", "animal"],
                       "objects": [{"name": "Dog"}], "model": {"version": "1.2"}}),
            ),
            (
                "c",
                json!({"image_name": "c.jpg", "bucket_name": "other", "timestamp": "2025-01-02", "score": 2,
                       "status": "pending", "terms": []}),
            ),
            (
                "d",
                json!({"image_name": "d.gif", "bucket_name": "b", "timestamp": "2025-01-02", "score": null,
                       "status": "failed", "terms": "animal"}),
            ),
        ];
        for (key, doc) in docs {
            assert_eq!(
                call(svc, "PUT", &doc_path("C", key), &doc.to_string()).status,
                201
            );
        }
    }

    fn query_status(svc: &SodaService, qbe: &str) -> (u16, Value) {
        let r = call(svc, "POST", &format!("{BASE}/C?action=query"), qbe);
        (r.status, body(&r))
    }

    fn query(svc: &SodaService, qbe: Value) -> Vec<String> {
        let (status, page) = query_status(svc, &qbe.to_string());
        assert_eq!(status, 200, "{qbe}: {page}");
        ids(&page)
    }

    #[test]
    fn qbe_ids_equality_and_in() {
        let (dir, svc) = with_collection("soda-qbe");
        seed_for_queries(&svc);
        let cases = [
            (json!({}), vec!["a", "b", "c", "d"]),
            (json!({"image_name": "a.jpg"}), vec!["a"]),
            (json!({"bucket_name": "b"}), vec!["a", "b", "d"]),
            (
                json!({"bucket_name": "b", "status": "done"}),
                vec!["a", "b"],
            ),
            (json!({"score": 2.0}), vec!["c"]),
            (json!({"score": null}), vec!["d"]),
            (json!({"nothing": "here"}), vec![]),
            // Nested objects by dotted path, and paths that cross arrays of objects.
            (json!({"model.version": "1.2"}), vec!["b"]),
            (json!({"objects.name": "Sofa"}), vec!["a"]),
            // An array matches when any element equals (the search terms of issue 14), and a
            // scalar still matches itself.
            (json!({"terms": "animal"}), vec!["a", "b", "d"]),
            (json!({"terms": "dog"}), vec!["b"]),
            (json!({"terms": "do"}), vec![]),
            (
                json!({"image_name": {"$in": ["a.jpg", "b.png", "z"]}}),
                vec!["a", "b"],
            ),
            (json!({"terms": {"$in": ["sofa", "dog"]}}), vec!["a", "b"]),
            (json!({"$id": "b"}), vec!["b"]),
            (json!({"$id": ["d", "a", "zz", "a"]}), vec!["a", "d"]),
            (json!({"$id": []}), vec![]),
            (
                json!({"$id": ["a", "b", "c"], "bucket_name": "b", "terms": "dog"}),
                vec!["b"],
            ),
            (json!({"$query": {"$id": ["c", "b"]}}), vec!["b", "c"]),
        ];
        for (qbe, expected) in cases {
            assert_eq!(query(&svc, qbe.clone()), expected, "{qbe}");
        }
        assert_eq!(query_status(&svc, "").0, 200);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn qbe_refuses_what_it_does_not_answer_with_a_400_naming_it() {
        let (dir, svc) = with_collection("soda-qbe-refuse");
        seed_for_queries(&svc);
        let refused = [
            (r#"{"score":{"$gt":1}}"#, "$gt"),
            (r#"{"image_name":{"$regexish":"a"}}"#, "$regexish"),
            (r#"{"image_name":{"$in":["a.jpg"],"$ne":"b"}}"#, "$ne"),
            (r#"{"$and":[{"a":1}]}"#, "$and"),
            (r#"{"$where":"x"}"#, "$where"),
            (r#"{"terms":["cat","sofa"]}"#, "$all"),
            (r#"{"model":{"version":"1.2"}}"#, "dotted path"),
            (r#"{"a":{"$in":"x"}}"#, "$in"),
            (r#"{"a":{"$in":[["x"]]}}"#, "$in"),
            (r#"{"$id":5}"#, "$id"),
            (r#"{"$id":["a",5]}"#, "$id"),
            (r#"{"a":{}}"#, "empty"),
            ("[1]", "JSON object"),
            ("{oops", "not valid JSON"),
            (r#"{"$query":[]}"#, "$query"),
            (r#"{"$orderby":{"a":1},"status":"done"}"#, "inside $query"),
            (r#"{"$query":{},"status":"done"}"#, "inside $query"),
            (r#"{"$query":{},"$orderby":{"a":0}}"#, "non-zero integer"),
            (r#"{"$query":{},"$orderby":{"a":1.5}}"#, "non-zero integer"),
            (r#"{"$orderby":[{"path":"a","order":"desc"}]}"#, "form"),
            (r#"{"$orderby":{"$fields":[]}}"#, "$fields"),
        ];
        for (qbe, named) in refused {
            let (status, problem) = query_status(&svc, qbe);
            assert_eq!(status, 400, "{qbe}");
            assert_eq!(problem["code"], "BadRequest", "{qbe}");
            let message = problem["message"].as_str().unwrap();
            assert!(message.contains(named), "{qbe}: {message}");
        }
        let r = call(
            &svc,
            "POST",
            &format!("{BASE}/C?action=delete"),
            r#"{"a":{"$lt":1}}"#,
        );
        assert_eq!(r.status, 400);
        for action in ["truncate", "update", "frobnicate"] {
            let r = call(&svc, "POST", &format!("{BASE}/C?action={action}"), "{}");
            assert_eq!(r.status, 400, "{action}");
        }
        let r = call(
            &svc,
            "POST",
            &format!("{BASE}/C?action=query&fields=id"),
            "{}",
        );
        assert_eq!(r.status, 400);
        // Nothing was changed by the refusals.
        assert_eq!(query(&svc, json!({})).len(), 4);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn qbe_orderby_paging_and_delete() {
        let (dir, svc) = with_collection("soda-order");
        seed_for_queries(&svc);
        let order = json!({"$query": {"bucket_name": "b"}, "$orderby": {"timestamp": -1}});
        assert_eq!(query(&svc, order), ["a", "d", "b"]);
        // Ties keep key order; magnitude is precedence.
        let two_keys = json!({"$orderby": {"timestamp": 1, "image_name": -2}});
        assert_eq!(query(&svc, two_keys), ["b", "d", "c", "a"]);
        let precedence = json!({"$orderby": {"bucket_name": 2, "timestamp": 1}});
        assert_eq!(query(&svc, precedence), ["b", "d", "c", "a"]);
        let ties = json!({"$orderby": {"bucket_name": 1}});
        assert_eq!(query(&svc, ties.clone()), ["a", "b", "d", "c"]);
        let r = call(
            &svc,
            "POST",
            &format!("{BASE}/C?action=query&limit=1&offset=1"),
            &ties.to_string(),
        );
        assert_eq!(
            ids(&ok_json(&r)),
            ["b"],
            "only the page is sorted, ties still by key"
        );
        // Missing and null sort first, then numbers by value.
        assert_eq!(
            query(&svc, json!({"$orderby": {"score": 1}})),
            ["d", "b", "a", "c"]
        );
        let ids_newest_first =
            json!({"$query": {"$id": ["a", "b", "c"]}, "$orderby": {"timestamp": -1}});
        assert_eq!(query(&svc, ids_newest_first), ["a", "c", "b"]);

        let r = call(
            &svc,
            "POST",
            &format!("{BASE}/C?action=query&limit=2&offset=1"),
            r#"{"$query": {}, "$orderby": {"timestamp": -1, "image_name": 2}}"#,
        );
        let page = ok_json(&r);
        assert_eq!(ids(&page), ["c", "d"]);
        assert_eq!(
            (
                &page["hasMore"],
                &page["count"],
                &page["offset"],
                &page["limit"]
            ),
            (&json!(true), &json!(2), &json!(1), &json!(2))
        );

        let r = call(
            &svc,
            "POST",
            &format!("{BASE}/C?action=delete"),
            r#"{"bucket_name":"b","terms":"animal"}"#,
        );
        assert_eq!(ok_json(&r), json!({"count": 3, "itemsDeleted": 3}));
        assert_eq!(query(&svc, json!({})), ["c"]);
        assert_eq!(call(&svc, "GET", &doc_path("C", "a"), "").status, 404);
        assert_eq!(
            call(&svc, "POST", &format!("{BASE}/C?action=delete"), "").status,
            400
        );
        // The deletes reached the disk, not only the index.
        drop(svc);
        let svc = SodaService::new(&dir).unwrap();
        assert_eq!(query(&svc, json!({})), ["c"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_index_follows_every_write() {
        let (dir, svc) = with_collection("soda-index");
        seed_for_queries(&svc);
        assert_eq!(query(&svc, json!({"status": "done"})), ["a", "b"]);
        let r = call(
            &svc,
            "PUT",
            &doc_path("C", "c"),
            r#"{"status":"done","terms":["dog"]}"#,
        );
        assert_eq!(r.status, 200);
        assert_eq!(query(&svc, json!({"status": "done"})), ["a", "b", "c"]);
        assert_eq!(query(&svc, json!({"terms": "dog"})), ["b", "c"]);
        assert_eq!(
            query(&svc, json!({"image_name": "c.jpg"})),
            Vec::<String>::new()
        );
        assert_eq!(call(&svc, "DELETE", &doc_path("C", "b"), "").status, 200);
        assert_eq!(query(&svc, json!({"$id": ["b", "c"]})), ["c"]);
        let page = ok_json(&call(&svc, "GET", &format!("{BASE}/C"), ""));
        assert_eq!(ids(&page), ["a", "c", "d"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_declared_index_answers_as_a_scan_does_and_follows_every_write() {
        let (dir, svc) = with_collection("soda-declared-index");
        seed_for_queries(&svc);
        let questions = [
            json!({"terms": "animal"}),
            json!({"terms": {"$in": ["sofa", "dog"]}}),
            // Overlapping sets: each document once, in key order.
            json!({"terms": {"$in": ["animal", "cat", "dog", "nowhere"]}}),
            json!({"terms": "animal", "status": "done"}),
            json!({"$query": {"terms": "animal"}, "$orderby": {"timestamp": -1}}),
            json!({"$id": ["a", "b"], "terms": "dog"}),
            json!({"terms": "nowhere"}),
            json!({"status": "done"}),
        ];
        let answers = |svc: &SodaService| -> Vec<Vec<String>> {
            questions.iter().map(|q| query(svc, q.clone())).collect()
        };
        let scanned = answers(&svc);
        let spec = r#"{"name": "T_MV", "multivalue": true, "fields": [{"path": "terms"}]}"#;
        assert_eq!(
            call(&svc, "POST", &format!("{BASE}/C?action=index"), spec).status,
            200
        );
        let status = r#"{"name": "S", "fields": [{"path": "status", "datatype": "string"}]}"#;
        assert_eq!(
            call(&svc, "POST", &format!("{BASE}/C?action=index"), status).status,
            200
        );
        assert_eq!(answers(&svc), scanned);
        // Writes after the index: a replaced document loses its old terms, keeps the shared one.
        let r = call(
            &svc,
            "PUT",
            &doc_path("C", "a"),
            r#"{"status":"done","terms":["animal","lion"],"timestamp":9}"#,
        );
        assert_eq!(r.status, 200);
        assert_eq!(query(&svc, json!({"terms": "sofa"})), Vec::<String>::new());
        assert_eq!(query(&svc, json!({"terms": "lion"})), ["a"]);
        assert_eq!(query(&svc, json!({"terms": "animal"})), ["a", "b", "d"]);
        assert_eq!(call(&svc, "DELETE", &doc_path("C", "b"), "").status, 200);
        assert_eq!(query(&svc, json!({"terms": "animal"})), ["a", "d"]);
        let r = call(
            &svc,
            "POST",
            &format!("{BASE}/C?action=delete"),
            r#"{"terms":"lion"}"#,
        );
        assert_eq!(ok_json(&r)["count"], 1);
        assert_eq!(query(&svc, json!({"terms": "animal"})), ["d"]);
        // Dropped, the scan answers the same.
        let after = (
            query(&svc, json!({"terms": "animal"})),
            query(&svc, json!({"status": "done"})),
        );
        for name in ["T_MV", "S"] {
            let spec = json!({"name": name}).to_string();
            assert_eq!(
                call(&svc, "POST", &format!("{BASE}/C?action=unindex"), &spec).status,
                200
            );
        }
        assert_eq!(
            (
                query(&svc, json!({"terms": "animal"})),
                query(&svc, json!({"status": "done"}))
            ),
            after
        );
        let nameless = r#"{"fields": [{"path": "terms"}]}"#;
        assert_eq!(
            call(&svc, "POST", &format!("{BASE}/C?action=index"), nameless).status,
            400
        );
        let pathless = r#"{"name": "X", "fields": []}"#;
        assert_eq!(
            call(&svc, "POST", &format!("{BASE}/C?action=index"), pathless).status,
            400
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn memory_is_bounded_per_document_and_in_total() {
        let (dir, mut svc) = with_collection("soda-bounds");
        let big = format!(r#"{{"x":"{}"}}"#, "a".repeat(MAX_DOCUMENT));
        let r = call(&svc, "PUT", &doc_path("C", "big"), &big);
        assert_eq!(
            (r.status, &body(&r)["code"]),
            (413, &json!("PayloadTooLarge"))
        );

        // Each of these costs its 40 bytes of text and one scalar: room for two.
        let forty = format!(r#"{{"x":"{}"}}"#, "a".repeat(32));
        let cost = forty.len() + std::mem::size_of::<(u32, Scalar)>();
        svc.max_held = 2 * cost + cost / 2;
        assert_eq!(call(&svc, "PUT", &doc_path("C", "1"), &forty).status, 201);
        assert_eq!(call(&svc, "PUT", &doc_path("C", "2"), &forty).status, 201);
        let r = call(&svc, "PUT", &doc_path("C", "3"), &forty);
        assert_eq!(
            (r.status, &body(&r)["code"]),
            (507, &json!("InsufficientStorage"))
        );
        assert_eq!(call(&svc, "GET", &doc_path("C", "3"), "").status, 404);
        // Replacing counts only the difference; deleting gives the bytes back.
        assert_eq!(call(&svc, "PUT", &doc_path("C", "2"), &forty).status, 200);
        assert_eq!(call(&svc, "DELETE", &doc_path("C", "1"), "").status, 200);
        assert_eq!(call(&svc, "PUT", &doc_path("C", "3"), &forty).status, 201);
        // Dropping a collection gives back all of its bytes.
        assert_eq!(call(&svc, "DELETE", &format!("{BASE}/C"), "").status, 200);
        let metadata = crate::soda::collection_metadata().to_string();
        assert_eq!(
            call(&svc, "PUT", &format!("{BASE}/C"), &metadata).status,
            201
        );
        assert_eq!(call(&svc, "PUT", &doc_path("C", "1"), &forty).status, 201);
        assert_eq!(call(&svc, "PUT", &doc_path("C", "2"), &forty).status, 201);
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
                &json!({"key": key, "terms": ["t"]}).to_string(),
            );
            assert_eq!(r.status, 201, "{key}");
        }
        let before = ok_json(&call(&svc, "GET", &format!("{BASE}/C"), ""));
        drop(svc);

        let svc = SodaService::new(&dir).unwrap();
        for key in keys {
            let r = call(&svc, "GET", &doc_path("C", key), "");
            assert_eq!(
                (r.status, body(&r)),
                (200, json!({"key": key, "terms": ["t"]})),
                "{key}"
            );
        }
        let after = ok_json(&call(&svc, "GET", &format!("{BASE}/C"), ""));
        assert_eq!(before, after);
        assert_eq!(query(&svc, json!({"$id": keys})).len(), keys.len());
        assert_eq!(query(&svc, json!({"terms": "t"})).len(), keys.len());
        let page = ok_json(&call(&svc, "GET", &format!("{BASE}/"), ""));
        assert_eq!(
            page["items"][0]["properties"]["keyColumn"]["assignmentMethod"],
            "CLIENT"
        );
        // Replacing keeps the creation time and moves the etag on.
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
        let page = ok_json(&call(&svc, "GET", &format!("{BASE}/C?limit=1000"), ""));
        assert_eq!(page["count"], 40);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
