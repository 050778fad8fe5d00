//! GStreamer pipelines per source kind: source → videoconvert → appsink (packed RGB at the camera's resolution).
//!
//! Sampling happens on videoconvert's sink pad (a buffer probe, by stream pts) so frames that are not sampled are
//! never colour-converted. The appsink callback copies a sampled frame (removing row padding: take the stride from
//! VideoInfo) into the camera's bounded frame queue, whose full-policy decides what is lost.
//!
//! A camera with a record-only input (`[[cameras.inputs]]`) gets a second source in the same pipeline (one clock,
//! one base time): `urisourcebin → parsebin → queue → appsink`, never decoded, whose access units go to the alert
//! recorder at the stream time of the same timeline as the detect frames (see [`record_branch`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;

use super::frame::Frame;
use super::sampler::Sampler;
use super::source::SourceKind;
use crate::clock::Clock;
use crate::queue::{PolicySender, Pushed};

/// A pipeline failure, with the element that reported it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("camera {camera}: {message}{}", element.as_ref().map(|e| format!(" (from {e})")).unwrap_or_default())]
pub struct IngestError {
    pub camera: String,
    pub element: Option<String>,
    pub message: String,
    pub debug: Option<String>,
}

impl IngestError {
    /// An error of the pipeline as a whole (no element to name).
    pub fn plain(camera: &str, message: String) -> Self {
        Self {
            camera: camera.to_string(),
            element: None,
            message,
            debug: None,
        }
    }
}

/// State shared between the pad probe, the appsink callback and the camera thread for one pipeline run.
pub struct SinkShared {
    pub camera: Arc<str>,
    pub clock: Arc<dyn Clock>,
    sample_fps: f64,
    sampler: Mutex<Sampler>,
    first_pts: Mutex<Option<gst::ClockTime>>,
    /// A record-only file input's first timestamp (`record_ns`).
    record_first: Mutex<Option<gst::ClockTime>>,
    queue: Mutex<Option<PolicySender<Frame>>>,
    seq: AtomicU64,
    /// Added to stream pts so time keeps increasing across reconnects of the same camera.
    pts_base: Duration,
    pub last_pts_ns: AtomicU64,
    pub started: Instant,
    /// Milliseconds since `started` of the last frame seen by the probe (decoded), for the watchdog.
    pub last_frame_ms: AtomicU64,
    pub decoded: AtomicU64,
    pub sampled: AtomicU64,
    /// Set while the appsink callback waits for room in our own (blocking) frame queue: no decoded frame is
    /// expected meanwhile, so the progress watchdog must not count that time.
    pub blocked: std::sync::atomic::AtomicBool,
    /// The camera's running totals (decoded, sampled), counted live so state messages are current mid-run.
    totals: Option<(Arc<AtomicU64>, Arc<AtomicU64>)>,
    /// Whether a decoded video stream was linked, and the media types of streams that were not (for errors like
    /// "no video stream, found audio/x-raw").
    video_linked: std::sync::atomic::AtomicBool,
    other_streams: Mutex<Vec<String>>,
    /// Alert recordings: when set, the pipeline gets a JPEG branch feeding this camera's ring.
    recorder: Option<Arc<super::recorder::Recorder>>,
    /// Receives the decoder's per-frame time.
    metrics: Option<Arc<crate::telemetry::Metrics>>,
    /// The camera's motion gate (None: off).
    motion: Option<Mutex<super::motion::MotionGate>>,
    /// What the decoder may leave out, and the height sampled frames are scaled to (0: as decoded).
    decode: DecodeOptions,
    /// The video decoder element in use (its factory name), once the stream is linked.
    pub decoder: Mutex<Option<String>>,
    /// Compressed frames left out before the decoder (`decode_skip`).
    pub skipped: AtomicU64,
    /// Stream time (ns) of the newest decoded detect frame: a file's record branch keeps within
    /// [`RECORD_LEAD`] of it.
    detect_ns: AtomicU64,
    /// The detect branch reached its end: the record branch no longer waits for it.
    detect_eos: std::sync::atomic::AtomicBool,
    /// The pipeline is being stopped: nothing may keep a streaming thread waiting.
    stopping: std::sync::atomic::AtomicBool,
    /// The camera state's record-input entry, and what publishes the state when it changes.
    record_status: Option<(Arc<Mutex<super::RecordInputStatus>>, Notify)>,
}

/// Publishes the camera's state (called from a streaming thread when something it reports changed).
pub type Notify = Arc<dyn Fn() + Send + Sync>;

/// How far (stream time) a file's record branch may run ahead of its detect branch: the detect branch runs at
/// inference speed, and a record branch racing ahead would push the pre-roll of the alerts still to come out of
/// its ring.
pub const RECORD_LEAD: Duration = Duration::from_secs(2);

/// Whether a non-live record branch at stream time `record` may go on, with the detect branch at `detect`.
pub fn record_may_run(record: Duration, detect: Duration, detect_ended: bool) -> bool {
    detect_ended || record <= detect + RECORD_LEAD
}

/// A camera's decoding settings (`[[cameras]] decode_skip`, `analysis_height`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecodeOptions {
    pub skip: super::decode::DecodeSkip,
    pub analysis_height: u32,
    /// Software decoder threads (`max-threads`); 0 = the decoder's own choice.
    pub threads: u32,
}

impl SinkShared {
    /// Also counts into the camera's running totals.
    pub fn with_totals(
        mut self: Arc<Self>,
        decoded: Arc<AtomicU64>,
        sampled: Arc<AtomicU64>,
    ) -> Arc<Self> {
        if let Some(s) = Arc::get_mut(&mut self) {
            s.totals = Some((decoded, sampled));
        }
        self
    }

    /// Also feeds the camera's alert recorder.
    pub fn with_recorder(
        mut self: Arc<Self>,
        recorder: Option<Arc<super::recorder::Recorder>>,
    ) -> Arc<Self> {
        if let Some(s) = Arc::get_mut(&mut self) {
            s.recorder = recorder;
        }
        self
    }

    /// Also judges each sampled frame for motion.
    pub fn with_motion_gate(
        mut self: Arc<Self>,
        params: Option<super::motion::MotionParams>,
    ) -> Arc<Self> {
        if let Some(s) = Arc::get_mut(&mut self) {
            s.motion = params.map(|p| Mutex::new(super::motion::MotionGate::new(p)));
        }
        self
    }

    /// Decodes with these settings (default: `decode_skip = "auto"`, no scaling).
    pub fn with_decode(mut self: Arc<Self>, decode: DecodeOptions) -> Arc<Self> {
        if let Some(s) = Arc::get_mut(&mut self) {
            s.decode = decode;
        }
        self
    }

    /// Reports the record input's codec, or why it cannot be recorded, into `status` and calls `notify`.
    pub fn with_record_status(
        mut self: Arc<Self>,
        status: Arc<Mutex<super::RecordInputStatus>>,
        notify: Notify,
    ) -> Arc<Self> {
        if let Some(s) = Arc::get_mut(&mut self) {
            s.record_status = Some((status, notify));
        }
        self
    }

    /// Also times the video decoder into `metrics`.
    pub fn with_metrics(mut self: Arc<Self>, metrics: Arc<crate::telemetry::Metrics>) -> Arc<Self> {
        if let Some(s) = Arc::get_mut(&mut self) {
            s.metrics = Some(metrics);
        }
        self
    }

    pub fn new(
        camera: Arc<str>,
        clock: Arc<dyn Clock>,
        sample_fps: f64,
        queue: PolicySender<Frame>,
        (seq_base, pts_base): (u64, Duration),
    ) -> Arc<Self> {
        Arc::new(Self {
            camera,
            clock,
            sample_fps,
            sampler: Mutex::new(Sampler::new(sample_fps)),
            first_pts: Mutex::new(None),
            record_first: Mutex::new(None),
            queue: Mutex::new(Some(queue)),
            seq: AtomicU64::new(seq_base),
            pts_base,
            last_pts_ns: AtomicU64::new(pts_base.as_nanos() as u64),
            started: Instant::now(),
            last_frame_ms: AtomicU64::new(0),
            decoded: AtomicU64::new(0),
            sampled: AtomicU64::new(0),
            blocked: Default::default(),
            totals: None,
            video_linked: Default::default(),
            other_streams: Mutex::new(Vec::new()),
            recorder: None,
            metrics: None,
            motion: None,
            decode: DecodeOptions::default(),
            decoder: Mutex::new(None),
            skipped: AtomicU64::new(0),
            detect_ns: AtomicU64::new(pts_base.as_nanos() as u64),
            detect_eos: Default::default(),
            stopping: Default::default(),
            record_status: None,
        })
    }

    /// Hands the queue back (end of this run), so the pipeline's callbacks can no longer hold it open.
    pub fn take_queue(&self) -> Option<PolicySender<Frame>> {
        self.queue.lock().ok().and_then(|mut q| q.take())
    }

    fn stream_pts(&self, pts: Option<gst::ClockTime>) -> Option<Duration> {
        let pts = pts?;
        let mut first = self.first_pts.lock().ok()?;
        let base = *first.get_or_insert(pts);
        Some(self.pts_base + Duration::from_nanos(pts.nseconds().saturating_sub(base.nseconds())))
    }

    /// `t` on the stream-time axis of [`stream_pts`](Self::stream_pts), signed (a DTS can lie before the first
    /// PTS); None before the first timestamp set that axis.
    fn stream_ns(&self, t: gst::ClockTime) -> Option<i64> {
        let base = (*self.first_pts.lock().ok()?)?;
        let rel = i128::from(t.nseconds()) - i128::from(base.nseconds());
        i64::try_from(self.pts_base.as_nanos() as i128 + rel).ok()
    }

    /// A record-input timestamp on the detect stream's time axis. Live inputs share the pipeline's running time, so
    /// the detect stream's base applies (units before the detect stream set it are dropped: the record branch never
    /// sets the base, which would shift every detect frame). Files each start their own timeline — a container
    /// may start at any PTS (MPEG-TS) — so a record file counts from its own first timestamp, as the detect file
    /// does from its.
    fn record_ns(&self, t: gst::ClockTime, live: bool) -> Option<i64> {
        if live {
            return self.stream_ns(t);
        }
        let base = *self.record_first.lock().ok()?.get_or_insert(t);
        let rel = i128::from(t.nseconds()) - i128::from(base.nseconds());
        i64::try_from(self.pts_base.as_nanos() as i128 + rel).ok()
    }

    /// Holds a file's record branch (its streaming thread) while its stream time is more than [`RECORD_LEAD`]
    /// ahead of the detect branch; returns at once when the detect branch has ended or the pipeline stops.
    fn pace_record(&self, record: Duration) {
        loop {
            let detect = Duration::from_nanos(self.detect_ns.load(Ordering::Relaxed));
            if self.stopping.load(Ordering::Relaxed)
                || record_may_run(record, detect, self.detect_eos.load(Ordering::Relaxed))
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The next frame seq number (continues across reconnects).
    pub fn next_seq(&self) -> u64 {
        self.seq.load(Ordering::Relaxed)
    }

    fn accept(&self, pts: Option<gst::ClockTime>) -> bool {
        self.decoded.fetch_add(1, Ordering::Relaxed);
        if let Some((d, _)) = &self.totals {
            d.fetch_add(1, Ordering::Relaxed);
        }
        self.last_frame_ms
            .store(self.started.elapsed().as_millis() as u64, Ordering::Relaxed);
        match self.stream_pts(pts) {
            Some(p) => {
                self.detect_ns
                    .fetch_max(p.as_nanos() as u64, Ordering::Relaxed);
                self.sampler
                    .lock()
                    .map(|mut s| s.accept(p))
                    .unwrap_or(false)
            }
            // buffers without timestamps cannot be sampled by stream time; keep none rather than guess
            None => false,
        }
    }

    fn on_sample(&self, sink: &gst_app::AppSink) -> Result<gst::FlowSuccess, gst::FlowError> {
        let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
        let (Some(buffer), Some(caps)) = (sample.buffer(), sample.caps()) else {
            return Ok(gst::FlowSuccess::Ok);
        };
        let info = gst_video::VideoInfo::from_caps(caps).map_err(|_| {
            gst::element_error!(
                sink,
                gst::StreamError::Format,
                ("appsink got caps that are not raw video")
            );
            gst::FlowError::NotNegotiated
        })?;
        let pts = self.stream_pts(buffer.pts()).unwrap_or_default();
        let map = buffer.map_readable().map_err(|_| {
            gst::element_error!(
                sink,
                gst::ResourceError::Read,
                ("could not map a video buffer")
            );
            gst::FlowError::Error
        })?;
        let (w, h) = (info.width() as usize, info.height() as usize);
        let stride = info.stride().first().copied().unwrap_or(0).max(0) as usize;
        let offset = info.offset().first().copied().unwrap_or(0);
        let row = w * 3;
        if stride < row || map.len() < offset + stride * h.saturating_sub(1) + row {
            gst::element_error!(
                sink,
                gst::StreamError::Format,
                ("video buffer smaller than its caps say")
            );
            return Err(gst::FlowError::Error);
        }
        let mut rgb = Vec::with_capacity(row * h);
        for y in 0..h {
            let start = offset + y * stride;
            rgb.extend_from_slice(&map[start..start + row]);
        }
        drop(map);
        let moved = self.motion.as_ref().and_then(|g| {
            let (thumb, _) = super::motion::thumbnail(&rgb, w as u32, h as u32);
            g.lock().ok().map(|mut g| g.moved(&thumb))
        });
        let frame = Frame {
            camera: self.camera.clone(),
            seq: self.seq.fetch_add(1, Ordering::Relaxed),
            pts,
            wall: self.clock.now(),
            width: w as u32,
            height: h as u32,
            rgb: Arc::new(rgb),
            moved,
        };
        self.sampled.fetch_add(1, Ordering::Relaxed);
        if let Some((_, t)) = &self.totals {
            t.fetch_add(1, Ordering::Relaxed);
        }
        self.last_pts_ns
            .store(pts.as_nanos() as u64, Ordering::Relaxed);
        let guard = self.queue.lock().map_err(|_| gst::FlowError::Error)?;
        self.blocked.store(true, Ordering::Relaxed);
        let bytes = frame.rgb.len();
        let pushed = guard.as_ref().map(|q| q.push_weighed(frame, bytes));
        self.blocked.store(false, Ordering::Relaxed);
        // waiting for our own queue is not a stall: progress counts from when the push returned
        self.last_frame_ms
            .store(self.started.elapsed().as_millis() as u64, Ordering::Relaxed);
        match pushed {
            Some(Pushed::Closed) | None => Err(gst::FlowError::Flushing),
            Some(_) => Ok(gst::FlowSuccess::Ok),
        }
    }
}

fn make(factory: &str, camera: &str) -> Result<gst::Element, IngestError> {
    gst::ElementFactory::make(factory).build().map_err(|e| IngestError {
        camera: camera.to_string(),
        element: Some(factory.to_string()),
        message: format!("GStreamer element '{factory}' is missing ({e}); install the GStreamer plugins (setup.sh)"),
        debug: None,
    })
}

/// Like [`make`], with a name that diagnostics (the start-up watchdog) can show.
fn make_named(factory: &str, name: &str, camera: &str) -> Result<gst::Element, IngestError> {
    let el = make(factory, camera)?;
    el.set_property("name", name);
    Ok(el)
}

/// Keeps at most `fps` frames per second of stream time on `pad`, dropping the rest in place.
///
/// This replaces `videorate max-rate=N`, which caused the recording hang of issue 13: videorate holds each buffer
/// until the next one arrives (it decides what to output by looking at both), so the recording sink could not
/// preroll on the first frame. gst-libav's H.264 decoder re-queries ALLOCATION after its first frame when the
/// width is not a multiple of 16 (360x288, 568x320: it needs padded buffers); that serialized query waits in the
/// analysis queue behind the analysis sink, which is prerolled and blocked until PLAYING; PLAYING needed the
/// recording sink's preroll, which needed a second frame, which the decoder never produced while its query
/// waited. A probe decides per buffer and holds nothing, so no branch can wait on a future frame.
fn rate_limit(pad: &gst::Pad, fps: u32, shared: Arc<SinkShared>) {
    let sampler = Mutex::new(Sampler::new(f64::from(fps)));
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        let keep = match shared.stream_pts(info.buffer().and_then(|b| b.pts())) {
            Some(pts) => sampler.lock().map(|mut s| s.accept(pts)).unwrap_or(false),
            None => false,
        };
        if keep {
            gst::PadProbeReturn::Ok
        } else {
            drop(info.take_buffer());
            gst::PadProbeReturn::Handled
        }
    });
}

/// The recording branch passes frames at the camera's own rate, thinned by `rate_limit`: the ring's caps must
/// not claim a constant frame rate the stored frames do not have (each frame carries its own pts).
fn variable_rate(caps: &gst::CapsRef) -> gst::Caps {
    let mut caps = caps.to_owned();
    if let Some(s) = caps.make_mut().structure_mut(0) {
        s.set("framerate", gst::Fraction::new(0, 1));
    }
    caps
}

/// Times each frame through a video decoder (pts in on its sink pad → the same pts out on its src pad) into the
/// `decode` stage. Frames a threaded decoder holds back count while they wait, as they do for latency.
fn time_decoder(decoder: &gst::Element, metrics: Arc<crate::telemetry::Metrics>) {
    let (Some(sink), Some(src)) = (decoder.static_pad("sink"), decoder.static_pad("src")) else {
        return;
    };
    // frames in flight: a few for B-frame reordering or frame threads; bounded so a decoder that drops frames
    // cannot grow it
    let pending: Arc<Mutex<std::collections::VecDeque<(u64, Instant)>>> = Arc::default();
    let inbound = pending.clone();
    sink.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        // demuxers of formats without reordering (AVI) often stamp only the DTS, which then becomes the pts
        let stamp = info.buffer().and_then(|b| b.pts().or(b.dts()));
        if let (Some(pts), Ok(mut q)) = (stamp, inbound.lock()) {
            if q.len() >= 64 {
                q.pop_front();
            }
            q.push_back((pts.nseconds(), Instant::now()));
        }
        gst::PadProbeReturn::Ok
    });
    src.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        if let (Some(pts), Ok(mut q)) = (info.buffer().and_then(|b| b.pts()), pending.lock()) {
            if let Some(i) = q.iter().position(|(p, _)| *p == pts.nseconds()) {
                if let Some((_, t)) = q.remove(i) {
                    metrics.stages.decode.observe(t.elapsed().as_secs_f64());
                }
            }
        }
        gst::PadProbeReturn::Ok
    });
}

/// Sets up a video decoder that `uridecodebin` plugged: records its name, times it into the metrics and
/// applies `decode_skip` (a probe on its sink pad leaves frames out; "nonref" asks libav decoders to skip
/// non-reference frames themselves).
/// Sets up every video decoder `uridecodebin` plugs (skipping, QoS, the decoder's name in the camera state), in
/// the daemon's pipeline and in the bench's decode-only one alike.
fn watch_decoders(src: &gst::Element, shared: &Arc<SinkShared>) {
    if let Some(bin) = src.downcast_ref::<gst::Bin>() {
        let sh = Arc::downgrade(shared);
        bin.connect_deep_element_added(move |_, _, el| {
            let is_video_decoder = el.factory().is_some_and(|f| {
                f.metadata(gst::ELEMENT_METADATA_KLASS)
                    .is_some_and(|k| k.contains("Decoder") && k.contains("Video"))
            });
            if let (true, Some(sh)) = (is_video_decoder, sh.upgrade()) {
                setup_decoder(el, &sh);
            }
        });
    }
}

fn setup_decoder(decoder: &gst::Element, shared: &Arc<SinkShared>) {
    let name = decoder
        .factory()
        .map(|f| f.name().to_string())
        .unwrap_or_default();
    tracing::info!(camera = %shared.camera, decoder = %name, skip = shared.decode.skip.as_str(), threads = shared.decode.threads, "video decoder");
    if let Ok(mut d) = shared.decoder.lock() {
        *d = Some(name.clone());
    }
    if let Some(m) = &shared.metrics {
        time_decoder(decoder, m.clone());
    }
    // no QoS: a decoder told by a synchronised sink (a file at `realtime`) that it runs late drops frames at
    // random, which hid overload from the benchmark's capacity steps; frames are left out only by `decode_skip`
    if decoder.find_property("qos").is_some() {
        decoder.set_property("qos", false);
    }
    // gst-libav's frame threads (`[ingest] decode_threads`); hardware decoders have no such property
    if shared.decode.threads > 0 && decoder.find_property("max-threads").is_some() {
        decoder.set_property("max-threads", shared.decode.threads as i32);
    }
    use super::decode::{DecodeSkip, Skipper};
    match shared.decode.skip {
        DecodeSkip::Off => {}
        DecodeSkip::Nonref => {
            if name.starts_with("avdec_") && decoder.find_property("skip-frame").is_some() {
                // gst-libav's "Skip B-frames" is AVDISCARD_NONREF: frames nothing references
                decoder.set_property_from_str("skip-frame", "1");
            }
        }
        DecodeSkip::Auto | DecodeSkip::Keyframes => {
            let Some(sink) = decoder.static_pad("sink") else {
                return;
            };
            let mut rates = vec![shared.sample_fps];
            // the JPEG recording branch takes decoded frames too; a pass-through recorder takes none
            if let Some(rec) = shared.recorder.as_ref().filter(|r| !r.cfg.passthrough) {
                rates.push(f64::from(rec.cfg.fps.max(1)));
            }
            let skipper = Mutex::new(Skipper::new(shared.decode.skip, &rates));
            let sh = Arc::downgrade(shared);
            sink.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
                let (Some(sh), Some(buf)) = (sh.upgrade(), info.buffer()) else {
                    return gst::PadProbeReturn::Ok;
                };
                // demuxers of formats without reordering (AVI) often stamp only the DTS
                let pts = sh.stream_pts(buf.pts().or(buf.dts()));
                let keyframe = !buf.flags().contains(gst::BufferFlags::DELTA_UNIT);
                let keep = skipper
                    .lock()
                    .map(|mut k| k.keep(pts, keyframe))
                    .unwrap_or(true);
                if keep {
                    gst::PadProbeReturn::Ok
                } else {
                    sh.skipped.fetch_add(1, Ordering::Relaxed);
                    drop(info.take_buffer());
                    gst::PadProbeReturn::Handled
                }
            });
        }
    }
}

/// Hooks `shared` into an analysis path `convert → appsink` (`convert`: the path's first element, videoconvert or
/// the videoscale before it): a probe on its sink pad counts every decoded frame and drops the ones the sampler
/// does not keep (before they are scaled and colour-converted), and the appsink
/// hands each kept frame to the frame queue. Public so a test can watch a pipeline of its own making.
pub fn attach_analysis(
    convert: &gst::Element,
    appsink: &gst_app::AppSink,
    shared: &Arc<SinkShared>,
) -> Result<(), IngestError> {
    let err = |message: String| IngestError::plain(&shared.camera, message);
    let convert_sink = convert
        .static_pad("sink")
        .ok_or_else(|| err("videoconvert has no sink pad".into()))?;
    let probe_shared = shared.clone();
    convert_sink.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        let pts = info.buffer().and_then(|b| b.pts());
        if probe_shared.accept(pts) {
            gst::PadProbeReturn::Ok
        } else {
            // Take the buffer and report it handled: with GStreamer 1.22, returning Drop after the bindings
            // consumed the data makes the core unref NULL (a GStreamer-CRITICAL per dropped frame).
            drop(info.take_buffer());
            gst::PadProbeReturn::Handled
        }
    });
    let (sink_shared, eos_shared) = (shared.clone(), shared.clone());
    appsink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| sink_shared.on_sample(sink))
            .eos(move |_| eos_shared.detect_eos.store(true, Ordering::Relaxed))
            .build(),
    );
    Ok(())
}

/// The size a `width`×`height` frame (pixel aspect `par`) is scaled to for a height of at most `max_h`: aspect
/// kept, square pixels, even dimensions; None when it is small enough already.
pub fn analysis_size(width: u32, height: u32, par: (i32, i32), max_h: u32) -> Option<(u32, u32)> {
    if max_h == 0 || height <= max_h || height == 0 {
        return None;
    }
    let (n, d) = (f64::from(par.0.max(1)), f64::from(par.1.max(1)));
    let w = f64::from(width) * n / d * f64::from(max_h) / f64::from(height);
    let even = |v: f64| ((v / 2.0).round() as u32).max(1) * 2;
    Some((even(w), even(f64::from(max_h))))
}

/// Sets `size`'s caps from each caps event reaching `scale`: the decoded size scaled down to `max_h` (smaller
/// sources pass as they are).
fn scale_down_to(scale: &gst::Element, size: &gst::Element, max_h: u32) {
    let Some(pad) = scale.static_pad("sink") else {
        return;
    };
    let size = size.downgrade();
    pad.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |_, info| {
        let Some(gst::PadProbeData::Event(ev)) = &info.data else {
            return gst::PadProbeReturn::Ok;
        };
        let (gst::EventView::Caps(c), Some(size)) = (ev.view(), size.upgrade()) else {
            return gst::PadProbeReturn::Ok;
        };
        let caps = match gst_video::VideoInfo::from_caps(c.caps()) {
            Ok(info) => {
                let par = info.par();
                match analysis_size(
                    info.width(),
                    info.height(),
                    (par.numer(), par.denom()),
                    max_h,
                ) {
                    Some((w, h)) => gst::Caps::builder("video/x-raw")
                        .field("width", w as i32)
                        .field("height", h as i32)
                        .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
                        .build(),
                    None => gst::Caps::new_any(),
                }
            }
            Err(_) => gst::Caps::new_any(),
        };
        size.set_property("caps", &caps);
        gst::PadProbeReturn::Ok
    });
}

/// A pipeline that only decodes `path` (for the benchmark's decode-only pass): the decoder `build` would plug,
/// set up the same way (`decode_skip`), into a fakesink. Counts decoded frames and those the sampler keeps.
pub fn build_decode_only(
    path: &std::path::Path,
    shared: &Arc<SinkShared>,
) -> Result<gst::Pipeline, IngestError> {
    let camera = shared.camera.to_string();
    let err = |message: String| IngestError::plain(&camera, message);
    let abs = std::path::absolute(path).map_err(|e| err(format!("{}: {e}", path.display())))?;
    let uri = gst::glib::filename_to_uri(&abs, None)
        .map_err(|e| err(format!("{}: {e}", abs.display())))?;
    super::decode::prefer_hardware_decoders();
    let pipeline = gst::Pipeline::with_name(&format!("decode-{camera}"));
    let src = make("uridecodebin", &camera)?;
    src.set_property("uri", uri.as_str());
    let sink = make("fakesink", &camera)?;
    sink.set_property("sync", false);
    pipeline
        .add_many([&src, &sink])
        .map_err(|e| err(e.to_string()))?;
    watch_decoders(&src, shared);
    let sink_pad = sink
        .static_pad("sink")
        .ok_or_else(|| err("fakesink has no sink pad".into()))?;
    let counted = shared.clone();
    sink_pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        if counted.accept(info.buffer().and_then(|b| b.pts())) {
            counted.sampled.fetch_add(1, Ordering::Relaxed);
        }
        gst::PadProbeReturn::Ok
    });
    let linked = shared.clone();
    src.connect_pad_added(move |_, pad| {
        let is_video = pad
            .current_caps()
            .or_else(|| Some(pad.query_caps(None)))
            .and_then(|c| c.structure(0).map(|s| s.name().starts_with("video/")))
            .unwrap_or(false);
        if is_video && !sink_pad.is_linked() {
            linked.video_linked.store(true, Ordering::Relaxed);
            let _ = pad.link(&sink_pad);
        }
    });
    Ok(pipeline)
}

/// The URI `uridecodebin`/`urisourcebin` open for a file or RTSP source; a missing or empty file is an error.
fn source_uri(kind: &SourceKind, camera: &str) -> Result<String, IngestError> {
    let err = |message: String| IngestError::plain(camera, message);
    match kind {
        SourceKind::File(path) => {
            let abs =
                std::path::absolute(path).map_err(|e| err(format!("{}: {e}", path.display())))?;
            if !abs.is_file() {
                return Err(err(format!("video file {} does not exist", abs.display())));
            }
            if std::fs::metadata(&abs).is_ok_and(|m| m.len() == 0) {
                return Err(err(format!(
                    "video file {} is empty (0 bytes)",
                    abs.display()
                )));
            }
            Ok(gst::glib::filename_to_uri(&abs, None)
                .map_err(|e| err(format!("{}: {e}", abs.display())))?
                .to_string())
        }
        SourceKind::Rtsp(url) => Ok(url.clone()),
        _ => Err(err("not a file or RTSP source".into())),
    }
}

/// RTSP over TCP, as Frigate and most NVRs default to: UDP loses packets on busy links and needs open ports; a
/// small jitter buffer keeps latency low. For `uridecodebin` and `urisourcebin` alike.
fn rtsp_over_tcp(src: &gst::Element) {
    src.connect("source-setup", false, |args| {
        let el = args.get(1).and_then(|v| v.get::<gst::Element>().ok())?;
        if el.factory().is_some_and(|f| f.name() == "rtspsrc") {
            el.set_property_from_str("protocols", "tcp");
            el.set_property("latency", 200u32);
        }
        None
    });
}

/// Builds (but does not start) the pipeline for one camera with one input.
pub fn build(
    kind: &SourceKind,
    realtime: bool,
    shared: &Arc<SinkShared>,
) -> Result<gst::Pipeline, IngestError> {
    build_with_record(kind, None, realtime, shared)
}

/// Builds (but does not start) the pipeline for one camera. `record`: the camera's record-only input, recorded
/// without decoding when the camera has a pass-through recorder.
pub fn build_with_record(
    kind: &SourceKind,
    record: Option<&SourceKind>,
    realtime: bool,
    shared: &Arc<SinkShared>,
) -> Result<gst::Pipeline, IngestError> {
    let camera = shared.camera.to_string();
    let err = |message: String| IngestError::plain(&camera, message);
    super::decode::prefer_hardware_decoders();
    let pipeline = gst::Pipeline::with_name(&format!("camera-{camera}"));
    let convert = make_named("videoconvert", "analysis-convert", &camera)?;
    let appsink = gst_app::AppSink::builder()
        .name("analysis-sink")
        .caps(
            &gst::Caps::builder("video/x-raw")
                .field("format", "RGB")
                .build(),
        )
        // files at their own pace only when asked (realtime); otherwise as fast as inference takes them
        .sync(realtime && !kind.is_live())
        .max_buffers(2)
        .build();
    pipeline
        .add_many([&convert, appsink.upcast_ref()])
        .map_err(|e| err(e.to_string()))?;
    convert
        .link(&appsink)
        .map_err(|e| err(format!("linking videoconvert to appsink: {e}")))?;
    // the analysis path's head: videoconvert, or videoscale in front of it (scaling the decoder's YUV before the
    // colour conversion converts fewer pixels)
    let head = match shared.decode.analysis_height {
        0 => convert.clone(),
        h => {
            let scale = make_named("videoscale", "analysis-scale", &camera)?;
            let size = make_named("capsfilter", "analysis-size", &camera)?;
            pipeline
                .add_many([&scale, &size])
                .map_err(|e| err(e.to_string()))?;
            gst::Element::link_many([&scale, &size, &convert])
                .map_err(|e| err(format!("linking videoscale: {e}")))?;
            scale_down_to(&scale, &size, h);
            scale
        }
    };

    attach_analysis(&head, &appsink, shared)?;
    // where the decoded video enters: the analysis head, or a tee that also feeds the JPEG recording branch; a
    // record input is a source of its own
    let entry = match (&shared.recorder, record) {
        (Some(rec), Some(record)) if rec.cfg.passthrough => {
            record_branch(&pipeline, record, rec, shared)?;
            head.clone()
        }
        (Some(rec), _) if !rec.cfg.passthrough => recording_branch(&pipeline, &head, rec, shared)?,
        _ => head.clone(),
    };

    match kind {
        SourceKind::File(_) | SourceKind::Rtsp(_) => {
            let uri = source_uri(kind, &camera)?;
            let src = make("uridecodebin", &camera)?;
            src.set_property("uri", &uri);
            rtsp_over_tcp(&src);
            pipeline.add(&src).map_err(|e| err(e.to_string()))?;
            watch_decoders(&src, shared);
            let entry_weak = entry.downgrade();
            let shared_weak = Arc::downgrade(shared);
            src.connect_pad_added(move |_, pad| {
                let Some(entry) = entry_weak.upgrade() else {
                    return;
                };
                let media = pad
                    .current_caps()
                    .or_else(|| Some(pad.query_caps(None)))
                    .and_then(|c| c.structure(0).map(|s| s.name().to_string()))
                    .unwrap_or_default();
                let is_video = media.starts_with("video/");
                if let Some(sh) = shared_weak.upgrade() {
                    if is_video {
                        sh.video_linked.store(true, Ordering::Relaxed);
                    } else if let Ok(mut o) = sh.other_streams.lock() {
                        o.push(media.clone());
                    }
                }
                let Some(sink) = entry.static_pad("sink") else {
                    return;
                };
                // only the first video stream; audio and further video pads stay unlinked
                if is_video && !sink.is_linked() {
                    if let Err(e) = pad.link(&sink) {
                        tracing::warn!(error = ?e, "could not link decoded video pad");
                    }
                }
            });
        }
        SourceKind::V4l2(dev) => {
            let src = make("v4l2src", &camera)?;
            src.set_property("device", dev.to_string_lossy().to_string());
            pipeline.add(&src).map_err(|e| err(e.to_string()))?;
            src.link(&entry)
                .map_err(|e| err(format!("linking v4l2src: {e}")))?;
        }
        SourceKind::Test { pattern } => {
            let src = make("videotestsrc", &camera)?;
            src.set_property("is-live", true);
            src.set_property_from_str("pattern", pattern);
            let caps = make("capsfilter", &camera)?;
            caps.set_property(
                "caps",
                gst::Caps::builder("video/x-raw")
                    .field("width", 640)
                    .field("height", 480)
                    .field("framerate", gst::Fraction::new(10, 1))
                    .build(),
            );
            pipeline
                .add_many([&src, &caps])
                .map_err(|e| err(e.to_string()))?;
            gst::Element::link_many([&src, &caps, &entry])
                .map_err(|e| err(format!("linking videotestsrc: {e}")))?;
        }
    }
    Ok(pipeline)
}

/// Adds `tee → queue → videoconvert` (the analysis path, unchanged) and `tee → leaky queue → (rate limit by pts)
/// → videoscale → videoconvert → jpegenc → appsink` (the recording ring) to `pipeline`; returns the tee.
fn recording_branch(
    pipeline: &gst::Pipeline,
    convert: &gst::Element,
    rec: &Arc<super::recorder::Recorder>,
    shared: &Arc<SinkShared>,
) -> Result<gst::Element, IngestError> {
    let camera = shared.camera.to_string();
    let err = |message: String| IngestError::plain(&camera, message);
    let tee = make_named("tee", "split", &camera)?;
    let main_q = make_named("queue", "analysis-queue", &camera)?;
    // two frames: the analysis path keeps its back-pressure (a blocking frame queue still slows a file down)
    main_q.set_property("max-size-buffers", 2u32);
    main_q.set_property("max-size-bytes", 0u32);
    main_q.set_property("max-size-time", 0u64);
    let rec_q = make_named("queue", "recording-queue", &camera)?;
    // a slow encoder loses recording frames, never analysis frames
    rec_q.set_property_from_str("leaky", "downstream");
    rec_q.set_property("max-size-buffers", 2u32);
    rec_q.set_property("max-size-bytes", 0u32);
    rec_q.set_property("max-size-time", 0u64);
    let scale = make("videoscale", &camera)?;
    let size = make("capsfilter", &camera)?;
    size.set_property(
        "caps",
        gst::Caps::builder("video/x-raw")
            .field("width", rec.cfg.width as i32)
            .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
            .build(),
    );
    let conv = make("videoconvert", &camera)?;
    let enc = make("jpegenc", &camera)?;
    enc.set_property("quality", rec.cfg.quality.clamp(1, 100) as i32);
    let sink = gst_app::AppSink::builder()
        .name("recording-sink")
        .sync(false)
        .max_buffers(4)
        .drop(true)
        .build();
    // An auxiliary branch must never hold the pipeline's state change: with async=false this sink does not take
    // part in preroll, so the pipeline reaches PLAYING as soon as the analysis sink has its first frame, whatever
    // the recording branch is still waiting for (see `rate_limit` for the deadlock this prevents).
    sink.set_property("async", false);
    let elems = [&tee, &main_q, &rec_q, &scale, &size, &conv, &enc];
    pipeline.add_many(elems).map_err(|e| err(e.to_string()))?;
    pipeline.add(&sink).map_err(|e| err(e.to_string()))?;
    gst::Element::link_many([&tee, &main_q, convert])
        .map_err(|e| err(format!("linking the analysis branch: {e}")))?;
    gst::Element::link_many([&tee, &rec_q, &scale, &size, &conv, &enc, sink.upcast_ref()])
        .map_err(|e| err(format!("linking the recording branch: {e}")))?;
    if let Some(pad) = rec_q.static_pad("src") {
        rate_limit(&pad, rec.cfg.fps.max(1), shared.clone());
    }
    let (rec, sh) = (rec.clone(), shared.clone());
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |s| {
                let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                if let (Some(buf), Some(pts)) = (
                    sample.buffer_owned(),
                    sample.buffer().and_then(|b| sh.stream_pts(b.pts())),
                ) {
                    let caps = sample.caps().map(variable_rate);
                    rec.push(pts, caps.as_deref(), buf);
                }
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    Ok(tee)
}

/// A sink for a stream nobody uses (audio, a second video), so its source never stops on "not linked"; it takes
/// no part in preroll.
fn discard(pipeline: &gst::Pipeline, pad: &gst::Pad) {
    let Ok(sink) = gst::ElementFactory::make("fakesink")
        .property("sync", false)
        .property("async", false)
        .build()
    else {
        return;
    };
    if pipeline.add(&sink).is_ok() {
        let _ = sink.sync_state_with_parent();
        if let Some(sp) = sink.static_pad("sink") {
            let _ = pad.link(&sp);
        }
    }
}

/// The caps name on `pad` (`video/x-h264`, `application/x-rtp`), and for RTP its `media` (`video`, `audio`).
fn pad_media(pad: &gst::Pad) -> (String, Option<String>) {
    let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
    caps.structure(0)
        .map(|s| (s.name().to_string(), s.get::<String>("media").ok()))
        .unwrap_or_default()
}

/// Adds the record input: `urisourcebin` (RTSP over TCP as the detect source) → `parsebin` → its first video
/// stream → queue → appsink, never decoded. Each access unit goes to the recorder with its time on the detect
/// frames' stream-time axis (`SinkShared::stream_pts`: one pipeline, one clock and base time, so for files both
/// timelines start near 0 and for RTSP both are the pipeline's running time), its DTS and whether it is a keyframe.
///
/// Live inputs never wait: a small leaky queue drops units rather than hold the camera (the recorder then waits
/// for the next keyframe). A file's branch is paced: its appsink callback waits while it is more than
/// [`RECORD_LEAD`] ahead of the detect branch, which runs at inference speed, until the detect branch ends.
/// The appsink is `async=false` like the JPEG branch's, so the pipeline never waits for this branch to preroll.
fn record_branch(
    pipeline: &gst::Pipeline,
    kind: &SourceKind,
    rec: &Arc<super::recorder::Recorder>,
    shared: &Arc<SinkShared>,
) -> Result<(), IngestError> {
    let camera = shared.camera.to_string();
    let err = |message: String| IngestError::plain(&camera, message);
    let live = kind.is_live();
    let uri = source_uri(kind, &camera).map_err(|mut e| {
        e.message = format!("record input: {}", e.message);
        e
    })?;
    let src = make_named("urisourcebin", "record-source", &camera)?;
    src.set_property("uri", &uri);
    rtsp_over_tcp(&src);
    let queue = make_named("queue", "record-queue", &camera)?;
    queue.set_property("max-size-bytes", 0u32);
    if live {
        queue.set_property_from_str("leaky", "downstream");
        queue.set_property("max-size-buffers", 0u32);
        queue.set_property("max-size-time", 2_000_000_000u64);
    } else {
        // a file's demuxer waits here while the branch is paced
        queue.set_property("max-size-buffers", 16u32);
        queue.set_property("max-size-time", 0u64);
    }
    let sink = gst_app::AppSink::builder()
        .name("record-sink")
        .sync(false)
        .max_buffers(4)
        .build();
    sink.set_property("async", false);
    pipeline
        .add_many([&src, &queue, sink.upcast_ref()])
        .map_err(|e| err(e.to_string()))?;
    queue
        .link(&sink)
        .map_err(|e| err(format!("linking the record branch: {e}")))?;
    let queue_sink = queue
        .static_pad("sink")
        .ok_or_else(|| err("queue has no sink pad".into()))?;

    let pipe = pipeline.downgrade();
    let (q_sink, name) = (queue_sink.clone(), shared.camera.clone());
    let parse_added = std::sync::atomic::AtomicBool::new(false);
    src.connect_pad_added(move |_, pad| {
        let Some(pipeline) = pipe.upgrade() else {
            return;
        };
        let (media, rtp_media) = pad_media(pad);
        let other_rtp = media == "application/x-rtp" && rtp_media.as_deref() != Some("video");
        if other_rtp || parse_added.swap(true, Ordering::SeqCst) {
            discard(&pipeline, pad);
            return;
        }
        let Ok(parse) = gst::ElementFactory::make("parsebin").name("record-parse").build() else {
            tracing::error!(camera = %name, "record input: GStreamer element 'parsebin' is missing");
            discard(&pipeline, pad);
            return;
        };
        let weak = pipeline.downgrade();
        let q = q_sink.clone();
        // the first video stream goes to the recorder (its codec is checked there); everything else is discarded
        parse.connect_pad_added(move |_, pad| {
            let Some(pipeline) = weak.upgrade() else {
                return;
            };
            let (media, _) = pad_media(pad);
            if media.starts_with("video/") && !q.is_linked() {
                if let Err(e) = pad.link(&q) {
                    tracing::warn!(error = ?e, "could not link the record input's video");
                }
            } else {
                discard(&pipeline, pad);
            }
        });
        let (q, cam) = (q_sink.clone(), name.clone());
        // no video at all: end the record sink's stream, or a file's pipeline would never see EOS
        parse.connect_no_more_pads(move |_| {
            if !q.is_linked() {
                tracing::error!(camera = %cam, "record input: no video stream; recordings are not written");
                q.send_event(gst::event::Eos::new());
            }
        });
        if pipeline.add(&parse).is_err() {
            return;
        }
        let _ = parse.sync_state_with_parent();
        if let Some(sp) = parse.static_pad("sink") {
            if let Err(e) = pad.link(&sp) {
                tracing::warn!(error = ?e, "could not link the record input to parsebin");
            }
        }
    });

    let (rec, sh) = (rec.clone(), shared.clone());
    let codec_seen: Mutex<Option<String>> = Mutex::new(None);
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |s| {
                let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let (Some(buf), Some(caps)) = (sample.buffer_owned(), sample.caps()) else {
                    return Ok(gst::FlowSuccess::Ok);
                };
                let name = caps
                    .structure(0)
                    .map(|s| s.name().to_string())
                    .unwrap_or_default();
                let codec = super::recorder::passthrough_codec(&name);
                sh.note_record_codec(&name, &codec, &codec_seen, &rec);
                if codec.is_err() {
                    return Ok(gst::FlowSuccess::Ok);
                }
                // demuxers of formats without reordering often stamp only the DTS
                let Some(pts_ns) = buf.pts().or(buf.dts()).and_then(|t| sh.record_ns(t, live))
                else {
                    return Ok(gst::FlowSuccess::Ok);
                };
                if !live {
                    sh.pace_record(Duration::from_nanos(pts_ns.max(0) as u64));
                }
                let dts_ns = buf
                    .dts()
                    .and_then(|t| sh.record_ns(t, live))
                    .unwrap_or(pts_ns);
                let flags = buf.flags();
                let unit = super::recorder::Unit {
                    pts: pts_ns,
                    dts: dts_ns,
                    keyframe: !flags.contains(gst::BufferFlags::DELTA_UNIT),
                    data: buf,
                };
                rec.push_unit(unit, flags.contains(gst::BufferFlags::DISCONT), caps);
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    Ok(())
}

impl SinkShared {
    /// Once per codec the record branch sees: the camera state learns it; one that cannot be recorded without
    /// re-encoding is logged as an error and the recorder refuses alerts with that reason (detection goes on).
    fn note_record_codec(
        &self,
        caps_name: &str,
        codec: &Result<&'static str, String>,
        seen: &Mutex<Option<String>>,
        rec: &super::recorder::Recorder,
    ) {
        let Ok(mut seen) = seen.lock() else { return };
        if seen.as_deref() == Some(caps_name) {
            return;
        }
        *seen = Some(caps_name.to_string());
        match codec {
            Ok(c) => tracing::info!(camera = %self.camera, codec = c, "record input"),
            Err(why) => {
                tracing::error!(camera = %self.camera, error = %why, "record input: recordings are not written");
                rec.refuse(why.clone());
            }
        }
        if let Some((status, notify)) = &self.record_status {
            if let Ok(mut st) = status.lock() {
                st.codec = Some(match codec {
                    Ok(c) => c.to_string(),
                    Err(_) => caps_name.to_string(),
                });
                st.error = codec.as_ref().err().cloned();
            }
            notify();
        }
    }
}

/// How one run of a pipeline ended.
#[derive(Debug)]
pub enum RunOutcome {
    /// End of stream (files; a live source that ended).
    Eos,
    /// Shutdown was requested.
    Stopped,
    Failed(IngestError),
    /// No frame was delivered within the start-up time; the text says what GStreamer was waiting on.
    StartTimeout(Duration, String),
    /// The pipeline was playing and not held up by our own queue, yet decoded nothing for this long.
    Stalled(Duration),
}

/// The watchdog's limits for one camera.
#[derive(Debug, Clone, Copy)]
pub struct Watchdog {
    /// No first frame delivered (decoded, sampled and handed to the frame queue) within this → `StartTimeout`.
    pub startup: Duration,
    /// Playing, not blocked by our own full queue, and no decoded frame for this long → `Stalled`.
    pub stall: Duration,
}

/// What the watchdog sees of a running pipeline (plain data, so the decision is unit-tested).
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Time since the pipeline was asked to play.
    pub since_start: Duration,
    /// Time since the last decoded frame or the end of the last wait for our queue (None: nothing decoded yet).
    pub since_progress: Option<Duration>,
    /// Frames handed to the frame queue so far.
    pub delivered: u64,
    pub playing: bool,
    /// The appsink callback is waiting for room in our own frame queue.
    pub blocked: bool,
}

/// The watchdog's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Fine,
    StartTimeout,
    Stalled(Duration),
}

/// Decides whether a pipeline is stuck. Applies to every source kind: files too can hang (a decoder waiting on a
/// query, a branch that cannot preroll), and a file that hangs must fail rather than keep the daemon forever.
pub fn judge(p: &Progress, limits: &Watchdog) -> Verdict {
    if p.delivered == 0 {
        return if p.since_start > limits.startup && !p.blocked {
            Verdict::StartTimeout
        } else {
            Verdict::Fine
        };
    }
    let idle = p.since_progress.unwrap_or(p.since_start);
    if p.playing && !p.blocked && idle > limits.stall {
        Verdict::Stalled(idle)
    } else {
        Verdict::Fine
    }
}

/// Says what a pipeline that delivered no frame is waiting on: its own state and pending state, the elements
/// whose state change has not completed (sinks that did not preroll, a source that did not connect), and what
/// was decoded and linked so far.
pub fn waiting_on(pipeline: &gst::Pipeline, shared: &SinkShared) -> String {
    let (_, cur, pending) = pipeline.state(gst::ClockTime::ZERO);
    let state = |c: gst::State, p: gst::State| {
        if p == gst::State::VoidPending {
            format!("{c:?}").to_uppercase()
        } else {
            format!("{c:?} (going to {p:?})").to_uppercase()
        }
    };
    let mut stuck = Vec::new();
    let mut it = pipeline.iterate_recurse();
    while let Ok(Some(el)) = it.next() {
        let (_, c, p) = el.state(gst::ClockTime::ZERO);
        if p != gst::State::VoidPending || c < gst::State::Paused {
            let is_sink = el.element_flags().contains(gst::ElementFlags::SINK);
            let what = if is_sink && c < gst::State::Paused {
                "sink, not prerolled"
            } else if is_sink {
                "sink"
            } else {
                "element"
            };
            stuck.push(format!("{} [{what}] {}", el.name(), state(c, p)));
        }
    }
    stuck.sort();
    stuck.truncate(8);
    let decoded = shared.decoded.load(Ordering::Relaxed);
    let video = if shared.video_linked.load(Ordering::Relaxed) {
        "a video stream is linked".to_string()
    } else {
        let others = shared
            .other_streams
            .lock()
            .map(|o| o.join(", "))
            .unwrap_or_default();
        if others.is_empty() {
            "no decoded stream appeared yet".to_string()
        } else {
            format!("no video stream yet (found {others})")
        }
    };
    format!(
        "pipeline {}; waiting on: {}; {decoded} frame(s) decoded; {video}",
        state(cur, pending),
        if stuck.is_empty() {
            "nothing (every element reached its state; no data arrived)".to_string()
        } else {
            stuck.join(", ")
        }
    )
}

/// Plays the pipeline until EOS, error, a watchdog verdict or shutdown. `on_first_frame` is called once when
/// frames flow.
pub fn run(
    pipeline: &gst::Pipeline,
    shared: &SinkShared,
    limits: Watchdog,
    shutdown: &crate::shutdown::Shutdown,
    on_first_frame: &mut dyn FnMut(),
) -> RunOutcome {
    let camera = shared.camera.to_string();
    let outcome = (|| {
        let bus = match pipeline.bus() {
            Some(b) => b,
            None => {
                return RunOutcome::Failed(IngestError::plain(
                    &camera,
                    "pipeline has no bus".into(),
                ))
            }
        };
        let started = Instant::now();
        if let Err(e) = pipeline.set_state(gst::State::Playing) {
            // the real reason is on the bus (e.g. "Resource not found")
            let msg = bus.timed_pop_filtered(
                gst::ClockTime::from_mseconds(500),
                &[gst::MessageType::Error],
            );
            return RunOutcome::Failed(bus_error(&camera, msg.as_ref()).unwrap_or(IngestError {
                camera: camera.clone(),
                element: None,
                message: format!("could not start the pipeline: {e}"),
                debug: None,
            }));
        }
        let mut announced = false;
        loop {
            if shutdown.is_triggered() {
                return RunOutcome::Stopped;
            }
            let msg = bus.timed_pop_filtered(
                gst::ClockTime::from_mseconds(100),
                &[gst::MessageType::Eos, gst::MessageType::Error],
            );
            if let Some(msg) = msg {
                match msg.view() {
                    gst::MessageView::Eos(_) => return RunOutcome::Eos,
                    gst::MessageView::Error(_) => {
                        if let Some(mut e) = bus_error(&camera, Some(&msg)) {
                            let others = shared
                                .other_streams
                                .lock()
                                .map(|o| o.clone())
                                .unwrap_or_default();
                            e.message = explain(
                                &e.message,
                                e.debug.as_deref().unwrap_or(""),
                                shared.video_linked.load(Ordering::Relaxed),
                                &others,
                            );
                            return RunOutcome::Failed(e);
                        }
                    }
                    _ => {}
                }
            }
            let sampled = shared.sampled.load(Ordering::Relaxed);
            if !announced && sampled > 0 {
                announced = true;
                on_first_frame();
            }
            let now_ms = shared.started.elapsed().as_millis() as u64;
            let progress = Progress {
                since_start: started.elapsed(),
                since_progress: (shared.decoded.load(Ordering::Relaxed) > 0).then(|| {
                    Duration::from_millis(
                        now_ms.saturating_sub(shared.last_frame_ms.load(Ordering::Relaxed)),
                    )
                }),
                delivered: sampled,
                playing: pipeline.current_state() == gst::State::Playing,
                blocked: shared.blocked.load(Ordering::Relaxed),
            };
            match judge(&progress, &limits) {
                Verdict::Fine => {}
                Verdict::StartTimeout => {
                    return RunOutcome::StartTimeout(
                        progress.since_start,
                        waiting_on(pipeline, shared),
                    )
                }
                Verdict::Stalled(d) => return RunOutcome::Stalled(d),
            }
        }
    })();
    // a paced record branch must not hold its streaming thread while the pipeline shuts down
    shared.stopping.store(true, Ordering::Relaxed);
    let _ = pipeline.set_state(gst::State::Null);
    outcome
}

/// Turns GStreamer's generic errors into what a user can act on: which codec has no decoder installed, or that
/// the source has no video stream at all. Other messages pass through.
pub fn explain(message: &str, debug: &str, video_linked: bool, other_streams: &[String]) -> String {
    if let Some(rest) = debug.split("Missing decoder: ").nth(1) {
        let line = rest.lines().next().unwrap_or(rest);
        let (name, caps) = match line.split_once(" (") {
            Some((n, c)) => (n, c.split([',', ')']).next().unwrap_or(c)),
            None => (line, ""),
        };
        return format!(
            "no decoder installed for {name} ({caps}): install the GStreamer plugin that decodes it (gstreamer1.0-libav covers most codecs)"
        );
    }
    if !video_linked && (debug.contains("not-linked") || message.contains("missing a plug-in")) {
        return if other_streams.is_empty() {
            format!("no video stream found ({message})")
        } else {
            format!(
                "no video stream found; the source has only {}",
                other_streams.join(", ")
            )
        };
    }
    message.to_string()
}

fn bus_error(camera: &str, msg: Option<&gst::Message>) -> Option<IngestError> {
    let msg = msg?;
    if let gst::MessageView::Error(e) = msg.view() {
        Some(IngestError {
            camera: camera.to_string(),
            element: e.src().map(|s| s.path_string().to_string()),
            message: e.error().to_string(),
            debug: e.debug().map(|d| d.to_string()),
        })
    } else {
        None
    }
}

#[cfg(test)]
mod watchdog_tests {
    use super::*;

    const LIMITS: Watchdog = Watchdog {
        startup: Duration::from_secs(10),
        stall: Duration::from_secs(20),
    };

    fn at(since_start: u64, since_progress: Option<u64>, delivered: u64) -> Progress {
        Progress {
            since_start: Duration::from_secs(since_start),
            since_progress: since_progress.map(Duration::from_secs),
            delivered,
            playing: true,
            blocked: false,
        }
    }

    #[test]
    fn no_first_frame_within_the_startup_time_is_a_timeout_whatever_the_state() {
        assert_eq!(judge(&at(9, None, 0), &LIMITS), Verdict::Fine);
        assert_eq!(judge(&at(11, None, 0), &LIMITS), Verdict::StartTimeout);
        // a decoded but never delivered frame (a pipeline stuck in preroll) is still no start
        let prerolling = Progress {
            playing: false,
            ..at(11, Some(11), 0)
        };
        assert_eq!(judge(&prerolling, &LIMITS), Verdict::StartTimeout);
    }

    #[test]
    fn a_playing_pipeline_that_decodes_nothing_stalls_unless_our_queue_holds_it() {
        assert_eq!(judge(&at(100, Some(19), 5), &LIMITS), Verdict::Fine);
        assert_eq!(
            judge(&at(100, Some(21), 5), &LIMITS),
            Verdict::Stalled(Duration::from_secs(21))
        );
        let blocked = Progress {
            blocked: true,
            ..at(100, Some(60), 5)
        };
        assert_eq!(judge(&blocked, &LIMITS), Verdict::Fine);
        let paused = Progress {
            playing: false,
            ..at(100, Some(60), 5)
        };
        assert_eq!(judge(&paused, &LIMITS), Verdict::Fine);
    }
}

#[cfg(test)]
mod explain_tests {
    use super::explain;

    #[test]
    fn names_the_missing_codec_and_the_missing_video() {
        let debug = "no suitable plugins found:\nMissing decoder: DivX MPEG-4 Version 3 (video/x-divx, divxversion=(int)3)\n";
        let m = explain(
            "Your GStreamer installation is missing a plug-in.",
            debug,
            false,
            &[],
        );
        assert!(
            m.starts_with("no decoder installed for DivX MPEG-4 Version 3 (video/x-divx)"),
            "{m}"
        );
        let m = explain(
            "Internal data stream error.",
            "streaming stopped, reason not-linked (-1)",
            false,
            &["audio/x-raw".into()],
        );
        assert_eq!(m, "no video stream found; the source has only audio/x-raw");
        assert_eq!(
            explain("Could not open resource.", "", true, &[]),
            "Could not open resource."
        );
    }
}

#[cfg(test)]
mod pacing_tests {
    use super::*;

    #[test]
    fn a_file_record_branch_keeps_within_its_lead_of_the_detect_branch_until_that_ends() {
        let s = Duration::from_secs_f64;
        assert!(record_may_run(s(11.9), s(10.0), false));
        assert!(record_may_run(s(12.0), s(10.0), false));
        assert!(!record_may_run(s(12.1), s(10.0), false));
        assert!(
            record_may_run(s(60.0), s(10.0), true),
            "the detect branch ended: nothing to wait for"
        );
    }
}
