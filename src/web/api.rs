//! The JSON API for scripts and curl (documented with runnable examples in docs/API.md), the
//! gallery's polling endpoint, and the health checks.
//!
//! Answers are `application/json` built with `serde_json`; errors are
//! `{"error": Code, "message": text}` (rendered in `routes.rs`, codes from `error.rs`). Not
//! here: uploads (`upload.rs`).

use std::time::SystemTime;

use serde_json::{json, Value};

use super::catalog::{self, Entry, Filter};
use super::form::Pairs;
use super::view::{alt_text, badge};
use super::App;
use crate::document::{self, parse_id, AnalysisDocument, Status};
use crate::error::{Error, Result};
use crate::http::{Request, Response};

/// Most ids one status poll may ask about.
const MAX_POLL_IDS: usize = 200;

fn summary(entry: &Entry) -> Value {
    let doc = entry.doc.as_ref();
    json!({
        "id": entry.id,
        "name": entry.display_name(),
        "status": entry.status().name(),
        "objects": doc.map_or(0, |d| d.objects.len()),
        "labels": doc.map(|d| d.label_counts()).unwrap_or_default().into_iter()
            .map(|(name, count)| json!({"name": name, "count": count}))
            .collect::<Vec<_>>(),
        "error": doc.and_then(|d| d.error.as_ref()).map(|e| e.message.clone()),
        "size": entry.size.or(doc.map(|d| d.size)),
        "uploaded_at": doc.map(|d| d.uploaded_at.clone()).or_else(|| entry.created.clone()),
        "taken_at": doc.and_then(|d| d.taken_at.clone()),
        "taken_local": doc.and_then(|d| d.taken_local.clone()),
        "width": doc.and_then(|d| d.width),
        "height": doc.and_then(|d| d.height),
        "url": format!("/images/{}", entry.id),
        "raw_url": format!("/images/{}/raw", entry.id),
        "thumb_url": format!("/images/{}/thumb", entry.id),
        "preview_url": format!("/images/{}/preview", entry.id),
    })
}

/// `GET /api/images?q=&status=&start=` (`label=` as `q=`): one page, newest first; with a
/// filter, one search over the whole collection (a label or a word of the image's text).
pub(crate) fn list(app: &App, req: &Request) -> Result<Response> {
    let query = Pairs::query(req.query())?;
    let filter = Filter::from_query(&query)?;
    let page = catalog::page(app, query.get("start"), &filter)?;
    Ok(Response::json(
        200,
        &json!({
            "items": page.entries.iter().map(summary).collect::<Vec<_>>(),
            "next": page.next,
            "documents_available": !page.db_error,
        }),
    ))
}

/// `GET /api/images/{id}`: the stored document (or a pending stand-in) and links.
pub(crate) fn get(app: &App, id: &str) -> Result<Response> {
    let found = catalog::find(app, id)?.ok_or_else(|| Error::NotFound(format!("image {id}")))?;
    let document = match (&found.raw, &found.info) {
        (Some(raw), _) => raw.clone(),
        (None, Some(info)) => {
            let name = document::object_name(id);
            AnalysisDocument::from_object(&app.bucket, &name, info, SystemTime::now()).to_json()
        }
        (None, None) => Value::Null,
    };
    Ok(Response::json(
        200,
        &json!({
            "id": id,
            "object_exists": found.info.is_some(),
            "content_type": found.info.as_ref().map(|i| i.content_type.clone()),
            "document": document,
            "url": format!("/images/{id}"),
            "raw_url": format!("/images/{id}/raw"),
        }),
    ))
}

/// `DELETE /api/images/{id}`.
pub(crate) fn delete(app: &App, id: &str) -> Result<Response> {
    let result = catalog::delete(app, id);
    let status = match (&result.error, result.object, result.document) {
        (Some(_), _, _) => 502,
        (None, Some(false), Some(false)) => 404,
        _ => 200,
    };
    Ok(Response::json(status, &json!(result)))
}

/// `POST /api/images/delete` with `{"ids": [...]}`: each reported on its own.
pub(crate) fn delete_many(app: &App, req: &Request) -> Result<Response> {
    let body: Value = serde_json::from_slice(&req.read_body(256 * 1024)?)
        .map_err(|_| Error::bad_request(400, "send {\"ids\": [\"…\"]} as JSON"))?;
    let ids: Vec<&str> = body
        .get("ids")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::bad_request(400, "send {\"ids\": [\"…\"]} as JSON"))?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    if ids.is_empty() || ids.len() > 500 {
        return Err(Error::bad_request(400, "send between 1 and 500 ids"));
    }
    let results: Vec<Value> = ids
        .iter()
        .map(|id| match parse_id(id) {
            Some(id) => serde_json::to_value(catalog::delete(app, id)).unwrap_or(Value::Null),
            None => json!({"id": id, "error": "not an image id"}),
        })
        .collect();
    let all_ok = results.iter().all(|r| r.get("error").is_none());
    Ok(Response::json(
        if all_ok { 200 } else { 207 },
        &json!({ "results": results }),
    ))
}

/// `POST /api/images/{id}/reanalyze`.
pub(crate) fn reanalyze(app: &App, id: &str) -> Result<Response> {
    catalog::reanalyze(app, id)?;
    Ok(Response::json(
        202,
        &json!({"id": id, "status": Status::Pending.name()}),
    ))
}

/// `POST /api/reanalyze?model=VERSION`: every image analysed by an older model.
pub(crate) fn reanalyze_outdated(app: &App, req: &Request) -> Result<Response> {
    let query = Pairs::query(req.query())?;
    let out = catalog::reanalyze_outdated(app, query.get("model"))?;
    Ok(Response::json(202, &json!(out)))
}

/// `GET /api/status?ids=a,b`: the small answer the gallery polls, with an `ETag`.
pub(crate) fn status(app: &App, req: &Request) -> Result<Response> {
    let query = Pairs::query(req.query())?;
    let ids: Vec<&str> = query
        .get("ids")
        .unwrap_or("")
        .split(',')
        .filter_map(parse_id)
        .take(MAX_POLL_IDS)
        .collect();
    let docs = catalog::documents(app, &ids)?;
    let mut items = serde_json::Map::new();
    for id in &ids {
        let doc = docs.get(*id);
        let status = doc.map_or(Status::Pending, |d| d.status);
        items.insert(
            id.to_string(),
            json!({
                "status": status.name(),
                "badge": badge(status, doc),
                "error": doc.and_then(|d| d.error.as_ref()).map(|e| e.message.clone()),
                "alt": alt_text(doc.and_then(|d| d.original_name.as_deref()).unwrap_or(id), doc),
            }),
        );
    }
    let body = json!({ "items": items }).to_string().into_bytes();
    let digest = ring::digest::digest(&ring::digest::SHA256, &body);
    let etag: String = digest.as_ref()[..12]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let etag = format!("\"{etag}\"");
    let matches = req
        .header("if-none-match")
        // Weak comparison (RFC 9110 §13.1.2): a gzipped answer carried the tag as `W/"…"`.
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim().trim_start_matches("W/") == etag)
        });
    let resp = if matches {
        Response::new(304)
    } else {
        Response::new(200)
            .with_header("Content-Type", "application/json")
            .with_body(body)
    };
    Ok(resp
        .with_header("ETag", etag)
        .with_header("Cache-Control", "private, no-cache"))
}

/// `GET /readyz`: storage and database both answer; a failing reconciler lease renewal is
/// shown (`reconciler`) while it lasts.
pub(crate) fn ready(app: &App) -> Result<Response> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let storage = app
        .storage
        .list(
            &app.bucket,
            crate::oci::object_storage::ListOptions {
                prefix: Some(document::UPLOAD_PREFIX.into()),
                page_size: Some(1),
                ..Default::default()
            },
            deadline,
        )
        .next()
        .transpose()
        .is_ok();
    let database = app.soda.get("readyz-probe", deadline).is_ok();
    let ok = storage && database;
    let word = |b: bool| if b { "ok" } else { "unavailable" };
    let mut body = json!({"storage": word(storage), "database": word(database)});
    // Shown while it lasts, not counted against readiness: the instance still serves while its
    // reconciler lease cannot be renewed (issue 24: never a silent stop).
    if let Some(failure) = app.lease_health.renewal_failure() {
        body["reconciler"] = json!(failure);
    }
    Ok(Response::json(if ok { 200 } else { 503 }, &body))
}
