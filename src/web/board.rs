//! What the web page shows that no other part keeps: the recent alerts (one row per alert id, its latest message),
//! each prompt's clip scores over the last hour, and each camera's latest inferred frame. The events task writes
//! it ([`Board::on_alert`], [`Board::on_clip`]); the HTTP handlers read copies ([`Board::view`]). Everything is
//! bounded and in memory: a restart starts an empty board (the alerts stay on MQTT and their files in the media
//! directory).
//!
//! Sizes: [`RECENT_ALERTS`] alert rows; per camera and prompt at most [`SCORE_POINTS`] scores (one per clip), and
//! none older than [`SCORE_WINDOW`] before the newest — 1024 × 16 bytes ≈ 16 KiB per prompt; one frame per camera
//! (shared with the clip that carried it, not copied).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;

use chrono::{DateTime, Utc};

use crate::events::rules::{Alert, AlertType};
use crate::infer::FrameResult;

/// Alert rows kept, newest first.
pub const RECENT_ALERTS: usize = 50;
/// Scores kept per camera and prompt: one per clip, so 1024 covers an hour at a clip every 3.5 s or slower.
pub const SCORE_POINTS: usize = 1024;
/// How far back the score history reaches from its newest score.
pub const SCORE_WINDOW: chrono::TimeDelta = chrono::TimeDelta::hours(1);

/// One alert as the page lists it: its latest message, with the evidence any of its messages had.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRow {
    pub id: String,
    pub camera: String,
    /// `label`, `prompt` or `unusual`.
    pub kind: &'static str,
    pub rule: String,
    /// The latest message's type: `new`, `update`, `end`.
    pub state: &'static str,
    pub summary: String,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub score: f32,
    /// A snapshot file was written for it (the media API serves `snapshot.jpg`).
    pub snapshot: bool,
    /// Its recording's extension (`mp4`, `mkv`), when it has one.
    pub clip: Option<&'static str>,
}

impl AlertRow {
    fn from_alert(a: &Alert) -> Self {
        Self {
            id: a.id.clone(),
            camera: a.camera.clone(),
            kind: a.kind,
            rule: a.rule.clone(),
            state: state_word(a.kind_of_message),
            summary: a.summary.clone(),
            started_at: a.started_at.clone(),
            ended_at: a.ended_at.clone(),
            score: a.score,
            snapshot: a.snapshot.is_some(),
            clip: a.recording.as_ref().map(|r| {
                if r.path.ends_with(".mkv") {
                    "mkv"
                } else {
                    "mp4"
                }
            }),
        }
    }
}

fn state_word(t: AlertType) -> &'static str {
    match t {
        AlertType::New => "new",
        AlertType::Update => "update",
        AlertType::End => "end",
    }
}

/// One prompt's score history on one camera.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    /// The alert threshold it is compared with.
    pub threshold: f32,
    /// (wall time of the clip's first frame, fused clip score), oldest first.
    pub points: VecDeque<(DateTime<Utc>, f32)>,
}

impl Series {
    /// Adds a score; drops what falls out of the window or over the cap.
    fn push(&mut self, at: DateTime<Utc>, score: f32) {
        // a clock that stepped back starts the history again rather than drawing a line backwards
        if self.points.back().is_some_and(|(t, _)| *t > at) {
            self.points.clear();
        }
        self.points.push_back((at, score));
        while self.points.len() > SCORE_POINTS
            || self
                .points
                .front()
                .is_some_and(|(t, _)| at - *t > SCORE_WINDOW)
        {
            self.points.pop_front();
        }
    }
}

/// A copy of the board for one page.
#[derive(Debug, Clone, Default)]
pub struct BoardView {
    pub alerts: Vec<AlertRow>,
    /// Camera → prompt text → its series.
    pub scores: BTreeMap<String, BTreeMap<String, Series>>,
    /// Cameras that have an inferred frame to show.
    pub frames: Vec<String>,
}

#[derive(Default)]
struct Inner {
    alerts: VecDeque<AlertRow>,
    scores: BTreeMap<String, BTreeMap<String, Series>>,
    frames: HashMap<String, FrameResult>,
}

/// The page's store, shared by the events task (writer) and the HTTP handlers (readers).
#[derive(Default)]
pub struct Board {
    inner: Mutex<Inner>,
}

impl Board {
    /// A poisoned lock only means a writer panicked mid-update; the data is still whole.
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// An alert message as published: a new id goes on top, a known one is updated where it is. Evidence is
    /// sticky: an update without a better snapshot keeps the one written before.
    pub fn on_alert(&self, a: &Alert) {
        self.on_row(AlertRow::from_alert(a));
    }

    fn on_row(&self, row: AlertRow) {
        let mut g = self.lock();
        match g.alerts.iter_mut().find(|r| r.id == row.id) {
            Some(old) => {
                let (snapshot, clip) = (old.snapshot || row.snapshot, old.clip.or(row.clip));
                *old = AlertRow {
                    snapshot,
                    clip,
                    ..row
                };
            }
            None => {
                g.alerts.push_front(row);
                g.alerts.truncate(RECENT_ALERTS);
            }
        }
    }

    /// A clip of `camera` was inferred: each prompt's (text, fused clip score, threshold), and the clip's last frame.
    pub fn on_clip(
        &self,
        camera: &str,
        at: DateTime<Utc>,
        scores: &[(String, f32, f32)],
        last: Option<&FrameResult>,
    ) {
        let mut g = self.lock();
        if !scores.is_empty() {
            let cam = g.scores.entry(camera.to_string()).or_default();
            // prompts a reload removed stop being drawn
            cam.retain(|text, _| scores.iter().any(|(t, _, _)| t == text));
            for (text, score, threshold) in scores {
                let s = cam.entry(text.clone()).or_default();
                s.threshold = *threshold;
                s.push(at, *score);
            }
        }
        if let Some(f) = last {
            g.frames.insert(camera.to_string(), f.clone());
        }
    }

    /// The camera's latest inferred frame (its pixels shared).
    pub fn frame(&self, camera: &str) -> Option<FrameResult> {
        self.lock().frames.get(camera).cloned()
    }

    /// A copy for rendering.
    pub fn view(&self) -> BoardView {
        let g = self.lock();
        let mut frames: Vec<String> = g.frames.keys().cloned().collect();
        frames.sort();
        BoardView {
            alerts: g.alerts.iter().cloned().collect(),
            scores: g.scores.clone(),
            frames,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(id: &str, state: &'static str, snapshot: bool) -> AlertRow {
        AlertRow {
            id: id.into(),
            camera: "gate".into(),
            kind: "label",
            rule: "person".into(),
            state,
            summary: format!("{id} {state}"),
            started_at: String::new(),
            ended_at: None,
            score: 0.9,
            snapshot,
            clip: snapshot.then_some("mp4"),
        }
    }

    #[test]
    fn alerts_are_one_row_per_id_newest_first_capped_and_keep_their_evidence() {
        let b = Board::default();
        b.on_row(alert("a", "new", true));
        b.on_row(alert("b", "new", false));
        b.on_row(alert("a", "update", false));
        let v = b.view();
        assert_eq!(
            v.alerts.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
            ["b", "a"]
        );
        assert_eq!(v.alerts[1].state, "update");
        assert_eq!(v.alerts[1].summary, "a update");
        assert!(
            v.alerts[1].snapshot,
            "the snapshot of its new message stays"
        );
        assert_eq!(v.alerts[1].clip, Some("mp4"), "and its recording");
        for i in 0..RECENT_ALERTS + 5 {
            b.on_row(alert(&format!("x{i}"), "new", false));
        }
        let v = b.view();
        assert_eq!(v.alerts.len(), RECENT_ALERTS);
        assert_eq!(v.alerts[0].id, format!("x{}", RECENT_ALERTS + 4));
    }

    #[test]
    fn score_history_keeps_the_last_hour_within_its_cap() {
        let b = Board::default();
        let t0 = DateTime::<Utc>::UNIX_EPOCH;
        let at = |s: i64| t0 + chrono::TimeDelta::seconds(s);
        // a clip every 2 s for 2 hours: the cap and the window both bound it
        for i in 0..3600 {
            b.on_clip(
                "gate",
                at(2 * i),
                &[("a dog".into(), 0.5, 0.6), ("a cat".into(), 0.1, 0.7)],
                None,
            );
        }
        let v = b.view();
        let dog = &v.scores["gate"]["a dog"];
        assert_eq!(dog.points.len(), SCORE_POINTS);
        assert_eq!(dog.threshold, 0.6);
        assert_eq!(dog.points.back().map(|p| p.0), Some(at(7198)));
        // every 5 s: the hour bounds it (721 points: both ends of the hour)
        let b = Board::default();
        for i in 0..2000 {
            b.on_clip("gate", at(5 * i), &[("a dog".into(), 0.5, 0.6)], None);
        }
        let dog = &b.view().scores["gate"]["a dog"];
        assert_eq!(dog.points.len(), 721);
        // a reload that drops a prompt drops its line; a clock stepping back restarts the line
        b.on_clip("gate", at(10_000), &[("a cat".into(), 0.2, 0.5)], None);
        b.on_clip("gate", at(9_000), &[("a cat".into(), 0.3, 0.5)], None);
        let v = b.view();
        assert_eq!(v.scores["gate"].keys().collect::<Vec<_>>(), ["a cat"]);
        assert_eq!(v.scores["gate"]["a cat"].points.len(), 1);
    }
}
