//! Picks frames at `sample_fps` by stream time (not arrival time), so a file read faster than real time is
//! sampled exactly as it would be live. Pure.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Sampler {
    interval: Duration,
    next_due: Option<Duration>,
}

/// Timestamps jitter by a few µs–ms between containers (e.g. 0.4999 s for 0.5 s); without this slack a 10 fps
/// stream sampled at 2 fps would alternate between every 5th and every 6th frame.
pub const SLACK: Duration = Duration::from_millis(2);

impl Sampler {
    pub fn new(sample_fps: f64) -> Self {
        let fps = if sample_fps > 0.0 { sample_fps } else { 1.0 };
        Self {
            interval: Duration::from_secs_f64(1.0 / fps),
            next_due: None,
        }
    }

    /// Whether [`Self::accept`] would keep the frame at `pts` (without counting it).
    pub fn would_accept(&self, pts: Duration) -> bool {
        self.next_due.is_none_or(|due| pts + SLACK >= due)
    }

    /// When the next kept frame is due (None before the first).
    pub fn next_due(&self) -> Option<Duration> {
        self.next_due
    }

    /// Whether the frame at `pts` is kept.
    pub fn accept(&mut self, pts: Duration) -> bool {
        match self.next_due {
            None => {
                self.next_due = Some(pts + self.interval);
                true
            }
            Some(due) if pts + SLACK >= due => {
                let mut next = due + self.interval;
                // after a gap (stall, seek, discontinuity) restart the grid at this frame instead of bursting
                if next <= pts {
                    next = pts + self.interval;
                }
                self.next_due = Some(next);
                true
            }
            Some(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept(fps_in: f64, fps_out: f64, secs: f64) -> Vec<u64> {
        let mut s = Sampler::new(fps_out);
        let n = (fps_in * secs) as u64;
        (0..n)
            .filter(|i| s.accept(Duration::from_secs_f64(*i as f64 / fps_in)))
            .collect()
    }

    #[test]
    fn ten_fps_sampled_at_two_keeps_every_fifth_frame() {
        assert_eq!(kept(10.0, 2.0, 3.0), vec![0, 5, 10, 15, 20, 25]);
    }

    #[test]
    fn ntsc_rate_keeps_the_requested_rate() {
        let k = kept(29.97, 2.0, 60.0);
        assert!((119..=121).contains(&k.len()), "{}", k.len());
    }

    #[test]
    fn slightly_early_timestamps_still_count() {
        let mut s = Sampler::new(2.0);
        assert!(s.accept(Duration::ZERO));
        assert!(s.accept(Duration::from_micros(499_900)));
    }

    #[test]
    fn a_gap_restarts_the_grid_without_a_burst() {
        let mut s = Sampler::new(2.0);
        assert!(s.accept(Duration::from_secs(0)));
        assert!(s.accept(Duration::from_secs(10)));
        assert!(!s.accept(Duration::from_millis(10_100)));
        assert!(s.accept(Duration::from_millis(10_500)));
    }

    #[test]
    fn input_slower_than_the_sample_rate_keeps_everything() {
        assert_eq!(kept(1.0, 2.0, 5.0).len(), 5);
    }
}
