//! The signed transport: with its DNS cache (`oci::resolver`), the only code in the crate that
//! knows `ureq`.
//!
//! A [`Transport`] owns one `ureq` agent (timeouts on every phase, no redirects, HTTP error
//! statuses returned as values so we can read OCI's `code`, `message` and `opc-request-id`) and
//! an [`Auth`] mode. [`Transport::send`] signs each attempt afresh (the `date` header must be
//! current), sends it, turns error answers into [`Error::Service`], and retries the failures the
//! OCI SDKs retry, with full-jitter backoff and `Retry-After`, never past the caller's deadline.
//!
//! It does not know any service's paths or JSON: the typed clients build [`Call`]s.

use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use ureq::http;

use crate::error::{Error, Result, ServiceError};
use crate::oci::auth::KeyProvider;
use crate::oci::resolver::CachingResolver;
use crate::oci::sign::{self, RequestToSign};
use crate::secret::Secret;

/// How much of an error body we keep for the message and the log.
const ERROR_BODY_LIMIT: u64 = 64 * 1024;

/// Header names used by the transport.
mod names {
    pub const HOST: &str = "host";
    pub const CONTENT_TYPE: &str = "content-type";
    pub const CONTENT_LENGTH: &str = "content-length";
    pub const AUTHORIZATION: &str = "authorization";
    pub const REQUEST_ID: &str = "opc-request-id";
    pub const CLIENT_REQUEST_ID: &str = "opc-client-request-id";
    pub const RETRY_AFTER: &str = "retry-after";
}

/// Timeouts and retry limits of a [`Transport`]. Every field has a documented default.
#[derive(Debug, Clone)]
pub struct TransportConfig {
    /// DNS resolution. Default 3 s.
    pub resolve_timeout: Duration,
    /// TCP connect plus TLS handshake. Default 5 s.
    pub connect_timeout: Duration,
    /// Sending the request head. Default 5 s.
    pub send_request_timeout: Duration,
    /// Sending the request body (5 MB uploads on slow links). Default 60 s.
    pub send_body_timeout: Duration,
    /// Waiting for the response head. Default 30 s.
    pub recv_response_timeout: Duration,
    /// Receiving the response body. Default 30 s.
    pub recv_body_timeout: Duration,
    /// Upper bound for one attempt, whatever the caller's deadline. Default 60 s.
    pub attempt_timeout: Duration,
    /// Retry rules.
    pub retry: RetryPolicy,
}

impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig {
            resolve_timeout: Duration::from_secs(3),
            connect_timeout: Duration::from_secs(5),
            send_request_timeout: Duration::from_secs(5),
            send_body_timeout: Duration::from_secs(60),
            recv_response_timeout: Duration::from_secs(30),
            recv_body_timeout: Duration::from_secs(30),
            attempt_timeout: Duration::from_secs(60),
            retry: RetryPolicy::default(),
        }
    }
}

/// Which failures are retried and how long to wait between attempts.
///
/// Retried, as the OCI SDKs do: transport failures (connect, reset, timeout), 429, 5xx except
/// 501, and 409 with code `IncorrectState`, `ExternalServerIncorrectState` or `LockConflict`.
/// The wait before attempt `n + 1` is uniform in `[0, min(max_backoff, base_backoff · 2^(n−1))]`
/// ("full jitter"), or the server's `Retry-After` when that is longer. Nothing waits past the
/// caller's deadline: when the next wait would cross it, the call fails at once.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all, the first included. Default 8 (the SDKs' ceiling); 1 disables retries.
    pub max_attempts: u32,
    /// The first backoff ceiling. Default 1 s.
    pub base_backoff: Duration,
    /// The largest backoff ceiling. Default 30 s.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 8,
            base_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The backoff ceiling after `failed` failed attempts (1-based).
    fn ceiling(&self, failed: u32) -> Duration {
        let factor = 1u32 << failed.saturating_sub(1).min(20);
        self.base_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

/// How requests are authenticated.
#[derive(Clone)]
pub enum Auth {
    /// OCI request signatures with keys from a provider.
    Oci(Arc<dyn KeyProvider>),
    /// HTTP Basic (ORDS). The password never reaches `Debug` or logs.
    Basic {
        /// The database user.
        user: String,
        /// The password.
        password: Secret,
    },
    /// No authentication.
    None,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::Oci(_) => f.write_str("Auth::Oci"),
            Auth::Basic { user, .. } => write!(f, "Auth::Basic({user}, <redacted>)"),
            Auth::None => f.write_str("Auth::None"),
        }
    }
}

/// A readable and rewindable body, so that an upload can be sent again on retry.
pub trait ReadSeek: Read + Seek + Send {}
impl<T: Read + Seek + Send> ReadSeek for T {}

/// What a call sends.
pub enum Payload<'a> {
    /// No body (GET, HEAD, DELETE; or an empty POST, which is still signed with length 0).
    Empty,
    /// A body that is hashed into the signature, with its content type.
    Signed {
        /// The exact bytes sent.
        bytes: &'a [u8],
        /// The `Content-Type` sent and signed.
        content_type: &'a str,
    },
    /// The Object Storage PutObject exception: a streamed body of known length, not hashed.
    Unsigned {
        /// The body; rewound before each retry.
        reader: &'a mut dyn ReadSeek,
        /// Its exact length, sent as `Content-Length`.
        length: u64,
        /// The `Content-Type` sent (unsigned).
        content_type: &'a str,
    },
}

/// One logical request: the transport may send it several times.
pub struct Call<'a> {
    /// Short service name for errors and logs, e.g. `objectstorage`.
    pub service: &'static str,
    /// Upper-case method.
    pub method: &'static str,
    /// Scheme and authority, e.g. `https://objectstorage.ca-toronto-1.oraclecloud.com` or
    /// `http://127.0.0.1:40123`. No trailing slash, no path.
    pub origin: &'a str,
    /// Path and query exactly as sent and signed, already percent-encoded.
    pub path_and_query: String,
    /// Extra headers (lower-case names).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub payload: Payload<'a>,
    /// When the caller stops waiting, retries included.
    pub deadline: Instant,
    /// Whether sending it twice does no harm. Default true; false (Functions invoke, which
    /// Oracle's SDKs do not retry either) retries only failures that surely never reached the
    /// service: resolving the name or connecting.
    pub idempotent: bool,
}

impl<'a> Call<'a> {
    /// A call without extra headers or body.
    pub fn new(
        service: &'static str,
        method: &'static str,
        origin: &'a str,
        path_and_query: String,
        deadline: Instant,
    ) -> Call<'a> {
        Call {
            service,
            method,
            origin,
            path_and_query,
            headers: Vec::new(),
            payload: Payload::Empty,
            deadline,
            idempotent: true,
        }
    }

    /// The same call, retried only while it cannot have reached the service.
    pub fn not_idempotent(mut self) -> Call<'a> {
        self.idempotent = false;
        self
    }

    /// The same call with a JSON body, hashed into the signature.
    pub fn with_json(mut self, bytes: &'a [u8]) -> Call<'a> {
        self.payload = Payload::Signed {
            bytes,
            content_type: "application/json",
        };
        self
    }
}

/// A successful (status < 400) answer, body not yet read.
pub struct Reply {
    /// Taken by the methods that consume the body; `Drop` drains what is left.
    response: Option<http::Response<ureq::Body>>,
    service: &'static str,
}

/// Up to this much of an unread body is read on drop so the connection goes back to the pool.
const DRAIN_LIMIT: u64 = 64 * 1024;

impl Drop for Reply {
    fn drop(&mut self) {
        // ureq reuses a connection only once its body has been read to the end; the small or
        // empty bodies of PUT, DELETE and HEAD answers would otherwise cost a new connection
        // per call. A large unread body is not worth reading: the connection is closed.
        if let Some(response) = self.response.as_mut() {
            let _ = response
                .body_mut()
                .with_config()
                .limit(DRAIN_LIMIT)
                .read_to_vec();
        }
    }
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Reply({} {})", self.service, self.status())
    }
}

impl Reply {
    /// The HTTP status.
    pub fn status(&self) -> u16 {
        self.head().status().as_u16()
    }

    fn head(&self) -> &http::Response<ureq::Body> {
        self.response
            .as_ref()
            .expect("the body is taken only by consuming methods")
    }

    fn take(&mut self) -> http::Response<ureq::Body> {
        self.response.take().expect("the body is taken once")
    }

    /// A response header as text, if present and valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head()
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
    }

    /// All headers that are valid UTF-8, names in lower case.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.head()
            .headers()
            .iter()
            .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)))
    }

    /// The `opc-request-id` header, or empty.
    pub fn request_id(&self) -> &str {
        self.header(names::REQUEST_ID).unwrap_or("")
    }

    /// Reads the whole body, refusing more than `limit` bytes.
    pub fn bytes(mut self, limit: u64) -> Result<Vec<u8>> {
        let service = self.service;
        self.take()
            .body_mut()
            .with_config()
            .limit(limit)
            .read_to_vec()
            .map_err(|e| transport_error(service, &e))
    }

    /// Reads and parses a JSON body of at most `limit` bytes.
    pub fn json<T: serde::de::DeserializeOwned>(self, limit: u64) -> Result<T> {
        let bytes = self.bytes(limit)?;
        Ok(serde_json::from_slice(&bytes)?)
    }

    /// The body as a stream of at most `limit` bytes. It stays bounded by the call's deadline.
    pub fn into_reader(mut self, limit: u64) -> impl Read + Send + 'static {
        self.take()
            .into_body()
            .into_with_config()
            .limit(limit)
            .reader()
    }
}

/// Signs, sends and retries calls. Cheap to clone; clones share one connection pool.
#[derive(Clone, Debug)]
pub struct Transport {
    agent: ureq::Agent,
    auth: Auth,
    config: Arc<TransportConfig>,
}

impl Transport {
    /// A transport with a new agent.
    pub fn new(auth: Auth, config: TransportConfig) -> Transport {
        let agent_config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .user_agent(concat!("ocivision/", env!("CARGO_PKG_VERSION")))
            .timeout_resolve(Some(config.resolve_timeout))
            .timeout_connect(Some(config.connect_timeout))
            .timeout_send_request(Some(config.send_request_timeout))
            .timeout_send_body(Some(config.send_body_timeout))
            .timeout_recv_response(Some(config.recv_response_timeout))
            .timeout_recv_body(Some(config.recv_body_timeout))
            .build();
        let agent = ureq::Agent::with_parts(
            agent_config,
            ureq::unversioned::transport::DefaultConnector::new(),
            CachingResolver::default(),
        );
        Transport {
            agent,
            auth,
            config: Arc::new(config),
        }
    }

    /// The same agent and limits with another authentication mode.
    pub fn with_auth(&self, auth: Auth) -> Transport {
        Transport {
            agent: self.agent.clone(),
            auth,
            config: Arc::clone(&self.config),
        }
    }

    /// Sends `call`, retrying as [`RetryPolicy`] says, until it succeeds, fails for good, or
    /// its deadline passes. Statuses ≥ 400 come back as [`Error::Service`].
    pub fn send(&self, mut call: Call<'_>) -> Result<Reply> {
        let started = Instant::now();
        let policy = self.config.retry;
        let mut failed = 0u32;
        let mut refreshed_after_401 = false;
        let mut last: Option<Error> = None;
        loop {
            let remaining = call.deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(Error::Deadline {
                    service: call.service,
                    spent: started.elapsed(),
                    last: last.map(Box::new),
                });
            }
            let (error, unsent) = match self.attempt(&mut call, remaining) {
                Ok(reply) => return Ok(reply),
                Err(e) => e,
            };
            if error.is_authentication() && !refreshed_after_401 {
                if let Auth::Oci(keys) = &self.auth {
                    // A rotated resource-principal token: re-read once and try again.
                    refreshed_after_401 = true;
                    keys.refresh()?;
                    log::debug!("{}: 401, credentials re-read, retrying once", call.service);
                    last = Some(error);
                    continue;
                }
            }
            failed += 1;
            if !is_retryable(&error) || failed >= policy.max_attempts {
                return Err(error);
            }
            if !call.idempotent && !unsent {
                // It may have run: a second run is worse than an error the caller can report.
                return Err(error);
            }
            let wait = backoff(&policy, failed, &error);
            let remaining = call.deadline.saturating_duration_since(Instant::now());
            if wait >= remaining {
                return Err(Error::Deadline {
                    service: call.service,
                    spent: started.elapsed(),
                    last: Some(Box::new(error)),
                });
            }
            log::debug!(
                "{} {}: attempt {failed} failed ({error}); retrying in {} ms",
                call.service,
                call.method,
                wait.as_millis()
            );
            last = Some(error);
            std::thread::sleep(wait);
        }
    }

    /// One signed attempt within `budget`. A failure comes with whether the request surely
    /// never left this process (the name did not resolve, the connection was refused).
    fn attempt(
        &self,
        call: &mut Call<'_>,
        budget: Duration,
    ) -> std::result::Result<Reply, (Error, bool)> {
        let service = call.service;
        let host = host_of(call.origin).ok_or_else(|| {
            (
                Error::Config(format!("{service}: bad endpoint {:?}", call.origin)),
                true,
            )
        })?;
        let mut headers = wire_headers(call, host);
        self.authorize(call, host, &mut headers)
            .map_err(|e| (e, true))?;

        let url = format!("{}{}", call.origin, call.path_and_query);
        let mut builder = http::Request::builder().method(call.method).uri(&url);
        for (name, value) in &headers {
            builder = builder.header(*name, value.as_str());
        }
        // A streamed body (an upload copied to storage as it arrives) takes as long as its
        // sender: one attempt may use the whole deadline.
        let timeout = match call.payload {
            Payload::Unsigned { .. } => budget,
            _ => budget.min(self.config.attempt_timeout),
        };
        let result = match &mut call.payload {
            Payload::Empty if matches!(call.method, "POST" | "PUT" | "PATCH") => {
                self.run(builder.body(&[][..]), timeout)
            }
            Payload::Empty => self.run(builder.body(()), timeout),
            Payload::Signed { bytes, .. } => self.run(builder.body(*bytes), timeout),
            Payload::Unsigned { reader, .. } => {
                // A body that cannot start over (an abandoned upload) ends the call: no retry
                // could send it.
                reader
                    .seek(SeekFrom::Start(0))
                    .map_err(|e| (Error::Io(e), true))?;
                let body = ureq::SendBody::from_reader(&mut **reader);
                self.run(builder.body(body), timeout)
            }
        };
        let response = result.map_err(|e| (transport_error(service, &e), never_sent(&e)))?;
        let status = response.status().as_u16();
        if status < 400 {
            return Ok(Reply {
                response: Some(response),
                service,
            });
        }
        Err((Error::Service(read_service_error(service, response)), false))
    }

    /// Adds the authentication headers for one attempt.
    fn authorize(
        &self,
        call: &Call<'_>,
        host: &str,
        headers: &mut Vec<(&str, String)>,
    ) -> Result<()> {
        match &self.auth {
            Auth::None => {}
            Auth::Basic { user, password } => {
                use base64::Engine as _;
                let token = base64::engine::general_purpose::STANDARD
                    .encode(format!("{user}:{}", password.expose()));
                headers.push((names::AUTHORIZATION, format!("Basic {token}")));
            }
            Auth::Oci(keys) => {
                let credentials = keys.credentials()?;
                let body = match &call.payload {
                    Payload::Empty => sign::Body::Signed(&[]),
                    Payload::Signed { bytes, .. } => sign::Body::Signed(bytes),
                    Payload::Unsigned { .. } => sign::Body::Unsigned,
                };
                let borrowed: Vec<(&str, &str)> =
                    headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
                let request = RequestToSign {
                    method: call.method,
                    path_and_query: &call.path_and_query,
                    host,
                    headers: &borrowed,
                    body,
                };
                let added = sign::sign(
                    &request,
                    &credentials.key_id,
                    &credentials.key,
                    SystemTime::now(),
                )?;
                headers.extend(added);
            }
        }
        Ok(())
    }

    fn run<B: ureq::AsSendBody>(
        &self,
        request: std::result::Result<http::Request<B>, http::Error>,
        timeout: Duration,
    ) -> std::result::Result<http::Response<ureq::Body>, ureq::Error> {
        let request = request.map_err(ureq::Error::from)?;
        let request = self
            .agent
            .configure_request(request)
            .timeout_global(Some(timeout))
            .build();
        self.agent.run(request)
    }
}

/// The headers a call goes out with before authentication: its own, `host`, and the body's.
fn wire_headers<'c>(call: &'c Call<'_>, host: &str) -> Vec<(&'c str, String)> {
    let mut headers: Vec<(&str, String)> = call
        .headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.clone()))
        .collect();
    headers.push((names::HOST, host.to_string()));
    match &call.payload {
        Payload::Empty => {
            if matches!(call.method, "POST" | "PUT" | "PATCH") {
                headers.push((names::CONTENT_TYPE, "application/json".into()));
            }
        }
        Payload::Signed { content_type, .. } | Payload::Unsigned { content_type, .. } => {
            headers.push((names::CONTENT_TYPE, content_type.to_string()));
        }
    }
    if let Payload::Unsigned { length, .. } = &call.payload {
        headers.push((names::CONTENT_LENGTH, length.to_string()));
    }
    headers
}

/// `host[:port]` of an origin such as `https://example.com:8443`.
fn host_of(origin: &str) -> Option<&str> {
    let rest = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))?;
    let host = match rest
        .strip_suffix(":443")
        .filter(|_| origin.starts_with("https:"))
    {
        Some(h) => h,
        None => rest
            .strip_suffix(":80")
            .filter(|_| origin.starts_with("http:"))
            .unwrap_or(rest),
    };
    (!host.is_empty() && !host.contains('/')).then_some(host)
}

/// True for the failures that happen before a byte of the request is written.
fn never_sent(e: &ureq::Error) -> bool {
    use ureq::Timeout;
    match e {
        ureq::Error::HostNotFound
        | ureq::Error::ConnectionFailed
        | ureq::Error::Timeout(Timeout::Resolve | Timeout::Connect) => true,
        ureq::Error::Io(io) => io.kind() == std::io::ErrorKind::ConnectionRefused,
        _ => false,
    }
}

fn transport_error(service: &'static str, e: &ureq::Error) -> Error {
    Error::Transport {
        service,
        detail: e.to_string(),
    }
}

/// Reads an error answer: OCI's `{code, message}` (ORDS adds `title`), else a body prefix.
fn read_service_error(
    service: &'static str,
    mut response: http::Response<ureq::Body>,
) -> ServiceError {
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let request_id = header(names::REQUEST_ID);
    let request_id = if request_id.is_empty() {
        header(names::CLIENT_REQUEST_ID)
    } else {
        request_id
    };
    let retry_after = header(names::RETRY_AFTER).trim().parse::<u64>().ok();
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .with_config()
        .limit(ERROR_BODY_LIMIT)
        .read_to_vec()
        .unwrap_or_default();
    let (code, message) = parse_error_body(&body);
    ServiceError {
        service,
        status,
        code,
        message,
        request_id,
        retry_after,
    }
}

fn parse_error_body(body: &[u8]) -> (String, String) {
    #[derive(serde::Deserialize)]
    struct OciError {
        #[serde(default)]
        code: Option<serde_json::Value>,
        #[serde(default)]
        message: Option<String>,
        #[serde(default)]
        title: Option<String>,
    }
    if let Ok(parsed) = serde_json::from_slice::<OciError>(body) {
        let code = match parsed.code {
            Some(serde_json::Value::String(s)) => s,
            Some(other) => other.to_string(),
            None => String::new(),
        };
        let message = parsed.message.or(parsed.title).unwrap_or_default();
        return (code, message);
    }
    let text = String::from_utf8_lossy(body);
    let prefix: String = text.chars().take(512).collect();
    (String::new(), prefix.trim().to_string())
}

fn is_retryable(error: &Error) -> bool {
    match error {
        Error::Transport { .. } => true,
        Error::Service(e) => match e.status {
            429 => true,
            409 => matches!(
                e.code.as_str(),
                "IncorrectState" | "ExternalServerIncorrectState" | "LockConflict"
            ),
            501 => false,
            s => (500..600).contains(&s),
        },
        _ => false,
    }
}

/// Full jitter under the policy's ceiling, or `Retry-After` when the server asks for longer.
fn backoff(policy: &RetryPolicy, failed: u32, error: &Error) -> Duration {
    let ceiling = policy.ceiling(failed);
    let jittered = ceiling.mul_f64(crate::random::unit());
    let asked = error
        .service_error()
        .and_then(|e| e.retry_after)
        .map(Duration::from_secs)
        .unwrap_or_default();
    jittered.max(asked)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(status: u16, code: &str) -> Error {
        Error::Service(ServiceError {
            service: "test",
            status,
            code: code.into(),
            message: String::new(),
            request_id: String::new(),
            retry_after: None,
        })
    }

    #[test]
    fn retries_what_the_sdks_retry_and_nothing_else() {
        for status in [429, 500, 502, 503, 504] {
            assert!(is_retryable(&service(status, "")), "{status}");
        }
        assert!(is_retryable(&service(409, "IncorrectState")));
        assert!(is_retryable(&service(409, "LockConflict")));
        for (status, code) in [
            (400, "InvalidParameter"),
            (401, "NotAuthenticated"),
            (403, "NotAllowed"),
            (404, "ObjectNotFound"),
            (409, "ConcurrentObjectUpdate"),
            (412, "IfMatchFailed"),
            (501, "MethodNotImplemented"),
        ] {
            assert!(!is_retryable(&service(status, code)), "{status} {code}");
        }
        assert!(is_retryable(&Error::Transport {
            service: "test",
            detail: "reset".into()
        }));
    }

    #[test]
    fn backoff_ceiling_doubles_up_to_the_cap() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.ceiling(1), Duration::from_secs(1));
        assert_eq!(policy.ceiling(2), Duration::from_secs(2));
        assert_eq!(policy.ceiling(5), Duration::from_secs(16));
        assert_eq!(policy.ceiling(6), Duration::from_secs(30));
        assert_eq!(policy.ceiling(40), Duration::from_secs(30));
        for failed in 1..10 {
            let wait = backoff(&policy, failed, &service(503, ""));
            assert!(wait <= policy.ceiling(failed), "{wait:?}");
        }
    }

    #[test]
    fn retry_after_is_honoured_when_longer() {
        let policy = RetryPolicy {
            base_backoff: Duration::from_millis(1),
            ..RetryPolicy::default()
        };
        let mut e = ServiceError {
            service: "test",
            status: 429,
            code: "TooManyRequests".into(),
            message: String::new(),
            request_id: String::new(),
            retry_after: Some(3),
        };
        assert_eq!(
            backoff(&policy, 1, &Error::Service(e.clone())),
            Duration::from_secs(3)
        );
        e.retry_after = None;
        assert!(backoff(&policy, 1, &Error::Service(e)) <= Duration::from_millis(1));
    }

    #[test]
    fn host_drops_only_the_default_port() {
        assert_eq!(host_of("https://a.example.com"), Some("a.example.com"));
        assert_eq!(host_of("https://a.example.com:443"), Some("a.example.com"));
        assert_eq!(
            host_of("https://a.example.com:8443"),
            Some("a.example.com:8443")
        );
        assert_eq!(host_of("http://127.0.0.1:7000"), Some("127.0.0.1:7000"));
        assert_eq!(host_of("http://127.0.0.1:80"), Some("127.0.0.1"));
        assert_eq!(host_of("ftp://x"), None);
        assert_eq!(host_of("https://x/path"), None);
    }

    #[test]
    fn error_bodies_parse_oci_and_ords_shapes() {
        let (code, message) =
            parse_error_body(br#"{"code":"BucketNotFound","message":"Either the bucket"}"#);
        assert_eq!(
            (code.as_str(), message.as_str()),
            ("BucketNotFound", "Either the bucket")
        );
        let (code, message) = parse_error_body(br#"{"code":"Conflict","title":"Conflict"}"#);
        assert_eq!((code.as_str(), message.as_str()), ("Conflict", "Conflict"));
        let (code, message) = parse_error_body(b"<html>bad gateway</html>");
        assert_eq!(
            (code.as_str(), message.as_str()),
            ("", "<html>bad gateway</html>")
        );
    }

    #[test]
    fn basic_auth_shows_the_user_and_not_the_password() {
        let auth = Auth::Basic {
            user: "ADMIN".into(),
            password: Secret::new("hunter2-very-secret"),
        };
        let shown = format!("{auth:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("ADMIN"));
    }
}
