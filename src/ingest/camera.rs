//! The camera component: what starting one camera takes, shared by start-up and reload. [`Cameras::build`] does
//! everything that can fail without starting anything (its frame queue, status and recorder settings);
//! [`BuiltCamera::start`] spawns its camera and clip-assembler threads; [`RunningCamera`] is the handle the
//! supervisor stops and drains. Also owns the registry of running cameras that `set` commands and `/metrics` read,
//! and the camera's retained state message.

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};
use serde_json::json;
use tokio::sync::mpsc;

use super::frame::Frame;
use super::recorder::{self, Recorder};
use super::{CameraStatus, CameraTask, StateListener};
use crate::clock::Clock;
use crate::config::{CameraConfig, DropPolicy, IngestConfig, MediaConfig, Problem};
use crate::events::Recorders;
use crate::infer::worker::ClipMsg;
use crate::publish::switches::{CameraSwitches, SwitchStore};
use crate::publish::topics::Topics;
use crate::publish::OutMsg;
use crate::queue::{self, PolicySender};
use crate::shutdown::Shutdown;
use crate::telemetry::Metrics;

#[derive(Debug, thiserror::Error)]
pub enum CameraError {
    #[error("camera {camera}: {problem}")]
    Recording { camera: String, problem: Problem },
    #[error("could not start camera {camera}: {source}")]
    Spawn {
        camera: String,
        source: std::io::Error,
    },
}

/// What `set` commands need to know about a running camera.
#[derive(Clone)]
pub struct CamHandle {
    pub status: Arc<CameraStatus>,
    pub rules: Vec<String>,
}

/// The running cameras by name, as `set` commands and `/metrics` see them.
pub type Registry = Arc<Mutex<HashMap<String, CamHandle>>>;

/// Builds a camera's retained state message.
pub fn state_message(topics: &Topics, st: &CameraStatus, providers: &serde_json::Value) -> OutMsg {
    let info = st.info();
    let secs = st.started.elapsed().as_secs_f64().max(1e-3);
    let sampled = st.sampled.load(Relaxed);
    let disarmed: Vec<String> = st
        .disarmed
        .lock()
        .map(|d| d.iter().cloned().collect())
        .unwrap_or_default();
    let mut payload = json!({
        "schema": 1,
        "camera": &*st.name,
        "state": info.state,
        "reason": info.reason,
        "since": info.since.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "retries": info.retries,
        "detect": st.detect.load(Relaxed),
        "disarmed": disarmed,
        "frames_decoded": st.decoded.load(Relaxed),
        "frames_sampled": sampled,
        "frames_dropped": st.queue.dropped.load(Relaxed),
        "clips_skipped": st.clips_skipped.load(Relaxed),
        "sampled_fps": (sampled as f64 / secs * 100.0).round() / 100.0,
        "decoder": st.decoder.lock().ok().and_then(|d| d.clone()),
        "inputs": inputs_state(st),
        "providers": providers,
    });
    if let Some(u) = st.unusual.lock().ok().and_then(|u| *u) {
        payload["unusual_score"] = json!(u.score.map(|s| (s * 1000.0).round() / 1000.0));
        payload["unusual_warming_up"] = json!(u.warming_up);
    }
    OutMsg::retained(
        topics.camera_state(&st.name),
        payload.to_string().into_bytes(),
    )
}

/// The camera's inputs for its state: roles, the decoder of the detect input, the codec of a record-only input
/// (and why it cannot be recorded). URLs are left out: they can hold credentials.
fn inputs_state(st: &CameraStatus) -> serde_json::Value {
    let inputs = st.inputs.lock().map(|i| i.clone()).unwrap_or_default();
    let record = st
        .record_input
        .lock()
        .map(|r| r.clone())
        .unwrap_or_default();
    inputs
        .iter()
        .map(|roles| {
            let mut o = json!({ "roles": roles });
            if roles.iter().any(|r| r == "detect") {
                o["decoder"] = json!(st.decoder.lock().ok().and_then(|d| d.clone()));
            } else if roles.iter().any(|r| r == "record") {
                o["codec"] = json!(record.codec);
                if let Some(e) = &record.error {
                    o["error"] = json!(e);
                }
            }
            o
        })
        .collect()
}

/// The retained plain `ON`/`OFF` states of a camera's switches: detection and each rule's arming.
pub fn switch_states(topics: &Topics, st: &CameraStatus, rules: &[String]) -> Vec<OutMsg> {
    let word = |on: bool| if on { b"ON".to_vec() } else { b"OFF".to_vec() };
    let disarmed = st.disarmed.lock().map(|d| d.clone()).unwrap_or_default();
    std::iter::once(OutMsg::retained(
        topics.detect_state(&st.name),
        word(st.detect.load(Relaxed)),
    ))
    .chain(
        rules.iter().map(|r| {
            OutMsg::retained(topics.armed_state(&st.name, r), word(!disarmed.contains(r)))
        }),
    )
    .collect()
}

/// What every camera is built with: the shared parts of the data path it feeds and reports to.
pub struct Cameras {
    pub ingest: IngestConfig,
    /// Each camera's decoder threads (`Config::decoder_threads`: `[ingest] decode_threads`, auto resolved).
    pub decode_threads: u32,
    pub clock: Arc<dyn Clock>,
    /// Each camera stops on a child of this.
    pub shutdown: Shutdown,
    pub out: mpsc::Sender<OutMsg>,
    pub topics: Topics,
    /// Model providers, quoted in state messages.
    pub providers: serde_json::Value,
    pub clips: Sender<ClipMsg>,
    pub registry: Registry,
    /// `[media]` when recordings are on.
    pub recording: Option<MediaConfig>,
    pub recorders: Recorders,
    pub metrics: Arc<Metrics>,
    /// Detect on/off and rule arming kept across restarts; a camera starts with what was stored for it.
    pub switches: Option<SwitchStore>,
}

/// A camera ready to start: every check done, no thread started and nothing registered or published yet.
pub struct BuiltCamera {
    camera: CameraConfig,
    status: Arc<CameraStatus>,
    stop: Shutdown,
    frames_tx: PolicySender<Frame>,
    frames_rx: Receiver<Frame>,
    recorder: Option<Arc<Recorder>>,
    on_state: StateListener,
    clips: Sender<ClipMsg>,
    out: mpsc::Sender<OutMsg>,
    topics: Topics,
    ingest: IngestConfig,
    decode_threads: u32,
    clock: Arc<dyn Clock>,
    registry: Registry,
    recorders: Recorders,
    metrics: Arc<Metrics>,
}

/// A started camera: its status, own stop signal and threads.
pub struct RunningCamera {
    pub status: Arc<CameraStatus>,
    stop: Shutdown,
    threads: Vec<JoinHandle<()>>,
}

impl Cameras {
    /// Prepares `cam` without starting it; fails on settings that would stop it at start.
    pub fn build(&self, cam: &CameraConfig) -> Result<BuiltCamera, CameraError> {
        let recorder = match &self.recording {
            None => None,
            Some(m) => {
                let settings = m.recorder_config(cam, &self.ingest).map_err(|problem| {
                    CameraError::Recording {
                        camera: cam.name.clone(),
                        problem,
                    }
                })?;
                Some(Recorder::new(
                    Arc::from(cam.name.as_str()),
                    settings,
                    self.recording_done(cam),
                ))
            }
        };
        let policy: DropPolicy = cam.drop_policy(&self.ingest);
        let (frames_tx, frames_rx, qstats) = queue::bounded(self.ingest.frame_queue, policy);
        let frames_tx = frames_tx.with_byte_budget(self.ingest.frame_queue_mb as usize * (1 << 20));
        let status = CameraStatus::new(Arc::from(cam.name.as_str()), qstats, self.clock.now());
        if let Ok(mut i) = status.inputs.lock() {
            *i = if cam.inputs.is_empty() {
                // one url: detected, and recorded (decoded frames re-encoded) when recordings are on
                let mut roles = vec!["detect".to_string()];
                if recorder.is_some() {
                    roles.push("record".into());
                }
                vec![roles]
            } else {
                cam.inputs.iter().map(|i| i.roles.clone()).collect()
            };
        }
        if cam.unusual.enabled {
            // until the events stage has scored a clip (a restored baseline says so at the first one)
            if let Ok(mut u) = status.unusual.lock() {
                *u = Some(crate::ingest::UnusualStatus {
                    score: None,
                    warming_up: true,
                });
            }
        }
        if let Some(store) = &self.switches {
            match store.load(&cam.name) {
                Ok(stored) => {
                    let s = stored.for_rules(&cam.rule_names());
                    // a rule the camera lost forgets its switch here as in the events stage
                    if s != stored {
                        if let Err(e) = store.save(&cam.name, &s) {
                            tracing::warn!(camera = %cam.name, error = %e, "could not store the switches");
                        }
                    }
                    if s != CameraSwitches::default() {
                        tracing::info!(camera = %cam.name, detect = s.detect, disarmed = ?s.disarmed, "restored switches");
                    }
                    status.detect.store(s.detect, Relaxed);
                    if let Ok(mut d) = status.disarmed.lock() {
                        *d = s.disarmed;
                    }
                }
                // a camera without its switches is better than no camera: it starts with detection on
                Err(e) => {
                    tracing::warn!(camera = %cam.name, error = %e, "could not read the stored switches")
                }
            }
        }
        let (tx, t, p) = (
            self.out.clone(),
            self.topics.clone(),
            self.providers.clone(),
        );
        let on_state: StateListener = Arc::new(move |st: &CameraStatus| {
            let info = st.info();
            tracing::info!(camera = %st.name, state = ?info.state, reason = info.reason.as_deref().unwrap_or(""), "camera state");
            let _ = tx.blocking_send(state_message(&t, st, &p));
        });
        Ok(BuiltCamera {
            camera: cam.clone(),
            status,
            stop: self.shutdown.child(),
            frames_tx,
            frames_rx,
            recorder,
            on_state,
            clips: self.clips.clone(),
            out: self.out.clone(),
            topics: self.topics.clone(),
            ingest: self.ingest.clone(),
            decode_threads: self.decode_threads,
            clock: self.clock.clone(),
            registry: self.registry.clone(),
            recorders: self.recorders.clone(),
            metrics: self.metrics.clone(),
        })
    }

    /// Announces a finished recording on `<prefix>/<camera>/recordings`.
    fn recording_done(&self, cam: &CameraConfig) -> recorder::Done {
        let (tx, topic) = (self.out.clone(), self.topics.recordings(&cam.name));
        Arc::new(move |r| {
            tracing::info!(camera = %r.camera, alert = %r.alert_id, path = %r.path, frames = r.frames, bytes = r.bytes, reason = r.reason, "recording finished");
            match serde_json::to_vec(&r) {
                Ok(p) => {
                    let _ = tx.blocking_send(OutMsg::summary(topic.clone(), p));
                }
                Err(e) => {
                    tracing::error!(error = %e, "could not serialise a recording message")
                }
            }
        })
    }
}

impl BuiltCamera {
    pub fn name(&self) -> &str {
        &self.camera.name
    }

    /// Registers the camera's recorder, resets its retained counts and spawns its threads; registered for `set`
    /// commands once they run.
    pub fn start(self) -> Result<RunningCamera, CameraError> {
        let name = self.camera.name.clone();
        if let (Some(r), Ok(mut map)) = (&self.recorder, self.recorders.lock()) {
            map.insert(name.clone(), r.clone());
        }
        // HA sensors and dashboards read counts from retained topics: start from 0, not a previous run's value
        for rule in self.camera.effective_rules() {
            let _ = self.out.try_send(OutMsg::retained(
                self.topics.count(&name, &rule.name()),
                b"0".to_vec(),
            ));
        }
        let unusual = self.camera.unusual.enabled.then_some("unusual");
        for p in self
            .camera
            .prompts
            .iter()
            .map(|p| p.text.as_str())
            .chain(unusual)
        {
            let _ = self.out.try_send(OutMsg::retained(
                self.topics.prompt_active(&name, p),
                b"OFF".to_vec(),
            ));
        }
        for m in switch_states(&self.topics, &self.status, &self.camera.rule_names()) {
            let _ = self.out.try_send(m);
        }
        let rules = self.camera.rule_names();
        let task = CameraTask {
            camera: self.camera,
            ingest: self.ingest,
            decode_threads: self.decode_threads,
            clock: self.clock,
            shutdown: self.stop.clone(),
            status: self.status.clone(),
            on_state: self.on_state,
            recorder: self.recorder,
            metrics: self.metrics,
        };
        let (a, b) = super::spawn_camera(task, self.frames_tx, self.frames_rx, self.clips)
            .map_err(|source| CameraError::Spawn {
                camera: name.clone(),
                source,
            })?;
        if let Ok(mut r) = self.registry.lock() {
            r.insert(
                name,
                CamHandle {
                    status: self.status.clone(),
                    rules,
                },
            );
        }
        Ok(RunningCamera {
            status: self.status,
            stop: self.stop,
            threads: vec![a, b],
        })
    }
}

impl RunningCamera {
    /// Both threads have ended (the source ended or gave up, or the camera was stopped).
    pub fn is_finished(&self) -> bool {
        self.threads.iter().all(|t| t.is_finished())
    }

    /// Asks the camera to stop; its assembler then sends the last clip and End. [`Self::join`] waits for that.
    pub fn stop(&self) {
        self.stop.trigger();
    }

    /// Blocks until both threads have ended: call from a blocking thread, as the assembler may be waiting for room
    /// in a full clip queue that only the workers empty.
    pub fn join(self) {
        for t in self.threads {
            let _ = t.join();
        }
    }
}
