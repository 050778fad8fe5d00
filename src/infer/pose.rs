//! Posture of detected people from MoveNet multipose (lightning): keypoints per person, matched to the detector's
//! person boxes, classified standing / sitting / lying by body geometry. Runs only on frames of cameras that have
//! a rule with a `posture` (every sampled frame: the detector misses most people lying down, MoveNet does not).
//!
//! MoveNet takes int32 RGB 0–255 of any size that is a multiple of 32 and returns up to 6 people as 17 keypoints
//! (y, x, score; normalized to the input) and a box. The frame is scaled (aspect kept) so its long side is
//! `input_long` and padded right/bottom to multiples of 32: small CCTV people need ≥ 384 px (models.md: 256 found
//! 27/50 people on vtest, 384×288 38/50).

use super::detector::{BBox, Detection};
use super::preprocess::{resize_rgb, Filter};
use super::runtime::{check_signature, InferError, LoadedModel};
/// The postures `classify` tells apart; the type lives with the rule vocabulary, where config reads it too.
pub use crate::labels::Posture;

pub const INPUT_NAME: &str = "input";
pub const OUTPUT_NAME: &str = "output_0";
const KP: usize = 17;
/// Keypoints below this score are treated as not seen.
const KP_MIN: f32 = 0.25;
/// A MoveNet person must overlap its detector box this much to lend it a posture.
const MATCH_IOU: f32 = 0.3;

/// COCO keypoint indices used by the classifier.
const SHOULDERS: [usize; 2] = [5, 6];
const HIPS: [usize; 2] = [11, 12];
const KNEES: [usize; 2] = [13, 14];

/// One person from MoveNet, in source-frame pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct Pose {
    /// (x, y, score) per COCO keypoint.
    pub keypoints: [(f32, f32, f32); KP],
    pub bbox: BBox,
    pub score: f32,
}

/// How a frame was scaled and padded into the model input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Geometry {
    pub in_w: u32,
    pub in_h: u32,
    pub scale: f32,
    pub new_w: u32,
    pub new_h: u32,
}

impl Geometry {
    pub fn fit(w: u32, h: u32, input_long: u32) -> Self {
        let scale = input_long as f32 / w.max(h).max(1) as f32;
        let new_w = ((w as f32 * scale).round() as u32).max(1);
        let new_h = ((h as f32 * scale).round() as u32).max(1);
        let up32 = |v: u32| v.div_ceil(32) * 32;
        Self {
            in_w: up32(new_w),
            in_h: up32(new_h),
            scale,
            new_w,
            new_h,
        }
    }
}

/// Decodes `output_0` ([1, 6, 56]) into poses above `min_score`, mapped back to source pixels.
pub fn decode(out: &[f32], g: &Geometry, min_score: f32) -> Vec<Pose> {
    out.chunks_exact(56)
        .filter_map(|p| {
            let score = p[55];
            if score < min_score {
                return None;
            }
            let to_src =
                |yn: f32, xn: f32| (xn * g.in_w as f32 / g.scale, yn * g.in_h as f32 / g.scale);
            let mut keypoints = [(0.0, 0.0, 0.0); KP];
            for (k, kp) in keypoints.iter_mut().enumerate() {
                let (x, y) = to_src(p[3 * k], p[3 * k + 1]);
                *kp = (x, y, p[3 * k + 2]);
            }
            let (x1, y1) = to_src(p[51], p[52]);
            let (x2, y2) = to_src(p[53], p[54]);
            Some(Pose {
                keypoints,
                bbox: BBox { x1, y1, x2, y2 },
                score,
            })
        })
        .collect()
}

fn mid(kps: &[(f32, f32, f32); KP], idx: [usize; 2]) -> Option<(f32, f32)> {
    let seen: Vec<_> = idx
        .iter()
        .map(|i| kps[*i])
        .filter(|k| k.2 >= KP_MIN)
        .collect();
    if seen.is_empty() {
        return None;
    }
    let n = seen.len() as f32;
    Some((
        seen.iter().map(|k| k.0).sum::<f32>() / n,
        seen.iter().map(|k| k.1).sum::<f32>() / n,
    ))
}

/// Degrees between the vector (dx, dy) and straight down/up in the image (0 = vertical, 90 = horizontal).
fn from_vertical(dx: f32, dy: f32) -> f32 {
    dx.abs().atan2(dy.abs()).to_degrees()
}

/// Standing / sitting / lying from keypoints, or None when the body is not visible enough to say:
/// - lying: the torso (hips → shoulders) is more than 60° from vertical;
/// - sitting: the torso is upright and the thighs (hips → knees) are more than 55° from vertical;
/// - standing: torso and thighs upright.
pub fn classify(p: &Pose) -> Option<Posture> {
    let shoulders = mid(&p.keypoints, SHOULDERS)?;
    let hips = mid(&p.keypoints, HIPS)?;
    let torso = from_vertical(shoulders.0 - hips.0, shoulders.1 - hips.1);
    if torso > 60.0 {
        return Some(Posture::Lying);
    }
    let knees = mid(&p.keypoints, KNEES)?;
    let thigh = from_vertical(knees.0 - hips.0, knees.1 - hips.1);
    Some(if thigh > 55.0 {
        Posture::Sitting
    } else {
        Posture::Standing
    })
}

/// A person the pose model found with no matching detector box, with a clear posture.
#[derive(Debug, Clone, PartialEq)]
pub struct PoseOnly {
    pub bbox: BBox,
    /// MoveNet's person score.
    pub score: f32,
    pub posture: Posture,
}

/// MoveNet person score from which a person with no detector box still counts for posture rules. The detector
/// (trained on mostly upright COCO people) misses most people lying down; MoveNet scored the six lying people of
/// tests/posture.rs 0.27–0.40, and nothing in the empty-street photos.
pub const POSE_ONLY_MIN: f32 = 0.25;

/// Posture per detection (None for non-people, unmatched people, or unclear bodies): each person detection takes
/// the best-overlapping MoveNet person, each pose used once.
pub fn postures_for(detections: &[Detection], poses: &[Pose]) -> Vec<Option<Posture>> {
    match_poses(detections, poses).0
}

/// `postures_for`, plus the poses no person detection took (score ≥ `POSE_ONLY_MIN`, posture clear).
pub fn match_poses(
    detections: &[Detection],
    poses: &[Pose],
) -> (Vec<Option<Posture>>, Vec<PoseOnly>) {
    let mut used = vec![false; poses.len()];
    let mut order: Vec<usize> = (0..detections.len()).collect();
    order.sort_by(|a, b| detections[*b].score.total_cmp(&detections[*a].score));
    let mut out = vec![None; detections.len()];
    for di in order {
        let d = &detections[di];
        if d.label != "person" {
            continue;
        }
        let best = poses
            .iter()
            .enumerate()
            .filter(|(pi, _)| !used[*pi])
            .map(|(pi, p)| (pi, d.bbox.iou(&p.bbox)))
            .filter(|(_, v)| *v >= MATCH_IOU)
            .max_by(|a, b| a.1.total_cmp(&b.1));
        if let Some((pi, _)) = best {
            used[pi] = true;
            out[di] = classify(&poses[pi]);
        }
    }
    let rest = poses
        .iter()
        .zip(&used)
        .filter(|(p, u)| !**u && p.score >= POSE_ONLY_MIN)
        .filter_map(|(p, _)| {
            classify(p).map(|posture| PoseOnly {
                bbox: p.bbox,
                score: p.score,
                posture,
            })
        })
        .collect();
    (out, rest)
}

/// The pose model with its reusable input buffer.
pub struct PoseModel {
    pub model: LoadedModel,
    input_long: u32,
    input: Vec<i32>,
}

impl PoseModel {
    pub fn new(model: LoadedModel, input_long: u32) -> Result<Self, InferError> {
        check_signature(
            &model,
            &[(INPUT_NAME, &[1, -1, -1, 3])],
            &[(OUTPUT_NAME, &[1, 6, 56])],
        )?;
        Ok(Self {
            model,
            input_long,
            input: Vec::new(),
        })
    }

    /// People and their keypoints in one packed RGB frame.
    pub fn poses(&mut self, rgb: &[u8], w: u32, h: u32) -> Result<Vec<Pose>, InferError> {
        let g = Geometry::fit(w, h, self.input_long);
        let scaled = resize_rgb(rgb, w, h, g.new_w, g.new_h, None, Filter::Bilinear)?;
        self.input.clear();
        self.input.resize((g.in_w * g.in_h * 3) as usize, 0);
        let (nw, iw) = (g.new_w as usize * 3, g.in_w as usize * 3);
        for y in 0..g.new_h as usize {
            for (dst, src) in self.input[y * iw..y * iw + nw]
                .iter_mut()
                .zip(&scaled[y * nw..(y + 1) * nw])
            {
                *dst = *src as i32;
            }
        }
        let run_err = |e: ort::Error| InferError::Run {
            model: "pose",
            message: e.to_string(),
        };
        let tensor = ort::value::TensorRef::from_array_view((
            [1usize, g.in_h as usize, g.in_w as usize, 3],
            self.input.as_slice(),
        ))
        .map_err(run_err)?;
        let outputs = self
            .model
            .session
            .run(ort::inputs![INPUT_NAME => tensor])
            .map_err(run_err)?;
        let out = outputs.get(OUTPUT_NAME).ok_or_else(|| InferError::Run {
            model: "pose",
            message: format!("output {OUTPUT_NAME} missing"),
        })?;
        let (_, data) = out.try_extract_tensor::<f32>().map_err(run_err)?;
        Ok(decode(data, &g, 0.2))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pose from named points (x, y); everything else unseen.
    fn pose(points: &[(usize, f32, f32)]) -> Pose {
        let mut keypoints = [(0.0, 0.0, 0.0); KP];
        for (i, x, y) in points {
            keypoints[*i] = (*x, *y, 0.9);
        }
        Pose {
            keypoints,
            bbox: BBox {
                x1: 0.0,
                y1: 0.0,
                x2: 100.0,
                y2: 200.0,
            },
            score: 0.8,
        }
    }

    #[test]
    fn geometry_pads_to_multiples_of_32_and_keeps_the_aspect() {
        let g = Geometry::fit(768, 576, 384);
        assert_eq!((g.new_w, g.new_h, g.in_w, g.in_h), (384, 288, 384, 288));
        let g = Geometry::fit(751, 563, 384);
        assert_eq!((g.new_w, g.new_h, g.in_w, g.in_h), (384, 288, 384, 288));
        let g = Geometry::fit(400, 300, 256);
        assert_eq!((g.in_w, g.in_h), (256, 192));
        let g = Geometry::fit(1000, 100, 384);
        assert_eq!((g.new_h, g.in_h), (38, 64));
    }

    #[test]
    fn decode_maps_keypoints_back_to_source_pixels() {
        let g = Geometry::fit(768, 576, 384);
        let mut out = vec![0.0f32; 6 * 56];
        // person 0: nose at the input centre, box over the left half; person 1 below the score threshold
        out[0] = 0.5;
        out[1] = 0.5;
        out[2] = 0.9;
        out[51..56].copy_from_slice(&[0.0, 0.0, 1.0, 0.5, 0.7]);
        out[56 + 55] = 0.1;
        let poses = decode(&out, &g, 0.2);
        assert_eq!(poses.len(), 1);
        let (x, y, s) = poses[0].keypoints[0];
        assert!((x - 384.0).abs() < 0.01 && (y - 288.0).abs() < 0.01 && s == 0.9);
        assert!((poses[0].bbox.x2 - 384.0).abs() < 0.01 && (poses[0].bbox.y2 - 576.0).abs() < 0.01);
    }

    #[test]
    fn upright_seated_and_horizontal_bodies_are_told_apart() {
        // image y grows downwards
        let standing = pose(&[
            (5, 50.0, 40.0),
            (6, 70.0, 40.0),
            (11, 52.0, 100.0),
            (12, 68.0, 100.0),
            (13, 52.0, 150.0),
            (14, 68.0, 150.0),
        ]);
        assert_eq!(classify(&standing), Some(Posture::Standing));
        let sitting = pose(&[
            (5, 50.0, 40.0),
            (6, 70.0, 40.0),
            (11, 52.0, 100.0),
            (12, 68.0, 100.0),
            (13, 100.0, 108.0),
            (14, 104.0, 110.0),
        ]);
        assert_eq!(classify(&sitting), Some(Posture::Sitting));
        let lying = pose(&[
            (5, 40.0, 150.0),
            (6, 40.0, 165.0),
            (11, 100.0, 152.0),
            (12, 100.0, 168.0),
        ]);
        assert_eq!(classify(&lying), Some(Posture::Lying));
        let upper_body_only = pose(&[(5, 50.0, 40.0), (6, 70.0, 40.0), (11, 52.0, 100.0)]);
        assert_eq!(
            classify(&upper_body_only),
            None,
            "knees unseen: cannot tell sitting from standing"
        );
        assert_eq!(classify(&pose(&[(0, 1.0, 1.0)])), None);
    }

    #[test]
    fn each_person_detection_takes_its_best_overlapping_pose() {
        let det = |x: f32, label: &'static str| Detection {
            class_id: 0,
            label,
            score: 0.9,
            bbox: BBox {
                x1: x,
                y1: 0.0,
                x2: x + 100.0,
                y2: 200.0,
            },
        };
        let standing = pose(&[(5, 50.0, 40.0), (11, 52.0, 100.0), (13, 52.0, 150.0)]);
        let mut far = standing.clone();
        far.bbox.x1 += 500.0;
        far.bbox.x2 += 500.0;
        let (p, rest) = match_poses(
            &[det(0.0, "person"), det(0.0, "dog"), det(300.0, "person")],
            &[far.clone(), standing],
        );
        assert_eq!(p, vec![Some(Posture::Standing), None, None]);
        assert_eq!(rest.len(), 1, "the far pose has no detection: {rest:?}");
        assert_eq!(rest[0].bbox, far.bbox);
    }
}
