//! Label rules and the alert lifecycle (new → update → end), as plain functions over plain data.
//!
//! A rule opens an alert (`new`) as soon as one of the objects it tracks is confirmed (seen in `min_frames`
//! frames with a median score at or above its alert level, `track::Confirm`); the alert's `stream_start` is
//! when that object was first seen; `update` is sent when
//! the number of objects in view changes; the alert ends when L has not been seen in any frame for
//! `end_after_seconds` of stream time, or when the stream ends. After an end, `cooldown_seconds` must pass before
//! the rule opens a new alert. Time is stream time (seconds from the start of the stream), which is what a file's
//! alerts must be about and what a live camera's clock advances anyway; wall-clock stamps come from the frames.

use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use super::schedule::Schedule;
use super::track::{Confirm, Tracker};
use crate::config::{RuleConfig, Severity, ZoneConfig};
use crate::infer::labels::{label_matches, plural};
use crate::infer::FrameResult;
use crate::labels::{LabelThresholds, Thresholds};

/// What one frame says about one rule's label.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameObs {
    pub pts: f64,
    pub wall: DateTime<Utc>,
    /// Confirmed objects of the label in this frame (see [`RuleState::observe`]).
    pub count: usize,
    pub best_score: f32,
    /// Tracked objects counted in this frame.
    pub tracks: Vec<TrackObs>,
}

/// One tracked object in one frame: its id, how long it has been tracked, and where its box centre was when first
/// seen and is now (x normalized by frame width, 0 = left edge) — for "crossed from left to right".
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrackObs {
    pub id: u64,
    pub dwell: f64,
    /// Stream time the object was first seen (at the track level).
    pub first_seen: f64,
    pub x_first: f32,
    pub x_now: f32,
}

/// How far (fraction of the frame width) an object's centre must move for it to count as crossing.
pub const CROSSING_MIN: f32 = 0.25;

/// Objects that crossed the view during an alert, by direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Crossings {
    pub left_to_right: usize,
    pub right_to_left: usize,
}

/// Counts objects whose centre moved at least `CROSSING_MIN` of the frame width, by direction.
pub fn crossings<'a>(paths: impl IntoIterator<Item = &'a (f32, f32)>) -> Crossings {
    let mut c = Crossings::default();
    for (first, last) in paths {
        let dx = last - first;
        if dx >= CROSSING_MIN {
            c.left_to_right += 1;
        } else if dx <= -CROSSING_MIN {
            c.right_to_left += 1;
        }
    }
    c
}

/// What one clip says about one rule's label.
#[derive(Debug, Clone)]
pub struct ClipObs {
    pub index: u64,
    pub start: f64,
    pub end: f64,
    pub frames: Vec<FrameObs>,
}

/// Whether point (x, y) lies inside the polygon (even–odd rule; points on an edge may go either way).
pub fn point_in_polygon(x: f32, y: f32, poly: &[[f32; 2]]) -> bool {
    let mut inside = false;
    let n = poly.len();
    for i in 0..n {
        let [xi, yi] = poly[i];
        let [xj, yj] = poly[(i + n - 1) % n];
        if (yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi {
            inside = !inside;
        }
    }
    inside
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertType {
    New,
    Update,
    End,
}

/// The state an `update` changed from (the values of the alert's previous message); the message's own fields are
/// the state after.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Before {
    pub count: usize,
    pub score: f32,
    pub objects: usize,
}

/// Where an alert's recording is written; the file is complete when its message on `topic` arrives.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordingRef {
    pub path: String,
    pub topic: String,
    /// Absolute URL of the file on the media API (`[metrics] media = true`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// The clip an alert message is about.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClipRef {
    pub index: u64,
    pub stream_start: f64,
    pub stream_end: f64,
    pub frames: usize,
    /// Frames of this clip in which the label was seen.
    pub frames_with_label: usize,
}

/// One message of an alert's lifecycle (the JSON on `<prefix>/<camera>/alerts`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    pub schema: u32,
    pub id: String,
    #[serde(rename = "type")]
    pub kind_of_message: AlertType,
    /// What raised it: `label` (a detector rule).
    pub kind: &'static str,
    /// `alert` or `detection` (the rule's severity).
    pub severity: Severity,
    /// Zones the rule requires (the objects counted were inside one of them); omitted when none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub zones: Vec<String>,
    /// Distinct tracked objects counted over the alert so far (label alerts).
    pub objects: usize,
    /// Longest time one of them has been tracked, seconds (label alerts).
    pub max_dwell_seconds: f64,
    /// The posture the rule requires (`person` rules with `posture`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub posture: Option<crate::infer::pose::Posture>,
    /// Tracked objects that moved across the view, by direction (label alerts).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crossed: Option<Crossings>,
    pub camera: String,
    /// The rule's name: its label, `<label>_<posture>` for posture rules, or the prompt text (count topics,
    /// `set` commands and snapshot topics use it).
    pub rule: String,
    pub label: String,
    /// The prompt text (`kind = "prompt"` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// How unusual the clip is against the camera's baseline, 0..1 (`kind = "unusual"` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unusual_score: Option<f32>,
    /// Best detection score seen so far in this alert.
    pub score: f32,
    /// Objects in view in the latest clip (max over its frames); 0 in `end`.
    pub count: usize,
    /// Most objects in view at once over the alert.
    pub max_count: usize,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub stream_start: f64,
    pub stream_end: Option<f64>,
    pub clip: ClipRef,
    /// The frames that drove a prompt alert (best three of the latest clip; `kind = "prompt"` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frames: Option<Vec<super::prompts::FrameScore>>,
    /// Each understood part of a prompt and its score on the latest clip (`kind = "prompt"` only): counts,
    /// posture, zones, motion, light, time, duration, and the head's score of the free text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parts: Option<Vec<crate::language::PartScore>>,
    /// `update` only: the count, score and objects of the previous message of this alert.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<Before>,
    /// The evidence frame (set by the events stage when snapshots are on).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<super::snapshot::SnapshotRef>,
    /// The alert's video recording (set by the events stage when `[media] clips` is on).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recording: Option<RecordingRef>,
    pub summary: String,
}

#[derive(Debug, Clone)]
struct Open {
    id: String,
    started_wall: DateTime<Utc>,
    stream_start: f64,
    last_seen_wall: DateTime<Utc>,
    last_seen_pts: f64,
    count: usize,
    max_count: usize,
    best: f32,
    last_clip: ClipRef,
    /// Tracked object → (first, latest) normalized centre x.
    objects: std::collections::HashMap<u64, (f32, f32)>,
    max_dwell: f64,
    /// What the last message said (the `before` of the next update).
    sent: Option<Before>,
}

/// One rule's state on one camera.
#[derive(Debug)]
pub struct RuleState {
    pub rule: RuleConfig,
    /// The rule's score levels, resolved against the detector's model card.
    pub levels: LabelThresholds,
    /// Stable ids for the objects this rule counts.
    pub tracker: Tracker,
    /// The camera's zones this rule requires (resolved from `rule.zones`).
    pub zones: Vec<ZoneConfig>,
    /// When the rule is active (`rule.schedule` in the camera's time zone).
    pub schedule: Schedule,
    /// How the alert texts say times.
    pub clock: TextClock,
    camera: Arc<str>,
    open: Option<Open>,
    last_end_pts: Option<f64>,
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// How texts people read say when something happened: a live camera (RTSP, V4L2, test patterns) in local wall-clock
/// time of its `timezone` ("at 14:02"), a file in stream time ("at 01:15 (stream time)"), where to look in the
/// video. Machine fields (`started_at`, …) stay RFC 3339 UTC either way.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum TextClock {
    #[default]
    Stream,
    Local(chrono_tz::Tz),
}

impl TextClock {
    /// Local time in the camera's zone for live sources, stream time for files.
    pub fn for_camera(c: &crate::config::CameraConfig) -> Self {
        if c.is_file() {
            Self::Stream
        } else {
            // validated at load; an unknown zone (never reached) reads as UTC
            Self::Local(super::schedule::parse_tz(&c.timezone).unwrap_or(chrono_tz::Tz::UTC))
        }
    }

    /// The moment at stream time `pts`, wall-clock time `wall`: `14:02` or `01:15`.
    pub fn at(&self, pts: f64, wall: DateTime<Utc>) -> String {
        match self {
            Self::Stream => stream_clock(pts),
            Self::Local(tz) => wall.with_timezone(tz).format("%H:%M").to_string(),
        }
    }

    /// What follows a time so nobody mistakes it: ` (stream time)`, ` UTC` for a camera left in UTC, else nothing.
    pub fn note(&self) -> &'static str {
        match self {
            Self::Stream => " (stream time)",
            Self::Local(chrono_tz::Tz::UTC) => " UTC",
            Self::Local(_) => "",
        }
    }
}

/// `mm:ss` (or `h:mm:ss`) of a stream offset.
pub fn stream_clock(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
    } else {
        format!("{:02}:{:02}", s / 60, s % 60)
    }
}

/// "walkway" → "Walkway", "front_door" → "Front door".
pub fn display_name(camera: &str) -> String {
    let words = camera.replace(['_', '-'], " ");
    let mut c = words.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

impl RuleState {
    /// A rule whose unset levels come from `detector` (the detector's model card).
    pub fn new(camera: Arc<str>, rule: RuleConfig, detector: &Thresholds) -> Self {
        Self::with_zones(camera, rule, Vec::new(), detector)
    }

    pub fn with_zones(
        camera: Arc<str>,
        rule: RuleConfig,
        zones: Vec<ZoneConfig>,
        detector: &Thresholds,
    ) -> Self {
        let levels = rule.levels(detector);
        let confirm = Confirm {
            alert: levels.alert,
            min_frames: rule.min_frames.try_into().unwrap_or(u32::MAX),
        };
        Self {
            rule,
            levels,
            tracker: Tracker::new(0.3, 2.5).with_confirmation(confirm),
            zones,
            schedule: Schedule::always(),
            clock: TextClock::Stream,
            camera,
            open: None,
            last_end_pts: None,
        }
    }

    pub fn with_schedule(mut self, schedule: Schedule) -> Self {
        self.schedule = schedule;
        self
    }

    pub fn with_text_clock(mut self, clock: TextClock) -> Self {
        self.clock = clock;
        self
    }

    /// Reduces a clip's detections to what the rule looks at: its label, at or above its track level, standing in
    /// one of its zones (by the bottom centre of its box — where the object touches the ground — normalized by
    /// frame size), in a frame inside the rule's schedule. Those detections feed the rule's tracker; a frame's
    /// count is its confirmed tracks (that have dwelt `dwell_seconds`), and only with at least `min_count`.
    pub fn observe(&mut self, index: u64, start: f64, end: f64, frames: &[FrameResult]) -> ClipObs {
        let rule = &self.rule;
        let track_level = self.levels.track;
        let frames = frames
            .iter()
            .map(|f| {
                let (w, h) = (f.width.max(1) as f32, f.height.max(1) as f32);
                let active = self.schedule.contains(f.wall);
                let in_zones = |b: &crate::infer::detector::BBox| {
                    self.zones.is_empty()
                        || self
                            .zones
                            .iter()
                            .any(|z| point_in_polygon((b.x1 + b.x2) / 2.0 / w, b.y2 / h, &z.points))
                };
                // (box, score) of each object the rule counts in this frame
                let mut hits: Vec<(crate::infer::detector::BBox, f32)> = f
                    .detections
                    .iter()
                    .enumerate()
                    .filter(|(i, d)| {
                        active
                            && d.score >= track_level
                            && label_matches(&rule.label, d.label)
                            && rule.posture.is_none_or(|want| {
                                f.postures.get(*i).copied().flatten() == Some(want)
                            })
                            && in_zones(&d.bbox)
                    })
                    .map(|(_, d)| (d.bbox, d.score))
                    .collect();
                // people the pose model found and the detector did not (it misses most people lying down). MoveNet's
                // scores are on another scale than the detector's, and its own threshold already admitted them:
                // they enter the track at the alert level
                if let Some(want) = rule.posture.filter(|_| active) {
                    hits.extend(
                        f.pose_only
                            .iter()
                            .filter(|p| p.posture == want && in_zones(&p.bbox))
                            .map(|p| (p.bbox, p.score.max(self.levels.alert))),
                    );
                }
                let pts = f.pts.as_secs_f64();
                let tracks = self.tracker.update(pts, &hits).unwrap_or_default();
                // only confirmed objects count, and with a dwell requirement only those tracked long enough
                let keep: Vec<bool> = (0..hits.len())
                    .map(|i| {
                        tracks
                            .get(i)
                            .is_some_and(|t| t.confirmed && t.dwell() >= rule.dwell_seconds)
                    })
                    .collect();
                let (count, best) = hits
                    .iter()
                    .zip(&keep)
                    .filter(|(_, k)| **k)
                    .fold((0, 0.0f32), |(n, b), (h, _)| (n + 1, b.max(h.1)));
                let count = if count >= rule.min_count { count } else { 0 };
                let cx = |b: &crate::infer::detector::BBox| (b.x1 + b.x2) / 2.0 / w;
                FrameObs {
                    pts,
                    wall: f.wall,
                    count,
                    best_score: if count > 0 { best } else { 0.0 },
                    tracks: if count > 0 {
                        tracks
                            .iter()
                            .zip(&keep)
                            .filter(|(_, k)| **k)
                            .map(|(t, _)| TrackObs {
                                id: t.id,
                                dwell: t.dwell(),
                                first_seen: t.first,
                                x_first: cx(&t.first_bbox),
                                x_now: cx(&t.bbox),
                            })
                            .collect()
                    } else {
                        Vec::new()
                    },
                }
            })
            .collect();
        ClipObs {
            index,
            start,
            end,
            frames,
        }
    }

    pub fn is_open(&self) -> bool {
        self.open.is_some()
    }

    /// Feeds one clip; returns the alert messages it causes, in order.
    pub fn on_clip(&mut self, clip: &ClipObs, new_id: &mut dyn FnMut() -> String) -> Vec<Alert> {
        let seen: Vec<&FrameObs> = clip.frames.iter().filter(|f| f.count > 0).collect();
        let clip_ref = ClipRef {
            index: clip.index,
            stream_start: round1(clip.start),
            stream_end: round1(clip.end),
            frames: clip.frames.len(),
            frames_with_label: seen.len(),
        };
        let clip_count = seen.iter().map(|f| f.count).max().unwrap_or(0);
        let clip_best = seen.iter().map(|f| f.best_score).fold(0.0f32, f32::max);
        let clip_tracks: Vec<TrackObs> =
            seen.iter().flat_map(|f| f.tracks.iter().copied()).collect();
        let mut out = Vec::new();
        match self.open.as_mut() {
            Some(open) => {
                if let Some(last) = seen.last() {
                    open.last_seen_pts = last.pts;
                    open.last_seen_wall = last.wall;
                    open.best = open.best.max(clip_best);
                    open.last_clip = clip_ref.clone();
                    for t in &clip_tracks {
                        open.objects.insert(t.id, (t.x_first, t.x_now));
                        open.max_dwell = open.max_dwell.max(t.dwell);
                    }
                    if clip_count != open.count {
                        open.count = clip_count;
                        open.max_count = open.max_count.max(clip_count);
                        let a = self.message(AlertType::Update);
                        self.remember(&a);
                        out.push(a);
                    }
                } else if clip.end - open.last_seen_pts >= self.rule.end_after_seconds {
                    open.last_clip = clip_ref;
                    out.push(self.close());
                }
            }
            None => {
                let cooled = self
                    .last_end_pts
                    .is_none_or(|end| clip.start >= end + self.rule.cooldown_seconds);
                // confirmation (min_frames, the alert level) is the tracker's: any confirmed object opens
                if !seen.is_empty() && cooled {
                    let (first, last) = (seen[0], seen[seen.len() - 1]);
                    // the alert is about the object since it was first seen (at the track level), not since the
                    // frame that confirmed it; never before the previous alert of this rule ended
                    let since = clip_tracks
                        .iter()
                        .map(|t| t.first_seen)
                        .fold(first.pts, f64::min)
                        .max(self.last_end_pts.unwrap_or(f64::NEG_INFINITY));
                    let back = chrono::Duration::milliseconds(((first.pts - since) * 1e3) as i64);
                    self.open = Some(Open {
                        id: new_id(),
                        started_wall: first.wall - back,
                        stream_start: since,
                        last_seen_wall: last.wall,
                        last_seen_pts: last.pts,
                        count: clip_count,
                        max_count: clip_count,
                        best: clip_best,
                        last_clip: clip_ref,
                        objects: clip_tracks
                            .iter()
                            .map(|t| (t.id, (t.x_first, t.x_now)))
                            .collect(),
                        max_dwell: clip_tracks.iter().map(|t| t.dwell).fold(0.0, f64::max),
                        sent: None,
                    });
                    let a = self.message(AlertType::New);
                    self.remember(&a);
                    out.push(a);
                }
            }
        }
        out
    }

    /// The stream ended (EOS, error, shutdown): an open alert ends at the last time its label was seen.
    pub fn finish(&mut self) -> Option<Alert> {
        self.open.as_ref()?;
        Some(self.close())
    }

    fn close(&mut self) -> Alert {
        let mut a = self.message(AlertType::End);
        if let Some(open) = self.open.take() {
            self.last_end_pts = Some(open.last_seen_pts);
        }
        a.count = 0;
        a
    }

    fn remember(&mut self, a: &Alert) {
        if let Some(o) = self.open.as_mut() {
            o.sent = Some(Before {
                count: a.count,
                score: a.score,
                objects: a.objects,
            });
        }
    }

    fn message(&self, t: AlertType) -> Alert {
        // only called with an open alert
        let Some(o) = self.open.as_ref() else {
            unreachable!("message() without an open alert")
        };
        let ended = t == AlertType::End;
        Alert {
            schema: 1,
            id: o.id.clone(),
            kind_of_message: t,
            kind: "label",
            severity: self.rule.severity,
            zones: self.rule.zones.clone(),
            objects: o.objects.len(),
            max_dwell_seconds: round1(o.max_dwell),
            crossed: Some(crossings(o.objects.values())),
            posture: self.rule.posture,
            camera: self.camera.to_string(),
            rule: self.rule.name(),
            label: self.rule.label.clone(),
            prompt: None,
            unusual_score: None,
            score: (o.best * 1000.0).round() / 1000.0,
            count: o.count,
            max_count: o.max_count,
            started_at: rfc3339(o.started_wall),
            ended_at: ended.then(|| rfc3339(o.last_seen_wall)),
            stream_start: round1(o.stream_start),
            stream_end: ended.then(|| round1(o.last_seen_pts)),
            clip: o.last_clip.clone(),
            frames: None,
            parts: None,
            before: if t == AlertType::Update { o.sent } else { None },
            snapshot: None,
            recording: None,
            summary: summarize(
                self.clock,
                &self.camera,
                &self.rule.label,
                self.rule.posture,
                &self.rule.zones,
                t,
                o,
            ),
        }
    }
}

/// Plain-English summary built only from what the alert observed; times as `clock` says them.
fn summarize(
    clock: TextClock,
    camera: &str,
    label: &str,
    posture: Option<crate::infer::pose::Posture>,
    zones: &[String],
    t: AlertType,
    o: &Open,
) -> String {
    // "1 person lying", "people lying": the posture is part of what was observed
    let how = posture
        .map(|p| format!(" {}", p.as_str()))
        .unwrap_or_default();
    let cam = display_name(camera);
    let place = if zones.is_empty() {
        "in view".to_string()
    } else {
        format!(
            "in the {} zone{}",
            zones
                .iter()
                .map(|z| display_name(z))
                .collect::<Vec<_>>()
                .join(" / "),
            if zones.len() > 1 { "s" } else { "" }
        )
    };
    let what = |n: usize| format!("{n} {}{how}", plural(label, n));
    let note = clock.note();
    match t {
        AlertType::New => format!(
            "{cam}: {} {place} at {}{note}, detection score {:.2}.",
            what(o.count),
            clock.at(o.stream_start, o.started_wall),
            o.best
        ),
        AlertType::Update => format!(
            "{cam}: now {} {place} at {}{note}; at most {} at once so far.",
            what(o.count),
            clock.at(o.last_seen_pts, o.last_seen_wall),
            o.max_count
        ),
        AlertType::End => {
            let dur = (o.last_seen_pts - o.stream_start).max(0.0);
            let tracked = if o.objects.is_empty() {
                String::new()
            } else {
                format!(
                    " {} distinct {} tracked, the longest for {:.0} s;{}",
                    o.objects.len(),
                    plural(label, o.objects.len()),
                    o.max_dwell,
                    crossing_text(label, crossings(o.objects.values()))
                )
            };
            // "(stream time, 42 s)" for a file; "(42 s)" or "(UTC, 42 s)" for a live camera
            let span = match clock {
                TextClock::Stream => format!("stream time, {dur:.0} s"),
                TextClock::Local(chrono_tz::Tz::UTC) => format!("UTC, {dur:.0} s"),
                TextClock::Local(_) => format!("{dur:.0} s"),
            };
            format!(
                "{cam}: {}{how} seen{} from {} to {} ({span}); at most {} at once;{tracked} best detection score {:.2}.",
                plural(label, 2),
                if zones.is_empty() { String::new() } else { format!(" {place}") },
                clock.at(o.stream_start, o.started_wall),
                clock.at(o.last_seen_pts, o.last_seen_wall),
                o.max_count,
                o.best
            )
        }
    }
}

/// " 3 people crossed from left to right and 1 from right to left;" — empty when nobody crossed.
pub fn crossing_text(label: &str, c: Crossings) -> String {
    let part = |n: usize, dir: &str, first: bool| {
        if first {
            format!("{n} {} crossed from {dir}", plural(label, n))
        } else {
            format!("{n} from {dir}")
        }
    };
    match (c.left_to_right, c.right_to_left) {
        (0, 0) => String::new(),
        (l, 0) => format!(" {};", part(l, "left to right", true)),
        (0, r) => format!(" {};", part(r, "right to left", true)),
        (l, r) => format!(
            " {} and {};",
            part(l, "left to right", true),
            part(r, "right to left", false)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crossings_need_a_quarter_of_the_width_and_read_as_english() {
        let paths = [(0.1, 0.8), (0.2, 0.3), (0.9, 0.2), (0.5, 0.74), (0.5, 0.76)];
        let c = crossings(paths.iter());
        assert_eq!(
            c,
            Crossings {
                left_to_right: 2,
                right_to_left: 1
            }
        );
        assert_eq!(
            crossing_text("person", c),
            " 2 people crossed from left to right and 1 from right to left;"
        );
        assert_eq!(
            crossing_text(
                "car",
                Crossings {
                    left_to_right: 0,
                    right_to_left: 1
                }
            ),
            " 1 car crossed from right to left;"
        );
        assert_eq!(crossing_text("person", Crossings::default()), "");
    }

    #[test]
    fn point_in_polygon_square_and_concave() {
        let sq = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]];
        assert!(point_in_polygon(0.5, 0.5, &sq));
        assert!(!point_in_polygon(1.5, 0.5, &sq));
        // an L shape: the notch at the top right is outside
        let l = [
            [0.0, 0.0],
            [0.5, 0.0],
            [0.5, 0.5],
            [1.0, 0.5],
            [1.0, 1.0],
            [0.0, 1.0],
        ];
        assert!(point_in_polygon(0.25, 0.25, &l));
        assert!(!point_in_polygon(0.75, 0.25, &l));
        assert!(point_in_polygon(0.75, 0.75, &l));
        assert!(
            !point_in_polygon(0.5, 0.5, &[[0.0, 0.0], [1.0, 1.0]]),
            "degenerate"
        );
    }
    use crate::clock::{Clock, FakeClock};

    /// Builds clips of 4 s at 2 fps from a per-frame count list, stamping wall time from a fake clock.
    struct Feed {
        clock: FakeClock,
        frame: u64,
    }

    impl Feed {
        fn new() -> Self {
            Self {
                clock: FakeClock::new(
                    DateTime::parse_from_rfc3339("2026-11-28T14:00:00Z")
                        .map(|t| t.with_timezone(&Utc))
                        .unwrap_or_default(),
                ),
                frame: 0,
            }
        }
        fn clip(&mut self, counts: &[usize]) -> ClipObs {
            let start = self.frame as f64 * 0.5;
            let frames = counts
                .iter()
                .map(|c| {
                    let f = FrameObs {
                        pts: self.frame as f64 * 0.5,
                        wall: self.clock.now(),
                        count: *c,
                        best_score: if *c > 0 { 0.7 } else { 0.0 },
                        tracks: Vec::new(),
                    };
                    self.frame += 1;
                    self.clock.advance(chrono::Duration::milliseconds(500));
                    f
                })
                .collect();
            ClipObs {
                index: (start / 4.0) as u64,
                start,
                end: start + counts.len() as f64 * 0.5,
                frames,
            }
        }
    }

    fn rule(end_after: f64, cooldown: f64) -> RuleState {
        let mut r = RuleConfig::with_label("person");
        r.end_after_seconds = end_after;
        r.cooldown_seconds = cooldown;
        RuleState::new(Arc::from("walkway"), r, &Thresholds::default())
    }

    fn ids() -> impl FnMut() -> String {
        let mut n = 0;
        move || {
            n += 1;
            format!("a{n}")
        }
    }

    #[test]
    fn opens_at_once_updates_on_count_change_and_ends_after_absence() {
        let mut feed = Feed::new();
        let mut r = rule(10.0, 0.0);
        let mut id = ids();
        let mut all = Vec::new();
        // clip 0: nobody; clip 1: one person in 3 frames; clip 2: two people; clips 3..6 empty
        let clips = [
            vec![0; 8],
            vec![0, 0, 0, 0, 0, 1, 1, 1],
            vec![2, 2, 1, 0, 0, 0, 0, 0],
            vec![0; 8],
            vec![0; 8],
            vec![0; 8],
        ];
        for c in clips {
            all.extend(r.on_clip(&feed.clip(&c), &mut id));
        }
        let types: Vec<_> = all.iter().map(|a| a.kind_of_message).collect();
        assert_eq!(
            types,
            vec![AlertType::New, AlertType::Update, AlertType::End]
        );
        assert!(all.iter().all(|a| a.id == "a1"));
        let new = &all[0];
        assert_eq!(new.stream_start, 6.5);
        assert_eq!(new.started_at, "2026-11-28T14:00:06.500Z");
        assert_eq!(new.count, 1);
        assert_eq!(new.before, None);
        assert_eq!(all[1].count, 2);
        assert_eq!(
            all[1].before.map(|b| b.count),
            Some(1),
            "the update says what changed: 1 → 2"
        );
        assert_eq!(all[2].before, None);
        let end = &all[2];
        // last seen at frame 18 (9.0 s); the end comes in the first clip ending ≥ 10 s later (clip 4, 16..20 s)
        assert_eq!(end.stream_end, Some(9.0));
        assert_eq!(end.ended_at.as_deref(), Some("2026-11-28T14:00:09.000Z"));
        assert_eq!(end.clip.index, 4);
        assert_eq!(end.max_count, 2);
        assert!(
            end.summary.contains("people seen from 00:07 to 00:09"),
            "{}",
            end.summary
        );
    }

    #[test]
    fn cooldown_holds_back_a_new_alert() {
        let mut feed = Feed::new();
        let mut r = rule(0.0, 30.0);
        let mut id = ids();
        let mut all = Vec::new();
        all.extend(r.on_clip(&feed.clip(&[1; 8]), &mut id));
        all.extend(r.on_clip(&feed.clip(&[0; 8]), &mut id)); // ends (end_after 0)
        all.extend(r.on_clip(&feed.clip(&[1; 8]), &mut id)); // 8 s: inside the 30 s cooldown
        assert_eq!(all.len(), 2);
        for _ in 0..8 {
            all.extend(r.on_clip(&feed.clip(&[0; 8]), &mut id));
        }
        all.extend(r.on_clip(&feed.clip(&[1; 8]), &mut id)); // 44 s: cooled down
        assert_eq!(all.len(), 3);
        assert_eq!(all[2].kind_of_message, AlertType::New);
        assert_eq!(all[2].id, "a2");
    }

    #[test]
    fn stream_end_closes_an_open_alert() {
        let mut feed = Feed::new();
        let mut r = rule(10.0, 0.0);
        let mut id = ids();
        assert_eq!(r.on_clip(&feed.clip(&[1; 8]), &mut id).len(), 1);
        let end = r.finish().expect("end");
        assert_eq!(end.kind_of_message, AlertType::End);
        assert_eq!(end.stream_end, Some(3.5));
        assert!(r.finish().is_none());
    }

    #[test]
    fn summaries_mention_only_the_observed_label() {
        let mut feed = Feed::new();
        let mut r = rule(10.0, 0.0);
        let a = &r.on_clip(&feed.clip(&[3; 8]), &mut ids())[0];
        assert_eq!(
            a.summary,
            "Walkway: 3 people in view at 00:00 (stream time), detection score 0.70."
        );
    }

    #[test]
    fn live_cameras_say_local_wall_clock_time_and_files_stream_time() {
        let tz: chrono_tz::Tz = "Europe/Brussels".parse().expect("tz");
        let mut feed = Feed::new();
        let mut r = rule(10.0, 0.0).with_text_clock(TextClock::Local(tz));
        let a = &r.on_clip(&feed.clip(&[3; 8]), &mut ids())[0];
        // the feed's clock starts at 14:00 UTC, 15:00 in Brussels
        assert_eq!(
            a.summary,
            "Walkway: 3 people in view at 15:00, detection score 0.70."
        );
        assert_eq!(
            a.started_at, "2026-11-28T14:00:00.000Z",
            "machine fields stay UTC"
        );
        let end = r.finish().expect("end");
        assert!(
            end.summary.contains("from 15:00 to 15:00 (4 s)") && !end.summary.contains("stream"),
            "{}",
            end.summary
        );
        let cam = |url: &str| -> crate::config::CameraConfig {
            toml::from_str(&format!(
                "name = \"c\"\nurl = \"{url}\"\ntimezone = \"Europe/Brussels\"\n"
            ))
            .expect("camera")
        };
        assert_eq!(
            TextClock::for_camera(&cam("file:///x.mp4")),
            TextClock::Stream
        );
        assert_eq!(
            TextClock::for_camera(&cam("rtsp://cam/stream")),
            TextClock::Local(tz)
        );
        assert_eq!(
            TextClock::for_camera(&cam("test://ball")),
            TextClock::Local(tz)
        );
        assert_eq!(TextClock::Local(chrono_tz::Tz::UTC).note(), " UTC");
    }

    #[test]
    fn stream_clock_formats() {
        assert_eq!(stream_clock(75.4), "01:15");
        assert_eq!(stream_clock(3725.0), "1:02:05");
        assert_eq!(display_name("front_door"), "Front door");
    }
}
