//! RT-DETR / D-FINE exports, two forms. Deploy (the projects' `export_onnx.py`, what Frigate runs): inputs
//! `images` and `orig_target_sizes` ([1, 2] i64, width then height: the post-processor multiplies the normalised
//! x1, y1, x2, y2 by (w, h, w, h)); outputs `labels` [1, Q] (class ids), `boxes` [1, Q, 4] (x1, y1, x2, y2 in the
//! units of `orig_target_sizes`) and `scores` [1, Q]. scenewatch passes the model input's size, so boxes come in
//! model-input pixels and map back through the resize like every other format. Raw (e.g. Hugging Face exports):
//! `logits` [1, Q, C] (sigmoid, no background class) and `pred_boxes` [1, Q, 4] (cx, cy, w, h, normalised 0–1);
//! every class at or above the threshold is a candidate (as the reference top-k over Q·C allows).

use super::{nms, DecodeCtx, Detection};

/// The deploy form. Also returns how many above-threshold queries named a class id beyond the labels (skipped:
/// the card's labels do not match the model's).
pub fn decode_deploy(
    labels: &[i64],
    boxes: &[f32],
    scores: &[f32],
    ctx: &DecodeCtx<'_>,
) -> Result<(Vec<Detection>, usize), String> {
    let q = scores.len();
    if labels.len() != q || boxes.len() != 4 * q {
        return Err(format!(
            "{} scores, {} labels and {} box values (expected Q, Q and 4·Q)",
            q,
            labels.len(),
            boxes.len()
        ));
    }
    let mut unknown = 0;
    let mut cands = Vec::new();
    for (i, (&label, &score)) in labels.iter().zip(scores).enumerate() {
        if score < ctx.params.threshold {
            continue;
        }
        let Some(class) = usize::try_from(label)
            .ok()
            .filter(|c| *c < ctx.classes.len())
        else {
            unknown += 1;
            continue;
        };
        let b = &boxes[4 * i..4 * i + 4];
        if let Some(bbox) = ctx.to_frame(b[0], b[1], b[2], b[3]) {
            cands.extend(ctx.detection(class, score, bbox));
        }
    }
    Ok((nms(cands, ctx.params), unknown))
}

/// The raw form: `logits` [Q·C] and normalised centre-size `pred_boxes` [Q·4].
pub fn decode_raw(
    logits: &[f32],
    boxes: &[f32],
    ctx: &DecodeCtx<'_>,
) -> Result<Vec<Detection>, String> {
    let c = ctx.classes.len().max(1);
    let q = boxes.len() / 4;
    if logits.len() != q * c || boxes.len() != 4 * q {
        return Err(format!(
            "{} logits and {} box values for {c} labels (expected Q·{c} and 4·Q)",
            logits.len(),
            boxes.len()
        ));
    }
    let t = ctx.params.threshold.clamp(1e-6, 1.0 - 1e-6);
    // compare logits with the threshold's logit: no sigmoid for the (many) queries below it
    let min_logit = (t / (1.0 - t)).ln();
    let (iw, ih) = (ctx.lb.in_w as f32, ctx.lb.in_h as f32);
    let mut cands = Vec::new();
    for i in 0..q {
        let row = &logits[i * c..(i + 1) * c];
        if !row.iter().any(|l| *l >= min_logit) {
            continue;
        }
        let b = &boxes[4 * i..4 * i + 4];
        let Some(bbox) = ctx.cxcywh_to_frame(b[0] * iw, b[1] * ih, b[2] * iw, b[3] * ih) else {
            continue;
        };
        for (class, l) in row.iter().enumerate() {
            if *l >= min_logit {
                cands.extend(ctx.detection(class, 1.0 / (1.0 + (-l).exp()), bbox));
            }
        }
    }
    Ok(nms(cands, ctx.params))
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use crate::infer::preprocess::Letterbox;
    use crate::labels::ClassNames;

    #[test]
    fn deploy_boxes_map_back_through_the_plain_resize() {
        let names = ClassNames::parse("person\ncar\n").expect("labels");
        // a 200x100 frame resized to 100x50: both scales 0.5
        let c = ctx(&names, Letterbox::stretch(200, 100, 100, 50), 200, 100);
        let labels = [0i64, 1, 1, 7];
        let boxes = [
            10.0, 5.0, 30.0, 45.0, // person
            50.0, 20.0, 90.0, 40.0, // car
            0.0, 0.0, 5.0, 5.0, // car below the threshold
            0.0, 0.0, 50.0, 50.0, // class 7: not in the labels
        ];
        let scores = [0.9, 0.6, 0.2, 0.8];
        let (d, unknown) = decode_deploy(&labels, &boxes, &scores, &c).expect("decode");
        assert_eq!(unknown, 1);
        assert_eq!(d.len(), 2, "{d:?}");
        assert_eq!((d[0].label, d[0].score), ("person", 0.9));
        assert_box(&d[0].bbox, [20.0, 10.0, 60.0, 90.0]);
        assert_eq!(d[1].label, "car");
        assert_box(&d[1].bbox, [100.0, 40.0, 180.0, 80.0]);
        assert!(decode_deploy(&labels[..2], &boxes, &scores, &c).is_err());
    }

    #[test]
    fn raw_logits_are_sigmoided_and_boxes_denormalised() {
        let names = ClassNames::parse("person\ncar\n").expect("labels");
        // 96x64 input, a 192x128 frame: scale 0.5 on both axes
        let c = ctx(&names, Letterbox::stretch(192, 128, 96, 64), 192, 128);
        let logit = |p: f32| (p / (1.0 - p)).ln();
        let logits = [logit(0.8), logit(0.1), logit(0.3), logit(0.35)];
        let boxes = [0.5, 0.5, 0.25, 0.5, 0.1, 0.1, 0.1, 0.1];
        let d = decode_raw(&logits, &boxes, &c).expect("decode");
        assert_eq!(d.len(), 1, "{d:?}");
        assert!((d[0].score - 0.8).abs() < 1e-5);
        // centre (48, 32), size 24 x 32 in input pixels → (36, 16)-(60, 48) → x2 in the frame
        assert_box(&d[0].bbox, [72.0, 32.0, 120.0, 96.0]);
        assert!(decode_raw(&logits[..3], &boxes, &c).is_err());
    }
}
