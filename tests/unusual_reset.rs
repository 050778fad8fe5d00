//! The unusual-scene baseline's `reset` command through the real daemon, a real broker and real models (issue 15,
//! part 2), and what the camera state says about the baseline. A first run learns the street of a 40 s file and
//! saves its baseline; a second run restores it on a live test pattern, which is far from anything the street
//! taught, so the restored (warm) baseline alerts at once. `{"unusual": "reset"}` then ends that alert, deletes the
//! saved file, and starts a new warm-up during which nothing can alert and the state says `unusual_warming_up`.
//! Also: the detector's model-card levels on the retained `<prefix>/info`.

mod common;

use std::time::{Duration, Instant};

use common::*;

fn wait_until(what: &str, timeout: Duration, mut pred: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !pred() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn json_on(rec: &Recorder, topic: &str) -> Vec<serde_json::Value> {
    rec.on(topic).iter().map(|m| m.json()).collect()
}

fn unusual_alerts(rec: &Recorder) -> Vec<serde_json::Value> {
    json_on(rec, "ur/street/alerts")
        .into_iter()
        .filter(|a| a["kind"] == "unusual")
        .collect()
}

/// `url`: the street camera's source; `warmup`: its warm-up in seconds. One clip above the 0.9 quantile opens an
/// alert and nothing ends it (exit quantile 0), so only the stream's end or a command can.
fn config(url: &str, warmup: f64) -> String {
    format!(
        "[[cameras]]\nname = \"street\"\nurl = \"{url}\"\nsample_fps = 2.0\nclip_seconds = 4.0\n\
         rules = [{{ label = \"person\" }}]\n\
         [cameras.unusual]\nenabled = true\nwarmup_seconds = {warmup:.1}\nthreshold_quantile = 0.9\n\
         exit_quantile = 0.0\nenter_clips = 1\nexit_clips = 1\nhours_per_bucket = 24\n"
    )
}

/// A live camera without a baseline.
const PLAIN: &str =
    "\n[[cameras]]\nname = \"plain\"\nurl = \"test://smpte\"\nsample_fps = 0.5\nclip_seconds = 4.0\n";

#[test]
fn a_reset_forgets_the_baseline_ends_its_alert_and_warms_up_again() {
    let broker = Broker::start();
    let rec = Recorder::start(broker.port, "ur/#");
    let street = cut_timelines().join("tl_unusual_short.mkv");
    let cfg = write_config(
        broker.port,
        "ur",
        &config(&format!("file://{}", street.display()), 4.0),
    );
    let out = run_daemon(&cfg.path, Duration::from_secs(180));
    let log = no_panic(&out);
    assert!(out.status.success(), "{log}");
    let saved = cfg.dir.path().join("unusual").join("street.json");
    assert!(saved.exists(), "the first run saved its baseline:\n{log}");

    // the detector's model card on the retained info: per-label levels, the fallback, the card file
    let info = json_on(&rec, "ur/info").pop().expect("info");
    let det = &info["detector"];
    let person = &det["levels"]["person"];
    let (alert, track) = (
        person["alert"].as_f64().expect("person alert level"),
        person["track"].as_f64().expect("person track level"),
    );
    assert!(0.0 < track && track <= alert && alert < 1.0, "{info:#}");
    // as the card writes them, not an f32's binary expansion (0.35, not 0.3499999940395355)
    assert!(
        person["track"].to_string().len() <= 6 && person["alert"].to_string().len() <= 6,
        "{info:#}"
    );
    assert!(det["fallback"]["alert"].is_number(), "{info:#}");
    assert!(
        det["card"].as_str().is_some_and(|c| c.ends_with(".toml")),
        "{info:#}"
    );

    // second run: the same camera on a live test pattern, its saved baseline restored (warm: a 20 s warm-up is
    // less than the 40 s it learnt)
    let text = std::fs::read_to_string(&cfg.path).expect("config");
    let live = text.replace(
        &config(&format!("file://{}", street.display()), 4.0),
        &(config("test://ball", 20.0) + PLAIN),
    );
    assert_ne!(live, text, "the camera section was replaced");
    std::fs::write(&cfg.path, live).expect("rewrite config");
    let before = unusual_alerts(&rec).len();
    let mut d = Daemon::spawn(&cfg.path, &[]);
    d.wait_log("the restored baseline", Duration::from_secs(60), |l| {
        l.contains("unusual-scene baseline restored")
    });
    wait_until(
        "an unusual alert on the pattern",
        Duration::from_secs(90),
        || {
            unusual_alerts(&rec)[before..]
                .iter()
                .any(|a| a["type"] == "new")
        },
    );
    let new = unusual_alerts(&rec)[before..]
        .iter()
        .find(|a| a["type"] == "new")
        .cloned()
        .expect("new");
    // the state carries the score of a warm baseline (a command makes the camera publish its state)
    let states_before = rec.on("ur/street/state").len();
    rec.publish("ur/street/set", b"{\"detect\": true}");
    wait_until("a state after the command", Duration::from_secs(10), || {
        rec.on("ur/street/state").len() > states_before
    });
    let st = json_on(&rec, "ur/street/state").pop().expect("state");
    assert_eq!(st["unusual_warming_up"], false, "{st:#}");
    assert!(
        st["unusual_score"]
            .as_f64()
            .is_some_and(|s| (0.0..=1.0).contains(&s)),
        "{st:#}"
    );

    // malformed resets and a camera without a baseline: answered on ur/errors, nothing reset
    rec.publish("ur/street/set", b"{\"unusual\": \"forget\"}");
    rec.publish(
        "ur/street/set",
        b"{\"unusual\": \"reset\", \"detect\": false}",
    );
    rec.publish("ur/plain/set", b"{\"unusual\": \"reset\"}");
    wait_until("three error reports", Duration::from_secs(15), || {
        rec.on("ur/errors").len() >= 3
    });
    let errors = json_on(&rec, "ur/errors");
    assert!(
        errors.iter().all(|e| e["source"] == "command"),
        "{errors:#?}"
    );
    assert!(
        errors.iter().any(|e| e["topic"] == "ur/plain/set"
            && e["error"]
                .as_str()
                .is_some_and(|s| s.contains("no unusual-scene baseline"))),
        "{errors:#?}"
    );
    assert!(
        !unusual_alerts(&rec)[before..]
            .iter()
            .any(|a| a["type"] == "end"),
        "a bad command ends nothing"
    );

    // the reset: the open alert ends, the file goes, the state and the log say so
    rec.publish("ur/street/set", b"{\"unusual\": \"reset\"}");
    wait_until("the alert's end", Duration::from_secs(15), || {
        unusual_alerts(&rec)[before..]
            .iter()
            .any(|a| a["type"] == "end" && a["id"] == new["id"])
    });
    d.wait_log("the reset in the log", Duration::from_secs(10), |l| {
        l.contains("unusual-scene baseline reset")
    });
    assert!(!saved.exists(), "the saved baseline is deleted");
    let st = json_on(&rec, "ur/street/state").pop().expect("state");
    assert_eq!(st["unusual_warming_up"], true, "{st:#}");
    assert!(st["unusual_score"].is_null(), "{st:#}");
    let after_reset = unusual_alerts(&rec).len();

    // the new warm-up (20 s = 5 clips): the pattern, which the old baseline found unusual, raises nothing, and
    // the clips scored meanwhile leave the state warming up
    std::thread::sleep(Duration::from_secs(14));
    let states_before = rec.on("ur/street/state").len();
    rec.publish("ur/street/set", b"{\"detect\": true}");
    wait_until(
        "a state during the warm-up",
        Duration::from_secs(10),
        || rec.on("ur/street/state").len() > states_before,
    );
    let st = json_on(&rec, "ur/street/state").pop().expect("state");
    assert_eq!(st["unusual_warming_up"], true, "{st:#}");
    assert_eq!(
        unusual_alerts(&rec).len(),
        after_reset,
        "no unusual alert during the new warm-up: {:#?}",
        &unusual_alerts(&rec)[after_reset..]
    );
    let plain = json_on(&rec, "ur/plain/state").pop().expect("plain state");
    assert!(
        plain.get("unusual_score").is_none(),
        "no baseline, no score: {plain:#}"
    );

    d.signal("TERM");
    let (code, log) = d.wait(Duration::from_secs(60));
    assert_eq!(code, Some(0), "{log}");
}
