use chrono::{DateTime, Utc};
use uuid::Uuid;

/// One event as the log stores it: the CloudEvents envelope plus its payload.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Unique across all topics; a retried publish with the same id is not stored twice.
    pub id: Uuid,
    /// What happened, e.g. `lesson.published`.
    pub event_type: String,
    /// The producing service.
    pub source: String,
    /// The aggregate the event is about.
    pub subject: String,
    /// When it happened; `None` on append means "use the append time".
    pub time: Option<DateTime<Utc>>,
    /// The workflow the event belongs to.
    pub correlation_id: String,
    /// The event or command that caused this one.
    pub causation_id: String,
    /// Payload schema version (at least 1).
    pub schema_version: i32,
    /// Free-form metadata, stored as a JSONB object.
    pub attributes: serde_json::Map<String, serde_json::Value>,
    /// Media type of the payload.
    pub content_type: String,
    /// The payload.
    pub payload: Payload,
}

/// An event payload, stored in the column that keeps it queryable.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    /// No payload.
    None,
    /// Opaque bytes.
    Binary(Vec<u8>),
    /// Text that is not JSON.
    Text(String),
    /// JSON text, stored as JSONB so auditors can query into it with SQL (PostgreSQL
    /// normalises it: the same value, possibly with other whitespace and key order).
    Json(String),
    /// An encoded protobuf message and its type URL (a `google.protobuf.Any`).
    Proto {
        /// e.g. `type.googleapis.com/edupulse.events.v1.LessonPublished`.
        type_url: String,
        /// The encoded message.
        value: Vec<u8>,
    },
}

/// The outcome of appending one event.
#[derive(Debug, Clone, PartialEq)]
pub struct Appended {
    /// The event id (assigned or given).
    pub id: Uuid,
    /// Its offset in the topic.
    pub offset: i64,
    /// True when the id was already in the topic: `offset` is the original one.
    pub duplicate: bool,
    /// When the (original) event was committed.
    pub appended_at: DateTime<Utc>,
}

/// A stored event with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The topic.
    pub topic: String,
    /// Its offset in the topic.
    pub offset: i64,
    /// When it was committed.
    pub appended_at: DateTime<Utc>,
    /// The event, with `time` always set.
    pub event: Event,
}

/// A topic's summary.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicInfo {
    /// The topic name.
    pub name: String,
    /// The last offset appended (0 for none).
    pub head: i64,
    /// How many events the topic holds: equal to `head` while the log is append-only.
    pub event_count: i64,
    /// When the first publish created it.
    pub created_at: DateTime<Utc>,
}

impl Record {
    /// Roughly what the record occupies in memory and on the wire, in bytes.
    pub fn approximate_size(&self) -> usize {
        let e = &self.event;
        let strings = [
            &self.topic,
            &e.event_type,
            &e.source,
            &e.subject,
            &e.correlation_id,
            &e.causation_id,
            &e.content_type,
        ];
        let payload = match &e.payload {
            Payload::None => 0,
            Payload::Binary(b) => b.len(),
            Payload::Text(t) | Payload::Json(t) => t.len(),
            Payload::Proto { type_url, value } => type_url.len() + value.len(),
        };
        let attributes: usize = e
            .attributes
            .iter()
            .map(|(k, v)| k.len() + v.as_str().map_or(8, str::len))
            .sum();
        128 + strings.iter().map(|s| s.len()).sum::<usize>() + payload + attributes
    }
}
