//! ORDS SODA for REST: one collection of JSON documents with client-assigned keys.
//!
//! Every outcome is decided by HTTP status first; bodies are parsed leniently and error bodies
//! are kept (bounded) for the log. Writes are idempotent `PUT`s by key, never `POST`s, so a retry
//! cannot create duplicates. Authentication is HTTP Basic (not OCI-signed); the password comes
//! from configuration or from a Secrets OCID. OAuth2 client credentials are not implemented.
//!
//! A document `PUT` is expected to answer the new version in an `ETag` header. No Oracle source
//! confirms that ORDS does (issue 24), so when the header is missing from a conditional write's
//! answer the version is read back from the document (one more `GET` per such write, said once
//! in the log) and taken only when the document still holds what was written.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::oci::client::{Auth, Call, Transport};
use crate::oci::encode;
use crate::oci::secrets::Secrets;
use crate::secret::Secret;

const SERVICE: &str = "soda";
/// Largest answer read: a page of 100 analysis documents of a few KiB each.
const JSON_LIMIT: u64 = 8 * 1024 * 1024;
/// Documents per page when listing or querying.
pub const PAGE_SIZE: u32 = 100;

/// Where the password comes from.
#[derive(Debug, Clone)]
pub enum Password {
    /// Given directly (development, tests).
    Literal(Secret),
    /// Read from OCI Secrets by OCID when the client is built.
    SecretId(String),
}

/// Where the collection lives and who we are.
#[derive(Debug, Clone)]
pub struct SodaConfig {
    /// The ORDS base URL, e.g. `https://xyz-db.adb.us-ashburn-1.oraclecloudapps.com/ords/`.
    pub base_url: String,
    /// The schema alias, e.g. `admin`.
    pub schema: String,
    /// The collection name (case-sensitive).
    pub collection: String,
    /// The database user, e.g. `ADMIN`.
    pub user: String,
    /// The password's source.
    pub password: Password,
}

/// The collection metadata we need: client-assigned keys, otherwise ADB defaults.
pub fn collection_metadata() -> serde_json::Value {
    serde_json::json!({
        "keyColumn": {"name": "ID", "sqlType": "VARCHAR2", "maxLength": 255, "assignmentMethod": "CLIENT"},
        "contentColumn": {"name": "JSON_DOCUMENT", "sqlType": "BLOB", "jsonFormat": "OSON"},
        "versionColumn": {"name": "VERSION", "method": "UUID"},
        "lastModifiedColumn": {"name": "LAST_MODIFIED"},
        "creationTimeColumn": {"name": "CREATED_ON"}
    })
}

/// The gallery's indexes (docs/API.md, "Search"): newest-first listing of a bucket, and
/// the label search over `terms`. A multivalue index on `terms` needs a JSON-type collection
/// (23ai); on the client-key BLOB collection we create, ORDS refuses it and
/// [`Soda::ensure_gallery_indexes`] falls back to a JSON search index.
pub fn gallery_indexes() -> [serde_json::Value; 3] {
    [
        serde_json::json!({"name": "IMG_BUCKET_UPLOADED", "fields": [
            {"path": "bucket_name", "datatype": "string", "maxLength": 64},
            {"path": "uploaded_at", "datatype": "string", "maxLength": 40, "order": "desc"}]}),
        serde_json::json!({"name": "IMG_TERMS_MV", "multivalue": true, "fields": [{"path": "terms"}]}),
        serde_json::json!({"name": "IMG_SEARCH", "search_on": "text_value", "dataguide": "off"}),
    ]
}

/// A stored document.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// Its key.
    pub key: String,
    /// Its version tag (opaque).
    pub etag: String,
    /// Last modification time as the server wrote it.
    pub last_modified: String,
    /// Creation time, when the server sent it.
    pub created: String,
    /// The JSON content.
    pub value: serde_json::Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Page {
    #[serde(default)]
    items: Vec<Item>,
    #[serde(default)]
    has_more: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Item {
    id: String,
    #[serde(default)]
    etag: String,
    #[serde(default)]
    last_modified: String,
    #[serde(default)]
    created: String,
    #[serde(default)]
    value: serde_json::Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Deleted {
    #[serde(default)]
    items_deleted: Option<u64>,
    #[serde(default)]
    count: Option<u64>,
}

/// A SODA client for one collection.
#[derive(Debug, Clone)]
pub struct Soda {
    transport: Transport,
    origin: String,
    /// `/ords/{schema}/soda/latest/{collection}`, encoded.
    collection_path: String,
    /// Set once a `PUT` came back without an `ETag` (then said in the log, once).
    etag_missing: Arc<AtomicBool>,
}

impl Soda {
    /// Builds a client. With [`Password::SecretId`] the password is read now, through `secrets`.
    pub fn connect(
        transport: &Transport,
        config: &SodaConfig,
        secrets: Option<&Secrets>,
        deadline: Instant,
    ) -> Result<Soda> {
        let password = match &config.password {
            Password::Literal(p) => p.clone(),
            Password::SecretId(id) => {
                let secrets = secrets.ok_or_else(|| {
                    Error::Config(
                        "the SODA password is a Secrets OCID but no Secrets client is configured"
                            .into(),
                    )
                })?;
                secrets.by_id(id, deadline)?
            }
        };
        let (origin, base_path) = split_url(&config.base_url)?;
        if config.schema.is_empty() || config.collection.is_empty() {
            return Err(Error::Config(
                "SODA schema and collection must not be empty".into(),
            ));
        }
        let collection_path = format!(
            "{}/{}/soda/latest/{}",
            base_path.trim_end_matches('/'),
            encode::component(&config.schema),
            encode::component(&config.collection)
        );
        Ok(Soda {
            transport: transport.with_auth(Auth::Basic {
                user: config.user.clone(),
                password,
            }),
            origin,
            collection_path,
            etag_missing: Arc::new(AtomicBool::new(false)),
        })
    }

    fn call<'a>(&'a self, method: &'static str, path: String, deadline: Instant) -> Call<'a> {
        Call::new(SERVICE, method, &self.origin, path, deadline)
    }

    fn document_path(&self, key: &str) -> Result<String> {
        if key.is_empty() || key.len() > 255 {
            return Err(Error::bad_request(400, "SODA keys are 1-255 characters"));
        }
        Ok(format!(
            "{}/{}",
            self.collection_path,
            encode::component(key)
        ))
    }

    /// Creates the collection with client-assigned keys, or checks that the existing one has
    /// them. An existing collection with other metadata is an error that says how to fix it.
    pub fn ensure_collection(&self, deadline: Instant) -> Result<()> {
        let metadata = serde_json::to_vec(&collection_metadata())?;
        let call = self
            .call("PUT", self.collection_path.clone(), deadline)
            .with_json(&metadata);
        match self.transport.send(call) {
            Ok(_) => Ok(()),
            Err(Error::Service(e)) if e.status == 400 || e.status == 409 => {
                Err(Error::Config(format!(
                    "SODA collection {} exists with metadata other than client-assigned keys ({} {}): \
                     drop it (DELETE {}) or point the configuration at a new collection name",
                    self.collection_path, e.status, e.message, self.collection_path
                )))
            }
            Err(e) => Err(e),
        }
    }

    /// Drops the collection and every document in it (`webapp doctor`'s scratch collection).
    pub fn drop_collection(&self, deadline: Instant) -> Result<()> {
        self.transport
            .send(self.call("DELETE", self.collection_path.clone(), deadline))
            .map(|_| ())
    }

    /// The collection's metadata as ORDS lists it (`properties`), or `None` when it does not
    /// exist. Only the first page of collections is searched (ORDS lists 100 or more).
    pub fn collection_properties(&self, deadline: Instant) -> Result<Option<serde_json::Value>> {
        let list_path = self
            .collection_path
            .rsplit_once('/')
            .map(|(base, _)| format!("{base}/?limit=1000"))
            .unwrap_or_default();
        let name = self.collection_path.rsplit('/').next().unwrap_or("");
        let listing: serde_json::Value = self
            .transport
            .send(self.call("GET", list_path, deadline))?
            .json(JSON_LIMIT)?;
        Ok(listing["items"].as_array().and_then(|items| {
            items
                .iter()
                .find(|item| item["name"].as_str().map(encode::component).as_deref() == Some(name))
                .map(|item| item["properties"].clone())
        }))
    }

    /// Inserts or replaces the document at `key`; returns its new etag (empty when ORDS sends
    /// none: unconditional writers do not need it, and the conditional ones read it back).
    pub fn put(&self, key: &str, value: &serde_json::Value, deadline: Instant) -> Result<String> {
        let body = serde_json::to_vec(value)?;
        let call = self
            .call("PUT", self.document_path(key)?, deadline)
            .with_json(&body);
        let reply = self.transport.send(call)?;
        Ok(reply.header("etag").unwrap_or("").to_string())
    }

    /// The version a successful `PUT` of `value` made: its `ETag` header, or, when ORDS sent
    /// none, the document's version read back, if the document still holds `value` (`None`
    /// when another writer has replaced it since).
    fn version_written(
        &self,
        key: &str,
        value: &serde_json::Value,
        etag: Option<String>,
        deadline: Instant,
    ) -> Result<Option<String>> {
        if let Some(etag) = etag.filter(|e| !e.is_empty()) {
            return Ok(Some(etag));
        }
        if !self.etag_missing.swap(true, Ordering::Relaxed) {
            log::warn!(target: "soda", "ORDS answered a document PUT without an ETag header: \
                each write's version is read back from the document (one more GET per write)");
        }
        Ok(self
            .get(key, deadline)?
            .filter(|doc| same_json(&doc.value, value) && !doc.etag.is_empty())
            .map(|doc| doc.etag))
    }

    /// One document `PUT` with an optional condition header, answered as ORDS sent it: the
    /// status (a 412 included) and the `ETag` header. For `webapp doctor`, which must see what
    /// ORDS does rather than what this client makes of it.
    pub fn put_as_sent(
        &self,
        key: &str,
        value: &serde_json::Value,
        condition: Option<(&str, &str)>,
        deadline: Instant,
    ) -> Result<(u16, Option<String>)> {
        let body = serde_json::to_vec(value)?;
        let mut call = self
            .call("PUT", self.document_path(key)?, deadline)
            .with_json(&body);
        if let Some((name, value)) = condition {
            call.headers.push((name.to_string(), value.to_string()));
        }
        match self.transport.send(call) {
            Ok(reply) => Ok((reply.status(), reply.header("etag").map(str::to_string))),
            Err(Error::Service(e)) if e.status == 412 => Ok((412, None)),
            Err(e) => Err(e),
        }
    }

    /// Replaces the document at `key` only while its version is still `etag` (`If-Match`);
    /// returns the new etag, or `None` when another writer got there first (412, or 404 when the
    /// document is gone).
    pub fn put_if_match(
        &self,
        key: &str,
        value: &serde_json::Value,
        etag: &str,
        deadline: Instant,
    ) -> Result<Option<String>> {
        if etag.is_empty() {
            return Err(Error::Config(
                "SODA sent no ETag for a document: conditional writes are impossible".into(),
            ));
        }
        self.put_conditionally(key, value, ("if-match", etag.to_string()), deadline)
    }

    /// Inserts the document at `key` only if there is none (`If-None-Match: *`); returns its
    /// etag, or `None` when one exists already (412).
    pub fn insert_if_absent(
        &self,
        key: &str,
        value: &serde_json::Value,
        deadline: Instant,
    ) -> Result<Option<String>> {
        self.put_conditionally(key, value, ("if-none-match", "*".to_string()), deadline)
    }

    fn put_conditionally(
        &self,
        key: &str,
        value: &serde_json::Value,
        condition: (&str, String),
        deadline: Instant,
    ) -> Result<Option<String>> {
        let body = serde_json::to_vec(value)?;
        let mut call = self
            .call("PUT", self.document_path(key)?, deadline)
            .with_json(&body);
        call.headers.push((condition.0.to_string(), condition.1));
        let etag = match self.transport.send(call) {
            Ok(reply) => reply.header("etag").map(str::to_string),
            Err(Error::Service(e)) if e.status == 412 || e.status == 404 => return Ok(None),
            Err(e) => return Err(e),
        };
        self.version_written(key, value, etag, deadline)
    }

    /// The document at `key`, or `None`.
    pub fn get(&self, key: &str, deadline: Instant) -> Result<Option<Document>> {
        let reply = match self
            .transport
            .send(self.call("GET", self.document_path(key)?, deadline))
        {
            Ok(reply) => reply,
            Err(Error::Service(e)) if e.status == 404 => return Ok(None),
            Err(e) => return Err(e),
        };
        let etag = reply.header("etag").unwrap_or("").to_string();
        let last_modified = reply.header("last-modified").unwrap_or("").to_string();
        let value = reply.json(JSON_LIMIT)?;
        Ok(Some(Document {
            key: key.to_string(),
            etag,
            last_modified,
            created: String::new(),
            value,
        }))
    }

    /// Deletes the document at `key`; `false` when it was not there (which is not an error).
    pub fn delete(&self, key: &str, deadline: Instant) -> Result<bool> {
        match self
            .transport
            .send(self.call("DELETE", self.document_path(key)?, deadline))
        {
            Ok(_) => Ok(true),
            Err(Error::Service(e)) if e.status == 404 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Every document, page by page while `hasMore`.
    pub fn list(&self, deadline: Instant) -> impl Iterator<Item = Result<Document>> + '_ {
        self.pages(None, deadline)
    }

    /// Documents matching a QBE filter (which may be `{"$query":…,"$orderby":…}`).
    pub fn query(
        &self,
        filter: &serde_json::Value,
        deadline: Instant,
    ) -> Result<impl Iterator<Item = Result<Document>> + '_> {
        let body = serde_json::to_vec(filter)?;
        Ok(self.pages(Some(body), deadline))
    }

    /// One page of documents matching `filter`: at most `limit` from `offset`, and whether more
    /// follow. For paged views (the gallery's search), where walking every page is not wanted.
    pub fn query_page(
        &self,
        filter: &serde_json::Value,
        limit: u32,
        offset: u64,
        deadline: Instant,
    ) -> Result<(Vec<Document>, bool)> {
        let body = serde_json::to_vec(filter)?;
        let page = self.page(Some(&body), limit.clamp(1, 1000), offset, deadline)?;
        let docs = page
            .items
            .into_iter()
            .map(|item| Document {
                key: item.id,
                etag: item.etag,
                last_modified: item.last_modified,
                created: item.created,
                value: item.value,
            })
            .collect();
        Ok((docs, page.has_more))
    }

    /// Creates an index from a SODA index specification (`POST …?action=index`). An index of
    /// that name that already exists counts as created (SODA does not compare definitions:
    /// to change one, drop it first). The build runs inside the call, so give it time.
    pub fn create_index(&self, spec: &serde_json::Value, deadline: Instant) -> Result<()> {
        let body = serde_json::to_vec(spec)?;
        let call = self
            .call(
                "POST",
                format!("{}?action=index", self.collection_path),
                deadline,
            )
            .with_json(&body);
        match self.transport.send(call) {
            Ok(_) => Ok(()),
            Err(Error::Service(e))
                if e.status < 500 && e.message.to_ascii_lowercase().contains("already exists") =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Creates [`gallery_indexes`]: the B-tree, then the multivalue index on `terms`, or the
    /// search index where the collection cannot hold a multivalue one.
    pub fn ensure_gallery_indexes(&self, deadline: Instant) -> Result<()> {
        let [listing, terms, search] = gallery_indexes();
        self.create_index(&listing, deadline)?;
        match self.create_index(&terms, deadline) {
            Err(Error::Service(e)) if e.status == 400 => {
                log::info!(target: "soda", "multivalue index refused ({}); creating a search index", e.message);
                self.create_index(&search, deadline)
            }
            other => other,
        }
    }

    /// Deletes every document matching `filter`; returns how many were deleted.
    pub fn delete_matching(&self, filter: &serde_json::Value, deadline: Instant) -> Result<u64> {
        let body = serde_json::to_vec(filter)?;
        let call = self
            .call(
                "POST",
                format!("{}?action=delete", self.collection_path),
                deadline,
            )
            .with_json(&body);
        let deleted: Deleted = self.transport.send(call)?.json(JSON_LIMIT)?;
        Ok(deleted.items_deleted.or(deleted.count).unwrap_or(0))
    }

    fn pages(
        &self,
        filter: Option<Vec<u8>>,
        deadline: Instant,
    ) -> impl Iterator<Item = Result<Document>> + '_ {
        Pages {
            soda: self,
            filter,
            deadline,
            offset: Some(0),
            page: Vec::new().into_iter(),
        }
    }

    fn page(
        &self,
        filter: Option<&[u8]>,
        limit: u32,
        offset: u64,
        deadline: Instant,
    ) -> Result<Page> {
        let limit = limit.to_string();
        let offset = offset.to_string();
        let mut pairs = vec![("limit", limit.as_str()), ("offset", offset.as_str())];
        let call = match filter {
            None => self.call(
                "GET",
                format!("{}{}", self.collection_path, encode::query(&pairs)),
                deadline,
            ),
            Some(body) => {
                pairs.insert(0, ("action", "query"));
                let call = self
                    .call(
                        "POST",
                        format!("{}{}", self.collection_path, encode::query(&pairs)),
                        deadline,
                    )
                    .with_json(body);
                call
            }
        };
        self.transport.send(call)?.json(JSON_LIMIT)
    }
}

struct Pages<'a> {
    soda: &'a Soda,
    filter: Option<Vec<u8>>,
    deadline: Instant,
    /// The next page's offset, `None` when there is none.
    offset: Option<u64>,
    page: std::vec::IntoIter<Item>,
}

impl Iterator for Pages<'_> {
    type Item = Result<Document>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.page.next() {
                return Some(Ok(Document {
                    key: item.id,
                    etag: item.etag,
                    last_modified: item.last_modified,
                    created: item.created,
                    value: item.value,
                }));
            }
            let offset = self.offset.take()?;
            match self
                .soda
                .page(self.filter.as_deref(), PAGE_SIZE, offset, self.deadline)
            {
                Ok(page) => {
                    let count = page.items.len() as u64;
                    // A page that says "more" but holds nothing would loop forever.
                    if page.has_more && count > 0 {
                        self.offset = Some(offset + count);
                    }
                    self.page = page.items.into_iter();
                }
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

/// A [`Soda`] client whose password, when it comes from Secrets, is re-read after a TTL or after
/// the database refused it, so a rotated password is picked up without a restart.
pub struct CachedSoda {
    transport: Transport,
    config: SodaConfig,
    secrets: Option<Secrets>,
    ttl: std::time::Duration,
    current: std::sync::Mutex<Option<(Soda, Instant)>>,
}

impl std::fmt::Debug for CachedSoda {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CachedSoda({})", self.config.collection)
    }
}

impl CachedSoda {
    /// Nothing is read until the first call.
    pub fn new(
        transport: Transport,
        config: SodaConfig,
        secrets: Option<Secrets>,
        ttl: std::time::Duration,
    ) -> CachedSoda {
        CachedSoda {
            transport,
            config,
            secrets,
            ttl,
            current: std::sync::Mutex::new(None),
        }
    }

    /// The client, connecting (and reading the password) when there is none or it is too old.
    pub fn client(&self, deadline: Instant) -> Result<Soda> {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((soda, made)) = current.as_ref() {
            if made.elapsed() < self.ttl {
                return Ok(soda.clone());
            }
        }
        let soda = Soda::connect(
            &self.transport,
            &self.config,
            self.secrets.as_ref(),
            deadline,
        )?;
        *current = Some((soda.clone(), Instant::now()));
        Ok(soda)
    }

    /// Runs `work` with the client; after a 401 the password is read again for next time.
    pub fn with<T>(&self, deadline: Instant, work: impl FnOnce(&Soda) -> Result<T>) -> Result<T> {
        let soda = self.client(deadline)?;
        let result = work(&soda);
        if result.as_ref().err().is_some_and(Error::is_authentication) {
            *self.current.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
        result
    }
}

/// JSON equality where numbers compare by value (`10` equals `10.0`): ORDS stores documents as
/// OSON and may give a number back in another form than it was sent.
fn same_json(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_json(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_json(v, w)))
        }
        _ => a == b,
    }
}

/// Splits `https://host:port/ords/` into origin and path.
fn split_url(url: &str) -> Result<(String, String)> {
    let bad = || {
        Error::Config(format!(
            "SODA base URL {url:?} is not http(s)://host[:port]/path"
        ))
    };
    let scheme_end = url.find("://").ok_or_else(bad)?;
    let scheme = &url[..scheme_end];
    if scheme != "https" && scheme != "http" {
        return Err(bad());
    }
    let rest = &url[scheme_end + 3..];
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if authority.is_empty() || path.contains(['?', '#']) {
        return Err(bad());
    }
    Ok((format!("{scheme}://{authority}"), path.to_string()))
}

/// The document key for an object: upper-case hex SHA-256 of `namespace/bucket/object`, so keys
/// are fixed-length, URL-safe, and never carry the object name's `/`, spaces or Unicode.
pub fn document_key(namespace: &str, bucket: &str, object: &str) -> String {
    let digest = ring::digest::digest(
        &ring::digest::SHA256,
        format!("{namespace}/{bucket}/{object}").as_bytes(),
    );
    digest.as_ref().iter().map(|b| format!("{b:02X}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_split_without_double_slashes() {
        let (origin, path) =
            split_url("https://abc-db.adb.us-ashburn-1.oraclecloudapps.com/ords/").unwrap();
        assert_eq!(
            origin,
            "https://abc-db.adb.us-ashburn-1.oraclecloudapps.com"
        );
        assert_eq!(path, "/ords/");
        let (origin, path) = split_url("http://127.0.0.1:9000").unwrap();
        assert_eq!(
            (origin.as_str(), path.as_str()),
            ("http://127.0.0.1:9000", "")
        );
        assert!(split_url("ftp://x/ords").is_err());
        assert!(split_url("https:///ords").is_err());
    }

    #[test]
    fn read_back_documents_compare_numbers_by_value() {
        use serde_json::json;
        assert!(same_json(
            &json!({"tps": 10.0, "n": [1, 2]}),
            &json!({"n": [1.0, 2], "tps": 10})
        ));
        assert!(!same_json(&json!({"tps": 10}), &json!({"tps": 11})));
        assert!(!same_json(&json!({"a": 1}), &json!({"a": 1, "b": 2})));
    }

    #[test]
    fn document_keys_are_64_upper_hex_and_distinct() {
        let a = document_key("ns", "images", "uploads/a b.jpg");
        assert_eq!(a.len(), 64);
        assert!(a
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b)));
        assert_ne!(a, document_key("ns", "images", "uploads/a b.png"));
        assert_eq!(a, document_key("ns", "images", "uploads/a b.jpg"));
    }
}
