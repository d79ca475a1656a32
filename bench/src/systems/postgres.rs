//! The PostgreSQL baseline: the same rows in the same `events` table (pulsebus's
//! migrations, in a database of its own on the same cluster), written with the best SQL
//! a client can send (one multi-row INSERT ... SELECT FROM UNNEST per call, one
//! statement per transaction) and read back in pages of 1000 by offset. Live readers
//! wait on LISTEN/NOTIFY between pages, like pulsebus's own doorbell.

use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use futures::StreamExt;
use sqlx::postgres::{PgListener, PgPoolOptions};
use sqlx::{PgPool, Row};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use uuid::Uuid;

use super::{AckToken, Acker, Deliveries, Delivery, PublisherOpts, Topic};

/// Rows per read page.
const PAGE: i64 = 1000;

/// Appends with the topic-row lock: the UPDATE takes the lock and hands out the
/// offsets, the INSERT stores the rows, one statement (one round trip, one commit).
const INSERT_LOCKED: &str = r#"
WITH h AS (UPDATE topics SET head = head + $2 WHERE name = $1 RETURNING head - $2 AS base)
INSERT INTO events (topic, "offset", id, type, source, subject, time, correlation_id,
                    causation_id, schema_version, attributes, content_type, data_bytes,
                    appended_at)
SELECT $1, h.base + u.ord, u.id, 'bench.event', 'pulsebus-bench', '', now(), '', '', 1,
       '{}'::jsonb, 'application/octet-stream', u.data, now()
FROM h, UNNEST($3::uuid[], $4::bytea[]) WITH ORDINALITY AS u(id, data, ord)
"#;

/// The same with the lock and a NOTIFY doorbell for live readers.
const INSERT_LOCKED_NOTIFY: &str = r#"
WITH h AS (UPDATE topics SET head = head + $2 WHERE name = $1 RETURNING head - $2 AS base),
ins AS (
  INSERT INTO events (topic, "offset", id, type, source, subject, time, correlation_id,
                      causation_id, schema_version, attributes, content_type, data_bytes,
                      appended_at)
  SELECT $1, h.base + u.ord, u.id, 'bench.event', 'pulsebus-bench', '', now(), '', '', 1,
         '{}'::jsonb, 'application/octet-stream', u.data, now()
  FROM h, UNNEST($3::uuid[], $4::bytea[]) WITH ORDINALITY AS u(id, data, ord)
)
SELECT pg_notify('bench_' || $1, (SELECT base + $2 FROM h)::text)
"#;

/// Without the lock: offsets from a sequence (unique, but neither gapless nor in
/// commit order, so readers by offset could miss rows: publish scenarios only).
const INSERT_UNLOCKED: &str = r#"
INSERT INTO events (topic, "offset", id, type, source, subject, time, correlation_id,
                    causation_id, schema_version, attributes, content_type, data_bytes,
                    appended_at)
SELECT $1, nextval('bench_offsets'), u.id, 'bench.event', 'pulsebus-bench', '', now(), '',
       '', 1, '{}'::jsonb, 'application/octet-stream', u.data, now()
FROM UNNEST($3::uuid[], $4::bytea[]) AS u(id, data)
WHERE $2::bigint IS NOT NULL
"#;

/// A page of a topic, every column (what pulsebus reads to build its records).
const READ_PAGE: &str = r#"
SELECT topic, "offset", id, type, source, subject, time, correlation_id, causation_id,
       schema_version, attributes, content_type, data_json, data_text, data_bytes,
       data_type, appended_at
FROM events WHERE topic = $1 AND "offset" > $2 ORDER BY "offset" LIMIT $3
"#;

async fn pool(url: &str, connections: u32) -> Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(connections)
        .min_connections(connections)
        .test_before_acquire(false)
        .acquire_timeout(Duration::from_secs(30))
        .connect(url)
        .await
        .with_context(|| format!("connect to {url}"))
}

/// Applies pulsebus's migrations to the baseline database (created beforehand).
pub async fn migrate(url: &str) -> Result<()> {
    let pool = pool(url, 1).await?;
    pulsebus::db::MIGRATOR.run(&pool).await?;
    sqlx::query("CREATE SEQUENCE IF NOT EXISTS bench_offsets")
        .execute(&pool)
        .await?;
    pool.close().await;
    Ok(())
}

pub async fn prepare(url: &str, topics: &[Topic]) -> Result<()> {
    let pool = pool(url, 1).await?;
    let names: Vec<String> = topics.iter().map(Topic::flat).collect();
    sqlx::query("INSERT INTO topics (name) SELECT UNNEST($1::text[]) ON CONFLICT DO NOTHING")
        .bind(&names)
        .execute(&pool)
        .await?;
    pool.close().await;
    Ok(())
}

/// A pool of connections (one for a plain publisher) that writes events.
#[derive(Clone)]
pub struct PgPublisher {
    pool: PgPool,
    sql: &'static str,
}

impl PgPublisher {
    pub async fn connect(url: &str, lock: bool, opts: PublisherOpts) -> Result<Self> {
        let sql = match (lock, opts.notify) {
            (true, false) => INSERT_LOCKED,
            (true, true) => INSERT_LOCKED_NOTIFY,
            (false, _) => INSERT_UNLOCKED,
        };
        Ok(Self {
            pool: pool(url, opts.connections.max(1)).await?,
            sql,
        })
    }

    pub async fn publish(&mut self, topic: &Topic, payloads: Vec<Bytes>) -> Result<()> {
        let ids: Vec<Uuid> = payloads.iter().map(|_| Uuid::now_v7()).collect();
        let data: Vec<&[u8]> = payloads.iter().map(|p| p.as_ref()).collect();
        sqlx::query(sqlx::AssertSqlSafe(self.sql))
            .bind(topic.flat())
            .bind(payloads.len() as i64)
            .bind(&ids)
            .bind(&data)
            .execute(&self.pool)
            .await
            .context("INSERT events")?;
        Ok(())
    }
}

/// Commits a durable consumer's offset, on its own connection.
pub struct PgAcker {
    pool: PgPool,
    topic: String,
    consumer: String,
}

impl PgAcker {
    pub async fn ack(&mut self, offset: i64) -> Result<()> {
        sqlx::query(
            "UPDATE consumers SET committed = GREATEST(committed, $3), updated_at = now() \
             WHERE topic = $1 AND name = $2",
        )
        .bind(&self.topic)
        .bind(&self.consumer)
        .bind(offset)
        .execute(&self.pool)
        .await
        .context("UPDATE consumers")?;
        Ok(())
    }
}

/// Reads `topic` after offset `from` forever: pages while there are rows, then waits
/// for the NOTIFY doorbell (re-checking every second in case one was missed).
async fn reader(url: String, topic: String, from: i64) -> Result<Deliveries> {
    let pool = pool(&url, 1).await?;
    let mut listener = PgListener::connect_with(&pool).await?;
    listener.listen(&format!("bench_{topic}")).await?;
    let (tx, rx) = mpsc::channel::<Result<Delivery>>(2 * PAGE as usize);
    tokio::spawn(async move {
        let mut last = from;
        loop {
            let rows = sqlx::query(READ_PAGE)
                .bind(&topic)
                .bind(last)
                .bind(PAGE)
                .fetch_all(&mut listener)
                .await;
            let rows = match rows {
                Ok(rows) => rows,
                Err(e) => {
                    let _ = tx
                        .send(Err(anyhow::Error::new(e).context("read page")))
                        .await;
                    return;
                }
            };
            let full = rows.len() as i64 == PAGE;
            for row in rows {
                last = row.get::<i64, _>(1);
                let data: Option<Vec<u8>> = row.get(14);
                let payload = Bytes::from(data.unwrap_or_default());
                let token = AckToken::Offset(last);
                if tx.send(Ok(Delivery { payload, token })).await.is_err() {
                    return;
                }
            }
            if !full {
                tokio::select! {
                    _ = tx.closed() => return,
                    _ = tokio::time::timeout(Duration::from_secs(1), listener.recv()) => {}
                }
                while listener.next_buffered().is_some() {}
            }
        }
    });
    Ok(ReceiverStream::new(rx).boxed())
}

pub async fn live(url: &str, topic: &Topic) -> Result<Deliveries> {
    let pool = pool(url, 1).await?;
    let head: i64 = sqlx::query_scalar("SELECT head FROM topics WHERE name = $1")
        .bind(topic.flat())
        .fetch_one(&pool)
        .await?;
    pool.close().await;
    reader(url.to_owned(), topic.flat(), head).await
}

pub async fn durable(url: &str, topic: &Topic, name: &str) -> Result<(Deliveries, Acker)> {
    let pool = pool(url, 1).await?;
    let committed: i64 = sqlx::query_scalar(
        "INSERT INTO consumers (topic, name, committed) VALUES ($1, $2, 0) \
         ON CONFLICT (topic, name) DO UPDATE SET updated_at = now() RETURNING committed",
    )
    .bind(topic.flat())
    .bind(name)
    .fetch_one(&pool)
    .await?;
    let stream = reader(url.to_owned(), topic.flat(), committed).await?;
    let acker = PgAcker {
        pool,
        topic: topic.flat(),
        consumer: name.to_owned(),
    };
    Ok((stream, Acker::Postgres(acker)))
}
