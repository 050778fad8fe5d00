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
    /// Kept so `DropOldest` can evict from the front (crossbeam channels are MPMC). Only for that policy: a
    /// receiver held here would keep the channel open after its consumer is gone, and a blocked push would wait
    /// for ever instead of seeing the queue closed.
    evict: Option<Receiver<T>>,
    policy: DropPolicy,
    stats: Arc<QueueStats>,
    /// Most bytes the queued items may hold (0: no byte bound): with items of `b` bytes the queue holds at most
    /// `max_bytes / b` of them (at least [`MIN_WEIGHED_ITEMS`], at most the capacity), so a 1080p camera's queue
    /// of full-size frames does not hold five times what a 576p camera's does.
    max_bytes: usize,
}

/// A byte-bounded queue still holds this many items however large they are.
pub const MIN_WEIGHED_ITEMS: usize = 2;

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
            evict: (policy == DropPolicy::DropOldest).then(|| rx.clone()),
            policy,
            stats: stats.clone(),
            max_bytes: 0,
        },
        rx,
        stats,
    )
}

impl<T> PolicySender<T> {
    /// Bounds the queue in bytes too (items pushed with [`PolicySender::push_weighed`]); 0 = no byte bound.
    pub fn with_byte_budget(mut self, max_bytes: usize) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    /// The items of `bytes` bytes each the queue holds: its capacity, or fewer under the byte budget.
    pub fn capacity_for(&self, bytes: usize) -> usize {
        let cap = self.tx.capacity().unwrap_or(usize::MAX);
        if self.max_bytes == 0 || bytes == 0 {
            return cap;
        }
        (self.max_bytes / bytes).clamp(MIN_WEIGHED_ITEMS.min(cap), cap)
    }

    pub fn push(&self, item: T) -> Pushed {
        self.push_weighed(item, 0)
    }

    /// Pushes an item of `bytes` bytes: the queue counts as full at [`PolicySender::capacity_for`] such items.
    pub fn push_weighed(&self, item: T, bytes: usize) -> Pushed {
        let r = self.push_inner(item, self.capacity_for(bytes));
        self.stats
            .depth
            .store(self.tx.len() as u64, Ordering::Relaxed);
        r
    }

    fn push_inner(&self, item: T, cap: usize) -> Pushed {
        let item = if self.tx.len() < cap {
            match self.tx.try_send(item) {
                Ok(()) => {
                    self.stats.pushed.fetch_add(1, Ordering::Relaxed);
                    return Pushed::Queued;
                }
                Err(TrySendError::Disconnected(_)) => return Pushed::Closed,
                Err(TrySendError::Full(item)) => item,
            }
        } else {
            item
        };
        match self.policy {
            DropPolicy::Block => {
                // under a byte budget the channel may have room the budget does not: wait for the consumer to
                // take items (it takes one every sampled frame, so the wait is short and only a file read faster
                // than real time ever waits)
                while self.tx.len() >= cap && cap < self.tx.capacity().unwrap_or(usize::MAX) {
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
                match self.tx.send(item) {
                    Ok(()) => {
                        self.stats.pushed.fetch_add(1, Ordering::Relaxed);
                        Pushed::Queued
                    }
                    Err(_) => Pushed::Closed,
                }
            }
            DropPolicy::DropNewest => {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                Pushed::DroppedNewest
            }
            DropPolicy::DropOldest => {
                let mut item = item;
                let mut evicted = false;
                // a consumer may race us for the slot; a couple of tries always settles it
                loop {
                    while self.tx.len() >= cap {
                        if self.evict.as_ref().is_none_or(|e| e.try_recv().is_err()) {
                            break;
                        }
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
    fn a_byte_budget_holds_fewer_large_items_and_drops_the_oldest() {
        let (tx, rx, stats) = bounded(32, DropPolicy::DropOldest);
        let tx = tx.with_byte_budget(64 << 20);
        let hd = 1920 * 1080 * 3; // 6.2 MB: 10 fit in 64 MiB
        assert_eq!(tx.capacity_for(hd), 10);
        assert_eq!(
            tx.capacity_for(768 * 576 * 3),
            32,
            "small frames keep the item capacity"
        );
        assert_eq!(
            tx.capacity_for(200 << 20),
            MIN_WEIGHED_ITEMS,
            "huge items still queue two"
        );
        assert_eq!(tx.capacity_for(0), 32, "unweighed pushes");
        for i in 0..15 {
            tx.push_weighed(i, hd);
        }
        assert_eq!(
            rx.try_iter().collect::<Vec<_>>(),
            (5..15).collect::<Vec<_>>()
        );
        assert_eq!(stats.dropped.load(Ordering::Relaxed), 5);
    }

    #[test]
    fn a_byte_budget_under_block_waits_and_loses_nothing() {
        let (tx, rx, stats) = bounded(32, DropPolicy::Block);
        let tx = tx.with_byte_budget(3000);
        let consumer = std::thread::spawn(move || {
            let mut got = Vec::new();
            let mut most = 0;
            while let Ok(i) = rx.recv() {
                most = most.max(rx.len() + 1);
                got.push(i);
                std::thread::sleep(std::time::Duration::from_micros(200));
            }
            (got, most)
        });
        for i in 0..50 {
            assert_eq!(tx.push_weighed(i, 1000), Pushed::Queued);
            assert!(tx.len() <= 3, "at most 3 items of 1000 bytes in 3000");
        }
        drop(tx);
        let (got, most) = consumer.join().unwrap_or_default();
        assert_eq!(got, (0..50).collect::<Vec<_>>());
        assert!(most <= 3, "{most}");
        assert_eq!(stats.dropped.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_blocked_push_sees_the_consumer_go() {
        let (tx, rx, _) = bounded(1, DropPolicy::Block);
        assert_eq!(tx.push(1), Pushed::Queued);
        let pusher = std::thread::spawn(move || tx.push(2));
        std::thread::sleep(std::time::Duration::from_millis(50));
        drop(rx);
        assert_eq!(
            pusher.join().ok(),
            Some(Pushed::Closed),
            "not blocked for ever"
        );
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
