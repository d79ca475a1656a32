//! The log's types on the wire.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::log::{
    Appended, ConsumerInfo, ConsumerSettings, DeliveryMode, Event, Payload, Record, TopicInfo,
};
use crate::proto::pulsebus::v1 as pb;
use crate::subscribe::Delivery;

/// A chrono time as a protobuf timestamp.
pub fn timestamp(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

impl From<Appended> for pb::PublishResult {
    fn from(a: Appended) -> Self {
        Self {
            id: a.id.to_string(),
            offset: a.offset,
            duplicate: a.duplicate,
            appended_at: Some(timestamp(a.appended_at)),
        }
    }
}

impl From<Record> for pb::Record {
    fn from(r: Record) -> Self {
        Self {
            topic: r.topic,
            offset: r.offset,
            appended_at: Some(timestamp(r.appended_at)),
            event: Some(r.event.into()),
            delivery_attempt: 0,
        }
    }
}

impl From<Event> for pb::Event {
    fn from(e: Event) -> Self {
        let attributes = e
            .attributes
            .into_iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => (k, s),
                other => (k, other.to_string()),
            })
            .collect();
        Self {
            id: e.id.to_string(),
            r#type: e.event_type,
            source: e.source,
            subject: e.subject,
            time: e.time.map(timestamp),
            correlation_id: e.correlation_id,
            causation_id: e.causation_id,
            schema_version: e.schema_version as u32,
            attributes,
            content_type: e.content_type,
            data: data(e.payload),
        }
    }
}

fn data(payload: Payload) -> Option<pb::event::Data> {
    use pb::event::Data;
    match payload {
        Payload::None => None,
        Payload::Binary(b) => Some(Data::BinaryData(b)),
        Payload::Text(t) | Payload::Json(t) => Some(Data::TextData(t)),
        Payload::Proto {
            type_url, value, ..
        } => Some(Data::ProtoData(prost_types::Any { type_url, value })),
    }
}

impl From<TopicInfo> for pb::TopicInfo {
    fn from(t: TopicInfo) -> Self {
        Self {
            name: t.name,
            head_offset: t.head,
            event_count: t.event_count,
            created_at: Some(timestamp(t.created_at)),
            first_offset: 1,
            config: None,
        }
    }
}

/// A std duration as a protobuf duration.
pub fn duration(d: Duration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: d.subsec_nanos() as i32,
    }
}

/// A consumer on the wire (the topic is not part of the log's summary).
pub fn consumer_info(topic: &str, c: ConsumerInfo) -> pb::ConsumerInfo {
    pb::ConsumerInfo {
        topic: topic.to_owned(),
        name: c.name,
        committed_offset: c.committed,
        lag: c.lag,
        attached: c.attached,
        updated_at: Some(timestamp(c.updated_at)),
        config: Some(consumer_config(&c.settings)),
        in_flight: c.in_flight,
        oldest_unacked_age: c.oldest_unacked.map(duration),
        redelivered: c.redelivered,
        dead_lettered: c.dead_lettered,
        waiting: c.waiting,
    }
}

/// A consumer's settings on the wire.
pub fn consumer_config(s: &ConsumerSettings) -> pb::ConsumerConfig {
    let mode = match s.mode {
        DeliveryMode::Exclusive => pb::DeliveryMode::Exclusive,
        DeliveryMode::Shared => pb::DeliveryMode::Shared,
        DeliveryMode::KeyShared => pb::DeliveryMode::KeyShared,
    };
    pb::ConsumerConfig {
        mode: mode as i32,
        ack_deadline: Some(duration(s.ack_deadline)),
        max_deliveries: s.max_deliveries,
        min_backoff: Some(duration(s.min_backoff)),
        max_backoff: Some(duration(s.max_backoff)),
        dead_letter_topic: s.dead_letter_topic.clone(),
    }
}

impl From<Delivery> for pb::SubscribeResponse {
    fn from(d: Delivery) -> Self {
        use pb::subscribe_response::Message;
        let message = match d {
            Delivery::Record { record, attempt } => {
                let mut wire = pb::Record::from(record.into_record());
                wire.delivery_attempt = attempt;
                Message::Record(wire)
            }
            Delivery::Heartbeat {
                head,
                committed,
                in_flight,
                at_max_in_flight,
                window_full,
            } => Message::Heartbeat(pb::Heartbeat {
                head_offset: head,
                committed_offset: committed,
                in_flight: u32::try_from(in_flight).unwrap_or(u32::MAX),
                at_max_in_flight,
                window_full,
            }),
            Delivery::Attached { committed, epoch } => Message::Attached(pb::Attached {
                committed_offset: committed,
                seek_epoch: epoch,
            }),
            Delivery::Standby => Message::Standby(pb::Standby {}),
            Delivery::CaughtUp { head } => Message::CaughtUp(pb::CaughtUp { head_offset: head }),
            Delivery::Repositioned { committed, epoch } => {
                Message::Repositioned(pb::Repositioned {
                    committed_offset: committed,
                    seek_epoch: epoch,
                })
            }
        };
        Self {
            message: Some(message),
        }
    }
}
