//! Decoding less (`[[cameras]] decode_skip`): which compressed frames reach the video decoder at all. A camera
//! sends 15–30 fps and scenewatch samples 2, so most decoded frames are thrown away; a frame that no kept frame
//! depends on need not be decoded. The per-frame decision ([`Skipper`]) is pure and sees what a pad probe on
//! the decoder's sink pad sees: the frame's time and whether it is a keyframe.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::sampler::{Sampler, SLACK};

/// `decode_skip`: what a camera's decoder may leave out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DecodeSkip {
    /// Leave out only delta frames after the last one any sampler keeps and before the next keyframe, once the
    /// keyframe interval is learned (two equal intervals in a row) and frames arrive in presentation order (no
    /// B-frames). Sampled frames and their times are exactly those of a full decode: a frame that is left out
    /// is one the samplers would not keep, and no kept frame references it (the next kept one comes after a
    /// keyframe). Saves nothing when the sampling period is short against the keyframe interval.
    #[default]
    Auto,
    /// Keyframes only: every delta frame is left out. Each sampled frame becomes the first keyframe at or after
    /// its due time (up to one keyframe interval late); meant for sampling periods of at least the interval.
    Keyframes,
    /// libav decoders skip non-reference frames (`skip-frame`): helps on streams with B-frames or temporal
    /// layers; a sampled frame may move to the next reference frame.
    Nonref,
    /// Decode every frame.
    Off,
}

impl DecodeSkip {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Keyframes => "keyframes",
            Self::Nonref => "nonref",
            Self::Off => "off",
        }
    }
}

/// Decides per compressed frame whether it goes to the decoder. Mirrors the samplers downstream (the analysis
/// sampler and, with alert recordings, the recording branch's rate limit): fed the same times in the same order
/// (decode order, which is presentation order when nothing is reordered), a mirror makes the same decisions, and
/// a frame it would not keep does not change its state, so leaving such a frame out changes nothing downstream.
#[derive(Debug, Clone)]
pub struct Skipper {
    mode: DecodeSkip,
    samplers: Vec<Sampler>,
    last_key: Option<Duration>,
    last_interval: Option<Duration>,
    /// The keyframe interval, once two in a row were equal (None: still learning, or the stream broke it).
    gop: Option<Duration>,
    last_pts: Option<Duration>,
    /// Frames arrived out of presentation order (B-frames): the mirrors cannot predict, so nothing is left out.
    reordered: bool,
    pub dropped: u64,
}

impl Skipper {
    /// `rates`: the sampling rates downstream (analysis, and recording when on).
    pub fn new(mode: DecodeSkip, rates: &[f64]) -> Self {
        Self {
            mode,
            samplers: rates.iter().map(|r| Sampler::new(*r)).collect(),
            last_key: None,
            last_interval: None,
            gop: None,
            last_pts: None,
            reordered: false,
            dropped: 0,
        }
    }

    /// The learned keyframe interval.
    pub fn gop(&self) -> Option<Duration> {
        self.gop
    }

    /// Whether the frame at `pts` (stream time; None: untimed) goes to the decoder.
    pub fn keep(&mut self, pts: Option<Duration>, keyframe: bool) -> bool {
        let keep = self.decide(pts, keyframe);
        if !keep {
            self.dropped += 1;
        }
        keep
    }

    fn decide(&mut self, pts: Option<Duration>, keyframe: bool) -> bool {
        if matches!(self.mode, DecodeSkip::Off | DecodeSkip::Nonref) {
            return true;
        }
        let Some(pts) = pts else {
            // untimed data (headers) always goes through
            return true;
        };
        if keyframe {
            self.learn_keyframe(pts);
            self.feed(pts);
            return true;
        }
        if self.mode == DecodeSkip::Keyframes {
            return false;
        }
        if self.last_pts.is_some_and(|l| pts < l) {
            self.reordered = true;
        }
        self.last_pts = Some(pts);
        if self.samplers.iter().any(|s| s.would_accept(pts)) {
            self.feed(pts);
            return true;
        }
        let (Some(key), Some(gop)) = (self.last_key, self.gop) else {
            return true;
        };
        let next_key = key + gop;
        if pts + SLACK >= next_key {
            // the keyframe is overdue: the interval changed; decode everything until it is learned again
            self.gop = None;
            self.last_interval = None;
            return true;
        }
        if self.reordered {
            return true;
        }
        // left out when the next kept frame comes at or after the predicted keyframe: nothing kept depends on it
        let next_due = self.samplers.iter().filter_map(|s| s.next_due()).min();
        next_due.is_none_or(|due| next_key > due + SLACK)
    }

    fn feed(&mut self, pts: Duration) {
        for s in &mut self.samplers {
            s.accept(pts);
        }
    }

    fn learn_keyframe(&mut self, pts: Duration) {
        if self.last_pts.is_some_and(|l| pts < l) {
            self.reordered = true;
        }
        self.last_pts = Some(pts);
        if let Some(k) = self.last_key.filter(|k| pts > *k) {
            let interval = pts - k;
            self.gop = self
                .last_interval
                .filter(|l| l.abs_diff(interval) <= SLACK)
                .map(|_| interval);
            self.last_interval = Some(interval);
        }
        self.last_key = Some(pts);
    }
}

/// Hardware video decoders GStreamer may offer: VA-API (the `va` plugin of gstreamer1.0-plugins-bad; its
/// elements exist only where a VA device such as an Intel or AMD GPU is present) and NVDEC (`nvcodec`, only with
/// an NVIDIA driver).
pub const HARDWARE_DECODERS: [&str; 9] = [
    "vah264dec",
    "vah265dec",
    "vavp8dec",
    "vavp9dec",
    "vaav1dec",
    "vampeg2dec",
    "nvh264dec",
    "nvh265dec",
    "nvvp9dec",
];

/// Ranks the hardware decoders this machine has above the software ones, once per process, so `uridecodebin`
/// plugs them first; where none exists (no VA device, no NVIDIA driver) nothing changes and the software
/// decoders (gst-libav) are used. A rank set in `GST_PLUGIN_FEATURE_RANK` (e.g. `vah264dec:NONE` to keep a
/// camera on the CPU) is left as the user set it. Returns the decoders preferred.
pub fn prefer_hardware_decoders() -> Vec<String> {
    static DONE: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    DONE.get_or_init(|| {
        use gstreamer as gst;
        use gstreamer::prelude::*;
        // idempotent; the registry needs it (callers that build pipelines have usually done it already)
        if let Err(e) = gst::init() {
            tracing::warn!(error = %e, "GStreamer did not initialise; no hardware decoder preferred");
            return Vec::new();
        }
        let user = std::env::var("GST_PLUGIN_FEATURE_RANK").unwrap_or_default();
        let registry = gst::Registry::get();
        let mut preferred = Vec::new();
        for name in HARDWARE_DECODERS {
            let Some(f) = registry.lookup_feature(name) else {
                continue;
            };
            if !user.split(',').any(|r| r.split(':').next() == Some(name)) {
                if f.rank() <= gst::Rank::PRIMARY {
                    f.set_rank(gst::Rank::PRIMARY + 10);
                }
                preferred.push(name.to_string());
            }
        }
        if preferred.is_empty() {
            tracing::info!("no hardware video decoder found (VA-API, NVDEC); decoding on the CPU");
        } else {
            tracing::info!(decoders = ?preferred, "hardware video decoders preferred; software decoders are the fallback");
        }
        preferred
    })
    .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream of `secs` at `fps` with a keyframe every `gop` frames: (pts, keyframe).
    fn stream(fps: u32, gop: u32, secs: u32) -> Vec<(Duration, bool)> {
        (0..fps * secs)
            .map(|i| (Duration::from_secs_f64(i as f64 / fps as f64), i % gop == 0))
            .collect()
    }

    /// The frames a sampler at `rate` keeps from the frames that reach it.
    fn sampled(frames: &[(Duration, bool)], rate: f64) -> Vec<Duration> {
        let mut s = Sampler::new(rate);
        frames
            .iter()
            .filter(|f| s.accept(f.0))
            .map(|f| f.0)
            .collect()
    }

    /// Runs `mode` over `frames`; returns the frames that reach the decoder.
    fn decoded(
        mode: DecodeSkip,
        rates: &[f64],
        frames: &[(Duration, bool)],
    ) -> Vec<(Duration, bool)> {
        let mut k = Skipper::new(mode, rates);
        frames
            .iter()
            .copied()
            .filter(|f| k.keep(Some(f.0), f.1))
            .collect()
    }

    /// For each sampled frame of the reduced stream: every frame from its keyframe up to it was decoded.
    fn chains_complete(all: &[(Duration, bool)], kept: &[(Duration, bool)], samples: &[Duration]) {
        for s in samples {
            let key = all
                .iter()
                .filter(|f| f.1 && f.0 <= *s)
                .map(|f| f.0)
                .next_back()
                .expect("a keyframe before each sample");
            for f in all.iter().filter(|f| f.0 >= key && f.0 <= *s) {
                assert!(kept.contains(f), "{f:?} is needed for the sample at {s:?}");
            }
        }
    }

    #[test]
    fn auto_keeps_every_sampled_frame_and_its_references_and_leaves_out_the_rest() {
        // camera1080: 25 fps, a keyframe every 2 s, sampled at 2 fps; and a slow sampler, and a recording branch
        for (rates, min_saved) in [
            (vec![2.0], 0.15),
            (vec![0.5], 0.5),
            (vec![1.0], 0.35),
            (vec![0.2], 0.8),
            (vec![2.0, 5.0], 0.0),
        ] {
            let all = stream(25, 50, 60);
            let kept = decoded(DecodeSkip::Auto, &rates, &all);
            for r in &rates {
                let full = sampled(&all, *r);
                assert_eq!(
                    sampled(&kept, *r),
                    full,
                    "rate {r}: the same frames at the same times"
                );
                chains_complete(&all, &kept, &full);
            }
            let saved = 1.0 - kept.len() as f64 / all.len() as f64;
            assert!(saved >= min_saved, "rates {rates:?}: saved {saved:.2}");
        }
    }

    #[test]
    fn auto_decodes_everything_until_the_interval_is_learned_and_when_it_changes() {
        let all = stream(25, 50, 6);
        let mut k = Skipper::new(DecodeSkip::Auto, &[0.5]);
        let kept: Vec<bool> = all.iter().map(|f| k.keep(Some(f.0), f.1)).collect();
        // two intervals are needed: nothing is left out before the third keyframe (4 s)
        assert!(kept[..100].iter().all(|k| *k));
        assert!(kept[100..].iter().any(|k| !*k));
        // a keyframe that does not come when predicted stops the skipping from the next frame on
        let mut k = Skipper::new(DecodeSkip::Auto, &[0.5]);
        let mut irregular = stream(25, 50, 10);
        irregular[150].1 = false;
        let kept: Vec<bool> = irregular.iter().map(|f| k.keep(Some(f.0), f.1)).collect();
        assert!(!kept[149], "learned by then");
        assert!(
            kept[150..200].iter().all(|k| *k),
            "decodes on once the keyframe is overdue"
        );
        assert_eq!(k.gop(), None);
    }

    #[test]
    fn auto_leaves_nothing_out_when_frames_are_reordered() {
        let mut all = stream(25, 50, 8);
        // B-frames: decode order differs from presentation order
        for i in (1..all.len() - 1).step_by(3) {
            if !all[i].1 && !all[i + 1].1 {
                all.swap(i, i + 1);
            }
        }
        assert_eq!(decoded(DecodeSkip::Auto, &[0.5], &all).len(), all.len());
    }

    #[test]
    fn keyframes_mode_decodes_keyframes_only_and_off_decodes_all() {
        let all = stream(25, 50, 10);
        let kept = decoded(DecodeSkip::Keyframes, &[0.5], &all);
        assert_eq!(kept.len(), 5);
        assert!(kept.iter().all(|f| f.1));
        assert_eq!(decoded(DecodeSkip::Off, &[0.5], &all).len(), all.len());
        assert_eq!(decoded(DecodeSkip::Nonref, &[0.5], &all).len(), all.len());
    }
}
