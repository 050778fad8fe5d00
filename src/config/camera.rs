//! `[[cameras]]`: one source each, with its sampling and clip windows, and what the events stage checks on its
//! clips: label rules (zones, dwell, schedules, posture), named zones, scene prompts, the motion gate. Rule labels
//! and postures are the vocabulary of `crate::labels`; rule labels are checked against the detector's classes
//! (its model card's labels, `RuleVocabulary`).

use std::path::PathBuf;

use serde::Deserialize;

use super::{seconds, Checks, DropPolicy, IngestConfig, MediaConfig, Problem};
use crate::labels::{
    ClassNames, LabelThresholds, Posture, Thresholds, VEHICLE_CLASSES, VEHICLE_GROUP,
};

/// What rule labels are checked against: the detector's classes, and the card they came from (None: the card
/// could not be found, and COCO-80, the shipped detector's classes, stands in).
#[derive(Debug, Clone)]
pub(super) struct RuleVocabulary {
    pub classes: ClassNames,
    pub card: Option<PathBuf>,
}

impl RuleVocabulary {
    /// Why `label` can never match a detection, or None when it can.
    fn reject(&self, label: &str) -> Option<String> {
        if self.classes.has_rule_label(label) {
            return None;
        }
        let Some(card) = &self.card else {
            return Some(format!(
                "unknown label '{label}': use a COCO label (person, car, dog, …) or 'vehicle'"
            ));
        };
        if label == VEHICLE_GROUP {
            return Some(format!(
                "'vehicle' means {}, and the detector's card {} has none of these classes",
                VEHICLE_CLASSES.join("/"),
                card.display()
            ));
        }
        let names = self.classes.names();
        let shown: Vec<&str> = names.iter().take(8).copied().collect();
        let more = if names.len() > shown.len() {
            ", …"
        } else {
            ""
        };
        Some(format!(
            "unknown label '{label}': the detector's card {} has no such class (its labels: {}{more}); use one of them or 'vehicle'",
            card.display(),
            shown.join(", ")
        ))
    }
}

/// One camera (or file, or test source).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CameraConfig {
    /// `[a-z0-9_-]+`, unique; used in topics.
    pub name: String,
    /// `file:///…` (or a plain path), `rtsp://…`, `v4l2:///dev/videoN`, `test://[pattern]`. Either this or
    /// `inputs`; read it through [`detect_url`](Self::detect_url).
    #[serde(default)]
    pub url: String,
    /// `[[cameras.inputs]]`: the camera's streams with their roles (detect on a sub-stream, record the main
    /// stream without decoding it), instead of one `url`.
    #[serde(default)]
    pub inputs: Vec<InputConfig>,
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
    /// `[cameras.unusual]`: the camera learns what its clips normally look like and alerts on clips unlike them.
    #[serde(default)]
    pub unusual: UnusualConfig,
    /// `[[cameras.classifiers]]`: task heads trained on this site by `scenewatch adapt train`.
    #[serde(default)]
    pub classifiers: Vec<ClassifierConfig>,
    /// Which compressed frames are not decoded at all (`crate::ingest::decode`): "auto" (default: only frames no
    /// sampled frame depends on, once the stream's keyframe interval is learned; sampled frames and their times
    /// are exactly those of a full decode), "keyframes" (keyframes only: sampled frames move to the next
    /// keyframe), "nonref" (libav decoders skip non-reference frames), "off".
    #[serde(default)]
    pub decode_skip: crate::ingest::decode::DecodeSkip,
    /// Scale sampled frames down to this height (pixels, aspect kept) in GStreamer before the colour conversion;
    /// 0 = the camera's own size. Snapshots then have this height too. Smaller sources are never scaled up.
    #[serde(default)]
    pub analysis_height: u32,
}

/// `[[cameras.inputs]]`: one stream of a camera and what it is used for.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct InputConfig {
    /// As a camera's `url`.
    pub url: String,
    /// `detect` (decoded and sampled for the models, snapshots come from it) and/or `record` (alert recordings:
    /// a record-only input is kept as it is sent, H.264 or H.265, never decoded).
    #[serde(default)]
    pub roles: Vec<String>,
}

/// The input roles there are.
pub const ROLES: [&str; 2] = ["detect", "record"];

impl InputConfig {
    pub fn has(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    /// A record-only input: recorded as it is, never decoded.
    pub fn record_only(&self) -> bool {
        self.has("record") && !self.has("detect")
    }
}

/// `[[cameras.classifiers]]`: a task head (`scenewatch adapt train`) scored on every clip. Its current class is
/// published on `<prefix>/<camera>/classifier/<name>`; a class in `alert_on` whose probability stays at or above
/// `threshold` for `enter_clips` clips opens a `kind = "classifier"` alert, which ends when it stays below
/// `exit_threshold` for `exit_clips` clips.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClassifierConfig {
    /// The head file (relative paths are under `[models] dir`).
    pub file: std::path::PathBuf,
    /// Topic level and rule name; defaults to the file's stem.
    pub name: Option<String>,
    /// Classes that raise alerts (none: the class is only published).
    #[serde(default)]
    pub alert_on: Vec<String>,
    #[serde(default = "default_classifier_threshold")]
    pub threshold: f32,
    /// Defaults to `threshold − 0.1` (hysteresis).
    pub exit_threshold: Option<f32>,
    #[serde(default = "default_two")]
    pub enter_clips: u32,
    #[serde(default = "default_two")]
    pub exit_clips: u32,
    /// The head file's size and modification time when the config was loaded (not a key): a retrained head makes
    /// the camera differ, so a reload (SIGHUP) restarts it with the new head.
    #[serde(skip)]
    pub file_stamp: Option<(u64, Option<std::time::SystemTime>)>,
}

fn default_classifier_threshold() -> f32 {
    0.8
}

impl ClassifierConfig {
    pub fn exit(&self) -> f32 {
        self.exit_threshold.unwrap_or(self.threshold - 0.1)
    }

    /// The topic level and rule name: `name`, else the head file's stem.
    pub fn rule_name(&self) -> String {
        self.name.clone().unwrap_or_else(|| {
            self.file
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "classifier".into())
        })
    }

    /// The hysteresis as a prompt-style lifecycle config (the classifier's alert uses the prompt lifecycle).
    pub fn lifecycle(&self) -> PromptConfig {
        PromptConfig {
            text: self.rule_name(),
            threshold: self.threshold,
            exit_threshold: Some(self.exit()),
            enter_clips: self.enter_clips,
            exit_clips: self.exit_clips,
        }
    }

    pub(super) fn validate(&self, key: &str, c: &mut Checks) {
        let k = |field: &str| format!("{key}.{field}");
        if !valid_camera_name(&self.rule_name()) {
            c.bad(
                k("name"),
                "must match [a-z0-9_-]+ (it is used in MQTT topics; set `name` when the file's name does not)",
            );
        }
        if !(0.0..=1.0).contains(&self.threshold) {
            c.bad(k("threshold"), "must be in 0..=1 (a class probability)");
        }
        if !(0.0..=1.0).contains(&self.exit()) || self.exit() > self.threshold {
            c.bad(k("exit_threshold"), "must be in 0..=threshold");
        }
        c.range(k("enter_clips"), self.enter_clips, 1, 1000);
        c.range(k("exit_clips"), self.exit_clips, 1, 1000);
    }
}

/// `[cameras.unusual]`: the self-supervised unusual-scene baseline (`events::unusual`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct UnusualConfig {
    pub enabled: bool,
    /// Stream time each time-of-day bucket learns before it may alert.
    pub warmup_seconds: f64,
    /// A clip is unusual when it is further from normal than this share of the bucket's recent clips.
    pub threshold_quantile: f32,
    /// The alert ends when clips fall below this share again (hysteresis).
    pub exit_quantile: f32,
    /// Consecutive unusual clips that open an alert.
    pub enter_clips: u32,
    /// Consecutive ordinary clips that end it.
    pub exit_clips: u32,
    /// Hours of the day per baseline (a divisor of 24; 24 = one baseline for the whole day).
    pub hours_per_bucket: u32,
    /// Centroids per baseline.
    pub centroids: usize,
}

impl Default for UnusualConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            warmup_seconds: 3600.0,
            threshold_quantile: 0.995,
            exit_quantile: 0.98,
            enter_clips: 2,
            exit_clips: 2,
            hours_per_bucket: 6,
            centroids: 8,
        }
    }
}

impl UnusualConfig {
    fn validate(&self, key: &str, c: &mut Checks) {
        let k = |f: &str| format!("{key}.unusual.{f}");
        c.range(
            k("warmup_seconds"),
            self.warmup_seconds,
            0.0,
            30.0 * 86_400.0,
        );
        c.range(k("threshold_quantile"), self.threshold_quantile, 0.5, 1.0);
        if !(0.0..=1.0).contains(&self.exit_quantile)
            || self.exit_quantile > self.threshold_quantile
        {
            c.bad(k("exit_quantile"), "must be in 0..=threshold_quantile");
        }
        c.range(k("enter_clips"), self.enter_clips, 1, 100);
        c.range(k("exit_clips"), self.exit_clips, 1, 100);
        if !(1..=24).contains(&self.hours_per_bucket) || 24 % self.hours_per_bucket != 0 {
            c.bad(
                k("hours_per_bucket"),
                "must divide 24 (1, 2, 3, 4, 6, 8, 12 or 24)",
            );
        }
        c.range(k("centroids"), self.centroids, 1, 64);
    }
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

    pub(super) fn validate(&self, key: &str, c: &mut Checks) {
        let k = |field: &str| format!("{key}.{field}");
        if self.text.trim().is_empty() || self.text.len() > 300 {
            c.bad(k("text"), "must be 1..300 characters");
        }
        if !(0.0..=1.0).contains(&self.threshold) {
            c.bad(k("threshold"), "must be in 0..=1 (calibrated score)");
        }
        if !(0.0..=1.0).contains(&self.exit()) || self.exit() > self.threshold {
            c.bad(k("exit_threshold"), "must be in 0..=threshold");
        }
        c.range(k("enter_clips"), self.enter_clips, 1, 1000);
        c.range(k("exit_clips"), self.exit_clips, 1, 1000);
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

/// "A tracked object of label L, seen in ≥ `min_frames` frames with a median score ≥ `min_score`" opens an
/// alert; it ends after the label has been absent for `end_after_seconds` of stream time (see `events::track`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// A class of the detector (its model card's labels; COCO-80 for the shipped NanoDet), or `vehicle` (car,
    /// truck, bus, motorcycle).
    pub label: String,
    /// The track score (median of its recent detection scores) at which an object alerts. Unset: the detector's
    /// calibrated level for this label, from its model card (`[thresholds.<label>] alert`).
    #[serde(default)]
    pub min_score: Option<f32>,
    /// The per-frame score at which a detection joins or continues a track (never above `min_score`). Unset: the
    /// model card's `[thresholds.<label>] track`.
    #[serde(default)]
    pub track_score: Option<f32>,
    /// Frames an object must have been seen in before it can alert (one-frame spikes never do).
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

impl ZoneConfig {
    /// `earlier`: the camera's zones listed before this one (names are unique per camera).
    pub(super) fn validate(&self, key: &str, earlier: &[ZoneConfig], c: &mut Checks) {
        let k = |field: &str| format!("{key}.{field}");
        if !valid_camera_name(&self.name) {
            c.bad(k("name"), "must match [a-z0-9_-]+");
        } else if earlier.iter().any(|e| e.name == self.name) {
            c.bad(k("name"), format!("duplicate zone name '{}'", self.name));
        }
        if self.points.len() < 3 {
            c.bad(k("points"), "a zone needs at least 3 [x, y] points");
        } else if self.points.len() > 100 {
            c.bad(k("points"), "a zone has at most 100 points");
        }
        if self
            .points
            .iter()
            .any(|p| !(0.0..=1.0).contains(&p[0]) || !(0.0..=1.0).contains(&p[1]))
        {
            c.bad(
                k("points"),
                "coordinates are normalized: 0..=1 (x from the left, y from the top)",
            );
        }
    }
}

fn default_min_count() -> usize {
    1
}

fn default_min_frames() -> usize {
    2
}
fn default_end_after() -> f64 {
    10.0
}

impl RuleConfig {
    /// The rule's two score levels: its own `min_score` / `track_score` where set, else the detector's for its
    /// label; the track level never above the alert level.
    pub fn levels(&self, detector: &Thresholds) -> LabelThresholds {
        let card = detector.for_label(&self.label);
        let alert = self.min_score.unwrap_or(card.alert);
        LabelThresholds {
            alert,
            track: self.track_score.unwrap_or(card.track).min(alert),
        }
    }

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
            min_score: None,
            track_score: None,
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

    /// `earlier`: the camera's rules listed before this one; `cam`: the camera, whose zones and time zone the rule
    /// refers to.
    /// `vocabulary`: the detector's classes (None: its card is broken, a problem already listed).
    pub(super) fn validate(
        &self,
        key: &str,
        earlier: &[RuleConfig],
        cam: &CameraConfig,
        vocabulary: Option<&RuleVocabulary>,
        c: &mut Checks,
    ) {
        let k = |field: &str| format!("{key}.{field}");
        if earlier.iter().any(|e| e.name() == self.name()) {
            c.bad(
                k("label"),
                format!(
                    "a second '{}' rule on this camera (its count topic and switch would clash); merge them, or give one a posture",
                    self.name()
                ),
            );
        }
        if let Some(why) = vocabulary.and_then(|v| v.reject(&self.label)) {
            c.bad(k("label"), why);
        }
        if let Some(v) = self.min_score {
            c.range(k("min_score"), v, 0.0, 1.0);
        }
        if let Some(v) = self.track_score {
            c.range(k("track_score"), v, 0.0, 1.0);
        }
        // a clip holds at most 256 sampled frames (see clip_seconds)
        c.range(k("min_frames"), self.min_frames, 1, 256);
        c.range(
            k("end_after_seconds"),
            self.end_after_seconds,
            0.0,
            86_400.0,
        );
        c.range(k("cooldown_seconds"), self.cooldown_seconds, 0.0, 86_400.0);
        c.range(k("dwell_seconds"), self.dwell_seconds, 0.0, 86_400.0);
        c.range(k("min_count"), self.min_count, 1, 1000);
        for z in &self.zones {
            if !cam.zones.iter().any(|cz| &cz.name == z) {
                c.bad(
                    k("zones"),
                    format!("no [[cameras.zones]] named '{z}' on this camera"),
                );
            }
        }
        if self.posture.is_some() && self.label != "person" {
            c.bad(k("posture"), "applies to label = \"person\" only");
        }
        // a bad zone name is reported once, under cameras[i].timezone
        if let Err((Some(w), e)) =
            crate::events::schedule::Schedule::parse(&cam.timezone, &self.schedule)
        {
            c.bad(k(&format!("schedule[{w}]")), e);
        }
    }
}

impl CameraConfig {
    /// Whether the image encoder must run on this camera's clips although it has no prompts (the unusual-scene
    /// baseline learns from its embeddings).
    pub fn wants_embedding(&self) -> bool {
        self.enabled && (self.unusual.enabled || !self.classifiers.is_empty())
    }

    /// Whether any rule or prompt needs the pose model (a prompt about posture: "a person lying on the ground").
    pub fn wants_pose(&self) -> bool {
        self.enabled
            && (self.rules.iter().any(|r| r.posture.is_some())
                || self.programs().iter().any(|p| p.needs_pose()))
    }

    /// The camera's prompts parsed against its zone names (the same in every stage: the parser is pure).
    pub fn programs(&self) -> Vec<crate::language::Program> {
        self.programs_with(None)
    }

    /// As [`programs`](Self::programs), with more words the head knows (the ImageNet names) so that only words
    /// nothing knows are reported as unchecked.
    pub fn programs_with(
        &self,
        known_words: Option<&std::collections::HashSet<String>>,
    ) -> Vec<crate::language::Program> {
        let zones: Vec<String> = self.zones.iter().map(|z| z.name.clone()).collect();
        let ctx = crate::language::ParseContext {
            zones: &zones,
            known_words,
        };
        self.prompts
            .iter()
            .map(|p| crate::language::parse(&p.text, &ctx))
            .collect()
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
            .chain(self.classifiers.iter().map(|h| h.rule_name()))
            .collect()
    }

    /// The url decoded for the models: `url`, or the input with the `detect` role ("" when there is none, which
    /// `validate` refuses).
    pub fn detect_url(&self) -> &str {
        if self.inputs.is_empty() {
            return &self.url;
        }
        self.inputs
            .iter()
            .find(|i| i.has("detect"))
            .map_or("", |i| i.url.as_str())
    }

    /// The url recorded without decoding: a record-only input. None when recordings come from the detect input
    /// (a single `url`, or the `record` role on the detect input): its decoded frames are re-encoded.
    pub fn record_url(&self) -> Option<&str> {
        self.inputs
            .iter()
            .find(|i| i.record_only())
            .map(|i| i.url.as_str())
    }

    pub fn is_file(&self) -> bool {
        matches!(
            crate::ingest::source::SourceKind::parse(self.detect_url()),
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

    /// Checks the camera and its prompts, zones and rules; `key` is its path (`cameras[1]`), `earlier` the cameras
    /// listed before it (names are unique).
    pub(super) fn validate(
        &self,
        key: &str,
        earlier: &[CameraConfig],
        vocabulary: Option<&RuleVocabulary>,
        c: &mut Checks,
    ) {
        let k = |field: &str| format!("{key}.{field}");
        if !valid_camera_name(&self.name) {
            c.bad(
                k("name"),
                "must match [a-z0-9_-]+ (it is used in MQTT topics)",
            );
        } else if earlier.iter().any(|e| e.name == self.name) {
            c.bad(k("name"), format!("duplicate camera name '{}'", self.name));
        }
        if self.inputs.is_empty() {
            match crate::ingest::source::SourceKind::parse(&self.url) {
                Err(e) if self.url.trim().is_empty() => c.bad(
                    k("url"),
                    format!("{e}: set `url`, or list the camera's streams as [[cameras.inputs]]"),
                ),
                Err(e) => c.bad(k("url"), e),
                Ok(kind) if self.looping && kind.is_live() => {
                    c.bad(k("loop"), "applies to files only")
                }
                Ok(_) => {}
            }
        } else {
            self.validate_inputs(key, c);
        }
        c.range(k("sample_fps"), self.sample_fps, 0.01, 60.0);
        if !(0.1..=600.0).contains(&self.clip_seconds) {
            c.bad(k("clip_seconds"), "must be in 0.1..=600");
        } else if (0.01..=60.0).contains(&self.sample_fps)
            && self.sample_fps * self.clip_seconds > 256.0
        {
            c.bad(
                k("clip_seconds"),
                "sample_fps * clip_seconds must be <= 256 frames per clip",
            );
        }
        if !(self.clip_overlap_seconds >= 0.0 && self.clip_overlap_seconds < self.clip_seconds) {
            c.bad(k("clip_overlap_seconds"), "must be >= 0 and < clip_seconds");
        }
        c.above(k("motion_min_area"), self.motion_min_area, 0.0, 1.0);
        if self.analysis_height != 0 && !(64..=4320).contains(&self.analysis_height) {
            c.bad(
                k("analysis_height"),
                "must be 0 (the camera's size) or in 64..=4320",
            );
        }
        self.unusual.validate(key, c);
        for (j, p) in self.prompts.iter().enumerate() {
            p.validate(&format!("{key}.prompts[{j}]"), c);
        }
        for (j, h) in self.classifiers.iter().enumerate() {
            h.validate(&format!("{key}.classifiers[{j}]"), c);
            if self.classifiers[..j]
                .iter()
                .any(|e| e.rule_name() == h.rule_name())
            {
                c.bad(
                    format!("{key}.classifiers[{j}].name"),
                    format!("two classifiers are named '{}'", h.rule_name()),
                );
            }
        }
        // each rule is one topic level (`…/<rule>/armed/set`) and one Home Assistant id: two names, one slug, clash
        let mut names = self.rule_names();
        names.dedup();
        for (j, a) in names.iter().enumerate() {
            let slug = crate::publish::topics::slug(a);
            if let Some(b) = names[..j]
                .iter()
                .find(|b| *b != a && crate::publish::topics::slug(b) == slug)
            {
                c.bad(
                    key.to_string(),
                    format!("rules '{b}' and '{a}' share the topic level '{slug}'; rename one"),
                );
            }
        }
        for (j, z) in self.zones.iter().enumerate() {
            z.validate(&format!("{key}.zones[{j}]"), &self.zones[..j], c);
        }
        for (j, rule) in self.rules.iter().enumerate() {
            rule.validate(
                &format!("{key}.rules[{j}]"),
                &self.rules[..j],
                self,
                vocabulary,
                c,
            );
        }
        if let Err(e) = crate::events::schedule::parse_tz(&self.timezone) {
            c.bad(k("timezone"), e);
        }
    }

    /// `[[cameras.inputs]]`: instead of `url`; exactly one `detect` input, at most one `record` input, known roles
    /// each named once, and a record-only input that is an encoded stream of the same kind as the detect input.
    fn validate_inputs(&self, key: &str, c: &mut Checks) {
        use crate::ingest::source::SourceKind;
        if !self.url.is_empty() {
            c.bad(
                format!("{key}.inputs"),
                "set either `url` or [[cameras.inputs]], not both",
            );
        }
        let detect_live = SourceKind::parse(self.detect_url())
            .ok()
            .map(|k| k.is_live());
        let (mut detect, mut record) = (0, 0);
        for (j, input) in self.inputs.iter().enumerate() {
            let k = |field: &str| format!("{key}.inputs[{j}].{field}");
            let kind = SourceKind::parse(&input.url);
            if let Err(e) = &kind {
                c.bad(k("url"), e.clone());
            }
            if input.roles.is_empty() {
                c.bad(
                    k("roles"),
                    "must name at least one role: \"detect\", \"record\"",
                );
            }
            for (r, role) in input.roles.iter().enumerate() {
                if !ROLES.contains(&role.as_str()) {
                    c.bad(
                        k("roles"),
                        format!("unknown role '{role}' (the roles are \"detect\" and \"record\")"),
                    );
                } else if input.roles[..r].contains(role) {
                    c.bad(k("roles"), format!("'{role}' is listed twice"));
                }
            }
            if input.has("detect") {
                detect += 1;
                if detect == 2 {
                    c.bad(
                        k("roles"),
                        "a second input with the role \"detect\": exactly one input is decoded for the models",
                    );
                }
                if let Ok(kind) = &kind {
                    if self.looping && kind.is_live() {
                        c.bad(format!("{key}.loop"), "applies to files only");
                    }
                }
            }
            if input.has("record") {
                record += 1;
                if record == 2 {
                    c.bad(
                        k("roles"),
                        "a second input with the role \"record\": at most one input is recorded",
                    );
                }
            }
            if input.record_only() {
                match &kind {
                    Ok(SourceKind::File(_) | SourceKind::Rtsp(_)) => {}
                    Ok(_) => c.bad(
                        k("url"),
                        "a record-only input is recorded as it is sent, without decoding: it must be an encoded \
                         stream, a file or an rtsp:// URL (give a v4l2:// or test:// source the \"detect\" role too, \
                         or record the detect input)",
                    ),
                    Err(_) => {}
                }
                if let (Ok(kind), Some(live)) = (&kind, detect_live) {
                    if kind.is_live() != live {
                        c.bad(
                            k("url"),
                            "the record input and the detect input must both be files or both be live streams \
                             (their times are matched to select each alert's recording)",
                        );
                    }
                }
            }
        }
        if detect == 0 {
            c.bad(
                format!("{key}.inputs"),
                "no input has the role \"detect\": exactly one input is decoded for the models",
            );
        }
    }

    /// What `run` builds for this camera — frame queue, sampler, clip assembler, alert recorder, motion gate, rule
    /// schedules — without I/O. Disabled cameras too: a reload may enable them.
    pub(super) fn dry_build(
        &self,
        key: &str,
        ingest: &IngestConfig,
        media: &MediaConfig,
        c: &mut Checks,
    ) {
        let k = |field: &str| format!("{key}.{field}");
        let _ = crate::queue::bounded::<()>(ingest.frame_queue, self.drop_policy(ingest));
        c.keep(seconds(&k("sample_fps"), 1.0 / self.sample_fps).map(|_| {
            crate::ingest::sampler::Sampler::new(self.sample_fps);
        }));
        c.keep(
            seconds(&k("clip_seconds"), self.clip_seconds)
                .and(seconds(
                    &k("clip_overlap_seconds"),
                    self.clip_overlap_seconds,
                ))
                .map(|_| {
                    crate::clip::ClipAssembler::new(self.clip_seconds, self.clip_overlap_seconds);
                }),
        );
        c.keep(media.recorder_config(self, ingest).map(drop));
        let _ = self.motion();
        let _ = self.rule_names();
        for (j, rule) in self.effective_rules().iter().enumerate() {
            c.keep(
                crate::events::schedule::Schedule::parse(&self.timezone, &rule.schedule)
                    .map(drop)
                    .map_err(|(w, e)| match w {
                        Some(w) => Problem::new(format!("{key}.rules[{j}].schedule[{w}]"), e),
                        None => Problem::new(k("timezone"), e),
                    }),
            );
        }
    }
}

/// `[a-z0-9_-]`, 1 to 64 bytes: camera names (they are used in MQTT topics) and zone names.
pub fn valid_camera_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::parse;

    #[test]
    fn rules_whose_topic_levels_clash_are_refused() {
        let err = parse(
            r#"
            [[cameras]]
            name = "a"
            url = "test://"
            [[cameras.rules]]
            label = "person"
            posture = "lying"
            [[cameras.prompts]]
            text = "Person lying"
            "#,
        )
        .expect_err("clash");
        assert!(
            err.contains("cameras[0]: rules 'person_lying' and 'Person lying' share the topic level 'person_lying'"),
            "{err}"
        );
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
    fn inputs_with_roles_replace_url() {
        let cfg = parse(
            r#"
            [[cameras]]
            name = "gate"
            [[cameras.inputs]]
            url = "rtsp://10.0.0.5/sub"
            roles = ["detect"]
            [[cameras.inputs]]
            url = "rtsp://10.0.0.5/main"
            roles = ["record"]
            [[cameras]]
            name = "yard"
            [[cameras.inputs]]
            url = "rtsp://10.0.0.6/main"
            roles = ["detect", "record"]
            [[cameras]]
            name = "door"
            url = "/srv/door.mp4"
            "#,
        )
        .expect("valid");
        let (gate, yard, door) = (&cfg.cameras[0], &cfg.cameras[1], &cfg.cameras[2]);
        assert_eq!(gate.detect_url(), "rtsp://10.0.0.5/sub");
        assert_eq!(gate.record_url(), Some("rtsp://10.0.0.5/main"));
        assert!(!gate.is_file());
        // the record role on the detect input: recorded from its decoded frames, as with one url
        assert_eq!(yard.detect_url(), "rtsp://10.0.0.6/main");
        assert_eq!(yard.record_url(), None);
        assert_eq!(door.detect_url(), "/srv/door.mp4");
        assert_eq!(door.record_url(), None);
        assert!(door.is_file());
    }

    #[test]
    fn input_mistakes_name_the_input_and_key() {
        let err = parse(
            r#"
            [[cameras]]
            name = "a"
            url = "rtsp://h/main"
            [[cameras.inputs]]
            url = "rtsp://h/sub"
            roles = ["detect"]
            [[cameras]]
            name = "b"
            [[cameras.inputs]]
            url = "rtsp://h/sub"
            roles = ["detect"]
            [[cameras.inputs]]
            url = "rtsp://h/main"
            roles = ["detect", "record", "record"]
            [[cameras.inputs]]
            url = "rtsp://h/third"
            roles = ["record"]
            [[cameras]]
            name = "c"
            [[cameras.inputs]]
            url = "test://"
            roles = ["record"]
            [[cameras.inputs]]
            url = "rtsp://h/x"
            roles = []
            [[cameras.inputs]]
            url = "rtsp://h/y"
            roles = ["detekt"]
            [[cameras]]
            name = "d"
            [[cameras.inputs]]
            url = "/srv/sub.mp4"
            roles = ["detect"]
            [[cameras.inputs]]
            url = "rtsp://h/main"
            roles = ["record"]
            [[cameras]]
            name = "e"
            "#,
        )
        .expect_err("bad inputs");
        for want in [
            "cameras[0].inputs: set either `url` or [[cameras.inputs]], not both",
            "cameras[1].inputs[1].roles: 'record' is listed twice",
            "cameras[1].inputs[1].roles: a second input with the role \"detect\"",
            "cameras[1].inputs[2].roles: a second input with the role \"record\"",
            "cameras[2].inputs[0].url: a record-only input is recorded as it is sent, without decoding: it must be an encoded stream",
            "cameras[2].inputs[1].roles: must name at least one role",
            "cameras[2].inputs[2].roles: unknown role 'detekt'",
            "cameras[2].inputs: no input has the role \"detect\"",
            "cameras[3].inputs[1].url: the record input and the detect input must both be files or both be live streams",
            "cameras[4].url: must not be empty: set `url`, or list the camera's streams as [[cameras.inputs]]",
        ] {
            assert!(err.contains(want), "missing {want:?} in:\n{err}");
        }
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
}
