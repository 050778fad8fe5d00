//! The MQTT contract in code: every topic scenewatch publishes or reads is built here (see docs/mqtt.md).

#[derive(Debug, Clone)]
pub struct Topics {
    prefix: String,
}

impl Topics {
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.trim_end_matches('/').to_string(),
        }
    }
    /// `online` (retained, on every connect) / `stopped` (clean exit) / `offline` (last will). Plain text.
    pub fn status(&self) -> String {
        format!("{}/status", self.prefix)
    }
    /// Retained JSON: version, models with the execution provider each really uses, cameras.
    pub fn info(&self) -> String {
        format!("{}/info", self.prefix)
    }
    /// Retained JSON: camera state (running / retrying / ended), counts, fps.
    pub fn camera_state(&self, camera: &str) -> String {
        format!("{}/{camera}/state", self.prefix)
    }
    /// JSON reports of things that went wrong at run time (malformed commands, spool trouble). Not retained.
    pub fn errors(&self) -> String {
        format!("{}/errors", self.prefix)
    }
    /// Subscription for every camera's command topic, `<prefix>/<camera>/set`.
    pub fn set_filter(&self) -> String {
        format!("{}/+/set", self.prefix)
    }
    /// The camera a command topic addresses, or None when `topic` is not a `<prefix>/<camera>/set` topic.
    pub fn camera_of_set<'a>(&self, topic: &'a str) -> Option<&'a str> {
        let rest = topic
            .strip_prefix(self.prefix.as_str())?
            .strip_prefix('/')?;
        let camera = rest.strip_suffix("/set")?;
        (!camera.is_empty() && !camera.contains('/')).then_some(camera)
    }
    /// Retained JPEG of the latest alert's best frame for `label` (a rule name; a prompt's [`slug`] for prompt
    /// alerts; `latest` for snapshots asked for by command).
    pub fn snapshot(&self, camera: &str, label: &str) -> String {
        format!("{}/{camera}/{label}/snapshot", self.prefix)
    }
    /// Retained integer: objects of `label` in view now (0 when its alert ended). Home Assistant's sensors read it.
    /// Finished alert recordings (`<prefix>/<camera>/recordings`).
    pub fn recordings(&self, camera: &str) -> String {
        format!("{}/{camera}/recordings", self.prefix)
    }
    pub fn count(&self, camera: &str, label: &str) -> String {
        format!("{}/{camera}/{label}/count", self.prefix)
    }
    /// QoS1 JSON period summaries (spooled, with `seq`).
    pub fn summary(&self, camera: &str) -> String {
        format!("{}/{camera}/summary", self.prefix)
    }
    /// A camera's command topic.
    pub fn set(&self, camera: &str) -> String {
        format!("{}/{camera}/set", self.prefix)
    }
    /// QoS1 JSON alert messages (new / update / end).
    pub fn alerts(&self, camera: &str) -> String {
        format!("{}/{camera}/alerts", self.prefix)
    }
    /// Plain `ON`/`OFF` switch for the camera's detection (Frigate-style, next to the JSON `set` topic).
    pub fn detect_set(&self, camera: &str) -> String {
        format!("{}/{camera}/detect/set", self.prefix)
    }
    /// Retained `ON`/`OFF`: whether the camera's detection is on.
    pub fn detect_state(&self, camera: &str) -> String {
        format!("{}/{camera}/detect/state", self.prefix)
    }
    /// Plain `ON`/`OFF` switch arming one rule; the rule is named by its [`slug`].
    pub fn armed_set(&self, camera: &str, rule: &str) -> String {
        format!("{}/{camera}/{}/armed/set", self.prefix, slug(rule))
    }
    /// Retained `ON`/`OFF`: whether the rule is armed.
    pub fn armed_state(&self, camera: &str, rule: &str) -> String {
        format!("{}/{camera}/{}/armed/state", self.prefix, slug(rule))
    }
    /// Retained `ON`/`OFF`: whether a prompt's alert is open (Home Assistant's binary sensor per prompt reads it).
    /// A task head's current class (retained JSON).
    pub fn classifier(&self, camera: &str, name: &str) -> String {
        format!("{}/{camera}/classifier/{}", self.prefix, slug(name))
    }
    pub fn prompt_active(&self, camera: &str, prompt: &str) -> String {
        format!("{}/{camera}/{}/active", self.prefix, slug(prompt))
    }
    /// Subscriptions for the plain `ON`/`OFF` switches of every camera and rule.
    pub fn switch_filters(&self) -> [String; 2] {
        [
            format!("{}/+/detect/set", self.prefix),
            format!("{}/+/+/armed/set", self.prefix),
        ]
    }
    /// What a plain switch topic addresses, or None when `topic` is not one.
    pub fn switch_of<'a>(&self, topic: &'a str) -> Option<SwitchTopic<'a>> {
        let rest = topic
            .strip_prefix(self.prefix.as_str())?
            .strip_prefix('/')?;
        let levels: Vec<&str> = rest.split('/').collect();
        match levels.as_slice() {
            [camera, "detect", "set"] if !camera.is_empty() => Some(SwitchTopic::Detect { camera }),
            [camera, rule, "armed", "set"] if !camera.is_empty() && !rule.is_empty() => {
                Some(SwitchTopic::Armed { camera, rule })
            }
            _ => None,
        }
    }
}

/// A plain `ON`/`OFF` command topic: which switch of which camera.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SwitchTopic<'a> {
    Detect {
        camera: &'a str,
    },
    /// `rule` is the topic level, a rule's [`slug`].
    Armed {
        camera: &'a str,
        rule: &'a str,
    },
}

/// A rule name (label or prompt text) as one topic level and id part: lowercase ASCII letters, digits, `_` and
/// `-`, everything else `_`, runs of `_` collapsed ("people walking on a path" → `people_walking_on_a_path`).
pub fn slug(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        let c = if c.is_ascii_alphanumeric() || c == '-' {
            c.to_ascii_lowercase()
        } else {
            '_'
        };
        if !(c == '_' && out.ends_with('_')) {
            out.push(c);
        }
    }
    let t = out.trim_matches('_');
    if t.is_empty() {
        "rule".to_string()
    } else {
        t.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_follow_the_documented_layout() {
        let t = Topics::new("scenewatch/");
        assert_eq!(t.status(), "scenewatch/status");
        assert_eq!(t.alerts("walkway"), "scenewatch/walkway/alerts");
        assert_eq!(t.camera_state("walkway"), "scenewatch/walkway/state");
        assert_eq!(t.camera_of_set("scenewatch/walkway/set"), Some("walkway"));
        assert_eq!(t.camera_of_set("scenewatch/a/b/set"), None);
        assert_eq!(t.camera_of_set("other/walkway/set"), None);
        assert_eq!(t.camera_of_set("scenewatch//set"), None);
        assert_eq!(t.detect_set("walkway"), "scenewatch/walkway/detect/set");
        assert_eq!(
            t.armed_state("walkway", "People walking on a path!"),
            "scenewatch/walkway/people_walking_on_a_path/armed/state"
        );
        assert_eq!(
            t.switch_of("scenewatch/walkway/detect/set"),
            Some(SwitchTopic::Detect { camera: "walkway" })
        );
        assert_eq!(
            t.switch_of("scenewatch/walkway/person/armed/set"),
            Some(SwitchTopic::Armed {
                camera: "walkway",
                rule: "person"
            })
        );
        assert_eq!(t.switch_of("scenewatch/walkway/set"), None);
        assert_eq!(t.switch_of("scenewatch//detect/set"), None);
        assert_eq!(t.switch_of("scenewatch/a/b/c/armed/set"), None);
        assert_eq!(slug("person_lying"), "person_lying");
        assert_eq!(slug("  "), "rule");
    }
}
