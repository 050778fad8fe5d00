//! The start-up watchdog against a real GStreamer hang: the recording branch scenewatch used to build (tee →
//! leaky queue → `videorate max-rate=5` → videoscale → jpegenc → sink) deadlocks in preroll on an H.264 file
//! whose width is not a multiple of 16 (issue 13). The daemon no longer builds that branch; here it is built by
//! hand around the daemon's own analysis path (a fakesink stands for the old appsink: both preroll alike), so
//! the watchdog meets the hang it exists for: it must end the run within its limit and say what GStreamer was
//! waiting on, instead of waiting forever.

mod common;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use scenewatch::clock::SystemClock;
use scenewatch::config::DropPolicy;
use scenewatch::ingest::frame::Frame;
use scenewatch::ingest::pipeline::{self, RunOutcome, SinkShared, Watchdog};
use scenewatch::shutdown::Shutdown;

fn h264_360x288(dir: &std::path::Path) -> std::path::PathBuf {
    let out = dir.join("x.mp4");
    let st = Command::new("ffmpeg")
        .args(["-loglevel", "error", "-y", "-nostdin", "-f", "lavfi", "-i"])
        .arg("testsrc2=size=360x288:rate=25:duration=3")
        .args([
            "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
        ])
        .arg(&out)
        .stdout(Stdio::null())
        .status()
        .expect("ffmpeg (scripts/deps.sh installs it)");
    assert!(st.success());
    out
}

/// The old recording branch beside the daemon's analysis path, on `file`.
fn old_shape(file: &std::path::Path, shared: &Arc<SinkShared>, videorate: bool) -> gst::Pipeline {
    let rate = if videorate {
        "videorate max-rate=5 ! "
    } else {
        ""
    };
    let desc = format!(
        "uridecodebin uri=file://{} ! tee name=t \
         t. ! queue max-size-buffers=2 max-size-bytes=0 max-size-time=0 ! videoconvert name=conv ! \
              appsink name=analysis caps=video/x-raw,format=RGB sync=false max-buffers=2 \
         t. ! queue leaky=downstream max-size-buffers=2 max-size-bytes=0 max-size-time=0 ! {rate}videoscale ! \
              video/x-raw,width=640,pixel-aspect-ratio=1/1 ! videoconvert ! jpegenc ! \
              fakesink name=recording sync=false",
        file.display()
    );
    let p = gst::parse::launch(&desc)
        .expect("pipeline")
        .downcast::<gst::Pipeline>()
        .expect("a pipeline");
    let conv = p.by_name("conv").expect("conv");
    let sink = p
        .by_name("analysis")
        .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
        .expect("analysis appsink");
    pipeline::attach_analysis(&conv, &sink, shared).expect("attach");
    p
}

fn run(file: &std::path::Path, videorate: bool) -> (RunOutcome, Duration, u64) {
    gst::init().expect("gstreamer");
    let (tx, rx, _) = scenewatch::queue::bounded::<Frame>(64, DropPolicy::DropOldest);
    let shared = SinkShared::new(
        Arc::from("watchdog"),
        Arc::new(SystemClock),
        2.0,
        tx,
        (0, Duration::ZERO),
    );
    let p = old_shape(file, &shared, videorate);
    let limits = Watchdog {
        startup: Duration::from_secs(3),
        stall: Duration::from_secs(10),
    };
    let started = Instant::now();
    let outcome = pipeline::run(&p, &shared, limits, &Shutdown::new(), &mut || {});
    let took = started.elapsed();
    drop(shared.take_queue());
    (outcome, took, rx.try_iter().count() as u64)
}

#[test]
fn a_pipeline_stuck_in_preroll_fails_within_the_startup_time_naming_the_sink_it_waits_for() {
    let dir = tempfile::tempdir().expect("tmp");
    let file = h264_360x288(dir.path());

    // without videorate the same shape plays to the end: the hang is the branch, not the file
    let (outcome, _, frames) = run(&file, false);
    assert!(matches!(outcome, RunOutcome::Eos), "{outcome:?}");
    assert!((5..=7).contains(&frames), "3 s at 2 fps: {frames}");

    let (outcome, took, frames) = run(&file, true);
    assert_eq!(frames, 0, "the deadlocked pipeline delivered frames");
    assert!(
        took < Duration::from_secs(10),
        "the watchdog took {took:?} (limit 3 s)"
    );
    let RunOutcome::StartTimeout(_, why) = outcome else {
        panic!("expected a start-up timeout, got {outcome:?}");
    };
    // the reason names the pipeline's state and the recording sink that never prerolled
    assert!(why.contains("PAUSED"), "{why}");
    assert!(
        why.contains("recording [sink, not prerolled]"),
        "the reason must name the sink GStreamer waits for: {why}"
    );
}
