//! The router: one hand-written match from method and path to a handler, the access and CSRF
//! gates in front of it, and the headers and error shapes every answer gets.
//!
//! Order: health and static files (always public) → cross-origin check on every state change
//! → login/logout → session check → routes. Errors become a JSON body under `/api/` or for
//! clients that ask for JSON, an HTML page otherwise; details of 5xx failures go to the log,
//! not the client. Not here: handler logic.

use super::auth;
use super::upload::{self, Form};
use super::{actions, api, assets, pages, view, App};
use crate::document::parse_id;
use crate::error::{Error, Result};
use crate::http::{Request, Response};

/// The pages' Content-Security-Policy: our own files only, no inline code.
pub(crate) const PAGE_CSP: &str = "default-src 'none'; img-src 'self'; style-src 'self'; \
script-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Answers one request; never fails (errors are rendered here).
pub(crate) fn route(app: &App, req: &Request) -> Result<Response> {
    let resp = match dispatch(app, req) {
        Ok(resp) => resp,
        Err(e) => render_error(app, req, &e),
    };
    Ok(finish(req, resp))
}

fn wants_json(req: &Request) -> bool {
    req.path().starts_with("/api/")
        || req.path() == "/readyz"
        || req
            .header("accept")
            .is_some_and(|a| a.contains("application/json") && !a.contains("text/html"))
}

fn render_error(app: &App, req: &Request, e: &Error) -> Response {
    let status = e.status();
    let message = match e {
        Error::BadRequest { reason, .. } => reason.clone(),
        Error::NotFound(_) => "There is no such image (it may have been deleted).".into(),
        _ => {
            log::error!(target: "webapp", "{} {} {}: {e}", req.request_id(), req.method(), req.path());
            format!(
                "A service this app depends on did not answer properly; try again in a minute \
                 (request id {}).",
                req.request_id()
            )
        }
    };
    if status < 500 {
        log::debug!(target: "webapp", "{} {} {}: {e}", req.request_id(), req.method(), req.path());
    }
    if wants_json(req) {
        return Response::json(status, &crate::error::json_body(status, &message))
            .unwrap_or_else(|_| Response::error(status, None));
    }
    view::error_page(app, status, &message).unwrap_or_else(|_| Response::error(status, None))
}

/// Headers every answer gets; pages get the full set; text answers are gzipped for clients that
/// accept it.
fn finish(req: &Request, resp: Response) -> Response {
    let mut resp = resp;
    if resp.header("x-content-type-options").is_none() {
        resp = resp.with_header("X-Content-Type-Options", "nosniff");
    }
    if auth::is_https(req) {
        resp = resp.with_header(
            "Strict-Transport-Security",
            "max-age=63072000; includeSubDomains",
        );
    }
    let is_html = resp
        .header("content-type")
        .is_some_and(|t| t.starts_with("text/html"));
    if is_html {
        resp = resp
            .with_header("Content-Security-Policy", PAGE_CSP)
            .with_header("Referrer-Policy", "strict-origin-when-cross-origin")
            .with_header("X-Frame-Options", "DENY")
            .with_header("Cross-Origin-Opener-Policy", "same-origin")
            .with_header("Cache-Control", "no-store");
    } else if resp.header("cache-control").is_none() {
        resp = resp.with_header("Cache-Control", "no-store");
    }
    resp.compressed_for(req.header("accept-encoding"), req.method() == "HEAD")
}

/// A 405 rendered like every error, with its `Allow` header.
fn not_allowed(app: &App, req: &Request, allow: &str) -> Result<Response> {
    let e = Error::bad_request(405, format!("this address only accepts {allow}"));
    Ok(render_error(app, req, &e).with_header("Allow", allow))
}

fn dispatch(app: &App, req: &Request) -> Result<Response> {
    let method = req.method();
    let path = req.path();
    let read = matches!(method, "GET" | "HEAD");
    if path == "/healthz" || assets::is_asset(path) {
        if !read {
            return not_allowed(app, req, "GET, HEAD");
        }
        let head = method == "HEAD";
        return Ok(assets::answer(path, req.header("accept-encoding"), head)
            .unwrap_or_else(|| Response::new(200)));
    }
    if !matches!(method, "GET" | "HEAD" | "OPTIONS") {
        auth::check_origin(app, req)?;
    }
    match (method, path) {
        ("GET" | "HEAD", "/login") => return pages::login(app, None, 200),
        ("POST", "/login") => return actions::login(app, req),
        ("POST", "/logout") => return actions::logout(app, req),
        (_, "/login") => return not_allowed(app, req, "GET, POST"),
        (_, "/logout") => return not_allowed(app, req, "POST"),
        _ => {}
    }
    match auth::access(app, req) {
        auth::Access::Granted => {}
        auth::Access::Denied => {
            if wants_json(req) || !read {
                return Err(Error::bad_request(
                    401,
                    "sign in first (or send Authorization: Bearer <password>)",
                ));
            }
            return Ok(view::redirect("/login"));
        }
        auth::Access::Throttled { retry_after } => {
            let e = Error::bad_request(
                429,
                format!("too many wrong passwords from your address: retry in {retry_after} s"),
            );
            return Ok(
                render_error(app, req, &e).with_header("Retry-After", retry_after.to_string())
            );
        }
    }
    let segments: Vec<&str> = path.strip_prefix('/').unwrap_or(path).split('/').collect();
    match (method, segments.as_slice()) {
        ("GET" | "HEAD", [""]) => pages::gallery(app, req),
        ("POST", ["upload"]) => upload::post(app, req, Form::Browser),
        ("POST", ["delete"]) => actions::delete(app, req, None),
        ("POST", ["undo"]) => actions::undo(app, req),
        ("POST", ["reanalyze"]) => actions::reanalyze(app, req, None),
        ("GET" | "HEAD", ["images", id]) => pages::detail(app, req, image(id)?),
        ("GET" | "HEAD", ["images", id, "raw"]) => pages::raw(app, image(id)?),
        ("GET" | "HEAD", ["images", id, "thumb"]) => {
            pages::rendition(app, image(id)?, pages::Rendition::Thumb)
        }
        ("GET" | "HEAD", ["images", id, "preview"]) => {
            pages::rendition(app, image(id)?, pages::Rendition::Preview)
        }
        ("GET" | "HEAD", ["images", id, "json"]) => pages::json_download(app, image(id)?),
        ("POST", ["images", id, "delete"]) => actions::delete(app, req, Some(image(id)?)),
        ("POST", ["images", id, "reanalyze"]) => actions::reanalyze(app, req, Some(image(id)?)),
        ("GET" | "HEAD", ["readyz"]) => api::ready(app),
        ("GET" | "HEAD", ["api", "images"]) => api::list(app, req),
        ("POST", ["api", "images"]) => upload::post(app, req, Form::Api),
        ("POST", ["api", "images", "delete"]) => api::delete_many(app, req),
        ("GET" | "HEAD", ["api", "images", id]) => api::get(app, image(id)?),
        ("PUT", ["api", "images", name]) if !name.is_empty() => upload::put(app, req, name),
        ("DELETE", ["api", "images", id]) => api::delete(app, image(id)?),
        ("POST", ["api", "images", id, "reanalyze"]) => api::reanalyze(app, image(id)?),
        ("POST", ["api", "reanalyze"]) => api::reanalyze_outdated(app, req),
        ("GET" | "HEAD", ["api", "status"]) => api::status(app, req),
        (_, shape) => match allowed(shape) {
            Some(allow) => not_allowed(app, req, allow),
            None => Err(Error::NotFound(path.into())),
        },
    }
}

fn image(id: &str) -> Result<&str> {
    parse_id(id).ok_or_else(|| Error::NotFound(format!("image {id}")))
}

/// The methods a known path accepts, for `405`.
fn allowed(shape: &[&str]) -> Option<&'static str> {
    Some(match shape {
        [""]
        | ["images", _]
        | ["images", _, "raw" | "json" | "thumb" | "preview"]
        | ["readyz"]
        | ["api", "status"] => "GET, HEAD",
        ["upload"]
        | ["delete"]
        | ["undo"]
        | ["reanalyze"]
        | ["images", _, "delete" | "reanalyze"] => "POST",
        ["api", "images"] => "GET, HEAD, POST",
        ["api", "images", "delete"] | ["api", "images", _, "reanalyze"] | ["api", "reanalyze"] => {
            "POST"
        }
        ["api", "images", _] => "GET, HEAD, PUT, DELETE",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_paths_name_their_methods() {
        assert_eq!(allowed(&["images", "x", "delete"]), Some("POST"));
        assert_eq!(
            allowed(&["api", "images", "x"]),
            Some("GET, HEAD, PUT, DELETE")
        );
        assert_eq!(allowed(&[""]), Some("GET, HEAD"));
        assert_eq!(allowed(&["nope"]), None);
    }

    #[test]
    fn json_is_for_the_api_and_clients_that_ask() {
        assert!(wants_json(&Request::fake("GET", "/api/images", &[], b"")));
        assert!(wants_json(&Request::fake(
            "POST",
            "/upload",
            &[("Accept", "application/json")],
            b""
        )));
        assert!(!wants_json(&Request::fake(
            "POST",
            "/upload",
            &[("Accept", "text/html,application/json")],
            b""
        )));
        assert!(!wants_json(&Request::fake("GET", "/", &[], b"")));
    }

    #[test]
    fn the_page_policy_allows_only_our_own_files() {
        for part in [
            "default-src 'none'",
            "img-src 'self'",
            "style-src 'self'",
            "script-src 'self'",
            "connect-src 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
        ] {
            assert!(PAGE_CSP.contains(part), "{part}");
        }
        assert!(!PAGE_CSP.contains("unsafe"));
    }
}
