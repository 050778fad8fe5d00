//! Decoding detector outputs into detections, one pure function per model format (`nanodet`, `yolo`, `yolox`,
//! `detr`) over plain slices, each ending in the same NMS: per class, with the road-vehicle classes merged. Boxes
//! come back in the source frame's pixels (mapped back through the letterbox). No ORT here: unit-tested on slices.

pub mod detr;
pub mod nanodet;
pub mod yolo;
pub mod yolox;

use serde::Serialize;

use super::preprocess::Letterbox;
use crate::labels::{ClassNames, VEHICLE_CLASSES};

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
    /// Index into the detector's labels (its output order).
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

/// What a decoder needs besides the outputs: where the frame sits in the model input, the frame's size, the
/// detector's labels and the decode parameters.
#[derive(Debug, Clone, Copy)]
pub struct DecodeCtx<'a> {
    pub lb: Letterbox,
    pub width: u32,
    pub height: u32,
    pub classes: &'a ClassNames,
    pub params: DecodeParams,
}

impl DecodeCtx<'_> {
    /// A box in model-input pixels as a box in frame pixels: clamped to the input, mapped back through the
    /// letterbox, clamped to the frame; None when nothing of it is left.
    pub fn to_frame(&self, x1: f32, y1: f32, x2: f32, y2: f32) -> Option<BBox> {
        let (iw, ih) = (self.lb.in_w as f32, self.lb.in_h as f32);
        let (x1, y1) = self.lb.to_source(x1.clamp(0.0, iw), y1.clamp(0.0, ih));
        let (x2, y2) = self.lb.to_source(x2.clamp(0.0, iw), y2.clamp(0.0, ih));
        let (w, h) = (self.width as f32, self.height as f32);
        let b = BBox {
            x1: x1.clamp(0.0, w),
            y1: y1.clamp(0.0, h),
            x2: x2.clamp(0.0, w),
            y2: y2.clamp(0.0, h),
        };
        // NaN coordinates fail this too
        (b.area() > 0.0).then_some(b)
    }

    /// A centre-size box in model-input pixels, in frame pixels.
    pub fn cxcywh_to_frame(&self, cx: f32, cy: f32, w: f32, h: f32) -> Option<BBox> {
        self.to_frame(cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0)
    }

    /// A candidate of class `id` (None for an id beyond the labels).
    pub fn detection(&self, id: usize, score: f32, bbox: BBox) -> Option<Detection> {
        Some(Detection {
            class_id: id,
            label: self.classes.get(id)?,
            score,
            bbox,
        })
    }
}

/// Per-class NMS, then NMS across the vehicle classes (a van comes out as car and truck for the same box: keep the
/// better one), best first, at most `max_detections`.
pub fn nms(mut cands: Vec<Detection>, p: DecodeParams) -> Vec<Detection> {
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

/// A shape for messages: dynamic dimensions as `?`.
pub fn shape_text(shape: &[i64]) -> String {
    let dims: Vec<String> = shape
        .iter()
        .map(|d| if *d < 0 { "?".into() } else { d.to_string() })
        .collect();
    format!("[{}]", dims.join(", "))
}

/// Index of the best value and the value (None for an empty slice).
fn best(scores: &[f32]) -> Option<(usize, f32)> {
    scores
        .iter()
        .copied()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(&b.1))
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;

    pub const P: DecodeParams = DecodeParams {
        threshold: 0.4,
        nms_iou: 0.6,
        max_detections: 100,
    };

    pub fn ctx(classes: &ClassNames, lb: Letterbox, w: u32, h: u32) -> DecodeCtx<'_> {
        DecodeCtx {
            lb,
            width: w,
            height: h,
            classes,
            params: P,
        }
    }

    pub fn assert_box(b: &BBox, want: [f32; 4]) {
        let got = [b.x1, b.y1, b.x2, b.y2];
        assert!(
            got.iter().zip(want).all(|(g, w)| (g - w).abs() < 0.05),
            "got {got:?}, want {want:?}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;

    #[test]
    fn nms_merges_duplicates_and_vehicle_classes_but_not_other_classes() {
        let b = BBox {
            x1: 0.0,
            y1: 0.0,
            x2: 100.0,
            y2: 100.0,
        };
        assert!((b.iou(&b) - 1.0).abs() < 1e-6);
        let shifted = BBox { x1: 5.0, ..b };
        let d = |id: usize, label, score, bbox| Detection {
            class_id: id,
            label,
            score,
            bbox,
        };
        let out = nms(
            vec![
                d(7, "truck", 0.6, shifted),
                d(2, "car", 0.7, b),
                d(0, "person", 0.5, b),
                d(0, "person", 0.45, shifted),
            ],
            P,
        );
        let labels: Vec<_> = out.iter().map(|d| (d.label, d.score)).collect();
        assert_eq!(labels, [("car", 0.7), ("person", 0.5)]);
    }

    #[test]
    fn boxes_outside_the_frame_are_dropped_and_unknown_ids_too() {
        let classes = ClassNames::coco80();
        let c = ctx(&classes, Letterbox::fit(832, 624, 416), 832, 624);
        // entirely in the top padding (52 rows): nothing of the frame
        assert_eq!(c.to_frame(10.0, 0.0, 50.0, 40.0), None);
        assert_eq!(c.to_frame(f32::NAN, 0.0, 50.0, 400.0), None);
        assert_box(
            &c.to_frame(0.0, 52.0, 208.0, 364.0).expect("box"),
            [0.0, 0.0, 416.0, 624.0],
        );
        assert!(c
            .detection(80, 0.9, c.to_frame(0.0, 60.0, 9.0, 90.0).expect("b"))
            .is_none());
    }

    #[test]
    fn shapes_print_dynamic_dimensions() {
        assert_eq!(shape_text(&[1, 84, -1]), "[1, 84, ?]");
    }
}
