//! The daemon's configuration: one TOML file plus `SCENEWATCH__SECTION__KEY` environment overrides.
//!
//! This file owns the typed config (every default written once, here), loading through the `config` crate, and
//! `validate()`, which lists *every* problem with its key path (`cameras[1].sample_fps: must be in 0.01..=60`)
//! instead of stopping at the first. Unknown keys are errors (`deny_unknown_fields`) so a typo never silently becomes
//! a default; `lenient` reads the file so that unknown keys and values of the wrong type are listed together with the
//! range problems. Every number has a finite range, and `dry_build()` makes what `run` derives from the config
//! (durations, queues, the rule engine…) without I/O, so a config that loads cannot panic a stage later.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::labels::{coco_label_index, Posture, VEHICLE_GROUP};

/// Top-level configuration.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub mqtt: MqttConfig,
    #[serde(default)]
    pub models: ModelsConfig,
    #[serde(default)]
    pub ingest: IngestConfig,
    #[serde(default)]
    pub inference: InferenceConfig,
    #[serde(default)]
    pub shutdown: ShutdownConfig,
    #[serde(default)]
    pub spool: SpoolConfig,
    #[serde(default)]
    pub media: MediaConfig,
    #[serde(default)]
    pub homeassistant: HomeAssistantConfig,
    #[serde(default)]
    pub summaries: SummariesConfig,
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// Fused language head parameters (prompt scoring).
    #[serde(default)]
    pub language: LanguageConfig,
    #[serde(default)]
    pub cameras: Vec<CameraConfig>,
}

/// The HTTP endpoint for `/metrics` (Prometheus) and `/healthz`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// `host:port` to listen on, e.g. `127.0.0.1:9464`. Unset = no endpoint.
    pub listen: Option<String>,
}

/// Broker connection and topic layout.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MqttConfig {
    pub host: String,
    pub port: u16,
    pub client_id: String,
    /// First level of every topic: `<prefix>/status`, `<prefix>/<camera>/alerts`, …
    pub topic_prefix: String,
    pub keep_alive_secs: u64,
    /// Messages waiting for the publisher (alerts, states, summaries). When full, the publisher stops reading and
    /// every producer waits (nothing is dropped); a queued retained message is replaced by a newer one on the
    /// same topic (docs/mqtt.md).
    pub outbox_capacity: usize,
    /// Cap of the exponential reconnect backoff.
    pub reconnect_max_secs: f64,
    pub username: Option<String>,
    /// Read from `SCENEWATCH__MQTT__PASSWORD` or the file named by `password_file`; never logged.
    pub password: Option<Secret>,
    pub password_file: Option<PathBuf>,
    /// Connect with TLS (rustls). The broker certificate is checked against `ca_file`, or the system roots.
    pub tls: bool,
    pub ca_file: Option<PathBuf>,
    /// Client certificate and key (PEM) for brokers that require mutual TLS.
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
}

/// A secret string (MQTT password): its `Debug` never shows the value, so logging a config cannot leak it.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: String) -> Self {
        Self(s)
    }
    /// The value, for the one place that must send it (the MQTT CONNECT packet).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Plain-English period summaries on `<prefix>/<camera>/summary`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SummariesConfig {
    pub enabled: bool,
    /// Period length (stream time); a period in which nothing was seen is skipped.
    pub period_minutes: f64,
}

impl Default for SummariesConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            period_minutes: 5.0,
        }
    }
}

/// Home Assistant MQTT discovery.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HomeAssistantConfig {
    /// Publish retained discovery configs (occupancy, count, snapshot per camera × label; a detect switch).
    pub enabled: bool,
    pub discovery_prefix: String,
}

impl Default for HomeAssistantConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            discovery_prefix: "homeassistant".into(),
        }
    }
}

/// Evidence written for alerts: JPEG snapshots (with the boxes drawn), and their retention.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MediaConfig {
    /// Unset: `$STATE_DIRECTORY/media` under systemd, else `/var/lib/scenewatch/media`. Relative = to the config file.
    pub dir: Option<PathBuf>,
    pub snapshots: bool,
    pub jpeg_quality: u8,
    /// Files older than this are deleted (checked at start and every 10 minutes).
    pub retain_days: f64,
    /// Beyond this total size the oldest files are deleted.
    pub max_mb: f64,
    /// Record a video clip (Matroska, MJPEG) per alert.
    pub clips: bool,
    /// Seconds of video before the first frame that raised the alert.
    pub clip_pre_roll_seconds: f64,
    /// Seconds after the alert's objects were last seen (the file closes once the end is decided and this passed).
    pub clip_post_roll_seconds: f64,
    /// A recording is closed at this length even while its alert goes on.
    pub clip_max_seconds: f64,
    /// Frames per second and width (pixels, height keeps the aspect) of recordings.
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
            retain_days: 7.0,
            max_mb: 2048.0,
            clips: true,
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
}

/// Where undelivered alerts and summaries wait for the broker (see `publish::spool`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SpoolConfig {
    /// The spool file. Unset: `$STATE_DIRECTORY/spool.redb` under systemd, else `/var/lib/scenewatch/spool.redb`.
    /// A relative path is relative to the config file.
    pub path: Option<PathBuf>,
    /// Size cap of stored messages; beyond it the oldest summaries, then the oldest alerts, are evicted.
    pub max_mb: f64,
}

impl Default for SpoolConfig {
    fn default() -> Self {
        Self {
            path: None,
            max_mb: 256.0,
        }
    }
}

impl SpoolConfig {
    pub fn resolved_path(&self) -> PathBuf {
        match &self.path {
            Some(p) => p.clone(),
            None => std::env::var_os("STATE_DIRECTORY")
                .and_then(|d| std::env::split_paths(&d).next())
                .unwrap_or_else(|| PathBuf::from("/var/lib/scenewatch"))
                .join("spool.redb"),
        }
    }
    pub fn max_bytes(&self) -> u64 {
        mb_to_bytes(self.max_mb)
    }
}

impl Default for MqttConfig {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 1883,
            client_id: "scenewatch".into(),
            topic_prefix: "scenewatch".into(),
            keep_alive_secs: 15,
            outbox_capacity: 10_000,
            reconnect_max_secs: 30.0,
            username: None,
            password: None,
            password_file: None,
            tls: false,
            ca_file: None,
            client_cert: None,
            client_key: None,
        }
    }
}

/// Which ONNX Runtime execution provider to ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderChoice {
    /// CUDA when the library and GPU allow it, else CPU (what was really used is reported).
    Auto,
    Cuda,
    Cpu,
}

/// Model files and the ONNX Runtime library.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ModelsConfig {
    /// Directory holding the model files; relative file names below are resolved against it.
    pub dir: PathBuf,
    /// Path of libonnxruntime.so. Unset: `$ORT_DYLIB_PATH`, then the paths `setup.sh` installs to.
    pub onnxruntime: Option<PathBuf>,
    pub provider: ProviderChoice,
    pub detector: PathBuf,
    pub encoder: PathBuf,
    pub imagenet_labels: PathBuf,
    pub text_encoder: PathBuf,
    pub tokenizer: PathBuf,
    pub language_head: PathBuf,
    /// MoveNet multipose, loaded only when a rule has a `posture`.
    pub pose: PathBuf,
    /// Where label-bank embeddings are cached (keyed by model hash + texts). Unset: no cache.
    pub cache_dir: Option<PathBuf>,
}

impl Default for ModelsConfig {
    fn default() -> Self {
        Self {
            dir: "models".into(),
            onnxruntime: None,
            provider: ProviderChoice::Auto,
            // fp32: the int8 file is 1.3× faster and finds the same people, but its slightly different detections
            // cost the prompt evaluation one of 16 (models/README.md); opt in where prompts do not matter
            detector: "nanodet_g_416.onnx".into(),
            encoder: "efficientnet_lite0.onnx".into(),
            imagenet_labels: "imagenet_classes.txt".into(),
            text_encoder: "minilm_l6_v2.onnx".into(),
            tokenizer: "minilm_tokenizer.json".into(),
            language_head: "language_head.onnx".into(),
            pose: "movenet_multipose.onnx".into(),
            cache_dir: Some("/var/cache/scenewatch/embeddings".into()),
        }
    }
}

impl ModelsConfig {
    pub fn resolve(&self, file: &Path) -> PathBuf {
        if file.is_absolute() {
            file.to_path_buf()
        } else {
            self.dir.join(file)
        }
    }
}

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
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            frame_queue: 32,
            drop_policy: None,
            clip_queue: 8,
            watchdog_secs: 20.0,
            startup_timeout_secs: 30.0,
            retry_min_secs: 1.0,
            retry_max_secs: 30.0,
        }
    }
}

/// Inference workers.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct InferenceConfig {
    /// Inference workers: threads that each own a copy of the vision models and take the next clip from the
    /// shared clip queue (one camera's clips run one at a time, so its results stay in order). 0 = auto: one per
    /// core, at most one per camera and at most 4. Read at start-up only.
    pub workers: usize,
    /// ORT intra-op threads per worker: of the shared pool, or of each model's own pool. 0 = auto: the cores
    /// divided among the workers (at least 1).
    pub intra_threads: usize,
    /// One intra-op pool shared by all models (default; used when there is one worker), or one per model.
    /// Read at start-up only.
    pub thread_pool: ThreadPool,
    /// Detections below this score are discarded at decode (rules then apply their own `min_score`).
    pub detector_threshold: f32,
    pub nms_iou: f32,
    /// Load the image encoder (ImageNet probabilities + 1280-d embedding per frame) even when no camera has
    /// prompts. It runs only on clips of cameras with prompts, whose language head is its one consumer.
    pub encoder: bool,
    /// Long side (pixels) frames are scaled to for the pose model; small, distant people need ≥ 384.
    pub pose_input: u32,
    /// The image encoder runs on every n-th sampled frame of a clip (1 = all); the frames between reuse the
    /// encoding before them. The language head scores scenes, which change slower than 2 fps: at 2 the 20 vtest
    /// clips keep their top-1 prompt (20/20, |Δscore| ≤ 0.013; docs/performance.md) for half the encoder's cost.
    pub encoder_stride: usize,
}

impl Default for InferenceConfig {
    fn default() -> Self {
        Self {
            workers: 0,
            intra_threads: 0,
            thread_pool: ThreadPool::Shared,
            detector_threshold: 0.35,
            nms_iou: 0.6,
            encoder: true,
            pose_input: 384,
            encoder_stride: 2,
        }
    }
}

/// How inference is spread over the CPU: `workers` threads, each running its models on `threads` ORT threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerPlan {
    pub workers: usize,
    pub threads: usize,
}

/// Most workers `workers = 0` (auto) picks: each holds its own sessions of the vision models (≈ 170–200 MB RSS
/// measured for the second worker, docs/performance.md).
pub const AUTO_MAX_WORKERS: usize = 4;

impl InferenceConfig {
    /// Resolves `workers` and `intra_threads` (0 = auto) for `cores` CPUs and `cameras` enabled cameras.
    ///
    /// Why several single-threaded workers rather than one with every core: ORT's intra-op parallelism waits for
    /// its slowest thread at every operator, so when decoding takes a core for a moment the whole model stalls.
    /// Independent workers only slow down one clip. Measured on the 2-vCPU box with 13 cameras decoding:
    /// NanoDet + EfficientNet ran at 21–27 frames/s as one worker × 2 threads and 37–43 as 2 × 1
    /// (docs/performance.md). One camera keeps one worker with all cores, for its latency.
    pub fn plan(&self, cores: usize, cameras: usize) -> WorkerPlan {
        let cores = cores.max(1);
        let workers = match self.workers {
            0 => cores.min(cameras.max(1)).min(AUTO_MAX_WORKERS),
            n => n,
        };
        let threads = match self.intra_threads {
            0 => (cores / workers).max(1),
            n => n,
        };
        WorkerPlan { workers, threads }
    }
}

/// How ORT's intra-op threads are pooled across the models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThreadPool {
    /// One pool for every model (the models run one after another on the inference thread).
    Shared,
    /// A pool per model (ONNX Runtime's default).
    PerModel,
}

/// Drain on SIGTERM / end of all streams.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ShutdownConfig {
    /// Longest wait for queued messages to be acknowledged by the broker before exiting anyway: what is left stays
    /// in the spool for the next start (exit 0); exit 3 only when messages could not even be spooled.
    pub drain_timeout_secs: f64,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        Self {
            drain_timeout_secs: 30.0,
        }
    }
}

/// `[language]`: the fused language head's parameters for prompt scoring (defaults chosen on the evaluation in
/// docs/quality.md).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LanguageConfig {
    /// ImageNet classes per frame that enter the ConSE combination.
    pub top_k: usize,
    /// Weight of the classifier (ConSE) vector.
    pub w_classifier: f32,
    /// Weight of the detection vector.
    pub w_detections: f32,
    /// Weight of the "nothing detected" concept, scaled by 1 − max detection score.
    pub w_empty: f32,
    /// Clip score = alpha · mean over frames + (1 − alpha) · max over frames.
    pub alpha: f32,
    /// Calibrated score = sigmoid(z / temperature), z = (cosine − prompt's mean over the label banks) / std.
    pub temperature: f32,
    /// Template for label-bank texts; `{}` is the class name.
    pub label_template: String,
    /// Template for prompts; `{}` is the prompt text.
    pub prompt_template: String,
    /// What "nothing detected" means in words.
    pub empty_text: String,
}

impl Default for LanguageConfig {
    fn default() -> Self {
        Self {
            top_k: 16,
            w_classifier: 1.0,
            w_detections: 0.5,
            w_empty: 0.5,
            alpha: 0.5,
            temperature: 4.0,
            label_template: "a photo of a {}".into(),
            prompt_template: "a photo of {}".into(),
            empty_text: "an empty scene with nobody and nothing in it".into(),
        }
    }
}

/// One camera (or file, or test source).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CameraConfig {
    /// `[a-z0-9_-]+`, unique; used in topics.
    pub name: String,
    /// `file:///…` (or a plain path), `rtsp://…`, `v4l2:///dev/videoN`, `test://[pattern]`.
    pub url: String,
    #[serde(default = "default_sample_fps")]
    pub sample_fps: f64,
    #[serde(default = "default_clip_seconds")]
    pub clip_seconds: f64,
    /// Seconds shared by consecutive clips (0 = back to back).
    #[serde(default)]
    pub clip_overlap_seconds: f64,
    /// Read files at their own frame rate instead of as fast as possible.
    #[serde(default)]
    pub realtime: bool,
    /// Start a file again at its end instead of ending the camera (soak tests, demos).
    #[serde(default, rename = "loop")]
    pub looping: bool,
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Label rules; empty = `person` and `vehicle` with defaults.
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
    /// Natural-language scene prompts scored per clip by the language head.
    #[serde(default)]
    pub prompts: Vec<PromptConfig>,
    /// Named areas of the image that rules can require (`rules.zones`).
    #[serde(default)]
    pub zones: Vec<ZoneConfig>,
    /// IANA time zone of the camera's site, for rule schedules (`Europe/Brussels`).
    #[serde(default = "default_timezone")]
    pub timezone: String,
    /// Skip the models on clips in which nothing moved (frame differencing against a running background on a
    /// 64-pixel-wide grey thumbnail). Such a clip repeats the camera's last results, so open alerts, counts and
    /// dwell carry on; snapshots still show the new frames.
    #[serde(default)]
    pub motion_gate: bool,
    /// With `motion_gate`: the fraction of the frame (0–1] that must change for a frame to count as motion.
    #[serde(default = "default_motion_min_area")]
    pub motion_min_area: f32,
}

fn default_timezone() -> String {
    "UTC".into()
}

fn default_motion_min_area() -> f32 {
    crate::ingest::motion::MotionParams::default().min_area
}

impl CameraConfig {
    /// The motion gate's parameters, when the camera has one.
    pub fn motion(&self) -> Option<crate::ingest::motion::MotionParams> {
        self.motion_gate
            .then(|| crate::ingest::motion::MotionParams {
                min_area: self.motion_min_area,
                ..Default::default()
            })
    }
}

/// A scene prompt: opens a `kind = "prompt"` alert when its calibrated clip score stays at or above
/// `threshold` for `enter_clips` clips in a row; ends when it stays below `exit_threshold` for `exit_clips`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PromptConfig {
    pub text: String,
    #[serde(default = "default_prompt_threshold")]
    pub threshold: f32,
    /// Defaults to `threshold − 0.05` (hysteresis).
    pub exit_threshold: Option<f32>,
    #[serde(default = "default_one")]
    pub enter_clips: u32,
    #[serde(default = "default_two")]
    pub exit_clips: u32,
}

fn default_prompt_threshold() -> f32 {
    0.75
}
fn default_one() -> u32 {
    1
}
fn default_two() -> u32 {
    2
}

impl PromptConfig {
    pub fn exit(&self) -> f32 {
        self.exit_threshold.unwrap_or(self.threshold - 0.05)
    }
}

fn default_sample_fps() -> f64 {
    2.0
}
fn default_clip_seconds() -> f64 {
    4.0
}
fn default_true() -> bool {
    true
}

/// "Label L present with score ≥ s in ≥ n frames of a clip" opens an alert; it ends after the label has been
/// absent for `end_after_seconds` of stream time.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// A COCO label, or `vehicle` (car, truck, bus, motorcycle).
    pub label: String,
    #[serde(default = "default_min_score")]
    pub min_score: f32,
    #[serde(default = "default_min_frames")]
    pub min_frames: usize,
    #[serde(default = "default_end_after")]
    pub end_after_seconds: f64,
    /// After an alert ends, no new alert for this rule starts for this many seconds.
    #[serde(default)]
    pub cooldown_seconds: f64,
    /// A frame counts only with at least this many objects (e.g. 3 = "a group").
    #[serde(default = "default_min_count")]
    pub min_count: usize,
    /// Names of `[[cameras.zones]]`: an object counts only when its ground point (bottom centre of its box) is
    /// inside one of them. Empty = anywhere in the frame.
    #[serde(default)]
    pub zones: Vec<String>,
    /// `alert` (act on it) or `detection` (for the record), as Frigate's review items.
    #[serde(default)]
    pub severity: Severity,
    /// Loitering: an object counts only after it has been tracked (in the zones, if any) for this long. 0 = at once.
    #[serde(default)]
    pub dwell_seconds: f64,
    /// Weekly windows in which the rule is active, in the camera's `timezone`: `"mon-fri 18:00-07:00"`,
    /// `"sat,sun 00:00-24:00"`, `"daily 22:00-06:00"`. Empty = always.
    #[serde(default)]
    pub schedule: Vec<String>,
    /// `person` rules only: count a person only in this posture (`standing`, `sitting`, `lying` — "person down").
    /// Runs the pose model on this camera's frames that have people.
    #[serde(default)]
    pub posture: Option<Posture>,
}

/// How much a rule's alerts matter, carried in the alert payload.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    #[default]
    Alert,
    Detection,
}

/// A named polygon in normalized image coordinates (0..1, origin top left).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ZoneConfig {
    pub name: String,
    /// At least three `[x, y]` corners, in order.
    pub points: Vec<[f32; 2]>,
}

fn default_min_count() -> usize {
    1
}

fn default_min_score() -> f32 {
    0.5
}
fn default_min_frames() -> usize {
    2
}
fn default_end_after() -> f64 {
    10.0
}

impl RuleConfig {
    /// The rule's name in topics and commands: its label, or `<label>_<posture>` (`person_lying`), so that a
    /// "person down" rule and a plain person rule on one camera have their own count topic and switch.
    pub fn name(&self) -> String {
        match self.posture {
            Some(p) => format!("{}_{}", self.label, p.as_str()),
            None => self.label.clone(),
        }
    }

    pub fn with_label(label: &str) -> Self {
        Self {
            label: label.into(),
            min_score: default_min_score(),
            min_frames: default_min_frames(),
            end_after_seconds: default_end_after(),
            cooldown_seconds: 0.0,
            min_count: 1,
            zones: Vec::new(),
            severity: Severity::Alert,
            dwell_seconds: 0.0,
            schedule: Vec::new(),
            posture: None,
        }
    }
}

impl CameraConfig {
    /// Whether any rule needs the pose model.
    pub fn wants_pose(&self) -> bool {
        self.enabled && self.rules.iter().any(|r| r.posture.is_some())
    }

    /// The rules in force: the configured ones, or the defaults when none are given.
    pub fn effective_rules(&self) -> Vec<RuleConfig> {
        if self.rules.is_empty() {
            vec![
                RuleConfig::with_label("person"),
                RuleConfig::with_label(VEHICLE_GROUP),
            ]
        } else {
            self.rules.clone()
        }
    }

    /// Names a `set` command may use for this camera's rules: rule labels and prompt texts.
    pub fn rule_names(&self) -> Vec<String> {
        self.effective_rules()
            .into_iter()
            .map(|r| r.name())
            .chain(self.prompts.iter().map(|p| p.text.clone()))
            .collect()
    }

    pub fn is_file(&self) -> bool {
        matches!(
            crate::ingest::source::SourceKind::parse(&self.url),
            Ok(crate::ingest::source::SourceKind::File(_))
        )
    }

    /// The frame-queue policy in force for this camera.
    pub fn drop_policy(&self, ingest: &IngestConfig) -> DropPolicy {
        ingest
            .drop_policy
            .unwrap_or(if self.is_file() && !self.realtime {
                DropPolicy::Block
            } else {
                DropPolicy::DropOldest
            })
    }
}

/// One validation problem: the key path and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// Why a config file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: {message}")]
    Load { file: PathBuf, message: String },
    #[error("{file}: {} problem(s):\n{}", problems.len(), problems.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid {
        file: PathBuf,
        problems: Vec<Problem>,
    },
}

impl Config {
    /// The inference plan on this machine for the enabled cameras (see `InferenceConfig::plan`).
    pub fn inference_plan(&self) -> WorkerPlan {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        self.inference
            .plan(cores, self.cameras.iter().filter(|c| c.enabled).count())
    }

    /// Reads `path` (TOML) with environment overrides, validates it and builds every stage from it without I/O
    /// (`dry_build`). Every problem found on the way — unknown keys, values of the wrong type, values out of range —
    /// is listed with its key path, and the error names the file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        Self::load_with_env(path, None)
    }

    /// `load`, with the environment overrides taken from `env` instead of the process environment (tests).
    fn load_with_env(
        path: &Path,
        env: Option<config::Map<String, String>>,
    ) -> Result<Self, ConfigError> {
        let (cfg, mut problems) = Self::read(path, env.clone())?;
        if let Some(cfg) = &cfg {
            // a value dropped as unreadable already has its problem; the default in its place adds only noise
            let unreadable: Vec<String> = problems.iter().map(|p| p.key.clone()).collect();
            problems.extend(
                cfg.validate()
                    .into_iter()
                    .filter(|p| !unreadable.iter().any(|k| related_keys(k, &p.key))),
            );
            if problems.is_empty() {
                if let Err(more) = cfg.build_stages() {
                    problems.extend(more);
                }
            }
        }
        match cfg {
            Some(cfg) if problems.is_empty() => Ok(cfg),
            _ => Err(ConfigError::Invalid {
                file: path.to_path_buf(),
                problems: name_env_vars(problems, env),
            }),
        }
    }

    /// Reads `path` with environment overrides without checking the values' ranges. Unknown keys and values of the
    /// wrong type are errors (all of them listed).
    pub fn load_unvalidated(path: &Path) -> Result<Self, ConfigError> {
        match Self::read(path, None)? {
            (Some(cfg), problems) if problems.is_empty() => Ok(cfg),
            (_, problems) => Err(ConfigError::Invalid {
                file: path.to_path_buf(),
                problems: name_env_vars(problems, None),
            }),
        }
    }

    /// The file merged with the environment, as far as it could be typed, and the problems met doing so.
    fn read(
        path: &Path,
        env: Option<config::Map<String, String>>,
    ) -> Result<(Option<Self>, Vec<Problem>), ConfigError> {
        let load_err = |message: String| ConfigError::Load {
            file: path.to_path_buf(),
            message,
        };
        if !path.is_file() {
            return Err(load_err("no such file".into()));
        }
        let built = config::Config::builder()
            .add_source(config::File::from(path).format(config::FileFormat::Toml))
            .add_source(environment(env))
            .build()
            .map_err(|e| load_err(e.to_string()))?;
        let root: config::Value = built
            .try_deserialize()
            .map_err(|e| load_err(e.to_string()))?;
        let mut problems = Vec::new();
        let Some(mut cfg) = lenient::deserialize::<Config>(root, &mut problems) else {
            if problems.is_empty() {
                problems.push(Problem {
                    key: "(top level)".into(),
                    message: "not a scenewatch config".into(),
                });
            }
            return Ok((None, problems));
        };
        if let Some(file) = cfg.mqtt.password_file.clone() {
            match std::fs::read_to_string(&file) {
                Ok(secret) => {
                    cfg.mqtt.password = Some(Secret::new(
                        secret.trim_end_matches(['\n', '\r']).to_string(),
                    ))
                }
                Err(e) => problems.push(Problem {
                    key: "mqtt.password_file".into(),
                    message: format!("cannot read {}: {e}", file.display()),
                }),
            }
        }
        let base = path.parent().unwrap_or(Path::new("."));
        for p in [
            cfg.spool.path.as_mut(),
            cfg.media.dir.as_mut(),
            cfg.mqtt.ca_file.as_mut(),
            cfg.mqtt.client_cert.as_mut(),
            cfg.mqtt.client_key.as_mut(),
        ]
        .into_iter()
        .flatten()
        {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        // Relative model paths are relative to the config file, so a config works from any working directory.
        if cfg.models.dir.is_relative() {
            let candidate = base.join(&cfg.models.dir);
            if candidate.exists() || !cfg.models.dir.exists() {
                cfg.models.dir = candidate;
            }
        }
        Ok((Some(cfg), problems))
    }

    /// Every problem in the config, each with its key path. Empty = valid.
    ///
    /// Every number has a finite range: NaN and infinities (`inf` in TOML, `nan` from the environment) fail each
    /// check, and the upper bounds keep every duration, size and count that `run` derives far from overflowing.
    pub fn validate(&self) -> Vec<Problem> {
        let mut c = Checks::default();
        let m = &self.mqtt;
        if m.host.trim().is_empty() {
            c.bad("mqtt.host", "must not be empty");
        }
        c.range("mqtt.port", m.port, 1, u16::MAX);
        if m.client_id.is_empty() {
            c.bad("mqtt.client_id", "must not be empty");
        }
        if !valid_topic_level_path(&m.topic_prefix) {
            c.bad(
                "mqtt.topic_prefix",
                "must be non-empty topic levels without '+', '#' or empty levels",
            );
        }
        c.range("mqtt.outbox_capacity", m.outbox_capacity, 16, 1_000_000);
        c.above("mqtt.reconnect_max_secs", m.reconnect_max_secs, 0.0, 3600.0);
        c.range("mqtt.keep_alive_secs", m.keep_alive_secs, 5, 3600);
        if m.username.is_none() && m.password.is_some() {
            c.bad("mqtt.password", "is set but mqtt.username is not");
        }
        if m.client_cert.is_some() != m.client_key.is_some() {
            c.bad(
                "mqtt.client_cert",
                "client_cert and client_key must be given together",
            );
        }
        if !m.tls && (m.ca_file.is_some() || m.client_cert.is_some()) {
            c.bad(
                "mqtt.tls",
                "ca_file/client_cert are set but tls = false (set tls = true, usually with port 8883)",
            );
        }
        if !valid_topic_level_path(&self.homeassistant.discovery_prefix) {
            c.bad(
                "homeassistant.discovery_prefix",
                "must be non-empty topic levels without '+', '#' or empty levels",
            );
        }
        if let Some(l) = &self.metrics.listen {
            if l.parse::<std::net::SocketAddr>().is_err() {
                c.bad(
                    "metrics.listen",
                    "must be host:port with an IP address, e.g. 127.0.0.1:9464",
                );
            }
        }
        c.above(
            "summaries.period_minutes",
            self.summaries.period_minutes,
            0.0,
            1440.0,
        );
        let media = &self.media;
        c.range("media.jpeg_quality", media.jpeg_quality, 1, 100);
        c.range("media.clip_jpeg_quality", media.clip_jpeg_quality, 1, 100);
        c.above("media.retain_days", media.retain_days, 0.0, 3650.0);
        c.above("media.max_mb", media.max_mb, 0.0, 10_485_760.0);
        c.range(
            "media.clip_pre_roll_seconds",
            media.clip_pre_roll_seconds,
            0.0,
            60.0,
        );
        c.range(
            "media.clip_post_roll_seconds",
            media.clip_post_roll_seconds,
            0.0,
            60.0,
        );
        c.range(
            "media.clip_max_seconds",
            media.clip_max_seconds,
            5.0,
            3600.0,
        );
        c.range("media.clip_fps", media.clip_fps, 1, 30);
        if !(64..=3840).contains(&media.clip_width) || media.clip_width % 2 != 0 {
            c.bad("media.clip_width", "must be an even number in 64..=3840");
        }
        c.range("spool.max_mb", self.spool.max_mb, 0.01, 1_048_576.0);
        let ingest = &self.ingest;
        c.range("ingest.frame_queue", ingest.frame_queue, 1, 4096);
        c.range("ingest.clip_queue", ingest.clip_queue, 1, 1024);
        c.range("ingest.watchdog_secs", ingest.watchdog_secs, 1.0, 3600.0);
        c.range(
            "ingest.startup_timeout_secs",
            ingest.startup_timeout_secs,
            1.0,
            3600.0,
        );
        c.range("ingest.retry_min_secs", ingest.retry_min_secs, 0.1, 600.0);
        if !(ingest.retry_max_secs >= ingest.retry_min_secs && ingest.retry_max_secs <= 3600.0) {
            c.bad(
                "ingest.retry_max_secs",
                "must be in ingest.retry_min_secs..=3600",
            );
        }
        let inf = &self.inference;
        c.range("inference.encoder_stride", inf.encoder_stride, 1, 16);
        if !(128..=1024).contains(&inf.pose_input) || inf.pose_input % 32 != 0 {
            c.bad(
                "inference.pose_input",
                "must be a multiple of 32 in 128..=1024",
            );
        }
        if inf.workers > 64 {
            c.bad("inference.workers", "must be in 0..=64 (0 = auto)");
        }
        if inf.intra_threads > 256 {
            c.bad("inference.intra_threads", "must be in 0..=256 (0 = auto)");
        }
        c.range(
            "inference.detector_threshold",
            inf.detector_threshold,
            0.05,
            0.99,
        );
        c.range("inference.nms_iou", inf.nms_iou, 0.1, 0.95);
        let l = &self.language;
        c.range("language.top_k", l.top_k, 1, 1000);
        c.range("language.temperature", l.temperature, 0.1, 100.0);
        c.range("language.alpha", l.alpha, 0.0, 1.0);
        for (k, w) in [
            ("w_classifier", l.w_classifier),
            ("w_detections", l.w_detections),
            ("w_empty", l.w_empty),
        ] {
            c.range(format!("language.{k}"), w, 0.0, 10.0);
        }
        for (k, t) in [
            ("label_template", &l.label_template),
            ("prompt_template", &l.prompt_template),
        ] {
            if !t.contains("{}") {
                c.bad(
                    format!("language.{k}"),
                    "must contain {} where the text goes",
                );
            }
        }
        c.range(
            "shutdown.drain_timeout_secs",
            self.shutdown.drain_timeout_secs,
            0.0,
            3600.0,
        );
        if self.cameras.is_empty() {
            c.bad("cameras", "at least one [[cameras]] entry is needed");
        }
        let mut names = HashSet::new();
        for (i, cam) in self.cameras.iter().enumerate() {
            let k = |field: &str| format!("cameras[{i}].{field}");
            if !valid_camera_name(&cam.name) {
                c.bad(
                    k("name"),
                    "must match [a-z0-9_-]+ (it is used in MQTT topics)",
                );
            } else if !names.insert(cam.name.clone()) {
                c.bad(k("name"), format!("duplicate camera name '{}'", cam.name));
            }
            match crate::ingest::source::SourceKind::parse(&cam.url) {
                Err(e) => c.bad(k("url"), e),
                Ok(kind) if cam.looping && kind.is_live() => {
                    c.bad(k("loop"), "applies to files only")
                }
                Ok(_) => {}
            }
            c.range(k("sample_fps"), cam.sample_fps, 0.01, 60.0);
            if !(0.1..=600.0).contains(&cam.clip_seconds) {
                c.bad(k("clip_seconds"), "must be in 0.1..=600");
            } else if (0.01..=60.0).contains(&cam.sample_fps)
                && cam.sample_fps * cam.clip_seconds > 256.0
            {
                c.bad(
                    k("clip_seconds"),
                    "sample_fps * clip_seconds must be <= 256 frames per clip",
                );
            }
            if !(cam.clip_overlap_seconds >= 0.0 && cam.clip_overlap_seconds < cam.clip_seconds) {
                c.bad(k("clip_overlap_seconds"), "must be >= 0 and < clip_seconds");
            }
            c.above(k("motion_min_area"), cam.motion_min_area, 0.0, 1.0);
            for (j, p) in cam.prompts.iter().enumerate() {
                let pk = |field: &str| format!("cameras[{i}].prompts[{j}].{field}");
                if p.text.trim().is_empty() || p.text.len() > 300 {
                    c.bad(pk("text"), "must be 1..300 characters");
                }
                if !(0.0..=1.0).contains(&p.threshold) {
                    c.bad(pk("threshold"), "must be in 0..=1 (calibrated score)");
                }
                if !(0.0..=1.0).contains(&p.exit()) || p.exit() > p.threshold {
                    c.bad(pk("exit_threshold"), "must be in 0..=threshold");
                }
                c.range(pk("enter_clips"), p.enter_clips, 1, 1000);
                c.range(pk("exit_clips"), p.exit_clips, 1, 1000);
            }
            let mut zone_names = HashSet::new();
            for (j, z) in cam.zones.iter().enumerate() {
                let zk = |field: &str| format!("cameras[{i}].zones[{j}].{field}");
                if !valid_camera_name(&z.name) {
                    c.bad(zk("name"), "must match [a-z0-9_-]+");
                } else if !zone_names.insert(z.name.clone()) {
                    c.bad(zk("name"), format!("duplicate zone name '{}'", z.name));
                }
                if z.points.len() < 3 {
                    c.bad(zk("points"), "a zone needs at least 3 [x, y] points");
                } else if z.points.len() > 100 {
                    c.bad(zk("points"), "a zone has at most 100 points");
                }
                if z.points
                    .iter()
                    .any(|p| !(0.0..=1.0).contains(&p[0]) || !(0.0..=1.0).contains(&p[1]))
                {
                    c.bad(
                        zk("points"),
                        "coordinates are normalized: 0..=1 (x from the left, y from the top)",
                    );
                }
            }
            let mut rule_names = HashSet::new();
            for (j, rule) in cam.rules.iter().enumerate() {
                let rk = |field: &str| format!("cameras[{i}].rules[{j}].{field}");
                if !rule_names.insert(rule.name()) {
                    c.bad(
                        rk("label"),
                        format!(
                            "a second '{}' rule on this camera (its count topic and switch would clash); merge them, or give one a posture",
                            rule.name()
                        ),
                    );
                }
                if rule.label != VEHICLE_GROUP && coco_label_index(&rule.label).is_none() {
                    c.bad(
                        rk("label"),
                        format!(
                            "unknown label '{}': use a COCO label (person, car, dog, …) or 'vehicle'",
                            rule.label
                        ),
                    );
                }
                c.range(rk("min_score"), rule.min_score, 0.0, 1.0);
                // a clip holds at most 256 sampled frames (see clip_seconds)
                c.range(rk("min_frames"), rule.min_frames, 1, 256);
                c.range(
                    rk("end_after_seconds"),
                    rule.end_after_seconds,
                    0.0,
                    86_400.0,
                );
                c.range(rk("cooldown_seconds"), rule.cooldown_seconds, 0.0, 86_400.0);
                c.range(rk("dwell_seconds"), rule.dwell_seconds, 0.0, 86_400.0);
                c.range(rk("min_count"), rule.min_count, 1, 1000);
                for z in &rule.zones {
                    if !cam.zones.iter().any(|cz| &cz.name == z) {
                        c.bad(
                            rk("zones"),
                            format!("no [[cameras.zones]] named '{z}' on this camera"),
                        );
                    }
                }
                if rule.posture.is_some() && rule.label != "person" {
                    c.bad(rk("posture"), "applies to label = \"person\" only");
                }
                // a bad zone name is reported once, under cameras[i].timezone
                if let Err((Some(w), e)) =
                    crate::events::schedule::Schedule::parse(&cam.timezone, &rule.schedule)
                {
                    c.bad(rk(&format!("schedule[{w}]")), e);
                }
            }
            if let Err(e) = crate::events::schedule::parse_tz(&cam.timezone) {
                c.bad(k("timezone"), e);
            }
        }
        c.out
    }

    /// Builds what `run` derives from the config — durations, backoff, queues, samplers, clip assemblers, recorder
    /// settings, retention, MQTT options, the rule and prompt engine with its schedules and zones — without opening
    /// a file, a socket or a pipeline. The config is validated first; a value `validate` accepted and a stage still
    /// cannot use comes back as a problem naming its key, never as a panic.
    pub fn dry_build(&self) -> Result<(), Vec<Problem>> {
        let problems = self.validate();
        if !problems.is_empty() {
            return Err(problems);
        }
        self.build_stages()
    }

    /// The conversions of `dry_build`, for a config that passed `validate`.
    fn build_stages(&self) -> Result<(), Vec<Problem>> {
        let mut out = Vec::new();
        let mut keep = |r: Result<(), Problem>| {
            if let Err(p) = r {
                out.push(p)
            }
        };
        // MQTT (the TLS files are read at start-up, so here the options are built without TLS)
        let topics = crate::publish::topics::Topics::new(&self.mqtt.topic_prefix);
        let plain = MqttConfig {
            tls: false,
            ..self.mqtt.clone()
        };
        keep(
            crate::publish::mqtt::options(&plain, &topics)
                .map(drop)
                .map_err(|e| Problem::new("mqtt", e)),
        );
        let _ = crate::publish::discovery::node_id(&self.mqtt.client_id);
        keep(self.mqtt.reconnect_max().map(drop));
        let (out_tx, _out_rx) = tokio::sync::mpsc::channel::<()>(self.mqtt.outbox_capacity.max(16));
        drop(out_tx);
        keep(self.shutdown.drain_timeout().and_then(|d| {
            // the publisher's deadline is `now + drain_timeout`
            std::time::Instant::now()
                .checked_add(d)
                .map(drop)
                .ok_or_else(|| {
                    Problem::new("shutdown.drain_timeout_secs", "is too long to wait for")
                })
        }));
        // spool, media retention
        let _ = self.spool.max_bytes();
        keep(self.media.retention().map(drop));
        // ingest: watchdog, reconnect backoff over every attempt, the shared clip queue
        keep(self.ingest.watchdog().map(drop));
        keep(self.ingest.retry_bounds().map(|(min, max)| {
            for attempt in 0..=31 {
                for jitter in [0.0, 1.0] {
                    crate::ingest::backoff_delay(attempt, min, max, jitter);
                }
            }
        }));
        let _ = crossbeam_channel::bounded::<()>(self.ingest.clip_queue);
        let _ = self.inference_plan();
        // per camera (disabled ones too: a reload may enable them): frame queue, sampler, clips, recorder
        for (i, cam) in self.cameras.iter().enumerate() {
            let k = |field: &str| format!("cameras[{i}].{field}");
            let _ =
                crate::queue::bounded::<()>(self.ingest.frame_queue, cam.drop_policy(&self.ingest));
            keep(seconds(&k("sample_fps"), 1.0 / cam.sample_fps).map(|_| {
                crate::ingest::sampler::Sampler::new(cam.sample_fps);
            }));
            keep(
                seconds(&k("clip_seconds"), cam.clip_seconds)
                    .and(seconds(
                        &k("clip_overlap_seconds"),
                        cam.clip_overlap_seconds,
                    ))
                    .map(|_| {
                        crate::clip::ClipAssembler::new(cam.clip_seconds, cam.clip_overlap_seconds);
                    }),
            );
            keep(self.media.recorder_config(cam, &self.ingest).map(drop));
            let _ = cam.motion();
            let _ = cam.rule_names();
            for (j, rule) in cam.effective_rules().iter().enumerate() {
                keep(
                    crate::events::schedule::Schedule::parse(&cam.timezone, &rule.schedule)
                        .map(drop)
                        .map_err(|(w, e)| match w {
                            Some(w) => {
                                Problem::new(format!("cameras[{i}].rules[{j}].schedule[{w}]"), e)
                            }
                            None => Problem::new(k("timezone"), e),
                        }),
                );
            }
        }
        // the events stage: rule states (zones, schedules, trackers), prompt hysteresis, period summaries
        let period = self.summaries.period_minutes * 60.0;
        let engine = crate::events::Engine::new(&self.cameras, Box::new(String::new))
            .with_summaries(self.summaries.enabled.then_some(period));
        drop(engine);
        for cam in &self.cameras {
            let _ = crate::events::summary::SummaryState::new(&cam.name, period);
        }
        if out.is_empty() {
            Ok(())
        } else {
            Err(out)
        }
    }
}

/// `SCENEWATCH__SECTION__KEY` overrides from `env`, or from the process environment when `None`.
///
/// No `try_parsing`: it turns a value that looks like a number or a boolean into one, and a string field then got
/// it back as text, changed (a password `0123` arrived as `123`, a client id `TRUE` as `true`). Values stay strings;
/// number and boolean fields parse theirs (see `lenient`).
fn environment(env: Option<config::Map<String, String>>) -> config::Environment {
    config::Environment::with_prefix("SCENEWATCH")
        .prefix_separator("__")
        .separator("__")
        .source(env)
}

/// Adds the environment variable to each problem whose key one set, so the culprit is found outside the file.
fn name_env_vars(
    mut problems: Vec<Problem>,
    env: Option<config::Map<String, String>>,
) -> Vec<Problem> {
    use config::Source;
    let Ok(set) = environment(env).collect() else {
        return problems;
    };
    for p in &mut problems {
        if set.contains_key(&p.key) {
            let var = format!("SCENEWATCH__{}", p.key.to_uppercase().replace('.', "__"));
            p.message = format!("{} (from {var})", p.message);
        }
    }
    problems
}

/// Collects validation problems.
#[derive(Default)]
struct Checks {
    out: Vec<Problem>,
}

impl Checks {
    fn bad(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.out.push(Problem::new(key, message));
    }

    /// `lo <= x <= hi`; NaN fails.
    fn range<T: PartialOrd + fmt::Display>(&mut self, key: impl Into<String>, x: T, lo: T, hi: T) {
        if !(lo <= x && x <= hi) {
            self.bad(key, format!("must be in {lo}..={hi}"));
        }
    }

    /// `lo < x <= hi`; NaN fails.
    fn above<T: PartialOrd + fmt::Display>(&mut self, key: impl Into<String>, x: T, lo: T, hi: T) {
        if !(lo < x && x <= hi) {
            self.bad(key, format!("must be > {lo} and <= {hi}"));
        }
    }
}

/// Whether a problem under one key makes a problem under the other redundant (same key, or one inside the other).
fn related_keys(a: &str, b: &str) -> bool {
    let inside = |outer: &str, inner: &str| {
        inner
            .strip_prefix(outer)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
    };
    inside(a, b) || inside(b, a)
}

/// `secs` as a Duration, or a problem naming `key` where a Duration cannot hold it (NaN, negative, infinite, too
/// large). `validate` keeps every configured time far inside; this is the second guard, used where `run` converts.
pub fn seconds(key: &str, secs: f64) -> Result<Duration, Problem> {
    Duration::try_from_secs_f64(secs)
        .map_err(|e| Problem::new(key, format!("{secs} s is not a usable duration ({e})")))
}

/// Megabytes (MiB) as bytes, saturating; 0 for NaN and negatives.
fn mb_to_bytes(mb: f64) -> u64 {
    (mb.max(0.0) * 1024.0 * 1024.0) as u64
}

impl Problem {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }
}

impl ShutdownConfig {
    /// The longest wait for the broker's acknowledgements at shutdown.
    pub fn drain_timeout(&self) -> Result<Duration, Problem> {
        seconds("shutdown.drain_timeout_secs", self.drain_timeout_secs)
    }
}

impl MqttConfig {
    /// Cap of the reconnect backoff (at least 0.25 s, where the backoff starts).
    pub fn reconnect_max(&self) -> Result<Duration, Problem> {
        seconds("mqtt.reconnect_max_secs", self.reconnect_max_secs.max(0.25))
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
}

impl MediaConfig {
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
        })
    }
}

pub fn valid_camera_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

fn valid_topic_level_path(prefix: &str) -> bool {
    !prefix.is_empty()
        && !prefix.contains(['+', '#', '\0'])
        && prefix.split('/').all(|level| !level.is_empty())
}

/// Deserialisation of the merged file + environment values that finds every problem in one run.
///
/// The `config` crate's own deserialiser stops at the first error, and `deny_unknown_fields` makes the first unknown
/// key hide everything after it. This one sees each struct's field list: unknown keys are noted (with a "did you
/// mean") and skipped, so the typed structs keep `deny_unknown_fields` for every other reader. A value of the wrong
/// type is noted with its key path and dropped (its default applies, or a placeholder when the key is required), and
/// the whole config is read again, so one bad value does not hide the next.
///
/// Strings stay strings: an environment value reaches a string field byte for byte (`0123`, `TRUE`, `1e5`, ``),
/// while number and boolean fields parse it (`SCENEWATCH__MQTT__PORT=1884`). TOML values keep their types: a number
/// where a string belongs is an error, not silently turned into text.
mod lenient {
    use std::cell::RefCell;
    use std::fmt;

    use config::{Map, Value, ValueKind};
    use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, Visitor};

    use super::Problem;

    #[derive(Debug, Clone, PartialEq)]
    enum Seg {
        Key(String),
        Index(usize),
    }

    fn render(path: &[Seg]) -> String {
        let mut s = String::new();
        for seg in path {
            match seg {
                Seg::Key(k) => {
                    if !s.is_empty() {
                        s.push('.');
                    }
                    s.push_str(k);
                }
                Seg::Index(i) => s.push_str(&format!("[{i}]")),
            }
        }
        if s.is_empty() {
            "(top level)".into()
        } else {
            s
        }
    }

    /// A deserialisation error; `path` is filled in by the innermost node that sees it.
    #[derive(Debug)]
    pub struct Error {
        path: Option<Vec<Seg>>,
        message: String,
        /// A required field that is absent (its name, below `path`).
        missing: Option<String>,
    }

    impl std::error::Error for Error {}

    impl fmt::Display for Error {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(&self.message)
        }
    }

    impl de::Error for Error {
        fn custom<T: fmt::Display>(msg: T) -> Self {
            Self {
                path: None,
                message: msg.to_string(),
                missing: None,
            }
        }

        fn missing_field(field: &'static str) -> Self {
            Self {
                path: None,
                message: "is required".into(),
                missing: Some(field.into()),
            }
        }
    }

    impl Error {
        fn at(mut self, path: &[Seg]) -> Self {
            if self.path.is_none() {
                let mut p = path.to_vec();
                if let Some(field) = &self.missing {
                    p.push(Seg::Key(field.clone()));
                }
                self.path = Some(p);
            }
            self
        }
    }

    fn describe(v: &ValueKind) -> String {
        match v {
            ValueKind::Nil => "nothing".into(),
            ValueKind::Boolean(b) => format!("boolean {b}"),
            ValueKind::I64(i) => format!("integer {i}"),
            ValueKind::I128(i) => format!("integer {i}"),
            ValueKind::U64(i) => format!("integer {i}"),
            ValueKind::U128(i) => format!("integer {i}"),
            ValueKind::Float(x) => format!("number {x}"),
            ValueKind::String(s) => format!("string {s:?}"),
            ValueKind::Table(_) => "a table".into(),
            ValueKind::Array(_) => "a list".into(),
        }
    }

    /// Edit distance counting a swap of two neighbours as one edit (optimal string alignment), for "did you mean".
    fn distance(a: &str, b: &str) -> usize {
        let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
        let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
        for (i, row) in d.iter_mut().enumerate() {
            row[0] = i;
        }
        for (j, cell) in d[0].iter_mut().enumerate() {
            *cell = j;
        }
        for i in 1..=a.len() {
            for j in 1..=b.len() {
                let cost = usize::from(a[i - 1] != b[j - 1]);
                let mut best = (d[i - 1][j] + 1)
                    .min(d[i][j - 1] + 1)
                    .min(d[i - 1][j - 1] + cost);
                if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                    best = best.min(d[i - 2][j - 2] + 1);
                }
                d[i][j] = best;
            }
        }
        d[a.len()][b.len()]
    }

    /// The closest of `known` to `word`, when it is close enough to be a typo.
    pub fn suggest<'k>(word: &str, known: &[&'k str]) -> Option<&'k str> {
        known
            .iter()
            .map(|k| (distance(word, k), *k))
            .filter(|(d, k)| *d <= (k.chars().count().max(word.chars().count()) / 4).max(1))
            .min_by_key(|(d, _)| *d)
            .map(|(_, k)| k)
    }

    fn unknown_key(key: &str, known: &[&str]) -> String {
        match suggest(key, known) {
            Some(s) => format!("unknown key (did you mean `{s}`?)"),
            None => format!("unknown key (known here: {})", known.join(", ")),
        }
    }

    struct Node<'a> {
        value: Value,
        path: Vec<Seg>,
        unknown: &'a RefCell<Vec<Problem>>,
    }

    impl Node<'_> {
        fn wrong(&self, expected: &str) -> Error {
            Error {
                path: Some(self.path.clone()),
                message: format!("expected {expected}, found {}", describe(&self.value.kind)),
                missing: None,
            }
        }

        fn integer<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            let r = match &self.value.kind {
                ValueKind::I64(i) => visitor.visit_i64(*i),
                ValueKind::U64(u) => visitor.visit_u64(*u),
                ValueKind::I128(i) => visitor.visit_i128(*i),
                ValueKind::U128(u) => visitor.visit_u128(*u),
                ValueKind::String(s) => match (s.trim().parse::<i64>(), s.trim().parse::<u64>()) {
                    (Ok(i), _) => visitor.visit_i64(i),
                    (_, Ok(u)) => visitor.visit_u64(u),
                    _ => return Err(self.wrong("a whole number")),
                },
                _ => return Err(self.wrong("a whole number")),
            };
            r.map_err(|e: Error| e.at(&self.path))
        }

        fn float<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            let x = match &self.value.kind {
                ValueKind::Float(x) => *x,
                ValueKind::I64(i) => *i as f64,
                ValueKind::U64(u) => *u as f64,
                ValueKind::I128(i) => *i as f64,
                ValueKind::U128(u) => *u as f64,
                ValueKind::String(s) => match s.trim().parse::<f64>() {
                    Ok(x) => x,
                    Err(_) => return Err(self.wrong("a number")),
                },
                _ => return Err(self.wrong("a number")),
            };
            visitor.visit_f64(x).map_err(|e: Error| e.at(&self.path))
        }
    }

    macro_rules! integers {
        ($($m:ident)*) => {$(
            fn $m<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
                self.integer(visitor)
            }
        )*};
    }

    impl<'de> de::Deserializer<'de> for Node<'_> {
        type Error = Error;

        fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            let Node {
                value,
                path,
                unknown,
            } = self;
            let r = match value.kind {
                ValueKind::Nil => visitor.visit_unit(),
                ValueKind::Boolean(b) => visitor.visit_bool(b),
                ValueKind::I64(i) => visitor.visit_i64(i),
                ValueKind::I128(i) => visitor.visit_i128(i),
                ValueKind::U64(u) => visitor.visit_u64(u),
                ValueKind::U128(u) => visitor.visit_u128(u),
                ValueKind::Float(x) => visitor.visit_f64(x),
                ValueKind::String(s) => visitor.visit_string(s),
                ValueKind::Array(items) => return seq(items, path, unknown, visitor),
                ValueKind::Table(t) => visitor.visit_map(Entries::new(t, &path, unknown)),
            };
            r.map_err(|e| e.at(&path))
        }

        fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            let b = match &self.value.kind {
                ValueKind::Boolean(b) => *b,
                // from the environment: `TRUE`, `false`, `1`, `off`…
                ValueKind::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                    "true" | "yes" | "on" | "1" => true,
                    "false" | "no" | "off" | "0" => false,
                    _ => return Err(self.wrong("true or false")),
                },
                _ => return Err(self.wrong("true or false")),
            };
            visitor.visit_bool(b).map_err(|e: Error| e.at(&self.path))
        }

        integers! {
            deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
            deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
        }

        fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            self.float(visitor)
        }

        fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            self.float(visitor)
        }

        fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            self.deserialize_string(visitor)
        }

        fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            self.deserialize_string(visitor)
        }

        fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            match self.value.kind {
                ValueKind::String(s) => {
                    visitor.visit_string(s).map_err(|e: Error| e.at(&self.path))
                }
                _ => Err(self.wrong("a string (in quotes)")),
            }
        }

        fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            self.deserialize_any(visitor)
        }

        fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            self.deserialize_any(visitor)
        }

        fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            match self.value.kind {
                ValueKind::Nil => visitor.visit_none().map_err(|e: Error| e.at(&self.path)),
                _ => visitor.visit_some(self),
            }
        }

        fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            match self.value.kind {
                ValueKind::Nil => visitor.visit_unit().map_err(|e: Error| e.at(&self.path)),
                _ => Err(self.wrong("nothing")),
            }
        }

        fn deserialize_unit_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            visitor: V,
        ) -> Result<V::Value, Error> {
            self.deserialize_unit(visitor)
        }

        fn deserialize_newtype_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            visitor: V,
        ) -> Result<V::Value, Error> {
            visitor.visit_newtype_struct(self)
        }

        fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            match self.value.kind {
                ValueKind::Array(items) => seq(items, self.path, self.unknown, visitor),
                _ => Err(self.wrong("a list")),
            }
        }

        fn deserialize_tuple<V: Visitor<'de>>(
            self,
            _len: usize,
            visitor: V,
        ) -> Result<V::Value, Error> {
            self.deserialize_seq(visitor)
        }

        fn deserialize_tuple_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            _len: usize,
            visitor: V,
        ) -> Result<V::Value, Error> {
            self.deserialize_seq(visitor)
        }

        fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            match self.value.kind {
                ValueKind::Table(t) => visitor
                    .visit_map(Entries::new(t, &self.path, self.unknown))
                    .map_err(|e: Error| e.at(&self.path)),
                _ => Err(self.wrong("a table")),
            }
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            visitor: V,
        ) -> Result<V::Value, Error> {
            let mut t = match self.value.kind {
                ValueKind::Table(t) => t,
                _ => return Err(self.wrong("a table")),
            };
            let mut stray: Vec<String> = t
                .keys()
                .filter(|k| !fields.contains(&k.as_str()))
                .cloned()
                .collect();
            stray.sort();
            for k in stray {
                t.remove(&k);
                let mut path = self.path.clone();
                path.push(Seg::Key(k.clone()));
                self.unknown.borrow_mut().push(Problem {
                    key: render(&path),
                    message: unknown_key(&k, fields),
                });
            }
            visitor
                .visit_map(Entries::new(t, &self.path, self.unknown))
                .map_err(|e: Error| e.at(&self.path))
        }

        fn deserialize_enum<V: Visitor<'de>>(
            self,
            _name: &'static str,
            variants: &'static [&'static str],
            visitor: V,
        ) -> Result<V::Value, Error> {
            match &self.value.kind {
                ValueKind::String(s) if variants.contains(&s.as_str()) => {
                    let variant: de::value::StringDeserializer<Error> =
                        s.clone().into_deserializer();
                    visitor
                        .visit_enum(variant)
                        .map_err(|e: Error| e.at(&self.path))
                }
                ValueKind::String(s) => Err(Error {
                    path: Some(self.path.clone()),
                    message: match suggest(s, variants) {
                        Some(m) => format!("unknown value {s:?} (did you mean \"{m}\"?)"),
                        None => format!("unknown value {s:?}: use one of {}", variants.join(", ")),
                    },
                    missing: None,
                }),
                _ => Err(self.wrong(&format!("one of {}", variants.join(", ")))),
            }
        }

        fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            self.deserialize_string(visitor)
        }

        fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            visitor.visit_unit()
        }
    }

    fn seq<'de, V: Visitor<'de>>(
        items: Vec<Value>,
        path: Vec<Seg>,
        unknown: &RefCell<Vec<Problem>>,
        visitor: V,
    ) -> Result<V::Value, Error> {
        let total = items.len();
        let mut access = Items {
            items: items.into_iter(),
            index: 0,
            path: &path,
            unknown,
        };
        let v = visitor.visit_seq(&mut access);
        let (taken, left) = (access.index, access.items.as_slice().len());
        let v = v.map_err(|e| e.at(&path))?;
        if left > 0 {
            // a fixed-size item (an [x, y] point) given more values than it holds
            return Err(Error {
                path: Some(path),
                message: format!("expected {taken} values, found {total}"),
                missing: None,
            });
        }
        Ok(v)
    }

    struct Items<'p, 'a> {
        items: std::vec::IntoIter<Value>,
        index: usize,
        path: &'p [Seg],
        unknown: &'a RefCell<Vec<Problem>>,
    }

    impl<'de> de::SeqAccess<'de> for &mut Items<'_, '_> {
        type Error = Error;

        fn next_element_seed<T: DeserializeSeed<'de>>(
            &mut self,
            seed: T,
        ) -> Result<Option<T::Value>, Error> {
            let Some(value) = self.items.next() else {
                return Ok(None);
            };
            let mut path = self.path.to_vec();
            path.push(Seg::Index(self.index));
            self.index += 1;
            seed.deserialize(Node {
                value,
                path,
                unknown: self.unknown,
            })
            .map(Some)
        }

        fn size_hint(&self) -> Option<usize> {
            Some(self.items.len())
        }
    }

    struct Entries<'p, 'a> {
        entries: std::vec::IntoIter<(String, Value)>,
        pending: Option<(String, Value)>,
        path: &'p [Seg],
        unknown: &'a RefCell<Vec<Problem>>,
    }

    impl<'p, 'a> Entries<'p, 'a> {
        fn new(
            table: Map<String, Value>,
            path: &'p [Seg],
            unknown: &'a RefCell<Vec<Problem>>,
        ) -> Self {
            // sorted: the crate's map has no order, and problems should come out the same every run
            let mut entries: Vec<(String, Value)> = table.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Self {
                entries: entries.into_iter(),
                pending: None,
                path,
                unknown,
            }
        }
    }

    impl<'de> de::MapAccess<'de> for Entries<'_, '_> {
        type Error = Error;

        fn next_key_seed<K: DeserializeSeed<'de>>(
            &mut self,
            seed: K,
        ) -> Result<Option<K::Value>, Error> {
            let Some((key, value)) = self.entries.next() else {
                return Ok(None);
            };
            let name: de::value::StringDeserializer<Error> = key.clone().into_deserializer();
            let k = seed.deserialize(name)?;
            self.pending = Some((key, value));
            Ok(Some(k))
        }

        fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
            let Some((key, value)) = self.pending.take() else {
                return Err(de::Error::custom("a value without its key"));
            };
            let mut path = self.path.to_vec();
            path.push(Seg::Key(key));
            seed.deserialize(Node {
                value,
                path,
                unknown: self.unknown,
            })
        }

        fn size_hint(&self) -> Option<usize> {
            Some(self.entries.len())
        }
    }

    /// Values tried, in order, for a required key that is missing or unusable, so the rest can still be checked.
    /// Each type the schema requires (strings, lists) is among them; its problem is reported once, under its key.
    fn placeholder(n: usize) -> Option<ValueKind> {
        match n {
            0 => Some(ValueKind::String(String::new())),
            1 => Some(ValueKind::Array(Vec::new())),
            _ => None,
        }
    }

    fn slot<'v>(root: &'v mut Value, path: &[Seg]) -> Option<&'v mut Map<String, Value>> {
        let mut v = root;
        for seg in path {
            v = match (seg, &mut v.kind) {
                (Seg::Key(k), ValueKind::Table(t)) => t.get_mut(k)?,
                (Seg::Index(i), ValueKind::Array(a)) => a.get_mut(*i)?,
                _ => return None,
            };
        }
        match &mut v.kind {
            ValueKind::Table(t) => Some(t),
            _ => None,
        }
    }

    /// Splits `path` at its last key: the table that holds it, and the key.
    fn last_key(path: &[Seg]) -> Option<(&[Seg], &str)> {
        let i = path.iter().rposition(|s| matches!(s, Seg::Key(_)))?;
        match &path[i] {
            Seg::Key(k) => Some((&path[..i], k.as_str())),
            Seg::Index(_) => None,
        }
    }

    fn note(problems: &mut Vec<Problem>, p: Problem) {
        if !problems.contains(&p) {
            problems.push(p);
        }
    }

    /// Deserialises `root` as `T`, adding every problem met to `problems`. `None` when no `T` could be made even
    /// with the bad values dropped.
    pub fn deserialize<T: DeserializeOwned>(
        mut root: Value,
        problems: &mut Vec<Problem>,
    ) -> Option<T> {
        // required keys given a placeholder, and which placeholder
        let mut placed: Vec<(Vec<Seg>, usize)> = Vec::new();
        // each round drops one bad value or places one placeholder; the bound only stops a value nothing fixes
        for _ in 0..512 {
            let unknown = RefCell::new(Vec::new());
            let result = T::deserialize(Node {
                value: root.clone(),
                path: Vec::new(),
                unknown: &unknown,
            });
            for p in unknown.into_inner() {
                note(problems, p);
            }
            let e = match result {
                Ok(t) => return Some(t),
                Err(e) => e,
            };
            let path = e.path.clone().unwrap_or_default();
            let key = render(&path);
            // our own placeholder did not fit: try the next one, reporting nothing new
            if let Some(at) = placed.iter_mut().find(|(p, _)| path.starts_with(p)) {
                at.1 += 1;
                let (p, n) = at.clone();
                let (Some(kind), Some((parent, k))) = (placeholder(n), last_key(&p)) else {
                    return None;
                };
                slot(&mut root, parent)?.insert(k.to_string(), Value::new(None, kind));
                continue;
            }
            let reported = problems.iter().any(|p| {
                p.key == key
                    || p.key.starts_with(&format!("{key}."))
                    || p.key.starts_with(&format!("{key}["))
            });
            if e.missing.is_none() || !reported {
                note(
                    problems,
                    Problem {
                        key: key.clone(),
                        message: e.message,
                    },
                );
            }
            // drop the bad value where its key is (a bad item of a list drops the list)
            let (parent, k) = last_key(&path)?;
            let t = slot(&mut root, parent)?;
            if e.missing.is_some() {
                let cut = path[..=parent.len()].to_vec();
                placed.push((cut, 0));
                let kind = placeholder(0)?;
                t.insert(k.to_string(), Value::new(None, kind));
            } else if t.remove(k).is_none() {
                return None;
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> Result<Config, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let path = dir.path().join("c.toml");
        std::fs::write(&path, toml_text).map_err(|e| e.to_string())?;
        Config::load(&path).map_err(|e| e.to_string())
    }

    const MINIMAL: &str = r#"
        [[cameras]]
        name = "walkway"
        url = "file:///tmp/vtest.avi"
    "#;

    #[test]
    fn minimal_config_gets_documented_defaults() {
        let cfg = parse(MINIMAL).expect("valid");
        assert_eq!(cfg.mqtt.port, 1883);
        assert_eq!(cfg.mqtt.topic_prefix, "scenewatch");
        let cam = &cfg.cameras[0];
        assert_eq!(cam.sample_fps, 2.0);
        assert_eq!(cam.clip_seconds, 4.0);
        let rules = cam.effective_rules();
        assert_eq!(
            rules.iter().map(|r| r.label.as_str()).collect::<Vec<_>>(),
            ["person", "vehicle"]
        );
        assert_eq!(cam.drop_policy(&cfg.ingest), DropPolicy::Block);
    }

    #[test]
    fn auto_inference_plan_spreads_cameras_over_cores() {
        let auto = InferenceConfig::default();
        let plan = |cores, cams| {
            let p = auto.plan(cores, cams);
            (p.workers, p.threads)
        };
        // one camera keeps every core on one worker (its latency); many cameras get a worker per core
        assert_eq!(plan(2, 1), (1, 2));
        assert_eq!(plan(2, 13), (2, 1));
        assert_eq!(plan(16, 3), (3, 5));
        assert_eq!(plan(16, 40), (AUTO_MAX_WORKERS, 4));
        assert_eq!(plan(1, 8), (1, 1));
        assert_eq!(plan(4, 0), (1, 4));
        // explicit values win; an unset thread count still divides the cores among the workers
        let set = |workers, intra_threads| InferenceConfig {
            workers,
            intra_threads,
            ..InferenceConfig::default()
        };
        assert_eq!(
            set(3, 2).plan(2, 1),
            WorkerPlan {
                workers: 3,
                threads: 2
            }
        );
        assert_eq!(
            set(2, 0).plan(8, 1),
            WorkerPlan {
                workers: 2,
                threads: 4
            }
        );
    }

    #[test]
    fn every_problem_is_listed_with_its_key_path() {
        let err = parse(
            r#"
            [mqtt]
            topic_prefix = "a/+/b"
            [[cameras]]
            name = "ok"
            url = "file:///x.avi"
            [[cameras]]
            name = "Bad Name"
            url = "ftp://nope"
            sample_fps = 0.0
            [[cameras.rules]]
            label = "unicorn"
            min_score = 1.5
            "#,
        )
        .expect_err("invalid");
        for needle in [
            "mqtt.topic_prefix:",
            "cameras[1].name: must match",
            "cameras[1].url:",
            "cameras[1].sample_fps: must be in 0.01..=60",
            "cameras[1].rules[0].label: unknown label 'unicorn'",
            "cameras[1].rules[0].min_score: must be in 0..=1",
        ] {
            assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
        }
        assert!(err.contains("c.toml"), "error must name the file: {err}");
    }

    #[test]
    fn unknown_keys_are_errors_naming_the_key() {
        let err = parse(
            r#"
            [[cameras]]
            name = "walkway"
            url = "file:///tmp/vtest.avi"
            sample_fsp = 3.0
            "#,
        )
        .expect_err("unknown key");
        assert!(
            err.contains("cameras[0].sample_fsp: unknown key (did you mean `sample_fps`?)"),
            "{err}"
        );
        assert!(err.contains("c.toml"), "{err}");
    }

    #[test]
    fn unknown_keys_and_bad_types_do_not_hide_other_problems() {
        let err = parse(
            r#"
            colour = "red"
            [mqtt]
            port = "high"
            keep_alive_secs = 1
            [ingest]
            drop_policy = "drop_oldes"
            [[cameras]]
            name = "a"
            url = "test://"
            sample_fps = inf
            [[cameras.rules]]
            label = "person"
            min_score = "0.9x"
            cooldown_secs = 3
            [[cameras]]
            nme = "b"
            url = 5
            "#,
        )
        .expect_err("invalid");
        for needle in [
            "colour: unknown key",
            "mqtt.port: expected a whole number, found string \"high\"",
            "mqtt.keep_alive_secs: must be in 5..=3600",
            "ingest.drop_policy: unknown value \"drop_oldes\" (did you mean \"drop_oldest\"?)",
            "cameras[0].sample_fps: must be in 0.01..=60",
            "cameras[0].rules[0].min_score: expected a number, found string \"0.9x\"",
            "cameras[0].rules[0].cooldown_secs: unknown key (did you mean `cooldown_seconds`?)",
            "cameras[1].nme: unknown key (did you mean `name`?)",
            "cameras[1].name: is required",
            "cameras[1].url: expected a string (in quotes), found integer 5",
        ] {
            assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
        }
        // the placeholders and defaults put in place of unreadable values raise nothing of their own
        assert!(err.contains("c.toml: 10 problem(s):"), "{err}");
    }

    #[test]
    fn numbers_that_validate_accepted_and_run_could_not_use_are_rejected() {
        for (section, key, value) in [
            ("shutdown", "drain_timeout_secs", "inf"),
            ("ingest", "watchdog_secs", "inf"),
            ("ingest", "retry_max_secs", "inf"),
            ("mqtt", "reconnect_max_secs", "inf"),
            ("media", "retain_days", "1e300"),
            ("media", "max_mb", "nan"),
            ("spool", "max_mb", "1e300"),
            ("summaries", "period_minutes", "inf"),
        ] {
            let err = parse(&format!("[{section}]\n{key} = {value}\n{MINIMAL}"))
                .expect_err("out of range");
            assert!(
                err.contains(&format!(
                    "c.toml: 1 problem(s):\n  {section}.{key}: must be"
                )),
                "{section}.{key} = {value}: {err}"
            );
        }
        for (key, value) in [
            ("sample_fps", "1e-300"),
            ("clip_seconds", "inf"),
            ("clip_overlap_seconds", "nan"),
            ("motion_min_area", "nan"),
        ] {
            let err = parse(&format!("{MINIMAL}{key} = {value}\n")).expect_err("out of range");
            assert!(
                err.contains(&format!("cameras[0].{key}: must be")),
                "{key}: {err}"
            );
        }
        for (key, value) in [
            ("end_after_seconds", "inf"),
            ("cooldown_seconds", "1e300"),
            ("dwell_seconds", "nan"),
            ("min_frames", "100000"),
            ("min_count", "0"),
        ] {
            let err = parse(&format!(
                "{MINIMAL}[[cameras.rules]]\nlabel = \"person\"\n{key} = {value}\n"
            ))
            .expect_err("out of range");
            assert!(
                err.contains(&format!("cameras[0].rules[0].{key}: must be")),
                "{key}: {err}"
            );
        }
    }

    #[test]
    fn the_dry_build_reports_what_no_duration_can_hold_instead_of_panicking() {
        let mut cfg = parse(MINIMAL).expect("valid");
        assert!(cfg.dry_build().is_ok());
        cfg.shutdown.drain_timeout_secs = f64::INFINITY;
        cfg.media.retain_days = 1e300;
        cfg.ingest.watchdog_secs = f64::NAN;
        cfg.cameras[0].sample_fps = 1e-300;
        // validate() comes first and names each key
        let keys: Vec<String> = cfg
            .dry_build()
            .expect_err("invalid")
            .into_iter()
            .map(|p| p.key)
            .collect();
        for k in [
            "shutdown.drain_timeout_secs",
            "media.retain_days",
            "ingest.watchdog_secs",
            "cameras[0].sample_fps",
        ] {
            assert!(keys.iter().any(|x| x == k), "{k} not in {keys:?}");
        }
        // and the conversions themselves are guarded: errors with the key, not a panic
        let problems = cfg.build_stages().expect_err("unusable");
        let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        for k in [
            "shutdown.drain_timeout_secs: inf s is not a usable duration",
            "media.retain_days:",
            "ingest.watchdog_secs: NaN s is not a usable duration",
            "cameras[0].sample_fps:",
        ] {
            assert!(text.iter().any(|t| t.starts_with(k)), "{k} not in {text:?}");
        }
    }

    fn env(vars: &[(&str, &str)]) -> config::Map<String, String> {
        vars.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn load_env(toml_text: &str, vars: &[(&str, &str)]) -> Result<Config, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let path = dir.path().join("c.toml");
        std::fs::write(&path, toml_text).map_err(|e| e.to_string())?;
        Config::load_with_env(&path, Some(env(vars))).map_err(|e| e.to_string())
    }

    #[test]
    fn environment_strings_arrive_byte_for_byte() {
        for value in ["0123", "TRUE", "1e5", "", " 7 ", "null", "[1, 2]"] {
            let dir = tempfile::tempdir().expect("tmp");
            let path = dir.path().join("c.toml");
            std::fs::write(&path, MINIMAL).expect("write");
            let (cfg, problems) = Config::read(
                &path,
                Some(env(&[
                    ("SCENEWATCH__MQTT__USERNAME", value),
                    ("SCENEWATCH__MQTT__PASSWORD", value),
                    ("SCENEWATCH__MQTT__CLIENT_ID", value),
                    ("SCENEWATCH__MQTT__TOPIC_PREFIX", value),
                ])),
            )
            .expect("read");
            assert!(problems.is_empty(), "{value:?}: {problems:?}");
            let m = cfg.expect("typed").mqtt;
            assert_eq!(m.username.as_deref(), Some(value));
            assert_eq!(m.password.as_ref().map(Secret::expose), Some(value));
            assert_eq!(m.client_id, value);
            assert_eq!(m.topic_prefix, value);
        }
        // and the whole load accepts them where validate does
        let cfg = load_env(
            MINIMAL,
            &[
                ("SCENEWATCH__MQTT__USERNAME", "cam"),
                ("SCENEWATCH__MQTT__PASSWORD", "0123"),
                ("SCENEWATCH__MQTT__CLIENT_ID", "TRUE"),
                ("SCENEWATCH__MQTT__TOPIC_PREFIX", "1e5"),
            ],
        )
        .expect("valid");
        assert_eq!(cfg.mqtt.password.as_ref().map(Secret::expose), Some("0123"));
        assert_eq!(cfg.mqtt.client_id, "TRUE");
        assert_eq!(cfg.mqtt.topic_prefix, "1e5");
        let err = load_env(MINIMAL, &[("SCENEWATCH__MQTT__CLIENT_ID", "")]).expect_err("empty");
        assert!(
            err.contains("mqtt.client_id: must not be empty (from SCENEWATCH__MQTT__CLIENT_ID)"),
            "{err}"
        );
    }

    #[test]
    fn environment_numbers_and_booleans_still_parse() {
        let cfg = load_env(
            MINIMAL,
            &[
                ("SCENEWATCH__MQTT__PORT", "0123"),
                ("SCENEWATCH__MQTT__KEEP_ALIVE_SECS", "60"),
                ("SCENEWATCH__MEDIA__MAX_MB", "1e5"),
                ("SCENEWATCH__MEDIA__JPEG_QUALITY", "90"),
                ("SCENEWATCH__HOMEASSISTANT__ENABLED", "TRUE"),
                ("SCENEWATCH__MEDIA__SNAPSHOTS", "false"),
                ("SCENEWATCH__INGEST__DROP_POLICY", "drop_newest"),
                ("SCENEWATCH__INFERENCE__NMS_IOU", "0.5"),
                ("SCENEWATCH__SPOOL__PATH", "/tmp/s.redb"),
            ],
        )
        .expect("valid");
        assert_eq!(cfg.mqtt.port, 123);
        assert_eq!(cfg.mqtt.keep_alive_secs, 60);
        assert_eq!(cfg.media.max_mb, 1e5);
        assert_eq!(cfg.media.jpeg_quality, 90);
        assert!(cfg.homeassistant.enabled);
        assert!(!cfg.media.snapshots);
        assert_eq!(cfg.ingest.drop_policy, Some(DropPolicy::DropNewest));
        assert_eq!(cfg.inference.nms_iou, 0.5);
        assert_eq!(cfg.spool.path, Some(PathBuf::from("/tmp/s.redb")));
        // a value a typed field cannot take names the variable
        let err = load_env(
            MINIMAL,
            &[
                ("SCENEWATCH__MQTT__PORT", ""),
                ("SCENEWATCH__MQTT__TLS", "TRUEISH"),
                ("SCENEWATCH__MEDIA__JPEG_QUALITY", "300"),
                ("SCENEWATCH__MQTT__PASWORD", "x"),
            ],
        )
        .expect_err("invalid");
        for needle in [
            "mqtt.port: expected a whole number, found string \"\" (from SCENEWATCH__MQTT__PORT)",
            "mqtt.tls: expected true or false, found string \"TRUEISH\" (from SCENEWATCH__MQTT__TLS)",
            "media.jpeg_quality: invalid value: integer `300`, expected u8 (from SCENEWATCH__MEDIA__JPEG_QUALITY)",
            "mqtt.pasword: unknown key (did you mean `password`?) (from SCENEWATCH__MQTT__PASWORD)",
        ] {
            assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
        }
    }

    #[test]
    fn schedule_mistakes_name_the_window_and_the_time_zone() {
        let err = parse(
            r#"
            [[cameras]]
            name = "a"
            url = "test://"
            timezone = "Europe/Brusels"
            [[cameras.rules]]
            label = "person"
            schedule = ["mon-fri 18:00-07:00", "sun 7pm-9pm"]
            [[cameras]]
            name = "b"
            url = "test://"
            timezone = "Europe/Brussels"
            [[cameras.rules]]
            label = "person"
            schedule = ["mon-fri 18:00-07:00", "funday 10:00-11:00"]
            "#,
        )
        .expect_err("bad schedules");
        assert!(
            err.contains("cameras[0].timezone: unknown time zone 'Europe/Brusels'"),
            "{err}"
        );
        assert!(
            err.contains("cameras[1].rules[0].schedule[1]: unknown day 'funday'"),
            "{err}"
        );
        assert!(!err.contains("cameras[1].timezone"), "{err}");
    }

    #[test]
    fn zone_mistakes_name_the_zone_or_rule_key() {
        let err = parse(
            r#"
            [[cameras]]
            name = "a"
            url = "test://"
            [[cameras.zones]]
            name = "drive"
            points = [[0.1, 0.1], [1.5, 0.1]]
            [[cameras.rules]]
            label = "person"
            zones = ["lawn"]
            min_count = 0
            "#,
        )
        .expect_err("bad zones");
        assert!(
            err.contains("cameras[0].zones[0].points: a zone needs at least 3"),
            "{err}"
        );
        assert!(
            err.contains("cameras[0].zones[0].points: coordinates are normalized"),
            "{err}"
        );
        assert!(
            err.contains("cameras[0].rules[0].zones: no [[cameras.zones]] named 'lawn'"),
            "{err}"
        );
        assert!(
            err.contains("cameras[0].rules[0].min_count: must be in 1..=1000"),
            "{err}"
        );
    }

    #[test]
    fn duplicate_camera_names_are_rejected() {
        let err = parse(
            r#"
            [[cameras]]
            name = "a"
            url = "test://"
            [[cameras]]
            name = "a"
            url = "test://"
            "#,
        )
        .expect_err("dup");
        assert!(err.contains("cameras[1].name: duplicate"), "{err}");
    }

    #[test]
    fn live_cameras_default_to_drop_oldest() {
        let cfg = parse(
            r#"
            [[cameras]]
            name = "gate"
            url = "rtsp://10.0.0.5/stream"
            "#,
        )
        .expect("valid");
        assert_eq!(
            cfg.cameras[0].drop_policy(&cfg.ingest),
            DropPolicy::DropOldest
        );
    }

    #[test]
    fn missing_file_is_a_clear_error() {
        let err = Config::load(Path::new("/nonexistent/scenewatch.toml"))
            .expect_err("missing")
            .to_string();
        assert!(
            err.contains("/nonexistent/scenewatch.toml: no such file"),
            "{err}"
        );
    }
}
