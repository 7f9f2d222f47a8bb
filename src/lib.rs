//! ocivision: serverless image analysis on Oracle Cloud.
//!
//! The library behind two binaries: `webapp` (upload, gallery, results) and `func` (the OCI
//! Function that runs object detection when an image lands in Object Storage). It holds the
//! pieces both share: our own hardened HTTP/1.1 layer, a hand-written OCI request signer with its
//! credential providers, region endpoints, the signed transport, and the logger. With the
//! `local-vision` feature (on by default) it also holds a local object detector, `detect`.
//!
//! Environment variables read by the binaries are listed in README.md.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod analysis;
pub mod config;
#[cfg(feature = "local")]
pub mod detect;
pub mod doctor;
pub mod document;
#[cfg(feature = "local")]
pub mod emulator;
mod error;
pub mod fdk;
pub mod http;
pub mod image_info;
#[cfg(feature = "local")]
pub mod local;
pub mod logger;
mod md5;
pub mod oci;
mod random;
pub mod secret;
pub mod soda;
pub mod timefmt;
pub mod web;

pub use error::{Error, Result, ServiceError};
/// Refuses to go on without the operating system's random number generator (binaries call it
/// first thing).
pub use random::check as check_randomness;
