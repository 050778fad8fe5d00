//! Home Assistant MQTT discovery: retained entity configs under `<discovery_prefix>/<component>/<object_id>/config`
//! for each camera: an occupancy binary_sensor, a count sensor and a snapshot image per watched label, and a
//! detection switch. All entities of a camera share one device; availability follows `<prefix>/status` (anything
//! but `online` — `offline`, `stopped` — is unavailable). Built as plain data here ([`configs`]); [`Discovery`]
//! holds what to announce and where, and is sent at start, on every broker connect, when `homeassistant/status`
//! says `online` (the control stage) and after a reload (the supervisor).

use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::topics::Topics;
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

fn title(label: &str) -> String {
    let mut c = label.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Discovery config topics and payloads for `cameras` (enabled ones).
pub fn configs(
    topics: &Topics,
    discovery_prefix: &str,
    node: &str,
    cameras: &[CameraConfig],
) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let availability = json!([{
        "topic": topics.status(),
        "value_template": "{{ 'online' if value == 'online' else 'offline' }}",
    }]);
    for cam in cameras.iter().filter(|c| c.enabled) {
        let device = json!({
            "identifiers": [format!("scenewatch_{node}_{}", cam.name)],
            "name": format!("{} (scenewatch)", title(&cam.name)),
            "manufacturer": "scenewatch",
            "model": "scenewatch camera",
            "sw_version": env!("CARGO_PKG_VERSION"),
        });
        let base = |name: String, uid: String| {
            json!({
                "name": name,
                "unique_id": uid,
                "object_id": uid,
                "device": device,
                "availability": availability,
                "availability_mode": "all",
                "payload_available": "online",
                "payload_not_available": "offline",
            })
        };
        let merge = |mut a: Value, b: Value| {
            if let (Some(a), Value::Object(b)) = (a.as_object_mut(), b) {
                a.extend(b);
            }
            a
        };
        let mut labels: Vec<String> = cam
            .effective_rules()
            .into_iter()
            .map(|r| r.name())
            .collect();
        labels.dedup();
        for label in labels {
            let id = format!("scenewatch_{node}_{}_{label}", cam.name);
            let count_topic = topics.count(&cam.name, &label);
            out.push((
                format!("{discovery_prefix}/binary_sensor/{id}_occupancy/config"),
                merge(
                    base(
                        format!("{} occupancy", title(&label)),
                        format!("{id}_occupancy"),
                    ),
                    json!({
                        "state_topic": count_topic,
                        "value_template": "{{ 'ON' if (value | int(0)) > 0 else 'OFF' }}",
                        "device_class": "occupancy",
                    }),
                ),
            ));
            out.push((
                format!("{discovery_prefix}/sensor/{id}_count/config"),
                merge(
                    base(format!("{} count", title(&label)), format!("{id}_count")),
                    json!({
                        "state_topic": count_topic,
                        "state_class": "measurement",
                        "icon": "mdi:counter",
                    }),
                ),
            ));
            out.push((
                format!("{discovery_prefix}/image/{id}_snapshot/config"),
                merge(
                    base(
                        format!("{} snapshot", title(&label)),
                        format!("{id}_snapshot"),
                    ),
                    json!({
                        "image_topic": topics.snapshot(&cam.name, &label),
                        "content_type": "image/jpeg",
                    }),
                ),
            ));
        }
        let id = format!("scenewatch_{node}_{}_detect", cam.name);
        out.push((
            format!("{discovery_prefix}/switch/{id}/config"),
            merge(
                base("Detect".into(), id.clone()),
                json!({
                    "command_topic": topics.set(&cam.name),
                    "payload_on": "{\"detect\": true}",
                    "payload_off": "{\"detect\": false}",
                    "state_topic": topics.camera_state(&cam.name),
                    "value_template": "{{ 'ON' if value_json.detect else 'OFF' }}",
                    "state_on": "ON",
                    "state_off": "OFF",
                    "icon": "mdi:motion-sensor",
                }),
            ),
        ));
    }
    out
}

/// Home Assistant discovery state: what to announce, and where.
#[derive(Clone)]
pub struct Discovery {
    pub prefix: String,
    pub node: String,
    /// The cameras announced; a reload replaces them.
    pub cameras: Arc<Mutex<Vec<CameraConfig>>>,
}

impl Discovery {
    pub fn status_topic(&self) -> String {
        format!("{}/status", self.prefix)
    }
    /// Retained config messages for `cameras`; `remove` = empty payloads, which delete the entities.
    pub fn messages(&self, topics: &Topics, cameras: &[CameraConfig], remove: bool) -> Vec<OutMsg> {
        configs(topics, &self.prefix, &self.node, cameras)
            .into_iter()
            .map(|(t, v)| {
                let payload = if remove {
                    Vec::new()
                } else {
                    v.to_string().into_bytes()
                };
                OutMsg::retained(t, payload)
            })
            .collect()
    }
    pub async fn announce(&self, topics: &Topics, out: &mpsc::Sender<OutMsg>) {
        let cams = self.cameras.lock().map(|c| c.clone()).unwrap_or_default();
        for m in self.messages(topics, &cams, false) {
            let _ = out.send(m).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_device_per_camera_unique_ids_and_the_documented_topics() {
        let cams: Vec<CameraConfig> = vec![
            toml::from_str("name = \"gate\"\nurl = \"test://\"\n").expect("cam"),
            toml::from_str("name = \"yard\"\nurl = \"test://\"\nenabled = false\n").expect("cam"),
        ];
        let c = configs(
            &Topics::new("sw"),
            "homeassistant",
            &node_id("scene watch"),
            &cams,
        );
        // gate: person + vehicle (default rules) × 3 entities + 1 switch; yard is disabled
        assert_eq!(c.len(), 7);
        let ids: std::collections::HashSet<_> =
            c.iter().map(|(_, v)| v["unique_id"].clone()).collect();
        assert_eq!(ids.len(), c.len());
        assert!(c
            .iter()
            .all(|(_, v)| v["device"]["identifiers"][0] == "scenewatch_scene_watch_gate"));
        assert!(c
            .iter()
            .all(|(_, v)| v["availability"][0]["topic"] == "sw/status"));
        let occ = c
            .iter()
            .find(|(t, _)| t == "homeassistant/binary_sensor/scenewatch_scene_watch_gate_person_occupancy/config")
            .map(|(_, v)| v)
            .expect("occupancy");
        assert_eq!(occ["state_topic"], "sw/gate/person/count");
        let sw = c
            .iter()
            .find(|(t, _)| t.contains("/switch/"))
            .map(|(_, v)| v)
            .expect("switch");
        assert_eq!(sw["command_topic"], "sw/gate/set");
        assert_eq!(sw["payload_off"], "{\"detect\": false}");
    }
}
