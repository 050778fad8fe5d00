//! The MQTT publisher task: owns the rumqttc client, an ordered outbox and delivery confirmation.
//!
//! Why not just `client.publish()`: rumqttc keeps unsent QoS1 publishes only in its request channel and, on a
//! reconnect with a clean session, clears them (eventloop.rs: "If it's a new session, clear the pending
//! packets") — a broker outage would silently lose alerts. So the outbox here is ours: one message in flight at a
//! time, removed only on its PUBACK, re-sent after every reconnect. Delivery is at-least-once; alert ids let
//! consumers drop the rare duplicate (a PUBACK lost with the connection). `<prefix>/status` is `online` after
//! every connect, `offline` as the last will, `stopped` on a clean exit.
//!
//! The rumqttc event loop is polled in its own task (poll() is not meant to be raced in select!) and forwards
//! events here over a bounded channel.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{AsyncClient, Event, LastWill, MqttOptions, Outgoing, Packet, QoS};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::topics::Topics;
use super::{MsgClass, OutMsg};
use crate::config::MqttConfig;
use crate::telemetry::Metrics;

/// How the publisher finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishReport {
    pub delivered: u64,
    /// Messages still undelivered when the drain timeout expired (0 = everything acknowledged).
    pub undelivered: usize,
    pub stopped_published: bool,
}

enum LoopEvent {
    Connected,
    PubAck,
    Disconnected(String),
    DisconnectSent,
}

fn options(cfg: &MqttConfig, topics: &Topics) -> MqttOptions {
    let mut o = MqttOptions::new(cfg.client_id.clone(), cfg.host.clone(), cfg.port);
    o.set_keep_alive(Duration::from_secs(cfg.keep_alive_secs));
    o.set_clean_session(true);
    o.set_max_packet_size(16 * 1024 * 1024, 16 * 1024 * 1024);
    o.set_last_will(LastWill::new(
        topics.status(),
        "offline",
        QoS::AtLeastOnce,
        true,
    ));
    if let Some(user) = &cfg.username {
        o.set_credentials(user.clone(), cfg.password.clone().unwrap_or_default());
    }
    o
}

/// Polls the rumqttc event loop, backing off while the broker is unreachable (poll() returns at once then).
async fn poll_loop(
    mut eventloop: rumqttc::EventLoop,
    tx: mpsc::Sender<LoopEvent>,
    max_backoff: Duration,
) {
    let mut backoff = Duration::from_millis(250);
    loop {
        let ev = match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                backoff = Duration::from_millis(250);
                LoopEvent::Connected
            }
            Ok(Event::Incoming(Packet::PubAck(_))) => LoopEvent::PubAck,
            Ok(Event::Outgoing(Outgoing::Disconnect)) => {
                let _ = tx.send(LoopEvent::DisconnectSent).await;
                return;
            }
            Ok(_) => continue,
            Err(e) => {
                if tx
                    .send(LoopEvent::Disconnected(e.to_string()))
                    .await
                    .is_err()
                {
                    return;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(max_backoff);
                continue;
            }
        };
        if tx.send(ev).await.is_err() {
            return;
        }
    }
}

/// Runs until `input` closes and everything queued is acknowledged (or `drain_timeout` passes after that).
pub async fn run(
    cfg: MqttConfig,
    topics: Topics,
    mut input: mpsc::Receiver<OutMsg>,
    drain_timeout: Duration,
    metrics: Arc<Metrics>,
) -> PublishReport {
    let (client, eventloop) = AsyncClient::new(options(&cfg, &topics), 16);
    let (ev_tx, mut events) = mpsc::channel(64);
    let max_backoff = Duration::from_secs_f64(cfg.reconnect_max_secs.max(0.25));
    let poller = tokio::spawn(poll_loop(eventloop, ev_tx, max_backoff));

    let status_msg = |s: &str| OutMsg::retained(topics.status(), s.as_bytes().to_vec());
    let mut queue: VecDeque<OutMsg> = VecDeque::new();
    let mut inflight: Option<OutMsg> = None;
    let mut connected = false;
    let mut input_open = true;
    let mut drain_deadline: Option<Instant> = None;
    let mut stopped_queued = false;
    let mut stopped_published = false;
    let mut delivered = 0u64;
    let mut last_error: Option<String> = None;

    loop {
        if connected && inflight.is_none() {
            if let Some(m) = queue.pop_front() {
                let qos = QoS::AtLeastOnce;
                match client.try_publish(m.topic.clone(), qos, m.retain, m.payload.clone()) {
                    Ok(()) => {
                        metrics.messages_published.inc();
                        inflight = Some(m);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "mqtt request channel refused a publish; will retry");
                        queue.push_front(m);
                    }
                }
            }
        }
        if !input_open && queue.is_empty() && inflight.is_none() {
            if !stopped_queued {
                stopped_queued = true;
                queue.push_back(status_msg("stopped"));
                continue;
            }
            stopped_published = true;
            break;
        }
        let deadline = drain_deadline.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            biased;
            ev = events.recv() => match ev {
                Some(LoopEvent::Connected) => {
                    if !connected {
                        tracing::info!(host = %cfg.host, port = cfg.port, "connected to MQTT broker");
                    }
                    connected = true;
                    last_error = None;
                    // whatever was in flight may never have reached the broker: send it again, after `online`
                    if let Some(m) = inflight.take() {
                        queue.push_front(m);
                    }
                    if !stopped_queued {
                        queue.push_front(status_msg("online"));
                    }
                }
                Some(LoopEvent::PubAck) => {
                    if let Some(m) = inflight.take() {
                        delivered += 1;
                        metrics.messages_acked.inc();
                        if m.topic == topics.status() && m.payload == b"stopped" {
                            stopped_published = true;
                        }
                    }
                }
                Some(LoopEvent::Disconnected(e)) => {
                    if connected || last_error.as_deref() != Some(e.as_str()) {
                        tracing::warn!(host = %cfg.host, port = cfg.port, error = %e, queued = queue.len() + inflight.is_some() as usize, "MQTT broker unreachable; retrying");
                    }
                    last_error = Some(e);
                    connected = false;
                    if let Some(m) = inflight.take() {
                        queue.push_front(m);
                    }
                }
                Some(LoopEvent::DisconnectSent) | None => break,
            },
            m = input.recv(), if input_open && queue.len() < cfg.outbox_capacity => match m {
                Some(m) => enqueue(&mut queue, m),
                None => {
                    input_open = false;
                    drain_deadline = Some(Instant::now() + drain_timeout);
                }
            },
            _ = tokio::time::sleep_until(deadline), if drain_deadline.is_some() => {
                tracing::error!(undelivered = queue.len() + inflight.is_some() as usize, "drain timeout: broker did not acknowledge everything");
                break;
            }
        }
    }
    let undelivered = queue
        .iter()
        .chain(inflight.iter())
        .filter(|m| !(m.topic == topics.status() && m.class == MsgClass::Retained))
        .count();
    if connected {
        // DISCONNECT must actually be sent, or the broker publishes the will (`offline`) over our `stopped`
        if client.disconnect().await.is_ok() {
            let wait = tokio::time::timeout(Duration::from_secs(2), async {
                while let Some(ev) = events.recv().await {
                    if matches!(ev, LoopEvent::DisconnectSent) {
                        break;
                    }
                }
            });
            let _ = wait.await;
        }
    }
    poller.abort();
    PublishReport {
        delivered,
        undelivered,
        stopped_published,
    }
}

/// Retained messages supersede a queued older one on the same topic; alerts always queue in order.
fn enqueue(queue: &mut VecDeque<OutMsg>, m: OutMsg) {
    if m.class == MsgClass::Retained {
        if let Some(pos) = queue
            .iter()
            .position(|q| q.class == MsgClass::Retained && q.topic == m.topic)
        {
            queue.remove(pos);
        }
    }
    queue.push_back(m);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retained_state_is_coalesced_but_alerts_are_not() {
        let mut q = VecDeque::new();
        enqueue(
            &mut q,
            OutMsg::retained("p/cam/state".into(), b"a".to_vec()),
        );
        enqueue(&mut q, OutMsg::alert("p/cam/alerts".into(), b"1".to_vec()));
        enqueue(&mut q, OutMsg::alert("p/cam/alerts".into(), b"2".to_vec()));
        enqueue(
            &mut q,
            OutMsg::retained("p/cam/state".into(), b"b".to_vec()),
        );
        let got: Vec<_> = q
            .iter()
            .map(|m| String::from_utf8_lossy(&m.payload).to_string())
            .collect();
        assert_eq!(got, vec!["1", "2", "b"]);
    }
}
