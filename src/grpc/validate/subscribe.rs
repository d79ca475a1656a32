//! Validation of Subscribe and the consumer RPCs (Ack, Seek, DeleteConsumer).

use uuid::Uuid;

use super::{consumer, required_consumer, timestamp, topic, types};
use crate::error::ApiError;
use crate::log::Seen;
use crate::proto::pulsebus::v1 as pb;
use crate::subscribe::{Start, SubscribeParams};

/// `max_in_flight` when the request leaves it 0.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 1000;
/// Largest `max_in_flight` accepted.
pub const MAX_IN_FLIGHT: usize = 100_000;

/// Largest `batch_records` accepted. A batch is built in memory before it is sent;
/// this caps that list (its bytes are capped apart, see `grpc::batching`). It is far
/// above what helps: a batch drains the subscription's channel, which holds 16 records
/// (plus what arrives while it is drained), so real batches stay small.
pub const MAX_BATCH_RECORDS: u32 = 10_000;

/// Validates `SubscribeRequest.batch_records`: most records per batch, 0 for none.
pub fn batch_records(n: u32) -> Result<usize, ApiError> {
    match n {
        n if n > MAX_BATCH_RECORDS => Err(ApiError::invalid(
            "batch_records",
            format!("{n} is above the maximum of {MAX_BATCH_RECORDS}"),
        )),
        n => Ok(n as usize),
    }
}

/// Validates `SubscribeRequest.last_seen`: unset, or an offset of at least 1 and the
/// UUID of the event there.
pub fn last_seen(seen: Option<&pb::LastSeen>) -> Result<Option<Seen>, ApiError> {
    let Some(seen) = seen else {
        return Ok(None);
    };
    if seen.offset < 1 {
        return Err(ApiError::invalid(
            "last_seen.offset",
            format!("{} is not an offset: offsets start at 1", seen.offset),
        ));
    }
    let id = Uuid::parse_str(&seen.event_id).map_err(|_| {
        ApiError::invalid(
            "last_seen.event_id",
            format!(
                "{:?} is not a UUID (the id of the event at last_seen.offset)",
                seen.event_id
            ),
        )
    })?;
    Ok(Some(Seen {
        offset: seen.offset,
        id,
    }))
}

/// A start position; unset means earliest.
fn start(position: Option<pb::StartPosition>) -> Result<Start, ApiError> {
    use pb::start_position::Position;
    Ok(match position.and_then(|p| p.position) {
        None | Some(Position::Earliest(_)) => Start::Earliest,
        Some(Position::Latest(_)) => Start::Latest,
        Some(Position::Offset(offset)) if offset < 1 => {
            return Err(ApiError::invalid(
                "start.offset",
                format!("{offset} is not an offset: offsets start at 1"),
            ));
        }
        Some(Position::Offset(offset)) => Start::Offset { offset },
        Some(Position::Time(t)) => Start::Time {
            at: timestamp("start.time", &t)?,
        },
    })
}

/// Validates a Subscribe request.
pub fn subscribe(req: pb::SubscribeRequest) -> Result<SubscribeParams, ApiError> {
    topic("topic", &req.topic)?;
    types("types", &req.types)?;
    let max_in_flight = match req.max_in_flight as usize {
        0 => DEFAULT_MAX_IN_FLIGHT,
        n if n > MAX_IN_FLIGHT => {
            return Err(ApiError::invalid(
                "max_in_flight",
                format!("{n} is above the maximum of {MAX_IN_FLIGHT}"),
            ));
        }
        n => n,
    };
    let config = super::work_queue::subscribe_config(&req.topic, req.config.as_ref())?;
    let consumer = consumer(&req.consumer)?;
    if config.is_some() && consumer.is_none() {
        return Err(ApiError::invalid(
            "config",
            "applies to durable consumers only: give a consumer name",
        ));
    }
    Ok(SubscribeParams {
        consumer,
        start: start(req.start)?,
        topic: req.topic,
        types: req.types,
        max_in_flight,
        config,
    })
}

/// What an Ack settles: everything up to an offset, or individual records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acked {
    /// Cumulative: everything up to this offset (exclusive consumers).
    UpTo(i64),
    /// These records (shared consumers).
    Records(Vec<i64>),
}

/// Validates an Ack request: the consumer (an empty one is left to the engine, which
/// answers FAILED_PRECONDITION: ephemeral subscriptions keep no offset) and what it
/// settles: `offset` or `offsets`, not both.
pub fn ack(req: &pb::AckRequest) -> Result<(Option<String>, Acked), ApiError> {
    topic("topic", &req.topic)?;
    if req.offset < 0 {
        return Err(ApiError::invalid(
            "offset",
            format!("{} is negative", req.offset),
        ));
    }
    let acked = match (req.offset, req.offsets.is_empty()) {
        (offset, true) => Acked::UpTo(offset),
        (0, false) => Acked::Records(super::work_queue::offsets("offsets", &req.offsets)?),
        (_, false) => {
            return Err(ApiError::invalid(
                "offsets",
                "give either offset (cumulative) or offsets (individual records), not both",
            ));
        }
    };
    Ok((consumer(&req.consumer)?, acked))
}

/// Validates a Seek request; `start` is required.
pub fn seek(req: pb::SeekRequest) -> Result<(String, String, Start), ApiError> {
    topic("topic", &req.topic)?;
    let consumer = required_consumer(&req.consumer)?;
    if req.start.as_ref().is_none_or(|s| s.position.is_none()) {
        return Err(ApiError::invalid(
            "start",
            "is required (earliest, latest, offset or time)",
        ));
    }
    Ok((req.topic, consumer, start(req.start)?))
}

/// Validates a DeleteConsumer request.
pub fn delete_consumer(req: pb::DeleteConsumerRequest) -> Result<(String, String), ApiError> {
    topic("topic", &req.topic)?;
    Ok((req.topic.clone(), required_consumer(&req.consumer)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(
        consumer: &str,
        max_in_flight: u32,
        start: Option<pb::start_position::Position>,
    ) -> pb::SubscribeRequest {
        pb::SubscribeRequest {
            topic: "t".into(),
            consumer: consumer.into(),
            start: start.map(|p| pb::StartPosition { position: Some(p) }),
            types: vec![],
            max_in_flight,
            config: None,
            batch_records: 0,
            last_seen: None,
        }
    }

    fn field(err: ApiError) -> String {
        match err {
            ApiError::Invalid { field, .. } => field,
            other => panic!("expected an invalid field, got {other}"),
        }
    }

    #[test]
    fn defaults_are_earliest_ephemeral_and_1000_in_flight() {
        let p = subscribe(sub("", 0, None)).unwrap();
        assert_eq!(
            (p.consumer, p.start, p.max_in_flight),
            (None, Start::Earliest, 1000)
        );
    }

    #[test]
    fn bad_fields_are_named() {
        use pb::start_position::Position;
        assert_eq!(
            field(subscribe(sub("a b", 0, None)).unwrap_err()),
            "consumer"
        );
        assert_eq!(
            field(subscribe(sub("c", 0, Some(Position::Offset(0)))).unwrap_err()),
            "start.offset"
        );
        assert_eq!(
            field(subscribe(sub("c", 200_000, None)).unwrap_err()),
            "max_in_flight"
        );
        let bad_time = prost_types::Timestamp {
            seconds: 0,
            nanos: -5,
        };
        assert_eq!(
            field(subscribe(sub("c", 0, Some(Position::Time(bad_time)))).unwrap_err()),
            "start.time"
        );
    }

    #[test]
    fn batch_records_is_at_most_ten_thousand() {
        assert_eq!(batch_records(0).unwrap(), 0);
        assert_eq!(batch_records(10_000).unwrap(), 10_000);
        assert_eq!(field(batch_records(10_001).unwrap_err()), "batch_records");
    }

    #[test]
    fn seek_needs_a_consumer_and_a_start() {
        let req = |consumer: &str, start| pb::SeekRequest {
            topic: "t".into(),
            consumer: consumer.into(),
            start,
        };
        let earliest = Some(pb::StartPosition {
            position: Some(pb::start_position::Position::Earliest(Default::default())),
        });
        assert_eq!(field(seek(req("", earliest)).unwrap_err()), "consumer");
        assert_eq!(field(seek(req("c", None)).unwrap_err()), "start");
        assert!(seek(req("c", earliest)).is_ok());
    }
}
