//! Caps on open subscriptions, in total and per client connection, so a misbehaving
//! client cannot make the server hold unbounded streams.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use super::SubscribeError;

#[derive(Default)]
struct Counts {
    total: usize,
    per_connection: HashMap<SocketAddr, usize>,
}

/// The open subscriptions, counted.
pub struct Slots {
    counts: Mutex<Counts>,
    max_total: usize,
    max_per_connection: usize,
}

/// One open subscription's place; freed when dropped (the subscription task owns it).
pub struct Slot {
    slots: Arc<Slots>,
    peer: Option<SocketAddr>,
}

impl Slots {
    /// Limits of `max_total` subscriptions, `max_per_connection` per client connection.
    pub fn new(max_total: usize, max_per_connection: usize) -> Arc<Self> {
        Arc::new(Self {
            counts: Mutex::default(),
            max_total,
            max_per_connection,
        })
    }

    /// Takes a place for a subscription from `peer` (the connection's remote address).
    pub fn take(self: &Arc<Self>, peer: Option<SocketAddr>) -> Result<Slot, SubscribeError> {
        let mut counts = self.lock();
        if counts.total >= self.max_total {
            return Err(SubscribeError::TooManySubscriptions {
                scope: "this server",
                limit: self.max_total,
                flag: "max-subscriptions",
            });
        }
        if let Some(peer) = peer {
            let on_connection = counts.per_connection.entry(peer).or_default();
            if *on_connection >= self.max_per_connection {
                return Err(SubscribeError::TooManySubscriptions {
                    scope: "this connection",
                    limit: self.max_per_connection,
                    flag: "max-subscriptions-per-connection",
                });
            }
            *on_connection += 1;
        }
        counts.total += 1;
        Ok(Slot {
            slots: Arc::clone(self),
            peer,
        })
    }

    /// Open subscriptions now.
    pub fn open(&self) -> usize {
        self.lock().total
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.slots.lock();
        counts.total -= 1;
        if let Some(peer) = self.peer
            && let Some(n) = counts.per_connection.get_mut(&peer)
        {
            *n -= 1;
            if *n == 0 {
                counts.per_connection.remove(&peer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_hold_per_connection_and_in_total_and_free_on_drop() {
        let slots = Slots::new(3, 2);
        let a: SocketAddr = "127.0.0.1:1000".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:2000".parse().unwrap();
        let first = slots.take(Some(a)).unwrap();
        let _second = slots.take(Some(a)).unwrap();
        assert!(matches!(
            slots.take(Some(a)),
            Err(SubscribeError::TooManySubscriptions {
                scope: "this connection",
                ..
            })
        ));
        let _third = slots.take(Some(b)).unwrap();
        assert!(matches!(
            slots.take(Some(b)),
            Err(SubscribeError::TooManySubscriptions {
                scope: "this server",
                ..
            })
        ));
        drop(first);
        let _again = slots.take(Some(a)).unwrap();
        assert_eq!(slots.open(), 3);
    }
}
