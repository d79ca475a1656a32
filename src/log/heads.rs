//! The last known head of each topic, in memory, so subscriptions wake when it moves
//! instead of polling. Fed by this process's commits and by NOTIFYs from other
//! replicas; a value here is never above the real head, so it is safe to read up to it.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::watch;

/// One watch per topic that has been published to or subscribed to in this process
/// (so the map grows with the number of topics, not with traffic).
#[derive(Debug, Default)]
pub struct Heads {
    topics: Mutex<HashMap<String, watch::Sender<i64>>>,
}

impl Heads {
    /// Records that `topic` has reached `head`; lower values are ignored.
    pub fn advance(&self, topic: &str, head: i64) {
        self.with(topic, |tx| {
            tx.send_if_modified(|known| {
                let moved = head > *known;
                if moved {
                    *known = head;
                }
                moved
            });
        });
    }

    /// A receiver that changes whenever `topic`'s known head moves.
    pub fn watch(&self, topic: &str) -> watch::Receiver<i64> {
        self.with(topic, |tx| tx.subscribe())
    }

    /// The known head (0 when nothing is known yet).
    pub fn known(&self, topic: &str) -> i64 {
        self.with(topic, |tx| *tx.borrow())
    }

    fn with<T>(&self, topic: &str, f: impl FnOnce(&watch::Sender<i64>) -> T) -> T {
        let mut topics = self.topics.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(tx) = topics.get(topic) {
            return f(tx);
        }
        let tx = watch::Sender::new(0);
        let out = f(&tx);
        topics.insert(topic.to_owned(), tx);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_only_move_forward_and_wake_watchers() {
        let heads = Heads::default();
        let mut rx = heads.watch("t");
        heads.advance("t", 5);
        assert!(rx.has_changed().unwrap());
        assert_eq!(*rx.borrow_and_update(), 5);
        heads.advance("t", 3);
        assert!(!rx.has_changed().unwrap());
        assert_eq!(heads.known("t"), 5);
        assert_eq!(heads.known("other"), 0);
    }
}
