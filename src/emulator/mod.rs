//! A local stand-in for the OCI services the project calls, on one loopback port of our own
//! HTTP layer: Object Storage, AI Vision, Secrets, Functions invoke and ORDS SODA.
//!
//! Every OCI request must carry a signature the emulator can verify (API keys it was told about,
//! or resource-principal tokens it minted), and the caller must be allowed by the IAM policy
//! (`iam.rs`: the statements of `terraform/policies.tpl`, filled with the emulator's names;
//! refusals answer 404 as OCI does); SODA requests need the ORDS Basic credentials and the
//! schema alias ORDS maps.
//! Objects and documents persist in a data directory. Object changes become CloudEvents delivered
//! to the registered function through the Fn contract. Faults can be injected per service.
//! Every request is recorded (method, target, headers, status; up to `record_limit`, 0 = none) so
//! tests can assert what the emulator saw. Stops when dropped.
//!
//! Not emulated: buckets as resources (they are fixed at start), compartment hierarchies (one
//! compartment holds everything), multipart uploads, Vision features other than detection and
//! labels.

pub mod agent;
mod auth;
pub mod events;
pub mod faults;
pub mod iam;
mod object_storage;
mod ratelimit;
pub mod secrets;
pub mod signature;
pub mod soda;
pub(crate) mod store;
pub mod switches;
mod token_exchange;
mod vision;
mod wire;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use crate::detect::{Detector, TextReader};
use crate::error::{Error, Result};
use crate::http::{Limits, Request, Response, Server};
use crate::oci::keys::PrivateKey;
use agent::FnAgent;
use auth::KeyRing;
use events::EventBus;
use faults::{FaultPlan, Service, Verdict};
use iam::{Access, Policy, PolicyNames, Principal};
use object_storage::ObjectStorageService;
use ratelimit::RateLimit;
pub use ratelimit::VisionCounts;
use secrets::SecretEntry;
use soda::SodaService;
pub use switches::Switches;
use wire::{EmuRequest, EmuResponse};

/// The local development key: trusted by the emulator in local mode, worthless anywhere else.
pub const DEV_KEY_PEM: &str = include_str!("dev-key.pem");

/// The web app's dynamic group in the emulator's policy (Terraform's default name).
pub const WEBAPP_DYNAMIC_GROUP: &str = "ocivision-webapp-dg";
/// The function's dynamic group in the emulator's policy (Terraform's default name).
pub const FUNCTION_DYNAMIC_GROUP: &str = "ocivision-func-dg";
/// The container instance the web app's principal stands for ([`Emulator::web_app_principal`]).
pub const WEB_APP_INSTANCE_ID: &str = "ocid1.computecontainerinstance.oc1..emulator";

/// How to start an emulator. Every field has a documented default ([`EmulatorConfig::new`]).
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// Where objects and documents are kept. Required.
    pub data_dir: PathBuf,
    /// Listen address. Default `127.0.0.1:0` (a free port).
    pub bind: SocketAddr,
    /// The Object Storage namespace. Default `emulatorns`.
    pub namespace: String,
    /// The buckets that exist. Default `["images"]`.
    pub buckets: Vec<String>,
    /// The compartment named in events. Default `ocid1.compartment.oc1..emulator`.
    pub compartment_id: String,
    /// The tenancy named in tokens. Default `ocid1.tenancy.oc1..emulator`.
    pub tenancy_id: String,
    /// ORDS user. Default `ADMIN`.
    pub ords_user: String,
    /// ORDS password. Default `emulator-password`.
    pub ords_password: String,
    /// The schema alias ORDS maps (`/ords/{alias}/soda/…`); any other answers 404. Default
    /// `admin`.
    pub ords_schema: String,
    /// The IAM policy statements. Default `None`: `terraform/policies.tpl` filled with
    /// [`EmulatorConfig::policy_names`]. The tenancy's administrator statement is always added.
    pub policy: Option<Vec<String>>,
    /// Secrets served. Default none.
    pub secrets: Vec<SecretEntry>,
    /// Faults in force at start. Default none.
    pub faults: FaultPlan,
    /// Only objects whose names start with this raise events. Default none (all).
    pub event_prefix: Option<String>,
    /// How long one event delivery or invocation may take. Default 60 s.
    pub function_timeout: Duration,
    /// Largest request body accepted. Default 64 MiB.
    pub max_body_bytes: usize,
    /// How many requests the record keeps (oldest dropped first); 0 keeps none, for long runs
    /// that never read it (the load suite). Default 100 000.
    pub record_limit: usize,
    /// Vision's rate limit in requests per second (a token bucket per tenancy); beyond it
    /// Vision answers 429 `TooManyRequests`. Default `None`: unlimited.
    pub vision_tps: Option<f64>,
    /// How many Vision requests the bucket lets through at once. Default `None`: one second's
    /// worth of `vision_tps`.
    pub vision_burst: Option<f64>,
    /// How many function instances events are delivered to at once, one delivery thread each
    /// ([`Emulator::register_function_instances`]). Default 1.
    pub function_instances: usize,
    /// Unconfirmed cloud behaviours to reproduce (`switches.rs`). Default: all off.
    pub switches: Switches,
}

impl EmulatorConfig {
    /// The defaults, keeping data in `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> EmulatorConfig {
        EmulatorConfig {
            data_dir: data_dir.into(),
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            namespace: "emulatorns".into(),
            buckets: vec!["images".into()],
            compartment_id: "ocid1.compartment.oc1..emulator".into(),
            tenancy_id: "ocid1.tenancy.oc1..emulator".into(),
            ords_user: "ADMIN".into(),
            ords_password: "emulator-password".into(),
            ords_schema: "admin".into(),
            policy: None,
            secrets: Vec::new(),
            faults: FaultPlan::default(),
            event_prefix: None,
            function_timeout: Duration::from_secs(60),
            max_body_bytes: 64 * 1024 * 1024,
            record_limit: 100_000,
            vision_tps: None,
            vision_burst: None,
            function_instances: 1,
            switches: Switches::default(),
        }
    }
}

impl EmulatorConfig {
    /// The names `terraform/policies.tpl` is filled with: the two dynamic groups, this
    /// compartment, the first bucket, the first secret as the database password, and every
    /// secret as readable by the web app; Vision access for the web app on (Terraform's default).
    pub fn policy_names(&self) -> PolicyNames {
        let secret_ids: Vec<String> = self.secrets.iter().map(|s| s.id.clone()).collect();
        PolicyNames {
            function_dg: FUNCTION_DYNAMIC_GROUP.into(),
            webapp_dg: WEBAPP_DYNAMIC_GROUP.into(),
            compartment_id: self.compartment_id.clone(),
            bucket: self.buckets.first().cloned().unwrap_or_default(),
            db_secret_id: secret_ids
                .first()
                .cloned()
                .unwrap_or_else(|| "ocid1.vaultsecret.oc1..none".into()),
            app_secret_ids: secret_ids,
            app_vision_access: true,
        }
    }

    /// The policy statements in force: [`EmulatorConfig::policy`], or the template filled.
    pub fn policy_statements(&self) -> Result<Vec<String>> {
        match &self.policy {
            Some(statements) => Ok(statements.clone()),
            None => iam::fill_template(iam::POLICY_TEMPLATE, &self.policy_names()),
        }
    }
}

/// One request as the emulator saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// Which service it was routed to (`None`: no service matched).
    pub service: Option<Service>,
    /// Method.
    pub method: String,
    /// Path and query as sent.
    pub target: String,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Body length.
    pub body_len: usize,
    /// The status answered (0 when the connection was dropped).
    pub status: u16,
    /// An error answer's code as its body names it (`NotAuthorizedOrNotFound`, …); `None` for
    /// successes and for bodiless errors (a HEAD's).
    pub code: Option<String>,
    /// Time the emulator spent on it, body read to answer ready, in microseconds.
    pub micros: u64,
}

impl Recorded {
    /// The first header called `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What the emulator holds in memory that grows with use, for long runs that must tell data
/// from a leak. Everything else it keeps is fixed at start or bounded by its configuration.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Held {
    /// Objects in all buckets (bodies are on disk, not here).
    pub objects: usize,
    /// Their names and metadata, as kept in memory: a few hundred bytes each.
    pub object_bytes: usize,
    /// SODA documents in all collections.
    pub documents: usize,
    /// Their JSON text and indexed scalars (at most 256 MiB: SODA's own bound).
    pub document_bytes: usize,
    /// Requests in the record (at most [`EmulatorConfig::record_limit`]).
    pub recorded_requests: usize,
    /// Trusted API keys (added by the caller, never by a request).
    pub api_keys: usize,
    /// Minted resource-principal tokens kept (expired ones are dropped at the next mint).
    pub tokens: usize,
}

impl Held {
    /// The bytes of stored data held: object index plus documents.
    pub fn data_bytes(&self) -> usize {
        self.object_bytes + self.document_bytes
    }
}

/// The models answering for Vision.
#[derive(Clone, Default)]
struct VisionModels(Arc<RwLock<vision::Models>>);

impl VisionModels {
    fn set_text_reader(&self, reader: Option<Arc<dyn TextReader>>) {
        self.write().text = reader;
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, vision::Models> {
        self.0.write().unwrap_or_else(|e| e.into_inner())
    }
}

struct State {
    config: EmulatorConfig,
    keys: KeyRing,
    policy: Policy,
    faults: Arc<RwLock<FaultPlan>>,
    object_storage: Arc<ObjectStorageService>,
    soda: SodaService,
    models: VisionModels,
    /// Per function id, its instances; invocations go to them in turn.
    functions: RwLock<HashMap<String, Arc<Instances>>>,
    vision_limit: Option<RateLimit>,
    vision_counts: Mutex<VisionCounts>,
    events: Arc<EventBus>,
    /// The last `record_limit` requests, oldest first.
    record: Mutex<VecDeque<Recorded>>,
    /// Per service: how many of the next requests fail, and with which status.
    fail_next: Mutex<HashMap<Service, (u32, u16)>>,
    /// The unconfirmed behaviours in force.
    switches: Mutex<Switches>,
    /// Resource principal 2.1.x token pairs not yet exchanged.
    exchanges: token_exchange::Exchanges,
}

/// A running emulator. Dropping it stops the server and the event thread.
pub struct Emulator {
    state: Arc<State>,
    base_url: String,
    // Declared last: dropped after `state` is released by the handler threads.
    server: Option<Server>,
}

impl Emulator {
    /// Opens the data directory and starts serving.
    pub fn start(config: EmulatorConfig) -> Result<Emulator> {
        std::fs::create_dir_all(&config.data_dir).map_err(|e| {
            Error::Config(format!(
                "emulator data directory {}: {e}",
                config.data_dir.display()
            ))
        })?;
        let policy = Policy::parse(
            &config.policy_statements()?,
            config.policy_names().dynamic_groups(),
        )?;
        let faults = Arc::new(RwLock::new(config.faults.clone()));
        let object_storage = Arc::new(ObjectStorageService::new(
            &config.data_dir,
            &config.namespace,
            &config.compartment_id,
            &config.buckets,
        )?);
        let soda = SodaService::new(&config.data_dir)?;
        let events = Arc::new(EventBus::start_with_deliverers(
            Arc::clone(&faults),
            config.compartment_id.clone(),
            config.event_prefix.clone(),
            config.function_timeout,
            config.record_limit,
            config.function_instances,
        ));
        let vision_limit = config
            .vision_tps
            .map(|tps| RateLimit::new(tps, config.vision_burst.unwrap_or(tps)));
        let bus = Arc::clone(&events);
        object_storage.on_change(Box::new(move |change| bus.publish(change)));
        let state = Arc::new(State {
            keys: KeyRing::default(),
            policy,
            faults,
            object_storage,
            soda,
            models: VisionModels::default(),
            functions: RwLock::new(HashMap::new()),
            vision_limit,
            vision_counts: Mutex::new(VisionCounts::default()),
            events,
            record: Mutex::new(VecDeque::new()),
            fail_next: Mutex::new(HashMap::new()),
            switches: Mutex::new(config.switches),
            exchanges: token_exchange::Exchanges::default(),
            config,
        });
        let mut limits = Limits::public();
        limits.max_body_bytes = state.config.max_body_bytes as u64;
        // Clients leave keep-alive connections in their pools (ureq, the SDK suite). An idle
        // one holds no thread (it waits on the server's readiness loop), only a descriptor;
        // 30 s instead of the public profile's 330 s (tuned to the load balancer) closes the
        // ones a finished test abandoned sooner.
        limits.idle_timeout = Some(Duration::from_secs(30));
        let handler_state = Arc::clone(&state);
        let server = Server::bind_tcp(state.config.bind, limits, move |request| {
            Ok(serve(&handler_state, request))
        })?;
        let addr = server
            .tcp_addr()
            .ok_or_else(|| Error::Config("emulator: not a TCP listener".into()))?;
        Ok(Emulator {
            state,
            base_url: format!("http://{addr}"),
            server: Some(server),
        })
    }

    /// `http://127.0.0.1:PORT`: the origin of every emulated service.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The Object Storage namespace.
    pub fn namespace(&self) -> &str {
        &self.state.config.namespace
    }

    /// The ORDS user and password.
    pub fn ords_credentials(&self) -> (&str, &str) {
        (
            &self.state.config.ords_user,
            &self.state.config.ords_password,
        )
    }

    /// Trusts `key` for the API key id `key_id`, as a tenancy administrator (group
    /// `Administrators`, which the tenancy's built-in statement lets do anything).
    pub fn trust_api_key(&self, key_id: &str, key: &PrivateKey) {
        self.trust_api_key_as(key_id, key, Principal::administrator(user_of(key_id)));
    }

    /// Trusts `key` for the API key id `key_id`; its requests act as `principal` (a user in
    /// some groups, or, for local mode, the web app's container instance).
    pub fn trust_api_key_as(&self, key_id: &str, key: &PrivateKey, principal: Principal) {
        self.state
            .keys
            .add_api_key(key_id, key.public_key_der(), principal);
    }

    /// Trusts a key given as PEM text (a private key, or a `BEGIN PUBLIC KEY` block), acting as
    /// `principal`.
    pub fn trust_public_key_pem(
        &self,
        key_id: &str,
        pem: &str,
        origin: &str,
        principal: Principal,
    ) -> Result<()> {
        let public_key = if pem.contains("PRIVATE KEY") {
            PrivateKey::from_pem(pem, origin)?.public_key_der()
        } else {
            use rustls_pki_types::pem::PemObject as _;
            rustls_pki_types::SubjectPublicKeyInfoDer::from_pem_slice(pem.as_bytes())
                .map_err(|e| Error::Credentials(format!("{origin}: not a public key PEM: {e}")))?
                .as_ref()
                .to_vec()
        };
        self.state.keys.add_api_key(key_id, public_key, principal);
        Ok(())
    }

    /// Trusts `key` as the resource key of `principal` (a [`Principal::Resource`]) for the
    /// resource principal `version` 2.1, 2.1.1 or 2.1.2 token exchange: the key id Oracle's SDKs
    /// sign the exchange with (`resource/v2.1/{id}` or `resource/v{version}/{tenancy}/{id}`).
    pub fn trust_resource_key(&self, version: &str, key: &PrivateKey, principal: Principal) {
        let Principal::Resource { id, .. } = &principal else {
            return;
        };
        let key_id = match version {
            "2.1" => format!("resource/v2.1/{id}"),
            _ => format!("resource/v{version}/{}/{id}", self.state.config.tenancy_id),
        };
        self.trust_api_key_as(&key_id, key, principal);
    }

    /// The tenancy named in tokens.
    pub fn tenancy_id(&self) -> &str {
        &self.state.config.tenancy_id
    }

    /// The web app's principal: a container instance in the emulator's compartment, so a
    /// member of the web app's dynamic group.
    pub fn web_app_principal(&self) -> Principal {
        Principal::Resource {
            resource_type: iam::CONTAINER_INSTANCE.into(),
            id: WEB_APP_INSTANCE_ID.into(),
            compartment_id: self.state.config.compartment_id.clone(),
        }
    }

    /// The function's principal for `function_id` (a member of the function's dynamic group).
    pub fn function_principal(&self, function_id: &str) -> Principal {
        Principal::Resource {
            resource_type: iam::FUNCTION.into(),
            id: function_id.into(),
            compartment_id: self.state.config.compartment_id.clone(),
        }
    }

    /// The policy statements in force (without the built-in administrator statement).
    pub fn policy_statements(&self) -> Vec<&str> {
        self.state.policy.statements()
    }

    /// Mints a resource-principal token for the function `function_id`, bound to `key`.
    pub fn mint_token(&self, key: &PrivateKey, function_id: &str, lifetime: Duration) -> String {
        self.mint_resource_token(key, iam::FUNCTION, function_id, lifetime)
    }

    /// Mints a resource-principal token for a resource of `resource_type` (`fnfunc`,
    /// `computecontainerinstance`) in the emulator's compartment, bound to `key`.
    pub fn mint_resource_token(
        &self,
        key: &PrivateKey,
        resource_type: &str,
        resource_id: &str,
        lifetime: Duration,
    ) -> String {
        let config = &self.state.config;
        self.state.keys.mint_token(
            key.public_key_der(),
            resource_type,
            resource_id,
            &config.tenancy_id,
            &config.compartment_id,
            SystemTime::now(),
            lifetime,
        )
    }

    /// Replaces the faults in force.
    pub fn set_faults(&self, plan: FaultPlan) {
        *self.state.faults.write().unwrap_or_else(|e| e.into_inner()) = plan;
    }

    /// Makes the next `count` requests to `service` fail with `status` (429, 500, 503, …),
    /// whatever the random faults say: for "fails twice, then succeeds" tests.
    pub fn fail_next(&self, service: Service, count: u32, status: u16) {
        lock(&self.state.fail_next).insert(service, (count, status));
    }

    /// Replaces the unconfirmed behaviours in force (`switches.rs`).
    pub fn set_switches(&self, switches: Switches) {
        *lock(&self.state.switches) = switches;
    }

    /// The unconfirmed behaviours in force (`lose_put_replies` counts down as replies are lost).
    pub fn switches(&self) -> Switches {
        *lock(&self.state.switches)
    }

    /// Sets the buckets' `objectEventsEnabled` (default on); off, no object events are sent.
    pub fn set_object_events(&self, enabled: bool) {
        self.state.object_storage.set_object_events(enabled);
    }

    /// Sets the Vision detector (`None`: requests for objects or labels answer 501).
    pub fn set_detector(&self, detector: Option<Arc<dyn Detector>>) {
        self.state.models.write().detector = detector;
    }

    /// Sets Vision's text reader (`None`: TEXT_DETECTION is reported as a feature error).
    pub fn set_text_reader(&self, reader: Option<Arc<dyn TextReader>>) {
        self.state.models.set_text_reader(reader);
    }

    /// Registers a function listening at `socket` under `function_id`, for invocations; with
    /// `events`, object events go to it too.
    pub fn register_function(&self, function_id: &str, socket: impl Into<PathBuf>, events: bool) {
        self.register_function_instances(function_id, vec![socket.into()], events);
    }

    /// Registers a function run as several instances, one process and socket each (as OCI
    /// Functions scales out): invocations go to them in turn; with `events`, delivery thread
    /// `i` calls instance `i` ([`EmulatorConfig::function_instances`] threads).
    pub fn register_function_instances(
        &self,
        function_id: &str,
        sockets: Vec<PathBuf>,
        events: bool,
    ) {
        let agents: Vec<FnAgent> = sockets.into_iter().map(FnAgent::new).collect();
        if events {
            self.state.events.set_targets(agents.clone());
            // Events invoke the function as the service `cloudEvents`: the policy must say so.
            let state = Arc::downgrade(&self.state);
            let function_id = function_id.to_string();
            self.state.events.set_gate(Some(Arc::new(move || {
                state.upgrade().is_some_and(|state| {
                    authorize(
                        &state,
                        &Principal::Service("cloudEvents".into()),
                        &invoke_access(&state, &function_id),
                        "Events delivery",
                    )
                })
            })));
        }
        self.state
            .functions
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                function_id.to_string(),
                Arc::new(Instances {
                    agents,
                    next: std::sync::atomic::AtomicUsize::new(0),
                }),
            );
    }

    /// Vision requests so far: all of them, and those the rate limit refused.
    pub fn vision_counts(&self) -> VisionCounts {
        *lock(&self.state.vision_counts)
    }

    /// The event bus (deliveries so far, waiting for quiet).
    pub fn events(&self) -> &EventBus {
        &self.state.events
    }

    /// What it holds that grows with use: stored objects' and documents' in-memory part, the
    /// request record, keys and tokens.
    pub fn held(&self) -> Held {
        let (objects, object_bytes) = self.state.object_storage.held();
        let (documents, document_bytes) = self.state.soda.held();
        let (api_keys, tokens) = self.state.keys.trusted();
        Held {
            objects,
            object_bytes,
            documents,
            document_bytes,
            recorded_requests: lock(&self.state.record).len(),
            api_keys,
            tokens,
        }
    }

    /// Every request recorded so far.
    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.state.record).iter().cloned().collect()
    }

    /// Clears the record.
    pub fn clear_requests(&self) {
        lock(&self.state.record).clear();
    }

    /// Reads an object directly (tests, the local pipeline).
    pub fn read_object(&self, bucket: &str, name: &str) -> Option<Vec<u8>> {
        self.state
            .object_storage
            .read_object(&self.state.config.namespace, bucket, name)
            .map(|(_, bytes)| bytes)
    }

    /// Serves until the process is stopped.
    pub fn wait(mut self) {
        if let Some(server) = self.server.take() {
            server.wait();
        }
    }

    /// Stops serving, letting requests in flight finish for up to `grace`.
    pub fn shutdown(mut self, grace: Duration) {
        if let Some(server) = self.server.take() {
            server.shutdown(grace);
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown(Duration::from_secs(1));
        }
    }
}

/// A function's instances and whose turn it is.
struct Instances {
    agents: Vec<FnAgent>,
    next: std::sync::atomic::AtomicUsize,
}

impl Instances {
    /// The instance whose turn it is.
    fn pick(&self) -> Option<FnAgent> {
        if self.agents.is_empty() {
            return None;
        }
        let turn = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Some(self.agents[turn % self.agents.len()].clone())
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// The user OCID in an API key id (`tenancy/user/fingerprint`).
fn user_of(key_id: &str) -> &str {
    key_id.split('/').nth(1).unwrap_or(key_id)
}

/// Whether the policy lets `principal` do `access`; a refusal is logged with what was missing,
/// since the caller only sees OCI's 404.
fn authorize(state: &State, principal: &Principal, access: &Access<'_>, operation: &str) -> bool {
    let allowed = state.policy.allows(principal, access);
    if !allowed {
        let about: Vec<String> = access
            .variables
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect();
        log::warn!(
            target: "emulator",
            "IAM: {operation} refused: no policy statement grants {principal} {} in {} ({})",
            access.permissions.join(" or "),
            access.compartment_id,
            about.join(", ")
        );
    }
    allowed
}

/// What invoking `function_id` needs: FN_INVOCATION on it.
fn invoke_access<'a>(state: &'a State, function_id: &str) -> Access<'a> {
    Access {
        permissions: &["FN_INVOCATION"],
        compartment_id: &state.config.compartment_id,
        variables: vec![("target.function.id", function_id.to_string())],
    }
}

/// What reading objects of `bucket` needs.
fn object_access<'a>(
    state: &'a State,
    permissions: &'a [&'static str],
    bucket: &str,
) -> Access<'a> {
    Access {
        permissions,
        compartment_id: &state.config.compartment_id,
        variables: vec![("target.bucket.name", bucket.to_string())],
    }
}

/// The Functions invoke API versions served, oldest first: 20181201 (what our client and older
/// SDKs send) and 20260325 (the base path of Oracle's Python SDK 2.189's
/// `FunctionsInvokeClient`). Both take the same request.
const FUNCTIONS_API_VERSIONS: [&str; 2] = ["20181201", "20260325"];

/// Which service a path belongs to.
fn route(path: &str) -> Option<Service> {
    let under = |prefix: &str| path == prefix || path.starts_with(&format!("{prefix}/"));
    if under("/n") {
        Some(Service::ObjectStorage)
    } else if under("/20220125") {
        Some(Service::Vision)
    } else if under(secrets::PREFIX) {
        Some(Service::Secrets)
    } else if FUNCTIONS_API_VERSIONS
        .iter()
        .any(|version| under(&format!("/{version}/functions")))
    {
        Some(Service::Functions)
    } else if under("/ords") {
        Some(Service::Soda)
    } else {
        None
    }
}

/// PutObject and UploadPart: the requests whose bodies are not signed.
fn body_exempt(request: &EmuRequest) -> bool {
    request.method == "PUT"
        && request
            .segments_after("/n")
            .is_some_and(|s| s.len() >= 5 && s[1] == "b" && (s[3] == "o" || s[3] == "u"))
}

fn serve(state: &State, request: &Request) -> Response {
    let started = std::time::Instant::now();
    let service = route(request.path());
    let body = match request.read_body(state.config.max_body_bytes) {
        Ok(body) => body,
        Err(e) => {
            let status = e.status();
            return to_response(
                EmuResponse::error(status, "InvalidParameter", &e.to_string()),
                request,
            );
        }
    };
    let emu = EmuRequest {
        method: request.method().to_string(),
        raw_path: request.path().to_string(),
        raw_query: request.query().unwrap_or("").to_string(),
        headers: request
            .headers()
            .map(|(n, v)| (n.to_ascii_lowercase(), v.to_string()))
            .collect(),
        body,
    };
    let answer = answer(state, service, &emu);
    let status = answer.as_ref().map_or(0, |a| a.status);
    if state.config.record_limit > 0 {
        let mut record = lock(&state.record);
        if record.len() >= state.config.record_limit {
            record.pop_front();
        }
        record.push_back(Recorded {
            service,
            method: emu.method.clone(),
            target: emu.target(),
            headers: emu.headers.clone(),
            body_len: emu.body.len(),
            status,
            code: answer
                .as_ref()
                .filter(|a| a.status >= 400)
                .and_then(|a| serde_json::from_slice::<serde_json::Value>(&a.body).ok())
                .and_then(|body| body["code"].as_str().map(str::to_string)),
            micros: started.elapsed().as_micros() as u64,
        });
    }
    match answer {
        Some(answer) => {
            // Our writer derives Content-Length from the body; a HEAD must announce the
            // object's length without sending it.
            let head_length = (emu.method == "HEAD")
                .then(|| answer.header("content-length")?.parse::<u64>().ok())
                .flatten();
            let response = to_response(answer, request);
            match head_length {
                Some(length) => response.with_reader(std::io::empty(), Some(length)),
                None => response,
            }
        }
        None => Response::abort(),
    }
}

/// The answer to one buffered request; `None` to drop the connection.
fn answer(state: &State, service: Option<Service>, request: &EmuRequest) -> Option<EmuResponse> {
    if service.is_none() && token_exchange::is_exchange(&request.raw_path) {
        return Some(
            match state
                .keys
                .check_signature(request, false, SystemTime::now())
            {
                Ok(principal) => state.exchanges.handle(
                    request,
                    &principal,
                    &state.keys,
                    &state.config.tenancy_id,
                ),
                Err(reason) => auth::not_authenticated(&reason),
            },
        );
    }
    let Some(service) = service else {
        return Some(EmuResponse::error(
            404,
            "NotFound",
            "no emulated service at this path",
        ));
    };
    if service == Service::Vision {
        lock(&state.vision_counts).requests += 1;
    }
    let plan = state
        .faults
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let faults = plan.get(service);
    if !faults.latency.is_zero() {
        std::thread::sleep(faults.latency);
    }
    let scripted = {
        let mut scripted = lock(&state.fail_next);
        match scripted.get_mut(&service) {
            Some((left, status)) if *left > 0 => {
                *left -= 1;
                Some(*status)
            }
            _ => None,
        }
    };
    let verdict = match scripted {
        Some(status) => Verdict::Fail(status),
        None => plan.verdict(service),
    };
    match verdict {
        Verdict::Serve => {}
        Verdict::Drop => return None,
        Verdict::Fail(status) => {
            let code = match status {
                429 => "TooManyRequests",
                503 => "ServiceUnavailable",
                _ => "InternalServerError",
            };
            return Some(
                EmuResponse::error(status, code, "injected fault").with_header("retry-after", "0"),
            );
        }
    }
    if service == Service::Soda {
        // ORDS maps the URL to a schema before it authenticates: an alias it does not know is
        // a 404, whatever the credentials (a wrong DB_SCHEMA fails here as in production).
        let alias = request.segments_after("/ords").unwrap_or_default();
        if !alias
            .first()
            .is_some_and(|a| a.eq_ignore_ascii_case(&state.config.ords_schema))
        {
            return Some(auth::ords_unmapped());
        }
        let (user, password) = (&state.config.ords_user, &state.config.ords_password);
        if !auth::check_basic(request, user, password) {
            return Some(auth::ords_unauthorized());
        }
        return Some(soda_with_switches(state, request));
    }
    let principal = match state.keys.check_signature(
        request,
        body_exempt(request),
        SystemTime::now(),
    ) {
        Ok(principal) => principal,
        Err(reason) => {
            log::debug!(target: "emulator", "401 for {} {}: {reason}", request.method, request.raw_path);
            let mut refusal = auth::not_authenticated(&reason);
            if request.method == "HEAD" {
                refusal.body.clear();
            }
            return Some(refusal);
        }
    };
    let operation = format!("{} {}", request.method, request.raw_path);
    Some(match service {
        Service::ObjectStorage => {
            let allowed = |permissions: &[&'static str], bucket: &str| {
                authorize(
                    state,
                    &principal,
                    &object_access(state, permissions, bucket),
                    &operation,
                )
            };
            let answer = state.object_storage.handle(request, &allowed);
            if lose_reply(state, request, &answer) {
                return None;
            }
            answer
        }
        Service::Vision => {
            if request.raw_path != vision::ANALYZE_PATH {
                return Some(EmuResponse::error(
                    404,
                    "NotFound",
                    "unknown Vision operation",
                ));
            }
            let models = state
                .models
                .0
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            // AnalyzeImage needs the Vision permission in the request's compartment (OCI
            // checks it against `compartmentId`; without one, against the tenancy).
            let compartment = serde_json::from_slice::<serde_json::Value>(&request.body)
                .ok()
                .and_then(|body| body["compartmentId"].as_str().map(str::to_string))
                .unwrap_or_else(|| state.config.tenancy_id.clone());
            let vision_access = Access {
                permissions: &["AI_SERVICE_VISION_ANALYZE_IMAGE"],
                compartment_id: &compartment,
                variables: Vec::new(),
            };
            if !authorize(state, &principal, &vision_access, "Vision analyzeImage") {
                return Some(not_authorized_or_not_found());
            }
            // The tenancy's rate limit, after authentication as OCI applies it.
            if state.vision_limit.as_ref().is_some_and(|l| !l.admit()) {
                lock(&state.vision_counts).throttled += 1;
                return Some(EmuResponse::error(
                    429,
                    "TooManyRequests",
                    "Too many requests for the tenancy: the Vision rate limit is exceeded",
                ));
            }
            // OBJECT_STORAGE images are read with the caller's rights, as Vision does.
            let storage = &state.object_storage;
            let broad_read = lock(&state.switches).vision_broad_read;
            let read = |ns: &str, bucket: &str, name: &str| {
                let mut access = object_access(state, &["OBJECT_READ"], bucket);
                if broad_read {
                    // Only a grant without a bucket condition matches an access without one.
                    access.variables.clear();
                }
                if !authorize(state, &principal, &access, "Vision reading an object") {
                    return None;
                }
                storage
                    .read_object(ns, bucket, name)
                    .map(|(_, bytes)| bytes)
            };
            vision::analyze(request, &models, &read)
        }
        Service::Secrets => {
            let allowed = |secret: &SecretEntry| {
                let access = Access {
                    permissions: &["SECRET_BUNDLE_READ"],
                    compartment_id: &state.config.compartment_id,
                    variables: vec![
                        ("target.secret.id", secret.id.clone()),
                        ("target.secret.name", secret.name.clone()),
                        ("target.vault.id", secret.vault_id.clone()),
                    ],
                };
                authorize(state, &principal, &access, &operation)
            };
            secrets::handle(request, &state.config.secrets, &allowed)
        }
        Service::Functions => invoke(state, request, &principal),
        Service::Soda => unreachable!("answered above"),
    })
}

/// ORDS as the switches make it: write conditions ignored, `ETag` left off `PUT` answers.
fn soda_with_switches(state: &State, request: &EmuRequest) -> EmuResponse {
    let switches = *lock(&state.switches);
    let mut answer = if switches.ords_ignores_conditions {
        let mut stripped = request.clone();
        stripped.headers.retain(|(name, _)| {
            !switches::ignored_request_header(&switches, &request.method, name)
        });
        state.soda.handle(&stripped)
    } else {
        state.soda.handle(request)
    };
    if switches::drops_put_etag(&switches, &request.method) {
        answer.headers.retain(|(name, _)| name != "etag");
    }
    answer
}

/// Whether this stored object's reply is to be lost (`lose-put-replies`), counting it.
fn lose_reply(state: &State, request: &EmuRequest, answer: &EmuResponse) -> bool {
    let object_put = body_exempt(request)
        && request
            .segments_after("/n")
            .is_some_and(|s| s.get(3).is_some_and(|o| o == "o"));
    if !object_put || answer.status >= 300 {
        return false;
    }
    let mut switches = lock(&state.switches);
    if switches.lose_put_replies == 0 {
        return false;
    }
    switches.lose_put_replies -= 1;
    log::info!(target: "emulator", "switch lose-put-replies: {} stored, reply dropped", request.raw_path);
    true
}

/// `POST /{version}/functions/{id}/actions/invoke`: passes the body to the function.
fn invoke(state: &State, request: &EmuRequest, principal: &Principal) -> EmuResponse {
    let segments = FUNCTIONS_API_VERSIONS
        .iter()
        .find_map(|version| request.segments_after(&format!("/{version}/functions")))
        .unwrap_or_default();
    let [function_id, actions, invoke] = segments.as_slice() else {
        return EmuResponse::error(404, "NotFound", "unknown Functions operation");
    };
    if actions != "actions" || invoke != "invoke" || request.method != "POST" {
        return EmuResponse::error(404, "NotFound", "unknown Functions operation");
    }
    let access = invoke_access(state, function_id);
    if !authorize(state, principal, &access, "Functions invoke") {
        return not_authorized_or_not_found();
    }
    let agent = state
        .functions
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .get(function_id)
        .and_then(|instances| instances.pick());
    let Some(agent) = agent else {
        return EmuResponse::error(404, "NotAuthorizedOrNotFound", "no such function");
    };
    let content_type = request.header("content-type").unwrap_or("application/json");
    let detached = request
        .header("fn-invoke-type")
        .is_some_and(|v| v.eq_ignore_ascii_case("detached"));
    let timeout = state.config.function_timeout;
    if detached {
        let body = request.body.clone();
        let content_type = content_type.to_string();
        std::thread::spawn(move || {
            if let Err(e) = agent.call(&body, &content_type, &[], timeout) {
                log::warn!(target: "emulator", "detached invocation failed: {e}");
            }
        });
        return EmuResponse::empty(202);
    }
    match agent.call(&request.body, content_type, &[], timeout) {
        Ok(reply) if reply.status == 200 => {
            let mut response = EmuResponse::empty(200);
            response.body = reply.body;
            if let Some((_, ct)) = reply.headers.iter().find(|(n, _)| n == "content-type") {
                response = response.with_header("content-type", ct.clone());
            }
            response
        }
        Ok(reply) if reply.status == 504 => {
            EmuResponse::error(504, "FunctionInvokeTimedOut", "Timed out")
        }
        Ok(_) => EmuResponse::error(502, "FunctionInvokeFailed", "function failed"),
        Err(e) => EmuResponse::error(
            502,
            "FunctionInvokeFailed",
            &format!("error receiving function response: {e}"),
        ),
    }
}

/// OCI's answer to a refused or unknown resource (Vision, Secrets, Functions).
fn not_authorized_or_not_found() -> EmuResponse {
    EmuResponse::error(
        404,
        "NotAuthorizedOrNotFound",
        "Authorization failed or requested resource not found.",
    )
}

fn to_response(answer: EmuResponse, request: &Request) -> Response {
    let mut response = Response::new(answer.status);
    let mut has_request_id = false;
    for (name, value) in &answer.headers {
        has_request_id |= name == "opc-request-id";
        response = response.with_header(name.clone(), value.clone());
    }
    if !has_request_id {
        response = response.with_header("opc-request-id", request.request_id().to_string());
    }
    response.with_body(answer.body)
}
