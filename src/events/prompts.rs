//! Prompt alerts: the language head's calibrated clip score for a prompt, with hysteresis. An alert opens when
//! the score is ≥ `threshold` for `enter_clips` consecutive clips and ends when it is < `exit_threshold` for
//! `exit_clips` consecutive clips (or the stream ends); `update` when the score moves by ≥ 0.05. Pure.

use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use super::rules::{display_name, Alert, AlertType, ClipRef, TextClock};
use crate::config::PromptConfig;
use crate::language::score::{Hold, PartScore};
use crate::language::Program;

/// One frame's score for this prompt: what drove it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FrameScore {
    pub stream_time: f64,
    pub score: f32,
}

/// What a clip says about one prompt.
#[derive(Debug, Clone)]
pub struct PromptObs {
    pub index: u64,
    pub start: f64,
    pub end: f64,
    pub score: f32,
    /// (pts seconds, wall, calibrated score) per frame.
    pub frames: Vec<(f64, DateTime<Utc>, f32)>,
    /// Each understood part's score on this clip (`crate::language::fuse`).
    pub parts: Vec<PartScore>,
}

impl PromptObs {
    /// A clip whose frames all carry the clip's one score (an unusual-scene rank, a task head's probability): what
    /// those alerts feed the prompt lifecycle.
    pub fn constant(r: &crate::infer::ClipResult, score: f32) -> Self {
        Self {
            index: r.clip_index,
            start: r.start.as_secs_f64(),
            end: r.end.as_secs_f64(),
            score,
            frames: r
                .frames
                .iter()
                .map(|f| (f.pts.as_secs_f64(), f.wall, score))
                .collect(),
            parts: Vec::new(),
        }
    }
}

#[derive(Debug, Clone)]
struct Open {
    id: String,
    started_wall: DateTime<Utc>,
    stream_start: f64,
    last_wall: DateTime<Utc>,
    last_pts: f64,
    best: f32,
    last_sent: f32,
    last_clip: ClipRef,
    /// Wall-clock time of the latest clip's first frame (its `stream_start`), for the text.
    clip_wall: DateTime<Utc>,
    drivers: Vec<FrameScore>,
    parts: Vec<PartScore>,
}

#[derive(Debug)]
pub struct PromptState {
    pub cfg: PromptConfig,
    /// The prompt parsed (its parts are scored by the events engine).
    pub program: Program,
    /// How long its parts have held, for a duration part.
    pub hold: Hold,
    camera: Arc<str>,
    /// How the alert texts say times (local time for a live camera, stream time for a file).
    clock: TextClock,
    above: u32,
    below: u32,
    open: Option<Open>,
}

fn round3(x: f32) -> f32 {
    (x * 1000.0).round() / 1000.0
}

impl PromptState {
    pub fn new(camera: Arc<str>, cfg: PromptConfig) -> Self {
        let program = crate::language::parse(&cfg.text, &Default::default());
        Self {
            cfg,
            program,
            hold: Hold::default(),
            camera,
            clock: TextClock::Stream,
            above: 0,
            below: 0,
            open: None,
        }
    }

    /// The prompt as parsed against the camera's zones (`CameraConfig::programs`).
    pub fn with_program(mut self, program: Program) -> Self {
        self.program = program;
        self
    }

    /// Says times in the alert texts as `clock` does (`TextClock::for_camera`).
    pub fn with_text_clock(mut self, clock: TextClock) -> Self {
        self.clock = clock;
        self
    }

    pub fn on_clip(&mut self, o: &PromptObs, new_id: &mut dyn FnMut() -> String) -> Vec<Alert> {
        // the three best frames of the clip are the evidence shown with the alert
        let mut drivers: Vec<FrameScore> = o
            .frames
            .iter()
            .map(|(t, _, s)| FrameScore {
                stream_time: (t * 10.0).round() / 10.0,
                score: round3(*s),
            })
            .collect();
        drivers.sort_by(|a, b| b.score.total_cmp(&a.score));
        drivers.truncate(3);
        let clip_ref = ClipRef {
            index: o.index,
            stream_start: (o.start * 10.0).round() / 10.0,
            stream_end: (o.end * 10.0).round() / 10.0,
            frames: o.frames.len(),
            frames_with_label: o
                .frames
                .iter()
                .filter(|f| f.2 >= self.cfg.threshold)
                .count(),
        };
        if o.score >= self.cfg.threshold {
            self.above += 1;
        } else {
            self.above = 0;
        }
        if o.score < self.cfg.exit() {
            self.below += 1;
        } else {
            self.below = 0;
        }
        let clip_wall = o.frames.first().map_or_else(Utc::now, |f| f.1);
        let mut out = Vec::new();
        match self.open.as_mut() {
            None if self.above >= self.cfg.enter_clips => {
                let (first_t, first_w) = o
                    .frames
                    .iter()
                    .find(|f| f.2 >= self.cfg.threshold)
                    .or(o.frames.first())
                    .map(|f| (f.0, f.1))
                    .unwrap_or((o.start, Utc::now()));
                let (last_t, last_w) = o
                    .frames
                    .last()
                    .map(|f| (f.0, f.1))
                    .unwrap_or((first_t, first_w));
                self.open = Some(Open {
                    id: new_id(),
                    started_wall: first_w,
                    stream_start: first_t,
                    last_wall: last_w,
                    last_pts: last_t,
                    best: o.score,
                    last_sent: o.score,
                    last_clip: clip_ref,
                    clip_wall,
                    drivers,
                    parts: o.parts.clone(),
                });
                out.push(self.message(AlertType::New, o.score));
            }
            None => {}
            Some(open) => {
                open.last_clip = clip_ref;
                open.clip_wall = clip_wall;
                if self.below >= self.cfg.exit_clips {
                    out.push(self.close(o.score));
                } else {
                    if o.score >= self.cfg.exit() {
                        if let Some(f) = o.frames.last() {
                            open.last_pts = f.0;
                            open.last_wall = f.1;
                        }
                    }
                    open.best = open.best.max(o.score);
                    if (o.score - open.last_sent).abs() >= 0.05 {
                        let prev = open.last_sent;
                        open.last_sent = o.score;
                        open.drivers = drivers;
                        open.parts = o.parts.clone();
                        let mut a = self.message(AlertType::Update, o.score);
                        a.before = Some(super::rules::Before {
                            count: 0,
                            score: round3(prev),
                            objects: 0,
                        });
                        out.push(a);
                    }
                }
            }
        }
        out
    }

    pub fn finish(&mut self) -> Option<Alert> {
        let last = self.open.as_ref()?.last_sent;
        Some(self.close(last))
    }

    fn close(&mut self, score: f32) -> Alert {
        let a = self.message(AlertType::End, score);
        self.open = None;
        self.above = 0;
        self.below = 0;
        a
    }

    fn message(&self, t: AlertType, score: f32) -> Alert {
        let Some(o) = self.open.as_ref() else {
            unreachable!("message() without an open prompt alert")
        };
        let ended = t == AlertType::End;
        let fmt = |d: DateTime<Utc>| d.to_rfc3339_opts(SecondsFormat::Millis, true);
        let cam = display_name(&self.camera);
        let (clock, note) = (self.clock, self.clock.note());
        let summary = match t {
            AlertType::New | AlertType::Update => format!(
                "{cam}: the scene matches '{}' (score {:.2}) at {}{note}.",
                self.cfg.text,
                score,
                clock.at(o.last_clip.stream_start, o.clip_wall)
            ),
            AlertType::End => format!(
                "{cam}: the scene matched '{}' from {} to {}{note}; best score {:.2}.",
                self.cfg.text,
                clock.at(o.stream_start, o.started_wall),
                clock.at(o.last_pts, o.last_wall),
                o.best
            ),
        };
        Alert {
            schema: 1,
            id: o.id.clone(),
            kind_of_message: t,
            kind: "prompt",
            severity: crate::config::Severity::Alert,
            zones: Vec::new(),
            objects: 0,
            max_dwell_seconds: 0.0,
            crossed: None,
            posture: None,
            camera: self.camera.to_string(),
            rule: self.cfg.text.clone(),
            label: self.cfg.text.clone(),
            prompt: Some(self.cfg.text.clone()),
            unusual_score: None,
            score: round3(if ended { o.best } else { score }),
            count: 0,
            max_count: 0,
            started_at: fmt(o.started_wall),
            ended_at: ended.then(|| fmt(o.last_wall)),
            stream_start: (o.stream_start * 10.0).round() / 10.0,
            stream_end: ended.then(|| (o.last_pts * 10.0).round() / 10.0),
            clip: o.last_clip.clone(),
            frames: Some(o.drivers.clone()),
            parts: Some(o.parts.clone()),
            before: None,
            snapshot: None,
            recording: None,
            summary,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(i: u64, score: f32) -> PromptObs {
        let t0 = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap_or_default();
        PromptObs {
            index: i,
            start: i as f64 * 4.0,
            end: i as f64 * 4.0 + 4.0,
            score,
            frames: (0..8)
                .map(|f| {
                    let t = i as f64 * 4.0 + f as f64 * 0.5;
                    (
                        t,
                        t0 + chrono::Duration::milliseconds((t * 1000.0) as i64),
                        score + f as f32 * 0.001,
                    )
                })
                .collect(),
            parts: Vec::new(),
        }
    }

    fn prompt(enter: u32, exit: u32) -> PromptState {
        PromptState::new(
            Arc::from("yard"),
            PromptConfig {
                text: "a delivery truck in the driveway".into(),
                threshold: 0.7,
                exit_threshold: Some(0.65),
                enter_clips: enter,
                exit_clips: exit,
            },
        )
    }

    #[test]
    fn hysteresis_opens_on_threshold_and_ends_below_exit_threshold() {
        let mut p = prompt(2, 2);
        let mut n = 0;
        let mut id = || {
            n += 1;
            format!("p{n}")
        };
        let scores = [0.5, 0.72, 0.71, 0.68, 0.66, 0.64, 0.69, 0.63, 0.62, 0.5];
        let mut all = Vec::new();
        for (i, s) in scores.iter().enumerate() {
            all.extend(p.on_clip(&obs(i as u64, *s), &mut id));
        }
        let types: Vec<_> = all.iter().map(|a| a.kind_of_message).collect();
        // opens after 2 clips ≥ 0.7 (clip 2); 0.68/0.66 stay above exit; 0.64 then 0.69 resets the exit count;
        // 0.63, 0.62 = 2 clips below 0.65 → end at clip 8. Score moves of ≥ 0.05 in between are updates.
        assert_eq!(types.first(), Some(&AlertType::New));
        assert_eq!(types.last(), Some(&AlertType::End));
        assert!(
            types[1..types.len() - 1]
                .iter()
                .all(|t| *t == AlertType::Update),
            "{types:?}"
        );
        assert!(all.iter().all(|a| a.id == "p1"));
        assert_eq!(all[0].clip.index, 2);
        assert_eq!(all[all.len() - 1].clip.index, 8);
        assert_eq!(all[0].kind, "prompt");
        assert_eq!(
            all[0].prompt.as_deref(),
            Some("a delivery truck in the driveway")
        );
        let drivers = all[0].frames.as_ref().map(|f| f.len()).unwrap_or(0);
        assert_eq!(drivers, 3, "the three best frames are reported");
        let end = &all[all.len() - 1];
        assert!(
            end.summary
                .contains("matched 'a delivery truck in the driveway'"),
            "{}",
            end.summary
        );
    }

    #[test]
    fn texts_say_local_time_for_live_cameras_and_stream_time_for_files() {
        let tz: chrono_tz::Tz = "Europe/Brussels".parse().expect("tz");
        let run = |clock: TextClock| {
            let mut p = prompt(1, 1).with_text_clock(clock);
            let mut id = || "x".to_string();
            let mut all = Vec::new();
            // clips 150..152 start at 600 s of stream time, 08:10 UTC + 600 s (the obs clock starts at 08:00 UTC)
            for (i, s) in [(150, 0.9), (151, 0.9), (152, 0.1)] {
                all.extend(p.on_clip(&obs(i, s), &mut id));
            }
            all
        };
        let file = run(TextClock::Stream);
        assert_eq!(
            file[0].summary,
            "Yard: the scene matches 'a delivery truck in the driveway' (score 0.90) at 10:00 (stream time)."
        );
        assert!(
            file[1]
                .summary
                .contains("from 10:00 to 10:08 (stream time);"),
            "{}",
            file[1].summary
        );
        let live = run(TextClock::Local(tz));
        // 2027-01-15 08:00 UTC + 600 s is 09:10 in Brussels (UTC+1 in winter)
        assert_eq!(
            live[0].summary,
            "Yard: the scene matches 'a delivery truck in the driveway' (score 0.90) at 09:10."
        );
        assert!(
            live[1].summary.contains("from 09:10 to 09:10;") && !live[1].summary.contains("stream"),
            "{}",
            live[1].summary
        );
        assert_eq!(
            live[0].started_at, "2027-01-15T08:10:00.000Z",
            "machine fields stay UTC"
        );
        let utc = run(TextClock::Local(chrono_tz::Tz::UTC));
        assert!(
            utc[0].summary.ends_with("at 08:10 UTC."),
            "{}",
            utc[0].summary
        );
    }

    #[test]
    fn a_single_spike_does_not_open_with_enter_clips_2() {
        let mut p = prompt(2, 1);
        let mut id = || "x".to_string();
        let mut all = Vec::new();
        for (i, s) in [0.9, 0.5, 0.9, 0.5].iter().enumerate() {
            all.extend(p.on_clip(&obs(i as u64, *s), &mut id));
        }
        assert!(all.is_empty());
    }

    #[test]
    fn material_score_changes_are_updates_and_stream_end_closes() {
        let mut p = prompt(1, 2);
        let mut id = || "x".to_string();
        let mut all = Vec::new();
        for (i, s) in [0.71, 0.73, 0.80].iter().enumerate() {
            all.extend(p.on_clip(&obs(i as u64, *s), &mut id));
        }
        let types: Vec<_> = all.iter().map(|a| a.kind_of_message).collect();
        assert_eq!(types, vec![AlertType::New, AlertType::Update]);
        let end = p.finish().expect("end");
        assert_eq!(end.kind_of_message, AlertType::End);
        assert!((end.score - 0.8).abs() < 1e-6);
    }
}
