//! The web app's fallback where ORDS ignores conditional writes, chosen once at start.
//!
//! The reconciler lease (`lease.rs`) keeps passes of several instances apart only if ORDS
//! answers 412 to a stale `If-Match` and to `If-None-Match: *` on an existing document; no
//! Oracle source confirms it does (issue 24). At start the web app either takes the answer from
//! `ORDS_CONDITIONAL_WRITES` (`on`/`off`, what `webapp doctor` found) or finds it out with the
//! probe on a scratch document (`ords_probe.rs`). Where conditions are ignored, or the probe
//! could not tell, the scheduled reconciler runs only on the instance the configuration names:
//! `RECONCILER_DESIGNATED=true` (Terraform sets it on instance 0 and `false` on the others;
//! unset counts as true, the single-instance case). The choice is logged once, with what it
//! costs.

use std::time::{Duration, Instant};

use super::App;
use crate::ords_probe;
use crate::pacer::CONDITIONAL_WRITES;

/// `true` on the one instance that reconciles when the lease cannot be trusted.
pub const RECONCILER_DESIGNATED: &str = "RECONCILER_DESIGNATED";

/// Whether this instance runs the scheduled reconciler.
pub fn reconciler_runs_here(app: &App, lookup: &dyn Fn(&str) -> Option<String>) -> bool {
    let designated =
        !lookup(RECONCILER_DESIGNATED).is_some_and(|v| v.trim().eq_ignore_ascii_case("false"));
    let configured = lookup(CONDITIONAL_WRITES).map(|v| v.trim().to_ascii_lowercase());
    let honoured = match configured.as_deref() {
        Some("on") => Some(true),
        Some("off") => Some(false),
        _ => match ords_probe::conditional_writes(
            &app.soda,
            Instant::now() + Duration::from_secs(20),
        ) {
            Ok(probe) => {
                if !probe.put_etag {
                    log::warn!(target: "webapp", "ORDS answers document writes without an ETag: \
                        versions are read back from the document (one more GET per conditional write)");
                }
                Some(probe.conditions_honoured())
            }
            Err(e) => {
                log::warn!(target: "webapp", "the ORDS conditional-write probe failed ({e}): \
                    treated as not honoured until the next start");
                None
            }
        },
    };
    match (honoured, designated) {
        (Some(true), _) => true,
        (_, true) => {
            log::warn!(target: "webapp", "ORDS conditional writes {}: the reconciler lease cannot \
                keep instances apart, so only this instance ({RECONCILER_DESIGNATED}) reconciles; \
                give no other instance {RECONCILER_DESIGNATED}=true", unknown_or_ignored(honoured));
            true
        }
        (_, false) => {
            log::warn!(target: "webapp", "ORDS conditional writes {}: the reconciler lease cannot \
                keep instances apart, so this instance ({RECONCILER_DESIGNATED}=false) does not \
                reconcile; the designated one does", unknown_or_ignored(honoured));
            false
        }
    }
}

fn unknown_or_ignored(honoured: Option<bool>) -> &'static str {
    match honoured {
        Some(false) => "are ignored",
        _ => "could not be checked",
    }
}
