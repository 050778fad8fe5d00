//! Ultralytics YOLO exports (`yolo export format=onnx`): one output with boxes already decoded to model-input
//! pixels (cx, cy, w, h). YOLOv8 / YOLO11: [1, 4+C, N], C class scores after the box, no objectness; the same
//! transposed, [1, N, 4+C], from some converters; YOLOv5: [1, N, 5+C], objectness then C class scores (score =
//! objectness × class). Scores are probabilities already. One candidate per anchor, its best class, as
//! Ultralytics' NMS does by default (`multi_label=False`).

use super::{best, nms, shape_text, DecodeCtx, Detection};
use crate::infer::card::YoloLayout;

const ALL: [YoloLayout; 3] = [YoloLayout::V8, YoloLayout::V8Transposed, YoloLayout::V5];

fn expected(layout: YoloLayout, classes: usize) -> String {
    match layout {
        YoloLayout::V8 => format!("[1, {}, N] (YOLOv8/YOLO11)", 4 + classes),
        YoloLayout::V8Transposed => format!("[1, N, {}] (YOLOv8/YOLO11 transposed)", 4 + classes),
        YoloLayout::V5 => format!("[1, N, {}] (YOLOv5)", 5 + classes),
    }
}

/// The output's layout for `classes` labels, from its shape; `want` (the card's `layout`) must fit it. Ok(None):
/// the shape has dynamic dimensions that leave it open (decided on the first real output). An error names the
/// expected and the found shapes.
pub fn layout(
    shape: &[i64],
    classes: usize,
    want: Option<YoloLayout>,
) -> Result<Option<YoloLayout>, String> {
    let found = shape_text(shape);
    let three = shape.len() == 3 && shape[0] <= 1 && shape[0] != 0;
    // Some(true): the class dimension is there; Some(false): it cannot be; None: dynamic, unknown
    let fits = |l: YoloLayout| -> Option<bool> {
        if !three {
            return Some(false);
        }
        let (dim, want) = match l {
            YoloLayout::V8 => (shape[1], 4 + classes),
            YoloLayout::V8Transposed => (shape[2], 4 + classes),
            YoloLayout::V5 => (shape[2], 5 + classes),
        };
        (dim >= 0).then_some(dim == want as i64)
    };
    if let Some(l) = want {
        return match fits(l) {
            Some(false) => Err(format!(
                "layout \"{}\" with {classes} labels: expected {}, found {found}",
                l.as_str(),
                expected(l, classes)
            )),
            _ => Ok(Some(l)),
        };
    }
    let sure: Vec<YoloLayout> = ALL.into_iter().filter(|l| fits(*l) == Some(true)).collect();
    let open = ALL.iter().any(|l| fits(*l).is_none());
    match sure.as_slice() {
        [one] => Ok(Some(*one)),
        [] if open => Ok(None),
        [] => Err(format!(
            "with {classes} labels, expected {}, found {found}",
            ALL.map(|l| expected(l, classes)).join(" or ")
        )),
        several => Err(format!(
            "shape {found} fits {}; set `layout` in the card (one of {})",
            several
                .iter()
                .map(|l| expected(*l, classes))
                .collect::<Vec<_>>()
                .join(" and "),
            YoloLayout::NAMES.join(", ")
        )),
    }
}

/// Decodes one YOLO output of `shape` (its real shape, from the run).
pub fn decode(
    out: &[f32],
    shape: &[i64],
    want: Option<YoloLayout>,
    ctx: &DecodeCtx<'_>,
) -> Result<Vec<Detection>, String> {
    let c = ctx.classes.len();
    let layout = layout(shape, c, want)?
        .ok_or_else(|| format!("output shape {} left undecided", shape_text(shape)))?;
    let rows = match layout {
        YoloLayout::V5 => 5 + c,
        _ => 4 + c,
    };
    let n = match layout {
        YoloLayout::V8 => shape[2],
        _ => shape[1],
    } as usize;
    if out.len() != n * rows {
        return Err(format!(
            "output holds {} values, its shape {} says {}",
            out.len(),
            shape_text(shape),
            n * rows
        ));
    }
    // (score, class) per anchor
    let mut top: Vec<(f32, usize)> = vec![(f32::NEG_INFINITY, 0); n];
    match layout {
        // class-major: walk each class row once (an anchor's scores are N apart)
        YoloLayout::V8 => {
            for class in 0..c {
                let row = &out[(4 + class) * n..(5 + class) * n];
                for (t, s) in top.iter_mut().zip(row) {
                    if *s > t.0 {
                        *t = (*s, class);
                    }
                }
            }
        }
        YoloLayout::V8Transposed | YoloLayout::V5 => {
            let first = rows - c;
            for (i, t) in top.iter_mut().enumerate() {
                let r = &out[i * rows..(i + 1) * rows];
                let obj = if layout == YoloLayout::V5 { r[4] } else { 1.0 };
                // objectness caps the score: most anchors stop here
                if obj < ctx.params.threshold {
                    continue;
                }
                if let Some((class, s)) = best(&r[first..]) {
                    *t = (obj * s, class);
                }
            }
        }
    }
    let coord = |i: usize, k: usize| match layout {
        YoloLayout::V8 => out[k * n + i],
        _ => out[i * rows + k],
    };
    let mut cands = Vec::new();
    for (i, (score, class)) in top.into_iter().enumerate() {
        if score < ctx.params.threshold {
            continue;
        }
        let Some(bbox) = ctx.cxcywh_to_frame(coord(i, 0), coord(i, 1), coord(i, 2), coord(i, 3))
        else {
            continue;
        };
        cands.extend(ctx.detection(class, score, bbox));
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
    fn the_layout_is_found_from_the_shape() {
        assert_eq!(layout(&[1, 84, 8400], 80, None), Ok(Some(YoloLayout::V8)));
        assert_eq!(
            layout(&[1, 8400, 84], 80, None),
            Ok(Some(YoloLayout::V8Transposed))
        );
        assert_eq!(layout(&[1, 25200, 85], 80, None), Ok(Some(YoloLayout::V5)));
        assert_eq!(layout(&[-1, 84, -1], 80, None), Ok(Some(YoloLayout::V8)));
        // fully dynamic: decided on the first output
        assert_eq!(layout(&[1, -1, -1], 80, None), Ok(None));
        // a card's layout must fit
        assert_eq!(
            layout(&[1, 84, 84], 80, Some(YoloLayout::V8)),
            Ok(Some(YoloLayout::V8))
        );
        let e = layout(&[1, 84, 8400], 80, Some(YoloLayout::V5)).expect_err("v5");
        assert!(
            e.contains("[1, N, 85]") && e.contains("[1, 84, 8400]"),
            "{e}"
        );
        // ambiguous without the card's layout
        let e = layout(&[1, 84, 84], 80, None).expect_err("ambiguous");
        assert!(e.contains("layout"), "{e}");
        // labels that do not match the model: expected and found shapes
        let e = layout(&[1, 84, 8400], 3, None).expect_err("3 labels");
        assert!(
            e.contains("[1, 7, N]") && e.contains("[1, N, 8]") && e.contains("[1, 84, 8400]"),
            "{e}"
        );
        assert!(layout(&[84, 8400], 80, None).is_err());
    }

    /// Two anchors (a person and a car) plus a below-threshold one, 3 labels, 64x64 input.
    fn anchors() -> Vec<[f32; 7]> {
        // cx, cy, w, h, person, car, dog
        vec![
            [20.0, 30.0, 16.0, 24.0, 0.9, 0.1, 0.0],
            [48.0, 40.0, 20.0, 10.0, 0.05, 0.7, 0.2],
            [10.0, 10.0, 8.0, 8.0, 0.3, 0.0, 0.1],
        ]
    }

    fn check(dets: &[Detection]) {
        assert_eq!(dets.len(), 2, "{dets:?}");
        // 128x96 frame in 64x64: scale 0.5, content 64x48, 8 rows of padding above
        assert_eq!((dets[0].label, dets[0].score), ("person", 0.9));
        assert_box(&dets[0].bbox, [24.0, 20.0, 56.0, 68.0]);
        assert_eq!(dets[1].label, "car");
        assert!((dets[1].score - 0.7).abs() < 1e-6);
        assert_box(&dets[1].bbox, [76.0, 54.0, 116.0, 74.0]);
    }

    #[test]
    fn v8_v8_transposed_and_v5_decode_the_same_boxes() {
        let names = ClassNames::parse("person\ncar\ndog\n").expect("labels");
        let c = ctx(&names, Letterbox::fit(128, 96, 64), 128, 96);
        let a = anchors();
        // v8: [1, 7, 3], row-major by value kind
        let v8: Vec<f32> = (0..7).flat_map(|k| a.iter().map(move |r| r[k])).collect();
        check(&decode(&v8, &[1, 7, 3], None, &c).expect("v8"));
        let v8t: Vec<f32> = a.iter().flatten().copied().collect();
        check(&decode(&v8t, &[1, 3, 7], None, &c).expect("v8t"));
        // v5: objectness 1.0 for the two, and 0.9 x 0.3 for the third (still below 0.4)
        let v5: Vec<f32> = a
            .iter()
            .enumerate()
            .flat_map(|(i, r)| {
                let obj = if i < 2 { 1.0 } else { 0.9 };
                [r[0], r[1], r[2], r[3], obj, r[4], r[5], r[6]]
            })
            .collect();
        check(&decode(&v5, &[1, 3, 8], None, &c).expect("v5"));
    }

    #[test]
    fn v5_scores_are_objectness_times_class() {
        let names = ClassNames::parse("person\ncar\n").expect("labels");
        let c = ctx(&names, Letterbox::fit(64, 64, 64), 64, 64);
        let out = [32.0, 32.0, 10.0, 10.0, 0.5, 0.9, 0.1];
        let d = decode(&out, &[1, 1, 7], None, &c).expect("v5");
        assert!((d[0].score - 0.45).abs() < 1e-6, "{d:?}");
        // a short buffer is an error, not a panic
        assert!(decode(&out[..5], &[1, 1, 7], None, &c).is_err());
    }
}
