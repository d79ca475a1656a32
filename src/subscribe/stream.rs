//! The state every subscription has, whatever its mode: the topic, the channel its
//! gRPC stream drains, the head it watches and the next offset to read. The loop that
//! drives it is in `subscription.rs`; what differs per mode is in `mode/`.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::{Interval, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::slots::Slot;
use super::tail::{HeadWatch, SharedRecord, Tail};
use super::{Delivery, SubscribeError};
use crate::config::SubscriptionConfig;
use crate::log::{EventLog, PageRequest, Position};

/// What the gRPC stream receives.
pub type Item = Result<Delivery, SubscribeError>;

/// The mode-independent state of one subscription.
pub(super) struct Stream {
    pub log: EventLog,
    pub tail: Arc<Tail>,
    pub config: SubscriptionConfig,
    pub topic: String,
    /// Only these types are delivered; empty means all.
    pub types: Vec<String>,
    pub tx: mpsc::Sender<Item>,
    pub token: CancellationToken,
    pub head: HeadWatch,
    /// The next offset to read.
    pub next: i64,
    /// Whether a `CaughtUp` is still owed since the stream (re)started.
    pub catching_up: bool,
    /// This subscription's place under the subscription caps.
    pub _slot: Slot,
}

impl Stream {
    /// Queues a state message unless the channel is full (the client is then behind
    /// and will see the records that follow anyway).
    pub fn tell(&self, delivery: Delivery) {
        let _ = self.tx.try_send(Ok(delivery));
    }

    /// Starts delivering after `position.committed`.
    pub fn restart_after(&mut self, position: Position) {
        self.next = position.committed + 1;
        self.catching_up = true;
    }

    /// Reads up to `limit` records from `next` (window, else PostgreSQL) and moves
    /// `next` past what the page looked at.
    pub async fn read_page(
        &mut self,
        limit: usize,
    ) -> Result<Vec<Arc<SharedRecord>>, SubscribeError> {
        let request = PageRequest {
            topic: &self.topic,
            from: self.next,
            to: self.head.get(),
            types: &self.types,
            limit: limit.min(self.config.page_size) as i64,
            max_bytes: self.config.page_bytes,
        };
        let page = self.tail.page(&self.log, &request).await?;
        self.next = page.scanned_to + 1;
        Ok(page.records)
    }

    /// Tells the client once that it has everything up to the head.
    pub fn caught_up(&mut self) {
        if std::mem::take(&mut self.catching_up) {
            let head = self.head.get();
            self.tell(Delivery::CaughtUp { head });
        }
    }
}

/// An interval whose first tick is one period from now (a mode that needs no keeping
/// alive gets one that, in practice, never ticks).
pub(super) fn ticker(period: Option<Duration>) -> Interval {
    const NEVER: Duration = Duration::from_secs(365 * 24 * 3600);
    let period = period.unwrap_or(NEVER).max(Duration::from_millis(10));
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    tick
}
