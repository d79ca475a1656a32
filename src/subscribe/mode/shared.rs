//! Shared and key-shared consumers: PostgreSQL hands each subscriber, on any replica,
//! records one at a time (`log::deliveries`): due redeliveries first, then new records.
//! A record stays with its subscriber until it is acked or nacked, its ack deadline
//! passes, or the subscriber leaves (its records are then redelivered at once). The
//! stream dispatches when the head moves, when the consumer's doorbell rings (an ack
//! or nack anywhere frees room or makes a record due), and when the earliest deadline
//! or back-off it knows of ends.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use uuid::Uuid;

use super::{Batch, Mode};
use crate::config::SubscriptionConfig;
use crate::log::{DispatchRequest, Position};
use crate::subscribe::signals::{ConsumerSignal, Doorbell, Signals};
use crate::subscribe::stream::Stream;
use crate::subscribe::tail::SharedRecord;
use crate::subscribe::{Delivery, SubscribeError};

/// Never look again sooner than this after a deadline (clocks of the server and the
/// database differ a little).
const MIN_WAKE: Duration = Duration::from_millis(10);

/// One subscriber of a shared consumer.
pub struct Shared {
    name: String,
    owner: Uuid,
    signal: Doorbell,
    max_in_flight: usize,
    /// Something may be due: dispatch even if the head did not move.
    dirty: bool,
    /// The head at the last dispatch.
    seen_head: i64,
    /// When the earliest deadline or back-off known at the last dispatch ends.
    wake_at: Option<Instant>,
    /// Records held at the last dispatch, plus those sent since.
    holding: usize,
    window_full: bool,
    position: Position,
    reposition: Option<Position>,
    /// The doorbell as last looked at.
    seen: ConsumerSignal,
}

impl Shared {
    /// A subscriber of the shared or key-shared consumer `name` with a fresh owner id
    /// (PostgreSQL applies the key-shared rules).
    pub fn new(name: String, topic: &str, signals: Arc<Signals>, max_in_flight: usize) -> Self {
        Self {
            signal: signals.watch(topic, &name),
            name,
            owner: Uuid::new_v4(),
            max_in_flight,
            dirty: true,
            seen_head: 0,
            wake_at: None,
            holding: 0,
            window_full: false,
            position: Position {
                committed: 0,
                epoch: -1,
            },
            reposition: None,
            seen: ConsumerSignal::default(),
        }
    }

    /// Takes in the doorbell as it is now; returns (and marks the stream dirty)
    /// whether anything rang that matters here since it last looked. Every look goes
    /// through here, so a ring that comes while the stream dispatches is not lost.
    fn absorb(&mut self, now: ConsumerSignal) -> bool {
        let before = std::mem::replace(&mut self.seen, now);
        let room_matters = self.window_full || self.holding >= self.max_in_flight;
        let relevant = now.releases != before.releases
            || now.position != before.position
            || (now.settles != before.settles && room_matters);
        self.dirty |= relevant;
        relevant
    }

    fn wake_in(due: chrono::DateTime<chrono::Utc>) -> Instant {
        let wait = (due - chrono::Utc::now()).to_std().unwrap_or_default();
        Instant::now() + wait.max(MIN_WAKE)
    }

    /// Takes in a position: a newer epoch (a Seek) restarts the consumer.
    fn apply(&mut self, position: Position) {
        if position.epoch > self.position.epoch {
            if self.position.epoch >= 0 {
                self.reposition = Some(position);
            }
            self.position = position;
            self.dirty = true;
        } else if position.epoch == self.position.epoch {
            self.position.committed = self.position.committed.max(position.committed);
        }
    }
}

impl Mode for Shared {
    async fn attach(&mut self, s: &Stream) -> Result<Option<Position>, SubscribeError> {
        let position = s.log.position(&s.topic, &self.name).await?.ok_or_else(|| {
            SubscribeError::ConsumerNotFound {
                topic: s.topic.clone(),
                consumer: self.name.clone(),
            }
        })?;
        self.apply(position);
        s.tell(Delivery::Attached {
            committed: position.committed,
            epoch: position.epoch,
        });
        Ok(Some(position))
    }

    fn has_work(&self, stream: &Stream) -> bool {
        self.dirty || stream.head.get() > self.seen_head
    }

    async fn fetch(&mut self, s: &mut Stream) -> Result<Batch, SubscribeError> {
        self.seen_head = s.head.get();
        self.dirty = false;
        // Full at the last look: a settle somewhere woke us, but unless it was one of
        // ours there is no room. One count instead of a dispatch under the lock.
        if self.holding >= self.max_in_flight {
            self.holding = s.log.holding(&s.topic, &self.name, self.owner).await?;
            if self.holding >= self.max_in_flight {
                return Ok(Vec::new());
            }
        }
        let request = DispatchRequest {
            topic: &s.topic,
            consumer: &self.name,
            owner: self.owner,
            max_in_flight: self.max_in_flight,
            max_unsettled: s.config.max_unsettled,
        };
        let dispatch =
            s.log
                .dispatch(&request)
                .await?
                .ok_or_else(|| SubscribeError::ConsumerNotFound {
                    topic: s.topic.clone(),
                    consumer: self.name.clone(),
                })?;
        self.holding = dispatch.holding - dispatch.held.len();
        self.window_full = dispatch.window_full;
        self.dirty = dispatch.more;
        self.wake_at = dispatch.next_due.map(Self::wake_in);
        if dispatch.held.is_empty() {
            return Ok(Vec::new());
        }
        let offsets: Vec<i64> = dispatch.held.iter().map(|h| h.offset).collect();
        let records = s.log.records_at(&s.topic, &offsets).await?;
        Ok(records
            .into_iter()
            .zip(dispatch.held)
            .map(|(record, held)| (SharedRecord::new(record), held.attempt))
            .collect())
    }

    fn delivered(&mut self, _offset: i64) {
        self.holding += 1;
    }

    fn has_reposition(&self) -> bool {
        self.reposition.is_some()
    }

    fn take_reposition(&mut self) -> Option<Position> {
        let signal = self.signal.look();
        self.absorb(signal);
        if let Some(position) = signal.position {
            self.apply(position);
        }
        self.reposition.take()
    }

    /// Wakes when records became due anywhere (nack, a subscriber left, a key-shared
    /// subject freed), when the earliest known deadline or back-off ends, and on other
    /// settles only when they may matter here: this subscriber waits for room, or its
    /// consumer's window is full. Ignoring the rest keeps an ack from waking every
    /// subscriber of the consumer.
    async fn changed(&mut self) {
        let wake = self.wake_at;
        let due = async move {
            match wake {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending::<()>().await,
            }
        };
        tokio::pin!(due);
        loop {
            tokio::select! {
                _ = self.signal.rung() => {
                    let now = self.signal.look();
                    if self.absorb(now) {
                        break;
                    }
                }
                _ = &mut due => {
                    self.wake_at = None;
                    break;
                }
            }
        }
        self.dirty = true;
    }

    fn keep_alive_every(&self, _config: &SubscriptionConfig) -> Option<Duration> {
        None
    }

    async fn keep_alive(&mut self, _stream: &Stream) -> Result<(), SubscribeError> {
        Ok(())
    }

    async fn idle(&mut self, _stream: &Stream) -> Result<(), SubscribeError> {
        Ok(())
    }

    fn committed(&self) -> i64 {
        self.position.committed
    }

    fn heartbeat(&self, head: i64) -> Delivery {
        Delivery::Heartbeat {
            head,
            committed: self.position.committed,
            in_flight: self.holding,
            at_max_in_flight: self.holding >= self.max_in_flight,
            window_full: self.window_full,
        }
    }

    /// Gives back what this subscriber holds (redelivered to the others at once).
    async fn detach(self, s: &Stream) {
        if let Err(e) = s.log.release_held(&s.topic, &self.name, self.owner).await {
            tracing::warn!(error = %e, topic = %s.topic, consumer = %self.name,
                "could not give back held records; they are redelivered after their deadline");
        }
        // The others here may take over what was held at once.
        self.signal.ring_released();
    }
}
