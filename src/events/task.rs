//! The events task: feeds each inference output and `set` command to the rule [`Engine`], attaches evidence
//! (snapshots, recordings) to the alerts it returns, and publishes alerts, counts and summaries. Ends when
//! inference closes its channel.

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::control::Command;
use crate::infer::worker::InferOut;
use crate::publish::topics::Topics;
use crate::publish::OutMsg;
use crate::telemetry::Metrics;

use super::evidence::Evidence;
use super::rules;
use super::Engine;

/// Runs until inference closes `input`; `control` carries `set` commands (camera, command).
pub async fn run(
    mut engine: Engine,
    mut input: mpsc::Receiver<InferOut>,
    mut control: mpsc::Receiver<(String, Command)>,
    out: mpsc::Sender<OutMsg>,
    topics: Topics,
    metrics: Arc<Metrics>,
    evidence: Evidence,
) {
    let mut control_open = true;
    let (mut snaps, mut recordings) = evidence.writers(&topics, &metrics);
    loop {
        let (alerts, clip) = tokio::select! {
            msg = input.recv() => match msg {
                Some(msg) => {
                    let alerts = engine.handle(&msg);
                    match msg {
                        InferOut::Result(r) => (alerts, Some(r)),
                        _ => (alerts, None),
                    }
                }
                None => break,
            },
            c = control.recv(), if control_open => match c {
                Some((camera, Command::Snapshot)) => {
                    if let Some(s) = snaps.as_ref() {
                        if let Some(msg) = s.manual(&camera).await {
                            let _ = out.send(msg).await;
                        }
                    }
                    continue;
                }
                Some((camera, cmd)) => (engine.command(&camera, &cmd), None),
                None => {
                    control_open = false;
                    continue;
                }
            },
        };
        let handled = std::time::Instant::now();
        if let (Some(s), Some(r)) = (snaps.as_mut(), clip.as_ref()) {
            s.remember(r);
        }
        for mut alert in alerts {
            if let (Some(s), Some(r)) = (snaps.as_mut(), clip.as_ref()) {
                if let Some((_, msg, sref)) = s.for_alert(&alert, r).await {
                    alert.snapshot = Some(sref);
                    let _ = out.send(msg).await;
                }
            }
            if let Some(rec) = recordings.as_mut() {
                alert.recording = rec.on_alert(&alert, clip.as_deref()).await;
            }
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
            if alert.kind == "label" {
                let count = OutMsg::retained(
                    topics.count(&alert.camera, &alert.rule),
                    alert.count.to_string().into_bytes(),
                );
                let _ = out.send(count).await;
            }
            if out
                .send(OutMsg::alert(topics.alerts(&alert.camera), payload))
                .await
                .is_err()
            {
                tracing::error!("publisher is gone; alerts can no longer be delivered");
                return;
            }
        }
        if let Some(r) = clip.as_ref() {
            metrics
                .stages
                .events
                .observe(handled.elapsed().as_secs_f64());
            let now = chrono::Utc::now();
            for f in &r.frames {
                let us = (now - f.wall).num_microseconds().unwrap_or(0).max(0);
                metrics.record_frame_latency(us as f64 / 1e6);
            }
        }
        for s in engine.take_summaries() {
            tracing::info!(camera = %s.camera, "summary: {}", s.text);
            match serde_json::to_vec(&s) {
                Ok(p) => {
                    let _ = out
                        .send(OutMsg::summary(topics.summary(&s.camera), p))
                        .await;
                }
                Err(e) => tracing::error!(error = %e, "could not serialise a summary"),
            }
        }
    }
}
