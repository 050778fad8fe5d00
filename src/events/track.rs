//! Object tracking across sampled frames, per rule: stable ids so that counts, dwell time and "how many distinct
//! people" are about objects, not detections — and track-level confirmation, so that alerts are about objects
//! too.
//!
//! Confirmation (as Frigate's `min_score` / `threshold` pair): a detection joins or continues a track at the
//! detector's lower `track` level; the track is *confirmed* once it has been seen in `min_frames` frames and the
//! median of its recent scores (the last [`SCORE_HISTORY`] sightings) reaches the `alert` level, and it stays
//! confirmed while it lives. One frame's score is noisy: a person standing still for 8 s scores 0.44 in one frame
//! and 0.55 in the next, and a one-frame spike on a poster is as high as a real person's worst frame. The median
//! of a track's history separates the two far better than any single frame (the calibration curve in
//! docs/quality.md), and one-frame spikes never confirm.
//!
//! Why greedy IoU association with a constant-velocity prediction (SORT with the Kalman filter reduced to its
//! mean): at the default 2 sampled fps a walking person moves a fraction of their own width between frames, so
//! consecutive boxes of one object overlap far more than boxes of two different objects; IoU matching is
//! deterministic, needs no appearance model, and costs microseconds. A track survives short misses (`max_gap_secs`,
//! a person briefly occluded or missed by the detector); since a walker has moved on by then, each track is matched
//! against where its velocity says it is now as well as where it was last seen, and an unmatched box can still
//! join a track whose predicted centre is within half its height (same-sized boxes only). Fast objects at low
//! sampling rates (cars crossing the frame between two samples) get new ids — counts stay right, distinct-object
//! totals can run high for them.

use std::collections::VecDeque;

use crate::infer::detector::BBox;

/// Intersection over union of two boxes (0 when they do not overlap).
pub fn iou(a: &BBox, b: &BBox) -> f32 {
    let ix = (a.x2.min(b.x2) - a.x1.max(b.x1)).max(0.0);
    let iy = (a.y2.min(b.y2) - a.y1.max(b.y1)).max(0.0);
    let inter = ix * iy;
    let area = |r: &BBox| (r.x2 - r.x1).max(0.0) * (r.y2 - r.y1).max(0.0);
    let union = area(a) + area(b) - inter;
    if union <= 0.0 {
        0.0
    } else {
        inter / union
    }
}

#[derive(Debug, Clone)]
pub struct Track {
    pub id: u64,
    pub bbox: BBox,
    /// The box when first seen (where the object came from).
    pub first_bbox: BBox,
    /// Stream time first and last seen.
    pub first: f64,
    pub last: f64,
    /// Centre velocity (pixels per second) from the last two sightings.
    pub velocity: (f32, f32),
    /// Frames the object was seen in.
    pub hits: u32,
    /// Detection scores of the last [`SCORE_HISTORY`] sightings, oldest first.
    pub scores: VecDeque<f32>,
    /// Seen in `min_frames` frames with a median score at or above the alert level (once confirmed, for good).
    pub confirmed: bool,
}

/// Sightings a track's score is the median of: 5 s at the default 2 sampled fps — long enough that a few bad
/// frames do not move it, short enough that a track that really turned into something else drops out.
pub const SCORE_HISTORY: usize = 10;

/// When a track is confirmed: its median score reaches `alert` over at least `min_frames` sightings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Confirm {
    pub alert: f32,
    pub min_frames: u32,
}

impl Confirm {
    /// Every sighting confirms at once (no confirmation step): what a tracker for counting alone uses.
    pub const NONE: Confirm = Confirm {
        alert: 0.0,
        min_frames: 1,
    };
}

/// Median of a non-empty score list (mean of the two middle ones for an even count); 0 for none.
pub fn median(scores: impl IntoIterator<Item = f32>) -> f32 {
    let mut v: Vec<f32> = scores.into_iter().collect();
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f32::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

impl Track {
    pub fn dwell(&self) -> f64 {
        self.last - self.first
    }

    /// The track's score: the median of its recent sightings' scores.
    pub fn score(&self) -> f32 {
        median(self.scores.iter().copied())
    }

    /// Where the box would be at `pts` if the object kept its velocity.
    pub fn predicted(&self, pts: f64) -> BBox {
        let dt = (pts - self.last).max(0.0) as f32;
        let (dx, dy) = (self.velocity.0 * dt, self.velocity.1 * dt);
        BBox {
            x1: self.bbox.x1 + dx,
            y1: self.bbox.y1 + dy,
            x2: self.bbox.x2 + dx,
            y2: self.bbox.y2 + dy,
        }
    }
}

fn centre(b: &BBox) -> (f32, f32) {
    ((b.x1 + b.x2) / 2.0, (b.y1 + b.y2) / 2.0)
}

fn area(b: &BBox) -> f32 {
    (b.x2 - b.x1).max(0.0) * (b.y2 - b.y1).max(0.0)
}

/// Second-chance match: the box's centre is within half the predicted box's height of the predicted centre, and
/// the two are of similar size (area ratio within 1:2).
fn near(pred: &BBox, b: &BBox) -> Option<f32> {
    let ((px, py), (bx, by)) = (centre(pred), centre(b));
    let d = ((px - bx).powi(2) + (py - by).powi(2)).sqrt();
    let reach = 0.5 * (pred.y2 - pred.y1).max(pred.x2 - pred.x1);
    let (a, c) = (area(pred), area(b));
    let similar = a > 0.0 && c > 0.0 && (0.5..=2.0).contains(&(c / a));
    (similar && d <= reach).then_some(d)
}

#[derive(Debug)]
pub struct Tracker {
    next_id: u64,
    tracks: Vec<Track>,
    iou_min: f32,
    max_gap_secs: f64,
    confirm: Confirm,
    last_pts: Option<f64>,
    /// Results of recent frames, so a frame fed again (overlapping clips) gets the same answer.
    recent: std::collections::VecDeque<(f64, Vec<Track>)>,
}

impl Tracker {
    pub fn new(iou_min: f32, max_gap_secs: f64) -> Self {
        Self {
            next_id: 1,
            tracks: Vec::new(),
            iou_min,
            max_gap_secs,
            confirm: Confirm::NONE,
            last_pts: None,
            recent: Default::default(),
        }
    }

    /// Tracks become confirmed by `confirm` (without it every track is confirmed from its first sighting).
    pub fn with_confirmation(mut self, confirm: Confirm) -> Self {
        self.confirm = confirm;
        self
    }

    /// Feeds one frame's detections (box, score; already filtered to what the rule watches at its track level);
    /// returns the track of each, in order. A frame fed again (overlapping clips) gets its earlier answer; an
    /// older unknown one gets None.
    pub fn update(&mut self, pts: f64, dets: &[(BBox, f32)]) -> Option<Vec<Track>> {
        let boxes: Vec<BBox> = dets.iter().map(|d| d.0).collect();
        let boxes = &boxes[..];
        if self.last_pts.is_some_and(|l| pts <= l) {
            return self
                .recent
                .iter()
                .find(|(p, _)| *p == pts)
                .map(|(_, t)| t.clone());
        }
        self.last_pts = Some(pts);
        self.tracks.retain(|t| pts - t.last <= self.max_gap_secs);
        // all pairs above the threshold (against the last box or the predicted one), best first; each track and
        // box used once
        let predicted: Vec<BBox> = self.tracks.iter().map(|t| t.predicted(pts)).collect();
        let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
        for (ti, t) in self.tracks.iter().enumerate() {
            for (bi, b) in boxes.iter().enumerate() {
                let v = iou(&t.bbox, b).max(iou(&predicted[ti], b));
                if v >= self.iou_min {
                    pairs.push((v, ti, bi));
                }
            }
        }
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut box_track: Vec<Option<usize>> = vec![None; boxes.len()];
        let mut used = vec![false; self.tracks.len()];
        for (_, ti, bi) in pairs {
            if !used[ti] && box_track[bi].is_none() {
                used[ti] = true;
                box_track[bi] = Some(ti);
            }
        }
        // second chance for what is left: nearest predicted centre
        let mut near_pairs: Vec<(f32, usize, usize)> = Vec::new();
        for ti in (0..self.tracks.len()).filter(|t| !used[*t]) {
            for bi in (0..boxes.len()).filter(|b| box_track[*b].is_none()) {
                if let Some(d) = near(&predicted[ti], &boxes[bi]) {
                    near_pairs.push((d, ti, bi));
                }
            }
        }
        near_pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
        for (_, ti, bi) in near_pairs {
            if !used[ti] && box_track[bi].is_none() {
                used[ti] = true;
                box_track[bi] = Some(ti);
            }
        }
        let mut out = Vec::with_capacity(boxes.len());
        for (bi, b) in boxes.iter().enumerate() {
            let ti = match box_track[bi] {
                Some(ti) => ti,
                None => {
                    self.tracks.push(Track {
                        id: self.next_id,
                        bbox: *b,
                        first_bbox: *b,
                        first: pts,
                        last: pts,
                        velocity: (0.0, 0.0),
                        hits: 0,
                        scores: VecDeque::with_capacity(SCORE_HISTORY),
                        confirmed: false,
                    });
                    self.next_id += 1;
                    self.tracks.len() - 1
                }
            };
            let t = &mut self.tracks[ti];
            let dt = (pts - t.last) as f32;
            if dt > 0.0 {
                let ((ox, oy), (nx, ny)) = (centre(&t.bbox), centre(b));
                t.velocity = ((nx - ox) / dt, (ny - oy) / dt);
            }
            t.bbox = *b;
            t.last = pts;
            t.hits += 1;
            if t.scores.len() == SCORE_HISTORY {
                t.scores.pop_front();
            }
            t.scores.push_back(dets[bi].1);
            if !t.confirmed && t.hits >= self.confirm.min_frames && t.score() >= self.confirm.alert
            {
                t.confirmed = true;
            }
            out.push(t.clone());
        }
        self.recent.push_back((pts, out.clone()));
        if self.recent.len() > 256 {
            self.recent.pop_front();
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(x: f32) -> BBox {
        BBox {
            x1: x,
            y1: 0.0,
            x2: x + 10.0,
            y2: 20.0,
        }
    }

    #[test]
    fn iou_basics() {
        assert!((iou(&b(0.0), &b(0.0)) - 1.0).abs() < 1e-6);
        assert!((iou(&b(0.0), &b(5.0)) - 1.0 / 3.0).abs() < 1e-6);
        assert_eq!(iou(&b(0.0), &b(20.0)), 0.0);
    }

    #[test]
    fn walking_objects_keep_their_ids_and_dwell_grows() {
        let mut t = Tracker::new(0.3, 2.0);
        let a = t
            .update(0.0, &[(b(0.0), 0.9), (b(100.0), 0.9)])
            .unwrap_or_default();
        let c = t
            .update(0.5, &[(b(103.0), 0.9), (b(3.0), 0.9)])
            .unwrap_or_default();
        assert_eq!((a[0].id, a[1].id), (1, 2));
        assert_eq!((c[0].id, c[1].id), (2, 1), "matched by overlap, not order");
        let d = t.update(1.0, &[(b(6.0), 0.9)]).unwrap_or_default();
        assert_eq!(d[0].id, 1);
        assert!((d[0].dwell() - 1.0).abs() < 1e-9);
    }

    #[test]
    fn a_walker_missed_for_a_second_keeps_its_id_by_its_velocity() {
        let mut t = Tracker::new(0.3, 2.5);
        // 10 px wide, 20 px tall, walking 5 px per 0.5 s; missed at 1.0 and 1.5 s (moved 15 px: no overlap left)
        let w = |x: f32| BBox {
            x1: x,
            y1: 0.0,
            x2: x + 10.0,
            y2: 20.0,
        };
        t.update(0.0, &[(w(0.0), 0.9)]);
        t.update(0.5, &[(w(5.0), 0.9)]);
        t.update(1.0, &[]);
        t.update(1.5, &[]);
        let back = t.update(2.0, &[(w(20.0), 0.9)]).unwrap_or_default();
        assert_eq!(back[0].id, 1, "predicted at x = 20");
        // another object of that size far away is not taken for it
        let mut t = Tracker::new(0.3, 2.5);
        t.update(0.0, &[(w(0.0), 0.9)]);
        t.update(0.5, &[(w(5.0), 0.9)]);
        let other = t.update(1.5, &[(w(60.0), 0.9)]).unwrap_or_default();
        assert_eq!(other[0].id, 2);
    }

    #[test]
    fn a_gap_longer_than_allowed_starts_a_new_track_and_replays_are_ignored() {
        let mut t = Tracker::new(0.3, 1.0);
        t.update(0.0, &[(b(0.0), 0.9)]);
        let again = t.update(0.0, &[(b(0.0), 0.9)]).unwrap_or_default();
        assert_eq!(
            again[0].id, 1,
            "same frame again (clip overlap): same answer"
        );
        assert!(t.update(-1.0, &[(b(0.0), 0.9)]).is_none());
        let late = t.update(3.0, &[(b(0.0), 0.9)]).unwrap_or_default();
        assert_eq!(late[0].id, 2);
        assert_eq!(late[0].dwell(), 0.0);
    }

    #[test]
    fn median_of_odd_even_and_empty() {
        assert_eq!(median([0.3, 0.9, 0.5]), 0.5);
        assert!((median([0.4, 0.6, 0.2, 0.8]) - 0.5).abs() < 1e-6);
        assert_eq!(median([]), 0.0);
    }

    fn confirming() -> Tracker {
        Tracker::new(0.3, 2.5).with_confirmation(Confirm {
            alert: 0.5,
            min_frames: 3,
        })
    }

    #[test]
    fn a_steady_object_scored_around_the_threshold_is_confirmed_by_its_median() {
        // a person standing still, per-frame scores either side of 0.5
        let mut t = confirming();
        let scores = [0.47, 0.55, 0.44, 0.58, 0.52];
        let mut states = Vec::new();
        for (i, s) in scores.iter().enumerate() {
            let tr = t
                .update(i as f64 * 0.5, &[(b(0.0), *s)])
                .unwrap_or_default();
            states.push((tr[0].id, tr[0].confirmed, tr[0].score()));
        }
        assert!(states.iter().all(|s| s.0 == 1), "one object throughout");
        assert_eq!(
            states.iter().map(|s| s.1).collect::<Vec<_>>(),
            vec![false, false, false, true, true],
            "not before 3 sightings; at 3 the median is 0.47, at 4 it is (0.47+0.55)/2 = 0.51: {states:?}"
        );
        // once confirmed it stays so through a bad stretch
        for i in 5..10 {
            let tr = t
                .update(i as f64 * 0.5, &[(b(0.0), 0.36)])
                .unwrap_or_default();
            assert!(tr[0].confirmed);
        }
    }

    #[test]
    fn a_one_frame_spike_or_a_weak_object_never_confirms() {
        let mut t = confirming();
        // a spike of 0.95 between frames of nothing: a new track each time (gap > 2.5 s)
        for i in 0..5 {
            let tr = t
                .update(i as f64 * 3.0, &[(b(0.0), 0.95)])
                .unwrap_or_default();
            assert!(!tr[0].confirmed, "sighting {i}");
        }
        // a steady object that never scores above 0.45
        let mut t = confirming();
        for i in 0..20 {
            let s = if i % 5 == 0 { 0.9 } else { 0.4 };
            let tr = t.update(i as f64 * 0.5, &[(b(0.0), s)]).unwrap_or_default();
            assert!(!tr[0].confirmed, "frame {i}: median {}", tr[0].score());
        }
    }
}
