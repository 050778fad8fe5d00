//! Process-wide counters, named in one place. The summary is logged at exit and feeds the camera state
//! messages; the Prometheus endpoint reads the same values.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::infer::ClipResult;

#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.add(1);
    }
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down (queue sizes).
#[derive(Debug, Default)]
pub struct Gauge(AtomicU64);

impl Gauge {
    pub fn set(&self, v: u64) {
        self.0.store(v, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Debug, Default)]
pub struct Metrics {
    pub clips_inferred: Counter,
    pub frames_inferred: Counter,
    pub inference_errors: Counter,
    /// Cumulative microseconds per phase.
    pub detector_us: Counter,
    pub encoder_us: Counter,
    pub head_us: Counter,
    pub alerts_raised: Counter,
    pub messages_published: Counter,
    pub messages_acked: Counter,
    /// Alerts and summaries on disk waiting for a PUBACK.
    pub spool_pending: Gauge,
    /// Messages evicted because the spool reached `spool.max_mb`.
    pub spool_evicted: Counter,
    /// Spool reads/writes that failed (disk full, I/O errors).
    pub spool_errors: Counter,
    /// `set` commands applied / rejected (malformed, unknown camera or rule) / dropped (too many at once).
    pub commands_applied: Counter,
    pub commands_rejected: Counter,
    pub commands_dropped: Counter,
    pub snapshots_written: Counter,
    pub snapshot_errors: Counter,
    /// Clips waiting for the inference worker, as seen when it takes one.
    pub clip_queue_depth: Gauge,
    /// Clips not inferred because detection was switched off for their camera.
    pub clips_skipped: Counter,
}

impl Metrics {
    pub fn record_clip(&self, r: &ClipResult) {
        self.clips_inferred.inc();
        self.frames_inferred.add(r.frames.len() as u64);
        self.detector_us.add((r.timings.detector_ms * 1e3) as u64);
        self.encoder_us.add((r.timings.encoder_ms * 1e3) as u64);
        self.head_us.add((r.timings.head_ms * 1e3) as u64);
    }
}
