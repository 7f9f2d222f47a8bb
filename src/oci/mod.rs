//! Oracle Cloud: request signing, credentials, regions and the signed transport.
//!
//! `sign` is pure; `auth` says who signs; `region` maps region names to service endpoints;
//! `client` is the only code here that touches the network.

pub mod auth;
pub mod client;
pub mod region;
pub mod sign;
