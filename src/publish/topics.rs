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
    }
}
