//! Appending a batch: one transaction that locks the topic row, skips ids already
//! stored, inserts the rest with consecutive offsets, and rings the NOTIFY doorbell.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, Postgres, Transaction};
use uuid::Uuid;

use super::error::is_id_conflict;
use super::{Appended, ENSURE_TOPIC, Event, EventLog, LogError, Payload};

/// How often an append is retried when a concurrent append to another topic stored one
/// of its ids first (the retry then reports that precisely).
const ID_CONFLICT_RETRIES: usize = 2;

const LOCK_TOPIC: &str = "SELECT head, clock_timestamp() FROM topics WHERE name = $1 FOR UPDATE";
const FIND_IDS: &str =
    r#"SELECT id, topic, "offset", appended_at FROM events WHERE id = ANY($1::uuid[])"#;

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

impl EventLog {
    /// Appends `events` to `topic` atomically (creating the topic on first use) and
    /// returns one outcome per event, in order, after the transaction committed.
    pub async fn append(&self, topic: &str, events: &[Event]) -> Result<Vec<Appended>, LogError> {
        let mut attempt = 0;
        loop {
            match self.try_append(topic, events).await {
                Err(LogError::Database { source, .. })
                    if is_id_conflict(&source) && attempt < ID_CONFLICT_RETRIES =>
                {
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn try_append(&self, topic: &str, events: &[Event]) -> Result<Vec<Appended>, LogError> {
        let err = |ctx| move |e| LogError::from_sqlx(ctx, e);
        let mut tx = self.pool.begin().await.map_err(err("starting an append"))?;
        let (head, now) = lock_topic(&mut tx, topic).await?;
        let stored = find_ids(&mut tx, events).await?;
        let (results, fresh) = plan(topic, events, &stored, head, now)?;
        if !fresh.is_empty() {
            insert(&mut tx, topic, head, now, &fresh).await?;
        }
        tx.commit().await.map_err(err("committing an append"))?;
        self.heads.advance(topic, head + fresh.len() as i64);
        Ok(results)
    }
}

/// Locks the topic row (creating it if needed) and returns its head and the lock time.
async fn lock_topic(
    tx: &mut Transaction<'static, Postgres>,
    topic: &str,
) -> Result<(i64, DateTime<Utc>), LogError> {
    let err = |e| LogError::from_sqlx("locking the topic", e);
    let lock = || sqlx::query_as::<_, (i64, DateTime<Utc>)>(LOCK_TOPIC).bind(topic);
    if let Some(row) = lock().fetch_optional(&mut **tx).await.map_err(err)? {
        return Ok(row);
    }
    sqlx::query(ENSURE_TOPIC)
        .bind(topic)
        .execute(&mut **tx)
        .await
        .map_err(err)?;
    lock().fetch_one(&mut **tx).await.map_err(err)
}

type StoredIds = HashMap<Uuid, (String, i64, DateTime<Utc>)>;

async fn find_ids(conn: &mut PgConnection, events: &[Event]) -> Result<StoredIds, LogError> {
    let ids: Vec<Uuid> = events.iter().map(|e| e.id).collect();
    let rows: Vec<(Uuid, String, i64, DateTime<Utc>)> = sqlx::query_as(FIND_IDS)
        .bind(&ids)
        .fetch_all(conn)
        .await
        .map_err(|e| LogError::from_sqlx("looking up event ids", e))?;
    Ok(rows
        .into_iter()
        .map(|(id, topic, offset, at)| (id, (topic, offset, at)))
        .collect())
}

/// Decides each event's outcome: stored ids are duplicates (or a conflict when stored
/// in another topic); the rest take consecutive offsets after `head`.
fn plan<'a>(
    topic: &str,
    events: &'a [Event],
    stored: &StoredIds,
    head: i64,
    now: DateTime<Utc>,
) -> Result<(Vec<Appended>, Vec<&'a Event>), LogError> {
    let mut results = Vec::with_capacity(events.len());
    let mut fresh = Vec::with_capacity(events.len());
    for event in events {
        match stored.get(&event.id) {
            Some((other, _, _)) if other != topic => {
                return Err(LogError::IdInOtherTopic {
                    id: event.id,
                    other_topic: other.clone(),
                });
            }
            Some((_, offset, appended_at)) => results.push(Appended {
                id: event.id,
                offset: *offset,
                duplicate: true,
                appended_at: *appended_at,
            }),
            None => {
                fresh.push(event);
                results.push(Appended {
                    id: event.id,
                    offset: head + fresh.len() as i64,
                    duplicate: false,
                    appended_at: now,
                });
            }
        }
    }
    Ok((results, fresh))
}

/// The batch as one array per column, for `UNNEST`.
#[derive(Default)]
struct Columns {
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
}

async fn insert(
    tx: &mut Transaction<'static, Postgres>,
    topic: &str,
    head: i64,
    now: DateTime<Utc>,
    fresh: &[&Event],
) -> Result<(), LogError> {
    let mut c = Columns::default();
    fresh.iter().for_each(|e| c.push(e));
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
        .bind(fresh.len() as i64)
        .execute(&mut **tx)
        .await
        .map_err(|e| LogError::from_sqlx("inserting events", e))?;
    Ok(())
}
