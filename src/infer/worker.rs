//! The inference workers: dedicated OS threads that each own a copy of the models, take clips from the shared
//! bounded clip queue (one camera's clips one at a time, in order) and hand results to the async events stage.
//! They end when the clip queue closes (shutdown drains through them).

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crossbeam_channel::Receiver;
use tokio::sync::mpsc;

use std::collections::HashMap;

use super::runtime::InferError;
use super::{Carried, ClipResult, Models};
use crate::clip::Clip;
use crate::telemetry::Metrics;

/// Messages on the clip queue.
#[derive(Debug)]
pub enum ClipMsg {
    Clip(Clip),
    /// The camera's stream ended (EOS, error or shutdown); sent after its last clip.
    End {
        camera: Arc<str>,
    },
    /// A reload changed (Some) or removed (None) a camera; travels behind the old camera's last clip and `End`.
    Configure {
        camera: String,
        config: Option<Box<crate::config::CameraConfig>>,
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
    fn run_clip(&mut self, clip: &Clip) -> Result<ClipResult, InferError>;
}

impl RunClip for Models {
    fn run_clip(&mut self, clip: &Clip) -> Result<ClipResult, InferError> {
        self.infer_clip(clip)
    }
}

/// Per camera: held by the worker running one of its messages, so a camera's messages run one at a time and in
/// queue order; it keeps what the camera's next still clip repeats (motion gate).
type Slot = Arc<Mutex<Option<Carried>>>;

/// What the workers share: the order in which they take messages, and each camera's slot.
struct Shared {
    clips: Receiver<ClipMsg>,
    /// Held while taking a message and then its camera's slot, so slots are taken in queue order.
    take: Mutex<()>,
    slots: Mutex<HashMap<Arc<str>, Slot>>,
}

/// Starts one inference worker per `Models` (the config's plan). Any idle worker takes the next message from the
/// shared clip queue, so the load spreads evenly however the cameras add up. A camera's messages still run one at
/// a time, in order: a worker takes its message and then the camera's slot under one lock, and sends the result on
/// before letting the slot go. The handle ends when every worker has drained (the clip queue closed).
pub fn spawn<M: RunClip + Send + 'static>(
    models: Vec<M>,
    clips: Receiver<ClipMsg>,
    out: mpsc::Sender<InferOut>,
    metrics: Arc<Metrics>,
) -> std::io::Result<JoinHandle<()>> {
    if models.is_empty() {
        return Err(std::io::Error::other("no inference worker configured"));
    }
    metrics.inference_workers.set(models.len() as u64);
    let shared = Arc::new(Shared {
        clips,
        take: Mutex::new(()),
        slots: Mutex::new(HashMap::new()),
    });
    let mut workers = Vec::with_capacity(models.len());
    for (i, m) in models.into_iter().enumerate() {
        let (shared, out, metrics) = (shared.clone(), out.clone(), metrics.clone());
        workers.push(
            std::thread::Builder::new()
                .name(format!("infer-{i}"))
                .spawn(move || work(m, &shared, &out, &metrics))?,
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

/// One worker's loop: the next message, its camera's slot, the models, the result out; until the queue closes.
fn work<M: RunClip>(
    mut models: M,
    shared: &Shared,
    out: &mpsc::Sender<InferOut>,
    metrics: &Metrics,
) {
    loop {
        let waiting = std::time::Instant::now();
        // a poisoned lock only means another worker panicked; the data it guards is still whole
        let turn = shared.take.lock().unwrap_or_else(|p| p.into_inner());
        let Ok(msg) = shared.clips.recv() else { break };
        metrics.clip_queue_depth.set(shared.clips.len() as u64);
        let slot: Slot = shared
            .slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(camera_of(&msg))
            .or_default()
            .clone();
        // still holding `turn`, so slots are taken in queue order; this waits only while another worker runs the
        // camera's previous message
        let mut carried = slot.lock().unwrap_or_else(|p| p.into_inner());
        drop(turn);
        metrics
            .inference_idle_us
            .add(waiting.elapsed().as_micros() as u64);
        let forward = match msg {
            ClipMsg::Clip(clip) => {
                // motion gate: nothing moved since this camera's last inferred clip
                if let Some(c) = carried.as_ref().filter(|_| clip.still()) {
                    metrics.clips_gated.inc();
                    InferOut::Result(Box::new(c.result_for(&clip)))
                } else {
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
                    match models.run_clip(&clip) {
                        Ok(result) => {
                            metrics.record_clip(&result);
                            if let Some(c) = Carried::from_result(&result) {
                                *carried = Some(c);
                            }
                            InferOut::Result(Box::new(result))
                        }
                        Err(e) => {
                            metrics.inference_errors.inc();
                            tracing::error!(camera = %clip.camera, clip = clip.index, error = %e, "inference failed; clip skipped");
                            continue;
                        }
                    }
                }
            }
            ClipMsg::End { camera } => {
                *carried = None;
                InferOut::CameraEnded { camera }
            }
            ClipMsg::Configure { camera, config } => {
                *carried = None;
                InferOut::Configure { camera, config }
            }
        };
        // sent before the slot is let go: the camera's next message cannot overtake this one
        if out.blocking_send(forward).is_err() {
            tracing::warn!("events stage is gone; inference worker stops");
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Takes a varying time per clip, like models on clips with more or fewer people.
    struct Slow(u64, Arc<std::sync::atomic::AtomicU64>);

    impl RunClip for Slow {
        fn run_clip(&mut self, clip: &Clip) -> Result<ClipResult, InferError> {
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
            Ok(ClipResult {
                camera: clip.camera.clone(),
                clip_index: clip.index,
                start: clip.start,
                end: clip.end,
                frames: Vec::new(),
                prompts: None,
                timings: Default::default(),
            })
        }
    }

    #[test]
    fn every_camera_keeps_its_order_across_workers_and_the_load_is_shared() {
        let (tx, rx) = crossbeam_channel::bounded(4);
        let (out_tx, mut out_rx) = mpsc::channel(8);
        let metrics = Arc::new(Metrics::default());
        let ran: Vec<Arc<std::sync::atomic::AtomicU64>> = (0..3).map(|_| Arc::default()).collect();
        let workers = (0..3).map(|i| Slow(i as u64 + 1, ran[i].clone())).collect();
        let handle = spawn(workers, rx, out_tx, metrics.clone()).expect("spawn");
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
}
