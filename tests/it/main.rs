//! The single integration-test binary: one module per behaviour, fakes over real loopback.

mod signing; // OCI signing vectors, stage by stage, and credential providers
mod support; // shared helpers: raw-socket client, temp dirs, test keys
