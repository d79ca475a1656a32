//! A batch of events as one array per column, inserted with a single `UNNEST`
//! statement: one round trip however many events the batch holds. Appends of several
//! topics at once are in `many_topics.rs`.

use chrono::{DateTime, Utc};
use sqlx::postgres::PgArguments;
use sqlx::query::QueryAs;
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use super::{Event, LogError, Payload};

/// The columns an append writes, in the order of `row_values!`.
macro_rules! columns {
    () => {
        r#"topic, "offset", id, type, source, subject, time, correlation_id, causation_id,
           schema_version, attributes, content_type, data_json, data_text, data_bytes,
           data_type, appended_at"#
    };
}

/// One row's values for `columns!`, from the batch row `u` of `batch!`: offset
/// `$head + u.ord`, and `$now` as the append time (and the event time when unset).
macro_rules! row_values {
    ($head:literal, $now:literal) => {
        concat!(
            "$1, ",
            $head,
            " + u.ord, u.id, u.type, u.source, u.subject, COALESCE(u.time, ",
            $now,
            r#"),
           u.correlation_id, u.causation_id, u.schema_version, u.attributes,
           u.content_type, u.data_json::json, u.data_text, u.data_bytes, u.data_type, "#,
            $now
        )
    };
}

/// The batch as rows `u`: the column arrays `$2` to `$15` (see `Columns::bind`) side
/// by side, numbered from 1 by `ord`.
macro_rules! batch {
    () => {
        r#"UNNEST($2::uuid[], $3::text[], $4::text[], $5::text[], $6::timestamptz[],
                $7::text[], $8::text[], $9::int4[], $10::jsonb[], $11::text[],
                $12::text[], $13::text[], $14::bytea[], $15::text[])
         WITH ORDINALITY AS u(id, type, source, subject, time, correlation_id, causation_id,
                              schema_version, attributes, content_type, data_json,
                              data_text, data_bytes, data_type, ord)"#
    };
}

/// Inserts the new rows, moves the head and notifies, in one round trip: the
/// data-modifying CTEs run whether or not the final SELECT reads them.
const INSERT_EVENTS: &str = concat!(
    r#"
WITH inserted AS (
    INSERT INTO events ("#,
    columns!(),
    r#")
    SELECT "#,
    row_values!("$16", "$17"),
    r#"
    FROM "#,
    batch!(),
    r#"
    RETURNING 1
), moved AS (
    UPDATE topics SET head = $16 + $18 WHERE name = $1
)
SELECT (SELECT count(*) FROM inserted) AS inserted,
       "#,
    notify_head!("$1", "$16 + $18"),
    r#" IS NULL AS notify
"#
);

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
            Payload::Proto {
                type_url,
                value,
                json,
            } => (
                json.clone(),
                None,
                Some(value.clone()),
                Some(type_url.clone()),
            ),
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
        self.bind(sqlx::query_as::<_, (i64, bool)>(INSERT_EVENTS), topic)
            .bind(head)
            .bind(now)
            .bind(count)
            .fetch_one(&mut **tx)
            .await
            .map_err(|e| LogError::from_sqlx("inserting events", e))?;
        Ok(())
    }

    /// Binds `first` (the topic, or each row's topic) as `$1` and the column arrays as
    /// `$2` to `$15`, the layout every insert statement shares.
    fn bind<'q, O, T>(
        self,
        query: QueryAs<'q, Postgres, O, PgArguments>,
        first: T,
    ) -> QueryAs<'q, Postgres, O, PgArguments>
    where
        T: 'q + sqlx::Encode<'q, Postgres> + sqlx::Type<Postgres>,
    {
        query
            .bind(first)
            .bind(self.id)
            .bind(self.event_type)
            .bind(self.source)
            .bind(self.subject)
            .bind(self.time)
            .bind(self.correlation_id)
            .bind(self.causation_id)
            .bind(self.schema_version)
            .bind(self.attributes)
            .bind(self.content_type)
            .bind(self.data_json)
            .bind(self.data_text)
            .bind(self.data_bytes)
            .bind(self.data_type)
    }
}

/// The whole append as one autocommit statement: move the topic's head by the batch
/// size (the UPDATE locks the row; after waiting for a concurrent append PostgreSQL
/// re-reads it, so the head is current), insert the events after the old head, and
/// notify. The append time is taken after the row is locked, so it never goes
/// backwards within a topic. Returns no row (writes nothing) when the topic does not
/// exist or limits its events to fewer bytes than the largest of these (`$17`). There is no id lookup here: a retried id makes the insert hit the unique
/// constraint, the statement fails whole, and the caller falls back to the
/// step-by-step transaction that reports duplicates. (A lookup here also ran as a
/// sequential scan for the first minute of a fresh database: the cached generic plan
/// was made while `events` was empty.)
const APPEND_IN_ONE_STATEMENT: &str = concat!(
    r#"
WITH moved AS (
    UPDATE topics SET head = head + $16
    WHERE name = $1 AND (max_event_bytes IS NULL OR max_event_bytes >= $17)
    RETURNING head - $16 AS head, clock_timestamp() AS now
), inserted AS (
    INSERT INTO events ("#,
    columns!(),
    r#")
    SELECT "#,
    row_values!("m.head", "m.now"),
    r#"
    FROM moved m,
         "#,
    batch!(),
    r#"
)
SELECT m.head, m.now,
       "#,
    notify_head!("$1", "m.head + $16"),
    r#" IS NULL AS notify
FROM moved m
"#
);

impl Columns {
    /// Appends these events (ids unique among them, none stored yet) in one autocommit
    /// statement. Returns the head before the append and the append time, or `None`
    /// when the topic does not exist yet or its `max_event_bytes` is below
    /// `largest_bytes`; a stored id fails with a unique violation.
    pub async fn append_in_one_statement(
        self,
        pool: &sqlx::PgPool,
        topic: &str,
        largest_bytes: usize,
    ) -> Result<Option<(i64, DateTime<Utc>)>, sqlx::Error> {
        let count = self.id.len() as i64;
        let row: Option<(i64, DateTime<Utc>, bool)> = self
            .bind(sqlx::query_as(APPEND_IN_ONE_STATEMENT), topic)
            .bind(count)
            .bind(i64::try_from(largest_bytes).unwrap_or(i64::MAX))
            .fetch_optional(pool)
            .await?;
        Ok(row.map(|(head, now, _)| (head, now)))
    }
}

mod many_topics;

pub use many_topics::{Placed, Shares};
