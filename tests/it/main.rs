//! The single integration-test binary: one module per behaviour, fakes over real loopback.

mod browser; // headless Chromium over WebDriver: upload, live badges, result boxes, slider, delete
mod clients; // every typed client call against the emulator, with real signatures
mod emulator; // signature tampering, fault injection, events through the Fn contract
mod signing; // OCI signing vectors, stage by stage, and credential providers
mod support; // shared helpers: raw-socket client, temp dirs, test keys, emulator set-up
mod web; // the web app: routes, uploads (good and hostile), CSRF, escaping, delete, re-analysis, reconciler
