//! Renditions: the thumbnail and preview of an image, made and stored beside it. The upload
//! makes them while the original travels to storage; the reconciler remakes those an image
//! lacks from the stored original. Both go through [`make`] (which waits for one of the app's
//! few decode slots, so memory stays bounded) and [`store`].
//!
//! Not here: decoding and encoding (`thumbs.rs`), serving them (`pages.rs`), deciding which
//! images lack them (`reconcile.rs`).

use std::io::Cursor;
use std::time::{Duration, Instant};

use super::thumbs::{self, Renditions};
use super::App;
use crate::document::{object_name, preview_name, thumb_name};
use crate::error::Result;
use crate::image_info::{self, ImageKind};
use crate::oci::object_storage::Condition;

/// The thumbnail and preview the app makes for an uploaded JPEG or PNG, with the reason when
/// they are the placeholder; `None` for other bytes. Public for the benchmarks
/// (examples/gallery-bench.rs), which time it apart from the upload around it.
pub fn renditions(bytes: &[u8]) -> Option<(Vec<u8>, Vec<u8>, Option<String>)> {
    let kind = image_info::sniff(bytes)?;
    let made = thumbs::make(bytes, kind);
    Some((made.thumb, made.preview, made.placeholder))
}

/// How long an upload waits for a decode slot before leaving its renditions to the reconciler.
const DECODE_WAIT: Duration = Duration::from_secs(10);

/// The thumbnail and preview of `bytes` (of type `kind`), made in one of the app's decode slots;
/// `None` when no slot came free in time.
pub(crate) fn make(
    app: &App,
    request_id: &str,
    bytes: &[u8],
    kind: ImageKind,
) -> Option<Renditions> {
    let Some(_slot) = app.decoders.acquire(DECODE_WAIT) else {
        log::warn!(target: "webapp", "{request_id} no decode slot within {DECODE_WAIT:?}: the reconciler will make the thumbnails");
        return None;
    };
    let made = Instant::now();
    let renditions = thumbs::make(bytes, kind);
    log::debug!(
        target: "webapp",
        "{request_id} renditions made in {:?} (thumbnail {} B, preview {} B)",
        made.elapsed(),
        renditions.thumb.len(),
        renditions.preview.len()
    );
    if let Some(why) = &renditions.placeholder {
        log::info!(target: "webapp", "{request_id} placeholder renditions: {why}");
    }
    Some(renditions)
}

/// Stores both renditions of `id`; failures are logged (the reconciler makes missing ones).
pub(crate) fn store(
    app: &App,
    request_id: &str,
    id: &str,
    renditions: &Renditions,
    deadline: Instant,
) -> bool {
    let mut all = true;
    for (name, bytes) in [
        (thumb_name(id), &renditions.thumb),
        (preview_name(id), &renditions.preview),
    ] {
        let put = app.storage.put(
            &app.bucket,
            &name,
            &mut Cursor::new(&bytes[..]),
            bytes.len() as u64,
            "image/jpeg",
            &[],
            Condition::None,
            deadline,
        );
        if let Err(e) = put {
            log::warn!(target: "webapp", "{request_id} {name} not stored (the reconciler will retry): {e}");
            all = false;
        }
    }
    all
}

/// Reads the stored image `id` and stores both its renditions (for the reconciler); `false` when
/// it is gone, not an image, or no decode slot came free.
pub(crate) fn remake(app: &App, id: &str, deadline: Instant) -> Result<bool> {
    use std::io::Read;
    let download = match app.storage.get(
        &app.bucket,
        &object_name(id),
        None,
        app.settings.max_upload_bytes.max(image_info::MAX_BYTES),
        deadline,
    ) {
        Ok(d) => d,
        Err(e) if e.service_error().is_some_and(|s| s.status == 404) => return Ok(false),
        Err(e) => return Err(e),
    };
    let mut bytes = Vec::with_capacity(download.info.content_length as usize);
    let mut body = download.body;
    body.read_to_end(&mut bytes)?;
    let Some(kind) = image_info::sniff(&bytes) else {
        return Ok(false);
    };
    let Some(made) = make(app, "reconciler", &bytes, kind) else {
        return Ok(false);
    };
    Ok(store(app, "reconciler", id, &made, deadline))
}
