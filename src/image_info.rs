//! What an image file is, from its first bytes: JPEG or PNG by magic number, and its pixel
//! dimensions from the PNG `IHDR` chunk or the JPEG start-of-frame marker.
//!
//! Nothing is decoded: this is the cheap check both the upload path and the function run
//! before anything is stored or sent to Vision. Other formats (GIF, WebP, HEIC, SVG, BMP) are
//! recognised only as "not JPEG or PNG". Also here: [`contains_markup`], the upload's check for
//! HTML or script hidden in an image's metadata or after its end (image/HTML polyglots).

/// The two formats Vision accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageKind {
    /// JPEG (`FF D8 FF`).
    Jpeg,
    /// PNG (signature, then `IHDR`).
    Png,
}

impl ImageKind {
    /// The media type to store and serve.
    pub fn content_type(self) -> &'static str {
        match self {
            ImageKind::Jpeg => "image/jpeg",
            ImageKind::Png => "image/png",
        }
    }

    /// The file extension for generated names.
    pub fn extension(self) -> &'static str {
        match self {
            ImageKind::Jpeg => "jpg",
            ImageKind::Png => "png",
        }
    }
}

/// Vision's limits, and so ours.
pub const MIN_SIDE: u32 = 32;
/// Largest width or height Vision accepts.
pub const MAX_SIDE: u32 = 10_000;
/// Largest image Vision accepts, in bytes.
pub const MAX_BYTES: u64 = 5 * 1024 * 1024;

/// Why an image is refused, in words for a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Not JPEG or PNG by content.
    NotAnImage,
    /// JPEG or PNG, but its header is cut short or malformed.
    Unreadable(ImageKind),
    /// Width or height outside 32..=10000.
    BadDimensions {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
    },
    /// More than the byte limit.
    TooLarge {
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// Zero bytes.
    Empty,
}

impl Refusal {
    /// A stable code for documents and the API.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::NotAnImage => "UnsupportedFormat",
            Refusal::Unreadable(_) => "UnreadableImage",
            Refusal::BadDimensions { .. } => "BadDimensions",
            Refusal::TooLarge { .. } => "TooLarge",
            Refusal::Empty => "EmptyFile",
        }
    }

    /// The HTTP status an upload gets for it.
    pub fn status(&self) -> u16 {
        match self {
            Refusal::NotAnImage => 415,
            Refusal::Unreadable(_) | Refusal::BadDimensions { .. } => 422,
            Refusal::TooLarge { .. } => 413,
            Refusal::Empty => 400,
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::NotAnImage => f.write_str("this file is not a JPEG or PNG image (checked by its content, not its name)"),
            Refusal::Unreadable(kind) => write!(f, "this {} image is damaged: its header cannot be read", kind.extension().to_uppercase()),
            Refusal::BadDimensions { width, height } => write!(
                f,
                "this image is {width}×{height} pixels; images must be between {MIN_SIDE} and {MAX_SIDE} pixels on each side"
            ),
            Refusal::TooLarge { size, limit } => write!(
                f,
                "this file is {:.1} MB; the limit is {:.1} MB",
                *size as f64 / 1_048_576.0,
                *limit as f64 / 1_048_576.0
            ),
            Refusal::Empty => f.write_str("this file is empty"),
        }
    }
}

/// A recognised image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageInfo {
    /// JPEG or PNG.
    pub kind: ImageKind,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

/// The kind from the magic number alone.
pub fn sniff(head: &[u8]) -> Option<ImageKind> {
    if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(ImageKind::Jpeg)
    } else if head.starts_with(b"\x89PNG\r\n\x1a\n") && head.get(12..16) == Some(b"IHDR") {
        Some(ImageKind::Png)
    } else {
        None
    }
}

/// Reads kind and dimensions from the start of a file (JPEG frames can sit after large
/// metadata segments: give it at least 256 KiB, or the whole file).
pub fn inspect(head: &[u8]) -> Result<ImageInfo, Refusal> {
    if head.is_empty() {
        return Err(Refusal::Empty);
    }
    let kind = sniff(head).ok_or(Refusal::NotAnImage)?;
    let (width, height) = match kind {
        ImageKind::Png => png_size(head),
        ImageKind::Jpeg => jpeg_size(head),
    }
    .ok_or(Refusal::Unreadable(kind))?;
    Ok(ImageInfo {
        kind,
        width,
        height,
    })
}

/// Checks an image of `size` bytes whose first bytes are `head` against Vision's limits.
pub fn validate(head: &[u8], size: u64, limit: u64) -> Result<ImageInfo, Refusal> {
    if size == 0 {
        return Err(Refusal::Empty);
    }
    if size > limit {
        return Err(Refusal::TooLarge { size, limit });
    }
    let info = inspect(head)?;
    let ok = |side: u32| (MIN_SIDE..=MAX_SIDE).contains(&side);
    if !ok(info.width) || !ok(info.height) {
        return Err(Refusal::BadDimensions {
            width: info.width,
            height: info.height,
        });
    }
    Ok(info)
}

fn png_size(head: &[u8]) -> Option<(u32, u32)> {
    let width = u32::from_be_bytes(head.get(16..20)?.try_into().ok()?);
    let height = u32::from_be_bytes(head.get(20..24)?.try_into().ok()?);
    Some((width, height))
}

/// Walks the marker segments to the first start-of-frame (SOF0–SOF15 except DHT, JPG, DAC).
fn jpeg_size(head: &[u8]) -> Option<(u32, u32)> {
    let mut i = 2;
    loop {
        // Fill bytes (0xFF) may pad before a marker.
        while *head.get(i)? == 0xFF && *head.get(i + 1)? == 0xFF {
            i += 1;
        }
        if *head.get(i)? != 0xFF {
            return None;
        }
        let marker = *head.get(i + 1)?;
        i += 2;
        match marker {
            0xD8 | 0x01 | 0xD0..=0xD7 => continue,
            0xD9 | 0xDA => return None,
            _ => {}
        }
        let length = usize::from(u16::from_be_bytes([*head.get(i)?, *head.get(i + 1)?]));
        if length < 2 {
            return None;
        }
        let is_frame = matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC);
        if is_frame {
            let height = u16::from_be_bytes([*head.get(i + 3)?, *head.get(i + 4)?]);
            let width = u16::from_be_bytes([*head.get(i + 5)?, *head.get(i + 6)?]);
            return Some((u32::from(width), u32::from(height)));
        }
        i += length;
    }
}

/// True when an image carries markup a browser would run if it ever sniffed the file as HTML
/// (image/HTML polyglots): in PNG text chunks or after `IEND`, in JPEG metadata segments or
/// after the last `EOI`. Compressed pixel data is not searched: random bytes would match by
/// chance in a few large photos in a hundred.
pub fn contains_markup(bytes: &[u8]) -> bool {
    match sniff(bytes) {
        Some(ImageKind::Png) => png_markup(bytes),
        Some(ImageKind::Jpeg) => jpeg_markup(bytes),
        None => has_markup(bytes),
    }
}

fn has_markup(bytes: &[u8]) -> bool {
    const NEEDLES: [&[u8]; 6] = [
        b"<script", b"<html", b"<?php", b"<svg", b"<iframe", b"<body",
    ];
    bytes.iter().enumerate().any(|(i, &b)| {
        b == b'<'
            && NEEDLES.iter().any(|n| {
                bytes
                    .get(i..i + n.len())
                    .is_some_and(|w| w.eq_ignore_ascii_case(n))
            })
    })
}

fn png_markup(bytes: &[u8]) -> bool {
    let mut i = 8;
    while let Some(head) = bytes.get(i..i + 8) {
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let kind = &head[4..8];
        let Some(data) = bytes.get(i + 8..i + 8 + len) else {
            return has_markup(&bytes[i..]);
        };
        if matches!(kind, b"tEXt" | b"zTXt" | b"iTXt") && has_markup(data) {
            return true;
        }
        i += 12 + len;
        if kind == b"IEND" {
            return has_markup(bytes.get(i..).unwrap_or_default());
        }
    }
    has_markup(bytes.get(i..).unwrap_or_default())
}

fn jpeg_markup(bytes: &[u8]) -> bool {
    let mut i = 2;
    // Metadata segments up to start-of-scan.
    while let (Some(&0xFF), Some(&marker)) = (bytes.get(i), bytes.get(i + 1)) {
        if marker == 0xDA || marker == 0xD9 {
            break;
        }
        if marker == 0xFF || marker == 0xD8 || (0xD0..=0xD7).contains(&marker) || marker == 0x01 {
            i += if marker == 0xFF { 1 } else { 2 };
            continue;
        }
        let Some(len) = bytes
            .get(i + 2..i + 4)
            .map(|l| usize::from(u16::from_be_bytes([l[0], l[1]])))
        else {
            break;
        };
        if bytes.get(i + 4..i + 2 + len).is_some_and(has_markup) {
            return true;
        }
        i += 2 + len.max(2);
    }
    // Whatever follows the last end-of-image marker.
    let tail = bytes
        .windows(2)
        .rposition(|w| w == [0xFF, 0xD9])
        .map_or(&bytes[bytes.len()..], |end| &bytes[end + 2..]);
    has_markup(tail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32) -> Vec<u8> {
        let mut bytes = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        bytes.extend_from_slice(&width.to_be_bytes());
        bytes.extend_from_slice(&height.to_be_bytes());
        bytes.extend_from_slice(&[8, 2, 0, 0, 0]);
        bytes
    }

    fn jpeg(width: u16, height: u16) -> Vec<u8> {
        let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10];
        bytes.extend_from_slice(b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0");
        bytes.extend_from_slice(&[0xFF, 0xC0, 0x00, 0x11, 0x08]);
        bytes.extend_from_slice(&height.to_be_bytes());
        bytes.extend_from_slice(&width.to_be_bytes());
        bytes.extend_from_slice(&[3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
        bytes
    }

    #[test]
    fn reads_dimensions_of_both_kinds() {
        assert_eq!(
            inspect(&png(640, 480)),
            Ok(ImageInfo {
                kind: ImageKind::Png,
                width: 640,
                height: 480
            })
        );
        assert_eq!(
            inspect(&jpeg(768, 576)),
            Ok(ImageInfo {
                kind: ImageKind::Jpeg,
                width: 768,
                height: 576
            })
        );
        let dog = include_bytes!("../tests/fixtures/photos/dog.jpg");
        assert_eq!(inspect(dog).map(|i| (i.width, i.height)), Ok((768, 576)));
        let cat = include_bytes!("../tests/fixtures/photos/chelsea.png");
        assert_eq!(inspect(cat).map(|i| (i.width, i.height)), Ok((451, 300)));
    }

    #[test]
    fn refuses_what_vision_would_refuse() {
        assert_eq!(
            validate(b"GIF89a........", 14, MAX_BYTES),
            Err(Refusal::NotAnImage)
        );
        assert_eq!(
            validate(b"<html><script>", 14, MAX_BYTES),
            Err(Refusal::NotAnImage)
        );
        assert_eq!(
            validate(&png(1, 1), 100, MAX_BYTES),
            Err(Refusal::BadDimensions {
                width: 1,
                height: 1
            })
        );
        assert_eq!(
            validate(&png(20_000, 20_000), 100, MAX_BYTES),
            Err(Refusal::BadDimensions {
                width: 20_000,
                height: 20_000
            })
        );
        assert_eq!(
            validate(&png(100, 100), MAX_BYTES + 1, MAX_BYTES),
            Err(Refusal::TooLarge {
                size: MAX_BYTES + 1,
                limit: MAX_BYTES
            })
        );
        assert_eq!(validate(b"", 0, MAX_BYTES), Err(Refusal::Empty));
        assert_eq!(
            validate(&[0xFF, 0xD8, 0xFF, 0xE0], 4, MAX_BYTES),
            Err(Refusal::Unreadable(ImageKind::Jpeg))
        );
        assert!(validate(&png(32, 10_000), 100, MAX_BYTES).is_ok());
        // A PNG signature followed by HTML is still judged by its header, and its IHDR is bogus.
        let mut polyglot = b"\x89PNG\r\n\x1a\n<html><script>alert(1)</script>".to_vec();
        polyglot.truncate(30);
        assert_eq!(inspect(&polyglot), Err(Refusal::NotAnImage));
    }

    #[test]
    fn messages_are_for_people() {
        let text = Refusal::BadDimensions {
            width: 1,
            height: 1,
        }
        .to_string();
        assert!(text.contains("1×1") && text.contains("32"), "{text}");
        assert!(Refusal::TooLarge {
            size: 6 << 20,
            limit: 5 << 20
        }
        .to_string()
        .contains("6.0 MB"));
    }

    #[test]
    fn markup_inside_images_is_found() {
        let dog = include_bytes!("../tests/fixtures/photos/dog.jpg");
        let cat = include_bytes!("../tests/fixtures/photos/chelsea.png");
        assert!(!contains_markup(dog) && !contains_markup(cat));
        let mut poly = cat.to_vec();
        poly.extend_from_slice(b"<HTML><Script>alert(1)</script>");
        assert!(contains_markup(&poly), "after IEND");
        let mut poly = dog.to_vec();
        poly.extend_from_slice(b"<svg onload=alert(1)>");
        assert!(contains_markup(&poly), "after EOI");
        // A JPEG comment segment holding a script, right after SOI.
        let mut com = vec![0xFF, 0xD8, 0xFF, 0xFE, 0x00, 0x12];
        com.extend_from_slice(b"<script>x</script");
        com.extend_from_slice(&dog[2..]);
        assert!(contains_markup(&com), "in a COM segment");
        // A PNG tEXt chunk holding HTML.
        let mut text = cat[..33].to_vec();
        text.extend_from_slice(&[0, 0, 0, 13]);
        text.extend_from_slice(b"tEXt<body>hi</b");
        text.extend_from_slice(&[0, 0, 0, 0]);
        text.extend_from_slice(&cat[33..]);
        assert!(contains_markup(&text), "in a text chunk");
        // The same bytes inside compressed pixel data are not looked at.
        let mut inside = dog[..dog.len() - 2].to_vec();
        inside.extend_from_slice(b"<svg");
        inside.extend_from_slice(&[0xFF, 0xD9]);
        assert!(!contains_markup(&inside));
        assert!(contains_markup(b"xx<?php") && !contains_markup(b"a < b"));
    }
}
