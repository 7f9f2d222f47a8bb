//! The pages a `GET` answers: gallery (with the notice after a delete or an undo), result page,
//! sign-in page, and the image bytes and stored JSON as downloads; and the delete confirmation
//! a form post without JavaScript leads to.
//!
//! Every page is `templates/layout.html` around one page template; repeated parts (cards,
//! table rows, polygons) are small templates of their own joined in Rust. Values from outside
//! (file names, labels, analysis JSON) only ever enter through text slots, so they are escaped.
//! Numbers for SVG points are formatted here from `f64`s. Not here: the layout and the parts
//! other modules share (`view.rs`), what forms post to (`actions.rs`), the JSON API (`api.rs`).

use std::time::SystemTime;

use super::auth::{self, Action};
use super::catalog::{self, Entry, Filter};
use super::form::Pairs;
use super::html::{render, url_component, Html, Slot};
use super::undo_delete;
use super::view::{self, alt_text, badge, images, link, notice, page, undo_notice, when};
use super::App;
use crate::document::{self, meta, AnalysisDocument, Status};
use crate::error::{Error, Result};
use crate::http::{Request, Response};
use crate::picture;

fn failure_reason(doc: Option<&AnalysisDocument>) -> String {
    doc.and_then(|d| d.error.as_ref())
        .map(|e| e.message.clone())
        .unwrap_or_else(|| "the analysis failed".into())
}

/// Tiles loaded at once rather than lazily: the first row on a wide screen (the largest paint
/// of the page is one of them).
const EAGER_TILES: usize = 5;

fn card(app: &App, entry: &Entry, index: usize, retry_token: &str) -> Result<Html> {
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
            ("status", Slot::Text(status.name())),
            ("alt", Slot::Text(&alt_text(name, entry.doc.as_ref()))),
            ("name", Slot::Text(name)),
            ("badge", Slot::Text(&badge(status, entry.doc.as_ref()))),
            ("failure", Slot::Html(&failure)),
            (
                "loading",
                Slot::Text(if index < EAGER_TILES { "eager" } else { "lazy" }),
            ),
            (
                "priority",
                Slot::Text(if index < 2 { "high" } else { "auto" }),
            ),
        ],
    )
}

/// `GET /`: the upload form and one page of images.
pub(crate) fn gallery(app: &App, req: &Request) -> Result<Response> {
    let query = Pairs::query(req.query())?;
    let filter = Filter::from_query(&query)?;
    let start = query.get("start");
    let retry_token = auth::token(app, Action::Reanalyze);
    let listing = Listing::of(app, req, &query, &filter, &retry_token)?;
    let (first, next) = page_links(&filter, start, listing.next.as_deref())?;
    let bulk = if listing.status == 200 {
        render(include_str!("../../templates/bulk_delete.html"), &[])?
    } else {
        Html::default()
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
            (
                "upload_token",
                Slot::Text(&auth::token(app, Action::Upload)),
            ),
            ("label", Slot::Text(filter.label.as_deref().unwrap_or(""))),
            ("status_options", Slot::Html(&status_options(&filter)?)),
            ("order_options", Slot::Html(&order_options(&filter)?)),
            ("notice", Slot::Html(&Html::concat(listing.notices))),
            (
                "delete_token",
                Slot::Text(&auth::token(app, Action::Delete)),
            ),
            (
                "undo_seconds",
                Slot::Text(&app.settings.undo_window.as_secs().to_string()),
            ),
            ("retry_token", Slot::Text(&retry_token)),
            ("cards", Slot::Html(&listing.cards)),
            (
                "empty",
                Slot::Html(&empty_notice(&filter, start, listing.empty)?),
            ),
            ("bulk", Slot::Html(&bulk)),
            ("reanalyze", Slot::Html(&reanalyze)),
            ("first", Slot::Html(&first)),
            ("next", Slot::Html(&next)),
        ],
    )?;
    page(app, listing.status, "Images", &main, true)
}

/// One gallery page as the page shows it: the cards, the notices above them, where the next
/// page starts, and the answer's status (503 when storage did not answer).
struct Listing {
    cards: Html,
    notices: Vec<Html>,
    next: Option<String>,
    /// The page holds no image (not said when the listing failed).
    empty: bool,
    status: u16,
}

impl Listing {
    fn of(
        app: &App,
        req: &Request,
        query: &Pairs,
        filter: &Filter,
        retry_token: &str,
    ) -> Result<Listing> {
        let page = match catalog::page(app, query.get("start"), filter) {
            Ok(page) => page,
            Err(e) => {
                log::warn!(target: "webapp", "{} gallery listing failed: {e}", req.request_id());
                let n = notice(
                    "error",
                    "The image store did not answer, so no images can be shown. Try again in a \
                     minute.",
                )?;
                return Ok(Listing {
                    cards: Html::default(),
                    notices: vec![n],
                    next: None,
                    empty: false,
                    status: 503,
                });
            }
        };
        let cards = page
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| card(app, e, i, retry_token))
            .collect::<Result<Vec<_>>>()?;
        let mut notices: Vec<Html> = after_delete(app, query)?.into_iter().collect();
        if page.db_error {
            notices.push(notice(
                "warn",
                "Analysis results are unavailable right now (the database did not answer); \
                 images are shown without them.",
            )?);
        }
        Ok(Listing {
            cards: Html::concat(cards),
            notices,
            next: page.next,
            empty: page.entries.is_empty(),
            status: 200,
        })
    }
}

/// What an empty page says: nothing uploaded yet, the end of the list, or nothing matches.
fn empty_notice(filter: &Filter, start: Option<&str>, empty: bool) -> Result<Html> {
    if !empty {
        return Ok(Html::default());
    }
    let text = if filter.is_empty() && start.is_none() {
        "No images yet. Drop a photo above to analyse it."
    } else if filter.is_empty() {
        "No more images."
    } else if filter.by_taken && filter.label.is_none() && filter.status.is_none() {
        "No photo here records when it was taken (its EXIF date); order by upload to see them all."
    } else {
        "No image matches the filter."
    };
    notice("empty", text)
}

/// The "first page" and "next page" links, keeping the filter.
fn page_links(filter: &Filter, start: Option<&str>, next: Option<&str>) -> Result<(Html, Html)> {
    let mut keep = Vec::new();
    if let Some(l) = &filter.label {
        keep.push(format!("q={}", url_component(l)));
    }
    if let Some(s) = filter.status {
        keep.push(format!("status={}", s.name()));
    }
    if filter.by_taken {
        keep.push("order=taken".into());
    }
    let next = match next {
        Some(n) => {
            let mut q = keep.clone();
            q.push(format!("start={}", url_component(n)));
            link(&format!("/?{}", q.join("&")), "Next page →")?
        }
        None => Html::default(),
    };
    let first = if start.is_some() {
        link(&format!("/?{}", keep.join("&")), "← First page")?
    } else {
        Html::default()
    };
    Ok((first, next))
}

/// The status filter's options, the current one selected.
fn status_options(filter: &Filter) -> Result<Html> {
    let current = filter.status.map(Status::name).unwrap_or("");
    let options = [
        ("", "any"),
        ("pending", "pending"),
        ("analyzing", "analysing"),
        ("waiting", "waiting"),
        ("done", "done"),
        ("failed", "failed"),
    ];
    options_html(&options, current)
}

/// Newest uploaded first, or newest taken first.
fn order_options(filter: &Filter) -> Result<Html> {
    let current = if filter.by_taken { "taken" } else { "" };
    options_html(
        &[
            ("", "newest upload"),
            ("taken", "newest taken (with a date)"),
        ],
        current,
    )
}

/// `<option>`s with `current` selected.
fn options_html(options: &[(&str, &str)], current: &str) -> Result<Html> {
    let options = options
        .iter()
        .map(|(value, text)| {
            let selected = Html::text(if current == *value { " selected" } else { "" });
            render(
                include_str!("../../templates/option.html"),
                &[
                    ("value", Slot::Text(value)),
                    ("selected", Slot::Html(&selected)),
                    ("text", Slot::Text(text)),
                ],
            )
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Html::concat(options))
}

/// The notice the gallery shows after a delete (`?deleted={batch}`) or an undo
/// (`?restored={count}`).
fn after_delete(app: &App, query: &Pairs) -> Result<Option<Html>> {
    if let Some(batch) = query.get("deleted").filter(|b| undo_delete::is_batch(b)) {
        let markers = match undo_delete::batch_markers(app, batch) {
            Ok(m) => m,
            Err(e) => {
                log::warn!(target: "webapp", "undo notice: batch {batch} unreadable: {e}");
                return Ok(Some(notice("info", "Deleted.")?));
            }
        };
        return undo_notice(app, batch, &markers).map(Some);
    }
    match query.get("restored").and_then(|n| n.parse::<usize>().ok()) {
        Some(0) => Ok(Some(notice(
            "warn",
            "Too late to undo: the undo window had closed, so the deletion is final.",
        )?)),
        Some(n) => Ok(Some(notice(
            "info",
            &format!("Restored {}: the deletion is undone.", images(n)),
        )?)),
        None => Ok(None),
    }
}

/// The confirmation a delete form leads to without JavaScript (with it, a dialog asks the same
/// and posts `confirm=yes`): what would go, and the form that confirms. `single` is the id of a
/// result page's delete, `None` for the gallery's selection.
pub(crate) fn confirm_delete(
    app: &App,
    action: &str,
    single: Option<&str>,
    ids: &[String],
    names: &[String],
) -> Result<Response> {
    let items = Html::concat(
        names
            .iter()
            .map(|n| {
                render(
                    include_str!("../../templates/name_item.html"),
                    &[("name", Slot::Text(n))],
                )
            })
            .collect::<Result<Vec<_>>>()?,
    );
    let hidden = if single.is_some() {
        Html::default()
    } else {
        Html::concat(
            ids.iter()
                .map(|id| {
                    render(
                        include_str!("../../templates/hidden_id.html"),
                        &[("id", Slot::Text(id))],
                    )
                })
                .collect::<Result<Vec<_>>>()?,
        )
    };
    let title = if names.len() == 1 {
        format!("Delete {}?", names[0])
    } else {
        format!("Delete {}?", images(names.len()))
    };
    let window = app.settings.undo_window.as_secs();
    let explain = if window == 0 {
        "The image files and their analyses are deleted for good.".to_string()
    } else {
        format!(
            "{} the gallery at once. You can undo this for {window} seconds; then the files \
             and their analyses are deleted for good.",
            if names.len() == 1 {
                "It leaves"
            } else {
                "They leave"
            }
        )
    };
    let button = if names.len() == 1 {
        "Delete".to_string()
    } else {
        format!("Delete {}", images(names.len()))
    };
    let form = render(
        include_str!("../../templates/confirm_form.html"),
        &[
            ("action", Slot::Text(action)),
            ("token", Slot::Text(&auth::token(app, Action::Delete))),
            ("ids", Slot::Html(&hidden)),
            ("button", Slot::Text(&button)),
        ],
    )?;
    let back = single.map_or_else(|| "/".to_string(), |id| format!("/images/{id}"));
    let main = render(
        include_str!("../../templates/confirm_delete.html"),
        &[
            ("title", Slot::Text(&title)),
            ("items", Slot::Html(&items)),
            ("explain", Slot::Text(&explain)),
            ("form", Slot::Html(&form)),
            ("back", Slot::Text(&back)),
            ("back_text", Slot::Text("Cancel")),
        ],
    )?;
    page(app, 200, "Delete?", &main, true)
}

/// `POST /delete` with nothing selected: says how to select, not an error.
pub(crate) fn nothing_selected(app: &App) -> Result<Response> {
    let main = render(
        include_str!("../../templates/confirm_delete.html"),
        &[
            ("title", Slot::Text("Nothing selected")),
            ("items", Slot::Html(&Html::default())),
            (
                "explain",
                Slot::Text(
                    "Tick the Select box of each image to delete, then press Delete selected.",
                ),
            ),
            ("form", Slot::Html(&Html::default())),
            ("back", Slot::Text("/")),
            ("back_text", Slot::Text("Back to the gallery")),
        ],
    )?;
    page(app, 200, "Nothing selected", &main, true)
}

/// The picture's size in pixels, so the page reserves its space before it loads: from the
/// object's metadata (uploads since the result page needed it), else from the preview's header
/// (one ranged read). `None` when neither says.
fn picture_size(app: &App, id: &str, found: &catalog::ImageRecord) -> Option<(u32, u32)> {
    let meta = |key: &str| {
        let info = found.info.as_ref()?;
        meta::get(info, key)?.parse::<u32>().ok()
    };
    if let (Some(w), Some(h)) = (meta(meta::WIDTH), meta(meta::HEIGHT)) {
        return Some((w, h));
    }
    let mut download = app
        .storage
        .get(
            &app.bucket,
            &document::preview_name(id),
            Some((0, Some(64 * 1024 - 1))),
            64 * 1024,
            app.deadline(),
        )
        .ok()?;
    let mut head = Vec::with_capacity(64 * 1024);
    std::io::Read::read_to_end(&mut download.body, &mut head).ok()?;
    let info = crate::image_info::inspect(&head).ok()?;
    Some((info.width, info.height))
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
    [
        &v.object_detection,
        &v.image_classification,
        &v.text_detection,
    ]
    .iter()
    .any(|m| {
        m.as_deref()
            .is_some_and(|m| m.to_ascii_lowercase().contains("local"))
    })
}

/// `GET /images/{id}`: the image with its boxes, the table, timings and the raw JSON.
pub(crate) fn detail(app: &App, req: &Request, id: &str) -> Result<Response> {
    let _ = req;
    let found = catalog::find(app, id)?.ok_or_else(|| Error::NotFound(format!("image {id}")))?;
    let doc = found
        .doc
        .clone()
        .or_else(|| {
            found.info.as_ref().map(|info| {
                let name = document::object_name(id);
                AnalysisDocument::from_object(&app.bucket, &name, info, SystemTime::now())
            })
        })
        .ok_or_else(|| Error::NotFound(format!("image {id}")))?;
    let name = doc.original_name.clone().unwrap_or_else(|| id.to_string());
    let notices = detail_notices(app, id, &found, &doc)?;
    let overlays = if doc.status == Status::Done {
        Overlays::of(&doc)?
    } else {
        Overlays::default()
    };
    let text = TextView::of(&doc)?;
    let raw = found.raw.clone().unwrap_or_else(|| doc.to_json());
    let main = render(
        include_str!("../../templates/detail.html"),
        &[
            ("name", Slot::Text(&name)),
            ("status", Slot::Text(doc.status.name())),
            ("id", Slot::Text(id)),
            ("badge", Slot::Text(&badge(doc.status, Some(&doc)))),
            ("model_badge", Slot::Html(&model_badge(&doc)?)),
            ("notice", Slot::Html(&Html::concat(notices))),
            ("alt", Slot::Text(&alt_text(&name, Some(&doc)))),
            ("size", Slot::Html(&size_attributes(app, id, &found)?)),
            ("polygons", Slot::Html(&Html::concat(overlays.polygons))),
            ("text_polygons", Slot::Html(&text.polygons)),
            ("lines_toggle", Slot::Html(&text.toggle)),
            ("text", Slot::Html(&text.section)),
            ("labels", Slot::Html(&Html::concat(overlays.labels))),
            ("caption", Slot::Text(&caption(&doc))),
            ("rows", Slot::Html(&Html::concat(overlays.rows))),
            ("no_objects", Slot::Html(&no_objects_notice(&doc)?)),
            ("facts", Slot::Html(&Html::concat(facts(&doc)?))),
            (
                "reanalyze_token",
                Slot::Text(&auth::token(app, Action::Reanalyze)),
            ),
            (
                "delete_token",
                Slot::Text(&auth::token(app, Action::Delete)),
            ),
            (
                "undo_seconds",
                Slot::Text(&app.settings.undo_window.as_secs().to_string()),
            ),
            ("json", Slot::Text(&serde_json::to_string_pretty(&raw)?)),
        ],
    )?;
    page(app, 200, &name, &main, true)
}

/// The result page's notices: the undo offer while a delete waits out its window, a missing
/// file, an unreachable database, a failed analysis. An image whose window has closed is not
/// found (a sweeper deletes it; a page view changes nothing).
fn detail_notices(
    app: &App,
    id: &str,
    found: &catalog::ImageRecord,
    doc: &AnalysisDocument,
) -> Result<Vec<Html>> {
    let mut notices = Vec::new();
    match undo_delete::marker_of(app, id) {
        Ok(Some(marker)) if marker.is_due() => {
            return Err(Error::NotFound(format!("image {id}")));
        }
        Ok(Some(marker)) => notices.push(undo_notice(
            app,
            &marker.batch,
            std::slice::from_ref(&marker),
        )?),
        Ok(None) => {}
        Err(e) => log::warn!(target: "webapp", "{id}: delete marker unknown: {e}"),
    }
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
            &format!("Analysis failed: {}", failure_reason(Some(doc))),
        )?);
    }
    Ok(notices)
}

/// What the result page draws for each detected object: its outline, its label on the picture
/// and its row in the table.
#[derive(Default)]
struct Overlays {
    polygons: Vec<Html>,
    labels: Vec<Html>,
    rows: Vec<Html>,
}

impl Overlays {
    fn of(doc: &AnalysisDocument) -> Result<Overlays> {
        let mut out = Overlays::default();
        for (i, o) in doc.objects.iter().enumerate() {
            let i_text = i.to_string();
            let color = (i % 8).to_string();
            let confidence = if o.confidence.is_finite() {
                o.confidence
            } else {
                0.0
            };
            let conf = format!("{confidence:.4}");
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
            out.polygons.push(render(
                include_str!("../../templates/polygon.html"),
                &slots,
            )?);
            let (x, y) = (coord(min_x), coord(min_y));
            let mut slots = common.to_vec();
            slots.push(("x", Slot::Text(&x)));
            slots.push(("y", Slot::Text(&y)));
            out.labels.push(render(
                include_str!("../../templates/box_label.html"),
                &slots,
            )?);
            out.rows
                .push(render(include_str!("../../templates/row.html"), &common)?);
        }
        Ok(out)
    }
}

/// Lines shown on the result page, at most; a document holds what Vision answered, which no
/// source bounds.
const MAX_SHOWN_LINES: usize = 500;

/// What the result page shows of the text read in the photo: each line's outline on the
/// picture, the toggle for them, and the lines as text in reading order with a copy button
/// (shown by assets/app.js; without it the text is selectable). Nothing at all for a document
/// whose analysis did not ask for text (before issue 25, or with text turned off).
#[derive(Default)]
struct TextView {
    polygons: Html,
    toggle: Html,
    section: Html,
}

impl TextView {
    fn of(doc: &AnalysisDocument) -> Result<TextView> {
        let asked = doc.model_versions.text_detection.is_some() || doc.text_error.is_some();
        if doc.status != Status::Done || !asked && doc.text.is_empty() {
            return Ok(TextView::default());
        }
        let section = |copy: Html, body: Html| {
            render(
                include_str!("../../templates/text.html"),
                &[("copy", Slot::Html(&copy)), ("body", Slot::Html(&body))],
            )
        };
        if doc.text.is_empty() {
            let body = match &doc.text_error {
                Some(e) => notice(
                    "empty",
                    &format!("The text could not be read: {}", e.message),
                )?,
                None => notice("empty", "No text was found in this image.")?,
            };
            return Ok(TextView {
                section: section(Html::default(), body)?,
                ..TextView::default()
            });
        }
        let shown = &doc.text[..doc.text.len().min(MAX_SHOWN_LINES)];
        let mut polygons = Vec::new();
        let mut items = Vec::new();
        for (i, line) in shown.iter().enumerate() {
            let i_text = i.to_string();
            let confidence = if line.confidence.is_finite() {
                line.confidence
            } else {
                0.0
            };
            let points: Vec<String> = line
                .polygon
                .iter()
                .map(|v| format!("{},{}", coord(v.x), coord(v.y)))
                .collect();
            polygons.push(render(
                include_str!("../../templates/text_polygon.html"),
                &[
                    ("i", Slot::Text(&i_text)),
                    ("conf", Slot::Text(&format!("{confidence:.4}"))),
                    ("text", Slot::Text(&line.text)),
                    ("pct", Slot::Text(&pct(confidence))),
                    ("points", Slot::Text(&points.join(" "))),
                ],
            )?);
            items.push(render(
                include_str!("../../templates/text_line.html"),
                &[("i", Slot::Text(&i_text)), ("text", Slot::Text(&line.text))],
            )?);
        }
        let mut body = render(
            include_str!("../../templates/text_lines.html"),
            &[
                ("count", Slot::Text(&lines(doc.text.len()))),
                ("lines", Slot::Html(&Html::concat(items))),
            ],
        )?;
        if shown.len() < doc.text.len() {
            body = Html::concat([
                body,
                notice(
                    "empty",
                    &format!(
                        "The first {} are shown; the raw analysis below has them all.",
                        lines(shown.len())
                    ),
                )?,
            ]);
        }
        Ok(TextView {
            polygons: Html::concat(polygons),
            toggle: render(include_str!("../../templates/lines_toggle.html"), &[])?,
            section: section(
                render(include_str!("../../templates/copy_button.html"), &[])?,
                body,
            )?,
        })
    }
}

/// "1 line", "5 lines".
fn lines(n: usize) -> String {
    format!("{n} line{}", if n == 1 { "" } else { "s" })
}

/// The line under the picture where the table would be: none found, failed, or still waiting.
fn no_objects_notice(doc: &AnalysisDocument) -> Result<Html> {
    match doc.status {
        Status::Done if doc.objects.is_empty() => {
            notice("empty", "No objects were found in this image.")
        }
        Status::Done => Ok(Html::default()),
        Status::Failed => notice("empty", "No results: the analysis failed."),
        Status::Waiting => notice(
            "empty",
            &format!(
                "Waiting: Vision's rate limit is taken by other images; the analysis is \
                 scheduled{}. This page updates by itself.",
                doc.next_attempt
                    .as_deref()
                    .map(|t| format!(" for {}", when(t)))
                    .unwrap_or_default()
            ),
        ),
        _ => notice(
            "empty",
            "Waiting for the analysis; this page updates by itself.",
        ),
    }
}

/// The facts list: times, timings, model, size, attempts, the upload's request id.
fn facts(doc: &AnalysisDocument) -> Result<Vec<Html>> {
    let mut facts = Vec::new();
    let mut fact = |term: &str, value: String| -> Result<()> {
        facts.push(render(
            include_str!("../../templates/fact.html"),
            &[("term", Slot::Text(term)), ("value", Slot::Text(&value))],
        )?);
        Ok(())
    };
    if let Some(taken) = view::taken(doc) {
        fact("Taken", taken)?;
    }
    let camera = [doc.camera_make.as_deref(), doc.camera_model.as_deref()];
    if let Some(camera) = view::camera(camera) {
        fact("Camera", camera)?;
    }
    if let (Some(w), Some(h)) = (doc.width, doc.height) {
        fact("Pixels", format!("{w} × {h}"))?;
    }
    fact("Uploaded", when(&doc.uploaded_at))?;
    if let Some(copy) = doc.analyzed.as_ref().and_then(|a| a.upright_copy.as_ref()) {
        fact(
            "Analysed as",
            format!(
                "an upright copy, {} × {} ({})",
                copy.width, copy.height, copy.reason
            ),
        )?;
    }
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
    if let Some(v) = &doc.model_versions.text_detection {
        fact("Text model", v.clone())?;
    }
    fact("Size", format!("{:.1} KB", doc.size as f64 / 1024.0))?;
    fact("Attempts", doc.attempts.to_string())?;
    if let Some(c) = &doc.correlation_id {
        fact("Upload request", c.clone())?;
    }
    Ok(facts)
}

fn model_badge(doc: &AnalysisDocument) -> Result<Html> {
    if is_local_model(doc) {
        notice("badge local", "local model")
    } else {
        Ok(Html::default())
    }
}

/// The table's caption: how many objects were found (and by what), or the status.
fn caption(doc: &AnalysisDocument) -> String {
    match doc.status {
        Status::Done => format!(
            "{} object{}{} found{}",
            doc.objects.len(),
            if doc.objects.len() == 1 { "" } else { "s" },
            if doc.text.is_empty() {
                String::new()
            } else {
                format!(" and {} of text", lines(doc.text.len()))
            },
            if is_local_model(doc) {
                " by the local model"
            } else {
                ""
            }
        ),
        s => format!("Status: {}", badge(s, Some(doc))),
    }
}

/// The picture's `width`/`height` attributes, when its size is known.
fn size_attributes(app: &App, id: &str, found: &catalog::ImageRecord) -> Result<Html> {
    match picture_size(app, id, found) {
        Some((w, h)) => render(
            include_str!("../../templates/size.html"),
            &[
                ("width", Slot::Text(&w.to_string())),
                ("height", Slot::Text(&h.to_string())),
            ],
        ),
        None => Ok(Html::default()),
    }
}

/// `GET /images/{id}/raw`: the image bytes, never rendered as anything but an image.
pub(crate) fn raw(app: &App, id: &str) -> Result<Response> {
    let name = document::object_name(id);
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

/// Which rendition `GET /images/{id}/thumb|preview` serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rendition {
    Thumb,
    Preview,
}

/// `GET /images/{id}/thumb` and `/preview`: the stored rendition, or the grey placeholder
/// (not cached) while there is none yet.
pub(crate) fn rendition(app: &App, id: &str, which: Rendition) -> Result<Response> {
    let name = match which {
        Rendition::Thumb => document::thumb_name(id),
        Rendition::Preview => document::preview_name(id),
    };
    let download = app
        .storage
        .get(&app.bucket, &name, None, 16 * 1024 * 1024, app.deadline());
    let (body, etag, length, cache): (Box<dyn std::io::Read + Send>, _, _, _) = match download {
        Ok(d) => (
            d.body,
            Some(d.info.etag),
            d.info.content_length,
            format!("private, max-age={}", app.settings.image_max_age),
        ),
        Err(e) if e.service_error().is_some_and(|s| s.status == 404) => {
            let bytes = picture::placeholder_jpeg();
            let length = bytes.len() as u64;
            (
                Box::new(std::io::Cursor::new(bytes)),
                None,
                length,
                "no-store".to_string(),
            )
        }
        Err(e) => return Err(e),
    };
    let mut resp = Response::new(200)
        .with_header("Content-Type", "image/jpeg")
        .with_header("X-Content-Type-Options", "nosniff")
        .with_header("Content-Security-Policy", "default-src 'none'; sandbox")
        .with_header("Cross-Origin-Resource-Policy", "same-origin")
        .with_header("Cache-Control", cache);
    if let Some(etag) = etag {
        resp = resp.with_header("ETag", format!("\"{etag}\""));
    }
    Ok(resp.with_reader(body, Some(length)))
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

/// `GET /login`, and the answer to a wrong password.
pub(crate) fn login(app: &App, message: Option<&str>, status: u16) -> Result<Response> {
    let token = auth::token(app, Action::Login);
    let note = match message {
        Some(m) => notice("error", m)?,
        None => Html::default(),
    };
    let main = render(
        include_str!("../../templates/login.html"),
        &[("token", Slot::Text(&token)), ("notice", Slot::Html(&note))],
    )?;
    page(app, status, "Sign in", &main, false)
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn results_of_the_local_model_are_marked() {
        let mut d = AnalysisDocument::new("ns", "b", "uploads/x.jpg", Status::Done);
        d.model_versions.object_detection = Some("Local-NanoDet 1".into());
        assert!(is_local_model(&d));
        d.model_versions.object_detection = Some("1.3".into());
        assert!(!is_local_model(&d));
    }
}
