//! Object Storage events (CloudEvents 0.1, as OCI Events sends them) delivered asynchronously to
//! the registered function through the Fn contract, with injectable duplicates, delays,
//! reordering and drops.
//!
//! Delivery threads drain a queue, so the object write that caused an event never waits for
//! the function, as with OCI. There is one thread per function instance (one by default): OCI
//! Functions runs many instances of a function at once, each a separate process handling one
//! call at a time, and each thread here calls its own instance. Rule filtering (event types, bucket, prefix) is reduced to one
//! optional name prefix; every delivery outcome is recorded for tests to observe.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{json, Value};

use crate::emulator::agent::FnAgent;
use crate::emulator::faults::{chance, FaultPlan};
pub use crate::emulator::object_storage::{Change, ChangeKind};
use crate::event::{EventKind, ObjectEvent};

/// The event OCI Events sends for `change`, made at `at`.
fn object_event(change: &Change, at: SystemTime) -> ObjectEvent {
    let kind = match change.kind {
        ChangeKind::Created => EventKind::Create,
        ChangeKind::Updated => EventKind::Update,
        ChangeKind::Deleted => EventKind::Delete,
    };
    ObjectEvent {
        event_time: Some(at),
        ..ObjectEvent::new(
            kind,
            &change.namespace,
            &change.bucket,
            &change.name,
            change.etag.as_deref(),
        )
    }
}

/// The CloudEvents 0.1 envelope of `event` (`event.rs`), with what OCI sends beside the fields
/// the function reads: the bucket's id, the compartment's name, the availability domain.
fn envelope(event: &ObjectEvent, compartment_id: &str) -> Value {
    let mut json = event.to_json("ObjectStorage", compartment_id);
    let data = &mut json["data"];
    data["compartmentName"] = json!("emulator");
    data["availabilityDomain"] = json!("EMU-AD-1");
    data["additionalDetails"]["bucketId"] =
        json!(crate::emulator::object_storage::bucket_id(&event.bucket));
    json
}

/// The CloudEvents 0.1 envelope OCI Events sends for `change`.
pub fn cloud_event(change: &Change, compartment_id: &str, at: SystemTime) -> Value {
    envelope(&object_event(change, at), compartment_id)
}

/// The outcome of one delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The event's `eventID`.
    pub event_id: String,
    /// Its `eventType`.
    pub event_type: String,
    /// The object name.
    pub object: String,
    /// What happened.
    pub outcome: DeliveryResult,
}

/// How a delivery ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryResult {
    /// The function answered with this status.
    Answered(u16),
    /// The function could not be reached or broke the protocol.
    Failed(String),
    /// Dropped by fault injection.
    Dropped,
    /// No function registered.
    NoFunction,
    /// No policy lets the Events service invoke the function (`Allow service cloudEvents to use
    /// functions-family …`): OCI drops such deliveries without a word; the emulator logs them.
    NotAuthorized,
}

/// Counts over every delivery so far (the list itself is bounded, these are not).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryCounts {
    /// Delivery attempts, duplicates included.
    pub attempts: u64,
    /// Extra copies sent by the duplicate fault.
    pub duplicates: u64,
}

/// Most events waiting for delivery (a few hundred bytes each); more are dropped with a warning.
const MAX_PENDING: usize = 100_000;

/// Decides, per delivery, whether the Events service may invoke the function (IAM).
pub type Gate = Arc<dyn Fn() -> bool + Send + Sync>;

#[derive(Default)]
struct Queue {
    pending: VecDeque<ObjectEvent>,
    in_flight: usize,
    stopping: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
    /// One agent per function instance; delivery thread `i` calls instance `i % len`.
    targets: RwLock<Vec<FnAgent>>,
    gate: RwLock<Option<Gate>>,
    deliveries: Mutex<VecDeque<Delivery>>,
    deliveries_kept: usize,
    counts: Mutex<DeliveryCounts>,
    /// Calls answered by each function instance, by its index in `targets`.
    answered: Mutex<Vec<u64>>,
    faults: Arc<RwLock<FaultPlan>>,
    prefix: Option<String>,
    compartment_id: String,
    timeout: Duration,
}

/// The event bus: a queue and its delivery threads. Dropping it stops them.
pub struct EventBus {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl EventBus {
    /// Starts the delivery thread. Events go to the function registered with
    /// [`EventBus::set_target`], only for names starting with `prefix` when one is given. The
    /// last `deliveries_kept` deliveries are kept for [`EventBus::deliveries`].
    pub fn start(
        faults: Arc<RwLock<FaultPlan>>,
        compartment_id: String,
        prefix: Option<String>,
        timeout: Duration,
        deliveries_kept: usize,
    ) -> EventBus {
        EventBus::start_with_deliverers(faults, compartment_id, prefix, timeout, deliveries_kept, 1)
    }

    /// [`EventBus::start`] with `deliverers` delivery threads (at least one): as many events
    /// in flight at once, each to its own function instance ([`EventBus::set_targets`]).
    pub fn start_with_deliverers(
        faults: Arc<RwLock<FaultPlan>>,
        compartment_id: String,
        prefix: Option<String>,
        timeout: Duration,
        deliveries_kept: usize,
        deliverers: usize,
    ) -> EventBus {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
            targets: RwLock::new(Vec::new()),
            gate: RwLock::new(None),
            deliveries: Mutex::new(VecDeque::new()),
            deliveries_kept,
            counts: Mutex::new(DeliveryCounts::default()),
            answered: Mutex::new(Vec::new()),
            faults,
            prefix,
            compartment_id,
            timeout,
        });
        let threads = (0..deliverers.max(1))
            .map(|index| {
                let worker = Arc::clone(&shared);
                std::thread::Builder::new()
                    .name(format!("emulator-events-{index}"))
                    .spawn(move || deliver_forever(&worker, index))
                    .expect("spawning an event thread")
            })
            .collect();
        EventBus { shared, threads }
    }

    /// Sends future events to the function behind `agent` (or to nobody with `None`).
    pub fn set_target(&self, agent: Option<FnAgent>) {
        self.set_targets(agent.into_iter().collect());
    }

    /// Sends future events to these function instances, delivery thread `i` to instance
    /// `i % len` (an empty list: to nobody).
    pub fn set_targets(&self, agents: Vec<FnAgent>) {
        *self
            .shared
            .targets
            .write()
            .unwrap_or_else(|e| e.into_inner()) = agents;
    }

    /// Sets the check made before each delivery (`None`: always deliver).
    pub fn set_gate(&self, gate: Option<Gate>) {
        *self.shared.gate.write().unwrap_or_else(|e| e.into_inner()) = gate;
    }

    /// The function (its first instance) events currently go to.
    pub fn target(&self) -> Option<FnAgent> {
        self.shared
            .targets
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .first()
            .cloned()
    }

    /// Queues the event for `change` (if it passes the rule) and returns at once.
    pub fn publish(&self, change: &Change) {
        if let Some(prefix) = &self.shared.prefix {
            if !change.name.starts_with(prefix.as_str()) {
                return;
            }
        }
        let event = object_event(change, SystemTime::now());
        let mut queue = lock(&self.shared.queue);
        if queue.pending.len() >= MAX_PENDING {
            // A function this far behind will not catch up; dropped events are what the
            // reconciler repairs, as after any lost delivery.
            log::warn!(
                "emulator events: {MAX_PENDING} events waiting; event for {:?} dropped",
                change.name
            );
            return;
        }
        queue.pending.push_back(event);
        self.shared.wake.notify_all();
    }

    /// The deliveries so far, in order (the most recent ones, up to the number kept).
    pub fn deliveries(&self) -> Vec<Delivery> {
        lock(&self.shared.deliveries).iter().cloned().collect()
    }

    /// Counts over every delivery so far, however many are kept.
    pub fn counts(&self) -> DeliveryCounts {
        *lock(&self.shared.counts)
    }

    /// How many calls each function instance answered (whatever the status), by its index in
    /// [`EventBus::set_targets`]'s list: which instances really handled events.
    pub fn answered_per_instance(&self) -> Vec<u64> {
        lock(&self.shared.answered).clone()
    }

    /// Waits until no event is queued or in flight; `false` if `timeout` passed first.
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        let mut queue = lock(&self.shared.queue);
        while !queue.pending.is_empty() || queue.in_flight > 0 {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            queue = self
                .shared
                .wake
                .wait_timeout(queue, left.min(Duration::from_millis(50)))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }
}

impl Drop for EventBus {
    fn drop(&mut self) {
        lock(&self.shared.queue).stopping = true;
        self.shared.wake.notify_all();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

fn deliver_forever(shared: &Shared, index: usize) {
    loop {
        // The delay happens before an event is taken, so that events arriving meanwhile can be
        // reordered behind it.
        {
            let mut queue = lock(&shared.queue);
            while queue.pending.is_empty() && !queue.stopping {
                queue = shared.wake.wait(queue).unwrap_or_else(|e| e.into_inner());
            }
            if queue.stopping {
                return;
            }
            queue.in_flight += 1;
        }
        // Read now, not before the wait: faults may change while the queue is empty.
        let plan = shared
            .faults
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .events;
        if !plan.delay.is_zero() {
            std::thread::sleep(plan.delay);
        }
        let event = {
            let mut queue = lock(&shared.queue);
            let next = if plan.reorder {
                queue.pending.pop_back()
            } else {
                queue.pending.pop_front()
            };
            match next {
                Some(event) => event,
                None => {
                    queue.in_flight -= 1;
                    continue;
                }
            }
        };
        let copies = if plan.duplicate_rate > 0.0 && chance(plan.duplicate_rate) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let outcome = if plan.drop_rate > 0.0 && chance(plan.drop_rate) {
                DeliveryResult::Dropped
            } else {
                deliver(shared, &event, index)
            };
            {
                let mut counts = lock(&shared.counts);
                counts.attempts += 1;
            }
            if shared.deliveries_kept > 0 {
                let mut deliveries = lock(&shared.deliveries);
                if deliveries.len() >= shared.deliveries_kept {
                    deliveries.pop_front();
                }
                deliveries.push_back(Delivery {
                    event_id: event.event_id.clone(),
                    event_type: event.kind.event_type().to_string(),
                    object: event.name.clone(),
                    outcome,
                });
            }
        }
        lock(&shared.counts).duplicates += copies - 1;
        lock(&shared.queue).in_flight -= 1;
        shared.wake.notify_all();
    }
}

fn deliver(shared: &Shared, event: &ObjectEvent, index: usize) -> DeliveryResult {
    let agent = {
        let targets = shared.targets.read().unwrap_or_else(|e| e.into_inner());
        (!targets.is_empty()).then(|| {
            (
                index % targets.len(),
                targets[index % targets.len()].clone(),
            )
        })
    };
    let Some((instance, agent)) = agent else {
        return DeliveryResult::NoFunction;
    };
    let gate = shared
        .gate
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    if gate.is_some_and(|allowed| !allowed()) {
        log::warn!(
            target: "emulator",
            "event {} not delivered: no policy statement lets service cloudEvents use \
             functions-family (fn-invocation) on the function; OCI drops it silently",
            event.event_id
        );
        return DeliveryResult::NotAuthorized;
    }
    let body = serde_json::to_vec(&envelope(event, &shared.compartment_id)).unwrap_or_default();
    match agent.call(&body, "application/json", &[], shared.timeout) {
        Ok(reply) => {
            {
                let mut answered = lock(&shared.answered);
                if answered.len() <= instance {
                    answered.resize(instance + 1, 0);
                }
                answered[instance] += 1;
            }
            if reply.status != 200 {
                log::warn!(
                    target: "emulator",
                    "function answered {} to event {}",
                    reply.status,
                    event.event_id
                );
            }
            DeliveryResult::Answered(reply.status)
        }
        Err(e) => {
            log::warn!(target: "emulator", "event delivery failed: {e}");
            DeliveryResult::Failed(e.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_is_the_products_with_what_oci_adds() {
        let change = Change {
            kind: ChangeKind::Created,
            namespace: "ns".into(),
            bucket: "images".into(),
            name: "uploads/cat 1.jpg".into(),
            etag: Some("0f8c1f9e-1c1d-4d36-9a6e-2f1d2b8f4c11".into()),
        };
        let event = cloud_event(&change, "ocid1.compartment.oc1..c", SystemTime::UNIX_EPOCH);
        assert_eq!(event["source"], "ObjectStorage");
        assert_eq!(event["eventTime"], "1970-01-01T00:00:00.000Z");
        assert_eq!(event["data"]["availabilityDomain"], "EMU-AD-1");
        assert_eq!(
            event["data"]["additionalDetails"]["bucketId"],
            crate::emulator::object_storage::bucket_id("images")
        );
        let read = |event: &Value| ObjectEvent::parse(&serde_json::to_vec(event).unwrap());
        let created = read(&event).unwrap();
        assert_eq!(
            (created.kind, created.name.as_str(), created.etag.as_deref()),
            (
                EventKind::Create,
                "uploads/cat 1.jpg",
                Some("0f8c1f9e-1c1d-4d36-9a6e-2f1d2b8f4c11")
            )
        );
        assert_eq!(created.event_time, Some(SystemTime::UNIX_EPOCH));
        let deleted = Change {
            kind: ChangeKind::Deleted,
            etag: None,
            ..change
        };
        let deleted = read(&cloud_event(&deleted, "c", SystemTime::UNIX_EPOCH)).unwrap();
        assert_eq!((deleted.kind, deleted.etag), (EventKind::Delete, None));
    }

    #[test]
    fn without_a_function_events_are_recorded_as_undelivered() {
        let bus = EventBus::start(
            Default::default(),
            "c".into(),
            Some("uploads/".into()),
            Duration::from_secs(1),
            100,
        );
        let change = |name: &str| Change {
            kind: ChangeKind::Created,
            namespace: "ns".into(),
            bucket: "b".into(),
            name: name.into(),
            etag: Some("e".into()),
        };
        bus.publish(&change("uploads/a.jpg"));
        bus.publish(&change("other/b.jpg"));
        assert!(bus.wait_idle(Duration::from_secs(5)));
        let deliveries = bus.deliveries();
        assert_eq!(deliveries.len(), 1, "{deliveries:?}");
        assert_eq!(deliveries[0].object, "uploads/a.jpg");
        assert_eq!(deliveries[0].outcome, DeliveryResult::NoFunction);
    }
}
