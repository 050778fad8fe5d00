//! `scenewatch validate` (the real binary) lists every problem of a config in one run — unknown keys anywhere,
//! values of the wrong type, infinities, values out of range — each under its key path, names the file, and exits 2.

mod common;

use std::process::Command;

use common::*;

/// Runs `scenewatch validate` on `text` written to `bad.toml`; returns the exit code and stderr.
fn validate(text: &str, env: &[(&str, &str)]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, text).expect("write");
    let mut cmd = Command::new(bin());
    cmd.arg("validate").arg(&path);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run scenewatch validate");
    (out.status.code(), no_panic(&out))
}

#[test]
fn every_problem_is_listed_in_one_run() {
    let (code, err) = validate(
        r#"
retries = 3
[shutdown]
drain_timeout_secs = inf
[[cameras]]
name = "gate"
url = "test://"
sample_fsp = 3.0
[[cameras.rules]]
label = "person"
min_score = 1.5
"#,
        &[],
    );
    assert_eq!(code, Some(2), "{err}");
    for line in [
        "bad.toml: 4 problem(s):",
        "  retries: unknown key (known here: mqtt, models, ingest, inference, shutdown, spool, media, homeassistant, summaries, metrics, language, cameras)",
        "  cameras[0].sample_fsp: unknown key (did you mean `sample_fps`?)",
        "  shutdown.drain_timeout_secs: must be in 0..=3600",
        "  cameras[0].rules[0].min_score: must be in 0..=1",
    ] {
        assert!(err.contains(line), "missing {line:?} in:\n{err}");
    }
}

#[test]
fn the_values_that_panicked_after_validate_are_rejected() {
    let (code, err) = validate(
        r#"
[shutdown]
drain_timeout_secs = inf
[ingest]
watchdog_secs = inf
retry_max_secs = inf
[mqtt]
reconnect_max_secs = inf
[media]
retain_days = 1e300
[[cameras]]
name = "gate"
url = "test://"
"#,
        &[],
    );
    assert_eq!(code, Some(2), "{err}");
    for line in [
        "bad.toml: 5 problem(s):",
        "  shutdown.drain_timeout_secs: must be in 0..=3600",
        "  ingest.watchdog_secs: must be in 1..=3600",
        "  ingest.retry_max_secs: must be in ingest.retry_min_secs..=3600",
        "  mqtt.reconnect_max_secs: must be > 0 and <= 3600",
        "  media.retain_days: must be > 0 and <= 3650",
    ] {
        assert!(err.contains(line), "missing {line:?} in:\n{err}");
    }
}

#[test]
fn environment_values_are_checked_and_named() {
    let camera = "[[cameras]]\nname = \"gate\"\nurl = \"test://\"\n";
    let (code, err) = validate(
        camera,
        &[
            ("SCENEWATCH__MQTT__PORT", "high"),
            ("SCENEWATCH__INGEST__WATCHDOG_SECS", "nan"),
            ("SCENEWATCH__MQTT__PASWORD", "0123"),
        ],
    );
    assert_eq!(code, Some(2), "{err}");
    for line in [
        "bad.toml: 3 problem(s):",
        "  mqtt.port: expected a whole number, found string \"high\" (from SCENEWATCH__MQTT__PORT)",
        "  ingest.watchdog_secs: must be in 1..=3600 (from SCENEWATCH__INGEST__WATCHDOG_SECS)",
        "  mqtt.pasword: unknown key (did you mean `password`?) (from SCENEWATCH__MQTT__PASWORD)",
    ] {
        assert!(err.contains(line), "missing {line:?} in:\n{err}");
    }
    // strings from the environment are taken as they are, numbers and booleans parse
    let (code, err) = validate(
        camera,
        &[
            ("SCENEWATCH__MQTT__PORT", "8883"),
            ("SCENEWATCH__MQTT__TLS", "TRUE"),
            ("SCENEWATCH__MQTT__USERNAME", "cam"),
            ("SCENEWATCH__MQTT__PASSWORD", "0123"),
            ("SCENEWATCH__MQTT__CLIENT_ID", "TRUE"),
            ("SCENEWATCH__MQTT__TOPIC_PREFIX", "1e5"),
        ],
    );
    assert_eq!(code, Some(0), "{err}");
}

#[test]
fn the_shipped_configs_validate() {
    for file in ["deploy/scenewatch.example.toml", "pipelines/demo.toml"] {
        let out = Command::new(bin())
            .arg("validate")
            .arg(repo().join(file))
            .output()
            .expect("run scenewatch validate");
        assert_eq!(out.status.code(), Some(0), "{file}: {}", stderr(&out));
    }
}

#[test]
fn a_config_whose_models_are_not_there_validates_with_a_warning_naming_the_key() {
    // in a temporary directory, run from there: `[models] dir` ("models", relative to the config file, else to
    // the working directory) is found in neither
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("cam.toml");
    std::fs::write(&path, "[[cameras]]\nname = \"gate\"\nurl = \"test://\"\n").expect("write");
    let run = |models: Option<&std::path::Path>| {
        let mut cmd = Command::new(bin());
        cmd.arg("validate").arg(&path).current_dir(dir.path());
        if let Some(m) = models {
            cmd.env("SCENEWATCH__MODELS__DIR", m);
        }
        let out = cmd.output().expect("run scenewatch validate");
        (out.status.code(), no_panic(&out))
    };
    let (code, err) = run(None);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("warning: models.detector:") && err.contains("stops at start-up"),
        "{err}"
    );
    // the shipped models where they are: no such warning
    let (code, err) = run(Some(&repo().join("models")));
    assert_eq!(code, Some(0), "{err}");
    assert!(!err.contains("models.detector"), "{err}");
}
