//! `[summaries]`: the plain-English period summaries of the events stage.

use serde::Deserialize;

use super::Checks;

/// Plain-English period summaries on `<prefix>/<camera>/summary`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SummariesConfig {
    pub enabled: bool,
    /// Period length (stream time); a period in which nothing was seen is skipped.
    pub period_minutes: f64,
}

impl Default for SummariesConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            period_minutes: 5.0,
        }
    }
}

impl SummariesConfig {
    pub(super) fn validate(&self, c: &mut Checks) {
        c.above("summaries.period_minutes", self.period_minutes, 0.0, 1440.0);
    }
}
