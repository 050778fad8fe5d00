//! Alert recordings: a per-camera ring (the pre-roll), and one GStreamer writer per alert that writes the ring plus
//! the frames that follow into a file until the alert has ended and the post-roll has passed. Two modes:
//!
//! - JPEG (a camera with one `url`, or the `record` role on its detect input): the ring holds JPEG frames of the
//!   decoded video; the writer re-encodes them to H.264 in fragmented MP4 (`[media] clip_format = "mp4"`, the
//!   default: phones and browsers play it) or keeps them as they are in Matroska (`"mkv"`).
//! - Pass-through (a record-only `[[cameras.inputs]]` entry): the ring holds the record stream's own H.264/H.265
//!   access units, never decoded, in whole GOPs (it always starts at a keyframe); a recording starts at the last
//!   keyframe at or before its pre-roll and is remuxed as it was sent (`h264parse|h265parse ! mp4mux|matroskamux`),
//!   at the stream's own size and rate. Order is by DTS, so B-frames survive.
//!
//! The JPEG ring is fed by a branch of the camera's pipeline (`tee → leaky queue → rate limit → videoscale →
//! jpegenc → appsink`), so frames are compressed once, by GStreamer, at the recording rate and size — not per pixel
//! in Rust, and never at the full decode rate: MJPEG costs ~2 ms per frame at 640 px and 5 fps and plays everywhere.
//! The decoded stream has no compressed frames to keep (decodebin hands out decoded frames only); a record input
//! is a source of its own, parsed and never decoded (`pipeline::record_branch`). Memory per camera is bounded by
//! the ring span (`ring_span`), and an encoded ring also by [`MAX_UNIT_BYTES`].
//!
//! Time is stream time (the same `pts` the sampled frames carry; a record input's units are put on the same axis),
//! so an alert's `stream_start` selects its pre-roll exactly, even when inference runs behind a file read faster
//! than real time. Snapshots are not made here: they always come from the detect frames (as Frigate's), so with a
//! record input they have the detect stream's size.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use serde::Serialize;

/// The container and codec of recordings (`[media] clip_format`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClipFormat {
    /// H.264 in fragmented MP4: browsers and phones play it; a file cut short by a crash still plays up to its
    /// last fragment (1 s).
    #[default]
    Mp4,
    /// MJPEG in Matroska: the frames as the ring holds them, no encoder needed.
    Mkv,
}

impl ClipFormat {
    pub fn ext(self) -> &'static str {
        match self {
            Self::Mp4 => "mp4",
            Self::Mkv => "mkv",
        }
    }
}

/// Recording settings for one camera (from `[media]`).
#[derive(Debug, Clone)]
pub struct RecorderConfig {
    /// The ring holds a record input's encoded access units (`push_unit`), not JPEG frames (`push`); `fps`,
    /// `width` and `quality` then do not apply.
    pub passthrough: bool,
    pub pre_roll: Duration,
    pub post_roll: Duration,
    pub max_len: Duration,
    /// How much stream time the ring keeps: pre-roll plus how far inference may lag behind decoding.
    pub ring_span: Duration,
    pub fps: u32,
    pub width: u32,
    pub quality: u8,
    pub format: ClipFormat,
}

/// A finished recording, published on `<prefix>/<camera>/recordings`.
#[derive(Debug, Clone, Serialize)]
pub struct Recording {
    pub schema: u32,
    pub camera: String,
    pub alert_id: String,
    pub path: String,
    /// Stream time of the first and last frame in the file.
    pub stream_start: f64,
    pub stream_end: f64,
    pub frames: u64,
    pub bytes: u64,
    /// Why it stopped: `post_roll` (the normal case), `max_length`, `stream_ended`, `no_keyframe` (a pass-through
    /// recording whose stream sent no keyframe before the maximum length or the post-roll's end: no file is kept,
    /// `frames` and `bytes` are 0).
    pub reason: &'static str,
}

/// Frames from `ring` (oldest first, by pts) that a recording starting at `from` takes: everything at or after
/// `from`. Pure, for tests.
pub fn preroll_start<T>(ring: &VecDeque<(Duration, T)>, from: Duration) -> usize {
    ring.partition_point(|(p, _)| *p < from)
}

/// Index of the first ring entry to keep so the ring spans at most `span` back from `newest`.
pub fn ring_trim<T>(ring: &VecDeque<(Duration, T)>, newest: Duration, span: Duration) -> usize {
    let cutoff = newest.saturating_sub(span);
    ring.partition_point(|(p, _)| *p < cutoff)
}

/// One access unit of an encoded record stream. Times are stream time in signed nanoseconds: the first GOP's
/// DTS can lie before the stream's first PTS, which is stream time 0.
#[derive(Debug, Clone)]
pub struct Unit<T> {
    pub pts: i64,
    pub dts: i64,
    pub keyframe: bool,
    pub data: T,
}

/// Index of the first unit to keep so that the ring spans at least `span` back from `newest` in whole GOPs: the
/// last keyframe at or before `newest - span` (0 when there is none, or the ring is that short).
pub fn gop_trim<T>(ring: &VecDeque<Unit<T>>, newest: i64, span: Duration) -> usize {
    let cutoff = newest.saturating_sub(nanos(span));
    ring.iter()
        .rposition(|u| u.keyframe && u.pts <= cutoff)
        .unwrap_or(0)
}

/// Where a recording from stream time `from` starts: the last keyframe at or before `from`, else the ring's first
/// keyframe (nothing that old is kept). None: no keyframe in the ring yet.
pub fn gop_start<T>(ring: &VecDeque<Unit<T>>, from: i64) -> Option<usize> {
    ring.iter()
        .rposition(|u| u.keyframe && u.pts <= from)
        .or_else(|| ring.iter().position(|u| u.keyframe))
}

/// Admits access units in decoding order: each DTS above the one before (B-frames, whose PTS may be below their
/// predecessor's, pass). A unit whose DTS does not increase (a restart that begins lower) or that follows a gap
/// (`discont`: a leaky queue dropped units) is refused, and so is everything after it up to the next keyframe, so
/// the ring and the writers never hold a unit whose references are missing. Starts waiting for a keyframe.
#[derive(Debug, Clone)]
pub struct DtsGate {
    last: Option<i64>,
    need_key: bool,
}

impl Default for DtsGate {
    fn default() -> Self {
        Self {
            last: None,
            need_key: true,
        }
    }
}

impl DtsGate {
    pub fn admit(&mut self, dts: i64, keyframe: bool, discont: bool) -> bool {
        if self.last.is_some_and(|l| dts <= l) || (discont && !keyframe) {
            self.need_key = true;
            return false;
        }
        if self.need_key && !keyframe {
            return false;
        }
        self.need_key = false;
        self.last = Some(dts);
        true
    }
}

/// The short codec name of a record stream's caps when it can be recorded as it is (`h264`, `h265`), else the
/// error the camera reports.
pub fn passthrough_codec(caps_name: &str) -> Result<&'static str, String> {
    match caps_name {
        "video/x-h264" => Ok("h264"),
        "video/x-h265" => Ok("h265"),
        other => Err(format!(
            "record input: codec {other} cannot be recorded without re-encoding; use an H.264 or H.265 stream"
        )),
    }
}

/// An encoded ring holds at most this much (whole GOPs are dropped from its front beyond it, the newest GOP
/// always stays): 128 MiB is two minutes of an 8 Mbit/s main stream.
pub const MAX_UNIT_BYTES: usize = 128 << 20;

fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

fn at(ns: i64) -> Duration {
    Duration::from_nanos(ns.max(0) as u64)
}

/// Whether a writer that started at `first` should stop at frame `pts`: post-roll after the alert's end passed,
/// or the maximum length reached.
pub fn stop_reason(
    first: Duration,
    pts: Duration,
    stop_at: Option<Duration>,
    max_len: Duration,
) -> Option<&'static str> {
    if stop_at.is_some_and(|s| pts > s) {
        Some("post_roll")
    } else if pts.saturating_sub(first) >= max_len {
        Some("max_length")
    } else {
        None
    }
}

/// Whether a pass-through writer that has written nothing since `first` (it waits for a keyframe) gives up at
/// frame `pts`: after the maximum length, or once the alert's post-roll has passed (a keyframe after that would
/// make a file of one frame).
pub fn gives_up_waiting(
    first: Duration,
    pts: Duration,
    stop_at: Option<Duration>,
    max_len: Duration,
) -> bool {
    stop_at.is_some_and(|s| pts > s) || pts.saturating_sub(first) >= max_len
}

struct Writer {
    alert_id: String,
    path: PathBuf,
    pipeline: gst::Pipeline,
    src: gst_app::AppSrc,
    first: Duration,
    last: Duration,
    frames: u64,
    stop_at: Option<Duration>,
    /// One frame at the recording rate: the duration given to each frame, which the muxer keeps for the last one
    /// (without it MP4's last sample has none and GStreamer's demuxer drops it).
    frame_len: gst::ClockTime,
    /// Pass-through: subtracted from every unit's PTS and DTS alike (the first unit's lower one, so none is
    /// negative); None until the first unit, a keyframe, is written.
    shift: Option<i64>,
}

#[derive(Default)]
struct State {
    ring: VecDeque<(Duration, gst::Buffer)>,
    /// Pass-through: the record stream's access units, in decoding order, from a keyframe.
    units: VecDeque<Unit<gst::Buffer>>,
    units_bytes: usize,
    gate: DtsGate,
    caps: Option<gst::Caps>,
    writers: Vec<Writer>,
    /// The camera ended: no more frames; a late `start` records what the ring holds and closes at once.
    ended: bool,
    /// Why this camera's record input cannot be recorded (its codec); `start` answers with it.
    refused: Option<String>,
    /// The latest stream time put in the ring.
    newest: Option<Duration>,
}

/// One camera's recorder; lives as long as the camera (across pipeline rebuilds and reconnects).
pub struct Recorder {
    pub camera: Arc<str>,
    pub cfg: RecorderConfig,
    state: Mutex<State>,
    done: Done,
    finalizing: Arc<AtomicUsize>,
}

/// Called (on a helper thread) with each finished file.
pub type Done = Arc<dyn Fn(Recording) + Send + Sync>;

impl Recorder {
    pub fn new(camera: Arc<str>, cfg: RecorderConfig, done: Done) -> Arc<Self> {
        Arc::new(Self {
            camera,
            cfg,
            state: Mutex::new(State::default()),
            done,
            finalizing: Arc::default(),
        })
    }

    /// A JPEG frame from the pipeline's recording branch, at stream time `pts`.
    pub fn push(&self, pts: Duration, caps: Option<&gst::CapsRef>, buf: gst::Buffer) {
        let Ok(mut st) = self.state.lock() else {
            return;
        };
        if st.caps.is_none() {
            st.caps = caps.map(|c| c.to_owned());
        }
        st.ended = false;
        // frames out of order (a rebuild that restarted stream time lower) would corrupt the ring's order
        if st.ring.back().is_some_and(|(p, _)| pts <= *p) {
            return;
        }
        let mut finished = Vec::new();
        let max_len = self.cfg.max_len;
        for (i, w) in st.writers.iter_mut().enumerate() {
            if let Some(reason) = stop_reason(w.first, pts, w.stop_at, max_len) {
                finished.push((i, reason));
            } else {
                w.write(pts, &buf);
            }
        }
        for (i, reason) in finished.into_iter().rev() {
            let w = st.writers.swap_remove(i);
            self.finish(w, reason);
        }
        st.ring.push_back((pts, buf));
        let cut = ring_trim(&st.ring, pts, self.cfg.ring_span);
        st.ring.drain(..cut);
        st.newest = Some(pts);
    }

    /// An access unit of the record input (pass-through mode), at stream time `pts`/`dts` (nanoseconds, see
    /// [`Unit`]); `caps` are the parser's (stream-format, codec data). `discont`: units were lost before this one.
    pub fn push_unit(&self, unit: Unit<gst::Buffer>, discont: bool, caps: &gst::CapsRef) {
        let Ok(mut st) = self.state.lock() else {
            return;
        };
        st.ended = false;
        st.refused = None;
        if st.caps.as_deref() != Some(caps) {
            let caps = caps.to_owned();
            for w in &st.writers {
                w.src.set_caps(Some(&caps));
            }
            st.caps = Some(caps);
        }
        if !st.gate.admit(unit.dts, unit.keyframe, discont) {
            return;
        }
        let pts = at(unit.pts);
        let mut finished = Vec::new();
        let max_len = self.cfg.max_len;
        for (i, w) in st.writers.iter_mut().enumerate() {
            if w.frames > 0 {
                if let Some(reason) = stop_reason(w.first, pts, w.stop_at, max_len) {
                    finished.push((i, reason));
                    continue;
                }
            } else if gives_up_waiting(w.first, pts, w.stop_at, max_len) {
                // a stream that sends no keyframe (a broken camera, a GOP longer than the recording) would keep the
                // writer open for ever: it ends empty, and the alert's recording says why
                finished.push((i, "no_keyframe"));
                continue;
            }
            w.write_unit(&unit);
        }
        for (i, reason) in finished.into_iter().rev() {
            let w = st.writers.swap_remove(i);
            self.finish(w, reason);
        }
        st.newest = Some(st.newest.map_or(pts, |n| n.max(pts)));
        st.units_bytes += unit.data.size();
        st.units.push_back(unit);
        let newest = st.units.back().map_or(0, |u| u.pts);
        let mut cut = gop_trim(&st.units, newest, self.cfg.ring_span);
        let mut bytes: usize = st.units.iter().take(cut).map(|u| u.data.size()).sum();
        // over the byte bound: drop further whole GOPs, keeping the newest one
        while st.units_bytes - bytes > MAX_UNIT_BYTES {
            let Some(next) = st.units.iter().skip(cut + 1).position(|u| u.keyframe) else {
                break;
            };
            let next = cut + 1 + next;
            bytes += st
                .units
                .range(cut..next)
                .map(|u| u.data.size())
                .sum::<usize>();
            cut = next;
        }
        st.units.drain(..cut);
        st.units_bytes -= bytes;
    }

    /// The record input cannot be recorded (`why` says so): alerts get no recording and say why, until units
    /// that can be recorded arrive.
    pub fn refuse(&self, why: String) {
        if let Ok(mut st) = self.state.lock() {
            st.refused = Some(why);
        }
    }

    /// The latest stream time the ring holds (a rebuilt pipeline continues after it, so the ring stays in order).
    pub fn newest(&self) -> Option<Duration> {
        self.state.lock().ok().and_then(|st| st.newest)
    }

    /// Starts recording alert `id` from `from - pre_roll`; returns the file's path. Frames already in the ring are
    /// written at once.
    pub fn start(&self, id: &str, path: PathBuf, from: Duration) -> Result<PathBuf, String> {
        let mut st = self
            .state
            .lock()
            .map_err(|_| "recorder state poisoned".to_string())?;
        if st.writers.iter().any(|w| w.alert_id == id) {
            return Ok(path);
        }
        if let Some(why) = &st.refused {
            return Err(why.clone());
        }
        let caps = st
            .caps
            .clone()
            .ok_or_else(|| "no recording frames yet".to_string())?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let from = from.saturating_sub(self.cfg.pre_roll);
        let w = if self.cfg.passthrough {
            let start = gop_start(&st.units, nanos(from));
            let first = start
                .and_then(|i| st.units.get(i))
                .map_or(from, |u| at(u.pts));
            let mut w = Writer::open(id, path.clone(), &caps, first, &self.cfg)?;
            // no keyframe yet: the writer takes the stream from the next one
            for u in st.units.iter().skip(start.unwrap_or(usize::MAX)) {
                w.write_unit(u);
            }
            w
        } else {
            let start = preroll_start(&st.ring, from);
            let first = st.ring.get(start).map_or(from, |(p, _)| *p);
            let mut w = Writer::open(id, path.clone(), &caps, first, &self.cfg)?;
            for (p, b) in st.ring.iter().skip(start) {
                w.write(*p, b);
            }
            w
        };
        if st.ended {
            // the alert was raised after the stream ended (inference behind a file): record what there is
            self.finish(w, "stream_ended");
        } else {
            st.writers.push(w);
        }
        Ok(path)
    }

    /// The alert ended at stream time `at`: its writer stops once the post-roll has passed.
    pub fn stop(&self, id: &str, at: Duration) {
        if let Ok(mut st) = self.state.lock() {
            for w in st.writers.iter_mut().filter(|w| w.alert_id == id) {
                w.stop_at = Some(at + self.cfg.post_roll);
            }
        }
    }

    /// The camera ended: every open recording is closed with what it has (the ring stays for alerts that
    /// inference has not raised yet).
    pub fn close_all(&self) {
        let writers = match self.state.lock() {
            Ok(mut st) => {
                st.ended = true;
                std::mem::take(&mut st.writers)
            }
            Err(_) => return,
        };
        for w in writers {
            self.finish(w, "stream_ended");
        }
    }

    /// Ends a writer's stream and, on a helper thread, waits for the muxer to write its index before reporting.
    fn finish(&self, w: Writer, reason: &'static str) {
        let _ = w.src.end_of_stream();
        let rec = Recording {
            schema: 1,
            camera: self.camera.to_string(),
            alert_id: w.alert_id.clone(),
            path: w.path.display().to_string(),
            stream_start: round3(w.first),
            stream_end: round3(w.last),
            frames: w.frames,
            bytes: 0,
            reason,
        };
        let done = self.done.clone();
        let in_flight = self.finalizing.clone();
        in_flight.fetch_add(1, Ordering::SeqCst);
        // the streaming thread must not wait for the muxer to write its index: a helper thread does, then reports
        let spawned = std::thread::Builder::new()
            .name(format!("rec-{}", self.camera))
            .spawn(move || {
                let mut rec = rec;
                if let Some(bus) = w.pipeline.bus() {
                    let _ = bus.timed_pop_filtered(
                        gst::ClockTime::from_seconds(10),
                        &[gst::MessageType::Eos, gst::MessageType::Error],
                    );
                }
                let _ = w.pipeline.set_state(gst::State::Null);
                if rec.frames == 0 {
                    // nothing was written (no keyframe came, or the ring was empty): no header-only file is kept
                    let _ = std::fs::remove_file(&w.path);
                }
                rec.bytes = std::fs::metadata(&w.path).map(|m| m.len()).unwrap_or(0);
                done(rec);
                in_flight.fetch_sub(1, Ordering::SeqCst);
            });
        if let Err(e) = spawned {
            self.finalizing.fetch_sub(1, Ordering::SeqCst);
            tracing::error!(camera = %self.camera, error = %e, "could not finish a recording");
        }
    }

    /// Waits (up to `timeout`) for recordings still being finalized, so shutdown does not cut a file short.
    pub fn flush(&self, timeout: Duration) {
        let deadline = std::time::Instant::now() + timeout;
        while self.finalizing.load(Ordering::SeqCst) > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// x264 (gstreamer1.0-plugins-ugly) tuned for a recorder that must never fall behind — no B-frames or lookahead, a
/// keyframe every 2 s so players seek — or else Cisco's OpenH264 (gstreamer1.0-plugins-bad).
fn h264_encoder(fps: u32) -> Result<gst::Element, String> {
    if let Ok(x) = gst::ElementFactory::make("x264enc").build() {
        x.set_property_from_str("speed-preset", "veryfast");
        x.set_property_from_str("tune", "zerolatency");
        x.set_property("key-int-max", (fps * 2).max(1));
        return Ok(x);
    }
    gst::ElementFactory::make("openh264enc")
        .build()
        .map_err(|_| {
            "neither x264enc (gstreamer1.0-plugins-ugly) nor openh264enc (gstreamer1.0-plugins-bad) is installed; \
             install one or set [media] clip_format = \"mkv\""
                .to_string()
        })
}

fn round3(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

impl Writer {
    fn open(
        id: &str,
        path: PathBuf,
        caps: &gst::Caps,
        first: Duration,
        cfg: &RecorderConfig,
    ) -> Result<Self, String> {
        let fail = |what: &str, e: &dyn std::fmt::Display| {
            format!("recording {}: {what}: {e}", path.display())
        };
        let make = |factory: &str| {
            gst::ElementFactory::make(factory)
                .build()
                .map_err(|e| fail(&format!("{factory} is missing"), &e))
        };
        let pipeline =
            gst::Pipeline::with_name(&format!("rec-{}", id.chars().take(8).collect::<String>()));
        // the ring's frames are thinned by stream time, so their caps say a variable rate (0/1); with that mp4mux
        // writes no duration for the last sample and GStreamer's demuxer drops it: give the nominal rate
        let mut caps = caps.clone();
        if cfg.format == ClipFormat::Mp4 && !cfg.passthrough {
            if let Some(s) = caps.make_mut().structure_mut(0) {
                s.set("framerate", gst::Fraction::new(cfg.fps.max(1) as i32, 1));
            }
        }
        let src = gst_app::AppSrc::builder()
            .caps(&caps)
            .format(gst::Format::Time)
            .is_live(false)
            // never block the camera's streaming thread; a writer that cannot keep up loses frames, not the camera
            .block(false)
            .max_bytes(64 * 1024 * 1024)
            .build();
        let sink = gst::ElementFactory::make("filesink")
            .property("location", path.display().to_string())
            .build()
            .map_err(|e| fail("filesink is missing", &e))?;
        let mut chain: Vec<gst::Element> = vec![src.clone().upcast()];
        match cfg.format {
            _ if cfg.passthrough => {
                let name = caps.structure(0).map(|s| s.name().to_string());
                let parser = match passthrough_codec(name.as_deref().unwrap_or("(no caps)"))? {
                    "h265" => "h265parse",
                    _ => "h264parse",
                };
                chain.push(make(parser)?);
                let mux = match cfg.format {
                    ClipFormat::Mkv => make("matroskamux")?,
                    ClipFormat::Mp4 => {
                        let mux = make("mp4mux")?;
                        // fragments of 1 s: what was written before a crash still plays
                        mux.set_property("fragment-duration", 1000u32);
                        mux
                    }
                };
                chain.push(mux);
            }
            ClipFormat::Mkv => chain.push(make("matroskamux")?),
            ClipFormat::Mp4 => {
                // 4:2:0 for the browsers' H.264 decoders; the encoder's own thread, not the camera's, does the work
                let raw = gst::ElementFactory::make("capsfilter")
                    .property(
                        "caps",
                        gst::Caps::builder("video/x-raw")
                            .field("format", "I420")
                            .build(),
                    )
                    .build()
                    .map_err(|e| fail("capsfilter is missing", &e))?;
                chain.extend([
                    make("jpegdec")?,
                    make("videoconvert")?,
                    raw,
                    h264_encoder(cfg.fps).map_err(|e| fail("no H.264 encoder", &e))?,
                    make("h264parse")?,
                ]);
                let mux = make("mp4mux")?;
                // fragments of 1 s: what was written before a crash still plays
                mux.set_property("fragment-duration", 1000u32);
                chain.push(mux);
            }
        }
        chain.push(sink);
        pipeline
            .add_many(chain.iter())
            .map_err(|e| fail("building", &e))?;
        gst::Element::link_many(chain.iter()).map_err(|e| fail("linking", &e))?;
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|e| fail("starting", &e))?;
        Ok(Self {
            alert_id: id.to_string(),
            path,
            pipeline,
            src,
            first,
            last: first,
            frames: 0,
            stop_at: None,
            frame_len: gst::ClockTime::from_nseconds(1_000_000_000 / u64::from(cfg.fps.max(1))),
            shift: None,
        })
    }

    /// Pass-through: the unit as it came, its PTS and DTS moved by the writer's shift; the parser's duration kept.
    /// The file starts at a keyframe: units before the first one are skipped.
    fn write_unit(&mut self, u: &Unit<gst::Buffer>) {
        let shift = match self.shift {
            Some(s) => s,
            None if u.keyframe => u.pts.min(u.dts),
            None => return,
        };
        let mut b = u.data.copy();
        {
            let Some(m) = b.get_mut() else { return };
            let t = |v: i64| gst::ClockTime::from_nseconds(v.saturating_sub(shift).max(0) as u64);
            m.set_pts(t(u.pts));
            m.set_dts(t(u.dts));
        }
        if self.src.push_buffer(b).is_ok() {
            if self.frames == 0 {
                self.first = at(u.pts);
                self.last = self.first;
            }
            self.shift = Some(shift);
            self.frames += 1;
            self.last = self.last.max(at(u.pts));
        }
    }

    fn write(&mut self, pts: Duration, buf: &gst::Buffer) {
        // timestamps must increase: mp4mux loses most of a file after a repeated one (a frame the ring got twice
        // at one time, e.g. across a reconnect); such a frame adds nothing to the video
        if pts < self.first || (self.frames > 0 && pts <= self.last) {
            return;
        }
        let mut b = buf.copy();
        {
            let Some(m) = b.get_mut() else { return };
            m.set_pts(gst::ClockTime::from_nseconds(
                (pts - self.first).as_nanos() as u64
            ));
            m.set_dts(gst::ClockTime::NONE);
            m.set_duration(self.frame_len);
        }
        if self.src.push_buffer(b).is_ok() {
            self.frames += 1;
            self.last = pts;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: &[u64]) -> VecDeque<(Duration, ())> {
        v.iter().map(|m| (Duration::from_millis(*m), ())).collect()
    }

    #[test]
    fn the_ring_keeps_its_span_and_a_recording_takes_its_pre_roll_from_it() {
        let ring = ms(&[0, 200, 400, 600, 800, 1000]);
        assert_eq!(
            ring_trim(
                &ring,
                Duration::from_millis(1000),
                Duration::from_millis(500)
            ),
            3
        );
        assert_eq!(
            ring_trim(&ring, Duration::from_millis(1000), Duration::from_secs(5)),
            0
        );
        assert_eq!(preroll_start(&ring, Duration::from_millis(450)), 3);
        assert_eq!(preroll_start(&ring, Duration::ZERO), 0);
        assert_eq!(
            preroll_start(&ring, Duration::from_secs(9)),
            6,
            "nothing that old: start with the next frame"
        );
    }

    fn units(v: &[(i64, bool)]) -> VecDeque<Unit<()>> {
        v.iter()
            .map(|&(ms, keyframe)| Unit {
                pts: ms * 1_000_000,
                dts: ms * 1_000_000,
                keyframe,
                data: (),
            })
            .collect()
    }

    #[test]
    fn the_encoded_ring_keeps_whole_gops_and_a_recording_starts_at_a_keyframe() {
        // keyframes every second, 4 frames per GOP
        let ring = units(&[
            (0, true),
            (250, false),
            (500, false),
            (750, false),
            (1000, true),
            (1250, false),
            (1500, false),
            (1750, false),
            (2000, true),
            (2250, false),
        ]);
        let ms = |v: i64| v * 1_000_000;
        // a span of 0.8 s back from 2.25 s reaches 1.45 s: the GOP from 1.0 s is kept whole
        assert_eq!(gop_trim(&ring, ms(2250), Duration::from_millis(800)), 4);
        // a span longer than the ring keeps it all; one ending on a keyframe cuts there
        assert_eq!(gop_trim(&ring, ms(2250), Duration::from_secs(10)), 0);
        assert_eq!(gop_trim(&ring, ms(2250), Duration::from_millis(250)), 8);
        // pre-roll from 1.6 s: the last keyframe at or before it, 1.0 s; from exactly a keyframe: that one
        assert_eq!(gop_start(&ring, ms(1600)), Some(4));
        assert_eq!(gop_start(&ring, ms(2000)), Some(8));
        // older than the ring: its first keyframe; an empty ring or one without a keyframe: none
        let trimmed: VecDeque<_> = ring.iter().skip(4).cloned().collect();
        assert_eq!(gop_start(&trimmed, ms(100)), Some(0));
        assert_eq!(gop_start(&units(&[]), 0), None);
        assert_eq!(gop_start(&units(&[(100, false)]), 0), None);
    }

    #[test]
    fn units_are_admitted_by_dts_so_b_frames_pass_and_a_restart_waits_for_a_keyframe() {
        let mut g = DtsGate::default();
        assert!(!g.admit(0, false, false), "a stream starts at a keyframe");
        // I P B B in decoding order: PTS 40, 160, 80, 120; DTS increasing
        assert!(g.admit(0, true, false));
        assert!(g.admit(40, false, false));
        assert!(
            g.admit(80, false, false),
            "a B-frame (PTS below the P before it)"
        );
        assert!(g.admit(120, false, false));
        // a DTS that does not increase (a restart lower): refused, and so is what follows until a keyframe
        assert!(!g.admit(120, false, false));
        assert!(!g.admit(160, false, false));
        assert!(g.admit(200, true, false));
        // a gap (units lost before this one): wait for the next keyframe
        assert!(!g.admit(240, false, true));
        assert!(!g.admit(280, false, false));
        assert!(g.admit(320, true, true));
    }

    #[test]
    fn only_h264_and_h265_are_recorded_without_re_encoding() {
        assert_eq!(passthrough_codec("video/x-h264"), Ok("h264"));
        assert_eq!(passthrough_codec("video/x-h265"), Ok("h265"));
        let e = passthrough_codec("video/x-vp8").expect_err("vp8");
        assert_eq!(
            e,
            "record input: codec video/x-vp8 cannot be recorded without re-encoding; use an H.264 or H.265 stream"
        );
    }

    #[test]
    fn a_writer_stops_after_the_post_roll_or_at_the_maximum_length() {
        let s = |v| Duration::from_secs(v);
        assert_eq!(stop_reason(s(0), s(10), None, s(60)), None);
        assert_eq!(stop_reason(s(0), s(10), Some(s(12)), s(60)), None);
        assert_eq!(
            stop_reason(s(0), s(13), Some(s(12)), s(60)),
            Some("post_roll")
        );
        assert_eq!(stop_reason(s(5), s(65), None, s(60)), Some("max_length"));
    }

    #[test]
    fn a_writer_waiting_for_a_keyframe_gives_up_at_the_maximum_length() {
        let s = |v| Duration::from_secs(v);
        assert!(
            !gives_up_waiting(s(5), s(30), None, s(60)),
            "a long GOP is waited for"
        );
        assert!(gives_up_waiting(s(5), s(65), None, s(60)));
        assert!(
            !gives_up_waiting(s(5), s(2), None, s(60)),
            "a unit older than the start"
        );
        assert!(
            gives_up_waiting(s(5), s(20), Some(s(18)), s(60)),
            "the alert ended and its post-roll passed: no one-frame file"
        );
        assert!(!gives_up_waiting(s(5), s(17), Some(s(18)), s(60)));
    }
}
