//! Property-based fuzzing (proptest) of the two parsers that take untrusted input: the MQTT `set` command parser
//! and the config loader + validator. The property is the one users rely on: any input gives Ok or a clear error,
//! never a panic; whatever the command parser accepts is one of the documented commands, and every config that
//! `validate` accepts builds every stage (`Config::dry_build`: what `run` derives, without I/O) with no panic and no
//! error. Executions are counted and printed.

use std::cell::Cell;
use std::path::Path;

use proptest::prelude::*;
use proptest::test_runner::{Config as PtConfig, TestRunner};
use scenewatch::config::{Config, ConfigError};
use scenewatch::control::{self, Command};

fn rules() -> Vec<String> {
    vec![
        "person".into(),
        "vehicle".into(),
        "people walking on a path".into(),
    ]
}

/// JSON-ish command payloads built from the command vocabulary, so the fuzzer reaches past the JSON parser.
fn command_like() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        Just("detect"),
        Just("rule"),
        Just("armed"),
        Just("snapshot"),
        Just("unusual"),
        Just("DETECT"),
        Just("")
    ];
    let value = prop_oneof![
        Just("true".to_string()),
        Just("false".to_string()),
        Just("null".to_string()),
        Just("\"on\"".to_string()),
        Just("\"OFF\"".to_string()),
        Just("\"person\"".to_string()),
        Just("\"cat\"".to_string()),
        Just("\"reset\"".to_string()),
        any::<i64>().prop_map(|i| i.to_string()),
        any::<f64>().prop_map(|f| format!("{f}")),
        "\\PC{0,12}".prop_map(|s| serde_json::to_string(&s).unwrap_or_default()),
        Just("[]".to_string()),
        Just("{\"a\":1}".to_string()),
    ];
    proptest::collection::vec((key, value), 0..4).prop_map(|kv| {
        let body: Vec<String> = kv.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
        format!("{{{}}}", body.join(","))
    })
}

fn check_command(payload: &[u8]) {
    match control::parse("cam", payload, &rules()) {
        Ok(Command::Detect(_)) | Ok(Command::Snapshot) | Ok(Command::UnusualReset) => {}
        Ok(Command::Arm { rule, .. }) => {
            assert!(rules().contains(&rule), "accepted unknown rule {rule}")
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

#[test]
fn command_parser_never_panics() {
    // a runner per strategy: one runner counts its cases across runs, so a second run on it would stop at once
    let runner = || {
        TestRunner::new(PtConfig {
            cases: 100_000,
            failure_persistence: None,
            ..PtConfig::default()
        })
    };
    let (raw, shaped) = (Cell::new(0u32), Cell::new(0u32));
    let bytes = proptest::collection::vec(any::<u8>(), 0..6000);
    runner()
        .run(&bytes, |b| {
            raw.set(raw.get() + 1);
            check_command(&b);
            Ok(())
        })
        .expect("raw bytes");
    runner()
        .run(&command_like(), |s| {
            shaped.set(shaped.get() + 1);
            check_command(s.as_bytes());
            Ok(())
        })
        .expect("command-like JSON");
    eprintln!(
        "fuzz: command parser ran {} cases ({} raw byte strings up to 6000 B, {} command-shaped JSON), 0 panics",
        raw.get() + shaped.get(),
        raw.get(),
        shaped.get()
    );
}

/// The shipped example config, mutated line by line: dropped, duplicated, a value replaced by junk, or bytes
/// flipped. Each mutant goes through the real loader (file + environment) and the validator.
fn mutant() -> impl Strategy<Value = String> {
    let base = include_str!("../deploy/scenewatch.example.toml");
    let lines: Vec<String> = base.lines().map(str::to_string).collect();
    let n = lines.len();
    let junk = prop_oneof![
        Just("-1".to_string()),
        Just("1e400".to_string()),
        Just("nan".to_string()),
        Just("\"\"".to_string()),
        Just("[1, \"a\"]".to_string()),
        Just("{ x = 1 }".to_string()),
        Just("\"rtsp://\"".to_string()),
        Just("\"../../etc/passwd\"".to_string()),
        Just("18446744073709551616".to_string()),
        "\\PC{0,16}".prop_map(|s| format!("\"{}\"", s.replace(['"', '\\'], ""))),
        "\\PC{0,8}",
    ];
    proptest::collection::vec((0..n, 0u8..4, junk, any::<u8>()), 1..6).prop_map(move |edits| {
        let mut l = lines.clone();
        for (i, op, junk, byte) in edits {
            if l.is_empty() {
                break;
            }
            let i = i % l.len();
            match op {
                0 => {
                    l.remove(i);
                }
                1 => {
                    let dup = l[i].clone();
                    l.insert(i, dup);
                }
                2 => {
                    if let Some(eq) = l[i].find('=') {
                        l[i] = format!("{}= {junk}", &l[i][..eq]);
                    }
                }
                _ => {
                    let mut b = l[i].clone().into_bytes();
                    if !b.is_empty() {
                        let k = byte as usize % b.len();
                        b[k] = byte;
                    }
                    l[i] = String::from_utf8_lossy(&b).to_string();
                }
            }
        }
        l.join("\n")
    })
}

/// Every section and every numeric key, each at a valid value: the base of the numeric mutants, so that every
/// number the config has is fuzzed (the example config leaves many at their defaults).
const FULL: &str = r#"
[mqtt]
host = "127.0.0.1"
port = 1883
client_id = "scenewatch"
topic_prefix = "scenewatch"
keep_alive_secs = 15
outbox_capacity = 10000
reconnect_max_secs = 30.0
[models]
dir = "models"
[ingest]
frame_queue = 32
clip_queue = 8
drop_policy = "drop_oldest"
watchdog_secs = 20.0
retry_min_secs = 1.0
retry_max_secs = 30.0
[inference]
workers = 2
intra_threads = 1
detector_threshold = 0.35
nms_iou = 0.6
pose_input = 384
encoder_stride = 2
[shutdown]
drain_timeout_secs = 30.0
[spool]
max_mb = 256.0
[media]
jpeg_quality = 85
retain_days = 7.0
max_mb = 2048.0
clip_pre_roll_seconds = 5.0
clip_post_roll_seconds = 5.0
clip_max_seconds = 300.0
clip_fps = 5
clip_width = 640
clip_jpeg_quality = 70
[homeassistant]
enabled = true
[summaries]
enabled = true
period_minutes = 5.0
[metrics]
listen = "127.0.0.1:9464"
[language]
top_k = 16
w_classifier = 1.0
w_detections = 0.5
w_empty = 0.5
alpha = 0.5
temperature = 4.0
[[cameras]]
name = "gate"
url = "rtsp://192.0.2.10/stream"
sample_fps = 2.0
clip_seconds = 4.0
clip_overlap_seconds = 1.0
motion_gate = true
motion_min_area = 0.003
timezone = "Europe/Brussels"
[[cameras.zones]]
name = "drive"
points = [[0.1, 0.5], [0.9, 0.5], [0.9, 1.0], [0.1, 1.0]]
[[cameras.rules]]
label = "person"
min_score = 0.5
min_frames = 2
end_after_seconds = 10.0
cooldown_seconds = 30.0
dwell_seconds = 5.0
min_count = 1
zones = ["drive"]
schedule = ["mon-fri 18:00-07:00"]
[[cameras.rules]]
label = "person"
posture = "lying"
dwell_seconds = 10.0
[[cameras.prompts]]
text = "a delivery van at the gate"
threshold = 0.75
exit_threshold = 0.7
enter_clips = 1
exit_clips = 2
[[cameras]]
name = "walkway"
url = "file:///srv/video.mp4"
enabled = false
sample_fps = 60.0
clip_seconds = 4.0
"#;

/// Values at and around the ranges' edges, and the ones the issues named.
fn number_junk() -> impl Strategy<Value = String> {
    let edges = [
        "0",
        "-0.0",
        "1",
        "-1",
        "1e-9",
        "5e-324",
        "0.01",
        "0.1",
        "0.25",
        "0.5",
        "0.99",
        "2",
        "16",
        "30",
        "60",
        "61",
        "100",
        "255",
        "256",
        "257",
        "600",
        "1000",
        "1024",
        "1440",
        "3600",
        "3601",
        "3650",
        "4096",
        "65535",
        "65536",
        "86400",
        "86401",
        "1000000",
        "1048576",
        "10485760",
        "1e9",
        "4294967295",
        "4294967296",
        "9223372036854775807",
        "1e18",
        "1e19",
        "1e300",
        "1.7976931348623157e308",
        "inf",
        "-inf",
        "nan",
        "\"0123\"",
        "\"TRUE\"",
        "\"1e5\"",
        "\"\"",
        "true",
    ];
    prop_oneof![
        3 => proptest::sample::select(edges.to_vec()).prop_map(str::to_string),
        1 => any::<f64>().prop_map(|x| if x.is_nan() {
            "nan".to_string()
        } else if x.is_infinite() {
            if x > 0.0 { "inf" } else { "-inf" }.to_string()
        } else {
            format!("{x:e}")
        }),
        1 => any::<i64>().prop_map(|i| i.to_string()),
    ]
}

/// FULL with up to 6 of its values replaced by numeric junk, or dropped (so the default applies).
fn numeric_mutant() -> impl Strategy<Value = String> {
    let lines: Vec<String> = FULL.lines().map(str::to_string).collect();
    let n = lines.len();
    proptest::collection::vec((0..n, any::<bool>(), number_junk()), 1..7).prop_map(move |edits| {
        let mut l = lines.clone();
        for (i, drop, junk) in edits {
            let Some(eq) = l[i].find(" = ") else { continue };
            if drop {
                l[i] = String::new();
            } else {
                l[i] = format!("{} = {junk}", &l[i][..eq]);
            }
        }
        l.join("\n")
    })
}

/// The property: loading never panics; a rejection names the file; and whatever `validate` accepts, every stage
/// builds from (no panic, no error) and `Config::load` accepts too.
fn check_config(path: &Path, text: &str) -> Result<bool, TestCaseError> {
    std::fs::write(path, text).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let loaded = Config::load(path);
    if let Ok(cfg) = Config::load_unvalidated(path) {
        if cfg.validate().is_empty() {
            if let Err(problems) = cfg.dry_build() {
                return Err(TestCaseError::fail(format!(
                    "validate accepted values a stage cannot use: {problems:?}\n{text}"
                )));
            }
            prop_assert!(
                loaded.is_ok(),
                "validate accepted, load did not: {loaded:?}"
            );
        }
    }
    match loaded {
        Ok(cfg) => {
            prop_assert!(cfg.validate().is_empty());
            prop_assert!(cfg.dry_build().is_ok());
            Ok(true)
        }
        Err(e) => {
            let msg = e.to_string();
            prop_assert!(msg.contains("fuzz.toml"), "errors name the file: {msg}");
            if let ConfigError::Invalid { problems, .. } = &e {
                prop_assert!(!problems.is_empty(), "{msg}");
            }
            Ok(false)
        }
    }
}

#[test]
fn config_loader_never_panics_and_what_validates_builds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("fuzz.toml");
    // the numeric base is itself valid, or its mutants would only test rejection
    check_config(&path, FULL).expect("FULL loads");
    assert!(Config::load(&path).is_ok(), "{:?}", Config::load(&path));
    let runner = || {
        TestRunner::new(PtConfig {
            cases: 10_000,
            failure_persistence: None,
            ..PtConfig::default()
        })
    };
    let counts = [(); 4].map(|_| Cell::new(0u32));
    let count = |strategy: usize, accepted: bool| {
        let c = &counts[strategy * 2 + usize::from(!accepted)];
        c.set(c.get() + 1);
    };
    runner()
        .run(&mutant(), |text| {
            count(0, check_config(&path, &text)?);
            Ok(())
        })
        .expect("mutants of the example config");
    runner()
        .run(&numeric_mutant(), |text| {
            count(1, check_config(&path, &text)?);
            Ok(())
        })
        .expect("numeric mutants of a config with every key");
    let [a0, r0, a1, r1] = counts.map(|c| c.get());
    eprintln!(
        "fuzz: config loader ran {} cases: {} mutants of the example config ({a0} accepted, {r0} rejected), {} \
         numeric mutants of a config with every key ({a1} accepted, {r1} rejected); every rejection named the file, \
         every accepted config built every stage, 0 panics",
        a0 + r0 + a1 + r1,
        a0 + r0,
        a1 + r1,
    );
}

/// The values issue 13 found accepted by `validate` and panicking later in `Duration::from_secs_f64`: each is now
/// rejected, naming its key.
#[test]
fn issue_values_are_rejected_with_their_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("fuzz.toml");
    for (section, key, value) in [
        ("shutdown", "drain_timeout_secs", "inf"),
        ("ingest", "watchdog_secs", "inf"),
        ("ingest", "retry_max_secs", "inf"),
        ("mqtt", "reconnect_max_secs", "inf"),
        ("media", "retain_days", "1e300"),
    ] {
        // each of these keys appears once in FULL, in its section
        let text: Vec<String> = FULL
            .lines()
            .map(
                |l| match l.strip_prefix(key).and_then(|r| r.strip_prefix(" = ")) {
                    Some(_) => format!("{key} = {value}"),
                    None => l.to_string(),
                },
            )
            .collect();
        let text = text.join("\n");
        assert!(
            text.contains(&format!("[{section}]"))
                && text.contains(&format!("\n{key} = {value}\n"))
        );
        std::fs::write(&path, &text).expect("write");
        let err = Config::load(&path).expect_err("rejected").to_string();
        assert!(
            err.contains(&format!(
                "fuzz.toml: 1 problem(s):\n  {section}.{key}: must be"
            )),
            "{section}.{key} = {value}:\n{err}"
        );
        assert!(check_config(&path, &text).is_ok());
    }
}

/// The plain `ON`/`OFF` switch parser (`<prefix>/<camera>/detect/set`, `…/<rule>/armed/set`): any bytes, never a
/// panic, and only the documented words accepted.
#[test]
fn switch_parser_never_panics_and_accepts_only_on_off() {
    let mut runner = TestRunner::new(PtConfig {
        cases: 20_000,
        failure_persistence: None,
        ..PtConfig::default()
    });
    let words = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..200),
        "[ \t\n]{0,3}(ON|OFF|on|off|On|oFf|true|false|1|0|yes|no|maybe)[ \t\n]{0,3}"
            .prop_map(String::into_bytes),
    ];
    runner
        .run(&words, |b| {
            match scenewatch::control::parse_switch(&b) {
                Ok(on) => {
                    let w = String::from_utf8_lossy(&b).trim().to_ascii_lowercase();
                    let want = match w.as_str() {
                        "on" | "true" | "1" => true,
                        "off" | "false" | "0" => false,
                        other => panic!("accepted {other:?}"),
                    };
                    assert_eq!(on, want);
                }
                Err(e) => assert!(!e.to_string().is_empty()),
            }
            Ok(())
        })
        .expect("switch payloads");
}
