//! Object tracking across sampled frames, per rule: stable ids so that counts, dwell time and "how many distinct
//! people" are about objects, not detections.
//!
//! Why greedy IoU association (SORT without the Kalman filter): at the default 2 sampled fps a walking person moves
//! a fraction of their own width between frames, so consecutive boxes of one object overlap far more than boxes
//! of two different objects; IoU matching is deterministic, needs no appearance model, and costs microseconds. A
//! track survives short misses (`max_gap_secs`, a person briefly occluded or missed by the detector) and then ends.
//! Fast objects at low sampling rates (cars crossing the frame between two samples) get new ids — counts stay
//! right, distinct-object totals can run high for them.

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
}

impl Track {
    pub fn dwell(&self) -> f64 {
        self.last - self.first
    }
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
        // all pairs above the threshold, best first; each track and box used once
        let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
        for (ti, t) in self.tracks.iter().enumerate() {
            for (bi, b) in boxes.iter().enumerate() {
                let v = iou(&t.bbox, b);
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
                    });
                    self.next_id += 1;
                    self.tracks.len() - 1
                }
            };
            let t = &mut self.tracks[ti];
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
