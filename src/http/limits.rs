//! Every size, count and time limit of the HTTP layer, as one plain value per listener.
//!
//! Two profiles: [`Limits::public`] for the TCP web server behind the OCI load balancer (strict
//! timeouts, R8–R12 of `http-hardening.md`) and [`Limits::fn_socket`] for the Fn unix socket (no
//! read/write/idle timeouts: the Fn agent enforces `Fn-Deadline`, and an FDK must not impose its
//! own). This module only holds numbers; it does not read the environment or enforce anything.

use std::time::Duration;

/// Limits for one listener. Start from a profile and change fields:
/// `let mut l = Limits::public(); l.idle_timeout = Some(Duration::from_secs(5));`
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Largest request head (request line + headers + blank line) in bytes; a head that does not
    /// fit gets `431` + close. Also the size of each connection's read buffer. Default 16 KiB.
    pub max_head_bytes: usize,
    /// Longest single line of the head in bytes: request line → `414`, header line → `431`.
    /// Default 8 KiB.
    pub max_line_bytes: usize,
    /// Most headers in one request; more → `431` + close. Default 64.
    pub max_headers: usize,
    /// Largest request body in bytes. A larger `Content-Length` is refused with `413` before the
    /// handler runs; a chunked body crossing it fails with `413`. Handlers may enforce less.
    /// Default 8 MiB (public) and 8 MiB (Fn; OCI caps a call body at 6 MB).
    pub max_body_bytes: u64,
    /// Longest chunk-size line (size, extensions, CRLF) of a chunked body. Default 1 KiB.
    pub max_chunk_line_bytes: usize,
    /// Most bytes of trailer section after the last chunk (read and discarded). Default 8 KiB.
    pub max_trailer_bytes: usize,
    /// Longest wait for any single read from the client once a request has started.
    /// Default 30 s (public), none (Fn).
    pub read_timeout: Option<Duration>,
    /// Longest wait for any single write to the client. Default 30 s (public), none (Fn).
    pub write_timeout: Option<Duration>,
    /// Time allowed from the first byte of a request until its head is complete (slowloris
    /// guard); → `408` + close. Default 10 s (public), none (Fn).
    pub head_timeout: Option<Duration>,
    /// Time allowed for a whole request body, counted from the end of the head (from the
    /// handler's first read when the client waits for `100 Continue`); checked between reads,
    /// so a client dripping bytes cannot stretch it; → `408` + close. With the default body cap
    /// this is a minimum rate of about 70 KB/s. Default 120 s (public), none (Fn).
    pub body_timeout: Option<Duration>,
    /// How long a connection may wait for the first byte of its next request (also its first
    /// one: the load balancer opens connections ahead of use). Must stay above the LB's 300 s
    /// backend idle timeout (R10). Default 330 s (public), none (Fn).
    pub idle_timeout: Option<Duration>,
    /// Most connections open at once (idle, sending a head, or being answered). An idle
    /// connection holds no thread and no buffer, so this is about file descriptors: the server
    /// also keeps it below the process's open-file limit. When full, the longest-idle
    /// connection is closed to make room, or if none is idle the new one gets `503` +
    /// `Retry-After` + close. Default 100,000 (public), 64 (Fn).
    pub max_connections: usize,
    /// Threads that run handlers (started as needed, kept once started). A connection holds one
    /// only while its request is being answered. Default 32 (public), 16 (Fn).
    pub workers: usize,
    /// Longest a complete request waits for a free worker; then it gets `503` + `Retry-After`
    /// + close. Default 500 ms.
    pub queue_timeout: Duration,
    /// Most unread body bytes discarded after the handler to keep a connection alive; more →
    /// close instead. Default 64 KiB.
    pub drain_max_bytes: u64,
    /// Time allowed for that discard; slower → close. Default 1 s.
    pub drain_timeout: Duration,
    /// Seconds sent in `Retry-After` with a `503` when every worker is busy or the connection
    /// cap is reached. Default 1.
    pub retry_after_secs: u32,
    /// Pause after a resource error from `accept()` (EMFILE, ENFILE, ENOBUFS, ENOMEM) before the
    /// next try, so a full fd table does not spin a core. Default 100 ms.
    pub accept_backoff: Duration,
    /// A health-check path (exact, no query) that the readiness loop answers `200` itself, with
    /// `Connection: close`, to a bodiless `GET` or `HEAD` when every worker is taken: a busy app
    /// is still a live backend, and a check queued behind slow requests would get `503` and
    /// take it out of the load balancer. With a worker free, the handler answers it as usual.
    /// Default none.
    pub busy_health_path: Option<&'static str>,
}

impl Limits {
    /// The public TCP profile (web app behind the OCI load balancer).
    pub fn public() -> Limits {
        Limits {
            max_head_bytes: 16 * 1024,
            max_line_bytes: 8 * 1024,
            max_headers: 64,
            max_body_bytes: 8 * 1024 * 1024,
            max_chunk_line_bytes: 1024,
            max_trailer_bytes: 8 * 1024,
            read_timeout: Some(Duration::from_secs(30)),
            write_timeout: Some(Duration::from_secs(30)),
            head_timeout: Some(Duration::from_secs(10)),
            body_timeout: Some(Duration::from_secs(120)),
            idle_timeout: Some(Duration::from_secs(330)),
            max_connections: 100_000,
            workers: 32,
            queue_timeout: Duration::from_millis(500),
            drain_max_bytes: 64 * 1024,
            drain_timeout: Duration::from_secs(1),
            retry_after_secs: 1,
            accept_backoff: Duration::from_millis(100),
            busy_health_path: None,
        }
    }

    /// The Fn unix-socket profile: same parser limits, no timeouts of our own, few connections
    /// (the agent sends one call at a time).
    pub fn fn_socket() -> Limits {
        Limits {
            read_timeout: None,
            write_timeout: None,
            head_timeout: None,
            body_timeout: None,
            idle_timeout: None,
            max_connections: 64,
            workers: 16,
            ..Limits::public()
        }
    }
}

impl Default for Limits {
    /// The public profile.
    fn default() -> Limits {
        Limits::public()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_profile_keeps_idle_above_the_load_balancer_timeout() {
        let l = Limits::public();
        assert!(l.idle_timeout.unwrap() >= Duration::from_secs(310));
        assert!(l.max_line_bytes <= l.max_head_bytes);
        assert!(
            l.max_connections >= 10_000,
            "the benchmark holds 10,000 idle keep-alive connections"
        );
        assert!(l.workers >= 2 && l.queue_timeout < Duration::from_secs(1));
    }

    #[test]
    fn fn_profile_has_no_timeouts_but_the_same_parser_limits() {
        let (f, p) = (Limits::fn_socket(), Limits::public());
        assert_eq!(f.read_timeout, None);
        assert_eq!(f.write_timeout, None);
        assert_eq!(f.idle_timeout, None);
        assert_eq!(f.body_timeout, None);
        assert_eq!(f.max_head_bytes, p.max_head_bytes);
        assert_eq!(f.max_headers, p.max_headers);
    }
}
