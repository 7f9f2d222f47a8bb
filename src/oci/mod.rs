//! Oracle Cloud: request signing, credentials, regions, the signed transport and typed clients.
//!
//! `sign` is pure; `keys` loads RSA keys from PEM; `auth` says who signs; `region` maps region
//! names to service endpoints; `client` is the only code here that touches the network (with
//! `resolver`, its DNS cache); `object_storage`, `vision`, `secrets` and `functions` are typed
//! operations on top of it.

pub mod auth;
pub mod client;
pub mod encode;
pub mod functions;
pub mod keys;
pub mod object_storage;
pub(crate) mod region;
mod resolver;
pub mod secrets;
pub mod sign;
pub mod vision;
