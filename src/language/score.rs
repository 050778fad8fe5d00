//! Scoring a parsed prompt on a clip: each part from the evidence that can check it — detections at the
//! detector's alert level for counts, the pose model's posture per person, zones by the box's ground point, speed
//! from box centres between frames, mean luminance for light, the camera's local time for clock windows, how long
//! the rest has held for durations — and the language head's score for the free text. Per frame the parts are
//! combined by a geometric mean (a soft AND: one failing part pulls the whole score down), multiplied by the
//! head's score when free text is left (so a prompt whose parts all hold keeps the head's calibrated scale and
//! its thresholds), and pooled over the clip as the head pools (`alpha · mean + (1 − alpha) · max`). A prompt
//! with only object nouns keeps the head's score on its whole text, times the presence of the nouns whose
//! labels the detector's card calibrates (person, vehicle); one without such nouns keeps the head's score
//! unchanged. A part with no evidence on this input (speed on a single photo, a duration without history,
//! light without pixels) is reported as not measured and left out of the product, never guessed.

use chrono::Timelike;
use chrono_tz::Tz;
use serde::Serialize;

use super::lexicon::{Light, Motion, Relation};
use super::parse::{Count, Program, Subject};
use crate::config::ZoneConfig;
use crate::events::rules::point_in_polygon;
use crate::infer::detector::BBox;
use crate::infer::FrameResult;
use crate::labels::{label_matches, Posture, Thresholds};

/// What scoring needs besides the frames.
#[derive(Debug, Clone, Copy)]
pub struct ScoreContext<'a> {
    /// The detector's per-label alert levels (its model card): what counts as an object.
    pub levels: &'a Thresholds,
    pub zones: &'a [ZoneConfig],
    /// The camera's time zone, for clock windows.
    pub tz: Tz,
    /// Clip pooling, as the head's (`[language] alpha`).
    pub alpha: f32,
}

/// One part's score on a clip (pooled over its frames), for `prompts test` and the alert's `parts`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PartScore {
    pub part: String,
    /// None: this input has no evidence for the part (it was left out of the product).
    pub score: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A prompt's fused scores on one clip.
#[derive(Debug, Clone, PartialEq)]
pub struct Fused {
    pub clip: f32,
    /// Per frame, before the duration part (which is about the clip's history, not a frame).
    pub frames: Vec<f32>,
    pub parts: Vec<PartScore>,
}

/// How long a prompt's other parts have held, across clips (for "for more than a minute"). A part holds while its
/// clip score is at least 0.5.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Hold {
    since: Option<f64>,
}

impl Hold {
    /// Seconds held at the end of this clip (0 when the rest does not hold now).
    pub fn update(&mut self, start: f64, end: f64, base: f32) -> f64 {
        if base >= 0.5 {
            let since = *self.since.get_or_insert(start);
            end - since
        } else {
            self.since = None;
            0.0
        }
    }
}

/// The head's scores for the prompt's head text on this clip.
#[derive(Debug, Clone, Copy)]
pub struct HeadScores<'a> {
    pub frames: &'a [f32],
    pub clip: f32,
}

const FLOOR: f32 = 1e-3;

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

fn pool(v: &[f32], alpha: f32) -> f32 {
    if v.is_empty() {
        return 0.0;
    }
    let mean = v.iter().sum::<f32>() / v.len() as f32;
    let max = v.iter().copied().fold(0.0f32, f32::max);
    alpha * mean + (1.0 - alpha) * max
}

/// Geometric mean of part scores (each floored so that one zero still ranks prompts by their other parts).
pub fn soft_and(parts: &[f32]) -> f32 {
    if parts.is_empty() {
        return 0.0;
    }
    let s: f32 = parts.iter().map(|p| p.clamp(FLOOR, 1.0).ln()).sum();
    (s / parts.len() as f32).exp()
}

/// How sure the detection is an object of its label, from its score against the detector's alert level.
pub fn confidence(score: f32, level: f32) -> f32 {
    sigmoid((score - level) / 0.05)
}

/// P(at least n of the objects), with each object's membership in `m` (sorted best first): the n-th best.
fn at_least(m: &[f32], n: u32) -> f32 {
    if n == 0 {
        return 1.0;
    }
    m.get(n as usize - 1).copied().unwrap_or(0.0)
}

/// How well the memberships fit the count range (soft: the n-th best object's membership decides).
pub fn count_score(mut m: Vec<f32>, count: Count) -> f32 {
    m.sort_by(|a, b| b.total_cmp(a));
    let lo = at_least(&m, count.min);
    let hi = count.max.map_or(0.0, |max| at_least(&m, max + 1));
    lo * (1.0 - hi)
}

/// Posture membership: the pose model's class for the person. When it cannot tell (an upper body, a person cut
/// by the frame's edge), the box's shape is the only evidence: a box clearly taller than wide (height/width ≥ 1.3)
/// is no one lying (0.1 for lying, 0.5 for standing or sitting, which it cannot tell apart), a clearly wide one
/// (≤ 0.77) is more likely lying (0.7, and 0.2 for the others), anything else 0.5.
pub fn posture_score(seen: Option<Posture>, aspect: f32, want: Posture, negated: bool) -> f32 {
    let s = match (seen, want) {
        (Some(p), _) if p == want => 1.0,
        (Some(_), _) => 0.0,
        (None, Posture::Lying) if aspect >= 1.3 => 0.1,
        (None, Posture::Lying) if aspect <= 0.77 => 0.7,
        (None, _) if aspect <= 0.77 => 0.2,
        (None, _) => 0.5,
    };
    if negated {
        1.0 - s
    } else {
        s
    }
}

/// Motion membership from speed in body heights per second: still < 0.2, running > 1.5, walking between.
pub fn motion_score(speed: f32, want: Motion, negated: bool) -> f32 {
    let still = sigmoid((0.2 - speed) / 0.05);
    let running = sigmoid((speed - 1.5) / 0.2);
    let s = match want {
        Motion::Still => still,
        Motion::Running => running,
        Motion::Walking => (1.0 - still) * (1.0 - running),
        Motion::Moving => 1.0 - still,
    };
    if negated {
        1.0 - s
    } else {
        s
    }
}

/// Darkness from mean luma (0–255): 0.5 at 60, a dim indoor scene ≈ 80–100, night streets ≈ 20–50.
pub fn light_score(luma: f32, want: Light, negated: bool) -> f32 {
    let dark = sigmoid((60.0 - luma) / 10.0);
    let s = match want {
        Light::Dark => dark,
        Light::Bright => 1.0 - dark,
    };
    if negated {
        1.0 - s
    } else {
        s
    }
}

/// Whether local minutes `m` fall in `[from, to)` (wrapping past midnight).
pub fn in_window(m: u32, (from, to): (u32, u32)) -> bool {
    if from <= to {
        m >= from && m < to
    } else {
        m >= from || m < to
    }
}

/// Mean luma of an RGB frame, from about 4,000 sampled pixels (None without pixels).
pub fn mean_luma(rgb: &[u8]) -> Option<f32> {
    let px = rgb.len() / 3;
    if px == 0 {
        return None;
    }
    let step = (px / 4096).max(1);
    let (mut sum, mut n) = (0.0f64, 0u32);
    for p in (0..px).step_by(step) {
        let i = 3 * p;
        sum += 0.299 * rgb[i] as f64 + 0.587 * rgb[i + 1] as f64 + 0.114 * rgb[i + 2] as f64;
        n += 1;
    }
    Some((sum / n as f64) as f32)
}

/// Relation geometry between boxes `a` and `b` (0..1).
pub fn relation_score(a: &BBox, b: &BBox, kind: Relation) -> f32 {
    let h = (a.y2 - a.y1).max(b.y2 - b.y1).max(1.0);
    match kind {
        Relation::Near => {
            let gx = (a.x1.max(b.x1) - a.x2.min(b.x2)).max(0.0);
            let gy = (a.y1.max(b.y1) - a.y2.min(b.y2)).max(0.0);
            sigmoid((0.5 - gx.max(gy) / h) / 0.1)
        }
        Relation::On => {
            // a's bottom rests within b's top half and a overlaps b horizontally
            let ox = (a.x2.min(b.x2) - a.x1.max(b.x1)).max(0.0) / (a.x2 - a.x1).max(1.0);
            let bh = (b.y2 - b.y1).max(1.0);
            let rests =
                a.y2 >= b.y1 - 0.1 * bh && a.y2 <= b.y1 + 0.6 * bh && a.y1 < b.y1 + 0.3 * bh;
            if rests {
                ox.min(1.0)
            } else {
                0.0
            }
        }
        Relation::Inside => {
            let ix = (a.x2.min(b.x2) - a.x1.max(b.x1)).max(0.0);
            let iy = (a.y2.min(b.y2) - a.y1.max(b.y1)).max(0.0);
            let area = ((a.x2 - a.x1) * (a.y2 - a.y1)).max(1.0);
            ((ix * iy / area - 0.4) / 0.4).clamp(0.0, 1.0)
        }
    }
}

/// One object of a subject's label in one frame.
#[derive(Debug, Clone)]
struct Candidate {
    bbox: BBox,
    conf: f32,
    posture: Option<Posture>,
}

fn candidates(f: &FrameResult, s: &Subject, ctx: &ScoreContext<'_>) -> Vec<Candidate> {
    let level = ctx.levels.for_label(&s.label).alert;
    let mut c: Vec<Candidate> = f
        .detections
        .iter()
        .enumerate()
        .filter(|(_, d)| label_matches(&s.label, d.label))
        .map(|(i, d)| Candidate {
            bbox: d.bbox,
            conf: confidence(d.score, level),
            posture: f.postures.get(i).copied().flatten(),
        })
        .collect();
    // people only the pose model found (it runs when some prompt or rule of the camera is about posture) are
    // people too: the detector misses most people lying down, and "nobody in view" must not hold over one. At
    // the level from which posture rules count them, they are 0.5 sure.
    if s.label == "person" {
        c.extend(f.pose_only.iter().map(|p| Candidate {
            bbox: p.bbox,
            conf: confidence(p.score, crate::infer::pose::POSE_ONLY_MIN),
            posture: Some(p.posture),
        }));
    }
    c
}

fn centre(b: &BBox) -> (f32, f32) {
    ((b.x1 + b.x2) / 2.0, (b.y1 + b.y2) / 2.0)
}

/// Speed (body heights per second) of `c` against the nearest same-label object of a neighbouring frame.
fn speed(c: &Candidate, other: &[Candidate], dt: f32) -> Option<f32> {
    let h = (c.bbox.y2 - c.bbox.y1).max(1.0);
    let (cx, cy) = centre(&c.bbox);
    other
        .iter()
        .map(|o| {
            let (ox, oy) = centre(&o.bbox);
            ((cx - ox).hypot(cy - oy), o)
        })
        .filter(|(d, o)| *d < 1.5 * h && ((o.bbox.y2 - o.bbox.y1) / h - 1.0).abs() < 0.5)
        .map(|(d, _)| d / h / dt)
        .min_by(f32::total_cmp)
}

/// Per-frame membership of each candidate in a subject's filters; notes say which filters had no evidence.
fn memberships(
    s: &Subject,
    frames: &[Vec<Candidate>],
    all: &[FrameResult],
    t: usize,
    ctx: &ScoreContext<'_>,
    notes: &mut Vec<String>,
) -> Vec<f32> {
    let f = &all[t];
    let zone = s
        .zone
        .as_ref()
        .map(|z| (z, ctx.zones.iter().find(|cz| cz.name == z.value)));
    // the neighbouring frame for speed: the one before, or after for the first frame
    let neighbour = if t > 0 {
        Some(t - 1)
    } else if all.len() > 1 {
        Some(1)
    } else {
        None
    };
    let dt = neighbour
        .map(|n| (all[t].pts.as_secs_f64() - all[n].pts.as_secs_f64()).abs() as f32)
        .filter(|dt| *dt > 0.0);
    frames[t]
        .iter()
        .map(|c| {
            let mut m = c.conf;
            if let Some(p) = &s.posture {
                let pose_ran = f.postures.len() == f.detections.len() && !f.postures.is_empty()
                    || !f.pose_only.is_empty();
                if !pose_ran && c.posture.is_none() {
                    note(notes, "posture: the pose model did not run on these frames");
                }
                let aspect = (c.bbox.y2 - c.bbox.y1) / (c.bbox.x2 - c.bbox.x1).max(1.0);
                m *= posture_score(c.posture, aspect, p.value, p.negated);
            }
            if let Some((z, poly)) = &zone {
                match poly {
                    Some(poly) => {
                        let (w, h) = (f.width.max(1) as f32, f.height.max(1) as f32);
                        // the ground point, kept inside the frame: a person cut by the bottom edge stands
                        // on it, and a polygon edge on the frame's edge must not leave them out
                        let x = ((c.bbox.x1 + c.bbox.x2) / 2.0 / w).clamp(0.001, 0.999);
                        let y = (c.bbox.y2 / h).clamp(0.001, 0.999);
                        let inside = point_in_polygon(x, y, &poly.points);
                        m *= if inside != z.negated { 1.0 } else { 0.0 };
                    }
                    None => note(
                        notes,
                        &format!("zone '{}' is not one of the camera's zones", z.value),
                    ),
                }
            }
            if let Some(mo) = &s.motion {
                match (neighbour, dt) {
                    (Some(n), Some(dt)) => {
                        // an object not found in the neighbouring frame: speed unknown, 0.5
                        m *= speed(c, &frames[n], dt)
                            .map_or(0.5, |v| motion_score(v, mo.value, mo.negated));
                    }
                    _ => note(notes, "motion: not measured (needs at least two frames)"),
                }
            }
            m
        })
        .collect()
}

fn note(notes: &mut Vec<String>, n: &str) {
    if !notes.iter().any(|x| x == n) {
        notes.push(n.to_string());
    }
}

fn subject_part(s: &Subject) -> String {
    let mut d = format!("{} {}", s.count.describe(), s.label);
    if let Some(p) = &s.posture {
        d += &format!(
            " {}{}",
            if p.negated { "not " } else { "" },
            p.value.as_str()
        );
    }
    if let Some(m) = &s.motion {
        d += &format!(
            " {}{}",
            if m.negated { "not " } else { "" },
            m.value.as_str()
        );
    }
    if let Some(z) = &s.zone {
        d += &format!(
            " {} '{}'",
            if z.negated { "outside" } else { "in" },
            z.value
        );
    }
    d
}

/// Scores `program` on a clip. `head`: the head's scores for the program's head text. `hold`: the prompt's state
/// across clips (None for a single photo, where a duration cannot be measured).
pub fn fuse(
    program: &Program,
    head: HeadScores<'_>,
    frames: &[FrameResult],
    ctx: &ScoreContext<'_>,
    hold: Option<&mut Hold>,
) -> Fused {
    let head_part = PartScore {
        part: format!("text '{}' (language head)", program.head_text),
        score: Some(head.clip),
        note: (!program.unchecked.is_empty()).then(|| {
            format!(
                "not checkable by any model, scored only by text similarity: {}",
                program.unchecked.join(", ")
            )
        }),
    };
    // A prompt with only object nouns is the head's, on its whole text; the nouns of labels the detector's card
    // calibrates (person, vehicle) add their presence ("a man driving a car" with no car in view scores low).
    let calibrated = |s: &&Subject| ctx.levels.per_label.contains_key(&s.label);
    let presence: Vec<&Subject> = if program.structured {
        Vec::new()
    } else {
        let mut seen: Vec<&Subject> = Vec::new();
        for s in program.subjects.iter().filter(calibrated) {
            if !seen.iter().any(|x| x.label == s.label) {
                seen.push(s);
            }
        }
        seen
    };
    if !program.structured && presence.is_empty() {
        return Fused {
            clip: head.clip,
            frames: head.frames.to_vec(),
            parts: vec![head_part],
        };
    }
    // per part, per frame (None: no evidence in this frame)
    let mut rows: Vec<(PartScore, Vec<Option<f32>>)> = Vec::new();
    let subjects: Vec<&Subject> = if program.structured {
        program.subjects.iter().collect()
    } else {
        presence
    };
    let with_head = program.uses_head || !program.structured;
    if with_head {
        rows.push((
            head_part,
            frames
                .iter()
                .enumerate()
                .map(|(t, _)| head.frames.get(t).copied())
                .collect(),
        ));
    }
    let per_subject: Vec<Vec<Vec<Candidate>>> = subjects
        .iter()
        .map(|s| frames.iter().map(|f| candidates(f, s, ctx)).collect())
        .collect();
    let mut members: Vec<Vec<Vec<f32>>> = Vec::new();
    for (s, cands) in subjects.iter().copied().zip(&per_subject) {
        let mut notes = Vec::new();
        let m: Vec<Vec<f32>> = (0..frames.len())
            .map(|t| memberships(s, cands, frames, t, ctx, &mut notes))
            .collect();
        // a subject that is only a relation's object is scored by the relation
        let only_related = !s.counted
            && s.posture.is_none()
            && program
                .relations
                .iter()
                .any(|r| std::ptr::eq(&program.subjects[r.b], s));
        if !only_related {
            rows.push((
                PartScore {
                    part: subject_part(s),
                    score: None,
                    note: (!notes.is_empty()).then(|| notes.join("; ")),
                },
                m.iter()
                    .map(|fm| Some(count_score(fm.clone(), s.count)))
                    .collect(),
            ));
        }
        members.push(m);
    }
    for r in program.relations.iter().filter(|_| program.structured) {
        let (a, b) = (&program.subjects[r.a], &program.subjects[r.b]);
        let per_frame = (0..frames.len())
            .map(|t| {
                let best = per_subject[r.a][t]
                    .iter()
                    .zip(&members[r.a][t])
                    .flat_map(|(ca, ma)| {
                        per_subject[r.b][t]
                            .iter()
                            .zip(&members[r.b][t])
                            .map(move |(cb, mb)| {
                                ma * mb * relation_score(&ca.bbox, &cb.bbox, r.kind)
                            })
                    })
                    .fold(0.0f32, f32::max);
                Some(best)
            })
            .collect();
        rows.push((
            PartScore {
                part: format!("{} {} {}", a.label, r.kind.as_str(), b.label),
                score: None,
                note: None,
            },
            per_frame,
        ));
    }
    if let Some(l) = &program.light {
        let lumas: Vec<Option<f32>> = frames.iter().map(|f| mean_luma(&f.pixels.0)).collect();
        let measured = lumas.iter().any(Option::is_some);
        let want = match (l.value, l.negated) {
            (Light::Dark, false) | (Light::Bright, true) => "dark",
            _ => "bright",
        };
        rows.push((
            PartScore {
                part: format!("light: {want}"),
                score: None,
                note: (!measured)
                    .then(|| "no pixels to measure".to_string())
                    .or_else(|| {
                        let known: Vec<f32> = lumas.iter().flatten().copied().collect();
                        Some(format!(
                            "mean luma {:.0} of 255",
                            known.iter().sum::<f32>() / known.len().max(1) as f32
                        ))
                    }),
            },
            lumas
                .iter()
                .map(|l2| l2.map(|y| light_score(y, l.value, l.negated)))
                .collect(),
        ));
    }
    if let Some(w) = program.clock {
        rows.push((
            PartScore {
                part: format!(
                    "local time {:02}:{:02}-{:02}:{:02} ({})",
                    w.0 / 60,
                    w.0 % 60,
                    w.1 / 60,
                    w.1 % 60,
                    ctx.tz
                ),
                score: None,
                note: None,
            },
            frames
                .iter()
                .map(|f| {
                    let local = f.wall.with_timezone(&ctx.tz);
                    let m = local.hour() * 60 + local.minute();
                    Some(if in_window(m, w) { 1.0 } else { 0.0 })
                })
                .collect(),
        ));
    }
    // fuse per frame: the geometric mean of the parts with evidence in that frame (a soft AND), times the head's
    // score of the free text when there is one — so a prompt whose parts all hold keeps the head's calibrated
    // scale (and thresholds), and one whose part fails drops with it; without free text, the parts alone
    let fused_frames: Vec<f32> = (0..frames.len())
        .map(|t| {
            let v: Vec<f32> = rows
                .iter()
                .skip(usize::from(with_head))
                .filter_map(|(_, fs)| fs[t])
                .collect();
            let g = if v.is_empty() { 1.0 } else { soft_and(&v) };
            match rows.first().filter(|_| with_head).and_then(|(_, fs)| fs[t]) {
                Some(h) => h * g,
                None if v.is_empty() => 0.0,
                None => g,
            }
        })
        .collect();
    let mut parts: Vec<PartScore> = rows
        .into_iter()
        .map(|(mut p, fs)| {
            let known: Vec<f32> = fs.into_iter().flatten().collect();
            if p.score.is_none() || !known.is_empty() {
                p.score = (!known.is_empty()).then(|| pool(&known, ctx.alpha));
            }
            p
        })
        .collect();
    let mut clip = pool(&fused_frames, ctx.alpha);
    if let Some(d) = program.duration {
        let (start, end) = (
            frames.first().map_or(0.0, |f| f.pts.as_secs_f64()),
            frames.last().map_or(0.0, |f| f.pts.as_secs_f64()),
        );
        let part = format!("lasting at least {d:.0} s");
        match hold {
            Some(h) => {
                let held = h.update(start, end, clip);
                let s = if held >= d {
                    1.0
                } else {
                    0.5 * (held / d) as f32
                };
                parts.push(PartScore {
                    part,
                    score: Some(s),
                    note: Some(format!("held {held:.0} s")),
                });
                clip *= s;
            }
            None => {
                parts.push(PartScore {
                    part,
                    score: None,
                    note: Some("not measured: a single photo has no duration".into()),
                });
            }
        }
    }
    Fused {
        clip,
        frames: fused_frames,
        parts,
    }
}

/// Fuses every prompt of a clip: `programs[k]` with the head's scores of prompt `k` (`scores.texts` are the
/// prompts' own texts, in the same order). `holds`: one per program across a stream's clips (None: a single
/// photo). The one path the events engine's prompts, `prompts test` and `eval` share.
pub fn fuse_all(
    programs: &[Program],
    scores: &crate::infer::PromptScores,
    frames: &[FrameResult],
    ctx: &ScoreContext<'_>,
    mut holds: Option<&mut [Hold]>,
) -> Vec<Fused> {
    programs
        .iter()
        .enumerate()
        .map(|(k, p)| {
            let head_frames = scores.frame_scores(k);
            let head = HeadScores {
                frames: &head_frames,
                clip: scores.clip.get(k).copied().unwrap_or(0.0),
            };
            let hold = holds.as_deref_mut().and_then(|h| h.get_mut(k));
            fuse(p, head, frames, ctx, hold)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::infer::detector::Detection;
    use crate::infer::pose::PoseOnly;
    use crate::infer::Pixels;
    use crate::language::parse::{parse, ParseContext};

    fn person(x: f32, score: f32) -> Detection {
        Detection {
            class_id: 0,
            label: "person",
            score,
            bbox: BBox {
                x1: x,
                y1: 100.0,
                x2: x + 50.0,
                y2: 300.0,
            },
        }
    }

    fn frame(t: f64, dets: Vec<Detection>, postures: Vec<Option<Posture>>) -> FrameResult {
        FrameResult {
            seq: 0,
            pts: Duration::from_secs_f64(t),
            wall: chrono::DateTime::UNIX_EPOCH,
            width: 640,
            height: 480,
            detections: dets,
            encoding: None,
            postures,
            pose_only: Vec::new(),
            pixels: Pixels::default(),
        }
    }

    fn levels() -> Thresholds {
        let mut t = Thresholds::default();
        t.per_label.insert(
            "person".into(),
            crate::labels::LabelThresholds {
                alert: 0.55,
                track: 0.35,
            },
        );
        t
    }

    fn score_with(text: &str, frames: &[FrameResult], zones: &[ZoneConfig], head: f32) -> Fused {
        let names: Vec<String> = zones.iter().map(|z| z.name.clone()).collect();
        let p = parse(
            text,
            &ParseContext {
                zones: &names,
                known_words: None,
            },
        );
        let l = levels();
        let ctx = ScoreContext {
            levels: &l,
            zones,
            tz: Tz::UTC,
            alpha: 0.5,
        };
        let hf = vec![head; frames.len()];
        fuse(
            &p,
            HeadScores {
                frames: &hf,
                clip: head,
            },
            frames,
            &ctx,
            None,
        )
    }

    fn score(text: &str, frames: &[FrameResult]) -> f32 {
        score_with(text, frames, &[], 0.7).clip
    }

    #[test]
    fn counts_tell_one_from_two_people() {
        let two = [frame(
            0.0,
            vec![person(10.0, 0.8), person(300.0, 0.62)],
            vec![],
        )];
        let one = [frame(
            0.0,
            vec![person(10.0, 0.8), person(300.0, 0.40)],
            vec![],
        )];
        assert!(
            score("two people", &two) > 0.8,
            "{}",
            score("two people", &two)
        );
        assert!(score("two people", &one) < 0.2);
        assert!(score("one person alone", &one) > 0.8);
        assert!(score("one person alone", &two) < 0.35);
        assert!(score("more than three people", &two) < 0.05);
        assert!(score("nobody", &[frame(0.0, vec![], vec![])]) > 0.95);
        assert!(score("nobody", &one) < 0.05);
    }

    #[test]
    fn posture_must_match_and_unknown_posture_is_not_a_match() {
        let standing = [frame(
            0.0,
            vec![person(10.0, 0.8)],
            vec![Some(Posture::Standing)],
        )];
        let unknown = [frame(0.0, vec![person(10.0, 0.8)], vec![None])];
        let mut lying = frame(0.0, vec![], vec![]);
        lying.pose_only.push(PoseOnly {
            bbox: BBox {
                x1: 100.0,
                y1: 300.0,
                x2: 400.0,
                y2: 380.0,
            },
            score: 0.5,
            posture: Posture::Lying,
        });
        let lying = [lying];
        assert!(score("a person lying on the ground", &standing) < 0.05);
        // posture unknown: a tall box (50×200) is no one lying; standing cannot be told from sitting
        assert!(score("a person lying on the ground", &unknown) < 0.15);
        assert!((score("a person standing", &unknown) - 0.5).abs() < 0.05);
        assert_eq!(posture_score(None, 0.5, Posture::Lying, false), 0.7);
        assert_eq!(posture_score(None, 1.0, Posture::Lying, false), 0.5);
        assert!(
            score("a person lying on the ground", &lying) > 0.95,
            "people only the pose model found count"
        );
        assert!(
            score("nobody in view", &lying) < 0.05,
            "and they are people for every prompt"
        );
        assert!(score("a person standing", &standing) > 0.95);
        assert!(score("a person not lying", &standing) > 0.95);
    }

    #[test]
    fn zones_use_the_ground_point() {
        let left = ZoneConfig {
            name: "driveway".into(),
            points: vec![[0.0, 0.0], [0.5, 0.0], [0.5, 1.0], [0.0, 1.0]],
        };
        let zones = [left];
        let inside = [frame(0.0, vec![person(10.0, 0.9)], vec![])];
        let outside = [frame(0.0, vec![person(500.0, 0.9)], vec![])];
        let s = |t: &str, f: &[FrameResult]| score_with(t, f, &zones, 0.7).clip;
        assert!(s("a person in the driveway", &inside) > 0.95);
        assert!(s("a person in the driveway", &outside) < 0.05);
        assert!(s("nobody in the driveway", &outside) > 0.95);
        assert!(s("a person outside the driveway", &outside) > 0.95);
        // a person cut by the frame's bottom edge stands in a zone drawn to that edge
        let mut cut = person(10.0, 0.9);
        cut.bbox.y2 = 480.0;
        assert!(s("a person in the driveway", &[frame(0.0, vec![cut], vec![])]) > 0.95);
    }

    #[test]
    fn motion_from_box_speed_and_not_measured_on_one_frame() {
        // 50×200 px person: 1 body height = 200 px
        let run: Vec<FrameResult> = (0..4)
            .map(|i| {
                frame(
                    i as f64 * 0.5,
                    vec![person(10.0 + 200.0 * i as f32, 0.9)],
                    vec![],
                )
            })
            .collect();
        let still: Vec<FrameResult> = (0..4)
            .map(|i| frame(i as f64 * 0.5, vec![person(10.0 + i as f32, 0.9)], vec![]))
            .collect();
        assert!(score("a person running", &run) > 0.9);
        assert!(score("a person running", &still) < 0.05);
        assert!(score("a person standing still", &still) > 0.9);
        let f = score_with("a person running", &still[..1], &[], 0.7);
        assert!(
            f.parts[0]
                .note
                .as_deref()
                .unwrap_or("")
                .contains("not measured"),
            "{:?}",
            f.parts
        );
    }

    #[test]
    fn light_from_luma_and_clock_from_local_time() {
        let mut dark = frame(0.0, vec![], vec![]);
        dark.pixels = Pixels(Arc::new(vec![20u8; 300]));
        let mut day = frame(0.0, vec![], vec![]);
        day.pixels = Pixels(Arc::new(vec![150u8; 300]));
        assert!(
            score("an empty street at night", &[dark.clone()]) > 0.65,
            "the head's 0.7 times parts that hold"
        );
        assert!(score("an empty street at night", &[day.clone()]) < 0.1);
        assert!(score("an empty street during the day", &[day]) > 0.65);
        // frames at 1970-01-01 00:00 UTC: after 22:00 holds, the morning does not
        assert!(score("nobody after 10 pm", &[dark.clone()]) > 0.9);
        assert!(score("nobody in the morning", &[dark]) < 0.05);
    }

    #[test]
    fn relations_need_both_objects_close() {
        let car = |x: f32| Detection {
            class_id: 2,
            label: "car",
            score: 0.9,
            bbox: BBox {
                x1: x,
                y1: 150.0,
                x2: x + 200.0,
                y2: 300.0,
            },
        };
        let near = [frame(0.0, vec![person(10.0, 0.9), car(70.0)], vec![])];
        let far = [frame(0.0, vec![person(10.0, 0.9), car(430.0)], vec![])];
        assert!(score("a person next to a car", &near) > 0.9);
        assert!(score("a person next to a car", &far) < 0.2);
    }

    #[test]
    fn soft_and_pulls_down_on_one_failing_part_and_plain_prompts_keep_the_head_score() {
        assert!(soft_and(&[0.9, 0.9, 0.01]) < 0.25);
        let f = score_with("a cup of coffee", &[frame(0.0, vec![], vec![])], &[], 0.73);
        assert_eq!(f.clip, 0.73);
        assert_eq!(f.parts.len(), 1);
        // a calibrated label's noun (person here) adds its presence to an otherwise plain prompt
        let empty = [frame(0.0, vec![], vec![])];
        let one = [frame(0.0, vec![person(10.0, 0.9)], vec![])];
        assert!(score_with("a man talking to the camera", &empty, &[], 0.73).clip < 0.1);
        let f = score_with("a man talking to the camera", &one, &[], 0.73);
        assert!(
            f.clip > 0.7 && f.clip <= 0.73 && f.parts.len() == 2,
            "{f:?}"
        );
    }

    #[test]
    fn durations_need_history() {
        let p = parse("someone loitering", &ParseContext::default());
        let l = levels();
        let ctx = ScoreContext {
            levels: &l,
            zones: &[],
            tz: Tz::UTC,
            alpha: 0.5,
        };
        let mut hold = Hold::default();
        let mut last = 0.0;
        for i in 0..20 {
            let fr: Vec<FrameResult> = (0..2)
                .map(|k| {
                    frame(
                        i as f64 * 4.0 + k as f64 * 2.0,
                        vec![person(10.0, 0.9)],
                        vec![],
                    )
                })
                .collect();
            let f = fuse(
                &p,
                HeadScores {
                    frames: &[0.7, 0.7],
                    clip: 0.7,
                },
                &fr,
                &ctx,
                Some(&mut hold),
            );
            if i == 5 {
                assert!(f.clip < 0.75, "20 s in: {}", f.clip);
            }
            last = f.clip;
        }
        assert!(last > 0.95, "80 s in: {last}");
        let one = [frame(0.0, vec![person(10.0, 0.9)], vec![])];
        let f = fuse(
            &p,
            HeadScores {
                frames: &[0.7],
                clip: 0.7,
            },
            &one,
            &ctx,
            None,
        );
        assert!(f
            .parts
            .iter()
            .any(|p| p.score.is_none() && p.part.contains("lasting")));
    }
}
