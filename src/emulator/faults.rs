//! Injectable faults, per service: error answers, added latency, dropped connections, and for
//! events duplicates, delays, reordering and drops.
//!
//! Faults are set by configuration (a spec string such as
//! `objectstorage=rate:0.3,status:503,latency:200ms`) or changed at run time by tests. Choices
//! are random (ring's system RNG); nothing here sleeps or touches sockets, it only decides.

use std::time::Duration;

use crate::error::{Error, Result};

/// The services the emulator stands in for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    /// Object Storage.
    ObjectStorage,
    /// AI Vision.
    Vision,
    /// Secrets retrieval.
    Secrets,
    /// Functions invoke.
    Functions,
    /// ORDS SODA.
    Soda,
}

impl Service {
    /// Every service, in a fixed order.
    pub const ALL: [Service; 5] = [
        Service::ObjectStorage,
        Service::Vision,
        Service::Secrets,
        Service::Functions,
        Service::Soda,
    ];

    /// The short name used in fault specs and logs.
    pub fn name(self) -> &'static str {
        match self {
            Service::ObjectStorage => "objectstorage",
            Service::Vision => "vision",
            Service::Secrets => "secrets",
            Service::Functions => "functions",
            Service::Soda => "soda",
        }
    }

    fn from_name(name: &str) -> Option<Service> {
        Service::ALL.into_iter().find(|s| s.name() == name)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Faults of one service's answers.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Faults {
    /// Share of requests answered with `error_status` instead (0..=1).
    pub error_rate: f64,
    /// The status of injected errors: 429, 500 or 503 (default 503).
    pub error_status: u16,
    /// Added before every answer.
    pub latency: Duration,
    /// Share of requests whose connection is closed without an answer (0..=1).
    pub drop_rate: f64,
}

/// Faults of event delivery to the function.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct EventFaults {
    /// Share of events delivered twice (0..=1).
    pub duplicate_rate: f64,
    /// Added before each delivery.
    pub delay: Duration,
    /// Deliver queued events newest first.
    pub reorder: bool,
    /// Share of events never delivered (0..=1).
    pub drop_rate: f64,
}

/// What to do with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Serve it.
    Serve,
    /// Answer this error status.
    Fail(u16),
    /// Close the connection without answering.
    Drop,
}

/// All faults in force.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultPlan {
    services: [Faults; 5],
    /// Event delivery faults.
    pub events: EventFaults,
}

impl FaultPlan {
    /// The faults of `service`.
    pub fn get(&self, service: Service) -> Faults {
        self.services[service.index()]
    }

    /// Replaces the faults of `service`.
    pub fn set(&mut self, service: Service, faults: Faults) {
        self.services[service.index()] = faults;
    }

    /// Decides the fate of one request to `service`.
    pub fn verdict(&self, service: Service) -> Verdict {
        let faults = self.get(service);
        if faults.drop_rate > 0.0 && chance(faults.drop_rate) {
            return Verdict::Drop;
        }
        if faults.error_rate > 0.0 && chance(faults.error_rate) {
            let status = if faults.error_status == 0 {
                503
            } else {
                faults.error_status
            };
            return Verdict::Fail(status);
        }
        Verdict::Serve
    }

    /// Parses `service=key:value,key:value;service=…`. Keys: `rate`, `status`, `latency`
    /// (`200ms`, `2s`), `drop`; for `events`: `duplicate`, `delay`, `reorder` (`true`/`false`),
    /// `drop`. Example: `objectstorage=rate:0.3,status:503;events=duplicate:1`.
    pub fn parse(spec: &str) -> Result<FaultPlan> {
        let mut plan = FaultPlan::default();
        for part in spec.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let (target, settings) = part
                .split_once('=')
                .ok_or_else(|| bad(part, "expected service=key:value,…"))?;
            let target = target.trim();
            for setting in settings.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                let (key, value) = setting
                    .split_once(':')
                    .ok_or_else(|| bad(setting, "expected key:value"))?;
                let (key, value) = (key.trim(), value.trim());
                if target == "events" {
                    let events = &mut plan.events;
                    match key {
                        "duplicate" => events.duplicate_rate = rate(value)?,
                        "delay" => events.delay = duration(value)?,
                        "reorder" => events.reorder = flag(value)?,
                        "drop" => events.drop_rate = rate(value)?,
                        _ => {
                            return Err(bad(
                                key,
                                "event faults are duplicate, delay, reorder, drop",
                            ))
                        }
                    }
                    continue;
                }
                let service = Service::from_name(target).ok_or_else(|| {
                    bad(
                        target,
                        "services are objectstorage, vision, secrets, functions, soda, events",
                    )
                })?;
                let faults = &mut plan.services[service.index()];
                match key {
                    "rate" => faults.error_rate = rate(value)?,
                    "status" => faults.error_status = status(value)?,
                    "latency" => faults.latency = duration(value)?,
                    "drop" => faults.drop_rate = rate(value)?,
                    _ => return Err(bad(key, "service faults are rate, status, latency, drop")),
                }
            }
        }
        Ok(plan)
    }
}

fn bad(text: &str, why: &str) -> Error {
    Error::Config(format!("fault spec {text:?}: {why}"))
}

fn rate(value: &str) -> Result<f64> {
    match value.parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err(bad(value, "a rate is a number from 0 to 1")),
    }
}

fn status(value: &str) -> Result<u16> {
    match value.parse::<u16>() {
        Ok(s @ (429 | 500 | 502 | 503 | 504)) => Ok(s),
        _ => Err(bad(
            value,
            "an injected status is 429, 500, 502, 503 or 504",
        )),
    }
}

fn flag(value: &str) -> Result<bool> {
    match value {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(bad(value, "expected true or false")),
    }
}

fn duration(value: &str) -> Result<Duration> {
    let (number, unit) = match value.strip_suffix("ms") {
        Some(n) => (n, 1),
        None => (value.strip_suffix('s').unwrap_or(value), 1000),
    };
    number
        .parse::<u64>()
        .map(|n| Duration::from_millis(n * unit))
        .map_err(|_| bad(value, "a duration is like 250ms or 2s"))
}

/// True with probability `p`.
pub fn chance(p: f64) -> bool {
    p >= 1.0 || crate::random::unit() < p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_service_and_event_faults() {
        let plan = FaultPlan::parse(
            "objectstorage=rate:0.3,status:429,latency:200ms; events=duplicate:1,reorder:true,delay:2s",
        )
        .unwrap();
        let os = plan.get(Service::ObjectStorage);
        assert_eq!(os.error_rate, 0.3);
        assert_eq!(os.error_status, 429);
        assert_eq!(os.latency, Duration::from_millis(200));
        assert_eq!(plan.get(Service::Vision), Faults::default());
        assert_eq!(plan.events.duplicate_rate, 1.0);
        assert!(plan.events.reorder);
        assert_eq!(plan.events.delay, Duration::from_secs(2));
    }

    #[test]
    fn rejects_bad_specs_with_the_offending_text() {
        for spec in [
            "nosuch=rate:1",
            "vision=rate:2",
            "vision=status:404",
            "vision",
            "soda=latency:x",
        ] {
            let err = FaultPlan::parse(spec).unwrap_err().to_string();
            assert!(err.contains("fault spec"), "{spec}: {err}");
        }
    }

    #[test]
    fn verdicts_follow_the_rates() {
        let mut plan = FaultPlan::default();
        assert_eq!(plan.verdict(Service::Soda), Verdict::Serve);
        plan.set(
            Service::Soda,
            Faults {
                error_rate: 1.0,
                error_status: 429,
                ..Faults::default()
            },
        );
        assert_eq!(plan.verdict(Service::Soda), Verdict::Fail(429));
        plan.set(
            Service::Soda,
            Faults {
                drop_rate: 1.0,
                ..Faults::default()
            },
        );
        assert_eq!(plan.verdict(Service::Soda), Verdict::Drop);
        plan.set(
            Service::Soda,
            Faults {
                error_rate: 0.5,
                ..Faults::default()
            },
        );
        let failed = (0..2000)
            .filter(|_| plan.verdict(Service::Soda) != Verdict::Serve)
            .count();
        assert!(
            (800..1200).contains(&failed),
            "{failed} of 2000 at rate 0.5"
        );
    }
}
