//! The motion gate: a cheap "did anything move?" per sampled frame, so a camera can skip the models on clips
//! where nothing did (Frigate's approach: frame differencing against a running-average background on a small
//! grey thumbnail). Pure functions over byte buffers; the camera's pipeline calls it, the clip assembler reads it.

/// Thumbnail width: large enough for a person 20 px wide in a 768 px frame to cover a few cells, small enough
/// to cost microseconds.
pub const THUMB_W: usize = 64;

/// Tuning of the gate (`[[cameras]] motion_*` keys).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MotionParams {
    /// A thumbnail pixel moved when it differs from the background by more than this (0–255 grey levels).
    pub pixel_threshold: u8,
    /// The frame moved when at least this fraction of its thumbnail pixels did.
    pub min_area: f32,
    /// Background update weight per sampled frame (0–1): higher forgets a parked car sooner.
    pub alpha: f32,
}

impl Default for MotionParams {
    fn default() -> Self {
        Self {
            pixel_threshold: 25,
            min_area: 0.003,
            alpha: 0.2,
        }
    }
}

/// Grey thumbnail (`THUMB_W` wide, height by aspect) of a packed RGB frame, each cell the mean of its block.
pub fn thumbnail(rgb: &[u8], w: u32, h: u32) -> (Vec<u8>, usize) {
    let (w, h) = (w.max(1) as usize, h.max(1) as usize);
    let tw = THUMB_W.min(w);
    let th = ((h * tw) / w).max(1);
    let mut sums = vec![0u32; tw * th];
    let mut counts = vec![0u32; tw * th];
    for (y, row) in rgb.chunks_exact(w * 3).take(h).enumerate() {
        let ty = (y * th / h) * tw;
        for (x, px) in row.chunks_exact(3).enumerate() {
            let i = ty + x * tw / w;
            // integer luma (BT.601)
            sums[i] += (77 * px[0] as u32 + 150 * px[1] as u32 + 29 * px[2] as u32) >> 8;
            counts[i] += 1;
        }
    }
    let thumb = sums
        .iter()
        .zip(&counts)
        .map(|(s, c)| (s / (*c).max(1)) as u8)
        .collect();
    (thumb, tw)
}

/// One camera's gate: the running background and the last verdict.
#[derive(Debug, Clone, Default)]
pub struct MotionGate {
    params: MotionParams,
    background: Vec<f32>,
}

impl MotionGate {
    pub fn new(params: MotionParams) -> Self {
        Self {
            params,
            background: Vec::new(),
        }
    }

    /// The fraction of `thumb` that moved against the background (1.0 for the first frame or a size change,
    /// so the first clip is always inferred), then folds `thumb` into the background.
    pub fn moved_fraction(&mut self, thumb: &[u8]) -> f32 {
        if self.background.len() != thumb.len() || thumb.is_empty() {
            self.background = thumb.iter().map(|v| *v as f32).collect();
            return 1.0;
        }
        let t = self.params.pixel_threshold as f32;
        let a = self.params.alpha;
        let mut moved = 0usize;
        for (bg, v) in self.background.iter_mut().zip(thumb) {
            let v = *v as f32;
            if (v - *bg).abs() > t {
                moved += 1;
            }
            *bg += a * (v - *bg);
        }
        moved as f32 / thumb.len() as f32
    }

    /// Whether the frame moved enough to be worth the models.
    pub fn moved(&mut self, thumb: &[u8]) -> bool {
        self.moved_fraction(thumb) >= self.params.min_area
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(w: usize, h: usize, grey: u8) -> Vec<u8> {
        vec![grey; w * h * 3]
    }

    /// Paints a `s`×`s` white square at (x, y).
    fn with_square(mut f: Vec<u8>, w: usize, x: usize, y: usize, s: usize) -> Vec<u8> {
        for yy in y..y + s {
            for xx in x..x + s {
                let i = (yy * w + xx) * 3;
                f[i..i + 3].copy_from_slice(&[255, 255, 255]);
            }
        }
        f
    }

    #[test]
    fn thumbnail_averages_blocks_and_keeps_the_aspect() {
        let (t, tw) = thumbnail(&frame(768, 576, 100), 768, 576);
        assert_eq!((tw, t.len()), (64, 64 * 48));
        assert!(t.iter().all(|v| (99..=100).contains(v)), "{:?}", &t[..4]);
        // frames smaller than the thumbnail are not upscaled
        let (t, tw) = thumbnail(&frame(32, 16, 7), 32, 16);
        assert_eq!((tw, t.len()), (32, 32 * 16));
        // a short buffer is read as far as it goes, no panic
        let (t, _) = thumbnail(&[1, 2, 3], 768, 576);
        assert_eq!(t.len(), 64 * 48);
    }

    #[test]
    fn a_still_scene_does_not_move_and_a_walker_does() {
        let (w, h) = (768, 576);
        let mut gate = MotionGate::new(MotionParams::default());
        let still = frame(w, h, 90);
        let (t, _) = thumbnail(&still, w as u32, h as u32);
        assert!(gate.moved(&t), "the first frame always counts as motion");
        for _ in 0..5 {
            assert!(!gate.moved(&t));
        }
        // sensor noise of a few grey levels everywhere is not motion
        let noisy: Vec<u8> = still
            .iter()
            .enumerate()
            .map(|(i, v)| v + (i % 5) as u8)
            .collect();
        let (t, _) = thumbnail(&noisy, w as u32, h as u32);
        assert!(!gate.moved(&t));
        // a person-sized object (40×100 px of 768×576) appearing is
        let walker = with_square(still.clone(), w, 300, 200, 40);
        let walker = with_square(walker, w, 300, 240, 40);
        let (t, _) = thumbnail(&walker, w as u32, h as u32);
        assert!(
            gate.moved_fraction(&t) > 0.003,
            "{}",
            gate.moved_fraction(&t)
        );
    }

    #[test]
    fn a_new_still_object_becomes_background() {
        let (w, h) = (320, 240);
        let mut gate = MotionGate::new(MotionParams::default());
        let (empty, _) = thumbnail(&frame(w, h, 50), w as u32, h as u32);
        gate.moved(&empty);
        let (parked, _) = thumbnail(
            &with_square(frame(w, h, 50), w, 100, 100, 60),
            w as u32,
            h as u32,
        );
        assert!(gate.moved(&parked), "arrives");
        // it stops moving: after some frames the background has absorbed it
        let still_after = (0..30).map(|_| gate.moved(&parked)).position(|m| !m);
        assert!(matches!(still_after, Some(n) if n < 20), "{still_after:?}");
    }
}
