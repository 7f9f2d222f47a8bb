//! Deleting from the pages, with an undo window: a delete confirmed in the browser first writes
//! a pending-delete marker per image, the image leaves the gallery at once, and the delete is
//! carried out by the server when the window closes, whatever the browser does meanwhile.
//!
//! A marker (`pending.rs`) is one small document in the SODA collection holding the image's id
//! and name, the batch it was deleted with (one form post) and the time the window closes.
//! Listings ask for the markers of their page's ids in the same `$id` query that fetches the
//! documents, so hiding costs no extra call.
//!
//! Removing the marker decides the outcome, exactly once: undo removes it before the window
//! closes (and is refused after), and the sweeper removes it after; SODA's delete says which of
//! them found it, and only the sweeper that found it deletes the image. Each instance keeps
//! a queue of the markers it wrote and one thread that carries them out on time. A marker whose
//! instance died before its time is carried out by the first instance that lists it (the image
//! is hidden meanwhile, so nobody sees it come back). When the image cannot be deleted (storage
//! down) the marker is written again and the delete retried a minute later.
//!
//! Not here: the JSON API's deletes, which stay immediate (`api.rs`), and the delete itself
//! (`catalog::delete`).

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use super::catalog;
use super::pending::{as_marker, bucket_tag, marker_key, now_ms, Marker, KIND};
use super::App;
use crate::error::Result;

/// How long after a failed delete it is tried again.
const RETRY_AFTER: Duration = Duration::from_secs(60);

/// Starts the thread that carries out this instance's pending deletes on time. It holds the
/// app weakly and ends within a second of the app being dropped.
pub(crate) fn spawn_sweeper(app: &Arc<App>) {
    let weak: Weak<App> = Arc::downgrade(app);
    let queue = Arc::clone(&app.trash);
    let started = std::thread::Builder::new()
        .name("pending-deletes".into())
        .spawn(move || loop {
            let ids = queue.take_due();
            let Some(app) = weak.upgrade() else { return };
            for id in ids {
                carry_out(&app, &id);
            }
        });
    if let Err(e) = started {
        log::error!(target: "webapp", "pending deletes: no sweeper thread ({e}); they are carried out when next listed");
    }
}

/// Marks these images (id, display name) for deletion when the undo window closes, as one
/// batch, and hands them to this instance's sweeper. With a zero window they are deleted now.
/// Returns the batch id (for the notice and the undo form).
pub(crate) fn schedule(app: &App, images: &[(String, String)]) -> Result<String> {
    let batch = crate::random::hex::<8>();
    let window = app.settings.undo_window;
    if window.is_zero() {
        for (id, _) in images {
            catalog::delete(app, id);
        }
        return Ok(batch);
    }
    let delete_at_ms = now_ms() + window.as_millis() as u64;
    let at = Instant::now() + window;
    for (id, name) in images {
        let marker = Marker::new(app, id, name, &batch, delete_at_ms);
        app.soda.put(
            &marker_key(app, id),
            &serde_json::to_value(&marker)?,
            app.deadline(),
        )?;
        app.trash.push(at, id.clone());
    }
    Ok(batch)
}

/// The markers of one batch still waiting (none once undone or carried out).
pub(crate) fn batch(app: &App, batch: &str) -> Result<Vec<Marker>> {
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
pub(crate) fn marker_of(app: &App, id: &str) -> Result<Option<Marker>> {
    Ok(app
        .soda
        .get(&marker_key(app, id), app.deadline())?
        .and_then(|d| as_marker(app, &d.value)))
}

/// What undoing a batch did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Undone {
    /// These images are back.
    Restored(Vec<String>),
    /// The window had closed (or the batch was undone already): nothing changed.
    TooLate,
}

/// Takes back a batch's deletes whose window is still open.
pub(crate) fn undo(app: &App, batch_id: &str) -> Result<Undone> {
    let mut restored = Vec::new();
    for marker in batch(app, batch_id)? {
        if marker.is_due() {
            continue;
        }
        // Whoever removes the marker decides: a `false` here means the sweeper was first.
        if app
            .soda
            .delete(&marker_key(app, &marker.id), app.deadline())?
        {
            restored.push(marker.name);
        }
    }
    Ok(if restored.is_empty() {
        Undone::TooLate
    } else {
        Undone::Restored(restored)
    })
}

/// Deletes one image whose window has closed, if its marker is still there; keeps the marker
/// (and tries again later) when the image cannot be deleted.
fn carry_out(app: &App, id: &str) {
    let marker = match marker_of(app, id) {
        Ok(Some(m)) => m,
        Ok(None) => return,
        Err(e) => {
            log::warn!(target: "webapp", "pending delete {id}: marker unreadable, retried later: {e}");
            app.trash.push(Instant::now() + RETRY_AFTER, id.to_string());
            return;
        }
    };
    if !marker.is_due() {
        // Another instance re-armed it; it is carried out at its own time.
        let left = Duration::from_millis(marker.delete_at_ms.saturating_sub(now_ms()));
        app.trash.push(Instant::now() + left, id.to_string());
        return;
    }
    match app.soda.delete(&marker_key(app, id), app.deadline()) {
        Ok(true) => {}
        Ok(false) => return,
        Err(e) => {
            log::warn!(target: "webapp", "pending delete {id}: marker not removed, retried later: {e}");
            app.trash.push(Instant::now() + RETRY_AFTER, id.to_string());
            return;
        }
    }
    let deleted = catalog::delete(app, id);
    if deleted.object.is_none() {
        // The object is still there: put the marker back so the image stays hidden, and retry.
        let again = marker.rearmed(now_ms() + RETRY_AFTER.as_millis() as u64);
        let _ = serde_json::to_value(&again)
            .map_err(crate::error::Error::from)
            .and_then(|v| app.soda.put(&marker_key(app, id), &v, app.deadline()));
        app.trash.push(Instant::now() + RETRY_AFTER, id.to_string());
    }
    log::info!(target: "webapp", "pending delete {id} carried out: {deleted:?}");
}

/// True for a batch id as [`schedule`] makes them (16 lower-case hex digits).
pub(crate) fn is_batch(text: &str) -> bool {
    text.len() == 16
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_ids_have_one_shape() {
        assert!(is_batch("0123456789abcdef"));
        assert!(
            !is_batch("0123456789ABCDEF") && !is_batch("0123") && !is_batch("../../etc/passwd")
        );
    }
}
