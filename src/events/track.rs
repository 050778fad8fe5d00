//! Object tracking across sampled frames, per rule: stable ids so that counts, dwell time and "how many distinct
//! people" are about objects, not detections.
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
}

impl Track {
    pub fn dwell(&self) -> f64 {
        self.last - self.first
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
            last_pts: None,
            recent: Default::default(),
        }
    }

    /// Feeds one frame's boxes (already filtered to what the rule watches); returns the track of each box, in
    /// order. A frame fed again (overlapping clips) gets its earlier answer; an older unknown one gets None.
    pub fn update(&mut self, pts: f64, boxes: &[BBox]) -> Option<Vec<Track>> {
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
        let a = t.update(0.0, &[b(0.0), b(100.0)]).unwrap_or_default();
        let c = t.update(0.5, &[b(103.0), b(3.0)]).unwrap_or_default();
        assert_eq!((a[0].id, a[1].id), (1, 2));
        assert_eq!((c[0].id, c[1].id), (2, 1), "matched by overlap, not order");
        let d = t.update(1.0, &[b(6.0)]).unwrap_or_default();
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
        t.update(0.0, &[w(0.0)]);
        t.update(0.5, &[w(5.0)]);
        t.update(1.0, &[]);
        t.update(1.5, &[]);
        let back = t.update(2.0, &[w(20.0)]).unwrap_or_default();
        assert_eq!(back[0].id, 1, "predicted at x = 20");
        // another object of that size far away is not taken for it
        let mut t = Tracker::new(0.3, 2.5);
        t.update(0.0, &[w(0.0)]);
        t.update(0.5, &[w(5.0)]);
        let other = t.update(1.5, &[w(60.0)]).unwrap_or_default();
        assert_eq!(other[0].id, 2);
    }

    #[test]
    fn a_gap_longer_than_allowed_starts_a_new_track_and_replays_are_ignored() {
        let mut t = Tracker::new(0.3, 1.0);
        t.update(0.0, &[b(0.0)]);
        let again = t.update(0.0, &[b(0.0)]).unwrap_or_default();
        assert_eq!(
            again[0].id, 1,
            "same frame again (clip overlap): same answer"
        );
        assert!(t.update(-1.0, &[b(0.0)]).is_none());
        let late = t.update(3.0, &[b(0.0)]).unwrap_or_default();
        assert_eq!(late[0].id, 2);
        assert_eq!(late[0].dwell(), 0.0);
    }
}
