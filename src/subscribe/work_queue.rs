//! The work-queue RPCs of the engine: individual acks, nacks, deadline extensions and
//! consumer settings. Settling and dispatching run in PostgreSQL (`log::deliveries`);
//! here they are checked against the consumer's mode, and the consumer's subscribers
//! on this server are woken (other replicas hear it through NOTIFY).

use std::time::Duration;

use super::{Engine, SubscribeError};
use crate::log::{
    Change, ConsumerInfo, ConsumerSettings, ExclusiveNack, Position, Redelivery, SettingsPatch,
    Updated,
};

impl Engine {
    /// The settings of an existing consumer of an existing topic.
    async fn settings_of(
        &self,
        topic: &str,
        consumer: &str,
    ) -> Result<ConsumerSettings, SubscribeError> {
        self.head(topic).await?;
        self.log
            .consumer_settings(topic, consumer)
            .await?
            .ok_or_else(|| self.consumer_not_found(topic, consumer))
    }

    /// The settings of a shared consumer; `rpc` names the call for the error.
    async fn shared(
        &self,
        topic: &str,
        consumer: &str,
        rpc: &'static str,
    ) -> Result<ConsumerSettings, SubscribeError> {
        let settings = self.settings_of(topic, consumer).await?;
        if !settings.mode.is_shared() {
            return Err(SubscribeError::NotShared {
                topic: topic.to_owned(),
                consumer: consumer.to_owned(),
                rpc,
            });
        }
        Ok(settings)
    }

    /// Settles records one by one (offsets not delivered, or already settled, are
    /// ignored) and returns the consumer's position after. Shared consumers settle in
    /// one transaction that checks the mode under the consumer's lock; exclusive ones
    /// move their low-water mark over what is acked (with `epoch`, an ack from before
    /// a Seek moves nothing).
    pub async fn ack_records(
        &self,
        topic: &str,
        consumer: &str,
        offsets: &[i64],
        epoch: Option<i64>,
    ) -> Result<Position, SubscribeError> {
        match self
            .settles
            .settle(topic, consumer, offsets.to_vec())
            .await?
        {
            Change::NotShared => self.ack_exclusive(topic, consumer, offsets, epoch).await,
            change => {
                let position = self.changed(topic, consumer, change, "offsets").await?;
                self.signals.settled(topic, consumer);
                Ok(position)
            }
        }
    }

    async fn ack_exclusive(
        &self,
        topic: &str,
        consumer: &str,
        offsets: &[i64],
        epoch: Option<i64>,
    ) -> Result<Position, SubscribeError> {
        let max = self.config.max_unsettled;
        let acked = self
            .log
            .ack_exclusive_records(topic, consumer, offsets, epoch, max);
        self.moved(topic, consumer, acked.await?)
    }

    /// An exclusive consumer's new position, announced to its stream here (other
    /// replicas hear the NOTIFY); `None` means there is no such consumer.
    fn moved(
        &self,
        topic: &str,
        consumer: &str,
        found: Option<Position>,
    ) -> Result<Position, SubscribeError> {
        let position = found.ok_or_else(|| self.consumer_not_found(topic, consumer))?;
        self.signals.moved(topic, consumer, position);
        Ok(position)
    }

    /// Gives records back for redelivery, or dead-letters them.
    pub async fn nack(
        &self,
        topic: &str,
        consumer: &str,
        offsets: &[i64],
        redelivery: Redelivery<'_>,
    ) -> Result<(), SubscribeError> {
        match self.log.nack(topic, consumer, offsets, redelivery).await? {
            Change::NotShared => {
                self.nack_exclusive(topic, consumer, offsets, redelivery)
                    .await?
            }
            change => self
                .changed(topic, consumer, change, "Nack")
                .await
                .map(drop)?,
        }
        self.signals.released(topic, consumer);
        Ok(())
    }

    /// An exclusive consumer's nack: records on their last allowed attempt are parked
    /// now; for the rest its stream rewinds after the delay (default: the consumer's
    /// back-off for the attempt) and delivers everything after the committed offset
    /// again, in order.
    async fn nack_exclusive(
        &self,
        topic: &str,
        consumer: &str,
        offsets: &[i64],
        redelivery: Redelivery<'_>,
    ) -> Result<(), SubscribeError> {
        let max_unsettled = self.config.max_unsettled;
        let (delay, reason) = match redelivery {
            Redelivery::After(delay, reason) => (delay, reason),
            Redelivery::DeadLetter(reason) => {
                let parked =
                    self.log
                        .dead_letter_exclusive(topic, consumer, offsets, reason, max_unsettled);
                return self.moved(topic, consumer, parked.await?).map(drop);
            }
        };
        let settings = self.settings_of(topic, consumer).await?;
        let nack = ExclusiveNack {
            offsets,
            delay,
            reason,
            settings: &settings,
            max_unsettled,
        };
        let nacked = self.log.nack_exclusive(topic, consumer, nack).await?;
        self.moved(topic, consumer, nacked).map(drop)
    }

    /// The outcome of a change to a shared consumer, as the caller's error.
    async fn changed<T>(
        &self,
        topic: &str,
        consumer: &str,
        change: Change<T>,
        rpc: &'static str,
    ) -> Result<T, SubscribeError> {
        match change {
            Change::Done(done) => Ok(done),
            Change::NotShared => Err(SubscribeError::NotShared {
                topic: topic.to_owned(),
                consumer: consumer.to_owned(),
                rpc,
            }),
            Change::NotFound => {
                self.head(topic).await?; // names the topic when that is what is missing
                Err(self.consumer_not_found(topic, consumer))
            }
        }
    }

    /// Restarts the ack deadline of held records (`None`: the consumer's deadline).
    pub async fn extend(
        &self,
        topic: &str,
        consumer: &str,
        offsets: &[i64],
        deadline: Option<Duration>,
    ) -> Result<(), SubscribeError> {
        let settings = self.shared(topic, consumer, "ExtendAckDeadline").await?;
        let deadline = deadline.unwrap_or(settings.ack_deadline);
        Ok(self.log.extend(topic, consumer, offsets, deadline).await?)
    }

    /// Changes a consumer's settings; returns the consumer as ListConsumers shows it.
    pub async fn update(
        &self,
        topic: &str,
        consumer: &str,
        patch: &SettingsPatch,
    ) -> Result<ConsumerInfo, SubscribeError> {
        self.head(topic).await?;
        match self.log.update_consumer(topic, consumer, patch).await? {
            Updated::Yes(_) => {}
            Updated::NotFound => return Err(self.consumer_not_found(topic, consumer)),
            Updated::InFlight { from } => {
                return Err(SubscribeError::RecordsInFlight {
                    topic: topic.to_owned(),
                    consumer: consumer.to_owned(),
                    from,
                });
            }
        }
        self.signals.released(topic, consumer);
        self.log
            .consumer_info(topic, consumer)
            .await?
            .ok_or_else(|| self.consumer_not_found(topic, consumer))
    }
}
