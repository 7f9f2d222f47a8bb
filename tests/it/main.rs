//! The single integration-test binary: one module per behaviour, fakes over real loopback.
//! Its fakes are the emulator, so it is built only with the `local` feature (Cargo.toml).

mod access; // sessions keyed by the deployment's secret, password changes, login throttling
mod browser; // headless Chromium over WebDriver: upload, live badges, result boxes, slider, delete
mod burst; // issue 17: a burst against a rate-limited Vision and many function instances
mod clients; // every typed client call against the emulator, with real signatures
mod deploy; // issue 24: each unconfirmed cloud behaviour switched on, detected and survived
mod detect; // the local ONNX detector on real photos
mod doctor; // webapp doctor: all green, then each check made to fail
mod emulator; // signature tampering, fault injection, events through the Fn contract
mod func; // the Fn contract over a real unix socket, and the func binary's start-up
mod gallery; // thumbnails and previews, search across every page, local ontology, a PNG bomb
mod http; // hostile input against our HTTP layer, over real sockets
mod iam; // IAM ablation: each policy statement removed in turn, what breaks and what the user sees
mod lease; // the reconciler lease: racing instances, renewal, a crashed holder
mod local; // local mode end to end: the webapp binary with no cloud, upload to done, restart
mod photos; // issue 23: phone photos upright, CMYK, EXIF date and camera, 50 MiB streamed, dropped uploads
mod pipeline; // the func binary end to end: events in, one document per image out
mod signing; // OCI signing vectors, stage by stage, and credential providers
#[path = "../support/mod.rs"]
mod support; // the harness, shared with the benchmarks: the local stack, HTTP client, detectors
mod text; // issue 25: the local OCR on known text, words searchable with q=, text off, old documents
mod web; // the web app: routes, uploads (good and hostile), CSRF, escaping, delete, re-analysis, reconciler
