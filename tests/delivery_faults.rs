//! Never lose an alert: the broker dies mid-run, the daemon is SIGKILLed with alerts in its spool, the spool's
//! disk is full. Real broker, real GStreamer, real models, real vtest.avi.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::*;

fn vtest_camera(name: &str, realtime: bool) -> String {
    format!(
        "[[cameras]]\nname = \"{name}\"\nurl = \"{}\"\nsample_fps = 2.0\nrealtime = {realtime}\n",
        media("vtest.avi").display()
    )
}

/// (id, type) of each alert message, in order.
fn id_types(msgs: &[Msg]) -> Vec<(String, String)> {
    msgs.iter()
        .map(|m| {
            let j = m.json();
            (
                j["id"].as_str().unwrap_or("").to_string(),
                j["type"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// Every alert the daemon logged for `camera` reached the subscriber: seq 1..=n without a gap, in order after
/// de-duplication, and the (id, type) pairs match the log one to one.
fn assert_complete(rec: &Recorder, log: &str, prefix: &str, camera: &str) -> usize {
    let got = rec.on(&format!("{prefix}/{camera}/alerts"));
    let kept = dedup_by_seq(&got);
    let s = seqs(&kept);
    let want: Vec<u64> = (1..=s.len() as u64).collect();
    assert_eq!(s, want, "{camera}: seq must run 1..=n in order");
    let logged: Vec<(String, String)> = logged_alerts(log)
        .into_iter()
        .filter(|(c, _, _)| c == camera)
        .map(|(_, id, ty)| (id, ty))
        .collect();
    let received = id_types(&kept);
    assert_eq!(
        received, logged,
        "{camera}: delivered alerts = raised alerts, in order"
    );
    kept.len()
}

#[test]
fn broker_killed_for_35_s_mid_run_loses_no_alert() {
    let port = free_port();
    let state = tempfile::tempdir().expect("tempdir");
    let mut broker = Broker::start_persistent(port, state.path());
    let rec = Recorder::start_persistent(port, "out/#");
    let body = format!("{}\n{}", vtest_camera("a", true), vtest_camera("b", true));
    let cfg = write_config(port, "out", &body);
    let mut d = Daemon::spawn(&cfg.path, &[]);
    rec.wait_for("first alerts", Duration::from_secs(60), |m| {
        m.iter().any(|m| m.topic == "out/a/alerts") && m.iter().any(|m| m.topic == "out/b/alerts")
    });
    let before = rec
        .all()
        .iter()
        .filter(|m| m.topic.ends_with("/alerts"))
        .count();
    broker.stop();
    let down_at = Instant::now();
    let raised_before = logged_alerts(&d.log()).len();
    std::thread::sleep(Duration::from_secs(35));
    let raised_during = logged_alerts(&d.log()).len() - raised_before;
    assert!(
        d.child.try_wait().ok().flatten().is_none(),
        "the daemon must keep running while the broker is away"
    );
    let _broker = Broker::start_persistent(port, state.path());
    let outage = down_at.elapsed();
    let (code, log) = d.wait(Duration::from_secs(150));
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("MQTT broker unreachable"), "{log}");
    assert!(
        raised_during >= 2,
        "alerts must be raised while the broker is down (got {raised_during}):\n{log}"
    );
    rec.wait_for("stopped", Duration::from_secs(30), |m| {
        m.iter()
            .any(|m| m.topic == "out/status" && m.payload == "stopped")
    });
    let a = assert_complete(&rec, &log, "out", "a");
    let b = assert_complete(&rec, &log, "out", "b");
    let total = rec
        .all()
        .iter()
        .filter(|m| m.topic.ends_with("/alerts"))
        .count();
    eprintln!(
        "outage {:.1} s: {raised_during} alerts raised during it; delivered a={a} b={b} (received {total} incl. duplicates, {before} before the outage)",
        outage.as_secs_f64()
    );
}

#[test]
fn sigkill_with_alerts_in_the_spool_then_restart_delivers_them() {
    let port = free_port();
    let cfg = write_config(port, "kill", &vtest_camera("cam", false));
    // no broker yet: everything the first run raises waits in the spool
    let mut first = Daemon::spawn(&cfg.path, &[]);
    // the file ends, inference catches up and the person alert ends: everything this run will raise is raised
    first.wait_log(
        "end of stream and the alert's end",
        Duration::from_secs(90),
        |l| l.contains("end of stream") && l.contains("type=End"),
    );
    std::thread::sleep(Duration::from_secs(1));
    first.signal("KILL");
    let (code, log1) = first.wait(Duration::from_secs(10));
    assert_eq!(code, None, "killed by SIGKILL");
    let raised: Vec<(String, String)> = logged_alerts(&log1)
        .into_iter()
        .map(|(_, id, ty)| (id, ty))
        .collect();
    assert!(raised.len() >= 3, "first run raised too little:\n{log1}");
    assert!(cfg.dir.path().join("spool.redb").is_file());

    let _broker = Broker::start_on(port);
    let rec = Recorder::start(port, "kill/#");
    let out = run_daemon(&cfg.path, Duration::from_secs(120));
    let log2 = no_panic(&out);
    assert!(out.status.success(), "{log2}");
    assert!(
        log2.contains("re-sending messages spooled by a previous run"),
        "{log2}"
    );
    let got = dedup_by_seq(&rec.on("kill/cam/alerts"));
    let s = seqs(&got);
    assert_eq!(
        s,
        (1..=s.len() as u64).collect::<Vec<_>>(),
        "seq continues across the restart without a gap"
    );
    let ids = id_types(&got);
    assert_eq!(
        ids[..raised.len()],
        raised[..],
        "the killed run's alerts arrive first, in order"
    );
    let second: HashSet<String> = logged_alerts(&log2)
        .into_iter()
        .map(|(_, id, _)| id)
        .collect();
    assert!(
        ids[raised.len()..]
            .iter()
            .all(|(id, _)| second.contains(id)),
        "then the second run's own alerts"
    );
    eprintln!(
        "SIGKILL: {} alerts raised before the kill, all delivered after restart; {} in total",
        raised.len(),
        ids.len()
    );
}

/// Unmounts a test tmpfs on drop.
struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

fn small_tmpfs(dir: &std::path::Path, size: &str) -> Mount {
    let ok = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(dir)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "this test mounts a small tmpfs to fill it: run the tests as root"
    );
    Mount(dir.to_path_buf())
}

/// Fills the file system holding `dir` until writes fail.
fn fill(dir: &std::path::Path) {
    use std::io::Write;
    let mut f = std::fs::File::create(dir.join("filler")).expect("filler");
    let block = vec![0u8; 4096];
    while f.write_all(&block).is_ok() {}
    let _ = f.sync_all();
}

#[test]
fn full_disk_for_the_spool_is_reported_and_loses_nothing_while_running() {
    let port = free_port();
    let _broker = Broker::start_on(port);
    let rec = Recorder::start(port, "full/#");

    // 1. no room to create the spool at all: a clear start-up error naming it
    let disk = tempfile::tempdir().expect("tempdir");
    let _m = small_tmpfs(disk.path(), "64k");
    fill(disk.path());
    let spool = disk.path().join("spool.redb");
    // write_config points [spool] at its temp dir; the environment override moves it onto the full disk
    let cfg = write_config(port, "full", &vtest_camera("cam", false));
    let spool_env = spool.display().to_string();
    let mut d = Daemon::spawn(&cfg.path, &[("SCENEWATCH__SPOOL__PATH", &spool_env)]);
    let (code, log) = d.wait(Duration::from_secs(60));
    assert_eq!(code, Some(1), "{log}");
    assert!(
        log.contains("cannot open the delivery spool") && log.contains(&spool_env),
        "{log}"
    );

    // 2. the disk fills up after start: alerts are kept in memory, delivered, and the failure is reported
    let disk2 = tempfile::tempdir().expect("tempdir");
    let _m2 = small_tmpfs(disk2.path(), "4m");
    let spool2 = disk2.path().join("spool.redb").display().to_string();
    let mut d = Daemon::spawn(&cfg.path, &[("SCENEWATCH__SPOOL__PATH", &spool2)]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !std::path::Path::new(&spool2).is_file() {
        assert!(Instant::now() < deadline, "spool file never created");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    fill(disk2.path());
    let (code, log) = d.wait(Duration::from_secs(120));
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("cannot write the spool"), "{log}");
    let n = assert_complete(&rec, &log, "full", "cam");
    assert!(n >= 3, "{log}");
    let errors = rec.on("full/errors");
    assert!(
        errors.iter().any(|m| m.json()["source"] == "spool"),
        "spool failure reported on <prefix>/errors: {errors:?}"
    );
}

/// A message bigger than `mqtt.max_message_kb` (here every snapshot JPEG) is dropped and reported on
/// `<prefix>/errors`; it never holds up what is queued behind it: every alert still arrives, in order.
#[test]
fn a_message_too_large_is_dropped_and_reported_without_blocking_the_alerts() {
    let broker = Broker::start();
    let rec = Recorder::start(broker.port, "big/#");
    let cfg = write_config(broker.port, "big", &vtest_camera("a", false));
    // the limit goes into the [mqtt] section write_config wrote
    let text = std::fs::read_to_string(&cfg.path).expect("config");
    std::fs::write(
        &cfg.path,
        text.replacen(
            "reconnect_max_secs = 1.0\n",
            "reconnect_max_secs = 1.0\nmax_message_kb = 16\n",
            1,
        ),
    )
    .expect("rewrite");
    let out = run_daemon(&cfg.path, Duration::from_secs(240));
    let log = no_panic(&out);
    assert!(out.status.success(), "{log}");
    rec.wait_for("the stopped status", Duration::from_secs(10), |m| {
        m.iter()
            .any(|m| m.topic == "big/status" && m.payload == "stopped")
    });
    let n = assert_complete(&rec, &log, "big", "a");
    assert!(n >= 2, "alerts were raised: {n}");
    let snapshots = rec
        .all()
        .into_iter()
        .filter(|m| m.topic.ends_with("/snapshot"))
        .count();
    assert_eq!(snapshots, 0, "no snapshot got through the 16 KiB limit");
    let errors: Vec<serde_json::Value> = rec.on("big/errors").iter().map(|m| m.json()).collect();
    assert!(
        errors.iter().any(|e| e["source"] == "publish"
            && e["topic"]
                .as_str()
                .is_some_and(|t| t.ends_with("/snapshot"))
            && e["error"]
                .as_str()
                .is_some_and(|s| s.contains("max_message_kb"))),
        "{errors:#?}"
    );
    assert!(
        log.contains("message larger than mqtt.max_message_kb"),
        "{log}"
    );
}
