//! The embedded static files: stylesheets, script and icon, served under content-hashed names
//! (`/static/app.3f9c1e0a2b.css`) with a one-year immutable cache lifetime, and gzip-compressed
//! once at start rather than per request.
//!
//! A new build changes a file's hash and so its name; pages (never cached) always name the
//! current files. The plain names (`/static/app.css`) still answer, revalidated every time, for
//! a page an older instance served during a rolling update. `/favicon.ico` answers with the
//! SVG icon, so browsers that ask for it by habit get no 404. Not here: anything read from disk
//! at run time (the images need no files).

use std::sync::OnceLock;

use crate::http::compress;
use crate::http::Response;

/// One embedded file.
pub(crate) struct Asset {
    /// Its hashed path, as pages name it.
    pub href: String,
    /// Its plain path.
    plain: &'static str,
    content_type: &'static str,
    body: &'static [u8],
    /// `body` gzip-compressed, when that is smaller.
    gzip: Option<Vec<u8>>,
}

/// The embedded files.
pub(crate) struct Assets {
    pub css: Asset,
    /// The few rules for browsers without JavaScript (in a `<noscript>`).
    pub nojs: Asset,
    pub js: Asset,
    pub icon: Asset,
}

/// Cache lifetime of a hashed name: a year, `immutable` (its content can never change).
const HASHED_CACHE: &str = "public, max-age=31536000, immutable";
/// Plain names and `/favicon.ico`: stored, but checked again before each use.
const PLAIN_CACHE: &str = "public, max-age=0, must-revalidate";

fn asset(plain: &'static str, content_type: &'static str, body: &'static [u8]) -> Asset {
    let digest = ring::digest::digest(&ring::digest::SHA256, body);
    let hash: String = digest.as_ref()[..5]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let (stem, ext) = plain.rsplit_once('.').unwrap_or((plain, ""));
    let packed = compress::gzip(body);
    Asset {
        href: format!("{stem}.{hash}.{ext}"),
        plain,
        content_type,
        body,
        gzip: (packed.len() < body.len()).then_some(packed),
    }
}

/// The files, hashed and compressed once (`serve` asks at start).
pub(crate) fn assets() -> &'static Assets {
    static ASSETS: OnceLock<Assets> = OnceLock::new();
    ASSETS.get_or_init(|| Assets {
        css: asset(
            "/static/app.css",
            "text/css; charset=utf-8",
            include_bytes!("../../assets/app.css"),
        ),
        nojs: asset(
            "/static/nojs.css",
            "text/css; charset=utf-8",
            include_bytes!("../../assets/nojs.css"),
        ),
        js: asset(
            "/static/app.js",
            "text/javascript; charset=utf-8",
            include_bytes!("../../assets/app.js"),
        ),
        icon: asset(
            "/static/icon.svg",
            "image/svg+xml",
            include_bytes!("../../assets/icon.svg"),
        ),
    })
}

/// True for a path [`answer`] serves.
pub(crate) fn is_asset(path: &str) -> bool {
    let a = assets();
    path == "/favicon.ico"
        || [&a.css, &a.nojs, &a.js, &a.icon]
            .iter()
            .any(|x| path == x.href || path == x.plain)
}

/// The answer for `path` (`None` when it is not one of ours), compressed when `accept_encoding`
/// allows it; `head` leaves the body out of the decision (the writer sends none).
pub(crate) fn answer(path: &str, accept_encoding: Option<&str>, head: bool) -> Option<Response> {
    let a = assets();
    let (asset, cache) = if path == "/favicon.ico" {
        (&a.icon, PLAIN_CACHE)
    } else {
        let asset = [&a.css, &a.nojs, &a.js, &a.icon]
            .into_iter()
            .find(|x| path == x.href || path == x.plain)?;
        (
            asset,
            if path == asset.href {
                HASHED_CACHE
            } else {
                PLAIN_CACHE
            },
        )
    };
    let resp = Response::new(200)
        .with_header("Content-Type", asset.content_type)
        .with_header("Cache-Control", cache)
        .with_header("Vary", "Accept-Encoding");
    Some(match &asset.gzip {
        Some(packed) if !head && compress::accepts_gzip(accept_encoding) => resp
            .with_header("Content-Encoding", "gzip")
            .with_body(packed.clone()),
        _ => resp.with_body(asset.body),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashed_names_are_cached_for_a_year_and_gzipped_when_accepted() {
        let a = assets();
        assert!(a.css.href.starts_with("/static/app.") && a.css.href.ends_with(".css"));
        assert_eq!(a.css.href.len(), "/static/app.0123456789.css".len());
        assert_ne!(a.css.href, a.js.href);
        let r = answer(&a.css.href, Some("gzip, br"), false).unwrap();
        assert_eq!(r.header("cache-control"), Some(HASHED_CACHE));
        assert_eq!(r.header("content-encoding"), Some("gzip"));
        assert_eq!(r.header("vary"), Some("Accept-Encoding"));
        assert!(r.body_bytes().unwrap().len() < a.css.body.len() / 2);
        let r = answer(&a.js.href, Some("gzip;q=0"), false).unwrap();
        assert_eq!(r.header("content-encoding"), None);
        assert_eq!(r.body_bytes().unwrap(), a.js.body);
        let r = answer(&a.js.href, Some("gzip"), true).unwrap();
        assert_eq!(
            r.header("content-encoding"),
            None,
            "HEAD: no body to encode"
        );
        let r = answer("/static/app.css", None, false).unwrap();
        assert_eq!(r.header("cache-control"), Some(PLAIN_CACHE));
        let r = answer("/favicon.ico", None, false).unwrap();
        assert_eq!(r.header("content-type"), Some("image/svg+xml"));
        assert!(answer("/static/app.0000000000.css", None, false).is_none());
        assert!(is_asset(&a.icon.href) && !is_asset("/static/other.css"));
    }
}
