//! The Vision pacer: one small SODA document that every function instance shares, so that
//! however many instances run at once, Vision sees one steady stream at its rate limit
//! (docs/SCALING.md says why this design and what it costs).
//!
//! Before each Vision call an instance reserves a send slot: it reads the document with its
//! ETag, takes `slot = max(now, next_slot)`, writes `next_slot = slot + 1/TPS` with `If-Match`,
//! and reads again when another instance got there first (412). It then sleeps until its slot.
//! Each instance holds at most one reservation, so the wait is bounded by instances ÷ TPS.
//! When the slot would be later than the call can wait for, nothing is reserved and the caller
//! defers the image instead (the document goes `waiting`). A 429 despite pacing (another caller
//! in the tenancy) inserts an empty slot into the shared stream: everyone backs off together,
//! and a caller taking X requests a second leaves the stream at about TPS − X.
//!
//! Times are wall-clock microseconds since the Unix epoch: instances on different hosts compare
//! them, and the platform keeps hosts' clocks in step (NTP) far closer than one slot (100 ms).
//! Not here: adapting the rate to what Vision answers (the rate is configuration), and any
//! fairness between images (slots go to whoever asks first).
//!
//! The shared schedule needs ORDS to honour `If-Match` and `If-None-Match`, which no Oracle
//! source confirms (issue 24). Where `webapp doctor` finds that it does not, the deployment sets
//! `ORDS_CONDITIONAL_WRITES=off`, and [`Pacing::PerInstance`] takes over: each instance keeps its
//! own schedule at `TPS / FUNCTION_MAX_INSTANCES`, the bound on instances running at once that
//! the deployment gives (OCI documents no cap of its own: oci-limits.md). Slower whenever fewer
//! instances run, never faster than the limit while at most that many do; beyond the bound,
//! Vision's 429s make instances back off as before.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::soda::CachedSoda;

/// The pacer's document key in the analysis collection. It has no `bucket_name`, so the
/// gallery's and the reconciler's queries never see it.
pub const KEY: &str = "vision-pacer";
/// The document's `kind`, so whoever lists the collection can tell it from an image's.
pub const KIND: &str = "vision-pacer";
/// How many conditional writes one reservation tries before it gives up pacing and sends at
/// once (only under contention far above any real deployment's).
const MAX_TRIES: u32 = 100;

/// Vision's default requests per second in a region (docs/SCALING.md, from
/// shared/reference/oci-limits.md): 10 in Ashburn, Phoenix and London, 5 elsewhere.
pub fn default_tps(region: Option<&str>) -> f64 {
    match region.map(str::to_ascii_lowercase).as_deref() {
        Some("us-ashburn-1" | "iad" | "us-phoenix-1" | "phx" | "uk-london-1" | "lhr") => 10.0,
        _ => 5.0,
    }
}

/// `on` (default) or `off`: whether ORDS honours conditional writes (`webapp doctor` says).
pub const CONDITIONAL_WRITES: &str = "ORDS_CONDITIONAL_WRITES";
/// With conditional writes off: how many function instances may run at once.
pub const MAX_INSTANCES: &str = "FUNCTION_MAX_INSTANCES";

/// How the function instances share Vision's rate.
#[derive(Debug, Clone)]
pub enum Pacing {
    /// One schedule in the database that every instance reserves from.
    Shared,
    /// ORDS ignores conditions: this instance's own schedule at a share of the rate.
    PerInstance {
        /// The bound on instances running at once (`FUNCTION_MAX_INSTANCES`).
        instances: u32,
        /// This instance's next free slot, microseconds since the epoch.
        next_slot: Arc<Mutex<u64>>,
    },
}

impl Pacing {
    /// From `ORDS_CONDITIONAL_WRITES` and `FUNCTION_MAX_INSTANCES`; the fallback is logged once,
    /// with what it costs, when chosen.
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>, tps: f64) -> Result<Pacing> {
        let setting = lookup(CONDITIONAL_WRITES).unwrap_or_default();
        match setting.trim().to_ascii_lowercase().as_str() {
            "" | "on" => Ok(Pacing::Shared),
            "off" => {
                let instances: u32 = crate::config::number(lookup, MAX_INSTANCES, 0)?;
                if instances == 0 {
                    return Err(Error::Config(format!(
                        "{CONDITIONAL_WRITES}=off needs {MAX_INSTANCES}: the most function \
                         instances that run at once, so each can pace itself at its share"
                    )));
                }
                if tps > 0.0 {
                    log::warn!(target: "pacer", "{CONDITIONAL_WRITES}=off: ORDS ignores conditional \
                        writes, so Vision is paced per instance at {tps}/{instances} = {:.3} \
                        requests/s ({MAX_INSTANCES}={instances}); fewer instances use less than \
                        the limit, more than {instances} can exceed it and meet 429s",
                        tps / f64::from(instances));
                }
                Ok(Pacing::PerInstance {
                    instances,
                    next_slot: Arc::new(Mutex::new(0)),
                })
            }
            other => Err(Error::Config(format!(
                "{CONDITIONAL_WRITES}={other:?}: expected on or off"
            ))),
        }
    }

    /// Reserves a send slot at `tps` (shared: [`reserve`]; per instance: this instance's share).
    pub fn reserve(
        &self,
        soda: &CachedSoda,
        tps: f64,
        latest: SystemTime,
        deadline: Instant,
    ) -> Result<Reservation> {
        match self {
            Pacing::Shared => reserve(soda, tps, latest, deadline),
            Pacing::PerInstance {
                instances,
                next_slot,
            } => {
                let mut next_slot = next_slot.lock().unwrap_or_else(|e| e.into_inner());
                let step = interval(tps / f64::from(*instances));
                let now = micros(SystemTime::now());
                if *next_slot == 0 {
                    // Instances started together (a burst of events) would all send at once,
                    // then every `step` in step: each begins at a random point of its first
                    // interval, so together they send at the rate, not in volleys.
                    *next_slot = now + (crate::random::unit() * step as f64) as u64;
                }
                Ok(match decide(*next_slot, now, step, micros(latest)) {
                    Decision::Defer { at } => Reservation::Defer(time_of(at)),
                    Decision::Take { slot, next } => {
                        *next_slot = next;
                        Reservation::Slot(time_of(slot))
                    }
                })
            }
        }
    }

    /// After a 429 despite pacing: leaves the next slot empty ([`back_off`], or this
    /// instance's own schedule).
    pub fn back_off(&self, soda: &CachedSoda, tps: f64, deadline: Instant) -> Result<()> {
        match self {
            Pacing::Shared => back_off(soda, tps, deadline),
            Pacing::PerInstance {
                instances,
                next_slot,
            } => {
                let mut next_slot = next_slot.lock().unwrap_or_else(|e| e.into_inner());
                let now = micros(SystemTime::now());
                *next_slot = (*next_slot).max(now) + interval(tps / f64::from(*instances));
                Ok(())
            }
        }
    }
}

/// What a reservation gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// Send at this time (now or soon); the slot is taken.
    Slot(SystemTime),
    /// The first free slot is later than the caller can wait: nothing was taken; try again
    /// around this time.
    Defer(SystemTime),
}

/// One decision on the shared state, without I/O: what to take and what to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    /// Take `slot`; the document's `next_slot` becomes `next`.
    Take { slot: u64, next: u64 },
    /// The free slot `at` is past `latest`.
    Defer { at: u64 },
}

fn decide(next_slot: u64, now: u64, interval: u64, latest: u64) -> Decision {
    let slot = next_slot.max(now);
    if slot > latest {
        Decision::Defer { at: slot }
    } else {
        Decision::Take {
            slot,
            next: slot + interval,
        }
    }
}

/// Microseconds since the epoch.
fn micros(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

fn time_of(us: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_micros(us)
}

/// The slot spacing for `tps` requests per second.
fn interval(tps: f64) -> u64 {
    (1_000_000.0 / tps.max(0.001)).round() as u64
}

fn next_slot_of(value: &Value) -> u64 {
    value["next_slot_us"].as_u64().unwrap_or(0)
}

fn document(next_slot: u64, tps: f64) -> Value {
    json!({
        "kind": KIND,
        "next_slot_us": next_slot,
        "next_slot": crate::timefmt::format(time_of(next_slot), crate::timefmt::Precision::Millis),
        "tps": tps,
    })
}

/// A short random pause after losing the `tries`-th race, longer the more races were lost (up
/// to 100 ms), so the losers do not all come back together.
fn jitter(tries: u32) {
    let ceiling = (5_000.0 * f64::from(tries)).min(100_000.0);
    std::thread::sleep(Duration::from_micros(
        (crate::random::unit() * ceiling) as u64,
    ));
}

/// Reserves a slot at `tps` requests per second, unless the first free one is after `latest`.
/// Every SODA call is bounded by `deadline`.
pub fn reserve(
    soda: &CachedSoda,
    tps: f64,
    latest: SystemTime,
    deadline: Instant,
) -> Result<Reservation> {
    let step = interval(tps);
    for tries in 1..=MAX_TRIES {
        let current = soda.with(deadline, |s| s.get(KEY, deadline))?;
        let now = micros(SystemTime::now());
        let next_slot = current.as_ref().map_or(0, |d| next_slot_of(&d.value));
        let (slot, next) = match decide(next_slot, now, step, micros(latest)) {
            Decision::Defer { at } => return Ok(Reservation::Defer(time_of(at))),
            Decision::Take { slot, next } => (slot, next),
        };
        let value = document(next, tps);
        let written = soda.with(deadline, |s| match &current {
            Some(d) => s.put_if_match(KEY, &value, &d.etag, deadline),
            None => s.insert_if_absent(KEY, &value, deadline),
        })?;
        if written.is_some() {
            return Ok(Reservation::Slot(time_of(slot)));
        }
        jitter(tries);
    }
    log::warn!(target: "pacer", "no slot after {MAX_TRIES} tries (contention): sending unpaced");
    Ok(Reservation::Slot(SystemTime::now()))
}

/// After a 429 despite pacing: leaves the next slot empty (`next_slot` moves on by one
/// interval), so every instance backs off together. Best effort: after three lost races the
/// stream goes on unchanged.
pub fn back_off(soda: &CachedSoda, tps: f64, deadline: Instant) -> Result<()> {
    for tries in 1..=3 {
        let current = soda.with(deadline, |s| s.get(KEY, deadline))?;
        let now = micros(SystemTime::now());
        let next_slot = current.as_ref().map_or(0, |d| next_slot_of(&d.value));
        let value = document(next_slot.max(now) + interval(tps), tps);
        let written = soda.with(deadline, |s| match &current {
            Some(d) => s.put_if_match(KEY, &value, &d.etag, deadline),
            None => s.insert_if_absent(KEY, &value, deadline),
        })?;
        if written.is_some() {
            return Ok(());
        }
        jitter(tries);
    }
    Ok(())
}

/// Sleeps until `slot`, but never past `deadline`.
pub fn wait_for(slot: SystemTime, deadline: Instant) {
    if let Ok(wait) = slot.duration_since(SystemTime::now()) {
        let left = deadline.saturating_duration_since(Instant::now());
        std::thread::sleep(wait.min(left));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_spaced_and_start_no_earlier_than_now() {
        // An idle pacer (next slot in the past): send now, the next one an interval later.
        assert_eq!(
            decide(0, 1_000, 100, 10_000),
            Decision::Take {
                slot: 1_000,
                next: 1_100
            }
        );
        // A busy one: queue behind the last reservation.
        assert_eq!(
            decide(5_000, 1_000, 100, 10_000),
            Decision::Take {
                slot: 5_000,
                next: 5_100
            }
        );
        // Further away than the caller can wait: nothing taken.
        assert_eq!(
            decide(20_000, 1_000, 100, 10_000),
            Decision::Defer { at: 20_000 }
        );
        assert_eq!(interval(10.0), 100_000);
        assert_eq!(interval(3.0), 333_333);
    }

    #[test]
    fn with_conditions_off_each_instance_paces_itself_at_its_share() {
        let lookup = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert!(matches!(
            Pacing::from_lookup(&lookup(&[]), 10.0).unwrap(),
            Pacing::Shared
        ));
        let err = Pacing::from_lookup(&lookup(&[(CONDITIONAL_WRITES, "off")]), 10.0)
            .unwrap_err()
            .to_string();
        assert!(err.contains(MAX_INSTANCES), "{err}");
        assert!(Pacing::from_lookup(&lookup(&[(CONDITIONAL_WRITES, "maybe")]), 10.0).is_err());
        let pacing = Pacing::from_lookup(
            &lookup(&[(CONDITIONAL_WRITES, "OFF"), (MAX_INSTANCES, "4")]),
            10.0,
        )
        .unwrap();
        let Pacing::PerInstance { instances, .. } = &pacing else {
            panic!("{pacing:?}")
        };
        assert_eq!(*instances, 4);
        // No database is touched: a client that cannot connect is never used.
        let soda = crate::soda::CachedSoda::new(
            crate::oci::client::Transport::new(crate::oci::client::Auth::None, Default::default()),
            crate::soda::SodaConfig {
                base_url: "http://127.0.0.1:9/ords/".into(),
                schema: "admin".into(),
                collection: "C".into(),
                user: "ADMIN".into(),
                password: crate::soda::Password::Literal(crate::secret::Secret::new("x")),
            },
            None,
            Duration::from_secs(60),
        );
        let before = SystemTime::now();
        let far = before + Duration::from_secs(60);
        let deadline = Instant::now() + Duration::from_secs(1);
        let Reservation::Slot(first) = pacing.reserve(&soda, 10.0, far, deadline).unwrap() else {
            panic!()
        };
        // The first slot falls somewhere in the first interval, not at once for every instance.
        let phase = first.duration_since(before).unwrap_or_default();
        assert!(phase <= Duration::from_millis(401), "{phase:?}");
        let Reservation::Slot(second) = pacing.reserve(&soda, 10.0, far, deadline).unwrap() else {
            panic!()
        };
        // 10 requests/s shared by 4 instances: 400 ms apart in each.
        assert_eq!(
            second.duration_since(first).unwrap(),
            Duration::from_millis(400)
        );
        // A slot past `latest` is not taken.
        assert!(matches!(
            pacing
                .reserve(&soda, 10.0, SystemTime::now(), deadline)
                .unwrap(),
            Reservation::Defer(_)
        ));
    }

    #[test]
    fn the_default_rate_follows_the_region() {
        assert_eq!(default_tps(Some("us-ashburn-1")), 10.0);
        assert_eq!(default_tps(Some("UK-LONDON-1")), 10.0);
        assert_eq!(default_tps(Some("eu-frankfurt-1")), 5.0);
        assert_eq!(default_tps(None), 5.0);
    }

    #[test]
    fn the_document_round_trips_its_slot() {
        let value = document(1_700_000_000_123_456, 10.0);
        assert_eq!(value["kind"], KIND);
        assert_eq!(next_slot_of(&value), 1_700_000_000_123_456);
        assert_eq!(next_slot_of(&json!({})), 0);
    }
}
