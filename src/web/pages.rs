//! The HTML pages: gallery, result page, upload results, errors, and the image bytes.
//!
//! Every page is `templates/layout.html` around one page template; repeated parts (cards,
//! table rows, polygons) are small templates of their own joined in Rust. Values from outside
//! (file names, labels, analysis JSON) only ever enter through text slots, so they are escaped.
//! Numbers for SVG points are formatted here from `f64`s. Not here: the JSON API (`api.rs`).

use super::auth::{self, Action};
use super::catalog::{self, Entry, Filter};
use super::form::Pairs;
use super::html::{render, url_component, Html, Slot};
use super::upload::Outcome;
use super::App;
use crate::document::{AnalysisDocument, Status};
use crate::error::{Error, Result};
use crate::http::{Request, Response};

const LAYOUT: &str = include_str!("../../templates/layout.html");
const NOTICE: &str = include_str!("../../templates/notice.html");
const LINK: &str = include_str!("../../templates/link.html");

/// Wraps `main` in the layout. Security headers are added by the router for every HTML answer.
pub(crate) fn page(
    app: &App,
    status: u16,
    title: &str,
    main: &Html,
    nav: bool,
) -> Result<Response> {
    let nav = if nav && app.settings.password.is_some() {
        let token = auth::token(app, Action::Logout);
        render(
            include_str!("../../templates/logout.html"),
            &[("token", Slot::Text(&token))],
        )?
    } else {
        Html::default()
    };
    let body = render(
        LAYOUT,
        &[
            ("title", Slot::Text(title)),
            ("nav", Slot::Html(&nav)),
            ("main", Slot::Html(main)),
        ],
    )?;
    Ok(Response::html(status, body.into_string()))
}

fn notice(kind: &str, text: &str) -> Result<Html> {
    render(
        NOTICE,
        &[("kind", Slot::Text(kind)), ("text", Slot::Text(text))],
    )
}

fn link(href: &str, text: &str) -> Result<Html> {
    render(
        LINK,
        &[("href", Slot::Text(href)), ("text", Slot::Text(text))],
    )
}

/// The error page.
pub(crate) fn error_page(app: &App, status: u16, message: &str) -> Result<Response> {
    let title = match status {
        401 => "Please sign in",
        403 => "Not allowed",
        404 => "Not found",
        405 => "Not allowed here",
        413 => "Too large",
        415 => "Not an image we can read",
        422 => "Image refused",
        503 => "Busy",
        s if s >= 500 => "Something went wrong",
        _ => "That did not work",
    };
    let main = render(
        include_str!("../../templates/error.html"),
        &[
            ("title", Slot::Text(title)),
            ("message", Slot::Text(message)),
        ],
    )?;
    page(app, status, title, &main, true)
}

/// Badge text for a status.
pub(crate) fn badge(status: Status, doc: Option<&AnalysisDocument>) -> String {
    match status {
        Status::Pending => "pending".into(),
        Status::Analyzing => "analysing".into(),
        Status::Done => {
            let n = doc.map_or(0, |d| d.objects.len());
            format!("done · {n} object{}", if n == 1 { "" } else { "s" })
        }
        Status::Failed => "failed".into(),
    }
}

/// The status class used in markup and JSON.
pub(crate) fn status_name(status: Status) -> &'static str {
    match status {
        Status::Pending => "pending",
        Status::Analyzing => "analyzing",
        Status::Done => "done",
        Status::Failed => "failed",
    }
}

/// Alt text from the labels: "Photo: dog 92%, car 51%" (best first, at most five).
pub(crate) fn alt_text(name: &str, doc: Option<&AnalysisDocument>) -> String {
    match doc {
        Some(d) if d.status == Status::Done && !d.objects.is_empty() => {
            let labels: Vec<String> = d
                .objects
                .iter()
                .take(5)
                .map(|o| format!("{} {:.0}%", o.name.to_lowercase(), o.confidence * 100.0))
                .collect();
            format!("{name}: {}", labels.join(", "))
        }
        Some(d) if d.status == Status::Done => format!("{name}: no objects found"),
        _ => format!("{name} (not analysed yet)"),
    }
}

fn failure_reason(doc: Option<&AnalysisDocument>) -> String {
    doc.and_then(|d| d.error.as_ref())
        .map(|e| e.message.clone())
        .unwrap_or_else(|| "the analysis failed".into())
}

fn card(app: &App, entry: &Entry, retry_token: &str) -> Result<Html> {
    let status = entry.status();
    let name = entry.display_name();
    let failure = if status == Status::Failed {
        render(
            include_str!("../../templates/failure.html"),
            &[
                ("reason", Slot::Text(&failure_reason(entry.doc.as_ref()))),
                ("id", Slot::Text(&entry.id)),
                ("token", Slot::Text(retry_token)),
            ],
        )?
    } else {
        Html::default()
    };
    let _ = app;
    render(
        include_str!("../../templates/card.html"),
        &[
            ("id", Slot::Text(&entry.id)),
            ("status", Slot::Text(status_name(status))),
            ("alt", Slot::Text(&alt_text(name, entry.doc.as_ref()))),
            ("name", Slot::Text(name)),
            ("badge", Slot::Text(&badge(status, entry.doc.as_ref()))),
            ("failure", Slot::Html(&failure)),
        ],
    )
}

/// Reads `label`, `status` and `start` from a query.
pub(crate) fn filter_of(query: &Pairs) -> Result<Filter> {
    let status = match query.get("status") {
        None => None,
        Some(s) => Some(catalog::parse_status(s).ok_or_else(|| {
            Error::bad_request(400, "status must be pending, analyzing, done or failed")
        })?),
    };
    Ok(Filter {
        label: query.get("label").map(|l| l.chars().take(100).collect()),
        status,
    })
}

/// `GET /`: the upload form and one page of images.
pub(crate) fn gallery(app: &App, req: &Request) -> Result<Response> {
    let query = Pairs::query(req.query())?;
    let filter = filter_of(&query)?;
    let start = query.get("start");
    let retry_token = auth::token(app, Action::Reanalyze);
    let delete_token = auth::token(app, Action::Delete);
    let upload_token = auth::token(app, Action::Upload);
    let (cards, mut notices, next, empty_page, status) = match catalog::page(app, start, &filter) {
        Ok(page) => {
            let cards = Html::concat(
                page.entries
                    .iter()
                    .map(|e| card(app, e, &retry_token))
                    .collect::<Result<Vec<_>>>()?,
            );
            let mut notices = Vec::new();
            if page.db_error {
                notices.push(notice(
                    "warn",
                    "Analysis results are unavailable right now (the database did not answer); \
                     images are shown without them.",
                )?);
            }
            (cards, notices, page.next, page.entries.is_empty(), 200)
        }
        Err(e) => {
            log::warn!(target: "webapp", "{} gallery listing failed: {e}", req.request_id());
            let n = notice(
                "error",
                "The image store did not answer, so no images can be shown. Try again in a minute.",
            )?;
            (Html::default(), vec![n], None, false, 503)
        }
    };
    if !filter.is_empty() {
        notices.push(notice(
            "info",
            "Filters apply to this page of images; use “Next page” to look further.",
        )?);
    }
    let empty = if empty_page {
        let text = if filter.is_empty() && start.is_none() {
            "No images yet. Drop a photo above to analyse it."
        } else if filter.is_empty() {
            "No more images."
        } else {
            "No image on this page matches the filter."
        };
        render(
            include_str!("../../templates/notice.html"),
            &[("kind", Slot::Text("empty")), ("text", Slot::Text(text))],
        )?
    } else {
        Html::default()
    };
    let mut keep = Vec::new();
    if let Some(l) = &filter.label {
        keep.push(format!("label={}", url_component(l)));
    }
    if let Some(s) = filter.status {
        keep.push(format!("status={}", status_name(s)));
    }
    let next = match next {
        Some(n) => {
            let mut q = keep.clone();
            q.push(format!("start={}", url_component(&n)));
            link(&format!("/?{}", q.join("&")), "Next page →")?
        }
        None => Html::default(),
    };
    let first = if start.is_some() {
        link(&format!("/?{}", keep.join("&")), "← First page")?
    } else {
        Html::default()
    };
    let options = Html::concat(
        [
            ("", "any"),
            ("pending", "pending"),
            ("analyzing", "analysing"),
            ("done", "done"),
            ("failed", "failed"),
        ]
        .iter()
        .map(|(value, text)| {
            let selected = Html::text(if filter.status.map(status_name).unwrap_or("") == *value {
                " selected"
            } else {
                ""
            });
            render(
                include_str!("../../templates/option.html"),
                &[
                    ("value", Slot::Text(value)),
                    ("selected", Slot::Html(&selected)),
                    ("text", Slot::Text(text)),
                ],
            )
        })
        .collect::<Result<Vec<_>>>()?,
    );
    let bulk = if status != 200 {
        Html::default()
    } else {
        render(include_str!("../../templates/bulk_delete.html"), &[])?
    };
    let reanalyze = if app.invoker.is_some() {
        render(
            include_str!("../../templates/reanalyze_all.html"),
            &[("token", Slot::Text(&retry_token))],
        )?
    } else {
        Html::default()
    };
    let max = app.settings.max_upload_bytes;
    let main = render(
        include_str!("../../templates/index.html"),
        &[
            ("max_bytes", Slot::Text(&max.to_string())),
            (
                "max_mb",
                Slot::Text(&format!("{:.0}", max as f64 / 1_048_576.0)),
            ),
            ("upload_token", Slot::Text(&upload_token)),
            ("label", Slot::Text(filter.label.as_deref().unwrap_or(""))),
            ("status_options", Slot::Html(&options)),
            ("notice", Slot::Html(&Html::concat(notices.drain(..)))),
            ("delete_token", Slot::Text(&delete_token)),
            ("retry_token", Slot::Text(&retry_token)),
            ("cards", Slot::Html(&cards)),
            ("empty", Slot::Html(&empty)),
            ("bulk", Slot::Html(&bulk)),
            ("reanalyze", Slot::Html(&reanalyze)),
            ("first", Slot::Html(&first)),
            ("next", Slot::Html(&next)),
        ],
    )?;
    page(app, status, "Images", &main, true)
}

/// `2026-11-28T09:22:57.320Z` → `2026-11-28 09:22:57 UTC`; other text as it is.
pub(crate) fn when(timestamp: &str) -> String {
    match crate::timefmt::parse(timestamp) {
        Some(t) => {
            let s = crate::timefmt::format(t, crate::timefmt::Precision::Seconds);
            format!("{} {} UTC", &s[..10], &s[11..19])
        }
        None => timestamp.to_string(),
    }
}

fn pct(confidence: f64) -> String {
    format!("{:.0}%", confidence.clamp(0.0, 1.0) * 100.0)
}

fn coord(v: f64) -> String {
    // Finite and clamped: a NaN or 1e308 from a document cannot break the markup or layout.
    let v = if v.is_finite() {
        v.clamp(0.0, 1.0)
    } else {
        0.0
    };
    format!("{v:.4}")
}

fn is_local_model(doc: &AnalysisDocument) -> bool {
    let v = &doc.model_versions;
    [&v.object_detection, &v.image_classification]
        .iter()
        .any(|m| {
            m.as_deref()
                .is_some_and(|m| m.to_ascii_lowercase().contains("local"))
        })
}

/// `GET /images/{id}`: the image with its boxes, the table, timings and the raw JSON.
pub(crate) fn detail(app: &App, req: &Request, id: &str) -> Result<Response> {
    let found = catalog::find(app, id)?.ok_or_else(|| Error::NotFound(format!("image {id}")))?;
    let doc = found
        .doc
        .clone()
        .or_else(|| {
            found
                .info
                .as_ref()
                .map(|info| catalog::pending_from_head(app, &catalog::object_name(id), info))
        })
        .ok_or_else(|| Error::NotFound(format!("image {id}")))?;
    let name = doc.original_name.clone().unwrap_or_else(|| id.to_string());
    let mut notices = Vec::new();
    if found.info.is_none() {
        notices.push(notice(
            "warn",
            "The image file is missing from storage; the reconciler will remove this record.",
        )?);
    }
    if found.db_error {
        notices.push(notice(
            "warn",
            "Analysis results are unavailable right now (the database did not answer).",
        )?);
    }
    if doc.status == Status::Failed {
        notices.push(notice(
            "error",
            &format!("Analysis failed: {}", failure_reason(Some(&doc))),
        )?);
    }
    let show_objects = doc.status == Status::Done;
    let mut polygons = Vec::new();
    let mut labels = Vec::new();
    let mut rows = Vec::new();
    if show_objects {
        for (i, o) in doc.objects.iter().enumerate() {
            let i_text = i.to_string();
            let color = (i % 8).to_string();
            let conf = format!(
                "{:.4}",
                if o.confidence.is_finite() {
                    o.confidence
                } else {
                    0.0
                }
            );
            let p = pct(o.confidence);
            let points: Vec<String> = o
                .polygon
                .iter()
                .map(|v| format!("{},{}", coord(v.x), coord(v.y)))
                .collect();
            let (min_x, min_y) = o.polygon.iter().fold((1.0f64, 1.0f64), |(x, y), v| {
                (
                    x.min(if v.x.is_finite() { v.x } else { 1.0 }),
                    y.min(if v.y.is_finite() { v.y } else { 1.0 }),
                )
            });
            let common = [
                ("i", Slot::Text(&i_text)),
                ("color", Slot::Text(&color)),
                ("conf", Slot::Text(&conf)),
                ("label", Slot::Text(&o.name)),
                ("pct", Slot::Text(&p)),
            ];
            let joined = points.join(" ");
            let mut slots = common.to_vec();
            slots.push(("points", Slot::Text(&joined)));
            polygons.push(render(
                include_str!("../../templates/polygon.html"),
                &slots,
            )?);
            let (x, y) = (coord(min_x), coord(min_y));
            let mut slots = common.to_vec();
            slots.push(("x", Slot::Text(&x)));
            slots.push(("y", Slot::Text(&y)));
            labels.push(render(
                include_str!("../../templates/box_label.html"),
                &slots,
            )?);
            rows.push(render(include_str!("../../templates/row.html"), &common)?);
        }
    }
    let no_objects = match doc.status {
        Status::Done if doc.objects.is_empty() => {
            notice("empty", "No objects were found in this image.")?
        }
        Status::Done => Html::default(),
        Status::Failed => notice("empty", "No results: the analysis failed.")?,
        _ => notice(
            "empty",
            "Waiting for the analysis; this page updates by itself.",
        )?,
    };
    let mut facts = Vec::new();
    let mut fact = |term: &str, value: String| -> Result<()> {
        facts.push(render(
            include_str!("../../templates/fact.html"),
            &[("term", Slot::Text(term)), ("value", Slot::Text(&value))],
        )?);
        Ok(())
    };
    fact("Uploaded", when(&doc.uploaded_at))?;
    if let Some(t) = &doc.analyzed_at {
        fact("Analysed", when(t))?;
    }
    let t = doc.timings;
    if let Some(ms) = t.event_lag_ms {
        fact("Event delay", format!("{ms} ms"))?;
    }
    if let Some(ms) = t.vision_ms {
        fact("Vision call", format!("{ms} ms"))?;
    }
    if let Some(ms) = t.db_ms {
        fact("Database", format!("{ms} ms"))?;
    }
    if let Some(v) = &doc.model_versions.object_detection {
        fact("Model", v.clone())?;
    }
    fact("Size", format!("{:.1} KB", doc.size as f64 / 1024.0))?;
    fact("Attempts", doc.attempts.to_string())?;
    if let Some(c) = &doc.correlation_id {
        fact("Upload request", c.clone())?;
    }
    let model_badge = if is_local_model(&doc) {
        render(
            include_str!("../../templates/notice.html"),
            &[
                ("kind", Slot::Text("badge local")),
                ("text", Slot::Text("local model")),
            ],
        )?
    } else {
        Html::default()
    };
    let raw = found.raw.clone().unwrap_or_else(|| doc.to_json());
    let json = serde_json::to_string_pretty(&raw)?;
    let caption = match doc.status {
        Status::Done => format!(
            "{} object{} found{}",
            doc.objects.len(),
            if doc.objects.len() == 1 { "" } else { "s" },
            if is_local_model(&doc) {
                " by the local model"
            } else {
                ""
            }
        ),
        s => format!("Status: {}", badge(s, Some(&doc))),
    };
    let main = render(
        include_str!("../../templates/detail.html"),
        &[
            ("name", Slot::Text(&name)),
            ("status", Slot::Text(status_name(doc.status))),
            ("id", Slot::Text(id)),
            ("badge", Slot::Text(&badge(doc.status, Some(&doc)))),
            ("model_badge", Slot::Html(&model_badge)),
            ("notice", Slot::Html(&Html::concat(notices))),
            ("alt", Slot::Text(&alt_text(&name, Some(&doc)))),
            ("polygons", Slot::Html(&Html::concat(polygons))),
            ("labels", Slot::Html(&Html::concat(labels))),
            ("caption", Slot::Text(&caption)),
            ("rows", Slot::Html(&Html::concat(rows))),
            ("no_objects", Slot::Html(&no_objects)),
            ("facts", Slot::Html(&Html::concat(facts))),
            (
                "reanalyze_token",
                Slot::Text(&auth::token(app, Action::Reanalyze)),
            ),
            (
                "delete_token",
                Slot::Text(&auth::token(app, Action::Delete)),
            ),
            ("json", Slot::Text(&json)),
        ],
    )?;
    let _ = req;
    page(app, 200, &name, &main, true)
}

/// `GET /images/{id}/raw`: the image bytes, never rendered as anything but an image.
pub(crate) fn raw(app: &App, id: &str) -> Result<Response> {
    let name = catalog::object_name(id);
    let download = app
        .storage
        .get(
            &app.bucket,
            &name,
            None,
            app.settings.max_upload_bytes.max(64 * 1024 * 1024),
            app.deadline(),
        )
        .map_err(|e| match e.service_error() {
            Some(s) if s.status == 404 => Error::NotFound(format!("image {id}")),
            _ => e,
        })?;
    let info = download.info;
    // Only the two types we store are served as images; anything else is a download.
    let (content_type, disposition) = match info.content_type.as_str() {
        t @ ("image/jpeg" | "image/png") => (t, "inline"),
        _ => ("application/octet-stream", "attachment"),
    };
    Ok(Response::new(200)
        .with_header("Content-Type", content_type)
        .with_header("X-Content-Type-Options", "nosniff")
        .with_header("Content-Security-Policy", "default-src 'none'; sandbox")
        .with_header("Cross-Origin-Resource-Policy", "same-origin")
        .with_header(
            "Content-Disposition",
            format!("{disposition}; filename=\"{id}\""),
        )
        .with_header(
            "Cache-Control",
            format!("private, max-age={}", app.settings.image_max_age),
        )
        .with_header("ETag", format!("\"{}\"", info.etag))
        .with_reader(download.body, Some(info.content_length)))
}

/// `GET /images/{id}/json`: the stored document as a download.
pub(crate) fn json_download(app: &App, id: &str) -> Result<Response> {
    let found = catalog::find(app, id)?.ok_or_else(|| Error::NotFound(format!("image {id}")))?;
    let raw = found
        .raw
        .ok_or_else(|| Error::NotFound(format!("analysis of {id}")))?;
    let stem = id.split('.').next().unwrap_or(id);
    Ok(Response::new(200)
        .with_header("Content-Type", "application/json")
        .with_header(
            "Content-Disposition",
            format!("attachment; filename=\"{stem}.json\""),
        )
        .with_body(serde_json::to_vec_pretty(&raw)?))
}

/// The page after a plain form upload (no JavaScript).
pub(crate) fn upload_result(app: &App, status: u16, outcomes: &[Outcome]) -> Result<Response> {
    let items = outcomes
        .iter()
        .map(|o| {
            let l = match &o.url {
                Some(u) => link(u, "view")?,
                None => Html::default(),
            };
            render(
                include_str!("../../templates/result.html"),
                &[
                    ("kind", Slot::Text(if o.ok { "ok" } else { "refused" })),
                    ("file", Slot::Text(&o.file)),
                    ("message", Slot::Text(&o.message)),
                    ("link", Slot::Html(&l)),
                ],
            )
        })
        .collect::<Result<Vec<_>>>()?;
    let stored = outcomes.iter().filter(|o| o.ok).count();
    let title = format!(
        "{stored} of {} file{} uploaded",
        outcomes.len(),
        if outcomes.len() == 1 { "" } else { "s" }
    );
    let main = render(
        include_str!("../../templates/results.html"),
        &[
            ("title", Slot::Text(&title)),
            ("items", Slot::Html(&Html::concat(items))),
        ],
    )?;
    page(app, status, "Upload", &main, true)
}

/// `POST /images/{id}/delete` and `POST /delete` (the gallery's selection).
pub(crate) fn delete_form(app: &App, req: &Request, id: Option<&str>) -> Result<Response> {
    let form = Pairs::parse(&String::from_utf8_lossy(&req.read_body(256 * 1024)?))?;
    auth::check_token(app, Action::Delete, form.get(auth::TOKEN_FIELD))?;
    let ids: Vec<String> = match id {
        Some(id) => vec![id.to_string()],
        None => form
            .all("id")
            .filter_map(catalog::parse_id)
            .map(str::to_string)
            .take(500)
            .collect(),
    };
    if ids.is_empty() {
        return Err(Error::bad_request(
            400,
            "select at least one image to delete",
        ));
    }
    let results: Vec<catalog::Deleted> = ids.iter().map(|id| catalog::delete(app, id)).collect();
    if results.iter().all(|r| r.ok()) {
        return Ok(auth::redirect("/"));
    }
    let items = results
        .iter()
        .map(|r| {
            let message = r.error.clone().unwrap_or_else(|| "deleted".into());
            render(
                include_str!("../../templates/result.html"),
                &[
                    ("kind", Slot::Text(if r.ok() { "ok" } else { "refused" })),
                    ("file", Slot::Text(&r.id)),
                    ("message", Slot::Text(&message)),
                    ("link", Slot::Html(&Html::default())),
                ],
            )
        })
        .collect::<Result<Vec<_>>>()?;
    let failed = results.iter().filter(|r| !r.ok()).count();
    let title = format!(
        "{failed} of {} could not be deleted completely",
        results.len()
    );
    let main = render(
        include_str!("../../templates/results.html"),
        &[
            ("title", Slot::Text(&title)),
            ("items", Slot::Html(&Html::concat(items))),
        ],
    )?;
    page(app, 502, "Delete", &main, true)
}

/// `POST /images/{id}/reanalyze` and `POST /reanalyze` (every outdated image).
pub(crate) fn reanalyze_form(app: &App, req: &Request, id: Option<&str>) -> Result<Response> {
    let form = Pairs::parse(&String::from_utf8_lossy(&req.read_body(16 * 1024)?))?;
    auth::check_token(app, Action::Reanalyze, form.get(auth::TOKEN_FIELD))?;
    match id {
        Some(id) => {
            catalog::reanalyze(app, id)?;
            Ok(auth::redirect(&format!("/images/{id}")))
        }
        None => {
            let out = catalog::reanalyze_outdated(app, None)?;
            let title = match &out.current {
                Some(v) => format!(
                    "{} image{} sent for re-analysis with model {v}",
                    out.requested.len(),
                    if out.requested.len() == 1 { "" } else { "s" }
                ),
                None => "No analysed images yet, so nothing is outdated".into(),
            };
            let items = out
                .failed
                .iter()
                .map(|id| {
                    render(
                        include_str!("../../templates/result.html"),
                        &[
                            ("kind", Slot::Text("refused")),
                            ("file", Slot::Text(id)),
                            ("message", Slot::Text("could not be sent for re-analysis")),
                            ("link", Slot::Html(&Html::default())),
                        ],
                    )
                })
                .collect::<Result<Vec<_>>>()?;
            let main = render(
                include_str!("../../templates/results.html"),
                &[
                    ("title", Slot::Text(&title)),
                    ("items", Slot::Html(&Html::concat(items))),
                ],
            )?;
            page(app, 200, "Re-analyse", &main, true)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::Found;
    use crate::oci::vision::Vertex;

    fn done(objects: &[(&str, f64)]) -> AnalysisDocument {
        let mut d = AnalysisDocument::new("ns", "b", "uploads/x.jpg", Status::Done);
        d.objects = objects
            .iter()
            .map(|(n, c)| Found {
                name: n.to_string(),
                confidence: *c,
                polygon: vec![Vertex { x: 0.0, y: 0.0 }],
            })
            .collect();
        d
    }

    #[test]
    fn badges_and_alt_text_come_from_the_labels() {
        let d = done(&[("Dog", 0.92), ("Car", 0.514)]);
        assert_eq!(badge(Status::Done, Some(&d)), "done · 2 objects");
        assert_eq!(
            badge(Status::Done, Some(&done(&[("Dog", 1.0)]))),
            "done · 1 object"
        );
        assert_eq!(badge(Status::Analyzing, None), "analysing");
        assert_eq!(alt_text("a.jpg", Some(&d)), "a.jpg: dog 92%, car 51%");
        assert_eq!(
            alt_text("a.jpg", Some(&done(&[]))),
            "a.jpg: no objects found"
        );
        assert_eq!(alt_text("a.jpg", None), "a.jpg (not analysed yet)");
    }

    #[test]
    fn numbers_in_markup_are_finite_and_clamped() {
        assert_eq!(coord(0.123456), "0.1235");
        assert_eq!(coord(f64::NAN), "0.0000");
        assert_eq!(coord(1e308), "1.0000");
        assert_eq!(coord(-3.0), "0.0000");
        assert_eq!(pct(0.926), "93%");
        assert_eq!(pct(7.0), "100%");
    }

    #[test]
    fn times_read_well() {
        assert_eq!(when("2026-11-28T09:22:57.320Z"), "2026-11-28 09:22:57 UTC");
        assert_eq!(when("not a time"), "not a time");
        let mut d = done(&[]);
        d.model_versions.object_detection = Some("Local-NanoDet 1".into());
        assert!(is_local_model(&d));
        d.model_versions.object_detection = Some("1.3".into());
        assert!(!is_local_model(&d));
    }
}
