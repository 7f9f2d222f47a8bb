//! Where Vision will not read an `OBJECT_STORAGE` image with the function's grant, the image is
//! sent inline instead (issue 24).
//!
//! Vision reads object sources with the caller's rights, and Oracle's Vision policy page asks
//! for broader Object Storage access than the bucket-scoped `read objects` our policy gives the
//! function (oci-iam.md §5): unknown until tried. When Vision answers 404 to an object source
//! for an object the function can read, the function reads it (at most `MAX_IMAGE_BYTES`,
//! within Vision's 5 MB inline limit) and sends the bytes; once that worked, every later image
//! of this instance goes inline directly, said once in the log. The cost: each image crosses
//! the function's network twice more (in, and out base64) instead of Vision reading it itself;
//! `webapp doctor` names the grant that removes the need.

use std::io::Read as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::error::{Error, Result};
use crate::oci::object_storage::{Bucket, ObjectStorage};
use crate::oci::vision::ImageSource;

/// Whether this instance sends images inline.
#[derive(Debug, Default)]
pub(crate) struct InlineFallback {
    on: AtomicBool,
}

impl InlineFallback {
    /// True once an inline analysis succeeded after a refusal.
    pub(crate) fn is_on(&self) -> bool {
        self.on.load(Ordering::Relaxed)
    }

    /// Whether `error` is Vision refusing an object source (the case this falls back from).
    pub(crate) fn is_refusal(source: &ImageSource, error: &Error) -> bool {
        matches!(source, ImageSource::ObjectStorage { .. })
            && error.service_error().is_some_and(|e| e.status == 404)
    }

    /// Remembers that inline worked, saying so once.
    pub(crate) fn worked(&self) {
        if !self.on.swap(true, Ordering::Relaxed) {
            log::warn!(target: "analysis", "Vision refused to read an OBJECT_STORAGE image with \
                this function's grant but analysed it inline: images are sent inline from now \
                on (read by the function, sent base64); `webapp doctor` names the grant that \
                lets Vision read them itself");
        }
    }

    /// The object's bytes as an inline source; `None` when it is gone.
    pub(crate) fn read(
        storage: &ObjectStorage,
        bucket: &Bucket,
        name: &str,
        limit: u64,
        deadline: Instant,
    ) -> Result<Option<ImageSource>> {
        let Some(mut download) = storage.get_start(bucket, name, limit, deadline)? else {
            return Ok(None);
        };
        let mut bytes = Vec::new();
        download
            .body
            .read_to_end(&mut bytes)
            .map_err(|e| Error::Transport {
                service: "objectstorage",
                detail: format!("reading the image for Vision: {e}"),
            })?;
        Ok(Some(ImageSource::Inline(bytes)))
    }
}
