//! Camera-shaped inputs for `scenewatch bench --inputs` (issue 17), and the CPU the ingest path spends on them.
//!
//! The inputs are made once from a development clip (the bench's input, vtest.avi by default) with Debian's
//! encoders (x264enc from gstreamer1.0-plugins-ugly, x265enc from -bad) and cached under
//! `$SCENEWATCH_CACHE/bench` (default /var/cache/scenewatch/bench): the clip scaled to the camera's size and
//! frame rate, with faint per-frame sensor-like noise (videotestsrc snow at 4 % over it), so that frames repeated
//! by the rate change are not free to encode or decode; constant bitrate, a keyframe every 2 s, no B-frames, as
//! IP cameras send. Made at "veryfast", which costs the decoder about what a camera's stream does.
//!
//! CPU is measured with getrusage(RUSAGE_SELF) around a pass that runs alone in the process (the decoder's
//! own threads included): a decode-only pass (decoder → fakesink) and an ingest pass (the daemon's own
//! pipeline: decode, sampling, scaling, colour conversion and copy of the sampled frames).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;

use crate::clock::SystemClock;
use crate::config::DropPolicy;
use crate::ingest::pipeline::{self, DecodeOptions, SinkShared};
use crate::ingest::source::SourceKind;
use crate::shutdown::Shutdown;

/// A camera-shaped input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InputSpec {
    pub name: &'static str,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    /// "h264" or "h265".
    pub codec: &'static str,
    pub kbps: u32,
    /// Seconds between keyframes.
    pub gop_s: u32,
    pub what: &'static str,
}

/// The inputs `--inputs` can name (besides `clip`, the bench's own input as it is).
pub const SPECS: [InputSpec; 4] = [
    InputSpec {
        name: "camera1080",
        width: 1920,
        height: 1080,
        fps: 25,
        codec: "h264",
        kbps: 4096,
        gop_s: 2,
        what: "a 1080p H.264 main stream",
    },
    InputSpec {
        name: "camera1080h265",
        width: 1920,
        height: 1080,
        fps: 25,
        codec: "h265",
        kbps: 2048,
        gop_s: 2,
        what: "a 1080p H.265 main stream",
    },
    InputSpec {
        name: "camera720",
        width: 1280,
        height: 720,
        fps: 15,
        codec: "h264",
        kbps: 2048,
        gop_s: 2,
        what: "a 720p H.264 stream at 15 fps",
    },
    InputSpec {
        name: "camera360",
        width: 640,
        height: 360,
        fps: 25,
        codec: "h264",
        kbps: 512,
        gop_s: 2,
        what: "camera1080's sub-stream: 640x360 H.264 at 25 fps from the same frames",
    },
];

/// Seconds of each made input (the benchmark loops it for the capacity steps).
pub const SECONDS: u32 = 30;

pub fn spec(name: &str) -> Option<&'static InputSpec> {
    SPECS.iter().find(|s| s.name == name)
}

/// Where made inputs are cached.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("SCENEWATCH_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(crate::eval::manifest::DEFAULT_CACHE_DIR))
        .join("bench")
}

/// The gst-launch description that makes `spec` from `source` into `out`.
pub fn launch_description(spec: &InputSpec, source: &Path, out: &Path) -> String {
    let (w, h, fps) = (spec.width, spec.height, spec.fps);
    let gop = spec.fps * spec.gop_s;
    let frames = spec.fps * SECONDS;
    let quote = |p: &Path| {
        p.display()
            .to_string()
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
    };
    let enc = match spec.codec {
        "h265" => format!(
            "x265enc speed-preset=veryfast bitrate={} key-int-max={gop} option-string=\"bframes=0\" ! h265parse",
            spec.kbps
        ),
        _ => format!(
            "x264enc speed-preset=veryfast bitrate={} key-int-max={gop} bframes=0 ! video/x-h264,profile=high ! h264parse",
            spec.kbps
        ),
    };
    format!(
        "compositor name=mix background=black sink_1::alpha=0.04 \
         ! video/x-raw,format=I420,width={w},height={h},framerate={fps}/1 ! identity eos-after={frames} \
         ! {enc} ! matroskamux ! filesink location=\"{}\" \
         filesrc location=\"{}\" ! decodebin ! videoconvert ! videoscale \
         ! video/x-raw,width={w},height={h},pixel-aspect-ratio=1/1 ! videorate ! video/x-raw,framerate={fps}/1 ! mix.sink_0 \
         videotestsrc pattern=snow ! video/x-raw,width={w},height={h},framerate={fps}/1 ! mix.sink_1",
        quote(out),
        quote(source)
    )
}

/// The cached input made from `source`, making it first when missing.
pub fn make(spec: &InputSpec, source: &Path, say: &dyn Fn(String)) -> anyhow::Result<PathBuf> {
    let stem = source
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_else(|| "input".into());
    let dir = cache_dir();
    let out = dir.join(format!("{}-{stem}-{SECONDS}s-v1.mkv", spec.name));
    if out.is_file() {
        return Ok(out);
    }
    std::fs::create_dir_all(&dir).map_err(|e| {
        anyhow::anyhow!(
            "{}: {e} (the bench caches made inputs there)",
            dir.display()
        )
    })?;
    let part = out.with_extension("mkv.part");
    say(format!(
        "making {} ({}) from {} with GStreamer's {} encoder (once; cached as {})…",
        spec.name,
        spec.what,
        source.display(),
        if spec.codec == "h265" { "x265" } else { "x264" },
        out.display()
    ));
    gst::init()?;
    let desc = launch_description(spec, source, &part);
    let p = gst::parse::launch(&desc).map_err(|e| {
        anyhow::anyhow!(
            "{}: {e} (x264enc is in gstreamer1.0-plugins-ugly, x265enc in gstreamer1.0-plugins-bad; scripts/deps.sh)",
            spec.name
        )
    })?;
    let t0 = Instant::now();
    p.set_state(gst::State::Playing)?;
    let bus = p
        .bus()
        .ok_or_else(|| anyhow::anyhow!("pipeline has no bus"))?;
    let result = loop {
        let msg = bus.timed_pop_filtered(
            gst::ClockTime::from_seconds(1),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        );
        match msg.as_ref().map(|m| m.view()) {
            Some(gst::MessageView::Eos(_)) => break Ok(()),
            Some(gst::MessageView::Error(e)) => {
                break Err(anyhow::anyhow!("making {}: {}", spec.name, e.error()))
            }
            _ if t0.elapsed() > Duration::from_secs(900) => {
                break Err(anyhow::anyhow!("making {} took over 15 minutes", spec.name))
            }
            _ => {}
        }
    };
    let _ = p.set_state(gst::State::Null);
    result?;
    std::fs::rename(&part, &out)?;
    say(format!("  made in {:.0} s", t0.elapsed().as_secs_f64()));
    Ok(out)
}

/// CPU seconds (user + system) this process has used so far, all threads.
pub fn process_cpu_s() -> f64 {
    // SAFETY: getrusage writes into the struct we pass and reads nothing else
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return 0.0;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// What one pass over a file cost.
#[derive(Debug, Clone, Default)]
pub struct Pass {
    /// Frames out of the decoder.
    pub decoded: u64,
    /// Frames the sampler kept (ingest pass).
    pub sampled: u64,
    /// Compressed frames left out before the decoder (`decode_skip`).
    pub skipped: u64,
    pub cpu_s: f64,
    pub wall_s: f64,
    pub decoder: Option<String>,
}

fn shared_for(
    sample_fps: f64,
    decode: DecodeOptions,
) -> (
    Arc<SinkShared>,
    crossbeam_channel::Receiver<crate::ingest::frame::Frame>,
) {
    let (tx, rx, _) = crate::queue::bounded(8, DropPolicy::Block);
    let shared = SinkShared::new(
        Arc::from("bench"),
        Arc::new(SystemClock),
        sample_fps,
        tx,
        (0, Duration::ZERO),
    )
    .with_decode(decode);
    (shared, rx)
}

fn play(p: &gst::Pipeline, shared: &Arc<SinkShared>) -> anyhow::Result<()> {
    let d = crate::config::IngestConfig::default();
    let limits = pipeline::Watchdog {
        startup: Duration::from_secs_f64(d.startup_timeout_secs),
        stall: Duration::from_secs_f64(d.watchdog_secs),
    };
    match pipeline::run(p, shared, limits, &Shutdown::new(), &mut || {}) {
        pipeline::RunOutcome::Eos => Ok(()),
        other => anyhow::bail!("decoding pass: {other:?}"),
    }
}

/// The daemon's ingest pipeline for one camera over `path`, alone: decode, sample at `sample_fps`, scale and
/// convert the sampled frames to RGB and copy them out (the frames are then dropped).
pub fn ingest_pass(path: &Path, sample_fps: f64, decode: DecodeOptions) -> anyhow::Result<Pass> {
    gst::init()?;
    let kind = SourceKind::parse(&path.display().to_string()).map_err(anyhow::Error::msg)?;
    let (shared, rx) = shared_for(sample_fps, decode);
    let p = pipeline::build(&kind, false, &shared)?;
    let drain = std::thread::spawn(move || rx.iter().count());
    let (c0, t0) = (process_cpu_s(), Instant::now());
    let outcome = play(&p, &shared);
    let (cpu_s, wall_s) = (process_cpu_s() - c0, t0.elapsed().as_secs_f64());
    drop(p);
    drop(shared.take_queue());
    let _ = drain.join();
    outcome?;
    Ok(pass_of(&shared, cpu_s, wall_s))
}

/// Decoding alone: `path` through the decoder the daemon would plug (with `decode`'s skipping) into a fakesink.
pub fn decode_pass(path: &Path, sample_fps: f64, decode: DecodeOptions) -> anyhow::Result<Pass> {
    gst::init()?;
    let (shared, _rx) = shared_for(sample_fps, decode);
    let p = pipeline::build_decode_only(path, &shared)?;
    let (c0, t0) = (process_cpu_s(), Instant::now());
    let outcome = play(&p, &shared);
    let (cpu_s, wall_s) = (process_cpu_s() - c0, t0.elapsed().as_secs_f64());
    drop(p);
    outcome?;
    Ok(pass_of(&shared, cpu_s, wall_s))
}

/// Pairs of inputs a camera offers together (input roles): the name, its detect input and its record input.
/// `camera1080sub`: the 640×360 sub-stream decoded for detection, the 1080p main stream recorded as it is.
pub const PAIRS: [(&str, &str, &str); 1] = [("camera1080sub", "camera360", "camera1080")];

/// The detect and record inputs of a pair name.
pub fn pair(name: &str) -> Option<(&'static str, &'static str)> {
    PAIRS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, d, r)| (*d, *r))
}

/// What a record-only input costs: `path` through the pass-through path of the daemon's recording input
/// (`urisourcebin ! parsebin`, no decoder) into a fakesink, alone; `decoded` counts the access units.
pub fn record_pass(path: &Path) -> anyhow::Result<Pass> {
    gst::init()?;
    let abs = std::path::absolute(path)?;
    let uri = gst::glib::filename_to_uri(&abs, None)?;
    let p = gst::parse::launch(&format!(
        "urisourcebin uri=\"{uri}\" ! parsebin ! fakesink name=units sync=false"
    ))?
    .downcast::<gst::Pipeline>()
    .map_err(|_| anyhow::anyhow!("not a pipeline"))?;
    let units = Arc::new(std::sync::atomic::AtomicU64::new(0));
    if let Some(pad) = p.by_name("units").and_then(|s| s.static_pad("sink")) {
        let n = units.clone();
        pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            gst::PadProbeReturn::Ok
        });
    }
    let (c0, t0) = (process_cpu_s(), Instant::now());
    p.set_state(gst::State::Playing)?;
    let bus = p.bus().ok_or_else(|| anyhow::anyhow!("no bus"))?;
    let msg = bus.timed_pop_filtered(
        gst::ClockTime::from_seconds(120),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    let (cpu_s, wall_s) = (process_cpu_s() - c0, t0.elapsed().as_secs_f64());
    let _ = p.set_state(gst::State::Null);
    match msg.as_ref().map(|m| m.view()) {
        Some(gst::MessageView::Eos(_)) => {}
        Some(gst::MessageView::Error(e)) => anyhow::bail!("record pass: {}", e.error()),
        _ => anyhow::bail!("record pass: no end of stream within 120 s"),
    }
    Ok(Pass {
        decoded: units.load(std::sync::atomic::Ordering::Relaxed),
        cpu_s,
        wall_s,
        ..Pass::default()
    })
}

fn pass_of(shared: &SinkShared, cpu_s: f64, wall_s: f64) -> Pass {
    use std::sync::atomic::Ordering::Relaxed;
    Pass {
        decoded: shared.decoded.load(Relaxed),
        sampled: shared.sampled.load(Relaxed),
        skipped: shared.skipped.load(Relaxed),
        cpu_s,
        wall_s,
        decoder: shared.decoder.lock().ok().and_then(|d| d.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_descriptions_name_the_encoder_and_the_size() {
        for (i, s) in SPECS.iter().enumerate() {
            assert!(SPECS[..i].iter().all(|o| o.name != s.name));
            let d = launch_description(s, Path::new("/m/v t.avi"), Path::new("/c/o.mkv.part"));
            assert!(
                d.contains(&format!("width={},height={}", s.width, s.height)),
                "{d}"
            );
            assert!(
                d.contains(&format!("key-int-max={}", s.fps * s.gop_s)),
                "{d}"
            );
            assert!(d.contains(if s.codec == "h265" {
                "x265enc"
            } else {
                "x264enc"
            }));
            assert!(d.contains("location=\"/m/v t.avi\""), "{d}");
        }
        assert_eq!(spec("camera720").map(|s| s.fps), Some(15));
        assert!(spec("camera4k").is_none());
    }
}
