//! `scenewatch bench`: side-by-side figures on one clip, in one run — the inference bound (the models alone on
//! pre-made input tensors), scenewatch end to end (decode → sample → preprocess → infer → events → a real local
//! mosquitto), the Python reference (`bench/reference.py`: OpenCV decode, numpy, onnxruntime, paho-mqtt), and the
//! real-time capacity of both (cameras at `realtime = true`, 2 sampled fps, stepped until one falls behind).
//!
//! A benchmark, not a test: it prints figures and ratios; `docs/performance.md` records them with the machine.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::clock::SystemClock;
use crate::config::Config;
use crate::infer::preprocess::Letterbox;
use crate::infer::{encoder, Models};
use crate::ingest::CameraStatus;
use crate::shutdown::Shutdown;
use crate::supervisor::{self, RunOptions};
use crate::telemetry::Metrics;

pub struct BenchArgs {
    pub config: PathBuf,
    pub input: Option<PathBuf>,
    pub seconds: f64,
    pub json: bool,
    pub python: PathBuf,
    pub max_cameras: usize,
    /// Rounds of the throughput phases (best kept).
    pub repeat: usize,
    /// Skip phases (for quick looks): "bound", "e2e", "python", "capacity", "decode".
    pub skip: Vec<String>,
    /// Inputs to measure (`clip`: the input as it is; camera-shaped ones: `bench_inputs::SPECS`). Empty: `clip`.
    pub inputs: Vec<String>,
}

#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Figures {
    pub input: String,
    pub frames: usize,
    pub bound_fps: f64,
    pub e2e_fps: f64,
    pub e2e_clips_per_s: f64,
    /// End to end with two cameras per core, every file looped as fast as it goes: sampled frames/s of the whole box.
    pub e2e_box_fps: f64,
    pub e2e_box_cameras: usize,
    pub python_fps: Option<f64>,
    pub e2e_over_bound: f64,
    pub e2e_over_python: Option<f64>,
    pub cameras_realtime: usize,
    pub python_cameras_realtime: Option<usize>,
    /// Frame capture → results at the publisher, at `cameras_realtime` cameras (real-time pacing).
    pub p50_latency_ms: f64,
    pub p95_latency_ms: f64,
    pub peak_rss_mb: f64,
    pub python_peak_rss_mb: Option<f64>,
    pub python_note: Option<String>,
    pub providers: Vec<(String, String)>,
    /// Where the end-to-end run's time went, ms per sampled frame: decode (all decoded frames, sampled or not),
    /// preprocess, each model, events (per clip, spread over its frames).
    pub e2e_stage_ms: Vec<(String, f64)>,
    #[serde(skip)]
    pub e2e_publish_ms: f64,
    /// The bound's model time, ms per frame: detector, encoder.
    pub bound_stage_ms: Vec<(String, f64)>,
    /// The detector alone on the same frames in batches of 1, 2, 4, 8, 16 (`inference.detector_batch`): ms per
    /// frame at each batch size, on the provider the detector got (empty: its export has a fixed batch of 1).
    pub detector_batch_ms: Vec<(usize, f64)>,
    /// scenewatch's capacity steps: (cameras, kept up, largest RSS during the step in MB).
    pub capacity_steps: Vec<(usize, bool, f64)>,
    /// Per input (`--inputs`): decode and whole-pipeline CPU figures next to the throughput and capacity. The
    /// fields above are the first input's.
    pub inputs: Vec<InputFigures>,
}

/// One input's figures (issue 17).
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct InputFigures {
    pub name: String,
    pub path: String,
    pub width: u32,
    pub height: u32,
    pub fps: f64,
    pub codec: String,
    /// The decoder GStreamer plugged (e.g. avdec_h264, vah264dec) and the camera's `decode_skip`.
    pub decoder: Option<String>,
    pub decode_skip: String,
    /// Frames decoded per sampled frame (after `decode_skip`).
    pub decoded_per_sampled: f64,
    /// Compressed frames left out before the decoder, per sampled frame.
    pub skipped_per_sampled: f64,
    /// Decode-only pass (decoder → fakesink, alone in the process), CPU ms (getrusage, all threads), with one
    /// decoder thread: what each camera's decoder runs with once there are as many cameras as cores
    /// (`[ingest] decode_threads`, auto), and the essential work of the CPU bound.
    pub decode_ms_per_decoded_frame: f64,
    pub decode_ms_per_sampled_frame: f64,
    /// The same pass with libav's own frame threads (one per core: a single camera's setting).
    pub decode_ms_per_sampled_frame_threaded: f64,
    /// The daemon's ingest pipeline alone (decode, sample, scale, colour-convert, copy), CPU ms per sampled frame.
    pub ingest_ms_per_sampled_frame: f64,
    /// A pair of inputs (input roles): the record-only input, and what keeping it costs (parsing its stream,
    /// no decoding), CPU ms per sampled frame of the detect input; counted in the CPU bound.
    pub record_input: Option<String>,
    pub record_ms_per_sampled_frame: f64,
    /// Preprocessing and each model on one ORT thread (CPU = wall), ms per sampled frame, measured alone.
    pub preprocess_ms: f64,
    pub model_ms: Vec<(String, f64)>,
    /// From the end-to-end run, ms per sampled frame: events (CPU) and publish (waiting on the broker's PUBACK,
    /// not counted in the CPU bound).
    pub events_ms: f64,
    pub publish_ms: f64,
    /// CPU ms of essential work per sampled frame: ingest + preprocess + models + events.
    pub cpu_ms_per_sampled_frame: f64,
    /// Cores ÷ CPU-seconds per sampled frame: the sampled frames/s this box could sustain at best.
    pub cpu_bound_fps: f64,
    /// Today's inference-only bound (the models on pre-made tensors with the daemon's threads).
    pub bound_fps: f64,
    pub e2e_fps: f64,
    pub e2e_over_cpu_bound: f64,
    pub e2e_over_bound: f64,
    /// The whole box end to end (`Figures::e2e_box_fps`: two cameras per core, as fast as they go) and its ratio
    /// to the CPU bound, which is a whole-box figure too: a single stream cannot use every core (one H.264
    /// stream's frame threads reach ≈ 1.6 of 2 cores alone, and ORT's two threads on one frame less than 2×).
    pub e2e_box_fps: f64,
    pub e2e_box_over_cpu_bound: f64,
    /// The sampled frames/s of the cameras sustained in real time (2 each) over the CPU bound: how much of the
    /// bound the daemon reaches with many cameras (the end-to-end figure is one camera's).
    pub capacity_over_cpu_bound: f64,
    pub cameras_realtime: usize,
    pub python_cameras_realtime: Option<usize>,
    pub python_fps: Option<f64>,
    pub e2e_stage_ms: Vec<(String, f64)>,
    pub capacity_steps: Vec<(usize, bool, f64)>,
}

/// Peak resident set size of this process so far (VmHWM), MB.
pub fn peak_rss_mb() -> f64 {
    super::soak::proc_status_mb("VmHWM:")
}

/// The q-quantile (0..1) of `v` (sorted in place), nearest rank.
pub fn quantile(v: &mut [f32], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let i = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
    v[i] as f64
}

/// Median frame → publisher latency (s) above which a capacity step did not keep up: twice the 4 s clip plus 2 s.
/// Without it a step could "keep up" with a standing backlog: at 1080p the decoders' QoS used to drop late frames
/// (the sampled rate held) while clips waited 19 s in full queues (latency high but flat).
pub const MAX_MEDIAN_LATENCY_S: f64 = 10.0;

/// Whether a capacity step kept up: every sampled frame inferred (none dropped), the sampled rate close to
/// 2 fps per camera, latency not growing from the first to the last quarter of the step, and the median latency
/// at most [`MAX_MEDIAN_LATENCY_S`].
pub fn kept_up(
    cameras: usize,
    sample_fps: f64,
    secs: f64,
    sampled: u64,
    dropped: u64,
    latencies: &[f32],
) -> bool {
    let want = cameras as f64 * sample_fps * secs;
    let q = latencies.len() / 4;
    let growing = q > 0 && {
        let mean = |s: &[f32]| s.iter().map(|v| *v as f64).sum::<f64>() / s.len() as f64;
        mean(&latencies[latencies.len() - q..]) > mean(&latencies[..q]) + 1.0
    };
    let mut sorted = latencies.to_vec();
    let median = quantile(&mut sorted, 0.5);
    dropped == 0 && sampled as f64 >= 0.9 * want && !growing && median <= MAX_MEDIAN_LATENCY_S
}

/// A scratch directory for the benchmark's spools, removed at the end.
struct WorkDir(PathBuf);

impl WorkDir {
    fn new() -> std::io::Result<Self> {
        let p = std::env::temp_dir().join(format!("scenewatch-bench-{}", std::process::id()));
        std::fs::create_dir_all(&p)?;
        Ok(Self(p))
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Broker {
    child: Child,
    port: u16,
}

impl Broker {
    fn start() -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new("mosquitto")
            .args(["-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                anyhow::anyhow!("the benchmark needs mosquitto (setup.sh installs it): {e}")
            })?;
        let t0 = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if t0.elapsed() > Duration::from_secs(10) {
                anyhow::bail!("mosquitto did not start on port {port}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Self { child, port })
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The benchmark's config: the given one's models and inference settings, its first camera (URL replaced by
/// `input`, prompts kept) copied `cameras` times, MQTT on `port`, spool and media in `dir`. With prompts
/// scenewatch runs the detector, the encoder and the language head; without, the detector alone — and the
/// Python reference is told to match (`--no-encoder`), so both always run the same vision models.
fn bench_config(
    base: &Config,
    input: &Path,
    record: Option<&Path>,
    cameras: usize,
    realtime: bool,
    port: u16,
    dir: &Path,
) -> anyhow::Result<Config> {
    let mut cfg = base.clone();
    let template = cfg
        .cameras
        .first()
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("the config has no camera to copy"))?;
    cfg.cameras = (0..cameras)
        .map(|i| {
            let mut c = template.clone();
            c.name = format!("bench{i}");
            c.url = input.display().to_string();
            c.inputs.clear();
            if let Some(rec) = record {
                // input roles: detect on `input`, keep `rec` for recordings (never decoded)
                c.url.clear();
                c.inputs = vec![
                    crate::config::InputConfig {
                        url: input.display().to_string(),
                        roles: vec!["detect".into()],
                    },
                    crate::config::InputConfig {
                        url: rec.display().to_string(),
                        roles: vec!["record".into()],
                    },
                ];
            }
            c.realtime = realtime;
            c.looping = realtime;
            c.enabled = true;
            c.sample_fps = 2.0;
            c
        })
        .collect();
    cfg.mqtt.host = "127.0.0.1".into();
    cfg.mqtt.port = port;
    cfg.mqtt.client_id = format!("scenewatch-bench-{}", std::process::id());
    cfg.mqtt.tls = false;
    cfg.spool.path = Some(dir.join(format!("spool-{cameras}-{realtime}.redb")));
    cfg.media.dir = Some(dir.join("media"));
    cfg.media.snapshots = false;
    // recordings only where a record input makes them the point of the measurement
    cfg.media.clips = record.is_some();
    cfg.summaries.enabled = false;
    cfg.homeassistant.enabled = false;
    cfg.metrics.listen = None;
    Ok(cfg)
}

struct RunFigures {
    stage_ms: Vec<(String, f64)>,
    /// Waiting for the broker's PUBACK, ms per sampled frame.
    publish_ms: f64,
    /// The largest VmRSS seen during the run, MB.
    rss_max_mb: f64,
    fps: f64,
    clips_per_s: f64,
    sampled: u64,
    dropped: u64,
    latencies: Vec<f32>,
}

/// Runs the daemon in-process for at most `secs` (or until the file ends) and measures steady throughput: frames
/// inferred between the first and the last inference, sampled every 100 ms.
fn run_daemon(cfg: Config, secs: f64) -> anyhow::Result<RunFigures> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .worker_threads(2)
        .build()?;
    let metrics = Arc::new(Metrics::default());
    if let Ok(mut s) = metrics.latency_samples.lock() {
        *s = Some(Vec::new());
    }
    let statuses: Arc<Mutex<Vec<Arc<CameraStatus>>>> = Arc::default();
    let shutdown = Shutdown::new();
    let marks: Arc<Mutex<Vec<(Instant, u64, u64)>>> = Arc::default();
    let rss_max = Arc::new(Mutex::new(0.0f64));
    let result = rt.block_on(async {
        let sampler = {
            let (m, sd, mk, rm) = (
                metrics.clone(),
                shutdown.clone(),
                marks.clone(),
                rss_max.clone(),
            );
            tokio::spawn(async move {
                let mut first: Option<Instant> = None;
                let mut tick = tokio::time::interval(Duration::from_millis(100));
                loop {
                    tick.tick().await;
                    if let Ok(mut r) = rm.lock() {
                        *r = r.max(super::soak::rss_mb());
                    }
                    let (f, c) = (m.frames_inferred.get(), m.clips_inferred.get());
                    if f > 0 && first.is_none() {
                        first = Some(Instant::now());
                    }
                    if let Ok(mut v) = mk.lock() {
                        if v.last().is_none_or(|l| l.1 != f) {
                            v.push((Instant::now(), f, c));
                        }
                    }
                    if first.is_some_and(|t| t.elapsed().as_secs_f64() >= secs) {
                        sd.trigger();
                        return;
                    }
                }
            })
        };
        let opts = RunOptions {
            metrics: Some(metrics.clone()),
            statuses: Some(statuses.clone()),
            ..Default::default()
        };
        let r = supervisor::run_with(cfg, shutdown.clone(), Arc::new(SystemClock), opts).await;
        sampler.abort();
        r
    });
    result.map_err(|e| anyhow::anyhow!("{e}"))?;
    let marks = marks.lock().map(|v| v.clone()).unwrap_or_default();
    let (fps, clips_per_s) = match (marks.first(), marks.last()) {
        (Some(a), Some(b)) if b.0 > a.0 => {
            let dt = (b.0 - a.0).as_secs_f64();
            ((b.1 - a.1) as f64 / dt, (b.2 - a.2) as f64 / dt)
        }
        _ => (0.0, 0.0),
    };
    let sts = statuses.lock().map(|v| v.clone()).unwrap_or_default();
    let latencies = metrics
        .latency_samples
        .lock()
        .ok()
        .and_then(|mut s| s.take())
        .unwrap_or_default();
    let frames = metrics.frames_inferred.get().max(1) as f64;
    // the stages that spend CPU per frame (queue wait and publish wait on others)
    let stage_ms = metrics
        .stages
        .all()
        .into_iter()
        .filter(|(n, _)| !matches!(*n, "queue_wait" | "publish"))
        .map(|(n, h)| (n.to_string(), h.sum_secs() * 1e3 / frames))
        .chain([(
            "inference idle".to_string(),
            metrics.inference_idle_us.get() as f64 / 1e3 / frames,
        )])
        .collect();
    let rss_max_mb = rss_max.lock().map(|r| *r).unwrap_or(0.0);
    let publish_ms = metrics
        .stages
        .all()
        .into_iter()
        .find(|(n, _)| *n == "publish")
        .map_or(0.0, |(_, h)| h.sum_secs() * 1e3 / frames);
    Ok(RunFigures {
        stage_ms,
        publish_ms,
        rss_max_mb,
        fps,
        clips_per_s,
        sampled: sts.iter().map(|s| s.sampled.load(Ordering::Relaxed)).sum(),
        dropped: sts
            .iter()
            .map(|s| s.queue.dropped.load(Ordering::Relaxed))
            .sum(),
        latencies,
    })
}

/// (model, execution provider) pairs.
type Providers = Vec<(String, String)>;

/// The bound's figures: frames/s, frames prepared, providers, model ms per frame.
struct Bound {
    fps: f64,
    detector_batch_ms: Vec<(usize, f64)>,
    /// Preparing the tensors (scaling, letterbox or crop, normalisation), ms per frame.
    preprocess_ms: f64,
    frames: usize,
    providers: Providers,
    stage_ms: Vec<(String, f64)>,
}

/// The models alone: detector per frame and encoder per clip batch on tensors prepared before the clock starts.
fn bound(cfg: &Config, input: &Path, secs: f64) -> anyhow::Result<Bound> {
    let mut models = Models::load(cfg)?;
    let providers = models
        .reports()
        .iter()
        .map(|r| (r.name.to_string(), r.provider.to_string()))
        .collect();
    let clip_s = cfg.cameras.first().map_or(4.0, |c| c.clip_seconds);
    // as in the daemon: the encoder runs for cameras with prompts (the language head, ≈ 1.5 ms a clip, is left
    // out of the bound, which makes e2e / bound slightly conservative)
    let with_encoder = cfg.cameras.first().is_some_and(|c| !c.prompts.is_empty());
    let stride = cfg.inference.encoder_stride.max(1);
    let mut det_inputs: Vec<(Letterbox, Vec<f32>)> = Vec::new();
    let mut enc_batches: Vec<(usize, Vec<f32>)> = Vec::new();
    let mut prep_s = 0.0f64;
    super::prompts::for_each_video_clip(input, 2.0, clip_s, |clip| {
        let mut batch = Vec::new();
        for (k, f) in clip.frames.iter().enumerate() {
            let t = Instant::now();
            let mut d = Vec::new();
            let lb = models
                .detector
                .preprocess(&f.rgb, f.width, f.height, &mut d)?;
            det_inputs.push((lb, d));
            // as the daemon: every `encoder_stride`-th frame of a clip
            if k % stride == 0 && with_encoder {
                encoder::preprocess_into(&f.rgb, f.width, f.height, &mut batch)?;
            }
            prep_s += t.elapsed().as_secs_f64();
        }
        enc_batches.push((clip.frames.len(), batch));
        Ok(())
    })?;
    let frames = det_inputs.len();
    anyhow::ensure!(frames > 0, "{}: no frames decoded", input.display());
    let es = encoder::INPUT_SIZE as usize;
    let t0 = Instant::now();
    let mut done = 0usize;
    let (mut det_s, mut enc_s) = (0.0f64, 0.0f64);
    'outer: loop {
        let mut i = 0;
        for (n, batch) in &enc_batches {
            for (lb, d) in &det_inputs[i..i + n] {
                let t1 = Instant::now();
                models.detector.run_model(lb, d)?;
                det_s += t1.elapsed().as_secs_f64();
            }
            if let Some(enc) = models.encoder.as_mut().filter(|_| with_encoder) {
                let encoded = batch.len() / (3 * es * es);
                let t = ort::value::TensorRef::from_array_view((
                    [encoded, 3, es, es],
                    batch.as_slice(),
                ))?;
                let t1 = Instant::now();
                enc.model.session.run(ort::inputs!["input" => t])?;
                enc_s += t1.elapsed().as_secs_f64();
            }
            i += n;
            done += n;
            if t0.elapsed().as_secs_f64() >= secs {
                break 'outer;
            }
        }
    }
    let detector_batch_ms = batch_sweep(&mut models.detector, &det_inputs, secs / 5.0)?;
    let per_frame = |s: f64| s * 1e3 / done.max(1) as f64;
    let stages = vec![
        ("detector".to_string(), per_frame(det_s)),
        ("encoder".to_string(), per_frame(enc_s)),
    ];
    Ok(Bound {
        fps: done as f64 / t0.elapsed().as_secs_f64(),
        preprocess_ms: prep_s * 1e3 / frames as f64,
        frames,
        providers,
        stage_ms: stages,
        detector_batch_ms,
    })
}

/// The detector's model time per frame at batch sizes 1, 2, 4, 8 and 16, each run for about `secs` on the same
/// prepared frames (those of the first frame's input size). Empty when the export's batch axis is fixed.
fn batch_sweep(
    det: &mut crate::infer::detector::Detector,
    inputs: &[(Letterbox, Vec<f32>)],
    secs: f64,
) -> anyhow::Result<Vec<(usize, f64)>> {
    let Some((first, _)) = inputs.first() else {
        return Ok(Vec::new());
    };
    if !det.batch_axis() {
        return Ok(Vec::new());
    }
    let same: Vec<&Vec<f32>> = inputs
        .iter()
        .filter(|(lb, _)| (lb.in_w, lb.in_h) == (first.in_w, first.in_h))
        .map(|(_, d)| d)
        .collect();
    let mut out = Vec::new();
    for n in [1usize, 2, 4, 8, 16] {
        let batch: Vec<f32> = same
            .iter()
            .cycle()
            .take(n)
            .flat_map(|d| d.iter().copied())
            .collect();
        let items: Vec<crate::infer::detector::Prepared> = (0..n)
            .map(|_| crate::infer::detector::Prepared {
                lb: *first,
                width: first.in_w,
                height: first.in_h,
            })
            .collect();
        det.run_batch(&batch, &items)?; // warm-up (the first run of a shape allocates)
        let t = Instant::now();
        let mut frames = 0usize;
        while t.elapsed().as_secs_f64() < secs || frames == 0 {
            det.run_batch(&batch, &items)?;
            frames += n;
        }
        out.push((n, t.elapsed().as_secs_f64() * 1e3 / frames as f64));
    }
    Ok(out)
}

/// Runs `bench/reference.py`; None with the reason when Python or its packages are missing.
fn python(
    args: &BenchArgs,
    cfg: &Config,
    input: &Path,
    port: u16,
    extra: &[&str],
) -> Result<serde_json::Value, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/reference.py");
    let out = Command::new(&args.python)
        .arg(&script)
        .args(["--input", &input.display().to_string()])
        .args(["--models", &cfg.models.dir.display().to_string()])
        .args(["--seconds", &args.seconds.to_string()])
        .args(["--port", &port.to_string()])
        // every ORT thread scenewatch uses for one camera (one worker with all of them, on auto)
        .args(["--threads", &cfg.inference_plan().threads.to_string()])
        .args(
            cfg.cameras
                .first()
                .is_none_or(|c| c.prompts.is_empty())
                .then_some("--no-encoder"),
        )
        .args(extra)
        .output()
        .map_err(|e| {
            format!(
                "{}: {e} (bench/setup.sh makes the venv)",
                args.python.display()
            )
        })?;
    if !out.status.success() {
        return Err(format!(
            "reference.py failed: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or("");
    serde_json::from_str(line).map_err(|e| format!("reference.py printed no JSON ({e})"))
}

/// Steps the camera count (1, 2, 4, … then bisects) while `ok(n)` holds; returns the most that kept up.
pub fn step_capacity(max: usize, ok: impl FnMut(usize) -> bool) -> usize {
    step_capacity_from(max, 1, ok)
}

/// `step_capacity` starting from a guess (`start`, e.g. 80 % of the cameras the CPU bound allows): up from there
/// by a quarter while it keeps up (doubling when there is no guess, `start` = 1), down by halves while it does
/// not, then bisection. A close guess takes 3–4 steps instead of the 7–8 from one camera — each step is ≥ 20 s
/// of every camera running.
pub fn step_capacity_from(max: usize, start: usize, mut ok: impl FnMut(usize) -> bool) -> usize {
    if max == 0 {
        return 0;
    }
    let start = start.clamp(1, max);
    let (mut good, mut bad) = (0usize, max + 1);
    if ok(start) {
        good = start;
        while good < max {
            let n = if start == 1 {
                good * 2
            } else {
                good + (good / 4).max(1)
            }
            .min(max);
            if ok(n) {
                good = n;
            } else {
                bad = n;
                break;
            }
        }
        if good == max {
            return max;
        }
    } else {
        bad = start;
        let mut n = start / 2;
        while n >= 1 {
            if ok(n) {
                good = n;
                break;
            }
            bad = n;
            n /= 2;
        }
        if good == 0 {
            return 0;
        }
    }
    while bad - good > 1 {
        let mid = (good + bad) / 2;
        if ok(mid) {
            good = mid;
        } else {
            bad = mid;
        }
    }
    good
}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    let base = Config::load(&args.config)?;
    // its inference bound and Python reference run the shipped models: with a pair they would time other models
    // than the daemon runs (the pair's cost per frame is in the daemon's end-of-run log, `encoder_ms_per_frame`)
    anyhow::ensure!(
        base.models.image_text.is_none(),
        "scenewatch bench measures the shipped models; unset [models] image_text to run it (a pair's cost: \
         `scenewatch run` on a file logs encoder_ms_per_frame at the end; docs/image_text.md)"
    );
    let clip = match &args.input {
        Some(p) => std::path::absolute(p)?,
        None => {
            let url = base
                .cameras
                .first()
                .map(|c| c.detect_url().to_string())
                .ok_or_else(|| anyhow::anyhow!("no camera in the config and no --input"))?;
            PathBuf::from(url.trim_start_matches("file://"))
        }
    };
    anyhow::ensure!(clip.is_file(), "{}: not a file", clip.display());
    let names: Vec<String> = if args.inputs.is_empty() {
        vec!["clip".to_string()]
    } else {
        args.inputs.clone()
    };
    for n in &names {
        anyhow::ensure!(
            n == "clip"
                || super::bench_inputs::spec(n).is_some()
                || super::bench_inputs::pair(n).is_some(),
            "--inputs: unknown input '{n}' (clip, {}, {})",
            super::bench_inputs::SPECS
                .iter()
                .map(|s| s.name)
                .collect::<Vec<_>>()
                .join(", "),
            super::bench_inputs::PAIRS
                .iter()
                .map(|p| p.0)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let say = |s: String| {
        if !args.json {
            eprintln!("{s}");
        }
    };
    // make every input first, so a missing encoder fails before minutes of measuring
    let mut inputs = Vec::new();
    let made = |n: &str| match super::bench_inputs::spec(n) {
        Some(spec) => super::bench_inputs::make(spec, &clip, &say),
        None => Ok(clip.clone()),
    };
    for n in &names {
        let (path, record) = match super::bench_inputs::pair(n) {
            Some((detect, record)) => (made(detect)?, Some(made(record)?)),
            None => (made(n)?, None),
        };
        inputs.push((n.clone(), path, record));
    }
    let work = WorkDir::new()?;
    let broker = Broker::start()?;
    let mut fig = Figures::default();
    for (i, (name, path, record)) in inputs.iter().enumerate() {
        let record = record.as_deref();
        say(format!(
            "== input {name}: {}{}",
            path.display(),
            record.map_or(String::new(), |r| format!(
                " (detect), {} (record)",
                r.display()
            ))
        ));
        // the CPU passes first: their bound is where the capacity search starts
        let mut per = measure_input(&args, &base, name, path, record, &say)?;
        let hint = per.cameras_hint();
        let f = measure(&args, &base, (path, record), &broker, &work, hint, &say)?;
        per.add_runs(&f);
        if i == 0 {
            fig = f;
        }
        fig.inputs.push(per);
    }
    if args.json {
        println!("{}", serde_json::to_string(&fig)?);
    } else {
        print_table(&fig);
    }
    Ok(())
}

/// Today's phases on one input: end to end, the inference bound, the Python reference, real-time capacity.
fn measure(
    args: &BenchArgs,
    base: &Config,
    (input, record): (&Path, Option<&Path>),
    broker: &Broker,
    work: &WorkDir,
    hint: Option<usize>,
    say: &dyn Fn(String),
) -> anyhow::Result<Figures> {
    let skip = |p: &str| args.skip.iter().any(|s| s == p);
    let mut fig = Figures {
        input: input.display().to_string(),
        ..Default::default()
    };
    let cfg1 = bench_config(base, input, record, 1, false, broker.port, work.path())?;
    // the host's speed drifts (±20 % from one minute to the next on a shared VM): the three throughput phases
    // alternate `repeat` times and each keeps its best round
    for round in 1..=args.repeat.max(1) {
        if !skip("e2e") {
            say(format!(
                "e2e (round {round}): scenewatch on {} (as fast as it goes, ≤ {:.0} s)…",
                input.display(),
                args.seconds
            ));
            let r = run_daemon(cfg1.clone(), args.seconds)?;
            say(format!("  {:.2} frames/s", r.fps));
            if r.fps > fig.e2e_fps {
                fig.e2e_fps = r.fps;
                fig.e2e_clips_per_s = r.clips_per_s;
                fig.e2e_stage_ms = r.stage_ms;
                fig.e2e_publish_ms = r.publish_ms;
            }
            fig.peak_rss_mb = peak_rss_mb();
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            if cores > 1 {
                // two cameras per core, looped, so every worker always has a clip waiting
                let n = 2 * cores;
                say(format!(
                    "e2e, whole box (round {round}): {n} cameras, files looped, as fast as they go…"
                ));
                let mut cfg =
                    bench_config(base, input, record, n, false, broker.port, work.path())?;
                for c in &mut cfg.cameras {
                    c.looping = true;
                }
                let r = run_daemon(cfg, args.seconds)?;
                say(format!("  {:.2} frames/s", r.fps));
                if r.fps > fig.e2e_box_fps {
                    fig.e2e_box_fps = r.fps;
                    fig.e2e_box_cameras = n;
                }
            }
        }
        if !skip("bound") {
            say(format!(
                "bound (round {round}): the same models alone on pre-made tensors…"
            ));
            let b = bound(&cfg1, input, args.seconds)?;
            say(format!("  {:.2} frames/s", b.fps));
            if b.fps > fig.bound_fps {
                fig.bound_stage_ms = b.stage_ms;
                fig.detector_batch_ms = b.detector_batch_ms;
                fig.bound_fps = b.fps;
                fig.frames = b.frames;
                fig.providers = b.providers;
            }
        }
        if !skip("python") {
            say(format!(
                "python (round {round}): bench/reference.py (OpenCV, numpy, onnxruntime, paho-mqtt)…"
            ));
            match python(args, &cfg1, input, broker.port, &[]) {
                Ok(v) => {
                    let fps = v["fps"].as_f64();
                    say(format!("  {:.2} frames/s", fps.unwrap_or(0.0)));
                    if fps > fig.python_fps {
                        fig.python_fps = fps;
                        fig.python_peak_rss_mb = v["peak_rss_mb"].as_f64();
                    }
                }
                Err(e) => fig.python_note = Some(e),
            }
        }
    }
    if !skip("capacity") {
        let secs = args.seconds.max(20.0);
        let mut at_best: Vec<f32> = Vec::new();
        let mut best = 0;
        let mut steps: Vec<(usize, bool, f64)> = Vec::new();
        let n = step_capacity_from(args.max_cameras, hint.unwrap_or(1), |n| {
            let Ok(cfg) = bench_config(base, input, record, n, true, broker.port, work.path())
            else {
                return false;
            };
            let plan = cfg.inference_plan();
            match run_daemon(cfg, secs) {
                Ok(r) => {
                    let ok = kept_up(n, 2.0, secs, r.sampled, r.dropped, &r.latencies);
                    say(format!(
                        "capacity: scenewatch {n} camera(s), {} worker(s) × {} thread(s): sampled {} dropped {}, RSS up to {:.0} MB → {}",
                        plan.workers,
                        plan.threads,
                        r.sampled,
                        r.dropped,
                        r.rss_max_mb,
                        if ok { "kept up" } else { "fell behind" }
                    ));
                    steps.push((n, ok, r.rss_max_mb));
                    if ok && n > best {
                        best = n;
                        at_best = r.latencies;
                    }
                    ok
                }
                Err(e) => {
                    say(format!("capacity: {n} camera(s) failed: {e}"));
                    false
                }
            }
        });
        fig.cameras_realtime = n;
        steps.sort_by_key(|s| s.0);
        fig.capacity_steps = steps;
        fig.p50_latency_ms = quantile(&mut at_best, 0.5) * 1e3;
        fig.p95_latency_ms = quantile(&mut at_best, 0.95) * 1e3;
        fig.peak_rss_mb = fig.peak_rss_mb.max(peak_rss_mb());
        if fig.python_note.is_none() && !skip("python") {
            // from 80 % of what its single-process rate allows at 2 fps a camera
            let start = fig.python_fps.map_or(1, |f| (f / 2.0 * 0.8) as usize);
            let pn = step_capacity_from(args.max_cameras, start, |n| {
                let r = python(
                    args,
                    &cfg1,
                    input,
                    broker.port,
                    &[
                        "--cameras",
                        &n.to_string(),
                        "--realtime",
                        "--seconds",
                        &secs.to_string(),
                    ],
                );
                let ok = r
                    .as_ref()
                    .is_ok_and(|v| v["kept_up"].as_bool() == Some(true));
                say(format!(
                    "capacity: python {n} camera(s): {}",
                    r.map(|v| v.to_string()).unwrap_or_else(|e| e)
                ));
                ok
            });
            fig.python_cameras_realtime = Some(pn);
        }
    }
    if fig.bound_fps > 0.0 {
        fig.e2e_over_bound = fig.e2e_fps / fig.bound_fps;
    }
    fig.e2e_over_python = fig.python_fps.filter(|p| *p > 0.0).map(|p| fig.e2e_fps / p);
    Ok(fig)
}

/// The issue-17 figures of one input: decode CPU (a decode-only pass), the ingest pipeline's CPU, preprocessing
/// and each model on one thread, each measured alone; the whole-pipeline CPU bound from their sum; and the ratios
/// to the end-to-end run and capacity in `fig`.
fn measure_input(
    args: &BenchArgs,
    base: &Config,
    name: &str,
    path: &Path,
    record: Option<&Path>,
    say: &dyn Fn(String),
) -> anyhow::Result<InputFigures> {
    let cam = base
        .cameras
        .first()
        .ok_or_else(|| anyhow::anyhow!("the config has no camera to copy"))?;
    // one decoder thread: the least CPU per frame, and what every camera gets once cameras ≥ cores
    let decode = crate::ingest::pipeline::DecodeOptions {
        skip: cam.decode_skip,
        analysis_height: cam.analysis_height,
        threads: 1,
    };
    let (width, height, fps, codec) = probe_video(path).unwrap_or((0, 0, 0.0, String::new()));
    let mut out = InputFigures {
        name: name.to_string(),
        path: path.display().to_string(),
        width,
        height,
        fps,
        codec,
        decode_skip: decode.skip.as_str().to_string(),
        record_input: record.map(|r| r.display().to_string()),
        ..Default::default()
    };
    if args.skip.iter().any(|s| s == "decode") {
        return Ok(out);
    }
    say(format!(
        "decode ({name}): decode-only and ingest passes, alone…"
    ));
    let dec = super::bench_inputs::decode_pass(path, 2.0, decode)?;
    let threaded = super::bench_inputs::decode_pass(
        path,
        2.0,
        crate::ingest::pipeline::DecodeOptions {
            threads: 0,
            ..decode
        },
    )?;
    let ing = super::bench_inputs::ingest_pass(path, 2.0, decode)?;
    let sampled = ing.sampled.max(1) as f64;
    out.decoder = ing.decoder.clone().or(dec.decoder.clone());
    out.decoded_per_sampled = ing.decoded as f64 / sampled;
    out.skipped_per_sampled = ing.skipped as f64 / sampled;
    out.decode_ms_per_decoded_frame = dec.cpu_s * 1e3 / dec.decoded.max(1) as f64;
    out.decode_ms_per_sampled_frame = dec.cpu_s * 1e3 / sampled;
    out.decode_ms_per_sampled_frame_threaded = threaded.cpu_s * 1e3 / sampled;
    out.ingest_ms_per_sampled_frame = ing.cpu_s * 1e3 / sampled;
    if let Some(rec) = record {
        let r = super::bench_inputs::record_pass(rec)?;
        out.record_ms_per_sampled_frame = r.cpu_s * 1e3 / sampled;
        say(format!(
            "  record input {}: {} access units parsed, not decoded: {:.2} ms CPU per sampled frame",
            rec.display(),
            r.decoded,
            out.record_ms_per_sampled_frame
        ));
    }
    say(format!(
        "  {} frames decoded by {} on one thread, {:.2} ms CPU each; {} sampled: decode {:.1} ms ({:.1} with frame threads), ingest {:.1} ms CPU per sampled frame",
        dec.decoded,
        out.decoder.as_deref().unwrap_or("?"),
        out.decode_ms_per_decoded_frame,
        ing.sampled,
        out.decode_ms_per_sampled_frame,
        out.decode_ms_per_sampled_frame_threaded,
        out.ingest_ms_per_sampled_frame
    ));
    // the models' work, without ORT's thread pool (its spinning threads would count as CPU)
    let mut one = bench_config(base, path, None, 1, false, 0, Path::new("/nonexistent"))?;
    one.inference.workers = 1;
    one.inference.intra_threads = 1;
    say(format!("models ({name}): one ORT thread, alone…"));
    let b = bound(&one, path, args.seconds.clamp(5.0, 10.0))?;
    out.preprocess_ms = b.preprocess_ms;
    out.model_ms = b.stage_ms;
    out.bound_cpu();
    say(format!(
        "  CPU per sampled frame {:.1} ms (ingest {:.1}, preprocess {:.1}, models {:.1}) → CPU bound {:.1} frames/s",
        out.cpu_ms_per_sampled_frame,
        out.ingest_ms_per_sampled_frame,
        out.preprocess_ms,
        out.model_ms.iter().map(|(_, v)| v).sum::<f64>(),
        out.cpu_bound_fps
    ));
    Ok(out)
}

impl InputFigures {
    /// The essential CPU per sampled frame (ingest + preprocess + models + events) and the bound it sets.
    fn bound_cpu(&mut self) {
        let models: f64 = self.model_ms.iter().map(|(_, v)| v).sum();
        self.cpu_ms_per_sampled_frame = self.ingest_ms_per_sampled_frame
            + self.record_ms_per_sampled_frame
            + self.preprocess_ms
            + models
            + self.events_ms;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        if self.cpu_ms_per_sampled_frame > 0.0 && self.ingest_ms_per_sampled_frame > 0.0 {
            self.cpu_bound_fps = cores * 1e3 / self.cpu_ms_per_sampled_frame;
        }
    }

    /// Where the capacity search starts: 80 % of the cameras the CPU bound allows at 2 fps each.
    fn cameras_hint(&self) -> Option<usize> {
        (self.cpu_bound_fps > 0.0).then(|| ((self.cpu_bound_fps / 2.0 * 0.8) as usize).max(1))
    }

    /// The phases' figures (end to end, bound, Python, capacity) and the ratios to the CPU bound.
    fn add_runs(&mut self, fig: &Figures) {
        self.bound_fps = fig.bound_fps;
        self.e2e_fps = fig.e2e_fps;
        self.e2e_box_fps = fig.e2e_box_fps;
        self.e2e_over_bound = fig.e2e_over_bound;
        self.cameras_realtime = fig.cameras_realtime;
        self.python_cameras_realtime = fig.python_cameras_realtime;
        self.python_fps = fig.python_fps;
        self.e2e_stage_ms = fig.e2e_stage_ms.clone();
        self.capacity_steps = fig.capacity_steps.clone();
        self.events_ms = fig
            .e2e_stage_ms
            .iter()
            .find(|(s, _)| s == "events")
            .map_or(0.0, |(_, v)| *v);
        self.publish_ms = fig.e2e_publish_ms;
        self.bound_cpu();
        if self.cpu_bound_fps > 0.0 {
            self.e2e_over_cpu_bound = self.e2e_fps / self.cpu_bound_fps;
            self.e2e_box_over_cpu_bound = self.e2e_box_fps / self.cpu_bound_fps;
            self.capacity_over_cpu_bound = 2.0 * self.cameras_realtime as f64 / self.cpu_bound_fps;
        }
    }
}

/// Width, height, frame rate and codec of a file's first video stream (from the decoder's input caps).
fn probe_video(path: &Path) -> Option<(u32, u32, f64, String)> {
    use gstreamer as gst;
    use gstreamer::prelude::*;
    gst::init().ok()?;
    let abs = std::path::absolute(path).ok()?;
    let uri = gst::glib::filename_to_uri(&abs, None).ok()?;
    let desc = format!("uridecodebin uri=\"{uri}\" caps=video/x-h264;video/x-h265;video/x-raw;video/mpeg;video/x-divx;video/x-msmpeg;video/x-vp8;video/x-vp9;video/x-av1;image/jpeg ! fakesink");
    let p = gst::parse::launch(&desc)
        .ok()?
        .downcast::<gst::Pipeline>()
        .ok()?;
    p.set_state(gst::State::Paused).ok()?;
    let (res, _, _) = p.state(gst::ClockTime::from_seconds(10));
    let sink = p.iterate_sinks().into_iter().flatten().next();
    let caps = sink
        .and_then(|s| s.static_pad("sink"))
        .and_then(|pad| pad.current_caps());
    let _ = p.set_state(gst::State::Null);
    res.ok()?;
    let st = caps?.structure(0)?.to_owned();
    let codec = match st.name().as_str() {
        "video/x-h264" => "h264".to_string(),
        "video/x-h265" => "h265".to_string(),
        other => other.trim_start_matches("video/").to_string(),
    };
    let w = st.get::<i32>("width").ok()? as u32;
    let h = st.get::<i32>("height").ok()? as u32;
    let fps = st
        .get::<gst::Fraction>("framerate")
        .map_or(0.0, |f| f.numer() as f64 / f.denom().max(1) as f64);
    Some((w, h, fps, codec))
}

fn print_table(f: &Figures) {
    let opt = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{v:.2}"));
    println!(
        "scenewatch bench on {} ({} sampled frames at 2 fps)",
        f.input, f.frames
    );
    println!("providers: {:?}", f.providers);
    println!("{:<44} {:>10}", "phase", "value");
    println!("{:<44} {:>10.2}", "inference bound (frames/s)", f.bound_fps);
    println!(
        "{:<44} {:>10.2}",
        "scenewatch end to end (frames/s)", f.e2e_fps
    );
    println!(
        "{:<44} {:>10.2}",
        "scenewatch end to end (clips/s)", f.e2e_clips_per_s
    );
    println!(
        "{:<44} {:>10}",
        "python reference (frames/s)",
        opt(f.python_fps)
    );
    println!("{:<44} {:>10.3}", "e2e / bound", f.e2e_over_bound);
    println!("{:<44} {:>10}", "e2e / python", opt(f.e2e_over_python));
    println!(
        "{:<44} {:>10}",
        "real-time cameras at 2 fps: scenewatch", f.cameras_realtime
    );
    println!(
        "{:<44} {:>10}",
        "real-time cameras at 2 fps: python",
        f.python_cameras_realtime
            .map_or("—".into(), |v| v.to_string())
    );
    println!(
        "{:<44} {:>10.0}",
        "latency p50, frame → publisher (ms)", f.p50_latency_ms
    );
    println!(
        "{:<44} {:>10.0}",
        "latency p95, frame → publisher (ms)", f.p95_latency_ms
    );
    println!("{:<44} {:>10.0}", "peak RSS scenewatch (MB)", f.peak_rss_mb);
    println!(
        "{:<44} {:>10}",
        "peak RSS python (MB)",
        opt(f.python_peak_rss_mb)
    );
    if let Some(n) = &f.python_note {
        println!("python: {n}");
    }
    let line = |v: &[(String, f64)]| {
        v.iter()
            .filter(|(_, ms)| *ms > 0.0)
            .map(|(n, ms)| format!("{n} {ms:.1}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !f.e2e_stage_ms.is_empty() {
        println!(
            "end to end, ms per sampled frame: {}",
            line(&f.e2e_stage_ms)
        );
    }
    if !f.bound_stage_ms.is_empty() {
        println!("bound, ms per frame: {}", line(&f.bound_stage_ms));
    }
    if !f.detector_batch_ms.is_empty() {
        let sizes: Vec<String> = f
            .detector_batch_ms
            .iter()
            .map(|(n, ms)| format!("{n}: {ms:.1}"))
            .collect();
        println!(
            "detector alone, ms per frame by batch size: {}",
            sizes.join(", ")
        );
    }
    for i in &f.inputs {
        println!(
            "input {}: decode {:.1} ms ({:.1} with frame threads), ingest {:.1}, record {:.1} ms CPU per sampled frame; \
             CPU bound {:.1} frames/s; e2e {:.1} ({:.2} of it), whole box {:.1} ({:.2}); cameras {} (python {}), {:.2} of the CPU bound",
            i.name,
            i.decode_ms_per_sampled_frame,
            i.decode_ms_per_sampled_frame_threaded,
            i.ingest_ms_per_sampled_frame,
            i.record_ms_per_sampled_frame,
            i.cpu_bound_fps,
            i.e2e_fps,
            i.e2e_over_cpu_bound,
            i.e2e_box_fps,
            i.e2e_box_over_cpu_bound,
            i.cameras_realtime,
            i.python_cameras_realtime
                .map_or("—".into(), |v| v.to_string()),
            i.capacity_over_cpu_bound
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_stepping_finds_the_largest_count_that_keeps_up() {
        for limit in [0usize, 1, 2, 3, 5, 8, 11, 16] {
            let mut tried = Vec::new();
            let got = step_capacity(16, |n| {
                tried.push(n);
                n <= limit
            });
            assert_eq!(got, limit, "limit {limit}, tried {tried:?}");
            assert!(tried.len() <= 9, "{tried:?}");
        }
    }

    #[test]
    fn capacity_stepping_from_a_guess_finds_the_same_count_in_fewer_steps() {
        for limit in [0usize, 1, 3, 7, 9, 10, 12, 15, 24] {
            for start in [1usize, 5, 8, 10, 12, 30] {
                let mut tried = Vec::new();
                let got = step_capacity_from(24, start, |n| {
                    tried.push(n);
                    n <= limit
                });
                assert_eq!(got, limit, "limit {limit}, start {start}, tried {tried:?}");
                assert!(tried.len() <= 12, "limit {limit}, start {start}: {tried:?}");
            }
        }
        let mut tried = Vec::new();
        step_capacity_from(24, 8, |n| {
            tried.push(n);
            n <= 10
        });
        assert!(tried.len() <= 4, "a close guess: {tried:?}");
    }

    #[test]
    fn keeping_up_means_no_drops_the_full_rate_and_no_growing_lag() {
        let flat = vec![4.2f32; 40];
        assert!(kept_up(2, 2.0, 20.0, 80, 0, &flat));
        assert!(!kept_up(2, 2.0, 20.0, 80, 3, &flat), "dropped frames");
        assert!(!kept_up(2, 2.0, 20.0, 60, 0, &flat), "sampled too few");
        let growing: Vec<f32> = (0..40).map(|i| 4.0 + i as f32 * 0.1).collect();
        assert!(!kept_up(2, 2.0, 20.0, 80, 0, &growing), "lag grows");
        let standing = vec![19.0f32; 40];
        assert!(
            !kept_up(2, 2.0, 20.0, 80, 0, &standing),
            "a standing backlog"
        );
        let mut v = vec![3.0f32, 1.0, 2.0, 4.0];
        assert_eq!(quantile(&mut v, 0.5), 2.0);
        assert_eq!(quantile(&mut v, 0.95), 4.0);
    }
}
