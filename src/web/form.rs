//! `application/x-www-form-urlencoded` bodies and query strings, decoded into pairs.
//!
//! Malformed escapes and non-UTF-8 values become a `400`, never a guess. Not here: multipart
//! (see `http::Multipart`).

use crate::error::{Error, Result};
use crate::oci::encode::percent_decode;

/// Decoded `key=value` pairs in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Pairs(Vec<(String, String)>);

impl Pairs {
    /// Parses `a=1&b=two+words`.
    pub(crate) fn parse(text: &str) -> Result<Pairs> {
        let mut out = Vec::new();
        for piece in text.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = piece.split_once('=').unwrap_or((piece, ""));
            let decode = |s: &str| {
                percent_decode(&s.replace('+', " "))
                    .ok_or_else(|| Error::bad_request(400, "malformed form or query encoding"))
            };
            out.push((decode(k)?, decode(v)?));
        }
        Ok(Pairs(out))
    }

    /// The query string of a request (empty when there is none).
    pub(crate) fn query(query: Option<&str>) -> Result<Pairs> {
        Pairs::parse(query.unwrap_or(""))
    }

    /// The first value of `key`, when present and non-empty.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, v)| k == key && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `key`.
    pub(crate) fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_pairs_plus_and_escapes() {
        let p = Pairs::parse("a=1&b=two+words&c=%3C%22%E6%97%A5&a=2&empty=&flag").unwrap();
        assert_eq!(p.get("a"), Some("1"));
        assert_eq!(p.all("a").collect::<Vec<_>>(), ["1", "2"]);
        assert_eq!(p.get("b"), Some("two words"));
        assert_eq!(p.get("c"), Some("<\"日"));
        assert_eq!(p.get("empty"), None);
        assert_eq!(p.get("flag"), None);
        assert_eq!(Pairs::parse("a=%zz").unwrap_err().status(), 400);
        assert_eq!(Pairs::parse("a=%FF").unwrap_err().status(), 400);
    }
}
