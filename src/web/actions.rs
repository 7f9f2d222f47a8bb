//! What the pages' forms post to: delete (confirmed, with an undo window) and undo, re-analyse
//! (one image or all outdated ones), and sign in and out. Each checks its form token first,
//! acts through `catalog`, `undo_delete` or `auth`, and answers with a redirect, a
//! confirmation page, or a results page when part of a batch failed.
//!
//! Not here: uploads (`upload.rs`), the JSON API's equivalents (`api.rs`), the pages themselves
//! (`pages.rs`).

use super::auth::{self, Action, Login};
use super::catalog;
use super::form::Pairs;
use super::pages;
use super::undo_delete::{self, Undone};
use super::view::{redirect, result_item, results_page};
use super::App;
use crate::document::parse_id;
use crate::error::Result;
use crate::http::{Request, Response};

/// Most images one delete form may name.
const MAX_DELETE_IDS: usize = 500;

/// `POST /images/{id}/delete` and `POST /delete` (the gallery's selection). Without
/// `confirm=yes` (a browser without JavaScript, or a form posted by hand): the confirmation
/// page that names what would go. With it: the images leave the gallery at once and are
/// deleted when the undo window closes (`undo_delete/`); the gallery then shows what went and
/// the undo button. Nothing selected is a page saying so, not an error.
pub(crate) fn delete(app: &App, req: &Request, id: Option<&str>) -> Result<Response> {
    let form = Pairs::parse(&String::from_utf8_lossy(&req.read_body(256 * 1024)?))?;
    auth::check_token(app, Action::Delete, form.get(auth::TOKEN_FIELD))?;
    let ids: Vec<String> = match id {
        Some(id) => vec![id.to_string()],
        None => form
            .all("id")
            .filter_map(parse_id)
            .map(str::to_string)
            .take(MAX_DELETE_IDS)
            .collect(),
    };
    if ids.is_empty() {
        return pages::nothing_selected(app);
    }
    let names = display_names(app, &ids);
    if form.get("confirm") != Some("yes") {
        return pages::confirm_delete(app, req.path(), id, &ids, &names);
    }
    let images: Vec<(String, String)> = ids.into_iter().zip(names).collect();
    let batch = undo_delete::schedule(app, &images)?;
    Ok(redirect(&format!("/?deleted={batch}")))
}

/// The names the pages show for these ids (the id itself when the database cannot tell).
fn display_names(app: &App, ids: &[String]) -> Vec<String> {
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let docs = catalog::documents(app, &refs).unwrap_or_default();
    ids.iter()
        .map(|id| {
            docs.get(id)
                .and_then(|d| d.original_name.clone())
                .unwrap_or_else(|| id.clone())
        })
        .collect()
}

/// `POST /undo`: takes back the deletes of one batch whose window is still open, then shows the
/// gallery with what came back (or that it was too late).
pub(crate) fn undo(app: &App, req: &Request) -> Result<Response> {
    let form = Pairs::parse(&String::from_utf8_lossy(&req.read_body(16 * 1024)?))?;
    auth::check_token(app, Action::Delete, form.get(auth::TOKEN_FIELD))?;
    let batch = form.get("batch").filter(|b| undo_delete::is_batch(b));
    let restored = match batch {
        Some(b) => match undo_delete::undo(app, b)? {
            Undone::Restored(names) => names.len(),
            Undone::TooLate => 0,
        },
        None => 0,
    };
    Ok(redirect(&format!("/?restored={restored}")))
}

/// `POST /images/{id}/reanalyze` and `POST /reanalyze` (every outdated image).
pub(crate) fn reanalyze(app: &App, req: &Request, id: Option<&str>) -> Result<Response> {
    let form = Pairs::parse(&String::from_utf8_lossy(&req.read_body(16 * 1024)?))?;
    auth::check_token(app, Action::Reanalyze, form.get(auth::TOKEN_FIELD))?;
    if let Some(id) = id {
        catalog::reanalyze(app, id)?;
        return Ok(redirect(&format!("/images/{id}")));
    }
    let out = catalog::reanalyze_outdated(app, None)?;
    let heading = match &out.current {
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
        .map(|id| result_item(false, id, "could not be sent for re-analysis", None))
        .collect::<Result<Vec<_>>>()?;
    results_page(app, 200, "Re-analyse", &heading, items)
}

/// `POST /login`: the password in a form with a login token.
pub(crate) fn login(app: &App, req: &Request) -> Result<Response> {
    match auth::login(app, req)? {
        Login::Open => Ok(redirect("/")),
        Login::Accepted(cookie) => Ok(redirect("/").with_header("Set-Cookie", cookie)),
        Login::Refused => pages::login(app, Some("That password is not right."), 401),
        Login::Throttled { retry_after } => {
            let message = format!(
                "Too many wrong passwords from your address: wait {retry_after} seconds, then try again."
            );
            Ok(pages::login(app, Some(&message), 429)?
                .with_header("Retry-After", retry_after.to_string()))
        }
    }
}

/// `POST /logout`.
pub(crate) fn logout(app: &App, req: &Request) -> Result<Response> {
    let cookie = auth::logout(app, req)?;
    Ok(redirect("/login").with_header("Set-Cookie", cookie))
}
