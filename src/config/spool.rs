//! `[spool]`: the disk spool where alerts and summaries wait for the broker's acknowledgement (see
//! `publish::spool`).

use std::path::PathBuf;

use serde::Deserialize;

use super::{mb_to_bytes, Checks};

/// Where undelivered alerts and summaries wait for the broker (see `publish::spool`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SpoolConfig {
    /// The spool file. Unset: `$STATE_DIRECTORY/spool.redb` under systemd, else `/var/lib/scenewatch/spool.redb`.
    /// A relative path is relative to the config file.
    pub path: Option<PathBuf>,
    /// Size cap of stored messages; beyond it the oldest summaries, then the oldest alerts, are evicted.
    pub max_mb: f64,
}

impl Default for SpoolConfig {
    fn default() -> Self {
        Self {
            path: None,
            max_mb: 256.0,
        }
    }
}

impl SpoolConfig {
    pub fn resolved_path(&self) -> PathBuf {
        match &self.path {
            Some(p) => p.clone(),
            None => std::env::var_os("STATE_DIRECTORY")
                .and_then(|d| std::env::split_paths(&d).next())
                .unwrap_or_else(|| PathBuf::from("/var/lib/scenewatch"))
                .join("spool.redb"),
        }
    }
    pub fn max_bytes(&self) -> u64 {
        mb_to_bytes(self.max_mb)
    }

    pub(super) fn validate(&self, c: &mut Checks) {
        c.range("spool.max_mb", self.max_mb, 0.01, 1_048_576.0);
    }
}
