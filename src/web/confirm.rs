//! Whether a failed image PUT stored the image all the same.
//!
//! An upload is a `PutObject` with `if-none-match: *`. When its answer is lost (the connection
//! drops after Object Storage stored the object), the transport sends it again and the retry is
//! refused with 412, because the first attempt succeeded: the call fails although the image is
//! stored. Before anything is withdrawn, the object is looked up, and it counts as this upload's
//! only when its metadata carries this upload's request id and its size is this upload's; an
//! object stored by someone else under the same name (impossible with random ids, but cheap to
//! rule out) does not. (The content hash is known only once the body has passed through, after
//! the metadata was sent, so it is not on the object: it is in the document.)

use std::time::Instant;

use super::App;
use crate::document::meta;

/// True when the object `name` exists, its metadata names `request_id` and it holds `size`
/// bytes.
/// A failed lookup counts as "not stored": the caller then withdraws, as before this check.
pub(super) fn stored_by_this_upload(
    app: &App,
    name: &str,
    request_id: &str,
    size: u64,
    deadline: Instant,
) -> bool {
    let info = match app.storage.head(&app.bucket, name, deadline) {
        Ok(Some(info)) => info,
        Ok(None) => return false,
        Err(e) => {
            log::warn!(target: "webapp", "{request_id} {name}: not looked up after a failed PUT: {e}");
            return false;
        }
    };
    let value = |key: &str| {
        info.metadata
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    };
    value(meta::REQUEST_ID) == Some(request_id) && info.content_length == size
}
