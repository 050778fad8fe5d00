//! Control: JSON commands on `<prefix>/<camera>/set`. Parsing is a pure function over untrusted bytes (fuzzed in
//! tests/fuzz.rs); the control stage ([`ControlStage`], a task) applies a parsed command to the camera's runtime
//! switches and the events stage, and answers anything malformed or unknown on `<prefix>/errors` — a bad payload
//! is never a crash. It also answers broker connects and Home Assistant's birth message with discovery configs.
//!
//! Commands (one per message):
//! - `{"detect": false}` / `{"detect": true}` (also `"on"`/`"off"`): stop or resume inference for the camera;
//!   switching off ends its open alerts.
//! - `{"rule": "person", "armed": false}`: disarm (or re-arm) one rule, named by its label or prompt text;
//!   disarming ends its open alert.
//! - `{"snapshot": true}`: publish the camera's latest inferred frame on `<prefix>/<camera>/latest/snapshot`.
//! - `{"unusual": "reset"}`: forget the camera's unusual-scene baseline (memory and its saved file), end its open
//!   unusual alert, and learn again from a new warm-up (cameras with `[cameras.unusual]` only).
//!
//! Plain switches, Frigate-style, next to the JSON topic: `ON`/`OFF` on `<prefix>/<camera>/detect/set` and
//! `<prefix>/<camera>/<rule>/armed/set` (`<rule>` is the rule's slug: `person`, `a_dog_on_the_lawn`); their retained
//! states are on `…/detect/state` and `…/<rule>/armed/state`.
//!
//! Detect on/off and rule arming are kept in the spool's database ([`SwitchStore`]) and survive a restart and a
//! reload; a rule or camera removed from the config forgets its switches.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;

use crate::ingest::camera::{state_message, switch_states, CamHandle, Registry};
use crate::publish::discovery::Discovery;
use crate::publish::mqtt::Incoming;
use crate::publish::switches::{CameraSwitches, SwitchStore};
use crate::publish::topics::{slug, SwitchTopic, Topics};
use crate::publish::OutMsg;
use crate::telemetry::Metrics;

/// Largest accepted payload; commands are tiny, so anything bigger is a mistake or an attack.
pub const MAX_COMMAND_BYTES: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Detect(bool),
    Arm {
        rule: String,
        armed: bool,
    },
    /// Publish the camera's latest frame now on `<prefix>/<camera>/latest/snapshot` (and write it to the media dir).
    Snapshot,
    /// Forget the camera's unusual-scene baseline and start a new warm-up.
    UnusualReset,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("payload is {0} bytes; commands are at most {MAX_COMMAND_BYTES}")]
    TooLarge(usize),
    #[error("payload is not a JSON command object: {0}")]
    NotJson(String),
    #[error("{0}")]
    Invalid(String),
    #[error("unknown camera '{0}'")]
    UnknownCamera(String),
    #[error("camera '{camera}' has no rule '{rule}' (rules: {known})")]
    UnknownRule {
        camera: String,
        rule: String,
        known: String,
    },
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Switch {
    Bool(bool),
    Word(String),
}

impl Switch {
    fn value(&self, key: &str) -> Result<bool, CommandError> {
        match self {
            Switch::Bool(b) => Ok(*b),
            Switch::Word(w) => match w.to_ascii_lowercase().as_str() {
                "on" | "true" => Ok(true),
                "off" | "false" => Ok(false),
                _ => Err(CommandError::Invalid(format!(
                    "'{key}' must be true/false or \"on\"/\"off\""
                ))),
            },
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    detect: Option<Switch>,
    rule: Option<String>,
    armed: Option<Switch>,
    snapshot: Option<bool>,
    unusual: Option<String>,
}

/// Parses one command for `camera`, whose rules are named `rules` (labels and prompt texts).
pub fn parse(camera: &str, payload: &[u8], rules: &[String]) -> Result<Command, CommandError> {
    if payload.len() > MAX_COMMAND_BYTES {
        return Err(CommandError::TooLarge(payload.len()));
    }
    let raw: Raw =
        serde_json::from_slice(payload).map_err(|e| CommandError::NotJson(e.to_string()))?;
    if let Some(what) = &raw.unusual {
        if raw.detect.is_some()
            || raw.rule.is_some()
            || raw.armed.is_some()
            || raw.snapshot.is_some()
        {
            return Err(CommandError::Invalid(
                "one command per message: 'unusual' cannot be combined with others".into(),
            ));
        }
        if what != "reset" {
            return Err(CommandError::Invalid(
                "'unusual' takes \"reset\": {\"unusual\": \"reset\"}".into(),
            ));
        }
        return Ok(Command::UnusualReset);
    }
    if let Some(snap) = raw.snapshot {
        if raw.detect.is_some() || raw.rule.is_some() || raw.armed.is_some() {
            return Err(CommandError::Invalid(
                "one command per message: 'snapshot' cannot be combined with others".into(),
            ));
        }
        if !snap {
            return Err(CommandError::Invalid("'snapshot' takes true".into()));
        }
        return Ok(Command::Snapshot);
    }
    match raw {
        Raw {
            detect: Some(d),
            rule: None,
            armed: None,
            ..
        } => Ok(Command::Detect(d.value("detect")?)),
        Raw {
            detect: None,
            rule: Some(rule),
            armed: Some(a),
            ..
        } => {
            let armed = a.value("armed")?;
            if !rules.contains(&rule) {
                return Err(CommandError::UnknownRule {
                    camera: camera.to_string(),
                    known: rules.join(", "),
                    rule,
                });
            }
            Ok(Command::Arm { rule, armed })
        }
        Raw {
            detect: None,
            rule: Some(_),
            armed: None,
            ..
        } => Err(CommandError::Invalid(
            "'rule' needs 'armed': {\"rule\": \"person\", \"armed\": false}".into(),
        )),
        Raw {
            detect: None,
            rule: None,
            armed: Some(_),
            ..
        } => Err(CommandError::Invalid(
            "'armed' needs 'rule': {\"rule\": \"person\", \"armed\": false}".into(),
        )),
        Raw {
            detect: None,
            rule: None,
            armed: None,
            ..
        } => Err(CommandError::Invalid(
            "empty command: use {\"detect\": false} or {\"rule\": \"person\", \"armed\": false}"
                .into(),
        )),
        _ => Err(CommandError::Invalid(
            "one command per message: 'detect' cannot be combined with 'rule'".into(),
        )),
    }
}

/// A short, printable excerpt of an untrusted payload for error reports.
pub fn excerpt(payload: &[u8]) -> String {
    let s = String::from_utf8_lossy(&payload[..payload.len().min(200)]);
    s.chars()
        .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
        .collect()
}

/// Parses a plain switch payload (`<prefix>/<camera>/detect/set`, `<prefix>/<camera>/<rule>/armed/set`): `ON` or
/// `OFF` as Home Assistant and Frigate send them; `on`/`off`, `true`/`false` and `1`/`0` too, surrounding
/// whitespace ignored.
pub fn parse_switch(payload: &[u8]) -> Result<bool, CommandError> {
    if payload.len() > MAX_SWITCH_BYTES {
        return Err(CommandError::TooLarge(payload.len()));
    }
    match std::str::from_utf8(payload.trim_ascii())
        .unwrap_or("")
        .to_ascii_lowercase()
        .as_str()
    {
        "on" | "true" | "1" => Ok(true),
        "off" | "false" | "0" => Ok(false),
        _ => Err(CommandError::Invalid(
            "a switch takes ON or OFF (plain text, not JSON)".into(),
        )),
    }
}

/// Largest plain switch payload worth reading (`false` plus whitespace and a newline).
const MAX_SWITCH_BYTES: usize = 64;

/// The command a plain switch message means, for a camera whose rules are `rules`.
fn switch_command(
    topics: &Topics,
    topic: &str,
    payload: &[u8],
    rules: &[String],
) -> Option<Result<Command, CommandError>> {
    let which = topics.switch_of(topic)?;
    Some(parse_switch(payload).and_then(|on| {
        match which {
            SwitchTopic::Detect { .. } => Ok(Command::Detect(on)),
            SwitchTopic::Armed { camera, rule } => rules
                .iter()
                .find(|r| slug(r) == rule)
                .map(|r| Command::Arm {
                    rule: r.clone(),
                    armed: on,
                })
                .ok_or_else(|| CommandError::UnknownRule {
                    camera: camera.to_string(),
                    rule: rule.to_string(),
                    known: rules.iter().map(|r| slug(r)).collect::<Vec<_>>().join(", "),
                }),
        }
    }))
}

/// Whether the camera learns an unusual-scene baseline (`[cameras.unusual]`; its state reports it).
fn has_unusual(h: &CamHandle) -> bool {
    h.status.unusual.lock().is_ok_and(|u| u.is_some())
}

/// The control stage: what applying `set` commands needs. Started after the cameras; aborted at drain (the
/// publisher, which feeds it, outlives it).
pub struct ControlStage {
    /// `set` messages, broker connects (empty topic) and Home Assistant status, from the publisher.
    pub commands: mpsc::Receiver<Incoming>,
    pub registry: Registry,
    /// Applied commands go on to the events stage.
    pub events: mpsc::Sender<(String, Command)>,
    pub out: mpsc::Sender<OutMsg>,
    pub topics: Topics,
    pub providers: serde_json::Value,
    pub metrics: Arc<Metrics>,
    pub discovery: Option<Discovery>,
    /// Where applied switches are kept for the next start (None: they last for this run).
    pub switches: Option<SwitchStore>,
}

impl ControlStage {
    pub fn spawn(self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.run())
    }

    async fn report(&self, topic: &str, e: &CommandError, payload: &[u8]) {
        self.metrics.commands_rejected.inc();
        tracing::warn!(topic = %topic, error = %e, "rejected a command");
        let report = json!({
            "schema": 1,
            "source": "command",
            "topic": topic,
            "error": e.to_string(),
            "payload": excerpt(payload),
            "at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        });
        self.publish_error(report).await;
    }

    /// Publishes an error report on `<prefix>/errors`.
    async fn publish_error(&self, report: serde_json::Value) {
        let _ = self
            .out
            .send(OutMsg::error(
                self.topics.errors(),
                report.to_string().into_bytes(),
            ))
            .await;
    }

    /// Every running camera's switch states (retained; after a connect, as a broker without persistence forgets).
    async fn publish_switch_states(&self) {
        let handles: Vec<CamHandle> = self
            .registry
            .lock()
            .map(|r| r.values().cloned().collect())
            .unwrap_or_default();
        for h in handles {
            for m in switch_states(&self.topics, &h.status, &h.rules) {
                let _ = self.out.send(m).await;
            }
        }
    }

    /// Writes the camera's switches to the store, off the runtime (a redb commit syncs to disk).
    async fn persist(&self, camera: &str, h: &CamHandle) {
        let Some(store) = self.switches.clone() else {
            return;
        };
        let s = CameraSwitches {
            detect: h.status.detect.load(std::sync::atomic::Ordering::Relaxed),
            disarmed: h
                .status
                .disarmed
                .lock()
                .map(|d| d.clone())
                .unwrap_or_default(),
        };
        let cam = camera.to_string();
        let failed = match tokio::task::spawn_blocking(move || store.save(&cam, &s)).await {
            Ok(Ok(())) => return,
            Ok(Err(e)) => e.to_string(),
            Err(e) => e.to_string(),
        };
        // applied all the same; only the next restart will not know it
        tracing::error!(camera = %camera, error = %failed, "could not store the switches; they last until the next restart");
        let report = json!({
            "schema": 1,
            "source": "spool",
            "error": format!("could not store the switches of camera '{camera}' (they apply until the next restart): {failed}"),
            "at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        });
        self.publish_error(report).await;
    }

    /// Applies `set` commands and plain switches until the publisher's channel closes (or this task is aborted at
    /// drain); answers broker connects and Home Assistant's birth message with discovery configs, and deletes
    /// stale discovery configs the broker still holds.
    async fn run(mut self) {
        while let Some(msg) = self.commands.recv().await {
            if msg.topic.is_empty() {
                // (re)connected
                if let Some(d) = &self.discovery {
                    d.announce(&self.topics, &self.out).await;
                }
                self.publish_switch_states().await;
                continue;
            }
            if let Some(d) = &self.discovery {
                if msg.topic == d.status_topic() {
                    if msg.payload.trim_ascii() == b"online" {
                        d.announce(&self.topics, &self.out).await;
                    }
                    continue;
                }
                if d.is_own_config(&msg.topic) {
                    if let Some(del) = d.stale(&self.topics, &msg.topic, &msg.payload) {
                        tracing::info!(topic = %msg.topic, "deleting a stale Home Assistant discovery config");
                        let _ = self.out.send(del).await;
                    }
                    continue;
                }
            }
            let Some(camera) = self
                .topics
                .camera_of_set(&msg.topic)
                .or_else(|| match self.topics.switch_of(&msg.topic)? {
                    SwitchTopic::Detect { camera } | SwitchTopic::Armed { camera, .. } => {
                        Some(camera)
                    }
                })
                .map(str::to_string)
            else {
                continue;
            };
            let handle = self
                .registry
                .lock()
                .ok()
                .and_then(|r| r.get(&camera).cloned());
            let parsed = match &handle {
                None => Err(CommandError::UnknownCamera(camera.clone())),
                Some(h) => switch_command(&self.topics, &msg.topic, &msg.payload, &h.rules)
                    .unwrap_or_else(|| parse(&camera, &msg.payload, &h.rules))
                    .and_then(|cmd| match cmd {
                        Command::UnusualReset if !has_unusual(h) => {
                            Err(CommandError::Invalid(format!(
                                "camera '{camera}' has no unusual-scene baseline to reset ([cameras.unusual] enabled = false)"
                            )))
                        }
                        cmd => Ok(cmd),
                    }),
            };
            let (cmd, h) = match (parsed, handle) {
                (Ok(cmd), Some(h)) => (cmd, h),
                (Err(e), _) => {
                    self.report(&msg.topic, &e, &msg.payload).await;
                    continue;
                }
                (Ok(_), None) => continue,
            };
            match &cmd {
                Command::Detect(on) => h
                    .status
                    .detect
                    .store(*on, std::sync::atomic::Ordering::Relaxed),
                Command::Snapshot => {}
                // the state published below already says so; the events stage scores the next clip as such
                Command::UnusualReset => {
                    if let Ok(mut u) = h.status.unusual.lock() {
                        *u = Some(crate::ingest::UnusualStatus {
                            score: None,
                            warming_up: true,
                        });
                    }
                }
                Command::Arm { rule, armed } => {
                    if let Ok(mut d) = h.status.disarmed.lock() {
                        if *armed {
                            d.remove(rule);
                        } else {
                            d.insert(rule.clone());
                        }
                    }
                }
            }
            let switched = matches!(cmd, Command::Detect(_) | Command::Arm { .. });
            if switched {
                self.persist(&camera, &h).await;
            }
            self.metrics.commands_applied.inc();
            tracing::info!(camera = %camera, command = ?cmd, "command applied");
            if self.events.send((camera, cmd)).await.is_err() {
                return;
            }
            let _ = self
                .out
                .send(state_message(&self.topics, &h.status, &self.providers))
                .await;
            if switched {
                for m in switch_states(&self.topics, &h.status, &h.rules) {
                    let _ = self.out.send(m).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> Vec<String> {
        vec!["person".into(), "people walking on a path".into()]
    }

    #[test]
    fn accepts_the_documented_commands() {
        let p = |s: &str| parse("cam", s.as_bytes(), &rules());
        assert_eq!(p(r#"{"detect": false}"#), Ok(Command::Detect(false)));
        assert_eq!(p(r#"{"detect": "ON"}"#), Ok(Command::Detect(true)));
        assert_eq!(
            p(r#"{"rule": "person", "armed": "off"}"#),
            Ok(Command::Arm {
                rule: "person".into(),
                armed: false
            })
        );
        assert_eq!(p(r#"{"snapshot": true}"#), Ok(Command::Snapshot));
        assert_eq!(p(r#"{"unusual": "reset"}"#), Ok(Command::UnusualReset));
    }

    #[test]
    fn rejects_malformed_and_unknown_with_a_reason() {
        let p = |s: &[u8]| parse("cam", s, &rules());
        assert!(matches!(p(b""), Err(CommandError::NotJson(_))));
        assert!(matches!(p(b"\xff\xfe"), Err(CommandError::NotJson(_))));
        assert!(matches!(p(b"[1,2]"), Err(CommandError::NotJson(_))));
        assert!(matches!(
            p(b"{\"detect\":1}"),
            Err(CommandError::NotJson(_))
        ));
        assert!(matches!(
            p(b"{\"zoom\":true}"),
            Err(CommandError::NotJson(_))
        ));
        assert!(matches!(
            p(b"{\"detect\":\"maybe\"}"),
            Err(CommandError::Invalid(_))
        ));
        assert!(matches!(p(b"{}"), Err(CommandError::Invalid(_))));
        assert!(matches!(
            p(b"{\"snapshot\":false}"),
            Err(CommandError::Invalid(_))
        ));
        assert!(matches!(
            p(b"{\"snapshot\":true,\"detect\":true}"),
            Err(CommandError::Invalid(_))
        ));
        assert!(matches!(
            p(b"{\"detect\":true,\"rule\":\"person\",\"armed\":true}"),
            Err(CommandError::Invalid(_))
        ));
        for bad in [
            &b"{\"unusual\":\"forget\"}"[..],
            b"{\"unusual\":\"reset\",\"detect\":true}",
            b"{\"unusual\":\"reset\",\"snapshot\":true}",
        ] {
            assert!(matches!(p(bad), Err(CommandError::Invalid(_))), "{bad:?}");
        }
        assert!(matches!(
            p(b"{\"unusual\":true}"),
            Err(CommandError::NotJson(_))
        ));
        assert!(matches!(
            p(b"{\"rule\":\"cat\",\"armed\":true}"),
            Err(CommandError::UnknownRule { .. })
        ));
        let big = vec![b' '; MAX_COMMAND_BYTES + 1];
        assert_eq!(p(&big), Err(CommandError::TooLarge(MAX_COMMAND_BYTES + 1)));
    }

    #[test]
    fn plain_switches_take_on_and_off_and_name_rules_by_slug() {
        let t = Topics::new("sw");
        let rules = rules();
        let sw = |topic: &str, p: &[u8]| switch_command(&t, topic, p, &rules);
        assert_eq!(
            sw("sw/cam/detect/set", b"OFF"),
            Some(Ok(Command::Detect(false)))
        );
        assert_eq!(
            sw("sw/cam/detect/set", b" on\n"),
            Some(Ok(Command::Detect(true)))
        );
        assert_eq!(
            sw("sw/cam/people_walking_on_a_path/armed/set", b"OFF"),
            Some(Ok(Command::Arm {
                rule: "people walking on a path".into(),
                armed: false
            }))
        );
        assert!(matches!(
            sw("sw/cam/cat/armed/set", b"ON"),
            Some(Err(CommandError::UnknownRule { .. }))
        ));
        for bad in [
            &b""[..],
            b"{\"detect\": true}",
            b"maybe",
            b"\xff\x00",
            &[b'O'; 100],
        ] {
            assert!(
                matches!(sw("sw/cam/detect/set", bad), Some(Err(_))),
                "{bad:?}"
            );
        }
        assert_eq!(sw("sw/cam/set", b"ON"), None, "not a plain switch topic");
    }

    #[test]
    fn excerpts_are_short_and_printable() {
        let e = excerpt(&[b'a', 0, b'\n', 0xff]);
        assert_eq!(e.chars().count(), 4);
        assert!(!e.chars().any(|c| c.is_control()));
        assert_eq!(excerpt(&[b'x'; 1000]).len(), 200);
    }
}
