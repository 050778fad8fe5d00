//! Starts the stages in data-path order, reports camera states, and waits for the drain: cameras end (EOS or
//! shutdown) → clip assemblers flush → inference finishes → events end open alerts → the publisher delivers
//! everything and says `stopped`.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::mpsc;

use crate::clock::Clock;
use crate::config::{Config, DropPolicy};
use crate::events::{self, Engine};
use crate::infer::runtime::InferError;
use crate::infer::worker::{self, ClipMsg};
use crate::infer::{ModelReport, Models};
use crate::ingest::{self, CameraStatus, CameraTask};
use crate::publish::mqtt::{self, PublishReport};
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
        "{undelivered} message(s) were not acknowledged by the broker before the drain timeout"
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

/// Builds a camera's retained state message.
fn state_message(topics: &Topics, st: &CameraStatus, providers: &serde_json::Value) -> OutMsg {
    let info = st.info();
    let secs = st.started.elapsed().as_secs_f64().max(1e-3);
    let sampled = st.sampled.load(std::sync::atomic::Ordering::Relaxed);
    let payload = json!({
        "schema": 1,
        "camera": &*st.name,
        "state": info.state,
        "reason": info.reason,
        "since": info.since.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "retries": info.retries,
        "frames_decoded": st.decoded.load(std::sync::atomic::Ordering::Relaxed),
        "frames_sampled": sampled,
        "frames_dropped": st.queue.dropped.load(std::sync::atomic::Ordering::Relaxed),
        "sampled_fps": (sampled as f64 / secs * 100.0).round() / 100.0,
        "providers": providers,
    });
    OutMsg::retained(
        topics.camera_state(&st.name),
        payload.to_string().into_bytes(),
    )
}

/// Runs the daemon until every camera has ended (files) or `shutdown` fires, then drains.
pub async fn run(
    cfg: Config,
    shutdown: Shutdown,
    clock: Arc<dyn Clock>,
) -> Result<RunReport, RunError> {
    let started = std::time::Instant::now();
    gstreamer::init()
        .map_err(|e| RunError::Start(format!("GStreamer could not be initialised: {e}")))?;
    let metrics = Arc::new(Metrics::default());
    let topics = Topics::new(&cfg.mqtt.topic_prefix);

    // Models first: a missing or wrong model is a start-up error, before any camera is opened.
    let load_cfg = cfg.clone();
    let models = tokio::task::spawn_blocking(move || Models::load(&load_cfg))
        .await
        .map_err(|e| RunError::Start(format!("model loading panicked: {e}")))??;
    let reports: Vec<ModelReport> = models.reports();
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

    let (out_tx, out_rx) = mpsc::channel::<OutMsg>(cfg.mqtt.outbox_capacity.max(16));
    let publisher = tokio::spawn(mqtt::run(
        cfg.mqtt.clone(),
        topics.clone(),
        out_rx,
        cfg.shutdown.drain_timeout(),
        metrics.clone(),
    ));
    let info = json!({
        "schema": 1,
        "version": env!("CARGO_PKG_VERSION"),
        "onnxruntime": crate::infer::runtime::library_path().map(|p| p.display().to_string()),
        "models": reports,
        "cameras": cfg.cameras.iter().filter(|c| c.enabled).map(|c| &c.name).collect::<Vec<_>>(),
        "started_at": clock.now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    });
    let _ = out_tx
        .send(OutMsg::retained(
            topics.info(),
            info.to_string().into_bytes(),
        ))
        .await;

    let (infer_tx, infer_rx) = mpsc::channel(16);
    let events = tokio::spawn(events::run(
        Engine::new(&cfg.cameras, Box::new(|| uuid::Uuid::new_v4().to_string())),
        infer_rx,
        out_tx.clone(),
        topics.clone(),
        metrics.clone(),
    ));

    let (clip_tx, clip_rx) = crossbeam_channel::bounded::<ClipMsg>(cfg.ingest.clip_queue);
    let worker = worker::spawn(models, clip_rx, infer_tx, metrics.clone())
        .map_err(|e| RunError::Start(format!("could not start the inference thread: {e}")))?;

    let mut threads = Vec::new();
    let mut statuses = Vec::new();
    for cam in cfg.cameras.iter().filter(|c| c.enabled) {
        let policy: DropPolicy = cam.drop_policy(&cfg.ingest);
        let (ftx, frx, qstats) = queue::bounded(cfg.ingest.frame_queue, policy);
        let status = CameraStatus::new(Arc::from(cam.name.as_str()), qstats, clock.now());
        statuses.push(status.clone());
        let (tx, t, p) = (out_tx.clone(), topics.clone(), providers.clone());
        let on_state: ingest::StateListener = Arc::new(move |st: &CameraStatus| {
            let info = st.info();
            tracing::info!(camera = %st.name, state = ?info.state, reason = info.reason.as_deref().unwrap_or(""), "camera state");
            let _ = tx.blocking_send(state_message(&t, st, &p));
        });
        let task = CameraTask {
            camera: cam.clone(),
            ingest: cfg.ingest.clone(),
            clock: clock.clone(),
            shutdown: shutdown.clone(),
            status,
            on_state,
        };
        let (a, b) = ingest::spawn_camera(task, ftx, frx, clip_tx.clone())
            .map_err(|e| RunError::Start(format!("could not start camera {}: {e}", cam.name)))?;
        threads.push(a);
        threads.push(b);
    }
    drop(clip_tx);

    // periodic state refresh (fps, counts) while cameras run
    let refresh = {
        let (tx, t, p, sts) = (
            out_tx.clone(),
            topics.clone(),
            providers.clone(),
            statuses.clone(),
        );
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(30));
            tick.tick().await;
            loop {
                tick.tick().await;
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
    drop(out_tx);

    // camera + assembler threads end on EOS or shutdown; then the worker sees the clip queue close
    tokio::task::spawn_blocking(move || {
        for t in threads {
            let _ = t.join();
        }
        let _ = worker.join();
    })
    .await
    .map_err(|e| RunError::Start(format!("joining stage threads: {e}")))?;
    refresh.abort();
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
    if report.publish.undelivered > 0 {
        return Err(RunError::Undelivered {
            undelivered: report.publish.undelivered,
        });
    }
    if !statuses.is_empty() && failed.len() == statuses.len() {
        return Err(RunError::AllCamerasFailed(failed.join("; ")));
    }
    Ok(report)
}
