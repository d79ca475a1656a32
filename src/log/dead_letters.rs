//! Dead letters: a record that a shared consumer gives up on is appended to the
//! dead-letter topic inside the same transaction that settles it, so it is never lost
//! and never written twice (the consumer's row lock serialises every replica, and the
//! dead letter's id is derived from the consumer and the original id).

use sqlx::PgConnection;
use uuid::Uuid;

use super::{ENSURE_TOPIC, LogError};

/// Namespace of dead-letter ids (UUIDv5 of `topic/consumer/original id`).
const DEAD_LETTER_IDS: Uuid = Uuid::from_u128(0x7a1e_55d0_9c2b_4f0e_8d61_3b5f_0c2a_d1e7);

/// A record to park, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parked {
    /// Its offset in the consumer's topic.
    pub offset: i64,
    /// Deliveries made.
    pub attempts: i32,
    /// Why it is parked.
    pub reason: String,
}

const IDS_AT: &str =
    r#"SELECT "offset", id FROM events WHERE topic = $1 AND "offset" = ANY($2::int8[])"#;
const STORED_IDS: &str = "SELECT id FROM events WHERE id = ANY($1::uuid[])";
const MOVE_HEAD: &str =
    "UPDATE topics SET head = head + $2 WHERE name = $1 RETURNING head - $2, clock_timestamp()";

/// Copies the originals into the dead-letter topic after `$2` (its old head), with
/// new ids, the original id as causation, and the dead-letter attributes.
const COPY: &str = concat!(
    r#"
WITH copied AS (
    INSERT INTO events (topic, "offset", id, type, source, subject, time, correlation_id,
                        causation_id, schema_version, attributes, content_type,
                        data_json, data_text, data_bytes, data_type, appended_at)
    SELECT $1, $2 + u.ord, u.new_id, e.type, e.source, e.subject, e.time, e.correlation_id,
           e.id::text, e.schema_version,
           e.attributes || jsonb_build_object(
               'pulsebus.dead_letter.topic', e.topic,
               'pulsebus.dead_letter.offset', e."offset"::text,
               'pulsebus.dead_letter.consumer', $4::text,
               'pulsebus.dead_letter.reason', u.reason,
               'pulsebus.dead_letter.attempts', u.attempts::text),
           e.content_type, e.data_json, e.data_text, e.data_bytes, e.data_type, $3
    FROM UNNEST($5::int8[], $6::uuid[], $7::text[], $8::int4[])
         WITH ORDINALITY AS u(o, new_id, reason, attempts, ord)
    JOIN events e ON e.topic = $9 AND e."offset" = u.o
    RETURNING 1
)
SELECT (SELECT count(*) FROM copied), "#,
    notify_head!("$1", "$2 + cardinality($5::int8[])"),
    " IS NULL"
);

/// Appends `parked` records of `consumer` on `topic` to `dlq`, in offset order, inside
/// the caller's transaction. Records dead-lettered before (their id is stored) are not
/// copied again. Returns how many were copied.
pub async fn append(
    conn: &mut PgConnection,
    topic: &str,
    consumer: &str,
    dlq: &str,
    parked: &mut [Parked],
) -> Result<i64, LogError> {
    let err = |ctx| move |e| LogError::from_sqlx(ctx, e);
    parked.sort_by_key(|p| p.offset);
    let offsets: Vec<i64> = parked.iter().map(|p| p.offset).collect();
    let ids: Vec<(i64, Uuid)> = sqlx::query_as(IDS_AT)
        .bind(topic)
        .bind(&offsets)
        .fetch_all(&mut *conn)
        .await
        .map_err(err("reading records to dead-letter"))?;
    let new_id = |id: Uuid| dead_letter_id(topic, consumer, id);
    let candidates: Vec<Uuid> = ids.iter().map(|(_, id)| new_id(*id)).collect();
    let stored: Vec<(Uuid,)> = sqlx::query_as(STORED_IDS)
        .bind(&candidates)
        .fetch_all(&mut *conn)
        .await
        .map_err(err("checking dead-letter ids"))?;
    let fresh: Vec<(&Parked, Uuid)> = parked
        .iter()
        .filter_map(|p| {
            let (_, id) = ids.iter().find(|(o, _)| *o == p.offset)?;
            let id = new_id(*id);
            (!stored.iter().any(|(s,)| *s == id)).then_some((p, id))
        })
        .collect();
    if fresh.is_empty() {
        return Ok(0);
    }
    sqlx::query(ENSURE_TOPIC)
        .bind(dlq)
        .execute(&mut *conn)
        .await
        .map_err(err("creating the dead-letter topic"))?;
    let count = fresh.len() as i64;
    let (head, now): (i64, chrono::DateTime<chrono::Utc>) = sqlx::query_as(MOVE_HEAD)
        .bind(dlq)
        .bind(count)
        .fetch_one(&mut *conn)
        .await
        .map_err(err("locking the dead-letter topic"))?;
    let copied: (i64, bool) = sqlx::query_as(COPY)
        .bind(dlq)
        .bind(head)
        .bind(now)
        .bind(consumer)
        .bind(fresh.iter().map(|(p, _)| p.offset).collect::<Vec<_>>())
        .bind(fresh.iter().map(|(_, id)| *id).collect::<Vec<_>>())
        .bind(
            fresh
                .iter()
                .map(|(p, _)| p.reason.clone())
                .collect::<Vec<_>>(),
        )
        .bind(fresh.iter().map(|(p, _)| p.attempts).collect::<Vec<_>>())
        .bind(topic)
        .fetch_one(&mut *conn)
        .await
        .map_err(err("appending dead letters"))?;
    if copied.0 != count {
        // An original vanished under us: roll back rather than leave a gap.
        return Err(LogError::from_sqlx(
            "appending dead letters",
            sqlx::Error::RowNotFound,
        ));
    }
    Ok(count)
}

/// The dead letter's id: the same for the same consumer and original, always.
pub fn dead_letter_id(topic: &str, consumer: &str, original: Uuid) -> Uuid {
    Uuid::new_v5(
        &DEAD_LETTER_IDS,
        format!("{topic}/{consumer}/{original}").as_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_letter_ids_depend_on_the_consumer_and_the_original_only() {
        let original = Uuid::now_v7();
        let id = dead_letter_id("mails", "sender", original);
        assert_eq!(id, dead_letter_id("mails", "sender", original));
        assert_ne!(id, dead_letter_id("mails", "other", original));
        assert_ne!(id, original);
    }
}
