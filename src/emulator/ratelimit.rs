//! Vision's rate limit as the emulator enforces it: a token bucket of requests per second per
//! tenancy, refusing with 429 `TooManyRequests` as OCI does, and counts of what it let through
//! and what it refused, for the load suite and the tests.
//!
//! OCI publishes the rate (transactions per second per tenancy; docs/SCALING.md) but not how
//! much burst it tolerates; the bucket holds one second's worth by default. Not modelled: limits
//! per operation or per compartment, and the asynchronous batch API's own quotas.

use std::sync::Mutex;
use std::time::Instant;

/// Vision requests seen by the emulator.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VisionCounts {
    /// Every request routed to Vision, whatever its answer.
    pub requests: u64,
    /// Refused by the rate limit (429 `TooManyRequests`).
    pub throttled: u64,
}

struct Bucket {
    tokens: f64,
    last: Instant,
}

/// A token bucket: `rate` tokens a second, at most `capacity` kept.
pub(crate) struct RateLimit {
    rate: f64,
    capacity: f64,
    bucket: Mutex<Bucket>,
}

impl RateLimit {
    /// A full bucket: `rate` per second, `capacity` at once (at least one).
    pub(crate) fn new(rate: f64, capacity: f64) -> RateLimit {
        let capacity = capacity.max(1.0);
        RateLimit {
            rate: rate.max(0.0),
            capacity,
            bucket: Mutex::new(Bucket {
                tokens: capacity,
                last: Instant::now(),
            }),
        }
    }

    /// Takes a token if there is one (`true`: serve the request).
    pub(crate) fn admit(&self) -> bool {
        self.admit_at(Instant::now())
    }

    fn admit_at(&self, now: Instant) -> bool {
        let mut bucket = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.capacity);
        bucket.last = now.max(bucket.last);
        // A hair under one counts: tenths added up in floating point fall just short.
        if bucket.tokens >= 1.0 - 1e-9 {
            bucket.tokens = (bucket.tokens - 1.0).max(0.0);
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_bucket_admits_its_capacity_then_its_rate() {
        let limit = RateLimit::new(10.0, 10.0);
        let start = Instant::now();
        let burst = (0..25).filter(|_| limit.admit_at(start)).count();
        assert_eq!(burst, 10, "a second's worth at once");
        // Over the next two seconds, in 10 ms steps: 20 more, however often it is asked.
        let later = (1..=200)
            .filter(|i| limit.admit_at(start + Duration::from_millis(10 * i)))
            .count();
        assert_eq!(later, 20);
    }
}
