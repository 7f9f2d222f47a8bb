//! The local object detector (feature `local`): NanoDet on tract, answering in OCI
//! Vision's `imageObjects` shape so the pipeline runs on one machine and in tests.
//!
//! A [`LocalDetector`] is loaded and optimised once from an ONNX file, then shared: `detect`
//! takes `&self` and runs from many threads without a lock. Quality is a tiny model's (about 23
//! COCO mAP), well below the real service; callers should present results as "local model".
//!
//! Beside it, [`LocalTextReader`] (`text.rs`) reads text with PP-OCRv4 for TEXT_DETECTION.
//!
//! It deliberately does not: know HTTP (only `emulator::vision`, the benchmarks and tests call it), fetch or
//! embed models, accept formats other than JPEG and PNG, or letterbox (stretching scored better
//! on the sample photos).

mod ctc;
mod db;
mod nanodet;
mod nms;
mod text;

pub use text::{
    LocalTextReader, TextConfig, TextReader, DEFAULT_ALPHABET_PATH, DEFAULT_DETECTION_PATH,
    DEFAULT_RECOGNITION_PATH,
};

use std::fmt;
use std::io::Cursor;
use std::path::PathBuf;
use std::sync::Arc;

use tract_onnx::prelude::{
    tvec, DatumExt, Framework, InferenceModelExt, IntoRunnable, IntoTensor, TypedRunnableModel,
};

use crate::error::{Error, Result};
use crate::oci::vision::{BoundingPolygon, ImageObject, Vertex};

/// Finds objects in an image: the local ONNX model, or a test's own.
pub trait Detector: Send + Sync {
    /// Up to `max_results` objects in a JPEG or PNG image, best first; `Err` is shown to the
    /// caller as a per-feature error inside a 200, as Vision reports model failures.
    fn detect(&self, image: &[u8], max_results: usize) -> Result<Vec<ImageObject>, String>;

    /// The model version reported as `objectDetectionModelVersion`.
    fn model_version(&self) -> String;
}

/// The model shipped with the crate, found through the crate's own directory.
pub const DEFAULT_MODEL_PATH: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/models/nanodet-g-416.onnx");

/// COCO-80 class names in the models' index order.
const COCO_LABELS: [&str; 80] = [
    "person",
    "bicycle",
    "car",
    "motorcycle",
    "airplane",
    "bus",
    "train",
    "truck",
    "boat",
    "traffic light",
    "fire hydrant",
    "stop sign",
    "parking meter",
    "bench",
    "bird",
    "cat",
    "dog",
    "horse",
    "sheep",
    "cow",
    "elephant",
    "bear",
    "zebra",
    "giraffe",
    "backpack",
    "umbrella",
    "handbag",
    "tie",
    "suitcase",
    "frisbee",
    "skis",
    "snowboard",
    "sports ball",
    "kite",
    "baseball bat",
    "baseball glove",
    "skateboard",
    "surfboard",
    "tennis racket",
    "bottle",
    "wine glass",
    "cup",
    "fork",
    "knife",
    "spoon",
    "bowl",
    "banana",
    "apple",
    "sandwich",
    "orange",
    "broccoli",
    "carrot",
    "hot dog",
    "pizza",
    "donut",
    "cake",
    "chair",
    "couch",
    "potted plant",
    "bed",
    "dining table",
    "toilet",
    "tv",
    "laptop",
    "mouse",
    "remote",
    "keyboard",
    "cell phone",
    "microwave",
    "oven",
    "toaster",
    "sink",
    "refrigerator",
    "book",
    "clock",
    "vase",
    "scissors",
    "teddy bear",
    "hair drier",
    "toothbrush",
];

/// How a model's outputs are laid out and decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ModelFamily {
    /// NanoDet legacy v0.x with a GFL head: per stride, sigmoid class scores `[1, N, 80]` and
    /// side distributions `[1, N, 4 × (reg_max + 1)]`; input `[1, 3, S, S]`, BGR, mean/std.
    NanoDetGfl,
}

/// What the detector needs to know about a model file beyond the file itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelDescriptor {
    /// Short name, reported in `model_version()`.
    pub name: String,
    /// The output layout and decoder.
    pub family: ModelFamily,
    /// Side of the square input, in pixels.
    pub input_size: usize,
    /// Strides of the output levels, in input pixels per grid cell.
    pub strides: Vec<usize>,
    /// Largest distance bin of the GFL head (bins are `0..=reg_max`).
    pub reg_max: usize,
}

impl ModelDescriptor {
    /// The shipped model: NanoDet-g, 416×416, strides 8/16/32, `reg_max` 10, COCO-80.
    pub fn nanodet_g_416() -> ModelDescriptor {
        ModelDescriptor {
            name: "nanodet-g-416".into(),
            family: ModelFamily::NanoDetGfl,
            input_size: 416,
            strides: vec![8, 16, 32],
            reg_max: 10,
        }
    }
}

/// How to load and run the detector. Every field has a working default.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectorConfig {
    /// The ONNX file. Default: [`DEFAULT_MODEL_PATH`].
    pub model_path: PathBuf,
    /// What the file is. Default: [`ModelDescriptor::nanodet_g_416`].
    pub model: ModelDescriptor,
    /// Lowest class score reported, 0..1. Default: 0.35.
    pub score_threshold: f32,
    /// Overlap (IoU) at which a box of the same class as a better one is dropped. Default: 0.6.
    pub iou_threshold: f32,
    /// Most objects reported per image, before the caller's own `max_results`. Default: 100.
    pub max_detections: usize,
    /// Widest or tallest image decoded, in pixels; larger ones are refused before allocating.
    /// Default: 16384.
    pub max_image_side: u32,
    /// Most memory the image decoder may allocate, so a small compressed "bomb" cannot take the
    /// process down. Default: 256 MiB.
    pub max_decode_bytes: u64,
}

impl Default for DetectorConfig {
    fn default() -> DetectorConfig {
        DetectorConfig {
            model_path: PathBuf::from(DEFAULT_MODEL_PATH),
            model: ModelDescriptor::nanodet_g_416(),
            score_threshold: 0.35,
            iou_threshold: 0.6,
            max_detections: 100,
            max_image_side: 16_384,
            max_decode_bytes: 256 * 1024 * 1024,
        }
    }
}

/// A decoded box before naming: class index, score, `(x0, y0, x1, y1)` normalised.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Candidate {
    pub class: usize,
    pub score: f32,
    pub bbox: [f32; 4],
}

/// An ONNX detector, optimised once and shared by all callers.
pub struct LocalDetector {
    config: DetectorConfig,
    plan: Arc<TypedRunnableModel>,
    levels: Vec<nanodet::LevelOutputs>,
}

impl fmt::Debug for LocalDetector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The plan's own Debug prints the whole graph; the config says what matters.
        f.debug_struct("LocalDetector")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl LocalDetector {
    /// Loads, checks and optimises the model named by `config`. A missing or unusable file, or
    /// one whose outputs do not fit `config.model`, is an [`Error::Config`] naming the path.
    pub fn load(config: DetectorConfig) -> Result<LocalDetector> {
        let path = config.model_path.display().to_string();
        if !config.model_path.is_file() {
            return Err(Error::Config(format!(
                "local model file {path} not found (see models/README.md)"
            )));
        }
        let side = config.model.input_size;
        if side == 0 || config.model.strides.is_empty() {
            return Err(Error::Config(format!(
                "local model {}: input size and strides must be set",
                config.model.name
            )));
        }
        let unusable = |e: &dyn fmt::Display| {
            Error::Config(format!("local model file {path} is not usable: {e}"))
        };
        let model = tract_onnx::onnx()
            .model_for_path(&config.model_path)
            .and_then(|m| m.with_input_fact(0, f32::fact([1, 3, side, side]).into()))
            .and_then(|m| m.into_optimized())
            .map_err(|e| unusable(&e))?;
        let mut shapes = Vec::new();
        for ix in 0..model.outputs.len() {
            let fact = model.output_fact(ix).map_err(|e| unusable(&e))?;
            shapes.push(
                fact.shape
                    .as_concrete()
                    .map(<[usize]>::to_vec)
                    .unwrap_or_default(),
            );
        }
        let levels = match config.model.family {
            ModelFamily::NanoDetGfl => {
                nanodet::output_layout(&shapes, &config.model, COCO_LABELS.len())
                    .map_err(|e| unusable(&e))?
            }
        };
        let plan = model.into_runnable().map_err(|e| unusable(&e))?;
        log::debug!("local detector: loaded {path} ({} outputs)", shapes.len());
        Ok(LocalDetector {
            config,
            plan,
            levels,
        })
    }

    /// The configuration the detector was loaded with.
    pub fn config(&self) -> &DetectorConfig {
        &self.config
    }

    /// Decodes, runs, decodes the boxes and suppresses overlaps; best first.
    fn candidates(&self, image: &[u8]) -> std::result::Result<Vec<Candidate>, String> {
        let rgb = decode_image(
            image,
            self.config.max_image_side,
            self.config.max_decode_bytes,
        )?;
        let model = &self.config.model;
        let side = model.input_size;
        let planes = nanodet::input_planes(&rgb, side as u32);
        let input =
            tract_onnx::prelude::tract_ndarray::Array4::from_shape_vec((1, 3, side, side), planes)
                .map_err(|e| format!("local model input: {e}"))?
                .into_tensor();
        let outputs = self
            .plan
            .run(tvec!(input.into()))
            .map_err(|e| format!("local model failed: {e}"))?;
        let views = outputs
            .iter()
            .map(|t| t.to_plain_array_view::<f32>())
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| format!("local model output: {e}"))?;
        let slice = |ix: usize| {
            views
                .get(ix)
                .and_then(|v| v.as_slice())
                .ok_or_else(|| format!("local model output {ix} is missing or not contiguous"))
        };
        let mut levels = Vec::with_capacity(self.levels.len());
        for level in &self.levels {
            levels.push(nanodet::Level {
                stride: level.stride,
                scores: slice(level.scores)?,
                distribution: slice(level.distribution)?,
            });
        }
        let found = nanodet::decode(
            &levels,
            model,
            COCO_LABELS.len(),
            self.config.score_threshold,
        );
        Ok(nms::class_wise_nms(
            found,
            self.config.iou_threshold,
            self.config.max_detections,
        ))
    }
}

impl Detector for LocalDetector {
    fn detect(
        &self,
        image: &[u8],
        max_results: usize,
    ) -> std::result::Result<Vec<ImageObject>, String> {
        let mut found = self.candidates(image)?;
        found.truncate(max_results);
        Ok(found.iter().map(to_image_object).collect())
    }

    fn model_version(&self) -> String {
        format!("{} (local)", self.config.model.name)
    }
}

/// JPEG or PNG bytes to RGB, with size limits; every failure is a message, never a panic.
fn decode_image(
    bytes: &[u8],
    max_side: u32,
    max_bytes: u64,
) -> std::result::Result<image::RgbImage, String> {
    let mut reader = image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| format!("image could not be read: {e}"))?;
    if reader.format().is_none() {
        return Err("image is not a JPEG or PNG".into());
    }
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(max_side);
    limits.max_image_height = Some(max_side);
    limits.max_alloc = Some(max_bytes);
    reader.limits(limits);
    let decoded = reader
        .decode()
        .map_err(|e| format!("image could not be decoded: {e}"))?;
    if decoded.width() == 0 || decoded.height() == 0 {
        return Err("image has no pixels".into());
    }
    Ok(decoded.into_rgb8())
}

/// OCI's shape: title-case name, confidence, corners clockwise from the top-left.
fn to_image_object(c: &Candidate) -> ImageObject {
    let [x0, y0, x1, y1] = c.bbox.map(f64::from);
    ImageObject {
        name: display_name(COCO_LABELS.get(c.class).copied().unwrap_or("unknown")),
        confidence: f64::from(c.score),
        bounding_polygon: BoundingPolygon {
            normalized_vertices: vec![
                Vertex { x: x0, y: y0 },
                Vertex { x: x1, y: y0 },
                Vertex { x: x1, y: y1 },
                Vertex { x: x0, y: y1 },
            ],
        },
    }
}

/// The ontology parents of a label this detector reports (any case), as OCI Vision sends them in
/// `ontologyClasses[].parentNames`, so "vehicle" finds a motorcycle and "animal" a dog in local
/// mode too. They follow COCO's own super-categories in OCI's title case; fruit and vegetables
/// also name their kind. Labels of other models, and COCO's "outdoor"/"indoor" groups, have none.
pub fn parent_names(label: &str) -> &'static [&'static str] {
    let lower = label.to_ascii_lowercase();
    let Some(index) = COCO_LABELS.iter().position(|l| *l == lower) else {
        return &[];
    };
    match index {
        1..=8 => &["Vehicle"],
        14..=23 => &["Animal"],
        24..=28 => &["Accessory"],
        29..=38 => &["Sports Equipment"],
        39..=45 => &["Kitchenware"],
        46 | 47 | 49 => &["Fruit", "Food"],
        50 | 51 => &["Vegetable", "Food"],
        48 | 52..=55 => &["Food"],
        56..=61 => &["Furniture"],
        62..=67 => &["Electronics"],
        68..=72 => &["Home Appliance"],
        _ => &[],
    }
}

/// A COCO name in OCI's English title case: "cell phone" → "Cell Phone", "tv" → "TV".
fn display_name(coco: &str) -> String {
    if coco == "tv" {
        return "TV".into();
    }
    coco.split(' ')
        .map(|word| {
            let mut chars = word.chars();
            match chars.next() {
                Some(first) => first.to_uppercase().chain(chars).collect(),
                None => String::new(),
            }
        })
        .collect::<Vec<String>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coco_labels_have_oci_style_parents() {
        assert_eq!(parent_names("Motorcycle"), ["Vehicle"]);
        assert_eq!(parent_names("dog"), ["Animal"]);
        assert_eq!(parent_names("Broccoli"), ["Vegetable", "Food"]);
        assert_eq!(parent_names("Hot Dog"), ["Food"]);
        assert_eq!(parent_names("TV"), ["Electronics"]);
        assert!(parent_names("Person").is_empty() && parent_names("Unicorn").is_empty());
    }

    #[test]
    fn names_are_oci_title_case() {
        assert_eq!(display_name("dog"), "Dog");
        assert_eq!(display_name("cell phone"), "Cell Phone");
        assert_eq!(display_name("traffic light"), "Traffic Light");
        assert_eq!(display_name("tv"), "TV");
        assert_eq!(COCO_LABELS[16], "dog");
        assert_eq!(COCO_LABELS[79], "toothbrush");
    }

    #[test]
    fn objects_have_four_clockwise_vertices() {
        let object = to_image_object(&Candidate {
            class: 67,
            score: 0.5,
            bbox: [0.1, 0.2, 0.3, 0.4],
        });
        assert_eq!(object.name, "Cell Phone");
        let corners: Vec<(f32, f32)> = object
            .bounding_polygon
            .normalized_vertices
            .iter()
            .map(|v| (v.x as f32, v.y as f32))
            .collect();
        assert_eq!(corners, [(0.1, 0.2), (0.3, 0.2), (0.3, 0.4), (0.1, 0.4)]);
    }

    #[test]
    fn undecodable_or_oversized_images_are_errors() {
        let config = DetectorConfig::default();
        let decode = |bytes: &[u8], config: &DetectorConfig| {
            decode_image(bytes, config.max_image_side, config.max_decode_bytes)
        };
        assert!(decode(b"not an image", &config).is_err());
        assert!(decode(b"", &config).is_err());
        // A PNG signature followed by nothing.
        assert!(decode(b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR", &config).is_err());

        let mut png = Vec::new();
        image::RgbImage::from_pixel(40, 10, image::Rgb([1, 2, 3]))
            .write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        assert_eq!(decode(&png, &config).unwrap().dimensions(), (40, 10));
        let small = DetectorConfig {
            max_image_side: 32,
            ..DetectorConfig::default()
        };
        let error = decode(&png, &small).unwrap_err();
        assert!(error.contains("could not be decoded"), "{error}");
    }

    #[test]
    fn a_missing_model_file_is_a_config_error() {
        let config = DetectorConfig {
            model_path: "/nonexistent/model.onnx".into(),
            ..DetectorConfig::default()
        };
        match LocalDetector::load(config) {
            Err(Error::Config(m)) => assert!(m.contains("/nonexistent/model.onnx"), "{m}"),
            other => panic!("expected a config error, got {other:?}"),
        }
    }
}
