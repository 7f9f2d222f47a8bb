//! NanoDet (GFL head, legacy v0.x) specifics: the input tensor and the box decoder.
//!
//! Preprocessing stretches the whole image to the square input (no letterbox), so a box in
//! input coordinates divided by the input side is already normalised to the original image.
//! Channels go in B, G, R order with NanoDet's training mean and std. The decoder turns the raw
//! per-level outputs into scored candidates; it does not run the model, suppress overlaps
//! (see `nms.rs`) or name classes.

use image::imageops::{self, FilterType};
use image::RgbImage;

use super::{Candidate, ModelDescriptor};

/// NanoDet's training normalisation, in the B, G, R order the network expects.
const MEAN_BGR: [f32; 3] = [103.53, 116.28, 123.675];
const STD_BGR: [f32; 3] = [57.375, 57.12, 58.395];

/// Where one stride's two outputs are among the model's outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LevelOutputs {
    /// Pixels of the input per grid cell.
    pub stride: usize,
    /// Output index of the `[1, cells, classes]` sigmoid scores.
    pub scores: usize,
    /// Output index of the `[1, cells, 4 × (reg_max + 1)]` side distributions.
    pub distribution: usize,
}

/// One stride's raw outputs, ready to decode.
pub(crate) struct Level<'a> {
    pub stride: usize,
    pub scores: &'a [f32],
    pub distribution: &'a [f32],
}

/// Matches output shapes to strides. The exporter's output order means nothing, so outputs are
/// told apart only by their shape: cell count gives the stride, the last axis the kind.
pub(crate) fn output_layout(
    shapes: &[Vec<usize>],
    model: &ModelDescriptor,
    classes: usize,
) -> Result<Vec<LevelOutputs>, String> {
    let bins = 4 * (model.reg_max + 1);
    if classes == bins {
        // Both kinds would have the same shape and could not be told apart.
        return Err(format!(
            "{classes} classes and {bins} distribution values are ambiguous"
        ));
    }
    let find = |cells: usize, width: usize| -> Result<usize, String> {
        let mut found = shapes
            .iter()
            .enumerate()
            .filter(|(_, s)| s.as_slice() == [1, cells, width]);
        match (found.next(), found.next()) {
            (Some((ix, _)), None) => Ok(ix),
            (None, _) => Err(format!("no output of shape [1, {cells}, {width}]")),
            (Some(_), Some(_)) => Err(format!("several outputs of shape [1, {cells}, {width}]")),
        }
    };
    let mut levels = Vec::new();
    for &stride in &model.strides {
        if stride == 0 || model.input_size % stride != 0 {
            return Err(format!(
                "stride {stride} does not divide the input side {}",
                model.input_size
            ));
        }
        let side = model.input_size / stride;
        levels.push(LevelOutputs {
            stride,
            scores: find(side * side, classes)?,
            distribution: find(side * side, bins)?,
        });
    }
    Ok(levels)
}

/// The network input for `rgb`: stretched to `side` × `side`, planar B, G, R, normalised.
/// Returned as a flat `[3, side, side]` buffer in row-major order.
pub(crate) fn input_planes(rgb: &RgbImage, side: u32) -> Vec<f32> {
    // Triangle matches the reference results; the tests' expected boxes depend on the filter.
    let resized = imageops::resize(rgb, side, side, FilterType::Triangle);
    let plane = (side * side) as usize;
    let mut out = vec![0.0f32; 3 * plane];
    let scale = STD_BGR.map(|s| 1.0 / s);
    for (i, px) in resized.as_raw().chunks_exact(3).enumerate() {
        // px is R, G, B; plane c holds channel BGR[c].
        for (c, value) in [px[2], px[1], px[0]].into_iter().enumerate() {
            out[c * plane + i] = (f32::from(value) - MEAN_BGR[c]) * scale[c];
        }
    }
    out
}

/// Every cell whose best class scores at least `threshold`, with its box normalised to 0..1.
pub(crate) fn decode(
    levels: &[Level<'_>],
    model: &ModelDescriptor,
    classes: usize,
    threshold: f32,
) -> Vec<Candidate> {
    let bins = model.reg_max + 1;
    let side = model.input_size as f32;
    let mut out = Vec::new();
    for level in levels {
        let grid = model.input_size / level.stride;
        let stride = level.stride as f32;
        let cells = level
            .scores
            .chunks_exact(classes)
            .zip(level.distribution.chunks_exact(4 * bins))
            .take(grid * grid);
        for (i, (scores, distribution)) in cells.enumerate() {
            let Some((class, score)) = best_class(scores) else {
                continue;
            };
            if score.is_nan() || score < threshold {
                continue;
            }
            // The +0.5 centre is the v0.x ("legacy") head's convention.
            let cx = ((i % grid) as f32 + 0.5) * stride;
            let cy = ((i / grid) as f32 + 0.5) * stride;
            let mut d = distribution
                .chunks_exact(bins)
                .map(|logits| expected_bin(logits) * stride);
            let (left, top, right, bottom) = (
                d.next().unwrap_or(0.0),
                d.next().unwrap_or(0.0),
                d.next().unwrap_or(0.0),
                d.next().unwrap_or(0.0),
            );
            let bbox =
                [cx - left, cy - top, cx + right, cy + bottom].map(|v| (v / side).clamp(0.0, 1.0));
            out.push(Candidate { class, score, bbox });
        }
    }
    out
}

/// Index and value of the highest score (the first one on ties).
fn best_class(scores: &[f32]) -> Option<(usize, f32)> {
    scores
        .iter()
        .copied()
        .enumerate()
        .fold(None, |best, (i, s)| match best {
            Some((_, b)) if b >= s => best,
            _ => Some((i, s)),
        })
}

/// The GFL "integral": the expected bin index under the softmax of `logits`.
fn expected_bin(logits: &[f32]) -> f32 {
    // Subtracting the max keeps exp() finite for large logits.
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let (mut weighted, mut total) = (0.0f32, 0.0f32);
    for (bin, &logit) in logits.iter().enumerate() {
        let p = (logit - max).exp();
        weighted += bin as f32 * p;
        total += p;
    }
    if total > 0.0 {
        weighted / total
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny model: 64×64 input, one stride of 16 (4×4 grid), 3 classes, reg_max 4.
    fn tiny() -> ModelDescriptor {
        ModelDescriptor {
            input_size: 64,
            strides: vec![16],
            reg_max: 4,
            ..ModelDescriptor::nanodet_g_416()
        }
    }

    /// Logits with all the mass on `bin` (softmax ≈ one-hot).
    fn peaked(bin: usize, bins: usize) -> Vec<f32> {
        (0..bins)
            .map(|b| if b == bin { 30.0 } else { 0.0 })
            .collect()
    }

    #[test]
    fn one_hot_score_and_peaked_bins_give_the_known_box() {
        let model = tiny();
        let (classes, bins, cells) = (3, 5, 16);
        let mut scores = vec![0.0f32; cells * classes];
        let mut distribution = vec![0.0f32; cells * 4 * bins];
        // Cell 6 is row 1, col 2: centre (2.5 × 16, 1.5 × 16) = (40, 24).
        scores[6 * classes + 2] = 0.9;
        for (side, bin) in [1usize, 1, 1, 2].into_iter().enumerate() {
            let start = 6 * 4 * bins + side * bins;
            distribution[start..start + bins].copy_from_slice(&peaked(bin, bins));
        }
        let levels = [Level {
            stride: 16,
            scores: &scores,
            distribution: &distribution,
        }];
        let found = decode(&levels, &model, classes, 0.35);
        assert_eq!(found.len(), 1, "only the one scored cell passes");
        let c = &found[0];
        assert_eq!((c.class, c.score), (2, 0.9));
        // left 16, top 16, right 16, bottom 32 → (24, 8, 56, 56) in input pixels.
        let expected = [24.0 / 64.0, 8.0 / 64.0, 56.0 / 64.0, 56.0 / 64.0];
        for (got, want) in c.bbox.iter().zip(expected) {
            assert!((got - want).abs() < 1e-4, "{:?} vs {expected:?}", c.bbox);
        }
    }

    #[test]
    fn expected_bin_is_the_softmax_mean() {
        assert!((expected_bin(&peaked(3, 11)) - 3.0).abs() < 1e-4);
        // Equal logits: the mean of 0..=10.
        assert!((expected_bin(&[7.0; 11]) - 5.0).abs() < 1e-4);
        // Two equal peaks at 2 and 4 average to 3; large logits do not overflow.
        let mut two = vec![-1000.0; 11];
        two[2] = 1000.0;
        two[4] = 1000.0;
        assert!((expected_bin(&two) - 3.0).abs() < 1e-4);
    }

    #[test]
    fn scores_below_the_threshold_or_nan_are_skipped() {
        let model = tiny();
        let mut scores = vec![0.2f32; 16 * 3];
        scores[0] = f32::NAN;
        let distribution = vec![0.0f32; 16 * 20];
        let levels = [Level {
            stride: 16,
            scores: &scores,
            distribution: &distribution,
        }];
        assert!(decode(&levels, &model, 3, 0.35).is_empty());
        assert_eq!(decode(&levels, &model, 3, 0.1).len(), 16);
    }

    #[test]
    fn outputs_are_matched_by_shape_not_order() {
        let model = ModelDescriptor::nanodet_g_416();
        let shapes = vec![
            vec![1, 169, 44],
            vec![1, 2704, 80],
            vec![1, 676, 44],
            vec![1, 169, 80],
            vec![1, 2704, 44],
            vec![1, 676, 80],
        ];
        let layout = output_layout(&shapes, &model, 80).unwrap();
        let expected = [(8, 1, 4), (16, 5, 2), (32, 3, 0)];
        let got: Vec<_> = layout
            .iter()
            .map(|l| (l.stride, l.scores, l.distribution))
            .collect();
        assert_eq!(got, expected);
        let missing = output_layout(&shapes[..5], &model, 80).unwrap_err();
        assert!(missing.contains("[1, 676, 80]"), "{missing}");
    }

    #[test]
    fn input_is_planar_bgr_normalised() {
        // A uniform colour survives any resize filter unchanged.
        let rgb = RgbImage::from_pixel(7, 3, image::Rgb([200, 100, 50]));
        let planes = input_planes(&rgb, 4);
        assert_eq!(planes.len(), 3 * 16);
        let want = [
            (50.0 - 103.53) / 57.375,
            (100.0 - 116.28) / 57.12,
            (200.0 - 123.675) / 58.395,
        ];
        for (c, w) in want.into_iter().enumerate() {
            for v in &planes[c * 16..(c + 1) * 16] {
                assert!((v - w).abs() < 1e-5, "plane {c}: {v} vs {w}");
            }
        }
    }
}
