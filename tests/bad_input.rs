//! Bad input gets a clear error naming the culprit, never a panic, and loses nothing that was already raised.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;

fn camera(url: &str) -> String {
    format!("[[cameras]]\nname = \"cam\"\nurl = \"{url}\"\n")
}

#[test]
fn nonexistent_video_is_a_clear_error_and_a_published_error_state() {
    let broker = Broker::start();
    let rec = Recorder::start(broker.port, "bad1/#");
    let cfg = write_config(
        broker.port,
        "bad1",
        &camera("file:///nonexistent/video.avi"),
    );
    let out = run_daemon(&cfg.path, Duration::from_secs(60));
    let log = no_panic(&out);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(
        log.contains("/nonexistent/video.avi") && log.contains("does not exist"),
        "{log}"
    );
    rec.wait_for("error state", Duration::from_secs(5), |m| {
        m.iter().any(|m| m.topic == "bad1/cam/state")
    });
    let st = rec
        .on("bad1/cam/state")
        .last()
        .map(|m| m.json())
        .expect("state");
    assert_eq!(st["state"], "error");
    assert!(
        st["reason"]
            .as_str()
            .unwrap_or("")
            .contains("does not exist"),
        "{st}"
    );
}

#[test]
fn truncated_and_corrupt_videos_do_not_panic() {
    let dir = tempfile::tempdir().expect("tmp");
    let full = std::fs::read(media("vtest.avi")).expect("vtest");
    let truncated = dir.path().join("truncated.avi");
    std::fs::write(&truncated, &full[..full.len() / 3]).expect("write");
    let corrupt = dir.path().join("corrupt.avi");
    let mut junk = full[..4096].to_vec();
    junk.extend((0..200_000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8));
    std::fs::write(&corrupt, junk).expect("write");
    let notvideo = dir.path().join("notes.mp4");
    std::fs::write(&notvideo, "this is not a video\n").expect("write");

    let broker = Broker::start();
    let rec = Recorder::start(broker.port, "bad2/#");
    // truncated: the readable third is processed and the camera ends normally (exit 0)
    let cfg = write_config(
        broker.port,
        "bad2",
        &camera(&format!("file://{}", truncated.display())),
    );
    let out = run_daemon(&cfg.path, Duration::from_secs(120));
    let log = no_panic(&out);
    assert_eq!(out.status.code(), Some(0), "{log}");
    rec.wait_for("ended state", Duration::from_secs(5), |m| {
        m.iter()
            .any(|m| m.topic == "bad2/cam/state" && m.json()["state"] == "ended")
    });
    let st = rec
        .on("bad2/cam/state")
        .last()
        .map(|m| m.json())
        .expect("state");
    // vtest.avi is 79.5 s; a third of its bytes is roughly a third of its frames at 2 fps (159 in all)
    let sampled = st["frames_sampled"].as_u64().unwrap_or(0);
    assert!(
        (30..=80).contains(&sampled),
        "a third of the file's frames must be sampled, got {sampled}: {st}"
    );
    let clips = log
        .split("finished clips=")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0);
    assert!(
        clips >= 5,
        "the truncated part must be inferred: clips={clips}\n{log}"
    );

    for bad in [&corrupt, &notvideo] {
        let cfg = write_config(
            broker.port,
            "bad3",
            &camera(&format!("file://{}", bad.display())),
        );
        let out = run_daemon(&cfg.path, Duration::from_secs(60));
        let log = no_panic(&out);
        assert_eq!(out.status.code(), Some(1), "{}: {log}", bad.display());
        assert!(log.contains("every camera failed: cam"), "{log}");
    }
}

#[test]
fn config_errors_name_the_file_and_key_and_exit_2() {
    let cfg = write_config(
        1,
        "cfg",
        &format!("{}sample_fsp = 3.0\n", camera("test://")),
    );
    for args in [vec!["validate"], vec!["run", "--config"]] {
        let out = Command::new(bin())
            .args(&args)
            .arg(&cfg.path)
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = stderr(&out);
        assert!(
            err.contains("sample_fsp") && err.contains("scenewatch.toml"),
            "{err}"
        );
    }
    let cfg = write_config(
        1,
        "cfg",
        "[[cameras]]\nname = \"Bad Name\"\nurl = \"ftp://x\"\nsample_fps = -1.0\n",
    );
    let out = Command::new(bin())
        .arg("validate")
        .arg(&cfg.path)
        .output()
        .expect("run");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2));
    for key in ["cameras[0].name", "cameras[0].url", "cameras[0].sample_fps"] {
        assert!(err.contains(key), "{key} missing in:\n{err}");
    }
}

#[test]
fn missing_and_wrong_models_are_named() {
    // missing detector file
    let cfg = write_config(1883, "m1", &camera("test://"));
    let text = std::fs::read_to_string(&cfg.path).expect("read").replace(
        "[models]\n",
        "[models]\ndetector = \"no_such_model.onnx\"\n",
    );
    std::fs::write(&cfg.path, text).expect("write");
    let out = run_daemon(&cfg.path, Duration::from_secs(60));
    let log = no_panic(&out);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(
        log.contains("detector model file") && log.contains("no_such_model.onnx"),
        "{log}"
    );

    // a real model without a model card: `validate` (and so `run`, exit 2) names the card it looked for
    let text = std::fs::read_to_string(&cfg.path)
        .expect("read")
        .replace("no_such_model.onnx", "efficientnet_lite0.onnx");
    std::fs::write(&cfg.path, text).expect("write");
    let out = run_daemon(&cfg.path, Duration::from_secs(60));
    let log = no_panic(&out);
    assert_eq!(out.status.code(), Some(2), "{log}");
    assert!(
        log.contains("models.detector") && log.contains("efficientnet_lite0.toml"),
        "{log}"
    );

    // a real model, but the wrong one: the image encoder where the detector should be, with a NanoDet card
    let card = |name: &str, model: &str| {
        let path = cfg.dir.path().join(name);
        std::fs::write(
            &path,
            format!("format = \"nanodet\"\nmodel = \"{model}\"\ninput = [416, 416]\nlabels = \"coco80\"\n"),
        )
        .expect("card");
        path
    };
    let wrong = card(
        "wrong.toml",
        &repo()
            .join("models/efficientnet_lite0.onnx")
            .display()
            .to_string(),
    );
    let text = std::fs::read_to_string(&cfg.path)
        .expect("read")
        .replace("efficientnet_lite0.onnx", &wrong.display().to_string());
    std::fs::write(&cfg.path, text).expect("write");
    let out = run_daemon(&cfg.path, Duration::from_secs(60));
    let log = no_panic(&out);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(
        log.contains("is not the expected model")
            && log.contains("input_1:0")
            && log.contains("wrong.toml"),
        "{log}"
    );

    // a corrupt model file (with its card)
    let junk = cfg.dir.path().join("junk.onnx");
    std::fs::write(&junk, b"definitely not protobuf").expect("write");
    let junk_card = card("junk.toml", "junk.onnx");
    let text = std::fs::read_to_string(&cfg.path).expect("read").replace(
        &wrong.display().to_string(),
        &junk_card.display().to_string(),
    );
    std::fs::write(&cfg.path, text).expect("write");
    let out = run_daemon(&cfg.path, Duration::from_secs(60));
    let log = no_panic(&out);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(
        log.contains("could not be loaded") && log.contains("junk.onnx"),
        "{log}"
    );
}

#[test]
fn broker_down_at_start_loses_no_alert() {
    // a consumer with a persistent session subscribes, then the broker goes away; the daemon processes the whole
    // clip while nothing listens on the port; the broker comes back later and everything must arrive
    let port = free_port();
    let state = tempfile::tempdir().expect("tmp");
    let mut broker = Broker::start_persistent(port, state.path());
    let rec = Recorder::start_persistent(port, "late/#");
    broker.stop();
    let cfg = write_config(
        port,
        "late",
        &format!(
            "[shutdown]\ndrain_timeout_secs = 120.0\n\n{}",
            camera(&format!("file://{}", media("vtest.avi").display()))
        ),
    );
    let child = Command::new(bin())
        .args(["run", "--config"])
        .arg(&cfg.path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    std::thread::sleep(Duration::from_secs(20));
    let _broker = Broker::start_persistent(port, state.path());
    let out = wait_with_timeout(child, Duration::from_secs(180));
    let log = no_panic(&out);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("MQTT broker unreachable"),
        "the outage must be logged:\n{log}"
    );
    let raised = log.matches("type=New").count()
        + log.matches("type=Update").count()
        + log.matches("type=End").count();
    assert!(raised >= 2, "{log}");
    rec.wait_for("every alert", Duration::from_secs(30), |m| {
        m.iter().filter(|m| m.topic == "late/cam/alerts").count() >= raised
    });
    let alerts: Vec<_> = rec.on("late/cam/alerts").iter().map(|m| m.json()).collect();
    let types: Vec<_> = alerts
        .iter()
        .map(|a| a["type"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(types.first().map(String::as_str), Some("new"), "{types:?}");
    assert_eq!(types.last().map(String::as_str), Some("end"), "{types:?}");
    // every alert raised while the broker was away arrived, in order, once
    assert_eq!(
        alerts.len(),
        raised,
        "raised {raised}, delivered {}:\n{log}",
        alerts.len()
    );
}

#[test]
fn wrong_codec_and_audio_only_files_name_what_is_missing() {
    let broker = Broker::start();
    // a codec with no decoder installed: hide the one that decodes vtest.avi, as on a box without gstreamer1.0-libav
    let cfg = write_config(
        broker.port,
        "codec",
        &camera(&media("vtest.avi").display().to_string()),
    );
    let out = Command::new(bin())
        .args(["run", "--config"])
        .arg(&cfg.path)
        .env("GST_PLUGIN_FEATURE_RANK", "avdec_msmpeg4:NONE")
        .output()
        .expect("run");
    let log = no_panic(&out);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(
        log.contains("no decoder installed for DivX MPEG-4 Version 3 (video/x-divx)"),
        "{log}"
    );

    // a real media file without any video stream
    let dir = tempfile::tempdir().expect("tempdir");
    let ogg = dir.path().join("audio.ogg");
    let made = Command::new("gst-launch-1.0")
        .args([
            "-q",
            "audiotestsrc",
            "num-buffers=50",
            "!",
            "audioconvert",
            "!",
            "vorbisenc",
            "!",
            "oggmux",
            "!",
            "filesink",
        ])
        .arg(format!("location={}", ogg.display()))
        .status()
        .expect("gst-launch-1.0");
    assert!(made.success());
    let cfg = write_config(broker.port, "codec2", &camera(&ogg.display().to_string()));
    let out = run_daemon(&cfg.path, Duration::from_secs(60));
    let log = no_panic(&out);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(
        log.contains("no video stream found; the source has only audio/x-raw"),
        "{log}"
    );
}
