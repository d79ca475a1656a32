//! Validation of the work-queue settings and RPCs: ConsumerConfig, individual acks,
//! Nack, ExtendAckDeadline and UpdateConsumer.

use std::time::Duration;

use super::{duration, required_consumer, topic};
use crate::error::ApiError;
use crate::log::{ConsumerSettings, DeliveryMode, SettingsPatch};
use crate::proto::pulsebus::v1 as pb;

/// Shortest and longest ack deadline.
const MIN_ACK_DEADLINE: Duration = Duration::from_secs(1);
const MAX_ACK_DEADLINE: Duration = Duration::from_secs(3600);
/// Longest back-off and nack delay.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);
/// Most offsets in one Ack, Nack or ExtendAckDeadline.
pub const MAX_OFFSETS: usize = 10_000;

/// A validated Nack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NackParams {
    /// The topic.
    pub topic: String,
    /// The consumer.
    pub consumer: String,
    /// The records.
    pub offsets: Vec<i64>,
    /// Redeliver after this; `None`: the consumer's back-off.
    pub delay: Option<Duration>,
    /// To the dead-letter topic now.
    pub dead_letter: bool,
    /// Why.
    pub reason: String,
}

fn mode(field: &str, value: i32) -> Result<Option<DeliveryMode>, ApiError> {
    match pb::DeliveryMode::try_from(value) {
        Ok(pb::DeliveryMode::Unspecified) => Ok(None),
        Ok(pb::DeliveryMode::Exclusive) => Ok(Some(DeliveryMode::Exclusive)),
        Ok(pb::DeliveryMode::Shared) => Ok(Some(DeliveryMode::Shared)),
        Ok(pb::DeliveryMode::KeyShared) => Ok(Some(DeliveryMode::KeyShared)),
        Err(_) => Err(ApiError::invalid(
            field,
            format!("{value} is not a delivery mode (EXCLUSIVE, SHARED or KEY_SHARED)"),
        )),
    }
}

/// The settings a ConsumerConfig asks for (defaults where unset), and whether it named
/// a mode. `topic` is the consumer's topic: its own dead-letter topic is refused.
fn settings(
    topic_name: &str,
    config: &pb::ConsumerConfig,
) -> Result<(ConsumerSettings, Option<DeliveryMode>), ApiError> {
    let defaults = ConsumerSettings::default();
    let mode = mode("config.mode", config.mode)?;
    let settings = ConsumerSettings {
        mode: mode.unwrap_or_default(),
        ack_deadline: duration(
            "config.ack_deadline",
            config.ack_deadline,
            (MIN_ACK_DEADLINE, MAX_ACK_DEADLINE),
            defaults.ack_deadline,
        )?,
        max_deliveries: config.max_deliveries,
        min_backoff: duration(
            "config.min_backoff",
            config.min_backoff,
            (Duration::ZERO, MAX_BACKOFF),
            defaults.min_backoff,
        )?,
        max_backoff: duration(
            "config.max_backoff",
            config.max_backoff,
            (Duration::ZERO, MAX_BACKOFF),
            defaults.max_backoff,
        )?,
        dead_letter_topic: config.dead_letter_topic.clone(),
    };
    if settings.min_backoff > settings.max_backoff {
        return Err(ApiError::invalid(
            "config.max_backoff",
            "must not be shorter than config.min_backoff",
        ));
    }
    if !settings.dead_letter_topic.is_empty() {
        topic("config.dead_letter_topic", &settings.dead_letter_topic)?;
        if settings.dead_letter_topic == topic_name {
            return Err(ApiError::invalid(
                "config.dead_letter_topic",
                "must not be the consumer's own topic",
            ));
        }
    }
    Ok((settings, mode))
}

/// A Subscribe's `config`: the settings for a new consumer, if any were given.
pub fn subscribe_config(
    topic_name: &str,
    config: Option<&pb::ConsumerConfig>,
) -> Result<Option<ConsumerSettings>, ApiError> {
    config
        .map(|c| settings(topic_name, c).map(|(settings, _)| settings))
        .transpose()
}

/// Validates an UpdateConsumer request: the new settings (all of them; a mode left
/// unspecified keeps the consumer's mode).
pub fn update_consumer(
    req: &pb::UpdateConsumerRequest,
) -> Result<(String, String, SettingsPatch), ApiError> {
    topic("topic", &req.topic)?;
    let consumer = required_consumer(&req.consumer)?;
    let config = req
        .config
        .as_ref()
        .ok_or_else(|| ApiError::invalid("config", "is required"))?;
    let (s, mode) = settings(&req.topic, config)?;
    let patch = SettingsPatch {
        mode,
        ack_deadline: Some(s.ack_deadline),
        max_deliveries: Some(s.max_deliveries),
        min_backoff: Some(s.min_backoff),
        max_backoff: Some(s.max_backoff),
        dead_letter_topic: Some(s.dead_letter_topic),
    };
    Ok((req.topic.clone(), consumer, patch))
}

/// Offsets to settle, nack or extend: at least one, each at least 1.
pub fn offsets(field: &str, offsets: &[i64]) -> Result<Vec<i64>, ApiError> {
    if offsets.is_empty() {
        return Err(ApiError::invalid(field, "needs at least one offset"));
    }
    if offsets.len() > MAX_OFFSETS {
        return Err(ApiError::invalid(
            field,
            format!("{} offsets; at most {MAX_OFFSETS} per call", offsets.len()),
        ));
    }
    if let Some((i, o)) = offsets.iter().enumerate().find(|(_, o)| **o < 1) {
        return Err(ApiError::invalid(
            format!("{field}[{i}]"),
            format!("{o} is not an offset: offsets start at 1"),
        ));
    }
    Ok(offsets.to_vec())
}

/// Validates a Nack request.
pub fn nack(req: pb::NackRequest) -> Result<NackParams, ApiError> {
    topic("topic", &req.topic)?;
    let consumer = required_consumer(&req.consumer)?;
    let offsets = offsets("offsets", &req.offsets)?;
    let delay = req
        .delay
        .map(|d| {
            duration(
                "delay",
                Some(d),
                (Duration::ZERO, MAX_BACKOFF),
                Duration::ZERO,
            )
        })
        .transpose()?;
    if req.dead_letter && delay.is_some() {
        return Err(ApiError::invalid(
            "delay",
            "cannot be combined with dead_letter (a dead letter is not redelivered)",
        ));
    }
    super::short("reason", &req.reason)?;
    Ok(NackParams {
        topic: req.topic,
        consumer,
        offsets,
        delay,
        dead_letter: req.dead_letter,
        reason: req.reason,
    })
}

/// Validates an ExtendAckDeadline request: `(topic, consumer, offsets, deadline)`;
/// the deadline `None` means the consumer's own.
pub fn extend(
    req: pb::ExtendAckDeadlineRequest,
) -> Result<(String, String, Vec<i64>, Option<Duration>), ApiError> {
    topic("topic", &req.topic)?;
    let consumer = required_consumer(&req.consumer)?;
    let offsets = offsets("offsets", &req.offsets)?;
    let deadline = req
        .deadline
        .map(|d| {
            let range = (MIN_ACK_DEADLINE, MAX_ACK_DEADLINE);
            duration("deadline", Some(d), range, MIN_ACK_DEADLINE)
        })
        .transpose()?;
    Ok((req.topic, consumer, offsets, deadline))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: i64) -> Option<prost_types::Duration> {
        Some(prost_types::Duration {
            seconds: s,
            nanos: 0,
        })
    }

    /// Every setting out of range is refused naming its field; unset ones default.
    #[test]
    fn consumer_configs_name_the_field_and_the_range() {
        let ok = pb::ConsumerConfig {
            mode: pb::DeliveryMode::Shared as i32,
            ..Default::default()
        };
        let (s, mode) = settings("t", &ok).unwrap();
        assert_eq!(mode, Some(DeliveryMode::Shared));
        assert_eq!(s.ack_deadline, Duration::from_secs(30));
        let bad = |config: pb::ConsumerConfig| settings("t", &config).unwrap_err().to_string();
        let deadline = bad(pb::ConsumerConfig {
            ack_deadline: secs(0),
            ..Default::default()
        });
        assert!(
            deadline.starts_with("config.ack_deadline: must be between 1s and 1h"),
            "{deadline}"
        );
        let backoff = bad(pb::ConsumerConfig {
            min_backoff: secs(10),
            max_backoff: secs(5),
            ..Default::default()
        });
        assert!(backoff.starts_with("config.max_backoff:"), "{backoff}");
        let dlq = bad(pb::ConsumerConfig {
            dead_letter_topic: "t".into(),
            ..Default::default()
        });
        assert!(dlq.starts_with("config.dead_letter_topic:"), "{dlq}");
        let unknown = bad(pb::ConsumerConfig {
            mode: 9,
            ..Default::default()
        });
        assert!(
            unknown.starts_with("config.mode: 9 is not a delivery mode"),
            "{unknown}"
        );
    }

    #[test]
    fn offsets_must_be_given_and_positive() {
        assert!(offsets("offsets", &[]).is_err());
        let err = offsets("offsets", &[3, 0]).unwrap_err().to_string();
        assert!(err.starts_with("offsets[1]:"), "{err}");
        assert_eq!(offsets("offsets", &[2, 1]).unwrap(), [2, 1]);
    }
}
