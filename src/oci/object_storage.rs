//! Object Storage (API 20160918): namespace, put, head, get, delete and list.
//!
//! Object names are percent-encoded once, here, with the same function whose output is signed.
//! Uploads stream from a rewindable reader of known length and are not hashed (the PutObject
//! signing exception). Multipart upload is left out: our images are at most 5 MB.

use std::io::Read;
use std::time::Instant;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::oci::client::{Call, Payload, ReadSeek, Reply, Transport};
use crate::oci::encode;

const SERVICE: &str = "objectstorage";
/// Largest JSON answer we read (a list page of 1000 names with all fields is ~400 KiB).
const JSON_LIMIT: u64 = 4 * 1024 * 1024;
/// The service's page size ceiling.
pub const MAX_PAGE: u32 = 1000;

/// A bucket in a namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    /// The tenancy's Object Storage namespace.
    pub namespace: String,
    /// The bucket name.
    pub name: String,
}

/// The condition a PUT or DELETE is made under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition<'a> {
    /// Always.
    None,
    /// Only if no object has the name (`if-none-match: *`); a PUT only.
    Absent,
    /// Only if the object's current etag is this one (`if-match`).
    Etag(&'a str),
}

/// What HEAD and GET tell about an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// The object's etag (a UUID, unquoted).
    pub etag: String,
    /// Its size in bytes (for a ranged GET: the size of the part returned).
    pub content_length: u64,
    /// Its content type as stored.
    pub content_type: String,
    /// `last-modified`, as sent.
    pub last_modified: String,
    /// `opc-meta-*` headers, prefix removed, in the order received.
    pub metadata: Vec<(String, String)>,
}

/// An object being downloaded.
pub struct Download {
    /// The object's headers.
    pub info: ObjectInfo,
    /// `content-range` of a ranged GET.
    pub content_range: Option<String>,
    /// The body, bounded by the call's deadline and the caller's limit.
    pub body: Box<dyn Read + Send>,
}

/// One entry of a listing.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectSummary {
    /// The object name, decoded.
    pub name: String,
    /// Size in bytes, when `fields` asked for it.
    #[serde(default)]
    pub size: Option<u64>,
    /// Etag, when asked for.
    #[serde(default)]
    pub etag: Option<String>,
    /// Creation time as sent, when asked for.
    #[serde(default)]
    pub time_created: Option<String>,
    /// Modification time as sent, when asked for.
    #[serde(default)]
    pub time_modified: Option<String>,
}

/// Options of a listing.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    /// Only names starting with this.
    pub prefix: Option<String>,
    /// Start at this name (inclusive).
    pub start: Option<String>,
    /// Page size (1–1000; default 1000).
    pub page_size: Option<u32>,
    /// Fields to return besides `name`, e.g. `name,size,etag,timeCreated`.
    pub fields: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListPage {
    #[serde(default)]
    objects: Vec<ObjectSummary>,
    #[serde(default)]
    next_start_with: Option<String>,
}

/// An Object Storage client bound to one endpoint.
#[derive(Debug, Clone)]
pub struct ObjectStorage {
    transport: Transport,
    origin: String,
}

impl ObjectStorage {
    /// A client for the endpoint `origin` (`https://objectstorage.{region}.{domain}`, or the
    /// emulator's `http://127.0.0.1:PORT`).
    pub fn new(transport: Transport, origin: impl Into<String>) -> ObjectStorage {
        ObjectStorage {
            transport,
            origin: origin.into().trim_end_matches('/').to_string(),
        }
    }

    fn call(&self, method: &'static str, path: String, deadline: Instant) -> Call<'_> {
        Call::new(SERVICE, method, &self.origin, path, deadline)
    }

    /// The tenancy's namespace (`GET /n`).
    pub fn namespace(&self, deadline: Instant) -> Result<String> {
        self.transport
            .send(self.call("GET", "/n".into(), deadline))?
            .json(JSON_LIMIT)
    }

    /// The bucket's settings as the service reports them (`GetBucket`), e.g.
    /// `objectEventsEnabled`.
    pub fn bucket_details(&self, bucket: &Bucket, deadline: Instant) -> Result<serde_json::Value> {
        self.transport
            .send(self.call("GET", bucket_url(bucket)?, deadline))?
            .json(JSON_LIMIT)
    }

    /// Uploads `length` bytes from `body` as `name`; returns the new etag.
    #[allow(clippy::too_many_arguments)] // each is a distinct PutObject input; a struct would only rename them
    pub fn put(
        &self,
        bucket: &Bucket,
        name: &str,
        body: &mut dyn ReadSeek,
        length: u64,
        content_type: &str,
        metadata: &[(&str, &str)],
        condition: Condition<'_>,
        deadline: Instant,
    ) -> Result<String> {
        let mut call = self.call("PUT", object_url(bucket, name)?, deadline);
        for (key, value) in metadata {
            let header = metadata_header(key)?;
            call.headers.push((header, value.to_string()));
        }
        push_condition(&mut call, condition);
        call.payload = Payload::Unsigned {
            reader: body,
            length,
            content_type,
        };
        let reply = self.transport.send(call)?;
        Ok(reply.header("etag").unwrap_or("").to_string())
    }

    /// The object's headers, or `None` when it does not exist.
    pub fn head(
        &self,
        bucket: &Bucket,
        name: &str,
        deadline: Instant,
    ) -> Result<Option<ObjectInfo>> {
        match self
            .transport
            .send(self.call("HEAD", object_url(bucket, name)?, deadline))
        {
            Ok(reply) => Ok(Some(object_info(&reply))),
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The object's headers and its first `bytes` bytes (all of it when shorter), in one
    /// request where HEAD and a ranged GET would take two; `info.content_length` is the whole
    /// object's size. `None` when the object does not exist (`404 ObjectNotFound`); a 404 about
    /// the bucket (missing, or not readable by the caller) is an error.
    pub fn get_start(
        &self,
        bucket: &Bucket,
        name: &str,
        bytes: u64,
        deadline: Instant,
    ) -> Result<Option<Download>> {
        let mut call = self.call("GET", object_url(bucket, name)?, deadline);
        call.headers
            .push(("range".into(), format!("bytes=0-{}", bytes.max(1) - 1)));
        let reply = match self.transport.send(call) {
            Ok(reply) => reply,
            Err(e) if not_found(&e) => return Ok(None),
            // No first byte to return: the object is empty. Its headers come from a HEAD.
            Err(Error::Service(e)) if e.status == 416 => {
                return Ok(self.head(bucket, name, deadline)?.map(|info| Download {
                    info,
                    content_range: None,
                    body: Box::new(std::io::empty()),
                }))
            }
            Err(e) => return Err(e),
        };
        let mut info = object_info(&reply);
        let content_range = reply.header("content-range").map(str::to_string);
        if let Some(total) = content_range.as_deref().and_then(range_total) {
            info.content_length = total;
        }
        Ok(Some(Download {
            info,
            content_range,
            body: Box::new(reply.into_reader(bytes)),
        }))
    }

    /// Starts a download of at most `limit` bytes; `range` is `(first, last)` inclusive.
    pub fn get(
        &self,
        bucket: &Bucket,
        name: &str,
        range: Option<(u64, Option<u64>)>,
        limit: u64,
        deadline: Instant,
    ) -> Result<Download> {
        let mut call = self.call("GET", object_url(bucket, name)?, deadline);
        if let Some((first, last)) = range {
            let last = last.map(|l| l.to_string()).unwrap_or_default();
            call.headers
                .push(("range".into(), format!("bytes={first}-{last}")));
        }
        let reply = self.transport.send(call)?;
        let info = object_info(&reply);
        let content_range = reply.header("content-range").map(str::to_string);
        Ok(Download {
            info,
            content_range,
            body: Box::new(reply.into_reader(limit)),
        })
    }

    /// Reads a whole object of at most `limit` bytes into memory.
    pub fn get_bytes(
        &self,
        bucket: &Bucket,
        name: &str,
        limit: u64,
        deadline: Instant,
    ) -> Result<(ObjectInfo, Vec<u8>)> {
        let reply = self
            .transport
            .send(self.call("GET", object_url(bucket, name)?, deadline))?;
        let info = object_info(&reply);
        Ok((info, reply.bytes(limit)?))
    }

    /// Deletes `name`. Returns `false` when it was already gone.
    pub fn delete(
        &self,
        bucket: &Bucket,
        name: &str,
        condition: Condition<'_>,
        deadline: Instant,
    ) -> Result<bool> {
        let mut call = self.call("DELETE", object_url(bucket, name)?, deadline);
        push_condition(&mut call, condition);
        match self.transport.send(call) {
            Ok(_) => Ok(true),
            Err(e) if not_found(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Lists objects, following `nextStartWith` page after page; every page shares `deadline`.
    pub fn list<'a>(
        &'a self,
        bucket: &'a Bucket,
        options: ListOptions,
        deadline: Instant,
    ) -> impl Iterator<Item = Result<ObjectSummary>> + 'a {
        ListIter {
            client: self,
            bucket,
            options,
            deadline,
            page: Vec::new().into_iter(),
            next: Some(None),
        }
    }

    fn list_page(
        &self,
        bucket: &Bucket,
        options: &ListOptions,
        start: Option<&str>,
        deadline: Instant,
    ) -> Result<ListPage> {
        let page_size = options
            .page_size
            .unwrap_or(MAX_PAGE)
            .clamp(1, MAX_PAGE)
            .to_string();
        let mut pairs: Vec<(&str, &str)> = Vec::new();
        if let Some(prefix) = &options.prefix {
            pairs.push(("prefix", prefix));
        }
        if let Some(start) = start.or(options.start.as_deref()) {
            pairs.push(("start", start));
        }
        pairs.push(("limit", &page_size));
        if let Some(fields) = &options.fields {
            pairs.push(("fields", fields));
        }
        let path = format!("{}/o{}", bucket_url(bucket)?, encode::query(&pairs));
        self.transport
            .send(self.call("GET", path, deadline))?
            .json(JSON_LIMIT)
    }
}

struct ListIter<'a> {
    client: &'a ObjectStorage,
    bucket: &'a Bucket,
    options: ListOptions,
    deadline: Instant,
    page: std::vec::IntoIter<ObjectSummary>,
    /// `Some(start)` while another page is due; `Some(None)` before the first.
    next: Option<Option<String>>,
}

impl Iterator for ListIter<'_> {
    type Item = Result<ObjectSummary>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.page.next() {
                return Some(Ok(item));
            }
            let start = self.next.take()?;
            match self
                .client
                .list_page(self.bucket, &self.options, start.as_deref(), self.deadline)
            {
                Ok(page) => {
                    self.next = page.next_start_with.map(Some);
                    self.page = page.objects.into_iter();
                }
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

fn bucket_url(bucket: &Bucket) -> Result<String> {
    if bucket.namespace.is_empty() || bucket.name.is_empty() {
        return Err(Error::Config(
            "object storage: empty namespace or bucket name".into(),
        ));
    }
    Ok(format!(
        "/n/{}/b/{}",
        encode::component(&bucket.namespace),
        encode::component(&bucket.name)
    ))
}

fn object_url(bucket: &Bucket, name: &str) -> Result<String> {
    check_object_name(name)?;
    Ok(format!(
        "{}/o/{}",
        bucket_url(bucket)?,
        encode::object_path(name)
    ))
}

/// Object names: 1–1024 bytes of UTF-8 without LF, CR or NUL.
pub fn check_object_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > 1024 || name.contains(['\n', '\r', '\0']) {
        return Err(Error::bad_request(
            400,
            format!(
                "invalid object name ({} bytes; no LF, CR or NUL allowed)",
                name.len()
            ),
        ));
    }
    Ok(())
}

fn metadata_header(key: &str) -> Result<String> {
    let valid = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !valid {
        return Err(Error::bad_request(
            400,
            format!("invalid metadata key {key:?}"),
        ));
    }
    Ok(format!("opc-meta-{}", key.to_ascii_lowercase()))
}

fn push_condition(call: &mut Call<'_>, condition: Condition<'_>) {
    match condition {
        Condition::None => {}
        Condition::Absent => call.headers.push(("if-none-match".into(), "*".into())),
        Condition::Etag(etag) => call.headers.push(("if-match".into(), etag.to_string())),
    }
}

fn object_info(reply: &Reply) -> ObjectInfo {
    let text = |name: &str| reply.header(name).unwrap_or("").to_string();
    ObjectInfo {
        etag: text("etag"),
        content_length: reply
            .header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        content_type: text("content-type"),
        last_modified: text("last-modified"),
        metadata: reply_metadata(reply),
    }
}

fn reply_metadata(reply: &Reply) -> Vec<(String, String)> {
    reply
        .headers()
        .filter_map(|(name, value)| {
            name.strip_prefix("opc-meta-")
                .map(|key| (key.to_string(), value.to_string()))
        })
        .collect()
}

/// The whole size from a `content-range` such as `bytes 0-99/1234`.
fn range_total(content_range: &str) -> Option<u64> {
    content_range
        .strip_prefix("bytes ")?
        .split_once('/')?
        .1
        .trim()
        .parse()
        .ok()
}

/// A 404 about the object itself (`ObjectNotFound`, or no code: a HEAD has no body). Not
/// `BucketNotFound` nor `NotAuthorizedOrNotFound`: OCI answers those both for a bucket that does
/// not exist and for a caller the policy does not let act on it, so they stay errors (a wrong
/// bucket or a missing policy statement must not look like a deleted object).
fn not_found(e: &Error) -> bool {
    matches!(e, Error::Service(s) if s.status == 404
        && !matches!(s.code.as_str(), "BucketNotFound" | "NotAuthorizedOrNotFound"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_object_level_404_means_the_object_is_missing() {
        let answer = |code: &str| {
            Error::Service(crate::ServiceError {
                service: "objectstorage",
                status: 404,
                code: code.into(),
                message: String::new(),
                request_id: String::new(),
                retry_after: None,
            })
        };
        assert!(not_found(&answer("ObjectNotFound")));
        assert!(not_found(&answer("")), "a HEAD's 404 has no body");
        assert!(!not_found(&answer("BucketNotFound")));
        assert!(!not_found(&answer("NotAuthorizedOrNotFound")));
    }

    #[test]
    fn whole_size_comes_from_the_content_range() {
        assert_eq!(range_total("bytes 0-99/1234"), Some(1234));
        assert_eq!(range_total("bytes */10"), Some(10));
        assert_eq!(range_total("bytes 0-99/*"), None);
        assert_eq!(range_total("items 0-1/2"), None);
    }

    #[test]
    fn urls_encode_names_once() {
        let bucket = Bucket {
            namespace: "ns".into(),
            name: "images".into(),
        };
        assert_eq!(
            object_url(&bucket, "uploads/my photo #1.jpg").unwrap(),
            "/n/ns/b/images/o/uploads/my%20photo%20%231.jpg"
        );
        assert!(object_url(&bucket, "").is_err());
        assert!(object_url(&bucket, "a\nb").is_err());
        assert!(object_url(&bucket, &"x".repeat(1025)).is_err());
    }

    #[test]
    fn metadata_keys_are_checked() {
        assert_eq!(
            metadata_header("Original-Name").unwrap(),
            "opc-meta-original-name"
        );
        assert!(metadata_header("bad key").is_err());
        assert!(metadata_header("").is_err());
    }
}
