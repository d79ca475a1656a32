//! What a consumer has handed out and not yet seen settled: the records its user holds,
//! and those acked but not yet confirmed by the server. A record delivered again while
//! it is here (a reconnect resends from the committed offset) is a duplicate of one in
//! hand and is dropped; graceful shutdown waits until the user holds nothing.
//!
//! Acks the server confirmed are remembered for a while too ([`MAX_SETTLED`]): a stream
//! opened before the ack landed (a reconnect during a server restart) may still carry
//! those records, and handing them out again would repeat them.

use std::collections::{BTreeSet, HashSet, VecDeque};
use std::sync::Mutex;

use tokio::sync::watch;

/// Offsets handed out, with the seek epoch they were delivered under.
#[derive(Debug)]
pub struct Held {
    inner: Mutex<Inner>,
    /// How many records the user holds.
    holding: watch::Sender<usize>,
}

/// A delivery: offset and seek epoch.
pub type Key = (i64, Option<i64>);

/// Most confirmed acks remembered (the oldest are forgotten first).
pub const MAX_SETTLED: usize = 8192;

#[derive(Debug, Default)]
struct Inner {
    holding: BTreeSet<Key>,
    acking: BTreeSet<Key>,
    settled: HashSet<Key>,
    settled_order: VecDeque<Key>,
}

impl Default for Held {
    fn default() -> Self {
        Self {
            inner: Mutex::default(),
            holding: watch::channel(0).0,
        }
    }
}

impl Held {
    /// Takes `offset` (delivered under `epoch`) into the user's hands, unless a
    /// delivery of it under the same epoch is in hand or being acked already.
    pub fn take(&self, key: Key) -> bool {
        let mut inner = self.inner.lock().expect("held lock");
        if inner.holding.contains(&key)
            || inner.acking.contains(&key)
            || inner.settled.contains(&key)
        {
            return false;
        }
        inner.holding.insert(key);
        self.holding.send_replace(inner.holding.len());
        true
    }

    /// The user let go of a delivery: acked (confirmation pending) or not.
    pub fn release(&self, key: Key, acked: bool) {
        let mut inner = self.inner.lock().expect("held lock");
        if inner.holding.remove(&key) && acked {
            inner.acking.insert(key);
        }
        self.holding.send_replace(inner.holding.len());
    }

    /// The server confirmed the acks of these deliveries: they are settled, and a
    /// later delivery of one under the same epoch is stale.
    pub fn confirmed(&self, keys: &[Key]) {
        let mut inner = self.inner.lock().expect("held lock");
        for key in keys {
            inner.acking.remove(key);
            if inner.settled.insert(*key) {
                inner.settled_order.push_back(*key);
            }
        }
        while inner.settled_order.len() > MAX_SETTLED {
            let oldest = inner.settled_order.pop_front().expect("non-empty");
            inner.settled.remove(&oldest);
        }
    }

    /// The server finally refused the acks of these deliveries: they come again.
    pub fn refused(&self, keys: &[Key]) {
        let mut inner = self.inner.lock().expect("held lock");
        for key in keys {
            inner.acking.remove(key);
        }
    }

    /// Waits until the user holds nothing.
    pub async fn emptied(&self) {
        let mut rx = self.holding.subscribe();
        let _ = rx.wait_for(|n| *n == 0).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_in_hand_or_being_acked_is_not_handed_out_twice_in_one_epoch() {
        let held = Held::default();
        assert!(held.take((1, Some(0))));
        assert!(!held.take((1, Some(0))), "in hand");
        held.release((1, Some(0)), true);
        assert!(!held.take((1, Some(0))), "being acked");
        assert!(held.take((1, Some(1))), "a new epoch wants it again");
        held.release((1, Some(1)), false);
        held.confirmed(&[(1, Some(0))]);
        assert!(
            !held.take((1, Some(0))),
            "settled: a later delivery is stale"
        );
        assert!(held.take((2, Some(0))));
        held.release((2, Some(0)), true);
        held.refused(&[(2, Some(0))]);
        assert!(held.take((2, Some(0))), "refused: it comes again for real");
    }

    #[test]
    fn confirmed_acks_are_remembered_within_a_bound() {
        let held = Held::default();
        let keys: Vec<Key> = (1..=MAX_SETTLED as i64 + 10)
            .map(|o| (o, Some(0)))
            .collect();
        held.confirmed(&keys);
        assert!(
            !held.take((MAX_SETTLED as i64 + 10, Some(0))),
            "recent: remembered"
        );
        assert!(held.take((1, Some(0))), "oldest: forgotten");
        assert_eq!(held.inner.lock().unwrap().settled.len(), MAX_SETTLED);
    }
}
