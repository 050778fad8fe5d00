//! The daemon's configuration: one TOML file plus `SCENEWATCH__SECTION__KEY` environment overrides.
//!
//! This file owns the typed config (every default written once, here), loading through the `config` crate, and
//! `validate()`, which lists *every* problem with its key path (`cameras[1].sample_fps: must be > 0`) instead of
//! stopping at the first. Unknown keys are errors (`deny_unknown_fields`) so a typo never silently becomes a default.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::infer::labels::{coco_label_index, VEHICLE_GROUP};

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
    pub language: crate::infer::head::HeadConfig,
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
    /// Messages waiting for the broker (alerts, states). When full, the oldest camera-state message is dropped
    /// before any alert (alerts are never dropped; producers wait instead).
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
        (self.max_mb.max(0.0) * 1024.0 * 1024.0) as u64
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
    /// Longest wait for queued messages to be acknowledged by the broker before exiting anyway (exit code 3).
    pub drain_timeout_secs: f64,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        Self {
            drain_timeout_secs: 30.0,
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
    pub posture: Option<crate::infer::pose::Posture>,
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

    /// Reads `path` (TOML) with environment overrides, then validates. Errors name the file and the keys.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let cfg = Self::load_unvalidated(path)?;
        let problems = cfg.validate();
        if problems.is_empty() {
            Ok(cfg)
        } else {
            Err(ConfigError::Invalid {
                file: path.to_path_buf(),
                problems,
            })
        }
    }

    pub fn load_unvalidated(path: &Path) -> Result<Self, ConfigError> {
        let load_err = |message: String| ConfigError::Load {
            file: path.to_path_buf(),
            message,
        };
        if !path.is_file() {
            return Err(load_err("no such file".into()));
        }
        let built = config::Config::builder()
            .add_source(config::File::from(path).format(config::FileFormat::Toml))
            .add_source(
                config::Environment::with_prefix("SCENEWATCH")
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true),
            )
            .build()
            .map_err(|e| load_err(e.to_string()))?;
        let mut cfg: Config = built
            .try_deserialize()
            .map_err(|e| load_err(e.to_string()))?;
        if let Some(file) = cfg.mqtt.password_file.clone() {
            let secret = std::fs::read_to_string(&file).map_err(|e| {
                load_err(format!(
                    "mqtt.password_file: cannot read {}: {e}",
                    file.display()
                ))
            })?;
            cfg.mqtt.password = Some(Secret::new(
                secret.trim_end_matches(['\n', '\r']).to_string(),
            ));
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
            let base = path.parent().unwrap_or(Path::new("."));
            let candidate = base.join(&cfg.models.dir);
            if candidate.exists() || !cfg.models.dir.exists() {
                cfg.models.dir = candidate;
            }
        }
        Ok(cfg)
    }

    /// Every problem in the config, each with its key path. Empty = valid.
    pub fn validate(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        let mut bad = |key: String, message: &str| {
            out.push(Problem {
                key,
                message: message.to_string(),
            })
        };
        if self.mqtt.host.trim().is_empty() {
            bad("mqtt.host".into(), "must not be empty");
        }
        if self.mqtt.port == 0 {
            bad("mqtt.port".into(), "must be 1..65535");
        }
        if self.mqtt.client_id.is_empty() {
            bad("mqtt.client_id".into(), "must not be empty");
        }
        if !valid_topic_level_path(&self.mqtt.topic_prefix) {
            bad(
                "mqtt.topic_prefix".into(),
                "must be non-empty topic levels without '+', '#' or empty levels",
            );
        }
        if self.mqtt.outbox_capacity < 16 {
            bad("mqtt.outbox_capacity".into(), "must be >= 16");
        }
        if !positive(self.mqtt.reconnect_max_secs) {
            bad("mqtt.reconnect_max_secs".into(), "must be > 0");
        }
        if self.mqtt.keep_alive_secs < 5 {
            bad("mqtt.keep_alive_secs".into(), "must be >= 5");
        }
        if self.mqtt.username.is_none() && self.mqtt.password.is_some() {
            bad("mqtt.password".into(), "is set but mqtt.username is not");
        }
        if self.mqtt.client_cert.is_some() != self.mqtt.client_key.is_some() {
            bad(
                "mqtt.client_cert".into(),
                "client_cert and client_key must be given together",
            );
        }
        if !self.mqtt.tls && (self.mqtt.ca_file.is_some() || self.mqtt.client_cert.is_some()) {
            bad(
                "mqtt.tls".into(),
                "ca_file/client_cert are set but tls = false (set tls = true, usually with port 8883)",
            );
        }
        if !valid_topic_level_path(&self.homeassistant.discovery_prefix) {
            bad(
                "homeassistant.discovery_prefix".into(),
                "must be non-empty topic levels without '+', '#' or empty levels",
            );
        }
        if let Some(l) = &self.metrics.listen {
            if l.parse::<std::net::SocketAddr>().is_err() {
                bad(
                    "metrics.listen".into(),
                    "must be host:port with an IP address, e.g. 127.0.0.1:9464",
                );
            }
        }
        if !positive(self.summaries.period_minutes) {
            bad("summaries.period_minutes".into(), "must be > 0");
        }
        if !(1..=100).contains(&self.media.jpeg_quality) {
            bad("media.jpeg_quality".into(), "must be in 1..=100");
        }
        if !(1..=100).contains(&self.media.clip_jpeg_quality) {
            bad("media.clip_jpeg_quality".into(), "must be in 1..=100");
        }
        if !positive(self.media.retain_days) {
            bad("media.retain_days".into(), "must be > 0");
        }
        if !positive(self.media.max_mb) {
            bad("media.max_mb".into(), "must be > 0");
        }
        for (k, v, max) in [
            (
                "clip_pre_roll_seconds",
                self.media.clip_pre_roll_seconds,
                60.0,
            ),
            (
                "clip_post_roll_seconds",
                self.media.clip_post_roll_seconds,
                60.0,
            ),
        ] {
            if !(0.0..=max).contains(&v) {
                bad(format!("media.{k}"), "must be in 0..=60");
            }
        }
        if !(5.0..=3600.0).contains(&self.media.clip_max_seconds) {
            bad("media.clip_max_seconds".into(), "must be in 5..=3600");
        }
        if !(1..=30).contains(&self.media.clip_fps) {
            bad("media.clip_fps".into(), "must be in 1..=30");
        }
        if !(64..=3840).contains(&self.media.clip_width) || self.media.clip_width % 2 != 0 {
            bad(
                "media.clip_width".into(),
                "must be an even number in 64..=3840",
            );
        }
        if self.spool.max_mb.is_nan() || self.spool.max_mb < 0.01 {
            bad("spool.max_mb".into(), "must be >= 0.01");
        }
        if self.ingest.frame_queue == 0 {
            bad("ingest.frame_queue".into(), "must be > 0");
        }
        if self.ingest.clip_queue == 0 {
            bad("ingest.clip_queue".into(), "must be > 0");
        }
        if !(0.5..=3600.0).contains(&self.ingest.watchdog_secs) {
            bad("ingest.watchdog_secs".into(), "must be in 0.5..=3600");
        }
        if !(0.5..=3600.0).contains(&self.ingest.startup_timeout_secs) {
            bad(
                "ingest.startup_timeout_secs".into(),
                "must be in 0.5..=3600",
            );
        }
        if !positive(self.ingest.retry_min_secs) {
            bad("ingest.retry_min_secs".into(), "must be > 0");
        }
        if !non_negative(self.ingest.retry_max_secs - self.ingest.retry_min_secs) {
            bad(
                "ingest.retry_max_secs".into(),
                "must be >= ingest.retry_min_secs",
            );
        }
        if !(1..=16).contains(&self.inference.encoder_stride) {
            bad("inference.encoder_stride".into(), "must be in 1..=16");
        }
        if !(128..=1024).contains(&self.inference.pose_input) || self.inference.pose_input % 32 != 0
        {
            bad(
                "inference.pose_input".into(),
                "must be a multiple of 32 in 128..=1024",
            );
        }
        if self.inference.workers > 64 {
            bad("inference.workers".into(), "must be in 0..=64 (0 = auto)");
        }
        if self.inference.intra_threads > 256 {
            bad(
                "inference.intra_threads".into(),
                "must be in 0..=256 (0 = auto)",
            );
        }
        if !(0.05..=0.99).contains(&self.inference.detector_threshold) {
            bad(
                "inference.detector_threshold".into(),
                "must be in 0.05..=0.99",
            );
        }
        let l = &self.language;
        if !(1..=1000).contains(&l.top_k) {
            bad("language.top_k".into(), "must be in 1..=1000");
        }
        if !(0.1..=100.0).contains(&l.temperature) {
            bad("language.temperature".into(), "must be in 0.1..=100");
        }
        if !(0.0..=1.0).contains(&l.alpha) {
            bad("language.alpha".into(), "must be in 0..=1");
        }
        for (k, w) in [
            ("w_classifier", l.w_classifier),
            ("w_detections", l.w_detections),
            ("w_empty", l.w_empty),
        ] {
            if !(0.0..=10.0).contains(&w) {
                bad(format!("language.{k}"), "must be in 0..=10");
            }
        }
        for (k, t) in [
            ("label_template", &l.label_template),
            ("prompt_template", &l.prompt_template),
        ] {
            if !t.contains("{}") {
                bad(
                    format!("language.{k}"),
                    "must contain {} where the text goes",
                );
            }
        }
        if !(0.1..=0.95).contains(&self.inference.nms_iou) {
            bad("inference.nms_iou".into(), "must be in 0.1..=0.95");
        }
        if !non_negative(self.shutdown.drain_timeout_secs) {
            bad("shutdown.drain_timeout_secs".into(), "must be >= 0");
        }
        if self.cameras.is_empty() {
            bad("cameras".into(), "at least one [[cameras]] entry is needed");
        }
        let mut names = HashSet::new();
        for (i, cam) in self.cameras.iter().enumerate() {
            let k = |field: &str| format!("cameras[{i}].{field}");
            if !valid_camera_name(&cam.name) {
                bad(
                    k("name"),
                    "must match [a-z0-9_-]+ (it is used in MQTT topics)",
                );
            } else if !names.insert(cam.name.clone()) {
                bad(k("name"), &format!("duplicate camera name '{}'", cam.name));
            }
            match crate::ingest::source::SourceKind::parse(&cam.url) {
                Err(e) => bad(k("url"), &e),
                Ok(kind) if cam.looping && kind.is_live() => {
                    bad(k("loop"), "applies to files only")
                }
                Ok(_) => {}
            }
            if !positive(cam.sample_fps) {
                bad(k("sample_fps"), "must be > 0");
            } else if cam.sample_fps > 60.0 {
                bad(k("sample_fps"), "must be <= 60");
            }
            if !positive(cam.clip_seconds) {
                bad(k("clip_seconds"), "must be > 0");
            } else if cam.sample_fps > 0.0 && cam.sample_fps * cam.clip_seconds > 256.0 {
                bad(
                    k("clip_seconds"),
                    "sample_fps * clip_seconds must be <= 256 frames per clip",
                );
            }
            if !(cam.clip_overlap_seconds >= 0.0 && cam.clip_overlap_seconds < cam.clip_seconds) {
                bad(k("clip_overlap_seconds"), "must be >= 0 and < clip_seconds");
            }
            for (j, p) in cam.prompts.iter().enumerate() {
                let pk = |field: &str| format!("cameras[{i}].prompts[{j}].{field}");
                if p.text.trim().is_empty() || p.text.len() > 300 {
                    bad(pk("text"), "must be 1..300 characters");
                }
                if !(0.0..=1.0).contains(&p.threshold) {
                    bad(pk("threshold"), "must be in 0..=1 (calibrated score)");
                }
                if !(0.0..=1.0).contains(&p.exit()) || p.exit() > p.threshold {
                    bad(pk("exit_threshold"), "must be in 0..=threshold");
                }
                if p.enter_clips == 0 || p.exit_clips == 0 {
                    bad(pk("enter_clips"), "enter_clips and exit_clips must be >= 1");
                }
            }
            let mut zone_names = HashSet::new();
            for (j, z) in cam.zones.iter().enumerate() {
                let zk = |field: &str| format!("cameras[{i}].zones[{j}].{field}");
                if !valid_camera_name(&z.name) {
                    bad(zk("name"), "must match [a-z0-9_-]+");
                } else if !zone_names.insert(z.name.clone()) {
                    bad(zk("name"), &format!("duplicate zone name '{}'", z.name));
                }
                if z.points.len() < 3 {
                    bad(zk("points"), "a zone needs at least 3 [x, y] points");
                }
                if z.points
                    .iter()
                    .any(|p| !(0.0..=1.0).contains(&p[0]) || !(0.0..=1.0).contains(&p[1]))
                {
                    bad(
                        zk("points"),
                        "coordinates are normalized: 0..=1 (x from the left, y from the top)",
                    );
                }
            }
            let mut rule_names = HashSet::new();
            for (j, rule) in cam.rules.iter().enumerate() {
                let rk = |field: &str| format!("cameras[{i}].rules[{j}].{field}");
                if !rule_names.insert(rule.name()) {
                    bad(
                        rk("label"),
                        &format!(
                            "a second '{}' rule on this camera (its count topic and switch would clash); merge them, or give one a posture",
                            rule.name()
                        ),
                    );
                }
                if rule.label != VEHICLE_GROUP && coco_label_index(&rule.label).is_none() {
                    bad(
                        rk("label"),
                        &format!(
                            "unknown label '{}': use a COCO label (person, car, dog, …) or 'vehicle'",
                            rule.label
                        ),
                    );
                }
                if !(0.0..=1.0).contains(&rule.min_score) {
                    bad(rk("min_score"), "must be in 0..=1");
                }
                if rule.min_frames == 0 {
                    bad(rk("min_frames"), "must be >= 1");
                }
                if !non_negative(rule.end_after_seconds) {
                    bad(rk("end_after_seconds"), "must be >= 0");
                }
                if !non_negative(rule.cooldown_seconds) {
                    bad(rk("cooldown_seconds"), "must be >= 0");
                }
                if !non_negative(rule.dwell_seconds) {
                    bad(rk("dwell_seconds"), "must be >= 0");
                }
                if rule.min_count == 0 {
                    bad(rk("min_count"), "must be >= 1");
                }
                for z in &rule.zones {
                    if !cam.zones.iter().any(|cz| &cz.name == z) {
                        bad(
                            rk("zones"),
                            &format!("no [[cameras.zones]] named '{z}' on this camera"),
                        );
                    }
                }
                if rule.posture.is_some() && rule.label != "person" {
                    bad(rk("posture"), "applies to label = \"person\" only");
                }
                // a bad zone name is reported once, under cameras[i].timezone
                if let Err((Some(w), e)) =
                    crate::events::schedule::Schedule::parse(&cam.timezone, &rule.schedule)
                {
                    bad(rk(&format!("schedule[{w}]")), &e);
                }
            }
            if let Err(e) = crate::events::schedule::parse_tz(&cam.timezone) {
                bad(k("timezone"), &e);
            }
            if !(cam.motion_min_area > 0.0 && cam.motion_min_area <= 1.0) {
                bad(k("motion_min_area"), "must be in (0, 1]");
            }
        }
        out
    }
}

impl ShutdownConfig {
    pub fn drain_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.drain_timeout_secs.max(0.0))
    }
}

/// `x > 0`, false for NaN (a NaN from the environment must not pass validation).
fn positive(x: f64) -> bool {
    x > 0.0
}

/// `x >= 0`, false for NaN.
fn non_negative(x: f64) -> bool {
    x >= 0.0
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
            "cameras[1].sample_fps: must be > 0",
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
        assert!(err.contains("sample_fsp"), "{err}");
        assert!(err.contains("c.toml"), "{err}");
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
            err.contains("cameras[0].rules[0].min_count: must be >= 1"),
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
