//! Evidence I/O for the events task: where media files go, snapshot JPEGs written to the media directory (and
//! published retained), alert recordings started and stopped, and the retention sweep that keeps the directory
//! under its limits. The rule engine never sees any of this; it only gets references back on its alerts.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::infer::{ClipResult, FrameResult};
use crate::publish::topics::Topics;
use crate::publish::OutMsg;
use crate::telemetry::Metrics;

use super::rules::{self, Alert};
use super::snapshot;

/// Each camera's alert recorder, shared by the camera starter (which replaces them on reload) and this stage.
pub type Recorders = Arc<std::sync::Mutex<HashMap<String, Arc<crate::ingest::recorder::Recorder>>>>;

/// What the events stage attaches to alerts as evidence.
pub struct Evidence {
    pub snapshots: Option<Snapshots>,
    /// Recorders and the media directory their files go to (None = recordings off).
    pub recordings: Option<(Recorders, PathBuf)>,
    /// Base of the media API's URLs (`[metrics] media = true`), for the `url` fields of snapshots and recordings.
    pub media_url: Option<String>,
}

/// Fills the `url` fields of `alert`'s evidence: where the media API serves its snapshot and recording.
pub fn set_urls(alert: &mut Alert, base: &str) {
    let at = |file: &str| format!("{base}/api/{}/alerts/{}/{file}", alert.camera, alert.id);
    let (snap, thumb) = (at("snapshot.jpg"), at("thumbnail.jpg"));
    if let Some(s) = alert.snapshot.as_mut() {
        s.url = Some(snap);
        if s.thumbnail.is_some() {
            s.thumbnail_url = Some(thumb);
        }
    }
    if let Some(r) = alert.recording.as_mut() {
        let ext = if r.path.ends_with(".mkv") {
            "mkv"
        } else {
            "mp4"
        };
        r.url = Some(at(&format!("clip.{ext}")));
    }
}

impl Evidence {
    /// The events task's snapshot and recording writers (None where that evidence is off).
    pub(super) fn writers(
        self,
        topics: &Topics,
        metrics: &Arc<Metrics>,
    ) -> (Option<Snapshotter>, Option<Recordings>) {
        let recordings = self.recordings.map(|(recorders, dir)| Recordings {
            recorders,
            dir,
            topics: topics.clone(),
            open: HashMap::new(),
        });
        let snaps = self.snapshots.map(|cfg| Snapshotter {
            cfg,
            topics: topics.clone(),
            best: HashMap::new(),
            latest: HashMap::new(),
            metrics: metrics.clone(),
        });
        (snaps, recordings)
    }
}

/// Starts, references and stops alert recordings.
pub(super) struct Recordings {
    recorders: Recorders,
    dir: PathBuf,
    topics: Topics,
    /// Open alert id → where its recording goes.
    open: HashMap<String, rules::RecordingRef>,
}

impl Recordings {
    pub(super) async fn on_alert(
        &mut self,
        alert: &Alert,
        clip: Option<&ClipResult>,
    ) -> Option<rules::RecordingRef> {
        let rec = self
            .recorders
            .lock()
            .ok()
            .and_then(|r| r.get(&alert.camera).cloned())?;
        match alert.kind_of_message {
            rules::AlertType::New => {
                let wall = clip
                    .and_then(|c| c.frames.first())
                    .map(|f| f.wall)
                    .unwrap_or_else(chrono::Utc::now);
                let path = media_path(
                    &self.dir,
                    &alert.camera,
                    &alert.label,
                    &alert.id,
                    wall,
                    rec.cfg.format.ext(),
                );
                let (id, from) = (
                    alert.id.clone(),
                    Duration::from_secs_f64(alert.stream_start.max(0.0)),
                );
                // builds a small GStreamer pipeline and writes the pre-roll: blocking work
                match tokio::task::spawn_blocking(move || rec.start(&id, path, from)).await {
                    Ok(Ok(path)) => {
                        let r = rules::RecordingRef {
                            path: path.display().to_string(),
                            topic: self.topics.recordings(&alert.camera),
                            url: None,
                        };
                        self.open.insert(alert.id.clone(), r.clone());
                        Some(r)
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(camera = %alert.camera, id = %alert.id, error = %e, "no recording for this alert");
                        None
                    }
                    Err(_) => None,
                }
            }
            rules::AlertType::Update => self.open.get(&alert.id).cloned(),
            rules::AlertType::End => {
                let r = self.open.remove(&alert.id)?;
                let at = alert.stream_end.unwrap_or(alert.stream_start).max(0.0);
                rec.stop(&alert.id, Duration::from_secs_f64(at));
                Some(r)
            }
        }
    }
}

/// Snapshot settings for the events stage (None = snapshots off).
#[derive(Debug, Clone)]
pub struct Snapshots {
    pub dir: PathBuf,
    pub quality: u8,
    /// The MQTT copy's shape (`[media] mqtt_snapshot_*`).
    pub mqtt: snapshot::MqttShape,
    /// Thumbnail height (0 = none).
    pub thumb_height: u32,
}

/// Takes alert snapshots: on `new`, and on `update` when the score beat the last snapshot's by 0.02.
pub(super) struct Snapshotter {
    cfg: Snapshots,
    topics: Topics,
    /// Per open alert id: the score of its current snapshot.
    best: HashMap<String, f32>,
    /// Per camera: the latest clip's last frame, for `{"snapshot": true}` commands.
    latest: HashMap<String, FrameResult>,
    metrics: Arc<Metrics>,
}

/// A rendered snapshot: (file, retained MQTT message, reference for the alert).
pub(super) type Rendered = (PathBuf, OutMsg, snapshot::SnapshotRef);

impl Snapshotter {
    /// Keeps the clip's last frame as its camera's latest, for a later manual snapshot.
    pub(super) fn remember(&mut self, clip: &ClipResult) {
        if let Some(last) = clip.frames.last() {
            self.latest.insert(clip.camera.to_string(), last.clone());
        }
    }

    /// A `{"snapshot": true}` command: the camera's latest frame with all its boxes, as a retained message; None
    /// when no frame was seen yet or it failed.
    pub(super) async fn manual(&self, camera: &str) -> Option<OutMsg> {
        let frame = self.latest.get(camera).cloned()?;
        let boxes = frame.detections.iter().map(|d| d.bbox).collect();
        let path = snapshot_path(&self.cfg.dir, camera, "latest", "manual", frame.wall);
        let topic = self.topics.snapshot(camera, "latest");
        let (_, msg, _) = self.render(frame, boxes, path, topic, 0.0).await?;
        Some(msg)
    }

    /// Renders and writes the snapshot for `alert` from `clip` on a blocking thread; None when not needed or it failed.
    pub(super) async fn for_alert(&mut self, alert: &Alert, clip: &ClipResult) -> Option<Rendered> {
        if alert.kind_of_message == rules::AlertType::End {
            self.best.remove(&alert.id);
            return None;
        }
        // one retained topic per rule: `…/person/snapshot`, `…/a_dog_on_the_lawn/snapshot`
        let (idx, score, label_topic) = if alert.kind == "prompt" {
            let best = alert.frames.as_ref()?.first()?;
            (
                snapshot::frame_at(&clip.frames, best.stream_time)?,
                best.score,
                crate::publish::topics::slug(&alert.rule),
            )
        } else {
            let (i, s) = snapshot::best_label_frame(&clip.frames, &alert.label)?;
            (i, s, alert.rule.clone())
        };
        let prev = self.best.get(&alert.id).copied();
        if prev.is_some_and(|p| score < p + 0.02) {
            return None;
        }
        let frame = clip.frames.get(idx)?.clone();
        let boxes: Vec<_> = frame
            .detections
            .iter()
            .filter(|d| {
                alert.kind == "prompt" || crate::infer::labels::label_matches(&alert.label, d.label)
            })
            .map(|d| d.bbox)
            .collect();
        let path = snapshot_path(
            &self.cfg.dir,
            &alert.camera,
            &alert.label,
            &alert.id,
            frame.wall,
        );
        let topic = self.topics.snapshot(&alert.camera, &label_topic);
        let r = self.render(frame, boxes, path, topic, score).await?;
        self.best.insert(alert.id.clone(), score);
        Some(r)
    }

    async fn render(
        &self,
        frame: FrameResult,
        boxes: Vec<crate::infer::detector::BBox>,
        path: PathBuf,
        topic: String,
        score: f32,
    ) -> Option<Rendered> {
        let (quality, shape, thumb_height) =
            (self.cfg.quality, self.cfg.mqtt, self.cfg.thumb_height);
        let stream_time = (frame.pts.as_secs_f64() * 1000.0).round() / 1000.0;
        let p = path.clone();
        let thumb_path = path.with_extension("thumb.jpg");
        let tp = thumb_path.clone();
        let job = tokio::task::spawn_blocking(move || -> Result<(Vec<u8>, bool), String> {
            let e = snapshot::encode_all(
                &frame.pixels.0,
                frame.width,
                frame.height,
                &boxes,
                quality,
                &shape,
                thumb_height,
                frame.wall,
            )?;
            if let Some(dir) = p.parent() {
                std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            }
            std::fs::write(&p, &e.file).map_err(|e| format!("{}: {e}", p.display()))?;
            let thumb = match &e.thumb {
                Some(t) => std::fs::write(&tp, t)
                    .map_err(|e| format!("{}: {e}", tp.display()))
                    .map(|_| true)?,
                None => false,
            };
            Ok((e.mqtt, thumb))
        });
        match job.await {
            Ok(Ok((jpeg, thumb))) => {
                self.metrics.snapshots_written.inc();
                let r = snapshot::SnapshotRef {
                    path: path.display().to_string(),
                    topic: topic.clone(),
                    stream_time,
                    score: (score * 1000.0).round() / 1000.0,
                    url: None,
                    thumbnail: thumb.then(|| thumb_path.display().to_string()),
                    thumbnail_url: None,
                };
                Some((path, OutMsg::retained(topic, jpeg), r))
            }
            Ok(Err(e)) => {
                self.metrics.snapshot_errors.inc();
                tracing::error!(error = %e, "snapshot failed; the alert goes out without one");
                None
            }
            Err(e) => {
                self.metrics.snapshot_errors.inc();
                tracing::error!(error = %e, "snapshot task failed");
                None
            }
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
