//! Deleting from the pages, with an undo window: a delete confirmed in the browser first writes
//! a delete marker per image, the image leaves the gallery at once, and the delete is carried
//! out by the server when the window closes, whatever the browser does meanwhile.
//!
//! A marker is one small document in the SODA collection (`kind: "pending-delete"`, the name it
//! has always had in stored data; keyed like an image's document but from
//! `pending-delete/{id}`) holding the image's id and name, the batch it was deleted with (one
//! form post) and the time the window closes. It has no `bucket_name`, so neither the
//! reconciler nor the gallery's searches mistake it for an analysis. Listings (`catalog.rs`) ask
//! for the markers of their page's ids in the same `$id` query that fetches the documents, so
//! hiding costs no extra call; reading a marker never changes anything.
//!
//! Removing the marker decides the outcome, exactly once: undo removes it before the window
//! closes (and is refused after), and a sweeper removes it after; SODA's delete says which of
//! them found it, and only the sweeper that found it deletes the image. Each instance keeps a
//! [`DeleteQueue`] of the markers it wrote and one sweeper thread that carries them out on time.
//! The same thread also looks, once per undo window (at most a minute apart), for markers whose
//! window has closed, whoever wrote them, and carries those out: so a marker whose instance died
//! is carried out by any instance still running, at most one window late (the image is hidden
//! meanwhile, so nobody sees it come back). When the image cannot be deleted (storage down) the
//! marker is written again and the delete retried a minute later.
//!
//! The data side (the marker, reading markers back, the queue) is `marker.rs`: listings read
//! markers from there without depending on this file, which deletes images through `catalog`.
//! Not here: the JSON API's deletes, which stay immediate (`api.rs`), and the delete itself
//! (`catalog::delete`).

pub(super) mod marker;

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use super::catalog;
use super::App;
use crate::error::Result;
use marker::{as_marker, bucket_tag, marker_key, now_ms, KIND, TICK};
pub(crate) use marker::{batch_markers, marker_of, DeleteMarker, DeleteQueue};

/// How long after a failed delete it is tried again.
const RETRY_AFTER: Duration = Duration::from_secs(60);

/// Longest time between two looks for markers nobody is carrying out.
const MAX_ORPHAN_SCAN: Duration = Duration::from_secs(60);

/// How often the sweeper looks for markers whose window closed without anyone carrying them
/// out: once per undo window, at least once a minute.
fn orphan_scan_every(undo_window: Duration) -> Duration {
    if undo_window.is_zero() {
        MAX_ORPHAN_SCAN
    } else {
        undo_window.clamp(TICK, MAX_ORPHAN_SCAN)
    }
}

/// Starts the thread that carries out this instance's deletes on time and, once per window,
/// any other marker whose window has closed. It holds the app weakly and ends within a second
/// of the app being dropped. The first look for orphans comes one window after the start.
pub(crate) fn spawn_sweeper(app: &Arc<App>) {
    let weak: Weak<App> = Arc::downgrade(app);
    let queue = Arc::clone(&app.deletes);
    let scan_every = orphan_scan_every(app.settings.undo_window);
    let started = std::thread::Builder::new()
        .name("undo-delete-sweeper".into())
        .spawn(move || {
            let mut next_scan = Instant::now() + scan_every;
            loop {
                let ids = queue.take_due();
                let Some(app) = weak.upgrade() else { return };
                for id in ids {
                    carry_out_queued(&app, &id);
                }
                if Instant::now() >= next_scan {
                    carry_out_orphans(&app);
                    next_scan = Instant::now() + scan_every;
                }
            }
        });
    if let Err(e) = started {
        log::error!(target: "webapp", "undo delete: no sweeper thread ({e}); deletes wait for another instance's sweeper");
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
        let marker = DeleteMarker::new(app, id, name, &batch, delete_at_ms);
        app.soda.put(
            &marker_key(app, id),
            &serde_json::to_value(&marker)?,
            app.deadline(),
        )?;
        app.deletes.push(at, id.clone());
    }
    Ok(batch)
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
    for marker in batch_markers(app, batch_id)? {
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

/// True for a batch id as [`schedule`] makes them (16 lower-case hex digits).
pub(crate) fn is_batch(text: &str) -> bool {
    text.len() == 16
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Carries out one of this instance's deletes whose time has come, if its marker is still
/// there (undo removes it).
fn carry_out_queued(app: &App, id: &str) {
    match marker_of(app, id) {
        Ok(Some(marker)) if marker.is_due() => carry_out(app, &marker),
        Ok(Some(marker)) => {
            // Another instance re-armed it; it is carried out at its own time.
            let left = Duration::from_millis(marker.delete_at_ms.saturating_sub(now_ms()));
            app.deletes.push(Instant::now() + left, id.to_string());
        }
        Ok(None) => {}
        Err(e) => {
            log::warn!(target: "webapp", "undo delete {id}: marker unreadable, retried later: {e}");
            app.deletes
                .push(Instant::now() + RETRY_AFTER, id.to_string());
        }
    }
}

/// Carries out every marker of this bucket whose window has closed, whichever instance wrote
/// it: those of an instance that died are otherwise never carried out. One query for all
/// markers (there are only as many as deletes waiting out their window).
fn carry_out_orphans(app: &App) {
    let filter = serde_json::json!({"kind": KIND, "bucket": bucket_tag(app)});
    let docs = match app.soda.query(&filter, app.deadline()) {
        Ok(docs) => docs.collect::<Result<Vec<_>>>(),
        Err(e) => Err(e),
    };
    match docs {
        Ok(docs) => {
            for marker in docs.iter().filter_map(|d| as_marker(app, &d.value)) {
                if marker.is_due() {
                    carry_out(app, &marker);
                }
            }
        }
        Err(e) => {
            log::warn!(target: "webapp", "undo delete: markers not read, looked for again later: {e}")
        }
    }
}

/// Deletes the image of a marker whose window has closed, if this sweeper is the one that
/// removes the marker; puts the marker back (and tries again later) when the image cannot be
/// deleted.
fn carry_out(app: &App, marker: &DeleteMarker) {
    let id = marker.id.as_str();
    match app.soda.delete(&marker_key(app, id), app.deadline()) {
        Ok(true) => {}
        // Undone, or carried out by another sweeper.
        Ok(false) => return,
        Err(e) => {
            log::warn!(target: "webapp", "undo delete {id}: marker not removed, retried later: {e}");
            app.deletes
                .push(Instant::now() + RETRY_AFTER, id.to_string());
            return;
        }
    }
    let deleted = catalog::delete(app, id);
    if deleted.object.is_none() {
        // The object is still there: put the marker back so the image stays hidden, and retry.
        let mut again = marker.clone();
        again.delete_at_ms = now_ms() + RETRY_AFTER.as_millis() as u64;
        let _ = serde_json::to_value(&again)
            .map_err(crate::error::Error::from)
            .and_then(|v| app.soda.put(&marker_key(app, id), &v, app.deadline()));
        app.deletes
            .push(Instant::now() + RETRY_AFTER, id.to_string());
    }
    log::info!(target: "webapp", "undo delete {id} carried out: {deleted:?}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orphans_are_looked_for_once_a_window_and_at_least_once_a_minute() {
        assert_eq!(
            orphan_scan_every(Duration::from_secs(30)),
            Duration::from_secs(30)
        );
        assert_eq!(orphan_scan_every(Duration::ZERO), MAX_ORPHAN_SCAN);
        assert_eq!(orphan_scan_every(Duration::from_secs(600)), MAX_ORPHAN_SCAN);
        assert_eq!(orphan_scan_every(Duration::from_millis(10)), TICK);
    }

    #[test]
    fn batch_ids_have_one_shape() {
        assert!(is_batch("0123456789abcdef"));
        assert!(
            !is_batch("0123456789ABCDEF") && !is_batch("0123") && !is_batch("../../etc/passwd")
        );
    }
}
