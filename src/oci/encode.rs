//! Percent-encoding for paths and query strings, one function for the wire and the signature.
//!
//! OCI signs the request target exactly as sent, so the same bytes must go to both. We encode
//! every byte except RFC 3986 unreserved characters (and `/` in object names), space as `%20`.

/// Percent-encodes `text`, keeping unreserved characters and, when `keep_slash`, `/`.
pub fn percent_encode(text: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for &byte in text.as_bytes() {
        let keep = byte.is_ascii_alphanumeric()
            || matches!(byte, b'-' | b'.' | b'_' | b'~')
            || (keep_slash && byte == b'/');
        if keep {
            out.push(byte as char);
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 15)]));
        }
    }
    out
}

/// An object name as a path segment: `/` kept (the service decodes before lookup).
pub fn object_path(name: &str) -> String {
    percent_encode(name, true)
}

/// One path segment or query value: `/` encoded too.
pub fn component(text: &str) -> String {
    percent_encode(text, false)
}

/// Builds `?k=v&k2=v2` from pairs in order, values encoded; empty when there are none.
pub fn query(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (key, value)) in pairs.iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        out.push_str(&component(key));
        out.push('=');
        out.push_str(&component(value));
    }
    out
}

/// Decodes `%XX` escapes; `None` for a malformed escape or bytes that are not UTF-8.
pub fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let value = u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
            out.push(value);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_names_keep_slashes_and_encode_the_rest() {
        assert_eq!(object_path("folder/photo 1.jpg"), "folder/photo%201.jpg");
        assert_eq!(object_path("a+b&c=d?#%"), "a%2Bb%26c%3Dd%3F%23%25");
        assert_eq!(object_path("caf\u{e9}.png"), "caf%C3%A9.png");
        assert_eq!(component("a/b"), "a%2Fb");
    }

    #[test]
    fn decoding_round_trips_and_rejects_bad_escapes() {
        for name in ["folder/photo 1.jpg", "\u{1F600} x/%41", "~._-"] {
            assert_eq!(percent_decode(&object_path(name)).as_deref(), Some(name));
        }
        assert_eq!(percent_decode("%4"), None);
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%FF"), None);
    }

    #[test]
    fn query_keeps_order() {
        assert_eq!(query(&[]), "");
        assert_eq!(
            query(&[("prefix", "up loads/"), ("limit", "2")]),
            "?prefix=up%20loads%2F&limit=2"
        );
    }
}
