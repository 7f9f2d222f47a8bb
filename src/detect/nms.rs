//! Class-wise greedy non-maximum suppression over decoded candidates.
//!
//! A candidate is dropped only when a better-scoring box *of the same class* already kept
//! overlaps it enough: a person on a horse keeps both boxes. It does not threshold scores (the
//! decoder already did) and knows nothing about models or images.

use super::Candidate;

/// Intersection over union of two `(x0, y0, x1, y1)` boxes; 0 when either has no area.
pub(crate) fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let width = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let height = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let intersection = width * height;
    let area = |r: &[f32; 4]| (r[2] - r[0]).max(0.0) * (r[3] - r[1]).max(0.0);
    let union = area(a) + area(b) - intersection;
    if union <= 0.0 {
        0.0
    } else {
        intersection / union
    }
}

/// Keeps the best candidates, best first: at most `max_kept`, none overlapping an already kept
/// box of its class by `iou_threshold` or more.
pub(crate) fn class_wise_nms(
    mut candidates: Vec<Candidate>,
    iou_threshold: f32,
    max_kept: usize,
) -> Vec<Candidate> {
    // total_cmp: a NaN score (a broken model) must not panic the sort; it sorts first and is
    // then kept or suppressed like any other box.
    candidates.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Candidate> = Vec::new();
    for candidate in candidates {
        if kept.len() >= max_kept {
            break;
        }
        let suppressed = kept
            .iter()
            .any(|k| k.class == candidate.class && iou(&k.bbox, &candidate.bbox) >= iou_threshold);
        if !suppressed {
            kept.push(candidate);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(class: usize, score: f32, bbox: [f32; 4]) -> Candidate {
        Candidate { class, score, bbox }
    }

    #[test]
    fn iou_of_identical_disjoint_and_half_overlapping_boxes() {
        let a = [0.0, 0.0, 0.5, 0.5];
        assert!((iou(&a, &a) - 1.0).abs() < 1e-6);
        assert_eq!(iou(&a, &[0.6, 0.6, 0.9, 0.9]), 0.0);
        // Overlap 0.25 × 0.5 over a union of 0.25 + 0.25 − 0.125.
        let b = [0.25, 0.0, 0.75, 0.5];
        assert!((iou(&a, &b) - 1.0 / 3.0).abs() < 1e-6);
        assert_eq!(iou(&[0.2, 0.2, 0.2, 0.2], &[0.2, 0.2, 0.2, 0.2]), 0.0);
    }

    #[test]
    fn same_class_overlaps_are_suppressed_other_classes_kept() {
        let person = [0.10, 0.10, 0.50, 0.90];
        let nearly_person = [0.12, 0.11, 0.50, 0.88];
        let kept = class_wise_nms(
            vec![
                candidate(0, 0.6, nearly_person),
                candidate(17, 0.5, person), // a horse in the same place: another class
                candidate(0, 0.8, person),
                candidate(0, 0.4, [0.6, 0.1, 0.9, 0.9]), // a second, separate person
            ],
            0.6,
            100,
        );
        let summary: Vec<(usize, f32)> = kept.iter().map(|c| (c.class, c.score)).collect();
        assert_eq!(summary, vec![(0, 0.8), (17, 0.5), (0, 0.4)]);
    }

    #[test]
    fn overlap_below_the_threshold_keeps_both_and_the_cap_applies() {
        let a = [0.0, 0.0, 0.5, 0.5];
        let b = [0.25, 0.0, 0.75, 0.5]; // IoU 1/3 with a
        let kept = class_wise_nms(vec![candidate(2, 0.9, a), candidate(2, 0.8, b)], 0.6, 100);
        assert_eq!(kept.len(), 2);
        let capped = class_wise_nms(
            (0..10)
                .map(|i| candidate(i, 0.5, [0.0, 0.0, 1.0, 1.0]))
                .collect(),
            0.6,
            3,
        );
        assert_eq!(capped.len(), 3);
    }
}
