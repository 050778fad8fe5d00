//! Home Assistant MQTT discovery against a real broker, checked the way Home Assistant reads it: every config's
//! templates are rendered (minijinja, Jinja as Home Assistant writes it) against what scenewatch really publishes on
//! the entity's topics, and the result must be a value the entity accepts; commands sent as Home Assistant sends
//! them work; configs are re-published on HA's birth message; stale configs — a removed rule, a removed camera,
//! the layout before the node level — are gone after a restart.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use common::*;
use serde_json::Value;

/// Renders a Home Assistant template for an MQTT payload: `value` is the text, `value_json` the parsed JSON.
fn render(template: &str, payload: &str) -> String {
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    let json: Value = serde_json::from_str(payload).unwrap_or(Value::Null);
    env.render_str(
        template,
        minijinja::context! {
            value => payload,
            value_json => minijinja::Value::from(minijinja::value::Serde(&json)),
        },
    )
    .unwrap_or_else(|e| panic!("template {template} on {payload}: {e:#}"))
}

/// Keys every config must carry.
fn check_common(topic: &str, v: &Value) {
    for k in [
        "name",
        "unique_id",
        "default_entity_id",
        "device",
        "origin",
        "availability",
        "payload_available",
    ] {
        assert!(!v[k].is_null(), "{topic}: missing {k}: {v}");
    }
    assert!(
        v.get("object_id").is_none(),
        "{topic}: deprecated object_id"
    );
    let component = topic.split('/').nth(1).unwrap_or("");
    assert_eq!(
        v["default_entity_id"].as_str(),
        Some(format!("{component}.{}", v["unique_id"].as_str().unwrap_or("")).as_str()),
        "{topic}"
    );
    assert_eq!(v["origin"]["name"], "scenewatch");
    assert_eq!(v["origin"]["sw_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        v["device"]["configuration_url"],
        "http://scenewatch.local:9090/"
    );
    assert_eq!(v["availability"][0]["topic"], "ha/status", "{topic}");
    assert_eq!(
        render(
            v["availability"][0]["value_template"]
                .as_str()
                .unwrap_or(""),
            "online"
        ),
        "online"
    );
    assert_eq!(
        render(
            v["availability"][0]["value_template"]
                .as_str()
                .unwrap_or(""),
            "stopped"
        ),
        "offline"
    );
}

/// The state the entity shows for the last message on its state topic, checked against what the component accepts.
fn check_state(topic: &str, v: &Value, rec: &Recorder) {
    let component = topic.split('/').nth(1).unwrap_or("");
    let last = |key: &str| -> Msg {
        let t = v[key]
            .as_str()
            .unwrap_or_else(|| panic!("{topic}: {key} must be a string: {v}"));
        rec.last(t)
            .unwrap_or_else(|| panic!("{topic}: nothing was published on its {key} {t}"))
    };
    let state = |m: &Msg| match v["value_template"].as_str() {
        Some(t) => render(t, &m.payload),
        None => m.payload.clone(),
    };
    match component {
        "binary_sensor" => {
            let s = state(&last("state_topic"));
            let on = v["payload_on"].as_str().unwrap_or("ON");
            let off = v["payload_off"].as_str().unwrap_or("OFF");
            assert!(
                s == on || s == off,
                "{topic}: state {s:?} is neither {on} nor {off}"
            );
        }
        "switch" => {
            let s = state(&last("state_topic"));
            assert!(
                [&v["state_on"], &v["state_off"]]
                    .iter()
                    .any(|x| x.as_str() == Some(s.as_str())),
                "{topic}: switch state {s:?}"
            );
            assert!(
                v["command_topic"].is_string()
                    && v["payload_on"].is_string()
                    && v["payload_off"].is_string()
            );
        }
        "sensor" => {
            let s = state(&last("state_topic"));
            if v["state_class"] == "measurement" {
                s.trim()
                    .parse::<f64>()
                    .unwrap_or_else(|_| panic!("{topic}: measurement {s:?} is not a number"));
            }
            match v["device_class"].as_str() {
                Some("timestamp") => {
                    chrono::DateTime::parse_from_rfc3339(s.trim())
                        .unwrap_or_else(|e| panic!("{topic}: timestamp {s:?}: {e}"));
                }
                Some("enum") => {
                    let options: Vec<&str> = v["options"]
                        .as_array()
                        .map(|a| a.iter().filter_map(|x| x.as_str()).collect())
                        .unwrap_or_default();
                    assert!(
                        options.contains(&s.as_str()),
                        "{topic}: {s:?} not in {options:?}"
                    );
                }
                _ => {}
            }
            assert!(
                s.chars().count() <= 255,
                "{topic}: a state is at most 255 characters"
            );
            if let Some(t) = v["json_attributes_template"].as_str() {
                let m = last("json_attributes_topic");
                let attrs: Value = serde_json::from_str(&render(t, &m.payload))
                    .unwrap_or_else(|e| panic!("{topic}: attributes are not JSON: {e}"));
                assert!(attrs.is_object(), "{topic}: {attrs}");
                if topic.ends_with("_last_summary/config") {
                    assert!(
                        attrs["text"].as_str().is_some_and(|t| !t.is_empty()),
                        "{attrs}"
                    );
                }
            }
        }
        "event" => {
            let types: Vec<&str> = v["event_types"]
                .as_array()
                .map(|a| a.iter().filter_map(|x| x.as_str()).collect())
                .unwrap_or_default();
            let t = v["state_topic"].as_str().expect("state_topic");
            let msgs = rec.on(t);
            assert!(!msgs.is_empty(), "{topic}: no alert on {t}");
            for m in msgs {
                let ev: Value = serde_json::from_str(&state(&m))
                    .unwrap_or_else(|e| panic!("{topic}: event payload is not JSON: {e}"));
                let et = ev["event_type"].as_str().unwrap_or("");
                assert!(
                    types.contains(&et),
                    "{topic}: event_type {et:?} not in {types:?}"
                );
                assert!(ev["summary"].is_string(), "{ev}");
            }
        }
        "image" => {
            assert_eq!(v["content_type"], "image/jpeg");
            let m = last("image_topic");
            assert!(m.raw.starts_with(&[0xFF, 0xD8]), "{topic}: not a JPEG");
        }
        "button" => {
            assert!(v["command_topic"].is_string() && v["payload_press"].is_string());
        }
        other => panic!("unexpected component {other} in {topic}"),
    }
}

fn configs(rec: &Recorder) -> HashMap<String, Value> {
    rec.all()
        .into_iter()
        .filter(|m| {
            m.topic.starts_with("homeassistant/")
                && m.topic.ends_with("/config")
                && !m.payload.is_empty()
        })
        .map(|m| (m.topic.clone(), m.json()))
        .collect()
}

#[test]
fn every_discovery_config_renders_against_the_published_states() {
    let broker = Broker::start();
    let rec = Recorder::start(broker.port, "#");
    let body = format!(
        "[homeassistant]\nenabled = true\nconfiguration_url = \"http://scenewatch.local:9090/\"\n\n[summaries]\nperiod_minutes = 0.1\n\n[[cameras]]\nname = \"walk\"\nurl = \"{}\"\nsample_fps = 2.0\nrealtime = true\n[[cameras.rules]]\nlabel = \"person\"\n",
        media("vtest.avi").display()
    );
    let cfg = write_config(broker.port, "ha", &body);
    let mut d = Daemon::spawn(&cfg.path, &[]);
    // person: occupancy, count, snapshot, armed; camera: detect, alert event, latest image, snapshot button,
    // last summary, status, sampled fps
    rec.wait_for("11 discovery configs", Duration::from_secs(60), |_| {
        configs(&rec).len() >= 11
    });
    rec.wait_for(
        "a person alert and a summary",
        Duration::from_secs(90),
        |m| {
            m.iter()
                .any(|m| m.topic == "ha/walk/person/count" && m.payload != "0")
                && m.iter().any(|m| m.topic == "ha/walk/summary")
        },
    );
    let first = configs(&rec);
    assert_eq!(
        first.len(),
        11,
        "{:#?}",
        first.keys().collect::<BTreeSet<_>>()
    );
    for t in first.keys() {
        assert!(
            t.starts_with("homeassistant/") && t.contains("/ha/walk_"),
            "node level: {t}"
        );
    }
    // the latest-snapshot image fills when its button is pressed, as Home Assistant presses it
    let button = first
        .iter()
        .find(|(t, _)| t.contains("/button/"))
        .map(|(_, v)| v.clone())
        .expect("button");
    rec.publish(
        button["command_topic"].as_str().expect("command"),
        button["payload_press"].as_str().expect("press").as_bytes(),
    );
    rec.wait_for("latest snapshot", Duration::from_secs(10), |m| {
        m.iter().any(|m| m.topic == "ha/walk/latest/snapshot")
    });
    let uids: BTreeSet<String> = first.values().map(|v| v["unique_id"].to_string()).collect();
    assert_eq!(uids.len(), first.len(), "unique ids");
    let devices: BTreeSet<String> = first
        .values()
        .map(|v| v["device"]["identifiers"][0].to_string())
        .collect();
    assert_eq!(devices.len(), 1, "one device per camera");
    for (topic, v) in &first {
        check_common(topic, v);
        check_state(topic, v, &rec);
    }

    // retained: Home Assistant starting later still finds them
    let late = Recorder::start(broker.port, "homeassistant/#");
    late.wait_for("retained configs", Duration::from_secs(5), |m| {
        m.iter()
            .filter(|m| m.retain && !m.payload.is_empty())
            .count()
            >= 11
    });
    // HA restarts: its birth message makes scenewatch announce again
    let before = rec
        .all()
        .iter()
        .filter(|m| m.topic.ends_with("/config"))
        .count();
    rec.publish("homeassistant/status", b"online");
    rec.wait_for("re-published configs", Duration::from_secs(10), |m| {
        m.iter().filter(|m| m.topic.ends_with("/config")).count() >= before + 11
    });

    // the switches work as Home Assistant drives them: payload_off on command_topic, state_off on state_topic
    for (what, state_json) in [("_person_armed", "disarmed"), ("_detect", "detect")] {
        let (_, sw) = first
            .iter()
            .find(|(t, _)| t.contains("/switch/") && t.ends_with(&format!("{what}/config")))
            .expect("switch");
        rec.publish(
            sw["command_topic"].as_str().expect("command"),
            sw["payload_off"].as_str().expect("off").as_bytes(),
        );
        let st = sw["state_topic"].as_str().expect("state").to_string();
        rec.wait_for(&format!("{what} off"), Duration::from_secs(10), |_| {
            rec.last(&st)
                .is_some_and(|m| Some(m.payload.as_str()) == sw["state_off"].as_str())
        });
        rec.wait_for("camera state agrees", Duration::from_secs(10), |_| {
            rec.last("ha/walk/state").is_some_and(|m| {
                let s = m.json();
                s[state_json] == false || s[state_json] == serde_json::json!(["person"])
            })
        });
    }
    // and the occupancy goes back to OFF with the alert's end
    let occ = first
        .iter()
        .find(|(t, _)| t.ends_with("_occupancy/config"))
        .map(|(_, v)| v)
        .expect("occupancy");
    rec.wait_for("occupancy OFF", Duration::from_secs(10), |_| {
        rec.last("ha/walk/person/count").is_some_and(|m| {
            render(occ["value_template"].as_str().unwrap_or(""), &m.payload) == "OFF"
        })
    });
    d.signal("TERM");
    let (code, log) = d.wait(Duration::from_secs(60));
    assert_eq!(code, Some(0), "{log}");
}

/// What a Home Assistant starting now would find: the non-empty retained configs under `homeassistant/`.
fn retained_configs(port: u16) -> BTreeSet<String> {
    let r = Recorder::start(port, "homeassistant/#");
    std::thread::sleep(Duration::from_millis(700));
    r.all()
        .into_iter()
        .filter(|m| m.retain && !m.payload.is_empty())
        .map(|m| m.topic)
        .collect()
}

fn wait_retained(
    port: u16,
    what: &str,
    pred: impl Fn(&BTreeSet<String>) -> bool,
) -> BTreeSet<String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let got = retained_configs(port);
        if pred(&got) {
            return got;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}: {got:#?}"
        );
    }
}

#[test]
fn stale_configs_are_deleted_at_start_across_a_restart() {
    let broker = Broker::start();
    let admin = Recorder::start(broker.port, "ha2/status");
    // a config of the layout before the node level (same unique id as today's person count)
    let legacy = "homeassistant/sensor/scenewatch_ha2_a_person_count/config";
    admin.publish_retained(
        legacy,
        br#"{"name":"Person count","unique_id":"scenewatch_ha2_a_person_count"}"#,
    );
    // and one of another program, which must be left alone
    let foreign = "homeassistant/sensor/other_node/thing/config";
    admin.publish_retained(foreign, br#"{"name":"x"}"#);
    let cam = |name: &str, rules: &[&str]| {
        let rules: String = rules
            .iter()
            .map(|r| format!("[[cameras.rules]]\nlabel = \"{r}\"\n"))
            .collect();
        format!(
            "[[cameras]]\nname = \"{name}\"\nurl = \"test://ball\"\nsample_fps = 1.0\n{rules}\n"
        )
    };
    let head = "[homeassistant]\nenabled = true\n\n[summaries]\nenabled = false\n\n";
    let cfg = write_config(
        broker.port,
        "ha2",
        &format!(
            "{head}{}{}",
            cam("a", &["person", "vehicle"]),
            cam("b", &["person"])
        ),
    );
    let text = std::fs::read_to_string(&cfg.path).expect("config");
    let mut d = Daemon::spawn(&cfg.path, &[]);
    let run1 = wait_retained(broker.port, "both cameras announced", |got| {
        got.iter().any(|t| t.contains("/ha2/b_"))
            && got
                .iter()
                .any(|t| t.ends_with("/ha2/a_vehicle_count/config"))
    });
    assert!(
        !run1.contains(legacy),
        "the old layout's config is deleted: {run1:#?}"
    );
    assert!(run1.contains(foreign));
    d.signal("TERM");
    let (code, log) = d.wait(Duration::from_secs(60));
    assert_eq!(code, Some(0), "{log}");

    // camera b and a's vehicle rule removed while scenewatch was stopped
    let body = text.split("[[cameras]]").next().expect("head").to_string();
    std::fs::write(&cfg.path, format!("{body}{}", cam("a", &["person"]))).expect("rewrite");
    let mut d = Daemon::spawn(&cfg.path, &[]);
    let run2 = wait_retained(broker.port, "stale configs deleted", |got| {
        got.iter()
            .all(|t| !t.contains("/ha2/b_") && !t.contains("vehicle"))
            && got.iter().any(|t| t.contains("/ha2/a_"))
    });
    let expected: BTreeSet<String> = [
        "binary_sensor/ha2/a_person_occupancy",
        "sensor/ha2/a_person_count",
        "image/ha2/a_person_snapshot",
        "image/ha2/a_latest_snapshot",
        "button/ha2/a_take_snapshot",
        "switch/ha2/a_person_armed",
        "switch/ha2/a_detect",
        "event/ha2/a_alert",
        "sensor/ha2/a_status",
        "sensor/ha2/a_sampled_fps",
    ]
    .iter()
    .map(|s| format!("homeassistant/{s}/config"))
    .chain([foreign.to_string()])
    .collect();
    assert_eq!(run2, expected);
    assert!(
        d.log()
            .contains("deleting a stale Home Assistant discovery config"),
        "{}",
        d.log()
    );
    d.signal("TERM");
    let (code, log) = d.wait(Duration::from_secs(60));
    assert_eq!(code, Some(0), "{log}");
}
