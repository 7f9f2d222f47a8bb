//! What the pages' forms post to: delete, re-analyse (one image or all outdated ones), and
//! sign in and out. Each checks its form token first, acts through `catalog` or `auth`, and
//! answers with a redirect, or a results page when part of a batch failed.
//!
//! Not here: uploads (`upload.rs`), the JSON API's equivalents (`api.rs`), the pages themselves
//! (`pages.rs`).

use super::auth::{self, Action, Login};
use super::catalog;
use super::form::Pairs;
use super::pages;
use super::view::{redirect, result_item, results_page};
use super::App;
use crate::error::{Error, Result};
use crate::http::{Request, Response};

/// Most images one delete form may name.
const MAX_DELETE_IDS: usize = 500;

/// `POST /images/{id}/delete` and `POST /delete` (the gallery's selection).
pub(crate) fn delete(app: &App, req: &Request, id: Option<&str>) -> Result<Response> {
    let form = Pairs::parse(&String::from_utf8_lossy(&req.read_body(256 * 1024)?))?;
    auth::check_token(app, Action::Delete, form.get(auth::TOKEN_FIELD))?;
    let ids: Vec<String> = match id {
        Some(id) => vec![id.to_string()],
        None => form
            .all("id")
            .filter_map(catalog::parse_id)
            .map(str::to_string)
            .take(MAX_DELETE_IDS)
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
        return Ok(redirect("/"));
    }
    let items = results
        .iter()
        .map(|r| {
            let message = r.error.clone().unwrap_or_else(|| "deleted".into());
            result_item(r.ok(), &r.id, &message, None)
        })
        .collect::<Result<Vec<_>>>()?;
    let failed = results.iter().filter(|r| !r.ok()).count();
    let heading = format!(
        "{failed} of {} could not be deleted completely",
        results.len()
    );
    results_page(app, 502, "Delete", &heading, items)
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
