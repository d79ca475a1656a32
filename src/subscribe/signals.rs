//! In-process doorbells for durable consumers: a subscription (active or standby)
//! watches its consumer here; acks, seeks and lease releases, whether made on this
//! server or announced by another through NOTIFY, ring it.

use std::collections::HashMap;
use std::sync::Mutex;

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
    /// Watches `topic`/`consumer` until the receiver is dropped and [`Self::forget`] runs.
    pub fn watch(&self, topic: &str, consumer: &str) -> watch::Receiver<ConsumerSignal> {
        let mut map = self.lock();
        let key = (topic.to_owned(), consumer.to_owned());
        map.entry(key)
            .or_insert_with(|| watch::Sender::new(ConsumerSignal::default()))
            .subscribe()
    }

    /// Drops the entry once nobody watches it any more.
    pub fn forget(&self, topic: &str, consumer: &str) {
        let mut map = self.lock();
        let key = (topic.to_owned(), consumer.to_owned());
        if map.get(&key).is_some_and(|tx| tx.receiver_count() == 0) {
            map.remove(&key);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(committed: i64, epoch: i64) -> Position {
        Position { committed, epoch }
    }

    #[test]
    fn newer_epochs_win_over_higher_offsets_and_stale_news_is_ignored() {
        let signals = Signals::default();
        let mut rx = signals.watch("t", "c");
        signals.moved("t", "c", pos(10, 0));
        signals.moved("t", "c", pos(3, 1));
        signals.moved("t", "c", pos(9, 0));
        assert_eq!(rx.borrow_and_update().position, Some(pos(3, 1)));
        signals.released("t", "c");
        assert_eq!(rx.borrow_and_update().releases, 1);
    }

    #[test]
    fn unwatched_consumers_are_not_kept() {
        let signals = Signals::default();
        signals.moved("t", "nobody", pos(1, 0));
        let rx = signals.watch("t", "c");
        drop(rx);
        signals.forget("t", "c");
        assert!(signals.lock().is_empty());
    }
}
