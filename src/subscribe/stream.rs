//! What every subscription shares, whatever its mode: a task that reads the topic in
//! pages (from the tail window, else PostgreSQL) and pushes records into a bounded
//! channel that the gRPC stream drains. When the client stops reading, the channel
//! fills and the task waits. Once caught up it sleeps until the topic's head moves
//! (in-process watch, fed by local commits, NOTIFY and the periodic refresh), the
//! mode's doorbell rings (acks, seeks, releases), the mode must keep its claim alive,
//! or a heartbeat is due (one interval after the stream went idle).
//!
//! What differs between modes (where delivery starts, how much may be in flight, how
//! records settle, leases) sits behind [`Mode`], one implementation per mode in
//! `mode/`.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::{Interval, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::mode::Mode;
use super::slots::Slot;
use super::tail::{HeadWatch, SharedRecord, Tail};
use super::{Delivery, SubscribeError};
use crate::config::SubscriptionConfig;
use crate::log::{EventLog, PageRequest, Position};

/// How long a subscription ending with an error waits to queue its final status.
const FINAL_STATUS_WAIT: Duration = Duration::from_secs(1);

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
    fn restart_after(&mut self, position: Position) {
        self.next = position.committed + 1;
        self.catching_up = true;
    }

    /// Tells the client once that it has everything up to the head.
    fn caught_up(&mut self) {
        if std::mem::take(&mut self.catching_up) {
            let head = self.head.get();
            self.tell(Delivery::CaughtUp { head });
        }
    }
}

/// One subscription: the shared loop over a mode.
pub(super) struct Subscription<M> {
    pub stream: Stream,
    pub mode: M,
}

impl<M: Mode> Subscription<M> {
    /// Runs the subscription to its end, then lets the mode let go of what it holds.
    pub async fn run(mut self) {
        if let Err(err) = self.attach_and_deliver().await {
            // The client may be slow to read; give the final status a moment to get in.
            let _ = tokio::time::timeout(FINAL_STATUS_WAIT, self.stream.tx.send(Err(err))).await;
        }
        let Self { stream, mode } = self;
        mode.detach(&stream).await;
    }

    async fn attach_and_deliver(&mut self) -> Result<(), SubscribeError> {
        match self.mode.attach(&self.stream).await? {
            Some(start) => {
                self.stream.restart_after(start);
                self.deliver().await
            }
            None => Ok(()),
        }
    }

    /// Delivers records until the client leaves, the server stops or an error occurs.
    async fn deliver(&mut self) -> Result<(), SubscribeError> {
        let mut beat = ticker(Some(self.stream.config.heartbeat_interval));
        let mut keep = ticker(self.mode.keep_alive_every(&self.stream.config));
        loop {
            self.take_reposition();
            let head = self.stream.head.get_and_update();
            if self.stream.next <= head && self.mode.budget() > 0 {
                if self.deliver_page(&mut keep).await? {
                    beat.reset();
                }
                continue;
            }
            self.stream.caught_up();
            self.mode.idle(&self.stream).await?;
            let s = &mut self.stream;
            tokio::select! {
                _ = s.token.cancelled() => return Err(SubscribeError::ShuttingDown),
                _ = s.tx.closed() => return Ok(()),
                _ = s.head.changed() => {}
                _ = self.mode.changed() => {}
                _ = keep.tick() => self.mode.keep_alive(&self.stream).await?,
                _ = beat.tick() => {
                    let (head, committed) = (s.head.get(), self.mode.committed());
                    s.tell(Delivery::Heartbeat { head, committed });
                }
            }
        }
    }

    /// Moves the stream when the mode learned of a Seek, and says so.
    fn take_reposition(&mut self) {
        if let Some(position) = self.mode.take_reposition() {
            self.stream.restart_after(position);
            self.stream.tell(Delivery::Repositioned {
                committed: position.committed,
                epoch: position.epoch,
            });
        }
    }

    /// Reads one page from `next` and sends it; returns whether anything was sent.
    async fn deliver_page(&mut self, keep: &mut Interval) -> Result<bool, SubscribeError> {
        let s = &self.stream;
        let request = PageRequest {
            topic: &s.topic,
            from: s.next,
            to: s.head.get(),
            types: &s.types,
            limit: self.mode.budget().min(s.config.page_size) as i64,
            max_bytes: s.config.page_bytes,
        };
        let page = s.tail.page(&s.log, &request).await?;
        let sent = !page.records.is_empty();
        for record in page.records {
            let offset = record.record().offset;
            self.send(record, keep).await?;
            self.mode.delivered(offset);
            if self.mode.has_reposition() {
                return Ok(true); // a seek moved us while sending: re-read from there
            }
        }
        self.stream.next = page.scanned_to + 1;
        Ok(sent)
    }

    /// Sends one record, keeping the mode's claim alive while the client is slow.
    async fn send(
        &mut self,
        record: Arc<SharedRecord>,
        keep: &mut Interval,
    ) -> Result<(), SubscribeError> {
        let tx = self.stream.tx.clone();
        loop {
            tokio::select! {
                permit = tx.reserve() => {
                    let Ok(permit) = permit else { return Err(SubscribeError::ShuttingDown) };
                    permit.send(Ok(Delivery::Record(record)));
                    return Ok(());
                }
                _ = self.stream.token.cancelled() => return Err(SubscribeError::ShuttingDown),
                _ = keep.tick() => self.mode.keep_alive(&self.stream).await?,
            }
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
