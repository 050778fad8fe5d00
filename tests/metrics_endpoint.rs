//! `/metrics` and `/healthz` on a running daemon (real vtest.avi, real models, real broker): what a Prometheus
//! scrape and a health probe see while alerts flow, and a clear start-up error when the address is taken.

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use common::*;

fn get(port: u16, path: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("response");
    let code = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (code, body)
}

/// The value of the first sample line starting with `prefix`.
fn value(text: &str, prefix: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no sample {prefix} in:\n{text}"))
}

#[test]
fn metrics_and_health_describe_the_running_daemon() {
    let broker = Broker::start();
    let rec = Recorder::start(broker.port, "mx/#");
    let http = free_port();
    let body = format!(
        "[metrics]\nlisten = \"127.0.0.1:{http}\"\n\n[[cameras]]\nname = \"walk\"\nurl = \"{}\"\nsample_fps = 2.0\nrealtime = true\n\n[[cameras.prompts]]\ntext = \"people walking on a path\"\nthreshold = 0.9\n",
        media("vtest.avi").display()
    );
    let cfg = write_config(broker.port, "mx", &body);
    let mut d = Daemon::spawn(&cfg.path, &[]);
    rec.wait_for("an alert", Duration::from_secs(60), |m| {
        m.iter().any(|m| m.topic == "mx/walk/alerts")
    });
    let (code, health) = get(http, "/healthz");
    assert_eq!(code, 200, "{health}");
    let h: serde_json::Value = serde_json::from_str(&health).expect("healthz is JSON");
    assert_eq!(h["status"], "ok");
    assert_eq!(h["inference"], true, "{health}");
    assert_eq!(
        h["failed"],
        serde_json::json!([]),
        "no worker died: {health}"
    );
    assert_eq!(h["cameras"]["walk"], "running");

    // the events stage records a clip's figures just after handing its alert over: poll briefly
    let count = |text: &str, stage: &str| {
        text.lines()
            .find(|l| {
                l.starts_with(&format!(
                    "scenewatch_stage_seconds_count{{stage=\"{stage}\"}}"
                ))
            })
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let (code, text) = loop {
        let (code, text) = get(http, "/metrics");
        if count(&text, "events") > 0.0 || std::time::Instant::now() > deadline {
            break (code, text);
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(code, 200);
    // the encoder and the head run because the camera has a prompt
    for stage in [
        "decode",
        "queue_wait",
        "preprocess",
        "detector",
        "encoder",
        "head",
        "events",
        "publish",
    ] {
        let n = value(
            &text,
            &format!("scenewatch_stage_seconds_count{{stage=\"{stage}\"}}"),
        );
        assert!(n > 0.0, "stage {stage} has observations:\n{text}");
    }
    assert!(value(&text, "scenewatch_frames_inferred_total") >= 8.0);
    assert!(value(&text, "scenewatch_alerts_raised_total") >= 1.0);
    assert_eq!(
        value(
            &text,
            "scenewatch_camera_up{camera=\"walk\",state=\"running\"}"
        ),
        1.0
    );
    assert!(
        value(
            &text,
            "scenewatch_camera_frames_decoded_total{camera=\"walk\"}"
        ) > 0.0
    );
    assert_eq!(
        value(
            &text,
            "scenewatch_model_info{model=\"detector\",provider=\"CPUExecutionProvider\"}"
        ),
        1.0,
        "the provider really in use"
    );
    // detector latency: a real model run is more than a millisecond and well under ten seconds
    let (sum, n) = (
        value(&text, "scenewatch_stage_seconds_sum{stage=\"detector\"}"),
        value(&text, "scenewatch_stage_seconds_count{stage=\"detector\"}"),
    );
    assert!((0.001..10.0).contains(&(sum / n)), "{sum} / {n}");
    assert_eq!(get(http, "/nope").0, 404);

    // a second daemon on the same address: a clear start-up error naming the key
    let cfg2 = write_config(broker.port, "mx2", &body);
    let out = run_daemon(&cfg2.path, Duration::from_secs(60));
    let log = no_panic(&out);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(
        log.contains("metrics.listen: cannot listen on 127.0.0.1:"),
        "{log}"
    );

    d.signal("TERM");
    let (code, log) = d.wait(Duration::from_secs(60));
    assert_eq!(code, Some(0), "{log}");
}
