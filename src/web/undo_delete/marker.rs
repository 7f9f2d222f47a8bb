//! Delete markers, the data side of `undo_delete`: the marker a browser delete leaves for each
//! image during its undo window, reading markers back (by id, by batch, for a page of ids), and
//! the queue of this instance's markers waiting for its sweeper. Listings (`catalog.rs`) read
//! markers from here to hide their images; reading never changes anything. Writing, removing
//! and acting on markers is the parent module's (`mod.rs`, where the whole design is told);
//! the split lets listings read markers without depending on the code that deletes images.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::super::App;
use crate::error::Result;
use crate::soda::document_key;

/// The markers' `kind` in stored documents.
pub(super) const KIND: &str = "pending-delete";

/// How often the sweeper looks whether its app is still there.
pub(super) const TICK: Duration = Duration::from_secs(1);

/// One image waiting to be deleted.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct DeleteMarker {
    kind: String,
    /// `namespace/bucket`.
    bucket: String,
    /// The image id.
    pub id: String,
    /// Its display name.
    pub name: String,
    /// The form post it was deleted with.
    pub batch: String,
    /// Unix milliseconds when the undo window closes.
    pub delete_at_ms: u64,
}

impl DeleteMarker {
    /// A marker for image `id` (shown as `name`) of `batch`, due at `delete_at_ms`.
    pub(super) fn new(
        app: &App,
        id: &str,
        name: &str,
        batch: &str,
        delete_at_ms: u64,
    ) -> DeleteMarker {
        DeleteMarker {
            kind: KIND.into(),
            bucket: bucket_tag(app),
            id: id.into(),
            name: name.into(),
            batch: batch.into(),
            delete_at_ms,
        }
    }

    /// True once the undo window has closed.
    pub(crate) fn is_due(&self) -> bool {
        now_ms() >= self.delete_at_ms
    }

    /// Seconds left in the undo window (0 when closed).
    pub(crate) fn seconds_left(&self) -> u64 {
        self.delete_at_ms.saturating_sub(now_ms()).div_ceil(1000)
    }
}

pub(super) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

pub(super) fn bucket_tag(app: &App) -> String {
    format!("{}/{}", app.bucket.namespace, app.bucket.name)
}

/// The key of an id's marker.
pub(crate) fn marker_key(app: &App, id: &str) -> String {
    document_key(
        &app.bucket.namespace,
        &app.bucket.name,
        &format!("{KIND}/{id}"),
    )
}

/// A stored document read as a marker of this bucket, if it is one.
pub(crate) fn as_marker(app: &App, value: &serde_json::Value) -> Option<DeleteMarker> {
    let marker: DeleteMarker = serde_json::from_value(value.clone()).ok()?;
    (marker.kind == KIND && marker.bucket == bucket_tag(app)).then_some(marker)
}

/// The instance's queue of markers to carry out, shared with its sweeper thread.
#[derive(Debug, Default)]
pub(crate) struct DeleteQueue {
    due: Mutex<BinaryHeap<Reverse<(Instant, String)>>>,
    wake: Condvar,
}

impl DeleteQueue {
    pub(super) fn push(&self, at: Instant, id: String) {
        if let Ok(mut due) = self.due.lock() {
            due.push(Reverse((at, id)));
        }
        self.wake.notify_one();
    }

    /// True when this instance has no delete waiting.
    pub(crate) fn is_empty(&self) -> bool {
        self.due.lock().map_or(true, |due| due.is_empty())
    }

    /// The ids whose time has come; otherwise waits at most until the next one (or a tick).
    pub(super) fn take_due(&self) -> Vec<String> {
        let Ok(mut due) = self.due.lock() else {
            return Vec::new();
        };
        let now = Instant::now();
        let wait = match due.peek() {
            Some(Reverse((at, _))) if *at <= now => Duration::ZERO,
            Some(Reverse((at, _))) => (*at - now).min(TICK),
            None => TICK,
        };
        if !wait.is_zero() {
            due = match self.wake.wait_timeout(due, wait) {
                Ok((due, _)) => due,
                Err(_) => return Vec::new(),
            };
        }
        let now = Instant::now();
        let mut ids = Vec::new();
        while due.peek().is_some_and(|Reverse((at, _))| *at <= now) {
            if let Some(Reverse((_, id))) = due.pop() {
                ids.push(id);
            }
        }
        ids
    }
}

/// The markers of one batch still waiting (none once undone or carried out).
pub(crate) fn batch_markers(app: &App, batch: &str) -> Result<Vec<DeleteMarker>> {
    let filter = serde_json::json!({"kind": KIND, "bucket": bucket_tag(app), "batch": batch});
    let mut out = Vec::new();
    for doc in app.soda.query(&filter, app.deadline())? {
        if let Some(m) = as_marker(app, &doc?.value) {
            out.push(m);
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The marker of one image, if it has one.
pub(crate) fn marker_of(app: &App, id: &str) -> Result<Option<DeleteMarker>> {
    Ok(app
        .soda
        .get(&marker_key(app, id), app.deadline())?
        .and_then(|d| as_marker(app, &d.value)))
}

/// The markers among these ids, by id, in one query (for filtered listings, whose documents
/// come from a search).
pub(crate) fn markers_of(app: &App, ids: &[&str]) -> Result<HashMap<String, DeleteMarker>> {
    let mut out = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let keys: Vec<String> = ids.iter().map(|id| marker_key(app, id)).collect();
    for doc in app
        .soda
        .query(&serde_json::json!({ "$id": keys }), app.deadline())?
    {
        if let Some(m) = as_marker(app, &doc?.value) {
            out.insert(m.id.clone(), m);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queue_hands_out_what_is_due_in_order() {
        let q = DeleteQueue::default();
        let now = Instant::now();
        q.push(now + Duration::from_millis(30), "b".into());
        q.push(now, "a".into());
        assert_eq!(q.take_due(), vec!["a".to_string()]);
        let started = Instant::now();
        let mut got = q.take_due();
        if got.is_empty() {
            got = q.take_due();
        }
        assert_eq!(got, vec!["b".to_string()]);
        assert!(
            started.elapsed() < Duration::from_millis(900),
            "woke for b, not the tick"
        );
    }

    #[test]
    fn windows_count_down() {
        let m = DeleteMarker {
            kind: KIND.into(),
            bucket: "ns/b".into(),
            id: "x".into(),
            name: "x.jpg".into(),
            batch: "1".into(),
            delete_at_ms: now_ms() + 10_500,
        };
        assert!(!m.is_due());
        assert_eq!(m.seconds_left(), 11);
        let past = DeleteMarker {
            delete_at_ms: now_ms() - 1,
            ..m
        };
        assert!(past.is_due() && past.seconds_left() == 0);
    }
}
