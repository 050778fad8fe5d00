//! Environment overrides reach the daemon byte for byte: against a real mosquitto that requires a password, the
//! daemon configured from the environment with password `0123`, client id `TRUE` and topic prefix `1e5` logs in,
//! is known to the broker by that client id and publishes under that prefix; the port (a number) and Home
//! Assistant discovery (a boolean, `TRUE`) still parse from their environment strings.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const USER: &str = "camuser";
const PASSWORD: &str = "0123";

/// mosquitto on a free port that refuses anonymous clients; its log (every connection, with the client id and
/// user) goes to `dir/broker.log`.
fn auth_broker(dir: &Path) -> ConfiguredBroker {
    let port = free_port();
    let conf = format!(
        "listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {}/passwd\npersistence false\nlog_dest stderr\nlog_type all\n",
        dir.display()
    );
    ConfiguredBroker::start(dir, port, USER, PASSWORD, &conf)
}

#[test]
fn environment_strings_reach_the_broker_byte_for_byte() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = auth_broker(dir.path());
    let seen = dir.path().join("sub.txt");
    let mut sub = Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p", &broker.port.to_string()])
        .args(["-u", USER, "-P", PASSWORD, "-i", "env-test-sub", "-v"])
        .args(["-t", "1e5/#", "-t", "0123/#"])
        .stdout(std::fs::File::create(&seen).expect("sub out"))
        .stderr(Stdio::null())
        .spawn()
        .expect("mosquitto_sub");

    // the file names another port, prefix and client id: the environment must win, unchanged
    let cfg = write_config(
        1,
        "fromfile",
        "[[cameras]]\nname = \"cam\"\nurl = \"test://\"\n",
    );
    let port = broker.port.to_string();
    let mut d = Daemon::spawn(
        &cfg.path,
        &[
            ("SCENEWATCH__MQTT__PORT", port.as_str()),
            ("SCENEWATCH__MQTT__USERNAME", USER),
            ("SCENEWATCH__MQTT__PASSWORD", PASSWORD),
            ("SCENEWATCH__MQTT__CLIENT_ID", "TRUE"),
            ("SCENEWATCH__MQTT__TOPIC_PREFIX", "1e5"),
            ("SCENEWATCH__HOMEASSISTANT__ENABLED", "TRUE"),
            ("SCENEWATCH__HOMEASSISTANT__DISCOVERY_PREFIX", "0123"),
        ],
    );
    let read =
        |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).to_string();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !(read(&seen).contains("1e5/status online") && read(&seen).contains("0123/")) {
        if let Ok(Some(st)) = d.child.try_wait() {
            panic!("scenewatch exited ({st}):\n{}", d.log());
        }
        assert!(
            Instant::now() < deadline,
            "no `1e5/status online` and discovery under `0123/`:\nsubscriber:\n{}\ndaemon:\n{}\nbroker:\n{}",
            read(&seen),
            d.log(),
            read(&dir.path().join("broker.log"))
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let broker_log = read(&dir.path().join("broker.log"));
    assert!(
        broker_log.contains("as TRUE (") && broker_log.contains(&format!("u'{USER}'")),
        "the broker knows the daemon by client id `TRUE`:\n{broker_log}"
    );
    assert!(
        !broker_log.contains("not authorised"),
        "refused:\n{broker_log}"
    );
    d.signal("TERM");
    let (code, log) = d.wait(Duration::from_secs(60));
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains(&format!("port={}", broker.port)), "{log}");
    let _ = sub.kill();
    let _ = sub.wait();
}
