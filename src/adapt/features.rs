//! What a task head sees of a clip. One function ([`clip_feature`]) pools a clip's frames into the head's input
//! for both training (`scenewatch adapt train`) and serving (the inference workers), so a head is scored on the
//! same numbers it was trained on. Pure: frames' embeddings and detections in, a vector out.
//!
//! Recipe version 1: the image encoder's pooled embedding of each encoded frame (of the region's crop for a region
//! head), averaged over the clip and L2-normalised; then, per detector class, the mean over the clip's frames of the
//! frame's best detection score whose box centre lies in the region (0 when none). The mean, not the maximum,
//! so a photo (a clip of one frame) and an eight-frame clip of a still scene give the same numbers.

use super::head::FeatureRecipe;
use super::AdaptError;
use crate::infer::detector::Detection;

pub const RECIPE_VERSION: u32 = 1;
/// The embedding of recipe 1: EfficientNet-Lite0's global-average-pooled feature.
pub const EMBEDDING: &str = "efficientnet_lite0.pooled.mean_l2";
/// The smallest crop (pixels per side) a region head encodes; a smaller region is refused.
pub const MIN_CROP: u32 = 16;

/// The recipe of a head trained on these models: the encoder's embedding width, the detector's class count and
/// the region (normalised `x0, y0, x1, y1`; None = the whole frame).
pub fn recipe(embedding_dim: usize, classes: usize, region: Option<[f32; 4]>) -> FeatureRecipe {
    FeatureRecipe {
        version: RECIPE_VERSION,
        embedding: EMBEDDING.into(),
        embedding_dim,
        evidence_classes: classes,
        pose: false,
        region,
    }
}

/// Parses `--region x0,y0,x1,y1` (normalised, x0 < x1, y0 < y1, within 0..1).
pub fn parse_region(s: &str) -> Result<[f32; 4], String> {
    let v: Vec<f32> = s
        .split(',')
        .map(|p| p.trim().parse::<f32>())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("region '{s}': {e} (expected x0,y0,x1,y1 in 0..1)"))?;
    let r: [f32; 4] = v
        .try_into()
        .map_err(|_| format!("region '{s}': expected four numbers x0,y0,x1,y1"))?;
    check_region(&r).map(|()| r)
}

/// A region is four finite numbers in 0..=1 with x0 < x1 and y0 < y1.
pub fn check_region(r: &[f32; 4]) -> Result<(), String> {
    if r.iter().any(|v| !(0.0..=1.0).contains(v)) || r[0] >= r[2] || r[1] >= r[3] {
        return Err(format!(
            "region {r:?}: expected x0,y0,x1,y1 in 0..1 with x0 < x1 and y0 < y1"
        ));
    }
    Ok(())
}

/// The region in whole pixels of a `w`×`h` frame: (x, y, width, height), at least one pixel each.
fn pixel_rect(region: &[f32; 4], w: u32, h: u32) -> (u32, u32, u32, u32) {
    let x0 = ((region[0] * w as f32).floor() as u32).min(w.saturating_sub(1));
    let y0 = ((region[1] * h as f32).floor() as u32).min(h.saturating_sub(1));
    let x1 = ((region[2] * w as f32).ceil() as u32).clamp(x0 + 1, w.max(x0 + 1));
    let y1 = ((region[3] * h as f32).ceil() as u32).clamp(y0 + 1, h.max(y0 + 1));
    (x0, y0, x1 - x0, y1 - y0)
}

/// The region's pixels of a packed RGB8 frame, as a packed RGB8 image, or an error when the crop is smaller than
/// [`MIN_CROP`] pixels on a side (too small for the encoder to see anything).
pub fn crop(
    rgb: &[u8],
    w: u32,
    h: u32,
    region: &[f32; 4],
) -> Result<(Vec<u8>, u32, u32), AdaptError> {
    if rgb.len() < (w as usize) * (h as usize) * 3 {
        return Err(AdaptError::Data(format!(
            "a {w}x{h} frame needs {} bytes of RGB, got {}",
            w as usize * h as usize * 3,
            rgb.len()
        )));
    }
    let (x, y, cw, ch) = pixel_rect(region, w, h);
    if cw < MIN_CROP || ch < MIN_CROP {
        return Err(AdaptError::Data(format!(
            "region {region:?} is {cw}x{ch} pixels of a {w}x{h} frame: at least {MIN_CROP}x{MIN_CROP} is needed"
        )));
    }
    let mut out = Vec::with_capacity(cw as usize * ch as usize * 3);
    for row in y..y + ch {
        let start = (row as usize * w as usize + x as usize) * 3;
        out.extend_from_slice(&rgb[start..start + cw as usize * 3]);
    }
    Ok((out, cw, ch))
}

/// One frame as the pooling sees it: its size and detections.
#[derive(Debug, Clone, Copy)]
pub struct FrameDets<'a> {
    pub width: u32,
    pub height: u32,
    pub detections: &'a [Detection],
}

/// The head input of one clip: `embeddings` are the encoded frames' embeddings (of the region's crop for a region
/// recipe), `frames` every frame's detections. Fails when no frame was encoded or an embedding has another width
/// than the recipe's.
pub fn clip_feature(
    recipe: &FeatureRecipe,
    embeddings: &[&[f32]],
    frames: &[FrameDets<'_>],
) -> Result<Vec<f32>, AdaptError> {
    if embeddings.is_empty() {
        return Err(AdaptError::Data("no frame of the clip was encoded".into()));
    }
    let d = recipe.embedding_dim;
    let mut mean = vec![0.0f32; d];
    for e in embeddings {
        if e.len() != d {
            return Err(AdaptError::FeatureDim {
                expected: d,
                got: e.len(),
            });
        }
        for (m, v) in mean.iter_mut().zip(e.iter()) {
            *m += v;
        }
    }
    let norm = mean.iter().map(|v| v * v).sum::<f32>().sqrt();
    if norm > 0.0 && norm.is_finite() {
        mean.iter_mut().for_each(|v| *v /= norm);
    }
    let mut evidence = vec![0.0f32; recipe.evidence_classes];
    if !frames.is_empty() && !evidence.is_empty() {
        let mut best = vec![0.0f32; evidence.len()];
        for f in frames {
            best.iter_mut().for_each(|b| *b = 0.0);
            for det in f.detections {
                if det.class_id >= best.len() || !in_region(recipe.region.as_ref(), f, det) {
                    continue;
                }
                best[det.class_id] = best[det.class_id].max(det.score);
            }
            for (e, b) in evidence.iter_mut().zip(&best) {
                *e += b;
            }
        }
        let n = frames.len() as f32;
        evidence.iter_mut().for_each(|e| *e /= n);
    }
    mean.extend(evidence);
    Ok(mean)
}

/// Whether a detection's box centre lies in the region (always, for a whole-frame recipe).
fn in_region(region: Option<&[f32; 4]>, f: &FrameDets<'_>, det: &Detection) -> bool {
    let Some(r) = region else { return true };
    if f.width == 0 || f.height == 0 {
        return false;
    }
    let cx = (det.bbox.x1 + det.bbox.x2) / 2.0 / f.width as f32;
    let cy = (det.bbox.y1 + det.bbox.y2) / 2.0 / f.height as f32;
    (r[0]..=r[2]).contains(&cx) && (r[1]..=r[3]).contains(&cy)
}

/// Light augmentation of a training photo (flip, crop, brightness), so a few photos teach a head that the class
/// does not hang on one framing or one exposure. `variant` 0 is the photo itself; each further variant draws its
/// changes from `seed` and the variant number, so a run is reproducible.
pub fn augment(rgb: &[u8], w: u32, h: u32, variant: u32, seed: u64) -> (Vec<u8>, u32, u32) {
    if variant == 0 || w < 32 || h < 32 {
        return (rgb.to_vec(), w, h);
    }
    let mut g = super::train::Rng::new(seed ^ (variant as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut unit = || g.next_f64() as f32;
    // crop 80–100 % of each side at a random offset
    let sx = 0.8 + 0.2 * unit();
    let sy = 0.8 + 0.2 * unit();
    let cw = ((w as f32 * sx) as u32).clamp(16, w);
    let ch = ((h as f32 * sy) as u32).clamp(16, h);
    let ox = ((w - cw) as f32 * unit()) as u32;
    let oy = ((h - ch) as f32 * unit()) as u32;
    let flip = unit() < 0.5;
    // brightness ×0.7–1.3
    let gain = 0.7 + 0.6 * unit();
    let mut out = Vec::with_capacity(cw as usize * ch as usize * 3);
    for y in oy..oy + ch {
        for i in 0..cw {
            let x = if flip { ox + cw - 1 - i } else { ox + i };
            let p = (y as usize * w as usize + x as usize) * 3;
            for c in 0..3 {
                let v = rgb.get(p + c).copied().unwrap_or(0) as f32 * gain;
                out.push(v.round().clamp(0.0, 255.0) as u8);
            }
        }
    }
    (out, cw, ch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::infer::decode::BBox;

    fn det(class_id: usize, score: f32, x: f32, y: f32) -> Detection {
        Detection {
            class_id,
            label: "x",
            score,
            bbox: BBox {
                x1: x - 5.0,
                y1: y - 5.0,
                x2: x + 5.0,
                y2: y + 5.0,
            },
        }
    }

    #[test]
    fn embeddings_are_averaged_and_normalised_and_evidence_is_the_mean_of_frame_bests() {
        let r = recipe(2, 3, None);
        let a = [3.0, 0.0];
        let b = [1.0, 0.0];
        let d1 = [det(1, 0.8, 10.0, 10.0), det(1, 0.6, 50.0, 50.0)];
        let d2 = [det(2, 0.4, 10.0, 10.0)];
        let frames = [
            FrameDets {
                width: 100,
                height: 100,
                detections: &d1,
            },
            FrameDets {
                width: 100,
                height: 100,
                detections: &d2,
            },
        ];
        let f = clip_feature(&r, &[&a, &b], &frames).expect("feature");
        assert_eq!(f.len(), r.dim());
        assert!((f[0] - 1.0).abs() < 1e-6 && f[1].abs() < 1e-6, "{f:?}");
        // class 1: best 0.8 in frame 1, 0 in frame 2; class 2: 0 then 0.4
        assert!(
            (f[3] - 0.4).abs() < 1e-6 && (f[4] - 0.2).abs() < 1e-6,
            "{f:?}"
        );
    }

    #[test]
    fn a_photo_and_a_still_clip_of_it_pool_to_the_same_feature() {
        let r = recipe(2, 2, None);
        let e = [0.3, 0.4];
        let d = [det(0, 0.7, 10.0, 10.0)];
        let one = FrameDets {
            width: 100,
            height: 100,
            detections: &d,
        };
        let photo = clip_feature(&r, &[&e], &[one]).expect("photo");
        let clip = clip_feature(&r, &[&e, &e, &e, &e], &[one; 8]).expect("clip");
        assert_eq!(photo.len(), clip.len());
        assert!(
            photo.iter().zip(&clip).all(|(a, b)| (a - b).abs() < 1e-6),
            "{photo:?} vs {clip:?}"
        );
    }

    #[test]
    fn a_region_counts_only_detections_centred_inside_it() {
        let r = recipe(1, 1, Some([0.0, 0.0, 0.5, 0.5]));
        let d = [det(0, 0.9, 80.0, 80.0), det(0, 0.3, 20.0, 20.0)];
        let f = clip_feature(
            &r,
            &[&[1.0]],
            &[FrameDets {
                width: 100,
                height: 100,
                detections: &d,
            }],
        )
        .expect("feature");
        assert!((f[1] - 0.3).abs() < 1e-6, "{f:?}");
    }

    #[test]
    fn wrong_widths_and_empty_clips_are_errors() {
        let r = recipe(3, 0, None);
        assert!(matches!(
            clip_feature(&r, &[&[1.0, 2.0]], &[]),
            Err(AdaptError::FeatureDim {
                expected: 3,
                got: 2
            })
        ));
        assert!(clip_feature(&r, &[], &[]).is_err());
    }

    #[test]
    fn crops_take_the_region_and_refuse_tiny_ones() {
        // 40x20 frame whose red channel is the column index
        let (w, h) = (40u32, 20u32);
        let rgb: Vec<u8> = (0..h)
            .flat_map(|_| (0..w).flat_map(|x| [x as u8, 0, 0]))
            .collect();
        let (c, cw, ch) = crop(&rgb, w, h, &[0.5, 0.0, 1.0, 1.0]).expect("crop");
        assert_eq!((cw, ch), (20, 20));
        assert_eq!(c[0], 20, "starts at column 20");
        assert_eq!(c.len(), 20 * 20 * 3);
        assert!(crop(&rgb, w, h, &[0.0, 0.0, 0.1, 0.1]).is_err());
        assert!(crop(&rgb[..10], w, h, &[0.0, 0.0, 1.0, 1.0]).is_err());
    }

    #[test]
    fn regions_parse_and_bad_ones_say_why() {
        assert_eq!(parse_region("0,0.5,1,1"), Ok([0.0, 0.5, 1.0, 1.0]));
        assert!(parse_region("0.5,0,0.4,1").is_err());
        assert!(parse_region("0,0,1").is_err());
        assert!(parse_region("a,b,c,d").is_err());
        assert!(parse_region("0,0,1.5,1").is_err());
    }

    #[test]
    fn augmentation_is_reproducible_and_variant_zero_is_the_photo() {
        let (w, h) = (64u32, 48u32);
        let rgb: Vec<u8> = (0..w * h * 3).map(|i| (i % 251) as u8).collect();
        assert_eq!(augment(&rgb, w, h, 0, 1), (rgb.clone(), w, h));
        let a = augment(&rgb, w, h, 3, 7);
        assert_eq!(a, augment(&rgb, w, h, 3, 7));
        assert_ne!(a.0, augment(&rgb, w, h, 4, 7).0);
        assert_eq!(a.0.len(), a.1 as usize * a.2 as usize * 3);
        assert!(
            a.1 >= 51 && a.2 >= 38,
            "crops keep at least 80 %: {}x{}",
            a.1,
            a.2
        );
    }
}
