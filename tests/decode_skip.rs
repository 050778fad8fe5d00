//! Decoding less (issue 17) through the daemon's own ingest pipeline and real GStreamer decoders, on the
//! benchmark's camera-shaped sub-stream (640x360 H.264, 25 fps, a keyframe every 2 s; made once with x264enc
//! and cached like `scenewatch bench` does): `decode_skip = "auto"` must hand on exactly the frames, times and
//! pixels a full decode samples while decoding fewer frames; "keyframes" samples keyframes only;
//! `analysis_height` scales sampled frames before the colour conversion.

use std::sync::Arc;
use std::time::Duration;

use scenewatch::clock::SystemClock;
use scenewatch::cmd::bench_inputs;
use scenewatch::config::DropPolicy;
use scenewatch::ingest::decode::DecodeSkip;
use scenewatch::ingest::pipeline::{self, DecodeOptions, RunOutcome, SinkShared, Watchdog};
use scenewatch::ingest::source::SourceKind;
use scenewatch::shutdown::Shutdown;

mod common;

/// What the frame queue received: (pts, width, height, a checksum of the pixels) per sampled frame, and the
/// frames decoded and left out.
struct Run {
    frames: Vec<(Duration, u32, u32, u64)>,
    decoded: u64,
    skipped: u64,
    decoder: Option<String>,
}

fn run(file: &std::path::Path, sample_fps: f64, decode: DecodeOptions) -> Run {
    let kind = SourceKind::parse(&file.display().to_string()).expect("a file");
    let (tx, rx, _) = scenewatch::queue::bounded(8, DropPolicy::Block);
    let shared = SinkShared::new(
        Arc::from("t"),
        Arc::new(SystemClock),
        sample_fps,
        tx,
        (0, Duration::ZERO),
    )
    .with_decode(decode);
    let p = pipeline::build(&kind, false, &shared).expect("pipeline");
    let collect = std::thread::spawn(move || {
        rx.iter()
            .map(|f| {
                let sum = f.rgb.iter().enumerate().fold(0u64, |a, (i, v)| {
                    a.wrapping_add((i as u64 % 251 + 1) * u64::from(*v))
                });
                (f.pts, f.width, f.height, sum)
            })
            .collect::<Vec<_>>()
    });
    let limits = Watchdog {
        startup: Duration::from_secs(60),
        stall: Duration::from_secs(60),
    };
    let outcome = pipeline::run(&p, &shared, limits, &Shutdown::new(), &mut || {});
    drop(p);
    drop(shared.take_queue());
    assert!(matches!(outcome, RunOutcome::Eos), "{outcome:?}");
    let frames = collect.join().expect("collector");
    use std::sync::atomic::Ordering::Relaxed;
    let decoder = shared.decoder.lock().ok().and_then(|d| d.clone());
    Run {
        frames,
        decoded: shared.decoded.load(Relaxed),
        skipped: shared.skipped.load(Relaxed),
        decoder,
    }
}

fn opts(skip: DecodeSkip, analysis_height: u32) -> DecodeOptions {
    DecodeOptions {
        skip,
        analysis_height,
        threads: 0,
    }
}

fn input() -> std::path::PathBuf {
    let spec = bench_inputs::spec("camera360").expect("camera360");
    bench_inputs::make(spec, &common::media("vtest.avi"), &|s| eprintln!("{s}"))
        .expect("make camera360")
}

#[test]
fn auto_skip_samples_the_same_frames_as_a_full_decode_and_decodes_fewer() {
    let file = input();
    for fps in [2.0, 0.5] {
        let full = run(&file, fps, opts(DecodeSkip::Off, 0));
        let auto = run(&file, fps, opts(DecodeSkip::Auto, 0));
        assert_eq!(full.decoder.as_deref(), Some("avdec_h264"));
        assert_eq!(full.skipped, 0);
        // 30 s at 25 fps
        assert!((740..=760).contains(&full.decoded), "{}", full.decoded);
        assert!(
            full.frames.len() as f64 >= 30.0 * fps - 1.0,
            "{}",
            full.frames.len()
        );
        assert_eq!(
            auto.frames, full.frames,
            "at {fps} fps: the same sampled frames, times and pixels"
        );
        if fps > 1.0 {
            // `[ingest] decode_threads = 1` (auto with cameras ≥ cores): one decoder thread, the same pictures
            let one = run(
                &file,
                fps,
                DecodeOptions {
                    threads: 1,
                    ..opts(DecodeSkip::Auto, 0)
                },
            );
            assert_eq!(one.frames, full.frames, "one decoder thread");
        }
        assert_eq!(auto.decoded + auto.skipped, full.decoded);
        // 2 fps: the frames between the last sample of each 2 s and the next keyframe (≈ 20 %); 0.5 fps: all but
        // the keyframes once the interval is learned
        let saved = auto.skipped as f64 / full.decoded as f64;
        let want = if fps > 1.0 { 0.15 } else { 0.8 };
        assert!(
            saved >= want,
            "at {fps} fps only {:.0} % left out",
            saved * 100.0
        );
    }
}

#[test]
fn keyframes_mode_samples_keyframes_and_analysis_height_scales_before_conversion() {
    let file = input();
    let keys = run(&file, 2.0, opts(DecodeSkip::Keyframes, 0));
    // one keyframe every 2 s: 15 in 30 s, each at an even second
    assert_eq!(keys.decoded, 15, "{}", keys.decoded);
    assert_eq!(keys.frames.len(), 15);
    for (pts, ..) in &keys.frames {
        let ms = pts.as_millis();
        assert!(ms % 2000 <= 2 || ms % 2000 >= 1998, "sampled at {pts:?}");
    }
    let small = run(&file, 2.0, opts(DecodeSkip::Auto, 180));
    let full = run(&file, 2.0, opts(DecodeSkip::Auto, 0));
    assert_eq!(small.frames.len(), full.frames.len());
    assert!(
        small.frames.iter().all(|f| (f.1, f.2) == (320, 180)),
        "{:?}",
        &small.frames[0]
    );
    assert!(full.frames.iter().all(|f| (f.1, f.2) == (640, 360)));
    let times = |r: &Run| r.frames.iter().map(|f| f.0).collect::<Vec<_>>();
    assert_eq!(times(&small), times(&full));
    // never scaled up
    let same = run(&file, 2.0, opts(DecodeSkip::Auto, 720));
    assert!(same.frames.iter().all(|f| (f.1, f.2) == (640, 360)));
}
