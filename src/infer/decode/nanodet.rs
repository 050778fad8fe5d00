//! NanoDet-g (the shipped TF export): per stride s ∈ {8, 16, 32} class scores [cells, C], already sigmoid, and
//! GFL box logits [cells, 44] = 4 sides (left, top, right, bottom) × 11 bins; per side softmax, expectation × s,
//! from the cell centre. Cells are row-major over the grid of the model input (in_w/s × in_h/s).

use super::{nms, DecodeCtx, Detection};

pub const BINS: usize = 11;
pub const STRIDES: [u32; 3] = [8, 16, 32];

/// One output level's raw tensors.
pub struct Level<'a> {
    pub stride: u32,
    /// [cells, C]
    pub scores: &'a [f32],
    /// [cells, 4 × BINS]
    pub boxes: &'a [f32],
}

fn softmax_expectation(logits: &[f32]) -> f32 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    let mut acc = 0.0;
    for (i, l) in logits.iter().enumerate() {
        let e = (l - max).exp();
        sum += e;
        acc += e * i as f32;
    }
    if sum > 0.0 {
        acc / sum
    } else {
        0.0
    }
}

/// GFL decode of all levels; every class at or above the threshold in a cell is a candidate (then NMS).
pub fn decode(levels: &[Level<'_>], ctx: &DecodeCtx<'_>) -> Vec<Detection> {
    let classes = ctx.classes.len().max(1);
    let lb = &ctx.lb;
    let mut cands = Vec::new();
    for level in levels {
        let grid_w = (lb.in_w / level.stride) as usize;
        let grid_h = (lb.in_h / level.stride) as usize;
        let cells = (level.scores.len() / classes)
            .min(level.boxes.len() / (4 * BINS))
            .min(grid_w * grid_h);
        for cell in 0..cells {
            let scores = &level.scores[cell * classes..(cell + 1) * classes];
            if !scores.iter().any(|s| *s >= ctx.params.threshold) {
                continue;
            }
            let stride = level.stride as f32;
            let cx = ((cell % grid_w) as f32 + 0.5) * stride;
            let cy = ((cell / grid_w) as f32 + 0.5) * stride;
            let b = &level.boxes[cell * 4 * BINS..(cell + 1) * 4 * BINS];
            let side = |k: usize| softmax_expectation(&b[k * BINS..(k + 1) * BINS]) * stride;
            let Some(bbox) = ctx.to_frame(cx - side(0), cy - side(1), cx + side(2), cy + side(3))
            else {
                continue;
            };
            for (class_id, s) in scores.iter().enumerate() {
                if *s >= ctx.params.threshold {
                    cands.extend(ctx.detection(class_id, *s, bbox));
                }
            }
        }
    }
    nms(cands, ctx.params)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use crate::infer::preprocess::Letterbox;
    use crate::labels::ClassNames;

    fn peaked(bin: usize) -> [f32; BINS] {
        let mut l = [-20.0; BINS];
        l[bin] = 20.0;
        l
    }

    /// One stride-32 cell with a "person" score and sides of exactly 2 bins: box = centre ± 64 px.
    fn level_with_one_person(cell: usize, score: f32) -> (Vec<f32>, Vec<f32>) {
        let cells = 13 * 13;
        let mut scores = vec![0.0; cells * 80];
        scores[cell * 80] = score;
        let mut boxes = vec![0.0; cells * 44];
        for side in 0..4 {
            boxes[cell * 44 + side * BINS..cell * 44 + (side + 1) * BINS]
                .copy_from_slice(&peaked(2));
        }
        (scores, boxes)
    }

    fn one_level<'a>(scores: &'a [f32], boxes: &'a [f32]) -> [Level<'a>; 1] {
        [Level {
            stride: 32,
            scores,
            boxes,
        }]
    }

    #[test]
    fn gfl_decode_places_the_box_around_the_cell_centre() {
        // cell (x=6, y=6) of the 13x13 grid: centre (208, 208) in input pixels
        let (scores, boxes) = level_with_one_person(6 * 13 + 6, 0.9);
        let coco = ClassNames::coco80();
        let dets = decode(
            &one_level(&scores, &boxes),
            &ctx(&coco, Letterbox::fit(416, 416, 416), 416, 416),
        );
        assert_eq!(dets.len(), 1);
        assert_eq!(dets[0].label, "person");
        assert_box(&dets[0].bbox, [144.0, 144.0, 272.0, 272.0]);
    }

    #[test]
    fn boxes_map_back_through_the_letterbox() {
        let (scores, boxes) = level_with_one_person(6 * 13 + 6, 0.9);
        // 832x624 frame: scale 0.5, padded 52 px top and bottom
        let coco = ClassNames::coco80();
        let d = &decode(
            &one_level(&scores, &boxes),
            &ctx(&coco, Letterbox::fit(832, 624, 416), 832, 624),
        )[0];
        assert_box(&d.bbox, [288.0, 184.0, 544.0, 440.0]);
    }

    #[test]
    fn below_threshold_is_dropped_and_scores_are_not_resigmoided() {
        let coco = ClassNames::coco80();
        let c = ctx(&coco, Letterbox::fit(416, 416, 416), 416, 416);
        let (scores, boxes) = level_with_one_person(10, 0.39);
        assert!(decode(&one_level(&scores, &boxes), &c).is_empty());
        let (scores, boxes) = level_with_one_person(10, 0.41);
        let d = decode(&one_level(&scores, &boxes), &c);
        assert!((d[0].score - 0.41).abs() < 1e-6);
    }

    #[test]
    fn nms_merges_duplicates_and_vehicle_classes() {
        let cells = 13 * 13;
        let mut scores = vec![0.0; cells * 80];
        let mut boxes = vec![0.0; cells * 44];
        for cell in [50usize, 51] {
            for side in 0..4 {
                boxes[cell * 44 + side * BINS..cell * 44 + (side + 1) * BINS]
                    .copy_from_slice(&peaked(3));
            }
        }
        // neighbouring cells, heavily overlapping boxes: car 0.7 in one, truck 0.6 in the other
        scores[50 * 80 + 2] = 0.7;
        scores[51 * 80 + 7] = 0.6;
        let coco = ClassNames::coco80();
        let d = decode(
            &one_level(&scores, &boxes),
            &ctx(&coco, Letterbox::fit(416, 416, 416), 416, 416),
        );
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].label, "car");
    }

    #[test]
    fn other_label_counts_follow_the_labels() {
        // 3 labels: class 2 ("package") in cell 0 of a 2x2 grid (64x64 input, stride 32)
        let names = ClassNames::parse("person\ncar\npackage\n").expect("labels");
        let mut scores = vec![0.0; 4 * 3];
        scores[2] = 0.8;
        let mut boxes = vec![0.0; 4 * 44];
        for side in 0..4 {
            boxes[side * BINS..(side + 1) * BINS].copy_from_slice(&peaked(0));
        }
        let d = decode(
            &one_level(&scores, &boxes),
            &ctx(&names, Letterbox::fit(64, 64, 64), 64, 64),
        );
        // sides of 0 bins make an empty box: nothing; with 1 bin per side, a 64 px box around (16, 16)
        assert!(d.is_empty(), "{d:?}");
        for side in 0..4 {
            boxes[side * BINS..(side + 1) * BINS].copy_from_slice(&peaked(1));
        }
        let d = decode(
            &one_level(&scores, &boxes),
            &ctx(&names, Letterbox::fit(64, 64, 64), 64, 64),
        );
        assert_eq!(d.len(), 1);
        assert_eq!((d[0].class_id, d[0].label), (2, "package"));
        assert_box(&d[0].bbox, [0.0, 0.0, 48.0, 48.0]);
    }
}
