//! gzip for text answers: `Accept-Encoding` negotiation (q-values, `q=0`, `*`), which types are
//! worth compressing, and the encoder (flate2 over the pure-Rust miniz_oxide backend).
//!
//! [`Response::compressed_for`](super::Response::compressed_for) applies it to one in-memory
//! answer; callers with fixed bodies (the web app's embedded CSS and JavaScript) compress once
//! at start and pick the variant with [`accepts_gzip`]. Not here: streamed bodies (images, which
//! are compressed already), brotli, deciding per route (the router does that).

use std::io::Write as _;

/// Bodies shorter than this are sent as they are: gzip's 18-byte frame and the CPU would buy
/// nothing below about one TCP packet.
pub const MIN_COMPRESS_BYTES: usize = 1024;

/// True when the `Accept-Encoding` value allows gzip: `gzip` (or `x-gzip`) with a non-zero
/// q-value, or else `*` with a non-zero q-value. No header, `identity` only, `gzip;q=0` or
/// `*;q=0` without `gzip` mean no.
pub fn accepts_gzip(accept_encoding: Option<&str>) -> bool {
    let Some(value) = accept_encoding else {
        return false;
    };
    let mut gzip = None;
    let mut any = None;
    for item in value.split(',') {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or("").trim();
        let mut q = 1.0f32;
        for param in parts {
            if let Some((name, v)) = param.split_once('=') {
                if name.trim().eq_ignore_ascii_case("q") {
                    // An unreadable q-value counts as 0: refuse rather than guess.
                    q = v.trim().parse::<f32>().unwrap_or(0.0);
                }
            }
        }
        if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            gzip = Some(q);
        } else if coding == "*" {
            any = Some(q);
        }
    }
    gzip.or(any).is_some_and(|q| q > 0.0)
}

/// True for the text types worth compressing: `text/*`, JSON, JavaScript, SVG. Images and
/// anything else are left alone (JPEG and PNG are compressed already).
pub fn compressible(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence.starts_with("text/")
        || essence == "application/json"
        || essence.ends_with("+json")
        || essence == "application/javascript"
        || essence == "image/svg+xml"
}

/// `bytes` as a gzip member at the default level (6: within a few per cent of level 9 on HTML,
/// several times faster).
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(bytes.len() / 3 + 32),
        flate2::Compression::default(),
    );
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(bytes);
    encoder.finish().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;

    #[test]
    fn negotiation_honours_q_values_and_the_wildcard() {
        assert!(accepts_gzip(Some("gzip, deflate, br, zstd")));
        assert!(accepts_gzip(Some("br;q=1.0, GZIP;q=0.5")));
        assert!(accepts_gzip(Some("x-gzip")));
        assert!(accepts_gzip(Some("*")));
        assert!(!accepts_gzip(None));
        assert!(!accepts_gzip(Some("")));
        assert!(!accepts_gzip(Some("identity")));
        assert!(!accepts_gzip(Some("br, deflate")));
        assert!(!accepts_gzip(Some("gzip;q=0")));
        assert!(!accepts_gzip(Some("gzip;q=0.000, *")), "gzip's own q wins");
        assert!(!accepts_gzip(Some("*;q=0")));
        assert!(!accepts_gzip(Some("gzip;q=nope")));
        assert!(accepts_gzip(Some("*;q=0.1, br")));
    }

    #[test]
    fn only_text_types_are_compressed() {
        for t in [
            "text/html; charset=utf-8",
            "text/css",
            "text/javascript; charset=utf-8",
            "application/json",
            "application/problem+json",
            "image/svg+xml",
        ] {
            assert!(compressible(t), "{t}");
        }
        for t in ["image/jpeg", "image/png", "application/octet-stream", ""] {
            assert!(!compressible(t), "{t}");
        }
    }

    #[test]
    fn gzip_round_trips() {
        let text = "<li class=\"card\">a card</li>\n".repeat(200);
        let packed = gzip(text.as_bytes());
        assert!(packed.len() * 10 < text.len(), "{}", packed.len());
        let mut back = String::new();
        flate2::read::GzDecoder::new(&packed[..])
            .read_to_string(&mut back)
            .unwrap();
        assert_eq!(back, text);
    }
}
