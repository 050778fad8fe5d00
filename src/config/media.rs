//! `[media]`: the evidence written for alerts (snapshots and recordings), its retention, and the recorder settings
//! a camera's alert recorder is built from.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::{mb_to_bytes, seconds, CameraConfig, Checks, IngestConfig, Problem};

/// Evidence written for alerts: JPEG snapshots (with the boxes drawn), and their retention.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MediaConfig {
    /// Unset: `$STATE_DIRECTORY/media` under systemd, else `/var/lib/scenewatch/media`. Relative = to the config file.
    pub dir: Option<PathBuf>,
    pub snapshots: bool,
    pub jpeg_quality: u8,
    /// The retained snapshot on MQTT, like Frigate's: height in pixels (0 = the frame's), JPEG quality (0 = the
    /// file's `jpeg_quality`), cropped to the alert's boxes, boxes drawn. The file always has the whole frame.
    pub mqtt_snapshot_height: u32,
    pub mqtt_snapshot_quality: u8,
    pub mqtt_snapshot_crop: bool,
    pub mqtt_snapshot_boxes: bool,
    /// Draw the frame's time (UTC) on the MQTT copy.
    pub mqtt_snapshot_timestamp: bool,
    /// A thumbnail of each snapshot (`…-<id8>.thumb.jpg`, this many pixels high; 0 = none), for lists.
    pub thumbnail_height: u32,
    /// Files older than this are deleted (checked at start and every 10 minutes).
    pub retain_days: f64,
    /// Beyond this total size the oldest files are deleted.
    pub max_mb: f64,
    /// Record a video clip per alert.
    pub clips: bool,
    /// `mp4` (H.264, what browsers and phones play) or `mkv` (MJPEG in Matroska, no encoder needed).
    pub clip_format: crate::ingest::recorder::ClipFormat,
    /// Seconds of video before the first frame that raised the alert.
    pub clip_pre_roll_seconds: f64,
    /// Seconds after the alert's objects were last seen (the file closes once the end is decided and this passed).
    pub clip_post_roll_seconds: f64,
    /// A recording is closed at this length even while its alert goes on.
    pub clip_max_seconds: f64,
    /// Frames per second and width (pixels, height keeps the aspect) of recordings made from decoded frames (a
    /// camera with a record-only input records that stream as it is: these and `clip_jpeg_quality` do not apply).
    pub clip_fps: u32,
    pub clip_width: u32,
    pub clip_jpeg_quality: u8,
}

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            dir: None,
            snapshots: true,
            jpeg_quality: 85,
            mqtt_snapshot_height: 0,
            mqtt_snapshot_quality: 0,
            mqtt_snapshot_crop: false,
            mqtt_snapshot_boxes: true,
            mqtt_snapshot_timestamp: false,
            thumbnail_height: 180,
            retain_days: 7.0,
            max_mb: 2048.0,
            clips: true,
            clip_format: Default::default(),
            clip_pre_roll_seconds: 5.0,
            clip_post_roll_seconds: 5.0,
            clip_max_seconds: 300.0,
            clip_fps: 5,
            clip_width: 640,
            clip_jpeg_quality: 70,
        }
    }
}

impl MediaConfig {
    pub fn resolved_dir(&self) -> PathBuf {
        match &self.dir {
            Some(p) => p.clone(),
            None => std::env::var_os("STATE_DIRECTORY")
                .and_then(|d| std::env::split_paths(&d).next())
                .unwrap_or_else(|| PathBuf::from("/var/lib/scenewatch"))
                .join("media"),
        }
    }

    /// Evidence older than the first is deleted, and the oldest beyond the second (bytes).
    pub fn retention(&self) -> Result<(Duration, u64), Problem> {
        Ok((
            seconds("media.retain_days", self.retain_days * 86_400.0)?,
            mb_to_bytes(self.max_mb),
        ))
    }

    /// The alert recorder's settings for `cam`.
    pub fn recorder_config(
        &self,
        cam: &CameraConfig,
        ingest: &IngestConfig,
    ) -> Result<crate::ingest::recorder::RecorderConfig, Problem> {
        // inference lags decoding by what the queues hold (a file read faster than real time fills them all):
        // frames waiting for a clip, queued clips, results waiting for the events stage; capped at a minute past the
        // pre-roll (≈ 13 MB at the defaults)
        let lag = ((ingest.clip_queue as f64 + 6.0) * cam.clip_seconds
            + ingest.frame_queue as f64 / cam.sample_fps.max(0.1)
            + 5.0)
            .min(60.0);
        Ok(crate::ingest::recorder::RecorderConfig {
            passthrough: cam.record_url().is_some(),
            pre_roll: seconds("media.clip_pre_roll_seconds", self.clip_pre_roll_seconds)?,
            post_roll: seconds("media.clip_post_roll_seconds", self.clip_post_roll_seconds)?,
            max_len: seconds("media.clip_max_seconds", self.clip_max_seconds)?,
            ring_span: seconds(
                "media.clip_pre_roll_seconds",
                self.clip_pre_roll_seconds + lag,
            )?,
            fps: self.clip_fps,
            width: self.clip_width,
            quality: self.clip_jpeg_quality,
            format: self.clip_format,
        })
    }

    pub(super) fn validate(&self, c: &mut Checks) {
        c.range("media.jpeg_quality", self.jpeg_quality, 1, 100);
        c.range(
            "media.mqtt_snapshot_quality",
            self.mqtt_snapshot_quality,
            0,
            100,
        );
        c.range(
            "media.mqtt_snapshot_height",
            self.mqtt_snapshot_height,
            0,
            4320,
        );
        c.range("media.thumbnail_height", self.thumbnail_height, 0, 1080);
        c.range("media.clip_jpeg_quality", self.clip_jpeg_quality, 1, 100);
        c.above("media.retain_days", self.retain_days, 0.0, 3650.0);
        c.above("media.max_mb", self.max_mb, 0.0, 10_485_760.0);
        c.range(
            "media.clip_pre_roll_seconds",
            self.clip_pre_roll_seconds,
            0.0,
            60.0,
        );
        c.range(
            "media.clip_post_roll_seconds",
            self.clip_post_roll_seconds,
            0.0,
            60.0,
        );
        c.range("media.clip_max_seconds", self.clip_max_seconds, 5.0, 3600.0);
        c.range("media.clip_fps", self.clip_fps, 1, 30);
        if !(64..=3840).contains(&self.clip_width) || self.clip_width % 2 != 0 {
            c.bad("media.clip_width", "must be an even number in 64..=3840");
        }
    }

    /// How the MQTT copy of a snapshot is made.
    pub fn mqtt_shape(&self) -> crate::events::snapshot::MqttShape {
        crate::events::snapshot::MqttShape {
            height: self.mqtt_snapshot_height,
            quality: if self.mqtt_snapshot_quality == 0 {
                self.jpeg_quality
            } else {
                self.mqtt_snapshot_quality
            },
            crop: self.mqtt_snapshot_crop,
            boxes: self.mqtt_snapshot_boxes,
            timestamp: self.mqtt_snapshot_timestamp,
        }
    }

    /// Retention; the recorders are built per camera (`CameraConfig::dry_build`).
    pub(super) fn dry_build(&self, c: &mut Checks) {
        c.keep(self.retention().map(drop));
    }
}
