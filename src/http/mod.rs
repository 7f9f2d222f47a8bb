//! Our strict, blocking HTTP/1.1 server layer, shared by the web app, the Fn function socket and
//! the local OCI emulator.
//!
//! A handler is a function from [`Request`] to [`Response`] (see [`Handler`]); only the server
//! loop touches sockets. The layer follows `http-hardening.md` R1–R21: bounded heads on
//! `httparse`, strict framing (one valid `Content-Length` or exactly `chunked`), streamed bodies
//! with a hard cap and a total deadline, `100 Continue` only when the handler reads, bounded
//! connection threads with a fast `503`, surviving `accept()` errors, `catch_unwind` around
//! handlers, and `Connection: close` on every response after which we close. Each listener picks
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
//! Not here: routing, TLS, HTTP/2, compression, client code (ureq does that).

mod chunked;
mod conn;
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
#[doc(hidden)]
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
#[doc(hidden)]
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
