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
