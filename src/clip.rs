//! Cuts a camera's sampled frames into clips of `clip_seconds` of stream time, optionally overlapping. Pure: no
//! threads, no GStreamer; the camera's assembler loop feeds it frames and forwards the clips.

use std::sync::Arc;
use std::time::Duration;

use crate::ingest::frame::Frame;

/// A window of consecutive sampled frames of one camera.
#[derive(Debug, Clone)]
pub struct Clip {
    pub camera: Arc<str>,
    /// 0, 1, 2, … per camera stream.
    pub index: u64,
    /// Window start and end in stream time (end exclusive).
    pub start: Duration,
    pub end: Duration,
    pub frames: Vec<Frame>,
}

impl Clip {
    /// A clip of one still picture (packed RGB8), at stream time 0: how photos go through the clip path.
    pub fn of_photo(camera: &str, width: u32, height: u32, rgb: Vec<u8>) -> Self {
        let camera: Arc<str> = Arc::from(camera);
        Self {
            camera: camera.clone(),
            index: 0,
            start: Duration::ZERO,
            end: Duration::ZERO,
            frames: vec![Frame {
                camera,
                seq: 0,
                pts: Duration::ZERO,
                wall: chrono::Utc::now(),
                width,
                height,
                rgb: Arc::new(rgb),
                moved: None,
            }],
        }
    }

    /// True when the camera's motion gate judged every frame still (false without a gate).
    pub fn still(&self) -> bool {
        !self.frames.is_empty() && self.frames.iter().all(|f| f.moved == Some(false))
    }
}

#[derive(Debug)]
pub struct ClipAssembler {
    length: Duration,
    step: Duration,
    window_start: Option<Duration>,
    frames: Vec<Frame>,
    next_index: u64,
}

impl ClipAssembler {
    /// `overlap_seconds` must be < `clip_seconds` (validated in config); a bad value degrades to no overlap.
    pub fn new(clip_seconds: f64, overlap_seconds: f64) -> Self {
        let length = Duration::from_secs_f64(clip_seconds.max(0.001));
        let overlap = Duration::from_secs_f64(overlap_seconds.max(0.0));
        let step = if overlap < length {
            length - overlap
        } else {
            length
        };
        Self {
            length,
            step,
            window_start: None,
            frames: Vec::new(),
            next_index: 0,
        }
    }

    /// Adds a frame; returns the clips it completes (usually none or one; more after a gap in the stream).
    pub fn push(&mut self, frame: Frame) -> Vec<Clip> {
        let mut out = Vec::new();
        let start = *self.window_start.get_or_insert(frame.pts);
        let mut start = start;
        while frame.pts >= start + self.length {
            if let Some(clip) = self.emit(start) {
                out.push(clip);
            }
            start += self.step;
            // drop frames that are no longer inside the next window
            self.frames.retain(|f| f.pts >= start);
            if self.frames.is_empty() && frame.pts >= start + self.length {
                // a long gap: jump the window to this frame rather than emitting empty windows
                start = frame.pts;
            }
        }
        self.window_start = Some(start);
        self.frames.push(frame);
        out
    }

    /// End of stream: the frames of the open window become a last (shorter) clip.
    pub fn flush(&mut self) -> Option<Clip> {
        let start = self.window_start.take()?;
        let clip = self.emit_until(start, self.frames.last().map(|f| f.pts)?);
        self.frames.clear();
        clip
    }

    fn emit(&mut self, start: Duration) -> Option<Clip> {
        self.emit_until(start, start + self.length)
    }

    fn emit_until(&mut self, start: Duration, end: Duration) -> Option<Clip> {
        let frames: Vec<Frame> = self
            .frames
            .iter()
            .filter(|f| f.pts >= start && f.pts < start + self.length)
            .cloned()
            .collect();
        let first = frames.first()?;
        let clip = Clip {
            camera: first.camera.clone(),
            index: self.next_index,
            start,
            end: end.max(start),
            frames,
        };
        self.next_index += 1;
        Some(clip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn frame(i: u64, pts_ms: u64) -> Frame {
        Frame {
            camera: Arc::from("cam"),
            seq: i,
            pts: Duration::from_millis(pts_ms),
            wall: Utc::now(),
            width: 2,
            height: 2,
            rgb: Arc::new(vec![0; 12]),
            moved: None,
        }
    }

    fn run(clip_s: f64, overlap_s: f64, n: u64, every_ms: u64) -> Vec<Clip> {
        let mut a = ClipAssembler::new(clip_s, overlap_s);
        let mut clips = Vec::new();
        for i in 0..n {
            clips.extend(a.push(frame(i, i * every_ms)));
        }
        clips.extend(a.flush());
        clips
    }

    fn seqs(c: &Clip) -> Vec<u64> {
        c.frames.iter().map(|f| f.seq).collect()
    }

    #[test]
    fn back_to_back_clips_hold_n_frames_each() {
        // 2 fps, 4 s clips: 8 frames per clip; 20 frames = 2 full clips + a 4-frame tail
        let clips = run(4.0, 0.0, 20, 500);
        assert_eq!(clips.len(), 3);
        assert_eq!(seqs(&clips[0]), (0..8).collect::<Vec<_>>());
        assert_eq!(seqs(&clips[1]), (8..16).collect::<Vec<_>>());
        assert_eq!(seqs(&clips[2]), (16..20).collect::<Vec<_>>());
        assert_eq!(clips[1].start, Duration::from_secs(4));
        assert_eq!(clips[1].end, Duration::from_secs(8));
        assert_eq!(
            clips.iter().map(|c| c.index).collect::<Vec<_>>(),
            vec![0, 1, 2]
        );
    }

    #[test]
    fn overlapping_clips_share_frames() {
        let clips = run(4.0, 2.0, 16, 500);
        assert_eq!(seqs(&clips[0]), (0..8).collect::<Vec<_>>());
        assert_eq!(seqs(&clips[1]), (4..12).collect::<Vec<_>>());
        assert_eq!(clips[1].start, Duration::from_secs(2));
    }

    #[test]
    fn a_gap_does_not_produce_empty_clips() {
        let mut a = ClipAssembler::new(2.0, 0.0);
        let mut clips = Vec::new();
        clips.extend(a.push(frame(0, 0)));
        clips.extend(a.push(frame(1, 500)));
        clips.extend(a.push(frame(2, 60_000)));
        clips.extend(a.push(frame(3, 63_000)));
        assert_eq!(clips.len(), 2);
        assert!(clips.iter().all(|c| !c.frames.is_empty()));
        assert_eq!(clips[1].start, Duration::from_secs(60));
    }

    #[test]
    fn flush_of_nothing_is_nothing() {
        assert!(ClipAssembler::new(4.0, 0.0).flush().is_none());
    }
}
