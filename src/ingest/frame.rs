//! A decoded, sampled video frame as it leaves ingest: packed RGB8 plus its timestamps.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

#[derive(Debug, Clone)]
pub struct Frame {
    pub camera: Arc<str>,
    /// Index among this camera's sampled frames (0, 1, 2, …) since the stream (re)started.
    pub seq: u64,
    /// Stream time: offset from the first frame of the stream.
    pub pts: Duration,
    /// Wall-clock time at which the frame left the decoder.
    pub wall: DateTime<Utc>,
    pub width: u32,
    pub height: u32,
    /// Packed RGB8, `width * height * 3` bytes (row padding removed).
    pub rgb: Arc<Vec<u8>>,
    /// The motion gate's verdict (None: the camera has no gate).
    pub moved: Option<bool>,
}

impl Frame {
    pub fn pts_secs(&self) -> f64 {
        self.pts.as_secs_f64()
    }
}
