//! The signed transport: the only code in the crate that knows `ureq`.
//!
//! A [`Transport`] owns one `ureq` agent (timeouts on every phase, no redirects, HTTP error
//! statuses returned as values so we can read OCI's `code`, `message` and `opc-request-id`) and
//! an [`Auth`] mode. [`Transport::send`] signs each attempt afresh (the `date` header must be
//! current), sends it, turns error answers into [`Error::Service`], and retries the failures the
//! OCI SDKs retry, with full-jitter backoff and `Retry-After`, never past the caller's deadline.
//!
//! RSA signing is the costliest thing a call does on our side (about 0.4 ms with `ring`), so a
//! caller that knows a call it will make can [`Transport::sign_ahead`] while it waits on
//! another one; the signature is used when the identical signing string comes to be sent.
//!
//! It does not know any service's paths or JSON: the typed clients build [`Call`]s.

use std::io::{Read, Seek, SeekFrom};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime};

use ureq::http;

use crate::error::{Error, Result, ServiceError};
use crate::oci::auth::KeyProvider;
use crate::oci::sign::{self, RequestToSign};

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

/// A secret string (password, token). `Debug` and `Display` print `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Compares two byte strings in time that depends only on their lengths, for credentials.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
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
        }
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
    ahead: Arc<SignedAhead>,
}

/// How long a signature made ahead stays usable: far inside the five minutes of clock skew the
/// services accept, so the `date` it carries is never why a call is refused.
const AHEAD_MAX_AGE: Duration = Duration::from_secs(60);

/// Signatures made ahead are few (one or two per function call); this bounds a caller that
/// signs ahead calls it never sends.
const AHEAD_CAPACITY: usize = 8;

/// Signatures made by [`Transport::sign_ahead`], waiting for their calls.
///
/// RSASSA-PKCS1-v1_5 is deterministic: one key and one signing string give one signature, so
/// reusing it for a request whose signing string is identical sends exactly the bytes signing
/// afresh would. Each is used once. A call whose signature is still being made waits for it
/// rather than making it a second time.
///
/// One long-lived thread makes them: starting a thread per signature cost more than the
/// signature on our 2-core VMs, and a warm thread signs faster.
#[derive(Default)]
struct SignedAhead {
    entries: Mutex<Vec<Ahead>>,
    made: Condvar,
    /// The signing thread's queue, started with the first signature made ahead.
    signer: Mutex<Option<std::sync::mpsc::Sender<Job>>>,
}

/// One signature for the signing thread to make.
struct Job {
    id: u64,
    key: Arc<sign::PrivateKey>,
    text: sign::SigningString,
}

struct Ahead {
    /// Tells entries apart while their signatures are being made.
    id: u64,
    /// Compared, never printed: for a session token it is a credential.
    key_id: String,
    date: SystemTime,
    text: String,
    /// `None` while the signing thread works.
    signature: Option<String>,
}

/// Longest a call waits for a signature being made ahead (one RSA operation takes well under
/// a millisecond; this only guards against a signing thread that is stuck or starved).
const AHEAD_WAIT: Duration = Duration::from_millis(50);

impl std::fmt::Debug for SignedAhead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let waiting = self.entries.lock().map_or(0, |e| e.len());
        write!(f, "SignedAhead({waiting} waiting)")
    }
}

impl SignedAhead {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Ahead>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a signature about to be made; returns its id for [`SignedAhead::finish`].
    fn start(&self, key_id: String, date: SystemTime, text: String) -> u64 {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut entries = self.lock();
        entries.retain(|e| usable(e.date, SystemTime::now()));
        if entries.len() >= AHEAD_CAPACITY {
            entries.remove(0);
        }
        entries.push(Ahead {
            id,
            key_id,
            date,
            text,
            signature: None,
        });
        id
    }

    /// Queues entry `id` for the signing thread, starting it when needed.
    fn submit(self: &Arc<Self>, job: Job) {
        let id = job.id;
        let mut signer = self.signer.lock().unwrap_or_else(|e| e.into_inner());
        if signer.is_none() {
            let (queue, jobs) = std::sync::mpsc::channel::<Job>();
            // Weak: the thread ends when the last transport sharing this memo is dropped.
            let memo = Arc::downgrade(self);
            let started = std::thread::Builder::new()
                .name("sign-ahead".into())
                .stack_size(256 * 1024)
                .spawn(move || {
                    for job in jobs {
                        let signature = sign::signature(&job.key, &job.text).ok();
                        match memo.upgrade() {
                            Some(memo) => memo.finish(job.id, signature),
                            None => break,
                        }
                    }
                });
            if started.is_ok() {
                *signer = Some(queue);
            }
        }
        let queued = signer.as_ref().is_some_and(|queue| queue.send(job).is_ok());
        if !queued {
            *signer = None;
            drop(signer);
            self.finish(id, None);
        }
    }

    /// Waits until entry `id` is signed or gone, for at most `limit`.
    fn wait_for(&self, id: u64, limit: Duration) {
        let give_up = Instant::now() + limit;
        let mut entries = self.lock();
        while entries.iter().any(|e| e.id == id && e.signature.is_none()) {
            let Some(wait) = give_up.checked_duration_since(Instant::now()) else {
                return;
            };
            entries = self
                .made
                .wait_timeout(entries, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Stores the signature of entry `id`, or drops the entry when it could not be made.
    fn finish(&self, id: u64, signature: Option<String>) {
        let mut entries = self.lock();
        match signature {
            Some(signature) => {
                if let Some(entry) = entries.iter_mut().find(|e| e.id == id) {
                    entry.signature = Some(signature);
                }
            }
            None => entries.retain(|e| e.id != id),
        }
        drop(entries);
        self.made.notify_all();
    }

    /// The headers to add for `request` from a signature made ahead, when one matches.
    fn take(
        &self,
        request: &RequestToSign<'_>,
        key_id: &str,
    ) -> Option<Vec<(&'static str, String)>> {
        let mut entries = self.lock();
        if entries.is_empty() {
            return None;
        }
        let now = SystemTime::now();
        entries.retain(|e| usable(e.date, now));
        let (id, text) = entries.iter().find_map(|entry| {
            if entry.key_id != key_id {
                return None;
            }
            // The signing string as it would be at the entry's date: equal text, equal signature.
            let text = sign::signing_string(request, entry.date).ok()?;
            (text.as_str() == entry.text).then_some((entry.id, text))
        })?;
        let give_up = Instant::now() + AHEAD_WAIT;
        loop {
            let index = entries.iter().position(|e| e.id == id)?;
            if entries[index].signature.is_some() {
                let signature = entries.swap_remove(index).signature?;
                drop(entries);
                let authorization =
                    sign::authorization(key_id, text.signed_headers(), &signature).ok()?;
                let mut added = text.headers_to_add().to_vec();
                added.push((names::AUTHORIZATION, authorization));
                return Some(added);
            }
            let wait = give_up.checked_duration_since(Instant::now())?;
            entries = self
                .made
                .wait_timeout(entries, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

/// True while a signature dated `date` may still be sent at `now`.
fn usable(date: SystemTime, now: SystemTime) -> bool {
    now.duration_since(date)
        .is_ok_and(|age| age < AHEAD_MAX_AGE)
}

/// A signature being made on another thread ([`Transport::sign_ahead`]). Dropping it is the
/// normal use: a call sent before its signature is ready waits for it.
#[derive(Debug)]
pub struct SigningAhead(Option<(Arc<SignedAhead>, u64)>);

impl SigningAhead {
    /// Nothing to wait for: the call will sign for itself.
    pub fn none() -> SigningAhead {
        SigningAhead(None)
    }

    /// Waits until the signature is ready or could not be made (at most a second).
    pub fn wait(self) {
        if let Some((memo, id)) = self.0 {
            memo.wait_for(id, Duration::from_secs(1));
        }
    }
}

/// How long a host name's addresses are reused before they are looked up again.
const DNS_TTL: Duration = Duration::from_secs(30);

/// ureq's resolver spawns a thread per request whenever a timeout is set, even for a pooled
/// connection to an IP address (about 3 ms per call on a busy 2-core machine). This one answers
/// IP literals at once and remembers names for [`DNS_TTL`]; it delegates the lookups themselves.
#[derive(Debug, Default)]
struct CachingResolver {
    lookup: ureq::unversioned::resolver::DefaultResolver,
    cache: std::sync::Mutex<
        std::collections::HashMap<
            String,
            (ureq::unversioned::resolver::ResolvedSocketAddrs, Instant),
        >,
    >,
}

impl ureq::unversioned::resolver::Resolver for CachingResolver {
    fn resolve(
        &self,
        uri: &http::Uri,
        config: &ureq::config::Config,
        timeout: ureq::unversioned::transport::NextTimeout,
    ) -> std::result::Result<ureq::unversioned::resolver::ResolvedSocketAddrs, ureq::Error> {
        let host = uri
            .host()
            .unwrap_or("")
            .trim_start_matches('[')
            .trim_end_matches(']');
        let port = uri
            .port_u16()
            .unwrap_or(if uri.scheme_str() == Some("https") {
                443
            } else {
                80
            });
        if let Ok(ip) = host.parse::<std::net::IpAddr>() {
            let mut addrs = self.empty();
            addrs.push(std::net::SocketAddr::new(ip, port));
            return Ok(addrs);
        }
        let key = format!("{host}:{port}");
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((addrs, at)) = cache.get(&key) {
            if at.elapsed() < DNS_TTL {
                return Ok(addrs.clone());
            }
        }
        drop(cache);
        let addrs = self.lookup.resolve(uri, config, timeout)?;
        cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.insert(key, (addrs.clone(), Instant::now()));
        Ok(addrs)
    }
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
            ahead: Arc::default(),
        }
    }

    /// The same agent and limits with another authentication mode.
    pub fn with_auth(&self, auth: Auth) -> Transport {
        Transport {
            agent: self.agent.clone(),
            auth,
            config: Arc::clone(&self.config),
            ahead: Arc::default(),
        }
    }

    /// Signs `call` on another thread now, so that sending it within the next minute skips the
    /// RSA operation: for a caller waiting on the network meanwhile, signing costs no latency.
    /// Does nothing without OCI keys; any failure here is left for `send` to report.
    pub fn sign_ahead(&self, call: &Call<'_>) -> SigningAhead {
        let Auth::Oci(keys) = &self.auth else {
            return SigningAhead::none();
        };
        let Some(host) = host_of(call.origin) else {
            return SigningAhead::none();
        };
        let Ok(credentials) = keys.credentials() else {
            return SigningAhead::none();
        };
        let headers = wire_headers(call, host);
        let headers = borrowed(&headers);
        let now = SystemTime::now();
        let Ok(text) = sign::signing_string(&to_sign(call, host, &headers), now) else {
            return SigningAhead::none();
        };
        let id = self
            .ahead
            .start(credentials.key_id, now, text.as_str().to_string());
        self.ahead.submit(Job {
            id,
            key: credentials.key,
            text,
        });
        SigningAhead(Some((Arc::clone(&self.ahead), id)))
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
            let error = match self.attempt(&mut call, remaining) {
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

    /// One signed attempt within `budget`.
    fn attempt(&self, call: &mut Call<'_>, budget: Duration) -> Result<Reply> {
        let service = call.service;
        let host = host_of(call.origin)
            .ok_or_else(|| Error::Config(format!("{service}: bad endpoint {:?}", call.origin)))?;
        let mut headers = wire_headers(call, host);
        self.authorize(call, host, &mut headers)?;

        let url = format!("{}{}", call.origin, call.path_and_query);
        let mut builder = http::Request::builder().method(call.method).uri(&url);
        for (name, value) in &headers {
            builder = builder.header(*name, value.as_str());
        }
        let timeout = budget.min(self.config.attempt_timeout);
        let result = match &mut call.payload {
            Payload::Empty if matches!(call.method, "POST" | "PUT" | "PATCH") => {
                self.run(builder.body(&[][..]), timeout)
            }
            Payload::Empty => self.run(builder.body(()), timeout),
            Payload::Signed { bytes, .. } => self.run(builder.body(*bytes), timeout),
            Payload::Unsigned { reader, .. } => {
                reader
                    .seek(SeekFrom::Start(0))
                    .map_err(|e| Error::Transport {
                        service,
                        detail: format!("cannot rewind the upload body: {e}"),
                    })?;
                let body = ureq::SendBody::from_reader(&mut **reader);
                self.run(builder.body(body), timeout)
            }
        };
        let response = result.map_err(|e| transport_error(service, &e))?;
        let status = response.status().as_u16();
        if status < 400 {
            return Ok(Reply {
                response: Some(response),
                service,
            });
        }
        Err(Error::Service(read_service_error(service, response)))
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
                let wire = borrowed(headers);
                let request = to_sign(call, host, &wire);
                let added = match self.ahead.take(&request, &credentials.key_id) {
                    Some(added) => added,
                    None => sign::sign(
                        &request,
                        &credentials.key_id,
                        &credentials.key,
                        SystemTime::now(),
                    )?,
                };
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

/// What the signer sees of `call` going out with `headers`.
fn to_sign<'r>(
    call: &'r Call<'_>,
    host: &'r str,
    headers: &'r [(&'r str, &'r str)],
) -> RequestToSign<'r> {
    RequestToSign {
        method: call.method,
        path_and_query: &call.path_and_query,
        host,
        headers,
        body: match &call.payload {
            Payload::Empty => sign::Body::Signed(&[]),
            Payload::Signed { bytes, .. } => sign::Body::Signed(bytes),
            Payload::Unsigned { .. } => sign::Body::Unsigned,
        },
    }
}

fn borrowed<'h>(headers: &'h [(&'h str, String)]) -> Vec<(&'h str, &'h str)> {
    headers.iter().map(|(n, v)| (*n, v.as_str())).collect()
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
    fn constant_time_comparison_is_still_a_comparison() {
        assert!(constant_time_eq(b"ADMIN:pw", b"ADMIN:pw"));
        assert!(!constant_time_eq(b"ADMIN:pw", b"ADMIN:px"));
        assert!(!constant_time_eq(b"ADMIN:pw", b"ADMIN:pw2"));
    }

    #[test]
    fn secrets_are_redacted() {
        let auth = Auth::Basic {
            user: "ADMIN".into(),
            password: Secret::new("hunter2-very-secret"),
        };
        let shown = format!("{auth:?} {}", Secret::new("hunter2-very-secret"));
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("ADMIN"));
    }

    /// A GET or a JSON POST as the transport would sign it.
    fn request<'a>(
        method: &'a str,
        headers: &'a [(&'a str, &'a str)],
        body: &'a [u8],
    ) -> RequestToSign<'a> {
        RequestToSign {
            method,
            path_and_query: "/n/ns/b/images/o/a.jpg",
            host: "objectstorage.us-ashburn-1.oraclecloud.com",
            headers,
            body: sign::Body::Signed(body),
        }
    }

    fn key() -> Arc<sign::PrivateKey> {
        Arc::new(sign::PrivateKey::from_pem(crate::emulator::DEV_KEY_PEM, "dev key").unwrap())
    }

    /// Registers and makes a signature for `request` at `date`, as `sign_ahead` does.
    fn sign_ahead_at(
        memo: &SignedAhead,
        request: &RequestToSign<'_>,
        key_id: &str,
        date: SystemTime,
    ) {
        let text = sign::signing_string(request, date).unwrap();
        let id = memo.start(key_id.into(), date, text.as_str().into());
        memo.finish(id, Some(sign::signature(&key(), &text).unwrap()));
    }

    #[test]
    fn a_signature_made_ahead_is_the_one_signing_afresh_would_make_and_is_used_once() {
        let memo = SignedAhead::default();
        let headers = [("host", "objectstorage.us-ashburn-1.oraclecloud.com")];
        let get = request("GET", &headers, b"");
        let date = SystemTime::now() - Duration::from_secs(5);
        sign_ahead_at(&memo, &get, "t/u/f", date);
        let taken = memo
            .take(&get, "t/u/f")
            .expect("the made signature is used");
        assert_eq!(taken, sign::sign(&get, "t/u/f", &key(), date).unwrap());
        assert!(memo.take(&get, "t/u/f").is_none(), "used once");
    }

    #[test]
    fn a_signature_made_ahead_serves_only_an_identical_signing_string() {
        let memo = SignedAhead::default();
        let headers = [("host", "objectstorage.us-ashburn-1.oraclecloud.com")];
        let post = request("POST", &headers, br#"{"a":1}"#);
        sign_ahead_at(&memo, &post, "t/u/f", SystemTime::now());
        assert!(memo
            .take(&request("POST", &headers, br#"{"a":2}"#), "t/u/f")
            .is_none());
        assert!(memo
            .take(&request("PUT", &headers, br#"{"a":1}"#), "t/u/f")
            .is_none());
        assert!(
            memo.take(&post, "ST$other-token").is_none(),
            "another key id"
        );
        assert!(
            memo.take(&post, "t/u/f").is_some(),
            "still there for its own call"
        );
    }

    #[test]
    fn an_old_signature_made_ahead_is_not_sent() {
        let memo = SignedAhead::default();
        let headers = [("host", "objectstorage.us-ashburn-1.oraclecloud.com")];
        let get = request("GET", &headers, b"");
        sign_ahead_at(&memo, &get, "t/u/f", SystemTime::now() - AHEAD_MAX_AGE);
        assert!(memo.take(&get, "t/u/f").is_none());
        assert_eq!(memo.lock().len(), 0, "dropped");
    }

    #[test]
    fn a_call_waits_for_a_signature_being_made_and_not_for_a_failed_one() {
        let memo = Arc::new(SignedAhead::default());
        let headers = [("host", "objectstorage.us-ashburn-1.oraclecloud.com")];
        let get = request("GET", &headers, b"");
        let date = SystemTime::now();
        let text = sign::signing_string(&get, date).unwrap();
        let id = memo.start("t/u/f".into(), date, text.as_str().into());
        let signer = {
            let memo = Arc::clone(&memo);
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(10));
                memo.finish(id, Some(sign::signature(&key(), &text).unwrap()));
            })
        };
        assert_eq!(
            memo.take(&get, "t/u/f"),
            Some(sign::sign(&get, "t/u/f", &key(), date).unwrap())
        );
        signer.join().unwrap();

        let text = sign::signing_string(&get, date).unwrap();
        let id = memo.start("t/u/f".into(), date, text.as_str().into());
        memo.finish(id, None);
        let started = Instant::now();
        assert!(memo.take(&get, "t/u/f").is_none());
        assert!(started.elapsed() < AHEAD_WAIT);
    }

    #[test]
    fn signatures_made_ahead_are_bounded_and_never_shown() {
        let memo = SignedAhead::default();
        let headers = [("host", "objectstorage.us-ashburn-1.oraclecloud.com")];
        for i in 0..AHEAD_CAPACITY + 3 {
            let body = format!("{{\"i\":{i}}}");
            let post = request("POST", &headers, body.as_bytes());
            let text = sign::signing_string(&post, SystemTime::now()).unwrap();
            memo.start(
                "ST$secret-token".into(),
                SystemTime::now(),
                text.as_str().into(),
            );
        }
        assert_eq!(memo.lock().len(), AHEAD_CAPACITY);
        let shown = format!("{memo:?}");
        assert!(!shown.contains("secret-token"), "{shown}");
    }
}
