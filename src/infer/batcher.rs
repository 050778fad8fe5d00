//! The detector batcher (`[inference] detector_batch` > 1): one detector session, on a thread of its own, runs
//! the frames of every inference worker's clips, several frames per session run. A worker letterboxes its clip's
//! frames itself (in parallel with the other workers) and sends them as one request; the batcher gathers the
//! requests that arrive within `detector_batch_wait_ms` of the first, groups them by model input size (the
//! rectangular letterbox makes a 4:3 and a 16:9 camera different shapes), runs each group as one batch of at most
//! `detector_batch` frames and sends every request its own frames' detections. This is the GPU path's dynamic
//! batching (as Triton and DeepStream do it): a GPU runs a batch of 16 small frames in about the time of one.
//!
//! Which requests run together ([`plan`]) and when to stop waiting ([`ready`]) are plain functions, unit-tested
//! here; `tests/detector_batch.rs` checks on the CPU provider that batched detections equal frame-by-frame ones.
//! The thread ends when every worker's client is gone (the workers drained), so shutdown needs nothing of it.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use super::detector::{Detection, Detector, Prepared};
use super::runtime::InferError;
use crate::telemetry::Metrics;

/// One worker's frames (one clip, or up to `max` frames of it), letterboxed and stacked (NCHW).
struct Request {
    input: Vec<f32>,
    items: Vec<Prepared>,
    reply: Sender<Result<Batched, String>>,
}

/// A request's answer: its frames' detections in order, and its share of the session run time.
#[derive(Debug)]
pub struct Batched {
    pub detections: Vec<Vec<Detection>>,
    /// The run's time × this request's frames ÷ the frames in the run (what a frame costs when batched).
    pub run: Duration,
    /// Frames in the session run(s) this request went in (its own and other workers').
    pub batch_frames: usize,
}

/// A worker's end of the batcher.
#[derive(Clone)]
pub struct BatchClient {
    tx: Sender<Request>,
    max: usize,
}

impl std::fmt::Debug for BatchClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchClient")
            .field("max", &self.max)
            .finish()
    }
}

impl BatchClient {
    /// Most frames a request should hold (the batch size).
    pub fn max_frames(&self) -> usize {
        self.max
    }

    /// Detects on `items.len()` frames stacked in `input`, waiting for the batcher's answer.
    pub fn detect(&self, input: Vec<f32>, items: Vec<Prepared>) -> Result<Batched, InferError> {
        let gone = || InferError::Run {
            model: "detector",
            message: "the detector batcher has stopped".into(),
        };
        let (reply, answer) = crossbeam_channel::bounded(1);
        self.tx
            .send(Request {
                input,
                items,
                reply,
            })
            .map_err(|_| gone())?;
        answer
            .recv()
            .map_err(|_| gone())?
            .map_err(|message| InferError::Run {
                model: "detector",
                message,
            })
    }
}

/// The batcher before its thread starts: the shared session and the requests' queue.
pub struct Batcher {
    detector: Detector,
    rx: Receiver<Request>,
    max: usize,
    wait: Duration,
    clients: usize,
}

impl std::fmt::Debug for Batcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher")
            .field("max", &self.max)
            .field("wait", &self.wait)
            .field("clients", &self.clients)
            .finish()
    }
}

impl Batcher {
    /// A batcher over `detector` (its export must have a dynamic batch axis) for `clients` workers: batches of at
    /// most `max` frames, waiting at most `wait` after a request for others. The queue holds one request per
    /// client (a worker waits for its answer before it sends again), so it is bounded by construction.
    pub fn new(
        detector: Detector,
        max: usize,
        wait: Duration,
        clients: usize,
    ) -> Result<(Self, BatchClient), InferError> {
        if !detector.batch_axis() {
            return Err(InferError::ModelSignature {
                model: "detector",
                path: detector.model.path.clone(),
                message: format!(
                    "inference.detector_batch = {max} needs an export with a dynamic batch axis on its image input, \
                     any size input and every output; this one has a tensor whose first axis is fixed (set \
                     detector_batch = 1, or re-export it)"
                ),
            });
        }
        let max = max.max(1);
        let (tx, rx) = crossbeam_channel::bounded(clients.max(1));
        Ok((
            Self {
                detector,
                rx,
                max,
                wait,
                clients: clients.max(1),
            },
            BatchClient { tx, max },
        ))
    }

    /// Starts the batcher's thread; it ends when every client is dropped. Should it panic, every waiting and later
    /// request fails with "the detector batcher has stopped" (clips are skipped and counted as inference errors),
    /// and it is listed in `Metrics::workers_failed`, which turns `/healthz` unhealthy.
    pub fn spawn(self, metrics: Arc<Metrics>) -> std::io::Result<JoinHandle<()>> {
        std::thread::Builder::new()
            .name("detect-batch".into())
            .spawn(move || {
                let run = std::panic::AssertUnwindSafe(|| self.run(&metrics));
                if let Err(payload) = std::panic::catch_unwind(run) {
                    let why = super::worker::panic_text(payload.as_ref());
                    tracing::error!(panic = %why, "the detector batcher panicked; /healthz reports unhealthy until a restart");
                    if let Ok(mut f) = metrics.workers_failed.lock() {
                        f.push(format!("detector batcher panicked: {why}"));
                    }
                }
            })
    }

    fn run(mut self, metrics: &Metrics) {
        let (runs0, frames0) = (
            metrics.detector_runs.get(),
            metrics.detector_run_frames.get(),
        );
        while let Ok(first) = self.rx.recv() {
            let deadline = Instant::now() + self.wait;
            let mut pending = vec![first];
            loop {
                let frames = pending.iter().map(|r| r.items.len()).sum();
                if ready(frames, pending.len(), self.max, self.clients) {
                    break;
                }
                match self.rx.recv_deadline(deadline) {
                    Ok(r) => pending.push(r),
                    Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
                }
            }
            self.run_pending(pending, metrics);
        }
        let runs = metrics.detector_runs.get() - runs0;
        let frames = metrics.detector_run_frames.get() - frames0;
        tracing::info!(
            runs,
            frames,
            mean_batch = format!("{:.2}", frames as f64 / runs.max(1) as f64),
            "detector batcher done (every worker drained)"
        );
    }

    /// Runs the gathered requests as [`plan`] groups them and answers each. A malformed request (frames of two
    /// input sizes, or an input of the wrong length) is answered with its error alone: it never joins a batch,
    /// where it would fail the other workers' frames too.
    fn run_pending(&mut self, pending: Vec<Request>, metrics: &Metrics) {
        let pending: Vec<Request> = pending
            .into_iter()
            .filter_map(|r| match well_formed(&r) {
                Ok(()) => Some(r),
                Err(why) => {
                    let _ = r.reply.send(Err(why));
                    None
                }
            })
            .collect();
        let shapes: Vec<((u32, u32), usize)> = pending
            .iter()
            .map(|r| {
                let size = r.items.first().map_or((0, 0), Prepared::input_size);
                (size, r.items.len())
            })
            .collect();
        let mut slots: Vec<Option<Request>> = pending.into_iter().map(Some).collect();
        for group in plan(&shapes, self.max) {
            let reqs: Vec<Request> = group.iter().filter_map(|&i| slots[i].take()).collect();
            let frames: usize = reqs.iter().map(|r| r.items.len()).sum();
            let mut input = Vec::with_capacity(reqs.iter().map(|r| r.input.len()).sum());
            let mut items = Vec::with_capacity(frames);
            for r in &reqs {
                input.extend_from_slice(&r.input);
                items.extend_from_slice(&r.items);
            }
            let t = Instant::now();
            let out = self.detector.run_batch(&input, &items);
            let spent = t.elapsed();
            metrics.detector_runs.inc();
            metrics.detector_run_frames.add(frames as u64);
            match out {
                Ok(mut dets) => {
                    for r in reqs {
                        let rest = dets.split_off(r.items.len().min(dets.len()));
                        let share = spent.mul_f64(r.items.len() as f64 / frames.max(1) as f64);
                        // a worker that stopped waiting (it cannot: it blocks) would only lose its own answer
                        let _ = r.reply.send(Ok(Batched {
                            detections: std::mem::replace(&mut dets, rest),
                            run: share,
                            batch_frames: frames,
                        }));
                    }
                }
                Err(e) => {
                    let message = e.to_string();
                    for r in reqs {
                        let _ = r.reply.send(Err(message.clone()));
                    }
                }
            }
        }
    }
}

/// Index ranges of `sizes` to send as requests: runs of equal input size, split at `max` items.
pub fn runs_of_equal<T: PartialEq>(sizes: &[T], max: usize) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=sizes.len() {
        if i == sizes.len() || sizes[i] != sizes[start] || i - start >= max.max(1) {
            if start < i {
                out.push(start..i);
            }
            start = i;
        }
    }
    out
}

/// A request's frames share one input size and its input holds exactly their values.
fn well_formed(r: &Request) -> Result<(), String> {
    let Some(first) = r.items.first() else {
        return Err("a detector request without frames".into());
    };
    if r.items.iter().any(|i| i.input_size() != first.input_size()) {
        return Err("a detector request mixes input sizes".into());
    }
    let (w, h) = first.input_size();
    let want = 3 * (w as usize) * (h as usize) * r.items.len();
    if r.input.len() != want {
        return Err(format!(
            "a detector request holds {} values for {} frames of {w}×{h} ({want})",
            r.input.len(),
            r.items.len()
        ));
    }
    Ok(())
}

/// Whether to stop gathering and run: the batch is full, or every client is waiting (no more can come).
pub fn ready(frames: usize, requests: usize, max: usize, clients: usize) -> bool {
    frames >= max || requests >= clients
}

/// Which requests run together, given each request's `(input size, frames)` in arrival order: requests of one
/// input size share a run while their frames fit in `max` (a request is never split; one larger than `max`
/// runs alone). Groups come in the order of their first request, so early requests are answered first.
pub fn plan(requests: &[((u32, u32), usize)], max: usize) -> Vec<Vec<usize>> {
    let mut groups: Vec<(usize, (u32, u32), Vec<usize>)> = Vec::new();
    for (i, &(size, frames)) in requests.iter().enumerate() {
        match groups
            .iter_mut()
            .find(|(n, s, _)| *s == size && n + frames <= max)
        {
            Some((n, _, members)) => {
                *n += frames;
                members.push(i);
            }
            None => groups.push((frames, size, vec![i])),
        }
    }
    groups.into_iter().map(|(_, _, m)| m).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const WIDE: (u32, u32) = (416, 256);
    const TALL: (u32, u32) = (416, 320);

    #[test]
    fn requests_of_one_size_share_a_run_up_to_the_batch_size() {
        let groups = plan(&[(WIDE, 4), (WIDE, 4), (WIDE, 4), (WIDE, 4), (WIDE, 4)], 16);
        assert_eq!(groups, vec![vec![0, 1, 2, 3], vec![4]]);
    }

    #[test]
    fn different_input_sizes_never_share_a_run() {
        let groups = plan(&[(WIDE, 2), (TALL, 2), (WIDE, 2), (TALL, 3)], 16);
        assert_eq!(groups, vec![vec![0, 2], vec![1, 3]]);
    }

    #[test]
    fn a_request_over_the_batch_size_runs_alone_and_later_ones_fill_gaps() {
        let groups = plan(&[(WIDE, 20), (WIDE, 3), (WIDE, 14), (WIDE, 1)], 16);
        assert_eq!(groups, vec![vec![0], vec![1, 3], vec![2]]);
    }

    #[test]
    fn a_clip_is_cut_into_requests_of_one_input_size_and_at_most_the_batch() {
        let sizes = [WIDE, WIDE, WIDE, TALL, TALL, WIDE, WIDE, WIDE, WIDE, WIDE];
        assert_eq!(runs_of_equal(&sizes, 4), vec![0..3, 3..5, 5..9, 9..10]);
        assert_eq!(runs_of_equal(&sizes[..3], 16), vec![0..3]);
        assert!(runs_of_equal::<(u32, u32)>(&[], 16).is_empty());
    }

    #[test]
    fn gathering_stops_when_full_or_when_every_client_waits() {
        assert!(!ready(4, 1, 16, 4));
        assert!(ready(16, 1, 16, 4), "a full batch runs");
        assert!(
            ready(4, 4, 16, 4),
            "every worker is waiting: nothing more can come"
        );
        assert!(ready(1, 1, 16, 1), "one worker never waits for itself");
    }
}
