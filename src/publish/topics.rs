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
    /// Retained JPEG of the latest alert's best frame for `label` (`prompt` for prompt alerts, `latest` for
    /// snapshots asked for by command).
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
    }
}
