//! The delivery spool: every message that must not be lost (alerts, summaries) is written to disk before it is
//! published and removed only after the broker's PUBACK, so it survives a broker outage of any length and a
//! crash or SIGKILL of the daemon (it is re-sent on the next start).
//!
//! Storage is redb (a pure-Rust, crash-safe embedded key–value store with ACID transactions) rather than a
//! home-made log: a torn write after a power cut is redb's problem, which it solves with copy-on-write pages and
//! checksummed commits. Keys are a global insertion counter, so reading in key order replays messages in the
//! order they were raised, which keeps per-camera order.
//!
//! **Sequence numbers.** Each spooled topic (one per camera's alerts) has a counter stored in the same database.
//! The `seq` field is added to the JSON payload in the same write transaction that stores the message, so the
//! numbering and the stored messages cannot disagree after a crash: a consumer that sees seq 7 then 9 knows it
//! missed exactly one message.
//!
//! **When full** (`spool.max_mb`): the oldest summaries go first, then the oldest alerts; each eviction is counted
//! and logged, and shows to consumers as a gap in `seq`. A new message is always stored.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use redb::{Database, ReadableTable, TableDefinition};

use super::{MsgClass, OutMsg};

const MESSAGES: TableDefinition<u64, &[u8]> = TableDefinition::new("messages");
const SEQS: TableDefinition<&str, u64> = TableDefinition::new("seqs");

/// A spool operation failed; names the spool file.
#[derive(Debug, thiserror::Error)]
#[error("spool {path}: {message}")]
pub struct SpoolError {
    pub path: PathBuf,
    pub message: String,
}

/// What `append` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    pub id: u64,
    /// The sequence number written into the payload.
    pub seq: u64,
    /// Older messages evicted to stay under the size cap: (summaries, alerts).
    pub evicted: (u64, u64),
}

pub struct Spool {
    /// Shared with the [`super::switches::SwitchStore`], which keeps its own table in the same file.
    db: std::sync::Arc<Database>,
    path: PathBuf,
    max_bytes: u64,
    next_id: u64,
    /// id → (stored size, class), in memory so the size cap can be enforced without reading messages.
    index: std::collections::BTreeMap<u64, (u64, MsgClass)>,
    bytes: u64,
    seqs: HashMap<String, u64>,
}

impl Spool {
    /// Opens (or creates) the spool file. Leftover messages from a previous run stay and are returned by
    /// [`Spool::pending`] in their original order.
    pub fn open(path: &Path, max_bytes: u64) -> Result<Self, SpoolError> {
        let err = |e: &dyn std::fmt::Display| SpoolError {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| err(&format!("cannot create directory: {e}")))?;
        }
        let db = Database::create(path).map_err(|e| err(&e))?;
        // make sure both tables exist, so read transactions never see "table does not exist"
        let w = db.begin_write().map_err(|e| err(&e))?;
        {
            w.open_table(MESSAGES).map_err(|e| err(&e))?;
            w.open_table(SEQS).map_err(|e| err(&e))?;
        }
        w.commit().map_err(|e| err(&e))?;
        let mut spool = Self {
            db: std::sync::Arc::new(db),
            path: path.to_path_buf(),
            max_bytes,
            next_id: 1,
            index: Default::default(),
            bytes: 0,
            seqs: HashMap::new(),
        };
        let r = spool.db.begin_read().map_err(|e| err(&e))?;
        let msgs = r.open_table(MESSAGES).map_err(|e| err(&e))?;
        for row in msgs.iter().map_err(|e| err(&e))? {
            let (k, v) = row.map_err(|e| err(&e))?;
            let (id, bytes) = (k.value(), v.value());
            let class = decode(bytes).map(|m| m.class).unwrap_or(MsgClass::Alert);
            spool.index.insert(id, (bytes.len() as u64, class));
            spool.bytes += bytes.len() as u64;
            spool.next_id = spool.next_id.max(id + 1);
        }
        let seqs = r.open_table(SEQS).map_err(|e| err(&e))?;
        for row in seqs.iter().map_err(|e| err(&e))? {
            let (k, v) = row.map_err(|e| err(&e))?;
            spool.seqs.insert(k.value().to_string(), v.value());
        }
        Ok(spool)
    }

    fn err(&self, e: impl std::fmt::Display) -> SpoolError {
        SpoolError {
            path: self.path.clone(),
            message: e.to_string(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The runtime switches kept in the same database file (redb allows one open handle per file).
    pub fn switches(&self) -> Result<super::switches::SwitchStore, SpoolError> {
        super::switches::SwitchStore::new(self.db.clone(), &self.path)
    }

    /// Messages waiting for a PUBACK.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Bytes of stored messages (not the file size, which redb grows in pages).
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Ids of stored messages, oldest first.
    pub fn pending(&self) -> Vec<u64> {
        self.index.keys().copied().collect()
    }

    /// The next sequence number `topic` would get (for messages that could not be spooled).
    pub fn next_seq(&mut self, topic: &str) -> u64 {
        let s = self.seqs.entry(topic.to_string()).or_insert(0);
        *s += 1;
        *s
    }

    /// Stores `msg` with the next `seq` of its topic written into its JSON payload; returns its id. Evicts the
    /// oldest messages (summaries first) when over the size cap. The message is on disk when this returns.
    pub fn append(&mut self, msg: &OutMsg) -> Result<Appended, SpoolError> {
        let seq = self.seqs.get(&msg.topic).copied().unwrap_or(0) + 1;
        let stored = OutMsg {
            payload: with_seq(&msg.payload, seq),
            ..msg.clone()
        };
        let bytes = encode(&stored);
        let size = bytes.len() as u64;
        let victims = plan_evictions(&self.index, self.bytes, size, self.max_bytes);
        let id = self.next_id;
        let w = self.db.begin_write().map_err(|e| self.err(e))?;
        {
            let mut msgs = w.open_table(MESSAGES).map_err(|e| self.err(e))?;
            for v in &victims {
                msgs.remove(*v).map_err(|e| self.err(e))?;
            }
            msgs.insert(id, bytes.as_slice()).map_err(|e| self.err(e))?;
            let mut seqs = w.open_table(SEQS).map_err(|e| self.err(e))?;
            seqs.insert(msg.topic.as_str(), seq)
                .map_err(|e| self.err(e))?;
        }
        w.commit().map_err(|e| self.err(e))?;
        // only now, with the commit on disk, does the in-memory view change
        let mut evicted = (0, 0);
        for v in victims {
            if let Some((n, class)) = self.index.remove(&v) {
                self.bytes -= n;
                match class {
                    MsgClass::Alert => evicted.1 += 1,
                    _ => evicted.0 += 1,
                }
            }
        }
        self.next_id += 1;
        self.index.insert(id, (size, msg.class));
        self.bytes += size;
        self.seqs.insert(msg.topic.clone(), seq);
        Ok(Appended { id, seq, evicted })
    }

    /// The stored message `id`, or None when it was evicted or already acknowledged.
    pub fn get(&self, id: u64) -> Result<Option<OutMsg>, SpoolError> {
        if !self.index.contains_key(&id) {
            return Ok(None);
        }
        let r = self.db.begin_read().map_err(|e| self.err(e))?;
        let msgs = r.open_table(MESSAGES).map_err(|e| self.err(e))?;
        let got = msgs.get(id).map_err(|e| self.err(e))?;
        Ok(got.and_then(|v| decode(v.value())))
    }

    /// Forgets `id` (its PUBACK arrived).
    pub fn remove(&mut self, id: u64) -> Result<(), SpoolError> {
        let Some(&(n, _)) = self.index.get(&id) else {
            return Ok(());
        };
        let mut w = self.db.begin_write().map_err(|e| self.err(e))?;
        // an acknowledged message that is re-sent after a crash is a harmless duplicate (ids and seq let
        // consumers drop it), so this commit need not wait for the disk
        w.set_durability(redb::Durability::Eventual);
        {
            let mut msgs = w.open_table(MESSAGES).map_err(|e| self.err(e))?;
            msgs.remove(id).map_err(|e| self.err(e))?;
        }
        w.commit().map_err(|e| self.err(e))?;
        self.index.remove(&id);
        self.bytes -= n;
        Ok(())
    }
}

/// Which stored messages to evict so that `incoming` more bytes fit under `max`: oldest summaries first, then
/// oldest alerts. Never evicts everything for one oversized message beyond what is needed.
pub fn plan_evictions(
    index: &std::collections::BTreeMap<u64, (u64, MsgClass)>,
    used: u64,
    incoming: u64,
    max: u64,
) -> Vec<u64> {
    let mut over = (used + incoming).saturating_sub(max);
    let mut out = Vec::new();
    for pass in [MsgClass::Summary, MsgClass::Alert] {
        for (&id, &(n, class)) in index {
            if over == 0 {
                return out;
            }
            if class == pass {
                out.push(id);
                over = over.saturating_sub(n);
            }
        }
    }
    out
}

/// Writes `"seq":N` as the first field of a JSON object payload; other payloads are returned unchanged.
pub fn with_seq(payload: &[u8], seq: u64) -> Vec<u8> {
    let start = payload.iter().position(|b| !b.is_ascii_whitespace());
    let Some(i) = start.filter(|&i| payload[i] == b'{') else {
        return payload.to_vec();
    };
    let rest = &payload[i + 1..];
    let empty = rest.iter().all(|b| b.is_ascii_whitespace() || *b == b'}');
    let mut out = format!("{{\"seq\":{seq}").into_bytes();
    if !empty {
        out.push(b',');
    }
    out.extend_from_slice(rest);
    out
}

/// Record layout: class (1 byte), retain (1 byte), topic length (u32 LE), topic, payload.
fn encode(m: &OutMsg) -> Vec<u8> {
    let mut out = Vec::with_capacity(6 + m.topic.len() + m.payload.len());
    out.push(match m.class {
        MsgClass::Alert => 0,
        MsgClass::Summary => 1,
        MsgClass::Retained => 2,
        MsgClass::Transient => 3,
    });
    out.push(m.retain as u8);
    out.extend_from_slice(&(m.topic.len() as u32).to_le_bytes());
    out.extend_from_slice(m.topic.as_bytes());
    out.extend_from_slice(&m.payload);
    out
}

fn decode(b: &[u8]) -> Option<OutMsg> {
    let class = match *b.first()? {
        0 => MsgClass::Alert,
        1 => MsgClass::Summary,
        2 => MsgClass::Retained,
        3 => MsgClass::Transient,
        _ => return None,
    };
    let retain = *b.get(1)? != 0;
    let n = u32::from_le_bytes(b.get(2..6)?.try_into().ok()?) as usize;
    let topic = std::str::from_utf8(b.get(6..6 + n)?).ok()?.to_string();
    let payload = b.get(6 + n..)?.to_vec();
    Some(OutMsg {
        topic,
        payload,
        retain,
        class,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(topic: &str, body: &str) -> OutMsg {
        OutMsg::alert(topic.into(), body.as_bytes().to_vec())
    }

    fn body(s: &Spool, id: u64) -> String {
        let m = s
            .get(id)
            .ok()
            .flatten()
            .map(|m| m.payload)
            .unwrap_or_default();
        String::from_utf8_lossy(&m).to_string()
    }

    #[test]
    fn seq_goes_first_in_the_object() {
        assert_eq!(with_seq(br#"{"a":1}"#, 7), br#"{"seq":7,"a":1}"#.to_vec());
        assert_eq!(with_seq(b" {}", 1), br#"{"seq":1}"#.to_vec());
        assert_eq!(with_seq(b"online", 1), b"online".to_vec());
    }

    #[test]
    fn records_round_trip() {
        for m in [
            alert("p/cam/alerts", "{}"),
            OutMsg::retained("p/x".into(), vec![0, 1, 2]),
        ] {
            let d = decode(&encode(&m)).map(|d| (d.topic, d.payload, d.retain, d.class));
            assert_eq!(d, Some((m.topic, m.payload, m.retain, m.class)));
        }
        assert!(decode(&[9, 0]).is_none());
        assert!(decode(&[0, 0, 255, 255, 0, 0]).is_none());
    }

    #[test]
    fn survives_reopen_in_order_with_seq_continuing() -> Result<(), SpoolError> {
        let dir = tempfile::tempdir().map_err(|e| SpoolError {
            path: PathBuf::new(),
            message: e.to_string(),
        })?;
        let path = dir.path().join("spool.redb");
        {
            let mut s = Spool::open(&path, 1 << 20)?;
            for i in 0..3 {
                s.append(&alert("p/a/alerts", &format!("{{\"n\":{i}}}")))?;
            }
            s.append(&alert("p/b/alerts", "{}"))?;
            s.remove(1)?;
        }
        let mut s = Spool::open(&path, 1 << 20)?;
        assert_eq!(s.pending(), vec![2, 3, 4]);
        assert_eq!(body(&s, 2), r#"{"seq":2,"n":1}"#);
        assert_eq!(body(&s, 4), r#"{"seq":1}"#);
        let a = s.append(&alert("p/a/alerts", "{}"))?;
        assert_eq!((a.id, a.seq), (5, 4));
        Ok(())
    }

    #[test]
    fn summaries_are_evicted_before_alerts() {
        let mut idx = std::collections::BTreeMap::new();
        idx.insert(1, (100, MsgClass::Alert));
        idx.insert(2, (100, MsgClass::Summary));
        idx.insert(3, (100, MsgClass::Alert));
        idx.insert(4, (100, MsgClass::Summary));
        assert_eq!(plan_evictions(&idx, 400, 50, 1000), Vec::<u64>::new());
        assert_eq!(plan_evictions(&idx, 400, 100, 450), vec![2]);
        assert_eq!(plan_evictions(&idx, 400, 250, 450), vec![2, 4]);
        assert_eq!(plan_evictions(&idx, 400, 300, 450), vec![2, 4, 1]);
    }

    #[test]
    fn cap_evicts_oldest_and_counts() -> Result<(), SpoolError> {
        let dir = tempfile::tempdir().map_err(|e| SpoolError {
            path: PathBuf::new(),
            message: e.to_string(),
        })?;
        let mut s = Spool::open(&dir.path().join("s.redb"), 400)?;
        let big = format!("{{\"x\":\"{}\"}}", "a".repeat(100));
        let mut evicted = (0, 0);
        for _ in 0..6 {
            let a = s.append(&alert("p/a/alerts", &big))?;
            evicted.0 += a.evicted.0;
            evicted.1 += a.evicted.1;
        }
        assert!(s.bytes() <= 400, "{} bytes", s.bytes());
        assert_eq!(evicted, (0, 3));
        assert_eq!(s.pending(), vec![4, 5, 6]);
        Ok(())
    }
}
