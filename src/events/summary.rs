//! Period summaries: one plain-English message per camera per period (`[summaries] period_minutes`), built only
//! from what the clips of that period contained — never an object or action they did not. Skipped when nothing
//! happened (no watched label seen and no alert). Periods are cut by stream time, which for a live camera advances
//! with the wall clock and for a file is where to look in the video.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use super::rules::{display_name, stream_clock, Alert, AlertType, TextClock};
use crate::infer::labels::plural;

/// What one clip contributes: the most objects of each watched label in one frame, and prompt clip scores.
#[derive(Debug, Clone)]
pub struct ClipFacts {
    pub start: f64,
    pub end: f64,
    pub wall_start: DateTime<Utc>,
    pub wall_end: DateTime<Utc>,
    /// label → most objects of it in one frame of the clip (0 = not seen).
    pub counts: Vec<(String, usize)>,
    /// prompt text → calibrated clip score.
    pub prompts: Vec<(String, f32)>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LabelFacts {
    /// Most objects in view at once during the period.
    pub max_count: usize,
    /// Clips in which the label was seen.
    pub clips_seen: usize,
    /// Alerts opened in the period.
    pub alerts: usize,
    /// Tracked objects of alerts that ended in the period that crossed the view, by direction.
    pub crossed: super::rules::Crossings,
    /// Longest time one object of those alerts was tracked, seconds.
    pub max_dwell_seconds: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PromptFacts {
    pub text: String,
    pub best_score: f32,
    pub alerts: usize,
}

/// The `<prefix>/<camera>/summary` payload: the text and the facts it was built from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub schema: u32,
    pub camera: String,
    pub period_start: String,
    pub period_end: String,
    pub stream_start: f64,
    pub stream_end: f64,
    pub clips: usize,
    pub labels: BTreeMap<String, LabelFacts>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub prompts: Vec<PromptFacts>,
    pub text: String,
}

#[derive(Debug)]
struct Acc {
    period: u64,
    start: f64,
    end: f64,
    wall_start: DateTime<Utc>,
    wall_end: DateTime<Utc>,
    clips: usize,
    labels: BTreeMap<String, LabelFacts>,
    prompts: BTreeMap<String, PromptFacts>,
}

/// One camera's summary state.
#[derive(Debug)]
pub struct SummaryState {
    camera: String,
    period_secs: f64,
    acc: Option<Acc>,
    clock: TextClock,
}

impl SummaryState {
    pub fn new(camera: &str, period_secs: f64) -> Self {
        Self {
            camera: camera.to_string(),
            period_secs: period_secs.max(1.0),
            acc: None,
            clock: TextClock::Stream,
        }
    }

    /// How the text says the period: local wall-clock time for a live camera, stream time for a file.
    pub fn with_clock(mut self, clock: TextClock) -> Self {
        self.clock = clock;
        self
    }

    /// Adds a clip and the alerts it caused; returns the previous period's summary when this clip starts a new one.
    pub fn on_clip(&mut self, c: &ClipFacts, alerts: &[Alert]) -> Option<Summary> {
        let period = (c.start / self.period_secs).floor().max(0.0) as u64;
        let done = match &self.acc {
            Some(a) if a.period != period => self.finish(),
            _ => None,
        };
        let acc = self.acc.get_or_insert_with(|| Acc {
            period,
            start: c.start,
            end: c.end,
            wall_start: c.wall_start,
            wall_end: c.wall_end,
            clips: 0,
            labels: BTreeMap::new(),
            prompts: BTreeMap::new(),
        });
        acc.clips += 1;
        acc.end = acc.end.max(c.end);
        acc.wall_end = acc.wall_end.max(c.wall_end);
        for (label, n) in &c.counts {
            let f = acc.labels.entry(label.clone()).or_default();
            f.max_count = f.max_count.max(*n);
            f.clips_seen += (*n > 0) as usize;
        }
        for (text, score) in &c.prompts {
            let p = acc.prompts.entry(text.clone()).or_insert(PromptFacts {
                text: text.clone(),
                best_score: 0.0,
                alerts: 0,
            });
            p.best_score = p.best_score.max(*score);
        }
        Self::absorb_ends(acc, alerts);
        for a in alerts
            .iter()
            .filter(|a| a.kind_of_message == AlertType::New)
        {
            if a.kind == "prompt" {
                if let Some(p) = a.prompt.as_ref().and_then(|t| acc.prompts.get_mut(t)) {
                    p.alerts += 1;
                }
            } else {
                acc.labels.entry(a.rule.clone()).or_default().alerts += 1;
            }
        }
        done
    }

    /// What ended alerts add to the period: crossings and the longest dwell of their objects.
    fn absorb_ends(acc: &mut Acc, alerts: &[Alert]) {
        for a in alerts
            .iter()
            .filter(|a| a.kind_of_message == AlertType::End && a.kind == "label")
        {
            let f = acc.labels.entry(a.rule.clone()).or_default();
            if let Some(c) = a.crossed {
                f.crossed.left_to_right += c.left_to_right;
                f.crossed.right_to_left += c.right_to_left;
            }
            f.max_dwell_seconds = f.max_dwell_seconds.max(a.max_dwell_seconds);
        }
    }

    /// Alerts that ended without a clip (the stream ended, a reload): their crossings and dwell belong to the
    /// period still open, which would otherwise report none.
    pub fn on_alerts(&mut self, alerts: &[Alert]) {
        if let Some(acc) = self.acc.as_mut() {
            Self::absorb_ends(acc, alerts);
        }
    }

    /// Ends the current period (stream end or period change); None when nothing happened in it.
    pub fn finish(&mut self) -> Option<Summary> {
        let a = self.acc.take()?;
        let happened = a.labels.values().any(|l| l.clips_seen > 0 || l.alerts > 0)
            || a.prompts.values().any(|p| p.alerts > 0);
        if !happened {
            return None;
        }
        let mut prompts: Vec<PromptFacts> = a.prompts.into_values().collect();
        prompts.sort_by(|x, y| y.best_score.total_cmp(&x.best_score));
        let text = describe(
            self.clock,
            &self.camera,
            &a.labels,
            &prompts,
            a.start,
            a.end,
            a.clips,
            a.wall_start,
            a.wall_end,
        );
        let round = |x: f64| (x * 10.0).round() / 10.0;
        Some(Summary {
            schema: 1,
            camera: self.camera.clone(),
            period_start: a.wall_start.to_rfc3339_opts(SecondsFormat::Secs, true),
            period_end: a.wall_end.to_rfc3339_opts(SecondsFormat::Secs, true),
            stream_start: round(a.start),
            stream_end: round(a.end),
            clips: a.clips,
            labels: a.labels,
            prompts: prompts
                .into_iter()
                .map(|p| PromptFacts {
                    best_score: (p.best_score * 100.0).round() / 100.0,
                    ..p
                })
                .collect(),
            text,
        })
    }
}

#[allow(clippy::too_many_arguments)]
fn describe(
    clock: TextClock,
    camera: &str,
    labels: &BTreeMap<String, LabelFacts>,
    prompts: &[PromptFacts],
    start: f64,
    end: f64,
    clips: usize,
    wall_start: DateTime<Utc>,
    wall_end: DateTime<Utc>,
) -> String {
    let mut parts = Vec::new();
    for (label, f) in labels.iter().filter(|(_, f)| f.clips_seen > 0) {
        let mut s = format!(
            "up to {} {} at once, seen in {} of {clips} clips",
            f.max_count,
            rule_words(label, f.max_count),
            f.clips_seen
        );
        if f.alerts > 0 {
            s += &format!(
                " ({} alert{})",
                f.alerts,
                if f.alerts == 1 { "" } else { "s" }
            );
        }
        // "; 3 people crossed from left to right; one stayed 85 s" — only from tracked, ended alerts
        let crossed = super::rules::crossing_text(split_rule_name(label).0, f.crossed);
        if !crossed.is_empty() {
            s += &format!(";{}", crossed.trim_end_matches(';'));
        }
        if f.max_dwell_seconds >= 30.0 {
            s += &format!("; one stayed {:.0} s", f.max_dwell_seconds);
        }
        parts.push(s);
    }
    // a file: where to look in the video; a live camera: the local time of its site
    let mut text = match clock {
        TextClock::Stream => format!(
            "{}, stream {}–{}: ",
            display_name(camera),
            stream_clock(start),
            stream_clock(end)
        ),
        TextClock::Local(_) => format!(
            "{}, {}–{}{}: ",
            display_name(camera),
            clock.at(start, wall_start),
            clock.at(end, wall_end),
            clock.note()
        ),
    };
    text += &if parts.is_empty() {
        "no watched object seen".to_string()
    } else {
        parts.join("; ")
    };
    text.push('.');
    if let Some(p) = prompts.first().filter(|p| p.best_score > 0.0) {
        text += &format!(" Best matching prompt: '{}' ({:.2}).", p.text, p.best_score);
    }
    text
}

/// A rule name's label and posture: `person_lying` → (`person`, Some(`lying`)), `car` → (`car`, None).
fn split_rule_name(name: &str) -> (&str, Option<&'static str>) {
    ["standing", "sitting", "lying"]
        .into_iter()
        .find_map(|p| {
            name.strip_suffix(p)?
                .strip_suffix('_')
                .map(|b| (b, Some(p)))
        })
        .unwrap_or((name, None))
}

/// "people" for `person`, "people lying" for a posture rule's name `person_lying`.
fn rule_words(name: &str, n: usize) -> String {
    match split_rule_name(name) {
        (base, Some(posture)) => format!("{} {posture}", plural(base, n)),
        (base, None) => plural(base, n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(start: f64, people: usize, cars: usize) -> ClipFacts {
        let t = |s: f64| DateTime::from_timestamp(1_700_000_000 + s as i64, 0).unwrap_or_default();
        ClipFacts {
            start,
            end: start + 4.0,
            wall_start: t(start),
            wall_end: t(start + 4.0),
            counts: vec![("person".into(), people), ("vehicle".into(), cars)],
            prompts: vec![(
                "people walking on a path".into(),
                0.5 + people as f32 / 10.0,
            )],
        }
    }

    #[test]
    fn a_period_with_people_says_people_and_nothing_else() {
        let mut s = SummaryState::new("walkway", 60.0);
        for (i, n) in [0, 2, 3, 1].iter().enumerate() {
            assert!(s.on_clip(&facts(i as f64 * 4.0, *n, 0), &[]).is_none());
        }
        // the next period starts: the first is summarised
        let sum = s.on_clip(&facts(60.0, 0, 0), &[]).expect("summary");
        assert_eq!(sum.clips, 4);
        assert_eq!(sum.labels["person"].max_count, 3);
        assert_eq!(sum.labels["person"].clips_seen, 3);
        assert!(
            sum.text.starts_with(
                "Walkway, stream 00:00–00:16: up to 3 people at once, seen in 3 of 4 clips."
            ),
            "{}",
            sum.text
        );
        assert!(!sum.text.contains("vehicle"), "{}", sum.text);
        assert!(sum
            .text
            .contains("Best matching prompt: 'people walking on a path' (0.80)"));
        // the quiet second period is skipped
        assert!(s.finish().is_none());
    }

    #[test]
    fn a_live_camera_says_the_period_in_its_local_time() {
        let tz: chrono_tz::Tz = "Europe/Brussels".parse().expect("tz");
        let mut s = SummaryState::new("walkway", 60.0).with_clock(TextClock::Local(tz));
        s.on_clip(&facts(0.0, 2, 0), &[]);
        let sum = s.finish().expect("summary");
        // 1_700_000_000 is 22:13:20 UTC, 23:13 in Brussels (CET) on 2023-11-14
        assert!(
            sum.text.starts_with("Walkway, 23:13–23:13: up to 2 people"),
            "{}",
            sum.text
        );
        assert_eq!(
            sum.period_start, "2023-11-14T22:13:20Z",
            "machine fields stay UTC"
        );
        let mut s =
            SummaryState::new("walkway", 60.0).with_clock(TextClock::Local(chrono_tz::Tz::UTC));
        s.on_clip(&facts(0.0, 2, 0), &[]);
        assert!(s
            .finish()
            .expect("summary")
            .text
            .starts_with("Walkway, 22:13–22:13 UTC: "));
    }
}
