//! The daemon's configuration: one TOML file plus `SCENEWATCH__SECTION__KEY` environment overrides.
//!
//! This module owns the top-level `Config`, loading through the `config` crate with the environment overrides, and
//! the orchestration of the checks: `validate()` asks each section to check itself and lists *every* problem with
//! its key path (`cameras[1].sample_fps: must be in 0.01..=60`) instead of stopping at the first, and `dry_build()`
//! makes what `run` derives from the config (durations, queues, the rule engine…) without I/O, so a config that
//! loads cannot panic a stage later. Unknown keys are errors (`deny_unknown_fields`) so a typo never silently becomes
//! a default; `lenient` reads the file so that unknown keys and values of the wrong type are listed together with
//! the range problems. Every number has a finite range.
//!
//! Each section is a type in its own file, with its defaults (written once, there), its `validate` and, where `run`
//! derives something from it, its part of `dry_build`: `mqtt` (with `[homeassistant]`), `spool`, `shutdown`,
//! `metrics`, `summaries`, `media`, `ingest`, `inference` (with `[models]`), `language` and `camera`
//! (`[[cameras]]` with rules, zones and prompts). Every type is re-exported here (`crate::config::CameraConfig`).
//! Nothing here depends on the inference stage: rules are written in `crate::labels`, and the language head reads
//! its settings from `LanguageConfig`. The one exception reads a file, not a stage: rule labels are checked against
//! the detector's model card, read through `infer::card` (which imports only `crate::labels`).

mod camera;
mod inference;
mod ingest;
mod language;
mod lenient;
mod media;
mod metrics;
mod mqtt;
mod shutdown;
mod spool;
mod summaries;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

pub use camera::{
    valid_camera_name, CameraConfig, ClassifierConfig, InputConfig, PromptConfig, RuleConfig,
    Severity, UnusualConfig, ZoneConfig, ROLES,
};
pub use inference::{
    InferenceConfig, ModelsConfig, ProviderChoice, ThreadPool, WorkerPlan, AUTO_MAX_WORKERS,
};
pub use ingest::{DropPolicy, IngestConfig};
pub use language::LanguageConfig;
pub use media::MediaConfig;
pub use metrics::MetricsConfig;
pub use mqtt::{HomeAssistantConfig, MqttConfig, Secret};
pub use shutdown::ShutdownConfig;
pub use spool::SpoolConfig;
pub use summaries::SummariesConfig;

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

/// One validation problem: the key path and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub message: String,
}

impl Problem {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }
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
    /// The link Home Assistant shows on each camera's device: `[homeassistant] configuration_url`, else the web
    /// page when the media API's base URL is known (`[metrics] media = true`).
    pub fn device_url(&self) -> Option<String> {
        self.homeassistant
            .configuration_url
            .clone()
            .or_else(|| self.metrics.page_url())
    }

    /// Threads of each camera's video decoder on this machine for the enabled cameras (see
    /// `IngestConfig::decoder_threads`).
    pub fn decoder_threads(&self) -> u32 {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        self.ingest
            .decoder_threads(self.cameras.iter().filter(|c| c.enabled).count(), cores)
    }

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
        let (mut cfg, mut problems) = Self::read(path, env.clone())?;
        if let Some(c) = cfg.as_mut() {
            c.stamp_heads();
        }
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
        if let Some(file) = cfg.metrics.token_file.clone() {
            match std::fs::read_to_string(&file) {
                Ok(secret) => {
                    cfg.metrics.token = Some(Secret::new(
                        secret.trim_end_matches(['\n', '\r']).to_string(),
                    ))
                }
                Err(e) => problems.push(Problem {
                    key: "metrics.token_file".into(),
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
        self.mqtt.validate(&mut c);
        self.homeassistant.validate(&mut c);
        self.metrics.validate(&mut c);
        self.summaries.validate(&mut c);
        self.media.validate(&mut c);
        self.spool.validate(&mut c);
        self.ingest.validate(&mut c);
        self.inference.validate(&mut c);
        self.language.validate(&mut c);
        self.shutdown.validate(&mut c);
        if self.cameras.is_empty() {
            c.bad("cameras", "at least one [[cameras]] entry is needed");
        }
        let vocabulary = self.models.rule_vocabulary(&mut c);
        for (i, cam) in self.cameras.iter().enumerate() {
            cam.validate(
                &format!("cameras[{i}]"),
                &self.cameras[..i],
                vocabulary.as_ref(),
                &mut c,
            );
            for (j, h) in cam.classifiers.iter().enumerate() {
                self.check_head(&format!("cameras[{i}].classifiers[{j}]"), h, &mut c);
            }
        }
        c.out
    }

    /// Notes each task head file's size and modification time, so a reload sees a retrained head as a changed
    /// camera (its config text can be the same).
    fn stamp_heads(&mut self) {
        let models = self.models.clone();
        for h in self
            .cameras
            .iter_mut()
            .flat_map(|c| c.classifiers.iter_mut())
        {
            h.file_stamp = std::fs::metadata(models.resolve(&h.file))
                .ok()
                .map(|m| (m.len(), m.modified().ok()));
        }
    }

    /// A task head's file must be readable and know the classes `alert_on` names (whether it fits the models is
    /// checked when the daemon opens them: that needs their hashes).
    fn check_head(&self, key: &str, h: &ClassifierConfig, c: &mut Checks) {
        let path = self.models.resolve(&h.file);
        match crate::adapt::head::HeadFile::load(&path) {
            Err(e) => c.bad(format!("{key}.file"), e.to_string()),
            Ok(head) => {
                for (k, a) in h.alert_on.iter().enumerate() {
                    if !head.classes.contains(a) {
                        c.bad(
                            format!("{key}.alert_on[{k}]"),
                            format!(
                                "'{a}' is not a class of {} ({})",
                                path.display(),
                                head.classes.join(", ")
                            ),
                        );
                    }
                }
            }
        }
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
        let mut c = Checks::default();
        self.mqtt.dry_build(&mut c);
        self.shutdown.dry_build(&mut c);
        let _ = self.spool.max_bytes();
        self.media.dry_build(&mut c);
        self.ingest.dry_build(&mut c);
        let _ = self.inference_plan();
        // per camera (disabled ones too: a reload may enable them)
        for (i, cam) in self.cameras.iter().enumerate() {
            cam.dry_build(&format!("cameras[{i}]"), &self.ingest, &self.media, &mut c);
        }
        // the events stage: rule states (zones, schedules, trackers), prompt hysteresis, period summaries
        let period = self.summaries.period_minutes * 60.0;
        let engine =
            crate::events::Engine::new(&self.cameras, Default::default(), Box::new(String::new))
                .with_summaries(self.summaries.enabled.then_some(period));
        drop(engine);
        for cam in &self.cameras {
            let _ = crate::events::summary::SummaryState::new(&cam.name, period);
        }
        if c.out.is_empty() {
            Ok(())
        } else {
            Err(c.out)
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

/// Collects the problems that the sections' `validate` and `dry_build` find.
#[derive(Default)]
struct Checks {
    out: Vec<Problem>,
}

impl Checks {
    /// Keeps the problem of a conversion that failed.
    fn keep(&mut self, r: Result<(), Problem>) {
        if let Err(p) = r {
            self.out.push(p)
        }
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    /// Loads `toml_text` from a file `c.toml`; an error as its message.
    pub(super) fn parse(toml_text: &str) -> Result<Config, String> {
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
