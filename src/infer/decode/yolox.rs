//! YOLOX exports (`tools/export_onnx.py`): one output [1, N, 5+C] per anchor point of the stride 8/16/32 grids
//! (N = Σ (W/s)·(H/s), level by level, each row-major), holding x, y, w, h, objectness and C class scores, the
//! last two already sigmoid. Without `--decode_in_inference` (the default export) the box is raw: centre =
//! (out + grid cell) × s, size = exp(out) × s; with it, the box is already centre-size in model-input pixels.
//! Score = objectness × best class, one candidate per anchor (YOLOX's own postprocess).

use super::{best, nms, shape_text, DecodeCtx, Detection};

pub const STRIDES: [u32; 3] = [8, 16, 32];

/// Anchor points of a `w`×`h` input: the rows N of the output.
pub fn anchor_count(w: u32, h: u32) -> usize {
    STRIDES.iter().map(|s| ((w / s) * (h / s)) as usize).sum()
}

/// Checks an output shape against `classes` labels and (when known) the input size; the error names the
/// expected and the found shapes.
pub fn check_shape(shape: &[i64], classes: usize, input: Option<(u32, u32)>) -> Result<(), String> {
    let rows = input.map_or(-1, |(w, h)| anchor_count(w, h) as i64);
    let want = [1, rows, 5 + classes as i64];
    let ok = shape.len() == 3
        && shape
            .iter()
            .zip(want)
            .all(|(have, want)| *have < 0 || want < 0 || *have == want);
    if ok {
        Ok(())
    } else {
        let rows_text = if rows < 0 {
            "N".into()
        } else {
            rows.to_string()
        };
        Err(format!(
            "with {classes} labels{}, expected [1, {rows_text}, {}], found {}",
            input.map_or(String::new(), |(w, h)| format!(" and a {w}×{h} input")),
            5 + classes,
            shape_text(shape)
        ))
    }
}

/// Decodes one YOLOX output of `shape` (its real shape, from the run) for the input `ctx.lb` describes.
pub fn decode(
    out: &[f32],
    shape: &[i64],
    decoded: bool,
    ctx: &DecodeCtx<'_>,
) -> Result<Vec<Detection>, String> {
    let c = ctx.classes.len();
    let (in_w, in_h) = (ctx.lb.in_w, ctx.lb.in_h);
    check_shape(shape, c, (!decoded).then_some((in_w, in_h)))?;
    let width = 5 + c;
    let n = shape[1] as usize;
    if out.len() != n * width {
        return Err(format!(
            "output holds {} values, its shape {} says {}",
            out.len(),
            shape_text(shape),
            n * width
        ));
    }
    let mut cands = Vec::new();
    let mut row = 0usize;
    // decoded exports have no grid to walk: one pass over the rows
    let levels: Vec<(u32, u32, u32)> = if decoded {
        vec![(1, n as u32, 1)]
    } else {
        STRIDES.iter().map(|s| (*s, in_w / s, in_h / s)).collect()
    };
    for (stride, grid_w, grid_h) in levels {
        let s = stride as f32;
        for gy in 0..grid_h {
            for gx in 0..grid_w {
                let r = &out[row * width..(row + 1) * width];
                row += 1;
                let obj = r[4];
                if obj < ctx.params.threshold {
                    continue;
                }
                let Some((class, cls)) = best(&r[5..]) else {
                    continue;
                };
                let score = obj * cls;
                if score < ctx.params.threshold {
                    continue;
                }
                let (cx, cy, w, h) = if decoded {
                    (r[0], r[1], r[2], r[3])
                } else {
                    (
                        (r[0] + gx as f32) * s,
                        (r[1] + gy as f32) * s,
                        r[2].exp() * s,
                        r[3].exp() * s,
                    )
                };
                if let Some(bbox) = ctx.cxcywh_to_frame(cx, cy, w, h) {
                    cands.extend(ctx.detection(class, score, bbox));
                }
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
    fn anchors_of_the_three_grids() {
        assert_eq!(anchor_count(640, 640), 8400);
        assert_eq!(anchor_count(416, 416), 3549);
        assert_eq!(anchor_count(64, 64), 84);
        assert!(check_shape(&[1, 8400, 85], 80, Some((640, 640))).is_ok());
        assert!(check_shape(&[1, -1, 85], 80, Some((640, 640))).is_ok());
        let e = check_shape(&[1, 8400, 85], 80, Some((416, 416))).expect_err("size");
        assert!(
            e.contains("[1, 3549, 85]") && e.contains("[1, 8400, 85]"),
            "{e}"
        );
        let e = check_shape(&[1, 8400, 85], 3, None).expect_err("labels");
        assert!(e.contains("[1, N, 8]"), "{e}");
    }

    #[test]
    fn raw_offsets_are_decoded_on_their_grid() {
        // 64x64 input, 2 labels: 84 rows of 7; a person at stride-16 cell (x=1, y=2), a car at stride-8 (5, 3)
        let names = ClassNames::parse("person\ncar\n").expect("labels");
        let mut out = vec![0.0f32; 84 * 7];
        let car = 3 * 8 + 5; // stride 8: row-major over an 8x8 grid
        out[car * 7..car * 7 + 7].copy_from_slice(&[0.5, 0.25, 0.0, 0.0, 0.9, 0.1, 0.8]);
        let person = 64 + 2 * 4 + 1; // stride 16 after the 64 stride-8 rows
        out[person * 7..person * 7 + 7].copy_from_slice(&[
            0.5,
            0.5,
            1f32.ln(),
            2f32.ln(),
            1.0,
            0.95,
            0.0,
        ]);
        // a low-objectness row
        out[7 * 7 + 4] = 0.3;
        out[7 * 7 + 5] = 1.0;
        // 128x96 frame, top-left: scale 0.5, no offset
        let c = ctx(&names, Letterbox::fit(128, 96, 64).top_left(), 128, 96);
        let d = decode(&out, &[1, 84, 7], false, &c).expect("decode");
        assert_eq!(d.len(), 2, "{d:?}");
        // person: centre ((0.5+1)·16, (0.5+2)·16) = (24, 40), size 16 x 32 → input (16, 24)-(32, 56), whose
        // bottom reaches into the padding: clamped to the frame's 96 rows
        assert_eq!(d[0].label, "person");
        assert_box(&d[0].bbox, [32.0, 48.0, 64.0, 96.0]);
        // car: centre ((0.5+5)·8, (0.25+3)·8) = (44, 26), size 8 x 8 → input (40, 22)-(48, 30)
        assert_eq!(d[1].label, "car");
        assert!((d[1].score - 0.72).abs() < 1e-5);
        assert_box(&d[1].bbox, [80.0, 44.0, 96.0, 60.0]);
        // the same rows already decoded (--decode_in_inference)
        let mut dec = vec![0.0f32; 2 * 7];
        dec[..7].copy_from_slice(&[24.0, 40.0, 16.0, 32.0, 1.0, 0.95, 0.0]);
        dec[7..].copy_from_slice(&[44.0, 26.0, 8.0, 8.0, 0.9, 0.1, 0.8]);
        let d2 = decode(&dec, &[1, 2, 7], true, &c).expect("decoded");
        assert_eq!(d2, d);
        // the wrong row count for the input is an error naming both shapes
        assert!(decode(&out[..70], &[1, 10, 7], false, &c).is_err());
    }
}
