//! Helpers shared by the integration tests.

pub mod emulator;
pub mod web;
