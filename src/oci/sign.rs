//! STUB (replaced by the signing work): the pure OCI request signer.

use std::time::SystemTime;

use crate::Result;

/// Whether the body is hashed into the signature.
#[derive(Debug, Clone, Copy)]
pub enum Body<'a> {
    /// Hash these exact bytes (`x-content-sha256`, `content-length`, `content-type` signed).
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

/// An RSA private key usable by ring. `Debug` never shows key material.
pub struct PrivateKey {
    _private: (),
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PrivateKey(<redacted>)")
    }
}

/// Signs `request`; returns the headers to add (lower-case names), `authorization` last.
pub fn sign(
    _request: &RequestToSign<'_>,
    _key_id: &str,
    _key: &PrivateKey,
    _now: SystemTime,
) -> Result<Vec<(&'static str, String)>> {
    unimplemented!("stub")
}
