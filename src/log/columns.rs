//! A batch of events as one array per column, inserted with a single `UNNEST`
//! statement: one round trip however many events the batch holds.

use chrono::{DateTime, Utc};
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use super::{Event, LogError, Payload};

/// Inserts the new rows, moves the head and notifies, in one round trip: the
/// data-modifying CTEs run whether or not the final SELECT reads them.
const INSERT_EVENTS: &str = r#"
WITH inserted AS (
    INSERT INTO events (topic, "offset", id, type, source, subject, time, correlation_id,
                        causation_id, schema_version, attributes, content_type,
                        data_json, data_text, data_bytes, data_type, appended_at)
    SELECT $1, $2 + u.ord, u.id, u.type, u.source, u.subject, COALESCE(u.time, $3),
           u.correlation_id, u.causation_id, u.schema_version, u.attributes,
           u.content_type, u.data_json::jsonb, u.data_text, u.data_bytes, u.data_type, $3
    FROM UNNEST($4::uuid[], $5::text[], $6::text[], $7::text[], $8::timestamptz[],
                $9::text[], $10::text[], $11::int4[], $12::jsonb[], $13::text[],
                $14::text[], $15::text[], $16::bytea[], $17::text[])
         WITH ORDINALITY AS u(id, type, source, subject, time, correlation_id, causation_id,
                              schema_version, attributes, content_type, data_json,
                              data_text, data_bytes, data_type, ord)
    RETURNING 1
), moved AS (
    UPDATE topics SET head = $2 + $18 WHERE name = $1
)
SELECT pg_notify('pulsebus_head', $1 || ':' || ($2 + $18)::text), (SELECT count(*) FROM inserted)
"#;

/// The batch as one array per column, for `UNNEST`.
#[derive(Default)]
pub struct Columns {
    id: Vec<Uuid>,
    event_type: Vec<String>,
    source: Vec<String>,
    subject: Vec<String>,
    time: Vec<Option<DateTime<Utc>>>,
    correlation_id: Vec<String>,
    causation_id: Vec<String>,
    schema_version: Vec<i32>,
    attributes: Vec<serde_json::Value>,
    content_type: Vec<String>,
    data_json: Vec<Option<String>>,
    data_text: Vec<Option<String>>,
    data_bytes: Vec<Option<Vec<u8>>>,
    data_type: Vec<Option<String>>,
}

impl Columns {
    /// The events' columns.
    pub fn from_events(events: &[&Event]) -> Self {
        let mut columns = Self::default();
        events.iter().for_each(|e| columns.push(e));
        columns
    }

    fn push(&mut self, e: &Event) {
        self.id.push(e.id);
        self.event_type.push(e.event_type.clone());
        self.source.push(e.source.clone());
        self.subject.push(e.subject.clone());
        self.time.push(e.time);
        self.correlation_id.push(e.correlation_id.clone());
        self.causation_id.push(e.causation_id.clone());
        self.schema_version.push(e.schema_version);
        self.attributes
            .push(serde_json::Value::Object(e.attributes.clone()));
        self.content_type.push(e.content_type.clone());
        let (json, text, bytes, type_url) = match &e.payload {
            Payload::None => (None, None, None, None),
            Payload::Binary(b) => (None, None, Some(b.clone()), None),
            Payload::Text(t) => (None, Some(t.clone()), None, None),
            Payload::Json(j) => (Some(j.clone()), None, None, None),
            Payload::Proto { type_url, value } => {
                (None, None, Some(value.clone()), Some(type_url.clone()))
            }
        };
        self.data_json.push(json);
        self.data_text.push(text);
        self.data_bytes.push(bytes);
        self.data_type.push(type_url);
    }
    /// Inserts the rows with offsets after `head`, moves the head and notifies, in one
    /// statement of the caller's transaction.
    pub async fn insert(
        self,
        tx: &mut Transaction<'static, Postgres>,
        topic: &str,
        head: i64,
        now: DateTime<Utc>,
    ) -> Result<(), LogError> {
        let count = self.id.len() as i64;
        let c = self;
        sqlx::query(INSERT_EVENTS)
            .bind(topic)
            .bind(head)
            .bind(now)
            .bind(c.id)
            .bind(c.event_type)
            .bind(c.source)
            .bind(c.subject)
            .bind(c.time)
            .bind(c.correlation_id)
            .bind(c.causation_id)
            .bind(c.schema_version)
            .bind(c.attributes)
            .bind(c.content_type)
            .bind(c.data_json)
            .bind(c.data_text)
            .bind(c.data_bytes)
            .bind(c.data_type)
            .bind(count)
            .execute(&mut **tx)
            .await
            .map_err(|e| LogError::from_sqlx("inserting events", e))?;
        Ok(())
    }
}
