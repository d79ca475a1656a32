//! Reading the log: pages by offset, topic heads and topic summaries.

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::{PgExecutor, Row};
use tokio_stream::StreamExt;

use super::{Event, EventLog, LogError, Payload, Record};

/// Most bytes one Read page carries: gRPC clients refuse replies over 4 MiB by default.
const READ_BUDGET_BYTES: usize = 3 * 1024 * 1024;

/// The columns of a record, in the order [`record_from_row`] reads them.
macro_rules! record_columns {
    () => {
        r#"topic, "offset", appended_at, id, type, source, subject, time, correlation_id,
       causation_id, schema_version, attributes, content_type,
       CASE WHEN data_type IS NULL THEN data_json::text END AS data_json,
       data_text, data_bytes, data_type"#
    };
}

const HEAD: &str = "SELECT head FROM topics WHERE name = $1";
const BOUNDS: &str = "SELECT first_offset, head FROM topics WHERE name = $1";
const HEADS_OF: &str = "SELECT name, head FROM topics WHERE name = ANY($1::text[])";
/// Topics by name after `$1` (all when NULL), at most `$2`.
/// Offsets from `$2` through `$3` (a head read before), optionally filtered by type.
const PAGE: &str = concat!(
    "SELECT ",
    record_columns!(),
    r#"
FROM events
WHERE topic = $1 AND "offset" >= $2 AND "offset" <= $3
  AND (cardinality($4::text[]) = 0 OR type = ANY($4::text[]))
ORDER BY "offset"
LIMIT $5"#
);

/// A page of records and how far it looked.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Page {
    /// The records, in offset order.
    pub records: Vec<Record>,
    /// Every offset up to this one was examined (returned, or filtered out by type);
    /// the next page starts after it.
    pub scanned_to: i64,
}

/// Records at the given offsets (`$2`), in offset order.
const AT_OFFSETS: &str = concat!(
    "SELECT ",
    record_columns!(),
    r#"
FROM events
WHERE topic = $1 AND "offset" = ANY($2::int8[])
ORDER BY "offset""#
);

/// A page request: which records of a topic to return.
#[derive(Debug, Clone, PartialEq)]
pub struct PageRequest<'a> {
    /// The topic.
    pub topic: &'a str,
    /// First offset to return (inclusive).
    pub from: i64,
    /// Last offset to consider (inclusive): usually the head read just before.
    pub to: i64,
    /// Keep only these event types; empty keeps all.
    pub types: &'a [String],
    /// Most records to return.
    pub limit: i64,
    /// Stop adding records once their payloads and envelopes reach this many bytes
    /// (the page always holds at least one record when any is available).
    pub max_bytes: usize,
}

impl EventLog {
    /// The topic's head offset (0 when it holds no events), or `None` if it does not exist.
    pub async fn head(&self, topic: &str) -> Result<Option<i64>, LogError> {
        head(&self.pool, topic).await
    }

    /// The topic's first retained offset and head (`first_offset` is head + 1 when
    /// retention removed everything), or `TopicNotFound`.
    pub async fn bounds(&self, topic: &str) -> Result<(i64, i64), LogError> {
        sqlx::query_as(BOUNDS)
            .bind(topic)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| LogError::from_sqlx("reading a topic's offsets", e))?
            .ok_or_else(|| LogError::TopicNotFound {
                topic: topic.to_owned(),
            })
    }

    /// Reads up to `limit` records from `from` (inclusive) and returns them with the
    /// head they were read under; `from` 0 is the first retained offset. Unknown
    /// topics are `TopicNotFound`; `from` below the first retained offset is
    /// `OutOfRange`, so a reader learns that records were removed rather than getting
    /// later ones silently.
    pub async fn read(
        &self,
        topic: &str,
        from: i64,
        limit: i64,
        types: &[String],
    ) -> Result<(Vec<Record>, i64), LogError> {
        let (first_offset, head) = self.bounds(topic).await?;
        let from = if from == 0 { first_offset } else { from };
        if from < first_offset {
            return Err(LogError::OutOfRange {
                topic: topic.to_owned(),
                offset: from,
                first_offset,
            });
        }
        let page = PageRequest {
            topic,
            from,
            to: head,
            types,
            limit,
            max_bytes: READ_BUDGET_BYTES,
        };
        Ok((self.page(&page).await?.records, head))
    }

    /// Reads one page of records from PostgreSQL in offset order, holding at most
    /// `limit` records and about `max_bytes`: rows are streamed and the page closes at
    /// the budget.
    pub async fn page(&self, req: &PageRequest<'_>) -> Result<Page, LogError> {
        let mut rows = sqlx::query(PAGE)
            .bind(req.topic)
            .bind(req.from)
            .bind(req.to)
            .bind(req.types)
            .bind(req.limit)
            .fetch(&self.pool);
        let mut records = Vec::new();
        let mut bytes = 0;
        while bytes < req.max_bytes {
            let Some(row) = rows.next().await else { break };
            let record = row
                .and_then(|row| record_from_row(&row))
                .map_err(|e| LogError::from_sqlx("reading events", e))?;
            bytes += record.approximate_size();
            records.push(record);
        }
        // Stopped by the limit or the byte budget: only what was returned is scanned.
        let cut_short = records.len() as i64 >= req.limit || bytes >= req.max_bytes;
        let scanned_to = match records.last() {
            Some(last) if cut_short => last.offset,
            _ => req.to,
        };
        Ok(Page {
            records,
            scanned_to,
        })
    }

    /// The records of `topic` at `offsets` (those that exist), in offset order.
    pub async fn records_at(&self, topic: &str, offsets: &[i64]) -> Result<Vec<Record>, LogError> {
        let rows = sqlx::query(AT_OFFSETS)
            .bind(topic)
            .bind(offsets)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| LogError::from_sqlx("reading records", e))?;
        rows.iter()
            .map(record_from_row)
            .collect::<Result<_, _>>()
            .map_err(|e| LogError::from_sqlx("reading records", e))
    }

    /// The heads of those of `topics` that exist, in one query.
    pub async fn heads_of(&self, topics: &[String]) -> Result<Vec<(String, i64)>, LogError> {
        sqlx::query_as(HEADS_OF)
            .bind(topics)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| LogError::from_sqlx("reading topic heads", e))
    }
}

/// The head of `topic`, through any executor (pool or an open transaction).
pub async fn head(db: impl PgExecutor<'_>, topic: &str) -> Result<Option<i64>, LogError> {
    sqlx::query_scalar(HEAD)
        .bind(topic)
        .fetch_optional(db)
        .await
        .map_err(|e| LogError::from_sqlx("reading a topic head", e))
}

/// A row of [`PAGE`] or [`AT_OFFSETS`] as a record, its columns read by position (the
/// derive looks each one up by name, a hash per column per row: a fifth of a catch-up's
/// server CPU went there). The positions follow `record_columns!`.
fn record_from_row(row: &PgRow) -> Result<Record, sqlx::Error> {
    let attributes: Json<serde_json::Map<String, serde_json::Value>> = row.try_get(11)?;
    Ok(Record {
        topic: row.try_get(0)?,
        offset: row.try_get(1)?,
        appended_at: row.try_get(2)?,
        event: Event {
            id: row.try_get(3)?,
            event_type: row.try_get(4)?,
            source: row.try_get(5)?,
            subject: row.try_get(6)?,
            time: Some(row.try_get::<DateTime<Utc>, _>(7)?),
            correlation_id: row.try_get(8)?,
            causation_id: row.try_get(9)?,
            schema_version: row.try_get(10)?,
            attributes: attributes.0,
            content_type: row.try_get(12)?,
            payload: payload(
                row.try_get(13)?,
                row.try_get(14)?,
                row.try_get(15)?,
                row.try_get(16)?,
            ),
        },
    })
}

/// The payload from its columns; a protobuf payload's `data_json` is only its rendering
/// for SQL (not selected).
fn payload(
    json: Option<String>,
    text: Option<String>,
    bytes: Option<Vec<u8>>,
    type_url: Option<String>,
) -> Payload {
    match (json, text, bytes, type_url) {
        (_, _, Some(value), Some(type_url)) => Payload::Proto {
            type_url,
            value,
            json: None,
        },
        (Some(json), _, _, _) => Payload::Json(json),
        (_, Some(text), _, _) => Payload::Text(text),
        (_, _, Some(bytes), None) => Payload::Binary(bytes),
        (None, None, None, _) => Payload::None,
    }
}
