//! A durable consumer's settings: its delivery mode, ack deadline, redelivery back-off
//! and dead letters, stored on its row.

use std::time::Duration;

use super::{EventLog, LogError};

/// How a durable consumer's records go to its subscribers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeliveryMode {
    /// One active subscriber at a time, in offset order; cumulative acks.
    #[default]
    Exclusive,
    /// Subscribers split the records; each record held by one at a time.
    Shared,
    /// As shared, one subscriber at a time per subject, in offset order.
    KeyShared,
}

impl DeliveryMode {
    /// Its code in the `consumers.mode` column.
    pub fn code(self) -> i16 {
        match self {
            Self::Exclusive => 1,
            Self::Shared => 2,
            Self::KeyShared => 3,
        }
    }

    /// The mode stored as `code` (unknown codes read as exclusive; the column is
    /// checked).
    pub fn from_code(code: i16) -> Self {
        match code {
            2 => Self::Shared,
            3 => Self::KeyShared,
            _ => Self::Exclusive,
        }
    }

    /// Whether records are handed out individually (shared and key-shared).
    pub fn is_shared(self) -> bool {
        self != Self::Exclusive
    }

    /// The name used in messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Exclusive => "exclusive",
            Self::Shared => "shared",
            Self::KeyShared => "key-shared",
        }
    }
}

/// A consumer's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerSettings {
    /// The delivery mode.
    pub mode: DeliveryMode,
    /// How long a subscriber may hold a record (shared modes).
    pub ack_deadline: Duration,
    /// Delivery attempts before a record is dead-lettered; 0 is unlimited.
    pub max_deliveries: u32,
    /// First redelivery back-off; doubles per attempt.
    pub min_backoff: Duration,
    /// Longest redelivery back-off.
    pub max_backoff: Duration,
    /// Where dead letters go; empty means `<topic>.dlq`.
    pub dead_letter_topic: String,
}

impl Default for ConsumerSettings {
    fn default() -> Self {
        Self {
            mode: DeliveryMode::Exclusive,
            ack_deadline: Duration::from_secs(30),
            max_deliveries: 0,
            min_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            dead_letter_topic: String::new(),
        }
    }
}

impl ConsumerSettings {
    /// The back-off before attempt `attempts + 1`: min_backoff doubling per attempt
    /// already made, capped at max_backoff.
    pub fn backoff(&self, attempts: u32) -> Duration {
        let doublings = attempts.saturating_sub(1).min(32);
        let grown = self.min_backoff.saturating_mul(1u32 << doublings.min(31));
        grown.min(self.max_backoff)
    }

    /// The dead-letter topic of `topic`.
    pub fn dead_letter_topic_of(&self, topic: &str) -> String {
        match self.dead_letter_topic.as_str() {
            "" => format!("{topic}.dlq"),
            other => other.to_owned(),
        }
    }
}

/// The settings an UpdateConsumer changes; `None` keeps the stored value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SettingsPatch {
    /// A new mode.
    pub mode: Option<DeliveryMode>,
    /// A new ack deadline.
    pub ack_deadline: Option<Duration>,
    /// A new limit on deliveries.
    pub max_deliveries: Option<u32>,
    /// A new minimum back-off.
    pub min_backoff: Option<Duration>,
    /// A new maximum back-off.
    pub max_backoff: Option<Duration>,
    /// A new dead-letter topic.
    pub dead_letter_topic: Option<String>,
}

impl SettingsPatch {
    /// `settings` with this patch applied.
    pub fn apply(&self, settings: &ConsumerSettings) -> ConsumerSettings {
        ConsumerSettings {
            mode: self.mode.unwrap_or(settings.mode),
            ack_deadline: self.ack_deadline.unwrap_or(settings.ack_deadline),
            max_deliveries: self.max_deliveries.unwrap_or(settings.max_deliveries),
            min_backoff: self.min_backoff.unwrap_or(settings.min_backoff),
            max_backoff: self.max_backoff.unwrap_or(settings.max_backoff),
            dead_letter_topic: self
                .dead_letter_topic
                .clone()
                .unwrap_or_else(|| settings.dead_letter_topic.clone()),
        }
    }
}

/// The settings columns as stored.
#[derive(sqlx::FromRow)]
pub(super) struct SettingsRow {
    pub mode: i16,
    pub ack_deadline_ms: i64,
    pub max_deliveries: i32,
    pub min_backoff_ms: i64,
    pub max_backoff_ms: i64,
    pub dead_letter_topic: String,
}

fn ms(d: i64) -> Duration {
    Duration::from_millis(u64::try_from(d).unwrap_or(0))
}

/// A duration in whole milliseconds, as stored.
pub(super) fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl From<SettingsRow> for ConsumerSettings {
    fn from(r: SettingsRow) -> Self {
        Self {
            mode: DeliveryMode::from_code(r.mode),
            ack_deadline: ms(r.ack_deadline_ms),
            max_deliveries: u32::try_from(r.max_deliveries).unwrap_or(0),
            min_backoff: ms(r.min_backoff_ms),
            max_backoff: ms(r.max_backoff_ms),
            dead_letter_topic: r.dead_letter_topic,
        }
    }
}

const SETTINGS: &str = "SELECT mode, ack_deadline_ms, max_deliveries, min_backoff_ms, \
     max_backoff_ms, dead_letter_topic FROM consumers WHERE topic = $1 AND name = $2";

/// Stores new settings; a mode change only while nothing is unsettled in `deliveries`.
const UPDATE: &str = r#"
UPDATE consumers c
SET mode = $3, ack_deadline_ms = $4, max_deliveries = $5, min_backoff_ms = $6,
    max_backoff_ms = $7, dead_letter_topic = $8, updated_at = clock_timestamp()
WHERE c.topic = $1 AND c.name = $2
  AND (c.mode = $3 OR NOT EXISTS (
        SELECT 1 FROM deliveries d WHERE d.topic = c.topic AND d.consumer = c.name))
RETURNING 1::int4"#;

/// What UpdateConsumer found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Updated {
    /// Stored.
    Yes(ConsumerSettings),
    /// No such consumer.
    NotFound,
    /// The mode would change while records are in flight; nothing changed.
    InFlight {
        /// The stored mode.
        from: DeliveryMode,
    },
}

impl EventLog {
    /// The consumer's settings, if it exists.
    pub async fn consumer_settings(
        &self,
        topic: &str,
        name: &str,
    ) -> Result<Option<ConsumerSettings>, LogError> {
        let row: Option<SettingsRow> = sqlx::query_as(SETTINGS)
            .bind(topic)
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| LogError::from_sqlx("reading consumer settings", e))?;
        Ok(row.map(Into::into))
    }

    /// Applies `patch` to the consumer's settings.
    pub async fn update_consumer(
        &self,
        topic: &str,
        name: &str,
        patch: &SettingsPatch,
    ) -> Result<Updated, LogError> {
        let Some(current) = self.consumer_settings(topic, name).await? else {
            return Ok(Updated::NotFound);
        };
        let next = patch.apply(&current);
        let stored: Option<(i32,)> = sqlx::query_as(UPDATE)
            .bind(topic)
            .bind(name)
            .bind(next.mode.code())
            .bind(millis(next.ack_deadline))
            .bind(i32::try_from(next.max_deliveries).unwrap_or(i32::MAX))
            .bind(millis(next.min_backoff))
            .bind(millis(next.max_backoff))
            .bind(&next.dead_letter_topic)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| LogError::from_sqlx("updating a consumer", e))?;
        Ok(match stored {
            Some(_) => Updated::Yes(next),
            None => Updated::InFlight { from: current.mode },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_per_attempt_and_is_capped() {
        let s = ConsumerSettings {
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(1000),
            ..ConsumerSettings::default()
        };
        let got: Vec<u128> = (1..=6).map(|a| s.backoff(a).as_millis()).collect();
        assert_eq!(got, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(s.backoff(u32::MAX), Duration::from_millis(1000));
        assert_eq!(s.dead_letter_topic_of("mails"), "mails.dlq");
    }
}
