//! The inference worker: a dedicated OS thread that owns the models, takes clips from the bounded clip queue
//! and hands results to the async events stage. It ends when the clip queue closes (shutdown drains through it).

use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::Receiver;
use tokio::sync::mpsc;

use std::collections::HashMap;

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

pub fn spawn(
    mut models: Models,
    clips: Receiver<ClipMsg>,
    out: mpsc::Sender<InferOut>,
    metrics: Arc<Metrics>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("infer".into())
        .spawn(move || {
            // per camera, what its next still clip repeats
            let mut carried: HashMap<Arc<str>, Carried> = HashMap::new();
            loop {
                let waiting = std::time::Instant::now();
                let Ok(msg) = clips.recv() else { break };
                metrics
                    .inference_idle_us
                    .add(waiting.elapsed().as_micros() as u64);
                metrics.clip_queue_depth.set(clips.len() as u64);
                let forward = match msg {
                    ClipMsg::Clip(clip) => {
                        // motion gate: nothing moved since this camera's last inferred clip
                        if let Some(c) = carried.get(&clip.camera).filter(|_| clip.still()) {
                            metrics.clips_gated.inc();
                            InferOut::Result(Box::new(c.result_for(&clip)))
                        } else {
                            // how long the complete clip waited for this worker
                            if let Some(last) = clip.frames.last() {
                                let waited = (chrono::Utc::now() - last.wall)
                                    .num_microseconds()
                                    .unwrap_or(0);
                                metrics.stages.queue_wait.observe(waited.max(0) as f64 / 1e6);
                            }
                            match models.infer_clip(&clip) {
                                Ok(result) => {
                                    metrics.record_clip(&result);
                                    if let Some(c) = Carried::from_result(&result) {
                                        carried.insert(result.camera.clone(), c);
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
                        carried.remove(&camera);
                        InferOut::CameraEnded { camera }
                    }
                    ClipMsg::Configure { camera, config } => {
                        carried.remove(camera.as_str());
                        InferOut::Configure { camera, config }
                    }
                };
                if out.blocking_send(forward).is_err() {
                    tracing::warn!("events stage is gone; inference worker stops");
                    break;
                }
            }
            tracing::debug!("clip queue closed; inference worker done");
        })
}
