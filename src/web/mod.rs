//! The web app: upload, gallery, result pages, a JSON API and the reconciler, on our HTTP layer.
//!
//! [`App`] is a plain value built from configuration and clients (no globals), so tests build one
//! against the emulator and call handlers with `Request::fake`. [`serve`] puts it behind a
//! [`Server`]. Routing is one table in `routes.rs`; pages are templates from
//! `templates/` filled by `html.rs`; CSS, JavaScript and the icon are embedded files served
//! from `/static/` under content-hashed names (`assets.rs`), never inline (the pages' CSP
//! forbids inline code). Text answers are gzipped for clients that accept it.
//!
//! Each upload also gets a thumbnail and a preview (`renditions.rs`, decoded and encoded by
//! `picture.rs`), which the pages show instead of the original. Deletes made in the browser wait
//! out an undo window (`undo_delete/`). Not here: TLS (the load balancer terminates it),
//! accounts (one optional shared password).

mod actions;
mod api;
mod assets;
mod auth;
mod catalog;
mod config;
mod confirm;
mod fallback;
mod form;
mod html;
mod lease;
mod pages;
mod reconcile;
mod renditions;
mod routes;
mod spool;
mod throttle;
mod undo_delete;
mod upload;
mod view;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::error::Result;
use crate::http::{Limits, Request, Response, Server};
use crate::oci::functions::Functions;
use crate::oci::object_storage::{Bucket, ObjectStorage};
use crate::secret::Secret;
use crate::soda::Soda;

pub use config::{PasswordSource, SessionSecretSource, WebConfig, MIN_SESSION_SECRET};
pub use fallback::{reconciler_runs_here, RECONCILER_DESIGNATED};
pub use reconcile::{reconcile, spawn_reconciler, ReconcileReport};
pub use renditions::renditions;
pub use throttle::{LoginThrottle, TrustedProxies};

/// Memory the app needs besides uploads and decodes: code, threads' stacks, pages, caches.
const BASELINE_BYTES: u64 = 24 * 1024 * 1024;
/// Memory one upload holds whatever its size (its body goes to a spool file, `spool.rs`): the
/// first 256 KiB read to judge the file, copy buffers of the body, the PUT and the decoder, the
/// hashing queue.
pub const UPLOAD_MEMORY_BYTES: u64 = 1024 * 1024;
/// Disk the uploads in flight may fill with their spool files together.
pub const SPOOL_BYTES: u64 = 1024 * 1024 * 1024;
/// Largest upload accepted by default: phone photos are 5–15 MB, and 50 MiB leaves room for
/// 50 MP and 200 MP modes.
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 50 * 1024 * 1024;

/// The upload limit memory and disk give: every upload in flight holds
/// [`UPLOAD_MEMORY_BYTES`] of memory and up to `max_upload_bytes` of spool on disk (at most
/// [`SPOOL_BYTES`] together), and at most `decode_slots` of them are decoding at once, each
/// within 64 MiB (`picture::DECODE_BYTES`); 24 MiB of memory go to everything else. So
/// `uploads = min((budget − 24 MiB − slots × 64 MiB) / 1 MiB, 1 GiB / max_upload)`, at least 1.
/// The defaults (256 MiB, 50 MiB, 2 slots) give min(104, 20) = 20.
pub fn uploads_for_memory(budget: u64, max_upload_bytes: u64, decode_slots: usize) -> usize {
    let fixed = BASELINE_BYTES + decode_slots as u64 * crate::picture::DECODE_BYTES;
    let by_memory = budget.saturating_sub(fixed) / UPLOAD_MEMORY_BYTES;
    let by_disk = SPOOL_BYTES / max_upload_bytes.max(1);
    by_memory.min(by_disk).max(1) as usize
}

/// Every tunable of the app as a plain value; [`Settings::default`] documents the defaults.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Largest image accepted, in bytes. Default 50 MiB ([`DEFAULT_MAX_UPLOAD_BYTES`]); Vision's 5 MB
    /// limit applies to what it analyses, an upright copy when the original is larger.
    pub max_upload_bytes: u64,
    /// Memory the app may use for uploads and thumbnail making, in bytes. Default 256 MiB.
    pub memory_budget: u64,
    /// Thumbnail decodes at once; more uploads wait for a slot (up to 10 s, then their
    /// thumbnails are left to the reconciler). Default: the number of cores, at most 2.
    pub decode_slots: usize,
    /// Uploads handled at once; more get `503` + `Retry-After: 5`. Default `None`: derived
    /// from memory and disk by [`uploads_for_memory`] (20 with the defaults).
    pub max_concurrent_uploads: Option<usize>,
    /// The origin browsers see (`https://vision.example.com`), for the CSRF `Origin` check.
    /// Default none: only `Sec-Fetch-Site` vouches for browser requests.
    pub public_origin: Option<String>,
    /// The shared password; `None` leaves the app open. Default none.
    pub password: Option<Secret>,
    /// Key material for session cookies and form tokens, the same on every instance of a
    /// deployment. Default none: a random key per process (sessions and forms then work only on
    /// the instance that issued them).
    pub session_secret: Option<Secret>,
    /// Proxies whose `X-Forwarded-For` names the client (the load balancer). Default none: the
    /// client is the socket peer.
    pub trusted_proxies: TrustedProxies,
    /// Wrong-password limits per client address. Default 5 at once, then one per 20 s.
    pub login_throttle: LoginThrottle,
    /// Images per gallery page. Default 50.
    pub page_size: usize,
    /// How long a document may stay `analyzing` before the reconciler repairs it. Default 15 min.
    pub stuck_after: Duration,
    /// Objects and documents younger than this are left alone by the reconciler (an upload
    /// writes the object, then the document). Default 5 min.
    pub reconcile_grace: Duration,
    /// How long a reconciler lease lasts unless renewed (it is renewed every third of this
    /// while a pass runs); a crashed holder blocks others at most this long. Default 120 s.
    pub reconcile_lease: Duration,
    /// How long each request may spend calling services. Default 20 s.
    pub service_timeout: Duration,
    /// `Cache-Control: max-age` of image bytes, in seconds. Default 3600.
    pub image_max_age: u32,
    /// How long a delete made in the browser can be undone; the image is hidden at once and
    /// deleted when this has passed. Zero deletes at once, without undo. Default 30 s.
    pub undo_window: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_upload_bytes: DEFAULT_MAX_UPLOAD_BYTES,
            memory_budget: 256 * 1024 * 1024,
            decode_slots: std::thread::available_parallelism().map_or(1, |n| n.get().min(2)),
            max_concurrent_uploads: None,
            public_origin: None,
            password: None,
            session_secret: None,
            trusted_proxies: TrustedProxies::none(),
            login_throttle: LoginThrottle::default(),
            page_size: 50,
            stuck_after: Duration::from_secs(15 * 60),
            reconcile_grace: Duration::from_secs(5 * 60),
            reconcile_lease: Duration::from_secs(120),
            service_timeout: Duration::from_secs(20),
            image_max_age: 3600,
            undo_window: Duration::from_secs(30),
        }
    }
}

impl Settings {
    /// The upload limit in force: the one set, else the memory rule's.
    pub fn upload_limit(&self) -> usize {
        self.max_concurrent_uploads.unwrap_or_else(|| {
            uploads_for_memory(self.memory_budget, self.max_upload_bytes, self.decode_slots)
        })
    }
}

/// The function to call for (re-)analysis.
#[derive(Debug, Clone)]
pub struct Invoker {
    /// A client for the function's invoke endpoint.
    pub client: Functions,
    /// The function's OCID.
    pub function_id: String,
    /// The compartment named in synthetic events.
    pub compartment_id: String,
}

/// The app: clients, settings and the little state it keeps (keys, the upload gate, the login
/// throttle).
#[derive(Debug)]
pub struct App {
    storage: ObjectStorage,
    bucket: Bucket,
    soda: Soda,
    invoker: Option<Invoker>,
    settings: Settings,
    keys: auth::Keys,
    uploads: Gate,
    throttle: throttle::Throttle,
    decoders: crate::picture::DecodeSlots,
    deletes: Arc<undo_delete::DeleteQueue>,
    /// The reconciler lease's renewals, for `/readyz`.
    lease_health: Arc<lease::Health>,
}

impl App {
    /// Builds the app. Without a session secret, cookies and form tokens are signed with a key
    /// made at start, so they are only good on this process (run one instance or set one).
    pub fn new(
        storage: ObjectStorage,
        bucket: Bucket,
        soda: Soda,
        invoker: Option<Invoker>,
        settings: Settings,
    ) -> App {
        let keys = auth::Keys::new(settings.session_secret.as_ref(), settings.password.as_ref());
        let uploads = Gate::new(settings.upload_limit());
        let throttle = throttle::Throttle::new(settings.login_throttle);
        let decoders = crate::picture::DecodeSlots::new(settings.decode_slots);
        App {
            storage,
            bucket,
            soda,
            invoker,
            settings,
            keys,
            uploads,
            throttle,
            decoders,
            deletes: Arc::default(),
            lease_health: Arc::default(),
        }
    }

    /// The settings in force.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Uploads being received or stored right now.
    pub fn uploads_in_flight(&self) -> usize {
        self.uploads.inside.load(Ordering::SeqCst)
    }

    /// Answers one request (what [`serve`] runs for every request).
    pub fn handle(&self, request: &Request) -> Result<Response> {
        routes::route(self, request)
    }

    fn deadline(&self) -> std::time::Instant {
        std::time::Instant::now() + self.settings.service_timeout
    }
}

/// Serves `app` on `addr`, and carries out its deletes on time (see `undo_delete/`). A
/// request body may hold a plain form's ten files; each is spooled, checked and stored in
/// turn, so memory stays at a few buffers whatever the files' sizes.
pub fn serve(app: Arc<App>, addr: SocketAddr) -> Result<Server> {
    // Hash and compress the static files now rather than on the first visitor's request.
    assets::assets();
    undo_delete::spawn_sweeper(&app);
    let mut limits = Limits::public();
    limits.max_body_bytes = limits
        .max_body_bytes
        .max(app.settings.max_upload_bytes * upload::MAX_FILES as u64 + 1024 * 1024);
    limits.busy_health_path = Some("/healthz");
    Server::bind_tcp(addr, limits, move |req| app.handle(req))
}

/// A counting gate: `try_enter` never waits.
#[derive(Debug)]
struct Gate {
    inside: AtomicUsize,
    max: usize,
}

/// Leaves the gate when dropped.
struct Pass<'a>(&'a Gate);

impl Gate {
    fn new(max: usize) -> Gate {
        Gate {
            inside: AtomicUsize::new(0),
            max,
        }
    }

    fn try_enter(&self) -> Option<Pass<'_>> {
        let mut now = self.inside.load(Ordering::SeqCst);
        loop {
            if now >= self.max {
                return None;
            }
            match self
                .inside
                .compare_exchange(now, now + 1, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return Some(Pass(self)),
                Err(actual) => now = actual,
            }
        }
    }
}

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        self.0.inside.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_upload_limit_follows_memory() {
        let mib = 1024 * 1024;
        assert_eq!(uploads_for_memory(256 * mib, 50 * mib, 2), 20, "disk bound");
        assert_eq!(
            uploads_for_memory(256 * mib, 5 * mib, 2),
            104,
            "memory bound"
        );
        assert!(
            Settings::default().upload_limit() >= 16,
            "16 people at once"
        );
        assert_eq!(uploads_for_memory(64 * mib, 5 * mib, 2), 1, "never zero");
        let set = Settings {
            max_concurrent_uploads: Some(3),
            ..Settings::default()
        };
        assert_eq!(set.upload_limit(), 3);
    }

    #[test]
    fn the_gate_admits_up_to_its_size_and_frees_on_drop() {
        let gate = Gate::new(2);
        let a = gate.try_enter().unwrap();
        let _b = gate.try_enter().unwrap();
        assert!(gate.try_enter().is_none());
        drop(a);
        assert!(gate.try_enter().is_some());
    }
}
