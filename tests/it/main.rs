//! The single integration-test binary: one module per behaviour, fakes over real loopback.

mod http;
mod support; // shared helpers: raw-socket client, temp dirs, test keys // hostile-input checklist over real sockets
