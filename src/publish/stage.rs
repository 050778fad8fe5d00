//! The publish stage as the supervisor wires it: [`PublisherStage::build`] checks the broker options (TLS files are
//! read), the drain timeout and opens the spool, and makes the outbox; [`PublisherStage::spawn`] starts the
//! publisher task, which ends once every outbox sender is gone and it has delivered (or spooled) what was left.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::mqtt::{self, Incoming, PublishReport, Publisher};
use super::spool::Spool;
use super::switches::SwitchStore;
use super::topics::Topics;
use super::OutMsg;
use crate::config::Config;
use crate::telemetry::Metrics;

/// Where the outbox goes.
enum Output {
    /// The MQTT broker, through the spool.
    Mqtt(Box<Publisher>),
    /// An in-process receiver (see [`PublisherStage::local`]).
    Local(mpsc::Sender<OutMsg>),
}

/// The publisher, checked and with its spool open, not started.
pub struct PublisherStage {
    output: Output,
    /// Kept only to hand out clones: dropped when the stage starts, so the outbox closes with its last producer.
    outbox: mpsc::Sender<OutMsg>,
    input: mpsc::Receiver<OutMsg>,
    /// Runtime switches kept in the spool's database (None without a spool).
    switches: Option<SwitchStore>,
}

/// What the broker sends scenewatch, waiting for the control stage.
const COMMANDS_CAPACITY: usize = 1024;

impl PublisherStage {
    /// Also returns what the broker sends scenewatch (`set` commands, connects, Home Assistant's status) for the
    /// control stage. Errors name the config key.
    pub async fn build(
        cfg: &Config,
        topics: &Topics,
        metrics: &Arc<Metrics>,
    ) -> Result<(Self, mpsc::Receiver<Incoming>), String> {
        // TLS files are read now: a wrong CA path is a start-up error, not an endless reconnect loop
        mqtt::options(&cfg.mqtt, topics)?;
        let drain_timeout = cfg.shutdown.drain_timeout().map_err(|p| p.to_string())?;
        let spool_path = cfg.spool.resolved_path();
        let max_bytes = cfg.spool.max_bytes();
        let spool = tokio::task::spawn_blocking(move || Spool::open(&spool_path, max_bytes))
            .await
            .map_err(|e| format!("opening the spool panicked: {e}"))?
            .map_err(|e| format!("cannot open the delivery spool: {e}"))?;
        let switches = spool
            .switches()
            .map_err(|e| format!("cannot open the switches table of the spool: {e}"))?;
        let (outbox, input) = mpsc::channel::<OutMsg>(cfg.mqtt.outbox_capacity.max(16));
        // room for the retained discovery configs the broker sends at each connect (stale-entity check), on top of
        // commands
        let (cmd_tx, cmd_rx) = mpsc::channel::<Incoming>(COMMANDS_CAPACITY);
        let ha = &cfg.homeassistant;
        let node = super::discovery::node_id(&cfg.mqtt.client_id);
        let publisher = Publisher {
            cfg: cfg.mqtt.clone(),
            topics: topics.clone(),
            drain_timeout,
            metrics: metrics.clone(),
            spool: Some(spool),
            commands: Some(cmd_tx),
            subscriptions: if ha.enabled {
                vec![
                    format!("{}/status", ha.discovery_prefix),
                    super::discovery::own_configs_filter(&ha.discovery_prefix, &node),
                ]
            } else {
                Vec::new()
            },
            retained_only: vec![super::discovery::own_configs_filter(
                &ha.discovery_prefix,
                &node,
            )],
        };
        Ok((
            Self {
                output: Output::Mqtt(Box::new(publisher)),
                outbox,
                input,
                switches: Some(switches),
            },
            cmd_rx,
        ))
    }

    /// A stage with no broker and no spool: every message is handed to `sink` in order and counts as delivered
    /// once `sink` took it (for `scenewatch eval`, which reads the alerts in-process). `sink` is bounded, so a slow
    /// reader holds the stages back rather than losing messages; a reader that went away gets nothing more and the
    /// rest is discarded. The commands receiver never yields (no broker sends commands).
    /// `capacity`: the outbox's, as `[mqtt] outbox_capacity` for the broker.
    pub fn local(capacity: usize, sink: mpsc::Sender<OutMsg>) -> (Self, mpsc::Receiver<Incoming>) {
        let (outbox, input) = mpsc::channel::<OutMsg>(capacity.max(1));
        let (_, cmd_rx) = mpsc::channel::<Incoming>(1);
        (
            Self {
                output: Output::Local(sink),
                outbox,
                input,
                switches: None,
            },
            cmd_rx,
        )
    }

    /// Where detect on/off and rule arming are kept across restarts (in the spool file); None for a local stage.
    pub fn switches(&self) -> Option<SwitchStore> {
        self.switches.clone()
    }

    /// A producer's end of the outbox.
    pub fn outbox(&self) -> mpsc::Sender<OutMsg> {
        self.outbox.clone()
    }

    /// Starts the publisher task; it returns what it delivered once the outbox has closed.
    pub fn spawn(self) -> JoinHandle<PublishReport> {
        match self.output {
            Output::Mqtt(publisher) => tokio::spawn(publisher.run(self.input)),
            Output::Local(sink) => tokio::spawn(run_local(sink, self.input)),
        }
    }
}

async fn run_local(sink: mpsc::Sender<OutMsg>, mut input: mpsc::Receiver<OutMsg>) -> PublishReport {
    let mut delivered = 0;
    let mut reader = true;
    while let Some(msg) = input.recv().await {
        if reader && sink.send(msg).await.is_err() {
            tracing::warn!(
                "the in-process reader of published messages went away; discarding the rest"
            );
            reader = false;
        }
        delivered += 1;
    }
    PublishReport {
        delivered,
        undelivered: 0,
        spooled: 0,
        stopped_published: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_local_stage_hands_over_everything_in_order_and_counts_it_delivered() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let (sink, mut read) = mpsc::channel(2);
            let (stage, mut commands) = PublisherStage::local(4, sink);
            let out = stage.outbox();
            let task = stage.spawn();
            let reader = tokio::spawn(async move {
                let mut topics = Vec::new();
                while let Some(m) = read.recv().await {
                    topics.push(m.topic);
                }
                topics
            });
            for i in 0..10 {
                out.send(OutMsg::alert(format!("t/{i}"), Vec::new()))
                    .await
                    .expect("send");
            }
            drop(out);
            let report = task.await.expect("stage");
            assert_eq!(
                (report.delivered, report.undelivered, report.spooled),
                (10, 0, 0)
            );
            let want: Vec<String> = (0..10).map(|i| format!("t/{i}")).collect();
            assert_eq!(reader.await.expect("reader"), want);
            // no broker: the commands input is closed from the start
            assert!(commands.recv().await.is_none());
        });
    }

    #[test]
    fn a_reader_that_went_away_does_not_block_the_stages() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let (sink, read) = mpsc::channel(1);
            drop(read);
            let (stage, _commands) = PublisherStage::local(1, sink);
            let out = stage.outbox();
            let task = stage.spawn();
            for i in 0..5 {
                out.send(OutMsg::alert(format!("t/{i}"), Vec::new()))
                    .await
                    .expect("send");
            }
            drop(out);
            assert_eq!(task.await.expect("stage").delivered, 5);
        });
    }
}
