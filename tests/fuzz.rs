//! Property-based fuzzing (proptest) of the two parsers that take untrusted input: the MQTT `set` command parser
//! and the config loader + validator. The property is the one users rely on: any input gives Ok or a clear error,
//! never a panic; and whatever the parser accepts is one of the documented commands. Executions are printed.

use std::cell::Cell;
use std::io::Write;

use proptest::prelude::*;
use proptest::test_runner::{Config as PtConfig, TestRunner};
use scenewatch::config::Config;
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
        Ok(Command::Detect(_)) | Ok(Command::Snapshot) => {}
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

#[test]
fn config_loader_never_panics() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("fuzz.toml");
    let mut runner = TestRunner::new(PtConfig {
        cases: 10_000,
        failure_persistence: None,
        ..PtConfig::default()
    });
    let accepted = std::cell::Cell::new(0u32);
    let rejected = std::cell::Cell::new(0u32);
    runner
        .run(&mutant(), |text| {
            let mut f = std::fs::File::create(&path).expect("write");
            f.write_all(text.as_bytes()).expect("write");
            drop(f);
            match Config::load(&path) {
                Ok(cfg) => {
                    accepted.set(accepted.get() + 1);
                    assert!(cfg.validate().is_empty());
                }
                Err(e) => {
                    rejected.set(rejected.get() + 1);
                    let msg = e.to_string();
                    assert!(msg.contains("fuzz.toml"), "errors name the file: {msg}");
                }
            }
            Ok(())
        })
        .expect("config mutants");
    eprintln!(
        "fuzz: config loader ran 10000 mutants of the example config: {} accepted, {} rejected with a message naming the file, 0 panics",
        accepted.get(),
        rejected.get()
    );
}
