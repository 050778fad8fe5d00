//! Snapshots, the pure part: which frame of a clip is an alert's evidence and that frame as a JPEG with the
//! relevant boxes drawn. Writing the file and publishing it retained on `<prefix>/<camera>/<label>/snapshot` is
//! [`super::evidence`]'s, on a blocking thread.

use serde::Serialize;

use crate::infer::detector::BBox;
use crate::infer::labels::label_matches;
use crate::infer::FrameResult;

/// Where an alert's snapshot is (the `snapshot` field of alert messages).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SnapshotRef {
    /// The JPEG file on the daemon's host.
    pub path: String,
    /// The retained MQTT topic holding the same JPEG.
    pub topic: String,
    /// Stream time of the frame (seconds).
    pub stream_time: f64,
    /// Detection score of the best box in it (label alerts) or the frame's prompt score (prompt alerts).
    pub score: f32,
    /// Absolute URL of the JPEG on the media API (`[metrics] media = true`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// The frame of a clip that shows `label` best: (index, best score). None when no frame has it.
pub fn best_label_frame(frames: &[FrameResult], label: &str) -> Option<(usize, f32)> {
    frames
        .iter()
        .enumerate()
        .filter_map(|(i, f)| {
            f.detections
                .iter()
                .filter(|d| label_matches(label, d.label))
                .map(|d| d.score)
                .fold(None, |b: Option<f32>, s| Some(b.map_or(s, |b| b.max(s))))
                .map(|s| (i, s))
        })
        .max_by(|a, b| a.1.total_cmp(&b.1))
}

/// The frame closest to `stream_time` (prompt alerts name their best frame by time).
pub fn frame_at(frames: &[FrameResult], stream_time: f64) -> Option<usize> {
    frames
        .iter()
        .enumerate()
        .min_by(|a, b| {
            let da = (a.1.pts.as_secs_f64() - stream_time).abs();
            let db = (b.1.pts.as_secs_f64() - stream_time).abs();
            da.total_cmp(&db)
        })
        .map(|(i, _)| i)
}

/// Draws `boxes` (3 px, red) on a copy of the frame and encodes it as JPEG.
pub fn render_jpeg(
    rgb: &[u8],
    width: u32,
    height: u32,
    boxes: &[BBox],
    quality: u8,
) -> Result<Vec<u8>, String> {
    let mut img = image::RgbImage::from_raw(width, height, rgb.to_vec())
        .ok_or_else(|| format!("frame is not {width}x{height} RGB"))?;
    for b in boxes {
        draw_box(&mut img, b);
    }
    let mut out = Vec::new();
    let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality.clamp(1, 100));
    img.write_with_encoder(enc).map_err(|e| e.to_string())?;
    Ok(out)
}

/// A rectangle outline, clipped to the image.
pub fn draw_box(img: &mut image::RgbImage, b: &BBox) {
    let (w, h) = img.dimensions();
    if w == 0 || h == 0 {
        return;
    }
    let clamp = |v: f32, max: u32| (v.max(0.0) as u32).min(max - 1);
    let (x1, x2, y1, y2) = (
        clamp(b.x1, w),
        clamp(b.x2, w),
        clamp(b.y1, h),
        clamp(b.y2, h),
    );
    let colour = image::Rgb([255u8, 40, 40]);
    for t in 0..3u32 {
        for x in x1..=x2 {
            img.put_pixel(x, (y1 + t).min(h - 1), colour);
            img.put_pixel(x, y2.saturating_sub(t), colour);
        }
        for y in y1..=y2 {
            img.put_pixel((x1 + t).min(w - 1), y, colour);
            img.put_pixel(x2.saturating_sub(t), y, colour);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jpeg_has_the_frame_size_and_the_box() -> Result<(), String> {
        let (w, h) = (64u32, 48u32);
        let rgb = vec![0u8; (w * h * 3) as usize];
        let b = BBox {
            x1: 10.0,
            y1: 10.0,
            x2: 40.0,
            y2: 30.0,
        };
        let jpeg = render_jpeg(&rgb, w, h, &[b], 90)?;
        assert_eq!(&jpeg[..2], &[0xFF, 0xD8]);
        let img = image::load_from_memory(&jpeg)
            .map_err(|e| e.to_string())?
            .to_rgb8();
        assert_eq!(img.dimensions(), (w, h));
        let edge = img.get_pixel(25, 11);
        let inside = img.get_pixel(25, 20);
        assert!(edge[0] > 180 && edge[1] < 100, "red edge: {edge:?}");
        assert!(inside[0] < 60, "inside untouched: {inside:?}");
        assert!(render_jpeg(&rgb[..10], w, h, &[], 90).is_err());
        Ok(())
    }
}
