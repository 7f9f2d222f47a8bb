//! A local stand-in for the OCI services we use (in progress).

pub mod agent;
pub mod auth;
pub mod events;
pub mod faults;
pub mod secrets;
pub mod vision;
pub mod wire;
