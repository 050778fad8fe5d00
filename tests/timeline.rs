//! A timeline cut from real photos: an empty street (leuvenA.jpg) for 8 s, a person (cut from basketball1.png)
//! walking across it from left to right for 10 s, then the empty street again. Played in real time through the
//! real daemon: exactly one person alert, new … end, at the right stream times; its snapshot and its recording
//! exist and decode; the alert says the person crossed from left to right; the period summary mentions a person
//! and nothing that was not there. Prints the alert latency from the person's first frame to the MQTT `new`.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use common::*;
use gstreamer as gst;
use gstreamer::prelude::*;

const FPS: u32 = 10;
const EMPTY_BEFORE: f64 = 8.0;
const WALK: f64 = 10.0;
const TOTAL: f64 = 34.0;

/// Writes the timeline as MJPEG in Matroska (composed with the image crate, encoded and muxed by GStreamer).
fn make_timeline(dir: &Path) -> PathBuf {
    let street = image::open(media("leuvenA.jpg"))
        .expect("leuvenA.jpg")
        .resize_exact(768, 576, image::imageops::FilterType::Triangle)
        .to_rgb8();
    // the standing player on the left of basketball1.png (the detector's box there is x 35..170, y 84..475)
    let person = image::open(media("basketball1.png"))
        .expect("basketball1.png")
        .crop_imm(30, 80, 145, 400)
        .resize_exact(90, 248, image::imageops::FilterType::Triangle)
        .to_rgb8();
    let out = dir.join("timeline.mkv");
    gst::init().expect("gstreamer");
    let pipeline = gst::parse::launch(&format!(
        "appsrc name=src format=time caps=video/x-raw,format=RGB,width=768,height=576,framerate={FPS}/1 \
         ! videoconvert ! jpegenc quality=90 ! matroskamux ! filesink location={}",
        out.display()
    ))
    .expect("pipeline")
    .downcast::<gst::Pipeline>()
    .expect("a pipeline");
    let src = pipeline
        .by_name("src")
        .expect("appsrc")
        .downcast::<gstreamer_app::AppSrc>()
        .expect("an appsrc");
    pipeline.set_state(gst::State::Playing).expect("playing");
    let n = (TOTAL * FPS as f64) as u64;
    for i in 0..n {
        let t = i as f64 / FPS as f64;
        let mut frame = street.clone();
        if (EMPTY_BEFORE..EMPTY_BEFORE + WALK).contains(&t) {
            let progress = (t - EMPTY_BEFORE) / WALK;
            let x = 40.0 + progress * (768.0 - 90.0 - 80.0);
            image::imageops::overlay(&mut frame, &person, x as i64, 576 - 248 - 30);
        }
        let mut buf = gst::Buffer::from_mut_slice(frame.into_raw());
        if let Some(b) = buf.get_mut() {
            b.set_pts(gst::ClockTime::from_mseconds(i * 1000 / FPS as u64));
            b.set_duration(gst::ClockTime::from_mseconds(1000 / FPS as u64));
        }
        src.push_buffer(buf).expect("push a frame");
    }
    src.end_of_stream().expect("eos");
    wait_eos(&pipeline, "writing the timeline");
    out
}

fn secs_since_epoch(rfc3339: &str) -> f64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| t.timestamp_millis() as f64 / 1000.0)
        .unwrap_or_else(|e| panic!("{rfc3339}: {e}"))
}

/// The one alert the walker should raise, from all the messages on the camera's alerts topic: one id, about a
/// person, `new` first and the only `end` last; first sampled at 8–9.6 s, last seen within 2.1 s before 18 s.
/// Returns (new, end) and the first sighting's stream time.
fn the_walkers_alert(
    alerts: &[serde_json::Value],
) -> (&serde_json::Value, &serde_json::Value, f64) {
    let ids: std::collections::BTreeSet<_> = alerts.iter().map(|a| a["id"].to_string()).collect();
    assert_eq!(ids.len(), 1, "one alert: {alerts:#?}");
    assert!(alerts.iter().all(|a| a["label"] == "person"), "{alerts:#?}");
    assert_eq!(alerts.first().map(|a| &a["type"]), Some(&"new".into()));
    assert_eq!(alerts.last().map(|a| &a["type"]), Some(&"end".into()));
    assert_eq!(
        alerts.iter().filter(|a| a["type"] == "end").count(),
        1,
        "{alerts:#?}"
    );
    let (new, end) = (&alerts[0], &alerts[alerts.len() - 1]);
    // the person is in frames 8.0 ≤ t < 18.0; sampled at 2 fps the first sample with them is at 8.0
    let start = new["stream_start"].as_f64().expect("stream_start");
    assert!((EMPTY_BEFORE..EMPTY_BEFORE + 1.6).contains(&start), "{new}");
    let stream_end = end["stream_end"].as_f64().expect("stream_end");
    let walk_end = EMPTY_BEFORE + WALK;
    assert!(
        (walk_end - 2.1..walk_end).contains(&stream_end),
        "last seen near {walk_end} s: {end}"
    );
    (new, end, start)
}

/// The street camera's config on the timeline video (`camera_keys` added to its `[[cameras]]` table), with the
/// person rule both tests use and a broker plus a recorder of `<prefix>/#`.
fn timeline_setup(
    work: &Path,
    prefix: &str,
    camera_keys: &str,
    more_rules: &str,
) -> (Broker, Recorder, TestConfig) {
    let video = make_timeline(work);
    let broker = Broker::start();
    let rec = Recorder::start(broker.port, &format!("{prefix}/#"));
    let body = format!(
        "[[cameras]]\nname = \"street\"\nurl = \"{}\"\nsample_fps = 2.0\nclip_seconds = 4.0\n{camera_keys}\
         [[cameras.rules]]\nlabel = \"person\"\nmin_score = 0.5\nmin_frames = 2\nend_after_seconds = 6.0\n{more_rules}",
        video.display()
    );
    let cfg = write_config(broker.port, prefix, &body);
    (broker, rec, cfg)
}

#[test]
fn a_person_crossing_an_empty_street_gives_one_alert_with_evidence_and_an_honest_summary() {
    let work = tempfile::tempdir().expect("tempdir");
    let (_broker, rec, cfg) = timeline_setup(
        work.path(),
        "tl",
        "realtime = true\n",
        "[[cameras.rules]]\nlabel = \"vehicle\"\n",
    );
    // write_config's [media] table (dir in the temp dir) gets the test's shorter pre- and post-roll
    let text = std::fs::read_to_string(&cfg.path)
        .expect("config")
        .replacen(
            "[media]\n",
            "[media]\nclip_pre_roll_seconds = 3.0\nclip_post_roll_seconds = 3.0\n",
            1,
        );
    std::fs::write(&cfg.path, text).expect("config");
    let out = run_daemon(&cfg.path, Duration::from_secs(120));
    let log = no_panic(&out);
    assert!(out.status.success(), "exit {:?}\n{log}", out.status);
    rec.wait_for("the recording message", Duration::from_secs(15), |m| {
        m.iter().any(|m| m.topic == "tl/street/recordings")
    });

    // exactly one alert: new, maybe updates, end — all with one id, about a person
    let msgs = rec.on("tl/street/alerts");
    let alerts: Vec<serde_json::Value> = msgs.iter().map(|m| m.json()).collect();
    let (new, end, start) = the_walkers_alert(&alerts);
    let stream_end = end["stream_end"].as_f64().expect("stream_end");
    assert_eq!(end["objects"], 1, "one person tracked: {end}");
    assert_eq!(end["crossed"]["left_to_right"], 1, "{end}");
    assert_eq!(end["crossed"]["right_to_left"], 0, "{end}");
    let summary = end["summary"].as_str().unwrap_or("");
    assert!(
        summary.contains("1 person crossed from left to right"),
        "{summary}"
    );

    // snapshot: a file that decodes, at the camera's size
    let snap_path = new["snapshot"]["path"].as_str().expect("snapshot path");
    let snap = image::open(snap_path).expect("snapshot decodes");
    assert_eq!((snap.width(), snap.height()), (768, 576));

    // recording: referenced by the alert, announced when complete, decodable by GStreamer, covering pre-roll
    // (3 s before the first sighting) to post-roll
    let rec_path = new["recording"]["path"].as_str().expect("recording path");
    assert_eq!(end["recording"]["path"], new["recording"]["path"]);
    let done: Vec<serde_json::Value> = rec
        .on("tl/street/recordings")
        .iter()
        .map(|m| m.json())
        .collect();
    assert_eq!(done.len(), 1, "{done:#?}");
    let r = &done[0];
    assert_eq!(r["path"], rec_path);
    assert_eq!(r["alert_id"], new["id"]);
    let r_start = r["stream_start"].as_f64().unwrap_or(-1.0);
    assert!(
        (start - 3.4..=start - 2.6).contains(&r_start),
        "pre-roll of 3 s before {start}: {r}"
    );
    let r_end = r["stream_end"].as_f64().unwrap_or(0.0);
    assert!(
        r_end >= stream_end + 2.5,
        "post-roll after {stream_end}: {r}"
    );
    assert!(Path::new(rec_path).is_file());
    let decoded = run_to_eos(&format!(
        "filesrc location={rec_path} ! decodebin ! videoconvert ! identity name=count ! fakesink"
    ));
    let expected = r["frames"].as_u64().unwrap_or(0);
    assert!(
        expected >= ((r_end - r_start) * 4.0) as u64,
        "about 5 fps: {r}"
    );
    assert_eq!(decoded, expected, "every recorded frame decodes");

    // period summary: a person, nothing absent from the scene
    let sums: Vec<serde_json::Value> = rec
        .on("tl/street/summary")
        .iter()
        .map(|m| m.json())
        .collect();
    assert_eq!(sums.len(), 1, "{sums:#?}");
    let text = sums[0]["text"].as_str().unwrap_or("");
    assert!(text.contains("person"), "{text}");
    assert!(
        text.contains("1 person crossed from left to right"),
        "the period summary tells the crossing: {text}"
    );
    assert_eq!(sums[0]["labels"]["person"]["crossed"]["left_to_right"], 1);
    for absent in ["people", "vehicle", "car", "bicycle", "dog", "truck"] {
        assert!(
            !text.contains(absent),
            "'{absent}' is not in the scene: {text}"
        );
    }

    // latency from the person's first frame to the MQTT `new`: the file plays in real time, so the stream time
    // of the first sighting maps to wall time through the alert's own (wall, stream) stamp
    let received = msgs[0]
        .at
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let first_sighting_wall = secs_since_epoch(new["started_at"].as_str().unwrap_or(""));
    let person_first_frame_wall = first_sighting_wall - (start - EMPTY_BEFORE);
    let latency = received - person_first_frame_wall;
    eprintln!(
        "alert latency: person's first frame → MQTT new = {latency:.2} s (first sampled sighting → MQTT = {:.2} s; clip_seconds = 4)",
        received - first_sighting_wall
    );
    assert!(
        (0.0..12.0).contains(&latency),
        "a 4 s clip plus inference: {latency:.2} s"
    );
}

/// With `motion_gate`, the empty street before and after the walker is not inferred (nothing moves in it), and
/// the alert is the same: one person, seen from 8 s, gone near 18 s.
#[test]
fn the_motion_gate_skips_the_still_street_and_keeps_the_alert() {
    let work = tempfile::tempdir().expect("tempdir");
    let (_broker, rec, cfg) = timeline_setup(work.path(), "mg", "motion_gate = true\n", "");
    let out = run_daemon(&cfg.path, Duration::from_secs(120));
    let log = no_panic(&out);
    assert!(out.status.success(), "exit {:?}\n{log}", out.status);
    let field = |name: &str| -> u64 {
        // the daemon's "finished" line (a recording's own "finished" line has other fields)
        log.lines()
            .filter(|l| l.contains("finished") && l.contains("clips_gated="))
            .find_map(|l| {
                l.split_whitespace()
                    .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
                    .and_then(|v| v.trim_matches('"').parse().ok())
            })
            .unwrap_or_else(|| panic!("no {name} in the finished line:\n{log}"))
    };
    let (gated, clips) = (field("clips_gated"), field("clips"));
    eprintln!("motion gate: {gated} clips gated, {clips} inferred, of 34 s at 2 fps");
    // 9 clips of 4 s: the walker's (8–18 s, and the one after while his ghost fades) are inferred, the first
    // is inferred (nothing to repeat yet), the still ones between are not
    assert!(
        gated >= 4,
        "still clips were not gated: {gated} gated, {clips} inferred"
    );
    assert!(clips >= 3, "the walker's clips were inferred: {clips}");
    rec.wait_for("the end", Duration::from_secs(15), |m| {
        m.iter()
            .any(|m| m.topic == "mg/street/alerts" && m.json()["type"] == "end")
    });
    let alerts: Vec<serde_json::Value> = rec
        .on("mg/street/alerts")
        .iter()
        .map(|m| m.json())
        .collect();
    the_walkers_alert(&alerts);
}
