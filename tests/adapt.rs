//! `scenewatch adapt` on real media (issue 15, part 1): a three-class head — an empty street, people on a
//! CCTV walkway, a person at a desk seen by a webcam — trained from a labelled folder (photos with augmentation,
//! video time ranges in `ranges.csv`) and reported on media it never saw: the street from the other viewpoint
//! (leuvenB; training had leuvenA and a building), the last 36 s of vtest.avi (training had its first 40 s) and the
//! second half of the webcam video. The held-apart macro F1 must reach the floor the closing note reports, and
//! the same examples with shuffled labels must fall near chance (proof the test can fail). Then the head runs in
//! the daemon: its class is published retained and the `desk` class raises a `kind = "classifier"` alert over the
//! webcam stretch of a timeline, and a head trained on other models is refused.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;

/// Held-apart macro F1 the trained head must reach: measured 1.00 (16 of 16, seeds 1, 2, 3 and 42, logistic and
/// MLP; docs/adapt.md); the floor allows two misses.
const HELD_APART_F1_FLOOR: f64 = 0.85;
/// Shuffled labels (3 classes, chance ≈ 0.33): measured 0.23, 0.00, 0.59 and 0.64 (seeds 1, 2, 3, 42). A
/// shuffle keeps some labels in place, so the ceiling is above chance, and still well below the floor.
const SHUFFLED_F1_CEILING: f64 = 0.7;

struct Sets {
    _dir: tempfile::TempDir,
    train: PathBuf,
    test: PathBuf,
    config: PathBuf,
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

fn sets() -> Sets {
    let tl = cut_timelines();
    let dir = tempfile::tempdir().expect("tempdir");
    let train = dir.path().join("train");
    let test = dir.path().join("test");
    for d in [train.join("empty"), test.join("empty")] {
        std::fs::create_dir_all(&d).expect("mkdir");
    }
    for (photo, to) in [
        ("leuvenA.jpg", &train),
        ("building.jpg", &train),
        ("leuvenB.jpg", &test),
    ] {
        std::fs::copy(media(photo), to.join("empty").join(photo)).expect("copy photo");
    }
    let vtest = media("vtest.avi");
    let cap13 = media("cap13_edit2.mp4");
    write(
        &train.join("ranges.csv"),
        &format!(
            "file,start,end,class\n{},0,8,empty\n{},0,40,people\n{},0,16,desk\n",
            tl.join("tl_person_a.mkv").display(),
            vtest.display(),
            cap13.display()
        ),
    );
    write(
        &test.join("ranges.csv"),
        &format!(
            "{},0,8,empty\n{},44,80,people\n{},16,31,desk\n",
            tl.join("tl_person_b.mkv").display(),
            vtest.display(),
            cap13.display()
        ),
    );
    let config = dir.path().join("adapt.toml");
    write(
        &config,
        &format!(
            "[mqtt]\nhost = \"127.0.0.1\"\n[models]\ndir = \"{}\"\n[[cameras]]\nname = \"site\"\nurl = \"test://\"\n\
             sample_fps = 2.0\nclip_seconds = 4.0\n",
            repo().join("models").display()
        ),
    );
    Sets {
        _dir: dir,
        train,
        test,
        config,
    }
}

/// Runs `scenewatch adapt ARGS`, asserts it succeeded without a panic, returns stdout.
fn adapt(args: &[&str]) -> String {
    let out = Command::new(bin())
        .arg("adapt")
        .args(args)
        .output()
        .expect("run scenewatch adapt");
    let log = no_panic(&out);
    assert!(out.status.success(), "adapt {args:?} failed: {log}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The held-apart report of `adapt test --examples … --json` (its last line).
fn held_apart(s: &Sets, head: &Path) -> serde_json::Value {
    let out = adapt(&[
        "test",
        "--config",
        s.config.to_str().expect("utf-8"),
        "--head",
        head.to_str().expect("utf-8"),
        "--examples",
        s.test.to_str().expect("utf-8"),
        "--json",
    ]);
    let last = out.lines().last().expect("a report line");
    let v: serde_json::Value = serde_json::from_str(last).expect("json");
    v["report"].clone()
}

fn train(s: &Sets, out: &Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec![
        "train",
        "--config",
        s.config.to_str().expect("utf-8"),
        "--examples",
        s.train.to_str().expect("utf-8"),
        "--out",
        out.to_str().expect("utf-8"),
        "--json",
    ];
    args.extend_from_slice(extra);
    let stdout = adapt(&args);
    serde_json::from_str(stdout.lines().last().expect("a line")).expect("json")
}

#[test]
fn a_head_trained_on_a_few_examples_generalises_and_shuffled_labels_do_not() {
    let s = sets();
    let dir = tempfile::tempdir().expect("tempdir");
    let head = dir.path().join("scene.json");
    let t = train(&s, &head, &[]);
    // the head file: classes, the models it was trained on, the recipe; the report and learning curve beside it
    let h: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&head).expect("head file")).expect("head json");
    assert_eq!(h["classes"], serde_json::json!(["desk", "empty", "people"]));
    let roles: Vec<&str> = h["models"]
        .as_array()
        .expect("models")
        .iter()
        .filter_map(|m| m["role"].as_str())
        .collect();
    assert_eq!(roles, vec!["detector", "encoder"]);
    assert!(h["models"][0]["sha256"]
        .as_str()
        .is_some_and(|x| x.len() == 64));
    let svg = std::fs::read_to_string(t["curve_svg"].as_str().expect("curve path")).expect("svg");
    assert!(
        svg.contains("<svg") && svg.contains("polyline") || svg.contains("<path"),
        "a drawn curve"
    );
    let text =
        std::fs::read_to_string(t["report_text"].as_str().expect("report path")).expect("report");
    assert!(
        text.contains("precision") && text.contains("confusion"),
        "{text}"
    );
    assert!(t["report"]["chosen_epoch"].as_u64().is_some(), "{t}");

    let r = held_apart(&s, &head);
    let f1 = r["macro_f1"].as_f64().expect("macro_f1");
    eprintln!("held-apart report: {r:#}");
    assert!(r["n"].as_u64().is_some_and(|n| n >= 15), "{r}");
    assert!(
        f1 >= HELD_APART_F1_FLOOR,
        "held-apart macro F1 {f1:.3} < {HELD_APART_F1_FLOOR}: {r:#}"
    );

    // the control: the same examples with their labels shuffled
    let shuffled = dir.path().join("shuffled.json");
    train(&s, &shuffled, &["--shuffle-labels"]);
    let c = held_apart(&s, &shuffled);
    let cf1 = c["macro_f1"].as_f64().expect("macro_f1");
    eprintln!("shuffled-label control: {c:#}");
    assert!(
        cf1 <= SHUFFLED_F1_CEILING && cf1 < f1 - 0.2,
        "shuffled labels must score near chance: {cf1:.3} (real labels {f1:.3})"
    );

    // one line per photo, sorted by score; the street from the held-apart viewpoint reads as empty
    let out = adapt(&[
        "test",
        "--config",
        s.config.to_str().expect("utf-8"),
        "--head",
        head.to_str().expect("utf-8"),
        "--json",
        media("leuvenB.jpg").to_str().expect("utf-8"),
    ]);
    let line: serde_json::Value =
        serde_json::from_str(out.lines().next().expect("a line")).expect("json");
    let scores = line["scores"].as_array().expect("scores");
    assert_eq!(scores.len(), 3);
    assert!(scores[0]["score"].as_f64() >= scores[1]["score"].as_f64());
    assert!(line["clip"].is_null());

    // a head trained on other model weights is refused with a clear error
    let mut other = h.clone();
    other["models"][1]["sha256"] = serde_json::json!("0".repeat(64));
    let other_path = dir.path().join("other.json");
    std::fs::write(&other_path, serde_json::to_vec(&other).expect("json")).expect("write");
    let out = Command::new(bin())
        .args(["adapt", "test", "--config"])
        .arg(&s.config)
        .arg("--head")
        .arg(&other_path)
        .arg(media("leuvenB.jpg"))
        .output()
        .expect("run");
    let err = no_panic(&out);
    assert!(!out.status.success());
    assert!(err.contains("encoder") && err.contains("retrain"), "{err}");

    // in the daemon: the class on a retained topic, and a classifier alert over the webcam stretch (10–30 s)
    let models_head = dir.path().join("scene_head.json");
    std::fs::copy(&head, &models_head).expect("copy");
    let broker = Broker::start();
    let rec = Recorder::start(broker.port, "ad/#");
    let tl = cut_timelines();
    let cfg = write_config(
        broker.port,
        "ad",
        &format!(
            "[[cameras]]\nname = \"office\"\nurl = \"file://{}\"\nsample_fps = 2.0\nclip_seconds = 4.0\n\
             rules = [{{ label = \"person\" }}]\n\
             [[cameras.classifiers]]\nfile = \"{}\"\nname = \"scene\"\nalert_on = [\"desk\"]\nthreshold = 0.8\n",
            tl.join("tl_webcam.mkv").display(),
            models_head.display()
        ),
    );
    // validate names a class the head does not have
    let bad = write_config(
        broker.port,
        "ad",
        &format!(
            "[[cameras]]\nname = \"office\"\nurl = \"test://\"\n\
             [[cameras.classifiers]]\nfile = \"{}\"\nalert_on = [\"gate_open\"]\n",
            models_head.display()
        ),
    );
    let v = Command::new(bin())
        .arg("validate")
        .arg(&bad.path)
        .output()
        .expect("validate");
    let verr = String::from_utf8_lossy(&v.stdout).to_string() + &String::from_utf8_lossy(&v.stderr);
    assert!(!v.status.success());
    assert!(
        verr.contains("cameras[0].classifiers[0].alert_on[0]") && verr.contains("gate_open"),
        "{verr}"
    );

    let out = run_daemon(&cfg.path, Duration::from_secs(180));
    let log = no_panic(&out);
    assert!(out.status.success(), "{log}");
    rec.wait_for("the classifier alert's end", Duration::from_secs(20), |m| {
        m.iter().any(|m| {
            m.topic == "ad/office/alerts"
                && m.json()["kind"] == "classifier"
                && m.json()["type"] == "end"
        })
    });
    let alerts: Vec<serde_json::Value> = rec
        .on("ad/office/alerts")
        .iter()
        .map(|m| m.json())
        .filter(|a| a["kind"] == "classifier")
        .collect();
    let news: Vec<&serde_json::Value> = alerts.iter().filter(|a| a["type"] == "new").collect();
    assert_eq!(news.len(), 1, "{alerts:#?}");
    let new = news[0];
    assert_eq!(new["rule"], "scene");
    assert_eq!(new["label"], "desk");
    let start = new["stream_start"].as_f64().expect("stream_start");
    assert!(
        (8.0..=20.0).contains(&start),
        "starts with the webcam stretch at 10 s: {new:#}"
    );
    let end = alerts.iter().find(|a| a["type"] == "end").expect("end");
    let stream_end = end["stream_end"].as_f64().expect("stream_end");
    assert!(
        (24.0..=40.0).contains(&stream_end),
        "ends with it at 30 s: {end:#}"
    );
    assert!(
        new["summary"]
            .as_str()
            .is_some_and(|s| s.contains("scene says 'desk'")),
        "{new:#}"
    );
    // the retained class: what a subscriber sees; it went to desk and back
    let classes: Vec<String> = rec
        .on("ad/office/classifier/scene")
        .iter()
        .filter_map(|m| m.json()["class"].as_str().map(String::from))
        .collect();
    let desk = classes
        .iter()
        .position(|c| c == "desk")
        .expect("desk published");
    assert!(
        classes[desk..].iter().any(|c| c != "desk"),
        "and back: {classes:?}"
    );
    assert!(
        rec.on("ad/office/scene/active")
            .iter()
            .any(|m| m.payload == "ON"),
        "the binary sensor's topic"
    );

    // a retrained head (same file, same config text) makes the camera a changed one: SIGHUP restarts it with it
    let before = scenewatch::config::Config::load(&cfg.path).expect("config");
    std::thread::sleep(Duration::from_millis(1100));
    train(&s, &models_head, &["--seed", "7"]);
    let after = scenewatch::config::Config::load(&cfg.path).expect("config");
    let diff = scenewatch::supervisor::camera_diff(&before.cameras, &after.cameras);
    assert_eq!(diff.changed, vec!["office".to_string()], "{diff:?}");
}
