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

/// The largest event of a Publish request, by its encoded size on the wire: checked
/// against the topic's `max_event_bytes` while the topic row is locked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Largest {
    /// Its index in the request.
    pub index: usize,
    /// Its encoded size in bytes.
    pub bytes: usize,
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
    /// JSON text, stored verbatim as PostgreSQL `json` (byte for byte what was sent) so
    /// auditors can query into it with SQL.
    Json(String),
    /// An encoded protobuf message and its type URL (a `google.protobuf.Any`).
    Proto {
        /// e.g. `type.googleapis.com/edupulse.events.v1.LessonPublished`.
        type_url: String,
        /// The encoded message: the payload.
        value: Vec<u8>,
        /// A JSON rendering of the decoded message, stored next to the bytes for SQL
        /// only (`data_json`), when the server knows the type. Set on append; records
        /// never carry it (Read and Subscribe return the bytes).
        json: Option<String>,
    },
}

impl Payload {
    /// The payload as records carry it: without a protobuf message's JSON rendering.
    pub fn without_rendering(&self) -> Self {
        match self {
            Self::Proto {
                type_url, value, ..
            } => Self::Proto {
                type_url: type_url.clone(),
                value: value.clone(),
                json: None,
            },
            other => other.clone(),
        }
    }
}

impl Event {
    /// The event as its record keeps it: `time` set (to `now` when it was unset) and
    /// the payload without its JSON rendering.
    pub fn stored(&self, now: DateTime<Utc>) -> Self {
        Self {
            id: self.id,
            event_type: self.event_type.clone(),
            source: self.source.clone(),
            subject: self.subject.clone(),
            time: Some(self.time.unwrap_or(now)),
            correlation_id: self.correlation_id.clone(),
            causation_id: self.causation_id.clone(),
            schema_version: self.schema_version,
            attributes: self.attributes.clone(),
            content_type: self.content_type.clone(),
            payload: self.payload.without_rendering(),
        }
    }
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
    /// The oldest offset still stored (`head + 1` when retention removed every event).
    pub first_offset: i64,
    /// How many events the topic holds: `head - first_offset + 1`.
    pub event_count: i64,
    /// When it was created (by CreateTopic or the first publish).
    pub created_at: DateTime<Utc>,
    /// Its retention and limits.
    pub config: super::TopicConfig,
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
            Payload::Proto {
                type_url,
                value,
                json,
            } => type_url.len() + value.len() + json.as_ref().map_or(0, String::len),
        };
        let attributes: usize = e
            .attributes
            .iter()
            .map(|(k, v)| k.len() + v.as_str().map_or(8, str::len))
            .sum();
        128 + strings.iter().map(|s| s.len()).sum::<usize>() + payload + attributes
    }
}
