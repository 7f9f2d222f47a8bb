//! A strict, streaming `multipart/form-data` parser with hard caps, for uploads.
//!
//! Only `multipart/form-data; boundary=…` (1–70 characters of the RFC 2046 set) is accepted;
//! anything else is a `415`. The body must start with the first delimiter (no preamble), every
//! part header block is at most [`MultipartLimits::max_header_bytes`] with at most
//! [`MultipartLimits::max_headers`] headers (parsed by `httparse::parse_headers`), a part may not
//! itself be `multipart/*`, the part count is bounded, and the closing `--boundary--` is
//! required: a body that ends before it is a `400`, never a silently shorter upload. Part data is
//! streamed through a fixed buffer; only the caller decides how much of it to keep.
//!
//! Not here: `filename*` (RFC 5987) parameters, `Content-Transfer-Encoding` (browsers never send
//! it), and form fields other than what the caller asks for (the caller rejects extras).

use std::io::Read;

use crate::error::{Error, Result};

/// Caps of one multipart body. Every field has a documented default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MultipartLimits {
    /// Most parts in one body; one more is a `400`. Default 16.
    pub max_parts: usize,
    /// Largest part header block (without its blank line). Default 8 KiB.
    pub max_header_bytes: usize,
    /// Most headers in one part. Default 8.
    pub max_headers: usize,
}

impl Default for MultipartLimits {
    fn default() -> Self {
        MultipartLimits {
            max_parts: 16,
            max_header_bytes: 8 * 1024,
            max_headers: 8,
        }
    }
}

/// What a part's headers say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartHead {
    /// The form field name (`name=` of `Content-Disposition`).
    pub name: String,
    /// The file name as the client sent it (untrusted; display only), for file fields.
    pub filename: Option<String>,
    /// The part's `Content-Type`, when sent (a hint only).
    pub content_type: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the first delimiter.
    Start,
    /// After a delimiter line: a header block comes next.
    Headers,
    /// Inside a part's data.
    Data,
    /// Right after a part's data ended at a delimiter (`\r\n--boundary` consumed).
    AfterDelimiter,
    /// The closing delimiter was seen.
    Done,
}

/// Size of the read buffer; also bounds how much of a part is held at once.
const BUFFER: usize = 64 * 1024;

/// A multipart body being read part by part.
pub struct Multipart<R: Read> {
    reader: R,
    /// `\r\n--boundary`.
    delimiter: Vec<u8>,
    buf: Box<[u8]>,
    /// Bytes of `buf` already handed out.
    pos: usize,
    /// End of the bytes read into `buf`.
    end: usize,
    eof: bool,
    state: State,
    parts: usize,
    limits: MultipartLimits,
}

fn bad(reason: &str) -> Error {
    Error::bad_request(400, format!("malformed multipart body: {reason}"))
}

/// The boundary of a `multipart/form-data` content type: `415` for other types, `400` for a
/// missing or invalid boundary.
pub fn boundary(content_type: &str) -> Result<String> {
    let mut params = content_type.split(';');
    let media = params.next().unwrap_or("").trim();
    if !media.eq_ignore_ascii_case("multipart/form-data") {
        return Err(Error::bad_request(
            415,
            "send the file as multipart/form-data (or PUT the raw bytes to /api/images/NAME)",
        ));
    }
    let mut found = None;
    for param in params {
        let Some((key, value)) = param.split_once('=') else {
            continue;
        };
        if key.trim().eq_ignore_ascii_case("boundary") {
            if found.is_some() {
                return Err(bad("two boundary parameters"));
            }
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value);
            found = Some(value.to_string());
        }
    }
    let b = found.ok_or_else(|| bad("no boundary parameter"))?;
    // RFC 2046 §5.1.1: 1–70 characters of bchars, not ending in a space.
    let bchar = |c: char| c.is_ascii_alphanumeric() || "'()+_,-./:=? ".contains(c);
    if b.is_empty() || b.len() > 70 || !b.chars().all(bchar) || b.ends_with(' ') {
        return Err(bad(
            "the boundary must be 1-70 characters of the RFC 2046 set",
        ));
    }
    Ok(b)
}

impl<R: Read> Multipart<R> {
    /// Starts reading `body`, whose `Content-Type` header is `content_type`.
    pub fn new(content_type: &str, body: R, limits: MultipartLimits) -> Result<Multipart<R>> {
        let b = boundary(content_type)?;
        let mut delimiter = b"\r\n--".to_vec();
        delimiter.extend_from_slice(b.as_bytes());
        Ok(Multipart {
            reader: body,
            delimiter,
            buf: vec![0u8; BUFFER].into_boxed_slice(),
            pos: 0,
            end: 0,
            eof: false,
            state: State::Start,
            parts: 0,
            limits,
        })
    }

    fn available(&self) -> &[u8] {
        &self.buf[self.pos..self.end]
    }

    /// Reads more bytes into the buffer; `false` at end of input. The buffer is allocated
    /// once; unread bytes move to its front.
    fn fill(&mut self) -> Result<bool> {
        if self.eof {
            return Ok(false);
        }
        if self.pos > 0 {
            self.buf.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.pos = 0;
        }
        if self.end == self.buf.len() {
            // Callers never wait for more than a header block or a delimiter's worth.
            return Err(bad("a part's header block is too large"));
        }
        let n = loop {
            match self.reader.read(&mut self.buf[self.end..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                // The HTTP layer has recorded why (truncated, too slow, too big) and will
                // answer with that status whatever we return.
                Err(_) => return Err(bad("the body could not be read to its end")),
            }
        };
        self.end += n;
        if n == 0 {
            self.eof = true;
        }
        Ok(n > 0)
    }

    /// Makes at least `n` bytes available; `false` when the input ends first.
    fn need(&mut self, n: usize) -> Result<bool> {
        while self.available().len() < n {
            if !self.fill()? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// After a delimiter: `--` closes the body, CRLF starts a part.
    fn after_delimiter(&mut self) -> Result<()> {
        if !self.need(2)? {
            return Err(bad("the body ends without the closing delimiter"));
        }
        match &self.available()[..2] {
            b"--" => {
                self.pos += 2;
                self.state = State::Done;
            }
            b"\r\n" => {
                self.pos += 2;
                self.state = State::Headers;
            }
            _ => return Err(bad("unexpected bytes after a delimiter")),
        }
        Ok(())
    }

    /// The next part's headers, or `None` after the closing delimiter. Data of the current part
    /// not yet read is skipped.
    pub fn next_part(&mut self) -> Result<Option<PartHead>> {
        loop {
            match self.state {
                State::Done => return Ok(None),
                State::Start => {
                    let first = self.delimiter[2..].to_vec();
                    if !self.need(first.len())? || !self.available().starts_with(&first) {
                        return Err(bad("the body does not start with the boundary"));
                    }
                    self.pos += first.len();
                    self.state = State::AfterDelimiter;
                }
                State::AfterDelimiter => self.after_delimiter()?,
                State::Data => {
                    let mut sink = [0u8; 8192];
                    while self.read_data(&mut sink)? > 0 {}
                }
                State::Headers => return self.headers().map(Some),
            }
        }
    }

    fn headers(&mut self) -> Result<PartHead> {
        self.parts += 1;
        if self.parts > self.limits.max_parts {
            return Err(Error::bad_request(
                400,
                format!(
                    "too many parts in the multipart body (at most {})",
                    self.limits.max_parts
                ),
            ));
        }
        let end = loop {
            // A part with no headers at all starts with the blank line directly.
            if self.available().starts_with(b"\r\n") {
                return Err(bad("a part has no Content-Disposition header"));
            }
            if let Some(i) = find(self.available(), b"\r\n\r\n") {
                break i;
            }
            if self.available().len() > self.limits.max_header_bytes {
                return Err(bad("a part's header block is larger than 8 KiB"));
            }
            if !self.fill()? {
                return Err(bad("the body ends inside a part's headers"));
            }
        };
        if end > self.limits.max_header_bytes {
            return Err(bad("a part's header block is larger than 8 KiB"));
        }
        let block = self.available()[..end + 4].to_vec();
        self.pos += end + 4;
        let mut storage = vec![httparse::EMPTY_HEADER; self.limits.max_headers];
        let parsed = match httparse::parse_headers(&block, &mut storage) {
            Ok(httparse::Status::Complete((_, headers))) => headers,
            Ok(httparse::Status::Partial) => return Err(bad("a part's headers are incomplete")),
            Err(httparse::Error::TooManyHeaders) => {
                return Err(bad("a part has more than 8 headers"))
            }
            Err(_) => return Err(bad("a part's headers are malformed")),
        };
        let mut disposition = None;
        let mut content_type = None;
        for h in parsed.iter() {
            let value = String::from_utf8_lossy(h.value).into_owned();
            if h.name.eq_ignore_ascii_case("content-disposition") {
                if disposition.is_some() {
                    return Err(bad("a part has two Content-Disposition headers"));
                }
                disposition = Some(value);
            } else if h.name.eq_ignore_ascii_case("content-type") {
                content_type = Some(value.trim().to_string());
            }
        }
        if content_type
            .as_deref()
            .is_some_and(|t| t.to_ascii_lowercase().starts_with("multipart/"))
        {
            return Err(bad("nested multipart bodies are not accepted"));
        }
        let disposition =
            disposition.ok_or_else(|| bad("a part has no Content-Disposition header"))?;
        let (name, filename) = parse_disposition(&disposition)?;
        self.state = State::Data;
        Ok(PartHead {
            name,
            filename,
            content_type,
        })
    }

    /// Reads the current part's data into `out`; `0` at the end of the part.
    pub fn read_data(&mut self, out: &mut [u8]) -> Result<usize> {
        if self.state != State::Data || out.is_empty() {
            return Ok(0);
        }
        loop {
            let dlen = self.delimiter.len();
            let avail = self.available();
            if let Some(i) = find(avail, &self.delimiter) {
                if i == 0 {
                    self.pos += dlen;
                    self.state = State::AfterDelimiter;
                    return Ok(0);
                }
                let n = i.min(out.len());
                out[..n].copy_from_slice(&avail[..n]);
                self.pos += n;
                return Ok(n);
            }
            // Everything except a tail that could be the start of a delimiter is data.
            let safe = avail.len().saturating_sub(dlen - 1);
            if safe > 0 {
                let n = safe.min(out.len());
                out[..n].copy_from_slice(&avail[..n]);
                self.pos += n;
                return Ok(n);
            }
            if !self.fill()? {
                return Err(bad("the body ends inside a part"));
            }
        }
    }

    /// The current part's data, refusing more than `max` bytes with `too_big` (the caller's
    /// 413 in words). Never holds more than `max` bytes plus one read chunk.
    pub fn read_to_vec(&mut self, max: usize, too_big: impl FnOnce() -> Error) -> Result<Vec<u8>> {
        self.read_to_vec_sized(max, 0, too_big, |_| {})
    }

    /// As [`Multipart::read_to_vec`], allocating `capacity` (at most `max`) up front: give the
    /// body's declared length, so a large part lands in one buffer without regrowing (a
    /// doubling `Vec` briefly holds two copies). `each` sees every piece as it arrives (to
    /// hash while the rest is still on the wire).
    pub fn read_to_vec_sized(
        &mut self,
        max: usize,
        capacity: usize,
        too_big: impl FnOnce() -> Error,
        mut each: impl FnMut(&[u8]),
    ) -> Result<Vec<u8>> {
        let mut data = Vec::with_capacity(capacity.min(max));
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            let n = self.read_data(&mut chunk)?;
            if n == 0 {
                return Ok(data);
            }
            if data.len() + n > max {
                return Err(too_big());
            }
            each(&chunk[..n]);
            data.extend_from_slice(&chunk[..n]);
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    let first = needle[0];
    let mut i = 0;
    while i + needle.len() <= hay.len() {
        match hay[i..=hay.len() - needle.len()]
            .iter()
            .position(|&b| b == first)
        {
            None => return None,
            Some(off) => {
                i += off;
                if &hay[i..i + needle.len()] == needle {
                    return Some(i);
                }
                i += 1;
            }
        }
    }
    None
}

/// `form-data; name="x"; filename="y"` → name and filename.
fn parse_disposition(value: &str) -> Result<(String, Option<String>)> {
    let (kind, mut rest) = value.split_once(';').unwrap_or((value, ""));
    if !kind.trim().eq_ignore_ascii_case("form-data") {
        return Err(bad("a part is not form-data"));
    }
    let mut name = None;
    let mut filename = None;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ';']);
        if rest.is_empty() {
            break;
        }
        let eq = rest
            .find('=')
            .ok_or_else(|| bad("a disposition parameter has no value"))?;
        let key = rest[..eq].trim().to_ascii_lowercase();
        rest = rest[eq + 1..].trim_start();
        let value;
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut out = String::new();
            let mut chars = quoted.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, next)) = chars.next() {
                            out.push(next);
                        }
                    }
                    '"' => {
                        end = Some(i);
                        break;
                    }
                    c => out.push(c),
                }
            }
            let end = end.ok_or_else(|| bad("an unterminated quoted parameter"))?;
            value = out;
            rest = &quoted[end + 1..];
        } else {
            let end = rest.find(';').unwrap_or(rest.len());
            value = rest[..end].trim().to_string();
            rest = &rest[end..];
        }
        match key.as_str() {
            "name" if name.is_none() => name = Some(value),
            "filename" if filename.is_none() => filename = Some(value),
            "name" | "filename" => return Err(bad("a repeated disposition parameter")),
            _ => {}
        }
    }
    let name = name.ok_or_else(|| bad("a part has no field name"))?;
    Ok((name, filename))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CT: &str = "multipart/form-data; boundary=XyZ";

    fn body(parts: &[(&str, Option<&str>, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, filename, data) in parts {
            out.extend_from_slice(b"--XyZ\r\n");
            match filename {
                Some(f) => out.extend_from_slice(
                    format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: image/jpeg\r\n\r\n").as_bytes(),
                ),
                None => out.extend_from_slice(
                    format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
                ),
            }
            out.extend_from_slice(data);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"--XyZ--\r\n");
        out
    }

    /// Reads every part whole, in small pieces through a reader that returns 1–7 bytes.
    fn all(ct: &str, data: &[u8]) -> Result<Vec<(PartHead, Vec<u8>)>> {
        struct Drip<'a>(&'a [u8], usize);
        impl Read for Drip<'_> {
            fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
                self.1 = self.1 % 7 + 1;
                let n = self.1.min(out.len()).min(self.0.len());
                out[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut m = Multipart::new(ct, Drip(data, 0), MultipartLimits::default())?;
        let mut out = Vec::new();
        while let Some(head) = m.next_part()? {
            let data = m.read_to_vec(1 << 20, || Error::bad_request(413, "big"))?;
            out.push((head, data));
        }
        Ok(out)
    }

    fn status(r: Result<Vec<(PartHead, Vec<u8>)>>) -> u16 {
        r.unwrap_err().status()
    }

    #[test]
    fn reads_fields_and_files_split_anywhere() {
        let image = b"\xFF\xD8\xFF binary \r\n--Xy not a delimiter \r\n-";
        let data = body(&[
            ("csrf", None, b"tok"),
            ("file", Some("a \\\"b\\\".jpg"), image),
        ]);
        let parts = all(CT, &data).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].0.name, "csrf");
        assert_eq!(parts[0].1, b"tok");
        assert_eq!(parts[1].0.filename.as_deref(), Some("a \"b\".jpg"));
        assert_eq!(parts[1].0.content_type.as_deref(), Some("image/jpeg"));
        assert_eq!(parts[1].1, image);
    }

    #[test]
    fn boundaries_are_checked() {
        assert_eq!(
            boundary("multipart/form-data; boundary=\"a b\"").unwrap(),
            "a b"
        );
        let long = format!("multipart/form-data; boundary={}", "a".repeat(71));
        for (content_type, status) in [
            ("application/json", 415),
            ("text/plain; boundary=x", 415),
            ("multipart/mixed; boundary=x", 415),
            ("multipart/form-data", 400),
            ("multipart/form-data; boundary=", 400),
            (&long, 400),
            ("multipart/form-data; boundary=a{b", 400),
        ] {
            let refused = boundary(content_type).unwrap_err();
            assert_eq!(refused.status(), status, "{content_type}");
        }
        let ok = format!("multipart/form-data; boundary={}", "a".repeat(70));
        assert!(boundary(&ok).is_ok());
    }

    #[test]
    fn refuses_truncation_missing_close_and_preamble() {
        let data = body(&[("file", Some("a.jpg"), b"12345")]);
        // Every strict prefix is refused: nothing shorter than the whole body is accepted.
        for cut in 0..data.len() - 2 {
            assert_eq!(status(all(CT, &data[..cut])), 400, "cut at {cut}");
        }
        let mut pre = b"preamble\r\n".to_vec();
        pre.extend_from_slice(&data);
        assert_eq!(status(all(CT, &pre)), 400);
        let garbage = b"--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\nx\r\n--XyZ!!";
        assert_eq!(status(all(CT, garbage)), 400);
    }

    #[test]
    fn caps_parts_headers_and_nesting() {
        let many: Vec<(&str, Option<&str>, &[u8])> =
            (0..17).map(|_| ("f", None, &b"x"[..])).collect();
        assert_eq!(status(all(CT, &body(&many))), 400);
        let mut big = b"--XyZ\r\nContent-Disposition: form-data; name=a\r\n".to_vec();
        big.extend_from_slice(
            format!("X-Pad: {}\r\n\r\nx\r\n--XyZ--", "p".repeat(9000)).as_bytes(),
        );
        assert_eq!(status(all(CT, &big)), 400);
        let mut nine = b"--XyZ\r\nContent-Disposition: form-data; name=a\r\n".to_vec();
        for i in 0..8 {
            nine.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        nine.extend_from_slice(b"\r\nx\r\n--XyZ--");
        assert_eq!(status(all(CT, &nine)), 400);
        let nested = b"--XyZ\r\nContent-Disposition: form-data; name=a\r\nContent-Type: multipart/mixed; boundary=q\r\n\r\nx\r\n--XyZ--";
        assert_eq!(status(all(CT, nested)), 400);
        let no_name = b"--XyZ\r\nContent-Disposition: form-data\r\n\r\nx\r\n--XyZ--";
        assert_eq!(status(all(CT, no_name)), 400);
        let no_headers = b"--XyZ\r\n\r\nx\r\n--XyZ--";
        assert_eq!(status(all(CT, no_headers)), 400);
    }

    #[test]
    fn oversize_parts_stop_at_the_cap() {
        let data = body(&[("file", Some("a.jpg"), &[7u8; 5000])]);
        let mut m = Multipart::new(CT, &data[..], MultipartLimits::default()).unwrap();
        m.next_part().unwrap().unwrap();
        let err = m
            .read_to_vec(4999, || Error::bad_request(413, "big"))
            .unwrap_err();
        assert_eq!(err.status(), 413);
        let mut m = Multipart::new(CT, &data[..], MultipartLimits::default()).unwrap();
        m.next_part().unwrap().unwrap();
        assert_eq!(m.read_to_vec(5000, || unreachable!()).unwrap().len(), 5000);
        assert!(m.next_part().unwrap().is_none());
    }

    #[test]
    fn the_fuzz_entry_point_accepts_good_and_bad_bodies() {
        let good = body(&[("a", None, b"x"), ("file", Some("f.jpg"), &[0u8; 5000])]);
        crate::http::fuzz_multipart(&good);
        for cut in [0, 1, 7, 20, good.len() / 2] {
            crate::http::fuzz_multipart(&good[..cut]);
        }
        crate::http::fuzz_multipart(b"--XyZ\r\nContent-Disposition: form-data; name=\"\\");
        // Deterministic mutations of a valid body: flipped, dropped and duplicated bytes.
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        for _ in 0..3000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mut m = good[..200.min(good.len())].to_vec();
            m.extend_from_slice(&good[good.len() - 40..]);
            let at = (x as usize) % m.len();
            match x % 3 {
                0 => m[at] ^= (x >> 8) as u8,
                1 => {
                    m.remove(at);
                }
                _ => m.insert(at, m[at]),
            }
            crate::http::fuzz_multipart(&m);
        }
    }

    #[test]
    fn an_empty_part_and_unread_parts_are_fine() {
        let data = body(&[("a", None, b""), ("b", None, b"skipped"), ("c", None, b"z")]);
        let mut m = Multipart::new(CT, &data[..], MultipartLimits::default()).unwrap();
        assert_eq!(m.next_part().unwrap().unwrap().name, "a");
        assert_eq!(m.read_to_vec(10, || unreachable!()).unwrap(), b"");
        assert_eq!(m.next_part().unwrap().unwrap().name, "b");
        assert_eq!(m.next_part().unwrap().unwrap().name, "c");
        assert_eq!(m.read_to_vec(10, || unreachable!()).unwrap(), b"z");
        assert!(m.next_part().unwrap().is_none());
    }
}
