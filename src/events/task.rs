//! The events task: feeds each inference output and `set` command to the rule [`Engine`], attaches evidence
//! (snapshots, recordings) to the alerts it returns, and publishes alerts, counts and summaries. Ends when
//! inference closes its channel. [`EventsStage::build`] makes the engine and the stage's input channels;
//! [`EventsStage::spawn`] starts the task.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::config::Config;
use crate::control::Command;
use crate::infer::worker::InferOut;
use crate::ingest::camera::Registry;
use crate::ingest::UnusualStatus;
use crate::publish::switches::CameraSwitches;
use crate::publish::topics::Topics;
use crate::publish::OutMsg;
use crate::telemetry::Metrics;

use super::evidence::{Evidence, Recorders, Snapshots};
use super::rules;
use super::Engine;

/// The events stage, built and not started: the rule engine, where its evidence goes, and its two inputs.
pub struct EventsStage {
    engine: Engine,
    evidence: Evidence,
    /// The senders are kept only to hand out clones: dropped when the stage starts, so each input closes with its
    /// last producer.
    input_tx: mpsc::Sender<InferOut>,
    input: mpsc::Receiver<InferOut>,
    commands_tx: mpsc::Sender<(String, Command)>,
    commands: mpsc::Receiver<(String, Command)>,
    /// Where the cameras' unusual-scene baselines are kept (`<state dir>/unusual/<camera>.json`).
    baselines: std::path::PathBuf,
    /// What the web page shows: alerts, prompt scores and latest frames.
    board: Arc<crate::web::Board>,
}

/// Clips between two saves of the unusual-scene baselines (and one more at the end).
const SAVE_EVERY_CLIPS: u64 = 25;

/// A camera's saved baseline, if there is a readable one (a damaged file is logged and ignored: the camera
/// learns again).
fn load_baseline(dir: &std::path::Path, camera: &str) -> Option<super::unusual::Baseline> {
    let path = dir.join(format!("{camera}.json"));
    let text = std::fs::read(&path).ok()?;
    match serde_json::from_slice(&text) {
        Ok(b) => Some(b),
        Err(e) => {
            tracing::warn!(camera, path = %path.display(), error = %e, "unusual-scene baseline unreadable: learning again");
            None
        }
    }
}

/// Gives the engine the baselines saved for its unusual-scene cameras (read off the runtime).
async fn restore_baselines(engine: &mut Engine, dir: &std::path::Path) {
    let cameras = engine.unusual_cameras();
    if cameras.is_empty() {
        return;
    }
    let dir = dir.to_path_buf();
    let loaded = tokio::task::spawn_blocking(move || {
        cameras
            .into_iter()
            .filter_map(|c| load_baseline(&dir, &c).map(|b| (c, b)))
            .collect::<Vec<_>>()
    })
    .await
    .unwrap_or_default();
    for (camera, b) in loaded {
        tracing::info!(camera, "unusual-scene baseline restored");
        engine.restore_unusual(&camera, b);
    }
}

/// Deletes a camera's saved baseline (the `reset` command), off the runtime; a missing file is fine.
async fn delete_baseline(dir: &std::path::Path, camera: &str) {
    let path = dir.join(format!("{camera}.json"));
    let shown = path.display().to_string();
    match tokio::task::spawn_blocking(move || std::fs::remove_file(&path)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {}
        Ok(Err(e)) => {
            tracing::warn!(camera, path = %shown, error = %e, "could not delete the saved unusual-scene baseline; it is replaced at the next save")
        }
        Err(e) => {
            tracing::warn!(camera, error = %e, "deleting the unusual-scene baseline panicked")
        }
    }
}

/// Tells the camera's state (`<prefix>/<camera>/state`) what its unusual-scene baseline last said.
fn report_unusual(registry: &Registry, camera: &str, score: Option<f32>) {
    let status = registry
        .lock()
        .ok()
        .and_then(|r| r.get(camera).map(|h| h.status.clone()));
    if let Some(st) = status {
        if let Ok(mut u) = st.unusual.lock() {
            *u = Some(UnusualStatus {
                score,
                warming_up: score.is_none(),
            });
        }
    }
}

/// Writes the baselines (atomically: a temporary file renamed over the old one).
async fn save_baselines(dir: &std::path::Path, baselines: Vec<(String, super::unusual::Baseline)>) {
    if baselines.is_empty() {
        return;
    }
    let dir = dir.to_path_buf();
    let res = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        std::fs::create_dir_all(&dir)?;
        for (camera, b) in baselines {
            let path = dir.join(format!("{camera}.json"));
            let tmp = dir.join(format!(".{camera}.json.tmp"));
            let bytes = serde_json::to_vec(&b).map_err(std::io::Error::other)?;
            std::fs::write(&tmp, bytes)?;
            std::fs::rename(&tmp, &path)?;
        }
        Ok(())
    })
    .await;
    match res {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "could not save the unusual-scene baselines"),
        Err(e) => tracing::warn!(error = %e, "saving the unusual-scene baselines panicked"),
    }
}

impl EventsStage {
    /// Nothing here can fail. `recorders`: the cameras' recorders, shared with the ingest stage; `detector`: the
    /// detector's per-label levels (its model card) for rules that do not set their own.
    pub fn build(cfg: &Config, recorders: &Recorders, detector: crate::labels::Thresholds) -> Self {
        // small: each result holds its clip's frames (shared pixels) until the events stage has taken snapshots
        let (input_tx, input) = mpsc::channel(4);
        let (commands_tx, commands) = mpsc::channel(32);
        let media_dir = cfg.media.resolved_dir();
        let evidence = Evidence {
            snapshots: cfg.media.snapshots.then(|| Snapshots {
                dir: media_dir.clone(),
                quality: cfg.media.jpeg_quality,
                mqtt: cfg.media.mqtt_shape(),
                thumb_height: cfg.media.thumbnail_height,
            }),
            recordings: cfg
                .media
                .clips
                .then(|| (recorders.clone(), media_dir.clone())),
            media_url: cfg.metrics.media_url(),
        };
        let engine = Engine::new(
            &cfg.cameras,
            detector,
            Box::new(|| uuid::Uuid::new_v4().to_string()),
        )
        .with_alpha(cfg.language.alpha)
        .with_summaries(
            cfg.summaries
                .enabled
                .then_some(cfg.summaries.period_minutes * 60.0),
        );
        let spool = cfg.spool.resolved_path();
        let baselines = spool
            .parent()
            .unwrap_or(std::path::Path::new("."))
            .join("unusual");
        Self {
            engine,
            evidence,
            input_tx,
            input,
            commands_tx,
            commands,
            baselines,
            board: Arc::default(),
        }
    }

    /// The web page's board this stage fills.
    pub fn board(&self) -> Arc<crate::web::Board> {
        self.board.clone()
    }

    /// Applies the switches stored by an earlier run (detection off, disarmed rules) before anything is inferred.
    pub fn restore(&mut self, switches: &HashMap<String, CameraSwitches>) {
        for (camera, s) in switches {
            if !s.detect {
                self.engine.command(camera, &Command::Detect(false));
            }
            for rule in &s.disarmed {
                self.engine.command(
                    camera,
                    &Command::Arm {
                        rule: rule.clone(),
                        armed: false,
                    },
                );
            }
        }
    }

    /// Inference's end of the input.
    pub fn input(&self) -> mpsc::Sender<InferOut> {
        self.input_tx.clone()
    }

    /// The control stage's end: `set` commands, by camera.
    pub fn commands(&self) -> mpsc::Sender<(String, Command)> {
        self.commands_tx.clone()
    }

    /// Starts the task; it ends when inference closes the input.
    pub fn spawn(
        self,
        out: mpsc::Sender<OutMsg>,
        topics: Topics,
        metrics: Arc<Metrics>,
        registry: Registry,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(run(self, out, topics, metrics, registry))
    }
}

/// Runs the stage until inference closes its input; its control input carries `set` commands (camera, command).
/// `registry`: the running cameras, whose states report the unusual-scene score.
pub async fn run(
    stage: EventsStage,
    out: mpsc::Sender<OutMsg>,
    topics: Topics,
    metrics: Arc<Metrics>,
    registry: Registry,
) {
    let EventsStage {
        mut engine,
        evidence,
        input_tx,
        mut input,
        commands_tx,
        commands: mut control,
        baselines,
        board,
    } = stage;
    // each input closes with its last producer
    drop((input_tx, commands_tx));
    // before the first clip is taken (clips wait in the input meanwhile)
    restore_baselines(&mut engine, &baselines).await;
    let mut control_open = true;
    let mut clips = 0u64;
    let media_url = evidence.media_url.clone();
    let (mut snaps, mut recordings) = evidence.writers(&topics, &metrics);
    loop {
        let (alerts, clip) = tokio::select! {
            msg = input.recv() => match msg {
                Some(msg) => {
                    let alerts = engine.handle(&msg);
                    match msg {
                        InferOut::Result(r) => (alerts, Some(r)),
                        _ => (alerts, None),
                    }
                }
                None => break,
            },
            c = control.recv(), if control_open => match c {
                Some((camera, Command::Snapshot)) => {
                    if let Some(s) = snaps.as_ref() {
                        if let Some(msg) = s.manual(&camera).await {
                            let _ = out.send(msg).await;
                        }
                    }
                    continue;
                }
                Some((camera, Command::UnusualReset)) => {
                    let alerts = engine.command(&camera, &Command::UnusualReset);
                    if engine.has_unusual(&camera) {
                        delete_baseline(&baselines, &camera).await;
                        if let Ok(mut m) = metrics.unusual_scores.lock() {
                            m.remove(&camera);
                        }
                        report_unusual(&registry, &camera, None);
                        tracing::info!(camera = %camera, ended_alert = !alerts.is_empty(), "unusual-scene baseline reset: learning again from a new warm-up");
                    }
                    (alerts, None)
                }
                Some((camera, cmd)) => (engine.command(&camera, &cmd), None),
                None => {
                    control_open = false;
                    continue;
                }
            },
        };
        let handled = std::time::Instant::now();
        if let (Some(s), Some(r)) = (snaps.as_mut(), clip.as_ref()) {
            s.remember(r);
        }
        for mut alert in alerts {
            if let (Some(s), Some(r)) = (snaps.as_mut(), clip.as_ref()) {
                if let Some((_, msg, sref)) = s.for_alert(&alert, r).await {
                    alert.snapshot = Some(sref);
                    let _ = out.send(msg).await;
                }
            }
            if let Some(rec) = recordings.as_mut() {
                alert.recording = rec.on_alert(&alert, clip.as_deref()).await;
            }
            if let Some(base) = &media_url {
                super::evidence::set_urls(&mut alert, base);
            }
            if alert.kind_of_message == rules::AlertType::New {
                metrics.alerts_raised.inc();
            }
            board.on_alert(&alert);
            tracing::info!(
                camera = %alert.camera,
                id = %alert.id,
                r#type = ?alert.kind_of_message,
                label = %alert.label,
                count = alert.count,
                "{}",
                alert.summary
            );
            let payload = match serde_json::to_vec(&alert) {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!(error = %e, "could not serialise an alert");
                    continue;
                }
            };
            if alert.kind == "label" {
                let count = OutMsg::retained(
                    topics.count(&alert.camera, &alert.rule),
                    alert.count.to_string().into_bytes(),
                );
                let _ = out.send(count).await;
            } else if matches!(alert.kind, "prompt" | "unusual" | "classifier") {
                let open = alert.kind_of_message != rules::AlertType::End;
                let active = OutMsg::retained(
                    topics.prompt_active(&alert.camera, &alert.rule),
                    if open {
                        b"ON".to_vec()
                    } else {
                        b"OFF".to_vec()
                    },
                );
                let _ = out.send(active).await;
            }
            if out
                .send(OutMsg::alert(topics.alerts(&alert.camera), payload))
                .await
                .is_err()
            {
                tracing::error!("publisher is gone; alerts can no longer be delivered");
                return;
            }
        }
        if let Some(r) = clip.as_ref() {
            let at = r.frames.first().map_or_else(chrono::Utc::now, |f| f.wall);
            board.on_clip(&r.camera, at, &engine.take_prompt_scores(), r.frames.last());
            clips += 1;
            if clips % SAVE_EVERY_CLIPS == 0 {
                save_baselines(&baselines, engine.unusual_to_save()).await;
            }
            if engine.has_unusual(&r.camera) {
                let u = engine.unusual_score(&r.camera);
                tracing::debug!(camera = %r.camera, clip = r.clip_index, stream_start = r.start.as_secs_f64(), unusualness = ?u, "unusual-scene score");
                if let Ok(mut m) = metrics.unusual_scores.lock() {
                    // absent while warming up (after a reset too), as /metrics documents
                    match u {
                        Some(u) => m.insert(r.camera.to_string(), u),
                        None => m.remove(&*r.camera),
                    };
                }
                report_unusual(&registry, &r.camera, u);
            }
            metrics
                .stages
                .events
                .observe(handled.elapsed().as_secs_f64());
            let now = chrono::Utc::now();
            for f in &r.frames {
                let us = (now - f.wall).num_microseconds().unwrap_or(0).max(0);
                metrics.record_frame_latency(us as f64 / 1e6);
            }
        }
        for reading in engine.take_readings() {
            tracing::info!(camera = %reading.camera, classifier = %reading.classifier, class = %reading.class, score = reading.score, "classifier: the class changed");
            match serde_json::to_vec(&reading) {
                Ok(p) => {
                    let topic = topics.classifier(&reading.camera, &reading.classifier);
                    let _ = out.send(OutMsg::retained(topic, p)).await;
                }
                Err(e) => tracing::error!(error = %e, "could not serialise a classifier reading"),
            }
        }
        for s in engine.take_summaries() {
            tracing::info!(camera = %s.camera, "summary: {}", s.text);
            match serde_json::to_vec(&s) {
                Ok(p) => {
                    let _ = out
                        .send(OutMsg::summary(topics.summary(&s.camera), p))
                        .await;
                }
                Err(e) => tracing::error!(error = %e, "could not serialise a summary"),
            }
        }
    }
    // the drain: what the baselines learnt since the last save
    save_baselines(&baselines, engine.unusual_to_save()).await;
}
