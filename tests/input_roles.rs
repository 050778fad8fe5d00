//! Input roles (`[[cameras.inputs]]`): a camera that detects on a 320×180 sub-stream and records its 1280×720
//! main stream without decoding it, as IP cameras are used with Frigate. Both streams are cut from one timeline
//! (an empty street, a person walking across it, the empty street again) and encoded with x264 in the test, so
//! they have the same timing. The real daemon reads them as files, at inference speed (the record branch is
//! paced by the detect branch): the person alert fires, its snapshot comes from the sub-stream, and its recording
//! is the main stream as it was encoded (H.264, 1280×720, starting at a keyframe, decoding without an error)
//! whose stream times bracket the alert's. The same over RTSP (gst-rtsp-server), where the record branch is live:
//! the recording plays and starts at a keyframe before its pre-roll. A looping file records each pass. Also:
//! `scenewatch validate` refuses the input mistakes.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use gstreamer as gst;
use gstreamer::prelude::*;

const FPS: u64 = 10;
const EMPTY_BEFORE: f64 = 6.0;
const WALK: f64 = 8.0;
/// Long enough that the record stream's end is further from the alert than the recorder's ring reaches back
/// (see `pacing` below).
const TOTAL: f64 = 40.0;
/// The main stream's keyframe interval (frames; no scene-cut keyframes): 2 s, so that the recording of an alert
/// first sampled at 6 s starts at the keyframe at 2 s, before its pre-roll from 3 s.
const MAIN_GOP: u64 = 20;
const PRE_ROLL: f64 = 3.0;

/// Writes the timeline once, through one x264 encoder per size (the same frames and timestamps for both):
/// `main.mp4` `w`×`h` with an AAC audio track (which the recorder must leave out), `sub.mp4` a quarter of that.
fn make_streams(dir: &Path, (w, h): (u32, u32)) -> (PathBuf, PathBuf) {
    let street = image::open(media("leuvenA.jpg"))
        .expect("leuvenA.jpg")
        .resize_exact(w, h, image::imageops::FilterType::Triangle)
        .to_rgb8();
    // the standing player on the left of basketball1.png (the detector's box there is x 35..170, y 84..475),
    // 57 % of the frame's height
    let (ph, pw) = (h * 414 / 720, h * 150 / 720);
    let person = image::open(media("basketball1.png"))
        .expect("basketball1.png")
        .crop_imm(30, 80, 145, 400)
        .resize_exact(pw, ph, image::imageops::FilterType::Triangle)
        .to_rgb8();
    let (main, sub) = (dir.join("main.mp4"), dir.join("sub.mp4"));
    gst::init().expect("gstreamer");
    let n = (TOTAL * FPS as f64) as u64;
    let x264 =
        "x264enc speed-preset=ultrafast bframes=0 pass=quant quantizer=30 option-string=scenecut=0";
    let pipeline = gst::parse::launch(&format!(
        "appsrc name=src format=time caps=video/x-raw,format=RGB,width={w},height={h},framerate={FPS}/1 \
         ! videoconvert ! video/x-raw,format=I420 ! tee name=t \
         t. ! queue ! {x264} key-int-max={MAIN_GOP} ! h264parse ! mp4mux name=mm ! filesink location={main} \
         t. ! queue ! videoscale ! video/x-raw,width={sw},height={sh} ! {x264} key-int-max=10 ! h264parse \
            ! mp4mux ! filesink location={sub} \
         audiotestsrc num-buffers={abufs} samplesperbuffer=1600 ! audio/x-raw,rate=16000,channels=1 \
            ! avenc_aac ! queue ! mm.",
        main = main.display(),
        sub = sub.display(),
        abufs = (TOTAL * 10.0) as u64,
        sw = w / 4,
        sh = h / 4,
    ))
    .expect("encoding pipeline (x264enc, avenc_aac)")
    .downcast::<gst::Pipeline>()
    .expect("a pipeline");
    let src = pipeline
        .by_name("src")
        .expect("appsrc")
        .downcast::<gstreamer_app::AppSrc>()
        .expect("an appsrc");
    pipeline.set_state(gst::State::Playing).expect("playing");
    for i in 0..n {
        let t = i as f64 / FPS as f64;
        let mut frame = street.clone();
        if (EMPTY_BEFORE..EMPTY_BEFORE + WALK).contains(&t) {
            let progress = (t - EMPTY_BEFORE) / WALK;
            let x = (w as f64) * (0.05 + progress * 0.8);
            image::imageops::overlay(&mut frame, &person, x as i64, i64::from(h - ph - h / 18));
        }
        let mut buf = gst::Buffer::from_mut_slice(frame.into_raw());
        if let Some(b) = buf.get_mut() {
            b.set_pts(gst::ClockTime::from_mseconds(i * 1000 / FPS));
            b.set_duration(gst::ClockTime::from_mseconds(1000 / FPS));
        }
        src.push_buffer(buf).expect("push a frame");
    }
    src.end_of_stream().expect("eos");
    wait_eos(&pipeline, "encoding the streams");
    (main, sub)
}

/// The recording's video as a demuxer hands it out: its caps, whether its first access unit is a keyframe, and
/// how many access units it has.
fn recorded_video(path: &str) -> (gst::Caps, bool, u64) {
    let pipeline = gst::parse::launch(&format!(
        "filesrc location={path} ! qtdemux ! h264parse ! appsink name=out sync=false"
    ))
    .expect("pipeline")
    .downcast::<gst::Pipeline>()
    .expect("a pipeline");
    let sink = pipeline
        .by_name("out")
        .expect("appsink")
        .downcast::<gstreamer_app::AppSink>()
        .expect("an appsink");
    pipeline.set_state(gst::State::Playing).expect("playing");
    let (mut caps, mut first_key, mut n) = (None, None, 0u64);
    while let Ok(sample) = sink.pull_sample() {
        if caps.is_none() {
            caps = sample.caps().map(|c| c.to_owned());
        }
        if let Some(b) = sample.buffer() {
            first_key.get_or_insert(!b.flags().contains(gst::BufferFlags::DELTA_UNIT));
        }
        n += 1;
    }
    let _ = pipeline.set_state(gst::State::Null);
    (
        caps.expect("the recording has a video stream"),
        first_key.unwrap_or(false),
        n,
    )
}

/// Decodes the whole recording (the way a player would); panics on any error. Returns the decoded frames.
fn decode_all(path: &str) -> u64 {
    run_to_eos(&format!(
        "filesrc location={path} ! decodebin ! videoconvert ! identity name=count ! fakesink"
    ))
}

#[test]
fn detect_on_the_sub_stream_and_record_the_main_stream_without_decoding_it() {
    let work = tempfile::tempdir().expect("tempdir");
    let (main, sub) = make_streams(work.path(), (1280, 720));
    let broker = Broker::start();
    let rec = Recorder::start(broker.port, "ir/#");
    let body = format!(
        "[[cameras]]\nname = \"gate\"\nsample_fps = 2.0\nclip_seconds = 2.0\n\
         [[cameras.inputs]]\nurl = \"{}\"\nroles = [\"detect\"]\n\
         [[cameras.inputs]]\nurl = \"file://{}\"\nroles = [\"record\"]\n\
         [[cameras.rules]]\nlabel = \"person\"\nmin_score = 0.35\ntrack_score = 0.3\nmin_frames = 2\nend_after_seconds = 3.0\n",
        sub.display(),
        main.display()
    );
    // pacing: with these queues the ring spans the pre-roll plus 20 s (`MediaConfig::recorder_config`); a record
    // branch that raced to the end of its file before inference raised the alert (at about 6 s) would keep only
    // 17..40 s and lose the pre-roll
    let body = format!("[ingest]\nframe_queue = 2\nclip_queue = 1\n\n{body}");
    let cfg = write_config(broker.port, "ir", &body);
    let text = std::fs::read_to_string(&cfg.path)
        .expect("config")
        .replacen(
            "[media]\n",
            &format!("[media]\nclip_pre_roll_seconds = {PRE_ROLL}\nclip_post_roll_seconds = 2.0\n"),
            1,
        );
    std::fs::write(&cfg.path, text).expect("config");
    let out = run_daemon(&cfg.path, Duration::from_secs(120));
    let log = no_panic(&out);
    assert!(out.status.success(), "exit {:?}\n{log}", out.status);
    assert!(log.contains("recording finished"), "no recording:\n{log}");
    rec.wait_for("the recording message", Duration::from_secs(15), |m| {
        m.iter().any(|m| m.topic == "ir/gate/recordings")
    });

    // the person alert: new first, then its end
    let alerts: Vec<serde_json::Value> =
        rec.on("ir/gate/alerts").iter().map(|m| m.json()).collect();
    let new = alerts
        .iter()
        .find(|a| a["type"] == "new" && a["label"] == "person")
        .unwrap_or_else(|| panic!("a person alert: {alerts:#?}\n{log}"));
    let end = alerts
        .iter()
        .find(|a| a["type"] == "end" && a["id"] == new["id"])
        .unwrap_or_else(|| panic!("the alert's end: {alerts:#?}"));
    let start = new["stream_start"].as_f64().expect("stream_start");
    let stream_end = end["stream_end"].as_f64().expect("stream_end");
    assert!(
        (EMPTY_BEFORE..EMPTY_BEFORE + 2.0).contains(&start),
        "the person appears at {EMPTY_BEFORE} s: {new}"
    );

    // the snapshot comes from the detect stream
    let snap = image::open(new["snapshot"]["path"].as_str().expect("snapshot path"))
        .expect("snapshot decodes");
    assert_eq!((snap.width(), snap.height()), (320, 180));

    // the recording: the main stream as encoded, from the keyframe at or before the pre-roll
    let done: Vec<serde_json::Value> = rec
        .on("ir/gate/recordings")
        .iter()
        .map(|m| m.json())
        .collect();
    assert_eq!(done.len(), 1, "{done:#?}");
    let r = &done[0];
    assert_eq!(r["alert_id"], new["id"]);
    let path = r["path"].as_str().expect("path");
    assert_eq!(Some(path), new["recording"]["path"].as_str());
    let (r_start, r_end) = (
        r["stream_start"].as_f64().unwrap_or(-1.0),
        r["stream_end"].as_f64().unwrap_or(-1.0),
    );
    eprintln!("alert {start}..{stream_end} s; recording {r}");
    let gop = MAIN_GOP as f64 / FPS as f64;
    assert!(
        r_start <= start - PRE_ROLL + 1e-3 && r_start > start - PRE_ROLL - gop - 0.05,
        "starts at the last keyframe at or before {start} - {PRE_ROLL} s: {r}"
    );
    let on_keyframe = (r_start * FPS as f64).round() as u64 % MAIN_GOP == 0;
    assert!(on_keyframe, "a main-stream keyframe time: {r}");
    assert!(
        r_end >= stream_end,
        "covers the alert up to its end at {stream_end} s: {r}"
    );
    let (caps, first_is_key, units) = recorded_video(path);
    let s = caps.structure(0).expect("caps");
    assert_eq!(s.name(), "video/x-h264", "{caps}");
    assert_eq!(s.get::<i32>("width").ok(), Some(1280), "{caps}");
    assert_eq!(s.get::<i32>("height").ok(), Some(720), "{caps}");
    assert!(first_is_key, "the recording starts with a keyframe");
    assert_eq!(Some(units), r["frames"].as_u64(), "{r}");
    assert_eq!(
        decode_all(path),
        units,
        "every recorded frame decodes, without an error"
    );
    // about the frames the file has in that span (10 fps)
    let expected = ((r_end - r_start) * FPS as f64).round() as u64 + 1;
    assert!(units.abs_diff(expected) <= 1, "{units} frames for {r}");

    // the camera state lists the inputs with their roles, the detect decoder and the record codec (no URLs)
    let states: Vec<serde_json::Value> = rec.on("ir/gate/state").iter().map(|m| m.json()).collect();
    let inputs = states
        .iter()
        .rev()
        .map(|s| &s["inputs"])
        .find(|i| i[1]["codec"] == "h264")
        .unwrap_or_else(|| panic!("a state with the record codec: {states:#?}"));
    assert_eq!(
        inputs[0]["roles"],
        serde_json::json!(["detect"]),
        "{inputs}"
    );
    assert!(inputs[0]["decoder"].is_string(), "{inputs}");
    assert_eq!(
        inputs[1]["roles"],
        serde_json::json!(["record"]),
        "{inputs}"
    );
    assert!(!inputs.to_string().contains(".mp4"), "no URLs: {inputs}");
}

/// `loop = true` with a record input: each pass rebuilds the pipeline and stream time carries on past the record
/// stream's end, so the ring stays in order and the person's second crossing is recorded from its own pre-roll.
#[test]
fn a_looping_file_records_each_pass() {
    let work = tempfile::tempdir().expect("tempdir");
    let (main, sub) = make_streams(work.path(), (1280, 720));
    let broker = Broker::start();
    let rec = Recorder::start(broker.port, "irloop/#");
    let body = format!(
        "[ingest]\nframe_queue = 2\nclip_queue = 1\n\n\
         [[cameras]]\nname = \"gate\"\nloop = true\nsample_fps = 2.0\nclip_seconds = 2.0\n\
         [[cameras.inputs]]\nurl = \"{}\"\nroles = [\"detect\"]\n\
         [[cameras.inputs]]\nurl = \"{}\"\nroles = [\"record\"]\n\
         [[cameras.rules]]\nlabel = \"person\"\nmin_score = 0.35\ntrack_score = 0.3\nmin_frames = 2\nend_after_seconds = 3.0\n",
        sub.display(),
        main.display()
    );
    let cfg = write_config(broker.port, "irloop", &body);
    let text = std::fs::read_to_string(&cfg.path)
        .expect("config")
        .replacen(
            "[media]\n",
            &format!("[media]\nclip_pre_roll_seconds = {PRE_ROLL}\nclip_post_roll_seconds = 1.0\n"),
            1,
        );
    std::fs::write(&cfg.path, text).expect("config");
    let mut d = Daemon::spawn(&cfg.path, &[]);
    let news = |m: &[Msg]| {
        m.iter()
            .filter(|m| m.topic == "irloop/gate/alerts" && m.json()["type"] == "new")
            .count()
    };
    rec.wait_for("two passes' alerts", Duration::from_secs(60), |m| {
        news(m) >= 2
    });
    rec.wait_for("two recordings", Duration::from_secs(30), |m| {
        m.iter()
            .filter(|m| m.topic == "irloop/gate/recordings")
            .count()
            >= 2
    });
    d.signal("TERM");
    let (code, log) = d.wait(Duration::from_secs(60));
    assert_eq!(code, Some(0), "{log}");
    let news: Vec<serde_json::Value> = rec
        .on("irloop/gate/alerts")
        .iter()
        .map(|m| m.json())
        .filter(|a| a["type"] == "new")
        .collect();
    let done: Vec<serde_json::Value> = rec
        .on("irloop/gate/recordings")
        .iter()
        .map(|m| m.json())
        .collect();
    eprintln!(
        "alerts at {:?}; recordings {done:?}",
        news.iter().map(|a| &a["stream_start"]).collect::<Vec<_>>()
    );
    let second = &news[1];
    let start = second["stream_start"].as_f64().expect("stream_start");
    // the second pass: stream time continues after the first (40 s), the person appears 6 s into it
    assert!(start > TOTAL + EMPTY_BEFORE - 0.5, "{second}");
    let r = done
        .iter()
        .find(|r| r["alert_id"] == second["id"])
        .unwrap_or_else(|| panic!("the second pass's recording: {done:#?}"));
    let r_start = r["stream_start"].as_f64().unwrap_or(-1.0);
    let gop = MAIN_GOP as f64 / FPS as f64;
    assert!(
        r_start <= start - PRE_ROLL + 1e-3 && r_start > start - PRE_ROLL - gop - 0.05,
        "the second pass's recording keeps its pre-roll: {r}"
    );
    for r in &done {
        let path = r["path"].as_str().expect("path");
        let (_, first_is_key, units) = recorded_video(path);
        assert!(first_is_key, "{r}");
        assert_eq!(Some(units), r["frames"].as_u64(), "{r}");
        assert_eq!(decode_all(path), units, "{r}");
    }
}

/// gst-rtsp-server serving `file` as H.264, 384×288 at 5 fps, a keyframe every 2 s
/// (tests/support/rtsp_server.py); killed by PID on drop.

#[test]
fn an_rtsp_camera_records_its_record_input_live() {
    let work = tempfile::tempdir().expect("tempdir");
    // 4:3, as the server serves it (384×288)
    let (main, _) = make_streams(work.path(), (768, 576));
    let broker = Broker::start();
    let rec = Recorder::start(broker.port, "irl/#");
    let port = free_port();
    let _server = RtspServer::start(port, &main, "h264");
    // two sessions of one served stream: the record input with credentials, which nothing may print
    let body = format!(
        "[ingest]\nstartup_timeout_secs = 20.0\n\n         [[cameras]]\nname = \"walk\"\nsample_fps = 2.0\nclip_seconds = 2.0\n         [[cameras.inputs]]\nurl = \"rtsp://127.0.0.1:{port}/cam\"\nroles = [\"detect\"]\n         [[cameras.inputs]]\nurl = \"rtsp://viewer:s3cret@127.0.0.1:{port}/cam\"\nroles = [\"record\"]\n         [[cameras.rules]]\nlabel = \"person\"\nmin_score = 0.35\nmin_frames = 2\n"
    );
    let cfg = write_config(broker.port, "irl", &body);
    let text = std::fs::read_to_string(&cfg.path)
        .expect("config")
        .replacen(
            "[media]\n",
            "[media]\nclip_pre_roll_seconds = 2.0\nclip_post_roll_seconds = 1.0\n",
            1,
        );
    std::fs::write(&cfg.path, text).expect("config");
    let mut d = Daemon::spawn(&cfg.path, &[]);
    rec.wait_for("a person alert", Duration::from_secs(40), |m| {
        m.iter()
            .any(|m| m.topic == "irl/walk/alerts" && m.json()["type"] == "new")
    });
    // a few seconds of recording after the alert, then the camera ends and closes it
    std::thread::sleep(Duration::from_secs(3));
    d.signal("TERM");
    let (code, log) = d.wait(Duration::from_secs(60));
    assert_eq!(code, Some(0), "{log}");
    assert!(!log.contains("s3cret"), "credentials in the log:\n{log}");
    rec.wait_for("the recording message", Duration::from_secs(15), |m| {
        m.iter().any(|m| m.topic == "irl/walk/recordings")
    });
    let new = rec
        .on("irl/walk/alerts")
        .iter()
        .map(|m| m.json())
        .find(|a| a["type"] == "new")
        .expect("the new alert");
    let r = rec.last("irl/walk/recordings").expect("recording").json();
    assert_eq!(r["alert_id"], new["id"], "{r}");
    let start = new["stream_start"].as_f64().expect("stream_start");
    let (r_start, r_end) = (
        r["stream_start"].as_f64().unwrap_or(-1.0),
        r["stream_end"].as_f64().unwrap_or(-1.0),
    );
    eprintln!("live alert at {start} s; recording {r}");
    // both inputs are running time of one pipeline: the recording starts at the record stream's last keyframe
    // (every 2 s) at or before the pre-roll of 2 s, give or take the two sessions' arrival times
    assert!(
        (EMPTY_BEFORE..EMPTY_BEFORE + 2.0).contains(&start),
        "the person appears at {EMPTY_BEFORE} s: {new}"
    );
    assert!(
        r_start <= start - 2.0 + 0.25 && r_start >= start - 4.0 - 0.25 && r_end >= start + 2.0,
        "the recording covers {start} s from its pre-roll: {r}"
    );
    let path = r["path"].as_str().expect("path");
    let (caps, first_is_key, units) = recorded_video(path);
    let s = caps.structure(0).expect("caps");
    assert_eq!(s.name(), "video/x-h264", "{caps}");
    assert_eq!(s.get::<i32>("width").ok(), Some(384), "{caps}");
    assert!(first_is_key, "the recording starts with a keyframe");
    assert_eq!(Some(units), r["frames"].as_u64(), "{r}");
    assert_eq!(decode_all(path), units, "every recorded frame decodes");
    let states: Vec<String> = rec
        .on("irl/walk/state")
        .iter()
        .map(|m| m.payload.clone())
        .collect();
    assert!(
        states
            .iter()
            .any(|s| s.contains(r#"{"codec":"h264","roles":["record"]}"#)
                || s.contains(r#"{"roles":["record"],"codec":"h264"}"#)),
        "{states:#?}"
    );
    assert!(!states.iter().any(|s| s.contains("s3cret")), "{states:#?}");
}

#[test]
fn validate_refuses_input_mistakes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        r#"
[[cameras]]
name = "both"
url = "rtsp://cam/main"
[[cameras.inputs]]
url = "rtsp://cam/sub"
roles = ["detect"]

[[cameras]]
name = "twodetect"
[[cameras.inputs]]
url = "rtsp://cam/sub"
roles = ["detect"]
[[cameras.inputs]]
url = "rtsp://cam/main"
roles = ["detect", "record"]

[[cameras]]
name = "pattern"
[[cameras.inputs]]
url = "rtsp://cam/sub"
roles = ["detect"]
[[cameras.inputs]]
url = "test://ball"
roles = ["record"]
"#,
    )
    .expect("write");
    let out = Command::new(bin())
        .arg("validate")
        .arg(&path)
        .output()
        .expect("run scenewatch validate");
    let err = no_panic(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    for line in [
        "bad.toml: 3 problem(s):",
        "  cameras[0].inputs: set either `url` or [[cameras.inputs]], not both",
        "  cameras[1].inputs[1].roles: a second input with the role \"detect\": exactly one input is decoded for the models",
        "  cameras[2].inputs[1].url: a record-only input is recorded as it is sent, without decoding: it must be an encoded stream, a file or an rtsp:// URL",
    ] {
        assert!(err.contains(line), "missing {line:?} in:\n{err}");
    }
}
