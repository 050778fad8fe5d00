//! `[shutdown]`: the longest wait for the broker's acknowledgements when the daemon drains.

use std::time::Duration;

use serde::Deserialize;

use super::{seconds, Checks, Problem};

/// Drain on SIGTERM / end of all streams.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ShutdownConfig {
    /// Longest wait for queued messages to be acknowledged by the broker before exiting anyway: what is left stays
    /// in the spool for the next start (exit 0); exit 3 only when messages could not even be spooled.
    pub drain_timeout_secs: f64,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        Self {
            drain_timeout_secs: 30.0,
        }
    }
}

impl ShutdownConfig {
    /// The longest wait for the broker's acknowledgements at shutdown.
    pub fn drain_timeout(&self) -> Result<Duration, Problem> {
        seconds("shutdown.drain_timeout_secs", self.drain_timeout_secs)
    }

    pub(super) fn validate(&self, c: &mut Checks) {
        c.range(
            "shutdown.drain_timeout_secs",
            self.drain_timeout_secs,
            0.0,
            3600.0,
        );
    }

    pub(super) fn dry_build(&self, c: &mut Checks) {
        c.keep(self.drain_timeout().and_then(|d| {
            // the publisher's deadline is `now + drain_timeout`
            std::time::Instant::now()
                .checked_add(d)
                .map(drop)
                .ok_or_else(|| {
                    Problem::new("shutdown.drain_timeout_secs", "is too long to wait for")
                })
        }));
    }
}
