//! Events stage (async task): applies each camera's rules to clip results in order and turns the resulting
//! alert lifecycle messages into outbound MQTT messages. Ends when inference closes its channel.

pub mod prompts;
pub mod rules;

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::config::CameraConfig;
use crate::infer::worker::InferOut;
use crate::publish::topics::Topics;
use crate::publish::OutMsg;
use crate::telemetry::Metrics;
use prompts::{PromptObs, PromptState};
use rules::{Alert, RuleState};

/// Per-camera rule states.
pub struct Engine {
    cameras: HashMap<String, Vec<RuleState>>,
    prompts: HashMap<String, Vec<PromptState>>,
    new_id: Box<dyn FnMut() -> String + Send>,
}

impl Engine {
    pub fn new(cameras: &[CameraConfig], new_id: Box<dyn FnMut() -> String + Send>) -> Self {
        let cfgs = cameras;
        let cameras = cfgs
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
        let prompts = cfgs
            .iter()
            .map(|c| {
                let name: Arc<str> = Arc::from(c.name.as_str());
                (
                    c.name.clone(),
                    c.prompts
                        .iter()
                        .map(|p| PromptState::new(name.clone(), p.clone()))
                        .collect(),
                )
            })
            .collect();
        Self {
            cameras,
            prompts,
            new_id,
        }
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
                if let (Some(states), Some(scores)) =
                    (self.prompts.get_mut(&*r.camera), r.prompts.as_ref())
                {
                    for state in states.iter_mut() {
                        let Some(k) = scores.texts.iter().position(|t| *t == state.cfg.text) else {
                            continue;
                        };
                        let per_frame = scores.frame_scores(k);
                        let obs = PromptObs {
                            index: r.clip_index,
                            start: r.start.as_secs_f64(),
                            end: r.end.as_secs_f64(),
                            score: scores.clip[k],
                            frames: r
                                .frames
                                .iter()
                                .zip(per_frame)
                                .map(|(f, s)| (f.pts.as_secs_f64(), f.wall, s))
                                .collect(),
                        };
                        out.extend(state.on_clip(&obs, &mut *self.new_id));
                    }
                }
            }
            InferOut::CameraEnded { camera } => {
                if let Some(rules) = self.cameras.get_mut(&**camera) {
                    out.extend(rules.iter_mut().filter_map(|r| r.finish()));
                }
                if let Some(states) = self.prompts.get_mut(&**camera) {
                    out.extend(states.iter_mut().filter_map(|p| p.finish()));
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
