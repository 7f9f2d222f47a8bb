//! Pictures made from an uploaded photo: the gallery's thumbnail and the result page's
//! preview (made by the web app, stored beside the image) and the analysis copy (made by the
//! function when Vision cannot take the original as it is), so no page ever sends a 10 MB
//! original to a browser that shows it 240 pixels wide, and Vision always sees the photo
//! upright.
//!
//! All are baseline JPEGs, upright (the EXIF orientation applied: the browser shows an original
//! upright, so every picture made from it must agree), never enlarged, the aspect ratio kept:
//! the thumbnail at most 400 px on the long side under `thumbs/{id}.jpg`, the preview at most
//! 1600 px under `previews/{id}.jpg`, the analysis copy at most [`ANALYSIS_SIDE`] and under
//! Vision's 5 MB under `analysis/{id}.jpg`. Normalised box coordinates from Vision therefore
//! fit the preview unchanged. An embedded ICC profile (phones write Display P3) is carried into
//! each picture rather than converted: the browser then shows the same colours it shows for the
//! original, at the cost of a few hundred bytes, with no colour engine here. CMYK and YCCK
//! JPEGs (Adobe APP14) are turned into RGB as browsers do; their CMYK profile is not carried.
//! No other metadata is written: GPS and the rest of the EXIF never reach a picture.
//!
//! Sources are read as streams (an upload as it arrives, an object as it downloads), and memory
//! is bounded by construction, whatever the file claims:
//! - JPEG: decoded at reduced scale inside the IDCT (1/2, 1/4 or 1/8; the smallest that is
//!   still at least the target size), so a 24 MP photo is decoded for a preview as 1500 × 1000.
//!   Progressive JPEGs keep every coefficient until the last scan (about 3 bytes a pixel), so
//!   they get a lower pixel limit.
//! - PNG: non-interlaced files are read row by row into the downscaler, never as a whole
//!   frame; interlaced ones need the whole frame and get a lower pixel limit.
//! - The decoders' own allocations are capped at [`DECODE_BYTES`].
//!
//! Past a pixel limit ([`MAX_PIXELS`], or the lower ones above) the image is not decoded at
//! all: it gets the placeholder rendition (a plain grey tile) and is still stored. A file whose
//! data is damaged (cut short, corrupt) is [`Outcome::Damaged`]: the upload refuses it. Not
//! here: waiting for a decode slot and storing (`web/renditions.rs`), other formats, upscaling.

use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::exif::{self, Orientation};
use crate::image_info::ImageKind;

/// Long side of a thumbnail, in pixels.
pub(crate) const THUMB_SIDE: u32 = 400;
/// Long side of a preview, in pixels.
pub(crate) const PREVIEW_SIDE: u32 = 1600;
/// Long side of the analysis copy: 6.75 MP at 4:3, far inside Vision's 10,000 px and, at the
/// quality below, its 5 MB; a 24 MP (6000 × 4000) photo is decoded for it at half scale, so it
/// fits the decode budget. Photos smaller than this are not enlarged.
pub(crate) const ANALYSIS_SIDE: u32 = 3000;
/// Largest analysis copy, in bytes: under Vision's 5 MB whichever way "MB" is counted.
pub(crate) const ANALYSIS_BYTES: usize = 4_900_000;
/// Largest image decoded (50 MP: an 8160 × 6120 phone photo); larger ones get the placeholder.
pub(crate) const MAX_PIXELS: u64 = crate::image_info::MAX_PANORAMA_PIXELS;
/// Largest progressive JPEG decoded: its coefficients are held whole (≈ 3 bytes a pixel).
const MAX_PROGRESSIVE_PIXELS: u64 = 12_000_000;
/// Largest interlaced PNG decoded: it is held as a whole frame (up to 4 bytes a pixel).
const MAX_INTERLACED_PIXELS: u64 = 8_000_000;
/// Most memory one decode may take, decoder buffers and pictures together: what the upload
/// limit's memory rule counts per decoding slot (see `web::Settings`).
pub(crate) const DECODE_BYTES: u64 = 64 * 1024 * 1024;
/// What the decoders themselves may allocate (the rest of [`DECODE_BYTES`] is ours).
const DECODER_LIMIT: usize = 48 * 1024 * 1024;
/// Largest ICC profile carried into a picture (Display P3 and sRGB profiles are under 4 KiB).
const MAX_ICC_BYTES: usize = 64 * 1024;
const THUMB_QUALITY: u8 = 75;
const PREVIEW_QUALITY: u8 = 82;
const ANALYSIS_QUALITY: u8 = 90;

/// The two renditions of one image, encoded.
#[derive(Debug, Clone)]
pub(crate) struct Renditions {
    pub thumb: Vec<u8>,
    pub preview: Vec<u8>,
    /// Set when the image was not decoded (too many pixels): both renditions are then the grey
    /// placeholder, and this says why.
    pub placeholder: Option<String>,
}

/// What decoding an image for its renditions came to.
#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    /// Both renditions (perhaps the placeholder, see [`Renditions::placeholder`]).
    Made(Renditions),
    /// The file's data is damaged (cut short or corrupt): why, for a person.
    Damaged(String),
}

impl Outcome {
    /// The renditions to show: a damaged image (stored by another route) gets the placeholder.
    pub(crate) fn into_renditions(self) -> Renditions {
        match self {
            Outcome::Made(r) => r,
            Outcome::Damaged(why) => placeholder(why),
        }
    }
}

/// Why a decode stopped: the file's fault, or a limit of ours.
enum Stop {
    Damaged(String),
    Limit(String),
}

impl From<Stop> for String {
    fn from(stop: Stop) -> String {
        match stop {
            Stop::Damaged(why) | Stop::Limit(why) => why,
        }
    }
}

/// Makes both renditions of a JPEG or PNG read from `source`.
pub(crate) fn make(source: impl Read, kind: ImageKind) -> Outcome {
    make_telling(source, kind, |_| {})
}

/// As [`make`], telling `decoded` as soon as the data has been decoded (with why it is
/// damaged, when it is), before the renditions are encoded: an upload judges the file on
/// that and need not wait for the encoding.
pub(crate) fn make_telling(
    source: impl Read,
    kind: ImageKind,
    decoded: impl FnOnce(Option<String>),
) -> Outcome {
    let decoding = decode(source, kind, PREVIEW_SIDE);
    decoded(match &decoding {
        Err(Stop::Damaged(why)) => Some(why.clone()),
        _ => None,
    });
    let made = decoding.and_then(|(preview, icc)| {
        let thumb = preview.downscaled(THUMB_SIDE);
        Ok(Renditions {
            thumb: encode(&thumb, THUMB_QUALITY, icc.as_deref()).map_err(Stop::Limit)?,
            preview: encode(&preview, PREVIEW_QUALITY, icc.as_deref()).map_err(Stop::Limit)?,
            placeholder: None,
        })
    });
    match made {
        Ok(r) => Outcome::Made(r),
        Err(Stop::Limit(why)) => Outcome::Made(placeholder(why)),
        Err(Stop::Damaged(why)) => Outcome::Damaged(why),
    }
}

/// The upright copy Vision analyses for a photo it cannot take as stored (turned by EXIF,
/// over 5 MB, or over 10,000 px a side): a JPEG of at most [`ANALYSIS_SIDE`] px and
/// [`ANALYSIS_BYTES`], with its upright width and height.
pub(crate) fn analysis_copy(
    source: impl Read,
    kind: ImageKind,
) -> Result<(Vec<u8>, u32, u32), String> {
    let (mut picture, icc) = decode(source, kind, ANALYSIS_SIDE)?;
    let mut quality = ANALYSIS_QUALITY;
    loop {
        let jpeg = encode(&picture, quality, icc.as_deref())?;
        if jpeg.len() <= ANALYSIS_BYTES {
            return Ok((jpeg, picture.width, picture.height));
        }
        // Rare (noise-like content): smaller and a little coarser until it fits.
        if quality > 80 {
            quality -= 5;
        } else {
            picture = picture.downscaled(picture.width.max(picture.height) * 4 / 5);
        }
    }
}

/// The grey 400 × 300 tile shown for an image that is not decoded, or has no rendition yet.
pub(crate) fn placeholder_jpeg() -> Vec<u8> {
    static TILE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    TILE.get_or_init(|| {
        let tile = Rgb {
            width: 400,
            height: 300,
            pixels: vec![0xC8; 400 * 300 * 3],
        };
        encode(&tile, 50, None).unwrap_or_default()
    })
    .clone()
}

fn placeholder(why: String) -> Renditions {
    let bytes = placeholder_jpeg();
    Renditions {
        thumb: bytes.clone(),
        preview: bytes,
        placeholder: Some(why),
    }
}

/// An RGB8 image.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Rgb {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u8>,
}

impl Rgb {
    /// The same picture with its long side at most `side`.
    fn downscaled(&self, side: u32) -> Rgb {
        let (w, h) = fit(self.width, self.height, side);
        let mut scaler = Downscaler::new(self.width, self.height, w, h);
        for row in self.pixels.chunks_exact(self.width as usize * 3) {
            scaler.push_rgb(row);
        }
        scaler.finish()
    }

    /// The picture turned upright as `orientation` says.
    fn oriented(self, orientation: Orientation) -> Rgb {
        if orientation == Orientation::Upright {
            return self;
        }
        let (w, h) = (self.width, self.height);
        let (uw, uh) = orientation.upright_size(w, h);
        let mut pixels = vec![0; self.pixels.len()];
        for y in 0..h {
            for x in 0..w {
                let (ux, uy) = orientation.place(x, y, w, h);
                let from = (y as usize * w as usize + x as usize) * 3;
                let to = (uy as usize * uw as usize + ux as usize) * 3;
                pixels[to..to + 3].copy_from_slice(&self.pixels[from..from + 3]);
            }
        }
        Rgb {
            width: uw,
            height: uh,
            pixels,
        }
    }
}

/// `(w, h)` shrunk so the long side is at most `side`, aspect kept; never enlarged.
pub(crate) fn fit(w: u32, h: u32, side: u32) -> (u32, u32) {
    let long = w.max(h);
    if long <= side {
        return (w.max(1), h.max(1));
    }
    let scale = |v: u32| {
        ((u64::from(v) * u64::from(side) + u64::from(long) / 2) / u64::from(long)).max(1) as u32
    };
    (scale(w), scale(h))
}

fn encode(image: &Rgb, quality: u8, icc: Option<&[u8]>) -> Result<Vec<u8>, String> {
    let (w, h) = (
        u16::try_from(image.width).map_err(|_| "too wide to encode")?,
        u16::try_from(image.height).map_err(|_| "too tall to encode")?,
    );
    let mut out = Vec::with_capacity(image.pixels.len() / 10);
    let mut encoder = jpeg_encoder::Encoder::new(&mut out, quality);
    // Only an RGB profile describes these pixels (a PNG's grey profile, a CMYK one, do not).
    let rgb_profile = |p: &&[u8]| p.len() <= MAX_ICC_BYTES && p.get(16..20) == Some(b"RGB ");
    if let Some(profile) = icc.filter(rgb_profile) {
        // A profile the encoder will not take only costs the colours their exactness.
        let _ = encoder.add_icc_profile(profile);
    }
    encoder
        .encode(&image.pixels, w, h, jpeg_encoder::ColorType::Rgb)
        .map_err(|e| format!("JPEG encoding failed: {e}"))?;
    Ok(out)
}

fn too_many(width: u64, height: u64, limit: u64, what: &str) -> Result<(), Stop> {
    if width * height > limit {
        return Err(Stop::Limit(format!(
            "{width} × {height} px is more than the {} MP decoded for {what}",
            limit / 1_000_000
        )));
    }
    Ok(())
}

/// Decodes `source` with its long side at most `side`, upright, with its RGB ICC profile.
fn decode(source: impl Read, kind: ImageKind, side: u32) -> Result<(Rgb, Option<Vec<u8>>), Stop> {
    match kind {
        ImageKind::Jpeg => decode_jpeg(BufReader::new(source), side),
        ImageKind::Png => decode_png(Forward::new(BufReader::new(source)), side),
    }
}

/// Decodes at the smallest DCT scale that still covers `side`, then downscales to it.
fn decode_jpeg(source: impl Read, side: u32) -> Result<(Rgb, Option<Vec<u8>>), Stop> {
    use jpeg_decoder::{CodingProcess, PixelFormat};
    let damaged = |e: jpeg_decoder::Error| match e {
        jpeg_decoder::Error::Unsupported(what) => {
            Stop::Limit(format!("JPEG feature not supported: {what:?}"))
        }
        other => Stop::Damaged(format!("the JPEG data is damaged ({other})")),
    };
    let mut decoder = jpeg_decoder::Decoder::new(source);
    decoder.set_max_decoding_buffer_size(DECODER_LIMIT);
    decoder.read_info().map_err(damaged)?;
    let info = decoder
        .info()
        .ok_or_else(|| Stop::Damaged("the JPEG header is damaged".into()))?;
    let (w, h) = (u64::from(info.width), u64::from(info.height));
    too_many(w, h, MAX_PIXELS, "pictures")?;
    if info.coding_process == CodingProcess::DctProgressive {
        too_many(w, h, MAX_PROGRESSIVE_PIXELS, "progressive JPEGs")?;
    }
    let (tw, th) = fit(info.width.into(), info.height.into(), side);
    let (sw, sh) = decoder
        .scale(tw as u16, th as u16)
        .map_err(|e| Stop::Limit(format!("JPEG scaling refused: {e}")))?;
    let pixels = decoder.decode().map_err(damaged)?;
    let orientation = decoder
        .exif_data()
        .map(|tiff| exif::parse(tiff).orientation)
        .unwrap_or_default();
    let icc = match info.pixel_format {
        PixelFormat::CMYK32 => None,
        _ => decoder.icc_profile(),
    };
    let (sw, sh) = (u32::from(sw), u32::from(sh));
    let mut scaler = Downscaler::new(sw, sh, tw.min(sw), th.min(sh));
    let width = sw as usize;
    match info.pixel_format {
        PixelFormat::RGB24 => pixels
            .chunks_exact(width * 3)
            .for_each(|r| scaler.push_rgb(r)),
        PixelFormat::L8 => pixels
            .chunks_exact(width)
            .for_each(|r| scaler.push_with(r, 1, gray)),
        PixelFormat::L16 => pixels
            .chunks_exact(width * 2)
            .for_each(|r| scaler.push_with(r, 2, |p| gray(&p[..1]))),
        PixelFormat::CMYK32 => pixels
            .chunks_exact(width * 4)
            .for_each(|r| scaler.push_with(r, 4, cmyk)),
    }
    Ok((scaler.finish().oriented(orientation), icc))
}

fn gray(p: &[u8]) -> [u8; 3] {
    [p[0]; 3]
}

/// jpeg-decoder hands CMYK over as ink amounts (it undoes Adobe's inverted storage, and turns
/// YCCK into CMYK), so white paper is 0 and full ink 255; light is what the ink leaves.
fn cmyk(p: &[u8]) -> [u8; 3] {
    let paper = 255 - u16::from(p[3]);
    let c = |ink: u8| (((255 - u16::from(ink)) * paper + 127) / 255) as u8;
    [c(p[0]), c(p[1]), c(p[2])]
}

/// Alpha composited over white, as a browser shows a transparent PNG on our page.
fn over_white(value: u8, alpha: u8) -> u8 {
    let a = u16::from(alpha);
    ((u16::from(value) * a + 255 * (255 - a) + 127) / 255) as u8
}

/// Turns one decoded pixel into RGB.
type ToRgb = fn(&[u8]) -> [u8; 3];

/// A stream that the PNG decoder may hold as `Seek` (its type asks for it) but that only goes
/// forward: the decoder reads chunks in order and never seeks.
struct Forward<R> {
    inner: R,
}

impl<R> Forward<R> {
    fn new(inner: R) -> Forward<R> {
        Forward { inner }
    }
}

impl<R: Read> Read for Forward<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf)
    }
}

impl<R: BufRead> BufRead for Forward<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amount: usize) {
        self.inner.consume(amount)
    }
}

impl<R> Seek for Forward<R> {
    fn seek(&mut self, _: SeekFrom) -> std::io::Result<u64> {
        Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "a streamed image cannot seek",
        ))
    }
}

/// Reads a PNG row by row (whole frame only when interlaced) into the downscaler.
fn decode_png<R: BufRead + Seek>(source: R, side: u32) -> Result<(Rgb, Option<Vec<u8>>), Stop> {
    use png::{ColorType, Transformations};
    let mut decoder = png::Decoder::new_with_limits(
        source,
        png::Limits {
            bytes: DECODER_LIMIT,
        },
    );
    // Palette and low bit depths to 8-bit samples, tRNS to alpha, 16-bit to 8-bit.
    decoder.set_transformations(Transformations::EXPAND | Transformations::STRIP_16);
    let damaged = |e: png::DecodingError| match e {
        png::DecodingError::LimitsExceeded => {
            Stop::Limit("PNG larger than the decoder's memory limit".into())
        }
        other => Stop::Damaged(format!("the PNG data is damaged ({other})")),
    };
    let mut reader = decoder.read_info().map_err(damaged)?;
    let (width, height, interlaced, orientation, icc) = {
        let info = reader.info();
        let orientation = info
            .exif_metadata
            .as_deref()
            .map(|tiff| exif::parse(tiff).orientation)
            .unwrap_or_default();
        let icc = info.icc_profile.as_deref().map(<[u8]>::to_vec);
        (info.width, info.height, info.interlaced, orientation, icc)
    };
    too_many(width.into(), height.into(), MAX_PIXELS, "pictures")?;
    let (channels, convert): (usize, ToRgb) = match reader.output_color_type().0 {
        ColorType::Grayscale => (1, gray),
        ColorType::GrayscaleAlpha => (2, |p| [over_white(p[0], p[1]); 3]),
        ColorType::Rgb => (3, |p| [p[0], p[1], p[2]]),
        ColorType::Rgba => (4, |p| {
            [
                over_white(p[0], p[3]),
                over_white(p[1], p[3]),
                over_white(p[2], p[3]),
            ]
        }),
        ColorType::Indexed => return Err(Stop::Limit("PNG palette was not expanded".into())),
    };
    let (tw, th) = fit(width, height, side);
    let mut scaler = Downscaler::new(width, height, tw, th);
    if interlaced {
        too_many(
            width.into(),
            height.into(),
            MAX_INTERLACED_PIXELS,
            "interlaced PNGs",
        )?;
        let size = reader
            .output_buffer_size()
            .ok_or_else(|| Stop::Limit("PNG frame too large".into()))?;
        let mut frame = vec![0; size];
        let info = reader.next_frame(&mut frame).map_err(damaged)?;
        for row in frame[..info.buffer_size()].chunks_exact(info.line_size) {
            scaler.push_with(&row[..width as usize * channels], channels, convert);
        }
    } else {
        while let Some(row) = reader.next_row().map_err(damaged)? {
            scaler.push_with(row.data(), channels, convert);
        }
    }
    if scaler.rows_in != height {
        return Err(Stop::Damaged("the PNG ended early".into()));
    }
    Ok((scaler.finish().oriented(orientation), icc))
}

/// An area-averaging downscaler fed one source row at a time, so a source never needs to be
/// in memory whole. Each source pixel adds to the one or two destination pixels it overlaps,
/// weighted by the overlap, in integers; it holds two destination rows of sums.
struct Downscaler {
    src: (u32, u32),
    dst: (u32, u32),
    /// Per source column: destination column, weight there, weight in the next one.
    columns: Vec<(u32, u32, u32)>,
    /// One source row's horizontal sums, normalised to 0..=255·256.
    row: Vec<u32>,
    /// Vertical sums of the current destination row and of the next.
    current: Vec<u32>,
    next: Vec<u32>,
    current_index: u32,
    rows_in: u32,
    out: Vec<u8>,
}

impl Downscaler {
    fn new(src_w: u32, src_h: u32, dst_w: u32, dst_h: u32) -> Downscaler {
        let (dst_w, dst_h) = (dst_w.clamp(1, src_w.max(1)), dst_h.clamp(1, src_h.max(1)));
        let columns = (0..src_w)
            .map(|x| split(x, src_w, dst_w))
            .collect::<Vec<_>>();
        let width = dst_w as usize * 3;
        Downscaler {
            src: (src_w, src_h),
            dst: (dst_w, dst_h),
            columns,
            row: vec![0; width],
            current: vec![0; width],
            next: vec![0; width],
            current_index: 0,
            rows_in: 0,
            out: Vec::with_capacity(width * dst_h as usize),
        }
    }

    fn push_rgb(&mut self, row: &[u8]) {
        self.push_with(row, 3, |p| [p[0], p[1], p[2]]);
    }

    /// Adds one source row of `channels`-byte pixels, each turned into RGB by `convert`.
    fn push_with(&mut self, row: &[u8], channels: usize, convert: impl Fn(&[u8]) -> [u8; 3]) {
        if self.rows_in >= self.src.1 {
            return;
        }
        self.row.iter_mut().for_each(|v| *v = 0);
        for (pixel, &(col, w0, w1)) in row.chunks_exact(channels).zip(&self.columns) {
            let rgb = convert(pixel);
            let at = col as usize * 3;
            for (c, &value) in rgb.iter().enumerate() {
                self.row[at + c] += u32::from(value) * w0;
                if w1 > 0 {
                    self.row[at + 3 + c] += u32::from(value) * w1;
                }
            }
        }
        // Each destination column received weights summing to the source width.
        let src_w = u64::from(self.src.0);
        for v in &mut self.row {
            *v = ((u64::from(*v) * 256 + src_w / 2) / src_w) as u32;
        }
        let (index, v0, v1) = split(self.rows_in, self.src.1, self.dst.1);
        while self.current_index < index {
            self.emit();
        }
        for ((cur, next), value) in self.current.iter_mut().zip(&mut self.next).zip(&self.row) {
            *cur += value * v0;
            *next += value * v1;
        }
        self.rows_in += 1;
    }

    /// Writes the current destination row out and moves on to the next.
    fn emit(&mut self) {
        let total = u64::from(self.src.1) * 256;
        self.out.extend(
            self.current
                .iter()
                .map(|&v| ((u64::from(v) + total / 2) / total).min(255) as u8),
        );
        std::mem::swap(&mut self.current, &mut self.next);
        self.next.iter_mut().for_each(|v| *v = 0);
        self.current_index += 1;
    }

    fn finish(mut self) -> Rgb {
        while self.current_index < self.dst.1 {
            self.emit();
        }
        Rgb {
            width: self.dst.0,
            height: self.dst.1,
            pixels: self.out,
        }
    }
}

/// Where source step `i` of `src` lands among `dst` steps: the first destination step it
/// overlaps and the overlap there and in the following step, in units of 1/`src` of a
/// destination step (so a destination step's weights sum to `src`).
fn split(i: u32, src: u32, dst: u32) -> (u32, u32, u32) {
    let (i, src, dst) = (u64::from(i), u64::from(src), u64::from(dst));
    let start = i * dst;
    let end = start + dst;
    let first = start / src;
    let boundary = (first + 1) * src;
    if end <= boundary || first + 1 >= dst {
        (first as u32, dst as u32, 0)
    } else {
        (
            first as u32,
            (boundary - start) as u32,
            (end - boundary) as u32,
        )
    }
}

/// A counting semaphore for decodes: at most `slots` run at once, others wait up to a limit.
#[derive(Debug)]
pub(crate) struct DecodeSlots {
    free: Mutex<usize>,
    freed: Condvar,
}

/// A decode slot, given back when dropped.
pub(crate) struct DecodePermit<'a>(&'a DecodeSlots);

impl DecodeSlots {
    pub(crate) fn new(slots: usize) -> DecodeSlots {
        DecodeSlots {
            free: Mutex::new(slots.max(1)),
            freed: Condvar::new(),
        }
    }

    /// A slot, waiting at most `wait`; `None` when none came free in time.
    pub(crate) fn acquire(&self, wait: Duration) -> Option<DecodePermit<'_>> {
        let until = Instant::now() + wait;
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        while *free == 0 {
            let left = until.checked_duration_since(Instant::now())?;
            free = self
                .freed
                .wait_timeout(free, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        *free -= 1;
        Some(DecodePermit(self))
    }
}

impl Drop for DecodePermit<'_> {
    fn drop(&mut self) {
        *self.0.free.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        self.0.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn made(outcome: Outcome) -> Renditions {
        match outcome {
            Outcome::Made(r) => r,
            Outcome::Damaged(why) => panic!("damaged: {why}"),
        }
    }

    fn dims(jpeg: &[u8]) -> (u16, u16) {
        let mut d = jpeg_decoder::Decoder::new(jpeg);
        d.read_info().unwrap();
        let info = d.info().unwrap();
        (info.width, info.height)
    }

    #[test]
    fn renditions_keep_the_aspect_and_never_enlarge() {
        assert_eq!(fit(4000, 3000, 1600), (1600, 1200));
        assert_eq!(fit(3000, 4000, 400), (300, 400));
        assert_eq!(fit(300, 200, 400), (300, 200));
        assert_eq!(fit(10_000, 32, 400), (400, 1));
        let dog = include_bytes!("../tests/fixtures/photos/dog.jpg");
        let r = made(make(&dog[..], ImageKind::Jpeg));
        assert!(r.placeholder.is_none(), "{:?}", r.placeholder);
        assert_eq!(dims(&r.thumb), (400, 300));
        assert_eq!(
            dims(&r.preview),
            (768, 576),
            "small photos are not enlarged"
        );
        let cat = include_bytes!("../tests/fixtures/photos/chelsea.png");
        let r = made(make(&cat[..], ImageKind::Png));
        assert!(r.placeholder.is_none(), "{:?}", r.placeholder);
        assert_eq!(dims(&r.thumb), (400, 266));
        assert!(r.thumb.len() < 60_000, "{}", r.thumb.len());
    }

    #[test]
    fn downscaling_averages_areas() {
        // Two columns, black and white, become one grey pixel; a 3→2 split weighs overlaps.
        let mut s = Downscaler::new(2, 1, 1, 1);
        s.push_rgb(&[0, 0, 0, 255, 255, 255]);
        assert_eq!(s.finish().pixels, vec![128, 128, 128]);
        let mut s = Downscaler::new(3, 1, 2, 1);
        s.push_rgb(&[0, 0, 0, 90, 90, 90, 180, 180, 180]);
        // Left: 2/3 of 0 and 1/3 of 90 → 30·… weights in thirds: (0·2 + 90·1)/3 = 30.
        assert_eq!(s.finish().pixels, vec![30, 30, 30, 150, 150, 150]);
        let mut s = Downscaler::new(1, 4, 1, 2);
        for v in [0u8, 100, 200, 255] {
            s.push_rgb(&[v, v, v]);
        }
        assert_eq!(s.finish().pixels, vec![50, 50, 50, 228, 228, 228]);
        for (i, src, dst) in [(0, 10, 3), (3, 10, 3), (9, 10, 3), (5, 7, 7)] {
            let (_, a, b) = split(i, src, dst);
            assert_eq!(a + b, dst, "{i} {src} {dst}");
        }
    }

    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    #[test]
    fn images_past_the_pixel_limit_get_the_placeholder_without_decoding() {
        // A 9000×9000 PNG (81 MP) cut after its header: refused on the header alone.
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut ihdr = b"IHDR".to_vec();
        ihdr.extend_from_slice(&9000u32.to_be_bytes());
        ihdr.extend_from_slice(&9000u32.to_be_bytes());
        ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
        png.extend_from_slice(&13u32.to_be_bytes());
        png.extend_from_slice(&ihdr);
        png.extend_from_slice(&crc32(&ihdr).to_be_bytes());
        png.extend_from_slice(&[0, 0, 0, 0, b'I', b'D', b'A', b'T']);
        let started = Instant::now();
        let r = made(make(&png[..], ImageKind::Png));
        assert!(started.elapsed() < Duration::from_secs(1));
        let why = r.placeholder.expect("a placeholder");
        assert!(why.contains("9000 × 9000"), "{why}");
        assert_eq!(dims(&r.thumb), (400, 300));
        let r = make(&b"\xFF\xD8\xFF\xE0garbage"[..], ImageKind::Jpeg);
        assert!(matches!(r, Outcome::Damaged(_)), "{r:?}");
    }

    #[test]
    fn decode_slots_bound_and_time_out() {
        let slots = DecodeSlots::new(1);
        let held = slots.acquire(Duration::ZERO).unwrap();
        assert!(slots.acquire(Duration::from_millis(20)).is_none());
        drop(held);
        assert!(slots.acquire(Duration::ZERO).is_some());
    }
}
