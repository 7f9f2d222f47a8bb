//! The pure OCI request signer (HTTP signature "version 1", draft-cavage-08, rsa-sha256).
//!
//! In: method, path-and-query exactly as sent, host, the headers already on the request, the body
//! rule, a key and the time as a value. Out: the headers to add, `authorization` last. Nothing
//! here reads files, the clock or the network, and nothing knows the HTTP client; "who signs"
//! lives in `auth`. The stages (`signing_string`, `signature`, `authorization`) are public so
//! tests can check them one by one against published vectors, and `verify` lets a local emulator
//! check signatures with a public key.
//!
//! Deliberately not here: percent-encoding (the caller signs the bytes it sends), clock-skew
//! checks (the verifier has no clock either), and encrypted keys (see `PrivateKey::from_pem`).

use std::fmt;
use std::time::SystemTime;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::rsa::KeyPair;
use ring::signature::{UnparsedPublicKey, RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY};
use rustls_pki_types::pem::{PemObject, SectionKind};

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
const ALGORITHM: &str = "rsa-sha256";
/// The only signature version OCI defines.
const VERSION: &str = "1";

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

/// The parameters of an `Authorization: Signature …` header.
#[derive(Clone, PartialEq, Eq)]
pub struct Authorization {
    key_id: String,
    headers: Vec<String>,
    signature: String,
}

impl Authorization {
    /// Parses `Signature version="1",headers="…",keyId="…",algorithm="rsa-sha256",signature="…"`
    /// (parameters in any order). Rejects other algorithms and versions.
    pub fn parse(value: &str) -> Result<Authorization> {
        let bad = |why: &str| Error::Signing(format!("authorization header: {why}"));
        let rest = value
            .trim()
            .strip_prefix("Signature ")
            .ok_or_else(|| bad("scheme is not Signature"))?;
        let (mut key_id, mut headers, mut algorithm, mut signature, mut version) =
            (None, None, None, None, None);
        let mut rest = rest.trim_start();
        while !rest.is_empty() {
            let (name, after) = rest
                .split_once("=\"")
                .ok_or_else(|| bad("malformed parameter"))?;
            let (param, after) = after
                .split_once('"')
                .ok_or_else(|| bad("unterminated quote"))?;
            let slot = match name.trim() {
                "keyId" => &mut key_id,
                "headers" => &mut headers,
                "algorithm" => &mut algorithm,
                "signature" => &mut signature,
                "version" => &mut version,
                _ => return Err(bad("unknown parameter")),
            };
            if slot.replace(param).is_some() {
                return Err(bad("repeated parameter"));
            }
            rest = after.trim_start();
            rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
        }
        if algorithm != Some(ALGORITHM) {
            return Err(bad("algorithm must be rsa-sha256"));
        }
        if version.is_some_and(|v| v != VERSION) {
            return Err(bad("version must be 1"));
        }
        let headers: Vec<String> = headers
            .ok_or_else(|| bad("headers parameter missing"))?
            .split(' ')
            .filter(|h| !h.is_empty())
            .map(str::to_owned)
            .collect();
        Ok(Authorization {
            key_id: key_id.ok_or_else(|| bad("keyId missing"))?.to_owned(),
            headers,
            signature: signature
                .ok_or_else(|| bad("signature missing"))?
                .to_owned(),
        })
    }

    /// `tenancy/user/fingerprint` or `ST$<token>`.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The signed header names, in order.
    pub fn signed_headers(&self) -> Vec<&str> {
        self.headers.iter().map(String::as_str).collect()
    }

    /// The Base64 signature.
    pub fn signature(&self) -> &str {
        &self.signature
    }
}

impl fmt::Debug for Authorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A security-token key id is a bearer credential: keep only its kind.
        let key_id = if self.key_id.starts_with("ST$") {
            "ST$<redacted>"
        } else {
            &self.key_id
        };
        f.debug_struct("Authorization")
            .field("key_id", &key_id)
            .field("headers", &self.headers)
            .finish_non_exhaustive()
    }
}

/// Checks a signed request with a public key; returns the parsed parameters on success.
///
/// `header` looks up a request header by lower-case name. `public_key` is DER, either a
/// SubjectPublicKeyInfo (`BEGIN PUBLIC KEY`) or a PKCS#1 RSAPublicKey. The list must cover
/// `(request-target)`, `host` and `date` or `x-date`. Only the signature is checked: the caller
/// compares `date` with its clock, `x-content-sha256` with the body, and decides which headers a
/// method must sign. Accepts 1024–8192-bit keys so Oracle's 1024-bit documentation key can be
/// checked too.
pub fn verify(
    method: &str,
    path_and_query: &str,
    header: impl Fn(&str) -> Option<String>,
    authorization: &str,
    public_key: &[u8],
) -> Result<Authorization> {
    let auth = Authorization::parse(authorization)?;
    let listed = |name: &str| auth.headers.iter().any(|h| h == name);
    if !listed(REQUEST_TARGET) || !listed(HOST) || !(listed(DATE) || listed(X_DATE)) {
        return Err(Error::Signing(
            "signed headers must include (request-target), host and date or x-date".into(),
        ));
    }
    let mut text = String::new();
    for name in &auth.headers {
        let value = if name == REQUEST_TARGET {
            request_target(method, path_and_query)
        } else {
            header(name).ok_or_else(|| {
                Error::Signing(format!("signed header {name} is missing from the request"))
            })?
        };
        push_line(&mut text, name, &value);
    }
    let signature = STANDARD
        .decode(&auth.signature)
        .map_err(|_| Error::Signing("signature is not valid Base64".into()))?;
    let rsa_public = rsa_public_key(public_key)?;
    UnparsedPublicKey::new(&RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY, rsa_public)
        .verify(text.as_bytes(), &signature)
        .map_err(|_| Error::Signing("signature does not verify".into()))?;
    Ok(auth)
}

/// An RSA private key usable by ring. `Debug` never shows key material.
pub struct PrivateKey {
    pair: KeyPair,
}

impl PrivateKey {
    /// Loads an unencrypted PKCS#1 (`BEGIN RSA PRIVATE KEY`) or PKCS#8 (`BEGIN PRIVATE KEY`) PEM.
    ///
    /// `origin` names where the text came from (a file path or a variable name); every error
    /// starts with it. Encrypted keys are refused with the `openssl` line that decrypts them once:
    /// decrypting here would pull in a second crypto stack.
    pub fn from_pem(pem: &str, origin: &str) -> Result<PrivateKey> {
        let fail = |why: String| Error::Credentials(format!("{origin}: {why}"));
        if is_encrypted_pem(pem) {
            // A bare variable name would read oddly as an openssl input file.
            let file = if origin.contains('/') || origin.contains('.') {
                origin
            } else {
                "key.pem"
            };
            return Err(fail(format!(
                "the private key is encrypted and ocivision does not decrypt keys; write a \
                 plain copy once with `openssl pkey -in {file} -out key-plain.pem` (it asks \
                 for the passphrase; keep the copy mode 0600) and use that"
            )));
        }
        let text = pem.trim().replace("\r\n", "\n");
        let (kind, der) = <(SectionKind, Vec<u8>)>::from_pem_slice(text.as_bytes())
            .map_err(|e| fail(format!("not a PEM private key ({e})")))?;
        let (parsed, pkcs1) = match kind {
            SectionKind::RsaPrivateKey => (KeyPair::from_der(&der), Some(der.as_slice())),
            SectionKind::PrivateKey => (KeyPair::from_pkcs8(&der), der::pkcs8_inner(&der)),
            SectionKind::PublicKey => {
                return Err(fail(
                    "this is a public key; the private key is needed".into(),
                ))
            }
            SectionKind::EcPrivateKey => {
                return Err(fail(
                    "EC keys are not supported; OCI API keys are RSA".into(),
                ))
            }
            _ => {
                return Err(fail(
                    "expected BEGIN RSA PRIVATE KEY or BEGIN PRIVATE KEY".into(),
                ))
            }
        };
        let pair = parsed.map_err(|e| {
            let bits = pkcs1
                .and_then(der::pkcs1_modulus_bits)
                .map(|b| format!("{b}-bit "))
                .unwrap_or_default();
            fail(match e.to_string().as_str() {
                "TooSmall" | "TooLarge" => format!(
                    "{bits}RSA key refused: signing needs a 2048- to 4096-bit key \
                     (Console-generated keys are 2048-bit)"
                ),
                "WrongAlgorithm" => "not an RSA key; OCI API keys are RSA".into(),
                other => format!("RSA key refused by ring ({other})"),
            })
        })?;
        Ok(PrivateKey { pair })
    }

    /// The public key as DER SubjectPublicKeyInfo (what `openssl rsa -pubout -outform DER` gives).
    pub fn public_key_der(&self) -> Vec<u8> {
        der::spki_from_rsa_public(self.pair.public().as_ref())
    }

    /// The OCI key fingerprint: MD5 of the public key DER, lower-case colon-separated hex.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.public_key_der())
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKey(<redacted>)")
    }
}

/// The OCI fingerprint of a DER SubjectPublicKeyInfo: `aa:bb:…` (16 pairs).
pub fn fingerprint(spki_der: &[u8]) -> String {
    let digest = crate::md5::digest(spki_der);
    let pairs: Vec<String> = digest.iter().map(|b| format!("{b:02x}")).collect();
    pairs.join(":")
}

fn is_encrypted_pem(pem: &str) -> bool {
    pem.contains("BEGIN ENCRYPTED PRIVATE KEY")
        || pem.lines().any(|l| {
            let l = l.trim();
            l.starts_with("Proc-Type:") && l.contains("ENCRYPTED")
        })
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

fn request_target(method: &str, path_and_query: &str) -> String {
    format!("{} {path_and_query}", method.to_ascii_lowercase())
}

fn push_line(text: &mut String, name: &str, value: &str) {
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

/// The public key in the PKCS#1 RSAPublicKey form ring verifies with.
fn rsa_public_key(public_key: &[u8]) -> Result<&[u8]> {
    der::rsa_public_from_any(public_key).ok_or_else(|| {
        Error::Signing("public key is neither SubjectPublicKeyInfo nor RSAPublicKey DER".into())
    })
}

/// Just enough DER for RSA key containers; anything unexpected yields `None`.
mod der {
    const SEQUENCE: u8 = 0x30;
    const INTEGER: u8 = 0x02;
    const BIT_STRING: u8 = 0x03;
    const OCTET_STRING: u8 = 0x04;
    /// AlgorithmIdentifier { rsaEncryption (1.2.840.113549.1.1.1), NULL }.
    const RSA_ALGORITHM: [u8; 15] = [
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
    ];

    /// Splits one TLV off `input`: (tag, contents, rest).
    pub(super) fn read(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
        let (&tag, rest) = input.split_first()?;
        let (&first, mut rest) = rest.split_first()?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || rest.len() < n {
                return None;
            }
            let (bytes, tail) = rest.split_at(n);
            rest = tail;
            bytes
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
        };
        if rest.len() < len {
            return None;
        }
        let (contents, rest) = rest.split_at(len);
        Some((tag, contents, rest))
    }

    fn expect(input: &[u8], want: u8) -> Option<(&[u8], &[u8])> {
        let (tag, contents, rest) = read(input)?;
        (tag == want).then_some((contents, rest))
    }

    pub(super) fn write(tag: u8, contents: &[u8], out: &mut Vec<u8>) {
        out.push(tag);
        let len = contents.len();
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let bytes = len.to_be_bytes();
            let skip = bytes.iter().take_while(|&&b| b == 0).count();
            out.push(0x80 | (bytes.len() - skip) as u8);
            out.extend_from_slice(&bytes[skip..]);
        }
        out.extend_from_slice(contents);
    }

    pub(super) fn spki_from_rsa_public(rsa_public: &[u8]) -> Vec<u8> {
        let mut bits = Vec::with_capacity(rsa_public.len() + 1);
        bits.push(0); // no unused bits
        bits.extend_from_slice(rsa_public);
        let mut body = RSA_ALGORITHM.to_vec();
        write(BIT_STRING, &bits, &mut body);
        let mut out = Vec::with_capacity(body.len() + 4);
        write(SEQUENCE, &body, &mut out);
        out
    }

    /// Accepts SPKI or RSAPublicKey DER and returns the RSAPublicKey.
    pub(super) fn rsa_public_from_any(der: &[u8]) -> Option<&[u8]> {
        let (outer, rest) = expect(der, SEQUENCE)?;
        if !rest.is_empty() {
            return None;
        }
        match read(outer)? {
            (INTEGER, _, _) => Some(der),
            (SEQUENCE, algorithm, after) => {
                if algorithm != &RSA_ALGORITHM[2..] {
                    return None;
                }
                let (bits, _) = expect(after, BIT_STRING)?;
                let (&unused, key) = bits.split_first()?;
                (unused == 0).then_some(key)
            }
            _ => None,
        }
    }

    /// The PKCS#1 RSAPrivateKey inside a PKCS#8 PrivateKeyInfo.
    pub(super) fn pkcs8_inner(der: &[u8]) -> Option<&[u8]> {
        let (info, _) = expect(der, SEQUENCE)?;
        let (_version, rest) = expect(info, INTEGER)?;
        let (_algorithm, rest) = expect(rest, SEQUENCE)?;
        Some(expect(rest, OCTET_STRING)?.0)
    }

    /// Bit length of the modulus of a PKCS#1 RSAPrivateKey, for error messages.
    pub(super) fn pkcs1_modulus_bits(der: &[u8]) -> Option<usize> {
        let (key, _) = expect(der, SEQUENCE)?;
        let (_version, rest) = expect(key, INTEGER)?;
        let (modulus, _) = expect(rest, INTEGER)?;
        let modulus = &modulus[modulus.iter().take_while(|&&b| b == 0).count()..];
        let first = *modulus.first()?;
        Some(modulus.len() * 8 - first.leading_zeros() as usize)
    }
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
    fn md5_matches_rfc_1321_examples() {
        let hex = |d: [u8; 16]| d.iter().map(|b| format!("{b:02x}")).collect::<String>();
        assert_eq!(
            hex(crate::md5::digest(b"")),
            "d41d8cd98f00b204e9800998ecf8427e"
        );
        assert_eq!(
            hex(crate::md5::digest(b"abc")),
            "900150983cd24fb0d6963f7d28e17f72"
        );
        let long =
            b"12345678901234567890123456789012345678901234567890123456789012345678901234567890";
        assert_eq!(
            hex(crate::md5::digest(long)),
            "57edf4a22be3c955ac49da2e2107b67a"
        );
        // 56 bytes: padding spills into a second block.
        assert_eq!(
            hex(crate::md5::digest(&[b'a'; 56])),
            "3b0c8ac703f828b04c6c197006d17218"
        );
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

    #[test]
    fn authorization_uses_doc_parameter_order_and_parses_back() {
        let value = authorization("t/u/f", &[DATE, REQUEST_TARGET, HOST], "c2ln").unwrap();
        assert_eq!(
            value,
            r#"Signature version="1",headers="date (request-target) host",keyId="t/u/f",algorithm="rsa-sha256",signature="c2ln""#
        );
        let parsed = Authorization::parse(&value).unwrap();
        assert_eq!(parsed.key_id(), "t/u/f");
        assert_eq!(parsed.signed_headers(), [DATE, REQUEST_TARGET, HOST]);
        assert_eq!(parsed.signature(), "c2ln");
        // Order does not matter; algorithm does.
        let reordered =
            r#"Signature signature="c2ln", keyId="k",algorithm="rsa-sha256",headers="date""#;
        assert_eq!(Authorization::parse(reordered).unwrap().key_id(), "k");
        assert!(Authorization::parse(&value.replace("rsa-sha256", "hmac-sha256")).is_err());
        assert!(Authorization::parse("Bearer abc").is_err());
    }

    #[test]
    fn authorization_debug_hides_security_tokens() {
        let value = authorization("ST$eyJsecret", &[DATE], "c2ln").unwrap();
        let shown = format!("{:?}", Authorization::parse(&value).unwrap());
        assert!(!shown.contains("eyJsecret"), "{shown}");
    }

    #[test]
    fn der_round_trip_between_spki_and_rsa_public_key() {
        let rsa_public = [0x30, 0x06, 0x02, 0x01, 0x05, 0x02, 0x01, 0x03];
        let spki = der::spki_from_rsa_public(&rsa_public);
        assert_eq!(der::rsa_public_from_any(&spki), Some(&rsa_public[..]));
        assert_eq!(der::rsa_public_from_any(&rsa_public), Some(&rsa_public[..]));
        assert_eq!(der::rsa_public_from_any(&[0x30, 0x05, 0x02]), None);
        // Long-form length.
        let big = vec![0x41; 300];
        let mut out = Vec::new();
        der::write(0x04, &big, &mut out);
        assert_eq!(&out[..4], &[0x04, 0x82, 0x01, 0x2c]);
        assert_eq!(der::read(&out).unwrap().1.len(), 300);
    }

    #[test]
    fn from_pem_names_origin_on_garbage() {
        let err = PrivateKey::from_pem("not a key", "/tmp/k.pem").unwrap_err();
        assert!(matches!(err, Error::Credentials(_)));
        assert!(err.to_string().contains("/tmp/k.pem"), "{err}");
    }
}
