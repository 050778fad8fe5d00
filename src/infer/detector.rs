//! NanoDet-g 416 (COCO-80): letterbox preprocessing, the GFL box decode and NMS as pure functions, and the
//! `Detector` that runs them around an ORT session.
//!
//! Recipe (checked on real photos, see models/README.md): letterbox to 416 on the long side, centred with black
//! padding, BGR, (x − mean) / std per channel, NCHW. With a model whose height and width are dynamic (the shipped
//! file) the input is only padded to the next multiple of 32 (416×320 for 4:3, 416×256 for 16:9): the padding
//! of a 416² square is computation on black, about a quarter of it for 4:3 cameras. A fixed-size model gets the
//! 416² square. Outputs per stride s ∈ {8,16,32}: class scores [N,80], already sigmoid;
//! box logits [N,44] = 4 sides (left, top, right, bottom) × 11 bins; per side softmax, expectation × s.

use serde::Serialize;

use super::labels::{COCO_LABELS, VEHICLE_CLASSES};
use super::preprocess::{resize_rgb, Filter, Letterbox};
use super::runtime::{check_signature, InferError, LoadedModel};

pub const INPUT_SIZE: u32 = 416;
const BINS: usize = 11;
const NUM_CLASSES: usize = 80;
const MEAN_BGR: [f32; 3] = [103.53, 116.28, 123.675];
const STD_BGR: [f32; 3] = [57.375, 57.12, 58.395];
/// (stride, class-score output, box output)
const LEVELS: [(u32, &str, &str); 3] = [
    (8, "Identity:0", "Identity_3:0"),
    (16, "Identity_1:0", "Identity_4:0"),
    (32, "Identity_2:0", "Identity_5:0"),
];
pub const INPUT_NAME: &str = "input_1:0";
pub const MAX_DETECTIONS: usize = 100;

/// Axis-aligned box in source-frame pixels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BBox {
    pub x1: f32,
    pub y1: f32,
    pub x2: f32,
    pub y2: f32,
}

impl BBox {
    pub fn area(&self) -> f32 {
        (self.x2 - self.x1).max(0.0) * (self.y2 - self.y1).max(0.0)
    }
    pub fn iou(&self, o: &BBox) -> f32 {
        let ix = (self.x2.min(o.x2) - self.x1.max(o.x1)).max(0.0);
        let iy = (self.y2.min(o.y2) - self.y1.max(o.y1)).max(0.0);
        let inter = ix * iy;
        let union = self.area() + o.area() - inter;
        if union <= 0.0 {
            0.0
        } else {
            inter / union
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Detection {
    pub class_id: usize,
    pub label: &'static str,
    pub score: f32,
    pub bbox: BBox,
}

/// Decode parameters.
#[derive(Debug, Clone, Copy)]
pub struct DecodeParams {
    pub threshold: f32,
    pub nms_iou: f32,
    pub max_detections: usize,
}

/// One output level's raw tensors.
pub struct Level<'a> {
    pub stride: u32,
    /// [cells, 80]
    pub scores: &'a [f32],
    /// [cells, 44]
    pub boxes: &'a [f32],
}

/// Padding multiple of the rectangular input: the coarsest stride.
const INPUT_MULTIPLE: u32 = 32;

/// The detector input for a `w`×`h` frame: the 416² square, or (`rect`) the smallest multiple of 32 around it.
pub fn letterbox(w: u32, h: u32, rect: bool) -> Letterbox {
    if rect {
        Letterbox::fit_rect(w, h, INPUT_SIZE, INPUT_MULTIPLE)
    } else {
        Letterbox::fit(w, h, INPUT_SIZE)
    }
}

/// Fills `out` (3×in_h×in_w, NCHW) with the letterboxed, normalised BGR input for a packed RGB frame.
pub fn preprocess(
    rgb: &[u8],
    w: u32,
    h: u32,
    rect: bool,
    out: &mut Vec<f32>,
) -> Result<Letterbox, InferError> {
    let lb = letterbox(w, h, rect);
    let resized = resize_rgb(rgb, w, h, lb.new_w, lb.new_h, None, Filter::Bilinear)?;
    let plane = (lb.in_w * lb.in_h) as usize;
    out.clear();
    out.resize(3 * plane, 0.0);
    // (x − mean) / std as a table per channel: a lookup instead of a division per value
    let lut: [[f32; 256]; 3] =
        std::array::from_fn(|c| std::array::from_fn(|v| (v as f32 - MEAN_BGR[c]) / STD_BGR[c]));
    let (b_plane, rest) = out.split_at_mut(plane);
    let (g_plane, r_plane) = rest.split_at_mut(plane);
    // padding is black (0) before normalisation, as in the reference keep_ratio letterbox
    b_plane.fill(lut[0][0]);
    g_plane.fill(lut[1][0]);
    r_plane.fill(lut[2][0]);
    let (in_w, new_w) = (lb.in_w as usize, lb.new_w as usize);
    for (y, row) in resized
        .chunks_exact(new_w * 3)
        .take(lb.new_h as usize)
        .enumerate()
    {
        let base = (y + lb.pad_y as usize) * in_w + lb.pad_x as usize;
        let dst = base..base + new_w;
        // plane 0 = B, 1 = G, 2 = R of packed RGB pixels
        for (((b, g), r), px) in b_plane[dst.clone()]
            .iter_mut()
            .zip(&mut g_plane[dst.clone()])
            .zip(&mut r_plane[dst])
            .zip(row.chunks_exact(3))
        {
            *b = lut[0][px[2] as usize];
            *g = lut[1][px[1] as usize];
            *r = lut[2][px[0] as usize];
        }
    }
    Ok(lb)
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

/// GFL decode of all levels, then per-class NMS, then NMS across the vehicle classes (a van comes out as car and
/// truck for the same box: keep the better one), best first, at most `max_detections`.
pub fn decode(
    levels: &[Level<'_>],
    lb: &Letterbox,
    src_w: u32,
    src_h: u32,
    p: DecodeParams,
) -> Vec<Detection> {
    let mut cands = Vec::new();
    for level in levels {
        let grid_w = (lb.in_w / level.stride) as usize;
        let grid_h = (lb.in_h / level.stride) as usize;
        let cells = (level.scores.len() / NUM_CLASSES)
            .min(level.boxes.len() / (4 * BINS))
            .min(grid_w * grid_h);
        for cell in 0..cells {
            let scores = &level.scores[cell * NUM_CLASSES..(cell + 1) * NUM_CLASSES];
            if !scores.iter().any(|s| *s >= p.threshold) {
                continue;
            }
            let stride = level.stride as f32;
            let cx = ((cell % grid_w) as f32 + 0.5) * stride;
            let cy = ((cell / grid_w) as f32 + 0.5) * stride;
            let b = &level.boxes[cell * 4 * BINS..(cell + 1) * 4 * BINS];
            let side = |k: usize| softmax_expectation(&b[k * BINS..(k + 1) * BINS]) * stride;
            let (iw, ih) = (lb.in_w as f32, lb.in_h as f32);
            let (x1, y1) =
                lb.to_source((cx - side(0)).clamp(0.0, iw), (cy - side(1)).clamp(0.0, ih));
            let (x2, y2) =
                lb.to_source((cx + side(2)).clamp(0.0, iw), (cy + side(3)).clamp(0.0, ih));
            let bbox = BBox {
                x1: x1.clamp(0.0, src_w as f32),
                y1: y1.clamp(0.0, src_h as f32),
                x2: x2.clamp(0.0, src_w as f32),
                y2: y2.clamp(0.0, src_h as f32),
            };
            if bbox.area() <= 0.0 {
                continue;
            }
            for (class_id, s) in scores.iter().enumerate() {
                if *s >= p.threshold {
                    cands.push(Detection {
                        class_id,
                        label: COCO_LABELS[class_id],
                        score: *s,
                        bbox,
                    });
                }
            }
        }
    }
    cands.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Detection> = Vec::new();
    for d in cands {
        let is_vehicle = VEHICLE_CLASSES.contains(&d.label);
        let suppressed = kept.iter().any(|k| {
            let same_group =
                k.class_id == d.class_id || (is_vehicle && VEHICLE_CLASSES.contains(&k.label));
            same_group && k.bbox.iou(&d.bbox) > p.nms_iou
        });
        if !suppressed {
            kept.push(d);
            if kept.len() >= p.max_detections {
                break;
            }
        }
    }
    kept
}

/// The detector: an ORT session plus reusable input buffer.
pub struct Detector {
    pub model: LoadedModel,
    input: Vec<f32>,
    params: DecodeParams,
    /// The model takes any height and width (multiples of 32): frames get the rectangular letterbox.
    rect: bool,
    /// The letterbox of the frame last prepared by [`Detector::prepare`].
    prepared: Option<(Letterbox, u32, u32)>,
}

impl Detector {
    pub fn new(model: LoadedModel, params: DecodeParams) -> Result<Self, InferError> {
        let s = INPUT_SIZE as i64;
        let outs: Vec<(&str, [i64; 3])> = LEVELS
            .iter()
            .flat_map(|(stride, c, b)| {
                let cells = (s / *stride as i64).pow(2);
                [(*c, [1, cells, 80]), (*b, [1, cells, 44])]
            })
            .collect();
        let out_refs: Vec<(&str, &[i64])> = outs.iter().map(|(n, d)| (*n, &d[..])).collect();
        check_signature(&model, &[(INPUT_NAME, &[1, 3, s, s])], &out_refs)?;
        let rect = model
            .session
            .inputs()
            .iter()
            .find(|i| i.name() == INPUT_NAME)
            .and_then(|i| {
                i.dtype()
                    .tensor_shape()
                    .map(|d| d.len() == 4 && d[2] < 0 && d[3] < 0)
            })
            .unwrap_or(false);
        Ok(Self {
            model,
            input: Vec::new(),
            params,
            rect,
            prepared: None,
        })
    }

    /// Whether frames get the rectangular letterbox (the model has dynamic height and width).
    pub fn rect(&self) -> bool {
        self.rect
    }

    /// Detects objects in one packed RGB frame; boxes are in that frame's pixels.
    pub fn detect(&mut self, rgb: &[u8], w: u32, h: u32) -> Result<Vec<Detection>, InferError> {
        self.prepare(rgb, w, h)?;
        self.run()
    }

    /// Preprocessing alone (timed apart from the model): fills the reusable input tensor.
    pub fn prepare(&mut self, rgb: &[u8], w: u32, h: u32) -> Result<(), InferError> {
        let lb = preprocess(rgb, w, h, self.rect, &mut self.input)?;
        self.prepared = Some((lb, w, h));
        Ok(())
    }

    /// Runs the model on the frame last prepared and decodes its detections.
    pub fn run(&mut self) -> Result<Vec<Detection>, InferError> {
        let (lb, w, h) = self.prepared.take().ok_or(InferError::Data {
            what: "detector",
            message: "run without a prepared frame".into(),
        })?;
        let run_err = |e: ort::Error| InferError::Run {
            model: "detector",
            message: e.to_string(),
        };
        let dims = [1usize, 3, lb.in_h as usize, lb.in_w as usize];
        let tensor = ort::value::TensorRef::from_array_view((dims, self.input.as_slice()))
            .map_err(run_err)?;
        let outputs = self
            .model
            .session
            .run(ort::inputs![INPUT_NAME => tensor])
            .map_err(run_err)?;
        let mut raw: Vec<(u32, &[f32], &[f32])> = Vec::with_capacity(3);
        for (stride, c, b) in LEVELS {
            let get = |name: &str| -> Result<&[f32], InferError> {
                let v = outputs.get(name).ok_or_else(|| InferError::Run {
                    model: "detector",
                    message: format!("output {name} missing"),
                })?;
                v.try_extract_tensor::<f32>()
                    .map(|(_, d)| d)
                    .map_err(run_err)
            };
            raw.push((stride, get(c)?, get(b)?));
        }
        let levels: Vec<Level<'_>> = raw
            .iter()
            .map(|(stride, scores, boxes)| Level {
                stride: *stride,
                scores,
                boxes,
            })
            .collect();
        Ok(decode(&levels, &lb, w, h, self.params))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    const P: DecodeParams = DecodeParams {
        threshold: 0.4,
        nms_iou: 0.6,
        max_detections: 100,
    };

    #[test]
    fn gfl_decode_places_the_box_around_the_cell_centre() {
        // cell (x=6, y=6) of the 13x13 grid: centre (208, 208) in input pixels
        let (scores, boxes) = level_with_one_person(6 * 13 + 6, 0.9);
        let lb = Letterbox::fit(416, 416, 416);
        let dets = decode(
            &[Level {
                stride: 32,
                scores: &scores,
                boxes: &boxes,
            }],
            &lb,
            416,
            416,
            P,
        );
        assert_eq!(dets.len(), 1);
        let d = &dets[0];
        assert_eq!(d.label, "person");
        for (got, want) in [
            (d.bbox.x1, 144.0),
            (d.bbox.y1, 144.0),
            (d.bbox.x2, 272.0),
            (d.bbox.y2, 272.0),
        ] {
            assert!((got - want).abs() < 0.01, "{:?}", d.bbox);
        }
    }

    #[test]
    fn boxes_map_back_through_the_letterbox() {
        let (scores, boxes) = level_with_one_person(6 * 13 + 6, 0.9);
        // 832x624 frame: scale 0.5, padded 52 px top and bottom
        let lb = Letterbox::fit(832, 624, 416);
        let d = &decode(
            &[Level {
                stride: 32,
                scores: &scores,
                boxes: &boxes,
            }],
            &lb,
            832,
            624,
            P,
        )[0];
        assert!(
            (d.bbox.x1 - 288.0).abs() < 0.1 && (d.bbox.y1 - 184.0).abs() < 0.1,
            "{:?}",
            d.bbox
        );
    }

    #[test]
    fn below_threshold_is_dropped_and_scores_are_not_resigmoided() {
        let (scores, boxes) = level_with_one_person(10, 0.39);
        let lb = Letterbox::fit(416, 416, 416);
        let lv = [Level {
            stride: 32,
            scores: &scores,
            boxes: &boxes,
        }];
        assert!(decode(&lv, &lb, 416, 416, P).is_empty());
        let (scores, boxes) = level_with_one_person(10, 0.41);
        let lv = [Level {
            stride: 32,
            scores: &scores,
            boxes: &boxes,
        }];
        let d = decode(&lv, &lb, 416, 416, P);
        assert!((d[0].score - 0.41).abs() < 1e-6);
    }

    #[test]
    fn nms_merges_duplicates_and_vehicle_classes() {
        let b = BBox {
            x1: 0.0,
            y1: 0.0,
            x2: 100.0,
            y2: 100.0,
        };
        assert!((b.iou(&b) - 1.0).abs() < 1e-6);
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
        let lb = Letterbox::fit(416, 416, 416);
        let d = decode(
            &[Level {
                stride: 32,
                scores: &scores,
                boxes: &boxes,
            }],
            &lb,
            416,
            416,
            P,
        );
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].label, "car");
    }

    #[test]
    fn preprocess_pads_with_normalised_black_and_swaps_to_bgr() {
        let w = 8;
        let h = 4;
        let rgb = [255u8, 0, 0].repeat((w * h) as usize);
        let mut out = Vec::new();
        let lb = preprocess(&rgb, w, h, false, &mut out).expect("preprocess");
        assert_eq!(out.len(), 3 * 416 * 416);
        let plane = 416 * 416;
        // top-left is padding: black
        assert!((out[0] - (-MEAN_BGR[0] / STD_BGR[0])).abs() < 1e-5);
        // centre pixel: red → B plane low, R plane high
        let centre = (lb.pad_y as usize + 10) * 416 + 208;
        assert!(out[centre] < -1.5, "B {}", out[centre]);
        assert!(
            out[2 * plane + centre] > 2.0,
            "R {}",
            out[2 * plane + centre]
        );
    }
}
