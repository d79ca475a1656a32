//! Records for the tail's unit tests.

use chrono::Utc;
use uuid::Uuid;

use crate::log::{Event, Payload, Record};

/// A record of `topic` at `offset` with a 1,000-byte payload.
pub fn record(topic: &str, offset: i64) -> Record {
    Record {
        topic: topic.into(),
        offset,
        appended_at: Utc::now(),
        event: Event {
            id: Uuid::now_v7(),
            event_type: "t".into(),
            source: String::new(),
            subject: String::new(),
            time: Some(Utc::now()),
            correlation_id: String::new(),
            causation_id: String::new(),
            schema_version: 1,
            attributes: serde_json::Map::new(),
            content_type: String::new(),
            payload: Payload::Binary(vec![0; 1000]),
        },
    }
}
