//! Calibration sweeps (`scenewatch eval MANIFEST --sweep LABEL`): the inference outputs of one run, replayed
//! through the rule engine once per candidate setting of one label's rule, each scored like the run itself.
//!
//! Why a replay rather than a run per setting: inference is the whole cost of an eval and does not depend on the
//! rule's levels; the engine is pure (`events::Engine`: inference outputs in, alert messages out), so replaying the
//! recorded outputs gives exactly the alerts a run with that setting would have published — a 40-point curve
//! costs one run.

use std::collections::BTreeMap;

use serde::Serialize;

use super::metrics::{Alert, EvalInput, PhotoResult, Report, VideoResult};
use crate::config::CameraConfig;
use crate::events::rules::AlertType;
use crate::events::Engine;
use crate::infer::worker::InferOut;
use crate::labels::Thresholds;

/// One camera's recorded inference outputs, in the order the events stage received them.
pub struct Recorded {
    pub camera: CameraConfig,
    pub outputs: Vec<InferOut>,
}

/// One candidate setting of the swept label's rule.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Setting {
    /// The track median at which an object alerts (`min_score`).
    pub min_score: f32,
    pub min_frames: usize,
}

/// The grid: `min_score` from `lo` to `hi` (inclusive) by `step`, for each `min_frames`.
pub fn grid(lo: f32, hi: f32, step: f32, frames: &[usize]) -> Vec<Setting> {
    let n = (((hi - lo) / step).round().max(0.0) as usize) + 1;
    frames
        .iter()
        .flat_map(|f| {
            (0..n).map(move |i| Setting {
                min_score: ((lo + step * i as f32) * 1000.0).round() / 1000.0,
                min_frames: *f,
            })
        })
        .collect()
}

/// The camera with `label`'s rules set to `s` (the camera's other rules as they are).
fn with_setting(camera: &CameraConfig, label: &str, s: Setting) -> CameraConfig {
    let mut c = camera.clone();
    c.rules = c
        .effective_rules()
        .into_iter()
        .map(|mut r| {
            if r.label == label {
                r.min_score = Some(s.min_score);
                r.min_frames = s.min_frames;
            }
            r
        })
        .collect();
    c
}

/// The label alerts (`new` … `end`) the engine gives for one camera's outputs with `label`'s rules set to `s`;
/// an alert still open when the outputs end is closed at `duration_s` (as the end of the file does).
pub fn replay(
    rec: &Recorded,
    label: &str,
    s: Setting,
    detector: &Thresholds,
    duration_s: f64,
) -> Vec<Alert> {
    let camera = with_setting(&rec.camera, label, s);
    let mut engine = Engine::new(
        std::slice::from_ref(&camera),
        detector.clone(),
        Box::new(String::new),
    );
    // at most one open alert per rule: keyed by the rule's name (the engine was given empty ids)
    let mut open: BTreeMap<String, Alert> = BTreeMap::new();
    let mut done = Vec::new();
    let ended = InferOut::CameraEnded {
        camera: camera.name.as_str().into(),
    };
    for out in rec.outputs.iter().chain(std::iter::once(&ended)) {
        for a in engine.handle(out) {
            if a.kind != "label" {
                continue;
            }
            match a.kind_of_message {
                AlertType::New => {
                    open.insert(
                        a.rule.clone(),
                        Alert {
                            label: a.label.clone(),
                            stream_start: a.stream_start,
                            stream_end: f64::NAN,
                            noticed: a.clip.stream_end,
                        },
                    );
                }
                AlertType::End => {
                    if let Some(mut al) = open.remove(&a.rule) {
                        al.stream_end = a.stream_end.unwrap_or(duration_s);
                        done.push(al);
                    }
                }
                AlertType::Update => {}
            }
        }
    }
    done.extend(open.into_values().map(|mut a| {
        a.stream_end = duration_s;
        a
    }));
    done
}

/// One point of the curve: the setting and the swept label's figures on the tuning and the held-apart entries.
#[derive(Debug, Clone, Serialize)]
pub struct Point {
    #[serde(flatten)]
    pub setting: Setting,
    pub tuning: super::metrics::LabelFigures,
    pub held_apart: Option<super::metrics::LabelFigures>,
}

/// A video of the manifest as the sweep sees it: its recorded outputs, result shell (file, truth, duration) and
/// whether it is held apart.
pub struct SweepVideo {
    pub rec: Recorded,
    pub result: VideoResult,
    pub held_apart: bool,
}

/// A photo: every detection of the swept label (at the decoder's floor) and the photo's truth.
pub struct SweepPhoto {
    pub raw: PhotoResult,
    pub held_apart: bool,
}

/// Scores every setting: videos replayed, photos counted at the setting's `min_score`.
pub fn sweep(
    label: &str,
    settings: &[Setting],
    videos: &[SweepVideo],
    photos: &[SweepPhoto],
    detector: &Thresholds,
) -> Vec<Point> {
    let any_held = videos.iter().any(|v| v.held_apart) || photos.iter().any(|p| p.held_apart);
    settings
        .iter()
        .map(|s| {
            let results: Vec<(bool, VideoResult)> = videos
                .iter()
                .map(|v| {
                    let mut r = v.result.clone();
                    r.alerts = replay(&v.rec, label, *s, detector, r.duration_s);
                    (v.held_apart, r)
                })
                .collect();
            let figures = |held: bool| {
                let input = EvalInput {
                    videos: results
                        .iter()
                        .filter(|(h, _)| *h == held)
                        .map(|(_, r)| r.clone())
                        .collect(),
                    photos: photos
                        .iter()
                        .filter(|p| p.held_apart == held)
                        .map(|p| p.raw.clone())
                        .collect(),
                    prompts: Vec::new(),
                    thresholds: super::metrics::Thresholds {
                        per_label: [(label.to_string(), s.min_score)].into(),
                        default: 1.0,
                    },
                };
                Report::compute(&input).labels.remove(label)
            };
            Point {
                setting: *s,
                tuning: figures(false).unwrap_or_default(),
                held_apart: if any_held { figures(true) } else { None },
            }
        })
        .collect()
}

/// The curve as a table for people: one row per setting.
pub fn table(label: &str, points: &[Point]) -> String {
    let f = |v: Option<f64>, p: usize| v.map_or("–".to_string(), |x| format!("{x:.p$}"));
    let mut out = format!(
        "Calibration sweep of '{label}' (tuning entries | held apart)\n{:>9} {:>6} {:>7} {:>8} {:>8} {:>8} {:>7} {:>7} | {:>7} {:>8} {:>7}\n",
        "min_score", "frames", "recall", "FA/h", "lat med", "lat p95", "ph P", "ph R", "recall", "FA/h", "ph R"
    );
    for p in points {
        let t = &p.tuning;
        let h = p.held_apart.clone().unwrap_or_default();
        out.push_str(&format!(
            "{:>9.3} {:>6} {:>7} {:>8} {:>8} {:>8} {:>9} {:>7} {:>7} | {:>7} {:>8} {:>7}\n",
            p.setting.min_score,
            p.setting.min_frames,
            f(t.recall, 2),
            f(t.false_alerts_per_hour, 1),
            f(t.start_latency_median_s, 1),
            f(t.start_latency_p95_s, 1),
            f(t.notice_latency_median_s, 1),
            f(t.photo_precision, 2),
            f(t.photo_recall, 2),
            f(h.recall, 2),
            f(h.false_alerts_per_hour, 1),
            f(h.photo_recall, 2),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_covers_both_ends_for_each_frame_count() {
        let g = grid(0.3, 0.5, 0.1, &[1, 3]);
        assert_eq!(g.len(), 6);
        assert_eq!(g[0].min_score, 0.3);
        assert_eq!(g[2].min_score, 0.5);
        assert_eq!(g[3].min_frames, 3);
    }
}
