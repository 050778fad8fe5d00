//! End to end on real parts: vtest.avi (real CCTV footage) → GStreamer → NanoDet/EfficientNet on ONNX Runtime →
//! rules → a real mosquitto broker. Asserts what a user subscribed to the topics would check.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;

/// vtest.avi is 795 frames at 10 fps.
const VIDEO_SECONDS: f64 = 79.5;

#[test]
fn person_alerts_on_vtest_reach_the_broker_in_order_and_the_daemon_exits_cleanly() {
    let broker = Broker::start();
    let rec = Recorder::start(broker.port, "e2e/#");
    let cfg = write_config(
        broker.port,
        "e2e",
        &format!(
            "[[cameras]]\nname = \"walkway\"\nurl = \"file://{}\"\nsample_fps = 2.0\nclip_seconds = 4.0\n",
            media("vtest.avi").display()
        ),
    );
    let out = run_daemon(&cfg.path, Duration::from_secs(300));
    let log = no_panic(&out);
    assert!(out.status.success(), "exit {:?}\n{log}", out.status);

    rec.wait_for("status stopped", Duration::from_secs(10), |m| {
        m.iter()
            .any(|m| m.topic == "e2e/status" && m.payload == "stopped")
    });
    // status: online first, stopped last
    let status: Vec<String> = rec
        .on("e2e/status")
        .into_iter()
        .map(|m| m.payload)
        .collect();
    assert_eq!(
        status.first().map(String::as_str),
        Some("online"),
        "{status:?}"
    );
    assert_eq!(
        status.last().map(String::as_str),
        Some("stopped"),
        "{status:?}"
    );

    // one period summary (5 min > the 79.5 s video): people, from the facts it carries, nothing that was not seen
    let sums: Vec<_> = rec
        .on("e2e/walkway/summary")
        .iter()
        .map(|m| m.json())
        .collect();
    assert_eq!(sums.len(), 1, "{sums:#?}");
    let sum = &sums[0];
    assert_eq!(sum["seq"], 1, "summaries are spooled and numbered: {sum}");
    assert_eq!(sum["clips"], 20, "{sum}");
    let text = sum["text"].as_str().unwrap_or("");
    assert!(text.contains("people at once"), "{text}");
    assert!(
        sum["labels"]["person"]["max_count"].as_u64().unwrap_or(0) >= 3,
        "{sum}"
    );
    assert!(
        sum["labels"]["person"]["alerts"].as_u64().unwrap_or(0) >= 1,
        "{sum}"
    );
    // a camera without rules watches person and vehicle, and the summary carries exactly those. Besides the people,
    // vtest.avi shows two parked vehicles (a van and a car, top right) for its whole length: seen in (nearly)
    // every clip, never more than two at once, one alert while they stay, and said in the text
    let watched: Vec<&str> = sum["labels"]
        .as_object()
        .map(|l| l.keys().map(String::as_str).collect())
        .unwrap_or_default();
    assert_eq!(watched, ["person", "vehicle"], "{sum}");
    let vehicle = &sum["labels"]["vehicle"];
    assert_eq!(vehicle["max_count"], 2, "{sum}");
    assert!(vehicle["clips_seen"].as_u64().unwrap_or(0) >= 18, "{sum}");
    assert_eq!(vehicle["alerts"], 1, "{sum}");
    assert!(text.contains("up to 2 vehicles at once"), "{text}");

    // the camera state goes running → ended (end of stream) and says which provider ran the models
    let states: Vec<_> = rec
        .on("e2e/walkway/state")
        .iter()
        .map(|m| m.json())
        .collect();
    assert!(states.iter().any(|s| s["state"] == "running"), "{states:?}");
    let last = states.last().expect("state messages");
    assert_eq!(last["state"], "ended");
    assert_eq!(last["reason"], "end of stream");
    assert_eq!(last["frames_sampled"], 159, "2 fps over 79.5 s");
    assert_eq!(last["providers"]["detector"], "CPUExecutionProvider");
    // a subscriber arriving later gets the retained status, info and camera state
    let late = Recorder::start(broker.port, "e2e/#");
    late.wait_for("retained status/info/state", Duration::from_secs(5), |m| {
        ["e2e/status", "e2e/info", "e2e/walkway/state"]
            .iter()
            .all(|t| m.iter().any(|m| m.topic == *t))
    });
    let retained: HashMap<String, Msg> = late
        .all()
        .into_iter()
        .map(|m| (m.topic.clone(), m))
        .collect();
    assert_eq!(
        retained.get("e2e/status").map(|m| m.payload.as_str()),
        Some("stopped")
    );
    assert!(
        retained.get("e2e/info").is_some_and(|m| m.retain),
        "{retained:?}"
    );
    assert_eq!(
        retained
            .get("e2e/walkway/state")
            .map(|m| m.json()["state"].clone()),
        Some(serde_json::json!("ended"))
    );
    assert!(
        late.on("e2e/walkway/alerts").is_empty(),
        "alerts must not be retained"
    );

    // alerts: person, new … end per id, ids correlate, counts and timestamps make sense
    let alerts: Vec<_> = rec
        .on("e2e/walkway/alerts")
        .iter()
        .map(|m| m.json())
        .collect();
    let person: Vec<_> = alerts.iter().filter(|a| a["label"] == "person").collect();
    assert!(!person.is_empty(), "no person alert: {alerts:#?}");
    // the parked vehicles: one alert (new … end, one id), never counting more than the two of them (the end says 0)
    let vehicle_alerts: Vec<_> = alerts.iter().filter(|a| a["label"] == "vehicle").collect();
    assert_eq!(
        person.len() + vehicle_alerts.len(),
        alerts.len(),
        "only the watched labels: {alerts:#?}"
    );
    assert_eq!(
        vehicle_alerts.first().map(|a| a["type"].clone()),
        Some(serde_json::json!("new")),
        "{vehicle_alerts:#?}"
    );
    assert_eq!(
        vehicle_alerts.last().map(|a| a["type"].clone()),
        Some(serde_json::json!("end")),
        "{vehicle_alerts:#?}"
    );
    assert!(
        vehicle_alerts
            .iter()
            .all(|a| a["id"] == vehicle_alerts[0]["id"]
                && a["count"].as_u64().is_some_and(|n| n <= 2)),
        "{vehicle_alerts:#?}"
    );
    let mut by_id: HashMap<String, Vec<&serde_json::Value>> = HashMap::new();
    for a in &person {
        assert_eq!(a["schema"], 1);
        assert_eq!(a["camera"], "walkway");
        by_id
            .entry(a["id"].as_str().expect("id").to_string())
            .or_default()
            .push(a);
    }
    for (id, msgs) in &by_id {
        let types: Vec<&str> = msgs
            .iter()
            .map(|m| m["type"].as_str().unwrap_or("?"))
            .collect();
        assert_eq!(types.first(), Some(&"new"), "{id}: {types:?}");
        assert_eq!(types.last(), Some(&"end"), "{id}: {types:?}");
        assert!(
            types[1..types.len() - 1].iter().all(|t| *t == "update"),
            "{id}: {types:?}"
        );
        // each update says what it changed from: the previous message's count
        for pair in msgs.windows(2).filter(|w| w[1]["type"] == "update") {
            assert_eq!(
                pair[1]["before"]["count"], pair[0]["count"],
                "{id}: {}",
                pair[1]
            );
            assert_ne!(
                pair[1]["before"]["count"], pair[1]["count"],
                "{id}: {}",
                pair[1]
            );
        }
        let end = msgs.last().expect("end");
        let (s, e) = (
            end["stream_start"].as_f64().unwrap_or(-1.0),
            end["stream_end"].as_f64().unwrap_or(-1.0),
        );
        assert!(
            0.0 <= s && s <= e && e <= VIDEO_SECONDS,
            "{id}: stream {s}..{e}"
        );
        let started =
            chrono::DateTime::parse_from_rfc3339(end["started_at"].as_str().unwrap_or(""));
        let ended = chrono::DateTime::parse_from_rfc3339(end["ended_at"].as_str().unwrap_or(""));
        assert!(
            matches!((&started, &ended), (Ok(a), Ok(b)) if a <= b),
            "{id}: {started:?} {ended:?}"
        );
        assert!(
            end["summary"].as_str().unwrap_or("").contains("people"),
            "{end}"
        );
    }
    let max_count = person
        .iter()
        .filter_map(|a| a["count"].as_u64())
        .max()
        .unwrap_or(0);
    assert!(
        max_count >= 2,
        "vtest shows several people at once; max count {max_count}"
    );
}

#[test]
fn validate_accepts_the_shipped_configs() {
    for cfg in ["pipelines/demo.toml", "deploy/scenewatch.example.toml"] {
        let out = std::process::Command::new(bin())
            .args(["validate"])
            .arg(repo().join(cfg))
            .output()
            .expect("run validate");
        assert!(out.status.success(), "{cfg}: {}", stderr(&out));
    }
}

#[test]
fn prompt_alerts_flow_through_the_same_lifecycle() {
    let broker = Broker::start();
    let rec = Recorder::start(broker.port, "pr/#");
    // measured on vtest: "people walking on a path" scores 0.668-0.691 per clip, "an empty street" 0.615-0.659
    let cfg = write_config(
        broker.port,
        "pr",
        &format!(
            "[[cameras]]\nname = \"walkway\"\nurl = \"file://{}\"\n\n[[cameras.rules]]\nlabel = \"person\"\n\n\
             [[cameras.prompts]]\ntext = \"people walking on a path\"\nthreshold = 0.65\nexit_threshold = 0.6\n\n\
             [[cameras.prompts]]\ntext = \"an empty street\"\nthreshold = 0.72\n",
            media("vtest.avi").display()
        ),
    );
    let out = run_daemon(&cfg.path, Duration::from_secs(300));
    let log = no_panic(&out);
    assert!(out.status.success(), "{log}");
    rec.wait_for("stopped", Duration::from_secs(10), |m| {
        m.iter().any(|m| m.payload == "stopped")
    });
    let alerts: Vec<_> = rec
        .on("pr/walkway/alerts")
        .iter()
        .map(|m| m.json())
        .collect();
    let prompt: Vec<_> = alerts.iter().filter(|a| a["kind"] == "prompt").collect();
    assert!(!prompt.is_empty(), "no prompt alert: {alerts:#?}");
    assert!(
        prompt
            .iter()
            .all(|a| a["prompt"] == "people walking on a path"),
        "{prompt:#?}"
    );
    assert_eq!(
        prompt.first().map(|a| a["type"].clone()),
        Some(serde_json::json!("new"))
    );
    assert_eq!(
        prompt.last().map(|a| a["type"].clone()),
        Some(serde_json::json!("end"))
    );
    let id = &prompt[0]["id"];
    assert!(prompt.iter().all(|a| &a["id"] == id), "one alert, one id");
    let new = prompt[0];
    assert!(new["score"].as_f64().unwrap_or(0.0) >= 0.65, "{new}");
    assert_eq!(
        new["frames"].as_array().map(|f| f.len()),
        Some(3),
        "which frames drove it: {new}"
    );
    // its snapshot has a retained topic of its own prompt
    assert_eq!(
        new["snapshot"]["topic"], "pr/walkway/people_walking_on_a_path/snapshot",
        "{new}"
    );
    assert!(rec
        .on("pr/walkway/people_walking_on_a_path/snapshot")
        .iter()
        .any(|m| m.raw.starts_with(&[0xFF, 0xD8])));
    // label alerts still come alongside
    assert!(alerts
        .iter()
        .any(|a| a["kind"] == "label" && a["label"] == "person"));
    let info: serde_json::Value = rec.on("pr/info").last().map(|m| m.json()).expect("info");
    let names: Vec<_> = info["models"]
        .as_array()
        .map(|m| m.iter().map(|x| x["name"].clone()).collect())
        .unwrap_or_default();
    assert!(
        names.contains(&serde_json::json!("language_head")),
        "{info}"
    );
}
