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

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::error::Result;
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
