//! Photos as phones write them, made by the tests: JPEGs whose pixels are stored sideways with
//! the EXIF orientation that turns them upright, dates and camera names, a GPS block that must
//! never come out again, CMYK files as print software writes them, and a 24-megapixel photo of
//! about 10 MB. The EXIF here is written independently of the library's reader (`src/exif.rs`),
//! so the tests check one against the other.

use std::io::Cursor;

/// An RGB picture in memory.
#[derive(Debug, Clone, PartialEq)]
pub struct Picture {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u8>,
}

impl Picture {
    pub fn from_fn(width: u32, height: u32, mut pixel: impl FnMut(u32, u32) -> [u8; 3]) -> Picture {
        let mut pixels = Vec::with_capacity(width as usize * height as usize * 3);
        for y in 0..height {
            for x in 0..width {
                pixels.extend_from_slice(&pixel(x, y));
            }
        }
        Picture {
            width,
            height,
            pixels,
        }
    }

    pub fn at(&self, x: u32, y: u32) -> [u8; 3] {
        let i = (y as usize * self.width as usize + x as usize) * 3;
        [self.pixels[i], self.pixels[i + 1], self.pixels[i + 2]]
    }

    /// The average colour of the box `[x0, x1) × [y0, y1)` given as fractions of the sides.
    pub fn mean(&self, [x0, y0, x1, y1]: [f64; 4]) -> [f64; 3] {
        let (w, h) = (f64::from(self.width), f64::from(self.height));
        let (xa, xb) = ((x0 * w) as u32, ((x1 * w) as u32).max((x0 * w) as u32 + 1));
        let (ya, yb) = ((y0 * h) as u32, ((y1 * h) as u32).max((y0 * h) as u32 + 1));
        let mut sum = [0f64; 3];
        let mut n = 0f64;
        for y in ya..yb.min(self.height) {
            for x in xa..xb.min(self.width) {
                let p = self.at(x, y);
                for c in 0..3 {
                    sum[c] += f64::from(p[c]);
                }
                n += 1.0;
            }
        }
        sum.map(|s| s / n.max(1.0))
    }

    /// The pixels a camera stores for this upright picture when it writes EXIF orientation
    /// `tag`: displaying the stored pixels turned as the tag says gives this picture back.
    pub fn stored_for(&self, tag: u16) -> Picture {
        let (w, h) = (self.width, self.height);
        // The stored frame is the upright one with sides swapped for 5–8.
        let (sw, sh) = if tag >= 5 { (h, w) } else { (w, h) };
        Picture::from_fn(sw, sh, |x, y| {
            // Where stored (x, y) is shown upright (EXIF 2.32, tag 0x0112).
            let (ux, uy) = match tag {
                2 => (sw - 1 - x, y),
                3 => (sw - 1 - x, sh - 1 - y),
                4 => (x, sh - 1 - y),
                5 => (y, x),
                6 => (sh - 1 - y, x),
                7 => (sh - 1 - y, sw - 1 - x),
                8 => (y, sw - 1 - x),
                _ => (x, y),
            };
            self.at(ux, uy)
        })
    }

    pub fn jpeg(&self, quality: u8) -> Vec<u8> {
        let mut out = Vec::new();
        jpeg_encoder::Encoder::new(&mut out, quality)
            .encode(
                &self.pixels,
                self.width as u16,
                self.height as u16,
                jpeg_encoder::ColorType::Rgb,
            )
            .expect("encodes");
        out
    }

    /// The same picture as an Adobe CMYK JPEG (ink amounts, stored inverted, APP14), or YCCK.
    pub fn cmyk_jpeg(&self, ycck: bool) -> Vec<u8> {
        let mut ink = Vec::with_capacity(self.pixels.len() / 3 * 4);
        for p in self.pixels.chunks_exact(3) {
            let k = 255 - p[0].max(p[1]).max(p[2]);
            let of = |v: u8| {
                if k == 255 {
                    0
                } else {
                    ((255 - u16::from(v) - u16::from(k)) * 255 / (255 - u16::from(k))) as u8
                }
            };
            ink.extend_from_slice(&[of(p[0]), of(p[1]), of(p[2]), k]);
        }
        let mut out = Vec::new();
        let color = if ycck {
            jpeg_encoder::ColorType::CmykAsYcck
        } else {
            jpeg_encoder::ColorType::Cmyk
        };
        jpeg_encoder::Encoder::new(&mut out, 95)
            .encode(&ink, self.width as u16, self.height as u16, color)
            .expect("encodes");
        out
    }
}

/// Decodes a JPEG the way a browser would show its pixels (no orientation applied).
pub fn decode(jpeg: &[u8]) -> Picture {
    let mut decoder = jpeg_decoder::Decoder::new(Cursor::new(jpeg));
    let pixels = decoder.decode().expect("a JPEG");
    let info = decoder.info().unwrap();
    assert_eq!(
        info.pixel_format,
        jpeg_decoder::PixelFormat::RGB24,
        "renditions are RGB"
    );
    Picture {
        width: u32::from(info.width),
        height: u32::from(info.height),
        pixels,
    }
}

/// What a phone writes in EXIF; every field optional.
#[derive(Debug, Clone, Default)]
pub struct PhoneExif<'a> {
    pub orientation: Option<u16>,
    pub make: Option<&'a str>,
    pub model: Option<&'a str>,
    pub taken: Option<&'a str>,
    pub offset: Option<&'a str>,
    /// Writes a GPS IFD with this latitude text as its `GPSLatitudeRef`-style marker, which
    /// must never appear in anything the app makes.
    pub gps_marker: Option<&'a str>,
}

impl PhoneExif<'_> {
    /// The TIFF structure (big-endian, as many cameras write it).
    pub fn tiff(&self) -> Vec<u8> {
        enum V<'t> {
            Short(u16),
            Text(&'t str),
            Pointer,
        }
        let mut ifd0: Vec<(u16, V)> = Vec::new();
        if let Some(m) = self.make {
            ifd0.push((0x010F, V::Text(m)));
        }
        if let Some(m) = self.model {
            ifd0.push((0x0110, V::Text(m)));
        }
        if let Some(o) = self.orientation {
            ifd0.push((0x0112, V::Short(o)));
        }
        let mut sub: Vec<(u16, V)> = Vec::new();
        if let Some(t) = self.taken {
            sub.push((0x9003, V::Text(t)));
        }
        if let Some(o) = self.offset {
            sub.push((0x9011, V::Text(o)));
        }
        let gps: Vec<(u16, V)> = self
            .gps_marker
            .map(|m| vec![(0x0001, V::Text(m))])
            .unwrap_or_default();
        if !sub.is_empty() {
            ifd0.push((0x8769, V::Pointer));
        }
        if !gps.is_empty() {
            ifd0.push((0x8825, V::Pointer));
        }
        // Layout: header, IFD0, sub-IFD, GPS IFD, then the texts.
        let size = |n: usize| 2 + 12 * n + 4;
        let ifd0_at = 8;
        let sub_at = ifd0_at + size(ifd0.len());
        let gps_at = sub_at + if sub.is_empty() { 0 } else { size(sub.len()) };
        let mut text_at = gps_at + if gps.is_empty() { 0 } else { size(gps.len()) };
        let mut out = b"MM\0\x2a".to_vec();
        out.extend_from_slice(&8u32.to_be_bytes());
        let mut texts = Vec::new();
        for (entries, present) in [
            (&ifd0, true),
            (&sub, !sub.is_empty()),
            (&gps, !gps.is_empty()),
        ] {
            if !present {
                continue;
            }
            out.extend_from_slice(&(entries.len() as u16).to_be_bytes());
            for (tag, value) in entries.iter() {
                out.extend_from_slice(&tag.to_be_bytes());
                match value {
                    V::Short(v) => {
                        out.extend_from_slice(&3u16.to_be_bytes());
                        out.extend_from_slice(&1u32.to_be_bytes());
                        out.extend_from_slice(&v.to_be_bytes());
                        out.extend_from_slice(&[0, 0]);
                    }
                    V::Pointer => {
                        out.extend_from_slice(&4u16.to_be_bytes());
                        out.extend_from_slice(&1u32.to_be_bytes());
                        let at = if *tag == 0x8769 { sub_at } else { gps_at };
                        out.extend_from_slice(&(at as u32).to_be_bytes());
                    }
                    V::Text(t) => {
                        let mut bytes = t.as_bytes().to_vec();
                        bytes.push(0);
                        out.extend_from_slice(&2u16.to_be_bytes());
                        out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
                        if bytes.len() <= 4 {
                            bytes.resize(4, 0);
                            out.extend_from_slice(&bytes);
                        } else {
                            out.extend_from_slice(&(text_at as u32).to_be_bytes());
                            text_at += bytes.len();
                            texts.extend_from_slice(&bytes);
                        }
                    }
                }
            }
            out.extend_from_slice(&0u32.to_be_bytes());
        }
        out.extend_from_slice(&texts);
        out
    }
}

/// `jpeg` with an `APP1 Exif` segment holding `exif` right after its start-of-image marker.
pub fn with_exif(jpeg: &[u8], exif: &PhoneExif<'_>) -> Vec<u8> {
    let tiff = exif.tiff();
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((tiff.len() + 8) as u16).to_be_bytes());
    out.extend_from_slice(b"Exif\0\0");
    out.extend_from_slice(&tiff);
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// A picture with a different colour in each quadrant and a dark bar along its top edge, so
/// any turn or mirror shows: top-left red, top-right green, bottom-left blue, bottom-right
/// yellow.
pub fn quadrants(width: u32, height: u32) -> Picture {
    Picture::from_fn(width, height, |x, y| {
        let (right, bottom) = (x >= width / 2, y >= height / 2);
        match (right, bottom) {
            (false, false) => [220, 30, 30],
            (true, false) => [30, 200, 30],
            (false, true) => [30, 30, 220],
            (true, true) => [230, 220, 30],
        }
    })
}

/// A 6000 × 4000 (24 MP) photo-like JPEG of about 10 MB: smooth colour with fine grain, as a
/// phone camera's noise makes a real one that large.
pub fn phone_photo_24mp() -> Vec<u8> {
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let picture = Picture::from_fn(6000, 4000, |x, y| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let grain = (seed % 24) as i32 - 12;
        let base = [
            (x * 255 / 6000) as i32,
            (y * 255 / 4000) as i32,
            (((x + y) / 40) % 256) as i32,
        ];
        base.map(|v| (v + grain).clamp(0, 255) as u8)
    });
    picture.jpeg(94)
}

/// A real `width` × `height` PNG of one grey, with `tag` in a text chunk so that tags make
/// different files (the upload answers identical content with the earlier image).
pub fn png(width: u32, height: u32, tag: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, width, height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
        encoder
            .add_text_chunk("tag".into(), hex)
            .expect("text chunk");
        let mut writer = encoder.write_header().expect("PNG header");
        writer
            .write_image_data(&vec![0x80; width as usize * height as usize * 3])
            .expect("PNG data");
    }
    out
}
