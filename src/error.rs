//! The crate's one error type.
//!
//! Every fallible function in the library returns [`Error`]. Variants are named for what failed;
//! `Display` is short and lower-case. [`Error::status`] is the single place where an error
//! becomes an HTTP status for our own servers, and [`status_code`] the single table from that
//! status to the code our JSON answers carry beside it. Secrets never appear in any variant.

use std::fmt;
use std::time::Duration;

/// What went wrong.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value is missing or invalid. The text names the variable, file or line.
    Config(String),
    /// A key, token or credential file could not be loaded or used. The text names the source.
    Credentials(String),
    /// A request could not be signed (for example, ring refused the key size).
    Signing(String),
    /// A service answered with an error status; status, OCI code, message and request id kept.
    Service(ServiceError),
    /// The request never got a complete answer: DNS, connect, TLS, reset, malformed response.
    Transport {
        /// Short name of the service called, e.g. `objectstorage`.
        service: &'static str,
        /// What the transport reported.
        detail: String,
    },
    /// The caller's deadline passed before the call (and its retries) could finish.
    Deadline {
        /// Short name of the service called.
        service: &'static str,
        /// How long was spent before giving up.
        spent: Duration,
        /// The last error seen before the deadline, if any.
        last: Option<Box<Error>>,
    },
    /// A client of one of our servers sent something we refuse; carries the status to answer.
    BadRequest {
        /// The HTTP status to answer with (4xx).
        status: u16,
        /// Why, in words safe to show the client.
        reason: String,
    },
    /// Something looked up by our own code does not exist.
    NotFound(String),
    /// JSON could not be read or written.
    Json(serde_json::Error),
    /// A local I/O operation failed.
    Io(std::io::Error),
}

/// An error answer from an OCI (or ORDS) service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceError {
    /// Short name of the service, e.g. `objectstorage`, `vision`, `soda`.
    pub service: &'static str,
    /// The HTTP status code.
    pub status: u16,
    /// The OCI error `code` (e.g. `NotAuthenticated`), or empty when the body had none.
    pub code: String,
    /// The OCI error `message`, or a bounded prefix of the body.
    pub message: String,
    /// The `opc-request-id` response header, or empty.
    pub request_id: String,
    /// Seconds from a `Retry-After` header, when present.
    pub retry_after: Option<u64>,
}

impl Error {
    /// The HTTP status our own servers answer when a handler fails with this error.
    pub fn status(&self) -> u16 {
        match self {
            Error::BadRequest { status, .. } => *status,
            Error::NotFound(_) => 404,
            Error::Service(e) if e.status == 404 => 404,
            Error::Service(_) | Error::Transport { .. } => 502,
            Error::Deadline { .. } => 504,
            Error::Config(_)
            | Error::Credentials(_)
            | Error::Signing(_)
            | Error::Json(_)
            | Error::Io(_) => 500,
        }
    }

    /// The stable code our servers answer beside [`Error::status`] (`{"error": Code, …}`).
    pub fn code(&self) -> &'static str {
        status_code(self.status())
    }

    /// True when a service refused our signature or credentials (HTTP 401).
    pub fn is_authentication(&self) -> bool {
        match self {
            Error::Service(e) => e.status == 401,
            Error::Deadline { last: Some(e), .. } => e.is_authentication(),
            _ => false,
        }
    }

    /// The service error behind this error, if any (also the last one before a deadline).
    pub fn service_error(&self) -> Option<&ServiceError> {
        match self {
            Error::Service(e) => Some(e),
            Error::Deadline { last: Some(e), .. } => e.service_error(),
            _ => None,
        }
    }

    /// Shorthand for a 400-class refusal.
    pub fn bad_request(status: u16, reason: impl Into<String>) -> Error {
        Error::BadRequest {
            status,
            reason: reason.into(),
        }
    }
}

/// The code of each status our servers answer with, for JSON error bodies, upload results and
/// the upload gate alike (docs/API.md lists them). An unlisted 4xx is `BadRequest`; a 5xx other
/// than the upload gate's 503 means a service behind us did not answer properly.
pub(crate) fn status_code(status: u16) -> &'static str {
    match status {
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        409 => "NotConfigured",
        413 => "TooLarge",
        415 => "UnsupportedFormat",
        422 => "BadDimensions",
        429 => "TooManyRequests",
        503 => "Busy",
        s if s < 500 => "BadRequest",
        _ => "ServiceUnavailable",
    }
}

/// A JSON error body, `{"error": Code, "message": text}`, for `status`.
pub(crate) fn json_body(status: u16, message: &str) -> serde_json::Value {
    serde_json::json!({"error": status_code(status), "message": message})
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(m) => write!(f, "configuration: {m}"),
            Error::Credentials(m) => write!(f, "credentials: {m}"),
            Error::Signing(m) => write!(f, "signing: {m}"),
            Error::Service(e) => e.fmt(f),
            Error::Transport { service, detail } => write!(f, "oci {service}: transport: {detail}"),
            Error::Deadline {
                service,
                spent,
                last,
            } => {
                write!(
                    f,
                    "oci {service}: deadline passed after {} ms",
                    spent.as_millis()
                )?;
                match last {
                    Some(e) => write!(f, " (last error: {e})"),
                    None => Ok(()),
                }
            }
            Error::BadRequest { status, reason } => write!(f, "{status}: {reason}"),
            Error::NotFound(m) => write!(f, "not found: {m}"),
            Error::Json(e) => write!(f, "json: {e}"),
            Error::Io(e) => write!(f, "i/o: {e}"),
        }
    }
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "oci {}: {}", self.service, self.status)?;
        if !self.code.is_empty() {
            write!(f, " {}", self.code)?;
        }
        if self.status == 401 {
            f.write_str(" (authentication failed: check the clock, the key and fingerprint, or the signed headers)")?;
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        if !self.request_id.is_empty() {
            write!(f, " (request id {})", self.request_id)?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Json(e) => Some(e),
            Error::Io(e) => Some(e),
            Error::Deadline { last: Some(e), .. } => Some(e.as_ref()),
            _ => None,
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Error {
        Error::Io(e)
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Error {
        Error::Json(e)
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_error_display_names_code_and_request_id() {
        let e = Error::Service(ServiceError {
            service: "objectstorage",
            status: 401,
            code: "NotAuthenticated".into(),
            message: "bad signature".into(),
            request_id: "req-1".into(),
            retry_after: None,
        });
        let text = e.to_string();
        assert!(
            text.starts_with("oci objectstorage: 401 NotAuthenticated"),
            "{text}"
        );
        assert!(text.contains("authentication failed"), "{text}");
        assert!(text.contains("request id req-1"), "{text}");
        assert!(e.is_authentication());
        assert_eq!(e.status(), 502);
    }

    #[test]
    fn status_maps_refusals_and_timeouts() {
        assert_eq!(Error::bad_request(413, "too big").status(), 413);
        let deadline = Error::Deadline {
            service: "vision",
            spent: Duration::from_secs(3),
            last: None,
        };
        assert_eq!(deadline.status(), 504);
        assert_eq!(Error::NotFound("x".into()).status(), 404);
    }

    #[test]
    fn each_status_has_one_code() {
        assert_eq!(Error::bad_request(413, "too big").code(), "TooLarge");
        assert_eq!(Error::bad_request(415, "no").code(), "UnsupportedFormat");
        assert_eq!(Error::bad_request(422, "no").code(), "BadDimensions");
        assert_eq!(Error::bad_request(400, "no").code(), "BadRequest");
        assert_eq!(Error::bad_request(408, "slow").code(), "BadRequest");
        assert_eq!(Error::NotFound("x".into()).code(), "NotFound");
        let gone = Error::Transport {
            service: "objectstorage",
            detail: "reset".into(),
        };
        assert_eq!((gone.status(), gone.code()), (502, "ServiceUnavailable"));
        assert_eq!(status_code(503), "Busy");
        assert_eq!(
            json_body(429, "wait"),
            serde_json::json!({"error": "TooManyRequests", "message": "wait"})
        );
    }
}
