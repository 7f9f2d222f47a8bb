//! What ORDS does with conditional document writes, found by trying them on a scratch
//! document: the assumptions the Vision pacer and the reconciler lease stand on, which no
//! Oracle source confirms (issue 24, docs/DEPLOY.md "First step after apply").
//!
//! The probe writes one document under a fresh `probe-…` key (never an image's 64-hex key),
//! tries `If-None-Match: *` on it, a stale and the current `If-Match`, and deletes it, whatever
//! happened in between. `webapp doctor` reports the findings; the web app runs the probe at start
//! to choose its fallbacks (`web/fallback.rs`).

use std::time::Instant;

use serde_json::json;

use crate::error::Result;
use crate::soda::Soda;

/// What ORDS did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteProbe {
    /// `If-None-Match: *` on an existing document answered 412.
    pub if_none_match_refused: bool,
    /// A stale `If-Match` answered 412.
    pub stale_if_match_refused: bool,
    /// The current `If-Match` (as `GET` gave it) was accepted.
    pub current_if_match_accepted: bool,
    /// Document `PUT`s answered an `ETag` header.
    pub put_etag: bool,
}

impl WriteProbe {
    /// Whether the conditions are honoured: what the shared pacer and the lease need.
    pub fn conditions_honoured(&self) -> bool {
        self.if_none_match_refused && self.stale_if_match_refused && self.current_if_match_accepted
    }
}

/// A key no image document can have (those are 64 hex digits).
fn scratch_key() -> String {
    format!("probe-{}", crate::random::hex::<8>())
}

/// Runs the probe on a scratch document, and removes it.
pub fn conditional_writes(soda: &Soda, deadline: Instant) -> Result<WriteProbe> {
    let key = scratch_key();
    let result = probe(soda, &key, deadline);
    if let Err(e) = soda.delete(&key, deadline) {
        log::warn!(target: "soda", "the probe document {key} was not removed: {e}");
    }
    result
}

fn probe(soda: &Soda, key: &str, deadline: Instant) -> Result<WriteProbe> {
    let value = |step: u32| json!({"kind": "ords-probe", "step": step});
    let (_, created_etag) =
        soda.put_as_sent(key, &value(1), Some(("if-none-match", "*")), deadline)?;
    let (again, _) = soda.put_as_sent(key, &value(2), Some(("if-none-match", "*")), deadline)?;
    let current = soda.get(key, deadline)?.map(|d| d.etag).unwrap_or_default();
    // A version no document has: ORDS versions are UUIDs or hashes, never this.
    let stale = "0000000000000000000000000000000000000000";
    let (stale_status, _) =
        soda.put_as_sent(key, &value(3), Some(("if-match", stale)), deadline)?;
    let current = match stale_status {
        412 => current,
        // The stale write landed: the version moved on.
        _ => soda.get(key, deadline)?.map(|d| d.etag).unwrap_or_default(),
    };
    let (current_status, current_etag) = if current.is_empty() {
        (0, None)
    } else {
        soda.put_as_sent(key, &value(4), Some(("if-match", &current)), deadline)?
    };
    Ok(WriteProbe {
        if_none_match_refused: again == 412,
        stale_if_match_refused: stale_status == 412,
        current_if_match_accepted: (200..300).contains(&current_status),
        put_etag: created_etag.is_some_and(|e| !e.is_empty())
            && (current_etag.is_some_and(|e| !e.is_empty()) || current_status == 0),
    })
}
