//! The emulator's view of a request and its answer: fully buffered, names in lower case.
//!
//! The emulator must hash whole bodies to check signatures before it acts, so each service
//! handler sees a buffered [`EmuRequest`] and returns a plain [`EmuResponse`]; only the glue in
//! `mod.rs` touches our HTTP layer. Nothing here does I/O.

use crate::oci::encode;

/// A buffered request as the emulator's services see it.
#[derive(Debug, Clone, Default)]
pub struct EmuRequest {
    /// Upper-case method.
    pub method: String,
    /// The path as sent, still percent-encoded (what the signature covers, with the query).
    pub raw_path: String,
    /// The raw query (without `?`), still encoded; empty when absent.
    pub raw_query: String,
    /// Headers in arrival order, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The whole body.
    pub body: Vec<u8>,
}

impl EmuRequest {
    /// A request for `target` (path, optionally `?query`, as sent), with lower-cased headers.
    pub fn new(method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> EmuRequest {
        let (raw_path, raw_query) = target.split_once('?').unwrap_or((target, ""));
        EmuRequest {
            method: method.into(),
            raw_path: raw_path.into(),
            raw_query: raw_query.into(),
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_ascii_lowercase(), v.to_string()))
                .collect(),
            body: body.to_vec(),
        }
    }

    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Path and query exactly as sent.
    pub fn target(&self) -> String {
        if self.raw_query.is_empty() {
            self.raw_path.clone()
        } else {
            format!("{}?{}", self.raw_path, self.raw_query)
        }
    }

    /// Decoded query parameters in order; malformed escapes are kept as sent. A `+` is a space,
    /// as in every form decoder and on OCI (Oracle's SDKs send `prefix=sp+ace` for "sp ace");
    /// a literal plus arrives as `%2B`.
    pub fn query(&self) -> Vec<(String, String)> {
        self.raw_query
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                let decode = |s: &str| {
                    let spaced = s.replace('+', " ");
                    encode::percent_decode(&spaced).unwrap_or(spaced)
                };
                (decode(key), decode(value))
            })
            .collect()
    }

    /// The first query parameter called `name`, decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    /// The decoded path segments after `prefix` (which must match whole segments), or `None`.
    pub fn segments_after(&self, prefix: &str) -> Option<Vec<String>> {
        let rest = self.raw_path.strip_prefix(prefix)?;
        if !(rest.is_empty() || rest.starts_with('/')) {
            return None;
        }
        rest.split('/')
            .filter(|s| !s.is_empty())
            .map(encode::percent_decode)
            .collect()
    }
}

/// A plain answer from an emulated service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmuResponse {
    /// Status code.
    pub status: u16,
    /// Headers (lower-case names).
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl EmuResponse {
    /// An empty answer.
    pub fn empty(status: u16) -> EmuResponse {
        EmuResponse {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A JSON answer.
    pub fn json(status: u16, value: &serde_json::Value) -> EmuResponse {
        EmuResponse {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: serde_json::to_vec(value).unwrap_or_default(),
        }
    }

    /// OCI's error shape: `{"code": …, "message": …}`.
    pub fn error(status: u16, code: &str, message: &str) -> EmuResponse {
        EmuResponse::json(
            status,
            &serde_json::json!({"code": code, "message": message}),
        )
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> EmuResponse {
        self.headers.push((name.to_ascii_lowercase(), value.into()));
        self
    }

    /// The first header called `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_and_query_decode() {
        let request = EmuRequest {
            method: "GET".into(),
            raw_path: "/n/ns/b/images/o/up%20loads/a%2Fb.jpg".into(),
            raw_query: "prefix=up%20&limit=2&flag&q=a+b%2Bc".into(),
            ..EmuRequest::default()
        };
        assert_eq!(
            request.segments_after("/n").unwrap(),
            ["ns", "b", "images", "o", "up loads", "a/b.jpg"]
        );
        assert_eq!(request.segments_after("/nx"), None);
        assert_eq!(request.query_param("prefix").as_deref(), Some("up "));
        assert_eq!(request.query_param("flag").as_deref(), Some(""));
        assert_eq!(request.query_param("q").as_deref(), Some("a b+c"));
        assert_eq!(
            request.target(),
            "/n/ns/b/images/o/up%20loads/a%2Fb.jpg?prefix=up%20&limit=2&flag&q=a+b%2Bc"
        );
    }
}
