//! Starts the stages in data-path order, reports camera states, applies `set` commands and config reloads, talks
//! to systemd, and waits for the drain: cameras end (EOS or shutdown) → clip assemblers flush → inference
//! finishes → events end open alerts → the publisher delivers everything (or leaves it in the spool) and says
//! `stopped`.
//!
//! Reload (SIGHUP) re-reads the config file: cameras that were added, removed or changed are started or stopped
//! without touching the others (a changed camera's open alerts end first). Changes to any other section (mqtt,
//! models, ingest, inference, language, spool, shutdown) need a restart; a reload says so in the log.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::Sender;
use serde_json::json;
use tokio::sync::mpsc;

use crate::clock::Clock;
use crate::config::{CameraConfig, Config, DropPolicy, IngestConfig};
use crate::control::{self, Command};
use crate::events::{self, Engine};
use crate::infer::runtime::InferError;
use crate::infer::worker::{self, ClipMsg};
use crate::infer::{ModelReport, Models};
use crate::ingest::{self, CameraStatus, CameraTask};
use crate::publish::mqtt::{self, Incoming, PublishReport, Publisher};
use crate::publish::spool::Spool;
use crate::publish::topics::Topics;
use crate::publish::OutMsg;
use crate::queue;
use crate::shutdown::Shutdown;
use crate::telemetry::Metrics;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Infer(#[from] InferError),
    #[error("{0}")]
    Start(String),
    #[error("every camera failed: {0}")]
    AllCamerasFailed(String),
    #[error(
        "{undelivered} message(s) could not be delivered and could not be kept in the spool: they are lost"
    )]
    Undelivered { undelivered: usize },
}

/// What a finished run did.
#[derive(Debug)]
pub struct RunReport {
    pub publish: PublishReport,
    pub clips: u64,
    pub frames: u64,
    pub alerts: u64,
    pub elapsed: Duration,
}

/// Optional run-time inputs from `main`.
#[derive(Default)]
pub struct RunOptions {
    /// The config file, re-read on reload.
    pub config_path: Option<PathBuf>,
    /// Each message asks for a reload (SIGHUP).
    pub reload: Option<mpsc::Receiver<()>>,
    /// Counters to use instead of fresh ones (the soak command samples them while the run goes on).
    pub metrics: Option<Arc<Metrics>>,
    /// Filled with every camera's status as cameras start (for the soak command's sampler).
    pub statuses: Option<Arc<Mutex<Vec<Arc<CameraStatus>>>>>,
}

/// A camera's figures for `/metrics`.
fn camera_figures(st: &CameraStatus) -> crate::telemetry::CameraFigures {
    use std::sync::atomic::Ordering::Relaxed;
    let sampled = st.sampled.load(Relaxed);
    crate::telemetry::CameraFigures {
        name: st.name.to_string(),
        state: match st.info().state {
            ingest::CameraState::Starting => "starting",
            ingest::CameraState::Running => "running",
            ingest::CameraState::Retrying => "retrying",
            ingest::CameraState::Ended => "ended",
        },
        decoded: st.decoded.load(Relaxed),
        sampled,
        dropped: st.queue.dropped.load(Relaxed),
        queue_depth: st.queue.depth.load(Relaxed),
        sampled_fps: sampled as f64 / st.started.elapsed().as_secs_f64().max(1e-3),
    }
}

/// Builds a camera's retained state message.
fn state_message(topics: &Topics, st: &CameraStatus, providers: &serde_json::Value) -> OutMsg {
    let info = st.info();
    let secs = st.started.elapsed().as_secs_f64().max(1e-3);
    let sampled = st.sampled.load(std::sync::atomic::Ordering::Relaxed);
    let disarmed: Vec<String> = st
        .disarmed
        .lock()
        .map(|d| d.iter().cloned().collect())
        .unwrap_or_default();
    let payload = json!({
        "schema": 1,
        "camera": &*st.name,
        "state": info.state,
        "reason": info.reason,
        "since": info.since.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "retries": info.retries,
        "detect": st.detect.load(std::sync::atomic::Ordering::Relaxed),
        "disarmed": disarmed,
        "frames_decoded": st.decoded.load(std::sync::atomic::Ordering::Relaxed),
        "frames_sampled": sampled,
        "frames_dropped": st.queue.dropped.load(std::sync::atomic::Ordering::Relaxed),
        "clips_skipped": st.clips_skipped.load(std::sync::atomic::Ordering::Relaxed),
        "sampled_fps": (sampled as f64 / secs * 100.0).round() / 100.0,
        "providers": providers,
    });
    OutMsg::retained(
        topics.camera_state(&st.name),
        payload.to_string().into_bytes(),
    )
}

/// Tells systemd (when started by it with `Type=notify`); a no-op elsewhere.
fn notify(states: &[sd_notify::NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "sd_notify failed");
    }
}

/// What `set` commands need to know about a running camera.
#[derive(Clone)]
struct CamHandle {
    status: Arc<CameraStatus>,
    rules: Vec<String>,
}

type Registry = Arc<Mutex<HashMap<String, CamHandle>>>;

/// A started camera: its status, own stop signal and threads.
struct Running {
    status: Arc<CameraStatus>,
    stop: Shutdown,
    threads: Vec<JoinHandle<()>>,
}

/// What starting a camera needs, shared by start-up and reload.
struct Starter {
    ingest: IngestConfig,
    clock: Arc<dyn Clock>,
    shutdown: Shutdown,
    out: mpsc::Sender<OutMsg>,
    topics: Topics,
    providers: serde_json::Value,
    clips: Sender<ClipMsg>,
    registry: Registry,
    /// `[media]` when recordings are on.
    recording: Option<crate::config::MediaConfig>,
    recorders: events::Recorders,
    metrics: Arc<Metrics>,
}

impl Starter {
    fn start(&self, cam: &CameraConfig) -> Result<Running, RunError> {
        let policy: DropPolicy = cam.drop_policy(&self.ingest);
        let (ftx, frx, qstats) = queue::bounded(self.ingest.frame_queue, policy);
        let status = CameraStatus::new(Arc::from(cam.name.as_str()), qstats, self.clock.now());
        let (tx, t, p) = (
            self.out.clone(),
            self.topics.clone(),
            self.providers.clone(),
        );
        let on_state: ingest::StateListener = Arc::new(move |st: &CameraStatus| {
            let info = st.info();
            tracing::info!(camera = %st.name, state = ?info.state, reason = info.reason.as_deref().unwrap_or(""), "camera state");
            let _ = tx.blocking_send(state_message(&t, st, &p));
        });
        let stop = self.shutdown.child();
        let recorder = match &self.recording {
            None => None,
            Some(m) => {
                let (tx, topic) = (self.out.clone(), self.topics.recordings(&cam.name));
                let done: crate::ingest::recorder::Done = Arc::new(move |r| {
                    tracing::info!(camera = %r.camera, alert = %r.alert_id, path = %r.path, frames = r.frames, bytes = r.bytes, reason = r.reason, "recording finished");
                    match serde_json::to_vec(&r) {
                        Ok(p) => {
                            let _ = tx.blocking_send(OutMsg::summary(topic.clone(), p));
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "could not serialise a recording message")
                        }
                    }
                });
                let settings = m
                    .recorder_config(cam, &self.ingest)
                    .map_err(|p| RunError::Start(format!("camera {}: {p}", cam.name)))?;
                Some(crate::ingest::recorder::Recorder::new(
                    Arc::from(cam.name.as_str()),
                    settings,
                    done,
                ))
            }
        };
        if let (Some(r), Ok(mut map)) = (&recorder, self.recorders.lock()) {
            map.insert(cam.name.clone(), r.clone());
        }
        let task = CameraTask {
            camera: cam.clone(),
            ingest: self.ingest.clone(),
            clock: self.clock.clone(),
            shutdown: stop.clone(),
            status: status.clone(),
            on_state,
            recorder,
            metrics: self.metrics.clone(),
        };
        // HA sensors and dashboards read counts from retained topics: start from 0, not a previous run's value
        for rule in cam.effective_rules() {
            let _ = self.out.try_send(OutMsg::retained(
                self.topics.count(&cam.name, &rule.name()),
                b"0".to_vec(),
            ));
        }
        let (a, b) = ingest::spawn_camera(task, ftx, frx, self.clips.clone())
            .map_err(|e| RunError::Start(format!("could not start camera {}: {e}", cam.name)))?;
        if let Ok(mut r) = self.registry.lock() {
            r.insert(
                cam.name.clone(),
                CamHandle {
                    status: status.clone(),
                    rules: cam.rule_names(),
                },
            );
        }
        Ok(Running {
            status,
            stop,
            threads: vec![a, b],
        })
    }
}

/// Home Assistant discovery state: what to announce, and where.
#[derive(Clone)]
struct Discovery {
    prefix: String,
    node: String,
    cameras: Arc<Mutex<Vec<CameraConfig>>>,
}

impl Discovery {
    fn status_topic(&self) -> String {
        format!("{}/status", self.prefix)
    }
    /// Retained config messages for `cameras`; `remove` = empty payloads, which delete the entities.
    fn messages(&self, topics: &Topics, cameras: &[CameraConfig], remove: bool) -> Vec<OutMsg> {
        crate::publish::discovery::configs(topics, &self.prefix, &self.node, cameras)
            .into_iter()
            .map(|(t, v)| {
                let payload = if remove {
                    Vec::new()
                } else {
                    v.to_string().into_bytes()
                };
                OutMsg::retained(t, payload)
            })
            .collect()
    }
    async fn announce(&self, topics: &Topics, out: &mpsc::Sender<OutMsg>) {
        let cams = self.cameras.lock().map(|c| c.clone()).unwrap_or_default();
        for m in self.messages(topics, &cams, false) {
            let _ = out.send(m).await;
        }
    }
}

/// Applies `set` commands from the publisher until its channel closes (or this task is aborted at drain); answers
/// broker connects and Home Assistant's birth message with discovery configs.
#[allow(clippy::too_many_arguments)]
async fn control_loop(
    mut commands: mpsc::Receiver<Incoming>,
    registry: Registry,
    events: mpsc::Sender<(String, Command)>,
    out: mpsc::Sender<OutMsg>,
    topics: Topics,
    providers: serde_json::Value,
    metrics: Arc<Metrics>,
    discovery: Option<Discovery>,
) {
    while let Some(msg) = commands.recv().await {
        if let Some(d) = &discovery {
            let connected = msg.topic.is_empty();
            let ha_online = msg.topic == d.status_topic() && msg.payload.trim_ascii() == b"online";
            if connected || ha_online {
                d.announce(&topics, &out).await;
                continue;
            }
            if msg.topic == d.status_topic() {
                continue;
            }
        }
        let Some(camera) = topics.camera_of_set(&msg.topic).map(str::to_string) else {
            continue;
        };
        let handle = registry.lock().ok().and_then(|r| r.get(&camera).cloned());
        let parsed = match &handle {
            None => Err(control::CommandError::UnknownCamera(camera.clone())),
            Some(h) => control::parse(&camera, &msg.payload, &h.rules),
        };
        let (cmd, h) = match (parsed, handle) {
            (Ok(cmd), Some(h)) => (cmd, h),
            (Err(e), _) => {
                metrics.commands_rejected.inc();
                tracing::warn!(topic = %msg.topic, error = %e, "rejected a command");
                let report = json!({
                    "schema": 1,
                    "source": "command",
                    "topic": msg.topic,
                    "error": e.to_string(),
                    "payload": control::excerpt(&msg.payload),
                    "at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                });
                let _ = out
                    .send(OutMsg::error(
                        topics.errors(),
                        report.to_string().into_bytes(),
                    ))
                    .await;
                continue;
            }
            (Ok(_), None) => continue,
        };
        match &cmd {
            Command::Detect(on) => h
                .status
                .detect
                .store(*on, std::sync::atomic::Ordering::Relaxed),
            Command::Snapshot => {}
            Command::Arm { rule, armed } => {
                if let Ok(mut d) = h.status.disarmed.lock() {
                    if *armed {
                        d.remove(rule);
                    } else {
                        d.insert(rule.clone());
                    }
                }
            }
        }
        metrics.commands_applied.inc();
        tracing::info!(camera = %camera, command = ?cmd, "command applied");
        if events.send((camera, cmd)).await.is_err() {
            return;
        }
        let _ = out
            .send(state_message(&topics, &h.status, &providers))
            .await;
    }
}

/// Debug text of every section a reload cannot apply, for "what changed" messages.
fn restart_sections(c: &Config) -> [(&'static str, String); 7] {
    [
        ("mqtt", format!("{:?}", c.mqtt)),
        ("models", format!("{:?}", c.models)),
        ("ingest", format!("{:?}", c.ingest)),
        ("inference", format!("{:?}", c.inference)),
        ("language", format!("{:?}", c.language)),
        ("spool", format!("{:?}", c.spool)),
        ("shutdown", format!("{:?}", c.shutdown)),
    ]
}

/// The camera changes between two configs: (removed, changed, added) by name, enabled cameras only.
pub fn camera_diff(
    old: &[CameraConfig],
    new: &[CameraConfig],
) -> (Vec<String>, Vec<String>, Vec<String>) {
    let on = |v: &[CameraConfig]| -> HashMap<String, String> {
        v.iter()
            .filter(|c| c.enabled)
            .map(|c| (c.name.clone(), format!("{c:?}")))
            .collect()
    };
    let (o, n) = (on(old), on(new));
    let mut removed: Vec<String> = o.keys().filter(|k| !n.contains_key(*k)).cloned().collect();
    let mut changed: Vec<String> = o
        .iter()
        .filter(|(k, v)| n.get(*k).is_some_and(|nv| nv != *v))
        .map(|(k, _)| k.clone())
        .collect();
    let mut added: Vec<String> = n.keys().filter(|k| !o.contains_key(*k)).cloned().collect();
    removed.sort();
    changed.sort();
    added.sort();
    (removed, changed, added)
}

/// Runs the daemon until every camera has ended (files) or `shutdown` fires, then drains.
pub async fn run(
    cfg: Config,
    shutdown: Shutdown,
    clock: Arc<dyn Clock>,
) -> Result<RunReport, RunError> {
    run_with(cfg, shutdown, clock, RunOptions::default()).await
}

pub async fn run_with(
    cfg: Config,
    shutdown: Shutdown,
    clock: Arc<dyn Clock>,
    mut opts: RunOptions,
) -> Result<RunReport, RunError> {
    let started = std::time::Instant::now();
    gstreamer::init()
        .map_err(|e| RunError::Start(format!("GStreamer could not be initialised: {e}")))?;
    let metrics = opts.metrics.clone().unwrap_or_default();
    let topics = Topics::new(&cfg.mqtt.topic_prefix);
    // TLS files are read now: a wrong CA path is a start-up error, not an endless reconnect loop
    mqtt::options(&cfg.mqtt, &topics).map_err(RunError::Start)?;
    let spool_path = cfg.spool.resolved_path();
    let max_bytes = cfg.spool.max_bytes();
    let spool = tokio::task::spawn_blocking(move || Spool::open(&spool_path, max_bytes))
        .await
        .map_err(|e| RunError::Start(format!("opening the spool panicked: {e}")))?
        .map_err(|e| RunError::Start(format!("cannot open the delivery spool: {e}")))?;

    // Models first: a missing or wrong model is a start-up error, before any camera is opened.
    let load_cfg = cfg.clone();
    let plan = cfg.inference_plan();
    let models = tokio::task::spawn_blocking(move || Models::load_workers(&load_cfg))
        .await
        .map_err(|e| RunError::Start(format!("model loading panicked: {e}")))??;
    tracing::info!(
        workers = plan.workers,
        threads_per_worker = plan.threads,
        "inference workers"
    );
    let reports: Vec<ModelReport> = models.first().map(|m| m.reports()).unwrap_or_default();
    for r in &reports {
        match &r.fallback_reason {
            None => {
                tracing::info!(model = r.name, provider = r.provider, path = %r.path, load_ms = format!("{:.0}", r.load_ms), "model loaded")
            }
            Some(why) => {
                tracing::warn!(model = r.name, provider = r.provider, path = %r.path, reason = %why, "model loaded; CUDA not available, using CPU")
            }
        }
    }
    let providers = serde_json::Value::Object(
        reports
            .iter()
            .map(|r| (r.name.to_string(), json!(r.provider)))
            .collect(),
    );

    // bound now: an address in use is a start-up error naming the key, not a silent missing endpoint
    let http_listener = match &cfg.metrics.listen {
        Some(addr) => Some(tokio::net::TcpListener::bind(addr).await.map_err(|e| {
            RunError::Start(format!("metrics.listen: cannot listen on {addr}: {e}"))
        })?),
        None => None,
    };
    let (out_tx, out_rx) = mpsc::channel::<OutMsg>(cfg.mqtt.outbox_capacity.max(16));
    let (cmd_tx, cmd_rx) = mpsc::channel::<Incoming>(32);
    let publisher = tokio::spawn(
        Publisher {
            cfg: cfg.mqtt.clone(),
            topics: topics.clone(),
            drain_timeout: cfg
                .shutdown
                .drain_timeout()
                .map_err(|p| RunError::Start(p.to_string()))?,
            metrics: metrics.clone(),
            spool: Some(spool),
            commands: Some(cmd_tx),
            subscriptions: if cfg.homeassistant.enabled {
                vec![format!("{}/status", cfg.homeassistant.discovery_prefix)]
            } else {
                Vec::new()
            },
        }
        .run(out_rx),
    );
    let info_message = |cameras: &[CameraConfig]| {
        let info = json!({
            "schema": 1,
            "version": env!("CARGO_PKG_VERSION"),
            "onnxruntime": crate::infer::runtime::library_path().map(|p| p.display().to_string()),
            "models": reports,
            "cameras": cameras.iter().filter(|c| c.enabled).map(|c| &c.name).collect::<Vec<_>>(),
            "started_at": clock.now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        });
        OutMsg::retained(topics.info(), info.to_string().into_bytes())
    };
    let _ = out_tx.send(info_message(&cfg.cameras)).await;

    // small: each result holds its clip's frames (shared pixels) until the events stage has taken snapshots
    let (infer_tx, infer_rx) = mpsc::channel(4);
    let media_dir = cfg.media.resolved_dir();
    let recorders: events::Recorders = Arc::default();
    let evidence = events::Evidence {
        snapshots: cfg.media.snapshots.then(|| events::Snapshots {
            dir: media_dir.clone(),
            quality: cfg.media.jpeg_quality,
        }),
        recordings: cfg
            .media
            .clips
            .then(|| (recorders.clone(), media_dir.clone())),
    };
    let janitor = {
        let dir = media_dir.clone();
        let (age, bytes) = cfg
            .media
            .retention()
            .map_err(|p| RunError::Start(p.to_string()))?;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(600));
            loop {
                tick.tick().await;
                let d = dir.clone();
                match tokio::task::spawn_blocking(move || {
                    crate::events::snapshot::sweep(&d, age, bytes)
                })
                .await
                {
                    Ok(Ok((0, _))) => {}
                    Ok(Ok((n, freed))) => {
                        tracing::info!(files = n, bytes = freed, dir = %dir.display(), "media retention: deleted old evidence")
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, dir = %dir.display(), "media retention sweep failed")
                    }
                    Err(_) => {}
                }
            }
        })
    };
    let (ctl_tx, ctl_rx) = mpsc::channel(32);
    let events = tokio::spawn(events::run(
        Engine::new(&cfg.cameras, Box::new(|| uuid::Uuid::new_v4().to_string())).with_summaries(
            cfg.summaries
                .enabled
                .then_some(cfg.summaries.period_minutes * 60.0),
        ),
        infer_rx,
        ctl_rx,
        out_tx.clone(),
        topics.clone(),
        metrics.clone(),
        evidence,
    ));

    let (clip_tx, clip_rx) = crossbeam_channel::bounded::<ClipMsg>(cfg.ingest.clip_queue);
    let worker = worker::spawn(models, clip_rx, infer_tx, metrics.clone())
        .map_err(|e| RunError::Start(format!("could not start the inference thread: {e}")))?;

    let registry: Registry = Arc::default();
    let publisher_alive = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let worker_alive = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let http = http_listener.map(|listener| {
        let (reg, p_alive, w_alive) = (
            registry.clone(),
            publisher_alive.clone(),
            worker_alive.clone(),
        );
        let sources = crate::http::Sources {
            metrics: metrics.clone(),
            live: Box::new(move || {
                let statuses: Vec<Arc<CameraStatus>> = reg
                    .lock()
                    .map(|r| r.values().map(|h| h.status.clone()).collect())
                    .unwrap_or_default();
                let figures = statuses.iter().map(|st| camera_figures(st)).collect();
                (
                    figures,
                    p_alive.load(std::sync::atomic::Ordering::Relaxed),
                    w_alive.load(std::sync::atomic::Ordering::Relaxed),
                )
            }),
            models: reports
                .iter()
                .map(|r| (r.name.to_string(), r.provider.to_string()))
                .collect(),
        };
        if let Ok(a) = listener.local_addr() {
            tracing::info!(address = %a, "serving /metrics and /healthz");
        }
        tokio::spawn(crate::http::serve(listener, sources))
    });
    let starter = Starter {
        ingest: cfg.ingest.clone(),
        clock: clock.clone(),
        shutdown: shutdown.clone(),
        out: out_tx.clone(),
        topics: topics.clone(),
        providers: providers.clone(),
        clips: clip_tx,
        registry: registry.clone(),
        recording: cfg.media.clips.then(|| cfg.media.clone()),
        recorders,
        metrics: metrics.clone(),
    };
    let mut running: HashMap<String, Running> = HashMap::new();
    let mut all_statuses: Vec<Arc<CameraStatus>> = Vec::new();
    for cam in cfg.cameras.iter().filter(|c| c.enabled) {
        let r = starter.start(cam)?;
        all_statuses.push(r.status.clone());
        if let Some(shared) = &opts.statuses {
            if let Ok(mut v) = shared.lock() {
                v.push(r.status.clone());
            }
        }
        running.insert(cam.name.clone(), r);
    }

    let discovery = cfg.homeassistant.enabled.then(|| Discovery {
        prefix: cfg.homeassistant.discovery_prefix.clone(),
        node: crate::publish::discovery::node_id(&cfg.mqtt.client_id),
        cameras: Arc::new(Mutex::new(cfg.cameras.clone())),
    });
    let control = tokio::spawn(control_loop(
        cmd_rx,
        registry.clone(),
        ctl_tx,
        out_tx.clone(),
        topics.clone(),
        providers.clone(),
        metrics.clone(),
        discovery.clone(),
    ));
    // periodic state refresh (fps, counts) while cameras run
    let refresh = {
        let (tx, t, p, reg) = (
            out_tx.clone(),
            topics.clone(),
            providers.clone(),
            registry.clone(),
        );
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(30));
            tick.tick().await;
            loop {
                tick.tick().await;
                let sts: Vec<_> = reg
                    .lock()
                    .map(|r| r.values().map(|h| h.status.clone()).collect())
                    .unwrap_or_default();
                for st in &sts {
                    if st.info().state == ingest::CameraState::Running
                        && tx.send(state_message(&t, st, &p)).await.is_err()
                    {
                        return;
                    }
                }
            }
        })
    };

    notify(&[
        sd_notify::NotifyState::Ready,
        sd_notify::NotifyState::Status(&format!("watching {} camera(s)", running.len())),
    ]);
    let watchdog = sd_notify::watchdog_enabled().map(|d| d / 2);
    let mut tick = tokio::time::interval(
        watchdog
            .unwrap_or(Duration::from_secs(1))
            .min(Duration::from_millis(500)),
    );
    let mut last_ping = std::time::Instant::now();
    let mut current = cfg.clone();
    let mut reload_rx = opts.reload.take();
    loop {
        tokio::select! {
            _ = shutdown.wait() => break,
            r = async { match reload_rx.as_mut() { Some(rx) => rx.recv().await, None => std::future::pending().await } } => {
                match r {
                    Some(()) => {
                        notify(&[sd_notify::NotifyState::Reloading]);
                        if let Some(path) = opts.config_path.clone() {
                            let before = current.cameras.clone();
                            reload(&path, &mut current, &mut running, &starter, &mut all_statuses).await;
                            let _ = out_tx.send(info_message(&current.cameras)).await;
                            if let Some(d) = &discovery {
                                let (removed, _, _) = camera_diff(&before, &current.cameras);
                                let gone: Vec<CameraConfig> = before.iter().filter(|c| removed.contains(&c.name)).cloned().collect();
                                for m in d.messages(&topics, &gone, true) {
                                    let _ = out_tx.send(m).await;
                                }
                                if let Ok(mut c) = d.cameras.lock() {
                                    *c = current.cameras.clone();
                                }
                                d.announce(&topics, &out_tx).await;
                            }
                        } else {
                            tracing::warn!("reload requested, but this run has no config file to re-read");
                        }
                        notify(&[sd_notify::NotifyState::Ready]);
                    }
                    None => reload_rx = None,
                }
            }
            _ = tick.tick() => {
                publisher_alive.store(!publisher.is_finished(), std::sync::atomic::Ordering::Relaxed);
                worker_alive.store(!worker.is_finished(), std::sync::atomic::Ordering::Relaxed);
                if let Some(every) = watchdog {
                    if last_ping.elapsed() >= every && !publisher.is_finished() {
                        notify(&[sd_notify::NotifyState::Watchdog]);
                        last_ping = std::time::Instant::now();
                    }
                }
                // files that ended (and cameras that gave up) are done; the run ends when all are
                if running.values().all(|r| r.threads.iter().all(|t| t.is_finished())) {
                    break;
                }
            }
        }
    }
    if shutdown.is_triggered() {
        notify(&[sd_notify::NotifyState::Stopping]);
    }
    drop(starter);

    // camera + assembler threads end on EOS or shutdown; then the worker sees the clip queue close
    let threads: Vec<JoinHandle<()>> = running.into_values().flat_map(|r| r.threads).collect();
    tokio::task::spawn_blocking(move || {
        for t in threads {
            let _ = t.join();
        }
        let _ = worker.join();
    })
    .await
    .map_err(|e| RunError::Start(format!("joining stage threads: {e}")))?;
    refresh.abort();
    control.abort();
    janitor.abort();
    if let Some(h) = http {
        h.abort();
    }
    drop(out_tx);
    let _ = events.await;
    let publish = publisher
        .await
        .map_err(|e| RunError::Start(format!("publisher task failed: {e}")))?;
    let report = RunReport {
        clips: metrics.clips_inferred.get(),
        frames: metrics.frames_inferred.get(),
        alerts: metrics.alerts_raised.get(),
        elapsed: started.elapsed(),
        publish,
    };
    let statuses = all_statuses;
    let secs = report.elapsed.as_secs_f64().max(1e-6);
    tracing::info!(
        clips = report.clips,
        frames = report.frames,
        alerts = report.alerts,
        delivered = report.publish.delivered,
        seconds = format!("{secs:.1}"),
        frames_per_s = format!("{:.1}", report.frames as f64 / secs),
        clips_per_s = format!("{:.2}", report.clips as f64 / secs),
        detector_ms_per_frame = format!(
            "{:.1}",
            metrics.detector_us.get() as f64 / 1e3 / report.frames.max(1) as f64
        ),
        encoder_ms_per_frame = format!(
            "{:.1}",
            metrics.encoder_us.get() as f64 / 1e3 / report.frames.max(1) as f64
        ),
        head_ms_per_clip = format!(
            "{:.2}",
            metrics.head_us.get() as f64 / 1e3 / report.clips.max(1) as f64
        ),
        clips_gated = metrics.clips_gated.get(),
        head_share_pct = format!(
            "{:.2}",
            100.0 * metrics.head_us.get() as f64
                / (metrics.detector_us.get() + metrics.encoder_us.get() + metrics.head_us.get())
                    .max(1) as f64
        ),
        "finished"
    );
    let failed: Vec<String> = statuses
        .iter()
        .filter(|s| s.failed.load(std::sync::atomic::Ordering::Relaxed))
        .map(|s| format!("{} ({})", s.name, s.info().reason.unwrap_or_default()))
        .collect();
    if report.publish.spooled > 0 {
        tracing::warn!(
            messages = report.publish.spooled,
            "broker did not acknowledge everything before the drain timeout; kept in the spool for the next start"
        );
    }
    let lost = report.publish.undelivered - report.publish.spooled;
    if lost > 0 {
        return Err(RunError::Undelivered { undelivered: lost });
    }
    if !statuses.is_empty() && failed.len() == statuses.len() {
        return Err(RunError::AllCamerasFailed(failed.join("; ")));
    }
    Ok(report)
}

/// Re-reads the config and starts/stops only the cameras that changed.
async fn reload(
    path: &std::path::Path,
    current: &mut Config,
    running: &mut HashMap<String, Running>,
    starter: &Starter,
    all_statuses: &mut Vec<Arc<CameraStatus>>,
) {
    let p = path.to_path_buf();
    let new = match tokio::task::spawn_blocking(move || Config::load(&p)).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            tracing::error!("reload rejected, keeping the running config: {e}");
            let report = json!({"schema": 1, "source": "reload", "error": e.to_string()});
            let _ = starter
                .out
                .send(OutMsg::error(
                    starter.topics.errors(),
                    report.to_string().into_bytes(),
                ))
                .await;
            return;
        }
        Err(e) => {
            tracing::error!(error = %e, "reload failed");
            return;
        }
    };
    for ((name, old), (_, new_s)) in restart_sections(current)
        .iter()
        .zip(restart_sections(&new).iter())
    {
        if old != new_s {
            tracing::warn!(section = name, "reload: [{name}] changed; restart scenewatch to apply it (cameras are reloaded, other sections are not)");
        }
    }
    let (removed, changed, added) = camera_diff(&current.cameras, &new.cameras);
    let by_name: HashMap<&str, &CameraConfig> = new
        .cameras
        .iter()
        .filter(|c| c.enabled)
        .map(|c| (c.name.as_str(), c))
        .collect();
    for name in removed.iter().chain(changed.iter()) {
        let Some(r) = running.remove(name) else {
            continue;
        };
        r.stop.trigger();
        let threads = r.threads;
        let _ = tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        })
        .await;
        if let Ok(mut reg) = starter.registry.lock() {
            reg.remove(name);
        }
        // behind the old camera's last clip and End, so no old result meets the new rules
        let msg = ClipMsg::Configure {
            camera: name.clone(),
            config: by_name.get(name.as_str()).map(|c| Box::new((*c).clone())),
        };
        let clips = starter.clips.clone();
        let _ = tokio::task::spawn_blocking(move || clips.send(msg)).await;
        if removed.contains(name) {
            let payload = json!({"schema": 1, "camera": name, "state": "ended", "reason": "removed from config"});
            let _ = starter
                .out
                .send(OutMsg::retained(
                    starter.topics.camera_state(name),
                    payload.to_string().into_bytes(),
                ))
                .await;
        }
    }
    for name in changed.iter().chain(added.iter()) {
        let Some(cam) = by_name.get(name.as_str()) else {
            continue;
        };
        if added.contains(name) {
            let msg = ClipMsg::Configure {
                camera: name.clone(),
                config: Some(Box::new((*cam).clone())),
            };
            let clips = starter.clips.clone();
            let _ = tokio::task::spawn_blocking(move || clips.send(msg)).await;
        }
        match starter.start(cam) {
            Ok(r) => {
                all_statuses.push(r.status.clone());
                running.insert(name.clone(), r);
            }
            Err(e) => {
                tracing::error!(camera = %name, error = %e, "reload could not start the camera")
            }
        }
    }
    tracing::info!(
        added = ?added,
        removed = ?removed,
        changed = ?changed,
        unchanged = running.len() - added.len() - changed.len(),
        "config reloaded"
    );
    current.cameras = new.cameras;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cam(name: &str, url: &str, enabled: bool) -> CameraConfig {
        toml::from_str(&format!(
            "name = \"{name}\"\nurl = \"{url}\"\nenabled = {enabled}\n"
        ))
        .expect("camera")
    }

    #[test]
    fn camera_diff_names_removed_changed_and_added() {
        let old = [
            cam("a", "test://", true),
            cam("b", "test://", true),
            cam("c", "test://", true),
            cam("d", "test://", false),
        ];
        let new = [
            cam("a", "test://", true),
            cam("b", "test://ball", true),
            cam("c", "test://", false),
            cam("d", "test://", true),
            cam("e", "test://", true),
        ];
        let (removed, changed, added) = camera_diff(&old, &new);
        assert_eq!(removed, vec!["c"]);
        assert_eq!(changed, vec!["b"]);
        assert_eq!(added, vec!["d", "e"]);
    }
}
