//! The inference workers: dedicated OS threads that each own a copy of the models, take clips from the shared
//! bounded clip queue (one camera's clips one at a time, in order) and hand results to the async events stage.
//! They end when the clip queue closes (shutdown drains through them). [`Workers::build`] loads every worker's
//! models and makes the clip queue without starting a thread; [`Workers::spawn`] starts them.
//!
//! Which worker runs what is decided by a `Board` (plain bookkeeping, unit-tested without threads): a worker
//! never waits for another worker's camera. A message whose camera is busy is parked, and the worker that is
//! running that camera takes it next. So a slow clip holds up only its own camera, and time spent blocked is not
//! reported as idle time (the headroom metric).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use tokio::sync::mpsc;

use serde_json::json;

use super::runtime::InferError;
use super::{CameraSetup, Carried, ClipResult, Language, ModelReport, Models};
use crate::clip::Clip;
use crate::config::Config;
use crate::telemetry::Metrics;

/// Messages on the clip queue.
#[derive(Debug)]
pub enum ClipMsg {
    Clip(Clip),
    /// The camera's stream ended (EOS, error or shutdown); sent after its last clip.
    End {
        camera: Arc<str>,
    },
    /// A reload changed (Some) or removed (None) a camera; travels behind the old camera's last clip and `End`,
    /// and ahead of the new camera's first clip, so `setup` (its prompts and pose need) applies exactly from there.
    Configure {
        camera: String,
        config: Option<Box<crate::config::CameraConfig>>,
        setup: CameraSetup,
    },
}

/// Messages from inference to events, in clip order per camera.
#[derive(Debug)]
pub enum InferOut {
    Result(Box<ClipResult>),
    CameraEnded {
        camera: Arc<str>,
    },
    Configure {
        camera: String,
        config: Option<Box<crate::config::CameraConfig>>,
    },
}

/// What a worker runs on a clip: the models (a stand-in in the unit tests of the queueing).
pub trait RunClip {
    fn run_clip(&mut self, clip: &Clip, setup: &CameraSetup) -> Result<ClipResult, InferError>;
}

impl RunClip for Models {
    fn run_clip(&mut self, clip: &Clip, setup: &CameraSetup) -> Result<ClipResult, InferError> {
        self.infer_clip_with(clip, setup)
    }
}

/// A camera's state between its messages: what its next still clip repeats (motion gate) and what to run on
/// its clips. Only the worker running the camera's message has it.
#[derive(Debug, Default)]
struct CameraState {
    carried: Option<Carried>,
    setup: CameraSetup,
}

/// One camera on the board.
#[derive(Debug, Default)]
struct Entry {
    /// Some: no worker runs this camera. None: a worker does (and holds the state).
    free: Option<CameraState>,
    /// Messages that arrived while a worker ran the camera, in queue order. Empty whenever the camera is free.
    parked: VecDeque<ClipMsg>,
}

/// Which cameras workers are running, and what waits for them. No waiting happens here: callers hold the lock
/// for a few map operations.
#[derive(Debug, Default)]
struct Board {
    cameras: HashMap<Arc<str>, Entry>,
    /// Messages parked over all cameras (bounded by the caller: they are out of the clip queue but still held).
    parked: usize,
    /// Total time takers were blocked because the parked messages were at their bound, and since when the
    /// current block lasts: that time is not idle (the work exists, per-camera order holds it back).
    blocked: Duration,
    blocked_since: Option<Instant>,
    /// A worker stopped (the events stage is gone): the cameras it held never come free, so nobody waits for them.
    closed: bool,
}

/// A message to run now, with its camera's state.
type Work = (ClipMsg, CameraState);

impl Board {
    fn with_setups(setups: HashMap<String, CameraSetup>) -> Self {
        let cameras = setups
            .into_iter()
            .map(|(name, setup)| {
                let free = Some(CameraState {
                    carried: None,
                    setup,
                });
                (
                    Arc::from(name.as_str()),
                    Entry {
                        free,
                        ..Default::default()
                    },
                )
            })
            .collect();
        Self {
            cameras,
            ..Default::default()
        }
    }

    /// A message taken from the queue: to run now when its camera is free, or parked behind the message a
    /// worker is running for the camera (None). Called in queue order, so parked messages keep it.
    fn arrive(&mut self, msg: ClipMsg) -> Option<Work> {
        let entry = self
            .cameras
            .entry(camera_of(&msg))
            .or_insert_with(|| Entry {
                free: Some(CameraState::default()),
                ..Default::default()
            });
        match entry.free.take() {
            Some(state) => Some((msg, state)),
            None => {
                entry.parked.push_back(msg);
                self.parked += 1;
                None
            }
        }
    }

    /// A worker is done with a message of `camera` (its result is sent): the camera's next parked message for
    /// the same worker to run, or None and the camera is free again. `forget`: the camera was removed.
    fn finish(&mut self, camera: &str, state: CameraState, forget: bool) -> Option<Work> {
        let entry = self.cameras.get_mut(camera)?;
        if let Some(next) = entry.parked.pop_front() {
            self.parked -= 1;
            return Some((next, state));
        }
        if forget {
            self.cameras.remove(camera);
        } else {
            entry.free = Some(state);
        }
        None
    }

    /// Blocked time so far (the running block included).
    fn blocked(&self) -> Duration {
        self.blocked + self.blocked_since.map_or(Duration::ZERO, |t| t.elapsed())
    }
}

/// What the workers share.
struct Shared {
    clips: Receiver<ClipMsg>,
    /// Held while taking a message from the queue and placing it on the board, so a camera's messages are placed
    /// (run or parked) in queue order. Never held while a model runs or while waiting for a camera.
    take: Mutex<()>,
    board: Mutex<Board>,
    /// Signalled when a parked message is taken off the board (room to park again).
    room: Condvar,
    /// The most messages parked at once: the clip queue's bound is the back-pressure on cameras, and parked
    /// messages are out of it, so they are bounded too (at the queue's capacity: at most twice the clips held).
    max_parked: usize,
}

/// A poisoned lock only means another worker panicked; the data it guards is still whole.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Why the inference stage could not be built.
#[derive(Debug, thiserror::Error)]
pub enum WorkersError {
    #[error(transparent)]
    Infer(#[from] InferError),
    #[error("{0}")]
    Start(String),
}

/// The inference stage, built and not started: every worker's models loaded, each camera's start-up setup, and
/// the bounded clip queue the cameras feed.
pub struct Workers {
    models: Vec<Models>,
    /// The shared detector batcher, started with the workers (`inference.detector_batch` > 1).
    batcher: Option<super::batcher::Batcher>,
    setups: HashMap<String, CameraSetup>,
    /// Kept only to hand out clones: dropped when the workers start, so the queue closes with its last camera.
    clips: crossbeam_channel::Sender<ClipMsg>,
    queue: Receiver<ClipMsg>,
    /// The first worker's models, as loaded (for `<prefix>/info`, `/metrics` and the end-of-run log).
    pub reports: Vec<ModelReport>,
    /// The first worker's language head: reloads make camera setups with it (or open one when a reload brings
    /// the first prompts).
    pub language: Arc<Language>,
}

impl Workers {
    /// Loads the models on a blocking thread: a missing or wrong model is a start-up error, before any camera is
    /// opened.
    pub async fn build(cfg: &Config) -> Result<Self, WorkersError> {
        let load_cfg = cfg.clone();
        let plan = cfg.inference_plan();
        let (models, batcher) =
            tokio::task::spawn_blocking(move || Models::load_workers(&load_cfg))
                .await
                .map_err(|e| WorkersError::Start(format!("model loading panicked: {e}")))??;
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
        let language = Arc::new(
            models
                .first()
                .map(Models::language)
                .ok_or_else(|| WorkersError::Start("no inference worker configured".into()))?,
        );
        let setups = models
            .first()
            .map(Models::camera_setups)
            .unwrap_or_default();
        let (clips, queue) = crossbeam_channel::bounded::<ClipMsg>(cfg.ingest.clip_queue);
        Ok(Self {
            models,
            batcher,
            setups,
            clips,
            queue,
            reports,
            language,
        })
    }

    /// The loaded detector's per-label score levels (its model card), for the rules that do not set their own.
    pub fn detector_thresholds(&self) -> crate::labels::Thresholds {
        self.models
            .first()
            .map(|m| m.detector.card().thresholds())
            .unwrap_or_default()
    }

    /// The detector's model card as `<prefix>/info` shows it: the card file, its format, how it was calibrated,
    /// and its per-label levels (`alert`, `track`) with the fallback for labels it does not list.
    pub fn detector_card(&self) -> serde_json::Value {
        self.models
            .first()
            .map(|m| {
                let card = m.detector.card();
                let t = card.thresholds();
                // as the card writes them (0.35, not the f32's 0.3499999940395355)
                let level = |l: &crate::labels::LabelThresholds| {
                    let r = |x: f32| (f64::from(x) * 1e4).round() / 1e4;
                    json!({"alert": r(l.alert), "track": r(l.track)})
                };
                json!({
                    "card": card.path.display().to_string(),
                    "format": card.format.as_str(),
                    "calibration": card.calibration_method(),
                    "levels": t.per_label.iter().map(|(k, v)| (k.clone(), level(v))).collect::<serde_json::Map<_, _>>(),
                    "fallback": level(&t.fallback),
                })
            })
            .unwrap_or(serde_json::Value::Null)
    }

    /// The execution provider of each model, by name (for camera state messages).
    pub fn providers(&self) -> serde_json::Value {
        serde_json::Value::Object(
            self.reports
                .iter()
                .map(|r| (r.name.to_string(), json!(r.provider)))
                .collect(),
        )
    }

    /// A camera's end of the clip queue.
    pub fn clips(&self) -> crossbeam_channel::Sender<ClipMsg> {
        self.clips.clone()
    }

    /// Starts the worker threads; the handle's thread ends when they all have (the clip queue closed).
    pub fn spawn(
        self,
        out: mpsc::Sender<InferOut>,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<JoinHandle<()>> {
        let batcher = self.batcher.map(|b| b.spawn(metrics.clone())).transpose()?;
        let workers = spawn(self.models, self.setups, self.queue, out, metrics)?;
        let Some(batcher) = batcher else {
            return Ok(workers);
        };
        // the batcher ends once the workers (its clients) have drained: the handle ends after both
        std::thread::Builder::new()
            .name("infer-drain".into())
            .spawn(move || {
                let _ = workers.join();
                let _ = batcher.join();
            })
    }
}

/// Starts one inference worker per `Models` (the config's plan). Any idle worker takes the next message from the
/// shared clip queue, so the load spreads evenly however the cameras add up. A camera's messages still run one at
/// a time, in order (see `Board`), and a result is sent on before the camera's next message runs. `setups`: each
/// camera's start-up setup (cameras not in it start with none, until a `Configure` brings one). The handle ends
/// when every worker has drained (the clip queue closed).
pub fn spawn<M: RunClip + Send + 'static>(
    models: Vec<M>,
    setups: HashMap<String, CameraSetup>,
    clips: Receiver<ClipMsg>,
    out: mpsc::Sender<InferOut>,
    metrics: Arc<Metrics>,
) -> std::io::Result<JoinHandle<()>> {
    if models.is_empty() {
        return Err(std::io::Error::other("no inference worker configured"));
    }
    metrics.inference_workers.set(models.len() as u64);
    let max_parked = clips.capacity().unwrap_or(models.len()).max(1);
    let shared = Arc::new(Shared {
        clips,
        take: Mutex::new(()),
        board: Mutex::new(Board::with_setups(setups)),
        room: Condvar::new(),
        max_parked,
    });
    let mut workers = Vec::with_capacity(models.len());
    for (i, m) in models.into_iter().enumerate() {
        let (shared, out, metrics) = (shared.clone(), out.clone(), metrics.clone());
        workers.push(
            std::thread::Builder::new()
                .name(format!("infer-{i}"))
                .spawn(move || supervised(i, m, &shared, &out, &metrics))?,
        );
    }
    std::thread::Builder::new()
        .name("infer-join".into())
        .spawn(move || {
            for w in workers {
                let _ = w.join();
            }
            tracing::debug!("clip queue closed; inference workers done");
        })
}

fn camera_of(msg: &ClipMsg) -> Arc<str> {
    match msg {
        ClipMsg::Clip(c) => c.camera.clone(),
        ClipMsg::End { camera } => camera.clone(),
        ClipMsg::Configure { camera, .. } => Arc::from(camera.as_str()),
    }
}

/// Takes messages from the queue until one can run now (its camera is free); None when the queue has closed.
fn take(shared: &Shared, metrics: &Metrics) -> Option<Work> {
    let _turn = lock(&shared.take);
    loop {
        {
            let mut board = lock(&shared.board);
            if board.closed {
                return None;
            }
            if board.parked >= shared.max_parked {
                // whatever comes next might have to be parked too: wait until a running camera takes one of its
                // parked messages. Other takers wait on `take` meanwhile; workers running cameras go on.
                board.blocked_since = Some(Instant::now());
                while board.parked >= shared.max_parked && !board.closed {
                    board = shared.room.wait(board).unwrap_or_else(|p| p.into_inner());
                }
                if let Some(t) = board.blocked_since.take() {
                    board.blocked += t.elapsed();
                }
            }
        }
        let msg = shared.clips.recv().ok()?;
        let mut board = lock(&shared.board);
        metrics
            .clip_queue_depth
            .set((shared.clips.len() + board.parked) as u64);
        if let Some(work) = board.arrive(msg) {
            return Some(work);
        }
    }
}

/// What a panic said (its message when it has one).
pub(super) fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown cause".into())
}

/// Runs one worker's loop and, should it panic, says so: logged, counted out of `scenewatch_inference_workers`
/// and listed in `Metrics::workers_failed`, which turns `/healthz` unhealthy. The other workers go on; the camera
/// whose clip panicked may wait for ever (its messages stay parked behind the lost one), so a restart is due.
fn supervised<M: RunClip>(
    i: usize,
    models: M,
    shared: &Shared,
    out: &mpsc::Sender<InferOut>,
    metrics: &Metrics,
) {
    let run = std::panic::AssertUnwindSafe(|| work(models, shared, out, metrics));
    if let Err(payload) = std::panic::catch_unwind(run) {
        let why = panic_text(payload.as_ref());
        tracing::error!(worker = i, panic = %why, "an inference worker panicked; /healthz reports unhealthy until a restart");
        metrics
            .inference_workers
            .set(metrics.inference_workers.get().saturating_sub(1));
        if let Ok(mut f) = metrics.workers_failed.lock() {
            f.push(format!("inference worker {i} panicked: {why}"));
        }
    }
}

/// One worker's loop: a message whose camera is free, the models, the result out, then the camera's parked
/// messages if any; until the queue closes.
fn work<M: RunClip>(
    mut models: M,
    shared: &Shared,
    out: &mpsc::Sender<InferOut>,
    metrics: &Metrics,
) {
    loop {
        let waiting = Instant::now();
        let blocked_before = lock(&shared.board).blocked();
        let Some((mut msg, mut state)) = take(shared, metrics) else {
            break;
        };
        // idle = waiting for a message that could run; time the takers were blocked by parked work is not idle
        let blocked = lock(&shared.board).blocked().saturating_sub(blocked_before);
        metrics
            .inference_idle_us
            .add(waiting.elapsed().saturating_sub(blocked).as_micros() as u64);
        loop {
            let camera = camera_of(&msg);
            let (forward, forget) = run_one(&mut models, msg, &mut state, metrics);
            // sent before the camera is let go: the camera's next message cannot overtake this one
            if let Some(f) = forward {
                if out.blocking_send(f).is_err() {
                    tracing::warn!("events stage is gone; inference worker stops");
                    lock(&shared.board).closed = true;
                    shared.room.notify_all();
                    return;
                }
            }
            let next = lock(&shared.board).finish(&camera, state, forget);
            match next {
                Some((m, s)) => {
                    shared.room.notify_one();
                    (msg, state) = (m, s);
                }
                None => break,
            }
        }
    }
}

/// Runs one message of a camera: what to send to the events stage (None: a failed clip, skipped), and whether
/// the camera is gone (removed by a reload).
fn run_one<M: RunClip>(
    models: &mut M,
    msg: ClipMsg,
    state: &mut CameraState,
    metrics: &Metrics,
) -> (Option<InferOut>, bool) {
    match msg {
        ClipMsg::Clip(clip) => {
            // motion gate: nothing moved since this camera's last inferred clip
            if let Some(c) = state.carried.as_ref().filter(|_| clip.still()) {
                metrics.clips_gated.inc();
                return (Some(InferOut::Result(Box::new(c.result_for(&clip)))), false);
            }
            // how long the complete clip waited for a worker
            if let Some(last) = clip.frames.last() {
                let waited = (chrono::Utc::now() - last.wall)
                    .num_microseconds()
                    .unwrap_or(0);
                metrics
                    .stages
                    .queue_wait
                    .observe(waited.max(0) as f64 / 1e6);
            }
            match models.run_clip(&clip, &state.setup) {
                Ok(result) => {
                    metrics.record_clip(&result);
                    if let Some(c) = Carried::from_result(&result) {
                        state.carried = Some(c);
                    }
                    (Some(InferOut::Result(Box::new(result))), false)
                }
                Err(e) => {
                    metrics.inference_errors.inc();
                    tracing::error!(camera = %clip.camera, clip = clip.index, error = %e, "inference failed; clip skipped");
                    (None, false)
                }
            }
        }
        ClipMsg::End { camera } => {
            state.carried = None;
            (Some(InferOut::CameraEnded { camera }), false)
        }
        ClipMsg::Configure {
            camera,
            config,
            setup,
        } => {
            // the camera's next clips run with its new prompts and pose need; nothing carries over
            *state = CameraState {
                carried: None,
                setup,
            };
            let gone = config.is_none();
            (Some(InferOut::Configure { camera, config }), gone)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the stand-in models return: the clip's identity and nothing found.
    fn empty_result(clip: &Clip) -> ClipResult {
        ClipResult {
            camera: clip.camera.clone(),
            clip_index: clip.index,
            start: clip.start,
            end: clip.end,
            frames: Vec::new(),
            prompts: None,
            classifiers: Vec::new(),
            timings: Default::default(),
        }
    }

    /// Takes a varying time per clip, like models on clips with more or fewer people.
    struct Slow(u64, Arc<std::sync::atomic::AtomicU64>);

    impl RunClip for Slow {
        fn run_clip(&mut self, clip: &Clip, _: &CameraSetup) -> Result<ClipResult, InferError> {
            self.1.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            std::thread::sleep(Duration::from_micros(200 + (self.0 >> 33) % 3000));
            if clip.index == 7 && &*clip.camera == "c1" {
                return Err(InferError::Data {
                    what: "test",
                    message: "a failed clip is skipped".into(),
                });
            }
            Ok(empty_result(clip))
        }
    }

    #[test]
    fn every_camera_keeps_its_order_across_workers_and_the_load_is_shared() {
        let (tx, rx) = crossbeam_channel::bounded(4);
        let (out_tx, mut out_rx) = mpsc::channel(8);
        let metrics = Arc::new(Metrics::default());
        let ran: Vec<Arc<std::sync::atomic::AtomicU64>> = (0..3).map(|_| Arc::default()).collect();
        let workers = (0..3).map(|i| Slow(i as u64 + 1, ran[i].clone())).collect();
        let handle = spawn(workers, HashMap::new(), rx, out_tx, metrics.clone()).expect("spawn");
        let cameras: Vec<Arc<str>> = (0..5)
            .map(|i| Arc::from(format!("c{i}").as_str()))
            .collect();
        let feeder = std::thread::spawn(move || {
            // in runs of 4 clips per camera, so workers often hold clips of the same camera at once
            for run in 0..5u64 {
                for cam in &cameras {
                    for index in run * 4..run * 4 + 4 {
                        let clip = Clip {
                            camera: cam.clone(),
                            index,
                            start: Duration::from_secs(4 * index),
                            end: Duration::from_secs(4 * index + 4),
                            frames: Vec::new(),
                        };
                        tx.send(ClipMsg::Clip(clip)).expect("send");
                    }
                }
            }
            for cam in cameras {
                tx.send(ClipMsg::End { camera: cam }).expect("send");
            }
        });
        let mut seen: HashMap<String, Vec<u64>> = HashMap::new();
        let mut ended: Vec<String> = Vec::new();
        while let Some(msg) = out_rx.blocking_recv() {
            match msg {
                InferOut::Result(r) => {
                    assert!(!ended.contains(&r.camera.to_string()), "a result after End");
                    seen.entry(r.camera.to_string())
                        .or_default()
                        .push(r.clip_index)
                }
                InferOut::CameraEnded { camera } => ended.push(camera.to_string()),
                InferOut::Configure { .. } => unreachable!("none sent"),
            }
        }
        feeder.join().expect("feeder");
        handle.join().expect("workers");
        assert_eq!(
            ended.len(),
            5,
            "every End arrives, after the camera's clips"
        );
        for (cam, got) in &seen {
            let want: Vec<u64> = (0..20).filter(|i| !(cam == "c1" && *i == 7)).collect();
            assert_eq!(got, &want, "{cam}: in order, none lost but the failed one");
        }
        assert_eq!(metrics.inference_workers.get(), 3);
        let ran: Vec<u64> = ran
            .iter()
            .map(|r| r.load(std::sync::atomic::Ordering::Relaxed))
            .collect();
        assert_eq!(ran.iter().sum::<u64>(), 100);
        assert!(
            ran.iter().all(|n| *n >= 10),
            "every worker took a share: {ran:?}"
        );
        assert_eq!(metrics.inference_errors.get(), 1);
    }

    /// Panics on clip 3 of camera "bad", like a model bug on one odd input.
    struct Fragile;

    impl RunClip for Fragile {
        fn run_clip(&mut self, clip: &Clip, _: &CameraSetup) -> Result<ClipResult, InferError> {
            if &*clip.camera == "bad" && clip.index == 3 {
                panic!("a model bug on clip 3");
            }
            Ok(empty_result(clip))
        }
    }

    #[test]
    fn a_panicking_worker_is_reported_and_the_others_go_on() {
        let (tx, rx) = crossbeam_channel::bounded(4);
        let (out_tx, mut out_rx) = mpsc::channel(64);
        let metrics = Arc::new(Metrics::default());
        let handle = spawn(
            vec![Fragile, Fragile],
            HashMap::new(),
            rx,
            out_tx,
            metrics.clone(),
        )
        .expect("spawn");
        assert!(metrics.workers_failed.lock().expect("lock").is_empty());
        for index in 0..5 {
            tx.send(ClipMsg::Clip(clip("bad", index))).expect("send");
        }
        let mut good = 0;
        // the other worker still runs another camera's clips after the panic
        for index in 0..10 {
            tx.send(ClipMsg::Clip(clip("good", index))).expect("send");
        }
        while good < 10 {
            match out_rx.blocking_recv() {
                Some(InferOut::Result(r)) if &*r.camera == "good" => good += 1,
                Some(_) => {}
                None => panic!("inference ended early"),
            }
        }
        // the panic may come after the good camera's last clip: wait for it (bounded)
        let deadline = Instant::now() + Duration::from_secs(10);
        let failed = loop {
            let f = metrics.workers_failed.lock().expect("lock").clone();
            if !f.is_empty() || Instant::now() > deadline {
                break f;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        assert_eq!(failed.len(), 1, "{failed:?}");
        assert!(failed[0].contains("a model bug on clip 3"), "{failed:?}");
        assert_eq!(metrics.inference_workers.get(), 1);
        drop(tx);
        handle.join().expect("workers");
    }

    fn clip(camera: &str, index: u64) -> Clip {
        Clip {
            camera: Arc::from(camera),
            index,
            start: Duration::from_secs(4 * index),
            end: Duration::from_secs(4 * index + 4),
            frames: Vec::new(),
        }
    }

    fn index_of(w: &Work) -> (String, u64) {
        match &w.0 {
            ClipMsg::Clip(c) => (c.camera.to_string(), c.index),
            other => panic!("not a clip: {other:?}"),
        }
    }

    #[test]
    fn the_board_parks_a_busy_cameras_messages_in_order_for_its_worker() {
        let mut b = Board::default();
        let x0 = b.arrive(ClipMsg::Clip(clip("x", 0))).expect("x is free");
        assert!(
            b.arrive(ClipMsg::Clip(clip("x", 1))).is_none(),
            "x is busy: parked"
        );
        assert!(b.arrive(ClipMsg::Clip(clip("x", 2))).is_none());
        let y0 = b
            .arrive(ClipMsg::Clip(clip("y", 0)))
            .expect("y is free though x is busy");
        assert_eq!(b.parked, 2);
        // the worker that ran x0 takes x's parked messages, in queue order
        let x1 = b.finish("x", x0.1, false).expect("x1 next");
        assert_eq!(index_of(&x1), ("x".into(), 1));
        let x2 = b.finish("x", x1.1, false).expect("x2 next");
        assert_eq!(index_of(&x2), ("x".into(), 2));
        assert_eq!(b.parked, 0);
        assert!(b.finish("x", x2.1, false).is_none(), "x is free again");
        assert!(b.finish("y", y0.1, false).is_none());
        assert!(b.arrive(ClipMsg::Clip(clip("x", 3))).is_some());
        // a removed camera is forgotten once its last message is done
        let gone = b
            .arrive(ClipMsg::Configure {
                camera: "y".into(),
                config: None,
                setup: CameraSetup::default(),
            })
            .expect("y is free");
        assert!(b.finish("y", gone.1, true).is_none());
        assert!(!b.cameras.contains_key("y"));
    }

    /// Clip 0 of camera `x` takes until `release` says so (or 5 s); the rest are instant.
    #[derive(Clone)]
    struct Gate(crossbeam_channel::Receiver<()>);

    impl RunClip for Gate {
        fn run_clip(&mut self, clip: &Clip, _: &CameraSetup) -> Result<ClipResult, InferError> {
            if &*clip.camera == "x" && clip.index == 0 {
                let _ = self.0.recv_timeout(Duration::from_secs(5));
            }
            Ok(empty_result(clip))
        }
    }

    #[test]
    fn a_busy_camera_does_not_stall_another_worker() {
        let (tx, rx) = crossbeam_channel::bounded(4);
        let (out_tx, mut out_rx) = mpsc::channel(8);
        let (release_tx, release_rx) = crossbeam_channel::bounded(1);
        let workers = vec![Gate(release_rx.clone()), Gate(release_rx)];
        let handle = spawn(workers, HashMap::new(), rx, out_tx, Arc::default()).expect("spawn");
        // x1 comes before y0: the second worker meets x busy with x0 and must go on to y0
        for (cam, i) in [("x", 0), ("x", 1), ("y", 0)] {
            tx.send(ClipMsg::Clip(clip(cam, i))).expect("send");
        }
        drop(tx);
        let t0 = Instant::now();
        let mut order = Vec::new();
        while let Some(msg) = out_rx.blocking_recv() {
            if let InferOut::Result(r) = msg {
                if &*r.camera == "y" {
                    // only now may x0 finish: y0 ran while x0 was still running
                    let _ = release_tx.send(());
                }
                order.push((r.camera.to_string(), r.clip_index));
            }
        }
        handle.join().expect("workers");
        assert_eq!(
            order,
            vec![("y".into(), 0), ("x".into(), 0), ("x".into(), 1)],
            "y0 ran while x0 held x; x kept its order"
        );
        assert!(
            t0.elapsed() < Duration::from_secs(4),
            "x0 was released by y0's result, not by its timeout"
        );
    }

    /// Clip 0 of camera `x` takes 1.5 s; the rest are instant.
    struct SlowFirst;

    impl RunClip for SlowFirst {
        fn run_clip(&mut self, clip: &Clip, _: &CameraSetup) -> Result<ClipResult, InferError> {
            if &*clip.camera == "x" && clip.index == 0 {
                std::thread::sleep(Duration::from_millis(1500));
            }
            Gate(crossbeam_channel::never()).run_clip(clip, &CameraSetup::default())
        }
    }

    #[test]
    fn time_blocked_behind_a_busy_camera_is_not_idle_time() {
        // room for one queued and one parked message: the second worker parks x1, then must wait for x0
        let (tx, rx) = crossbeam_channel::bounded(1);
        let (out_tx, mut out_rx) = mpsc::channel(8);
        let metrics = Arc::new(Metrics::default());
        let handle = spawn(
            vec![SlowFirst, SlowFirst],
            HashMap::new(),
            rx,
            out_tx,
            metrics.clone(),
        )
        .expect("spawn");
        let feeder = std::thread::spawn(move || {
            for (cam, i) in [("x", 0), ("x", 1), ("x", 2), ("y", 0)] {
                tx.send(ClipMsg::Clip(clip(cam, i))).expect("send");
            }
        });
        let mut got: HashMap<String, Vec<u64>> = HashMap::new();
        while let Some(msg) = out_rx.blocking_recv() {
            if let InferOut::Result(r) = msg {
                got.entry(r.camera.to_string())
                    .or_default()
                    .push(r.clip_index);
            }
        }
        feeder.join().expect("feeder");
        handle.join().expect("workers");
        assert_eq!(got["x"], vec![0, 1, 2]);
        assert_eq!(got["y"], vec![0]);
        // the 1.5 s the second worker could not take anything (x0 running, x1 parked) is not headroom
        let idle = Duration::from_micros(metrics.inference_idle_us.get());
        assert!(
            idle < Duration::from_millis(600),
            "idle {idle:?} counts the wait behind x0"
        );
    }
}
