//! The one shutdown signal. Only sources (camera threads) watch it; every later stage stops when its input
//! closes, so a shutdown drains the pipeline in order instead of dropping what is in flight.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Default, Clone)]
pub struct Shutdown(Arc<Inner>);

#[derive(Debug, Default)]
struct Inner {
    flag: AtomicBool,
    notify: tokio::sync::Notify,
    /// A camera's own signal also fires when the daemon's does (reload stops one camera, SIGTERM all).
    parent: Option<Shutdown>,
}

impl Shutdown {
    pub fn new() -> Self {
        Self::default()
    }
    /// A signal that fires on its own `trigger()` or when `self` fires. Its `wait()` only sees its own trigger, so
    /// use it on blocking threads (`is_triggered`, `sleep`), as the camera threads do.
    pub fn child(&self) -> Self {
        Self(Arc::new(Inner {
            parent: Some(self.clone()),
            ..Default::default()
        }))
    }
    pub fn trigger(&self) {
        self.0.flag.store(true, Ordering::SeqCst);
        self.0.notify.notify_waiters();
    }
    pub fn is_triggered(&self) -> bool {
        self.0.flag.load(Ordering::SeqCst)
            || self.0.parent.as_ref().is_some_and(|p| p.is_triggered())
    }
    /// Resolves once triggered (async side).
    pub async fn wait(&self) {
        loop {
            let notified = self.0.notify.notified();
            if self.is_triggered() {
                return;
            }
            notified.await;
        }
    }
    /// Sleeps up to `d` on a blocking thread; returns true when shutdown came first.
    pub fn sleep(&self, d: Duration) -> bool {
        let step = Duration::from_millis(50);
        let mut left = d;
        while !left.is_zero() {
            if self.is_triggered() {
                return true;
            }
            let s = left.min(step);
            std::thread::sleep(s);
            left -= s;
        }
        self.is_triggered()
    }
}
