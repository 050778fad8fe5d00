//! Publish stage: everything scenewatch says goes out through one ordered outbox to the MQTT broker
//! ([`stage::PublisherStage`] builds and starts it).

pub mod discovery;
pub mod mqtt;
pub mod spool;
pub mod stage;
pub mod switches;
pub mod tls;
pub mod topics;

/// What kind of message, which decides whether it is spooled and whether a newer one on its topic replaces it in
/// the outbox (retained messages only, at any time; a full outbox makes producers wait).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MsgClass {
    /// Alerts: spooled to disk, never coalesced; evicted only when the spool is full, after every summary.
    Alert,
    /// Periodic summaries: spooled like alerts, but evicted first when the spool is full.
    Summary,
    /// Best-effort reports (`<prefix>/errors`): kept in memory only.
    Transient,
    /// Retained state/info: a newer message on the same topic supersedes a queued older one.
    Retained,
}

/// One message for the broker.
#[derive(Debug, Clone)]
pub struct OutMsg {
    pub topic: String,
    pub payload: Vec<u8>,
    pub retain: bool,
    pub class: MsgClass,
}

impl MsgClass {
    /// Whether messages of this class go through the disk spool.
    pub fn spooled(self) -> bool {
        matches!(self, Self::Alert | Self::Summary)
    }
}

impl OutMsg {
    pub fn alert(topic: String, payload: Vec<u8>) -> Self {
        Self {
            topic,
            payload,
            retain: false,
            class: MsgClass::Alert,
        }
    }
    pub fn summary(topic: String, payload: Vec<u8>) -> Self {
        Self {
            topic,
            payload,
            retain: false,
            class: MsgClass::Summary,
        }
    }
    /// Errors are events, not state: not retained, and kept in memory only.
    pub fn error(topic: String, payload: Vec<u8>) -> Self {
        Self {
            topic,
            payload,
            retain: false,
            class: MsgClass::Transient,
        }
    }
    pub fn retained(topic: String, payload: Vec<u8>) -> Self {
        Self {
            topic,
            payload,
            retain: true,
            class: MsgClass::Retained,
        }
    }
}
