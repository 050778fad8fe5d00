//! Events stage. This file owns the rule [`Engine`]: plain data in (inference outputs, `set` commands, camera
//! configs), alert lifecycle messages out, no I/O, so it is unit-tested without files, clocks or a broker. The
//! async task that runs it is in [`task`], the snapshot and recording files in [`evidence`].

pub mod classifier;
pub mod evidence;
pub mod prompts;
pub mod rules;
pub mod schedule;
pub mod snapshot;
pub mod summary;
pub mod task;
pub mod track;
pub mod unusual;

pub use evidence::{Evidence, Recorders, Snapshots};
pub use task::{run, EventsStage};

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::config::CameraConfig;
use crate::control::Command;
use crate::infer::worker::InferOut;
use prompts::{PromptObs, PromptState};
use rules::{Alert, RuleState};
use schedule::Schedule;

/// Per-camera rule states and runtime switches (detection off, disarmed rules).
pub struct Engine {
    cameras: HashMap<String, Vec<RuleState>>,
    prompts: HashMap<String, Vec<PromptState>>,
    /// Cameras whose detection was switched off by a command.
    detect_off: HashSet<String>,
    /// Per camera: rules (labels or prompt texts) disarmed by a command.
    disarmed: HashMap<String, HashSet<String>>,
    new_id: Box<dyn FnMut() -> String + Send>,
    /// The detector's per-label levels (its model card), for rules that do not set their own.
    detector: crate::labels::Thresholds,
    /// Per camera with `[cameras.unusual]`: its baseline and alert lifecycle, and its time zone (the baseline
    /// learns per local time of day).
    unusual: HashMap<String, (unusual::UnusualState, chrono_tz::Tz)>,
    /// Each camera's unusualness of its latest clip (None while its baseline warms up).
    unusual_scores: HashMap<String, Option<f32>>,
    /// Per camera: its task heads (`[[cameras.classifiers]]`), and the class changes ready to publish.
    classifiers: HashMap<String, Vec<classifier::ClassifierState>>,
    readings: Vec<classifier::Reading>,
    /// Period summaries (None = off) and the ones ready to publish.
    summary_period: Option<f64>,
    summaries: HashMap<String, summary::SummaryState>,
    ready: Vec<summary::Summary>,
    /// Per camera: its zones and time zone, for the parts of its prompts.
    prompt_ctx: HashMap<String, (Vec<crate::config::ZoneConfig>, chrono_tz::Tz)>,
    /// Clip pooling of fused prompt scores (`[language] alpha`, as the head pools).
    alpha: f32,
    /// Per camera: how texts say times (local time for live cameras, stream time for files).
    clocks: HashMap<String, rules::TextClock>,
    /// The latest clip's prompts: (text, fused clip score, threshold), for the web page's sparklines.
    scored: Vec<(String, f32, f32)>,
}

impl Engine {
    pub fn new(
        cameras: &[CameraConfig],
        detector: crate::labels::Thresholds,
        new_id: Box<dyn FnMut() -> String + Send>,
    ) -> Self {
        let mut e = Self {
            detector,
            unusual: HashMap::new(),
            unusual_scores: HashMap::new(),
            classifiers: HashMap::new(),
            readings: Vec::new(),
            cameras: HashMap::new(),
            prompts: HashMap::new(),
            detect_off: HashSet::new(),
            disarmed: HashMap::new(),
            new_id,
            summary_period: None,
            summaries: HashMap::new(),
            ready: Vec::new(),
            prompt_ctx: HashMap::new(),
            alpha: crate::config::LanguageConfig::default().alpha,
            clocks: HashMap::new(),
            scored: Vec::new(),
        };
        for c in cameras {
            e.install(c);
        }
        e
    }

    /// Turns on period summaries (seconds of stream time per period).
    pub fn with_summaries(mut self, period_secs: Option<f64>) -> Self {
        self.summary_period = period_secs;
        self
    }

    /// Pools fused prompt scores over a clip's frames as the language head does (`[language] alpha`).
    pub fn with_alpha(mut self, alpha: f32) -> Self {
        self.alpha = alpha;
        self
    }

    /// Task heads' class changes since the last call (published retained).
    pub fn take_readings(&mut self) -> Vec<classifier::Reading> {
        std::mem::take(&mut self.readings)
    }

    /// Each prompt's (text, fused clip score, threshold) on the clip handled last (empty without prompts).
    pub fn take_prompt_scores(&mut self) -> Vec<(String, f32, f32)> {
        std::mem::take(&mut self.scored)
    }

    /// Summaries completed since the last call.
    pub fn take_summaries(&mut self) -> Vec<summary::Summary> {
        std::mem::take(&mut self.ready)
    }

    fn end_summary(&mut self, camera: &str) {
        if let Some(s) = self.summaries.get_mut(camera).and_then(|s| s.finish()) {
            self.ready.push(s);
        }
    }

    fn install(&mut self, c: &CameraConfig) {
        let name: Arc<str> = Arc::from(c.name.as_str());
        let clock = rules::TextClock::for_camera(c);
        self.clocks.insert(c.name.clone(), clock);
        self.cameras.insert(
            c.name.clone(),
            c.effective_rules()
                .into_iter()
                .map(|r| {
                    let zones = c
                        .zones
                        .iter()
                        .filter(|z| r.zones.contains(&z.name))
                        .cloned()
                        .collect();
                    // validated at load; an unparsable schedule (never reached) means always
                    let schedule = Schedule::parse(&c.timezone, &r.schedule)
                        .unwrap_or_else(|_| Schedule::always());
                    RuleState::with_zones(name.clone(), r, zones, &self.detector)
                        .with_schedule(schedule)
                        .with_text_clock(clock)
                })
                .collect(),
        );
        self.prompts.insert(
            c.name.clone(),
            c.prompts
                .iter()
                .zip(c.programs())
                .map(|(p, program)| {
                    PromptState::new(name.clone(), p.clone())
                        .with_program(program)
                        .with_text_clock(clock)
                })
                .collect(),
        );
        self.classifiers.insert(
            c.name.clone(),
            c.classifiers
                .iter()
                .map(|h| classifier::ClassifierState::new(name.clone(), h.clone(), clock))
                .collect(),
        );
        // validated at load; an unknown zone name (never reached) means UTC
        let tz = schedule::parse_tz(&c.timezone).unwrap_or(chrono_tz::Tz::UTC);
        self.prompt_ctx
            .insert(c.name.clone(), (c.zones.clone(), tz));
        if c.unusual.enabled {
            let mut state = unusual::UnusualState::new(name.clone(), c);
            // a reload keeps what the camera learnt (with the same learning parameters)
            if let Some(b) = self.unusual.remove(&c.name).and_then(|(s, _)| s.baseline) {
                state.restore(b);
            }
            self.unusual.insert(c.name.clone(), (state, tz));
        } else {
            self.unusual.remove(&c.name);
        }
    }

    /// A saved baseline for `camera` (start-up), if the camera has `[cameras.unusual]`.
    pub fn restore_unusual(&mut self, camera: &str, baseline: unusual::Baseline) {
        if let Some((s, _)) = self.unusual.get_mut(camera) {
            s.restore(baseline);
        }
    }

    /// Whether `camera` has `[cameras.unusual]`.
    pub fn has_unusual(&self, camera: &str) -> bool {
        self.unusual.contains_key(camera)
    }

    /// Cameras with an unusual-scene baseline.
    pub fn unusual_cameras(&self) -> Vec<String> {
        self.unusual.keys().cloned().collect()
    }

    /// The baselines that changed since the last call, to save: (camera, baseline).
    pub fn unusual_to_save(&mut self) -> Vec<(String, unusual::Baseline)> {
        self.unusual
            .iter_mut()
            .filter_map(|(c, (s, _))| s.take_dirty().map(|b| (c.clone(), b.clone())))
            .collect()
    }

    /// The unusualness of `camera`'s latest clip (None: no baseline, or it is warming up).
    pub fn unusual_score(&self, camera: &str) -> Option<f32> {
        self.unusual_scores.get(camera).copied().flatten()
    }

    /// Ends every open alert of `camera` whose rule matches `which` (None = all).
    fn finish(&mut self, camera: &str, which: Option<&str>) -> Vec<Alert> {
        let mut out = Vec::new();
        if let Some(rules) = self.cameras.get_mut(camera) {
            out.extend(
                rules
                    .iter_mut()
                    .filter(|r| which.is_none_or(|w| r.rule.name() == w))
                    .filter_map(|r| r.finish()),
            );
        }
        if let Some(states) = self.prompts.get_mut(camera) {
            out.extend(
                states
                    .iter_mut()
                    .filter(|p| which.is_none_or(|w| p.cfg.text == w))
                    .filter_map(|p| p.finish()),
            );
        }
        if let Some((s, _)) = self
            .unusual
            .get_mut(camera)
            .filter(|_| which.is_none_or(|w| w == "unusual"))
        {
            out.extend(s.finish());
        }
        if let Some(states) = self.classifiers.get_mut(camera) {
            out.extend(
                states
                    .iter_mut()
                    .filter(|h| which.is_none_or(|w| h.name() == w))
                    .filter_map(|h| h.finish()),
            );
        }
        out
    }

    /// Replaces (Some) or removes (None) a camera's rules after a reload; its open alerts end first.
    pub fn configure(&mut self, camera: &str, cfg: Option<&CameraConfig>) -> Vec<Alert> {
        let out = self.finish(camera, None);
        if let Some(s) = self.summaries.get_mut(camera) {
            s.on_alerts(&out);
        }
        self.end_summary(camera);
        self.summaries.remove(camera);
        self.cameras.remove(camera);
        self.prompts.remove(camera);
        self.classifiers.remove(camera);
        if cfg.is_none() {
            self.unusual.remove(camera);
            self.unusual_scores.remove(camera);
        }
        self.prompt_ctx.remove(camera);
        match cfg {
            // switches outlive a reload as they outlive a restart; a disarmed rule the camera lost is forgotten
            Some(c) => {
                let rules = c.rule_names();
                if let Some(d) = self.disarmed.get_mut(camera) {
                    d.retain(|r| rules.contains(r));
                }
                self.install(c);
            }
            None => {
                self.detect_off.remove(camera);
                self.disarmed.remove(camera);
            }
        }
        out
    }

    /// Applies a `set` command; switching something off ends the alerts it had open.
    pub fn command(&mut self, camera: &str, cmd: &Command) -> Vec<Alert> {
        match cmd {
            // handled by the events task (it needs the latest frame), changes no rule state
            Command::Snapshot => Vec::new(),
            // the saved file is the events task's to delete
            Command::UnusualReset => {
                self.unusual_scores.remove(camera);
                self.unusual
                    .get_mut(camera)
                    .and_then(|(s, _)| s.reset())
                    .into_iter()
                    .collect()
            }
            Command::Detect(true) => {
                self.detect_off.remove(camera);
                Vec::new()
            }
            Command::Detect(false) => {
                self.detect_off.insert(camera.to_string());
                self.finish(camera, None)
            }
            Command::Arm { rule, armed: true } => {
                if let Some(d) = self.disarmed.get_mut(camera) {
                    d.remove(rule);
                }
                Vec::new()
            }
            Command::Arm { rule, armed: false } => {
                self.disarmed
                    .entry(camera.to_string())
                    .or_default()
                    .insert(rule.clone());
                self.finish(camera, Some(rule))
            }
        }
    }

    /// Alerts caused by one inference output, in order.
    pub fn handle(&mut self, msg: &InferOut) -> Vec<Alert> {
        let mut out = Vec::new();
        match msg {
            InferOut::Result(r) => {
                // a clip inferred before detection was switched off must not re-open an alert
                if self.detect_off.contains(&*r.camera) {
                    return out;
                }
                let disarmed = self.disarmed.get(&*r.camera);
                let armed = |name: &str| disarmed.is_none_or(|d| !d.contains(name));
                let Some(rules) = self.cameras.get_mut(&*r.camera) else {
                    return out;
                };
                let mut counts = Vec::new();
                for rule in rules.iter_mut().filter(|r| armed(&r.rule.name())) {
                    let obs = rule.observe(
                        r.clip_index,
                        r.start.as_secs_f64(),
                        r.end.as_secs_f64(),
                        &r.frames,
                    );
                    counts.push((
                        rule.rule.name(),
                        obs.frames.iter().map(|f| f.count).max().unwrap_or(0),
                    ));
                    out.extend(rule.on_clip(&obs, &mut *self.new_id));
                }
                // each prompt's fused clip score (its parts and the head's free-text score), for the summary
                let mut fused_scores: Vec<(String, f32)> = Vec::new();
                self.scored.clear();
                if let (Some(states), Some(scores), Some((zones, tz))) = (
                    self.prompts.get_mut(&*r.camera),
                    r.prompts.as_ref(),
                    self.prompt_ctx.get(&*r.camera),
                ) {
                    let ctx = crate::language::ScoreContext {
                        levels: &self.detector,
                        zones,
                        tz: *tz,
                        alpha: self.alpha,
                    };
                    for state in states.iter_mut() {
                        let Some(k) = scores.texts.iter().position(|t| *t == state.cfg.text) else {
                            continue;
                        };
                        let head_frames = scores.frame_scores(k);
                        let fused = crate::language::fuse(
                            &state.program,
                            crate::language::score::HeadScores {
                                frames: &head_frames,
                                clip: scores.clip[k],
                            },
                            &r.frames,
                            &ctx,
                            Some(&mut state.hold),
                        );
                        fused_scores.push((state.cfg.text.clone(), fused.clip));
                        self.scored
                            .push((state.cfg.text.clone(), fused.clip, state.cfg.threshold));
                        if !armed(&state.cfg.text) {
                            continue;
                        }
                        let obs = PromptObs {
                            index: r.clip_index,
                            start: r.start.as_secs_f64(),
                            end: r.end.as_secs_f64(),
                            score: fused.clip,
                            frames: r
                                .frames
                                .iter()
                                .zip(fused.frames)
                                .map(|(f, s)| (f.pts.as_secs_f64(), f.wall, s))
                                .collect(),
                            parts: fused.parts,
                        };
                        out.extend(state.on_clip(&obs, &mut *self.new_id));
                    }
                }
                if let Some((state, tz)) = self.unusual.get_mut(&*r.camera) {
                    use chrono::Timelike;
                    let hour = r
                        .frames
                        .first()
                        .map_or(0, |f| f.wall.with_timezone(tz).hour());
                    let (alerts, score) = state.on_clip(r, hour, &mut *self.new_id);
                    out.extend(alerts);
                    self.unusual_scores.insert(r.camera.to_string(), score);
                }
                if let Some(states) = self.classifiers.get_mut(&*r.camera) {
                    for h in states.iter_mut() {
                        let on = armed(h.name());
                        let (alerts, reading) = h.on_clip(r, on, &mut *self.new_id);
                        out.extend(alerts);
                        self.readings.extend(reading);
                    }
                }
                if let Some(period) = self.summary_period {
                    let facts = summary::ClipFacts {
                        start: r.start.as_secs_f64(),
                        end: r.end.as_secs_f64(),
                        wall_start: r.frames.first().map(|f| f.wall).unwrap_or_default(),
                        wall_end: r.frames.last().map(|f| f.wall).unwrap_or_default(),
                        counts,
                        prompts: fused_scores,
                    };
                    let clock = self.clocks.get(&*r.camera).copied().unwrap_or_default();
                    let state = self
                        .summaries
                        .entry(r.camera.to_string())
                        .or_insert_with(|| {
                            summary::SummaryState::new(&r.camera, period).with_clock(clock)
                        });
                    if let Some(s) = state.on_clip(&facts, &out) {
                        self.ready.push(s);
                    }
                }
            }
            InferOut::CameraEnded { camera } => {
                out = self.finish(camera, None);
                if let Some(s) = self.summaries.get_mut(&**camera) {
                    s.on_alerts(&out);
                }
                self.end_summary(camera);
            }
            InferOut::Configure { camera, config } => {
                out = self.configure(camera, config.as_deref());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::infer::detector::{BBox, Detection};
    use crate::infer::{ClipResult, ClipTimings, FrameResult};
    use rules::AlertType;

    fn camera() -> CameraConfig {
        toml::from_str(
            "name = \"cam\"\nurl = \"test://\"\n[[rules]]\nlabel = \"person\"\nmin_frames = 1\nend_after_seconds = 100.0\n",
        )
        .expect("camera config")
    }

    fn clip(index: u64, people: usize) -> InferOut {
        let t = Duration::from_secs(4 * index);
        let frames = (0..2)
            .map(|i| FrameResult {
                seq: index * 2 + i,
                pts: t + Duration::from_secs(2 * i),
                wall: chrono::DateTime::UNIX_EPOCH,
                width: 640,
                height: 480,
                detections: (0..people)
                    .map(|_| Detection {
                        class_id: 0,
                        label: "person",
                        score: 0.9,
                        bbox: BBox {
                            x1: 10.0,
                            y1: 10.0,
                            x2: 50.0,
                            y2: 90.0,
                        },
                    })
                    .collect(),
                encoding: None,
                postures: Vec::new(),
                pose_only: Vec::new(),
                pixels: Default::default(),
            })
            .collect();
        InferOut::Result(Box::new(ClipResult {
            camera: Arc::from("cam"),
            clip_index: index,
            start: t,
            end: t + Duration::from_secs(4),
            frames,
            prompts: None,
            classifiers: Vec::new(),
            timings: ClipTimings::default(),
        }))
    }

    fn engine() -> Engine {
        let mut n = 0;
        Engine::new(
            &[camera()],
            Default::default(),
            Box::new(move || {
                n += 1;
                format!("id{n}")
            }),
        )
    }

    fn types(a: &[Alert]) -> Vec<AlertType> {
        a.iter().map(|a| a.kind_of_message).collect()
    }

    fn camera_with(rule_extra: &str, zones: &str) -> CameraConfig {
        toml::from_str(&format!(
            "name = \"cam\"\nurl = \"test://\"\n{zones}\n[[rules]]\nlabel = \"person\"\nmin_frames = 1\n{rule_extra}\n"
        ))
        .expect("camera config")
    }

    fn engine_for(cam: CameraConfig) -> Engine {
        Engine::new(&[cam], Default::default(), Box::new(|| "id".to_string()))
    }

    /// One clip of 8 frames at 2 fps starting at `4·index` s, one person box per frame with these scores (0 = not
    /// detected in that frame).
    fn clip_scored(index: u64, scores: &[f32]) -> InferOut {
        let InferOut::Result(mut r) = clip(index, 0) else {
            unreachable!("clip() makes results")
        };
        let t = Duration::from_secs(4 * index);
        r.frames = scores
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let mut f = r.frames[0].clone();
                f.seq = index * 8 + i as u64;
                f.pts = t + Duration::from_millis(500 * i as u64);
                f.detections = (*s > 0.0)
                    .then_some(Detection {
                        class_id: 0,
                        label: "person",
                        score: *s,
                        bbox: BBox {
                            x1: 100.0,
                            y1: 100.0,
                            x2: 160.0,
                            y2: 260.0,
                        },
                    })
                    .into_iter()
                    .collect();
                f
            })
            .collect();
        InferOut::Result(r)
    }

    #[test]
    fn the_last_summary_of_a_stream_has_the_dwell_and_crossings_of_the_alerts_its_end_closed() {
        // the alert stays open until the stream ends: its end (with the dwell) comes with CameraEnded, after the
        // last clip, and must still reach the summary of the period it belongs to
        let mut e = engine().with_summaries(Some(3600.0));
        for i in 0..3 {
            e.handle(&clip(i, 1));
        }
        let end = e.handle(&InferOut::CameraEnded {
            camera: Arc::from("cam"),
        });
        assert_eq!(types(&end), vec![AlertType::End]);
        assert!(end[0].max_dwell_seconds >= 10.0, "{:?}", end[0]);
        let s = e.take_summaries();
        assert_eq!(s.len(), 1);
        let person = &s[0].labels["person"];
        assert_eq!(person.max_dwell_seconds, end[0].max_dwell_seconds);
    }

    #[test]
    fn track_confirmation_alerts_on_a_steady_person_near_the_threshold_and_never_on_spikes() {
        // alert at a track median of 0.5, tracked from 0.35, min_frames 3
        let levels = |min_frames: usize| -> Engine {
            engine_for(
                toml::from_str(&format!(
                    "name = \"cam\"\nurl = \"test://\"\n[[rules]]\nlabel = \"person\"\nmin_score = 0.5\n\
                     track_score = 0.35\nmin_frames = {min_frames}\nend_after_seconds = 4.0\n"
                ))
                .expect("camera config"),
            )
        };
        // a person standing still whose per-frame score wavers either side of 0.5: one alert, from the first
        // sighting (1.0 s), although only 3 of the 8 frames reach 0.5
        let mut e = levels(3);
        let a = e.handle(&clip_scored(
            0,
            &[0.0, 0.0, 0.47, 0.55, 0.44, 0.58, 0.49, 0.52],
        ));
        assert_eq!(types(&a), vec![AlertType::New]);
        assert_eq!(a[0].stream_start, 1.0, "since the person was first seen");
        // per-frame spikes of 0.9 in single frames, 2 s apart, never alert
        let mut e = levels(3);
        for i in 0..4 {
            let a = e.handle(&clip_scored(i, &[0.9, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]));
            assert!(a.is_empty(), "clip {i}: {a:?}");
        }
        // a steady detection that stays at 0.4 (a poster) never alerts, however long
        let mut e = levels(3);
        for i in 0..4 {
            assert!(e.handle(&clip_scored(i, &[0.4; 8])).is_empty());
        }
    }

    #[test]
    fn a_person_down_rule_counts_only_people_lying_including_those_only_the_pose_model_found() {
        use crate::infer::pose::{PoseOnly, Posture};
        let mut e = engine_for(camera_with("posture = \"lying\"", ""));
        let with = |index: u64, postures: Vec<Option<Posture>>, pose_only: Vec<PoseOnly>| {
            let InferOut::Result(mut r) = clip(index, postures.len()) else {
                unreachable!("clip() makes results")
            };
            for f in r.frames.iter_mut() {
                f.postures = postures.clone();
                f.pose_only = pose_only.clone();
            }
            InferOut::Result(r)
        };
        assert!(
            e.handle(&with(0, vec![Some(Posture::Standing), None], vec![]))
                .is_empty(),
            "standing or unclear people are not 'down'"
        );
        let down = PoseOnly {
            bbox: BBox {
                x1: 300.0,
                y1: 400.0,
                x2: 500.0,
                y2: 460.0,
            },
            score: 0.3,
            posture: Posture::Lying,
        };
        let a = e.handle(&with(1, vec![Some(Posture::Standing)], vec![down]));
        assert_eq!(types(&a), vec![AlertType::New]);
        assert_eq!(a[0].count, 1);
        assert_eq!(a[0].posture, Some(Posture::Lying));
        assert!(
            a[0].summary.contains("1 person lying in view"),
            "{}",
            a[0].summary
        );
    }

    #[test]
    fn schedules_use_the_camera_time_zone() {
        // the test clips' frames are stamped 1970-01-01T00:00Z: a Thursday in UTC, Wednesday 19:00 in New York
        for (tz, window, fires) in [
            ("UTC", "thu 00:00-01:00", true),
            ("UTC", "fri 00:00-01:00", false),
            ("America/New_York", "wed 18:00-20:00", true),
            ("America/New_York", "thu 00:00-01:00", false),
            ("UTC", "wed 23:00-01:00", true),
        ] {
            let mut cam = camera_with(&format!("schedule = [\"{window}\"]"), "");
            cam.timezone = tz.into();
            let mut e = engine_for(cam);
            assert_eq!(!e.handle(&clip(0, 1)).is_empty(), fires, "{tz} {window}");
        }
    }

    #[test]
    fn a_person_walking_across_is_reported_as_crossing_left_to_right() {
        let mut e = engine_for(camera_with("", ""));
        // one person, a 200 px wide box moving 60 px per sampled frame across a 640 px frame
        let frames: Vec<FrameResult> = (0..8u64)
            .map(|i| {
                let x = 60.0 * i as f32;
                FrameResult {
                    seq: i,
                    pts: Duration::from_millis(500 * i),
                    wall: chrono::DateTime::UNIX_EPOCH,
                    width: 640,
                    height: 480,
                    detections: vec![Detection {
                        class_id: 0,
                        label: "person",
                        score: 0.9,
                        bbox: BBox {
                            x1: x,
                            y1: 100.0,
                            x2: x + 200.0,
                            y2: 400.0,
                        },
                    }],
                    encoding: None,
                    postures: Vec::new(),
                    pose_only: Vec::new(),
                    pixels: Default::default(),
                }
            })
            .collect();
        let a = e.handle(&InferOut::Result(Box::new(ClipResult {
            camera: Arc::from("cam"),
            clip_index: 0,
            start: Duration::ZERO,
            end: Duration::from_secs(4),
            frames,
            prompts: None,
            classifiers: Vec::new(),
            timings: ClipTimings::default(),
        })));
        assert_eq!(types(&a), vec![AlertType::New]);
        let end = e.command("cam", &Command::Detect(false));
        assert_eq!(end[0].objects, 1);
        assert_eq!(
            end[0].crossed,
            Some(rules::Crossings {
                left_to_right: 1,
                right_to_left: 0
            })
        );
        assert!(
            end[0]
                .summary
                .contains("1 person crossed from left to right;"),
            "{}",
            end[0].summary
        );
    }

    #[test]
    fn zones_count_only_objects_standing_inside() {
        // the test person's box is x 10..50, y 10..90 in 640x480: ground point (0.047, 0.19)
        let left = "[[zones]]\nname = \"left\"\npoints = [[0.0, 0.0], [0.5, 0.0], [0.5, 0.5], [0.0, 0.5]]\n";
        let right = "[[zones]]\nname = \"right\"\npoints = [[0.5, 0.0], [1.0, 0.0], [1.0, 1.0], [0.5, 1.0]]\n";
        let mut e = engine_for(camera_with("zones = [\"left\"]", left));
        let a = e.handle(&clip(0, 1));
        assert_eq!(types(&a), vec![AlertType::New]);
        assert_eq!(a[0].zones, vec!["left".to_string()]);
        assert!(
            a[0].summary.contains("in the Left zone"),
            "{}",
            a[0].summary
        );
        let mut e = engine_for(camera_with("zones = [\"right\"]", right));
        assert!(
            e.handle(&clip(0, 3)).is_empty(),
            "nobody stands in the right half"
        );
    }

    #[test]
    fn dwell_counts_an_object_only_after_it_stayed_and_tracking_counts_it_once() {
        // the same person stands still: frames at 0, 2 s (clip 0), 4, 6 s (clip 1), …
        let mut e = engine_for(camera_with("dwell_seconds = 5.0", ""));
        assert!(e.handle(&clip(0, 1)).is_empty(), "tracked for 2 s only");
        let a = e.handle(&clip(1, 1));
        assert_eq!(types(&a), vec![AlertType::New]);
        assert_eq!(a[0].objects, 1);
        assert!(
            (a[0].max_dwell_seconds - 6.0).abs() < 1e-9,
            "{}",
            a[0].max_dwell_seconds
        );
        e.handle(&clip(2, 1));
        let end = e.command("cam", &Command::Detect(false));
        assert_eq!(end[0].objects, 1, "one person over 3 clips is one object");
        assert!(
            end[0]
                .summary
                .contains("1 distinct person tracked, the longest for 10 s"),
            "{}",
            end[0].summary
        );
    }

    #[test]
    fn min_count_and_severity() {
        let mut e = engine_for(camera_with("min_count = 3\nseverity = \"detection\"", ""));
        assert!(
            e.handle(&clip(0, 2)).is_empty(),
            "two are not a group of three"
        );
        let a = e.handle(&clip(1, 3));
        assert_eq!(types(&a), vec![AlertType::New]);
        assert_eq!(a[0].severity, crate::config::Severity::Detection);
        assert_eq!(a[0].count, 3);
    }

    #[test]
    fn detect_off_ends_the_alert_and_ignores_later_clips() {
        let mut e = engine();
        assert_eq!(types(&e.handle(&clip(0, 1))), vec![AlertType::New]);
        assert_eq!(
            types(&e.command("cam", &Command::Detect(false))),
            vec![AlertType::End]
        );
        assert!(e.handle(&clip(1, 2)).is_empty(), "in-flight clip ignored");
        e.command("cam", &Command::Detect(true));
        assert_eq!(types(&e.handle(&clip(2, 1))), vec![AlertType::New]);
    }

    #[test]
    fn disarming_a_rule_ends_only_that_rule() {
        let mut e = engine();
        e.handle(&clip(0, 1));
        let disarm = Command::Arm {
            rule: "person".into(),
            armed: false,
        };
        assert_eq!(types(&e.command("cam", &disarm)), vec![AlertType::End]);
        assert!(e.handle(&clip(1, 1)).is_empty());
        let arm = Command::Arm {
            rule: "person".into(),
            armed: true,
        };
        assert!(e.command("cam", &arm).is_empty());
        assert_eq!(types(&e.handle(&clip(2, 1))), vec![AlertType::New]);
    }

    #[test]
    fn a_prompt_alert_needs_every_understood_part_and_reports_them() {
        // "two people" is scored from the detections (the head's free text has nothing left to score); "a person
        // with a dog" (object nouns only) keeps the head's score, times the presence of the person
        let cam: CameraConfig = toml::from_str(
            "name = \"cam\"\nurl = \"test://\"\nrules = [{ label = \"dog\" }]\n\
             prompts = [{ text = \"two people\", threshold = 0.7 }, { text = \"a person with a dog\", threshold = 0.7 }]\n",
        )
        .expect("camera config");
        let mut levels = crate::labels::Thresholds::default();
        levels.per_label.insert(
            "person".into(),
            crate::labels::LabelThresholds {
                alert: 0.55,
                track: 0.35,
            },
        );
        let mut e = Engine::new(&[cam], levels, Box::new(|| "p".to_string()));
        let with_head = |index: u64, people: usize| {
            let InferOut::Result(mut r) = clip(index, people) else {
                unreachable!("clip() makes results")
            };
            for (i, f) in r.frames.iter_mut().enumerate() {
                for (k, d) in f.detections.iter_mut().enumerate() {
                    d.bbox.x1 += 100.0 * k as f32 + i as f32;
                    d.bbox.x2 += 100.0 * k as f32 + i as f32;
                }
            }
            r.prompts = Some(crate::infer::PromptScores {
                texts: Arc::new(vec!["two people".into(), "a person with a dog".into()]),
                clip: vec![0.9, 0.8],
                raw: vec![0.5, 0.4],
                frames: vec![0.9, 0.8, 0.9, 0.8],
            });
            InferOut::Result(r)
        };
        // one person: "two people" stays closed although the head alone would have said 0.9
        let a: Vec<Alert> = e
            .handle(&with_head(0, 1))
            .into_iter()
            .filter(|a| a.kind == "prompt")
            .collect();
        assert_eq!(a.len(), 1, "{a:?}");
        assert_eq!(a[0].prompt.as_deref(), Some("a person with a dog"));
        let parts = a[0].parts.as_ref().expect("parts");
        assert!(
            parts.iter().any(|p| p.part == "at least 1 person"),
            "{parts:?}"
        );
        // two people: it opens, and says why
        let a: Vec<Alert> = e
            .handle(&with_head(1, 2))
            .into_iter()
            .filter(|a| a.prompt.as_deref() == Some("two people"))
            .collect();
        assert_eq!(types(&a), vec![AlertType::New]);
        let parts = a[0].parts.as_ref().expect("parts");
        assert_eq!(parts.len(), 1, "{parts:?}");
        assert_eq!(parts[0].part, "exactly 2 person");
        assert!(parts[0].score.unwrap_or(0.0) > 0.9, "{parts:?}");
        let json = serde_json::to_value(&a[0]).expect("json");
        assert_eq!(json["parts"][0]["part"], "exactly 2 person");
    }

    #[test]
    fn reconfigure_ends_open_alerts_and_removal_forgets_the_camera() {
        let mut e = engine();
        e.handle(&clip(0, 1));
        let ended = e.configure("cam", Some(&camera()));
        assert_eq!(types(&ended), vec![AlertType::End]);
        assert_eq!(types(&e.handle(&clip(1, 1))), vec![AlertType::New]);
        assert_eq!(types(&e.configure("cam", None)), vec![AlertType::End]);
        assert!(e.handle(&clip(2, 1)).is_empty());
    }

    #[test]
    fn texts_follow_the_camera_source_kind_and_time_zone() {
        // clips are stamped at the Unix epoch: 00:00 UTC, 09:00 in Tokyo
        let mut live = camera_with("", "");
        live.timezone = "Asia/Tokyo".into();
        let mut e = engine_for(live);
        let a = e.handle(&clip(0, 1));
        assert!(a[0].summary.contains("at 09:00,"), "{}", a[0].summary);
        let mut file = camera_with("", "");
        file.url = "file:///clip.mp4".into();
        file.timezone = "Asia/Tokyo".into();
        let mut e = engine_for(file);
        let a = e.handle(&clip(0, 1));
        assert!(
            a[0].summary.contains("at 00:00 (stream time)"),
            "{}",
            a[0].summary
        );
    }

    /// A clip showing the scene `emb` (an image embedding on every frame), stamped 12:00 UTC + its stream time.
    fn clip_showing(index: u64, emb: &[f32]) -> InferOut {
        let InferOut::Result(mut r) = clip(index, 0) else {
            unreachable!("clip() makes results")
        };
        let noon = chrono::DateTime::UNIX_EPOCH + chrono::Duration::hours(12);
        for f in r.frames.iter_mut() {
            f.encoding = Some(crate::infer::FrameEncoding::ImageText(Arc::from(emb)));
            f.wall = noon + chrono::Duration::milliseconds(f.pts.as_millis() as i64);
        }
        InferOut::Result(r)
    }

    /// A camera learning an unusual-scene baseline: 5 clips of warm-up, alerting on one clip above 0.9.
    fn unusual_camera(url: &str) -> CameraConfig {
        toml::from_str(&format!(
            "name = \"cam\"\nurl = \"{url}\"\ntimezone = \"Asia/Tokyo\"\nclip_seconds = 4.0\n\
             [[rules]]\nlabel = \"person\"\n\
             [unusual]\nenabled = true\nwarmup_seconds = 20.0\nthreshold_quantile = 0.9\nexit_quantile = 0.5\n\
             enter_clips = 1\nexit_clips = 1\nhours_per_bucket = 24\n"
        ))
        .expect("camera config")
    }

    const STREET: [f32; 4] = [1.0, 0.0, 0.0, 0.0];
    const ODD: [f32; 4] = [0.0, 0.0, 1.0, 0.0];

    fn unusual_of(a: &[Alert]) -> Vec<&Alert> {
        a.iter().filter(|a| a.kind == "unusual").collect()
    }

    #[test]
    fn unusual_texts_say_local_time_for_live_cameras_and_stream_time_for_files() {
        for (url, new_at, end_span) in [
            // clip 6 starts at 24 s of stream time, 12:00:24 UTC, 21:00 in Tokyo
            ("test://", "at 21:00: ", "from 21:00 to 21:00."),
            (
                "file:///street.mp4",
                "at 00:24 (stream time): ",
                "from 00:24 to 00:26 (stream time).",
            ),
        ] {
            let mut e = engine_for(unusual_camera(url));
            for i in 0..6 {
                assert!(unusual_of(&e.handle(&clip_showing(i, &STREET))).is_empty());
            }
            let new = e.handle(&clip_showing(6, &ODD));
            let new = unusual_of(&new);
            assert_eq!(new.len(), 1, "{url}");
            assert!(new[0].summary.contains(new_at), "{url}: {}", new[0].summary);
            assert_eq!(
                new[0].started_at, "1970-01-01T12:00:24.000Z",
                "machine fields stay UTC"
            );
            let end = e.handle(&InferOut::CameraEnded {
                camera: Arc::from("cam"),
            });
            let end = unusual_of(&end);
            assert_eq!(end.len(), 1, "{url}");
            assert_eq!(end[0].kind_of_message, AlertType::End);
            assert!(
                end[0].summary.ends_with(end_span),
                "{url}: {}",
                end[0].summary
            );
        }
    }

    #[test]
    fn an_unusual_reset_ends_the_open_alert_and_starts_a_new_warm_up() {
        let mut e = engine_for(unusual_camera("test://"));
        for i in 0..6 {
            e.handle(&clip_showing(i, &STREET));
        }
        assert_eq!(e.unusual_score("cam"), Some(0.0), "warm after 5 clips");
        let new = e.handle(&clip_showing(6, &ODD));
        assert_eq!(types(&new), vec![AlertType::New]);
        assert_eq!(e.unusual_to_save().len(), 1, "a baseline to save");

        let reset = e.command("cam", &Command::UnusualReset);
        assert_eq!(types(&reset), vec![AlertType::End], "the open alert ends");
        assert_eq!(reset[0].id, new[0].id);
        assert_eq!(reset[0].kind, "unusual");
        assert_eq!(e.unusual_score("cam"), None);
        assert!(e.unusual_to_save().is_empty(), "nothing learnt to save");
        // the new warm-up: 5 clips, whatever they show, score nothing and raise nothing
        for i in 7..12 {
            let scene = if i % 2 == 0 { &STREET } else { &ODD };
            assert!(e.handle(&clip_showing(i, scene)).is_empty(), "clip {i}");
            assert_eq!(e.unusual_score("cam"), None, "clip {i} is in the warm-up");
        }
        e.handle(&clip_showing(12, &STREET));
        assert!(e.unusual_score("cam").is_some(), "warm again");
        // a camera without a baseline: nothing to reset, nothing ends
        let mut plain = engine();
        plain.handle(&clip(0, 1));
        assert!(plain.command("cam", &Command::UnusualReset).is_empty());
    }

    #[test]
    fn switches_outlive_a_reconfigure_but_not_a_removal() {
        let mut e = engine();
        e.command("cam", &Command::Detect(false));
        e.configure("cam", Some(&camera()));
        assert!(e.handle(&clip(0, 1)).is_empty(), "still off after a reload");
        e.command("cam", &Command::Detect(true));
        e.command(
            "cam",
            &Command::Arm {
                rule: "person".into(),
                armed: false,
            },
        );
        e.configure("cam", Some(&camera()));
        assert!(e.handle(&clip(1, 1)).is_empty(), "still disarmed");
        e.configure("cam", None);
        e.configure("cam", Some(&camera()));
        assert_eq!(types(&e.handle(&clip(2, 1))), vec![AlertType::New]);
    }
}
