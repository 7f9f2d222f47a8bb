//! The parts every HTML answer shares: the layout (naming the hashed static files), the error
//! page, notices (the undo notice among them), links, the results page (uploads, deletions,
//! re-analysis), the redirect, and how a status, a badge, alt
//! text and a time read. Pages (`pages.rs`), form actions (`actions.rs`) and uploads
//! (`upload.rs`) build on these; this module uses `auth` only for the logout and undo forms'
//! tokens.
//!
//! Values from outside only ever enter templates through text slots, so they are escaped.
//! Not here: whole pages (`pages.rs`), JSON (`api.rs`).

use super::auth::{self, Action};
use super::html::{render, Html, Slot};
use super::undo_delete::DeleteMarker;
use super::App;
use crate::document::{AnalysisDocument, Status};
use crate::error::Result;
use crate::http::Response;

const LAYOUT: &str = include_str!("../../templates/layout.html");
const NOTICE: &str = include_str!("../../templates/notice.html");
const LINK: &str = include_str!("../../templates/link.html");
const RESULT: &str = include_str!("../../templates/result.html");

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
    let files = super::assets::assets();
    let body = render(
        LAYOUT,
        &[
            ("css", Slot::Text(&files.css.href)),
            ("nojs", Slot::Text(&files.nojs.href)),
            ("js", Slot::Text(&files.js.href)),
            ("icon", Slot::Text(&files.icon.href)),
            ("title", Slot::Text(title)),
            ("nav", Slot::Html(&nav)),
            ("main", Slot::Html(main)),
        ],
    )?;
    Ok(Response::html(status, body.into_string()))
}

/// A notice box; `kind` is its class (`info`, `warn`, `error`, `empty`, …).
pub(crate) fn notice(kind: &str, text: &str) -> Result<Html> {
    render(
        NOTICE,
        &[("kind", Slot::Text(kind)), ("text", Slot::Text(text))],
    )
}

/// A link to a path of ours.
pub(crate) fn link(href: &str, text: &str) -> Result<Html> {
    render(
        LINK,
        &[("href", Slot::Text(href)), ("text", Slot::Text(text))],
    )
}

/// A `303 See Other` to a path of ours.
pub(crate) fn redirect(to: &str) -> Response {
    Response::new(303).with_header("Location", to)
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

/// One line of a results page: what happened to `file`, with a link to it when there is one.
pub(crate) fn result_item(ok: bool, file: &str, message: &str, href: Option<&str>) -> Result<Html> {
    let link = match href {
        Some(href) => link(href, "view")?,
        None => Html::default(),
    };
    render(
        RESULT,
        &[
            ("kind", Slot::Text(if ok { "ok" } else { "refused" })),
            ("file", Slot::Text(file)),
            ("message", Slot::Text(message)),
            ("link", Slot::Html(&link)),
        ],
    )
}

/// A page of [`result_item`]s under `heading`, for a form post that acted on several images.
pub(crate) fn results_page(
    app: &App,
    status: u16,
    title: &str,
    heading: &str,
    items: Vec<Html>,
) -> Result<Response> {
    let main = render(
        include_str!("../../templates/results.html"),
        &[
            ("title", Slot::Text(heading)),
            ("items", Slot::Html(&Html::concat(items))),
        ],
    )?;
    page(app, status, title, &main, true)
}

/// Names for a sentence: "a.jpg", "a.jpg and b.jpg", "a.jpg, b.jpg, c.jpg and 4 more".
pub(crate) fn name_list(names: &[String]) -> String {
    const SHOWN: usize = 3;
    match names {
        [] => String::new(),
        [one] => one.clone(),
        _ if names.len() <= SHOWN + 1 => {
            let (last, rest) = names.split_last().unwrap_or((&names[0], &[]));
            format!("{} and {last}", rest.join(", "))
        }
        _ => format!(
            "{} and {} more",
            names[..SHOWN].join(", "),
            names.len() - SHOWN
        ),
    }
}

/// "1 image", "3 images".
pub(crate) fn images(n: usize) -> String {
    format!("{n} image{}", if n == 1 { "" } else { "s" })
}

/// The notice after a delete made in the browser: what went and, while the undo window is
/// open, the form that takes it back. `markers` are the batch's waiting deletes.
pub(crate) fn undo_notice(app: &App, batch: &str, markers: &[DeleteMarker]) -> Result<Html> {
    let Some(first) = markers.first() else {
        return notice(
            "info",
            "Deleted. The undo window has closed, so the deletion is final.",
        );
    };
    let names: Vec<String> = markers.iter().map(|m| m.name.clone()).collect();
    let seconds = first.seconds_left();
    let what = if names.len() == 1 {
        names[0].clone()
    } else {
        format!("{}: {}", images(names.len()), name_list(&names))
    };
    let text = format!(
        "Deleted {what}. You can undo this for {seconds} second{}.",
        if seconds == 1 { "" } else { "s" }
    );
    render(
        include_str!("../../templates/undo.html"),
        &[
            ("seconds", Slot::Text(&seconds.to_string())),
            ("text", Slot::Text(&text)),
            ("token", Slot::Text(&auth::token(app, Action::Delete))),
            ("batch", Slot::Text(batch)),
        ],
    )
}

/// Badge text for a status.
pub(crate) fn badge(status: Status, doc: Option<&AnalysisDocument>) -> String {
    match status {
        Status::Pending => "pending".into(),
        Status::Analyzing => "analysing".into(),
        // Deferred by Vision's rate limit (docs/SCALING.md): waiting, not failed.
        Status::Waiting => match doc.and_then(|d| d.next_attempt.as_deref()) {
            Some(at) => format!("waiting · next try {}", when(at)),
            None => "waiting".into(),
        },
        Status::Done => {
            let n = doc.map_or(0, |d| d.objects.len());
            format!("done · {n} object{}", if n == 1 { "" } else { "s" })
        }
        Status::Failed => "failed".into(),
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

/// When a photo was taken, for a person: `14 June 2025, 18:03 (UTC+02:00)`; the zone only
/// when the camera recorded it (EXIF `OffsetTimeOriginal`), else the camera's clock as it was.
pub(crate) fn taken(doc: &AnalysisDocument) -> Option<String> {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let local = doc.taken_local.as_deref()?;
    let (year, month, day) = (local.get(0..4)?, local.get(5..7)?, local.get(8..10)?);
    let month = MONTHS.get(month.parse::<usize>().ok()?.checked_sub(1)?)?;
    let day = day.parse::<u32>().ok()?;
    let time = local.get(11..16)?;
    let zone = doc
        .taken_at
        .as_deref()
        .and_then(|t| t.get(19..))
        .map_or(" (camera clock)".to_string(), |z| format!(" (UTC{z})"));
    Some(format!("{day} {month} {year}, {time}{zone}"))
}

/// The camera as `Make Model`, without the make repeated when the model starts with it
/// (`Canon` `Canon EOS R6` → `Canon EOS R6`).
pub(crate) fn camera([make, model]: [Option<&str>; 2]) -> Option<String> {
    match (make, model) {
        (Some(make), Some(model)) if model.to_lowercase().starts_with(&make.to_lowercase()) => {
            Some(model.to_string())
        }
        (Some(make), Some(model)) => Some(format!("{make} {model}")),
        (one, other) => one.or(other).map(str::to_string),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::DetectedObject;
    use crate::oci::vision::Vertex;

    fn done(objects: &[(&str, f64)]) -> AnalysisDocument {
        let mut d = AnalysisDocument::new("ns", "b", "uploads/x.jpg", Status::Done);
        d.objects = objects
            .iter()
            .map(|(n, c)| DetectedObject {
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
        assert_eq!(badge(Status::Waiting, None), "waiting");
        let mut waiting = AnalysisDocument::new("ns", "b", "uploads/x.jpg", Status::Waiting);
        waiting.next_attempt = Some("2026-11-28T09:22:57.320Z".into());
        assert_eq!(
            badge(Status::Waiting, Some(&waiting)),
            "waiting · next try 2026-11-28 09:22:57 UTC"
        );
        assert_eq!(alt_text("a.jpg", Some(&d)), "a.jpg: dog 92%, car 51%");
        assert_eq!(
            alt_text("a.jpg", Some(&done(&[]))),
            "a.jpg: no objects found"
        );
        assert_eq!(alt_text("a.jpg", None), "a.jpg (not analysed yet)");
    }

    #[test]
    fn names_read_as_a_sentence() {
        let names: Vec<String> = ["a.jpg", "b.jpg", "c.jpg", "d.jpg", "e.jpg"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(name_list(&names[..1]), "a.jpg");
        assert_eq!(name_list(&names[..2]), "a.jpg and b.jpg");
        assert_eq!(name_list(&names[..4]), "a.jpg, b.jpg, c.jpg and d.jpg");
        assert_eq!(name_list(&names), "a.jpg, b.jpg, c.jpg and 2 more");
        assert_eq!(
            (images(1).as_str(), images(2).as_str()),
            ("1 image", "2 images")
        );
    }

    #[test]
    fn times_read_well() {
        assert_eq!(when("2026-11-28T09:22:57.320Z"), "2026-11-28 09:22:57 UTC");
        assert_eq!(when("not a time"), "not a time");
    }
}
