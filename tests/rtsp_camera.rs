//! A real RTSP camera (gst-rtsp-server serving vtest.avi) that is unreachable at start, comes up, is killed and
//! comes back: the camera goes retrying → running → retrying → running within the backoff cap, while another
//! camera keeps running untouched. Then the server hangs (SIGSTOP, connection left open): the watchdog restarts it.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

fn last_state(rec: &Recorder, cam: &str) -> Option<serde_json::Value> {
    rec.on(&format!("rtsp/{cam}/state"))
        .last()
        .map(|m| m.json())
}

fn wait_state(rec: &Recorder, cam: &str, state: &str, timeout: Duration) -> Instant {
    let deadline = Instant::now() + timeout;
    loop {
        if last_state(rec, cam).is_some_and(|s| s["state"] == state) {
            return Instant::now();
        }
        assert!(
            Instant::now() < deadline,
            "{cam} never became {state}: {:#?}",
            rec.on(&format!("rtsp/{cam}/state"))
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn rtsp_camera_reconnects_and_others_are_unaffected() {
    let broker = Broker::start();
    let rec = Recorder::start(broker.port, "rtsp/#");
    let rtsp_port = free_port();
    let body = format!(
        "[ingest]\nretry_min_secs = 0.5\nretry_max_secs = 3.0\nwatchdog_secs = 5.0\n\n\
         [[cameras]]\nname = \"door\"\nurl = \"rtsp://127.0.0.1:{rtsp_port}/cam\"\nsample_fps = 2.0\n\n\
         [[cameras]]\nname = \"yard\"\nurl = \"test://ball\"\nsample_fps = 2.0\n"
    );
    let cfg = write_config(broker.port, "rtsp", &body);
    let mut d = Daemon::spawn(&cfg.path, &[]);

    // unreachable at start: retrying with a reason, the other camera runs
    wait_state(&rec, "door", "retrying", Duration::from_secs(60));
    let reason = last_state(&rec, "door")
        .map(|s| s["reason"].to_string())
        .unwrap_or_default();
    assert!(
        !reason.is_empty() && reason != "null",
        "a reason is given: {reason}"
    );
    wait_state(&rec, "yard", "running", Duration::from_secs(30));

    let server = RtspServer::start(rtsp_port, &media("vtest.avi"), "mjpeg");
    let up = Instant::now();
    let t = wait_state(&rec, "door", "running", Duration::from_secs(30));
    let first_connect = t - up;

    // the server dies: retrying, then back within the backoff cap once it returns
    std::thread::sleep(Duration::from_secs(4));
    drop(server);
    let down = Instant::now();
    let t = wait_state(&rec, "door", "retrying", Duration::from_secs(30));
    let noticed = t - down;
    std::thread::sleep(Duration::from_secs(5));
    let server = RtspServer::start(rtsp_port, &media("vtest.avi"), "mjpeg");
    let back = Instant::now();
    let t = wait_state(&rec, "door", "running", Duration::from_secs(30));
    let reconnect = t - back;
    assert!(
        reconnect < Duration::from_secs(3 + 8),
        "back within the 3 s backoff cap plus RTSP set-up: took {reconnect:?}"
    );

    // the server hangs without closing the connection (SIGSTOP): only the watchdog can notice
    std::thread::sleep(Duration::from_secs(2));
    let pid = server.0.id().to_string();
    let _ = Command::new("kill").args(["-STOP", &pid]).status();
    let hung = Instant::now();
    let t = wait_state(&rec, "door", "retrying", Duration::from_secs(30));
    let watchdog = t - hung;
    let reason = last_state(&rec, "door")
        .map(|s| s["reason"].to_string())
        .unwrap_or_default();
    assert!(
        reason.contains("no frame decoded for"),
        "the watchdog fired: {reason}"
    );
    assert!(
        watchdog < Duration::from_secs(5 + 4),
        "watchdog_secs = 5: noticed after {watchdog:?}"
    );
    let _ = Command::new("kill").args(["-CONT", &pid]).status();
    wait_state(&rec, "door", "running", Duration::from_secs(30));
    std::thread::sleep(Duration::from_secs(2));
    d.signal("TERM");
    let (code, log) = d.wait(Duration::from_secs(60));
    assert_eq!(code, Some(0), "{log}");
    let yard: Vec<serde_json::Value> = rec.on("rtsp/yard/state").iter().map(|m| m.json()).collect();
    assert!(
        yard.iter().all(|s| s["state"] != "retrying"),
        "yard never affected: {yard:#?}"
    );
    let door_final = last_state(&rec, "door").expect("door state");
    assert!(
        door_final["frames_sampled"].as_u64().unwrap_or(0) > 10,
        "{door_final}"
    );
    eprintln!(
        "RTSP: first connect {:.1} s after the server came up; loss noticed after {:.1} s; reconnected {:.1} s after it returned; hung server caught by the watchdog after {:.1} s",
        first_connect.as_secs_f64(),
        noticed.as_secs_f64(),
        reconnect.as_secs_f64(),
        watchdog.as_secs_f64()
    );
}

/// The RTSP cells of the media matrix: H.264 and MJPEG cameras from gst-rtsp-server, with alert recordings on
/// and off, reach `running`, deliver frames at `sample_fps`, and drain to exit 0 on SIGTERM.
#[test]
fn rtsp_h264_and_mjpeg_play_with_recordings_on_and_off() {
    let broker = Broker::start();
    let rec = Recorder::start(broker.port, "rtspmx/#");
    let (p264, pjpg) = (free_port(), free_port());
    let _h264 = RtspServer::start(p264, &media("vtest.avi"), "h264");
    let _mjpeg = RtspServer::start(pjpg, &media("vtest.avi"), "mjpeg");
    for recordings in [true, false] {
        let tag = if recordings { "r" } else { "n" };
        let body = format!(
            "clips = {recordings}\n\n[ingest]\nstartup_timeout_secs = 20.0\n\n\
             [[cameras]]\nname = \"h264{tag}\"\nurl = \"rtsp://127.0.0.1:{p264}/cam\"\nsample_fps = 2.0\n\n\
             [[cameras]]\nname = \"mjpeg{tag}\"\nurl = \"rtsp://127.0.0.1:{pjpg}/cam\"\nsample_fps = 2.0\n"
        );
        let cfg = write_config(broker.port, "rtspmx", &body);
        let mut d = Daemon::spawn(&cfg.path, &[]);
        let state = |cam: &str| {
            rec.on(&format!("rtspmx/{cam}/state"))
                .last()
                .map(|m| m.json())
        };
        let deadline = Instant::now() + Duration::from_secs(40);
        let cams = [format!("h264{tag}"), format!("mjpeg{tag}")];
        while !cams
            .iter()
            .all(|c| state(c).is_some_and(|s| s["state"] == "running"))
        {
            assert!(
                Instant::now() < deadline,
                "cameras not running (recordings {recordings}): {:?}",
                cams.iter().map(|c| state(c)).collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        std::thread::sleep(Duration::from_secs(5));
        d.signal("TERM");
        let (code, log) = d.wait(Duration::from_secs(60));
        assert_eq!(code, Some(0), "{log}");
        for c in &cams {
            let s = state(c).expect("final state");
            let n = s["frames_sampled"].as_u64().unwrap_or(0);
            // 2 fps for at least 5 s of running
            assert!(n >= 8, "{c} (recordings {recordings}): {s}");
            assert_eq!(s["state"], "ended", "{c}: {s}");
        }
    }
}

/// A live camera whose server accepts the connection and never answers: the start-up watchdog turns the silent
/// wait into `retrying` with a reason that says what GStreamer was waiting on, and retries with backoff.
#[test]
fn a_silent_rtsp_server_is_a_startup_timeout_with_a_reason_and_retries() {
    let broker = Broker::start();
    let rec = Recorder::start(broker.port, "rtspsilent/#");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
    let port = listener.local_addr().expect("addr").port();
    // accept and hold every connection, never answering
    let held = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let h = held.clone();
    std::thread::spawn(move || {
        for c in listener.incoming().flatten() {
            if let Ok(mut v) = h.lock() {
                v.push(c);
            }
        }
    });
    let body = format!(
        "[ingest]\nstartup_timeout_secs = 3.0\nretry_min_secs = 0.5\nretry_max_secs = 1.0\n\n\
         [[cameras]]\nname = \"mute\"\nurl = \"rtsp://127.0.0.1:{port}/cam\"\n"
    );
    let cfg = write_config(broker.port, "rtspsilent", &body);
    let mut d = Daemon::spawn(&cfg.path, &[]);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(30);
    let retrying = loop {
        let st: Vec<serde_json::Value> = rec
            .on("rtspsilent/mute/state")
            .iter()
            .map(|m| m.json())
            .collect();
        let r: Vec<_> = st
            .into_iter()
            .filter(|s| s["state"] == "retrying")
            .collect();
        if r.len() >= 2 {
            break r;
        }
        assert!(Instant::now() < deadline, "no retries within 30 s");
        std::thread::sleep(Duration::from_millis(100));
    };
    let reason = retrying[0]["reason"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        reason.contains("no frame within 3 s") && reason.contains("waiting on:"),
        "{reason}"
    );
    assert!(
        retrying[1]["retries"].as_u64().unwrap_or(0) >= 2,
        "{retrying:?}"
    );
    assert!(
        held.lock().map(|v| v.len()).unwrap_or(0) >= 2,
        "it reconnected"
    );
    d.signal("TERM");
    let (code, log) = d.wait(Duration::from_secs(30));
    assert_eq!(code, Some(0), "{log}");
}
