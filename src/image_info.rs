//! What an image file is, from its first bytes: JPEG or PNG by magic number, its upright pixel
//! dimensions (the PNG `IHDR` chunk or the JPEG start-of-frame marker, turned by the EXIF
//! orientation) and the EXIF fields the app keeps (`exif.rs`).
//!
//! Nothing is decoded: this is the cheap check both the upload path and the function run
//! before anything is stored or sent to Vision. The formats people most often send instead
//! (HEIC, WebP, camera RAW, GIF, …) are named in the refusal, so the person knows what to
//! convert. Also here: [`contains_markup`], the upload's check for HTML or script hidden in an
//! image's metadata or after its end (image/HTML polyglots).

use crate::exif::{self, Exif};

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
/// Most pixels of an image wider or taller than [`MAX_SIDE`] (a panorama): the pixel limit of
/// the decoder that makes its copy for Vision (`picture::MAX_PIXELS`).
pub const MAX_PANORAMA_PIXELS: u64 = 50_000_000;
/// Largest image Vision accepts, in bytes.
pub const MAX_BYTES: u64 = 5 * 1024 * 1024;

/// Why an image is refused, in words for a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Not JPEG or PNG by content.
    NotAnImage,
    /// A format recognised by content, but not JPEG or PNG: its name.
    Unsupported(&'static str),
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
            Refusal::NotAnImage | Refusal::Unsupported(_) => "UnsupportedFormat",
            Refusal::Unreadable(_) => "UnreadableImage",
            Refusal::BadDimensions { .. } => "BadDimensions",
            Refusal::TooLarge { .. } => "TooLarge",
            Refusal::Empty => "EmptyFile",
        }
    }

    /// The HTTP status an upload gets for it.
    pub fn status(&self) -> u16 {
        match self {
            Refusal::NotAnImage | Refusal::Unsupported(_) => 415,
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
            Refusal::Unsupported(format) => {
                write!(f, "this file is {format}; only JPEG and PNG images are accepted")?;
                if format.contains("HEIC") {
                    f.write_str(" (on an iPhone: Settings › Camera › Formats › Most Compatible, or share the photo as JPEG)")?;
                }
                Ok(())
            }
            Refusal::Unreadable(kind) => write!(f, "this {} image is damaged: its header cannot be read", kind.extension().to_uppercase()),
            Refusal::BadDimensions { width, height } => write!(
                f,
                "this image is {width}×{height} pixels; images must be at least {MIN_SIDE} pixels on each side, and at most {MAX_SIDE} pixels a side or at most {} megapixels",
                MAX_PANORAMA_PIXELS / 1_000_000
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    /// JPEG or PNG.
    pub kind: ImageKind,
    /// Width in pixels, upright (after the EXIF orientation).
    pub width: u32,
    /// Height in pixels, upright.
    pub height: u32,
    /// The EXIF fields kept (orientation, date taken, camera); empty without EXIF.
    pub exif: Exif,
}

/// The format of a file that is not JPEG or PNG, named for a person, when its first bytes
/// say so.
pub fn name_other_format(head: &[u8]) -> Option<&'static str> {
    let at = |range: std::ops::Range<usize>| head.get(range).unwrap_or_default();
    if at(4..8) == b"ftyp" {
        return Some(match at(8..12) {
            b"heic" | b"heix" | b"hevc" | b"hevx" | b"heim" | b"heis" | b"mif1" | b"msf1" => {
                "a HEIC/HEIF image"
            }
            b"avif" | b"avis" => "an AVIF image",
            b"crx " => "a Canon CR3 raw photo",
            _ => "a video or other ISO media file",
        });
    }
    let named = [
        (&b"RIFF"[..], 0, "a WebP image or other RIFF file"),
        (b"GIF8", 0, "a GIF image"),
        (b"FUJIFILMCCD-RAW", 0, "a Fujifilm RAF raw photo"),
        (b"IIRO", 0, "an Olympus ORF raw photo"),
        (b"IIU\0", 0, "a Panasonic RW2 raw photo"),
        (
            b"II*\0",
            0,
            "a TIFF image or camera raw photo (DNG, NEF, CR2, ARW, …)",
        ),
        (
            b"MM\0*",
            0,
            "a TIFF image or camera raw photo (DNG, NEF, CR2, ARW, …)",
        ),
        (b"\0\0\0\x0cjP  ", 0, "a JPEG 2000 image"),
        (b"\0\0\0\x0cJXL ", 0, "a JPEG XL image"),
        (b"\xFF\x0A", 0, "a JPEG XL image"),
        (b"%PDF", 0, "a PDF document"),
        (b"BM", 0, "a BMP image"),
        (b"\0\0\x01\0", 0, "an icon (ICO)"),
    ];
    if at(0..4) == b"RIFF" && at(8..12) == b"WEBP" {
        return Some("a WebP image");
    }
    if let Some((_, _, name)) = named
        .iter()
        .find(|(magic, from, _)| at(*from..*from + magic.len()) == *magic)
    {
        return Some(name);
    }
    let text = String::from_utf8_lossy(at(0..head.len().min(512))).to_ascii_lowercase();
    if text.trim_start().starts_with("<?xml") || text.contains("<svg") {
        return Some("an SVG or XML document");
    }
    None
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
    let Some(kind) = sniff(head) else {
        return Err(name_other_format(head).map_or(Refusal::NotAnImage, Refusal::Unsupported));
    };
    let (width, height) = match kind {
        ImageKind::Png => png_size(head),
        ImageKind::Jpeg => jpeg_size(head),
    }
    .ok_or(Refusal::Unreadable(kind))?;
    let tiff = match kind {
        ImageKind::Png => exif::in_png(head),
        ImageKind::Jpeg => exif::in_jpeg(head),
    };
    let exif = tiff.map(exif::parse).unwrap_or_default();
    let (width, height) = exif.orientation.upright_size(width, height);
    Ok(ImageInfo {
        kind,
        width,
        height,
        exif,
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
    // Wider than Vision takes is fine for a panorama (it analyses an upright copy), within a
    // pixel count a copy can be decoded from.
    let pixels = u64::from(info.width) * u64::from(info.height);
    let fits = info.width.max(info.height) <= MAX_SIDE || pixels <= MAX_PANORAMA_PIXELS;
    if info.width.min(info.height) < MIN_SIDE || !fits {
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

/// Bytes read by position: a slice, or an upload's spool file.
pub trait Positioned {
    /// Total length.
    fn size(&self) -> u64;
    /// Reads at `at` into `buf`, returning how many bytes were read (0 at the end).
    fn read_at(&self, buf: &mut [u8], at: u64) -> std::io::Result<usize>;
}

impl Positioned for [u8] {
    fn size(&self) -> u64 {
        self.len() as u64
    }

    fn read_at(&self, buf: &mut [u8], at: u64) -> std::io::Result<usize> {
        let from = self.get(at as usize..).unwrap_or_default();
        let n = buf.len().min(from.len());
        buf[..n].copy_from_slice(&from[..n]);
        Ok(n)
    }
}

/// True when an image carries markup a browser would run if it ever sniffed the file as HTML
/// (image/HTML polyglots): in PNG text chunks or after `IEND`, in JPEG metadata segments or
/// after the last `EOI`. Compressed pixel data is not searched: random bytes would match by
/// chance in a few large photos in a hundred.
#[cfg(test)]
pub fn contains_markup(bytes: &[u8]) -> bool {
    contains_markup_in(bytes).unwrap_or(true)
}

/// [`contains_markup`] over bytes read by position, reading only the metadata and the tail.
pub fn contains_markup_in(bytes: &(impl Positioned + ?Sized)) -> std::io::Result<bool> {
    let mut head = [0u8; 16];
    let n = read_full(bytes, &mut head, 0)?;
    match sniff(&head[..n]) {
        Some(ImageKind::Png) => png_markup(bytes),
        Some(ImageKind::Jpeg) => jpeg_markup(bytes),
        None => markup_between(bytes, 0, bytes.size()),
    }
}

/// Reads as much of `buf` as there is at `at`.
fn read_full(
    bytes: &(impl Positioned + ?Sized),
    buf: &mut [u8],
    at: u64,
) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        let n = bytes.read_at(&mut buf[filled..], at + filled as u64)?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(filled)
}

/// Searches `from..to` for markup, a window at a time (windows overlap by a needle's length).
fn markup_between(bytes: &(impl Positioned + ?Sized), from: u64, to: u64) -> std::io::Result<bool> {
    const WINDOW: usize = 1 << 20;
    const OVERLAP: u64 = 8;
    let mut buf = vec![0; WINDOW.min(to.saturating_sub(from) as usize)];
    let mut at = from;
    while at < to {
        let want = buf.len().min((to - at) as usize);
        let n = read_full(bytes, &mut buf[..want], at)?;
        if n == 0 {
            break;
        }
        if has_markup(&buf[..n]) {
            return Ok(true);
        }
        if at + (n as u64) >= to {
            break;
        }
        at += (n as u64).saturating_sub(OVERLAP).max(1);
    }
    Ok(false)
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

fn png_markup(bytes: &(impl Positioned + ?Sized)) -> std::io::Result<bool> {
    let size = bytes.size();
    let mut i = 8u64;
    let mut head = [0u8; 8];
    while read_full(bytes, &mut head, i)? == 8 {
        let len = u64::from(u32::from_be_bytes([head[0], head[1], head[2], head[3]]));
        let kind = &head[4..8];
        if i + 8 + len > size {
            return markup_between(bytes, i, size);
        }
        if matches!(kind, b"tEXt" | b"zTXt" | b"iTXt") && markup_between(bytes, i + 8, i + 8 + len)?
        {
            return Ok(true);
        }
        i += 12 + len;
        if kind == b"IEND" {
            break;
        }
    }
    markup_between(bytes, i.min(size), size)
}

fn jpeg_markup(bytes: &(impl Positioned + ?Sized)) -> std::io::Result<bool> {
    let size = bytes.size();
    let mut i = 2u64;
    let mut head = [0u8; 4];
    // Metadata segments up to start-of-scan.
    loop {
        let n = read_full(bytes, &mut head, i)?;
        if n < 2 || head[0] != 0xFF {
            break;
        }
        let marker = head[1];
        if marker == 0xDA || marker == 0xD9 {
            break;
        }
        if marker == 0xFF || marker == 0xD8 || (0xD0..=0xD7).contains(&marker) || marker == 0x01 {
            i += if marker == 0xFF { 1 } else { 2 };
            continue;
        }
        if n < 4 {
            break;
        }
        let len = u64::from(u16::from_be_bytes([head[2], head[3]]));
        if markup_between(bytes, i + 4, (i + 2 + len).min(size))? {
            return Ok(true);
        }
        i += 2 + len.max(2);
    }
    // Whatever follows the last end-of-image marker, looked for backwards a block at a time.
    const BLOCK: u64 = 64 * 1024;
    let mut block = vec![0u8; BLOCK as usize + 1];
    let mut end = size;
    let tail_from = loop {
        if end < 2 {
            break size;
        }
        let start = end.saturating_sub(BLOCK);
        // One byte more than the block, so a marker across blocks is seen.
        let want = ((end - start) as usize + 1).min((size - start) as usize);
        let n = read_full(bytes, &mut block[..want], start)?;
        if let Some(p) = block[..n].windows(2).rposition(|w| w == [0xFF, 0xD9]) {
            break start + p as u64 + 2;
        }
        end = start;
    };
    markup_between(bytes, tail_from, size)
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
                height: 480,
                exif: Exif::default(),
            })
        );
        assert_eq!(
            inspect(&jpeg(768, 576)),
            Ok(ImageInfo {
                kind: ImageKind::Jpeg,
                width: 768,
                height: 576,
                exif: Exif::default(),
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
            Err(Refusal::Unsupported("a GIF image"))
        );
        let heic = b"\0\0\0\x18ftypheic\0\0\0\0mif1heic";
        let refusal = validate(heic, 24, MAX_BYTES).unwrap_err();
        assert_eq!(refusal.status(), 415);
        assert!(
            refusal.to_string().contains("HEIC") && refusal.to_string().contains("JPEG and PNG")
        );
        assert_eq!(
            validate(b"RIFF\0\0\0\0WEBPVP8 ", 16, MAX_BYTES),
            Err(Refusal::Unsupported("a WebP image"))
        );
        assert_eq!(
            inspect(b"II*\0\x08\0\0\0").unwrap_err().to_string(),
            "this file is a TIFF image or camera raw photo (DNG, NEF, CR2, ARW, …); only JPEG and PNG images are accepted"
        );
        assert_eq!(
            validate(b"<html><script>", 14, MAX_BYTES),
            Err(Refusal::NotAnImage)
        );
        assert_eq!(
            validate(b"<?xml version='1.0'?><svg>", 26, MAX_BYTES),
            Err(Refusal::Unsupported("an SVG or XML document"))
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
        assert!(
            validate(&png(12_000, 4_000), 100, MAX_BYTES).is_ok(),
            "a panorama"
        );
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
