//! Events stage (async task): applies each camera's rules to clip results in order and turns the resulting
//! alert lifecycle messages into outbound MQTT messages. Ends when inference closes its channel.

pub mod rules;

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::config::CameraConfig;
use crate::infer::worker::InferOut;
use crate::publish::topics::Topics;
use crate::publish::OutMsg;
use crate::telemetry::Metrics;
use rules::{Alert, RuleState};

/// Per-camera rule states.
pub struct Engine {
    cameras: HashMap<String, Vec<RuleState>>,
    new_id: Box<dyn FnMut() -> String + Send>,
}

impl Engine {
    pub fn new(cameras: &[CameraConfig], new_id: Box<dyn FnMut() -> String + Send>) -> Self {
        let cameras = cameras
            .iter()
            .map(|c| {
                let name: Arc<str> = Arc::from(c.name.as_str());
                (
                    c.name.clone(),
                    c.effective_rules()
                        .into_iter()
                        .map(|r| RuleState::new(name.clone(), r))
                        .collect(),
                )
            })
            .collect();
        Self { cameras, new_id }
    }

    /// Alerts caused by one inference output, in order.
    pub fn handle(&mut self, msg: &InferOut) -> Vec<Alert> {
        let mut out = Vec::new();
        match msg {
            InferOut::Result(r) => {
                let Some(rules) = self.cameras.get_mut(&*r.camera) else {
                    return out;
                };
                for rule in rules.iter_mut() {
                    let obs = rules::observe(
                        &rule.rule,
                        r.clip_index,
                        r.start.as_secs_f64(),
                        r.end.as_secs_f64(),
                        &r.frames,
                    );
                    out.extend(rule.on_clip(&obs, &mut *self.new_id));
                }
            }
            InferOut::CameraEnded { camera } => {
                if let Some(rules) = self.cameras.get_mut(&**camera) {
                    out.extend(rules.iter_mut().filter_map(|r| r.finish()));
                }
            }
        }
        out
    }
}

pub async fn run(
    mut engine: Engine,
    mut input: mpsc::Receiver<InferOut>,
    out: mpsc::Sender<OutMsg>,
    topics: Topics,
    metrics: Arc<Metrics>,
) {
    while let Some(msg) = input.recv().await {
        for alert in engine.handle(&msg) {
            if alert.kind_of_message == rules::AlertType::New {
                metrics.alerts_raised.inc();
            }
            tracing::info!(
                camera = %alert.camera,
                id = %alert.id,
                r#type = ?alert.kind_of_message,
                label = %alert.label,
                count = alert.count,
                "{}",
                alert.summary
            );
            let payload = match serde_json::to_vec(&alert) {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!(error = %e, "could not serialise an alert");
                    continue;
                }
            };
            if out
                .send(OutMsg::alert(topics.alerts(&alert.camera), payload))
                .await
                .is_err()
            {
                tracing::error!("publisher is gone; alerts can no longer be delivered");
                return;
            }
        }
    }
}
