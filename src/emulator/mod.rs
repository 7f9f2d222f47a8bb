//! A local stand-in for the OCI services we use (in progress).

pub mod object_storage;
pub mod soda;
pub(crate) mod store;
pub mod wire;
