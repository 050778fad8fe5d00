//! Ingest stage: one OS thread per camera runs its GStreamer pipeline (retrying live sources with backoff and
//! a watchdog), and one per camera cuts the sampled frames into clips for the shared clip queue.

pub mod camera;
pub mod decode;
pub mod frame;
pub mod motion;
pub mod pipeline;
pub mod recorder;
pub mod sampler;
pub mod source;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use crossbeam_channel::{Receiver, Sender};
use serde::Serialize;

use crate::clip::ClipAssembler;
use crate::clock::Clock;
use crate::config::{CameraConfig, IngestConfig};
use crate::infer::worker::ClipMsg;
use crate::queue::{PolicySender, QueueStats};
use crate::shutdown::Shutdown;
use frame::Frame;
use pipeline::{RunOutcome, SinkShared};
use source::SourceKind;

/// Lifecycle of a camera as published on `<prefix>/<camera>/state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CameraState {
    Starting,
    Running,
    Retrying,
    Ended,
    /// A file (or a source that is not retried) failed; `reason` says why. Final.
    Error,
}

#[derive(Debug, Clone, Serialize)]
pub struct StateInfo {
    pub state: CameraState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub since: DateTime<Utc>,
    /// Consecutive failed attempts (live sources).
    pub retries: u32,
}

/// Live status of one camera, shared between its thread and whoever reports it.
#[derive(Debug)]
pub struct CameraStatus {
    pub name: Arc<str>,
    info: Mutex<StateInfo>,
    pub decoded: Arc<AtomicU64>,
    pub sampled: Arc<AtomicU64>,
    pub queue: Arc<QueueStats>,
    pub started: Instant,
    /// Set when the camera ended because of an error (not EOS or shutdown).
    pub failed: std::sync::atomic::AtomicBool,
    /// Runtime switch (`{"detect": false}` on `<prefix>/<camera>/set`): clips are dropped before inference.
    pub detect: std::sync::atomic::AtomicBool,
    pub clips_skipped: AtomicU64,
    /// Rules disarmed by command (labels or prompt texts), reported in the camera state.
    pub disarmed: Mutex<std::collections::BTreeSet<String>>,
    /// The unusual-scene baseline's latest word, reported in the camera state; None: no `[cameras.unusual]`.
    pub unusual: Mutex<Option<UnusualStatus>>,
    /// The video decoder in use (GStreamer factory name, e.g. `avdec_h264`, `vah264dec`), once known.
    pub decoder: Mutex<Option<String>>,
    /// The camera's inputs by their roles (`["detect", "record"]`), in config order; set when it is built.
    pub inputs: Mutex<Vec<Vec<String>>>,
    /// What the record-only input turned out to be, once its stream is seen.
    pub record_input: Arc<Mutex<RecordInputStatus>>,
}

/// What the camera state says about a record-only input.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordInputStatus {
    /// `h264`, `h265`, or the caps name of a codec that cannot be recorded as it is (`video/x-vp8`).
    pub codec: Option<String>,
    /// Why its recordings are not written.
    pub error: Option<String>,
}

/// What the camera state says about the unusual-scene baseline (kept up to date by the events stage).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UnusualStatus {
    /// The latest clip's unusualness (0..1); None while the baseline warms up or before the first clip.
    pub score: Option<f32>,
    /// The baseline (the bucket of the latest clip's time of day) is still learning: no alert can fire.
    pub warming_up: bool,
}

impl CameraStatus {
    pub fn new(name: Arc<str>, queue: Arc<QueueStats>, now: DateTime<Utc>) -> Arc<Self> {
        Arc::new(Self {
            name,
            info: Mutex::new(StateInfo {
                state: CameraState::Starting,
                reason: None,
                since: now,
                retries: 0,
            }),
            decoded: Arc::default(),
            sampled: Arc::default(),
            queue,
            started: Instant::now(),
            failed: std::sync::atomic::AtomicBool::new(false),
            detect: std::sync::atomic::AtomicBool::new(true),
            clips_skipped: AtomicU64::new(0),
            disarmed: Mutex::new(Default::default()),
            unusual: Mutex::new(None),
            decoder: Mutex::new(None),
            inputs: Mutex::new(Vec::new()),
            record_input: Arc::default(),
        })
    }

    pub fn info(&self) -> StateInfo {
        match self.info.lock() {
            Ok(i) => i.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    fn set(&self, state: CameraState, reason: Option<String>, retries: u32, now: DateTime<Utc>) {
        if let Ok(mut i) = self.info.lock() {
            *i = StateInfo {
                state,
                reason,
                since: now,
                retries,
            };
        }
    }
}

/// Called whenever a camera's state changes (the supervisor publishes it).
pub type StateListener = Arc<dyn Fn(&CameraStatus) + Send + Sync>;

/// Everything a camera thread needs.
pub struct CameraTask {
    pub camera: CameraConfig,
    pub ingest: IngestConfig,
    /// Decoder threads (0 = the decoder's own choice).
    pub decode_threads: u32,
    pub clock: Arc<dyn Clock>,
    pub shutdown: Shutdown,
    pub status: Arc<CameraStatus>,
    pub on_state: StateListener,
    /// Alert recordings (None = off).
    pub recorder: Option<Arc<recorder::Recorder>>,
    /// Where the decoder's per-frame time goes (`scenewatch_stage_seconds{stage="decode"}`).
    pub metrics: Arc<crate::telemetry::Metrics>,
}

/// Exponential backoff with a cap and ±20 % jitter (so cameras that failed together do not retry in lockstep).
pub fn backoff_delay(attempt: u32, min: Duration, max: Duration, jitter_unit: f64) -> Duration {
    let base = min.as_secs_f64() * 2f64.powi(attempt.min(30) as i32);
    let capped = base.min(max.as_secs_f64());
    let jitter = 1.0 + 0.4 * (jitter_unit.clamp(0.0, 1.0) - 0.5);
    Duration::from_secs_f64((capped * jitter).min(max.as_secs_f64()).max(0.0))
}

/// Starts the camera thread and its clip-assembler thread.
pub fn spawn_camera(
    task: CameraTask,
    frames_tx: PolicySender<Frame>,
    frames_rx: Receiver<Frame>,
    clips: Sender<ClipMsg>,
) -> std::io::Result<(JoinHandle<()>, JoinHandle<()>)> {
    let name = task.camera.name.clone();
    let (clip_s, overlap_s) = (task.camera.clip_seconds, task.camera.clip_overlap_seconds);
    let status = task.status.clone();
    let assembler = std::thread::Builder::new()
        .name(format!("clips-{name}"))
        .spawn(move || assemble(status, frames_rx, clips, clip_s, overlap_s))?;
    let cam_thread = std::thread::Builder::new()
        .name(format!("cam-{name}"))
        .spawn(move || camera_loop(task, frames_tx))?;
    Ok((cam_thread, assembler))
}

fn assemble(
    status: Arc<CameraStatus>,
    frames: Receiver<Frame>,
    clips: Sender<ClipMsg>,
    clip_s: f64,
    overlap_s: f64,
) {
    let camera = status.name.clone();
    let mut asm = ClipAssembler::new(clip_s, overlap_s);
    for frame in frames.iter() {
        for clip in asm.push(frame) {
            if !status.detect.load(Ordering::Relaxed) {
                status.clips_skipped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if clips.send(ClipMsg::Clip(clip)).is_err() {
                return;
            }
        }
    }
    if let Some(clip) = asm.flush() {
        let _ = clips.send(ClipMsg::Clip(clip));
    }
    let _ = clips.send(ClipMsg::End { camera });
}

fn camera_loop(task: CameraTask, frames_tx: PolicySender<Frame>) {
    let CameraTask {
        camera,
        ingest,
        decode_threads,
        clock,
        shutdown,
        status,
        on_state,
        recorder,
        metrics,
    } = task;
    let set = |state, reason: Option<String>, retries| {
        status.set(state, reason, retries, clock.now());
        on_state(&status);
    };
    let kind = match SourceKind::parse(camera.detect_url()) {
        Ok(k) => k,
        Err(e) => {
            status.failed.store(true, Ordering::Relaxed);
            set(CameraState::Error, Some(format!("bad url: {e}")), 0);
            return;
        }
    };
    let record_kind = match camera.record_url().map(SourceKind::parse).transpose() {
        Ok(k) => k,
        Err(e) => {
            status.failed.store(true, Ordering::Relaxed);
            set(
                CameraState::Error,
                Some(format!("bad record input url: {e}")),
                0,
            );
            return;
        }
    };
    let live = kind.is_live();
    let notify: pipeline::Notify = {
        let (st, f) = (status.clone(), on_state.clone());
        Arc::new(move || f(&st))
    };
    // validated at load; the second guard ends the camera with the reason instead of a panic
    let timing = ingest
        .watchdog()
        .and_then(|w| ingest.retry_bounds().map(|r| (w, r)));
    let (limits, (rmin, rmax)) = match timing {
        Ok(t) => t,
        Err(p) => {
            status.failed.store(true, Ordering::Relaxed);
            set(CameraState::Error, Some(p.to_string()), 0);
            return;
        }
    };
    let name: Arc<str> = status.name.clone();
    let mut queue = Some(frames_tx);
    let mut attempt: u32 = 0;
    let mut next_seq = 0u64;
    let mut next_pts = Duration::ZERO;
    let started = Instant::now();
    loop {
        let Some(q) = queue.take() else { break };
        let base_pts = if attempt == 0 && next_seq == 0 {
            Duration::ZERO
        } else {
            // keep stream time monotonic across reconnects: continue from wall time elapsed
            next_pts.max(started.elapsed())
        };
        let shared = SinkShared::new(
            name.clone(),
            clock.clone(),
            camera.sample_fps,
            q,
            (next_seq, base_pts),
        )
        .with_totals(status.decoded.clone(), status.sampled.clone())
        .with_recorder(recorder.clone())
        .with_metrics(metrics.clone())
        .with_motion_gate(camera.motion())
        .with_decode(pipeline::DecodeOptions {
            skip: camera.decode_skip,
            analysis_height: camera.analysis_height,
            threads: decode_threads,
        })
        .with_record_status(status.record_input.clone(), notify.clone());
        let mut announce = || {
            let used = shared.decoder.lock().ok().and_then(|d| d.clone());
            if let (Some(d), Ok(mut s)) = (used, status.decoder.lock()) {
                *s = Some(d);
            }
            set(CameraState::Running, None, 0);
        };
        let outcome = match pipeline::build_with_record(
            &kind,
            record_kind.as_ref(),
            camera.realtime,
            &shared,
        ) {
            Ok(p) => {
                let o = pipeline::run(&p, &shared, limits, &shutdown, &mut announce);
                drop(p);
                o
            }
            Err(e) => RunOutcome::Failed(e),
        };
        queue = shared.take_queue();
        let produced = shared.sampled.load(Ordering::Relaxed);
        next_seq = shared.next_seq();
        next_pts = Duration::from_nanos(shared.last_pts_ns.load(Ordering::Relaxed))
            + Duration::from_millis(1);
        // a record input may have run ahead of the last sampled frame: the recorder's ring must stay in order
        if let Some(newest) = recorder.as_ref().and_then(|r| r.newest()) {
            next_pts = next_pts.max(newest + Duration::from_millis(1));
        }
        if produced > 0 {
            attempt = 0;
        }
        // GStreamer's debug text of an error, for the log only
        let mut detail = None;
        let reason = match outcome {
            RunOutcome::Stopped => {
                set(CameraState::Ended, Some("shutdown".into()), 0);
                break;
            }
            RunOutcome::Eos if !live && camera.looping && produced > 0 => {
                tracing::debug!(camera = %name, frames = produced, "end of file; looping");
                continue;
            }
            RunOutcome::Eos if !live && status.sampled.load(Ordering::Relaxed) > 0 => {
                tracing::info!(camera = %name, frames = produced, "end of stream");
                set(CameraState::Ended, Some("end of stream".into()), 0);
                break;
            }
            // a header without media data, or a file whose only streams are not video we can decode
            RunOutcome::Eos if !live => {
                "error: the file ended before any video frame was decoded (no media data)"
                    .to_string()
            }
            RunOutcome::Eos => "stream ended".to_string(),
            RunOutcome::Failed(e) => {
                detail = e.debug.clone();
                format!("error: {e}")
            }
            RunOutcome::StartTimeout(d, why) => start_timeout_reason(d, &why),
            RunOutcome::Stalled(d) => stall_reason(d),
        };
        // files are not retried: whatever went wrong is final
        if !live {
            tracing::error!(camera = %name, %reason, debug = detail.as_deref().unwrap_or(""), "camera failed");
            status.failed.store(true, Ordering::Relaxed);
            set(CameraState::Error, Some(reason), 0);
            break;
        }
        attempt += 1;
        let jitter = (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0) as f64)
            / 1e9;
        let delay = backoff_delay(attempt - 1, rmin, rmax, jitter);
        tracing::warn!(camera = %name, %reason, retry_in_s = delay.as_secs_f64(), attempt, "camera retrying");
        set(CameraState::Retrying, Some(reason), attempt);
        if shutdown.sleep(delay) {
            set(CameraState::Ended, Some("shutdown".into()), attempt);
            break;
        }
    }
    if let Some(r) = &recorder {
        r.close_all();
    }
    // dropping the queue's sender ends the assembler, which flushes its last clip downstream
    drop(queue);
}

fn start_timeout_reason(d: Duration, why: &str) -> String {
    format!(
        "error: no frame within {:.0} s of starting (ingest.startup_timeout_secs): {why}",
        d.as_secs_f64()
    )
}

fn stall_reason(d: Duration) -> String {
    format!(
        "error: no frame decoded for {:.0} s while playing (ingest.watchdog_secs)",
        d.as_secs_f64()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let (min, max) = (Duration::from_secs(1), Duration::from_secs(30));
        let d: Vec<f64> = (0..8)
            .map(|a| backoff_delay(a, min, max, 0.5).as_secs_f64())
            .collect();
        assert_eq!(d, vec![1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]);
    }

    #[test]
    fn jitter_stays_within_twenty_percent_and_under_the_cap() {
        let (min, max) = (Duration::from_secs(1), Duration::from_secs(30));
        assert!((backoff_delay(2, min, max, 0.0).as_secs_f64() - 3.2).abs() < 1e-9);
        assert!((backoff_delay(2, min, max, 1.0).as_secs_f64() - 4.8).abs() < 1e-9);
        assert!(backoff_delay(10, min, max, 1.0) <= max);
    }
}
