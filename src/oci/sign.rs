//! The pure OCI request signer (HTTP signature "version 1", draft-cavage-08, rsa-sha256).
//!
//! In: method, path-and-query exactly as sent, host, the headers already on the request, the body
//! rule, a key and the time as a value. Out: the headers to add, `authorization` last. Nothing
//! here reads files, the clock or the network, and nothing knows the HTTP client; "who signs"
//! lives in `auth`, loading keys in `keys`. The stages (`signing_string`, `signature`,
//! `authorization`) are public so tests can check them one by one against published vectors.
//!
//! Deliberately not here: percent-encoding (the caller signs the bytes it sends), checking
//! signatures (the emulator's `signature.rs`, which rebuilds the signing string with
//! `request_target` and `push_line` from here) and key loading (`keys.rs`).

use std::fmt;
use std::time::SystemTime;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ring::rand::SystemRandom;

use crate::oci::keys::PrivateKey;
use crate::{Error, Result};

/// Header and pseudo-header names, lower case, as they appear in `headers="…"`.
pub mod names {
    /// The request date (RFC 7231 IMF-fixdate, GMT).
    pub const DATE: &str = "date";
    /// Browser substitute for `date`; OCI prefers it when both are present.
    pub const X_DATE: &str = "x-date";
    /// Pseudo-header: lower-case method, a space, path and query as sent.
    pub const REQUEST_TARGET: &str = "(request-target)";
    /// The `Host` value, with `:port` for a non-default port.
    pub const HOST: &str = "host";
    /// Decimal body length.
    pub const CONTENT_LENGTH: &str = "content-length";
    /// Body media type.
    pub const CONTENT_TYPE: &str = "content-type";
    /// Base64 of the SHA-256 of the exact body bytes.
    pub const X_CONTENT_SHA256: &str = "x-content-sha256";
    /// Carries the signature (there is no separate `Signature` header).
    pub const AUTHORIZATION: &str = "authorization";
}

use names::*;

/// The content type the SDKs sign when the caller sets none.
const DEFAULT_CONTENT_TYPE: &str = "application/json";
/// The only algorithm OCI accepts.
pub(crate) const ALGORITHM: &str = "rsa-sha256";
/// The only signature version OCI defines.
pub(crate) const VERSION: &str = "1";

/// `x-content-sha256` of an empty body.
pub const EMPTY_BODY_SHA256: &str = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";

/// Whether the body is hashed into the signature.
#[derive(Debug, Clone, Copy)]
pub enum Body<'a> {
    /// Hash these exact bytes (`x-content-sha256`, `content-length`, `content-type` signed).
    /// Only POST, PUT and PATCH sign a body; for other methods this is the same as `Unsigned`.
    Signed(&'a [u8]),
    /// The Object Storage PutObject/UploadPart exception: only `date (request-target) host`.
    Unsigned,
}

/// A request as it will go on the wire.
#[derive(Debug, Clone, Copy)]
pub struct RequestToSign<'a> {
    /// Upper-case method, e.g. `GET`.
    pub method: &'a str,
    /// Path and query exactly as sent, still percent-encoded.
    pub path_and_query: &'a str,
    /// The `Host` value: host, plus `:port` for a non-default port.
    pub host: &'a str,
    /// Headers already on the request (lower- or mixed-case names).
    pub headers: &'a [(&'a str, &'a str)],
    /// The body rule.
    pub body: Body<'a>,
}

/// The exact text that gets signed, with the header list it was built from.
///
/// Printable (`Display`) so a 401 can be diagnosed by comparing it with what the server rebuilt;
/// it holds no secrets (date, path, host and body headers only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningString {
    text: String,
    headers: Vec<&'static str>,
    to_add: Vec<(&'static str, String)>,
}

impl SigningString {
    /// The signing string: one `name: value` line per signed header, joined by `\n`.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The signed header names, in order (the `headers="…"` list).
    pub fn signed_headers(&self) -> &[&'static str] {
        &self.headers
    }

    /// Headers the request lacks and must carry with these exact values (before `authorization`).
    pub fn headers_to_add(&self) -> &[(&'static str, String)] {
        &self.to_add
    }
}

impl fmt::Display for SigningString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Signs `request`; returns the headers to add (lower-case names), `authorization` last.
///
/// `date` is formatted from `now` unless the request already carries `date` or `x-date`; for a
/// POST, PUT or PATCH with [`Body::Signed`], `content-length` and `content-type` are added when
/// missing and `x-content-sha256` always (a caller-supplied one must match the body).
pub fn sign(
    request: &RequestToSign<'_>,
    key_id: &str,
    key: &PrivateKey,
    now: SystemTime,
) -> Result<Vec<(&'static str, String)>> {
    let text = signing_string(request, now)?;
    let signature = signature(key, &text)?;
    let authorization = authorization(key_id, text.signed_headers(), &signature)?;
    let mut out = text.to_add;
    out.push((AUTHORIZATION, authorization));
    Ok(out)
}

/// Stage 1: the signing string for `request` at `now`, and the headers it implies.
pub fn signing_string(request: &RequestToSign<'_>, now: SystemTime) -> Result<SigningString> {
    check_token("method", request.method)?;
    check_request_target(request.path_and_query)?;
    check_token("host", request.host)?;
    for (name, value) in request.headers {
        if value.contains(['\r', '\n']) {
            return Err(Error::Signing(format!(
                "header {name} contains a line break"
            )));
        }
    }
    let existing = |name: &str| find_header(request.headers, name);

    let mut to_add = Vec::new();
    let mut headers = Vec::with_capacity(6);
    let mut values = Vec::with_capacity(6);

    // OCI prefers x-date when both are present, so sign the one it will check.
    if let Some(x_date) = existing(X_DATE)? {
        headers.push(X_DATE);
        values.push(x_date.to_owned());
    } else if let Some(date) = existing(DATE)? {
        headers.push(DATE);
        values.push(date.to_owned());
    } else {
        let date = httpdate::fmt_http_date(now);
        headers.push(DATE);
        values.push(date.clone());
        to_add.push((DATE, date));
    }
    headers.push(REQUEST_TARGET);
    values.push(request_target(request.method, request.path_and_query));
    headers.push(HOST);
    values.push(request.host.to_owned());

    if let Some(body) = signed_body(request) {
        let length = body.len().to_string();
        match existing(CONTENT_LENGTH)? {
            Some(sent) if sent.trim() != length => {
                return Err(Error::Signing(format!(
                    "content-length header says {sent} but the body has {length} bytes"
                )))
            }
            Some(sent) => values.push(sent.to_owned()),
            None => {
                values.push(length.clone());
                to_add.push((CONTENT_LENGTH, length));
            }
        }
        headers.push(CONTENT_LENGTH);

        match existing(CONTENT_TYPE)? {
            Some(sent) => values.push(sent.to_owned()),
            None => {
                values.push(DEFAULT_CONTENT_TYPE.to_owned());
                to_add.push((CONTENT_TYPE, DEFAULT_CONTENT_TYPE.to_owned()));
            }
        }
        headers.push(CONTENT_TYPE);

        let hash = body_sha256(body);
        match existing(X_CONTENT_SHA256)? {
            Some(sent) if sent != hash => {
                return Err(Error::Signing(
                    "x-content-sha256 header does not match the body".into(),
                ))
            }
            Some(_) => {}
            None => to_add.push((X_CONTENT_SHA256, hash.clone())),
        }
        headers.push(X_CONTENT_SHA256);
        values.push(hash);
    }

    let mut text = String::new();
    for (name, value) in headers.iter().zip(&values) {
        push_line(&mut text, name, value);
    }
    Ok(SigningString {
        text,
        headers,
        to_add,
    })
}

/// Stage 2: the Base64 RSASSA-PKCS1-v1_5/SHA-256 signature of the signing string.
pub fn signature(key: &PrivateKey, text: &SigningString) -> Result<String> {
    let mut out = vec![0u8; key.pair.public().modulus_len()];
    key.pair
        .sign(
            &ring::signature::RSA_PKCS1_SHA256,
            &SystemRandom::new(),
            text.as_str().as_bytes(),
            &mut out,
        )
        .map_err(|_| Error::Signing("ring could not sign with this key".into()))?;
    Ok(STANDARD.encode(out))
}

/// Stage 3: the `authorization` value for a key id, signed header list and Base64 signature.
pub fn authorization(key_id: &str, signed_headers: &[&str], signature: &str) -> Result<String> {
    if key_id.is_empty() || key_id.contains(['"', '\r', '\n']) {
        // Never echo the key id: for a security token it is a credential.
        return Err(Error::Signing(
            "key id is empty or contains a quote or line break".into(),
        ));
    }
    Ok(format!(
        "Signature version=\"{VERSION}\",headers=\"{}\",keyId=\"{key_id}\",algorithm=\"{ALGORITHM}\",signature=\"{signature}\"",
        signed_headers.join(" ")
    ))
}

/// Base64(SHA-256(body)), the `x-content-sha256` value.
pub fn body_sha256(body: &[u8]) -> String {
    STANDARD.encode(ring::digest::digest(&ring::digest::SHA256, body))
}

fn signed_body<'a>(request: &RequestToSign<'a>) -> Option<&'a [u8]> {
    let has_body = ["POST", "PUT", "PATCH"]
        .iter()
        .any(|m| request.method.eq_ignore_ascii_case(m));
    match request.body {
        Body::Signed(body) if has_body => Some(body),
        _ => None,
    }
}

/// The `(request-target)` value: lower-case method, a space, path and query as sent.
pub(crate) fn request_target(method: &str, path_and_query: &str) -> String {
    format!("{} {path_and_query}", method.to_ascii_lowercase())
}

/// Appends one `name: value` line of the signing string.
pub(crate) fn push_line(text: &mut String, name: &str, value: &str) {
    if !text.is_empty() {
        text.push('\n');
    }
    text.push_str(name);
    text.push_str(": ");
    text.push_str(value);
}

/// The single value of a header (case-insensitive); a repeated header cannot be signed.
fn find_header<'a>(headers: &[(&str, &'a str)], name: &str) -> Result<Option<&'a str>> {
    let mut found = headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name));
    let first = found.next().map(|(_, v)| *v);
    if found.next().is_some() {
        return Err(Error::Signing(format!(
            "header {name} appears more than once"
        )));
    }
    Ok(first)
}

fn check_token(what: &str, value: &str) -> Result<()> {
    if value.is_empty() || value.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(Error::Signing(format!(
            "{what} is empty or contains spaces or control characters"
        )));
    }
    Ok(())
}

fn check_request_target(path_and_query: &str) -> Result<()> {
    check_token("path and query (encode spaces as %20)", path_and_query)?;
    if !path_and_query.starts_with('/') {
        return Err(Error::Signing("path and query must start with /".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    // 2014-01-05 21:31:40 GMT, the date of Oracle's vectors.
    fn doc_time() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_388_957_500)
    }

    fn request<'a>(
        method: &'a str,
        headers: &'a [(&'a str, &'a str)],
        body: Body<'a>,
    ) -> RequestToSign<'a> {
        RequestToSign {
            method,
            path_and_query: "/n/ns/b/bucket/o/a%20b?x=1",
            host: "objectstorage.ca-toronto-1.oraclecloud.com",
            headers,
            body,
        }
    }

    #[test]
    fn get_signs_three_headers_and_adds_date_from_now() {
        let text = signing_string(&request("GET", &[], Body::Signed(b"")), doc_time()).unwrap();
        assert_eq!(text.signed_headers(), &[DATE, REQUEST_TARGET, HOST]);
        assert_eq!(
            text.as_str(),
            "date: Sun, 05 Jan 2014 21:31:40 GMT\n(request-target): get /n/ns/b/bucket/o/a%20b?x=1\nhost: objectstorage.ca-toronto-1.oraclecloud.com"
        );
        assert_eq!(
            text.headers_to_add(),
            &[(DATE, "Sun, 05 Jan 2014 21:31:40 GMT".to_string())]
        );
    }

    #[test]
    fn existing_date_is_used_as_is_and_x_date_wins() {
        let headers = [("Date", "Thu, 05 Jan 2014 21:31:40 GMT")];
        let text = signing_string(&request("GET", &headers, Body::Unsigned), doc_time()).unwrap();
        assert!(text.as_str().starts_with("date: Thu, 05 Jan 2014"));
        assert!(text.headers_to_add().is_empty());

        let headers = [("date", "a"), ("X-Date", "b")];
        let text = signing_string(&request("GET", &headers, Body::Unsigned), doc_time()).unwrap();
        assert_eq!(text.signed_headers()[0], X_DATE);
        assert!(text.as_str().starts_with("x-date: b\n"));
    }

    #[test]
    fn empty_post_signs_length_zero_type_and_empty_hash() {
        let text = signing_string(&request("POST", &[], Body::Signed(b"")), doc_time()).unwrap();
        assert_eq!(
            text.signed_headers(),
            &[
                DATE,
                REQUEST_TARGET,
                HOST,
                CONTENT_LENGTH,
                CONTENT_TYPE,
                X_CONTENT_SHA256
            ]
        );
        assert!(text.as_str().ends_with(
            "content-length: 0\ncontent-type: application/json\nx-content-sha256: 47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        ));
        let added: Vec<&str> = text.headers_to_add().iter().map(|(n, _)| *n).collect();
        assert_eq!(
            added,
            [DATE, CONTENT_LENGTH, CONTENT_TYPE, X_CONTENT_SHA256]
        );
        assert_eq!(body_sha256(b""), EMPTY_BODY_SHA256);
    }

    #[test]
    fn put_object_exception_signs_no_body_headers() {
        let headers = [("Content-Length", "5"), ("Content-Type", "image/jpeg")];
        let text = signing_string(&request("PUT", &headers, Body::Unsigned), doc_time()).unwrap();
        assert_eq!(text.signed_headers(), &[DATE, REQUEST_TARGET, HOST]);
        assert!(!text.as_str().contains("content"));
    }

    #[test]
    fn caller_body_headers_are_kept_but_must_match() {
        let headers = [("Content-Type", "image/png"), ("content-length", "3")];
        let text =
            signing_string(&request("POST", &headers, Body::Signed(b"abc")), doc_time()).unwrap();
        assert!(text.as_str().contains("content-type: image/png\n"));
        let added: Vec<&str> = text.headers_to_add().iter().map(|(n, _)| *n).collect();
        assert_eq!(added, [DATE, X_CONTENT_SHA256]);

        let wrong = [("content-length", "4")];
        let err =
            signing_string(&request("POST", &wrong, Body::Signed(b"abc")), doc_time()).unwrap_err();
        assert!(err.to_string().contains("content-length"), "{err}");
        let wrong = [("x-content-sha256", EMPTY_BODY_SHA256)];
        assert!(
            signing_string(&request("POST", &wrong, Body::Signed(b"abc")), doc_time()).is_err()
        );
    }

    #[test]
    fn refuses_unsignable_input() {
        let dup = [("date", "a"), ("Date", "b")];
        assert!(signing_string(&request("GET", &dup, Body::Unsigned), doc_time()).is_err());
        let injected = [("x-extra", "a\r\nb")];
        assert!(signing_string(&request("GET", &injected, Body::Unsigned), doc_time()).is_err());
        let mut spaced = request("GET", &[], Body::Unsigned);
        spaced.path_and_query = "/o/a b";
        assert!(signing_string(&spaced, doc_time()).is_err());
        let mut relative = request("GET", &[], Body::Unsigned);
        relative.path_and_query = "o";
        assert!(signing_string(&relative, doc_time()).is_err());
        assert!(authorization("a\"b", &[DATE], "sig").is_err());
    }
}
