//! In-process doorbells for durable consumers: a subscription (active or standby)
//! watches its consumer here; acks, seeks and lease releases, whether made on this
//! server or announced by another through NOTIFY, ring it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use crate::log::Position;

/// What a watcher of one consumer learns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConsumerSignal {
    /// The newest position announced (a higher epoch wins, then a higher offset).
    pub position: Option<Position>,
    /// Counts lease releases (and, for shared consumers, records that became due), so
    /// standbys and idle subscribers know to look again.
    pub releases: u64,
    /// Counts settles of a shared consumer's records (acks), so a subscriber that waits
    /// for room, or a key-shared one whose subject may be free now, looks again.
    pub settles: u64,
}

type Key = (String, String);

/// Watches for consumers that have a subscription in this process; announcements about
/// other consumers are dropped, so the map is bounded by the live subscriptions.
#[derive(Debug, Default)]
pub struct Signals {
    consumers: Mutex<HashMap<Key, watch::Sender<ConsumerSignal>>>,
}

impl Signals {
    /// Watches `topic`/`consumer`; the entry lives while some doorbell of it does.
    pub fn watch(self: &Arc<Self>, topic: &str, consumer: &str) -> Doorbell {
        let key = (topic.to_owned(), consumer.to_owned());
        let rx = self
            .lock()
            .entry(key.clone())
            .or_insert_with(|| watch::Sender::new(ConsumerSignal::default()))
            .subscribe();
        Doorbell {
            rx,
            signals: Arc::clone(self),
            key,
        }
    }

    /// Announces a new position (ack or seek).
    pub fn moved(&self, topic: &str, consumer: &str, position: Position) {
        self.ring(topic, consumer, |signal| {
            let newer = match signal.position {
                None => true,
                Some(p) => (position.epoch, position.committed) > (p.epoch, p.committed),
            };
            if newer {
                signal.position = Some(position);
            }
            newer
        });
    }

    /// Announces that records of a shared consumer were settled.
    pub fn settled(&self, topic: &str, consumer: &str) {
        self.ring(topic, consumer, |signal| {
            signal.settles += 1;
            true
        });
    }

    /// Announces that the consumer's lease was released.
    pub fn released(&self, topic: &str, consumer: &str) {
        self.ring(topic, consumer, |signal| {
            signal.releases += 1;
            true
        });
    }

    fn ring(&self, topic: &str, consumer: &str, change: impl FnOnce(&mut ConsumerSignal) -> bool) {
        let map = self.lock();
        if let Some(tx) = map.get(&(topic.to_owned(), consumer.to_owned())) {
            tx.send_if_modified(change);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, watch::Sender<ConsumerSignal>>> {
        self.consumers.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One subscription's doorbell of its consumer; the consumer's entry is forgotten when
/// its last doorbell is dropped.
pub struct Doorbell {
    rx: watch::Receiver<ConsumerSignal>,
    signals: Arc<Signals>,
    key: Key,
}

impl Doorbell {
    /// The latest announcements, without marking them seen.
    pub fn peek(&self) -> ConsumerSignal {
        *self.rx.borrow()
    }

    /// The latest announcements, marked seen.
    pub fn look(&mut self) -> ConsumerSignal {
        *self.rx.borrow_and_update()
    }

    /// Resolves when something new is announced (never, once the engine is gone).
    pub async fn rung(&mut self) {
        if self.rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Announces on this consumer that its records became due (wakes its subscribers
    /// on this server).
    pub fn ring_released(&self) {
        self.signals.released(&self.key.0, &self.key.1);
    }
}

impl Drop for Doorbell {
    fn drop(&mut self) {
        let mut map = self.signals.lock();
        // Under the lock no doorbell can be added, so 1 means only ours is left.
        if map
            .get(&self.key)
            .is_some_and(|tx| tx.receiver_count() <= 1)
        {
            map.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(committed: i64, epoch: i64) -> Position {
        Position { committed, epoch }
    }

    #[test]
    fn newer_epochs_win_over_higher_offsets_and_stale_news_is_ignored() {
        let signals = Arc::new(Signals::default());
        let mut bell = signals.watch("t", "c");
        signals.moved("t", "c", pos(10, 0));
        signals.moved("t", "c", pos(3, 1));
        signals.moved("t", "c", pos(9, 0));
        assert_eq!(bell.look().position, Some(pos(3, 1)));
        signals.released("t", "c");
        assert_eq!(bell.look().releases, 1);
    }

    #[test]
    fn unwatched_consumers_are_not_kept() {
        let signals = Arc::new(Signals::default());
        signals.moved("t", "nobody", pos(1, 0));
        let first = signals.watch("t", "c");
        let second = signals.watch("t", "c");
        drop(first);
        assert_eq!(signals.lock().len(), 1, "still watched");
        drop(second);
        assert!(signals.lock().is_empty());
    }
}
