//! The router: one table of routes (method, path pattern, handler), from which both dispatch
//! and the `405` answers' `Allow` header are read; the access and CSRF gates in front of it; and
//! the headers and error shapes every answer gets.
//!
//! Order: health and static files (always public) → cross-origin check on every state change
//! → session check (except for the sign-in routes) → the route, or `405`/`404`. Errors become
//! a JSON body under `/api/` or for clients that ask for JSON, an HTML page otherwise; details
//! of 5xx failures go to the log, not the client. Not here: handler logic.

use super::auth;
use super::pages::{self, Rendition};
use super::upload::{self, Form};
use super::{actions, api, assets, view, App};
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
        return Response::json(status, &crate::error::json_body(status, &message));
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
fn not_allowed(app: &App, req: &Request, allow: &str) -> Response {
    let e = Error::bad_request(405, format!("this address only accepts {allow}"));
    render_error(app, req, &e).with_header("Allow", allow)
}

/// What a route runs: the app, the request, and the path's parameter (`""` when it has none;
/// an `{id}` has already been checked to be an image id).
type Handler = fn(&App, &Request, &str) -> Result<Response>;

/// One route. `path` is literal segments and at most one parameter: `{id}` (an image id; a
/// malformed one is a 404) or `{name}` (any non-empty segment). `GET` routes answer `HEAD` too.
struct Route {
    method: &'static str,
    path: &'static str,
    /// Reached without a session (the sign-in form and its posts).
    public: bool,
    handler: Handler,
}

const fn signed_in(method: &'static str, path: &'static str, handler: Handler) -> Route {
    Route {
        method,
        path,
        public: false,
        handler,
    }
}

const fn public(method: &'static str, path: &'static str, handler: Handler) -> Route {
    Route {
        method,
        path,
        public: true,
        handler,
    }
}

/// Every route, the one list both dispatch and the `405` answers' `Allow` header read.
/// Health and static files (`/healthz`, `/static/…`) are answered before it.
#[rustfmt::skip] // One route a line reads as the table it is.
static ROUTES: &[Route] = &[
    public("GET", "/login", |app, _, _| pages::login(app, None, 200)),
    public("POST", "/login", |app, req, _| actions::login(app, req)),
    public("POST", "/logout", |app, req, _| actions::logout(app, req)),
    signed_in("GET", "/", |app, req, _| pages::gallery(app, req)),
    signed_in("POST", "/upload", |app, req, _| upload::post(app, req, Form::Browser)),
    signed_in("POST", "/delete", |app, req, _| actions::delete(app, req, None)),
    signed_in("POST", "/undo", |app, req, _| actions::undo(app, req)),
    signed_in("POST", "/reanalyze", |app, req, _| actions::reanalyze(app, req, None)),
    signed_in("GET", "/images/{id}", pages::detail),
    signed_in("GET", "/images/{id}/raw", |app, _, id| pages::raw(app, id)),
    signed_in("GET", "/images/{id}/thumb",
              |app, _, id| pages::rendition(app, id, Rendition::Thumb)),
    signed_in("GET", "/images/{id}/preview",
              |app, _, id| pages::rendition(app, id, Rendition::Preview)),
    signed_in("GET", "/images/{id}/json", |app, _, id| pages::json_download(app, id)),
    signed_in("POST", "/images/{id}/delete", |app, req, id| actions::delete(app, req, Some(id))),
    signed_in("POST", "/images/{id}/reanalyze",
              |app, req, id| actions::reanalyze(app, req, Some(id))),
    signed_in("GET", "/readyz", |app, _, _| api::ready(app)),
    signed_in("GET", "/api/images", |app, req, _| api::list(app, req)),
    signed_in("POST", "/api/images", |app, req, _| upload::post(app, req, Form::Api)),
    signed_in("POST", "/api/images/delete", |app, req, _| api::delete_many(app, req)),
    signed_in("GET", "/api/images/{id}", |app, _, id| api::get(app, id)),
    signed_in("PUT", "/api/images/{name}", upload::put),
    signed_in("DELETE", "/api/images/{id}", |app, _, id| api::delete(app, id)),
    signed_in("POST", "/api/images/{id}/reanalyze", |app, _, id| api::reanalyze(app, id)),
    signed_in("POST", "/api/reanalyze", |app, req, _| api::reanalyze_outdated(app, req)),
    signed_in("GET", "/api/status", |app, req, _| api::status(app, req)),
];

/// The routes whose path pattern fits `path` best (the most literal segments:
/// `/api/images/delete` over `/api/images/{id}`), with the parameter's value; empty when no
/// pattern fits.
fn routes_for(path: &str) -> (Vec<&'static Route>, &str) {
    let segments: Vec<&str> = path.strip_prefix('/').unwrap_or(path).split('/').collect();
    let mut best: (Vec<&'static Route>, &str) = (Vec::new(), "");
    let mut best_literals = 0;
    for route in ROUTES {
        let Some((literals, param)) = fit(route.path, &segments) else {
            continue;
        };
        if best.0.is_empty() || literals > best_literals {
            best = (vec![route], param);
            best_literals = literals;
        } else if literals == best_literals {
            best.0.push(route);
        }
    }
    best
}

/// How a pattern fits the path's segments: its number of literal segments and the parameter.
fn fit<'a>(pattern: &str, segments: &[&'a str]) -> Option<(usize, &'a str)> {
    let parts: Vec<&str> = pattern
        .strip_prefix('/')
        .unwrap_or(pattern)
        .split('/')
        .collect();
    if parts.len() != segments.len() {
        return None;
    }
    let mut literals = 0;
    let mut param = "";
    for (part, segment) in parts.iter().zip(segments) {
        if part.starts_with('{') {
            if segment.is_empty() {
                return None;
            }
            param = segment;
        } else if part == segment {
            literals += 1;
        } else {
            return None;
        }
    }
    Some((literals, param))
}

fn accepts(route: &Route, method: &str) -> bool {
    route.method == method || (route.method == "GET" && method == "HEAD")
}

/// The methods these routes accept, for `405`'s `Allow`.
fn allow(routes: &[&Route]) -> String {
    let methods: Vec<&str> = routes
        .iter()
        .map(|r| {
            if r.method == "GET" {
                "GET, HEAD"
            } else {
                r.method
            }
        })
        .collect();
    methods.join(", ")
}

fn dispatch(app: &App, req: &Request) -> Result<Response> {
    let method = req.method();
    let path = req.path();
    let read = matches!(method, "GET" | "HEAD");
    if path == "/healthz" || assets::is_asset(path) {
        if !read {
            return Ok(not_allowed(app, req, "GET, HEAD"));
        }
        let head = method == "HEAD";
        return Ok(assets::answer(path, req.header("accept-encoding"), head)
            .unwrap_or_else(|| Response::new(200)));
    }
    if !matches!(method, "GET" | "HEAD" | "OPTIONS") {
        auth::check_origin(app, req)?;
    }
    let (routes, param) = routes_for(path);
    let public = !routes.is_empty() && routes.iter().all(|r| r.public);
    if !public {
        if let Some(refused) = check_session(app, req, read)? {
            return Ok(refused);
        }
    }
    let Some(route) = routes.iter().find(|r| accepts(r, method)) else {
        if routes.is_empty() {
            return Err(Error::NotFound(path.into()));
        }
        return Ok(not_allowed(app, req, &allow(&routes)));
    };
    let param = if route.path.contains("{id}") {
        parse_id(param).ok_or_else(|| Error::NotFound(format!("image {param}")))?
    } else {
        param
    };
    (route.handler)(app, req, param)
}

/// The session gate: `None` when the request may go on, else the answer (a redirect to the
/// sign-in page for a page view, 401 for the rest, 429 while throttled).
fn check_session(app: &App, req: &Request, read: bool) -> Result<Option<Response>> {
    match auth::access(app, req) {
        auth::Access::Granted => Ok(None),
        auth::Access::Denied => {
            if wants_json(req) || !read {
                return Err(Error::bad_request(
                    401,
                    "sign in first (or send Authorization: Bearer <password>)",
                ));
            }
            Ok(Some(view::redirect("/login")))
        }
        auth::Access::Throttled { retry_after } => {
            let e = Error::bad_request(
                429,
                format!("too many wrong passwords from your address: retry in {retry_after} s"),
            );
            Ok(Some(
                render_error(app, req, &e).with_header("Retry-After", retry_after.to_string()),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_paths_name_their_methods() {
        let allowed = |path| allow(&routes_for(path).0);
        assert_eq!(allowed("/images/x/delete"), "POST");
        assert_eq!(allowed("/api/images/x"), "GET, HEAD, PUT, DELETE");
        assert_eq!(allowed("/api/images/delete"), "POST");
        assert_eq!(allowed("/api/images"), "GET, HEAD, POST");
        assert_eq!(allowed("/"), "GET, HEAD");
        assert_eq!(allowed("/login"), "GET, HEAD, POST");
        assert!(routes_for("/nope").0.is_empty());
        assert!(
            routes_for("/images/").0.is_empty(),
            "a parameter is never empty"
        );
    }

    #[test]
    fn the_most_literal_pattern_wins_and_hands_over_its_parameter() {
        let (routes, param) = routes_for("/api/images/delete");
        assert_eq!(routes.len(), 1);
        assert_eq!(
            (routes[0].method, routes[0].path),
            ("POST", "/api/images/delete")
        );
        let (routes, param_of_id) = routes_for("/api/images/a.jpg");
        assert_eq!(routes.len(), 3);
        assert_eq!((param, param_of_id), ("", "a.jpg"));
        assert!(routes_for("/login").0.iter().all(|r| r.public));
        assert!(routes_for("/").0.iter().all(|r| !r.public));
    }

    #[test]
    fn every_pattern_is_well_formed_and_listed_once() {
        let mut seen = std::collections::HashSet::new();
        for r in ROUTES {
            assert!(r.path.starts_with('/'), "{}", r.path);
            assert!(r.path.matches('{').count() <= 1, "{}", r.path);
            assert!(
                seen.insert((r.method, r.path)),
                "{} {} twice",
                r.method,
                r.path
            );
        }
    }

    #[test]
    fn json_is_for_the_api_and_clients_that_ask() {
        for (method, path, accept, json) in [
            ("GET", "/api/images", None, true),
            ("POST", "/upload", Some("application/json"), true),
            ("POST", "/upload", Some("text/html,application/json"), false),
            ("GET", "/", None, false),
        ] {
            let headers: Vec<_> = accept.map(|a| ("Accept", a)).into_iter().collect();
            let request = Request::fake(method, path, &headers, b"");
            assert_eq!(wants_json(&request), json, "{method} {path} {accept:?}");
        }
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
