//! Image geometry shared by the models: resizing packed RGB8 (SIMD, `fast_image_resize`), letterboxing and
//! centre cropping. Pure functions over byte buffers.

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};

use super::card::{Channels, PixelSpec};
use super::runtime::InferError;

/// Resampling filter for [`resize_rgb`].
#[derive(Debug, Clone, Copy)]
pub enum Filter {
    /// OpenCV-style bilinear (NanoDet / MoveNet references use `cv2.resize` INTER_LINEAR).
    Bilinear,
    /// Bicubic (EfficientNet's reference preprocessing).
    Bicubic,
}

/// Resizes packed RGB8 `src` (`sw`×`sh`) to `dw`×`dh`, optionally from a crop `(left, top, width, height)`.
pub fn resize_rgb(
    src: &[u8],
    sw: u32,
    sh: u32,
    dw: u32,
    dh: u32,
    crop: Option<(f64, f64, f64, f64)>,
    filter: Filter,
) -> Result<Vec<u8>, InferError> {
    let data_err = |message: String| InferError::Data {
        what: "resize",
        message,
    };
    let src_img = ImageRef::new(sw, sh, src, PixelType::U8x3)
        .map_err(|e| data_err(format!("{e} ({sw}x{sh})")))?;
    let mut dst = Image::new(dw.max(1), dh.max(1), PixelType::U8x3);
    let alg = match filter {
        Filter::Bilinear => ResizeAlg::Interpolation(FilterType::Bilinear),
        Filter::Bicubic => ResizeAlg::Convolution(FilterType::CatmullRom),
    };
    let mut opts = ResizeOptions::new().resize_alg(alg);
    if let Some((l, t, w, h)) = crop {
        opts = opts.crop(l, t, w, h);
    }
    Resizer::new()
        .resize(&src_img, &mut dst, &opts)
        .map_err(|e| data_err(e.to_string()))?;
    Ok(dst.into_vec())
}

/// Where a frame lands inside a model input of `in_w`×`in_h`: scaled by `scale` (`scale_y` vertically; the two
/// differ only for a plain resize), offset by the padding.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Letterbox {
    pub in_w: u32,
    pub in_h: u32,
    pub scale: f32,
    pub scale_y: f32,
    pub pad_x: u32,
    pub pad_y: u32,
    pub new_w: u32,
    pub new_h: u32,
}

impl Letterbox {
    /// Centred letterbox of a `w`×`h` frame into `size`×`size`, scale = min(size/w, size/h).
    pub fn fit(w: u32, h: u32, size: u32) -> Self {
        Self::fit_box(w, h, size, size)
    }

    /// Centred letterbox of a `w`×`h` frame into `box_w`×`box_h`.
    pub fn fit_box(w: u32, h: u32, box_w: u32, box_h: u32) -> Self {
        Self::fit_within(w, h, (box_w, box_h), (|_| box_w, |_| box_h))
    }

    /// The same scale as [`Letterbox::fit_box`], but the input is only as large as the scaled frame rounded up to
    /// a multiple of `multiple` on each side (YOLOv5's "rectangular" inference): a 4:3 frame in a 416 model is
    /// 416×320, not 416×416, so the padding rows are not computed. Needs a model with dynamic height and width.
    pub fn fit_rect(w: u32, h: u32, box_w: u32, box_h: u32, multiple: u32) -> Self {
        let m = multiple.max(1);
        let up = move |n: u32| n.div_ceil(m) * m;
        Self::fit_within(w, h, (box_w, box_h), (up, up))
    }

    /// A plain resize of a `w`×`h` frame to `in_w`×`in_h` (no padding, aspect not kept).
    pub fn stretch(w: u32, h: u32, in_w: u32, in_h: u32) -> Self {
        let (in_w, in_h) = (in_w.max(1), in_h.max(1));
        Self {
            in_w,
            in_h,
            scale: in_w as f32 / w.max(1) as f32,
            scale_y: in_h as f32 / h.max(1) as f32,
            pad_x: 0,
            pad_y: 0,
            new_w: in_w,
            new_h: in_h,
        }
    }

    /// The same placement with the frame in the top-left corner (padding right and bottom only, as YOLOX pads).
    pub fn top_left(self) -> Self {
        Self {
            pad_x: 0,
            pad_y: 0,
            ..self
        }
    }

    fn fit_within(
        w: u32,
        h: u32,
        (box_w, box_h): (u32, u32),
        (side_w, side_h): (impl Fn(u32) -> u32, impl Fn(u32) -> u32),
    ) -> Self {
        let scale = (box_w as f32 / w.max(1) as f32).min(box_h as f32 / h.max(1) as f32);
        let new_w = ((w as f32 * scale).round() as u32).clamp(1, box_w.max(1));
        let new_h = ((h as f32 * scale).round() as u32).clamp(1, box_h.max(1));
        let (in_w, in_h) = (side_w(new_w).max(new_w), side_h(new_h).max(new_h));
        Self {
            in_w,
            in_h,
            scale,
            scale_y: scale,
            pad_x: (in_w - new_w) / 2,
            pad_y: (in_h - new_h) / 2,
            new_w,
            new_h,
        }
    }

    /// Maps a point in model-input pixels back to source-frame pixels.
    pub fn to_source(&self, x: f32, y: f32) -> (f32, f32) {
        (
            (x - self.pad_x as f32) / self.scale,
            (y - self.pad_y as f32) / self.scale_y,
        )
    }
}

/// Fills `out` (3×in_h×in_w, NCHW, f32) with a packed RGB8 frame placed as `lb` says, its planes in `spec`'s
/// channel order, each value (x − mean) / std, the padding `spec.pad` before normalisation.
pub fn fill_input(
    rgb: &[u8],
    w: u32,
    h: u32,
    lb: &Letterbox,
    spec: &PixelSpec,
    out: &mut Vec<f32>,
) -> Result<(), InferError> {
    let resized = resize_rgb(rgb, w, h, lb.new_w, lb.new_h, None, Filter::Bilinear)?;
    let plane = (lb.in_w * lb.in_h) as usize;
    out.clear();
    out.resize(3 * plane, 0.0);
    // (x − mean) / std as a table per plane: a lookup instead of a division per value
    let lut: [[f32; 256]; 3] =
        std::array::from_fn(|c| std::array::from_fn(|v| (v as f32 - spec.mean[c]) / spec.std[c]));
    // which byte of a packed RGB pixel each plane takes
    let src: [usize; 3] = match spec.channels {
        Channels::Rgb => [0, 1, 2],
        Channels::Bgr => [2, 1, 0],
    };
    let (p0, rest) = out.split_at_mut(plane);
    let (p1, p2) = rest.split_at_mut(plane);
    p0.fill(lut[0][spec.pad as usize]);
    p1.fill(lut[1][spec.pad as usize]);
    p2.fill(lut[2][spec.pad as usize]);
    let (in_w, new_w) = (lb.in_w as usize, lb.new_w as usize);
    for (y, row) in resized
        .chunks_exact(new_w * 3)
        .take(lb.new_h as usize)
        .enumerate()
    {
        let base = (y + lb.pad_y as usize) * in_w + lb.pad_x as usize;
        let dst = base..base + new_w;
        for (((a, b), c), px) in p0[dst.clone()]
            .iter_mut()
            .zip(&mut p1[dst.clone()])
            .zip(&mut p2[dst])
            .zip(row.chunks_exact(3))
        {
            *a = lut[0][px[src[0]] as usize];
            *b = lut[1][px[src[1]] as usize];
            *c = lut[2][px[src[2]] as usize];
        }
    }
    Ok(())
}

/// The crop rectangle `(left, top, side, side)` of "resize shorter side to `resize`, centre-crop `crop`",
/// expressed in source pixels, so one resize call does both.
pub fn centre_crop_box(w: u32, h: u32, resize: u32, crop: u32) -> (f64, f64, f64, f64) {
    let short = w.min(h).max(1) as f64;
    let side = short * crop as f64 / resize as f64;
    ((w as f64 - side) / 2.0, (h as f64 - side) / 2.0, side, side)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letterbox_of_vtest_frame() {
        let lb = Letterbox::fit(768, 576, 416);
        assert_eq!((lb.new_w, lb.new_h), (416, 312));
        assert_eq!((lb.pad_x, lb.pad_y), (0, 52));
        let (x, y) = lb.to_source(208.0, 52.0 + 156.0);
        assert!((x - 384.0).abs() < 0.5 && (y - 288.0).abs() < 0.5);
    }

    #[test]
    fn rectangular_letterbox_pads_only_to_the_next_multiple() {
        // 4:3 → 416×312 content in a 416×320 input, 4 rows of padding above and below
        let lb = Letterbox::fit_rect(768, 576, 416, 416, 32);
        assert_eq!((lb.in_w, lb.in_h), (416, 320));
        assert_eq!((lb.new_w, lb.new_h, lb.pad_x, lb.pad_y), (416, 312, 0, 4));
        let (x, y) = lb.to_source(208.0, 4.0 + 156.0);
        assert!((x - 384.0).abs() < 0.5 && (y - 288.0).abs() < 0.5);
        // 16:9 (1080p) → 416×234 in 416×256; portrait 9:16 → 256×416
        let lb = Letterbox::fit_rect(1920, 1080, 416, 416, 32);
        assert_eq!((lb.in_w, lb.in_h, lb.pad_y), (416, 256, 11));
        let lb = Letterbox::fit_rect(1080, 1920, 416, 416, 32);
        assert_eq!((lb.in_w, lb.in_h, lb.pad_x), (256, 416, 11));
        // already a multiple: no padding; the square fit is the same as before
        let lb = Letterbox::fit_rect(416, 416, 416, 416, 32);
        assert_eq!((lb.in_w, lb.in_h, lb.pad_x, lb.pad_y), (416, 416, 0, 0));
        assert_eq!(Letterbox::fit(768, 576, 416).in_h, 416);
    }

    #[test]
    fn stretch_and_top_left_map_back() {
        // 200x100 stretched to 64x64: x scale 0.32, y scale 0.64
        let lb = Letterbox::stretch(200, 100, 64, 64);
        let (x, y) = lb.to_source(32.0, 32.0);
        assert!(
            (x - 100.0).abs() < 1e-3 && (y - 50.0).abs() < 1e-3,
            "{x} {y}"
        );
        // 128x96 into 64x64 top-left: scale 0.5, content 64x48 at the top, no offset
        let lb = Letterbox::fit(128, 96, 64).top_left();
        assert_eq!((lb.new_w, lb.new_h, lb.pad_x, lb.pad_y), (64, 48, 0, 0));
        assert_eq!(lb.to_source(10.0, 10.0), (20.0, 20.0));
        // a non-square box: 1280x720 into 640x384 → scale 0.5, 640x360, 12 rows above and below
        let lb = Letterbox::fit_box(1280, 720, 640, 384);
        assert_eq!((lb.new_w, lb.new_h, lb.pad_x, lb.pad_y), (640, 360, 0, 12));
    }

    #[test]
    fn fill_input_orders_planes_and_pads() {
        let spec = PixelSpec {
            fit: crate::infer::card::Fit::TopLeft,
            channels: Channels::Bgr,
            mean: [0.0; 3],
            std: [1.0; 3],
            pad: 114,
        };
        // a red 4x2 frame into 4x4, top-left: rows 0-1 red, rows 2-3 padding
        let rgb = [200u8, 10, 20].repeat(8);
        let lb = Letterbox::fit(4, 2, 4).top_left();
        let mut out = Vec::new();
        fill_input(&rgb, 4, 2, &lb, &spec, &mut out).expect("fill");
        assert_eq!(out.len(), 3 * 16);
        // plane 0 is B (20), plane 2 is R (200); the bottom rows are 114 on every plane
        assert_eq!(out[0], 20.0);
        assert_eq!(out[2 * 16], 200.0);
        assert_eq!(out[15], 114.0);
        assert_eq!(out[16 + 15], 114.0);
    }

    #[test]
    fn centre_crop_matches_resize_then_crop() {
        // 768x576 -> shorter side 256 -> 341x256 -> centre 224: that is a 504x504 square of the source
        let (l, t, w, h) = centre_crop_box(768, 576, 256, 224);
        assert!((w - 504.0).abs() < 1e-9 && (h - 504.0).abs() < 1e-9);
        assert!((l - 132.0).abs() < 1e-9 && (t - 36.0).abs() < 1e-9);
    }

    #[test]
    fn resize_keeps_a_flat_colour() {
        let src = [10u8, 200, 30].repeat(64 * 48);
        let out = resize_rgb(&src, 64, 48, 16, 12, None, Filter::Bilinear).expect("resize");
        assert_eq!(out.len(), 16 * 12 * 3);
        assert!(out.chunks(3).all(|p| p == [10, 200, 30]));
    }

    #[test]
    fn short_buffers_are_an_error_not_a_panic() {
        assert!(resize_rgb(&[0; 10], 64, 48, 16, 12, None, Filter::Bilinear).is_err());
    }
}
