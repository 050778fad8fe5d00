//! The media matrix: short clips made in the test set-up with Debian's encoders (ffmpeg), across codecs,
//! containers, frame rates, sizes, pixel shapes, rotation and audio tracks, plus broken files, each run through
//! the real daemon with alert recordings on and off. Every cell must end, within a bounded time, either with the
//! number of sampled frames its duration and `sample_fps` call for (± 1) and exit 0, or — broken files — with a
//! clear error naming the problem, camera state `error` and exit 1. Nothing may hang: a hang is a failed cell,
//! not a stuck suite.
//!
//! The clips are cached under `$SCENEWATCH_CACHE/matrix` (default /var/cache/scenewatch/matrix), keyed by the
//! exact ffmpeg command, so CI encodes them once. `cargo test --test media_matrix -- --nocapture` prints the
//! matrix as a table.

mod common;

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const SAMPLE_FPS: f64 = 2.0;
/// Longest a cell may take (the 4K clip decodes in a few seconds on 2 cores).
const CELL_LIMIT: Duration = Duration::from_secs(90);

/// What a cell must end with.
#[derive(Clone, Debug)]
enum Expect {
    /// Exit 0, state `ended`, this many sampled frames ± 1 (from the clip's duration).
    Frames,
    /// Exit 1, state `error`, a reason containing one of these (case-insensitive).
    Error(&'static [&'static str]),
    /// Part of a file of this many seconds is readable: either exit 0 with at least one sampled frame and fewer
    /// than the whole file has, or a clear error as above.
    Partial(f64, &'static [&'static str]),
}

struct Case {
    name: String,
    file: PathBuf,
    expect: Expect,
}

fn cache_dir() -> PathBuf {
    let base = std::env::var_os("SCENEWATCH_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/scenewatch"));
    let dir = base.join("matrix");
    std::fs::create_dir_all(&dir).expect("matrix cache dir");
    dir
}

/// Encodes `testsrc2` (moving test pattern) with the given ffmpeg arguments into the cache, once.
fn encode(name: &str, ext: &str, input: &str, args: &[&str]) -> PathBuf {
    let mut h = DefaultHasher::new();
    (input, args).hash(&mut h);
    let out = cache_dir().join(format!("{name}-{:016x}.{ext}", h.finish()));
    if out.is_file() {
        return out;
    }
    let tmp = out.with_extension(format!("part.{ext}"));
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-loglevel", "error", "-y", "-nostdin"]);
    for part in input.split('\u{1}') {
        cmd.args(["-f", "lavfi", "-i", part]);
    }
    cmd.args(args).arg(&tmp);
    let o = cmd
        .stdout(Stdio::null())
        .output()
        .expect("ffmpeg (scripts/deps.sh installs it)");
    assert!(
        o.status.success(),
        "ffmpeg failed for {name}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    std::fs::rename(&tmp, &out).expect("rename");
    out
}

/// Stream duration in seconds, as ffprobe reads it (the expected frame count comes from it).
fn duration(file: &Path) -> f64 {
    let o = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "default=nw=1:nk=1",
        ])
        .arg(file)
        .output()
        .expect("ffprobe");
    String::from_utf8_lossy(&o.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("no duration for {}", file.display()))
}

fn src(size: &str, rate: &str, secs: f64) -> String {
    format!("testsrc2=size={size}:rate={rate}:duration={secs}")
}

fn with_audio(video: String, secs: f64) -> String {
    format!("{video}\u{1}sine=frequency=440:duration={secs}")
}

const VP9: &[&str] = &[
    "-c:v",
    "libvpx-vp9",
    "-b:v",
    "500k",
    "-deadline",
    "realtime",
    "-cpu-used",
    "8",
];

const H264: &[&str] = &[
    "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
];

fn args<'a>(a: &[&'a [&'a str]]) -> Vec<&'a str> {
    a.iter().flat_map(|x| x.iter().copied()).collect()
}

fn good_cases() -> Vec<Case> {
    let mut v = Vec::new();
    let mut add = |name: &str, ext: &str, input: String, a: Vec<&str>| {
        v.push(Case {
            name: name.to_string(),
            file: encode(name, ext, &input, &a),
            expect: Expect::Frames,
        });
    };
    let std = || src("320x240", "25", 3.0);
    // codecs
    add(
        "h264-baseline-mp4-faststart",
        "mp4",
        std(),
        args(&[H264, &["-profile:v", "baseline", "-movflags", "+faststart"]]),
    );
    add(
        "h264-main-mp4-index-at-end",
        "mp4",
        std(),
        args(&[H264, &["-profile:v", "main"]]),
    );
    add(
        "h264-high-bframes-mkv",
        "mkv",
        std(),
        args(&[H264, &["-profile:v", "high", "-bf", "3"]]),
    );
    add(
        "h265-mp4",
        "mp4",
        std(),
        vec![
            "-c:v",
            "libx265",
            "-preset",
            "ultrafast",
            "-x265-params",
            "log-level=error",
            "-pix_fmt",
            "yuv420p",
            "-tag:v",
            "hvc1",
        ],
    );
    add(
        "mpeg4-avi",
        "avi",
        std(),
        vec!["-c:v", "mpeg4", "-q:v", "5"],
    );
    add(
        "mjpeg-avi",
        "avi",
        std(),
        vec!["-c:v", "mjpeg", "-q:v", "5", "-pix_fmt", "yuvj420p"],
    );
    add(
        "vp8-webm",
        "webm",
        std(),
        vec!["-c:v", "libvpx", "-b:v", "500k", "-deadline", "realtime"],
    );
    add("vp9-webm", "webm", std(), VP9.to_vec());
    add(
        "theora-ogv",
        "ogv",
        std(),
        vec!["-c:v", "libtheora", "-q:v", "6"],
    );
    add(
        "av1-mkv",
        "mkv",
        std(),
        vec![
            "-c:v",
            "libaom-av1",
            "-cpu-used",
            "8",
            "-row-mt",
            "1",
            "-pix_fmt",
            "yuv420p",
        ],
    );
    // containers
    add("h264-mov", "mov", std(), H264.to_vec());
    add("h264-mpegts", "ts", std(), H264.to_vec());
    add("h264-flv", "flv", std(), H264.to_vec());
    add("flv1-flv", "flv", std(), vec!["-c:v", "flv", "-q:v", "5"]);
    // frame rates
    for (name, rate) in [
        ("fps5", "5"),
        ("fps10", "10"),
        ("fps15", "15"),
        ("fps24", "24"),
        ("fps29.97", "30000/1001"),
        ("fps30", "30"),
        ("fps60", "60"),
    ] {
        add(
            &format!("h264-{name}-mp4"),
            "mp4",
            src("320x240", rate, 3.0),
            H264.to_vec(),
        );
    }
    // variable frame rate: 30 fps, then a 0.5 s gap, then 30 fps again (timestamps kept as they are)
    add(
        "h264-vfr-mkv",
        "mkv",
        format!(
            "{},setpts='N/30/TB+if(gte(N\\,30)\\,0.5/TB\\,0)'",
            src("320x240", "30", 3.0)
        ),
        args(&[H264, &["-fps_mode", "passthrough"]]),
    );
    // sizes and shapes, including the shapes that hung with recordings on (widths not a multiple of 16)
    for (name, size) in [
        ("160x120", "160x120"),
        ("360x288", "360x288"),
        ("568x320", "568x320"),
        ("1920x1080", "1920x1080"),
        ("portrait-288x512", "288x512"),
    ] {
        add(
            &format!("h264-{name}-mp4"),
            "mp4",
            src(size, "25", 3.0),
            H264.to_vec(),
        );
    }
    add(
        "h264-3840x2160-mp4",
        "mp4",
        src("3840x2160", "10", 2.0),
        args(&[H264, &["-preset", "ultrafast"]]),
    );
    // odd sizes need full chroma (4:2:0 needs even sizes)
    add(
        "h264-odd-321x241-yuv444-mp4",
        "mp4",
        src("321x241", "25", 3.0),
        vec![
            "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv444p",
        ],
    );
    add(
        "mjpeg-odd-333x197-mkv",
        "mkv",
        src("333x197", "25", 3.0),
        vec!["-c:v", "mjpeg", "-q:v", "5", "-pix_fmt", "yuvj444p"],
    );
    add(
        "h264-anamorphic-720x576-sar16-11-mp4",
        "mp4",
        format!("{},setsar=16/11", src("720x576", "25", 3.0)),
        H264.to_vec(),
    );
    add(
        "h264-rotate90-mp4",
        "mp4",
        std(),
        args(&[H264, &["-metadata:s:v:0", "rotate=90"]]),
    );
    // audio tracks
    add(
        "h264-aac-568x320-30fps-mp4",
        "mp4",
        with_audio(src("568x320", "30", 3.0), 3.0),
        args(&[H264, &["-c:a", "aac", "-b:a", "64k"]]),
    );
    add(
        "h264-mp3-mkv",
        "mkv",
        with_audio(std(), 3.0),
        args(&[H264, &["-c:a", "libmp3lame"]]),
    );
    add(
        "vp9-opus-webm",
        "webm",
        with_audio(std(), 3.0),
        args(&[VP9, &["-c:a", "libopus"]]),
    );
    v
}

/// Offset of the first top-level MP4 box of type `kind` (e.g. b"moov").
fn mp4_box(data: &[u8], kind: &[u8; 4]) -> Option<usize> {
    let mut at = 0usize;
    while at + 8 <= data.len() {
        let size = u32::from_be_bytes(data[at..at + 4].try_into().ok()?) as usize;
        if &data[at + 4..at + 8] == kind {
            return Some(at);
        }
        if size < 8 {
            return None;
        }
        at += size;
    }
    None
}

fn broken_cases(dir: &Path, good: &[Case]) -> Vec<Case> {
    let case = |n: &str| good.iter().find(|c| c.name == n).expect("base clip");
    let find = |n: &str| std::fs::read(&case(n).file).expect("read");
    let mkv = find("h264-high-bframes-mkv");
    let mkv_secs = duration(&case("h264-high-bframes-mkv").file);
    let faststart = find("h264-baseline-mp4-faststart");
    let index_at_end = find("h264-main-mp4-index-at-end");
    let mdat = mp4_box(&faststart, b"mdat").expect("mdat in the faststart mp4");
    let moov = mp4_box(&index_at_end, b"moov").expect("moov in the mp4");
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let random: Vec<u8> = (0..300_000)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect();
    let files: Vec<(&str, Vec<u8>, Expect)> = vec![
        (
            "empty-0-bytes.mp4",
            Vec::new(),
            Expect::Error(&["empty", "could not", "not determine", "type"]),
        ),
        (
            "truncated-half.mkv",
            mkv[..mkv.len() / 2].to_vec(),
            Expect::Partial(mkv_secs, &["truncat", "stream", "error"]),
        ),
        (
            "random-bytes.mp4",
            random,
            Expect::Error(&["could not determine", "type", "decode", "demux"]),
        ),
        // ftyp + moov of a fast-start file, no media data
        (
            "header-only.mp4",
            faststart[..mdat].to_vec(),
            Expect::Error(&["no frame", "data", "stream", "error"]),
        ),
        // media data without its index (an mp4 whose writer died before writing moov)
        (
            "index-missing.mp4",
            index_at_end[..moov].to_vec(),
            Expect::Error(&["index", "moov", "no playable", "stream", "error"]),
        ),
    ];
    files
        .into_iter()
        .map(|(name, bytes, expect)| {
            let file = dir.join(name);
            std::fs::write(&file, bytes).expect("write broken file");
            Case {
                name: name.to_string(),
                file,
                expect,
            }
        })
        .collect()
}

struct CellResult {
    code: Option<i32>,
    state: String,
    reason: String,
    sampled: u64,
    secs: f64,
    timed_out: bool,
}

fn run_cell(
    broker: &Broker,
    rec: &Recorder,
    case: &Case,
    recordings: bool,
    idx: usize,
) -> CellResult {
    let cam = format!("c{idx}{}", if recordings { "r" } else { "n" });
    let body = format!(
        "clips = {recordings}\n\n[ingest]\nstartup_timeout_secs = 10.0\nwatchdog_secs = 10.0\n\n\
         [[cameras]]\nname = \"{cam}\"\nurl = \"file://{}\"\nsample_fps = {SAMPLE_FPS}\nclip_seconds = 2.0\n",
        case.file.display()
    );
    let cfg = write_config(broker.port, "mx", &body);
    let started = Instant::now();
    let mut child = Command::new(bin())
        .args(["run", "--config"])
        .arg(&cfg.path)
        .env("RUST_LOG", "warn,ort=error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn scenewatch");
    let mut timed_out = false;
    let code = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s.code(),
            Ok(None) if started.elapsed() > CELL_LIMIT => {
                let _ = child.kill();
                let _ = child.wait();
                timed_out = true;
                break None;
            }
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    let secs = started.elapsed().as_secs_f64();
    let topic = format!("mx/{cam}/state");
    // the final state is published before the daemon exits; give the recorder a moment to receive it
    let deadline = Instant::now() + Duration::from_secs(3);
    let last = loop {
        let last = rec.on(&topic).last().map(|m| m.json());
        let done = last
            .as_ref()
            .is_some_and(|s| s["state"] == "ended" || s["state"] == "error");
        if done || Instant::now() > deadline {
            break last;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let last = last.unwrap_or_default();
    CellResult {
        code,
        state: last["state"].as_str().unwrap_or("none").to_string(),
        reason: last["reason"].as_str().unwrap_or("").to_string(),
        sampled: last["frames_sampled"].as_u64().unwrap_or(0),
        secs,
        timed_out,
    }
}

/// None = the cell passes; Some(why) otherwise.
fn check(case: &Case, r: &CellResult) -> Option<String> {
    if r.timed_out {
        return Some(format!("did not finish within {CELL_LIMIT:?}"));
    }
    let named = |words: &[&str]| {
        let reason = r.reason.to_lowercase();
        r.code == Some(1)
            && r.state == "error"
            && words.iter().any(|w| reason.contains(&w.to_lowercase()))
    };
    match &case.expect {
        Expect::Frames => {
            let want = (duration(&case.file) * SAMPLE_FPS).ceil() as i64;
            let ok =
                r.code == Some(0) && r.state == "ended" && (r.sampled as i64 - want).abs() <= 1;
            (!ok).then(|| format!("want exit 0, ended, {want}±1 frames"))
        }
        Expect::Error(words) => {
            (!named(words)).then(|| format!("want exit 1, state error naming one of {words:?}"))
        }
        Expect::Partial(whole_secs, words) => {
            let whole = (whole_secs * SAMPLE_FPS).ceil() as u64;
            let partial =
                r.code == Some(0) && r.state == "ended" && (1..whole).contains(&r.sampled);
            (!partial && !named(words)).then(|| {
                format!("want exit 0 with 1..{whole} frames, or exit 1 naming one of {words:?}")
            })
        }
    }
}

#[test]
fn every_codec_container_rate_size_and_broken_file_ends_with_its_frames_or_a_clear_error() {
    let dir = tempfile::tempdir().expect("tmp");
    let good = good_cases();
    let broken = broken_cases(dir.path(), &good);
    let broker = Broker::start();
    let rec = Recorder::start(broker.port, "mx/#");
    let mut failures = Vec::new();
    let mut table = vec![format!(
        "| clip | duration s | recordings | exit | state | sampled | seconds | result |\n|---|---|---|---|---|---|---|---|"
    )];
    for (i, case) in good.iter().chain(broken.iter()).enumerate() {
        for recordings in [true, false] {
            let r = run_cell(&broker, &rec, case, recordings, i);
            let verdict = check(case, &r);
            let dur = match case.expect {
                Expect::Frames => format!("{:.2}", duration(&case.file)),
                _ => "-".into(),
            };
            table.push(format!(
                "| {} | {dur} | {} | {} | {} | {} | {:.1} | {} |",
                case.name,
                if recordings { "on" } else { "off" },
                r.code.map_or("killed".into(), |c| c.to_string()),
                r.state,
                r.sampled,
                r.secs,
                match &verdict {
                    None if r.reason.is_empty() => "ok".to_string(),
                    None => format!("ok: {}", r.reason.chars().take(120).collect::<String>()),
                    Some(why) => format!("FAIL ({why}): {}", r.reason),
                }
            ));
            if let Some(why) = verdict {
                failures.push(format!(
                    "{} (recordings {}): {why}; got exit {:?}, state {}, {} frames, reason {:?}",
                    case.name,
                    if recordings { "on" } else { "off" },
                    r.code,
                    r.state,
                    r.sampled,
                    r.reason
                ));
            }
        }
    }
    println!("{}", table.join("\n"));
    assert!(
        failures.is_empty(),
        "{} cell(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
