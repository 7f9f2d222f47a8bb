//! The app's view of its images: listing pages joined with their documents, delete and
//! re-analysis. Pages and the JSON API both sit on this.
//!
//! An image id is the generated file name; the object is `uploads/{id}` (the naming scheme is
//! in `document.rs`). Only names of that shape are ever looked up, so no client text reaches a
//! storage path. An unfiltered page costs one object listing call and one SODA query (`$id`
//! over the page's document keys), whatever its size. A filtered page (search term, status) is
//! one SODA query over the whole collection, newest first, paged by offset: the term (`q`, or
//! the older `label`) is matched against each document's `terms` array, which holds its labels
//! and the whole words of its text (`document::search_form`: case and accents folded). Images
//! waiting out a browser delete's undo window (`undo_delete/`) are left out of both (of a
//! search, while this instance has
//! deletes waiting: see `search`). Not here: HTML or JSON shaping.

use std::collections::HashMap;
use std::time::SystemTime;

use serde_json::json;

use super::form::Pairs;
use super::undo_delete::marker::{self, DeleteMarker};
use super::App;
use crate::document::{
    self, id_of, object_name, search_form, AnalysisDocument, Status, UPLOAD_PREFIX,
};
use crate::error::{Error, Result};
use crate::event::{EventKind, ObjectEvent};
use crate::oci::functions::InvokeMode;
use crate::oci::object_storage::{Condition, ListOptions, ObjectInfo};
use crate::soda::document_key;

/// The document key of an id.
pub(crate) fn key_of(app: &App, id: &str) -> String {
    document_key(&app.bucket.namespace, &app.bucket.name, &object_name(id))
}

/// One image on a page.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub id: String,
    pub size: Option<u64>,
    pub created: Option<String>,
    pub doc: Option<AnalysisDocument>,
}

impl Entry {
    /// The status shown: the document's, or `pending` when there is none yet.
    pub(crate) fn status(&self) -> Status {
        self.doc.as_ref().map_or(Status::Pending, |d| d.status)
    }

    /// The name a person gave the file, else the id.
    pub(crate) fn display_name(&self) -> &str {
        self.doc
            .as_ref()
            .and_then(|d| d.original_name.as_deref())
            .unwrap_or(&self.id)
    }
}

/// A page of images.
#[derive(Debug, Clone, Default)]
pub(crate) struct Page {
    pub entries: Vec<Entry>,
    /// The `start` of the next page.
    pub next: Option<String>,
    /// Set when the documents could not be read (statuses then show as unknown).
    pub db_error: bool,
}

/// What a page is narrowed to; empty means every image, listed from storage.
#[derive(Debug, Clone, Default)]
pub(crate) struct Filter {
    /// What to search for (`q`, else `label`): a label, an ontology parent or a word of the
    /// image's text, any case and accents; several words are matched as one label ("hot dog").
    pub label: Option<String>,
    pub status: Option<Status>,
    /// Newest taken first (EXIF date) instead of newest uploaded: only photos with a date.
    pub by_taken: bool,
}

impl Filter {
    /// Reads `q` (or `label`) and `status` from a query (`400` for an unknown status).
    pub(crate) fn from_query(query: &Pairs) -> Result<Filter> {
        let status = match query.get("status") {
            None | Some("") => None,
            Some(s) => Some(Status::parse(s).ok_or_else(|| {
                Error::bad_request(
                    400,
                    "status must be pending, analyzing, waiting, done or failed",
                )
            })?),
        };
        let term = |name: &str| {
            query
                .get(name)
                .map(|l| l.trim().chars().take(100).collect::<String>())
                .filter(|l| !l.is_empty())
        };
        let label = term("q").or_else(|| term("label"));
        let by_taken = match query.get("order") {
            None | Some("") | Some("uploaded") => false,
            Some("taken") => true,
            Some(_) => return Err(Error::bad_request(400, "order must be uploaded or taken")),
        };
        Ok(Filter {
            label,
            status,
            by_taken,
        })
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.label.is_none() && self.status.is_none() && !self.by_taken
    }

    /// The QBE for this filter over `bucket`, newest first (ties by name, so pages are stable).
    pub(crate) fn qbe(&self, bucket: &str) -> serde_json::Value {
        let mut query = serde_json::Map::new();
        query.insert("bucket_name".into(), json!(bucket));
        if let Some(label) = &self.label {
            // `terms` is an array: QBE equality matches when any element is equal. Labels are
            // stored lower-cased (documents before text detection have only that form) and
            // folded; words folded. One condition asks for either form.
            let (lower, folded) = (label.to_lowercase(), search_form(label));
            let wanted = if lower == folded {
                json!(folded)
            } else {
                json!({"$in": [lower, folded]})
            };
            query.insert("terms".into(), wanted);
        }
        if let Some(status) = self.status {
            query.insert("status".into(), json!(status.name()));
        }
        // Sign = direction, magnitude = precedence (SODA's short form, which every ORDS takes).
        if self.by_taken {
            // The camera's clock sorts as text; photos without a date have no place in this
            // order (SQL would put them first, as NULLs, in a descending sort).
            query.insert("taken_local".into(), json!({"$exists": true}));
            return json!({"$query": query, "$orderby": {"taken_local": -1, "image_name": 2}});
        }
        json!({"$query": query, "$orderby": {"uploaded_at": -1, "image_name": 2}})
    }
}

/// The page of images starting at `start` (a previous page's `next`: an object name, or for a
/// filtered page an offset).
pub(crate) fn page(app: &App, start: Option<&str>, filter: &Filter) -> Result<Page> {
    if !filter.is_empty() {
        return search(app, start, filter);
    }
    let deadline = app.deadline();
    let size = app.settings.page_size.clamp(1, 999);
    let start = start.filter(|s| s.starts_with(UPLOAD_PREFIX) && s.len() <= 1024);
    let options = ListOptions {
        prefix: Some(UPLOAD_PREFIX.into()),
        start: start.map(str::to_string),
        // One more than shown: its name is the next page's start, and one call returns both.
        page_size: Some(size as u32 + 1),
        fields: Some("name,size,timeCreated".into()),
    };
    let mut listed = Vec::with_capacity(size + 1);
    for item in app
        .storage
        .list(&app.bucket, options, deadline)
        .take(size + 1)
    {
        listed.push(item?);
    }
    let next = if listed.len() > size {
        listed.pop().map(|o| o.name)
    } else {
        None
    };
    let mut entries: Vec<Entry> = listed
        .into_iter()
        .filter_map(|o| {
            Some(Entry {
                id: id_of(&o.name)?.to_string(),
                size: o.size,
                created: o.time_created,
                doc: None,
            })
        })
        .collect();
    let ids: Vec<&str> = entries.iter().map(|e| e.id.as_str()).collect();
    let mut db_error = false;
    match lookup(app, &ids, true) {
        Ok((mut docs, marked)) => {
            for e in &mut entries {
                e.doc = docs.remove(&e.id);
            }
            hide_marked(&mut entries, &marked);
        }
        Err(e) => {
            log::warn!(target: "webapp", "gallery: documents unavailable: {e}");
            db_error = true;
        }
    }
    Ok(Page {
        entries,
        next,
        db_error,
    })
}

/// Deepest offset a filtered page may start at (a bound on the database's work per request).
const MAX_OFFSET: u64 = 1_000_000;

/// A filtered page: one SODA query, `start` being the offset.
fn search(app: &App, start: Option<&str>, filter: &Filter) -> Result<Page> {
    let size = app.settings.page_size.clamp(1, 999);
    let offset = start
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(0)
        .min(MAX_OFFSET);
    let (docs, more) = app.soda.query_page(
        &filter.qbe(&app.bucket.name),
        size as u32,
        offset,
        app.deadline(),
    )?;
    let count = docs.len() as u64;
    let mut entries: Vec<Entry> = docs
        .into_iter()
        .filter_map(|d| match AnalysisDocument::from_json(d.value) {
            Ok(doc) => Some(Entry {
                id: id_of(&doc.image_name)?.to_string(),
                size: Some(doc.size),
                created: Some(doc.uploaded_at.clone()),
                doc: Some(doc),
            }),
            Err(e) => {
                log::warn!(target: "webapp", "document {} unreadable: {e}", d.key);
                None
            }
        })
        .collect();
    // A search stays one query: markers are asked for only while this instance has deletes
    // waiting (another instance's waiting deletes can show here during their window; the
    // unfiltered gallery, which reads markers with the documents, never shows them).
    if !app.deletes.is_empty() {
        let ids: Vec<&str> = entries.iter().map(|e| e.id.as_str()).collect();
        match marker::markers_of(app, &ids) {
            Ok(marked) => hide_marked(&mut entries, &marked),
            Err(e) => log::warn!(target: "webapp", "search: deletes waiting unknown: {e}"),
        }
    }
    Ok(Page {
        entries,
        next: (more && count > 0).then(|| (offset + count).to_string()),
        db_error: false,
    })
}

/// The documents of these ids, by id, in one query.
pub(crate) fn documents(app: &App, ids: &[&str]) -> Result<HashMap<String, AnalysisDocument>> {
    Ok(lookup(app, ids, false)?.0)
}

/// The documents of these ids and, with `markers`, their delete markers (`undo_delete/`), in
/// one `$id` query.
fn lookup(
    app: &App,
    ids: &[&str],
    markers: bool,
) -> Result<(
    HashMap<String, AnalysisDocument>,
    HashMap<String, DeleteMarker>,
)> {
    let mut out = HashMap::new();
    let mut marked = HashMap::new();
    if ids.is_empty() {
        return Ok((out, marked));
    }
    let by_key: HashMap<String, &str> = ids.iter().map(|id| (key_of(app, id), *id)).collect();
    let mut keys: Vec<String> = by_key.keys().cloned().collect();
    if markers {
        keys.extend(ids.iter().map(|id| marker::marker_key(app, id)));
    }
    for doc in app.soda.query(&json!({ "$id": keys }), app.deadline())? {
        let doc = doc?;
        let Some(id) = by_key.get(&doc.key) else {
            if let Some(m) = marker::as_marker(app, &doc.value) {
                marked.insert(m.id.clone(), m);
            }
            continue;
        };
        match AnalysisDocument::from_json(doc.value) {
            Ok(d) => {
                out.insert(id.to_string(), d);
            }
            Err(e) => log::warn!(target: "webapp", "document {} unreadable: {e}", doc.key),
        }
    }
    Ok((out, marked))
}

/// Leaves out the entries with a delete marker: waiting out their undo window, or past it and
/// waiting for a sweeper (`undo_delete/`).
fn hide_marked(entries: &mut Vec<Entry>, marked: &HashMap<String, DeleteMarker>) {
    entries.retain(|e| !marked.contains_key(&e.id));
}

/// One image: its document and, when asked or when there is no document, its object's
/// headers. `None` when neither exists.
pub(crate) struct ImageRecord {
    pub doc: Option<AnalysisDocument>,
    /// The raw stored JSON, as the function wrote it.
    pub raw: Option<serde_json::Value>,
    pub info: Option<ObjectInfo>,
    pub db_error: bool,
}

pub(crate) fn find(app: &App, id: &str) -> Result<Option<ImageRecord>> {
    let deadline = app.deadline();
    let (doc, raw, db_error) = match app.soda.get(&key_of(app, id), deadline) {
        Ok(Some(d)) => (
            AnalysisDocument::from_json(d.value.clone()).ok(),
            Some(d.value),
            false,
        ),
        Ok(None) => (None, None, false),
        Err(e) => {
            log::warn!(target: "webapp", "document for {id} unavailable: {e}");
            (None, None, true)
        }
    };
    let info = app.storage.head(&app.bucket, &object_name(id), deadline)?;
    if info.is_none() && doc.is_none() {
        return Ok(None);
    }
    Ok(Some(ImageRecord {
        doc,
        raw,
        info,
        db_error,
    }))
}

/// What deleting one image did.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Deleted {
    pub id: String,
    /// The object was there and is gone (`false`: it was already gone).
    pub object: Option<bool>,
    /// The document was there and is gone.
    pub document: Option<bool>,
    /// What failed, when something did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Deletes the object, its thumbnail and preview, then the document. When the object cannot be
/// deleted the rest is kept, so the image does not turn into an orphan that the reconciler
/// would re-analyse.
pub(crate) fn delete(app: &App, id: &str) -> Deleted {
    let deadline = app.deadline();
    let mut out = Deleted {
        id: id.to_string(),
        object: None,
        document: None,
        error: None,
    };
    match app
        .storage
        .delete(&app.bucket, &object_name(id), Condition::None, deadline)
    {
        Ok(existed) => out.object = Some(existed),
        Err(e) => {
            log::warn!(target: "webapp", "delete {id}: object: {e}");
            out.error = Some("the image could not be deleted from storage; try again".into());
            return out;
        }
    }
    for name in [document::thumb_name(id), document::preview_name(id)] {
        if let Err(e) = app
            .storage
            .delete(&app.bucket, &name, Condition::None, deadline)
        {
            log::warn!(target: "webapp", "delete {id}: {name} left for the reconciler: {e}");
        }
    }
    match app.soda.delete(&key_of(app, id), deadline) {
        Ok(existed) => out.document = Some(existed),
        Err(e) => {
            log::warn!(target: "webapp", "delete {id}: document: {e}");
            out.error = Some(
                "the image is deleted but its analysis record could not be removed; \
                 the reconciler will remove it"
                    .into(),
            );
        }
    }
    out
}

/// Says clearly that re-analysis needs configuration.
pub(crate) fn not_configured() -> Error {
    Error::bad_request(
        409,
        "re-analysis is not configured on this server: set FUNCTION_ID and \
         FUNCTION_INVOKE_ENDPOINT",
    )
}

/// Marks the image `pending` and asks the function to analyse it again (detached). When the
/// call fails the document is put back as it was.
pub(crate) fn reanalyze(app: &App, id: &str) -> Result<()> {
    let invoker = app.invoker.as_ref().ok_or_else(not_configured)?;
    let deadline = app.deadline();
    let name = object_name(id);
    let info = app
        .storage
        .head(&app.bucket, &name, deadline)?
        .ok_or_else(|| Error::NotFound(format!("image {id}")))?;
    let key = key_of(app, id);
    let before = app.soda.get(&key, deadline)?;
    let mut doc = match &before {
        Some(d) => AnalysisDocument::from_json(d.value.clone())?,
        None => AnalysisDocument::from_object(&app.bucket, &name, &info, SystemTime::now()),
    };
    doc.status = Status::Pending;
    doc.error = None;
    doc.next_attempt = None;
    doc.etag = info.etag.clone();
    doc.updated_at = document::now();
    app.soda.put(&key, &doc.to_json(), deadline)?;
    // The update event OCI would send for the object as it is now.
    let event = ObjectEvent::new(
        EventKind::Update,
        &app.bucket.namespace,
        &app.bucket.name,
        &name,
        Some(&info.etag),
    );
    let body = serde_json::to_vec(&event.to_json("ocivision-webapp", &invoker.compartment_id))?;
    if let Err(e) = invoker.client.invoke(
        &invoker.function_id,
        &body,
        InvokeMode::Detached,
        64 * 1024,
        deadline,
    ) {
        let restored = match &before {
            Some(d) => app.soda.put(&key, &d.value, deadline).map(|_| ()),
            None => app.soda.delete(&key, deadline).map(|_| ()),
        };
        if let Err(r) = restored {
            log::warn!(target: "webapp", "re-analyse {id}: could not restore the document: {r}");
        }
        log::warn!(target: "webapp", "re-analyse {id}: invoke failed: {e}");
        return Err(Error::bad_request(
            502,
            "the analysis function could not be called; try again later",
        ));
    }
    log::info!(target: "webapp", "re-analysis of {id} requested (etag {})", info.etag);
    Ok(())
}

/// Compares model versions like `1.10.2` numerically where the pieces are numbers.
pub(crate) fn version_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let mut x = a.split(['.', '-', '_']);
    let mut y = b.split(['.', '-', '_']);
    loop {
        match (x.next(), y.next()) {
            (None, None) => return std::cmp::Ordering::Equal,
            (None, Some(_)) => return std::cmp::Ordering::Less,
            (Some(_), None) => return std::cmp::Ordering::Greater,
            (Some(p), Some(q)) => {
                let o = match (p.parse::<u64>(), q.parse::<u64>()) {
                    (Ok(m), Ok(n)) => m.cmp(&n),
                    _ => p.cmp(q),
                };
                if o.is_ne() {
                    return o;
                }
            }
        }
    }
}

/// What a bulk re-analysis did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub(crate) struct Outdated {
    /// The model version counted as current.
    pub current: Option<String>,
    pub requested: Vec<String>,
    pub failed: Vec<String>,
}

/// Re-analyses every `done` image whose detection model is older than `current` (default: the
/// newest version found). At most 500 per call, so one request stays bounded.
pub(crate) fn reanalyze_outdated(app: &App, current: Option<&str>) -> Result<Outdated> {
    if app.invoker.is_none() {
        return Err(not_configured());
    }
    let mut done = Vec::new();
    for doc in app
        .soda
        .query(&json!({"status": Status::Done.name()}), app.deadline())?
    {
        if let Ok(d) = AnalysisDocument::from_json(doc?.value) {
            done.push(d);
        }
    }
    let current = current.map(str::to_string).or_else(|| {
        done.iter()
            .filter_map(|d| d.model_versions.object_detection.clone())
            .max_by(|a, b| version_cmp(a, b))
    });
    let mut out = Outdated {
        current: current.clone(),
        ..Outdated::default()
    };
    let Some(current) = current else {
        return Ok(out);
    };
    for d in done {
        let older = d
            .model_versions
            .object_detection
            .as_deref()
            .is_none_or(|v| version_cmp(v, &current).is_lt());
        let Some(id) = id_of(&d.image_name).filter(|_| older && d.bucket_name == app.bucket.name)
        else {
            continue;
        };
        if out.requested.len() + out.failed.len() >= 500 {
            break;
        }
        match reanalyze(app, id) {
            Ok(()) => out.requested.push(id.to_string()),
            Err(_) => out.failed.push(id.to_string()),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_numerically() {
        use std::cmp::Ordering::*;
        assert_eq!(version_cmp("1.10", "1.9"), Greater);
        assert_eq!(version_cmp("1.3", "1.3"), Equal);
        assert_eq!(version_cmp("1.3", "1.3.1"), Less);
        assert_eq!(version_cmp("local-nanodet-2", "local-nanodet-10"), Less);
    }

    #[test]
    fn a_search_is_one_terms_condition_in_both_forms() {
        let query = |pairs: &str| Filter::from_query(&Pairs::query(Some(pairs)).unwrap()).unwrap();
        let qbe = query("q=%20Bakery%20").qbe("images");
        assert_eq!(qbe["$query"]["terms"], "bakery");
        assert_eq!(qbe["$query"]["bucket_name"], "images");
        assert_eq!(qbe["$orderby"], json!({"uploaded_at": -1, "image_name": 2}));
        let qbe = query("q=Caf%C3%A9").qbe("images");
        assert_eq!(qbe["$query"]["terms"], json!({"$in": ["café", "cafe"]}));
        let qbe = query("label=Dog&status=done").qbe("images");
        assert_eq!(qbe["$query"]["terms"], "dog", "label= still works");
        assert_eq!(qbe["$query"]["status"], "done");
        assert_eq!(
            query("q=bread&label=dog").label.as_deref(),
            Some("bread"),
            "q wins"
        );
        assert!(query("q=&label=").is_empty());
    }
}
