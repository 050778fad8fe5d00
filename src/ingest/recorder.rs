//! Alert recordings: a per-camera ring of JPEG frames (the pre-roll), and one GStreamer writer per alert that
//! writes the ring plus the frames that follow into a file until the alert has ended and the post-roll has passed:
//! H.264 in fragmented MP4 (`[media] clip_format = "mp4"`, the default: phones and browsers play it) or the JPEG
//! frames as they are in Matroska (`"mkv"`).
//!
//! The ring is fed by a branch of the camera's pipeline (`tee → leaky queue → videorate max-rate → videoscale →
//! jpegenc → appsink`), so frames are compressed once, by GStreamer, at the recording rate and size — not per pixel
//! in Rust, and never at the full decode rate. Why not keep the camera's own compressed stream: decodebin hands out
//! decoded frames only, and a pass-through copy needs keyframe-aligned pre-roll per codec; MJPEG costs ~2 ms per
//! frame at 640 px and 5 fps and plays everywhere. Memory per camera is bounded by the ring span (`ring_secs`).
//!
//! Time is stream time (the same `pts` the sampled frames carry), so an alert's `stream_start` selects its
//! pre-roll exactly, even when inference runs behind a file read faster than real time.

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
    /// Why it stopped: `post_roll` (the normal case), `max_length`, `stream_ended`.
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
}

#[derive(Default)]
struct State {
    ring: VecDeque<(Duration, gst::Buffer)>,
    caps: Option<gst::Caps>,
    writers: Vec<Writer>,
    /// The camera ended: no more frames; a late `start` records what the ring holds and closes at once.
    ended: bool,
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
        let caps = st
            .caps
            .clone()
            .ok_or_else(|| "no recording frames yet".to_string())?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let from = from.saturating_sub(self.cfg.pre_roll);
        let start = preroll_start(&st.ring, from);
        let first = st.ring.get(start).map_or(from, |(p, _)| *p);
        let mut w = Writer::open(id, path.clone(), &caps, first, &self.cfg)?;
        for (p, b) in st.ring.iter().skip(start) {
            w.write(*p, b);
        }
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
        if cfg.format == ClipFormat::Mp4 {
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
        })
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
}
