//! Process-wide counters, gauges and latency histograms, named in one place (the `NAMES` table and
//! `render`). The summary is logged at exit and feeds the camera state messages; `/metrics` (Prometheus text,
//! encoded by prometheus-client from a collector that copies the values at scrape time, served by `http.rs`) and
//! `scenewatch bench` read the same values. The counters themselves stay lock-free atomics on the hot path.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

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

/// Histogram bucket upper bounds, seconds: a millisecond (a small model run) to 80 s (a long clip behind a queue).
pub const BUCKETS: [f64; 16] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0, 80.0,
];

/// A Prometheus histogram with fixed `BUCKETS` (lock-free observe).
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; 16],
    count: AtomicU64,
    sum_us: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, secs: f64) {
        let secs = secs.max(0.0);
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us
            .fetch_add((secs * 1e6) as u64, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    pub fn sum_secs(&self) -> f64 {
        self.sum_us.load(Ordering::Relaxed) as f64 / 1e6
    }
}

/// Per-stage latency, one histogram each (`scenewatch_stage_seconds{stage=…}`).
#[derive(Debug, Default)]
pub struct Stages {
    /// Per frame: the video decoder (buffer in → picture out; includes frames a threaded decoder holds).
    pub decode: Histogram,
    /// A complete clip waiting in the clip queue for the inference worker.
    pub queue_wait: Histogram,
    /// Per frame: scaling, letterbox/crop and normalisation for the detector and the encoder.
    pub preprocess: Histogram,
    /// Per frame: detector run + box decode and NMS.
    pub detector: Histogram,
    /// Per frame: image encoder run (batched per clip).
    pub encoder: Histogram,
    /// Per frame of cameras with posture rules (its own scaling included).
    pub pose: Histogram,
    /// Per clip: the language head (cameras with prompts).
    pub head: Histogram,
    /// Per clip: rules, tracking, snapshots, recordings, serialisation.
    pub events: Histogram,
    /// Per message: publish to PUBACK.
    pub publish: Histogram,
}

impl Stages {
    pub fn all(&self) -> [(&'static str, &Histogram); 9] {
        [
            ("decode", &self.decode),
            ("queue_wait", &self.queue_wait),
            ("preprocess", &self.preprocess),
            ("detector", &self.detector),
            ("encoder", &self.encoder),
            ("pose", &self.pose),
            ("head", &self.head),
            ("events", &self.events),
            ("publish", &self.publish),
        ]
    }
}

#[derive(Debug, Default)]
pub struct Metrics {
    pub stages: Stages,
    /// Per frame: from leaving the decoder to its clip's results being handed to the publisher.
    pub frame_latency: Histogram,
    /// Exact frame latencies (seconds) when a benchmark asked for them (None = not collected).
    pub latency_samples: Mutex<Option<Vec<f32>>>,
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
    /// Messages dropped because they exceed `mqtt.max_message_kb`.
    pub messages_too_large: Counter,
    pub snapshots_written: Counter,
    pub snapshot_errors: Counter,
    /// Clips waiting for an inference worker (queued, and parked behind their camera's running clip), as seen when
    /// a worker takes one.
    pub clip_queue_depth: Gauge,
    /// Inference workers running (`inference.workers`, resolved).
    pub inference_workers: Gauge,
    /// Microseconds the inference workers waited for a clip, summed over workers (idle = inference is not the
    /// bottleneck).
    pub inference_idle_us: Counter,
    /// Session runs of the shared detector batcher (`inference.detector_batch` > 1), and the frames they held:
    /// their ratio is the mean batch.
    pub detector_runs: Counter,
    pub detector_run_frames: Counter,
    /// Clips not inferred because detection was switched off for their camera.
    pub clips_skipped: Counter,
    /// Clips not inferred because the camera's motion gate saw nothing move (the last results were repeated).
    pub clips_gated: Counter,
    /// Per camera with an unusual-scene baseline: its latest clip's unusualness (absent while warming up).
    pub unusual_scores: Mutex<std::collections::BTreeMap<String, f32>>,
    /// Inference workers that died (panicked), with why: `/healthz` is unhealthy while any is listed.
    pub workers_failed: Mutex<Vec<String>>,
}

impl Metrics {
    pub fn record_clip(&self, r: &ClipResult) {
        self.clips_inferred.inc();
        self.frames_inferred.add(r.frames.len() as u64);
        self.detector_us.add((r.timings.detector_ms * 1e3) as u64);
        self.encoder_us.add((r.timings.encoder_ms * 1e3) as u64);
        self.head_us.add((r.timings.head_ms * 1e3) as u64);
        // each frame's own times, so per-frame percentiles are real (not the clip's average repeated)
        for t in &r.timings.frames {
            self.stages.preprocess.observe(t.preprocess_ms / 1e3);
            self.stages.detector.observe(t.detector_ms / 1e3);
            if t.pose_ms > 0.0 {
                self.stages.pose.observe(t.pose_ms / 1e3);
            }
        }
        // the encoder runs once per clip on a batch of frames: one observation per batch
        if r.timings.encoder_ms > 0.0 {
            self.stages.encoder.observe(r.timings.encoder_ms / 1e3);
        }
        if r.timings.head_ms > 0.0 {
            self.stages.head.observe(r.timings.head_ms / 1e3);
        }
    }

    /// A frame's results reached the publisher `secs` after it left the decoder.
    pub fn record_frame_latency(&self, secs: f64) {
        self.frame_latency.observe(secs);
        if let Ok(mut s) = self.latency_samples.lock() {
            if let Some(v) = s.as_mut().filter(|v| v.len() < 1_000_000) {
                v.push(secs as f32);
            }
        }
    }
}

/// One camera's figures for `/metrics`.
pub struct CameraFigures {
    pub name: String,
    pub state: &'static str,
    pub decoded: u64,
    pub sampled: u64,
    pub dropped: u64,
    pub queue_depth: u64,
    pub sampled_fps: f64,
}

/// Metric names and help texts: the one place they are defined.
pub const NAMES: &[(&str, &str, &str)] = &[
    ("scenewatch_stage_seconds", "histogram", "Latency per pipeline stage (decode, queue_wait, preprocess, detector, pose per frame; encoder per clip batch; head and events per clip; publish to PUBACK)"),
    ("scenewatch_frame_latency_seconds", "histogram", "From a frame leaving the decoder to its clip's results reaching the publisher"),
    ("scenewatch_clips_inferred_total", "counter", "Clips inferred"),
    ("scenewatch_frames_inferred_total", "counter", "Frames inferred"),
    ("scenewatch_inference_errors_total", "counter", "Clips skipped because inference failed"),
    ("scenewatch_alerts_raised_total", "counter", "Alerts opened (new)"),
    ("scenewatch_messages_published_total", "counter", "MQTT messages published"),
    ("scenewatch_messages_acked_total", "counter", "MQTT messages acknowledged by the broker"),
    ("scenewatch_spool_pending", "gauge", "Alerts and summaries on disk waiting for a PUBACK"),
    ("scenewatch_spool_evicted_total", "counter", "Spooled messages evicted because the spool was full"),
    ("scenewatch_spool_errors_total", "counter", "Spool reads or writes that failed"),
    ("scenewatch_commands_total", "counter", "set commands by result (applied, rejected, dropped)"),
    ("scenewatch_snapshots_written_total", "counter", "Alert snapshots written"),
    ("scenewatch_clip_queue_depth", "gauge", "Clips waiting for an inference worker (queued or parked behind their camera's running clip)"),
    ("scenewatch_inference_workers", "gauge", "Inference workers, each with its own model sessions"),
    ("scenewatch_inference_idle_seconds_total", "counter", "Time the inference workers waited for a clip they could run, summed over workers; time blocked behind busy cameras is not counted (when it grows as fast as time times workers, inference has headroom)"),
    ("scenewatch_clips_skipped_total", "counter", "Clips not inferred because detection was off"),
    ("scenewatch_detector_batches_total", "counter", "Session runs of the shared detector batcher (inference.detector_batch > 1)"),
    ("scenewatch_detector_batch_frames_total", "counter", "Frames in the detector batcher's runs (divided by scenewatch_detector_batches_total: the mean batch)"),
    ("scenewatch_snapshot_errors_total", "counter", "Alert snapshots that could not be encoded or written (disk full, permissions)"),
    ("scenewatch_clips_gated_total", "counter", "Clips not inferred because nothing moved (motion gate); the last results were repeated"),
    ("scenewatch_messages_too_large_total", "counter", "Messages dropped because they exceed mqtt.max_message_kb"),
    ("scenewatch_camera_up", "gauge", "1 when the camera is running, with its state as a label"),
    ("scenewatch_camera_frames_decoded_total", "counter", "Frames decoded per camera"),
    ("scenewatch_camera_frames_sampled_total", "counter", "Frames sampled for inference per camera"),
    ("scenewatch_camera_frames_dropped_total", "counter", "Sampled frames dropped by the frame queue's full-policy"),
    ("scenewatch_camera_frame_queue_depth", "gauge", "Frames waiting in the camera's frame queue"),
    ("scenewatch_camera_sampled_fps", "gauge", "Sampled frames per second since the camera started"),
    ("scenewatch_model_info", "gauge", "Loaded models and the execution provider each really uses"),
    ("scenewatch_unusual_score", "gauge", "Unusualness of the camera's latest clip against its own baseline (0..1: the share of its recent clips that were closer to normal); absent while the baseline warms up"),
];

/// Help text and type of a declared metric.
fn declared(name: &str) -> (&'static str, MetricType) {
    NAMES
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, t, h)| {
            let t = match *t {
                "counter" => MetricType::Counter,
                "histogram" => MetricType::Histogram,
                _ => MetricType::Gauge,
            };
            (*h, t)
        })
        .unwrap_or(("", MetricType::Unknown))
}

/// Name (prometheus-client appends `_total` to counters itself, so theirs is without it), help and type.
fn descriptor(name: &'static str) -> (&'static str, &'static str, MetricType) {
    let (help, t) = declared(name);
    let base = if t == MetricType::Counter {
        name.trim_end_matches("_total")
    } else {
        name
    };
    (base, help, t)
}

/// A histogram's values at scrape time: sum, count and the per-bucket counts.
#[derive(Debug)]
struct HistValues {
    sum: f64,
    count: u64,
    buckets: Vec<(f64, u64)>,
}

impl Histogram {
    fn values(&self) -> HistValues {
        HistValues {
            sum: self.sum_secs(),
            count: self.count(),
            buckets: BUCKETS
                .iter()
                .zip(&self.buckets)
                .map(|(b, c)| (*b, c.load(Ordering::Relaxed)))
                .collect(),
        }
    }
}

/// Everything `/metrics` shows, copied at scrape time; prometheus-client encodes it.
#[derive(Debug)]
struct Scrape {
    stages: Vec<(&'static str, HistValues)>,
    frame_latency: HistValues,
    plain: Vec<(&'static str, u64)>,
    idle_secs: f64,
    commands: [(&'static str, u64); 3],
    cameras: Vec<(String, &'static str, [f64; 6])>,
    /// Cameras with an unusual-scene baseline and their latest score (none: the metric is left out).
    unusual: Vec<(String, f64)>,
    models: Vec<(String, String)>,
}

/// Per-camera series, in the order of `Scrape::cameras`' values.
const PER_CAMERA: [&str; 6] = [
    "scenewatch_camera_up",
    "scenewatch_camera_frames_decoded_total",
    "scenewatch_camera_frames_sampled_total",
    "scenewatch_camera_frames_dropped_total",
    "scenewatch_camera_frame_queue_depth",
    "scenewatch_camera_sampled_fps",
];

impl Collector for Scrape {
    fn encode(&self, mut enc: DescriptorEncoder) -> std::fmt::Result {
        let (n, h, t) = descriptor("scenewatch_stage_seconds");
        let mut e = enc.encode_descriptor(n, h, None, t)?;
        for (stage, v) in &self.stages {
            e.encode_family(&[("stage", *stage)])?
                .encode_histogram::<NoLabelSet>(v.sum, v.count, &v.buckets, None)?;
        }
        let (n, h, t) = descriptor("scenewatch_frame_latency_seconds");
        let v = &self.frame_latency;
        enc.encode_descriptor(n, h, None, t)?
            .encode_histogram::<NoLabelSet>(v.sum, v.count, &v.buckets, None)?;
        for (name, value) in &self.plain {
            let (n, h, t) = descriptor(name);
            let mut e = enc.encode_descriptor(n, h, None, t)?;
            if t == MetricType::Counter {
                e.encode_counter::<NoLabelSet, _, u64>(value, None)?;
            } else {
                e.encode_gauge(&(*value as i64))?;
            }
        }
        let (n, h, t) = descriptor("scenewatch_inference_idle_seconds_total");
        enc.encode_descriptor(n, h, None, t)?
            .encode_counter::<NoLabelSet, _, u64>(&self.idle_secs, None)?;
        let (n, h, t) = descriptor("scenewatch_commands_total");
        let mut e = enc.encode_descriptor(n, h, None, t)?;
        for (result, v) in &self.commands {
            e.encode_family(&[("result", *result)])?
                .encode_counter::<NoLabelSet, _, u64>(v, None)?;
        }
        for (i, name) in PER_CAMERA.iter().enumerate() {
            let (n, h, t) = descriptor(name);
            let mut e = enc.encode_descriptor(n, h, None, t)?;
            for (camera, state, values) in &self.cameras {
                let v = values[i];
                if i == 0 {
                    e.encode_family(&[("camera", camera.as_str()), ("state", state)])?
                        .encode_gauge(&v)?;
                } else if t == MetricType::Counter {
                    e.encode_family(&[("camera", camera.as_str())])?
                        .encode_counter::<NoLabelSet, _, u64>(&v, None)?;
                } else {
                    e.encode_family(&[("camera", camera.as_str())])?
                        .encode_gauge(&v)?;
                }
            }
        }
        if !self.unusual.is_empty() {
            let (n, h, t) = descriptor("scenewatch_unusual_score");
            let mut e = enc.encode_descriptor(n, h, None, t)?;
            for (camera, v) in &self.unusual {
                e.encode_family(&[("camera", camera.as_str())])?
                    .encode_gauge(v)?;
            }
        }
        let (h, _) = declared("scenewatch_model_info");
        let mut e = enc.encode_descriptor("scenewatch_model", h, None, MetricType::Info)?;
        for (model, provider) in &self.models {
            e.encode_info(&[("model", model.as_str()), ("provider", provider.as_str())])?;
        }
        Ok(())
    }
}

/// The Prometheus text exposition of everything, encoded by prometheus-client.
pub fn render(m: &Metrics, cameras: &[CameraFigures], models: &[(String, String)]) -> String {
    let scrape = Scrape {
        stages: m
            .stages
            .all()
            .into_iter()
            .map(|(s, h)| (s, h.values()))
            .collect(),
        frame_latency: m.frame_latency.values(),
        plain: vec![
            ("scenewatch_clips_inferred_total", m.clips_inferred.get()),
            ("scenewatch_frames_inferred_total", m.frames_inferred.get()),
            (
                "scenewatch_inference_errors_total",
                m.inference_errors.get(),
            ),
            ("scenewatch_alerts_raised_total", m.alerts_raised.get()),
            (
                "scenewatch_messages_published_total",
                m.messages_published.get(),
            ),
            ("scenewatch_messages_acked_total", m.messages_acked.get()),
            ("scenewatch_spool_pending", m.spool_pending.get()),
            ("scenewatch_spool_evicted_total", m.spool_evicted.get()),
            ("scenewatch_spool_errors_total", m.spool_errors.get()),
            (
                "scenewatch_snapshots_written_total",
                m.snapshots_written.get(),
            ),
            ("scenewatch_snapshot_errors_total", m.snapshot_errors.get()),
            ("scenewatch_clip_queue_depth", m.clip_queue_depth.get()),
            ("scenewatch_inference_workers", m.inference_workers.get()),
            ("scenewatch_clips_skipped_total", m.clips_skipped.get()),
            ("scenewatch_detector_batches_total", m.detector_runs.get()),
            (
                "scenewatch_detector_batch_frames_total",
                m.detector_run_frames.get(),
            ),
            ("scenewatch_clips_gated_total", m.clips_gated.get()),
            (
                "scenewatch_messages_too_large_total",
                m.messages_too_large.get(),
            ),
        ],
        idle_secs: m.inference_idle_us.get() as f64 / 1e6,
        commands: [
            ("applied", m.commands_applied.get()),
            ("rejected", m.commands_rejected.get()),
            ("dropped", m.commands_dropped.get()),
        ],
        cameras: cameras
            .iter()
            .map(|c| {
                (
                    c.name.clone(),
                    c.state,
                    [
                        (c.state == "running") as u8 as f64,
                        c.decoded as f64,
                        c.sampled as f64,
                        c.dropped as f64,
                        c.queue_depth as f64,
                        c.sampled_fps,
                    ],
                )
            })
            .collect(),
        unusual: m
            .unusual_scores
            .lock()
            .map(|u| u.iter().map(|(c, v)| (c.clone(), f64::from(*v))).collect())
            .unwrap_or_default(),
        models: models.to_vec(),
    };
    let mut registry = Registry::default();
    registry.register_collector(Box::new(scrape));
    let mut out = String::with_capacity(16 * 1024);
    if let Err(e) = prometheus_client::encoding::prometheus_text::encode(&mut out, &registry) {
        tracing::error!(error = %e, "could not encode the metrics");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unusual_scores_are_rendered_per_camera_only_when_there_are_some() {
        let m = Metrics::default();
        assert!(!render(&m, &[], &[]).contains("scenewatch_unusual_score"));
        if let Ok(mut u) = m.unusual_scores.lock() {
            u.insert("gate".into(), 0.25);
        }
        let text = render(&m, &[], &[]);
        assert!(
            text.contains("# TYPE scenewatch_unusual_score gauge"),
            "{text}"
        );
        assert!(
            text.contains("scenewatch_unusual_score{camera=\"gate\"} 0.25"),
            "{text}"
        );
    }

    #[test]
    fn per_frame_stages_observe_each_frames_own_time() {
        use crate::infer::{ClipResult, ClipTimings, FrameTimings};
        use std::time::Duration;
        let m = Metrics::default();
        let frame = |detector_ms| FrameTimings {
            preprocess_ms: 1.0,
            detector_ms,
            pose_ms: 0.0,
        };
        let r = ClipResult {
            camera: "cam".into(),
            clip_index: 0,
            start: Duration::ZERO,
            end: Duration::from_secs(1),
            frames: Vec::new(),
            prompts: None,
            classifiers: Vec::new(),
            timings: ClipTimings {
                detector_ms: 101.0,
                encoder_ms: 30.0,
                frames: vec![frame(1.0), frame(100.0)],
                ..Default::default()
            },
        };
        m.record_clip(&r);
        let text = render(&m, &[], &[]);
        // 1 ms and 100 ms, not their average (50.5 ms) twice
        for (le, n) in [("0.001", 1), ("0.05", 1), ("0.1", 2)] {
            let line =
                format!("scenewatch_stage_seconds_bucket{{stage=\"detector\",le=\"{le}\"}} {n}");
            assert!(text.contains(&line), "{line} missing:\n{text}");
        }
        assert!(text.contains("scenewatch_stage_seconds_count{stage=\"encoder\"} 1"));
        assert!(text.contains("scenewatch_stage_seconds_count{stage=\"pose\"} 0"));
        m.snapshot_errors.inc();
        let text = render(&m, &[], &[]);
        assert!(
            text.contains("scenewatch_snapshot_errors_total 1"),
            "{text}"
        );
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_every_rendered_name_is_declared() {
        let m = Metrics::default();
        m.stages.detector.observe(0.004);
        m.stages.detector.observe(0.04);
        m.stages.detector.observe(500.0);
        let cams = [CameraFigures {
            name: "gate \"1\"".into(),
            state: "running",
            decoded: 10,
            sampled: 2,
            dropped: 0,
            queue_depth: 1,
            sampled_fps: 2.0,
        }];
        let text = render(
            &m,
            &cams,
            &[("detector".into(), "CPUExecutionProvider".into())],
        );
        assert!(
            text.contains("scenewatch_stage_seconds_bucket{stage=\"detector\",le=\"0.005\"} 1"),
            "{text}"
        );
        assert!(text.contains("scenewatch_stage_seconds_bucket{stage=\"detector\",le=\"0.05\"} 2"));
        assert!(text.contains("scenewatch_stage_seconds_bucket{stage=\"detector\",le=\"+Inf\"} 3"));
        assert!(text.contains("scenewatch_stage_seconds_count{stage=\"detector\"} 3"));
        assert!(
            text.contains("scenewatch_camera_up{camera=\"gate \\\"1\\\"\",state=\"running\"} 1"),
            "{text}"
        );
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap_or("");
            let base = name
                .trim_end_matches("_bucket")
                .trim_end_matches("_sum")
                .trim_end_matches("_count");
            assert!(
                NAMES.iter().any(|(n, _, _)| *n == name || *n == base),
                "{name} is not declared in NAMES"
            );
        }
    }
}
