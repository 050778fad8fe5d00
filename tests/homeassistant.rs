//! Home Assistant MQTT discovery against a real broker: the retained configs follow the documented schema,
//! entities point at topics scenewatch really publishes, configs are re-published on HA's birth message, and the
//! detect switch's command works.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::*;

/// Keys every config must carry, and per component the keys that wire it to scenewatch's topics.
fn check_schema(topic: &str, v: &serde_json::Value) {
    for k in [
        "name",
        "unique_id",
        "device",
        "availability",
        "payload_available",
    ] {
        assert!(!v[k].is_null(), "{topic}: missing {k}: {v}");
    }
    assert_eq!(v["availability"][0]["topic"], "ha/status", "{topic}");
    assert!(v["device"]["identifiers"][0]
        .as_str()
        .is_some_and(|s| !s.is_empty()));
    let component = topic.split('/').nth(1).unwrap_or("");
    let need: &[&str] = match component {
        "binary_sensor" => &["state_topic", "value_template", "device_class"],
        "sensor" => &["state_topic", "state_class"],
        "image" => &["image_topic", "content_type"],
        "switch" => &[
            "command_topic",
            "state_topic",
            "payload_on",
            "payload_off",
            "value_template",
        ],
        other => panic!("unexpected component {other} in {topic}"),
    };
    for k in need {
        assert!(v[*k].is_string(), "{topic}: {k} must be a string: {v}");
    }
}

#[test]
fn discovery_configs_follow_the_schema_and_drive_real_topics() {
    let broker = Broker::start();
    let rec = Recorder::start(broker.port, "#");
    let body = format!(
        "[homeassistant]\nenabled = true\n\n[[cameras]]\nname = \"walk\"\nurl = \"{}\"\nsample_fps = 2.0\nrealtime = true\n[[cameras.rules]]\nlabel = \"person\"\n",
        media("vtest.avi").display()
    );
    let cfg = write_config(broker.port, "ha", &body);
    let mut d = Daemon::spawn(&cfg.path, &[]);
    let configs = |rec: &Recorder| -> Vec<Msg> {
        rec.all()
            .into_iter()
            .filter(|m| m.topic.starts_with("homeassistant/") && m.topic.ends_with("/config"))
            .collect()
    };
    rec.wait_for("discovery configs", Duration::from_secs(60), |_| {
        configs(&rec).len() >= 4
    });
    rec.wait_for("a person count > 0", Duration::from_secs(60), |m| {
        m.iter()
            .any(|m| m.topic == "ha/walk/person/count" && m.payload != "0")
    });
    let first = configs(&rec);
    let topics: HashSet<String> = first.iter().map(|m| m.topic.clone()).collect();
    assert_eq!(
        topics.len(),
        4,
        "occupancy, count, snapshot, switch: {topics:?}"
    );
    let mut uids = HashSet::new();
    for m in &first {
        let v = m.json();
        check_schema(&m.topic, &v);
        uids.insert(v["unique_id"].to_string());
        // what the entity reads is what scenewatch publishes
        for k in ["state_topic", "image_topic", "command_topic"] {
            if let Some(t) = v[k].as_str() {
                assert!(
                    [
                        "ha/walk/person/count",
                        "ha/walk/person/snapshot",
                        "ha/walk/set",
                        "ha/walk/state"
                    ]
                    .contains(&t),
                    "{}: {k} = {t}",
                    m.topic
                );
            }
        }
    }
    assert_eq!(uids.len(), 4, "unique ids");
    let devices: HashSet<String> = first
        .iter()
        .map(|m| m.json()["device"]["identifiers"][0].to_string())
        .collect();
    assert_eq!(devices.len(), 1, "one device per camera");
    // retained: Home Assistant starting later still finds them
    let late = Recorder::start(broker.port, "homeassistant/#");
    late.wait_for("retained configs", Duration::from_secs(5), |m| {
        m.iter().filter(|m| m.retain).count() >= 4
    });

    // HA restarts: its birth message makes scenewatch announce again
    let before = configs(&rec).len();
    rec.publish("homeassistant/status", b"online");
    rec.wait_for("re-published configs", Duration::from_secs(10), |_| {
        configs(&rec).len() >= before + 4
    });

    // the switch's payload_off really switches detection off
    let switch = first
        .iter()
        .find(|m| m.topic.contains("/switch/"))
        .map(|m| m.json())
        .expect("switch");
    let off = switch["payload_off"]
        .as_str()
        .expect("payload_off")
        .to_string();
    rec.publish(
        switch["command_topic"].as_str().expect("command topic"),
        off.as_bytes(),
    );
    rec.wait_for("detect off in state", Duration::from_secs(10), |m| {
        m.iter()
            .rfind(|m| m.topic == "ha/walk/state")
            .is_some_and(|m| m.json()["detect"] == false)
    });
    // and the occupancy count goes back to 0 with the alert's end
    rec.wait_for("count 0", Duration::from_secs(10), |m| {
        m.iter()
            .rfind(|m| m.topic == "ha/walk/person/count")
            .is_some_and(|m| m.payload == "0")
    });
    d.signal("TERM");
    let (code, log) = d.wait(Duration::from_secs(60));
    assert_eq!(code, Some(0), "{log}");
}
