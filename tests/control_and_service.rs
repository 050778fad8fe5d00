//! MQTT `set` commands (good and malformed), and the service side: systemd notifications (READY, WATCHDOG,
//! RELOADING, STOPPING) over a real notify socket, SIGHUP camera reload, SIGTERM drain.

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

fn states(rec: &Recorder, topic: &str) -> Vec<serde_json::Value> {
    rec.on(topic).iter().map(|m| m.json()).collect()
}

#[test]
fn set_commands_switch_detection_and_rules_and_bad_payloads_go_to_errors() {
    let broker = Broker::start();
    let rec = Recorder::start(broker.port, "ctl/#");
    let body = format!(
        "[[cameras]]\nname = \"walk\"\nurl = \"{}\"\nsample_fps = 2.0\nrealtime = true\n",
        media("vtest.avi").display()
    );
    let cfg = write_config(broker.port, "ctl", &body);
    let mut d = Daemon::spawn(&cfg.path, &[]);
    let alerts = |rec: &Recorder| states(rec, "ctl/walk/alerts");
    wait_until("a person alert", Duration::from_secs(60), || {
        alerts(&rec)
            .iter()
            .any(|a| a["type"] == "new" && a["label"] == "person")
    });

    // malformed and unknown commands: each answered on ctl/errors, nothing else happens
    let bad: [(&str, &[u8]); 6] = [
        ("ctl/walk/set", b"not json"),
        ("ctl/walk/set", b"{\"detect\":\"maybe\"}"),
        ("ctl/walk/set", b"{\"rule\":\"cat\",\"armed\":false}"),
        ("ctl/walk/set", b"\xff\xfe\x00{"),
        (
            "ctl/walk/set",
            b"{\"detect\":false,\"rule\":\"person\",\"armed\":true}",
        ),
        ("ctl/nocam/set", b"{\"detect\":false}"),
    ];
    for (topic, payload) in bad {
        rec.publish(topic, payload);
    }
    wait_until("six error reports", Duration::from_secs(15), || {
        rec.on("ctl/errors").len() >= 6
    });
    let errors = states(&rec, "ctl/errors");
    for e in &errors {
        assert_eq!(e["source"], "command", "{e}");
        assert!(e["error"].as_str().is_some_and(|s| !s.is_empty()), "{e}");
    }
    assert!(errors.iter().any(|e| e["topic"] == "ctl/nocam/set"
        && e["error"].as_str().unwrap_or("").contains("unknown camera")));
    assert!(errors.iter().any(|e| e["error"]
        .as_str()
        .unwrap_or("")
        .contains("has no rule 'cat'")));
    assert!(
        d.child.try_wait().ok().flatten().is_none(),
        "daemon survived"
    );

    // detection off: open alerts end, nothing new is raised, the state says so
    rec.publish("ctl/walk/set", b"{\"detect\": false}");
    wait_until("detect=false in state", Duration::from_secs(10), || {
        states(&rec, "ctl/walk/state")
            .last()
            .is_some_and(|s| s["detect"] == false)
    });
    wait_until("open alerts end", Duration::from_secs(10), || {
        let a = alerts(&rec);
        let opened: Vec<_> = a
            .iter()
            .filter(|x| x["type"] == "new")
            .map(|x| x["id"].clone())
            .collect();
        opened
            .iter()
            .all(|id| a.iter().any(|x| x["id"] == *id && x["type"] == "end"))
    });
    let n_off = alerts(&rec).len();
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(alerts(&rec).len(), n_off, "no alert while detection is off");

    // back on: people are still walking, so a new alert comes
    rec.publish("ctl/walk/set", b"{\"detect\": \"on\"}");
    wait_until(
        "a new alert after detect on",
        Duration::from_secs(20),
        || alerts(&rec)[n_off..].iter().any(|a| a["type"] == "new"),
    );

    // disarm the person rule: its alert ends and the state lists it
    rec.publish("ctl/walk/set", b"{\"rule\": \"person\", \"armed\": false}");
    wait_until("person disarmed in state", Duration::from_secs(10), || {
        states(&rec, "ctl/walk/state")
            .last()
            .is_some_and(|s| s["disarmed"] == serde_json::json!(["person"]))
    });
    wait_until("person alert ends", Duration::from_secs(10), || {
        alerts(&rec)
            .iter()
            .rev()
            .find(|a| a["label"] == "person")
            .is_some_and(|a| a["type"] == "end")
    });
    d.signal("TERM");
    let (code, log) = d.wait(Duration::from_secs(60));
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("rejected a command"), "{log}");
}

#[test]
fn systemd_notify_reload_and_stop() {
    let broker = Broker::start();
    let rec = Recorder::start(broker.port, "svc/#");
    let cam = |name: &str, pattern: &str| {
        format!("[[cameras]]\nname = \"{name}\"\nurl = \"test://{pattern}\"\nsample_fps = 2.0\n")
    };
    let cfg = write_config(broker.port, "svc", &cam("a", "ball"));
    let base = std::fs::read_to_string(&cfg.path).expect("config");
    let notify = NotifySocket::new();
    let sock = notify.path.display().to_string();
    let mut d = Daemon::spawn(
        &cfg.path,
        &[("NOTIFY_SOCKET", &sock), ("WATCHDOG_USEC", "1000000")],
    );
    wait_until("READY=1", Duration::from_secs(60), || {
        notify.count("READY=1") >= 1
    });
    wait_until("watchdog pings", Duration::from_secs(10), || {
        notify.count("WATCHDOG=1") >= 3
    });
    let running = |rec: &Recorder, cam: &str| {
        states(rec, &format!("svc/{cam}/state"))
            .last()
            .is_some_and(|s| s["state"] == "running")
    };
    wait_until("a running", Duration::from_secs(30), || running(&rec, "a"));

    // add camera b: a keeps running untouched
    std::fs::write(&cfg.path, format!("{base}\n{}", cam("b", "smpte"))).expect("rewrite");
    let a_states_before = rec.on("svc/a/state").len();
    d.signal("HUP");
    wait_until("b running", Duration::from_secs(30), || running(&rec, "b"));
    wait_until("RELOADING then READY", Duration::from_secs(10), || {
        notify.count("RELOADING=1") == 1 && notify.count("READY=1") == 2
    });
    let info = rec.on("svc/info").last().map(|m| m.json()).expect("info");
    assert_eq!(info["cameras"], serde_json::json!(["a", "b"]), "{info}");

    // a broken config is rejected, reported, and changes nothing
    std::fs::write(&cfg.path, format!("{base}\n{}", cam("Bad Name", "snow"))).expect("rewrite");
    d.signal("HUP");
    wait_until("reload error report", Duration::from_secs(20), || {
        rec.on("svc/errors")
            .iter()
            .any(|m| m.json()["source"] == "reload")
    });
    let err = rec
        .on("svc/errors")
        .last()
        .map(|m| m.json())
        .expect("error");
    assert!(
        err["error"]
            .as_str()
            .unwrap_or("")
            .contains("cameras[1].name"),
        "names the key: {err}"
    );

    // remove b again
    std::fs::write(&cfg.path, &base).expect("rewrite");
    d.signal("HUP");
    wait_until("b removed", Duration::from_secs(30), || {
        states(&rec, "svc/b/state")
            .last()
            .is_some_and(|s| s["reason"] == "removed from config")
    });
    let a_after: Vec<_> = states(&rec, "svc/a/state")[a_states_before..].to_vec();
    assert!(
        a_after.iter().all(|s| s["state"] == "running"),
        "a was never restarted by the reloads: {a_after:#?}"
    );

    d.signal("TERM");
    let (code, log) = d.wait(Duration::from_secs(60));
    assert_eq!(code, Some(0), "{log}");
    assert!(notify.count("STOPPING=1") == 1, "{:?}", notify.lines());
    let ready_at = notify.lines().iter().position(|l| l == "READY=1");
    let stopping_at = notify.lines().iter().position(|l| l == "STOPPING=1");
    assert!(ready_at < stopping_at);
    assert!(log.contains("config reloaded"), "{log}");
    rec.wait_for("stopped", Duration::from_secs(10), |m| {
        m.iter()
            .any(|m| m.topic == "svc/status" && m.payload == "stopped")
    });
}

#[test]
fn plain_on_off_switches_survive_a_restart_and_bad_payloads_go_to_errors() {
    let broker = Broker::start();
    let rec = Recorder::start(broker.port, "sw/#");
    let body = "[[cameras]]\nname = \"walk\"\nurl = \"test://ball\"\nsample_fps = 1.0\n[[cameras.rules]]\nlabel = \"person\"\n[[cameras.rules]]\nlabel = \"vehicle\"\n";
    let cfg = write_config(broker.port, "sw", body);
    let last = |t: &str| rec.last(t).map(|m| m.payload);
    let mut d = Daemon::spawn(&cfg.path, &[]);
    wait_until("initial switch states", Duration::from_secs(60), || {
        last("sw/walk/detect/state").as_deref() == Some("ON")
            && last("sw/walk/vehicle/armed/state").as_deref() == Some("ON")
            && last("sw/walk/person/armed/state").as_deref() == Some("ON")
    });
    rec.publish("sw/walk/detect/set", b"OFF");
    rec.publish("sw/walk/vehicle/armed/set", b"off\n");
    wait_until("both switched off", Duration::from_secs(10), || {
        last("sw/walk/detect/state").as_deref() == Some("OFF")
            && last("sw/walk/vehicle/armed/state").as_deref() == Some("OFF")
            && states(&rec, "sw/walk/state").last().is_some_and(|s| {
                s["detect"] == false && s["disarmed"] == serde_json::json!(["vehicle"])
            })
    });
    // malformed plain switches: each answered on sw/errors, nothing changes, no crash
    let big = vec![b'O'; 10_000];
    let bad: [(&str, &[u8]); 5] = [
        ("sw/walk/detect/set", b"maybe"),
        ("sw/walk/detect/set", b"{\"detect\": true}"),
        ("sw/walk/cat/armed/set", b"ON"),
        ("sw/nocam/detect/set", b"ON"),
        ("sw/walk/person/armed/set", &big),
    ];
    for (topic, payload) in bad {
        rec.publish(topic, payload);
    }
    wait_until("five error reports", Duration::from_secs(15), || {
        rec.on("sw/errors").len() >= 5
    });
    let errors = states(&rec, "sw/errors");
    for (topic, _) in bad {
        assert!(
            errors.iter().any(|e| e["topic"] == topic
                && e["source"] == "command"
                && e["error"].as_str().is_some_and(|s| !s.is_empty())),
            "no error for {topic}: {errors:#?}"
        );
    }
    assert!(errors
        .iter()
        .any(|e| e["error"].as_str().unwrap_or("").contains("ON or OFF")));
    assert_eq!(last("sw/walk/detect/state").as_deref(), Some("OFF"));
    assert_eq!(last("sw/walk/person/armed/state").as_deref(), Some("ON"));
    d.signal("TERM");
    let (code, log) = d.wait(Duration::from_secs(60));
    assert_eq!(code, Some(0), "{log}");

    // clear what the broker retained, so what a fresh subscriber sees next comes from the restarted daemon
    for t in [
        "sw/walk/detect/state",
        "sw/walk/vehicle/armed/state",
        "sw/walk/person/armed/state",
        "sw/walk/state",
    ] {
        rec.publish_retained(t, b"");
    }
    std::thread::sleep(Duration::from_millis(500));
    let mut d = Daemon::spawn(&cfg.path, &[]);
    let fresh = Recorder::start(broker.port, "sw/walk/#");
    wait_until("switches restored", Duration::from_secs(60), || {
        let l = |t: &str| fresh.last(t).map(|m| m.payload);
        l("sw/walk/detect/state").as_deref() == Some("OFF")
            && l("sw/walk/vehicle/armed/state").as_deref() == Some("OFF")
            && l("sw/walk/person/armed/state").as_deref() == Some("ON")
            && states(&fresh, "sw/walk/state").last().is_some_and(|s| {
                s["state"] == "running"
                    && s["detect"] == false
                    && s["disarmed"] == serde_json::json!(["vehicle"])
            })
    });
    d.wait_log("restored switches logged", Duration::from_secs(5), |l| {
        l.contains("restored switches")
    });
    // back on through the JSON topic: the plain state follows, and the next start has detection on again
    fresh.publish("sw/walk/set", b"{\"detect\": true}");
    wait_until("detect ON", Duration::from_secs(10), || {
        fresh
            .last("sw/walk/detect/state")
            .map(|m| m.payload)
            .as_deref()
            == Some("ON")
    });
    d.signal("TERM");
    let (code, log) = d.wait(Duration::from_secs(60));
    assert_eq!(code, Some(0), "{log}");
    let store =
        scenewatch::publish::switches::SwitchStore::open(&cfg.dir.path().join("spool.redb"))
            .expect("open the spool's switches");
    let walk = store.load("walk").expect("walk");
    assert!(walk.detect);
    assert_eq!(
        walk.disarmed.into_iter().collect::<Vec<_>>(),
        vec!["vehicle"]
    );
}
