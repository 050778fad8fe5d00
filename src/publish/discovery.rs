//! Home Assistant MQTT discovery: retained entity configs under
//! `<discovery_prefix>/<component>/<node>/<camera>_<what>/config` (`<node>` from `[mqtt] client_id`), one device per
//! camera. Entities per camera:
//! - per label rule: an occupancy binary_sensor and a count sensor (`…/<rule>/count`), the alert snapshot image, and
//!   an arm switch (`…/<rule>/armed/set|state`, plain `ON`/`OFF`);
//! - per prompt: a binary_sensor (`…/<prompt>/active`, `ON` while its alert is open), an arm switch and its snapshot
//!   image (`…/<prompt>/snapshot`);
//! - with `[cameras.unusual]` on: a binary_sensor for the unusual-scene alert (`…/unusual/active`);
//! - per task head (`[[cameras.classifiers]]`): a sensor whose state is the current class (`…/classifier/<name>`,
//!   the probabilities in its attributes), a binary_sensor for its alert (`…/<name>/active`) and an arm switch;
//! - the detect switch (`…/detect/set|state`), an `event` entity firing `new`/`update`/`end` for every alert, the
//!   `latest` snapshot image and a button that asks for it (snapshots on), the last period summary (a timestamp
//!   sensor whose text is in its attributes, as a state holds at most 255 characters; summaries on), and two
//!   diagnostic sensors: the camera's state and its sampled fps.
//!
//! Every config carries `default_entity_id` (Home Assistant 2025.10 deprecated `object_id`, 2026.4 ignores it), an
//! `origin` block and the device. Availability follows `<prefix>/status` (anything but `online` — `offline`,
//! `stopped` — is unavailable).
//!
//! Configs are sent at start, on every broker connect, when `homeassistant/status` says `online` (the control stage)
//! and after a reload (the supervisor). Stale ones — rules or cameras removed while scenewatch was stopped — are
//! found by subscribing to `<discovery_prefix>/+/<node>/+/config`: every retained config there that the current
//! set does not contain is deleted with an empty retained payload. Built as plain data here ([`configs`]).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::topics::{slug, Topics};
use super::OutMsg;
use crate::config::CameraConfig;

/// `[a-zA-Z0-9_-]` only, as Home Assistant wants in object ids.
pub fn node_id(client_id: &str) -> String {
    client_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The subscription that returns every retained config this node ever published (for the stale check).
pub fn own_configs_filter(discovery_prefix: &str, node: &str) -> String {
    format!("{discovery_prefix}/+/{node}/+/config")
}

fn title(label: &str) -> String {
    let label = label.replace('_', " ");
    let mut c = label.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// What the entity set depends on besides the cameras.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Options {
    /// `[media] snapshots`: snapshot images and the snapshot button.
    pub snapshots: bool,
    /// `[summaries] enabled`: the last-summary sensor.
    pub summaries: bool,
    /// The device's link in Home Assistant (`[homeassistant] configuration_url`).
    pub configuration_url: Option<String>,
    /// `origin.support_url` (`[homeassistant] support_url`).
    pub support_url: Option<String>,
}

/// One entity config: where it goes and what it says.
#[derive(Debug, Clone)]
pub struct EntityConfig {
    pub topic: String,
    /// The topic of the same entity in the layout before `<node>` got its own level (deleted once per run).
    pub legacy_topic: Option<String>,
    pub payload: Value,
}

fn merge(mut a: Value, b: Value) -> Value {
    if let (Some(a), Value::Object(b)) = (a.as_object_mut(), b) {
        a.extend(b);
    }
    a
}

/// Discovery configs for `cameras` (enabled ones).
pub fn configs(
    topics: &Topics,
    discovery_prefix: &str,
    node: &str,
    cameras: &[CameraConfig],
    opts: &Options,
) -> Vec<EntityConfig> {
    let mut out = Vec::new();
    let availability = json!([{
        "topic": topics.status(),
        "value_template": "{{ 'online' if value == 'online' else 'offline' }}",
    }]);
    let mut origin = json!({
        "name": "scenewatch",
        "sw_version": env!("CARGO_PKG_VERSION"),
    });
    if let Some(u) = &opts.support_url {
        origin["support_url"] = json!(u);
    }
    for cam in cameras.iter().filter(|c| c.enabled) {
        let mut device = json!({
            "identifiers": [format!("scenewatch_{node}_{}", cam.name)],
            "name": format!("{} (scenewatch)", title(&cam.name)),
            "manufacturer": "scenewatch",
            "model": "scenewatch camera",
            "sw_version": env!("CARGO_PKG_VERSION"),
        });
        if let Some(u) = &opts.configuration_url {
            device["configuration_url"] = json!(u);
        }
        // `what`: the entity's part of the ids; `legacy`: it existed before the node level (same unique id)
        let mut push = |component: &str, what: &str, name: String, legacy: bool, body: Value| {
            let uid = format!("scenewatch_{node}_{}_{what}", cam.name);
            let base = json!({
                "name": name,
                "unique_id": uid,
                "default_entity_id": format!("{component}.{uid}"),
                "device": device,
                "origin": origin,
                "availability": availability,
                "availability_mode": "all",
                "payload_available": "online",
                "payload_not_available": "offline",
            });
            out.push(EntityConfig {
                topic: format!(
                    "{discovery_prefix}/{component}/{node}/{}_{what}/config",
                    cam.name
                ),
                legacy_topic: legacy
                    .then(|| format!("{discovery_prefix}/{component}/{uid}/config")),
                payload: merge(base, body),
            });
        };
        let mut rules: Vec<String> = cam
            .effective_rules()
            .into_iter()
            .map(|r| r.name())
            .collect();
        rules.dedup();
        for rule in &rules {
            let what = slug(rule);
            let count_topic = topics.count(&cam.name, rule);
            push(
                "binary_sensor",
                &format!("{what}_occupancy"),
                format!("{} occupancy", title(rule)),
                true,
                json!({
                    "state_topic": count_topic,
                    "value_template": "{{ 'ON' if (value | int(0)) > 0 else 'OFF' }}",
                    "device_class": "occupancy",
                }),
            );
            push(
                "sensor",
                &format!("{what}_count"),
                format!("{} count", title(rule)),
                true,
                json!({
                    "state_topic": count_topic,
                    "state_class": "measurement",
                    "icon": "mdi:counter",
                }),
            );
            if opts.snapshots {
                push(
                    "image",
                    &format!("{what}_snapshot"),
                    format!("{} snapshot", title(rule)),
                    true,
                    json!({
                        "image_topic": topics.snapshot(&cam.name, rule),
                        "content_type": "image/jpeg",
                    }),
                );
            }
            push(
                "switch",
                &format!("{what}_armed"),
                format!("{} armed", title(rule)),
                false,
                arm_switch(topics, &cam.name, rule),
            );
        }
        for p in &cam.prompts {
            let what = slug(&p.text);
            push(
                "binary_sensor",
                &format!("{what}_active"),
                title(&p.text),
                false,
                json!({
                    "state_topic": topics.prompt_active(&cam.name, &p.text),
                    "payload_on": "ON",
                    "payload_off": "OFF",
                    "icon": "mdi:text-search",
                }),
            );
            push(
                "switch",
                &format!("{what}_armed"),
                format!("{} armed", title(&p.text)),
                false,
                arm_switch(topics, &cam.name, &p.text),
            );
        }
        if opts.snapshots {
            for p in &cam.prompts {
                let what = slug(&p.text);
                push(
                    "image",
                    &format!("{what}_snapshot"),
                    format!("{} snapshot", title(&p.text)),
                    false,
                    json!({
                        "image_topic": topics.snapshot(&cam.name, &what),
                        "content_type": "image/jpeg",
                    }),
                );
            }
        }
        for h in &cam.classifiers {
            let name = h.rule_name();
            let what = slug(&name);
            push(
                "sensor",
                &format!("{what}_class"),
                title(&name),
                false,
                json!({
                    "state_topic": topics.classifier(&cam.name, &name),
                    "value_template": "{{ value_json.class }}",
                    "json_attributes_topic": topics.classifier(&cam.name, &name),
                    "json_attributes_template": "{{ {'score': value_json.score, 'scores': value_json.scores} | tojson }}",
                    "icon": "mdi:shape-outline",
                }),
            );
            if !h.alert_on.is_empty() {
                push(
                    "binary_sensor",
                    &format!("{what}_active"),
                    format!("{} alert", title(&name)),
                    false,
                    json!({
                        "state_topic": topics.prompt_active(&cam.name, &name),
                        "payload_on": "ON",
                        "payload_off": "OFF",
                        "icon": "mdi:shape-outline",
                    }),
                );
            }
            push(
                "switch",
                &format!("{what}_armed"),
                format!("{} armed", title(&name)),
                false,
                arm_switch(topics, &cam.name, &name),
            );
        }
        if cam.unusual.enabled {
            push(
                "binary_sensor",
                "unusual_active",
                "Unusual scene".into(),
                false,
                json!({
                    "state_topic": topics.prompt_active(&cam.name, "unusual"),
                    "payload_on": "ON",
                    "payload_off": "OFF",
                    "icon": "mdi:alert-decagram",
                }),
            );
        }
        push(
            "switch",
            "detect",
            "Detect".into(),
            true,
            json!({
                "command_topic": topics.detect_set(&cam.name),
                "state_topic": topics.detect_state(&cam.name),
                "payload_on": "ON",
                "payload_off": "OFF",
                "state_on": "ON",
                "state_off": "OFF",
                "icon": "mdi:motion-sensor",
            }),
        );
        push(
            "event",
            "alert",
            "Alert".into(),
            false,
            json!({
                "state_topic": topics.alerts(&cam.name),
                "event_types": ["new", "update", "end"],
                // the event's attributes: enough to write a notification, the rest is on the alerts topic
                "value_template": "{{ {'event_type': value_json.type, 'id': value_json.id, 'rule': value_json.rule, 'severity': value_json.severity, 'count': value_json.count, 'summary': value_json.summary} | tojson }}",
                "icon": "mdi:bell-ring",
            }),
        );
        if opts.snapshots {
            push(
                "image",
                "latest_snapshot",
                "Latest snapshot".into(),
                false,
                json!({
                    "image_topic": topics.snapshot(&cam.name, "latest"),
                    "content_type": "image/jpeg",
                }),
            );
            push(
                "button",
                "take_snapshot",
                "Take snapshot".into(),
                false,
                json!({
                    "command_topic": topics.set(&cam.name),
                    "payload_press": "{\"snapshot\": true}",
                    "icon": "mdi:camera",
                }),
            );
        }
        if opts.summaries {
            push(
                "sensor",
                "last_summary",
                "Last summary".into(),
                false,
                json!({
                    "state_topic": topics.summary(&cam.name),
                    // a state is at most 255 characters: the time is the state, the text an attribute
                    "value_template": "{{ value_json.period_end }}",
                    "device_class": "timestamp",
                    "json_attributes_topic": topics.summary(&cam.name),
                    "json_attributes_template": "{{ {'text': value_json.text, 'period_start': value_json.period_start, 'period_end': value_json.period_end, 'clips': value_json.clips} | tojson }}",
                    "icon": "mdi:text-box-outline",
                }),
            );
        }
        push(
            "sensor",
            "status",
            "Status".into(),
            false,
            json!({
                "state_topic": topics.camera_state(&cam.name),
                "value_template": "{{ value_json.state }}",
                "device_class": "enum",
                "options": ["starting", "running", "retrying", "ended", "error"],
                "entity_category": "diagnostic",
                "json_attributes_topic": topics.camera_state(&cam.name),
                "json_attributes_template": "{{ {'reason': value_json.reason | default(none), 'since': value_json.since | default(none), 'retries': value_json.retries | default(0)} | tojson }}",
                "icon": "mdi:cctv",
            }),
        );
        push(
            "sensor",
            "sampled_fps",
            "Sampled fps".into(),
            false,
            json!({
                "state_topic": topics.camera_state(&cam.name),
                "value_template": "{{ value_json.sampled_fps | default(0) }}",
                "unit_of_measurement": "fps",
                "state_class": "measurement",
                "entity_category": "diagnostic",
                "icon": "mdi:speedometer",
            }),
        );
    }
    out
}

fn arm_switch(topics: &Topics, camera: &str, rule: &str) -> Value {
    json!({
        "command_topic": topics.armed_set(camera, rule),
        "state_topic": topics.armed_state(camera, rule),
        "payload_on": "ON",
        "payload_off": "OFF",
        "state_on": "ON",
        "state_off": "OFF",
        "icon": "mdi:shield-check",
    })
}

/// Home Assistant discovery state: what to announce, and where.
#[derive(Clone)]
pub struct Discovery {
    pub prefix: String,
    pub node: String,
    /// The cameras announced; a reload replaces them.
    pub cameras: Arc<Mutex<Vec<CameraConfig>>>,
    pub options: Options,
    /// Whether this run already deleted the configs of the layout before the node level.
    legacy_cleared: Arc<AtomicBool>,
}

impl Discovery {
    pub fn new(prefix: String, node: String, cameras: Vec<CameraConfig>, options: Options) -> Self {
        Self {
            prefix,
            node,
            cameras: Arc::new(Mutex::new(cameras)),
            options,
            legacy_cleared: Arc::default(),
        }
    }

    pub fn status_topic(&self) -> String {
        format!("{}/status", self.prefix)
    }

    fn current(&self) -> Vec<CameraConfig> {
        self.cameras.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// Retained config messages for `cameras`; `remove` = empty payloads, which delete the entities.
    pub fn messages(&self, topics: &Topics, cameras: &[CameraConfig], remove: bool) -> Vec<OutMsg> {
        configs(topics, &self.prefix, &self.node, cameras, &self.options)
            .into_iter()
            .map(|e| {
                let payload = if remove {
                    Vec::new()
                } else {
                    e.payload.to_string().into_bytes()
                };
                OutMsg::retained(e.topic, payload)
            })
            .collect()
    }

    /// Sends every current config. The first time in a run, the same entities' configs in the layout before the
    /// node level are deleted first (same unique ids: Home Assistant must drop the old before it takes the new).
    pub async fn announce(&self, topics: &Topics, out: &mpsc::Sender<OutMsg>) {
        let cams = self.current();
        if !self.legacy_cleared.swap(true, Ordering::Relaxed) {
            for e in configs(topics, &self.prefix, &self.node, &cams, &self.options) {
                if let Some(t) = e.legacy_topic {
                    let _ = out.send(OutMsg::retained(t, Vec::new())).await;
                }
            }
        }
        for m in self.messages(topics, &cams, false) {
            let _ = out.send(m).await;
        }
    }

    /// Deletions for the entities `before` had and `after` has not (removed cameras, rules a camera lost).
    pub fn removed(
        &self,
        topics: &Topics,
        before: &[CameraConfig],
        after: &[CameraConfig],
    ) -> Vec<OutMsg> {
        let keep: HashSet<String> = configs(topics, &self.prefix, &self.node, after, &self.options)
            .into_iter()
            .map(|e| e.topic)
            .collect();
        configs(topics, &self.prefix, &self.node, before, &self.options)
            .into_iter()
            .filter(|e| !keep.contains(&e.topic))
            .map(|e| OutMsg::retained(e.topic, Vec::new()))
            .collect()
    }

    /// Whether `topic` is one of this node's config topics (what [`own_configs_filter`] matches).
    pub fn is_own_config(&self, topic: &str) -> bool {
        rumqttc::matches(topic, &own_configs_filter(&self.prefix, &self.node))
    }

    /// The deletion for a retained config the broker holds for this node, when the current cameras no longer have
    /// that entity (an empty payload is an already deleted one).
    pub fn stale(&self, topics: &Topics, topic: &str, payload: &[u8]) -> Option<OutMsg> {
        if payload.is_empty() || !self.is_own_config(topic) {
            return None;
        }
        let current: HashSet<String> = configs(
            topics,
            &self.prefix,
            &self.node,
            &self.current(),
            &self.options,
        )
        .into_iter()
        .map(|e| e.topic)
        .collect();
        (!current.contains(topic)).then(|| OutMsg::retained(topic.to_string(), Vec::new()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cams() -> Vec<CameraConfig> {
        vec![
            toml::from_str(
                "name = \"gate\"\nurl = \"test://\"\n[unusual]\nenabled = true\n[[prompts]]\ntext = \"a dog on the lawn\"\n",
            )
            .expect("cam"),
            toml::from_str("name = \"yard\"\nurl = \"test://\"\nenabled = false\n").expect("cam"),
        ]
    }

    fn all_on() -> Options {
        Options {
            snapshots: true,
            summaries: true,
            configuration_url: Some("http://box:9090/".into()),
            support_url: Some("https://example.invalid/scenewatch".into()),
        }
    }

    #[test]
    fn one_device_per_camera_unique_ids_and_the_documented_topics() {
        let c = configs(
            &Topics::new("sw"),
            "homeassistant",
            &node_id("scene watch"),
            &cams(),
            &all_on(),
        );
        // gate: person + vehicle × (occupancy, count, snapshot, armed) + prompt (active, armed, snapshot)
        // + unusual + detect, event, latest, button, summary, status, fps; yard is disabled
        assert_eq!(
            c.len(),
            8 + 3 + 1 + 7,
            "{:#?}",
            c.iter().map(|e| &e.topic).collect::<Vec<_>>()
        );
        let ids: HashSet<_> = c.iter().map(|e| e.payload["unique_id"].clone()).collect();
        assert_eq!(ids.len(), c.len());
        for e in &c {
            let v = &e.payload;
            assert_eq!(v["device"]["identifiers"][0], "scenewatch_scene_watch_gate");
            assert_eq!(v["device"]["configuration_url"], "http://box:9090/");
            assert_eq!(v["availability"][0]["topic"], "sw/status");
            assert_eq!(v["origin"]["name"], "scenewatch");
            assert!(v.get("object_id").is_none(), "object_id is deprecated: {v}");
            let component = e.topic.split('/').nth(1).expect("component");
            assert_eq!(
                v["default_entity_id"],
                format!("{component}.{}", v["unique_id"].as_str().expect("uid"))
            );
            assert!(e
                .topic
                .starts_with(&format!("homeassistant/{component}/scene_watch/gate_")));
            assert!(rumqttc::matches(
                &e.topic,
                &own_configs_filter("homeassistant", "scene_watch")
            ));
        }
        let by = |t: &str| {
            c.iter()
                .find(|e| e.topic == t)
                .unwrap_or_else(|| panic!("no {t}"))
        };
        let occ = by("homeassistant/binary_sensor/scene_watch/gate_person_occupancy/config");
        assert_eq!(occ.payload["state_topic"], "sw/gate/person/count");
        assert_eq!(
            occ.legacy_topic.as_deref(),
            Some("homeassistant/binary_sensor/scenewatch_scene_watch_gate_person_occupancy/config")
        );
        let sw = by("homeassistant/switch/scene_watch/gate_detect/config");
        assert_eq!(sw.payload["command_topic"], "sw/gate/detect/set");
        assert_eq!(sw.payload["state_topic"], "sw/gate/detect/state");
        let arm = by("homeassistant/switch/scene_watch/gate_a_dog_on_the_lawn_armed/config");
        assert_eq!(
            arm.payload["command_topic"],
            "sw/gate/a_dog_on_the_lawn/armed/set"
        );
        let ev = by("homeassistant/event/scene_watch/gate_alert/config");
        assert_eq!(ev.payload["event_types"], json!(["new", "update", "end"]));
    }

    #[test]
    fn options_off_drop_their_entities_and_stale_configs_are_found() {
        let topics = Topics::new("sw");
        let c = configs(&topics, "ha", "n", &cams(), &Options::default());
        assert!(c
            .iter()
            .all(|e| !e.topic.contains("/image/") && !e.topic.contains("/button/")));
        assert!(c.iter().all(|e| !e.topic.ends_with("_last_summary/config")));
        let d = Discovery::new("ha".into(), "n".into(), cams(), Options::default());
        assert!(d.stale(&topics, &c[0].topic, b"{}").is_none(), "current");
        let gone = d
            .stale(&topics, "ha/sensor/n/gate_cat_count/config", b"{}")
            .expect("a removed rule's config is stale");
        assert!(gone.retain && gone.payload.is_empty());
        assert!(d
            .stale(&topics, "ha/sensor/n/gate_cat_count/config", b"")
            .is_none());
        assert!(
            d.stale(&topics, "ha/sensor/other/gate_cat_count/config", b"{}")
                .is_none(),
            "another node's"
        );
    }
}
