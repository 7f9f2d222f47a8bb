//! Text regions from a DB ("differentiable binarisation") probability map, as PP-OCR's
//! detector outputs it: one value 0..1 per input pixel, high inside text.
//!
//! The map is binarised, its 8-connected regions are found, each region's mean probability is
//! its score, and its bounding box is grown by DB's "unclip" distance (the network is trained
//! to predict shrunken text kernels). Boxes are axis-aligned: text in photos is mostly level,
//! and tilted text gets its enclosing box. Nothing here runs a model or knows pixels
//! of the original image: boxes come out normalised to 0..1.

/// How a map becomes boxes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct DbParams {
    /// A pixel is text when its probability exceeds this (PP-OCR: 0.3).
    pub binary_threshold: f32,
    /// A region is kept when its mean probability reaches this (PP-OCR: 0.6).
    pub box_threshold: f32,
    /// Growth of a region's box: area × ratio / perimeter on every side (PP-OCR: 1.5).
    pub unclip_ratio: f32,
    /// Regions whose shorter side is below this many map pixels are noise (PP-OCR: 3).
    pub min_side: f32,
    /// Most regions kept, the largest scores first.
    pub max_boxes: usize,
}

/// A text region: `(x0, y0, x1, y1)` normalised to the map, and its score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct TextBox {
    pub bbox: [f32; 4],
    pub score: f32,
}

/// The text regions of a `width` × `height` map (row-major), best score first.
pub(crate) fn boxes(map: &[f32], width: usize, height: usize, params: &DbParams) -> Vec<TextBox> {
    if width == 0 || height == 0 || map.len() < width * height {
        return Vec::new();
    }
    let mut seen = vec![false; width * height];
    let mut stack = Vec::new();
    let mut out = Vec::new();
    for start in 0..width * height {
        if seen[start] || map[start] <= params.binary_threshold {
            continue;
        }
        // One region, by an explicit stack (a recursive fill could overflow on a large one).
        seen[start] = true;
        stack.push(start);
        let (mut x0, mut y0, mut x1, mut y1) = (usize::MAX, usize::MAX, 0, 0);
        let (mut sum, mut count) = (0.0f64, 0usize);
        while let Some(i) = stack.pop() {
            let (x, y) = (i % width, i / width);
            (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
            sum += f64::from(map[i]);
            count += 1;
            for (dx, dy) in NEIGHBOURS {
                let (nx, ny) = (x as isize + dx, y as isize + dy);
                if nx < 0 || ny < 0 || nx >= width as isize || ny >= height as isize {
                    continue;
                }
                let n = ny as usize * width + nx as usize;
                if !seen[n] && map[n] > params.binary_threshold {
                    seen[n] = true;
                    stack.push(n);
                }
            }
        }
        let score = (sum / count as f64) as f32;
        let (w, h) = ((x1 - x0 + 1) as f32, (y1 - y0 + 1) as f32);
        if score < params.box_threshold || w.min(h) < params.min_side {
            continue;
        }
        let grow = w * h * params.unclip_ratio / (2.0 * (w + h));
        let (mw, mh) = (width as f32, height as f32);
        out.push(TextBox {
            bbox: [
                ((x0 as f32 - grow) / mw).clamp(0.0, 1.0),
                ((y0 as f32 - grow) / mh).clamp(0.0, 1.0),
                ((x1 as f32 + 1.0 + grow) / mw).clamp(0.0, 1.0),
                ((y1 as f32 + 1.0 + grow) / mh).clamp(0.0, 1.0),
            ],
            score,
        });
    }
    out.sort_by(|a, b| b.score.total_cmp(&a.score));
    out.truncate(params.max_boxes);
    out
}

const NEIGHBOURS: [(isize, isize); 8] = [
    (-1, -1),
    (0, -1),
    (1, -1),
    (-1, 0),
    (1, 0),
    (-1, 1),
    (0, 1),
    (1, 1),
];

/// `boxes` in reading order: top to bottom by rows, left to right within a row. Two boxes share
/// a row when their vertical centres are closer than half the shorter one's height.
pub(crate) fn reading_order(mut boxes: Vec<TextBox>) -> Vec<TextBox> {
    boxes.sort_by(|a, b| a.bbox[1].total_cmp(&b.bbox[1]));
    let mut rows: Vec<Vec<TextBox>> = Vec::new();
    for b in boxes {
        let centre = (b.bbox[1] + b.bbox[3]) / 2.0;
        let height = b.bbox[3] - b.bbox[1];
        let row = rows.iter_mut().find(|row| {
            let first = &row[0];
            let first_centre = (first.bbox[1] + first.bbox[3]) / 2.0;
            let first_height = first.bbox[3] - first.bbox[1];
            (centre - first_centre).abs() < height.min(first_height) / 2.0
        });
        match row {
            Some(row) => row.push(b),
            None => rows.push(vec![b]),
        }
    }
    rows.into_iter()
        .flat_map(|mut row| {
            row.sort_by(|a, b| a.bbox[0].total_cmp(&b.bbox[0]));
            row
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARAMS: DbParams = DbParams {
        binary_threshold: 0.3,
        box_threshold: 0.6,
        unclip_ratio: 1.5,
        min_side: 3.0,
        max_boxes: 10,
    };

    /// A `w` × `h` map with rectangles `(x0, y0, x1, y1, value)` painted in (ends exclusive).
    fn map(w: usize, h: usize, rects: &[(usize, usize, usize, usize, f32)]) -> Vec<f32> {
        let mut m = vec![0.0; w * h];
        for &(x0, y0, x1, y1, v) in rects {
            for y in y0..y1 {
                for x in x0..x1 {
                    m[y * w + x] = v;
                }
            }
        }
        m
    }

    #[test]
    fn a_region_becomes_its_box_grown_by_the_unclip_distance() {
        // A 20×4 kernel: grow = 80 × 1.5 / 48 = 2.5 map pixels on every side.
        let m = map(100, 50, &[(10, 20, 30, 24, 0.9)]);
        let found = boxes(&m, 100, 50, &PARAMS);
        assert_eq!(found.len(), 1);
        let [x0, y0, x1, y1] = found[0].bbox;
        let near = |a: f32, b: f32| (a - b).abs() < 1e-5;
        assert!(near(x0, 0.075) && near(x1, 0.325), "{x0} {x1}");
        assert!(near(y0, 0.35) && near(y1, 0.53), "{y0} {y1}");
        assert!(near(found[0].score, 0.9));
    }

    #[test]
    fn weak_small_and_separate_regions_are_told_apart() {
        let m = map(
            100,
            50,
            &[
                (10, 10, 40, 16, 0.95), // strong
                (50, 10, 90, 16, 0.5),  // above the binary threshold, below the box one
                (10, 30, 12, 40, 0.99), // two pixels wide: noise
                (60, 30, 90, 40, 0.8),  // second box
            ],
        );
        let found = boxes(&m, 100, 50, &PARAMS);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].score > found[1].score, "best first");
        assert!(found[1].bbox[0] > 0.5);
        assert!(boxes(&m, 0, 0, &PARAMS).is_empty());
        assert!(boxes(&m[..10], 100, 50, &PARAMS).is_empty(), "short map");
    }

    #[test]
    fn touching_diagonals_are_one_region_and_the_count_is_capped() {
        let mut m = map(20, 20, &[(2, 2, 6, 6, 0.9), (6, 6, 10, 10, 0.9)]);
        assert_eq!(boxes(&m, 20, 20, &PARAMS).len(), 1);
        m = map(
            40,
            10,
            &[(0, 0, 4, 4, 0.9), (10, 0, 14, 4, 0.8), (20, 0, 24, 4, 0.7)],
        );
        let capped = DbParams {
            max_boxes: 2,
            ..PARAMS
        };
        let found = boxes(&m, 40, 10, &capped);
        assert_eq!(found.len(), 2);
        assert!(found[1].score > 0.75, "the weakest went");
    }

    #[test]
    fn reading_order_is_rows_then_left_to_right() {
        let b = |x0: f32, y0: f32| TextBox {
            bbox: [x0, y0, x0 + 0.1, y0 + 0.05],
            score: 1.0,
        };
        // The second line's right word sits slightly higher than its left one.
        let ordered = reading_order(vec![b(0.5, 0.31), b(0.5, 0.1), b(0.1, 0.1), b(0.1, 0.32)]);
        let starts: Vec<(f32, f32)> = ordered.iter().map(|t| (t.bbox[0], t.bbox[1])).collect();
        assert_eq!(starts, [(0.1, 0.1), (0.5, 0.1), (0.1, 0.32), (0.5, 0.31)]);
    }
}
