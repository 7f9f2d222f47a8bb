//! Our strict, blocking HTTP/1.1 server layer, shared by the web app, the Fn function socket and
//! the local OCI emulator.
//!
//! A handler is a function from [`Request`] to [`Response`] (see [`Handler`]); only the server
//! loop touches sockets. The layer follows `http-hardening.md` R1–R21: bounded heads on
//! `httparse`, strict framing (one valid `Content-Length` or exactly `chunked`), streamed bodies
//! with a hard cap and a total deadline, `100 Continue` only when the handler reads, surviving
//! `accept()` errors, `catch_unwind` around handlers, and `Connection: close` on every response
//! after which we close. Handlers stay blocking and synchronous, but a connection costs a thread
//! only while its request is answered: one readiness loop (epoll) holds idle and half-sent
//! connections and reads heads without blocking; a bounded pool of workers runs handlers, with a
//! fast `503` + `Retry-After` when every worker stays busy. Each listener picks
//! a [`Limits`] profile: [`Limits::public`] (TCP, strict timeouts) or [`Limits::fn_socket`]
//! (unix socket, no timeouts of our own).
//!
//! ```no_run
//! use ocivision::http::{Limits, Response, Server};
//! let server = Server::bind_tcp("127.0.0.1:0", Limits::public(), |req| {
//!     Ok(match req.path() {
//!         "/healthz" => Response::new(200),
//!         _ => Response::error(404, None),
//!     })
//! })?;
//! println!("listening on {:?}", server.tcp_addr());
//! server.wait();
//! # Ok::<(), ocivision::Error>(())
//! ```
//!
//! Strict streaming `multipart/form-data` for uploads is in [`Multipart`].
//!
//! gzip for text answers ([`Response::compressed_for`], [`compress`]) is applied by the
//! caller, which knows the request's `Accept-Encoding`.
//!
//! Not here: routing, TLS, HTTP/2, client code (ureq does that).

mod chunked;
pub mod compress;
mod conn;
mod fd_limit;
mod limits;
mod multipart;
mod request;
mod response;
mod server;

pub use limits::Limits;
pub use multipart::{boundary, Multipart, MultipartLimits, PartHead};
pub use request::{BodyReader, Request, Version};
pub use response::Response;
pub use server::{Handler, ListenAddr, Listener, Server, ShutdownHandle};

/// Fuzzing entry point: parses `data` as a request head and runs the framing, target and
/// expectation checks on it. Must never panic, whatever the input.
#[cfg(any(test, fuzzing))]
pub fn fuzz_request_head(data: &[u8]) {
    let limits = Limits::public();
    if let Ok(Some((head, used))) = request::parse_head(data, &limits) {
        assert!(used <= data.len());
        let _ = request::framing(&head);
        let _ = request::check_target(&head);
        let _ = request::expects_continue(&head);
        let _ = request::client_wants_close(&head);
        let _ = request::request_id(&head);
    }
}

/// Fuzzing entry point: decodes `data` as a chunked body in one piece and again in small
/// pieces into a tiny buffer; both ways must agree. Must never panic.
#[cfg(any(test, fuzzing))]
pub fn fuzz_chunked(data: &[u8]) {
    let step = data.first().map_or(1, |b| usize::from(b % 7) + 1);
    let whole = chunked::decode_all(data, usize::MAX, 8192);
    let pieces = chunked::decode_all(data, step, 3);
    assert_eq!(
        whole, pieces,
        "decoding must not depend on how the input is split"
    );
    if let Ok(Some((body, used))) = whole {
        assert!(used <= data.len() && body.len() <= used);
    }
}

/// Fuzzing entry point: reads `data` as a `multipart/form-data` body (boundary `XyZ`) whole and
/// again through a reader that returns a few bytes at a time; both must give the same parts or
/// the same refusal status, and no part may exceed its cap. Must never panic.
#[cfg(any(test, fuzzing))]
pub fn fuzz_multipart(data: &[u8]) {
    struct Drip<'a>(&'a [u8], usize);
    impl std::io::Read for Drip<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            let n = self.1.min(out.len()).min(self.0.len());
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }
    fn parts(r: impl std::io::Read) -> Result<Vec<(PartHead, Vec<u8>)>, u16> {
        let ct = "multipart/form-data; boundary=XyZ";
        let mut m = Multipart::new(ct, r, MultipartLimits::default()).map_err(|e| e.status())?;
        let mut out = Vec::new();
        while let Some(head) = m.next_part().map_err(|e| e.status())? {
            let body = m
                .read_to_vec(4096, || crate::Error::bad_request(413, "cap"))
                .map_err(|e| e.status())?;
            assert!(body.len() <= 4096);
            out.push((head, body));
        }
        Ok(out)
    }
    let step = data.first().map_or(1, |b| usize::from(b % 5) + 1);
    let whole = parts(data);
    let dripped = parts(Drip(data, step));
    assert_eq!(
        whole, dripped,
        "parsing must not depend on how the body arrives"
    );
    if let Ok(p) = whole {
        assert!(p.len() <= MultipartLimits::default().max_parts);
    }
}
