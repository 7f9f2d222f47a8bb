//! The single integration-test binary: one module per behaviour, fakes over real loopback.

mod support; // shared helpers: raw-socket client, temp dirs, test keys
mod http; // hostile-input checklist over real sockets
