//! The few EXIF fields the app uses, read from the TIFF structure a JPEG's `APP1 Exif` segment
//! or a PNG's `eXIf` chunk holds: the orientation (how to turn the stored pixels upright), when
//! the photo was taken and the camera's make and model.
//!
//! Everything else is skipped unread, GPS above all: its IFD is never followed, so no location
//! can reach a document, a page or a rendition from here. Every offset is checked against the
//! buffer and the walk is bounded, so a hostile file costs at most a few hundred lookups.

/// How the stored pixels must be turned to show the photo upright (EXIF tag 0x0112, values
/// 1–8; CIPA DC-008). Anything else, or no tag, is [`Orientation::Upright`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Orientation {
    /// 1: as stored.
    #[default]
    Upright,
    /// 2: mirrored left–right.
    Mirrored,
    /// 3: turned 180°.
    UpsideDown,
    /// 4: mirrored top–bottom.
    Flipped,
    /// 5: mirrored along the main diagonal (x and y swapped).
    Transposed,
    /// 6: the stored picture needs a quarter turn clockwise.
    TurnClockwise,
    /// 7: mirrored along the other diagonal.
    Transversed,
    /// 8: the stored picture needs a quarter turn counter-clockwise.
    TurnCounterClockwise,
}

impl Orientation {
    /// From the tag's value; unknown values leave the picture as stored.
    pub fn from_tag(value: u16) -> Orientation {
        match value {
            2 => Orientation::Mirrored,
            3 => Orientation::UpsideDown,
            4 => Orientation::Flipped,
            5 => Orientation::Transposed,
            6 => Orientation::TurnClockwise,
            7 => Orientation::Transversed,
            8 => Orientation::TurnCounterClockwise,
            _ => Orientation::Upright,
        }
    }

    /// The tag's value.
    pub fn tag(self) -> u16 {
        self as u16 + 1
    }

    /// True when width and height trade places once upright (values 5–8).
    pub fn swaps_sides(self) -> bool {
        self.tag() >= 5
    }

    /// `(width, height)` of the upright picture from the stored one's.
    pub fn upright_size(self, width: u32, height: u32) -> (u32, u32) {
        if self.swaps_sides() {
            (height, width)
        } else {
            (width, height)
        }
    }

    /// Where the stored pixel `(x, y)` of a `width` × `height` picture lands upright.
    pub fn place(self, x: u32, y: u32, width: u32, height: u32) -> (u32, u32) {
        let (right, bottom) = (width - 1 - x, height - 1 - y);
        match self {
            Orientation::Upright => (x, y),
            Orientation::Mirrored => (right, y),
            Orientation::UpsideDown => (right, bottom),
            Orientation::Flipped => (x, bottom),
            Orientation::Transposed => (y, x),
            Orientation::TurnClockwise => (bottom, x),
            Orientation::Transversed => (bottom, right),
            Orientation::TurnCounterClockwise => (y, right),
        }
    }
}

/// The EXIF fields the app keeps.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Exif {
    /// How to show the pixels upright.
    pub orientation: Orientation,
    /// `DateTimeOriginal` as `YYYY-MM-DDTHH:MM:SS`: the camera's clock, whose zone is known only
    /// when [`Exif::offset`] is.
    pub taken_local: Option<String>,
    /// `OffsetTimeOriginal` (`±HH:MM`), EXIF 2.31 and later.
    pub offset: Option<String>,
    /// Camera maker (`Make`).
    pub make: Option<String>,
    /// Camera model (`Model`).
    pub model: Option<String>,
}

impl Exif {
    /// When the photo was taken as RFC 3339, which needs the offset: `None` without one.
    pub fn taken_at(&self) -> Option<String> {
        Some(format!(
            "{}{}",
            self.taken_local.as_ref()?,
            self.offset.as_ref()?
        ))
    }
}

const ORIENTATION: u16 = 0x0112;
const MAKE: u16 = 0x010F;
const MODEL: u16 = 0x0110;
const EXIF_IFD: u16 = 0x8769;
const DATE_TIME_ORIGINAL: u16 = 0x9003;
const OFFSET_TIME_ORIGINAL: u16 = 0x9011;
/// Most entries read from one IFD: real ones hold a few dozen.
const MAX_ENTRIES: usize = 512;
/// Longest make or model kept, in characters.
const MAX_TEXT: usize = 64;

/// Reads the fields from a TIFF structure (byte order mark first). Malformed or missing parts
/// leave their fields empty; this never fails.
pub fn parse(tiff: &[u8]) -> Exif {
    let mut exif = Exif::default();
    let Some(reader) = Tiff::new(tiff) else {
        return exif;
    };
    let Some(ifd0) = reader.u32_at(4) else {
        return exif;
    };
    let mut sub_ifd = None;
    reader.each_entry(ifd0 as usize, |tag, entry| match tag {
        ORIENTATION => {
            if let Some(v) = reader.short_value(entry) {
                exif.orientation = Orientation::from_tag(v);
            }
        }
        MAKE => exif.make = reader.text(entry).and_then(clean),
        MODEL => exif.model = reader.text(entry).and_then(clean),
        EXIF_IFD => sub_ifd = reader.u32_at(entry + 8),
        _ => {}
    });
    if let Some(at) = sub_ifd {
        reader.each_entry(at as usize, |tag, entry| match tag {
            DATE_TIME_ORIGINAL => exif.taken_local = reader.text(entry).and_then(date_time),
            OFFSET_TIME_ORIGINAL => exif.offset = reader.text(entry).and_then(offset),
            _ => {}
        });
    }
    exif
}

/// The TIFF bytes of a JPEG's `APP1 Exif` segment, walking the segments before the first scan.
pub fn in_jpeg(bytes: &[u8]) -> Option<&[u8]> {
    let mut i = 2;
    loop {
        while bytes.get(i) == Some(&0xFF) && bytes.get(i + 1) == Some(&0xFF) {
            i += 1;
        }
        if *bytes.get(i)? != 0xFF {
            return None;
        }
        let marker = *bytes.get(i + 1)?;
        if matches!(marker, 0xD9 | 0xDA) {
            return None;
        }
        if matches!(marker, 0xD8 | 0x01 | 0xD0..=0xD7) {
            i += 2;
            continue;
        }
        let length = usize::from(u16::from_be_bytes([*bytes.get(i + 2)?, *bytes.get(i + 3)?]));
        let body = bytes.get(i + 4..(i + 2 + length).min(bytes.len()))?;
        if marker == 0xE1 && body.starts_with(b"Exif\0\0") {
            return Some(&body[6..]);
        }
        i += 2 + length.max(2);
    }
}

/// The TIFF bytes of a PNG's `eXIf` chunk (before the image data, as the PNG 1.6 extension
/// asks; one found later is not looked for).
pub fn in_png(bytes: &[u8]) -> Option<&[u8]> {
    let mut i = 8;
    loop {
        let head = bytes.get(i..i + 8)?;
        let length = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        match &head[4..8] {
            b"eXIf" => return bytes.get(i + 8..i + 8 + length),
            b"IDAT" | b"IEND" => return None,
            _ => i = i.checked_add(12 + length)?,
        }
    }
}

/// Bounds-checked reads in the TIFF's byte order.
struct Tiff<'a> {
    bytes: &'a [u8],
    little: bool,
}

impl<'a> Tiff<'a> {
    fn new(bytes: &'a [u8]) -> Option<Tiff<'a>> {
        let little = match bytes.get(..4)? {
            [b'I', b'I', 42, 0] => true,
            [b'M', b'M', 0, 42] => false,
            _ => return None,
        };
        Some(Tiff { bytes, little })
    }

    fn u16_at(&self, at: usize) -> Option<u16> {
        let b: [u8; 2] = self.bytes.get(at..at + 2)?.try_into().ok()?;
        Some(if self.little {
            u16::from_le_bytes(b)
        } else {
            u16::from_be_bytes(b)
        })
    }

    fn u32_at(&self, at: usize) -> Option<u32> {
        let b: [u8; 4] = self.bytes.get(at..at + 4)?.try_into().ok()?;
        Some(if self.little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    }

    /// Calls `visit(tag, entry offset)` for each 12-byte entry of the IFD at `at`.
    fn each_entry(&self, at: usize, mut visit: impl FnMut(u16, usize)) {
        let Some(count) = self.u16_at(at) else {
            return;
        };
        for n in 0..usize::from(count).min(MAX_ENTRIES) {
            let entry = at + 2 + n * 12;
            match self.u16_at(entry) {
                Some(tag) => visit(tag, entry),
                None => return,
            }
        }
    }

    /// A SHORT entry's first value (held in the entry itself).
    fn short_value(&self, entry: usize) -> Option<u16> {
        (self.u16_at(entry + 2)? == 3).then_some(())?;
        self.u16_at(entry + 8)
    }

    /// An ASCII entry's text up to its first NUL (held in the entry when 4 bytes or fewer).
    fn text(&self, entry: usize) -> Option<&'a str> {
        (self.u16_at(entry + 2)? == 2).then_some(())?;
        let count = self.u32_at(entry + 4)? as usize;
        let start = if count <= 4 {
            entry + 8
        } else {
            self.u32_at(entry + 8)? as usize
        };
        let raw = self.bytes.get(start..start.checked_add(count)?)?;
        let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
        std::str::from_utf8(&raw[..end]).ok()
    }
}

/// Trimmed printable text of at most [`MAX_TEXT`] characters; `None` when nothing is left.
fn clean(raw: &str) -> Option<String> {
    let kept: String = raw
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_TEXT)
        .collect();
    let kept = kept.trim();
    (!kept.is_empty()).then(|| kept.to_string())
}

/// `YYYY:MM:DD HH:MM:SS` as `YYYY-MM-DDTHH:MM:SS`; blanks and zeros (cameras write
/// `0000:00:00 00:00:00` for "unknown") are `None`.
fn date_time(raw: &str) -> Option<String> {
    let b = raw.as_bytes();
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = raw.get(r)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    if b.len() < 19
        || b[4] != b':'
        || b[7] != b':'
        || b[10] != b' '
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    let valid = (1..=9999).contains(&year)
        && (1..=12).contains(&month)
        && (1..=31).contains(&day)
        && hour < 24
        && minute < 60
        && second < 61;
    valid.then(|| format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}"))
}

/// `±HH:MM` as written; anything else is `None`.
fn offset(raw: &str) -> Option<String> {
    let b = raw.as_bytes();
    let ok = b.len() == 6
        && matches!(b[0], b'+' | b'-')
        && b[3] == b':'
        && [1, 2, 4, 5].iter().all(|&i| b[i].is_ascii_digit())
        && raw[1..3].parse::<u32>().is_ok_and(|h| h <= 14)
        && raw[4..6].parse::<u32>().is_ok_and(|m| m < 60);
    ok.then(|| raw.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A TIFF structure with the given IFD0 and Exif sub-IFD entries, for tests and the test
    /// harness's phone-photo fixtures: `(tag, value)` where a value is a SHORT or ASCII text.
    fn build(little: bool, ifd0: &[(u16, Value<'_>)], sub: &[(u16, Value<'_>)]) -> Vec<u8> {
        let u16b = |v: u16| {
            if little {
                v.to_le_bytes()
            } else {
                v.to_be_bytes()
            }
        };
        let u32b = |v: u32| {
            if little {
                v.to_le_bytes()
            } else {
                v.to_be_bytes()
            }
        };
        let mut out = if little {
            b"II".to_vec()
        } else {
            b"MM".to_vec()
        };
        out.extend_from_slice(&u16b(42));
        out.extend_from_slice(&u32b(8));
        let has_sub = !sub.is_empty();
        let ifd_len = |n: usize| 2 + n * 12 + 4;
        let ifd0_count = ifd0.len() + usize::from(has_sub);
        let sub_at = 8 + ifd_len(ifd0_count);
        let mut data_at = sub_at + if has_sub { ifd_len(sub.len()) } else { 0 };
        let mut data = Vec::new();
        let mut write_ifd =
            |out: &mut Vec<u8>, entries: &[(u16, Value<'_>)], pointer: Option<u32>| {
                let count = entries.len() + usize::from(pointer.is_some());
                out.extend_from_slice(&u16b(count as u16));
                for (tag, value) in entries {
                    out.extend_from_slice(&u16b(*tag));
                    match value {
                        Value::Short(v) => {
                            out.extend_from_slice(&u16b(3));
                            out.extend_from_slice(&u32b(1));
                            out.extend_from_slice(&u16b(*v));
                            out.extend_from_slice(&[0, 0]);
                        }
                        Value::Text(t) => {
                            let mut bytes = t.as_bytes().to_vec();
                            bytes.push(0);
                            out.extend_from_slice(&u16b(2));
                            out.extend_from_slice(&u32b(bytes.len() as u32));
                            if bytes.len() <= 4 {
                                bytes.resize(4, 0);
                                out.extend_from_slice(&bytes);
                            } else {
                                out.extend_from_slice(&u32b(data_at as u32));
                                data_at += bytes.len();
                                data.extend_from_slice(&bytes);
                            }
                        }
                    }
                }
                if let Some(at) = pointer {
                    out.extend_from_slice(&u16b(EXIF_IFD));
                    out.extend_from_slice(&u16b(4));
                    out.extend_from_slice(&u32b(1));
                    out.extend_from_slice(&u32b(at));
                }
                out.extend_from_slice(&u32b(0));
            };
        write_ifd(&mut out, ifd0, has_sub.then_some(sub_at as u32));
        if has_sub {
            write_ifd(&mut out, sub, None);
        }
        out.extend_from_slice(&data);
        out
    }

    /// A value for [`build`].
    #[derive(Debug, Clone, Copy)]
    enum Value<'a> {
        /// A SHORT.
        Short(u16),
        /// ASCII text (NUL added).
        Text(&'a str),
    }

    #[test]
    fn reads_orientation_date_offset_and_camera_in_both_byte_orders() {
        for little in [true, false] {
            let tiff = build(
                little,
                &[
                    (MAKE, Value::Text("Google")),
                    (MODEL, Value::Text("Pixel 8\u{7}")),
                    (ORIENTATION, Value::Short(6)),
                ],
                &[
                    (DATE_TIME_ORIGINAL, Value::Text("2025:06:14 18:03:09")),
                    (OFFSET_TIME_ORIGINAL, Value::Text("+02:00")),
                ],
            );
            let exif = parse(&tiff);
            assert_eq!(exif.orientation, Orientation::TurnClockwise);
            assert_eq!(exif.make.as_deref(), Some("Google"));
            assert_eq!(
                exif.model.as_deref(),
                Some("Pixel 8"),
                "control characters dropped"
            );
            assert_eq!(exif.taken_local.as_deref(), Some("2025-06-14T18:03:09"));
            assert_eq!(
                exif.taken_at().as_deref(),
                Some("2025-06-14T18:03:09+02:00")
            );
        }
    }

    #[test]
    fn missing_or_malformed_fields_are_left_empty() {
        assert_eq!(parse(b""), Exif::default());
        assert_eq!(parse(b"II*\0\xff\xff\xff\xff"), Exif::default());
        let tiff = build(
            true,
            &[(ORIENTATION, Value::Short(9))],
            &[
                (DATE_TIME_ORIGINAL, Value::Text("0000:00:00 00:00:00")),
                (OFFSET_TIME_ORIGINAL, Value::Text("+2:00")),
            ],
        );
        let exif = parse(&tiff);
        assert_eq!(exif.orientation, Orientation::Upright);
        assert_eq!(exif.taken_local, None);
        assert_eq!(exif.offset, None);
        assert_eq!(exif.taken_at(), None);
        // Truncated anywhere, it never panics.
        let full = build(
            false,
            &[(MAKE, Value::Text("Canon"))],
            &[(DATE_TIME_ORIGINAL, Value::Text("2020:01:02 03:04:05"))],
        );
        for cut in 0..full.len() {
            let _ = parse(&full[..cut]);
        }
    }

    #[test]
    fn each_orientation_places_corners_where_the_standard_says() {
        // A 3 × 2 stored picture; where its top-left and top-right pixels go upright.
        let expect = [
            (1, (0, 0), (2, 0)),
            (2, (2, 0), (0, 0)),
            (3, (2, 1), (0, 1)),
            (4, (0, 1), (2, 1)),
            (5, (0, 0), (0, 2)),
            (6, (1, 0), (1, 2)),
            (7, (1, 2), (1, 0)),
            (8, (0, 2), (0, 0)),
        ];
        for (tag, top_left, top_right) in expect {
            let o = Orientation::from_tag(tag);
            assert_eq!(o.tag(), tag);
            assert_eq!(o.place(0, 0, 3, 2), top_left, "tag {tag}");
            assert_eq!(o.place(2, 0, 3, 2), top_right, "tag {tag}");
            assert_eq!(o.upright_size(3, 2), if tag >= 5 { (2, 3) } else { (3, 2) });
        }
    }

    #[test]
    fn finds_the_segment_in_jpeg_and_the_chunk_in_png() {
        let tiff = build(true, &[(ORIENTATION, Value::Short(3))], &[]);
        let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE0, 0, 4, 0, 0, 0xFF, 0xE1];
        jpeg.extend_from_slice(&((tiff.len() + 8) as u16).to_be_bytes());
        jpeg.extend_from_slice(b"Exif\0\0");
        jpeg.extend_from_slice(&tiff);
        jpeg.extend_from_slice(&[0xFF, 0xDA]);
        assert_eq!(in_jpeg(&jpeg), Some(&tiff[..]));
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        png.extend_from_slice(&(tiff.len() as u32).to_be_bytes());
        png.extend_from_slice(b"eXIf");
        png.extend_from_slice(&tiff);
        png.extend_from_slice(&[0; 4]);
        assert_eq!(in_png(&png), Some(&tiff[..]));
        assert_eq!(in_jpeg(&[0xFF, 0xD8, 0xFF, 0xDA]), None);
    }
}
