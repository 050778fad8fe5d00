//! Publish stage: everything scenewatch says goes out through one ordered outbox to the MQTT broker.

pub mod mqtt;
pub mod topics;

/// What kind of message, which decides what may be coalesced when the outbox is under pressure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MsgClass {
    /// Alerts: never dropped or coalesced.
    Alert,
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

impl OutMsg {
    pub fn alert(topic: String, payload: Vec<u8>) -> Self {
        Self {
            topic,
            payload,
            retain: false,
            class: MsgClass::Alert,
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
