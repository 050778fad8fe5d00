//! `[mqtt]` and `[homeassistant]`: the publish stage's broker connection (with its secret and TLS files), topic
//! layout and outbox, and the Home Assistant discovery it publishes.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::{seconds, Checks, Problem};

/// Broker connection and topic layout.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MqttConfig {
    pub host: String,
    pub port: u16,
    pub client_id: String,
    /// First level of every topic: `<prefix>/status`, `<prefix>/<camera>/alerts`, …
    pub topic_prefix: String,
    pub keep_alive_secs: u64,
    /// Messages waiting for the publisher (alerts, states, summaries). When full, the publisher stops reading and
    /// every producer waits (nothing is dropped); a queued retained message is replaced by a newer one on the
    /// same topic (docs/mqtt.md).
    pub outbox_capacity: usize,
    /// Cap of the exponential reconnect backoff.
    pub reconnect_max_secs: f64,
    /// Largest payload sent (KiB). A bigger message — a snapshot of a huge frame, for a broker with a lower
    /// `message_size_limit` — is dropped, counted and reported on `<prefix>/errors` instead of holding up the
    /// messages behind it.
    pub max_message_kb: u32,
    pub username: Option<String>,
    /// Read from `SCENEWATCH__MQTT__PASSWORD` or the file named by `password_file`; never logged.
    pub password: Option<Secret>,
    pub password_file: Option<PathBuf>,
    /// Connect with TLS (rustls). The broker certificate is checked against `ca_file`, or the system roots.
    pub tls: bool,
    pub ca_file: Option<PathBuf>,
    /// Client certificate and key (PEM) for brokers that require mutual TLS.
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
}

impl Default for MqttConfig {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 1883,
            client_id: "scenewatch".into(),
            topic_prefix: "scenewatch".into(),
            keep_alive_secs: 15,
            outbox_capacity: 10_000,
            reconnect_max_secs: 30.0,
            max_message_kb: 8192,
            username: None,
            password: None,
            password_file: None,
            tls: false,
            ca_file: None,
            client_cert: None,
            client_key: None,
        }
    }
}

impl MqttConfig {
    /// Cap of the reconnect backoff (at least 0.25 s, where the backoff starts).
    pub fn reconnect_max(&self) -> Result<Duration, Problem> {
        seconds("mqtt.reconnect_max_secs", self.reconnect_max_secs.max(0.25))
    }

    pub(super) fn validate(&self, c: &mut Checks) {
        if self.host.trim().is_empty() {
            c.bad("mqtt.host", "must not be empty");
        }
        c.range("mqtt.port", self.port, 1, u16::MAX);
        if self.client_id.is_empty() {
            c.bad("mqtt.client_id", "must not be empty");
        }
        if !valid_topic_level_path(&self.topic_prefix) {
            c.bad(
                "mqtt.topic_prefix",
                "must be non-empty topic levels without '+', '#' or empty levels",
            );
        }
        c.range("mqtt.outbox_capacity", self.outbox_capacity, 16, 1_000_000);
        c.range("mqtt.max_message_kb", self.max_message_kb, 1, 262_144);
        c.above(
            "mqtt.reconnect_max_secs",
            self.reconnect_max_secs,
            0.0,
            3600.0,
        );
        c.range("mqtt.keep_alive_secs", self.keep_alive_secs, 5, 3600);
        if self.username.is_none() && self.password.is_some() {
            c.bad("mqtt.password", "is set but mqtt.username is not");
        }
        if self.client_cert.is_some() != self.client_key.is_some() {
            c.bad(
                "mqtt.client_cert",
                "client_cert and client_key must be given together",
            );
        }
        if !self.tls && (self.ca_file.is_some() || self.client_cert.is_some()) {
            c.bad(
                "mqtt.tls",
                "ca_file/client_cert are set but tls = false (set tls = true, usually with port 8883)",
            );
        }
    }

    /// The publisher's client options, reconnect backoff and outbox, made without connecting.
    pub(super) fn dry_build(&self, c: &mut Checks) {
        // the TLS files are read at start-up, so here the options are built without TLS
        let topics = crate::publish::topics::Topics::new(&self.topic_prefix);
        let plain = MqttConfig {
            tls: false,
            ..self.clone()
        };
        c.keep(
            crate::publish::mqtt::options(&plain, &topics)
                .map(drop)
                .map_err(|e| Problem::new("mqtt", e)),
        );
        let _ = crate::publish::discovery::node_id(&self.client_id);
        c.keep(self.reconnect_max().map(drop));
        let (out_tx, _out_rx) = tokio::sync::mpsc::channel::<()>(self.outbox_capacity.max(16));
        drop(out_tx);
    }
}

/// A secret string (MQTT password): its `Debug` never shows the value, so logging a config cannot leak it.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: String) -> Self {
        Self(s)
    }
    /// The value, for the one place that must send it (the MQTT CONNECT packet).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Home Assistant MQTT discovery.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HomeAssistantConfig {
    /// Publish retained discovery configs (see docs/mqtt.md for the entity list).
    pub enabled: bool,
    pub discovery_prefix: String,
    /// The link Home Assistant shows on each camera's device page ("Visit"), e.g. scenewatch's web page.
    pub configuration_url: Option<String>,
    /// `origin.support_url` in every config: where users report problems with these entities.
    pub support_url: Option<String>,
}

impl Default for HomeAssistantConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            discovery_prefix: "homeassistant".into(),
            configuration_url: None,
            support_url: None,
        }
    }
}

impl HomeAssistantConfig {
    pub(super) fn validate(&self, c: &mut Checks) {
        if !valid_topic_level_path(&self.discovery_prefix) {
            c.bad(
                "homeassistant.discovery_prefix",
                "must be non-empty topic levels without '+', '#' or empty levels",
            );
        }
        for (key, url) in [
            ("homeassistant.configuration_url", &self.configuration_url),
            ("homeassistant.support_url", &self.support_url),
        ] {
            if let Some(u) = url {
                let rest = u
                    .strip_prefix("http://")
                    .or_else(|| u.strip_prefix("https://"));
                if rest.is_none_or(|r| r.is_empty() || r.contains(char::is_whitespace)) {
                    c.bad(key, "must be an http:// or https:// URL");
                }
            }
        }
    }
}

fn valid_topic_level_path(prefix: &str) -> bool {
    !prefix.is_empty()
        && !prefix.contains(['+', '#', '\0'])
        && prefix.split('/').all(|level| !level.is_empty())
}
