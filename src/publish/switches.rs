//! Runtime switches that survive a restart: detection on/off and disarmed rules per camera, set by MQTT commands
//! and kept in a table of the spool's redb file (one crash-safe store, one file to back up). The control stage
//! writes a camera's switches after each command; a camera started (at start-up or by a reload) and the events
//! engine read them back. A rule or camera no longer in the config forgets its switches (pruned when the camera is
//! built, at start and by a reload), as the events engine does, so the two never disagree.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{Database, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use super::spool::SpoolError;

const SWITCHES: TableDefinition<&str, &[u8]> = TableDefinition::new("switches");

/// One camera's switches. The default (detect on, nothing disarmed) is what a camera without a stored row gets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CameraSwitches {
    pub detect: bool,
    /// Rule names (labels or prompt texts) switched off.
    #[serde(default)]
    pub disarmed: BTreeSet<String>,
}

impl Default for CameraSwitches {
    fn default() -> Self {
        Self {
            detect: true,
            disarmed: BTreeSet::new(),
        }
    }
}

impl CameraSwitches {
    /// The switches that apply to a camera whose rules are `rules` (disarmed rules it no longer has are dropped).
    pub fn for_rules(&self, rules: &[String]) -> Self {
        Self {
            detect: self.detect,
            disarmed: self
                .disarmed
                .iter()
                .filter(|r| rules.contains(r))
                .cloned()
                .collect(),
        }
    }
}

/// Reads and writes the `switches` table. Cheap to clone; every call is one redb transaction (blocking: call it
/// from a blocking context or accept a short fsync on the runtime for these rare writes).
#[derive(Clone)]
pub struct SwitchStore {
    db: Arc<Database>,
    path: PathBuf,
}

impl std::fmt::Debug for SwitchStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SwitchStore({})", self.path.display())
    }
}

impl SwitchStore {
    pub(super) fn new(db: Arc<Database>, path: &Path) -> Result<Self, SpoolError> {
        let s = Self {
            db,
            path: path.to_path_buf(),
        };
        // create the table, so reads never meet "table does not exist"
        let w = s.db.begin_write().map_err(|e| s.err(e))?;
        w.open_table(SWITCHES).map_err(|e| s.err(e))?;
        w.commit().map_err(|e| s.err(e))?;
        Ok(s)
    }

    /// A store of its own in `path` (tests, and tools that read the switches without the daemon).
    pub fn open(path: &Path) -> Result<Self, SpoolError> {
        let db = Database::create(path).map_err(|e| SpoolError {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        Self::new(Arc::new(db), path)
    }

    fn err(&self, e: impl std::fmt::Display) -> SpoolError {
        SpoolError {
            path: self.path.clone(),
            message: format!("switches: {e}"),
        }
    }

    /// Every stored camera's switches. A row that does not decode (written by a newer version) is skipped with a
    /// warning: the camera starts with the defaults rather than not at all.
    pub fn load_all(&self) -> Result<HashMap<String, CameraSwitches>, SpoolError> {
        let r = self.db.begin_read().map_err(|e| self.err(e))?;
        let t = r.open_table(SWITCHES).map_err(|e| self.err(e))?;
        let mut out = HashMap::new();
        for row in t.iter().map_err(|e| self.err(e))? {
            let (k, v) = row.map_err(|e| self.err(e))?;
            match serde_json::from_slice::<CameraSwitches>(v.value()) {
                Ok(s) => {
                    out.insert(k.value().to_string(), s);
                }
                Err(e) => {
                    tracing::warn!(camera = k.value(), error = %e, "ignoring stored switches that do not decode")
                }
            }
        }
        Ok(out)
    }

    /// One camera's switches (the defaults when none are stored).
    pub fn load(&self, camera: &str) -> Result<CameraSwitches, SpoolError> {
        let r = self.db.begin_read().map_err(|e| self.err(e))?;
        let t = r.open_table(SWITCHES).map_err(|e| self.err(e))?;
        let got = t.get(camera).map_err(|e| self.err(e))?;
        Ok(got
            .and_then(|v| serde_json::from_slice(v.value()).ok())
            .unwrap_or_default())
    }

    /// Stores `camera`'s switches durably (on disk when this returns). The defaults delete the row.
    pub fn save(&self, camera: &str, s: &CameraSwitches) -> Result<(), SpoolError> {
        let w = self.db.begin_write().map_err(|e| self.err(e))?;
        {
            let mut t = w.open_table(SWITCHES).map_err(|e| self.err(e))?;
            if *s == CameraSwitches::default() {
                t.remove(camera).map_err(|e| self.err(e))?;
            } else {
                let bytes = serde_json::to_vec(s).map_err(|e| self.err(e))?;
                t.insert(camera, bytes.as_slice())
                    .map_err(|e| self.err(e))?;
            }
        }
        w.commit().map_err(|e| self.err(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn switches_survive_reopening_and_defaults_delete_the_row() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("spool.redb");
        {
            let spool = super::super::spool::Spool::open(&path, 1 << 20).expect("spool");
            let store = spool.switches().expect("store");
            let mut s = CameraSwitches {
                detect: false,
                ..Default::default()
            };
            s.disarmed.insert("person".into());
            store.save("gate", &s).expect("save");
            store
                .save("yard", &CameraSwitches::default())
                .expect("save");
        }
        let spool = super::super::spool::Spool::open(&path, 1 << 20).expect("reopen");
        let store = spool.switches().expect("store");
        let all = store.load_all().expect("load");
        assert_eq!(all.len(), 1, "defaults are not stored: {all:?}");
        let gate = store.load("gate").expect("gate");
        assert!(!gate.detect);
        assert_eq!(
            gate.for_rules(&["vehicle".into()]).disarmed.len(),
            0,
            "rules the camera lost do not apply"
        );
        assert_eq!(store.load("nope").expect("nope"), CameraSwitches::default());
        store
            .save("gate", &CameraSwitches::default())
            .expect("reset");
        assert!(store.load_all().expect("load").is_empty());
    }
}
