//! Whether the log still holds a record a client saw (`SubscribeRequest.last_seen`).
//!
//! After an asynchronous PostgreSQL failover the new primary's log is the old one's up
//! to some offset, then new events. So one (offset, id) a client handled tells whether
//! everything it saw is still there: the same id at that offset means the logs agree up
//! to it; another id, or an offset above the head, means they parted at or before it.

use uuid::Uuid;

use super::{EventLog, LogError};

/// A record a client handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    /// Its offset.
    pub offset: i64,
    /// Its event's id.
    pub id: Uuid,
}

/// What the log holds where the client saw a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Found {
    /// The id stored at the seen offset, if a row is there.
    id: Option<Uuid>,
    /// The topic's head; `None` when the topic does not exist.
    head: Option<i64>,
}

const FIND: &str = "SELECT (SELECT id FROM events WHERE topic = $1 AND \"offset\" = $2), \
                    (SELECT head FROM topics WHERE name = $1)";

impl EventLog {
    /// `LogDiverged` unless the topic still holds what the client saw (an offset
    /// removed by retention cannot be checked and passes).
    pub async fn check_seen(&self, topic: &str, seen: Seen) -> Result<(), LogError> {
        let (id, head): (Option<Uuid>, Option<i64>) = sqlx::query_as(FIND)
            .bind(topic)
            .bind(seen.offset)
            .fetch_one(self.pool())
            .await
            .map_err(|e| LogError::from_sqlx("checking the last seen record", e))?;
        match diverged_at(seen, Found { id, head }) {
            None => Ok(()),
            Some(offset) => Err(LogError::LogDiverged {
                topic: topic.to_owned(),
                offset,
                head: head.unwrap_or(0),
                seen_id: seen.id,
            }),
        }
    }
}

/// The first offset at which the log no longer holds what the client saw, if any.
fn diverged_at(seen: Seen, found: Found) -> Option<i64> {
    let head = found.head.unwrap_or(0);
    match found.id {
        Some(id) if id == seen.id => None,
        Some(_) => Some(seen.offset),
        // Beyond the head: the offsets the client saw from head + 1 on are gone.
        None if seen.offset > head => Some(head + 1),
        // At or below the head but no row: removed by retention.
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(offset: i64) -> Seen {
        Seen {
            offset,
            id: Uuid::from_u128(7),
        }
    }

    #[test]
    fn the_same_id_at_the_offset_agrees_and_another_diverges_there() {
        let same = Found {
            id: Some(Uuid::from_u128(7)),
            head: Some(9),
        };
        assert_eq!(diverged_at(seen(5), same), None);
        let other = Found {
            id: Some(Uuid::from_u128(8)),
            head: Some(9),
        };
        assert_eq!(diverged_at(seen(5), other), Some(5));
    }

    #[test]
    fn an_offset_beyond_the_head_diverges_after_the_head_and_a_removed_one_passes() {
        let short = Found {
            id: None,
            head: Some(3),
        };
        assert_eq!(diverged_at(seen(5), short), Some(4));
        let gone = Found {
            id: None,
            head: None,
        };
        assert_eq!(
            diverged_at(seen(5), gone),
            Some(1),
            "the whole topic is gone"
        );
        let retained_away = Found {
            id: None,
            head: Some(9),
        };
        assert_eq!(diverged_at(seen(5), retained_away), None);
    }
}
