//! Wires the stages and drains them. `build` builds every stage first (each stage's own `build`: the publisher
//! with its spool and broker options, the inference workers with their models, the HTTP listener, the events
//! stage, each camera; a failure there leaves nothing running), then `run_with` starts them from the publisher
//! back to the cameras, reports camera states, talks to systemd, runs config reloads, and at the end calls
//! `Running::drain`, which stops them in data-path order: cameras → inference → recordings flush → helper tasks
//! → outbox → events → publisher (which delivers everything, or leaves it in the spool, and says `stopped`).
//!
//! Reload (SIGHUP) re-reads the config file: cameras that were added, removed or changed are started or stopped
//! without touching the others (the new camera is built first and a camera that cannot be built keeps running as
//! it was; a changed camera's open alerts end first), and their new prompts and pose need go
//! to the inference workers ahead of their first clip. It runs as a task beside the supervisor loop, which keeps
//! pinging the watchdog and answering SIGTERM. Every other section is compared by value; a changed one needs a
//! restart, and the reload says so in the log, section by section.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::sync::mpsc;

use crate::clock::Clock;
use crate::config::{CameraConfig, Config};
use crate::control::ControlStage;
use crate::events;
use crate::events::EventsStage;
use crate::http::HttpServer;
use crate::infer::runtime::InferError;
use crate::infer::worker::{ClipMsg, InferOut, Workers, WorkersError};
use crate::infer::{Language, ModelReport};
use crate::ingest::camera::{
    state_message, BuiltCamera, CameraError, Cameras, Registry, RunningCamera,
};
use crate::ingest::{self, CameraStatus};
use crate::publish::discovery::Discovery;
use crate::publish::mqtt::{Incoming, PublishReport};
use crate::publish::stage::PublisherStage;
use crate::publish::topics::Topics;
use crate::publish::OutMsg;
use crate::shutdown::Shutdown;
use crate::telemetry::Metrics;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Infer(#[from] InferError),
    #[error("{0}")]
    Start(String),
    #[error(transparent)]
    Camera(#[from] CameraError),
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

/// Longest a drain waits for recordings that are still being finalized (their muxers write the index).
const RECORDING_FLUSH: Duration = Duration::from_secs(10);

/// Sees each inference output on its way to the events stage (see [`RunOptions::observe`]).
pub type Observer = Box<dyn FnMut(&InferOut) + Send>;

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
    /// Replaces the MQTT publisher with an in-process one: no broker and no spool; every message the stages
    /// publish goes to this sender (bounded: a slow reader holds the stages back) and counts as delivered
    /// (`scenewatch eval`).
    pub sink: Option<mpsc::Sender<OutMsg>>,
    /// Called with every inference output on its way to the events stage, in order, on a task of its own (eval's
    /// per-frame scores). Keep it cheap: it runs between inference and the events stage.
    pub observe: Option<Observer>,
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
            ingest::CameraState::Error => "error",
        },
        decoded: st.decoded.load(Relaxed),
        sampled,
        dropped: st.queue.dropped.load(Relaxed),
        queue_depth: st.queue.depth.load(Relaxed),
        sampled_fps: sampled as f64 / st.started.elapsed().as_secs_f64().max(1e-3),
    }
}

/// Tells systemd (when started by it with `Type=notify`); a no-op elsewhere.
fn notify(states: &[sd_notify::NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "sd_notify failed");
    }
}

/// What a reload does with a top-level section that changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReloadAction {
    /// Applied by the reload (`[[cameras]]`: added, removed and changed cameras restart, the others keep running).
    Applied,
    /// Kept as it was at start-up until scenewatch restarts (the broker session, models, queues, the spool, the
    /// HTTP listener and the events stage are built once).
    NeedsRestart,
}

impl ReloadAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::NeedsRestart => "needs restart",
        }
    }
}

/// Every top-level section that differs between `old` and `new`, compared by value (secrets included: a new MQTT
/// password counts, though it is never printed), with what a reload does with it. `old` is destructured without
/// `..`, so a section added to `Config` does not compile until it is listed here.
pub fn section_changes(old: &Config, new: &Config) -> Vec<(&'static str, ReloadAction)> {
    use ReloadAction::{Applied, NeedsRestart};
    let Config {
        mqtt,
        models,
        ingest,
        inference,
        shutdown,
        spool,
        media,
        homeassistant,
        summaries,
        metrics,
        language,
        cameras,
    } = old;
    [
        ("mqtt", *mqtt != new.mqtt, NeedsRestart),
        ("models", *models != new.models, NeedsRestart),
        ("ingest", *ingest != new.ingest, NeedsRestart),
        ("inference", *inference != new.inference, NeedsRestart),
        ("shutdown", *shutdown != new.shutdown, NeedsRestart),
        ("spool", *spool != new.spool, NeedsRestart),
        ("media", *media != new.media, NeedsRestart),
        (
            "homeassistant",
            *homeassistant != new.homeassistant,
            NeedsRestart,
        ),
        ("summaries", *summaries != new.summaries, NeedsRestart),
        ("metrics", *metrics != new.metrics, NeedsRestart),
        ("language", *language != new.language, NeedsRestart),
        ("cameras", *cameras != new.cameras, Applied),
    ]
    .into_iter()
    .filter(|(_, changed, _)| *changed)
    .map(|(name, _, action)| (name, action))
    .collect()
}

/// The camera changes between two configs, enabled cameras only, by name.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct CameraDiff {
    pub removed: Vec<String>,
    pub changed: Vec<String>,
    pub added: Vec<String>,
    /// Enabled in both and equal: left running.
    pub unchanged: usize,
}

pub fn camera_diff(old: &[CameraConfig], new: &[CameraConfig]) -> CameraDiff {
    let on = |v: &[CameraConfig]| -> HashMap<String, CameraConfig> {
        v.iter()
            .filter(|c| c.enabled)
            .map(|c| (c.name.clone(), c.clone()))
            .collect()
    };
    let (o, n) = (on(old), on(new));
    let mut d = CameraDiff::default();
    for (name, cam) in &o {
        match n.get(name) {
            None => d.removed.push(name.clone()),
            Some(new_cam) if new_cam != cam => d.changed.push(name.clone()),
            Some(_) => d.unchanged += 1,
        }
    }
    d.added = n.keys().filter(|k| !o.contains_key(*k)).cloned().collect();
    d.removed.sort();
    d.changed.sort();
    d.added.sort();
    d
}

/// What a reload did with the cameras, for its log line. Counted from the diff and the failures rather than
/// from the cameras left running, which a failed restart makes smaller than `added + changed`.
#[derive(Debug, Default, PartialEq, Eq)]
struct CameraOutcome {
    /// Started (added or restarted with their new config).
    started: Vec<String>,
    removed: Vec<String>,
    /// Left running as they were (unchanged, or their new config could not be prepared).
    kept: usize,
    /// Not running now: stopped for a restart that failed, or new ones that could not start.
    failed: Vec<String>,
}

impl CameraOutcome {
    /// `not_prepared`: changed or added cameras whose setup failed (changed ones keep running the old config).
    fn new(diff: &CameraDiff, not_prepared: &[String], failed: &[String]) -> Self {
        let skipped = |n: &String| not_prepared.contains(n) || failed.contains(n);
        let kept_old = diff
            .changed
            .iter()
            .filter(|n| not_prepared.contains(n))
            .count();
        Self {
            started: diff
                .changed
                .iter()
                .chain(&diff.added)
                .filter(|n| !skipped(n))
                .cloned()
                .collect(),
            removed: diff.removed.clone(),
            kept: diff.unchanged + kept_old,
            failed: failed.to_vec(),
        }
    }
}

/// Runs the daemon until every camera has ended (files) or `shutdown` fires, then drains.
pub async fn run(
    cfg: Config,
    shutdown: Shutdown,
    clock: Arc<dyn Clock>,
) -> Result<RunReport, RunError> {
    run_with(cfg, shutdown, clock, RunOptions::default()).await
}

/// Every stage built and checked, nothing started: a failure up to here leaves no thread or task behind.
struct Built {
    topics: Topics,
    providers: serde_json::Value,
    /// Output: the spool opened, the broker options checked; what the broker sends goes to the control stage.
    publisher: PublisherStage,
    commands: mpsc::Receiver<Incoming>,
    events: EventsStage,
    /// Media retention: the directory, the age and the size it keeps.
    retention: (PathBuf, Duration, u64),
    /// Inference: every worker's models loaded, each camera's start-up setup.
    workers: Workers,
    /// `/metrics` and `/healthz`, bound.
    http: Option<HttpServer>,
    /// Ingest: the camera component (reloads build with it too) and the cameras enabled at start-up.
    cameras: Arc<Cameras>,
    first: Vec<BuiltCamera>,
    recorders: events::Recorders,
    discovery: Option<Discovery>,
    /// Detect on/off and rule arming, kept in the spool's database.
    switches: Option<crate::publish::switches::SwitchStore>,
}

/// Does every check and allocation that can fail, in the order an operator fixes them: libraries and settings,
/// the spool, the models, the listener, each camera. Starts nothing.
async fn build(
    cfg: &Config,
    clock: &Arc<dyn Clock>,
    shutdown: &Shutdown,
    metrics: &Arc<Metrics>,
    sink: Option<mpsc::Sender<OutMsg>>,
) -> Result<Built, RunError> {
    gstreamer::init()
        .map_err(|e| RunError::Start(format!("GStreamer could not be initialised: {e}")))?;
    let topics = Topics::new(&cfg.mqtt.topic_prefix);
    let (age, bytes) = cfg
        .media
        .retention()
        .map_err(|p| RunError::Start(p.to_string()))?;
    let (publisher, commands) = match sink {
        Some(sink) => PublisherStage::local(cfg.mqtt.outbox_capacity.max(16), sink),
        None => PublisherStage::build(cfg, &topics, metrics)
            .await
            .map_err(RunError::Start)?,
    };
    let workers = Workers::build(cfg).await.map_err(|e| match e {
        WorkersError::Infer(e) => RunError::Infer(e),
        WorkersError::Start(m) => RunError::Start(m),
    })?;
    let providers = workers.providers();
    let http = HttpServer::bind(&cfg.metrics)
        .await
        .map_err(RunError::Start)?;
    let recorders: events::Recorders = Arc::default();
    let mut events = EventsStage::build(cfg, &recorders, workers.detector_thresholds());
    let switches = publisher.switches();
    if let Some(store) = &switches {
        let stored = store
            .load_all()
            .map_err(|e| RunError::Start(format!("cannot read the stored switches: {e}")))?;
        // cameras no longer in the config forget their switches (a reload that adds one back starts it afresh,
        // in the events stage as in its camera state)
        for name in stored.keys() {
            if !cfg.cameras.iter().any(|c| &c.name == name) {
                if let Err(e) = store.save(name, &Default::default()) {
                    tracing::warn!(camera = %name, error = %e, "could not forget a removed camera's switches");
                }
            }
        }
        let restored = cfg
            .cameras
            .iter()
            .filter_map(|c| {
                let s = stored.get(&c.name)?.for_rules(&c.rule_names());
                Some((c.name.clone(), s))
            })
            .collect();
        events.restore(&restored);
    }
    let cameras = Arc::new(Cameras {
        ingest: cfg.ingest.clone(),
        // auto is settled here, for the cameras enabled at start
        decode_threads: cfg.decoder_threads(),
        clock: clock.clone(),
        shutdown: shutdown.clone(),
        out: publisher.outbox(),
        topics: topics.clone(),
        providers: providers.clone(),
        clips: workers.clips(),
        registry: Registry::default(),
        recording: cfg.media.clips.then(|| cfg.media.clone()),
        recorders: recorders.clone(),
        metrics: metrics.clone(),
        switches: switches.clone(),
    });
    let first = cfg
        .cameras
        .iter()
        .filter(|c| c.enabled)
        .map(|c| cameras.build(c))
        .collect::<Result<Vec<_>, _>>()?;
    let discovery = cfg.homeassistant.enabled.then(|| {
        Discovery::new(
            cfg.homeassistant.discovery_prefix.clone(),
            crate::publish::discovery::node_id(&cfg.mqtt.client_id),
            cfg.cameras.clone(),
            crate::publish::discovery::Options {
                snapshots: cfg.media.snapshots,
                summaries: cfg.summaries.enabled,
                configuration_url: cfg.device_url(),
                support_url: cfg.homeassistant.support_url.clone(),
            },
        )
    });
    Ok(Built {
        topics,
        providers,
        publisher,
        commands,
        events,
        retention: (cfg.media.resolved_dir(), age, bytes),
        workers,
        http,
        cameras,
        first,
        recorders,
        discovery,
        switches,
    })
}

/// Every stage started, held in data-path order for [`Running::drain`].
struct Running {
    /// The camera component holds a clip-queue sender (as does each camera); dropped first at drain.
    cameras: Arc<Cameras>,
    running: Arc<Mutex<HashMap<String, RunningCamera>>>,
    workers: std::thread::JoinHandle<()>,
    recorders: events::Recorders,
    /// Refresh, control, janitor and the HTTP server: they stop only when aborted.
    helpers: Vec<tokio::task::JoinHandle<()>>,
    /// The supervisor's own outbox sender (info, discovery after a reload).
    outbox: mpsc::Sender<OutMsg>,
    events: tokio::task::JoinHandle<()>,
    publisher: tokio::task::JoinHandle<PublishReport>,
}

impl Running {
    /// Stops everything in data-path order, so each stage sees its input close only after everything upstream has
    /// sent its last message, and nothing is lost on the way:
    /// 1. cameras: their threads end on EOS or shutdown, and the camera component's clip sender is dropped, so the
    ///    clip queue closes once the assemblers have sent their last clips;
    /// 2. inference workers: they finish the queued clips and end when the queue closes, closing the events input;
    /// 3. recordings flush: each camera closed its open recordings as it ended; their muxers finish on helper
    ///    threads and then announce the file, which must happen before the outbox closes (bounded by
    ///    `RECORDING_FLUSH`);
    /// 4. helper tasks (refresh, control, janitor, HTTP) are aborted: they only hold outbox senders;
    /// 5. the outbox closes with the supervisor's sender;
    /// 6. events: it ends its open alerts once inference's channel is closed, and drops its outbox sender;
    /// 7. publisher: it delivers what is left (or spools it) within the drain timeout and reports.
    ///
    /// The caller drops every other holder of a clip sender (the reload context) first.
    async fn drain(self) -> Result<PublishReport, RunError> {
        let Self {
            cameras,
            running,
            workers,
            recorders,
            helpers,
            outbox,
            events,
            publisher,
        } = self;
        // the clip queue closes when its last sender goes: the camera component's, then each camera's
        drop(cameras);
        let stopped: Vec<RunningCamera> =
            std::mem::take(&mut *lock(&running)).into_values().collect();
        tokio::task::spawn_blocking(move || {
            for r in stopped {
                r.join();
            }
            let _ = workers.join();
            let recs: Vec<_> = lock(&recorders).values().cloned().collect();
            let deadline = std::time::Instant::now() + RECORDING_FLUSH;
            for r in recs {
                r.flush(deadline.saturating_duration_since(std::time::Instant::now()));
            }
        })
        .await
        .map_err(|e| RunError::Start(format!("joining stage threads: {e}")))?;
        for h in helpers {
            h.abort();
        }
        drop(outbox);
        let _ = events.await;
        publisher
            .await
            .map_err(|e| RunError::Start(format!("publisher task failed: {e}")))
    }
}

/// The retained `<prefix>/info` message: version, models and the cameras enabled.
fn info_message(
    topics: &Topics,
    reports: &[ModelReport],
    detector: &serde_json::Value,
    clock: &dyn Clock,
    cameras: &[CameraConfig],
) -> OutMsg {
    let info = json!({
        "schema": 1,
        "version": env!("CARGO_PKG_VERSION"),
        "onnxruntime": crate::infer::runtime::library_path().map(|p| p.display().to_string()),
        "models": reports,
        "detector": detector,
        "cameras": cameras.iter().filter(|c| c.enabled).map(|c| &c.name).collect::<Vec<_>>(),
        "started_at": clock.now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    });
    OutMsg::retained(topics.info(), info.to_string().into_bytes())
}

/// Deletes evidence past `[media]` retention every ten minutes, until aborted at drain.
fn spawn_janitor((dir, age, bytes): (PathBuf, Duration, u64)) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(600));
        loop {
            tick.tick().await;
            let d = dir.clone();
            match tokio::task::spawn_blocking(move || {
                crate::events::evidence::sweep(&d, age, bytes)
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
}

/// Re-sends running cameras' state (fps, counts) every 30 s, until the outbox closes or this is aborted at drain.
fn spawn_refresh(
    out: mpsc::Sender<OutMsg>,
    topics: Topics,
    providers: serde_json::Value,
    registry: Registry,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(30));
        tick.tick().await;
        loop {
            tick.tick().await;
            let sts: Vec<_> = registry
                .lock()
                .map(|r| r.values().map(|h| h.status.clone()).collect())
                .unwrap_or_default();
            for st in &sts {
                if st.info().state == ingest::CameraState::Running
                    && out
                        .send(state_message(&topics, st, &providers))
                        .await
                        .is_err()
                {
                    return;
                }
            }
        }
    })
}

/// Liveness flags the supervisor loop keeps up to date for `/healthz`.
#[derive(Clone)]
struct Alive {
    publisher: Arc<std::sync::atomic::AtomicBool>,
    worker: Arc<std::sync::atomic::AtomicBool>,
}

impl Alive {
    fn new() -> Self {
        Self {
            publisher: Arc::new(true.into()),
            worker: Arc::new(true.into()),
        }
    }
}

/// What `/metrics` and `/healthz` read.
fn http_sources(
    metrics: &Arc<Metrics>,
    registry: &Registry,
    alive: &Alive,
    reports: &[ModelReport],
) -> crate::http::Sources {
    let (reg, alive) = (registry.clone(), alive.clone());
    crate::http::Sources {
        metrics: metrics.clone(),
        live: Box::new(move || {
            let statuses: Vec<Arc<CameraStatus>> = reg
                .lock()
                .map(|r| r.values().map(|h| h.status.clone()).collect())
                .unwrap_or_default();
            let figures = statuses.iter().map(|st| camera_figures(st)).collect();
            (
                figures,
                alive.publisher.load(std::sync::atomic::Ordering::Relaxed),
                alive.worker.load(std::sync::atomic::Ordering::Relaxed),
            )
        }),
        models: reports
            .iter()
            .map(|r| (r.name.to_string(), r.provider.to_string()))
            .collect(),
    }
}

/// Puts `observe` between inference and the events stage: a task that shows it each output and passes the
/// output on. It ends when inference closes its sender, and closes the events input in turn, so the drain order
/// is unchanged.
fn spawn_observer(events: mpsc::Sender<InferOut>, mut observe: Observer) -> mpsc::Sender<InferOut> {
    let (tx, mut rx) = mpsc::channel::<InferOut>(4);
    tokio::spawn(async move {
        while let Some(msg) = rx.recv().await {
            observe(&msg);
            if events.send(msg).await.is_err() {
                break;
            }
        }
    });
    tx
}

/// Shares a started camera's status with the soak sampler and the end-of-run report.
fn track(all: &mut Vec<Arc<CameraStatus>>, opts: &RunOptions, st: Arc<CameraStatus>) {
    if let Some(shared) = &opts.statuses {
        if let Ok(mut v) = shared.lock() {
            v.push(st.clone());
        }
    }
    all.push(st);
}

pub async fn run_with(
    cfg: Config,
    shutdown: Shutdown,
    clock: Arc<dyn Clock>,
    mut opts: RunOptions,
) -> Result<RunReport, RunError> {
    let started = std::time::Instant::now();
    let metrics = opts.metrics.clone().unwrap_or_default();
    let Built {
        topics,
        providers,
        publisher,
        commands,
        events,
        retention,
        workers,
        http,
        cameras,
        first,
        recorders,
        discovery,
        switches,
    } = build(&cfg, &clock, &shutdown, &metrics, opts.sink.take()).await?;
    let reports = workers.reports.clone();
    let language = workers.language.clone();
    let detector_card = workers.detector_card();

    // Start from the sink back to the sources, so no stage sends into one that has not started.
    let out_tx = publisher.outbox();
    let publisher = publisher.spawn();
    let _ = out_tx
        .send(info_message(
            &topics,
            &reports,
            &detector_card,
            &*clock,
            &cfg.cameras,
        ))
        .await;
    let janitor = spawn_janitor(retention);
    let (infer_tx, ctl_tx, board) = (events.input(), events.commands(), events.board());
    let events = events.spawn(
        out_tx.clone(),
        topics.clone(),
        metrics.clone(),
        cameras.registry.clone(),
    );
    let infer_tx = match opts.observe.take() {
        Some(observe) => spawn_observer(infer_tx, observe),
        None => infer_tx,
    };
    let worker = workers
        .spawn(infer_tx, metrics.clone())
        .map_err(|e| RunError::Start(format!("could not start the inference thread: {e}")))?;
    let registry = cameras.registry.clone();
    let alive = Alive::new();
    let media_api = cfg.metrics.media.then(|| crate::http::MediaApi {
        dir: cfg.media.resolved_dir(),
        token: cfg.metrics.token.clone(),
        board,
        secure_cookie: cfg
            .metrics
            .media_url()
            .is_some_and(|u| u.starts_with("https://")),
    });
    let http = http.map(|server| {
        server.spawn(
            http_sources(&metrics, &registry, &alive, &reports),
            media_api,
        )
    });
    let mut running: HashMap<String, RunningCamera> = HashMap::new();
    let mut all_statuses: Vec<Arc<CameraStatus>> = Vec::new();
    for camera in first {
        let name = camera.name().to_string();
        let r = camera.start()?;
        track(&mut all_statuses, &opts, r.status.clone());
        running.insert(name, r);
    }
    let running = Arc::new(Mutex::new(running));
    let camera_count = lock(&running).len();
    let control = ControlStage {
        commands,
        registry: registry.clone(),
        events: ctl_tx,
        out: out_tx.clone(),
        topics: topics.clone(),
        providers: providers.clone(),
        metrics: metrics.clone(),
        discovery: discovery.clone(),
        switches,
    }
    .spawn();
    let refresh = spawn_refresh(
        out_tx.clone(),
        topics.clone(),
        providers.clone(),
        registry.clone(),
    );
    let stages = Running {
        cameras: cameras.clone(),
        running: running.clone(),
        workers: worker,
        recorders,
        helpers: [refresh, control, janitor]
            .into_iter()
            .chain(http)
            .collect(),
        outbox: out_tx.clone(),
        events,
        publisher,
    };

    notify(&[
        sd_notify::NotifyState::Ready,
        sd_notify::NotifyState::Status(&format!("watching {camera_count} camera(s)")),
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
    let reload_ctx = opts.config_path.clone().map(|path| {
        Arc::new(ReloadCtx {
            path,
            cameras: cameras.clone(),
            running: running.clone(),
            language,
            shutdown: shutdown.clone(),
        })
    });
    // a reload runs as a task of its own (it joins camera threads and waits for room in the clip queue), so this
    // loop keeps pinging the watchdog and answering SIGTERM meanwhile; one at a time, later requests wait for it
    let mut reloading: Option<tokio::task::JoinHandle<Reloaded>> = None;
    let mut reload_before: Vec<CameraConfig> = Vec::new();
    loop {
        tokio::select! {
            _ = shutdown.wait() => break,
            r = async { match reload_rx.as_mut() { Some(rx) => rx.recv().await, None => std::future::pending().await } }, if reloading.is_none() => {
                match (r, &reload_ctx) {
                    (Some(()), Some(ctx)) => {
                        notify(&[sd_notify::NotifyState::Reloading]);
                        reload_before = current.cameras.clone();
                        reloading = Some(tokio::spawn(reload(ctx.clone(), current.clone())));
                    }
                    (Some(()), None) => tracing::warn!("reload requested, but this run has no config file to re-read"),
                    (None, _) => reload_rx = None,
                }
            }
            done = async { match reloading.as_mut() { Some(h) => h.await, None => std::future::pending().await } }, if reloading.is_some() => {
                reloading = None;
                match done {
                    Ok(r) => {
                        current = r.config;
                        for st in r.started {
                            track(&mut all_statuses, &opts, st);
                        }
                        let _ = out_tx.send(info_message(&topics, &reports, &detector_card, &*clock, &current.cameras)).await;
                        if let Some(d) = &discovery {
                            // entities of removed cameras and of rules a changed camera lost
                            for m in d.removed(&topics, &reload_before, &current.cameras) {
                                let _ = out_tx.send(m).await;
                            }
                            if let Ok(mut c) = d.cameras.lock() {
                                *c = current.cameras.clone();
                            }
                            d.announce(&topics, &out_tx).await;
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "the reload task failed; the cameras it had not reached keep their config"),
                }
                notify(&[sd_notify::NotifyState::Ready]);
            }
            _ = tick.tick() => {
                alive.publisher.store(!stages.publisher.is_finished(), std::sync::atomic::Ordering::Relaxed);
                alive.worker.store(!stages.workers.is_finished(), std::sync::atomic::Ordering::Relaxed);
                if let Some(every) = watchdog {
                    if last_ping.elapsed() >= every && !stages.publisher.is_finished() {
                        notify(&[sd_notify::NotifyState::Watchdog]);
                        last_ping = std::time::Instant::now();
                    }
                }
                // files that ended (and cameras that gave up) are done; the run ends when all are (not during a
                // reload, which takes a changed camera out of `running` before it starts the new one)
                if reloading.is_none() && lock(&running).values().all(RunningCamera::is_finished) {
                    break;
                }
            }
        }
    }
    if shutdown.is_triggered() {
        notify(&[sd_notify::NotifyState::Stopping]);
    }
    if let Some(h) = reloading.take() {
        // it sees the shutdown: it stops preparing, starts no camera, and what it still joins or sends drains
        tracing::info!("draining: waiting for the reload in progress to wind down");
        match h.await {
            Ok(r) => all_statuses.extend(r.started),
            Err(e) => tracing::error!(error = %e, "the reload task failed"),
        }
    }
    // the reload's camera component holds a clip sender: gone before the drain waits for the queue to close
    drop(reload_ctx);
    drop(cameras);
    drop(out_tx);

    let publish = stages.drain().await?;
    let report = RunReport {
        clips: metrics.clips_inferred.get(),
        frames: metrics.frames_inferred.get(),
        alerts: metrics.alerts_raised.get(),
        elapsed: started.elapsed(),
        publish,
    };
    finish(report, &metrics, &all_statuses)
}

/// Logs what the run did and turns lost messages or cameras that all failed into the run's error.
fn finish(
    report: RunReport,
    metrics: &Metrics,
    statuses: &[Arc<CameraStatus>],
) -> Result<RunReport, RunError> {
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

/// A poisoned lock only means a task panicked while holding it; the map it guards is still whole.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What a reload works with, shared with the supervisor loop.
struct ReloadCtx {
    path: PathBuf,
    cameras: Arc<Cameras>,
    running: Arc<Mutex<HashMap<String, RunningCamera>>>,
    language: Arc<Language>,
    shutdown: Shutdown,
}

/// What a finished reload leaves for the supervisor loop.
struct Reloaded {
    /// The config now in force: the new cameras that were applied, every other section as it was (they need a
    /// restart). The running one unchanged when the reload was rejected or abandoned.
    config: Config,
    /// Statuses of the cameras it started.
    started: Vec<Arc<CameraStatus>>,
}

impl ReloadCtx {
    async fn report_error(&self, camera: Option<&str>, error: String) {
        let report = json!({"schema": 1, "source": "reload", "camera": camera, "error": error});
        let _ = self
            .cameras
            .out
            .send(OutMsg::error(
                self.cameras.topics.errors(),
                report.to_string().into_bytes(),
            ))
            .await;
    }

    /// Sends a message into the clip queue from a blocking thread (the queue may be full; the workers make room).
    async fn send_clip_msg(&self, msg: ClipMsg) {
        let clips = self.cameras.clips.clone();
        let _ = tokio::task::spawn_blocking(move || clips.send(msg)).await;
    }
}

/// Re-reads the config and starts/stops only the cameras that changed; runs as a task beside the supervisor loop.
async fn reload(ctx: Arc<ReloadCtx>, current: Config) -> Reloaded {
    let as_before = |config| Reloaded {
        config,
        started: Vec::new(),
    };
    let p = ctx.path.clone();
    let new = match tokio::task::spawn_blocking(move || Config::load(&p)).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            tracing::error!("reload rejected, keeping the running config: {e}");
            ctx.report_error(None, e.to_string()).await;
            return as_before(current);
        }
        Err(e) => {
            tracing::error!(error = %e, "reload failed");
            return as_before(current);
        }
    };
    let sections = section_changes(&current, &new);
    for (name, action) in &sections {
        match action {
            ReloadAction::Applied => {
                tracing::info!(section = name, action = action.as_str(), "reload: [{name}] changed")
            }
            ReloadAction::NeedsRestart => tracing::warn!(
                section = name,
                action = action.as_str(),
                "reload: [{name}] changed; restart scenewatch to apply it (a reload applies [[cameras]] only)"
            ),
        }
    }
    let diff = camera_diff(&current.cameras, &new.cameras);
    let new_cams: HashMap<&str, &CameraConfig> = new
        .cameras
        .iter()
        .filter(|c| c.enabled)
        .map(|c| (c.name.as_str(), c))
        .collect();

    // What the workers run on each new or changed camera: its prompts embedded (the language head opened the
    // first time) — seconds of blocking work, so on a thread of its own, raced against shutdown. Done before any
    // camera stops: a camera whose setup fails keeps running as it was.
    let wanted: Vec<CameraConfig> = diff
        .changed
        .iter()
        .chain(&diff.added)
        .filter_map(|n| new_cams.get(n.as_str()).map(|c| (*c).clone()))
        .collect();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let language = ctx.language.clone();
    let spawned = std::thread::Builder::new()
        .name("reload-setup".into())
        .spawn(move || {
            let setups: Vec<_> = wanted
                .iter()
                .map(|c| (c.name.clone(), language.setup_for(c)))
                .collect();
            let _ = tx.send(setups);
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "reload failed: could not start a thread");
        return as_before(current);
    }
    let setups = tokio::select! {
        biased;
        // a std thread, not spawn_blocking: left behind, it does not hold up the exit
        _ = ctx.shutdown.wait() => {
            tracing::info!("reload abandoned: shutting down");
            return as_before(current);
        }
        r = rx => match r {
            Ok(s) => s,
            Err(_) => {
                tracing::error!("reload failed: preparing the cameras panicked");
                return as_before(current);
            }
        },
    };
    let mut prepared: HashMap<String, crate::infer::CameraSetup> = HashMap::new();
    let mut not_prepared: Vec<String> = Vec::new();
    for (name, r) in setups {
        match r {
            Ok(s) => {
                prepared.insert(name, s);
            }
            Err(e) => {
                tracing::error!(camera = %name, error = %e, "reload: the camera's prompts could not be prepared; it keeps its running config");
                ctx.report_error(Some(&name), e.to_string()).await;
                not_prepared.push(name);
            }
        }
    }
    // the new cameras built before any old one stops: one that cannot be built is left running as it was
    let mut built: HashMap<String, BuiltCamera> = HashMap::new();
    for name in diff.changed.iter().chain(&diff.added) {
        let (Some(cam), true) = (new_cams.get(name.as_str()), prepared.contains_key(name)) else {
            continue;
        };
        match ctx.cameras.build(cam) {
            Ok(b) => {
                built.insert(name.clone(), b);
            }
            Err(e) => {
                tracing::error!(camera = %name, error = %e, "reload: the camera could not be built; it keeps its running config");
                ctx.report_error(Some(name), e.to_string()).await;
                prepared.remove(name);
                not_prepared.push(name.clone());
            }
        }
    }

    for name in diff.removed.iter().chain(&diff.changed) {
        let setup = match prepared.get(name) {
            Some(s) => s.clone(),
            None if diff.removed.contains(name) => Default::default(),
            None => continue,
        };
        // not running when an earlier reload could not start it: the workers and events stage still get the new
        // config below
        let old = lock(&ctx.running).remove(name);
        if let Some(r) = old {
            r.stop();
            // the assembler sends the camera's last clip and End into a possibly full queue: the workers make room
            let _ = tokio::task::spawn_blocking(move || r.join()).await;
        }
        lock(&ctx.cameras.registry).remove(name);
        // behind the old camera's last clip and End, so no old result meets the new rules, and the new prompts
        // and pose need apply from the new camera's first clip
        ctx.send_clip_msg(ClipMsg::Configure {
            camera: name.clone(),
            config: new_cams.get(name.as_str()).map(|c| Box::new((*c).clone())),
            setup,
        })
        .await;
        if diff.removed.contains(name) {
            // a camera removed from the config forgets its switches, as the events stage does
            if let Some(store) = ctx.cameras.switches.clone() {
                let cam = name.clone();
                let _ = tokio::task::spawn_blocking(move || {
                    store.save(&cam, &crate::publish::switches::CameraSwitches::default())
                })
                .await;
            }
            let payload = json!({"schema": 1, "camera": name, "state": "ended", "reason": "removed from config"});
            let _ = ctx
                .cameras
                .out
                .send(OutMsg::retained(
                    ctx.cameras.topics.camera_state(name),
                    payload.to_string().into_bytes(),
                ))
                .await;
        }
    }
    let mut started = Vec::new();
    let mut failed: Vec<String> = Vec::new();
    for name in diff.changed.iter().chain(&diff.added) {
        let (Some(cam), Some(setup), Some(camera)) = (
            new_cams.get(name.as_str()),
            prepared.get(name),
            built.remove(name),
        ) else {
            continue;
        };
        if ctx.shutdown.is_triggered() {
            tracing::info!(camera = %name, "reload: shutting down, camera not started");
            failed.push(name.clone());
            continue;
        }
        if diff.added.contains(name) {
            ctx.send_clip_msg(ClipMsg::Configure {
                camera: name.clone(),
                config: Some(Box::new((*cam).clone())),
                setup: setup.clone(),
            })
            .await;
        }
        match camera.start() {
            Ok(r) => {
                started.push(r.status.clone());
                lock(&ctx.running).insert(name.clone(), r);
            }
            Err(e) => {
                tracing::error!(camera = %name, error = %e, "reload could not start the camera");
                failed.push(name.clone());
            }
        }
    }
    let outcome = CameraOutcome::new(&diff, &not_prepared, &failed);
    let listed: Vec<String> = sections
        .iter()
        .map(|(n, a)| format!("{n}: {}", a.as_str()))
        .collect();
    tracing::info!(
        started = ?outcome.started,
        removed = ?outcome.removed,
        kept = outcome.kept,
        failed = ?outcome.failed,
        sections = %listed.join("; "),
        "config reloaded"
    );
    // Only cameras are applied. One that was not prepared or did not start keeps its old entry (or none), so the
    // next reload tries it again.
    let retry: Vec<&String> = not_prepared.iter().chain(&failed).collect();
    let mut cameras: Vec<CameraConfig> = new
        .cameras
        .into_iter()
        .filter(|c| !retry.contains(&&c.name))
        .collect();
    cameras.extend(
        current
            .cameras
            .iter()
            .filter(|c| retry.contains(&&c.name) && !diff.added.contains(&c.name))
            .cloned(),
    );
    let mut config = current;
    config.cameras = cameras;
    Reloaded { config, started }
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
        let d = camera_diff(&old, &new);
        assert_eq!(d.removed, vec!["c"]);
        assert_eq!(d.changed, vec!["b"]);
        assert_eq!(d.added, vec!["d", "e"]);
        assert_eq!(d.unchanged, 1, "a");
    }

    #[test]
    fn a_failed_restart_is_counted_not_subtracted() {
        // b changed and did not start again, d is new and did not start: nothing is running for them, a and c are
        // (the old count, running − added − changed = 2 − 1 − 1, came out as 0 or, with one more failure, wrapped)
        let diff = CameraDiff {
            removed: vec![],
            changed: vec!["b".into(), "e".into()],
            added: vec!["d".into()],
            unchanged: 2,
        };
        let out = CameraOutcome::new(&diff, &["e".into()], &["b".into(), "d".into()]);
        assert_eq!(out.started, Vec::<String>::new());
        assert_eq!(
            out.kept, 3,
            "a, c, and e whose new prompts could not be prepared"
        );
        assert_eq!(out.failed, vec!["b", "d"]);
    }

    fn config(extra: &str) -> Config {
        toml::from_str(&format!(
            "[mqtt]\nhost = \"localhost\"\npassword = \"one\"\n{extra}\n[[cameras]]\nname = \"a\"\nurl = \"test://\"\n"
        ))
        .expect("config")
    }

    #[test]
    fn section_changes_compare_values_in_every_section() {
        let old = config("");
        assert_eq!(section_changes(&old, &old.clone()), vec![]);

        // a new password: its Debug text is the same redaction, its value is not
        let mut new = old.clone();
        new.mqtt.password = Some(crate::config::Secret::new("two".into()));
        assert_eq!(format!("{:?}", old.mqtt), format!("{:?}", new.mqtt));
        assert_eq!(
            section_changes(&old, &new),
            vec![("mqtt", ReloadAction::NeedsRestart)]
        );

        // sections the Debug comparison never looked at
        let mut new = old.clone();
        new.media.jpeg_quality = old.media.jpeg_quality.wrapping_sub(1);
        new.homeassistant.enabled = !old.homeassistant.enabled;
        new.summaries.period_minutes = old.summaries.period_minutes + 1.0;
        new.metrics.listen = Some("127.0.0.1:9000".into());
        new.cameras[0].sample_fps = old.cameras[0].sample_fps + 1.0;
        assert_eq!(
            section_changes(&old, &new),
            vec![
                ("media", ReloadAction::NeedsRestart),
                ("homeassistant", ReloadAction::NeedsRestart),
                ("summaries", ReloadAction::NeedsRestart),
                ("metrics", ReloadAction::NeedsRestart),
                ("cameras", ReloadAction::Applied),
            ]
        );
    }
}
