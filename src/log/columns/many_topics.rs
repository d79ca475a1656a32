//! Appends of several topics at once: in one autocommit statement, or inserted in
//! one statement of a transaction that locked the topic rows.

use chrono::{DateTime, Utc};
use sqlx::{Postgres, Transaction};

use super::Columns;
use crate::log::LogError;

/// Inserts rows of several topics, each at the offset and with the append time
/// planned for it (`$1`, `$16`, `$17`), and moves those topics' heads (`$18`, `$19`)
/// and notifies, in one round trip of the caller's transaction (which holds the topic
/// rows locked).
const INSERT_PLACED: &str = concat!(
    r#"
WITH inserted AS (
    INSERT INTO events ("#,
    columns!(),
    r#")
    SELECT u.topic, u."offset", u.id, u.type, u.source, u.subject, COALESCE(u.time, u.now),
           u.correlation_id, u.causation_id, u.schema_version, u.attributes,
           u.content_type, u.data_json::json, u.data_text, u.data_bytes, u.data_type, u.now
    FROM UNNEST($2::uuid[], $3::text[], $4::text[], $5::text[], $6::timestamptz[],
                $7::text[], $8::text[], $9::int4[], $10::jsonb[], $11::text[],
                $12::text[], $13::text[], $14::bytea[], $15::text[],
                $1::text[], $16::int8[], $17::timestamptz[])
         AS u(id, type, source, subject, time, correlation_id, causation_id,
              schema_version, attributes, content_type, data_json, data_text, data_bytes,
              data_type, topic, "offset", now)
    RETURNING 1
), moved AS (
    UPDATE topics t SET head = h.head
    FROM UNNEST($18::text[], $19::int8[]) AS h(name, head) WHERE t.name = h.name
)
SELECT (SELECT count(*) FROM inserted) AS inserted,
       (SELECT count(*) FROM UNNEST($18::text[], $19::int8[]) AS h(name, head)
        WHERE "#,
    notify_head!("h.name", "h.head"),
    r#" IS NULL) AS notified
"#
);

/// Where each row of a several-topic insert goes, and the heads it leaves.
#[derive(Default)]
pub struct Placed {
    topic: Vec<String>,
    offset: Vec<i64>,
    now: Vec<DateTime<Utc>>,
    head_topic: Vec<String>,
    head: Vec<i64>,
}

impl Placed {
    /// The next row goes to `topic` at `offset`, appended at `now`.
    pub fn row(&mut self, topic: &str, offset: i64, now: DateTime<Utc>) {
        self.topic.push(topic.to_owned());
        self.offset.push(offset);
        self.now.push(now);
    }

    /// `topic`'s head after the insert.
    pub fn head(&mut self, topic: &str, head: i64) {
        self.head_topic.push(topic.to_owned());
        self.head.push(head);
    }
}

impl Columns {
    /// Inserts rows of several topics as `placed` says, moves their heads and notifies,
    /// in one statement of the caller's transaction.
    pub async fn insert_placed(
        self,
        tx: &mut Transaction<'static, Postgres>,
        placed: Placed,
    ) -> Result<(), LogError> {
        self.bind(sqlx::query_as::<_, (i64, i64)>(INSERT_PLACED), placed.topic)
            .bind(placed.offset)
            .bind(placed.now)
            .bind(placed.head_topic)
            .bind(placed.head)
            .fetch_one(&mut **tx)
            .await
            .map_err(|e| LogError::from_sqlx("inserting events", e))?;
        Ok(())
    }
}

/// Several topics' appends as one autocommit statement: lock the topic rows in name
/// order (`$17`; a locking clause applies after ORDER BY), move each head by its count
/// (`$18`) unless the topic limits its events to fewer bytes than its largest (`$19`),
/// insert each row (`$1` its topic, `$16` its place within its topic, from 1) after its
/// topic's old head, and notify. Returns one row per topic written: topics that do not
/// exist or refuse their largest event are left out (and nothing of theirs is
/// written), for the caller to write one by one. A stored id fails the whole
/// statement with a unique violation, as in `APPEND_IN_ONE_STATEMENT`.
const APPEND_TOPICS_IN_ONE_STATEMENT: &str = concat!(
    r#"
WITH locked AS (
    SELECT name FROM topics WHERE name = ANY($17::text[]) ORDER BY name FOR NO KEY UPDATE
), moved AS (
    UPDATE topics t SET head = t.head + c.n
    FROM locked l, UNNEST($17::text[], $18::int8[], $19::int8[]) AS c(name, n, largest)
    WHERE t.name = l.name AND c.name = l.name
      AND (t.max_event_bytes IS NULL OR t.max_event_bytes >= c.largest)
    RETURNING t.name, t.head - c.n AS base, t.head, clock_timestamp() AS now
), inserted AS (
    INSERT INTO events ("#,
    columns!(),
    r#")
    SELECT u.topic, m.base + u.place, u.id, u.type, u.source, u.subject, COALESCE(u.time, m.now),
           u.correlation_id, u.causation_id, u.schema_version, u.attributes,
           u.content_type, u.data_json::json, u.data_text, u.data_bytes, u.data_type, m.now
    FROM moved m
    JOIN UNNEST($2::uuid[], $3::text[], $4::text[], $5::text[], $6::timestamptz[],
                $7::text[], $8::text[], $9::int4[], $10::jsonb[], $11::text[],
                $12::text[], $13::text[], $14::bytea[], $15::text[],
                $1::text[], $16::int8[])
         AS u(id, type, source, subject, time, correlation_id, causation_id,
              schema_version, attributes, content_type, data_json, data_text, data_bytes,
              data_type, topic, place)
      ON u.topic = m.name
)
SELECT m.name, m.base, m.now, "#,
    notify_head!("m.name", "m.head"),
    r#" IS NULL AS notify
FROM moved m
"#
);

/// Which topic each row of a several-topic append goes to, its place in that topic's
/// share, and each topic's count and largest event.
#[derive(Default)]
pub struct Shares {
    row_topic: Vec<String>,
    row_place: Vec<i64>,
    topic: Vec<String>,
    count: Vec<i64>,
    largest: Vec<i64>,
}

impl Shares {
    /// Adds `topic`'s share: `count` rows (the next ones), the largest `largest` bytes.
    /// Topics must come in name order.
    pub fn topic(&mut self, topic: &str, count: usize, largest: usize) {
        for place in 1..=count as i64 {
            self.row_topic.push(topic.to_owned());
            self.row_place.push(place);
        }
        self.topic.push(topic.to_owned());
        self.count.push(count as i64);
        self.largest
            .push(i64::try_from(largest).unwrap_or(i64::MAX));
    }
}

impl Columns {
    /// Appends several topics' events (ids unique among them, none stored yet) in one
    /// autocommit statement; returns (topic, head before, append time) of each topic
    /// written.
    pub async fn append_topics_in_one_statement(
        self,
        pool: &sqlx::PgPool,
        shares: Shares,
    ) -> Result<Vec<(String, i64, DateTime<Utc>)>, sqlx::Error> {
        let rows: Vec<(String, i64, DateTime<Utc>, bool)> = self
            .bind(
                sqlx::query_as(APPEND_TOPICS_IN_ONE_STATEMENT),
                shares.row_topic,
            )
            .bind(shares.row_place)
            .bind(shares.topic)
            .bind(shares.count)
            .bind(shares.largest)
            .fetch_all(pool)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(t, head, now, _)| (t, head, now))
            .collect())
    }
}
