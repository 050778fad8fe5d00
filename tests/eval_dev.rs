//! `scenewatch eval eval/dev.toml --json --sweep person` through the real binary: the development manifest's
//! figures must keep the levels measured in docs/eval.md ("Measured on the development manifest"), with the
//! default rules at the thresholds of the detector's model card; and the sweep's replay must give exactly what
//! the live run gave at the card's level. Cuts the timelines first (scripts/make_timelines.sh --dev: idempotent,
//! rebuilds only what changed).

mod common;

use std::time::Duration;

use common::*;

// Floors and ceilings, each set at or just below the value measured (docs/eval.md). Recall over a few truth
// intervals moves in large steps, so "just below 1" means every interval found.
const PERSON_RECALL_MIN: f64 = 0.99;
const VEHICLE_RECALL_MIN: f64 = 0.99;
/// Measured 0 over 0.27 h of tuning video, where one false alert is 3.8/h: none allowed.
const FALSE_ALERTS_PER_HOUR_MAX: f64 = 0.0;
/// Measured 0 (the alert dates from the confirmed object's first sighting).
const START_LATENCY_MEDIAN_MAX_S: f64 = 1.0;
/// Measured 2 s (person) and 3 s (vehicle): the end of the clip that confirmed the object; the goal is
/// at most clip_seconds + 1 = 5 s.
const NOTICE_LATENCY_MEDIAN_MAX_S: f64 = 5.0;
/// Measured 8 of 9.
const PROMPT_TOP1_MIN: f64 = 0.85;
/// Photos at the card's alert levels: person precision 1.00 and recall 0.86 (38/44: small vtest walkers),
/// vehicle 1.00 and 1.00.
const PHOTO_PRECISION_MIN: f64 = 0.99;
const PERSON_PHOTO_RECALL_MIN: f64 = 0.85;
const VEHICLE_PHOTO_RECALL_MIN: f64 = 0.99;
/// Held apart, measured 1.0 (2 of 2 intervals) and prompts 3 of 5: checked so they are reported, never tuned on.
const HELD_PERSON_RECALL_MIN: f64 = 0.99;
const HELD_PROMPT_TOP1_MIN: f64 = 0.59;

fn figure(report: &serde_json::Value, label: &str, key: &str) -> f64 {
    report["labels"][label][key]
        .as_f64()
        .unwrap_or_else(|| panic!("{label}.{key} missing or null in {report}"))
}

#[test]
fn dev_manifest_keeps_its_measured_figures() {
    cut_timelines();

    let out = eval_json(
        &repo(),
        &[
            "eval/dev.toml",
            "--sweep",
            "person",
            "--sweep-scores",
            "0.45:0.6:0.05",
            "--sweep-frames",
            "2",
        ],
        &[],
        Duration::from_secs(300),
    );
    let [report, sweep] = &out[..] else {
        panic!("eval --json --sweep prints the report, then the sweep: {out:?}");
    };
    eprintln!("{report:#}");

    assert!(figure(report, "person", "recall") >= PERSON_RECALL_MIN);
    assert!(figure(report, "vehicle", "recall") >= VEHICLE_RECALL_MIN);
    for label in ["person", "vehicle"] {
        assert!(figure(report, label, "false_alerts_per_hour") <= FALSE_ALERTS_PER_HOUR_MAX);
        assert!(figure(report, label, "start_latency_median_s") <= START_LATENCY_MEDIAN_MAX_S);
        assert!(figure(report, label, "notice_latency_median_s") <= NOTICE_LATENCY_MEDIAN_MAX_S);
        assert!(figure(report, label, "photo_precision") >= PHOTO_PRECISION_MIN);
    }
    assert!(figure(report, "person", "photo_recall") >= PERSON_PHOTO_RECALL_MIN);
    assert!(figure(report, "vehicle", "photo_recall") >= VEHICLE_PHOTO_RECALL_MIN);

    // the sweep replays the run's own inference outputs: at the card's person level (0.55, min_frames 2 as the
    // default rule) it must give exactly the live run's person figures; and lowering the level never removes a
    // false alert (0.45 is where the dev media show the panned mandrill as a person)
    let points = sweep["sweep"]["points"].as_array().expect("sweep points");
    let at = |score: f64| {
        points
            .iter()
            .find(|p| (p["min_score"].as_f64().unwrap_or(-1.0) - score).abs() < 1e-3)
            .unwrap_or_else(|| panic!("no sweep point at {score}: {sweep}"))
    };
    let live = &report["labels"]["person"];
    for key in [
        "recall",
        "false_alerts_per_hour",
        "start_latency_median_s",
        "notice_latency_median_s",
    ] {
        assert_eq!(
            at(0.55)["tuning"][key],
            live[key],
            "replay vs live run: {key}"
        );
    }
    let fa = |score: f64| {
        at(score)["tuning"]["false_alerts_per_hour"]
            .as_f64()
            .unwrap_or(-1.0)
    };
    assert!(
        fa(0.45) > 0.0 && fa(0.45) >= fa(0.5) && fa(0.5) >= fa(0.55),
        "{sweep}"
    );
    let top1 = report["prompts"]["top1"].as_f64().expect("prompts.top1");
    assert!(top1 >= PROMPT_TOP1_MIN, "prompt top-1 {top1}");

    // the six tuning videos are reported, each by its manifest `file`; the held-apart one only under held_apart
    let files: Vec<&str> = report["videos"]
        .as_array()
        .expect("videos")
        .iter()
        .filter_map(|v| v["file"].as_str())
        .collect();
    assert_eq!(files.len(), 6, "{files:?}");
    assert!(files.iter().all(|f| !f.contains("tl_person_b")));
    let held = &report["held_apart"];
    assert_eq!(held["videos"].as_array().map(Vec::len), Some(1));
    assert!(figure(held, "person", "recall") >= HELD_PERSON_RECALL_MIN);
    let held_top1 = held["prompts"]["top1"]
        .as_f64()
        .expect("held_apart.prompts.top1");
    assert!(
        held_top1 >= HELD_PROMPT_TOP1_MIN,
        "held-apart prompt top-1 {held_top1}"
    );
}
