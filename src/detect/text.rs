//! The local text reader (feature `local`): PaddleOCR's PP-OCRv4 detector and recogniser on
//! tract, answering in OCI Vision's `imageText` shape (words and lines with confidence and
//! normalised polygons) so TEXT_DETECTION works on one machine and in tests.
//!
//! Two graphs, each loaded and optimised once, then shared (`read` takes `&self`):
//! 1. detection: the image, scaled so its longer side is `input_side` and padded to a square
//!    of that side (tract cannot type this graph with a symbolic height and width: its
//!    `p2o.Concat.0` fails analysis), gives a text probability map; `db.rs` turns it into
//!    boxes;
//! 2. recognition: each box, cut from the original image and scaled to 48 pixels high, gives
//!    per-column character probabilities; `ctc.rs` decodes them into characters and words. Its
//!    width cannot be symbolic either (tract: "p2o.Reshape.67 … shape input is variable"), so
//!    the line is padded to the narrowest of three widths (320, 640, 1280) that holds it, each
//!    width's plan optimised on first use, and longer lines are squeezed into the widest.
//!
//! Both networks read B, G, R planes (PaddleOCR reads images with OpenCV): detection normalised
//! with ImageNet's mean and std, recognition to −1..1. Quality is a mobile model's: good on
//! printed text, weak on handwriting; callers present results as "local model".

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use image::imageops::{self, FilterType};
use image::RgbImage;
use tract_onnx::prelude::{
    tract_ndarray, tvec, Datum, Framework, InferenceFact, InferenceModelExt, IntoRunnable,
    IntoTensor, TDim, TypedRunnableModel,
};

use super::ctc;
use super::db::{self, DbParams, TextBox};
use crate::error::{Error, Result};
use crate::oci::vision::{BoundingPolygon, ImageText, Line, Vertex, Word};

/// Reads the text in an image: the local OCR models, or a test's own.
pub trait TextReader: Send + Sync {
    /// Words and lines of a JPEG or PNG image, lines in reading order; `Err` is shown to the
    /// caller as a per-feature error inside a 200, as Vision reports model failures.
    fn read(&self, image: &[u8]) -> std::result::Result<ImageText, String>;

    /// The model version reported as `textDetectionModelVersion`.
    fn model_version(&self) -> String;
}

/// The detection model shipped with the crate, found through the crate's own directory.
pub const DEFAULT_DETECTION_PATH: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/models/ppocr-v4-det.onnx");
/// The recognition model shipped with the crate.
pub const DEFAULT_RECOGNITION_PATH: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/models/ppocr-v4-rec.onnx");
/// The recogniser's alphabet, one character per line (class `i` is line `i − 1`).
pub const DEFAULT_ALPHABET_PATH: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/models/ppocr-keys-v1.txt");

/// PP-OCR's detection normalisation (ImageNet's), in the B, G, R order the network reads.
const DET_MEAN_BGR: [f32; 3] = [0.485, 0.456, 0.406];
const DET_STD_BGR: [f32; 3] = [0.229, 0.224, 0.225];

/// Height of the recogniser's input; its output has one step per 8 columns.
const REC_HEIGHT: u32 = 48;
const REC_STEP: u32 = 8;
/// The recogniser's input widths, narrowest first (one optimised plan each, made on first use).
const REC_WIDTHS: [u32; 3] = [320, 640, 1280];

/// How to load and run the reader. Every field has a working default.
#[derive(Debug, Clone, PartialEq)]
pub struct TextConfig {
    /// The detection ONNX file. Default: [`DEFAULT_DETECTION_PATH`].
    pub detection_path: PathBuf,
    /// The recognition ONNX file. Default: [`DEFAULT_RECOGNITION_PATH`].
    pub recognition_path: PathBuf,
    /// The alphabet file. Default: [`DEFAULT_ALPHABET_PATH`].
    pub alphabet_path: PathBuf,
    /// Side of the detector's square input, in pixels (a multiple of 32): the image is scaled
    /// so its longer side fits, aspect kept, and padded. Bounds time and memory per image.
    /// Default: 960 (PaddleOCR's own limit).
    pub input_side: u32,
    /// Lowest line confidence reported, 0..1. Default: 0.5 (PaddleOCR's `drop_score`).
    pub min_confidence: f32,
    /// Most lines read per image. Default: 200.
    pub max_lines: usize,
    /// Widest or tallest image decoded. Default: 16384.
    pub max_image_side: u32,
    /// Most memory the image decoder may allocate. Default: 256 MiB.
    pub max_decode_bytes: u64,
}

impl Default for TextConfig {
    fn default() -> TextConfig {
        TextConfig {
            detection_path: DEFAULT_DETECTION_PATH.into(),
            recognition_path: DEFAULT_RECOGNITION_PATH.into(),
            alphabet_path: DEFAULT_ALPHABET_PATH.into(),
            input_side: 960,
            min_confidence: 0.5,
            max_lines: 200,
            max_image_side: 16_384,
            max_decode_bytes: 256 * 1024 * 1024,
        }
    }
}

/// PP-OCRv4's detector and recogniser, optimised once and shared by all callers.
pub struct LocalTextReader {
    config: TextConfig,
    detection: Arc<TypedRunnableModel>,
    /// One plan per width of [`REC_WIDTHS`], made when first needed.
    recognition: [OnceLock<std::result::Result<Arc<TypedRunnableModel>, String>>; 3],
    alphabet: Vec<char>,
}

impl fmt::Debug for LocalTextReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalTextReader")
            .field("config", &self.config)
            .field("alphabet", &self.alphabet.len())
            .finish_non_exhaustive()
    }
}

impl LocalTextReader {
    /// Loads the alphabet and both models. A missing or unusable file is an [`Error::Config`]
    /// naming it.
    pub fn load(config: TextConfig) -> Result<LocalTextReader> {
        let alphabet_text = std::fs::read_to_string(&config.alphabet_path).map_err(|e| {
            Error::Config(format!(
                "local text alphabet {} not readable: {e} (see models/README.md)",
                config.alphabet_path.display()
            ))
        })?;
        // One character per line; PaddleOCR appends the space as the last class.
        let mut alphabet: Vec<char> = alphabet_text
            .lines()
            .map(|l| l.chars().next().unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect();
        alphabet.push(' ');
        let side = (config.input_side.max(32) / 32 * 32) as usize;
        let detection = load_plan(&config.detection_path, Some(side), Some(side))?;
        // The narrowest recognition plan now, so a broken file is found at load, not per image.
        let recognition: [OnceLock<_>; 3] = Default::default();
        let first = load_plan(
            &config.recognition_path,
            Some(REC_HEIGHT as usize),
            Some(REC_WIDTHS[0] as usize),
        )?;
        let _ = recognition[0].set(Ok(first));
        Ok(LocalTextReader {
            config,
            detection,
            recognition,
            alphabet,
        })
    }

    /// The configuration the reader was loaded with.
    pub fn config(&self) -> &TextConfig {
        &self.config
    }

    /// The text regions of `rgb`, in reading order.
    fn regions(&self, rgb: &RgbImage) -> std::result::Result<Vec<TextBox>, String> {
        let side = self.config.input_side.max(32) / 32 * 32;
        let (width, height) = detector_size(rgb.width(), rgb.height(), side);
        let resized = imageops::resize(rgb, width, height, FilterType::Triangle);
        // Padding is 0 after normalisation: the mean colour, which reads as no text.
        let plane = (side * side) as usize;
        let mut planes = vec![0.0f32; 3 * plane];
        for (x, y, px) in resized.enumerate_pixels() {
            let i = (y * side + x) as usize;
            for (c, value) in [px[2], px[1], px[0]].into_iter().enumerate() {
                planes[c * plane + i] =
                    (f32::from(value) / 255.0 - DET_MEAN_BGR[c]) / DET_STD_BGR[c];
            }
        }
        let input = tensor(planes, side as usize, side as usize)?;
        let outputs = self
            .detection
            .run(tvec!(input.into()))
            .map_err(|e| format!("local text detection failed: {e}"))?;
        let map = outputs
            .first()
            .ok_or("local text detection gave no output")?
            .to_plain_array_view::<f32>()
            .map_err(|e| format!("local text detection output: {e}"))?;
        let map = map
            .as_slice()
            .ok_or("local text detection output is not contiguous")?;
        let params = DbParams {
            binary_threshold: 0.3,
            box_threshold: 0.6,
            unclip_ratio: 1.5,
            min_side: 3.0,
            max_boxes: self.config.max_lines,
        };
        // Boxes come normalised to the square; the image is its top-left width × height.
        let (sx, sy) = (side as f32 / width as f32, side as f32 / height as f32);
        let boxes = db::boxes(map, side as usize, side as usize, &params)
            .into_iter()
            .map(|b| TextBox {
                bbox: [
                    (b.bbox[0] * sx).min(1.0),
                    (b.bbox[1] * sy).min(1.0),
                    (b.bbox[2] * sx).min(1.0),
                    (b.bbox[3] * sy).min(1.0),
                ],
                score: b.score,
            })
            .filter(|b| b.bbox[0] < b.bbox[2] && b.bbox[1] < b.bbox[3])
            .collect();
        Ok(db::reading_order(boxes))
    }

    /// Reads the line in `region` of `rgb`: its characters with their time steps, and how many
    /// original pixels one time step covers.
    fn recognise(
        &self,
        rgb: &RgbImage,
        region: &TextBox,
    ) -> std::result::Result<(Vec<ctc::Glyph>, f32), String> {
        let (w, h) = (rgb.width() as f32, rgb.height() as f32);
        let [x0, y0, x1, y1] = region.bbox;
        let (px0, py0) = ((x0 * w) as u32, (y0 * h) as u32);
        let (px1, py1) = (
            ((x1 * w).ceil() as u32).min(rgb.width()),
            ((y1 * h).ceil() as u32).min(rgb.height()),
        );
        let (cw, ch) = (
            px1.saturating_sub(px0).max(1),
            py1.saturating_sub(py0).max(1),
        );
        let crop = imageops::crop_imm(rgb, px0, py0, cw, ch).to_image();
        let widest = REC_WIDTHS[REC_WIDTHS.len() - 1];
        let scaled_width =
            ((REC_HEIGHT as f32 * cw as f32 / ch as f32).ceil() as u32).clamp(REC_STEP, widest);
        let line = imageops::resize(&crop, scaled_width, REC_HEIGHT, FilterType::Triangle);
        // Padded on the right with 0, the normalised grey PaddleOCR pads with.
        let bucket = REC_WIDTHS
            .iter()
            .position(|&w| w >= scaled_width)
            .unwrap_or(REC_WIDTHS.len() - 1);
        let input_width = REC_WIDTHS[bucket];
        let plan = self.recognition[bucket]
            .get_or_init(|| {
                load_plan(
                    &self.config.recognition_path,
                    Some(REC_HEIGHT as usize),
                    Some(input_width as usize),
                )
                .map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(|e| e.clone())?;
        let plane = (input_width * REC_HEIGHT) as usize;
        let mut planes = vec![0.0f32; 3 * plane];
        for (x, y, px) in line.enumerate_pixels() {
            let i = (y * input_width + x) as usize;
            for (c, value) in [px[2], px[1], px[0]].into_iter().enumerate() {
                planes[c * plane + i] = f32::from(value) / 127.5 - 1.0;
            }
        }
        let input = tensor(planes, REC_HEIGHT as usize, input_width as usize)?;
        let outputs = plan
            .run(tvec!(input.into()))
            .map_err(|e| format!("local text recognition failed: {e}"))?;
        let probs = outputs
            .first()
            .ok_or("local text recognition gave no output")?
            .to_plain_array_view::<f32>()
            .map_err(|e| format!("local text recognition output: {e}"))?;
        let shape = probs.shape().to_vec();
        let (Some(&steps), Some(&classes)) = (shape.get(1), shape.get(2)) else {
            return Err(format!("local text recognition output has shape {shape:?}"));
        };
        if classes != self.alphabet.len() + 1 {
            return Err(format!(
                "local text recognition has {classes} classes for an alphabet of {}",
                self.alphabet.len()
            ));
        }
        let probs = probs
            .as_slice()
            .ok_or("local text recognition output is not contiguous")?;
        let glyphs = ctc::decode(probs, classes, &self.alphabet);
        // Steps cover the padded width; only `scaled_width` of it is the crop.
        let per_step = cw as f32 * (input_width as f32 / scaled_width as f32) / steps.max(1) as f32;
        Ok((glyphs, per_step))
    }
}

impl TextReader for LocalTextReader {
    fn read(&self, image: &[u8]) -> std::result::Result<ImageText, String> {
        let rgb = super::decode_image(
            image,
            self.config.max_image_side,
            self.config.max_decode_bytes,
        )?;
        let w = rgb.width() as f32;
        let mut text = ImageText::default();
        for region in self.regions(&rgb)? {
            let (glyphs, per_step) = self.recognise(&rgb, &region)?;
            let spans = ctc::words(&glyphs);
            if spans.is_empty() {
                continue;
            }
            let confidence = glyphs.iter().map(|g| g.confidence).sum::<f32>() / glyphs.len() as f32;
            if confidence < self.config.min_confidence {
                continue;
            }
            let [x0, y0, x1, y1] = region.bbox;
            let left = x0 * w;
            let mut word_indexes = Vec::with_capacity(spans.len());
            for span in &spans {
                // A word spans its characters' time steps, half a step either side.
                let start = left + (span.first_step as f32 - 0.5).max(0.0) * per_step;
                let end = left + (span.last_step as f32 + 1.5) * per_step;
                word_indexes.push(text.words.len());
                text.words.push(Word {
                    text: span.text.clone(),
                    confidence: f64::from(span.confidence),
                    bounding_polygon: rectangle([
                        (start / w).clamp(x0, x1),
                        y0,
                        (end / w).clamp(x0, x1),
                        y1,
                    ]),
                });
            }
            let line_text: Vec<&str> = spans.iter().map(|s| s.text.as_str()).collect();
            text.lines.push(Line {
                text: line_text.join(" "),
                confidence: f64::from(confidence),
                bounding_polygon: rectangle(region.bbox),
                word_indexes,
            });
        }
        Ok(text)
    }

    fn model_version(&self) -> String {
        "PP-OCRv4 (local)".into()
    }
}

/// Loads an ONNX file with a `[1, 3, height, width]` input, each side fixed when given and
/// otherwise symbolic, so one plan serves every size along it.
fn load_plan(
    path: &std::path::Path,
    height: Option<usize>,
    width: Option<usize>,
) -> Result<Arc<TypedRunnableModel>> {
    let name = path.display().to_string();
    if !path.is_file() {
        return Err(Error::Config(format!(
            "local model file {name} not found (see models/README.md)"
        )));
    }
    // `{:#}` prints tract's whole error chain: the failing node and operator.
    let unusable = |e: &tract_onnx::prelude::TractError| {
        Error::Config(format!("local model file {name} is not usable: {e:#}"))
    };
    let model = tract_onnx::onnx()
        .model_for_path(path)
        .map_err(|e| unusable(&e))?;
    let h: TDim = match height {
        Some(h) => h.into(),
        None => model.symbols.sym("h").into(),
    };
    let w: TDim = match width {
        Some(w) => w.into(),
        None => model.symbols.sym("w").into(),
    };
    let fact = InferenceFact::dt_shape(f32::datum_type(), [1.into(), 3.into(), h, w]);
    let plan = model
        .with_input_fact(0, fact)
        .and_then(|m| m.into_optimized())
        .and_then(|m| m.into_runnable())
        .map_err(|e| unusable(&e))?;
    log::debug!("local text reader: loaded {name}");
    Ok(plan)
}

/// A `[1, 3, height, width]` tensor from planar data.
fn tensor(
    planes: Vec<f32>,
    height: usize,
    width: usize,
) -> std::result::Result<tract_onnx::prelude::Tensor, String> {
    Ok(
        tract_ndarray::Array4::from_shape_vec((1, 3, height, width), planes)
            .map_err(|e| format!("local model input: {e}"))?
            .into_tensor(),
    )
}

/// The size a `width` × `height` image is scaled to inside the detector's `side` × `side`
/// input: the aspect kept, the longer side `side` (small images are enlarged too: text in them
/// is small), each at least 1.
fn detector_size(width: u32, height: u32, side: u32) -> (u32, u32) {
    let longer = width.max(height).max(1) as f32;
    let scale = side as f32 / longer;
    let fit = |n: u32| ((n as f32 * scale).round() as u32).clamp(1, side);
    (fit(width), fit(height))
}

/// Corners clockwise from the top-left, as OCI orders them.
fn rectangle([x0, y0, x1, y1]: [f32; 4]) -> BoundingPolygon {
    let [x0, y0, x1, y1] = [x0, y0, x1, y1].map(f64::from);
    BoundingPolygon {
        normalized_vertices: vec![
            Vertex { x: x0, y: y0 },
            Vertex { x: x1, y: y0 },
            Vertex { x: x1, y: y1 },
            Vertex { x: x0, y: y1 },
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_image_fills_the_detector_input_on_its_longer_side() {
        assert_eq!(detector_size(4000, 3000, 960), (960, 720));
        assert_eq!(detector_size(3000, 4000, 960), (720, 960));
        assert_eq!(detector_size(640, 360, 960), (960, 540));
        assert_eq!(detector_size(10_000, 32, 960), (960, 3));
        assert_eq!(detector_size(10_000, 1, 960), (960, 1));
    }

    #[test]
    fn missing_files_are_config_errors_naming_them() {
        let config = TextConfig {
            alphabet_path: "/nonexistent/keys.txt".into(),
            ..TextConfig::default()
        };
        match LocalTextReader::load(config) {
            Err(Error::Config(m)) => assert!(m.contains("/nonexistent/keys.txt"), "{m}"),
            other => panic!("expected a config error, got {other:?}"),
        }
        let config = TextConfig {
            detection_path: "/nonexistent/det.onnx".into(),
            ..TextConfig::default()
        };
        match LocalTextReader::load(config) {
            Err(Error::Config(m)) => assert!(m.contains("/nonexistent/det.onnx"), "{m}"),
            other => panic!("expected a config error, got {other:?}"),
        }
    }
}
