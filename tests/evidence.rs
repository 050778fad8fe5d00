//! Evidence for alerts: a JPEG snapshot of the best frame with the boxes drawn, written to the media directory,
//! published retained on `<prefix>/<camera>/<label>/snapshot`, and referenced by the alert; `{"snapshot": true}`
//! publishes the latest frame on demand. Real vtest.avi, real models, real broker.

mod common;

use std::time::Duration;

use common::*;

fn is_jpeg(b: &[u8]) -> bool {
    b.len() > 1000 && b[..2] == [0xFF, 0xD8] && b[b.len() - 2..] == [0xFF, 0xD9]
}

#[test]
fn person_alert_has_a_snapshot_file_and_a_retained_jpeg() {
    let broker = Broker::start();
    let rec = Recorder::start(broker.port, "ev/#");
    let body = format!(
        "[[cameras]]\nname = \"walk\"\nurl = \"{}\"\nsample_fps = 2.0\nrealtime = true\n[[cameras.rules]]\nlabel = \"person\"\n",
        media("vtest.avi").display()
    );
    let cfg = write_config(broker.port, "ev", &body);
    let mut d = Daemon::spawn(&cfg.path, &[]);
    rec.wait_for("a person alert", Duration::from_secs(60), |m| {
        m.iter().any(|m| m.topic == "ev/walk/alerts")
    });
    rec.publish("ev/walk/set", b"{\"snapshot\": true}");
    rec.wait_for("on-demand snapshot", Duration::from_secs(20), |m| {
        m.iter().any(|m| m.topic == "ev/walk/latest/snapshot")
    });
    d.signal("TERM");
    let (code, log) = d.wait(Duration::from_secs(60));
    assert_eq!(code, Some(0), "{log}");

    let alerts: Vec<serde_json::Value> =
        rec.on("ev/walk/alerts").iter().map(|m| m.json()).collect();
    let new = alerts
        .iter()
        .find(|a| a["type"] == "new")
        .expect("new alert");
    let snap = &new["snapshot"];
    assert_eq!(snap["topic"], "ev/walk/person/snapshot", "{new}");
    let path = snap["path"].as_str().expect("snapshot path");
    assert!(
        path.starts_with(&cfg.dir.path().join("media/walk").display().to_string()),
        "{path}"
    );
    let bytes = std::fs::read(path).expect("snapshot file exists");
    assert!(is_jpeg(&bytes));
    let img = image::load_from_memory(&bytes).expect("decodes").to_rgb8();
    assert_eq!(img.dimensions(), (768, 576), "the camera's full frame");
    let red = img
        .pixels()
        .filter(|p| p[0] > 200 && p[1] < 80 && p[2] < 80)
        .count();
    assert!(red > 200, "boxes are drawn ({red} red pixels)");
    assert!(snap["score"].as_f64().unwrap_or(0.0) >= 0.5, "{snap}");

    let retained = rec.on("ev/walk/person/snapshot");
    assert!(!retained.is_empty() && retained.iter().all(|m| is_jpeg(&m.raw)));
    // the snapshot precedes the alert that references it, so a consumer can fetch it at once
    let all = rec.all();
    let snap_at = all
        .iter()
        .position(|m| m.topic == "ev/walk/person/snapshot");
    let new_at = all.iter().position(|m| m.topic == "ev/walk/alerts");
    assert!(snap_at < new_at);
    let latest = rec.on("ev/walk/latest/snapshot");
    assert!(latest.iter().all(|m| is_jpeg(&m.raw)) && !latest.is_empty());
    // a late subscriber gets the last snapshot (retained)
    let late = Recorder::start(broker.port, "ev/walk/person/snapshot");
    late.wait_for("retained snapshot", Duration::from_secs(5), |m| {
        m.iter().any(|m| m.retain && is_jpeg(&m.raw))
    });
}
