//! Task-head alerts (`[[cameras.classifiers]]`): a head's class probabilities per clip become the camera's current
//! class (published retained when it changes) and, for the classes in `alert_on`, `kind = "classifier"` alerts
//! through the prompt lifecycle (hysteresis over clips, new/update/end). Pure: clip results in, messages out.

use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use super::prompts::{PromptObs, PromptState};
use super::rules::{display_name, Alert, AlertType, TextClock};
use crate::config::ClassifierConfig;
use crate::infer::ClipResult;

/// A head's current class, as published on `<prefix>/<camera>/classifier/<name>`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reading {
    #[serde(skip)]
    pub camera: String,
    pub classifier: String,
    pub class: String,
    pub score: f32,
    /// Every class's probability, most probable first.
    pub scores: Vec<ClassScore>,
    pub stream_time: f64,
    pub at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassScore {
    pub class: String,
    pub score: f32,
}

/// One head on one camera: its alert lifecycle and the class last published.
pub struct ClassifierState {
    pub cfg: ClassifierConfig,
    name: String,
    camera: Arc<str>,
    clock: TextClock,
    lifecycle: PromptState,
    /// The class of the latest alerting clip (the alert's label).
    alert_class: String,
    published: Option<String>,
}

fn round3(x: f32) -> f32 {
    (x * 1000.0).round() / 1000.0
}

impl ClassifierState {
    pub fn new(camera: Arc<str>, cfg: ClassifierConfig, clock: TextClock) -> Self {
        let lifecycle = PromptState::new(camera.clone(), cfg.lifecycle());
        Self {
            name: cfg.rule_name(),
            cfg,
            camera,
            clock,
            lifecycle,
            alert_class: String::new(),
            published: None,
        }
    }

    /// The rule name (arm switches, topics).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The head's verdict on one clip: its alert messages (when `armed`), and its reading when the top class
    /// changed since the last one published (the first clip's always).
    pub fn on_clip(
        &mut self,
        r: &ClipResult,
        armed: bool,
        new_id: &mut dyn FnMut() -> String,
    ) -> (Vec<Alert>, Option<Reading>) {
        let Some(out) = r.classifiers.iter().find(|o| o.name == self.name) else {
            return (Vec::new(), None);
        };
        let Some((top, top_p)) = out.top() else {
            return (Vec::new(), None);
        };
        let reading = (self.published.as_deref() != Some(top)).then(|| {
            self.published = Some(top.to_string());
            let mut scores: Vec<ClassScore> = out
                .classes
                .iter()
                .zip(&out.probs)
                .map(|(c, p)| ClassScore {
                    class: c.clone(),
                    score: round3(*p),
                })
                .collect();
            scores.sort_by(|a, b| b.score.total_cmp(&a.score));
            let wall = r.frames.last().map(|f| f.wall).unwrap_or_else(Utc::now);
            Reading {
                camera: r.camera.to_string(),
                classifier: self.name.clone(),
                class: top.to_string(),
                score: round3(top_p),
                scores,
                stream_time: (r.end.as_secs_f64() * 10.0).round() / 10.0,
                at: wall.to_rfc3339_opts(SecondsFormat::Millis, true),
            }
        });
        if !armed || self.cfg.alert_on.is_empty() {
            return (Vec::new(), reading);
        }
        // the alert's score: the most probable of the classes it alerts on
        let (class, score) = out
            .classes
            .iter()
            .zip(&out.probs)
            .filter(|(c, _)| self.cfg.alert_on.contains(c))
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(c, p)| (c.clone(), *p))
            .unwrap_or_default();
        let obs = PromptObs::constant(r, score);
        let alerts: Vec<Alert> = self.lifecycle.on_clip(&obs, new_id);
        if alerts.iter().any(|a| a.kind_of_message == AlertType::New) || self.alert_class.is_empty()
        {
            self.alert_class = class;
        }
        let alerts = alerts.into_iter().map(|a| self.retag(a)).collect();
        (alerts, reading)
    }

    /// Ends an open alert (the stream ended, the rule was disarmed or the camera reconfigured).
    pub fn finish(&mut self) -> Option<Alert> {
        let a = self.lifecycle.finish()?;
        Some(self.retag(a))
    }

    /// A prompt-lifecycle message as a classifier one: its kind, rule, label and text.
    fn retag(&self, mut a: Alert) -> Alert {
        a.kind = "classifier";
        a.rule = self.name.clone();
        a.label = self.alert_class.clone();
        a.prompt = None;
        a.parts = None;
        let cam = display_name(&self.camera);
        let parse = |s: &str| {
            DateTime::parse_from_rfc3339(s)
                .map(|d| d.with_timezone(&Utc))
                .unwrap_or_default()
        };
        let note = self.clock.note();
        a.summary = match a.kind_of_message {
            AlertType::New | AlertType::Update => format!(
                "{cam}: {} says '{}' (probability {:.2}) at {}{note}.",
                self.name,
                self.alert_class,
                a.score,
                self.clock.at(a.clip.stream_start, parse(&a.started_at))
            ),
            AlertType::End => format!(
                "{cam}: {} said '{}' from {} to {}{note}; highest probability {:.2}.",
                self.name,
                self.alert_class,
                self.clock.at(a.stream_start, parse(&a.started_at)),
                self.clock.at(
                    a.stream_end.unwrap_or(a.stream_start),
                    a.ended_at.as_deref().map(parse).unwrap_or_default()
                ),
                a.score
            ),
        };
        a
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::infer::classify::ClassifierOut;
    use crate::infer::{ClipTimings, FrameResult, Pixels};

    fn clip(i: u64, p_open: f32) -> ClipResult {
        let t0 = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap_or_default();
        ClipResult {
            camera: Arc::from("gate_cam"),
            clip_index: i,
            start: Duration::from_secs(4 * i),
            end: Duration::from_secs(4 * i + 4),
            frames: (0..2)
                .map(|k| FrameResult {
                    seq: 2 * i + k,
                    pts: Duration::from_secs(4 * i + 2 * k),
                    wall: t0 + chrono::Duration::seconds((4 * i + 2 * k) as i64),
                    width: 4,
                    height: 4,
                    detections: Vec::new(),
                    encoding: None,
                    postures: Vec::new(),
                    pose_only: Vec::new(),
                    pixels: Pixels::default(),
                })
                .collect(),
            prompts: None,
            classifiers: vec![ClassifierOut {
                name: "gate".into(),
                classes: Arc::new(vec!["closed".into(), "open".into()]),
                probs: vec![1.0 - p_open, p_open],
                feature: Vec::new(),
            }],
            timings: ClipTimings::default(),
        }
    }

    fn state(clock: TextClock) -> ClassifierState {
        let cfg: ClassifierConfig =
            toml::from_str("file = \"gate.json\"\nalert_on = [\"open\"]\nthreshold = 0.8\n")
                .expect("config");
        ClassifierState::new(Arc::from("gate_cam"), cfg, clock)
    }

    #[test]
    fn opens_after_enter_clips_ends_after_exit_clips_and_publishes_class_changes() {
        let mut s = state(TextClock::Stream);
        let mut n = 0;
        let mut id = || {
            n += 1;
            format!("c{n}")
        };
        let probs = [0.1, 0.9, 0.95, 0.92, 0.5, 0.3, 0.2];
        let mut alerts = Vec::new();
        let mut readings = Vec::new();
        for (i, p) in probs.iter().enumerate() {
            let (a, r) = s.on_clip(&clip(i as u64, *p), true, &mut id);
            alerts.extend(a);
            readings.extend(r);
        }
        // default enter_clips 2 → opens at clip 2; exit 0.7 for 2 clips → ends at clip 5
        let types: Vec<_> = alerts
            .iter()
            .map(|a| (a.kind_of_message, a.clip.index))
            .collect();
        assert_eq!(types.first(), Some(&(AlertType::New, 2)), "{types:?}");
        assert_eq!(types.last(), Some(&(AlertType::End, 5)), "{types:?}");
        assert!(alerts
            .iter()
            .all(|a| a.kind == "classifier" && a.rule == "gate" && a.label == "open"));
        assert!(
            alerts[0].summary.contains("gate says 'open'"),
            "{}",
            alerts[0].summary
        );
        assert!(
            alerts[0].summary.contains("(stream time)"),
            "{}",
            alerts[0].summary
        );
        // readings: closed (clip 0), open (clip 1; the 0.5 tie of clip 4 stays open), closed (clip 5)
        let classes: Vec<&str> = readings.iter().map(|r| r.class.as_str()).collect();
        assert_eq!(classes.first(), Some(&"closed"));
        assert_eq!(classes.get(1), Some(&"open"));
        assert_eq!(classes.last(), Some(&"closed"));
        assert!(
            readings.windows(2).all(|w| w[0].class != w[1].class),
            "only changes are published"
        );
        assert_eq!(readings[1].scores[0].class, "open");
    }

    #[test]
    fn disarmed_publishes_the_class_but_raises_nothing_and_live_cameras_say_local_time() {
        let mut s = state(TextClock::Stream);
        let mut id = || "x".to_string();
        for i in 0..4 {
            let (a, _) = s.on_clip(&clip(i, 0.99), false, &mut id);
            assert!(a.is_empty());
        }
        let mut live = state(TextClock::Local(chrono_tz::Europe::Brussels));
        let mut all = Vec::new();
        for i in 0..3 {
            all.extend(live.on_clip(&clip(i, 0.99), true, &mut id).0);
        }
        let first = all.first().expect("an alert");
        // 1_800_000_000 s = 2027-01-15 08:00:00 UTC → 09:00 in Brussels; clip 0 starts the alert's first sighting
        assert!(first.summary.contains("at 09:00"), "{}", first.summary);
        assert!(!first.summary.contains("stream time"), "{}", first.summary);
        let end = live.finish().expect("end");
        assert_eq!(end.kind_of_message, AlertType::End);
        assert!(
            end.summary.contains("said 'open' from 09:00"),
            "{}",
            end.summary
        );
    }
}
