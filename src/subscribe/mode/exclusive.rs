//! A durable consumer with one active subscriber across all replicas: the subscriber
//! holding the consumer's lease delivers in offset order from the committed offset;
//! any other waits as a standby (heartbeats meanwhile) and takes over when the lease
//! is released or lapses. Acks commit cumulatively; at most `max_in_flight` records
//! are delivered and unacknowledged. A Seek (on any replica) bumps the consumer's
//! epoch, and the stream restarts from the new position. A nack rewinds the stream
//! after its delay; records that come back carry their delivery attempt, skip what
//! is individually acked, and go to the dead-letter topic past `max_deliveries`.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use uuid::Uuid;

use super::{Batch, Mode};
use crate::config::SubscriptionConfig;
use crate::log::{HeldBy, Position, Redelivering};
use crate::subscribe::signals::{Doorbell, Signals};
use crate::subscribe::stream::{Stream, ticker};
use crate::subscribe::{Delivery, SubscribeError};

/// The consumer, its lease, and what is in flight.
pub struct Exclusive {
    name: String,
    owner: Uuid,
    signal: Doorbell,
    /// When the lease we hold runs out unless renewed (by this server's clock, counted
    /// from before the renewal was sent, so never later than the database's).
    lease_until: Instant,
    max_in_flight: usize,
    /// Last committed offset known, and the seek epoch it belongs to.
    committed: i64,
    epoch: i64,
    /// Offsets delivered and not yet acknowledged, oldest first.
    in_flight: VecDeque<i64>,
    /// Highest offset delivered, or the committed offset we started from.
    last_delivered: i64,
    /// Last `to` tried when moving the consumer past filtered-out events.
    skipped_to: i64,
    /// A Seek moved the consumer: the stream restarts after this.
    reposition: Option<Position>,
    /// Lease releases (and nacks) seen: a change means a rewind may be asked for.
    releases_seen: u64,
    /// A nack asked for a rewind: look up when.
    check_rewind: bool,
    /// When the asked-for rewind is due.
    rewind_at: Option<Instant>,
    /// Individual acks and attempts, as of the last (re)start of the stream.
    redelivering: Redelivering,
    /// The stream (re)started: read `redelivering` again before the next fetch.
    reload: bool,
}

impl Exclusive {
    /// What this stream holds of the consumer, for counting attempts.
    fn held_by(&self, s: &Stream) -> HeldBy {
        HeldBy {
            owner: self.owner,
            last_delivered: self.last_delivered,
            max_unsettled: s.config.max_unsettled,
        }
    }

    /// The consumer `name`, watched through `signals`, with a fresh owner id.
    pub fn new(name: String, topic: &str, signals: Arc<Signals>, max_in_flight: usize) -> Self {
        Self {
            signal: signals.watch(topic, &name),
            name,
            owner: Uuid::new_v4(),
            lease_until: Instant::now(),
            max_in_flight,
            committed: 0,
            epoch: -1,
            in_flight: VecDeque::new(),
            last_delivered: 0,
            skipped_to: 0,
            reposition: None,
            releases_seen: 0,
            check_rewind: true,
            rewind_at: None,
            redelivering: Redelivering::default(),
            reload: true,
        }
    }

    /// A release (or a nack) rang since the last look: a rewind may be asked for. Every
    /// look at the doorbell goes through here, so none is missed.
    fn note_releases(&mut self, releases: u64) {
        if std::mem::replace(&mut self.releases_seen, releases) != releases {
            self.check_rewind = true;
        }
    }

    /// Learns of a rewind a nack asked for, and does it once due (as the lease holder:
    /// a new epoch, so the stream restarts after the committed offset).
    async fn maybe_rewind(&mut self, s: &Stream) -> Result<(), SubscribeError> {
        if std::mem::take(&mut self.check_rewind) {
            let at = s.log.rewind_at(&s.topic, &self.name).await?;
            self.rewind_at = at.map(|at| {
                let wait = (at - chrono::Utc::now()).to_std().unwrap_or_default();
                Instant::now() + wait
            });
        }
        if self.rewind_at.is_some_and(|at| at <= Instant::now()) {
            self.rewind_at = None;
            let rewound = s.log.rewind(&s.topic, &self.name, self.held_by(s));
            if let Some(position) = rewound.await? {
                self.apply(position);
            }
        }
        Ok(())
    }

    async fn try_acquire(&mut self, s: &Stream) -> Result<Option<Position>, SubscribeError> {
        let ttl = s.config.consumer_lease;
        let sent = Instant::now();
        let position = s
            .log
            .acquire_lease(&s.topic, &self.name, self.owner, ttl)
            .await?;
        if position.is_some() {
            self.lease_until = sent + ttl;
            tracing::debug!(topic = %s.topic, consumer = %self.name, "subscriber attached");
        }
        Ok(position)
    }

    /// Takes in a position: a newer epoch (a Seek) restarts the stream, a higher
    /// offset in the same epoch (an ack) frees budget.
    fn apply(&mut self, position: Position) {
        if position.epoch > self.epoch {
            self.epoch = position.epoch;
            self.committed = position.committed;
            self.last_delivered = position.committed;
            self.in_flight.clear();
            self.reposition = Some(position);
            self.reload = true;
        } else if position.epoch == self.epoch && position.committed > self.committed {
            self.committed = position.committed;
            while self.in_flight.front().is_some_and(|&o| o <= self.committed) {
                self.in_flight.pop_front();
            }
        }
    }

    /// How many more records may be delivered now.
    fn budget(&self) -> usize {
        self.max_in_flight.saturating_sub(self.in_flight.len())
    }

    /// Parks records that came back more often than `max_deliveries` allows (they are
    /// not delivered again) and counts them as acked.
    async fn park(&mut self, s: &Stream, offsets: &[i64]) -> Result<(), SubscribeError> {
        let max = self.redelivering.max_deliveries;
        let reason = format!("left unsettled; {max} deliveries made");
        let parked = s
            .log
            .dead_letter_exclusive(
                &s.topic,
                &self.name,
                offsets,
                &reason,
                s.config.max_unsettled,
            )
            .await?;
        self.redelivering.acked.extend_from_slice(offsets);
        if let Some(position) = parked {
            self.apply(position);
        }
        Ok(())
    }

    fn lease_lost(&self, s: &Stream) -> SubscribeError {
        SubscribeError::LeaseLost {
            topic: s.topic.clone(),
            consumer: self.name.clone(),
        }
    }
}

impl Mode for Exclusive {
    /// Waits as a standby until this subscription holds the consumer's lease.
    async fn attach(&mut self, s: &Stream) -> Result<Option<Position>, SubscribeError> {
        let mut beat = ticker(Some(s.config.heartbeat_interval));
        let mut check = ticker(Some(s.config.consumer_lease / 4));
        let mut told_standby = false;
        loop {
            if let Some(position) = self.try_acquire(s).await? {
                self.apply(position);
                self.reposition = None;
                s.tell(Delivery::Attached {
                    committed: position.committed,
                    epoch: position.epoch,
                });
                return Ok(Some(position));
            }
            if !std::mem::replace(&mut told_standby, true) {
                s.tell(Delivery::Standby);
            }
            let releases = self.signal.peek().releases;
            loop {
                tokio::select! {
                    _ = s.token.cancelled() => return Err(SubscribeError::ShuttingDown),
                    _ = s.tx.closed() => return Ok(None),
                    _ = check.tick() => break,
                    _ = self.signal.rung() => {
                        if self.signal.peek().releases != releases {
                            break;
                        }
                    }
                    _ = beat.tick() => {
                        let head = s.head.get();
                        let committed = self.signal.peek().position.map_or(0, |p| p.committed);
                        s.tell(Delivery::Heartbeat {
                            head,
                            committed,
                            in_flight: 0,
                            at_max_in_flight: false,
                            window_full: false,
                        });
                    }
                }
            }
        }
    }

    fn has_work(&self, stream: &Stream) -> bool {
        stream.next <= stream.head.get() && self.budget() > 0
    }

    async fn fetch(&mut self, stream: &mut Stream) -> Result<Batch, SubscribeError> {
        self.maybe_rewind(stream).await?;
        if self.reposition.is_some() {
            return Ok(Vec::new()); // the loop restarts the stream first
        }
        if std::mem::take(&mut self.reload) {
            self.redelivering = stream.log.redelivering(&stream.topic, &self.name).await?;
        }
        let records = stream.read_page(self.budget()).await?;
        let r = &self.redelivering;
        let (exhausted, records): (Vec<_>, Vec<_>) = records
            .into_iter()
            .filter(|rec| !r.acked.contains(&rec.record().offset))
            .partition(|rec| r.attempts.exhausted(rec.record().offset, r.max_deliveries));
        if !exhausted.is_empty() {
            let offsets: Vec<i64> = exhausted.iter().map(|rec| rec.record().offset).collect();
            self.park(stream, &offsets).await?;
        }
        let attempt = |offset| self.redelivering.attempts.next_attempt(offset);
        Ok(records
            .into_iter()
            .map(|rec| {
                let n = attempt(rec.record().offset);
                (rec, n)
            })
            .collect())
    }

    fn delivered(&mut self, offset: i64) {
        if self.reposition.is_none() {
            self.last_delivered = offset;
            self.in_flight.push_back(offset);
        }
    }

    fn has_reposition(&self) -> bool {
        self.reposition.is_some()
    }

    fn take_reposition(&mut self) -> Option<Position> {
        let signal = self.signal.look();
        self.note_releases(signal.releases);
        if let Some(position) = signal.position {
            self.apply(position);
        }
        self.reposition.take()
    }

    /// Wakes on the consumer's doorbell (acks, seeks; a release means a nack may have
    /// asked for a rewind) and when an asked-for rewind is due.
    async fn changed(&mut self) {
        if self.reposition.is_some() {
            return;
        }
        let rewind_at = self.rewind_at;
        let due = async move {
            match rewind_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = self.signal.rung() => {
                let releases = self.signal.peek().releases;
                self.note_releases(releases);
            }
            _ = due => {}
        }
    }

    fn keep_alive_every(&self, config: &SubscriptionConfig) -> Option<Duration> {
        Some(config.consumer_lease / 3)
    }

    /// Extends the lease; ends the subscription once it may have lapsed.
    async fn keep_alive(&mut self, s: &Stream) -> Result<(), SubscribeError> {
        let ttl = s.config.consumer_lease;
        let sent = Instant::now();
        match s
            .log
            .renew_lease(&s.topic, &self.name, self.owner, ttl)
            .await
        {
            Ok(Some(position)) => {
                self.lease_until = sent + ttl;
                self.apply(position);
                Ok(())
            }
            Ok(None) => Err(self.lease_lost(s)),
            Err(e) if Instant::now() < self.lease_until => {
                tracing::warn!(error = %e, topic = %s.topic, "lease renewal failed; retrying");
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// With a type filter, events the client never sees count as passed: once every
    /// delivered record is acknowledged, move the consumer over what was skipped.
    async fn idle(&mut self, s: &Stream) -> Result<(), SubscribeError> {
        self.maybe_rewind(s).await?;
        let scanned = s.next - 1;
        let settled = self.in_flight.is_empty() && self.committed >= self.last_delivered;
        if s.types.is_empty() || !settled || scanned <= self.committed || scanned == self.skipped_to
        {
            return Ok(());
        }
        self.skipped_to = scanned;
        let moved = s
            .log
            .skip_filtered(
                &s.topic,
                &self.name,
                self.owner,
                scanned,
                self.last_delivered,
            )
            .await?;
        if let Some(position) = moved {
            self.apply(position);
        }
        Ok(())
    }

    fn committed(&self) -> i64 {
        self.committed
    }

    fn heartbeat(&self, head: i64) -> Delivery {
        Delivery::Heartbeat {
            head,
            committed: self.committed,
            in_flight: self.in_flight.len(),
            at_max_in_flight: self.budget() == 0,
            window_full: false,
        }
    }

    /// Counts an attempt for what it leaves unsettled, releases the lease (standbys
    /// take over at once) and forgets the doorbell.
    async fn detach(self, s: &Stream) {
        if self.last_delivered > self.committed {
            let counted = s
                .log
                .count_left_behind(&s.topic, &self.name, self.held_by(s));
            if let Err(e) = counted.await {
                tracing::warn!(error = %e, topic = %s.topic, consumer = %self.name, "could not count the attempts of unsettled records");
            }
        }
        if let Err(e) = s.log.release_lease(&s.topic, &self.name, self.owner).await {
            tracing::warn!(error = %e, topic = %s.topic, consumer = %self.name, "could not release lease; it will expire");
        }
        // Dropping self drops the doorbell, which forgets the consumer's entry.
    }
}
