//! ocivision: serverless image analysis on Oracle Cloud.
//!
//! The library behind two binaries: `webapp` (upload, gallery, results) and `func` (the OCI
//! Function that runs object detection when an image lands in Object Storage). It holds the
//! pieces both share: our own hardened HTTP/1.1 layer, a hand-written OCI request signer with its
//! credential providers, region endpoints, the signed transport, and the logger.
//!
//! With the `local` feature (on by default; off in the images) it also holds local mode: the OCI
//! emulator, the local object detector standing in for AI Vision, and the wiring that runs the
//! whole pipeline in one process.
//!
//! Environment variables read by the binaries are listed in README.md.
//!
//! # Public surface
//!
//! A module is public only because a binary, the benchmarks (examples/) or the integration
//! tests use it:
//!
//! | module | who uses it |
//! |---|---|
//! | [`oci`] | the signer, credential providers and typed clients: both binaries, tests, benchmarks |
//! | [`soda`] | the ORDS SODA client: both binaries (through the app and [`Analyzer`]), tests |
//! | [`http`] | our HTTP/1.1 server: the web app, the Fn contract, the emulator; tests drive it raw |
//! | [`web`] | the web app (`App`, `serve`, `reconcile`): `webapp`, tests, benchmarks |
//! | [`fdk`] | the Fn container contract: `func`, tests |
//! | [`document`] | the analysis document stored per image: tests and benchmarks read it |
//! | [`doctor`] | `webapp doctor`'s checks: `webapp`, tests |
//! | [`logger`] | the binaries' stderr logger |
//! | [`secret`] | [`secret::Secret`], a string that never reaches `Debug` or logs: configuration values |
//! | [`emulator`], [`detect`], [`local`] | local mode (feature `local`): `webapp`, the `emulator` binary; the harness starts its stacks with [`local`] |
//!
//! Plus [`Analyzer`] (the function's work, used by `func` and local mode), the crate's one
//! error type, [`Error`], and [`check_randomness`] (both binaries refuse to start without the
//! OS random number generator). Everything else (configuration parsing, image sniffing,
//! the Object Storage event's shape, renditions, randomness, MD5, RFC 3339 timestamps) is
//! private. What only tests and benchmarks need lives in their harness (tests/support/, which
//! compiles `timefmt.rs` in itself rather than have it public); the fuzz entry points of
//! [`http`] exist only under `cfg(fuzzing)`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod analysis;
mod config;
#[cfg(feature = "local")]
pub mod detect;
pub mod doctor;
pub mod document;
#[cfg(feature = "local")]
pub mod emulator;
mod error;
mod event;
mod exif;
pub mod fdk;
pub mod http;
mod image_info;
#[cfg(feature = "local")]
pub mod local;
pub mod logger;
mod md5;
pub mod oci;
pub mod ords_probe;
mod pacer;
mod picture;
mod random;
pub mod secret;
mod selftest;
pub mod soda;
mod timefmt;
mod vision_fallback;
pub mod web;

pub use analysis::Analyzer;
pub use error::{Error, Result, ServiceError};
/// Refuses to go on without the operating system's random number generator (binaries call it
/// first thing).
pub use random::check as check_randomness;
