//! The MQTT publisher task: owns the rumqttc client, an ordered outbox, the disk spool and delivery confirmation.
//!
//! Why not just `client.publish()`: rumqttc keeps unsent QoS1 publishes only in its request channel and, on a
//! reconnect with a clean session, clears them (eventloop.rs: "If it's a new session, clear the pending
//! packets") — a broker outage would silently lose alerts. So the outbox here is ours: one message in flight at a
//! time, removed only on its PUBACK, re-sent after every reconnect. Alerts and summaries are written to the disk
//! spool ([`super::spool`]) before they are queued, so a crash loses nothing either; the in-memory queue holds only
//! their spool ids. Delivery is at-least-once; alert ids and per-topic `seq` let consumers drop the rare duplicate
//! (a PUBACK lost with the connection, or a crash between PUBACK and the spool delete). `<prefix>/status` is
//! `online` after every connect, `offline` as the last will, `stopped` on a clean exit.
//!
//! The rumqttc event loop is polled in its own task (poll() is not meant to be raced in select!) and forwards
//! events here over a bounded channel. Commands arriving on `<prefix>/+/set` are handed to the control stage.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{
    AsyncClient, Event, LastWill, MqttOptions, Outgoing, Packet, QoS, TlsConfiguration, Transport,
};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::spool::Spool;
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
    /// Of those, how many are safe in the spool and will be sent on the next start.
    pub spooled: usize,
    pub stopped_published: bool,
}

/// A message that arrived on a subscribed topic (`<prefix>/<camera>/set`, the plain switches, Home Assistant's
/// status and discovery configs).
#[derive(Debug, Clone, Default)]
pub struct Incoming {
    pub topic: String,
    pub payload: Vec<u8>,
    /// Set on a retained message the broker sent because of a new subscription (MQTT 3.1.1 clears the flag on
    /// messages forwarded live).
    pub retain: bool,
}

enum LoopEvent {
    Connected,
    PubAck,
    Publish(Incoming),
    Disconnected(String),
    DisconnectSent,
}

/// Everything the publisher task owns.
pub struct Publisher {
    pub cfg: MqttConfig,
    pub topics: Topics,
    pub drain_timeout: Duration,
    pub metrics: Arc<Metrics>,
    /// Disk spool for alerts and summaries; None keeps them in memory only.
    pub spool: Option<Spool>,
    /// Where commands go; full → the command is dropped, counted and reported on `<prefix>/errors`. After every
    /// connect an `Incoming` with an empty topic is sent too, so the control stage can re-announce itself.
    pub commands: Option<mpsc::Sender<Incoming>>,
    /// More topics to subscribe to (e.g. `homeassistant/status`); what arrives goes to `commands`.
    pub subscriptions: Vec<String>,
    /// Of those, filters whose messages are passed on only when retained (what the broker holds when scenewatch
    /// subscribes): Home Assistant discovery configs, read once per connect to find stale ones, not the echo of
    /// every config scenewatch publishes itself.
    pub retained_only: Vec<String>,
}

/// An outbox entry: spooled messages are kept on disk and only referenced here.
enum Entry {
    Mem(OutMsg),
    Spooled(u64),
}

struct InFlight {
    msg: OutMsg,
    spool_id: Option<u64>,
}

/// Builds the client options; fails with a message naming the config key when TLS material is unusable.
pub fn options(cfg: &MqttConfig, topics: &Topics) -> Result<MqttOptions, String> {
    let mut o = MqttOptions::new(cfg.client_id.clone(), cfg.host.clone(), cfg.port);
    o.set_keep_alive(Duration::from_secs(cfg.keep_alive_secs));
    o.set_clean_session(true);
    // what we send is capped by `max_message_kb` before it reaches the client (topic and header on top)
    let outgoing = cfg.max_message_kb as usize * 1024 + 64 * 1024;
    o.set_max_packet_size(16 * 1024 * 1024, outgoing);
    o.set_last_will(LastWill::new(
        topics.status(),
        "offline",
        QoS::AtLeastOnce,
        true,
    ));
    if let Some(user) = &cfg.username {
        let password = cfg.password.as_ref().map(|p| p.expose()).unwrap_or("");
        o.set_credentials(user.clone(), password);
    }
    if cfg.tls {
        let tls = super::tls::client_config(cfg)?;
        o.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
            Arc::new(tls),
        )));
    }
    Ok(o)
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
            Ok(Event::Incoming(Packet::Publish(p))) => LoopEvent::Publish(Incoming {
                topic: p.topic,
                payload: p.payload.to_vec(),
                retain: p.retain,
            }),
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

/// Spool I/O waits for the disk (fsync): keep it off the async worker's hot path.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

fn error_payload(source: &str, error: &str, extra: serde_json::Value) -> Vec<u8> {
    let mut v = serde_json::json!({
        "schema": 1,
        "source": source,
        "error": error,
        "at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    });
    if let (Some(obj), serde_json::Value::Object(more)) = (v.as_object_mut(), extra) {
        obj.extend(more);
    }
    v.to_string().into_bytes()
}

impl Publisher {
    /// Puts `m` in the outbox, through the spool when its class is spooled. A spool that cannot be written
    /// (disk full, I/O error) does not lose the message: it stays in memory and the failure is reported.
    fn admit(&mut self, queue: &mut VecDeque<Entry>, spool_failing: &mut bool, m: OutMsg) {
        let limit = self.cfg.max_message_kb as usize * 1024;
        if m.payload.len() > limit {
            // never sent: the client (or the broker) would refuse it again on every attempt, and everything queued
            // behind it would wait
            self.metrics.messages_too_large.inc();
            tracing::error!(topic = %m.topic, bytes = m.payload.len(), limit, "message larger than mqtt.max_message_kb: dropped");
            queue.push_back(Entry::Mem(OutMsg::error(
                self.topics.errors(),
                error_payload(
                    "publish",
                    &format!(
                        "a message of {} bytes on {} is larger than mqtt.max_message_kb ({limit} bytes); it was dropped",
                        m.payload.len(),
                        m.topic
                    ),
                    serde_json::json!({"topic": m.topic}),
                ),
            )));
            return;
        }
        if !m.class.spooled() {
            enqueue(queue, m);
            return;
        }
        let Some(spool) = self.spool.as_mut() else {
            queue.push_back(Entry::Mem(m));
            return;
        };
        match blocking(|| spool.append(&m)) {
            Ok(a) => {
                if *spool_failing {
                    tracing::info!(path = %spool.path().display(), "spool writable again");
                    *spool_failing = false;
                }
                if a.evicted != (0, 0) {
                    tracing::error!(
                        path = %spool.path().display(),
                        summaries = a.evicted.0,
                        alerts = a.evicted.1,
                        "spool full (spool.max_mb): evicted the oldest undelivered messages"
                    );
                    self.metrics.spool_evicted.add(a.evicted.0 + a.evicted.1);
                }
                self.metrics.spool_pending.set(spool.len() as u64);
                queue.push_back(Entry::Spooled(a.id));
            }
            Err(e) => {
                self.metrics.spool_errors.inc();
                let seq = spool.next_seq(&m.topic);
                let m = OutMsg {
                    payload: super::spool::with_seq(&m.payload, seq),
                    ..m
                };
                if !*spool_failing {
                    *spool_failing = true;
                    tracing::error!(error = %e, "cannot write the spool; keeping messages in memory until it works again (they would be lost on a crash)");
                    queue.push_back(Entry::Mem(OutMsg::error(
                        self.topics.errors(),
                        error_payload("spool", &e.to_string(), serde_json::json!({})),
                    )));
                }
                queue.push_back(Entry::Mem(m));
            }
        }
    }

    /// Takes the next message to send from the outbox, skipping spool entries that were evicted.
    fn next(&mut self, queue: &mut VecDeque<Entry>) -> Option<InFlight> {
        while let Some(e) = queue.pop_front() {
            match e {
                Entry::Mem(msg) => {
                    return Some(InFlight {
                        msg,
                        spool_id: None,
                    })
                }
                Entry::Spooled(id) => {
                    let Some(spool) = self.spool.as_ref() else {
                        continue;
                    };
                    match blocking(|| spool.get(id)) {
                        Ok(Some(msg)) => {
                            return Some(InFlight {
                                msg,
                                spool_id: Some(id),
                            })
                        }
                        Ok(None) => continue,
                        Err(e) => {
                            tracing::error!(error = %e, id, "cannot read a spooled message; it stays on disk for the next start");
                            self.metrics.spool_errors.inc();
                        }
                    }
                }
            }
        }
        None
    }

    fn acked(&mut self, f: InFlight) {
        if let (Some(id), Some(spool)) = (f.spool_id, self.spool.as_mut()) {
            if let Err(e) = blocking(|| spool.remove(id)) {
                // delivered anyway; it may be re-sent once after a restart, which seq lets consumers drop
                tracing::warn!(error = %e, id, "could not remove a delivered message from the spool");
                self.metrics.spool_errors.inc();
            }
            self.metrics.spool_pending.set(spool.len() as u64);
        }
    }

    fn command(&mut self, queue: &mut VecDeque<Entry>, c: Incoming) {
        let Some(tx) = &self.commands else { return };
        match tx.try_send(c) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(c)) => {
                self.metrics.commands_dropped.inc();
                queue.push_back(Entry::Mem(OutMsg::error(
                    self.topics.errors(),
                    error_payload(
                        "command",
                        "too many commands at once; this one was dropped",
                        serde_json::json!({"topic": c.topic}),
                    ),
                )));
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    /// Runs until `input` closes and everything queued is acknowledged (or `drain_timeout` passes after that).
    pub async fn run(mut self, mut input: mpsc::Receiver<OutMsg>) -> PublishReport {
        let cfg = self.cfg.clone();
        let topics = self.topics.clone();
        let opts = match options(&cfg, &topics) {
            Ok(o) => o,
            Err(e) => {
                // checked at start-up by the supervisor; reaching this means the files changed since
                tracing::error!(error = %e, "MQTT options are unusable");
                return PublishReport {
                    delivered: 0,
                    undelivered: 0,
                    spooled: self.spool.as_ref().map(|s| s.len()).unwrap_or(0),
                    stopped_published: false,
                };
            }
        };
        let (client, eventloop) = AsyncClient::new(opts, 16);
        let (ev_tx, mut events) = mpsc::channel(64);
        // validated at load; the second guard keeps the documented default rather than panicking
        let max_backoff = cfg.reconnect_max().unwrap_or(Duration::from_secs(30));
        let poller = tokio::spawn(poll_loop(eventloop, ev_tx, max_backoff));

        let status_msg = |s: &str| OutMsg::retained(topics.status(), s.as_bytes().to_vec());
        let mut queue: VecDeque<Entry> = VecDeque::new();
        // what a previous run raised but could not deliver goes first, in its original order
        if let Some(spool) = &self.spool {
            let left = spool.pending();
            if !left.is_empty() {
                tracing::info!(messages = left.len(), path = %spool.path().display(), "re-sending messages spooled by a previous run");
            }
            self.metrics.spool_pending.set(left.len() as u64);
            queue.extend(left.into_iter().map(Entry::Spooled));
        }
        let mut inflight: Option<InFlight> = None;
        let mut connected = false;
        let mut input_open = true;
        let mut drain_deadline: Option<Instant> = None;
        let mut stopped_queued = false;
        let mut stopped_published = false;
        let mut delivered = 0u64;
        let mut last_error: Option<String> = None;
        let mut spool_failing = false;
        let mut inflight_at = Instant::now();

        loop {
            if connected && inflight.is_none() {
                if let Some(f) = self.next(&mut queue) {
                    let m = &f.msg;
                    match client.try_publish(
                        m.topic.clone(),
                        QoS::AtLeastOnce,
                        m.retain,
                        m.payload.clone(),
                    ) {
                        Ok(()) => {
                            self.metrics.messages_published.inc();
                            inflight = Some(f);
                            inflight_at = Instant::now();
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "mqtt request channel refused a publish; will retry");
                            push_front(&mut queue, f);
                        }
                    }
                }
            }
            if !input_open && queue.is_empty() && inflight.is_none() {
                if !stopped_queued {
                    stopped_queued = true;
                    queue.push_back(Entry::Mem(status_msg("stopped")));
                    continue;
                }
                stopped_published = true;
                break;
            }
            let deadline =
                drain_deadline.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                biased;
                ev = events.recv() => match ev {
                    Some(LoopEvent::Connected) => {
                        if !connected {
                            tracing::info!(host = %cfg.host, port = cfg.port, tls = cfg.tls, "connected to MQTT broker");
                        }
                        connected = true;
                        last_error = None;
                        // clean session: subscriptions are gone after every reconnect
                        if let Some(tx) = &self.commands {
                            let _ = client.try_subscribe(topics.set_filter(), QoS::AtLeastOnce);
                            for t in topics.switch_filters() {
                                let _ = client.try_subscribe(t, QoS::AtLeastOnce);
                            }
                            for t in &self.subscriptions {
                                let _ = client.try_subscribe(t.clone(), QoS::AtLeastOnce);
                            }
                            let _ = tx.try_send(Incoming { topic: String::new(), payload: b"connected".to_vec(), retain: false });
                        }
                        // whatever was in flight may never have reached the broker: send it again, after `online`
                        if let Some(f) = inflight.take() {
                            push_front(&mut queue, f);
                        }
                        if !stopped_queued {
                            queue.push_front(Entry::Mem(status_msg("online")));
                        }
                    }
                    Some(LoopEvent::PubAck) => {
                        if let Some(f) = inflight.take() {
                            delivered += 1;
                            self.metrics.messages_acked.inc();
                            self.metrics.stages.publish.observe(inflight_at.elapsed().as_secs_f64());
                            if f.msg.topic == topics.status() && f.msg.payload == b"stopped" {
                                stopped_published = true;
                            }
                            self.acked(f);
                        }
                    }
                    Some(LoopEvent::Publish(c)) => {
                        let live_echo = !c.retain
                            && self.retained_only.iter().any(|f| rumqttc::matches(&c.topic, f));
                        if !live_echo {
                            self.command(&mut queue, c);
                        }
                    }
                    Some(LoopEvent::Disconnected(e)) => {
                        if connected || last_error.as_deref() != Some(e.as_str()) {
                            tracing::warn!(host = %cfg.host, port = cfg.port, error = %e, queued = queue.len() + inflight.is_some() as usize, "MQTT broker unreachable; retrying");
                        }
                        last_error = Some(e);
                        connected = false;
                        if let Some(f) = inflight.take() {
                            push_front(&mut queue, f);
                        }
                    }
                    Some(LoopEvent::DisconnectSent) | None => break,
                },
                m = input.recv(), if input_open && queue.len() < cfg.outbox_capacity => match m {
                    Some(m) => self.admit(&mut queue, &mut spool_failing, m),
                    None => {
                        input_open = false;
                        drain_deadline = Some(Instant::now() + self.drain_timeout);
                    }
                },
                _ = tokio::time::sleep_until(deadline), if drain_deadline.is_some() => {
                    tracing::error!(undelivered = queue.len() + inflight.is_some() as usize, "drain timeout: broker did not acknowledge everything");
                    break;
                }
            }
        }
        if let Some(f) = inflight.take() {
            push_front(&mut queue, f);
        }
        let mut undelivered = 0;
        let mut spooled = 0;
        for e in &queue {
            match e {
                Entry::Spooled(_) => {
                    undelivered += 1;
                    spooled += 1;
                }
                Entry::Mem(m) if m.class.spooled() => undelivered += 1,
                Entry::Mem(_) => {}
            }
        }
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
            spooled,
            stopped_published,
        }
    }
}

fn push_front(queue: &mut VecDeque<Entry>, f: InFlight) {
    queue.push_front(match f.spool_id {
        Some(id) => Entry::Spooled(id),
        None => Entry::Mem(f.msg),
    });
}

/// Retained messages supersede a queued older one on the same topic; alerts always queue in order.
fn enqueue(queue: &mut VecDeque<Entry>, m: OutMsg) {
    if m.class == MsgClass::Retained {
        if let Some(pos) = queue.iter().position(
            |q| matches!(q, Entry::Mem(q) if q.class == MsgClass::Retained && q.topic == m.topic),
        ) {
            queue.remove(pos);
        }
    }
    queue.push_back(Entry::Mem(m));
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
            .filter_map(|e| match e {
                Entry::Mem(m) => Some(String::from_utf8_lossy(&m.payload).to_string()),
                Entry::Spooled(_) => None,
            })
            .collect();
        assert_eq!(got, vec!["1", "2", "b"]);
    }
}
