//! The single integration-test binary: one module per behaviour, fakes over real loopback.

mod signing;
mod support; // shared helpers: raw-socket client, temp dirs, test keys // OCI signing vectors, stage by stage
