//! A local stand-in for the OCI services we use (in progress).

pub(crate) mod store;
pub mod wire;
