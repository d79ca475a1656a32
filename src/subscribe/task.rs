//! One subscription: a task that reads the topic in pages from PostgreSQL and pushes
//! records into a bounded channel that the gRPC stream drains. When the client stops
//! reading, the channel fills and the task waits; a durable subscription also stops at
//! `max_in_flight` unacknowledged records. Once caught up it sleeps until the topic's
//! head moves (in-process watch, fed by local commits and NOTIFY), a heartbeat is due,
//! or the consumer is acked, sought or taken over.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, Interval, MissedTickBehavior, interval};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::signals::{ConsumerSignal, Signals};
use super::{Delivery, SubscribeConfig, SubscribeError};
use crate::log::{EventLog, PageRequest, Position, SharedRecord};

/// How long a subscription ending with an error waits to queue its final status.
const FINAL_STATUS_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// What the gRPC stream receives.
pub type Item = Result<Delivery, SubscribeError>;

/// A durable subscription's consumer and its lease.
pub(super) struct Durable {
    pub name: String,
    pub owner: Uuid,
    pub signal: watch::Receiver<ConsumerSignal>,
    pub signals: Arc<Signals>,
    /// When the lease we hold runs out unless renewed (by this server's clock, counted
    /// from before the renewal was sent, so never later than the database's).
    pub lease_until: Instant,
}

/// The state of one subscription task.
pub(super) struct Subscription {
    pub log: EventLog,
    pub config: SubscribeConfig,
    pub topic: String,
    pub types: Vec<String>,
    pub max_in_flight: usize,
    pub tx: mpsc::Sender<Item>,
    pub token: CancellationToken,
    pub head: watch::Receiver<i64>,
    pub durable: Option<Durable>,
    /// The next offset to read.
    pub next: i64,
    /// Last committed offset known (durable only).
    pub committed: i64,
    pub epoch: i64,
    /// Offsets delivered and not yet acknowledged, oldest first (durable only).
    pub in_flight: VecDeque<i64>,
    /// Highest offset delivered, or the committed offset we started from.
    pub last_delivered: i64,
    /// Last `to` tried when moving the consumer past filtered-out events.
    pub skipped_to: i64,
    /// This subscription's place under the subscription caps.
    pub _slot: super::slots::Slot,
}

impl Subscription {
    /// Runs the subscription to its end, then releases the lease (if any).
    pub async fn run(mut self) {
        let result = match self.durable.is_some() {
            true => self.run_durable().await,
            false => self.deliver().await,
        };
        if let Err(err) = result {
            // The client may be slow to read; give the final status a moment to get in.
            let _ = tokio::time::timeout(FINAL_STATUS_WAIT, self.tx.send(Err(err))).await;
        }
        if let Some(d) = self.durable.take() {
            if let Err(e) = self.log.release_lease(&self.topic, &d.name, d.owner).await {
                tracing::warn!(error = %e, topic = %self.topic, consumer = %d.name, "could not release lease; it will expire");
            }
            // Our own receiver must be gone before the entry can be forgotten.
            let Durable {
                name,
                signals,
                signal,
                ..
            } = d;
            drop(signal);
            signals.forget(&self.topic, &name);
        }
    }

    async fn run_durable(&mut self) -> Result<(), SubscribeError> {
        match self.standby().await? {
            Some(position) => {
                self.reposition(position);
                self.deliver().await
            }
            None => Ok(()),
        }
    }

    /// Waits until this subscription holds the consumer's lease; heartbeats meanwhile.
    async fn standby(&mut self) -> Result<Option<Position>, SubscribeError> {
        let mut beat = ticker(self.config.heartbeat_interval);
        let mut check = ticker(self.config.consumer_lease / 4);
        loop {
            if let Some(position) = self.try_acquire().await? {
                return Ok(Some(position));
            }
            let releases = self.durable_ref().signal.borrow().releases;
            loop {
                let signal = &mut self.durable.as_mut().expect("durable").signal;
                tokio::select! {
                    _ = self.token.cancelled() => return Err(SubscribeError::ShuttingDown),
                    _ = self.tx.closed() => return Ok(None),
                    _ = check.tick() => break,
                    changed = signal.changed() => {
                        if changed.is_err() || signal.borrow().releases != releases {
                            break;
                        }
                    }
                    _ = beat.tick() => self.heartbeat().await,
                }
            }
        }
    }

    async fn try_acquire(&mut self) -> Result<Option<Position>, SubscribeError> {
        let ttl = self.config.consumer_lease;
        let sent = Instant::now();
        let d = self.durable_ref();
        let position = self
            .log
            .acquire_lease(&self.topic, &d.name, d.owner, ttl)
            .await?;
        if position.is_some() {
            self.durable.as_mut().expect("durable").lease_until = sent + ttl;
            tracing::debug!(topic = %self.topic, consumer = %self.durable_ref().name, "subscriber attached");
        }
        Ok(position)
    }

    /// Delivers records until the client leaves, the server stops or an error occurs.
    async fn deliver(&mut self) -> Result<(), SubscribeError> {
        self.refresh_head().await?;
        let mut beat = ticker(self.config.heartbeat_interval);
        let mut renew = ticker(self.config.consumer_lease / 3);
        let mut sent_since_beat = false;
        loop {
            self.apply_signal();
            if self.next <= *self.head.borrow_and_update() && self.budget() > 0 {
                sent_since_beat |= self.deliver_page(&mut renew).await?;
                continue;
            }
            self.skip_filtered().await?;
            let signal = self.durable.as_mut().map(|d| &mut d.signal);
            tokio::select! {
                _ = self.token.cancelled() => return Err(SubscribeError::ShuttingDown),
                _ = self.tx.closed() => return Ok(()),
                _ = self.head.changed() => {}
                _ = changed(signal) => {}
                _ = renew.tick() => self.renew_lease().await?,
                _ = beat.tick() => {
                    self.refresh_head().await?;
                    if !std::mem::take(&mut sent_since_beat) {
                        self.heartbeat().await;
                    }
                }
            }
        }
    }

    /// Reads one page from `next` and sends it; returns whether anything was sent.
    async fn deliver_page(&mut self, renew: &mut Interval) -> Result<bool, SubscribeError> {
        let head = *self.head.borrow();
        let page = self
            .log
            .page(&PageRequest {
                topic: &self.topic,
                from: self.next,
                to: head,
                types: &self.types,
                limit: self.budget().min(self.config.page_size) as i64,
                max_bytes: self.config.page_bytes,
            })
            .await?;
        let epoch = self.epoch;
        let sent = !page.records.is_empty();
        for record in page.records {
            let offset = record.record().offset;
            self.send(record, renew).await?;
            if self.epoch != epoch {
                return Ok(true); // a seek moved us while sending: re-read from there
            }
            self.last_delivered = offset;
            if self.durable.is_some() {
                self.in_flight.push_back(offset);
            }
        }
        self.next = page.scanned_to + 1;
        Ok(sent)
    }

    /// Sends one record, renewing the lease while the client is slow to read.
    async fn send(
        &mut self,
        record: Arc<SharedRecord>,
        renew: &mut Interval,
    ) -> Result<(), SubscribeError> {
        let tx = self.tx.clone();
        loop {
            tokio::select! {
                permit = tx.reserve() => {
                    let Ok(permit) = permit else { return Err(SubscribeError::ShuttingDown) };
                    permit.send(Ok(Delivery::Record(record)));
                    return Ok(());
                }
                _ = self.token.cancelled() => return Err(SubscribeError::ShuttingDown),
                _ = renew.tick() => {
                    self.renew_lease().await?;
                    self.apply_signal();
                }
            }
        }
    }

    /// How many more records may be delivered now.
    fn budget(&self) -> usize {
        match self.durable {
            Some(_) => self.max_in_flight.saturating_sub(self.in_flight.len()),
            None => usize::MAX,
        }
    }

    /// Takes in the newest announced position: a seek repositions, an ack frees budget.
    fn apply_signal(&mut self) {
        let Some(d) = &mut self.durable else { return };
        let Some(position) = d.signal.borrow_and_update().position else {
            return;
        };
        self.reposition(position);
    }

    fn reposition(&mut self, position: Position) {
        if position.epoch > self.epoch {
            self.epoch = position.epoch;
            self.committed = position.committed;
            self.next = position.committed + 1;
            self.last_delivered = position.committed;
            self.in_flight.clear();
        } else if position.epoch == self.epoch && position.committed > self.committed {
            self.committed = position.committed;
            while self.in_flight.front().is_some_and(|&o| o <= self.committed) {
                self.in_flight.pop_front();
            }
        }
    }

    /// With a type filter, events the client never sees count as passed: once every
    /// delivered record is acknowledged, move the consumer over what was skipped.
    async fn skip_filtered(&mut self) -> Result<(), SubscribeError> {
        let scanned = self.next - 1;
        let Some(d) = &self.durable else {
            return Ok(());
        };
        let idle = self.in_flight.is_empty() && self.committed >= self.last_delivered;
        if self.types.is_empty() || !idle || scanned <= self.committed || scanned == self.skipped_to
        {
            return Ok(());
        }
        self.skipped_to = scanned;
        let moved = self
            .log
            .skip_filtered(&self.topic, &d.name, d.owner, scanned, self.last_delivered)
            .await?;
        if let Some(position) = moved {
            self.reposition(position);
        }
        Ok(())
    }

    /// Extends the lease; ends the subscription once it may have lapsed.
    async fn renew_lease(&mut self) -> Result<(), SubscribeError> {
        let Some(d) = &self.durable else {
            return Ok(());
        };
        let ttl = self.config.consumer_lease;
        let sent = Instant::now();
        match self
            .log
            .renew_lease(&self.topic, &d.name, d.owner, ttl)
            .await
        {
            Ok(Some(position)) => {
                self.durable.as_mut().expect("durable").lease_until = sent + ttl;
                self.reposition(position);
                Ok(())
            }
            Ok(None) => Err(self.lease_lost()),
            Err(e) if Instant::now() < d.lease_until => {
                tracing::warn!(error = %e, topic = %self.topic, "lease renewal failed; retrying");
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    fn lease_lost(&self) -> SubscribeError {
        SubscribeError::LeaseLost {
            topic: self.topic.clone(),
            consumer: self.durable_ref().name.clone(),
        }
    }

    /// Re-reads the head from PostgreSQL: the safety net for a lost notification.
    async fn refresh_head(&mut self) -> Result<(), SubscribeError> {
        if let Some(head) = self.log.head(&self.topic).await? {
            self.log.heads().advance(&self.topic, head);
        }
        Ok(())
    }

    /// Tells an idle client the stream is alive; skipped when the channel is full
    /// (the client is behind, so it is not idle).
    async fn heartbeat(&mut self) {
        let head = match self.log.head(&self.topic).await {
            Ok(Some(head)) => head,
            _ => *self.head.borrow(),
        };
        let committed = match &self.durable {
            Some(d) => d
                .signal
                .borrow()
                .position
                .map_or(self.committed, |p| p.committed.max(self.committed)),
            None => 0,
        };
        let _ = self
            .tx
            .try_send(Ok(Delivery::Heartbeat { head, committed }));
    }

    fn durable_ref(&self) -> &Durable {
        self.durable.as_ref().expect("a durable subscription")
    }
}

/// Resolves when the watched value changes; never, without a watch.
async fn changed(signal: Option<&mut watch::Receiver<ConsumerSignal>>) {
    match signal {
        Some(rx) => {
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending().await,
    }
}

/// An interval whose first tick is one period from now.
fn ticker(period: std::time::Duration) -> Interval {
    let mut tick = interval_at_period(period);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    tick
}

fn interval_at_period(period: std::time::Duration) -> Interval {
    let period = period.max(std::time::Duration::from_millis(10));
    let mut tick = interval(period);
    tick.reset();
    tick
}
