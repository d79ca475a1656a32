//! Group commit for acks: while one UPDATE for a consumer is in flight, further acks
//! for it wait and are folded into the next UPDATE with the highest offset among them.
//! Every Ack call answers only after an UPDATE covering its offset committed, so no
//! caller is told of a commit that has not happened.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;
use tokio_util::task::TaskTracker;

use super::SubscribeError;
use super::signals::Signals;
use crate::log::{EventLog, LogError, Position};

type Outcome = Result<Option<Position>, Arc<LogError>>;

#[derive(Default)]
struct Pending {
    offset: i64,
    waiters: Vec<oneshot::Sender<Outcome>>,
}

/// Coalesces concurrent acks per consumer; the pending map holds at most one entry per
/// consumer being acked right now, each with one waiter per in-flight Ack call.
pub struct AckCoalescer {
    log: EventLog,
    signals: Arc<Signals>,
    tracker: TaskTracker,
    pending: Mutex<HashMap<(String, String), Pending>>,
}

impl AckCoalescer {
    /// A coalescer whose flush tasks are tracked by `tracker` (so shutdown waits for them).
    pub fn new(log: EventLog, signals: Arc<Signals>, tracker: TaskTracker) -> Self {
        Self {
            log,
            signals,
            tracker,
            pending: Mutex::default(),
        }
    }

    /// Commits `offset` for the consumer; `None` if the consumer does not exist.
    pub async fn ack(
        self: &Arc<Self>,
        topic: &str,
        consumer: &str,
        offset: i64,
    ) -> Result<Option<Position>, SubscribeError> {
        let (tx, rx) = oneshot::channel();
        let key = (topic.to_owned(), consumer.to_owned());
        let leader = {
            let mut pending = self.lock();
            let leader = !pending.contains_key(&key);
            let entry = pending.entry(key.clone()).or_default();
            entry.offset = entry.offset.max(offset);
            entry.waiters.push(tx);
            leader
        };
        if leader {
            self.tracker.spawn(Arc::clone(self).flush(key));
        }
        match rx.await {
            Ok(outcome) => outcome.map_err(SubscribeError::SharedLog),
            Err(_) => Err(SubscribeError::ShuttingDown),
        }
    }

    /// Writes batches for one consumer until no ack is waiting.
    async fn flush(self: Arc<Self>, key: (String, String)) {
        let (topic, consumer) = &key;
        loop {
            let batch = {
                let mut pending = self.lock();
                match pending.get_mut(&key) {
                    Some(p) if !p.waiters.is_empty() => std::mem::take(p),
                    _ => {
                        pending.remove(&key);
                        return;
                    }
                }
            };
            let outcome = self
                .log
                .ack(topic, consumer, batch.offset)
                .await
                .map_err(Arc::new);
            if let Ok(Some(position)) = outcome {
                self.signals.moved(topic, consumer, position);
            }
            for waiter in batch.waiters {
                let _ = waiter.send(outcome.clone());
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Pending>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}
