//! The unusual-scene baseline of one camera (issue 15, part 2), as plain data and pure functions: what the
//! camera's clips normally look like, learnt from its own unlabelled stream, and how unusual a new clip is.
//!
//! A clip is described by its feature vector (the image encoder's pooled embedding, L2-normalised, so distances
//! are cosine distances). The baseline keeps, per time-of-day bucket, a few centroids learnt by streaming
//! k-means (MacQueen's update with a floor on the learning rate, so a scene that changes slowly — seasons,
//! a parked car that stays — is followed) and the distances of its recent clips to them. A clip's raw score is
//! its distance to the nearest centroid of its bucket; its **unusualness** is the share of the bucket's recent
//! raw scores below it (an empirical rank in 0..1), so "unusual" means "further from normal than 99.5 % of this
//! camera's own clips at this hour" whatever the scene, encoder or lighting — no absolute distance to tune.
//!
//! Why per time-of-day bucket: a street at 3 am and at 3 pm are both normal, and far apart; one set of centroids
//! for both would make every night clip look unusual in a daytime-trained baseline and hide day-time anomalies
//! at night. Why a rank and not a distance threshold: distances depend on the encoder and the scene; ranks do not.

use serde::{Deserialize, Serialize};

/// How a baseline learns.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Learning {
    /// Centroids per bucket.
    pub k: usize,
    /// Hours of the day per bucket (24 = one bucket for the whole day; must divide 24).
    pub hours_per_bucket: u32,
    /// Smallest learning rate of a centroid (MacQueen's 1/n stops here, so old scenes fade).
    pub min_rate: f32,
    /// Recent raw scores kept per bucket for the rank.
    pub history: usize,
    /// Clips a bucket must have seen before its scores count (warm-up, per bucket).
    pub warmup_clips: u64,
}

impl Default for Learning {
    fn default() -> Self {
        Self {
            k: 8,
            hours_per_bucket: 6,
            min_rate: 0.01,
            history: 2000,
            warmup_clips: 200,
        }
    }
}

/// One time-of-day bucket.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    pub centroids: Vec<Vec<f32>>,
    /// Clips each centroid has absorbed.
    pub counts: Vec<u64>,
    /// Raw scores of the most recent clips, oldest first (at most `Learning::history`).
    pub recent: std::collections::VecDeque<f32>,
    /// Clips this bucket has seen.
    pub seen: u64,
    /// Mean label evidence (per detector class: the clip's best score) of this bucket's clips, for saying what
    /// differs.
    pub evidence_mean: Vec<f32>,
}

/// What one clip scored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scored {
    /// Distance to the nearest centroid (cosine distance, 0..2).
    pub raw: f32,
    /// Share of the bucket's recent clips that were nearer (0..1); None while the bucket warms up.
    pub unusualness: Option<f32>,
    pub bucket: usize,
}

/// The baseline of one camera.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    pub learning: Learning,
    pub dim: usize,
    pub buckets: Vec<Bucket>,
}

/// L2-normalised copy (a zero vector stays zero).
pub fn normalised(x: &[f32]) -> Vec<f32> {
    let n = x.iter().map(|v| v * v).sum::<f32>().sqrt();
    if n > 0.0 {
        x.iter().map(|v| v / n).collect()
    } else {
        x.to_vec()
    }
}

/// Cosine distance of two L2-normalised vectors.
fn distance(a: &[f32], b: &[f32]) -> f32 {
    1.0 - a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>()
}

impl Baseline {
    pub fn new(learning: Learning, dim: usize) -> Self {
        let n = (24 / learning.hours_per_bucket.clamp(1, 24)) as usize;
        Self {
            learning,
            dim,
            buckets: vec![Bucket::default(); n.max(1)],
        }
    }

    /// The bucket of a local hour (0..24).
    pub fn bucket_of(&self, hour: u32) -> usize {
        ((hour % 24) / self.learning.hours_per_bucket.clamp(1, 24)) as usize % self.buckets.len()
    }

    /// Scores a clip against its bucket (before learning from it), then learns from it. `feature`: the clip's
    /// embedding (any scale; normalised here); `evidence`: its per-class best detection scores. A feature of the
    /// wrong length is refused (None) and learnt from nothing: a baseline belongs to one encoder.
    pub fn observe(&mut self, hour: u32, feature: &[f32], evidence: &[f32]) -> Option<Scored> {
        if feature.len() != self.dim {
            return None;
        }
        let x = normalised(feature);
        let b = self.bucket_of(hour);
        let learning = self.learning;
        let bucket = &mut self.buckets[b];
        let nearest = bucket
            .centroids
            .iter()
            .enumerate()
            .map(|(i, c)| (i, distance(&x, c)))
            .min_by(|a, b| a.1.total_cmp(&b.1));
        let raw = nearest.map_or(0.0, |(_, d)| d.max(0.0));
        let unusualness = (bucket.seen >= learning.warmup_clips && !bucket.recent.is_empty())
            .then(|| rank(&bucket.recent, raw));
        // learn: a new centroid while there are fewer than k, else move the nearest one
        match nearest {
            Some((i, _)) if bucket.centroids.len() >= learning.k => {
                bucket.counts[i] += 1;
                let rate = (1.0 / bucket.counts[i] as f32).max(learning.min_rate);
                let c = &mut bucket.centroids[i];
                for (cv, xv) in c.iter_mut().zip(&x) {
                    *cv += rate * (xv - *cv);
                }
                *c = normalised(c);
            }
            _ => {
                bucket.centroids.push(x);
                bucket.counts.push(1);
            }
        }
        if bucket.recent.len() >= learning.history {
            bucket.recent.pop_front();
        }
        bucket.recent.push_back(raw);
        bucket.seen += 1;
        if bucket.evidence_mean.len() != evidence.len() {
            bucket.evidence_mean = evidence.to_vec();
        } else {
            let rate = 1.0 / (bucket.seen as f32).min(learning.history as f32);
            for (m, e) in bucket.evidence_mean.iter_mut().zip(evidence) {
                *m += rate * (e - *m);
            }
        }
        Some(Scored {
            raw,
            unusualness,
            bucket: b,
        })
    }

    /// The classes whose evidence in this clip is furthest above the bucket's mean, largest first: (class index,
    /// clip evidence − mean), only increases of at least `min_rise`, at most `n`.
    pub fn what_rose(
        &self,
        bucket: usize,
        evidence: &[f32],
        min_rise: f32,
        n: usize,
    ) -> Vec<(usize, f32)> {
        let Some(b) = self.buckets.get(bucket) else {
            return Vec::new();
        };
        let mut rises: Vec<(usize, f32)> = evidence
            .iter()
            .zip(&b.evidence_mean)
            .enumerate()
            .map(|(i, (e, m))| (i, e - m))
            .filter(|(_, d)| *d >= min_rise)
            .collect();
        rises.sort_by(|a, b| b.1.total_cmp(&a.1));
        rises.truncate(n);
        rises
    }
}

/// Share of `recent` strictly below `x` (0 when empty).
pub fn rank(recent: &std::collections::VecDeque<f32>, x: f32) -> f32 {
    if recent.is_empty() {
        return 0.0;
    }
    recent.iter().filter(|v| **v < x).count() as f32 / recent.len() as f32
}

/// The feature of a clip for its baseline: the mean of its frames' image embeddings (EfficientNet's pooled
/// feature, or an image–text pair's embedding), None when no frame was encoded; and its label evidence: per
/// detector class, the best score over the clip's frames.
pub fn clip_features(frames: &[crate::infer::FrameResult]) -> Option<(Vec<f32>, Vec<f32>)> {
    use crate::infer::FrameEncoding;
    let mut sum: Vec<f32> = Vec::new();
    let mut n = 0usize;
    let mut evidence = vec![0.0f32; crate::labels::COCO_LABELS.len()];
    for f in frames {
        let emb: Option<&[f32]> = match &f.encoding {
            Some(FrameEncoding::Classifier(e)) => Some(&e.embedding),
            Some(FrameEncoding::ImageText(v)) => Some(v),
            None => None,
        };
        if let Some(e) = emb {
            if sum.is_empty() {
                sum = vec![0.0; e.len()];
            }
            if e.len() == sum.len() {
                for (s, v) in sum.iter_mut().zip(e) {
                    *s += v;
                }
                n += 1;
            }
        }
        for d in &f.detections {
            if d.class_id >= evidence.len() {
                evidence.resize(d.class_id + 1, 0.0);
            }
            evidence[d.class_id] = evidence[d.class_id].max(d.score);
        }
    }
    (n > 0).then(|| (sum.iter().map(|v| v / n as f32).collect(), evidence))
}

/// One camera's unusual-scene state in the events engine: its baseline and the alert lifecycle (the prompt
/// lifecycle's hysteresis over the clip's unusualness), with `kind = "unusual"` messages.
pub struct UnusualState {
    pub baseline: Option<Baseline>,
    learning: Learning,
    lifecycle: super::prompts::PromptState,
    camera: std::sync::Arc<str>,
    /// How the alert texts say times (local time for a live camera, stream time for a file).
    clock: super::rules::TextClock,
    /// Whether the baseline changed since it was last taken for saving.
    dirty: bool,
}

impl UnusualState {
    pub fn new(camera: std::sync::Arc<str>, cfg: &crate::config::CameraConfig) -> Self {
        let u = &cfg.unusual;
        let clips_per_bucket = (u.warmup_seconds / cfg.clip_seconds.max(0.1)).ceil() as u64;
        let learning = Learning {
            k: u.centroids,
            hours_per_bucket: u.hours_per_bucket,
            warmup_clips: clips_per_bucket,
            ..Learning::default()
        };
        let lifecycle = super::prompts::PromptState::new(
            camera.clone(),
            crate::config::PromptConfig {
                text: "an unusual scene".into(),
                threshold: u.threshold_quantile,
                exit_threshold: Some(u.exit_quantile),
                enter_clips: u.enter_clips,
                exit_clips: u.exit_clips,
            },
        );
        Self {
            baseline: None,
            learning,
            lifecycle,
            camera,
            clock: super::rules::TextClock::for_camera(cfg),
            dirty: false,
        }
    }

    /// A saved baseline (same learning parameters) replaces the empty one.
    pub fn restore(&mut self, b: Baseline) {
        if b.learning.k == self.learning.k
            && b.learning.hours_per_bucket == self.learning.hours_per_bucket
        {
            let mut b = b;
            b.learning = self.learning;
            self.baseline = Some(b);
        }
    }

    /// Forgets everything learnt (the `reset` command): the next clip starts a new warm-up. Ends the open alert,
    /// if any (its end message is returned), and forgets a run of unusual clips that had not opened one yet.
    pub fn reset(&mut self) -> Option<super::rules::Alert> {
        let end = self.finish();
        self.lifecycle =
            super::prompts::PromptState::new(self.camera.clone(), self.lifecycle.cfg.clone());
        self.baseline = None;
        self.dirty = true;
        end
    }

    /// The baseline to save, when it changed since the last call.
    pub fn take_dirty(&mut self) -> Option<&Baseline> {
        if std::mem::take(&mut self.dirty) {
            self.baseline.as_ref()
        } else {
            None
        }
    }

    /// Scores and learns from one clip; returns its alert messages and the clip's unusualness (None while the
    /// baseline warms up or when no frame was encoded). `hour`: the local hour of the clip's first frame.
    pub fn on_clip(
        &mut self,
        r: &crate::infer::ClipResult,
        hour: u32,
        new_id: &mut dyn FnMut() -> String,
    ) -> (Vec<super::rules::Alert>, Option<f32>) {
        let clip_wall = r.frames.first().map(|f| f.wall);
        let Some((feature, evidence)) = clip_features(&r.frames) else {
            return (Vec::new(), None);
        };
        let learning = self.learning;
        let baseline = self
            .baseline
            .get_or_insert_with(|| Baseline::new(learning, feature.len()));
        let Some(scored) = baseline.observe(hour, &feature, &evidence) else {
            return (Vec::new(), None);
        };
        self.dirty = true;
        let score = scored.unusualness.unwrap_or(0.0);
        let obs = super::prompts::PromptObs::constant(r, score);
        let rose = baseline.what_rose(scored.bucket, &evidence, 0.3, 3);
        let what = if rose.is_empty() {
            "the picture differs from this camera's usual scenes at this time of day; no detected object explains it".to_string()
        } else {
            let names: Vec<String> = rose
                .iter()
                .map(|(i, _)| {
                    crate::labels::COCO_LABELS
                        .get(*i)
                        .map_or_else(|| format!("class {i}"), |l| l.to_string())
                })
                .collect();
            format!(
                "more {} than usual here at this time of day",
                names.join(", ")
            )
        };
        let alerts = self
            .lifecycle
            .on_clip(&obs, new_id)
            .into_iter()
            .map(|a| self.retag(a, score, &what, clip_wall))
            .collect();
        (alerts, scored.unusualness)
    }

    /// Ends an open alert (the stream ended).
    pub fn finish(&mut self) -> Option<super::rules::Alert> {
        let a = self.lifecycle.finish()?;
        let score = a.score;
        Some(self.retag(a, score, "", None))
    }

    /// A prompt-lifecycle message as an unusual-scene one: its kind, rule and summary. `clip_wall`: wall-clock
    /// time of the message's clip's first frame.
    fn retag(
        &self,
        mut a: super::rules::Alert,
        score: f32,
        what: &str,
        clip_wall: Option<chrono::DateTime<chrono::Utc>>,
    ) -> super::rules::Alert {
        use super::rules::{display_name, AlertType};
        a.kind = "unusual";
        a.rule = "unusual".into();
        a.label = "unusual".into();
        a.prompt = None;
        a.parts = None;
        a.unusual_score = Some((score * 1000.0).round() / 1000.0);
        let cam = display_name(&self.camera);
        let note = self.clock.note();
        // the wall-clock times are the alert's own (machine fields, RFC 3339 UTC, written by the lifecycle)
        let wall = |rfc: Option<&str>| {
            rfc.and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&chrono::Utc))
        };
        let at = |pts: f64, wall: Option<chrono::DateTime<chrono::Utc>>| match wall {
            Some(w) => self.clock.at(pts, w),
            None => super::rules::stream_clock(pts),
        };
        a.summary = match a.kind_of_message {
            AlertType::New | AlertType::Update => format!(
                "{cam}: an unusual scene at {}{note}: {what} (further from normal than {:.1} % of its recent clips).",
                at(a.clip.stream_start, clip_wall),
                score * 100.0
            ),
            AlertType::End => format!(
                "{cam}: an unusual scene from {} to {}{note}.",
                at(a.stream_start, wall(Some(&a.started_at))),
                at(a.stream_end.unwrap_or(a.stream_start), wall(a.ended_at.as_deref()))
            ),
        };
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (no rand dependency in the library).
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> f32 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((self.0 >> 33) as f32 / (1u64 << 31) as f32) - 0.5
        }
    }

    /// Around `centre` with noise of size `noise`.
    fn around(centre: &[f32], noise: f32, g: &mut Lcg) -> Vec<f32> {
        centre.iter().map(|c| c + noise * g.next()).collect()
    }

    fn learning(warmup: u64) -> Learning {
        Learning {
            k: 3,
            hours_per_bucket: 12,
            min_rate: 0.01,
            history: 500,
            warmup_clips: warmup,
        }
    }

    #[test]
    fn normal_clips_rank_low_and_a_different_scene_ranks_top() {
        let mut g = Lcg(7);
        let day = vec![1.0, 0.2, 0.0, 0.0];
        let other = vec![0.0, 0.0, 1.0, 0.3];
        let mut b = Baseline::new(learning(50), 4);
        let mut last = None;
        for _ in 0..300 {
            last = b.observe(14, &around(&day, 0.1, &mut g), &[0.0, 0.0]);
        }
        let normal = last.and_then(|s| s.unusualness).expect("warmed up");
        assert!(normal < 0.99, "an ordinary clip: {normal}");
        let odd = b
            .observe(14, &around(&other, 0.1, &mut g), &[0.9, 0.0])
            .and_then(|s| s.unusualness)
            .expect("warmed up");
        assert_eq!(odd, 1.0, "further than every recent clip");
        // and it says what rose: class 0 (0.9 against a mean near 0)
        let rose = b.what_rose(b.bucket_of(14), &[0.9, 0.0], 0.2, 3);
        assert_eq!(rose.first().map(|r| r.0), Some(0), "{rose:?}");
    }

    #[test]
    fn no_rank_during_warm_up_and_buckets_are_separate() {
        let mut g = Lcg(3);
        let night = vec![0.0, 1.0, 0.0, 0.0];
        let day = vec![1.0, 0.0, 0.0, 0.0];
        let mut b = Baseline::new(learning(20), 4);
        for i in 0..20 {
            let s = b
                .observe(2, &around(&night, 0.05, &mut g), &[])
                .expect("scored");
            assert_eq!(s.unusualness, None, "clip {i} is in the warm-up");
        }
        // the day bucket knows nothing yet: its first clips are in their own warm-up, not unusual against night
        let s = b.observe(14, &day, &[]).expect("scored");
        assert_eq!(s.unusualness, None);
        assert_ne!(b.bucket_of(2), b.bucket_of(14));
        // the night bucket, now warm, finds a night clip ordinary
        let s = b
            .observe(3, &around(&night, 0.05, &mut g), &[])
            .expect("scored");
        assert!(s.unusualness.is_some_and(|u| u < 1.0), "{s:?}");
    }

    #[test]
    fn a_feature_of_another_length_is_refused_and_learns_nothing() {
        let mut b = Baseline::new(learning(0), 4);
        assert_eq!(b.observe(0, &[1.0, 0.0], &[]), None);
        assert!(b.buckets.iter().all(|k| k.seen == 0));
    }

    #[test]
    fn a_slow_change_of_scene_is_followed() {
        // the scene drifts from A to B over many clips: at the end B is normal, not unusual
        let mut g = Lcg(11);
        let mut b = Baseline::new(learning(50), 2);
        let mut last = 0.0;
        for i in 0..2000 {
            let t = (i as f32 / 2000.0).min(1.0);
            let x = [1.0 - t, t];
            last = b
                .observe(12, &around(&x, 0.05, &mut g), &[])
                .and_then(|s| s.unusualness)
                .unwrap_or(0.0);
        }
        assert!(last < 0.99, "after the drift: {last}");
    }

    #[test]
    fn survives_a_json_round_trip() {
        let mut b = Baseline::new(learning(0), 2);
        b.observe(5, &[1.0, 0.0], &[0.5]);
        let j = serde_json::to_string(&b).expect("json");
        let back: Baseline = serde_json::from_str(&j).expect("parse");
        assert_eq!(back, b);
    }

    #[test]
    fn rank_counts_strictly_smaller() {
        let r: std::collections::VecDeque<f32> = [0.1, 0.2, 0.3, 0.4].into();
        assert_eq!(rank(&r, 0.25), 0.5);
        assert_eq!(rank(&r, 0.05), 0.0);
        assert_eq!(rank(&r, 1.0), 1.0);
        assert_eq!(rank(&Default::default(), 1.0), 0.0);
    }
}
