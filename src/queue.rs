//! Bounded queues with an explicit full-policy, counted. Every hand-off between stages goes through one of
//! these (or a bounded tokio channel); nothing in the data path is unbounded.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender, TrySendError};

use crate::config::DropPolicy;

/// Counters of one queue, readable from anywhere (metrics, camera state).
#[derive(Debug, Default)]
pub struct QueueStats {
    pub pushed: AtomicU64,
    pub dropped: AtomicU64,
    /// Items waiting, as seen at the last push.
    pub depth: AtomicU64,
}

/// The sending side: applies the configured policy when the queue is full.
pub struct PolicySender<T> {
    tx: Sender<T>,
    /// Kept so `DropOldest` can evict from the front; crossbeam channels are MPMC.
    evict: Receiver<T>,
    policy: DropPolicy,
    stats: Arc<QueueStats>,
}

/// What happened to a pushed item.
#[derive(Debug, PartialEq, Eq)]
pub enum Pushed {
    Queued,
    /// Queued after evicting the oldest item.
    QueuedDroppedOldest,
    /// Not queued (drop-newest policy and the queue was full).
    DroppedNewest,
    /// The receiving side is gone; the item was not queued.
    Closed,
}

pub fn bounded<T>(
    capacity: usize,
    policy: DropPolicy,
) -> (PolicySender<T>, Receiver<T>, Arc<QueueStats>) {
    let (tx, rx) = crossbeam_channel::bounded(capacity.max(1));
    let stats = Arc::new(QueueStats::default());
    (
        PolicySender {
            tx,
            evict: rx.clone(),
            policy,
            stats: stats.clone(),
        },
        rx,
        stats,
    )
}

impl<T> PolicySender<T> {
    pub fn push(&self, item: T) -> Pushed {
        let r = self.push_inner(item);
        self.stats
            .depth
            .store(self.tx.len() as u64, Ordering::Relaxed);
        r
    }

    fn push_inner(&self, item: T) -> Pushed {
        let item = match self.tx.try_send(item) {
            Ok(()) => {
                self.stats.pushed.fetch_add(1, Ordering::Relaxed);
                return Pushed::Queued;
            }
            Err(TrySendError::Disconnected(_)) => return Pushed::Closed,
            Err(TrySendError::Full(item)) => item,
        };
        match self.policy {
            DropPolicy::Block => match self.tx.send(item) {
                Ok(()) => {
                    self.stats.pushed.fetch_add(1, Ordering::Relaxed);
                    Pushed::Queued
                }
                Err(_) => Pushed::Closed,
            },
            DropPolicy::DropNewest => {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                Pushed::DroppedNewest
            }
            DropPolicy::DropOldest => {
                let mut item = item;
                let mut evicted = false;
                // a consumer may race us for the slot; a couple of tries always settles it
                loop {
                    if self.evict.try_recv().is_ok() {
                        self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                        evicted = true;
                    }
                    match self.tx.try_send(item) {
                        Ok(()) => {
                            self.stats.pushed.fetch_add(1, Ordering::Relaxed);
                            return if evicted {
                                Pushed::QueuedDroppedOldest
                            } else {
                                Pushed::Queued
                            };
                        }
                        Err(TrySendError::Disconnected(_)) => return Pushed::Closed,
                        Err(TrySendError::Full(back)) => item = back,
                    }
                }
            }
        }
    }

    pub fn len(&self) -> usize {
        self.tx.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tx.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_oldest_keeps_the_newest_and_counts() {
        let (tx, rx, stats) = bounded(2, DropPolicy::DropOldest);
        for i in 0..5 {
            tx.push(i);
        }
        assert_eq!(rx.try_iter().collect::<Vec<_>>(), vec![3, 4]);
        assert_eq!(stats.dropped.load(Ordering::Relaxed), 3);
        assert_eq!(stats.pushed.load(Ordering::Relaxed), 5);
    }

    #[test]
    fn drop_newest_keeps_the_oldest_and_counts() {
        let (tx, rx, stats) = bounded(2, DropPolicy::DropNewest);
        let results: Vec<_> = (0..4).map(|i| tx.push(i)).collect();
        assert_eq!(results[3], Pushed::DroppedNewest);
        assert_eq!(rx.try_iter().collect::<Vec<_>>(), vec![0, 1]);
        assert_eq!(stats.dropped.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn block_waits_for_the_consumer_and_loses_nothing() {
        let (tx, rx, stats) = bounded(1, DropPolicy::Block);
        let consumer = std::thread::spawn(move || rx.iter().collect::<Vec<i32>>());
        for i in 0..100 {
            assert_eq!(tx.push(i), Pushed::Queued);
        }
        drop(tx);
        let got = consumer.join().unwrap_or_default();
        assert_eq!(got, (0..100).collect::<Vec<_>>());
        assert_eq!(stats.dropped.load(Ordering::Relaxed), 0);
    }
}
