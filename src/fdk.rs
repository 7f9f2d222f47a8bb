//! The Fn container contract (OCI Functions) on our HTTP layer: socket start-up, `POST /call`,
//! deadlines, and the status an agent reads as a verdict.
//!
//! Start-up follows the contract step by step: validate `FN_FORMAT` and `FN_LISTENER`, bind a
//! phony socket beside the real name, make it 0666, serve it, and only then create the real name
//! as a **relative** symlink to it (readiness is the symlink's appearance). Each call's
//! `Fn-Deadline` becomes an [`Instant`] for the handler; a call already past its deadline is
//! answered 504 at once. Handler outcomes map to 200 (success), 502 (handled failure) or 504
//! (gave up near the deadline), never to a status that makes the agent kill the container, even
//! when the handler panics. No TCP port, no timeouts of our own on the socket.
//!
//! Not here: what a call does (that is the handler's), HTTP-gateway intents (we are triggered by
//! events and invoke only).

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::error::{Error, Result};
use crate::http::{Limits, Listener, Request, Response, Server};

/// Largest call body read (OCI caps invocation bodies at 6 MB).
const MAX_CALL_BODY: usize = 6 * 1024 * 1024;
/// The deadline assumed when the agent sends none (the platform's default timeout).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest socket path a `sockaddr_un` holds.
const MAX_SOCKET_PATH: usize = 107;

/// Sent on every answer.
pub const FDK_VERSION: &str = concat!("fdk-rust-ocivision/", env!("CARGO_PKG_VERSION"));
/// Sent on every answer: the minimum rustc this crate builds with.
pub const FDK_RUNTIME: &str = concat!("rust/", env!("CARGO_PKG_RUST_VERSION"));

/// The contract's settings, read from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FnConfig {
    /// The socket path the agent connects to (`FN_LISTENER` without `unix:`).
    pub socket: PathBuf,
    /// `FN_LOGFRAME_NAME` and `FN_LOGFRAME_HDR`, when both are set.
    pub logframe: Option<(String, String)>,
}

impl FnConfig {
    /// Reads `FN_FORMAT` (unset or `http-stream`) and `FN_LISTENER` (`unix:/path`).
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Result<FnConfig> {
        match lookup("FN_FORMAT").as_deref() {
            None | Some("") | Some("http-stream") => {}
            Some(other) => {
                return Err(Error::Config(format!(
                    "FN_FORMAT={other:?} is not supported (only http-stream)"
                )))
            }
        }
        let listener = lookup("FN_LISTENER")
            .ok_or_else(|| Error::Config("FN_LISTENER is not set (expected unix:/path)".into()))?;
        let path = listener.strip_prefix("unix:").ok_or_else(|| {
            Error::Config(format!(
                "FN_LISTENER={listener:?} does not start with unix:"
            ))
        })?;
        if path.is_empty() || path.len() > MAX_SOCKET_PATH || !path.starts_with('/') {
            return Err(Error::Config(format!(
                "FN_LISTENER path {path:?} must be absolute and at most {MAX_SOCKET_PATH} bytes"
            )));
        }
        let logframe = match (lookup("FN_LOGFRAME_NAME"), lookup("FN_LOGFRAME_HDR")) {
            (Some(name), Some(header)) if !name.is_empty() && !header.is_empty() => {
                Some((name, header))
            }
            _ => None,
        };
        Ok(FnConfig {
            socket: PathBuf::from(path),
            logframe,
        })
    }
}

/// One invocation as the handler sees it.
#[derive(Debug)]
pub struct Invocation {
    /// `Fn-Call-Id`.
    pub call_id: String,
    /// When the agent gives up on this call.
    pub deadline: Instant,
    /// The request body (an event's JSON).
    pub body: Vec<u8>,
    /// `Content-Type` of the body.
    pub content_type: String,
}

/// What a handler reports.
#[derive(Debug, Clone, PartialEq)]
pub enum CallResult {
    /// Done; this JSON is the answer (200).
    Success(serde_json::Value),
    /// A handled failure, logged; the agent sees 502.
    Failed(String),
    /// Gave up because the deadline was near; the agent sees 504.
    TimedOut(String),
}

/// A function handler.
pub type FnHandler = dyn Fn(&Invocation) -> CallResult + Send + Sync + 'static;

/// A running function server. Dropping it stops serving and removes both socket files.
pub struct FnServer {
    server: Option<Server>,
    socket: PathBuf,
    phony: PathBuf,
}

impl FnServer {
    /// Performs the start-up dance and serves `handler`. Returns once the symlink exists.
    pub fn start(
        config: &FnConfig,
        handler: impl Fn(&Invocation) -> CallResult + Send + Sync + 'static,
    ) -> Result<FnServer> {
        let socket = config.socket.clone();
        let dir = socket.parent().unwrap_or(Path::new("/"));
        let name = socket
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| Error::Config(format!("FN_LISTENER {socket:?} has no file name")))?;
        let phony_name = format!("phony{name}");
        let phony = dir.join(&phony_name);
        let _ = std::fs::remove_file(&socket);
        let _ = std::fs::remove_file(&phony);
        let listener = UnixListener::bind(&phony).map_err(|e| {
            Error::Config(format!(
                "binding the function socket {}: {e}",
                phony.display()
            ))
        })?;
        // The agent runs as another user: it must be able to connect.
        std::fs::set_permissions(&phony, std::fs::Permissions::from_mode(0o666))?;
        let handler: Arc<FnHandler> = Arc::new(handler);
        let logframe = config.logframe.clone();
        let server = Server::start(
            Listener::Unix(listener),
            Limits::fn_socket(),
            move |request| Ok(call(request, &*handler, logframe.as_ref())),
        )?;
        // Relative, so it still resolves where the host mounts the directory elsewhere.
        std::os::unix::fs::symlink(&phony_name, &socket).map_err(|e| {
            Error::Config(format!(
                "creating the function socket link {}: {e}",
                socket.display()
            ))
        })?;
        log::info!(target: "fdk", "listening on {} ({FDK_VERSION})", socket.display());
        Ok(FnServer {
            server: Some(server),
            socket,
            phony,
        })
    }

    /// Serves until the process ends.
    pub fn wait(mut self) {
        if let Some(server) = self.server.take() {
            server.wait();
        }
    }

    /// Stops, letting a call in flight finish for up to `grace`.
    pub fn shutdown(mut self, grace: Duration) {
        if let Some(server) = self.server.take() {
            server.shutdown(grace);
        }
    }
}

impl Drop for FnServer {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown(Duration::from_secs(1));
        }
        let _ = std::fs::remove_file(&self.socket);
        let _ = std::fs::remove_file(&self.phony);
    }
}

/// Answers one request on the function socket.
fn call(request: &Request, handler: &FnHandler, logframe: Option<&(String, String)>) -> Response {
    if request.path() != "/call" {
        return answer(
            404,
            serde_json::json!({"error": "the Fn contract serves POST /call only"}),
        );
    }
    if request.method() != "POST" {
        return answer(405, serde_json::json!({"error": "POST /call only"}));
    }
    let call_id = request.header("fn-call-id").unwrap_or("").to_string();
    if let Some((name, header)) = logframe {
        let frame = format!("\n{name}={}\n", request.header(header).unwrap_or(""));
        let _ = std::io::stdout().write_all(frame.as_bytes());
        let _ = std::io::stderr().write_all(frame.as_bytes());
    }
    let deadline = match request.header("fn-deadline") {
        Some(text) => match crate::timefmt::parse(text) {
            Some(at) => instant_of(at),
            None => {
                log::warn!(target: "fdk", "call {call_id}: unreadable Fn-Deadline {text:?}; assuming 30 s");
                Instant::now() + DEFAULT_TIMEOUT
            }
        },
        None => Instant::now() + DEFAULT_TIMEOUT,
    };
    if deadline <= Instant::now() {
        log::warn!(target: "fdk", "call {call_id}: deadline already passed; not starting");
        return answer(504, serde_json::json!({"error": "deadline already passed"}));
    }
    let body = match request.read_body(MAX_CALL_BODY) {
        Ok(body) => body,
        Err(e) => {
            log::warn!(target: "fdk", "call {call_id}: reading the body: {e}");
            return answer(502, serde_json::json!({"error": e.to_string()}));
        }
    };
    let invocation = Invocation {
        call_id: call_id.clone(),
        deadline,
        body,
        content_type: request.header("content-type").unwrap_or("").to_string(),
    };
    let started = Instant::now();
    // A panic must not become the HTTP layer's 500: the agent would kill the container.
    let outcome = catch_unwind(AssertUnwindSafe(|| handler(&invocation)))
        .unwrap_or_else(|_| CallResult::Failed("the handler panicked".into()));
    let ms = started.elapsed().as_millis();
    match outcome {
        CallResult::Success(value) => {
            log::info!(target: "fdk", "call {call_id}: ok in {ms} ms");
            answer(200, value)
        }
        CallResult::Failed(reason) => {
            log::warn!(target: "fdk", "call {call_id}: failed in {ms} ms: {reason}");
            answer(502, serde_json::json!({"error": reason}))
        }
        CallResult::TimedOut(reason) => {
            log::warn!(target: "fdk", "call {call_id}: gave up in {ms} ms: {reason}");
            answer(504, serde_json::json!({"error": reason}))
        }
    }
}

fn answer(status: u16, body: serde_json::Value) -> Response {
    Response::new(status)
        .with_header("content-type", "application/json")
        .with_header("fn-fdk-version", FDK_VERSION)
        .with_header("fn-fdk-runtime", FDK_RUNTIME)
        .with_body(serde_json::to_vec(&body).unwrap_or_default())
}

/// The local instant of a wall-clock time (past times map to now).
fn instant_of(at: SystemTime) -> Instant {
    match at.duration_since(SystemTime::now()) {
        Ok(ahead) => Instant::now() + ahead,
        Err(_) => Instant::now() - Duration::from_millis(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::config::test_lookup as lookup;

    #[test]
    fn config_validates_format_and_listener() {
        let ok =
            FnConfig::from_lookup(&lookup(&[("FN_LISTENER", "unix:/tmp/iofs/lsnr.sock")])).unwrap();
        assert_eq!(ok.socket, PathBuf::from("/tmp/iofs/lsnr.sock"));
        assert_eq!(ok.logframe, None);
        for (pairs, needle) in [
            (vec![], "FN_LISTENER is not set"),
            (vec![("FN_LISTENER", "/tmp/x.sock")], "unix:"),
            (vec![("FN_LISTENER", "unix:relative.sock")], "absolute"),
            (
                vec![("FN_LISTENER", "unix:/tmp/x.sock"), ("FN_FORMAT", "json")],
                "FN_FORMAT",
            ),
        ] {
            let err = FnConfig::from_lookup(&lookup(&pairs))
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{err}");
        }
        let long = format!("unix:/{}", "x".repeat(120));
        assert!(FnConfig::from_lookup(&lookup(&[("FN_LISTENER", &long)])).is_err());
    }

    #[test]
    fn calls_map_outcomes_to_verdicts() {
        let handler = |inv: &Invocation| match inv.body.as_slice() {
            b"ok" => CallResult::Success(serde_json::json!({"n": 1})),
            b"panic" => panic!("boom"),
            b"late" => CallResult::TimedOut("late".into()),
            _ => CallResult::Failed("bad".into()),
        };
        let deadline = crate::timefmt::format(
            SystemTime::now() + Duration::from_secs(30),
            crate::timefmt::Precision::Seconds,
        );
        let run = |body: &[u8], deadline: &str| {
            let request = Request::fake(
                "POST",
                "/call",
                &[("Fn-Deadline", deadline), ("Fn-Call-Id", "01ABC")],
                body,
            );
            call(&request, &handler, None)
        };
        let ok = run(b"ok", &deadline);
        assert_eq!(ok.status(), 200);
        assert_eq!(ok.header("fn-fdk-version"), Some(FDK_VERSION));
        assert_eq!(ok.body_bytes(), Some(&br#"{"n":1}"#[..]));
        assert_eq!(run(b"bad", &deadline).status(), 502);
        assert_eq!(run(b"panic", &deadline).status(), 502);
        assert_eq!(run(b"late", &deadline).status(), 504);
        assert_eq!(run(b"ok", "2001-01-01T00:00:00Z").status(), 504);
        let other = call(&Request::fake("GET", "/", &[], b""), &handler, None);
        assert_eq!(other.status(), 404);
    }
}
