//! The inference workers: dedicated OS threads that each own a copy of the models and take their cameras' clips
//! from the bounded clip queue (through a dispatcher), handing results to the async events stage. They end when
//! the clip queue closes (shutdown drains through them).

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

/// Starts one inference worker per `Models` (the config's plan) and a dispatcher that deals the clip queue out
/// to them by camera. A camera stays with the worker it was first given (the one with the fewest cameras), so its
/// clips, `End` and `Configure` keep their order and its motion-gate state stays on one thread. The handle ends
/// when every worker has drained: the clip queue closes, the dispatcher closes the workers' queues, they finish
/// their clips and drop their senders to the events stage.
pub fn spawn(
    models: Vec<Models>,
    clips: Receiver<ClipMsg>,
    out: mpsc::Sender<InferOut>,
    metrics: Arc<Metrics>,
) -> std::io::Result<JoinHandle<()>> {
    if models.is_empty() {
        return Err(std::io::Error::other("no inference worker configured"));
    }
    metrics.inference_workers.set(models.len() as u64);
    let mut queues = Vec::with_capacity(models.len());
    let mut workers = Vec::with_capacity(models.len());
    for (i, m) in models.into_iter().enumerate() {
        // small: the shared clip queue in front of the dispatcher is where clips wait (and are counted)
        let (tx, rx) = crossbeam_channel::bounded::<ClipMsg>(1);
        workers.push(
            std::thread::Builder::new()
                .name(format!("infer-{i}"))
                .spawn({
                    let (out, metrics) = (out.clone(), metrics.clone());
                    move || work(m, rx, out, metrics)
                })?,
        );
        queues.push(tx);
    }
    std::thread::Builder::new()
        .name("infer-dispatch".into())
        .spawn(move || {
            let mut assigned: HashMap<String, usize> = HashMap::new();
            let mut load = vec![0usize; queues.len()];
            while let Ok(msg) = clips.recv() {
                metrics.clip_queue_depth.set(clips.len() as u64);
                let camera = match &msg {
                    ClipMsg::Clip(c) => &*c.camera,
                    ClipMsg::End { camera } => &**camera,
                    ClipMsg::Configure { camera, .. } => camera.as_str(),
                };
                let w = match assigned.get(camera) {
                    Some(&w) => w,
                    None => {
                        let w = least_loaded(&load);
                        load[w] += 1;
                        assigned.insert(camera.to_string(), w);
                        w
                    }
                };
                // a camera removed by a reload frees its place (its last message still goes to its worker)
                let removed = matches!(&msg, ClipMsg::Configure { config: None, .. });
                if removed {
                    assigned.remove(camera);
                    load[w] = load[w].saturating_sub(1);
                }
                if queues[w].send(msg).is_err() {
                    tracing::error!(worker = w, "inference worker is gone; dispatcher stops");
                    break;
                }
            }
            drop(queues);
            for w in workers {
                let _ = w.join();
            }
            tracing::debug!("clip queue closed; inference workers done");
        })
}

/// The worker with the fewest cameras (the first of equals).
fn least_loaded(load: &[usize]) -> usize {
    load.iter()
        .enumerate()
        .min_by_key(|(_, n)| **n)
        .map_or(0, |(i, _)| i)
}

/// One worker's loop: its cameras' clips in, results out, until its queue closes.
fn work(
    mut models: Models,
    clips: Receiver<ClipMsg>,
    out: mpsc::Sender<InferOut>,
    metrics: Arc<Metrics>,
) {
    // per camera, what its next still clip repeats
    let mut carried: HashMap<Arc<str>, Carried> = HashMap::new();
    loop {
        let waiting = std::time::Instant::now();
        let Ok(msg) = clips.recv() else { break };
        metrics
            .inference_idle_us
            .add(waiting.elapsed().as_micros() as u64);
        let forward = match msg {
            ClipMsg::Clip(clip) => {
                // motion gate: nothing moved since this camera's last inferred clip
                if let Some(c) = carried.get(&clip.camera).filter(|_| clip.still()) {
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
}

#[cfg(test)]
mod tests {
    use super::least_loaded;

    #[test]
    fn new_cameras_go_to_the_worker_with_fewest() {
        assert_eq!(least_loaded(&[0, 0]), 0);
        assert_eq!(least_loaded(&[1, 0]), 1);
        assert_eq!(least_loaded(&[2, 1, 1]), 1);
        assert_eq!(least_loaded(&[]), 0);
    }
}
