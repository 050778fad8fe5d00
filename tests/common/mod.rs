//! Test fixtures: real media (fetched by scripts/deps.sh), a real mosquitto broker on a free port (stopped by
//! PID), an MQTT recorder, and a way to run the real `scenewatch` binary on a generated config.
#![allow(dead_code)]

pub mod onnx;

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where scripts/deps.sh put the sample media.
pub fn media(name: &str) -> PathBuf {
    let dir = std::env::var_os("SCENEWATCH_MEDIA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/scenewatch/media"));
    let p = dir.join(name);
    assert!(
        p.is_file(),
        "{} is missing: run scripts/deps.sh (or set SCENEWATCH_MEDIA) before the tests",
        p.display()
    );
    p
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `scenewatch eval ARGS --json` in `dir` with extra environment; asserts it succeeded without a panic and
/// returns each line of its output as JSON (the report, then the sweep when one was asked for).
pub fn eval_json(
    dir: &Path,
    args: &[&str],
    envs: &[(&str, &std::ffi::OsStr)],
    timeout: Duration,
) -> Vec<serde_json::Value> {
    let mut cmd = Command::new(bin());
    cmd.current_dir(dir)
        .arg("eval")
        .args(args)
        .arg("--json")
        .env("RUST_LOG", "warn,ort=warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = wait_with_timeout(cmd.spawn().expect("start scenewatch eval"), timeout);
    let err = no_panic(&out);
    assert!(out.status.success(), "eval failed: {err}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("eval --json prints JSON objects, one per line"))
        .collect()
}

/// Cuts the eval timelines and derived stills (scripts/make_timelines.sh --dev: idempotent, rebuilds only what
/// changed) and returns their directory, `$SCENEWATCH_CACHE/timelines`.
pub fn cut_timelines() -> PathBuf {
    let status = Command::new("bash")
        .arg(repo().join("scripts/make_timelines.sh"))
        .arg("--dev")
        .status()
        .expect("run scripts/make_timelines.sh");
    assert!(status.success(), "scripts/make_timelines.sh failed");
    std::env::var_os("SCENEWATCH_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/scenewatch"))
        .join("timelines")
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A mosquitto process on 127.0.0.1:port; killed (by PID) on drop.
pub struct Broker {
    pub port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Broker {
    pub fn start() -> Self {
        Self::start_on(free_port())
    }

    pub fn start_on(port: u16) -> Self {
        Self::start_with(port, None)
    }

    /// A broker that keeps persistent sessions (and their queued QoS1 messages) in `state_dir` across restarts.
    pub fn start_persistent(port: u16, state_dir: &Path) -> Self {
        Self::start_with(port, Some(state_dir))
    }

    fn start_with(port: u16, state_dir: Option<&Path>) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let conf = dir.path().join("mosquitto.conf");
        let persistence = match state_dir {
            // mosquitto started as root drops to its own user: the state directory must be writable for it
            Some(d) => {
                use std::os::unix::fs::PermissionsExt;
                let _ = std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o777));
                format!("persistence true\npersistence_location {}/\n", d.display())
            }
            None => "persistence false\n".to_string(),
        };
        std::fs::write(
            &conf,
            format!("listener {port} 127.0.0.1\nallow_anonymous true\n{persistence}"),
        )
        .expect("write mosquitto.conf");
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto must be installed (scripts/deps.sh)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "mosquitto did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            port,
            child,
            _dir: dir,
        }
    }

    pub fn stop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One received MQTT message.
#[derive(Debug, Clone)]
pub struct Msg {
    pub topic: String,
    pub payload: String,
    pub raw: Vec<u8>,
    pub retain: bool,
    /// When the test's subscriber received it.
    pub at: std::time::SystemTime,
}

impl Msg {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.payload)
            .unwrap_or_else(|e| panic!("{} is not JSON ({e}): {}", self.topic, self.payload))
    }
}

/// Subscribes to `filter` (reconnecting if the broker restarts) and records everything.
pub struct Recorder {
    pub msgs: Arc<Mutex<Vec<Msg>>>,
    client: rumqttc::Client,
}

impl Recorder {
    pub fn start(port: u16, filter: &str) -> Self {
        Self::start_with(port, filter, true)
    }

    /// A subscriber with a persistent session (CleanSession = 0): the broker keeps its subscription and queues
    /// QoS1 messages while it is away; it reconnects by itself.
    pub fn start_persistent(port: u16, filter: &str) -> Self {
        Self::start_with(port, filter, false)
    }

    fn start_with(port: u16, filter: &str, clean: bool) -> Self {
        // one client id per recorder: a second connection with the same id would take the first one's session over
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut opts = rumqttc::MqttOptions::new(
            format!("test-rec-{port}-{}-{n}", std::process::id()),
            "127.0.0.1",
            port,
        );
        opts.set_clean_session(clean);
        opts.set_keep_alive(Duration::from_secs(5));
        opts.set_max_packet_size(16 << 20, 16 << 20);
        let (client, mut conn) = rumqttc::Client::new(opts, 64);
        let msgs = Arc::new(Mutex::new(Vec::new()));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let store = msgs.clone();
        let sub_client = client.clone();
        let filter = filter.to_string();
        std::thread::spawn(move || {
            for ev in conn.iter() {
                match ev {
                    Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_))) => {
                        let _ = sub_client.try_subscribe(filter.clone(), rumqttc::QoS::AtLeastOnce);
                    }
                    Ok(rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_))) => {
                        let _ = ready_tx.send(());
                    }
                    Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) => {
                        if let Ok(mut m) = store.lock() {
                            m.push(Msg {
                                topic: p.topic.clone(),
                                payload: String::from_utf8_lossy(&p.payload).to_string(),
                                raw: p.payload.to_vec(),
                                retain: p.retain,
                                at: std::time::SystemTime::now(),
                            });
                        }
                    }
                    Ok(_) => {}
                    Err(rumqttc::ConnectionError::RequestsDone) => break,
                    Err(_) => std::thread::sleep(Duration::from_millis(200)),
                }
            }
        });
        ready_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("subscribed");
        Self { msgs, client }
    }

    pub fn all(&self) -> Vec<Msg> {
        self.msgs.lock().map(|m| m.clone()).unwrap_or_default()
    }

    pub fn on(&self, topic: &str) -> Vec<Msg> {
        self.all()
            .into_iter()
            .filter(|m| m.topic == topic)
            .collect()
    }

    /// Waits until `pred` holds over the recorded messages.
    pub fn wait_for(&self, what: &str, timeout: Duration, pred: impl Fn(&[Msg]) -> bool) {
        let deadline = Instant::now() + timeout;
        loop {
            if pred(&self.all()) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; got {:#?}",
                self.all()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        let _ = self.client.disconnect();
    }
}

/// A config file for the daemon in a temp dir: `body` is appended after [mqtt] and [models].
pub struct TestConfig {
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
}

pub fn write_config(port: u16, prefix: &str, body: &str) -> TestConfig {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("scenewatch.toml");
    let models = repo().join("models");
    let text = format!(
        "[mqtt]\nhost = \"127.0.0.1\"\nport = {port}\nclient_id = \"{prefix}\"\ntopic_prefix = \"{prefix}\"\nreconnect_max_secs = 1.0\n\n[models]\ndir = \"{}\"\n\n[spool]\npath = \"{}\"\n\n[media]\ndir = \"{}\"\n\n{body}\n",
        models.display(),
        dir.path().join("spool.redb").display(),
        dir.path().join("media").display()
    );
    let mut f = std::fs::File::create(&path).expect("config file");
    f.write_all(text.as_bytes()).expect("write config");
    TestConfig { dir, path }
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_scenewatch")
}

/// Runs `scenewatch run --config path` to completion (with a timeout) and returns its output.
pub fn run_daemon(config: &Path, timeout: Duration) -> Output {
    let child = Command::new(bin())
        .args(["run", "--config"])
        .arg(config)
        .env("RUST_LOG", "info,ort=warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn scenewatch");
    wait_with_timeout(child, timeout)
}

pub fn wait_with_timeout(mut child: Child, timeout: Duration) -> Output {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() > deadline => {
                let _ = child.kill();
                let out = child.wait_with_output().expect("output");
                panic!(
                    "scenewatch did not finish within {timeout:?}\nstderr:\n{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    }
    child.wait_with_output().expect("output")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// Asserts the process did not panic and returns its combined log.
pub fn no_panic(o: &Output) -> String {
    let log = format!("{}{}", String::from_utf8_lossy(&o.stdout), stderr(o));
    assert!(!log.contains("panicked"), "scenewatch panicked:\n{log}");
    log
}

impl Recorder {
    /// Publishes `payload` on `topic` (QoS1), e.g. a `set` command.
    pub fn publish(&self, topic: &str, payload: &[u8]) {
        self.client
            .publish(topic, rumqttc::QoS::AtLeastOnce, false, payload.to_vec())
            .expect("queue a publish");
    }

    /// Publishes a retained message (an empty payload clears the topic's retained message).
    pub fn publish_retained(&self, topic: &str, payload: &[u8]) {
        self.client
            .publish(topic, rumqttc::QoS::AtLeastOnce, true, payload.to_vec())
            .expect("queue a publish");
    }

    /// The last message received on `topic`, if any.
    pub fn last(&self, topic: &str) -> Option<Msg> {
        self.on(topic).pop()
    }
}

/// A daemon running in the background, its stderr going to a file the test can read while it runs.
pub struct Daemon {
    pub child: Child,
    log_path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Daemon {
    pub fn spawn(config: &Path, envs: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let log_path = dir.path().join("daemon.log");
        let log = std::fs::File::create(&log_path).expect("log file");
        let mut cmd = Command::new(bin());
        cmd.args(["run", "--config"])
            .arg(config)
            .env("RUST_LOG", "info,ort=warn")
            .stdout(Stdio::null())
            .stderr(log);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn scenewatch");
        Self {
            child,
            log_path,
            _dir: dir,
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Waits until the log satisfies `pred`; panics with the log on timeout or if the daemon exits first.
    pub fn wait_log(&mut self, what: &str, timeout: Duration, pred: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + timeout;
        loop {
            let log = self.log();
            if pred(&log) {
                return;
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                panic!("scenewatch exited ({st}) before {what}:\n{log}");
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn signal(&self, sig: &str) {
        let _ = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status();
    }

    /// Waits for the exit; returns the exit code (None when killed by a signal) and the log.
    pub fn wait(&mut self, timeout: Duration) -> (Option<i32>, String) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                let log = self.log();
                assert!(!log.contains("panicked"), "scenewatch panicked:\n{log}");
                return (st.code(), log);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "scenewatch did not exit within {timeout:?}:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Alerts the daemon logged, in order: (camera, id, type) from lines like `camera=a id=… type=New …`.
pub fn logged_alerts(log: &str) -> Vec<(String, String, String)> {
    let field = |line: &str, key: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(key))
            .map(|v| v.trim_matches('"').to_string())
    };
    log.lines()
        .filter(|l| l.contains(" type=") && l.contains(" id="))
        .filter_map(|l| {
            Some((
                field(l, "camera=")?,
                field(l, "id=")?,
                field(l, "type=")?.to_lowercase(),
            ))
        })
        .collect()
}

/// The `seq` of each alert message, in arrival order.
pub fn seqs(msgs: &[Msg]) -> Vec<u64> {
    msgs.iter()
        .map(|m| {
            m.json()["seq"]
                .as_u64()
                .unwrap_or_else(|| panic!("no seq in {}", m.payload))
        })
        .collect()
}

/// First arrival of each seq, in arrival order (what a de-duplicating consumer keeps).
pub fn dedup_by_seq(msgs: &[Msg]) -> Vec<Msg> {
    let mut seen = std::collections::HashSet::new();
    msgs.iter()
        .filter(|m| seen.insert(m.json()["seq"].as_u64()))
        .cloned()
        .collect()
}

/// Receives sd_notify datagrams like systemd does.
pub struct NotifySocket {
    pub path: std::path::PathBuf,
    got: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl Default for NotifySocket {
    fn default() -> Self {
        Self::new()
    }
}

impl NotifySocket {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("notify.sock");
        let sock = std::os::unix::net::UnixDatagram::bind(&path).expect("bind notify socket");
        let got = Arc::new(Mutex::new(Vec::new()));
        let store = got.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 4096];
            while let Ok(n) = sock.recv(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]).to_string();
                if let Ok(mut g) = store.lock() {
                    g.extend(text.lines().map(str::to_string));
                }
            }
        });
        Self {
            path,
            got,
            _dir: dir,
        }
    }
    pub fn lines(&self) -> Vec<String> {
        self.got.lock().map(|g| g.clone()).unwrap_or_default()
    }
    pub fn count(&self, line: &str) -> usize {
        self.lines().iter().filter(|l| *l == line).count()
    }
}

/// A mosquitto started from a config file of the test's own (passwords, TLS) in `dir`, listening on `port`;
/// its log goes to `dir/broker.log`. Stopped by PID on drop.
pub struct ConfiguredBroker {
    pub port: u16,
    child: Child,
}

impl ConfiguredBroker {
    /// Writes `conf` as `dir/mosquitto.conf` and `dir/passwd` for `user`/`password`, then starts the broker.
    pub fn start(dir: &Path, port: u16, user: &str, password: &str, conf: &str) -> Self {
        use std::os::unix::fs::PermissionsExt;
        let out = Command::new("mosquitto_passwd")
            .args(["-c", "-b"])
            .arg(dir.join("passwd"))
            .args([user, password])
            .output()
            .expect("mosquitto_passwd");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::write(dir.join("mosquitto.conf"), conf).expect("conf");
        // mosquitto started as root drops to its own user, which must be able to read these
        for e in std::fs::read_dir(dir).expect("dir").flatten() {
            let _ = std::fs::set_permissions(e.path(), std::fs::Permissions::from_mode(0o644));
        }
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755));
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(dir.join("mosquitto.conf"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("broker.log")).expect("broker log"))
            .spawn()
            .expect("mosquitto");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "broker did not listen on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { port, child }
    }
}

impl Drop for ConfiguredBroker {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

/// The test RTSP server (`tests/support/rtsp_server.py`, GStreamer's RTSP server) playing `file` as `codec`
/// ("mjpeg" or "h264") on `port`; killed and reaped on drop (by its own PID).
pub struct RtspServer(pub Child);

impl RtspServer {
    pub fn start(port: u16, file: &Path, codec: &str) -> Self {
        let child = Command::new("/usr/bin/python3")
            .arg(repo().join("tests/support/rtsp_server.py"))
            .arg(port.to_string())
            .arg(file)
            .arg(codec)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 with gi (scripts/deps.sh installs python3-gi and gir1.2-gst-rtsp-server-1.0)");
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "RTSP server did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Self(child)
    }
}

impl Drop for RtspServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits (≤ 60 s) for a pipeline that writes a test file to end, then stops it; panics with `what` on an error.
pub fn wait_eos(pipeline: &gstreamer::Pipeline, what: &str) {
    use gstreamer as gst;
    use gstreamer::prelude::*;
    let bus = pipeline.bus().expect("bus");
    let msg = bus
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(60),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        )
        .expect("EOS within 60 s");
    let _ = pipeline.set_state(gst::State::Null);
    if let gst::MessageView::Error(e) = msg.view() {
        panic!("{what}: {} ({:?})", e.error(), e.debug());
    }
}

/// Runs a gst-launch description to EOS (≤ 60 s); panics on an error. Returns the buffers counted by an element
/// named `count` (an identity), if any.
pub fn run_to_eos(desc: &str) -> u64 {
    use gstreamer as gst;
    use gstreamer::prelude::*;
    let pipeline = gst::parse::launch(desc)
        .expect("pipeline")
        .downcast::<gst::Pipeline>()
        .expect("a pipeline");
    let count = Arc::new(std::sync::atomic::AtomicU64::new(0));
    if let Some(pad) = pipeline.by_name("count").and_then(|i| i.static_pad("src")) {
        let c = count.clone();
        pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            c.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            gst::PadProbeReturn::Ok
        });
    }
    pipeline.set_state(gst::State::Playing).expect("playing");
    wait_eos(&pipeline, desc);
    count.load(std::sync::atomic::Ordering::Relaxed)
}
