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
    /// A small copy (`[media] thumbnail_height`), next to the file, and its URL on the media API.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thumbnail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thumbnail_url: Option<String>,
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

/// How the MQTT copy of a snapshot is made, like Frigate's snapshot options: the file in the media directory is
/// always the whole frame with its boxes; what goes to the broker can be smaller.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MqttShape {
    /// Output height in pixels (width keeps the aspect); 0 = as is. Never enlarges.
    pub height: u32,
    pub quality: u8,
    /// Crop to the alert's boxes (their union, with a margin of half its size on each side).
    pub crop: bool,
    /// Draw the boxes.
    pub boxes: bool,
    /// Draw the frame's wall-clock time (UTC) in the top left corner.
    pub timestamp: bool,
}

/// 5×7 glyphs (one byte per row, bit 4 = left column) for what a timestamp needs.
fn glyph(c: char) -> [u8; 7] {
    match c {
        '0' => [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
        '1' => [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        '2' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
        '3' => [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        '4' => [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
        '5' => [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        '6' => [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
        '7' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
        '9' => [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        '-' => [0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00],
        ':' => [0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00],
        'U' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'T' => [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        'C' => [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E],
        _ => [0; 7],
    }
}

/// Writes `text` in white on a black band at the top left, glyphs scaled so the text is about 1/30 of the height.
pub fn draw_text(img: &mut image::RgbImage, text: &str) {
    let (w, h) = img.dimensions();
    let scale = (h / 210).max(1);
    let (cw, ch) = (6 * scale, 9 * scale);
    let band_w = (cw * text.chars().count() as u32 + 2 * scale).min(w);
    for y in 0..ch.min(h) {
        for x in 0..band_w {
            img.put_pixel(x, y, image::Rgb([0, 0, 0]));
        }
    }
    for (i, c) in text.chars().enumerate() {
        let rows = glyph(c);
        let x0 = scale + i as u32 * cw;
        for (r, bits) in rows.iter().enumerate() {
            for col in 0..5u32 {
                if bits & (0x10 >> col) == 0 {
                    continue;
                }
                for dy in 0..scale {
                    for dx in 0..scale {
                        let (x, y) = (x0 + col * scale + dx, scale + r as u32 * scale + dy);
                        if x < w && y < h {
                            img.put_pixel(x, y, image::Rgb([255, 255, 255]));
                        }
                    }
                }
            }
        }
    }
}

/// The three JPEGs of one snapshot: the file (whole frame, boxes), the MQTT copy (`shape`), and a thumbnail
/// (`thumb_height` px high, boxes; None when 0).
pub struct Encoded {
    pub file: Vec<u8>,
    pub mqtt: Vec<u8>,
    pub thumb: Option<Vec<u8>>,
}

fn jpeg(img: &image::RgbImage, quality: u8) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality.clamp(1, 100));
    img.write_with_encoder(enc).map_err(|e| e.to_string())?;
    Ok(out)
}

fn to_height(img: &image::RgbImage, height: u32) -> image::RgbImage {
    let (w, h) = img.dimensions();
    if height == 0 || height >= h || w == 0 {
        return img.clone();
    }
    let nw = ((w as f64 * height as f64 / h as f64).round() as u32).max(1);
    image::imageops::resize(img, nw, height, image::imageops::FilterType::Triangle)
}

/// The region to crop for `boxes`: their union, grown by half its size on each side, clipped to the frame.
pub fn crop_region(boxes: &[BBox], width: u32, height: u32) -> Option<(u32, u32, u32, u32)> {
    let first = boxes.first()?;
    let (mut x1, mut y1, mut x2, mut y2) = (first.x1, first.y1, first.x2, first.y2);
    for b in &boxes[1..] {
        (x1, y1, x2, y2) = (x1.min(b.x1), y1.min(b.y1), x2.max(b.x2), y2.max(b.y2));
    }
    let (mx, my) = ((x2 - x1).max(16.0) / 2.0, (y2 - y1).max(16.0) / 2.0);
    let l = (x1 - mx).max(0.0) as u32;
    let t = (y1 - my).max(0.0) as u32;
    let r = ((x2 + mx).max(0.0) as u32).min(width);
    let b = ((y2 + my).max(0.0) as u32).min(height);
    (r > l && b > t).then_some((l, t, r - l, b - t))
}

/// Encodes a snapshot's file, MQTT copy and thumbnail from one frame.
#[allow(clippy::too_many_arguments)]
pub fn encode_all(
    rgb: &[u8],
    width: u32,
    height: u32,
    boxes: &[BBox],
    file_quality: u8,
    shape: &MqttShape,
    thumb_height: u32,
    wall: chrono::DateTime<chrono::Utc>,
) -> Result<Encoded, String> {
    let plain = image::RgbImage::from_raw(width, height, rgb.to_vec())
        .ok_or_else(|| format!("frame is not {width}x{height} RGB"))?;
    let mut boxed = plain.clone();
    for b in boxes {
        draw_box(&mut boxed, b);
    }
    let file = jpeg(&boxed, file_quality)?;
    let base = if shape.boxes { &boxed } else { &plain };
    let region = if shape.crop {
        crop_region(boxes, width, height)
    } else {
        None
    };
    let cropped = match region {
        Some((x, y, w, h)) => image::imageops::crop_imm(base, x, y, w, h).to_image(),
        None => base.clone(),
    };
    let mqtt = if shape
        == &(MqttShape {
            height: 0,
            quality: file_quality,
            crop: false,
            boxes: true,
            timestamp: false,
        }) {
        file.clone()
    } else {
        let mut out = to_height(&cropped, shape.height);
        if shape.timestamp {
            draw_text(&mut out, &wall.format("%Y-%m-%d %H:%M:%S UTC").to_string());
        }
        jpeg(&out, shape.quality)?
    };
    let thumb = if thumb_height > 0 {
        Some(jpeg(&to_height(&boxed, thumb_height), 70)?)
    } else {
        None
    };
    Ok(Encoded { file, mqtt, thumb })
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

    #[test]
    fn the_mqtt_copy_is_shaped_and_the_thumbnail_small() -> Result<(), String> {
        let (w, h) = (640u32, 480u32);
        let rgb = vec![90u8; (w * h * 3) as usize];
        let b = BBox {
            x1: 300.0,
            y1: 200.0,
            x2: 340.0,
            y2: 280.0,
        };
        let dims = |j: &[u8]| -> Result<(u32, u32), String> {
            Ok(image::load_from_memory(j)
                .map_err(|e| e.to_string())?
                .to_rgb8()
                .dimensions())
        };
        let same = MqttShape {
            height: 0,
            quality: 85,
            crop: false,
            boxes: true,
            timestamp: false,
        };
        let at = chrono::DateTime::UNIX_EPOCH;
        let e = encode_all(&rgb, w, h, &[b], 85, &same, 0, at)?;
        assert_eq!(e.mqtt, e.file, "the default MQTT copy is the file");
        assert!(e.thumb.is_none());
        let shaped = MqttShape {
            height: 120,
            quality: 60,
            crop: true,
            boxes: false,
            timestamp: false,
        };
        let e = encode_all(&rgb, w, h, &[b], 85, &shaped, 90, at)?;
        assert_eq!(dims(&e.file)?, (640, 480));
        // crop: 40x80 box grown by 20/40 px per side = 80x160, then 120 px high
        assert_eq!(crop_region(&[b], w, h), Some((280, 160, 80, 160)));
        assert_eq!(dims(&e.mqtt)?, (60, 120));
        assert_eq!(dims(&e.thumb.clone().ok_or("thumb")?)?, (120, 90));
        let no_red = image::load_from_memory(&e.mqtt)
            .map_err(|x| x.to_string())?
            .to_rgb8()
            .pixels()
            .all(|p| p[0] < 150);
        assert!(no_red, "boxes off");
        assert!(e.mqtt.len() < e.file.len());
        // the timestamp: white strokes on a black band at the top left, the rest of the frame untouched
        let stamped = MqttShape {
            timestamp: true,
            ..same
        };
        let e = encode_all(&rgb, w, h, &[], 95, &stamped, 0, at)?;
        let img = image::load_from_memory(&e.mqtt)
            .map_err(|x| x.to_string())?
            .to_rgb8();
        let band: Vec<u8> = (0..200).map(|x| img.get_pixel(x, 6)[0]).collect();
        assert!(
            band.iter().any(|v| *v > 200) && band.iter().any(|v| *v < 40),
            "text on a band"
        );
        assert!(
            (img.get_pixel(320, 300)[0] as i32 - 90).abs() < 10,
            "frame untouched"
        );
        Ok(())
    }
}
