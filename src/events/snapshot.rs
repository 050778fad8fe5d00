//! Snapshots: the evidence frame of an alert as a JPEG with the relevant boxes drawn, written to the media
//! directory and published retained on `<prefix>/<camera>/<label>/snapshot`; and the retention plan that keeps the
//! media directory under its age and size limits. Rendering and planning are plain functions; the events stage
//! runs them on a blocking thread.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

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

/// `<dir>/<camera>/<YYYYmmdd-HHMMSS>-<label>-<id8>.jpg` (label made file-name safe).
pub fn snapshot_path(
    dir: &Path,
    camera: &str,
    label: &str,
    id: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> PathBuf {
    media_path(dir, camera, label, id, at, "jpg")
}

/// `<dir>/<camera>/<YYYYmmdd-HHMMSS>-<label>-<id8>.<ext>` (label made file-name safe).
pub fn media_path(
    dir: &Path,
    camera: &str,
    label: &str,
    id: &str,
    at: chrono::DateTime<chrono::Utc>,
    ext: &str,
) -> PathBuf {
    let safe: String = label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    let short: String = id.chars().take(8).collect();
    dir.join(camera).join(format!(
        "{}-{safe}-{short}.{ext}",
        at.format("%Y%m%d-%H%M%S")
    ))
}

/// Files to delete so that what is left is younger than `max_age` and totals at most `max_bytes`, oldest first.
pub fn plan_retention(
    files: &[(PathBuf, SystemTime, u64)],
    now: SystemTime,
    max_age: Duration,
    max_bytes: u64,
) -> Vec<PathBuf> {
    let mut by_age: Vec<&(PathBuf, SystemTime, u64)> = files.iter().collect();
    by_age.sort_by_key(|f| f.1);
    let mut total: u64 = files.iter().map(|f| f.2).sum();
    let mut out = Vec::new();
    for (path, mtime, size) in by_age {
        let too_old = now.duration_since(*mtime).unwrap_or_default() > max_age;
        if too_old || total > max_bytes {
            out.push(path.clone());
            total -= size;
        }
    }
    out
}

/// Applies the retention plan to the media directory; returns (files deleted, bytes freed).
pub fn sweep(dir: &Path, max_age: Duration, max_bytes: u64) -> std::io::Result<(usize, u64)> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = match std::fs::read_dir(&d) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for e in entries.flatten() {
            let Ok(meta) = e.metadata() else { continue };
            if meta.is_dir() {
                stack.push(e.path());
            } else if meta.is_file() {
                files.push((e.path(), meta.modified()?, meta.len()));
            }
        }
    }
    let plan = plan_retention(&files, SystemTime::now(), max_age, max_bytes);
    let mut freed = 0;
    let mut n = 0;
    for p in plan {
        let size = files.iter().find(|f| f.0 == p).map(|f| f.2).unwrap_or(0);
        if std::fs::remove_file(&p).is_ok() {
            n += 1;
            freed += size;
        }
    }
    Ok((n, freed))
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
    fn retention_drops_old_then_oldest_over_the_cap() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(100 * 86400);
        let day = Duration::from_secs(86400);
        let f = |n: &str, age_days: u64, size: u64| {
            (PathBuf::from(n), now - day * age_days as u32, size)
        };
        let files = vec![
            f("a", 10, 100),
            f("b", 3, 100),
            f("c", 2, 100),
            f("d", 1, 100),
        ];
        // a is older than 7 days; then 300 bytes left, cap 250 → b goes too
        assert_eq!(
            plan_retention(&files, now, day * 7, 250),
            vec![PathBuf::from("a"), PathBuf::from("b")]
        );
        assert!(plan_retention(&files, now, day * 30, 1000).is_empty());
    }

    #[test]
    fn paths_are_safe_and_sortable() {
        let at = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default();
        let p = snapshot_path(Path::new("/m"), "gate", "a dog/cat", "0123456789", at);
        assert_eq!(
            p,
            PathBuf::from("/m/gate/20231114-221320-a_dog_cat-01234567.jpg")
        );
    }
}
