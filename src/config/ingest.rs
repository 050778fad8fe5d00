//! `[ingest]`: the ingest stage's queues and their full-policy, and how long a camera may stay silent (watchdog,
//! start-up timeout) and wait between reconnects.

use std::time::Duration;

use serde::Deserialize;

use super::{seconds, Checks, Problem};

/// What a full frame queue does with the next frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DropPolicy {
    /// Files read as fast as possible: wait (backpressure into the decoder), lose nothing.
    Block,
    /// Live cameras: evict the oldest queued frame, keep the newest (stay current, never lag).
    DropOldest,
    /// Discard the incoming frame.
    DropNewest,
}

/// Frame and clip queues between ingest and inference.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// Sampled frames buffered per camera before clip assembly.
    pub frame_queue: usize,
    /// Most megabytes of decoded frames a camera's frame queue holds (0 = no byte bound, the default): it then
    /// holds `min(frame_queue, frame_queue_mb / frame size)` frames, at least 2. A 1080p RGB frame is 6.2 MB, so
    /// 64 keeps 10 of them (5 s at 2 fps) instead of 32 (199 MB); a 576p camera keeps all 32. Off by default: it
    /// saved ≈ 45 MB per lagging 1080p camera but cost the whole-box file throughput ≈ 10 % (docs/performance.md).
    pub frame_queue_mb: u32,
    /// Policy of the frame queue; unset = `block` for files read faster than real time, `drop_oldest` otherwise.
    pub drop_policy: Option<DropPolicy>,
    /// Clips buffered between the clip assemblers and the inference workers (shared by all cameras).
    pub clip_queue: usize,
    /// A camera whose pipeline is playing, is not held up by a full frame queue, and decodes no frame for this
    /// long is stuck: live sources are restarted (with backoff), files fail.
    pub watchdog_secs: f64,
    /// A camera that delivers no first frame this long after its pipeline was started is stuck (the error says
    /// what GStreamer was waiting on): live sources are retried with backoff, files fail.
    pub startup_timeout_secs: f64,
    /// Backoff between reconnect attempts of live cameras: starts at `retry_min_secs`, doubles, capped here.
    pub retry_min_secs: f64,
    pub retry_max_secs: f64,
    /// Threads of each camera's software video decoder (gst-libav's `max-threads`). Unset = auto: one thread
    /// per decoder once there are at least as many enabled cameras as cores (the cameras then keep every core
    /// busy between them, and a single-threaded decoder spends ≈ 14 % less CPU per frame and ≈ 20 MB less
    /// memory at 1080p: docs/performance.md); otherwise libav's own choice, one per core, for the fastest
    /// single stream. Read at start-up only.
    pub decode_threads: Option<u32>,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            frame_queue: 32,
            frame_queue_mb: 0,
            drop_policy: None,
            clip_queue: 8,
            watchdog_secs: 20.0,
            startup_timeout_secs: 30.0,
            retry_min_secs: 1.0,
            retry_max_secs: 30.0,
            decode_threads: None,
        }
    }
}

impl IngestConfig {
    /// The watchdog's limits: no first frame within `startup_timeout_secs`, or no decoded frame for
    /// `watchdog_secs` while playing (see `ingest::pipeline::judge`).
    pub fn watchdog(&self) -> Result<crate::ingest::pipeline::Watchdog, Problem> {
        Ok(crate::ingest::pipeline::Watchdog {
            startup: seconds("ingest.startup_timeout_secs", self.startup_timeout_secs)?,
            stall: seconds("ingest.watchdog_secs", self.watchdog_secs)?,
        })
    }

    /// First and largest delay between reconnect attempts.
    pub fn retry_bounds(&self) -> Result<(Duration, Duration), Problem> {
        Ok((
            seconds("ingest.retry_min_secs", self.retry_min_secs)?,
            seconds("ingest.retry_max_secs", self.retry_max_secs)?,
        ))
    }

    /// The decoder threads each camera gets (0 = libav's auto, one per core) with `cameras` enabled cameras on
    /// `cores` CPUs.
    pub fn decoder_threads(&self, cameras: usize, cores: usize) -> u32 {
        match self.decode_threads {
            Some(n) => n,
            None if cameras >= cores.max(1) => 1,
            None => 0,
        }
    }

    pub(super) fn validate(&self, c: &mut Checks) {
        if let Some(n) = self.decode_threads {
            c.range("ingest.decode_threads", n, 1, 64);
        }
        c.range("ingest.frame_queue", self.frame_queue, 1, 4096);
        c.range("ingest.frame_queue_mb", self.frame_queue_mb, 0, 65536);
        c.range("ingest.clip_queue", self.clip_queue, 1, 1024);
        c.range("ingest.watchdog_secs", self.watchdog_secs, 1.0, 3600.0);
        c.range(
            "ingest.startup_timeout_secs",
            self.startup_timeout_secs,
            1.0,
            3600.0,
        );
        c.range("ingest.retry_min_secs", self.retry_min_secs, 0.1, 600.0);
        if !(self.retry_max_secs >= self.retry_min_secs && self.retry_max_secs <= 3600.0) {
            c.bad(
                "ingest.retry_max_secs",
                "must be in ingest.retry_min_secs..=3600",
            );
        }
    }

    /// The watchdog, the reconnect backoff over every attempt, and the shared clip queue; the frame queues are
    /// built per camera (`CameraConfig::dry_build`).
    pub(super) fn dry_build(&self, c: &mut Checks) {
        c.keep(self.watchdog().map(drop));
        c.keep(self.retry_bounds().map(|(min, max)| {
            for attempt in 0..=31 {
                for jitter in [0.0, 1.0] {
                    crate::ingest::backoff_delay(attempt, min, max, jitter);
                }
            }
        }));
        let _ = crossbeam_channel::bounded::<()>(self.clip_queue);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_decoder_threads_go_to_one_once_cameras_fill_the_cores() {
        let auto = IngestConfig::default();
        assert_eq!(auto.decoder_threads(1, 2), 0, "one camera: libav's threads");
        assert_eq!(auto.decoder_threads(2, 2), 1);
        assert_eq!(auto.decoder_threads(10, 2), 1);
        assert_eq!(auto.decoder_threads(3, 8), 0);
        assert_eq!(auto.decoder_threads(0, 0), 0, "no cameras yet");
        let set = IngestConfig {
            decode_threads: Some(3),
            ..IngestConfig::default()
        };
        assert_eq!(set.decoder_threads(10, 2), 3, "a set value wins");
    }
}
