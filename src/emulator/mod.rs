//! A local stand-in for the OCI services we use (in progress).

pub mod wire;
