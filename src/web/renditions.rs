//! Renditions: the thumbnail and preview of an image, made and stored beside it. The upload
//! makes them from its spool while the bytes arrive; the reconciler remakes those an image
//! lacks from the stored original, streamed. Both go through [`make`] (which takes one of the
//! app's few decode slots, so memory stays bounded) and [`store`].
//!
//! Not here: decoding and encoding (`picture.rs`), serving them (`pages.rs`), deciding which
//! images lack them (`reconcile.rs`).

use std::io::{BufRead, BufReader, Cursor, Read};
use std::time::{Duration, Instant};

use super::App;
use crate::document::{object_name, preview_name, thumb_name};
use crate::error::Result;
use crate::image_info::{self, ImageKind};
use crate::oci::object_storage::Condition;
use crate::picture::{self, Outcome, Renditions};

/// The thumbnail and preview the app makes for an uploaded JPEG or PNG, with the reason when
/// they are the placeholder; `None` for other bytes. Public for the benchmarks
/// (examples/gallery-bench.rs), which time it apart from the upload around it.
pub fn renditions(bytes: &[u8]) -> Option<(Vec<u8>, Vec<u8>, Option<String>)> {
    let kind = image_info::sniff(bytes)?;
    let made = picture::make(bytes, kind).into_renditions();
    Some((made.thumb, made.preview, made.placeholder))
}

/// How long an image waits for a decode slot before leaving its renditions to the reconciler.
pub(crate) const DECODE_WAIT: Duration = Duration::from_secs(10);

/// The thumbnail and preview of the image read from `source` (of type `kind`), made in one of
/// the app's decode slots; `None` when no slot came free within `wait`.
pub(crate) fn make(
    app: &App,
    request_id: &str,
    source: impl Read,
    kind: ImageKind,
    wait: Duration,
) -> Option<Outcome> {
    make_telling(app, request_id, source, kind, wait, |_| {})
}

/// As [`make`], telling `decoded` once the data is decoded (`picture::make_telling`).
pub(crate) fn make_telling(
    app: &App,
    request_id: &str,
    source: impl Read,
    kind: ImageKind,
    wait: Duration,
    decoded: impl FnOnce(Option<String>),
) -> Option<Outcome> {
    let Some(_slot) = app.decoders.acquire(wait) else {
        if !wait.is_zero() {
            log::warn!(target: "webapp", "{request_id} no decode slot within {wait:?}: the reconciler will make the thumbnails");
        }
        return None;
    };
    let made = Instant::now();
    let outcome = picture::make_telling(source, kind, decoded);
    match &outcome {
        Outcome::Made(r) => {
            log::debug!(
                target: "webapp",
                "{request_id} renditions made in {:?} (thumbnail {} B, preview {} B)",
                made.elapsed(),
                r.thumb.len(),
                r.preview.len()
            );
            if let Some(why) = &r.placeholder {
                log::info!(target: "webapp", "{request_id} placeholder renditions: {why}");
            }
        }
        Outcome::Damaged(why) => log::info!(target: "webapp", "{request_id} not decoded: {why}"),
    }
    Some(outcome)
}

/// Stores both renditions of `id`, side by side; failures are logged (the reconciler makes
/// missing ones).
pub(crate) fn store(
    app: &App,
    request_id: &str,
    id: &str,
    renditions: &Renditions,
    deadline: Instant,
) -> bool {
    let put = |name: String, bytes: &[u8]| {
        let put = app.storage.put(
            &app.bucket,
            &name,
            &mut Cursor::new(bytes),
            bytes.len() as u64,
            "image/jpeg",
            &[],
            Condition::None,
            deadline,
        );
        if let Err(e) = &put {
            log::warn!(target: "webapp", "{request_id} {name} not stored (the reconciler will retry): {e}");
        }
        put.is_ok()
    };
    std::thread::scope(|scope| {
        let thumb = scope.spawn(|| put(thumb_name(id), &renditions.thumb));
        let preview = put(preview_name(id), &renditions.preview);
        thumb.join().unwrap_or(false) && preview
    })
}

/// Reads the stored image `id` as a stream and stores both its renditions (for the
/// reconciler); `false` when it is gone, not an image, or no decode slot came free.
pub(crate) fn remake(app: &App, id: &str, deadline: Instant) -> Result<bool> {
    let download = match app.storage.get(
        &app.bucket,
        &object_name(id),
        None,
        // Streamed into the decoder, whose pixel limits bound the memory: any size will do.
        u64::MAX,
        deadline,
    ) {
        Ok(d) => d,
        Err(e) if e.service_error().is_some_and(|s| s.status == 404) => return Ok(false),
        Err(e) => return Err(e),
    };
    let mut body = BufReader::new(download.body);
    let Some(kind) = image_info::sniff(body.fill_buf()?) else {
        return Ok(false);
    };
    let Some(made) = make(app, "reconciler", body, kind, DECODE_WAIT) else {
        return Ok(false);
    };
    Ok(store(
        app,
        "reconciler",
        id,
        &made.into_renditions(),
        deadline,
    ))
}
