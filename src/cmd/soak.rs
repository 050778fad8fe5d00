//! `scenewatch soak`: runs the real daemon in-process on N copies of one camera (files looped in real time) for
//! M minutes, samples resident memory and queue depths to a CSV, then drains and reports drift. Not a CI test:
//! it answers "does it leak or fall behind over hours?", which a short test cannot.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::clock::SystemClock;
use crate::config::Config;
use crate::ingest::{CameraState, CameraStatus};
use crate::shutdown::Shutdown;
use crate::supervisor::{self, RunOptions};
use crate::telemetry::Metrics;

pub struct SoakArgs {
    pub config: PathBuf,
    /// Camera to copy (default: the config's first camera); `input` replaces its URL.
    pub camera: Option<String>,
    pub input: Option<PathBuf>,
    pub cameras: usize,
    pub minutes: f64,
    pub every_secs: f64,
    pub csv: PathBuf,
}

/// One CSV row.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    pub t_s: f64,
    pub rss_mb: f64,
    pub running: usize,
    pub frames_sampled: u64,
    pub frames_dropped: u64,
    pub frame_queue_max: u64,
    pub clip_queue: u64,
    pub clips: u64,
    pub spool_pending: u64,
    pub acked: u64,
}

const HEADER: &str = "t_s,rss_mb,cameras_running,frames_sampled,frames_dropped,frame_queue_depth_max,clip_queue_depth,clips_inferred,spool_pending,messages_acked";

impl Sample {
    fn csv(&self) -> String {
        format!(
            "{:.1},{:.1},{},{},{},{},{},{},{},{}",
            self.t_s,
            self.rss_mb,
            self.running,
            self.frames_sampled,
            self.frames_dropped,
            self.frame_queue_max,
            self.clip_queue,
            self.clips,
            self.spool_pending,
            self.acked
        )
    }
}

/// Resident set size of this process, from /proc (MB).
pub fn rss_mb() -> f64 {
    proc_status_mb("VmRSS:")
}

/// A memory field of /proc/self/status (`VmRSS:`, `VmHWM:`, …) in MB; 0 when it cannot be read.
pub fn proc_status_mb(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// Least-squares slope of y over x (per unit of x); 0 with fewer than two points.
pub fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    if points.len() < 2 {
        return 0.0;
    }
    let (mx, my) = points
        .iter()
        .fold((0.0, 0.0), |(a, b), (x, y)| (a + x / n, b + y / n));
    let (num, den) = points.iter().fold((0.0, 0.0), |(num, den), (x, y)| {
        (num + (x - mx) * (y - my), den + (x - mx) * (x - mx))
    });
    if den == 0.0 {
        0.0
    } else {
        num / den
    }
}

fn sample(t0: Instant, metrics: &Metrics, sts: &[Arc<CameraStatus>]) -> Sample {
    Sample {
        t_s: t0.elapsed().as_secs_f64(),
        rss_mb: rss_mb(),
        running: sts
            .iter()
            .filter(|s| s.info().state == CameraState::Running)
            .count(),
        frames_sampled: sts.iter().map(|s| s.sampled.load(Ordering::Relaxed)).sum(),
        frames_dropped: sts
            .iter()
            .map(|s| s.queue.dropped.load(Ordering::Relaxed))
            .sum(),
        frame_queue_max: sts
            .iter()
            .map(|s| s.queue.depth.load(Ordering::Relaxed))
            .max()
            .unwrap_or(0),
        clip_queue: metrics.clip_queue_depth.get(),
        clips: metrics.clips_inferred.get(),
        spool_pending: metrics.spool_pending.get(),
        acked: metrics.messages_acked.get(),
    }
}

pub fn run(args: SoakArgs) -> anyhow::Result<()> {
    let mut cfg = Config::load(&args.config)?;
    let template = match &args.camera {
        Some(name) => cfg.cameras.iter().find(|c| &c.name == name),
        None => cfg.cameras.first(),
    }
    .cloned()
    .ok_or_else(|| anyhow::anyhow!("{}: no such camera to copy", args.config.display()))?;
    let mut template = template;
    if let Some(input) = &args.input {
        template.url = std::path::absolute(input)?.display().to_string();
        template.inputs.clear();
    }
    template.enabled = true;
    if template.is_file() {
        template.looping = true;
        template.realtime = true;
    }
    cfg.cameras = (1..=args.cameras.max(1))
        .map(|i| {
            let mut c = template.clone();
            c.name = format!("soak-{i}");
            c
        })
        .collect();
    let problems = cfg.validate();
    if !problems.is_empty() {
        anyhow::bail!(
            "soak config invalid: {}",
            problems
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    let mut csv = std::fs::File::create(&args.csv)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.csv.display()))?;
    writeln!(csv, "{HEADER}")?;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .worker_threads(2)
        .build()?;
    let metrics = Arc::new(Metrics::default());
    let statuses: Arc<Mutex<Vec<Arc<CameraStatus>>>> = Arc::default();
    let shutdown = Shutdown::new();
    let duration = Duration::from_secs_f64(args.minutes.max(0.1) * 60.0);
    let every = Duration::from_secs_f64(args.every_secs.max(1.0));
    let samples: Arc<Mutex<Vec<Sample>>> = Arc::default();
    let n = cfg.cameras.len();
    eprintln!(
        "soak: {n} camera(s) copying '{}' ({}), {:.1} min, sampling every {:.0} s to {}",
        template.name,
        template.detect_url(),
        args.minutes,
        every.as_secs_f64(),
        args.csv.display()
    );
    let report = rt.block_on(async {
        let t0 = Instant::now();
        let sampler = {
            let (m, sts, sd, out) = (
                metrics.clone(),
                statuses.clone(),
                shutdown.clone(),
                samples.clone(),
            );
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                loop {
                    tick.tick().await;
                    let list = sts.lock().map(|v| v.clone()).unwrap_or_default();
                    let s = sample(t0, &m, &list);
                    if writeln!(csv, "{}", s.csv()).is_err() {
                        tracing::error!("cannot write the soak CSV");
                    }
                    eprintln!(
                        "soak t={:>6.0}s rss={:>6.1}MB running={} sampled={} dropped={} fq_max={} cq={} clips={} spool={}",
                        s.t_s, s.rss_mb, s.running, s.frames_sampled, s.frames_dropped, s.frame_queue_max, s.clip_queue, s.clips, s.spool_pending
                    );
                    if let Ok(mut v) = out.lock() {
                        v.push(s);
                    }
                    if t0.elapsed() >= duration {
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
    let samples = samples.lock().map(|v| v.clone()).unwrap_or_default();
    print_report(&samples, n, duration, every);
    report.map(|_| ()).map_err(|e| anyhow::anyhow!("{e}"))
}

fn print_report(samples: &[Sample], cameras: usize, duration: Duration, every: Duration) {
    // the first minute (or 10 %) is warm-up: model arenas, label banks, GStreamer buffer pools
    let warm = (duration.as_secs_f64() * 0.1).clamp(every.as_secs_f64(), 60.0);
    let steady: Vec<&Sample> = samples.iter().filter(|s| s.t_s >= warm).collect();
    let (Some(first), Some(last)) = (steady.first(), steady.last()) else {
        println!("soak: too short for a report");
        return;
    };
    let pts: Vec<(f64, f64)> = steady.iter().map(|s| (s.t_s / 3600.0, s.rss_mb)).collect();
    let max_rss = steady.iter().map(|s| s.rss_mb).fold(0.0, f64::max);
    let secs = (last.t_s - first.t_s).max(1e-6);
    let expected = cameras as f64 * 2.0;
    println!(
        "soak report: {cameras} camera(s), {:.1} min",
        last.t_s / 60.0
    );
    // growth that stops (allocator arenas and GStreamer pools filling up) shows as a slope that falls to ~0 in
    // the second half; a leak keeps its slope
    let half = &pts[pts.len() / 2..];
    let half_drift =
        half.last().map(|l| l.1).unwrap_or(0.0) - half.first().map(|f| f.1).unwrap_or(0.0);
    println!(
        "  RSS after warm-up {:.1} MB, at end {:.1} MB, max {:.1} MB; drift {:+.1} MB; slope {:+.1} MB/h overall, {:+.1} MB/h over the second half ({:+.1} MB)",
        first.rss_mb,
        last.rss_mb,
        max_rss,
        last.rss_mb - first.rss_mb,
        slope(&pts),
        slope(half),
        half_drift
    );
    println!(
        "  sampled {:.2} frames/s (target {expected:.1} at 2 fps per camera); dropped {}; frame queue max {}; clip queue max {}",
        (last.frames_sampled - first.frames_sampled) as f64 / secs,
        last.frames_dropped,
        steady.iter().map(|s| s.frame_queue_max).max().unwrap_or(0),
        steady.iter().map(|s| s.clip_queue).max().unwrap_or(0),
    );
    println!(
        "  clips {:.2}/s; spool max {}; messages acked {}",
        (last.clips - first.clips) as f64 / secs,
        steady.iter().map(|s| s.spool_pending).max().unwrap_or(0),
        last.acked
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slope_of_a_line_and_of_noise() {
        let line: Vec<(f64, f64)> = (0..10).map(|i| (i as f64, 3.0 + 2.0 * i as f64)).collect();
        assert!((slope(&line) - 2.0).abs() < 1e-9);
        assert_eq!(slope(&[(1.0, 5.0)]), 0.0);
        let flat: Vec<(f64, f64)> = (0..10)
            .map(|i| (i as f64, if i % 2 == 0 { 1.0 } else { -1.0 }))
            .collect();
        assert!(slope(&flat).abs() < 0.25);
    }

    #[test]
    fn rss_is_read_from_proc() {
        assert!(rss_mb() > 1.0);
    }
}
