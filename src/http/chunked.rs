//! Incremental decoder for `Transfer-Encoding: chunked` request bodies (RFC 9112 §7.1).
//!
//! A pure byte-at-a-time state machine: it is fed whatever input arrived, writes body bytes into
//! the caller's buffer and stops exactly after the final CRLF, so bytes after the body are left
//! for the next request. Size lines are bounded and hex-only; chunk extensions are skipped;
//! trailers are bounded and discarded, never parsed as headers or as a request. Line ends must be
//! CRLF (a bare LF is a known smuggling lever between parsers). It does no I/O and keeps no body.

use std::fmt;

/// Why a chunked body was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChunkError {
    /// A size line that is not 1–16 hex digits, or whitespace not followed by `;`.
    BadSize,
    /// A size line (with extensions) longer than the limit.
    LineTooLong,
    /// A line end that is not CRLF, or chunk data not followed by CRLF.
    BadLineEnd,
    /// Trailer section longer than the limit.
    TrailersTooLong,
    /// The declared chunk sizes add up to more than the body limit.
    TooLarge,
}

impl ChunkError {
    /// The status to answer: 413 for an over-size body, 400 otherwise.
    pub(crate) fn status(self) -> u16 {
        match self {
            ChunkError::TooLarge => 413,
            _ => 400,
        }
    }
}

impl fmt::Display for ChunkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ChunkError::BadSize => "bad chunk size",
            ChunkError::LineTooLong => "chunk size line too long",
            ChunkError::BadLineEnd => "bad line end in chunked body",
            ChunkError::TrailersTooLong => "trailers too long",
            ChunkError::TooLarge => "body too large",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Size,
    SizeWs,
    Ext,
    SizeLf,
    Data,
    DataCr,
    DataLf,
    TrailerStart,
    Trailer,
    TrailerLf,
    FinalLf,
    Done,
}

/// The decoder's state between calls.
#[derive(Debug, Clone)]
pub(crate) struct ChunkedDecoder {
    state: State,
    size: u64,
    digits: u32,
    line_len: usize,
    remaining: u64,
    total: u64,
    trailer_len: usize,
    max_total: u64,
    max_line: usize,
    max_trailer: usize,
}

impl ChunkedDecoder {
    pub(crate) fn new(max_total: u64, max_line: usize, max_trailer: usize) -> ChunkedDecoder {
        ChunkedDecoder {
            state: State::Size,
            size: 0,
            digits: 0,
            line_len: 0,
            remaining: 0,
            total: 0,
            trailer_len: 0,
            max_total,
            max_line,
            max_trailer,
        }
    }

    /// True once the last chunk and the trailer section have been consumed.
    pub(crate) fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Consumes from `input`, writing body bytes to `out`. Returns (bytes consumed, bytes
    /// written). Stops when the input is used up, when `out` is full and data is next, or when
    /// the body is complete.
    pub(crate) fn decode(
        &mut self,
        input: &[u8],
        out: &mut [u8],
    ) -> Result<(usize, usize), ChunkError> {
        let (mut i, mut o) = (0usize, 0usize);
        while i < input.len() && self.state != State::Done {
            if self.state == State::Data {
                let n = (input.len() - i)
                    .min(out.len() - o)
                    .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
                if n == 0 {
                    break;
                }
                out[o..o + n].copy_from_slice(&input[i..i + n]);
                i += n;
                o += n;
                self.remaining -= n as u64;
                if self.remaining == 0 {
                    self.state = State::DataCr;
                }
                continue;
            }
            self.step(input[i])?;
            i += 1;
        }
        Ok((i, o))
    }

    fn step(&mut self, b: u8) -> Result<(), ChunkError> {
        match self.state {
            State::Size | State::SizeWs | State::Ext | State::SizeLf => {
                self.line_len += 1;
                if self.line_len > self.max_line {
                    return Err(ChunkError::LineTooLong);
                }
            }
            State::TrailerStart | State::Trailer | State::TrailerLf | State::FinalLf => {
                self.trailer_len += 1;
                if self.trailer_len > self.max_trailer {
                    return Err(ChunkError::TrailersTooLong);
                }
            }
            _ => {}
        }
        self.state = match (self.state, b) {
            (State::Size, b) if b.is_ascii_hexdigit() => {
                if self.digits == 16 {
                    return Err(ChunkError::BadSize);
                }
                self.digits += 1;
                // 16 hex digits fit in u64, so this cannot overflow.
                self.size = (self.size << 4) | u64::from(hex_value(b));
                State::Size
            }
            (State::Size, b' ' | b'\t') if self.digits > 0 => State::SizeWs,
            (State::Size, b';') if self.digits > 0 => State::Ext,
            (State::Size, b'\r') if self.digits > 0 => State::SizeLf,
            (State::Size, b'\n') => return Err(ChunkError::BadLineEnd),
            (State::Size, _) => return Err(ChunkError::BadSize),
            (State::SizeWs, b' ' | b'\t') => State::SizeWs,
            (State::SizeWs, b';') => State::Ext,
            (State::SizeWs, _) => return Err(ChunkError::BadSize),
            (State::Ext, b'\r') => State::SizeLf,
            (State::Ext, b'\n') => return Err(ChunkError::BadLineEnd),
            (State::Ext, b) if b != b'\t' && (b < 0x20 || b == 0x7f) => {
                return Err(ChunkError::BadSize)
            }
            (State::Ext, _) => State::Ext,
            (State::SizeLf, b'\n') => self.end_size_line()?,
            (State::SizeLf, _) => return Err(ChunkError::BadLineEnd),
            (State::DataCr, b'\r') => State::DataLf,
            (State::DataLf, b'\n') => {
                self.line_len = 0;
                self.size = 0;
                self.digits = 0;
                State::Size
            }
            (State::DataCr | State::DataLf, _) => return Err(ChunkError::BadLineEnd),
            (State::TrailerStart, b'\r') => State::FinalLf,
            (State::TrailerStart | State::Trailer | State::FinalLf, b'\n') => {
                if self.state == State::FinalLf {
                    State::Done
                } else {
                    return Err(ChunkError::BadLineEnd);
                }
            }
            (State::Trailer, b'\r') => State::TrailerLf,
            (State::TrailerStart | State::Trailer, _) => State::Trailer,
            (State::TrailerLf, b'\n') => State::TrailerStart,
            (State::TrailerLf | State::FinalLf, _) => return Err(ChunkError::BadLineEnd),
            (State::Data | State::Done, _) => unreachable!("handled by decode"),
        };
        Ok(())
    }

    fn end_size_line(&mut self) -> Result<State, ChunkError> {
        if self.size == 0 {
            return Ok(State::TrailerStart);
        }
        self.total = self
            .total
            .checked_add(self.size)
            .ok_or(ChunkError::TooLarge)?;
        if self.total > self.max_total {
            return Err(ChunkError::TooLarge);
        }
        self.remaining = self.size;
        Ok(State::Data)
    }
}

fn hex_value(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        _ => b - b'A' + 10,
    }
}

/// Decodes `input` in pieces of at most `step` bytes into a small output buffer; returns the body
/// and how many input bytes belonged to it. For tests and the fuzz target.
#[cfg(any(test, fuzzing))]
pub(crate) fn decode_all(
    input: &[u8],
    step: usize,
    out_size: usize,
) -> Result<Option<(Vec<u8>, usize)>, ChunkError> {
    let mut d = ChunkedDecoder::new(1 << 20, 1024, 8 * 1024);
    let (mut body, mut pos) = (Vec::new(), 0usize);
    let mut out = vec![0u8; out_size.max(1)];
    while !d.is_done() && pos < input.len() {
        let end = (pos + step.max(1)).min(input.len());
        let (c, o) = d.decode(&input[pos..end], &mut out)?;
        body.extend_from_slice(&out[..o]);
        pos += c;
        if c == 0 && o == 0 {
            return Err(ChunkError::BadLineEnd); // no progress: cannot happen, guard anyway
        }
    }
    Ok(d.is_done().then_some((body, pos)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(input: &[u8]) -> Result<Option<(Vec<u8>, usize)>, ChunkError> {
        decode_all(input, usize::MAX, 4096)
    }

    #[test]
    fn decodes_chunks_and_stops_after_the_body() {
        let wire = b"4\r\nWiki\r\n5;ext=1\r\npedia\r\n0\r\n\r\nGET / HTTP/1.1\r\n";
        let (body, used) = all(wire).unwrap().unwrap();
        assert_eq!(body, b"Wikipedia");
        assert_eq!(&wire[used..], b"GET / HTTP/1.1\r\n");
    }

    #[test]
    fn byte_by_byte_and_tiny_output_give_the_same_body() {
        let wire = b"a\r\n0123456789\r\nA \t;x\r\nabcdefghij\r\n0\r\nX-T: 1\r\n\r\n";
        let whole = all(wire).unwrap().unwrap();
        assert_eq!(whole.0, b"0123456789abcdefghij");
        assert_eq!(decode_all(wire, 1, 1).unwrap().unwrap(), whole);
        assert_eq!(decode_all(wire, 3, 2).unwrap().unwrap(), whole);
    }

    #[test]
    fn trailers_are_discarded_never_returned() {
        let wire = b"3\r\nabc\r\n0\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\nNEXT";
        let (body, used) = all(wire).unwrap().unwrap();
        assert_eq!(body, b"abc");
        assert_eq!(&wire[used..], b"NEXT");
    }

    #[test]
    fn refuses_bad_sizes() {
        for wire in [
            &b"x\r\n"[..],
            b"\r\n",
            b"-1\r\n",
            b"+1\r\n",
            b"0x1\r\n",
            b"1 \r\nx\r\n",
            b"11111111111111111\r\n",
            b";ext\r\n",
        ] {
            assert_eq!(all(wire), Err(ChunkError::BadSize), "{wire:?}");
        }
    }

    #[test]
    fn refuses_bare_lf_and_missing_crlf_after_data() {
        assert_eq!(all(b"3\nabc\r\n0\r\n\r\n"), Err(ChunkError::BadLineEnd));
        assert_eq!(all(b"3\r\nabcX\r\n"), Err(ChunkError::BadLineEnd));
        assert_eq!(all(b"3\r\nabc\r\n0\r\n\n"), Err(ChunkError::BadLineEnd));
        assert_eq!(all(b"0\r\nX: y\n\r\n"), Err(ChunkError::BadLineEnd));
    }

    #[test]
    fn bounds_size_line_trailers_and_total() {
        let mut long = b"1;".to_vec();
        long.extend(std::iter::repeat_n(b'a', 2000));
        assert_eq!(all(&long), Err(ChunkError::LineTooLong));
        let mut trailers = b"0\r\n".to_vec();
        for _ in 0..1000 {
            trailers.extend_from_slice(b"X-Pad: aaaaaaaa\r\n");
        }
        assert_eq!(all(&trailers), Err(ChunkError::TrailersTooLong));
        assert_eq!(all(b"fffffffffffffff\r\n"), Err(ChunkError::TooLarge));
        let mut d = ChunkedDecoder::new(10, 1024, 1024);
        let mut out = [0u8; 64];
        assert!(d.decode(b"6\r\nabcdef\r\n", &mut out).is_ok());
        assert_eq!(d.decode(b"5\r\n", &mut out), Err(ChunkError::TooLarge));
    }

    #[test]
    fn truncated_input_is_not_done() {
        assert_eq!(all(b"5\r\nab").unwrap(), None);
        assert_eq!(all(b"5\r\nabcde\r\n").unwrap(), None);
        assert_eq!(all(b"0\r\n").unwrap(), None);
    }
}
