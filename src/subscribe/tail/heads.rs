//! The last known head of each watched topic, in memory, so subscriptions wake when it
//! moves instead of polling. Fed by this process's commits, by NOTIFYs from other
//! replicas and by the periodic refresh; a value here is never above the real head, so
//! it is safe to read up to it.
//!
//! Only topics that a subscription of this process watches have an entry: news about
//! any other topic is dropped, so the map is bounded by the open subscriptions however
//! many topics clients name.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;

/// The head a watch shows once its topic was deleted: streams of it end.
pub const DELETED: i64 = -1;

type Map = Arc<Mutex<HashMap<String, watch::Sender<i64>>>>;

/// One watch per topic that a live subscription watches.
#[derive(Debug, Default)]
pub struct Heads {
    topics: Map,
}

/// A watch on one topic's head; the topic's entry goes when its last watch is dropped.
#[derive(Debug)]
pub struct HeadWatch {
    rx: watch::Receiver<i64>,
    topic: String,
    topics: Map,
}

impl HeadWatch {
    /// The known head.
    pub fn get(&self) -> i64 {
        *self.rx.borrow()
    }

    /// Whether the topic was deleted while watched.
    pub fn is_deleted(&self) -> bool {
        self.get() == DELETED
    }

    /// The known head, marking it seen.
    pub fn get_and_update(&mut self) -> i64 {
        *self.rx.borrow_and_update()
    }

    /// Resolves when the head moves past what was last seen.
    pub async fn changed(&mut self) {
        if self.rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

impl Drop for HeadWatch {
    fn drop(&mut self) {
        let mut topics = lock(&self.topics);
        // Under the lock no watch can be added, so 1 means only ours is left.
        if topics
            .get(&self.topic)
            .is_some_and(|tx| tx.receiver_count() <= 1)
        {
            topics.remove(&self.topic);
        }
    }
}

fn lock(topics: &Map) -> MutexGuard<'_, HashMap<String, watch::Sender<i64>>> {
    topics.lock().unwrap_or_else(|e| e.into_inner())
}

impl Heads {
    /// How many streams of this process watch `topic`.
    pub fn watchers(&self, topic: &str) -> usize {
        self.lock()
            .get(topic)
            .map_or(0, watch::Sender::receiver_count)
    }

    /// Records that `topic` has reached `head`; lower values, and topics nobody
    /// watches, are ignored.
    pub fn advance(&self, topic: &str, head: i64) {
        if let Some(tx) = self.lock().get(topic) {
            tx.send_if_modified(|known| {
                let moved = head > *known;
                if moved {
                    *known = head;
                }
                moved
            });
        }
    }

    /// Tells `topic`'s watchers that it was deleted ([`DELETED`]); a topic of the same
    /// name created later starts again from head 0 upwards.
    pub fn deleted(&self, topic: &str) {
        if let Some(tx) = self.lock().get(topic) {
            tx.send_replace(DELETED);
        }
    }

    /// A watch that changes whenever `topic`'s known head moves; the entry lives
    /// while someone watches.
    pub fn watch(&self, topic: &str) -> HeadWatch {
        let rx = self
            .lock()
            .entry(topic.to_owned())
            .or_insert_with(|| watch::Sender::new(0))
            .subscribe();
        HeadWatch {
            rx,
            topic: topic.to_owned(),
            topics: Arc::clone(&self.topics),
        }
    }

    /// The known head of a watched topic.
    pub fn known(&self, topic: &str) -> Option<i64> {
        self.lock().get(topic).map(|tx| *tx.borrow())
    }

    /// The watched topics, for the periodic refresh.
    pub fn watched(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    /// How many topics have an entry.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no topic is watched.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, watch::Sender<i64>>> {
        lock(&self.topics)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_only_move_forward_and_wake_watchers() {
        let heads = Heads::default();
        let mut watch = heads.watch("t");
        heads.advance("t", 5);
        assert!(watch.rx.has_changed().unwrap());
        assert_eq!(watch.get_and_update(), 5);
        heads.advance("t", 3);
        assert!(!watch.rx.has_changed().unwrap());
        assert_eq!(heads.known("t"), Some(5));
    }

    /// Naming topics (in acks, notifications, commits) never adds entries: only a
    /// watch does, and the entry goes with its last watch.
    #[test]
    fn only_watched_topics_are_kept() {
        let heads = Heads::default();
        for i in 0..1000 {
            let topic = format!("nobody-{i}");
            heads.advance(&topic, 7);
            assert_eq!(heads.known(&topic), None);
        }
        assert!(heads.is_empty());
        let first = heads.watch("t");
        let second = heads.watch("t");
        drop(first);
        assert_eq!(heads.len(), 1, "still watched by the second receiver");
        drop(second);
        assert!(heads.is_empty());
    }
}
