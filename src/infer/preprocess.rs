//! Image geometry shared by the models: resizing packed RGB8 (SIMD, `fast_image_resize`), letterboxing and
//! centre cropping. Pure functions over byte buffers.

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};

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

/// Where a frame lands inside a letterboxed model input of `in_w`×`in_h`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Letterbox {
    pub in_w: u32,
    pub in_h: u32,
    pub scale: f32,
    pub pad_x: u32,
    pub pad_y: u32,
    pub new_w: u32,
    pub new_h: u32,
}

impl Letterbox {
    /// Centred letterbox of a `w`×`h` frame into `size`×`size`, scale = min(size/w, size/h).
    pub fn fit(w: u32, h: u32, size: u32) -> Self {
        Self::fit_within(w, h, size, |_| size)
    }

    /// The same scale, but the input is only as large as the scaled frame rounded up to a multiple of `multiple`
    /// on each side (YOLOv5's "rectangular" inference): a 4:3 frame in a 416 model is 416×320, not 416×416, so
    /// the padding rows are not computed. Needs a model with dynamic height and width.
    pub fn fit_rect(w: u32, h: u32, long: u32, multiple: u32) -> Self {
        let m = multiple.max(1);
        Self::fit_within(w, h, long, |n| n.div_ceil(m) * m)
    }

    fn fit_within(w: u32, h: u32, size: u32, input_side: impl Fn(u32) -> u32) -> Self {
        let scale = (size as f32 / w.max(1) as f32).min(size as f32 / h.max(1) as f32);
        let new_w = ((w as f32 * scale).round() as u32).clamp(1, size);
        let new_h = ((h as f32 * scale).round() as u32).clamp(1, size);
        let (in_w, in_h) = (input_side(new_w).max(new_w), input_side(new_h).max(new_h));
        Self {
            in_w,
            in_h,
            scale,
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
            (y - self.pad_y as f32) / self.scale,
        )
    }
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
        let lb = Letterbox::fit_rect(768, 576, 416, 32);
        assert_eq!((lb.in_w, lb.in_h), (416, 320));
        assert_eq!((lb.new_w, lb.new_h, lb.pad_x, lb.pad_y), (416, 312, 0, 4));
        let (x, y) = lb.to_source(208.0, 4.0 + 156.0);
        assert!((x - 384.0).abs() < 0.5 && (y - 288.0).abs() < 0.5);
        // 16:9 (1080p) → 416×234 in 416×256; portrait 9:16 → 256×416
        let lb = Letterbox::fit_rect(1920, 1080, 416, 32);
        assert_eq!((lb.in_w, lb.in_h, lb.pad_y), (416, 256, 11));
        let lb = Letterbox::fit_rect(1080, 1920, 416, 32);
        assert_eq!((lb.in_w, lb.in_h, lb.pad_x), (256, 416, 11));
        // already a multiple: no padding; the square fit is the same as before
        let lb = Letterbox::fit_rect(416, 416, 416, 32);
        assert_eq!((lb.in_w, lb.in_h, lb.pad_x, lb.pad_y), (416, 416, 0, 0));
        assert_eq!(Letterbox::fit(768, 576, 416).in_h, 416);
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
