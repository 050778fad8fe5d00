//! The figures of `scenewatch eval`, as pure functions over what the runner collected: alerts per video, detections
//! per photo, the top-1 prompt per prompt entry. No I/O; every definition is here and in docs/eval.md.
//!
//! Definitions (all intervals closed, in seconds of stream time):
//! - An alert *overlaps* a truth interval `[s, e]` when `alert.stream_start ≤ e` and `s ≤ alert.stream_end`.
//! - **recall** of a label: truth intervals of that label overlapped by at least one alert of that label, over all
//!   its truth intervals (videos only). Undefined (null) without truth intervals.
//! - **start latency** of a found interval: the earliest `stream_start` among the alerts overlapping it, minus the
//!   interval's start, clamped at 0 (an alert already open when the label appears counts as on time).
//!   Median (mean of the two middle values for an even count) and p95 (nearest rank: the ⌈0.95·n⌉-th smallest).
//! - **false alerts per hour**: alerts of a label that overlap no truth interval of that label in their video
//!   (a video that lists no truth for the label has none), over the total duration of all videos in hours.
//! - **photo precision / recall** at a threshold: per photo and per label listed in its truth, `found` =
//!   detections matching the label (a COCO class, or `vehicle` for car/truck/bus/motorcycle) with score ≥ the
//!   label's threshold; TP = min(expected, found), FP = found − TP, FN = expected − TP; summed over photos;
//!   precision = TP/(TP+FP), recall = TP/(TP+FN), null when the denominator is 0.
//! - **prompt top-1**: prompt entries whose best-ranked prompt is the expected one, over all prompt entries
//!   (an entry without a ranking counts as wrong).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde::Serialize;

use crate::infer::labels::label_matches;

/// A truth interval, seconds of stream time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    pub start: f64,
    pub end: f64,
}

impl Interval {
    pub fn new(start: f64, end: f64) -> Self {
        Self { start, end }
    }

    pub fn overlaps(&self, alert: &Alert) -> bool {
        alert.stream_start <= self.end && self.start <= alert.stream_end
    }
}

impl From<[f64; 2]> for Interval {
    fn from([start, end]: [f64; 2]) -> Self {
        Self { start, end }
    }
}

/// An alert as the event stage reported it (rule label, stream seconds); also its JSON form in the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    pub label: String,
    pub stream_start: f64,
    pub stream_end: f64,
    /// Stream time by which the daemon said so: the end of the clip whose result opened the alert (the `new`
    /// message's `clip.stream_end`). `stream_start` is when the object was first seen, which track confirmation
    /// can date back to before the clip that confirmed it.
    pub noticed: f64,
}

/// One video: its truth, the alerts raised on it and how long it played.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoResult {
    /// As written in the manifest.
    pub file: String,
    pub duration_s: f64,
    pub truth: BTreeMap<String, Vec<Interval>>,
    pub alerts: Vec<Alert>,
}

/// One detection on a photo: a COCO class (or rule label) and its score.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    pub label: String,
    pub score: f32,
}

/// One photo: expected counts per label and every detection the detector returned (any score).
#[derive(Debug, Clone, PartialEq)]
pub struct PhotoResult {
    pub truth: BTreeMap<String, u32>,
    pub detections: Vec<Detection>,
}

/// One prompt entry: the expected prompt text and the best-ranked one (None: nothing was ranked).
#[derive(Debug, Clone, PartialEq)]
pub struct PromptResult {
    /// The entry's `file`, as written in the manifest.
    pub file: String,
    pub expect: String,
    pub top1: Option<String>,
}

/// A `[[prompt]]` entry whose top-1 was not the expected prompt.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PromptMiss {
    pub file: String,
    pub expect: String,
    pub top1: Option<String>,
}

/// Score thresholds for photo detections: the rule's `min_score` per label, else `default`.
#[derive(Debug, Clone, PartialEq)]
pub struct Thresholds {
    pub per_label: BTreeMap<String, f32>,
    pub default: f32,
}

impl Thresholds {
    pub fn of(&self, label: &str) -> f32 {
        self.per_label.get(label).copied().unwrap_or(self.default)
    }
}

/// Everything the runner collected for one manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalInput {
    pub videos: Vec<VideoResult>,
    pub photos: Vec<PhotoResult>,
    pub prompts: Vec<PromptResult>,
    pub thresholds: Thresholds,
}

/// Video figures of one label, before turning into rates.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VideoCounts {
    pub truth_intervals: usize,
    pub found: usize,
    /// One per found interval, in seconds, in manifest order.
    pub latencies_s: Vec<f64>,
    /// Truth start → the earliest overlapping alert's `noticed`, per found interval.
    pub notice_latencies_s: Vec<f64>,
    pub alerts: usize,
    pub false_alerts: usize,
    pub hours: f64,
}

/// Photo figures of one label, summed over photos.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PhotoCounts {
    pub photos: usize,
    pub tp: u64,
    pub fp: u64,
    pub fn_: u64,
}

/// Counts behind the figures, for the table (not part of the JSON).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelCounts {
    pub video: VideoCounts,
    pub photo: PhotoCounts,
}

pub fn video_counts(videos: &[VideoResult], label: &str) -> VideoCounts {
    let mut c = VideoCounts {
        hours: videos.iter().map(|v| v.duration_s.max(0.0)).sum::<f64>() / 3600.0,
        ..Default::default()
    };
    for v in videos {
        let truth: &[Interval] = v.truth.get(label).map_or(&[], Vec::as_slice);
        let alerts: Vec<&Alert> = v.alerts.iter().filter(|a| a.label == label).collect();
        c.truth_intervals += truth.len();
        c.alerts += alerts.len();
        for t in truth {
            let earliest = alerts
                .iter()
                .filter(|a| t.overlaps(a))
                .map(|a| a.stream_start)
                .fold(None, |m: Option<f64>, s| Some(m.map_or(s, |m| m.min(s))));
            if let Some(s) = earliest {
                c.found += 1;
                c.latencies_s.push((s - t.start).max(0.0));
                let noticed = alerts
                    .iter()
                    .filter(|a| t.overlaps(a))
                    .map(|a| a.noticed)
                    .fold(f64::INFINITY, f64::min);
                c.notice_latencies_s.push((noticed - t.start).max(0.0));
            }
        }
        c.false_alerts += alerts
            .iter()
            .filter(|a| !truth.iter().any(|t| t.overlaps(a)))
            .count();
    }
    c
}

pub fn photo_counts(photos: &[PhotoResult], label: &str, threshold: f32) -> PhotoCounts {
    let mut c = PhotoCounts::default();
    for p in photos {
        let Some(&expected) = p.truth.get(label) else {
            continue;
        };
        let found = p
            .detections
            .iter()
            .filter(|d| d.score >= threshold && label_matches(label, &d.label))
            .count() as u64;
        let tp = u64::from(expected).min(found);
        c.photos += 1;
        c.tp += tp;
        c.fp += found - tp;
        c.fn_ += u64::from(expected) - tp;
    }
    c
}

/// Median; the mean of the two middle values for an even count; None when empty.
pub fn median(values: &[f64]) -> Option<f64> {
    let v = sorted(values);
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2]),
        _ => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
    }
}

/// 95th percentile by nearest rank (the ⌈0.95·n⌉-th smallest); None when empty.
pub fn p95(values: &[f64]) -> Option<f64> {
    let v = sorted(values);
    if v.is_empty() {
        return None;
    }
    let rank = (0.95 * v.len() as f64).ceil() as usize;
    Some(v[rank.clamp(1, v.len()) - 1])
}

fn sorted(values: &[f64]) -> Vec<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    v.sort_by(f64::total_cmp);
    v
}

fn ratio(num: f64, den: f64) -> Option<f64> {
    (den > 0.0).then(|| num / den)
}

pub fn prompt_top1(prompts: &[PromptResult]) -> Option<f64> {
    let right = prompts
        .iter()
        .filter(|p| p.top1.as_deref() == Some(p.expect.as_str()))
        .count();
    ratio(right as f64, prompts.len() as f64)
}

/// The figures of one label (null where undefined).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LabelFigures {
    pub recall: Option<f64>,
    pub false_alerts_per_hour: Option<f64>,
    pub start_latency_median_s: Option<f64>,
    pub start_latency_p95_s: Option<f64>,
    /// Truth start → the end of the clip that raised the alert: when a person could first have read it.
    pub notice_latency_median_s: Option<f64>,
    pub notice_latency_p95_s: Option<f64>,
    pub photo_precision: Option<f64>,
    pub photo_recall: Option<f64>,
    #[serde(skip)]
    pub counts: LabelCounts,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PromptFigures {
    pub top1: Option<f64>,
    #[serde(skip)]
    pub right: usize,
    #[serde(skip)]
    pub total: usize,
    /// The entries ranked wrong, in manifest order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub misses: Vec<PromptMiss>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VideoAlerts {
    pub file: String,
    pub alerts: Vec<Alert>,
}

/// The report: `--json` serialises exactly this shape; [`Report::table`] renders it for people.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub labels: BTreeMap<String, LabelFigures>,
    pub prompts: PromptFigures,
    pub videos: Vec<VideoAlerts>,
}

impl Report {
    /// Rows: every label with truth in a video or photo, or with an alert.
    pub fn compute(input: &EvalInput) -> Self {
        let labels: BTreeSet<&str> = input
            .videos
            .iter()
            .flat_map(|v| {
                v.truth
                    .keys()
                    .map(String::as_str)
                    .chain(v.alerts.iter().map(|a| a.label.as_str()))
            })
            .chain(
                input
                    .photos
                    .iter()
                    .flat_map(|p| p.truth.keys().map(String::as_str)),
            )
            .collect();
        let labels = labels
            .into_iter()
            .map(|label| {
                let video = video_counts(&input.videos, label);
                let photo = photo_counts(&input.photos, label, input.thresholds.of(label));
                let fig = LabelFigures {
                    recall: ratio(video.found as f64, video.truth_intervals as f64),
                    false_alerts_per_hour: ratio(video.false_alerts as f64, video.hours),
                    start_latency_median_s: median(&video.latencies_s),
                    start_latency_p95_s: p95(&video.latencies_s),
                    notice_latency_median_s: median(&video.notice_latencies_s),
                    notice_latency_p95_s: p95(&video.notice_latencies_s),
                    photo_precision: ratio(photo.tp as f64, (photo.tp + photo.fp) as f64),
                    photo_recall: ratio(photo.tp as f64, (photo.tp + photo.fn_) as f64),
                    counts: LabelCounts { video, photo },
                };
                (label.to_string(), fig)
            })
            .collect();
        let right = input
            .prompts
            .iter()
            .filter(|p| p.top1.as_deref() == Some(p.expect.as_str()))
            .count();
        Self {
            labels,
            prompts: PromptFigures {
                top1: prompt_top1(&input.prompts),
                right,
                total: input.prompts.len(),
                misses: input
                    .prompts
                    .iter()
                    .filter(|p| p.top1.as_deref() != Some(p.expect.as_str()))
                    .map(|p| PromptMiss {
                        file: p.file.clone(),
                        expect: p.expect.clone(),
                        top1: p.top1.clone(),
                    })
                    .collect(),
            },
            videos: input
                .videos
                .iter()
                .map(|v| VideoAlerts {
                    file: v.file.clone(),
                    alerts: v.alerts.clone(),
                })
                .collect(),
        }
    }

    /// A fixed-width table with the counts behind each figure; `–` where a figure is undefined.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<12} {:>14} {:>10} {:>10} {:>12} {:>16} {:>14} {:>14}",
            "label",
            "recall",
            "lat med s",
            "lat p95 s",
            "notice med s",
            "false alerts/h",
            "photo prec",
            "photo recall"
        );
        for (label, f) in &self.labels {
            let c = &f.counts;
            let _ = writeln!(
                out,
                "{:<12} {:>14} {:>10} {:>10} {:>12} {:>16} {:>14} {:>14}",
                label,
                frac(
                    f.recall,
                    c.video.found as u64,
                    c.video.truth_intervals as u64
                ),
                num(f.start_latency_median_s, 2),
                num(f.start_latency_p95_s, 2),
                num(f.notice_latency_median_s, 2),
                match f.false_alerts_per_hour {
                    Some(r) => format!("{r:.1} ({})", c.video.false_alerts),
                    None => "–".into(),
                },
                frac(f.photo_precision, c.photo.tp, c.photo.tp + c.photo.fp),
                frac(f.photo_recall, c.photo.tp, c.photo.tp + c.photo.fn_),
            );
        }
        let hours = self
            .labels
            .values()
            .next()
            .map_or(0.0, |f| f.counts.video.hours);
        let _ = writeln!(
            out,
            "prompts top-1: {}    videos: {} ({:.2} h)",
            frac(
                self.prompts.top1,
                self.prompts.right as u64,
                self.prompts.total as u64
            ),
            self.videos.len(),
            hours
        );
        out
    }
}

fn num(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "–".into(), |x| format!("{x:.decimals$}"))
}

fn frac(v: Option<f64>, num: u64, den: u64) -> String {
    v.map_or_else(|| "–".into(), |x| format!("{x:.2} ({num}/{den})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(label: &str, s: f64, e: f64) -> Alert {
        Alert {
            noticed: s,
            label: label.into(),
            stream_start: s,
            stream_end: e,
        }
    }

    fn video(duration_s: f64, truth: &[(&str, &[(f64, f64)])], alerts: Vec<Alert>) -> VideoResult {
        VideoResult {
            file: "v.mkv".into(),
            duration_s,
            truth: truth
                .iter()
                .map(|(l, iv)| {
                    (
                        l.to_string(),
                        iv.iter().map(|&(s, e)| Interval::new(s, e)).collect(),
                    )
                })
                .collect(),
            alerts,
        }
    }

    fn photo(truth: &[(&str, u32)], dets: &[(&str, f32)]) -> PhotoResult {
        PhotoResult {
            truth: truth.iter().map(|(l, n)| (l.to_string(), *n)).collect(),
            detections: dets
                .iter()
                .map(|(l, s)| Detection {
                    label: l.to_string(),
                    score: *s,
                })
                .collect(),
        }
    }

    fn input(
        videos: Vec<VideoResult>,
        photos: Vec<PhotoResult>,
        prompts: Vec<PromptResult>,
    ) -> EvalInput {
        EvalInput {
            videos,
            photos,
            prompts,
            thresholds: Thresholds {
                per_label: [("person".to_string(), 0.5)].into(),
                default: 0.4,
            },
        }
    }

    fn close(a: Option<f64>, b: f64) {
        let a = a.expect("a figure");
        assert!((a - b).abs() < 1e-9, "{a} != {b}");
    }

    #[test]
    fn overlap_is_closed_at_both_ends() {
        let t = Interval::new(10.0, 20.0);
        assert!(t.overlaps(&alert("person", 20.0, 25.0)));
        assert!(t.overlaps(&alert("person", 5.0, 10.0)));
        assert!(t.overlaps(&alert("person", 12.0, 13.0)));
        assert!(t.overlaps(&alert("person", 0.0, 30.0)));
        assert!(!t.overlaps(&alert("person", 20.001, 25.0)));
        assert!(!t.overlaps(&alert("person", 0.0, 9.999)));
    }

    #[test]
    fn median_and_p95_by_hand() {
        assert_eq!(median(&[]), None);
        assert_eq!(p95(&[]), None);
        assert_eq!(median(&[3.0]), Some(3.0));
        assert_eq!(p95(&[3.0]), Some(3.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        // n = 20: rank ⌈19⌉ = 19 → the 19th smallest
        let v: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(p95(&v), Some(19.0));
        // n = 21: rank ⌈19.95⌉ = 20
        let v: Vec<f64> = (1..=21).map(f64::from).collect();
        assert_eq!(p95(&v), Some(20.0));
        assert_eq!(median(&v), Some(11.0));
        // n = 3: rank ⌈2.85⌉ = 3 → the largest
        assert_eq!(p95(&[0.5, 9.0, 2.0]), Some(9.0));
    }

    #[test]
    fn recall_latency_and_false_alerts_by_hand() {
        // 2 videos, 30 min each = 1 h in all.
        // v1: truth person [10,20], [40,50], [100,110]; alerts: 12–30 (finds #1, latency 2),
        //     35–45 (finds #2 early: latency clamped to 0), 200–210 (false); #3 missed.
        // v2: truth person [0,5]; alerts: 3–4 and 1–2 (both overlap: earliest start 1 → latency 1),
        //     a vehicle alert (no vehicle truth in v2 → false for vehicle).
        let v1 = video(
            1800.0,
            &[("person", &[(10.0, 20.0), (40.0, 50.0), (100.0, 110.0)])],
            vec![
                alert("person", 12.0, 30.0),
                alert("person", 35.0, 45.0),
                alert("person", 200.0, 210.0),
            ],
        );
        let v2 = video(
            1800.0,
            &[("person", &[(0.0, 5.0)])],
            vec![
                alert("person", 3.0, 4.0),
                alert("person", 1.0, 2.0),
                alert("vehicle", 0.0, 60.0),
            ],
        );
        let c = video_counts(&[v1.clone(), v2.clone()], "person");
        assert_eq!(c.truth_intervals, 4);
        assert_eq!(c.found, 3);
        assert_eq!(c.latencies_s, vec![2.0, 0.0, 1.0]);
        assert_eq!(c.alerts, 5);
        assert_eq!(c.false_alerts, 1);
        close(Some(c.hours), 1.0);

        let r = Report::compute(&input(vec![v1, v2], vec![], vec![]));
        let p = &r.labels["person"];
        close(p.recall, 0.75);
        close(p.start_latency_median_s, 1.0);
        close(p.start_latency_p95_s, 2.0);
        close(p.false_alerts_per_hour, 1.0);
        assert_eq!(p.photo_precision, None);
        assert_eq!(p.photo_recall, None);
        // a label only alerted: recall undefined, its alert is false
        let v = &r.labels["vehicle"];
        assert_eq!(v.recall, None);
        assert_eq!(v.start_latency_median_s, None);
        close(v.false_alerts_per_hour, 1.0);
    }

    #[test]
    fn one_alert_spanning_two_truth_intervals_finds_both() {
        let v = video(
            60.0,
            &[("person", &[(10.0, 20.0), (30.0, 40.0)])],
            vec![alert("person", 15.0, 35.0)],
        );
        let c = video_counts(&[v], "person");
        assert_eq!(c.found, 2);
        // the second interval's alert was already open: latency 0
        assert_eq!(c.latencies_s, vec![5.0, 0.0]);
        assert_eq!(c.false_alerts, 0);
    }

    #[test]
    fn several_alerts_in_one_interval_find_it_once() {
        let v = video(
            60.0,
            &[("person", &[(10.0, 40.0)])],
            vec![
                alert("person", 25.0, 30.0),
                alert("person", 14.0, 18.0),
                alert("person", 33.0, 39.0),
            ],
        );
        let c = video_counts(&[v], "person");
        assert_eq!((c.truth_intervals, c.found, c.false_alerts), (1, 1, 0));
        assert_eq!(c.latencies_s, vec![4.0]);
    }

    #[test]
    fn no_truth_and_no_alerts() {
        // truth listed but empty, no alerts: nothing is defined but the false-alert rate (0 per hour)
        let v = video(7200.0, &[("person", &[])], vec![]);
        let r = Report::compute(&input(vec![v], vec![], vec![]));
        let p = &r.labels["person"];
        assert_eq!(p.recall, None);
        assert_eq!(p.start_latency_median_s, None);
        assert_eq!(p.start_latency_p95_s, None);
        close(p.false_alerts_per_hour, 0.0);
        // alerts on a people-free video are all false: 3 in 2 h
        let v = video(
            7200.0,
            &[("person", &[])],
            vec![
                alert("person", 1.0, 2.0),
                alert("person", 10.0, 20.0),
                alert("person", 100.0, 200.0),
            ],
        );
        let r = Report::compute(&input(vec![v], vec![], vec![]));
        close(r.labels["person"].false_alerts_per_hour, 1.5);
        // truth but no alerts: recall 0, latencies undefined
        let v = video(60.0, &[("person", &[(1.0, 2.0)])], vec![]);
        let r = Report::compute(&input(vec![v], vec![], vec![]));
        close(r.labels["person"].recall, 0.0);
        assert_eq!(r.labels["person"].start_latency_median_s, None);
        // no videos at all: no rate
        let r = Report::compute(&input(vec![], vec![photo(&[("person", 1)], &[])], vec![]));
        assert_eq!(r.labels["person"].false_alerts_per_hour, None);
        assert_eq!(r.labels["person"].recall, None);
    }

    #[test]
    fn photo_precision_and_recall_by_hand() {
        // person threshold 0.5, vehicle uses the default 0.4.
        let photos = vec![
            // expected 2, found 3 above 0.5 (0.45 is below): TP 2, FP 1, FN 0
            photo(
                &[("person", 2)],
                &[
                    ("person", 0.9),
                    ("person", 0.8),
                    ("person", 0.6),
                    ("person", 0.45),
                ],
            ),
            // expected 1, found 0: FN 1
            photo(&[("person", 1)], &[("person", 0.3)]),
            // expected 0, found 1: FP 1; vehicle 1 via car + truck (both count): TP 1, FP 1
            photo(
                &[("person", 0), ("vehicle", 1)],
                &[
                    ("person", 0.5),
                    ("car", 0.7),
                    ("truck", 0.41),
                    ("bicycle", 0.9),
                ],
            ),
            // person not listed: not scored here
            photo(&[("vehicle", 0)], &[("person", 0.99)]),
        ];
        let c = photo_counts(&photos, "person", 0.5);
        assert_eq!(
            c,
            PhotoCounts {
                photos: 3,
                tp: 2,
                fp: 2,
                fn_: 1
            }
        );
        let r = Report::compute(&input(vec![], photos, vec![]));
        close(r.labels["person"].photo_precision, 0.5);
        close(r.labels["person"].photo_recall, 2.0 / 3.0);
        close(r.labels["vehicle"].photo_precision, 0.5);
        close(r.labels["vehicle"].photo_recall, 1.0);
        assert_eq!(r.labels["person"].recall, None);
        assert_eq!(r.labels["person"].false_alerts_per_hour, None);
    }

    #[test]
    fn empty_photo_sets() {
        assert_eq!(photo_counts(&[], "person", 0.5), PhotoCounts::default());
        // only zero-expected photos and no detections: precision and recall undefined
        let r = Report::compute(&input(vec![], vec![photo(&[("person", 0)], &[])], vec![]));
        assert_eq!(r.labels["person"].photo_precision, None);
        assert_eq!(r.labels["person"].photo_recall, None);
    }

    #[test]
    fn prompt_top1() {
        let p = |e: &str, t: Option<&str>| PromptResult {
            file: "x.png".into(),
            expect: e.into(),
            top1: t.map(str::to_string),
        };
        assert_eq!(super::prompt_top1(&[]), None);
        let r = Report::compute(&input(
            vec![],
            vec![],
            vec![
                p("a cat", Some("a cat")),
                p("a dog", Some("a cat")),
                p("a cup", None),
                p("x", Some("x")),
            ],
        ));
        close(r.prompts.top1, 0.5);
        assert_eq!((r.prompts.right, r.prompts.total), (2, 4));
    }

    #[test]
    fn json_has_exactly_the_issue_shape() {
        let v = video(
            60.0,
            &[("person", &[(10.0, 20.0)])],
            vec![alert("person", 11.0, 19.0)],
        );
        let r = Report::compute(&input(vec![v], vec![], vec![]));
        let j = serde_json::to_value(&r).expect("json");
        let want = serde_json::json!({
            "labels": {"person": {
                "recall": 1.0, "false_alerts_per_hour": 0.0,
                "start_latency_median_s": 1.0, "start_latency_p95_s": 1.0,
                "notice_latency_median_s": 1.0, "notice_latency_p95_s": 1.0,
                "photo_precision": null, "photo_recall": null
            }},
            "prompts": {"top1": null},
            "videos": [{"file": "v.mkv", "alerts": [{"label": "person", "stream_start": 11.0, "stream_end": 19.0, "noticed": 11.0}]}]
        });
        assert_eq!(j, want);
    }

    #[test]
    fn table_shows_figures_counts_and_dashes() {
        let v = video(
            3600.0,
            &[("person", &[(10.0, 20.0), (30.0, 40.0)])],
            vec![alert("person", 12.0, 15.0)],
        );
        let r = Report::compute(&input(
            vec![v],
            vec![photo(&[("person", 1)], &[("person", 0.9)])],
            vec![],
        ));
        let t = r.table();
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("label"), "{t}");
        assert!(lines[1].starts_with("person"), "{t}");
        for want in ["0.50 (1/2)", "2.00", "0.0 (0)", "1.00 (1/1)"] {
            assert!(lines[1].contains(want), "missing {want} in {t}");
        }
        assert!(lines[2].contains("prompts top-1: –"), "{t}");
        assert!(lines[2].contains("videos: 1 (1.00 h)"), "{t}");
    }
}
