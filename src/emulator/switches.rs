//! Switches that make the emulator behave as the cloud might where no Oracle source says how it
//! behaves (issue 24; docs/DEPLOY.md, "First step after apply"), so that `webapp doctor`'s
//! detection and the app's fallbacks are tested here rather than discovered in a deployment.
//!
//! Each switch is off by default (the emulator then behaves as the documents we have say):
//! - `ords-ignores-conditions`: ORDS stores a document `PUT` whatever its `If-Match` or
//!   `If-None-Match` say (never 412).
//! - `ords-no-etag`: a document `PUT` is answered without an `ETag` header (a `GET` still has
//!   one).
//! - `vision-broad-read`: Vision reads an `OBJECT_STORAGE` image only for a caller allowed to
//!   read objects without a bucket condition (what Oracle's Vision policy page asks for),
//!   refusing the bucket-scoped grant our policy gives the function.
//! - `lose-put-replies:N`: the next N object `PUT`s are stored and then answered by closing
//!   the connection, as when a reply is lost on the way back.
//!
//! Resource principal 2.1.x needs no switch here: the emulator always serves the token
//! exchange (`auth.rs`); a test picks the version by the environment it gives the process.

use crate::error::{Error, Result};

/// Which unconfirmed behaviours are in force.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Switches {
    /// ORDS ignores `If-Match` and `If-None-Match` on document writes.
    pub ords_ignores_conditions: bool,
    /// ORDS answers document writes without an `ETag` header.
    pub ords_no_etag: bool,
    /// Vision reads objects only with an object-read grant not limited to the bucket.
    pub vision_broad_read: bool,
    /// How many of the next object `PUT`s lose their reply after storing.
    pub lose_put_replies: u32,
}

impl Switches {
    /// Parses `name,name,lose-put-replies:N` (the names above; empty is all off).
    pub fn parse(spec: &str) -> Result<Switches> {
        let mut switches = Switches::default();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part.split_once(':') {
                None if part == "ords-ignores-conditions" => {
                    switches.ords_ignores_conditions = true
                }
                None if part == "ords-no-etag" => switches.ords_no_etag = true,
                None if part == "vision-broad-read" => switches.vision_broad_read = true,
                Some(("lose-put-replies", n)) => {
                    switches.lose_put_replies = n.trim().parse().map_err(|_| {
                        Error::Config(format!("switch {part:?}: expected lose-put-replies:N"))
                    })?
                }
                _ => {
                    return Err(Error::Config(format!(
                        "unknown emulator switch {part:?}: the switches are \
                         ords-ignores-conditions, ords-no-etag, vision-broad-read, \
                         lose-put-replies:N"
                    )))
                }
            }
        }
        Ok(switches)
    }
}

/// Headers ORDS would not act on under `switches`: the write conditions.
pub(crate) fn ignored_request_header(switches: &Switches, method: &str, name: &str) -> bool {
    switches.ords_ignores_conditions
        && method == "PUT"
        && (name.eq_ignore_ascii_case("if-match") || name.eq_ignore_ascii_case("if-none-match"))
}

/// Whether the answer to a document `PUT` loses its `ETag` header under `switches`.
pub(crate) fn drops_put_etag(switches: &Switches, method: &str) -> bool {
    switches.ords_no_etag && method == "PUT"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn switches_parse_by_name_and_refuse_unknown_ones() {
        let s =
            Switches::parse("ords-ignores-conditions, ords-no-etag,lose-put-replies:3").unwrap();
        assert!(s.ords_ignores_conditions && s.ords_no_etag && !s.vision_broad_read);
        assert_eq!(s.lose_put_replies, 3);
        assert_eq!(Switches::parse("").unwrap(), Switches::default());
        let err = Switches::parse("ords-flaky").unwrap_err().to_string();
        assert!(err.contains("ords-ignores-conditions"), "{err}");
        assert!(Switches::parse("lose-put-replies:x").is_err());
        assert!(ignored_request_header(&s, "PUT", "If-Match"));
        assert!(!ignored_request_header(&s, "GET", "if-none-match"));
        assert!(!ignored_request_header(
            &Switches::default(),
            "PUT",
            "if-match"
        ));
    }
}
