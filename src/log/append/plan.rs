//! Planning a group's offsets under the topic lock: which events are new, which are
//! retries of stored ones, and which requests must fail alone.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use super::AppendJob;
use crate::log::{Appended, Event, Largest, LogError};

const FIND_IDS: &str =
    r#"SELECT id, topic, "offset", appended_at FROM events WHERE id = ANY($1::uuid[])"#;

/// One request of a group: its events and the largest of them.
#[derive(Clone, Copy)]
pub struct Batch<'a> {
    pub events: &'a [Event],
    pub largest: Largest,
}

impl<'a> Batch<'a> {
    pub fn of(job: &'a AppendJob) -> Self {
        Self {
            events: &job.events,
            largest: job.largest,
        }
    }
}

/// A topic's requests as one statement writes them: each id once, at the offset of
/// its first occurrence; later occurrences (a retry within the group) are duplicates.
pub struct Unique<'a> {
    pub events: Vec<&'a Event>,
}

impl<'a> Unique<'a> {
    pub fn of(batches: &[Batch<'a>]) -> Self {
        let mut seen = HashSet::new();
        let events = batches
            .iter()
            .flat_map(|b| b.events.iter())
            .filter(|e| seen.insert(e.id))
            .collect();
        Self { events }
    }

    /// The largest event of any request.
    pub fn largest(batches: &[Batch<'_>]) -> usize {
        batches.iter().map(|b| b.largest.bytes).max().unwrap_or(0)
    }

    /// Each request's outcomes once the events took offsets after `head` at `now`.
    pub fn outcomes(
        &self,
        batches: &[Batch<'_>],
        head: i64,
        now: DateTime<Utc>,
    ) -> Vec<Vec<Appended>> {
        let offsets: HashMap<Uuid, i64> =
            self.events.iter().map(|e| e.id).zip(head + 1..).collect();
        let mut first = HashSet::new();
        batches
            .iter()
            .map(|batch| {
                let appended = |e: &Event| Appended {
                    id: e.id,
                    offset: offsets[&e.id],
                    duplicate: !first.insert(e.id),
                    appended_at: now,
                };
                batch.events.iter().map(appended).collect()
            })
            .collect()
    }
}

/// A locked topic row: its head, the time its lock was taken and its size limit.
#[derive(Debug, Clone, Copy)]
pub struct Locked {
    pub head: i64,
    pub now: DateTime<Utc>,
    pub max_event_bytes: Option<i32>,
}

/// Where each id of a group is stored (or will be, once the group commits).
pub type StoredIds = HashMap<Uuid, (String, i64, DateTime<Utc>)>;

/// Looks up which of the batches' ids are stored already, in any topic.
pub async fn find_ids<'a>(
    conn: &mut PgConnection,
    batches: impl IntoIterator<Item = &'a Batch<'a>>,
) -> Result<StoredIds, LogError> {
    let ids: Vec<Uuid> = batches
        .into_iter()
        .flat_map(|b| b.events.iter().map(|e| e.id))
        .collect();
    // Not a cached statement: planned with these ids, so it is always an index lookup
    // (a generic plan made while the table was small scans it whole).
    let rows: Vec<(Uuid, String, i64, DateTime<Utc>)> = sqlx::query_as(FIND_IDS)
        .bind(&ids)
        .persistent(false)
        .fetch_all(conn)
        .await
        .map_err(|e| LogError::from_sqlx("looking up event ids", e))?;
    Ok(rows
        .into_iter()
        .map(|(id, topic, offset, at)| (id, (topic, offset, at)))
        .collect())
}

/// Offsets for one topic of a group: stored ids (and ids an earlier request of the
/// group takes, in any topic) are duplicates; the rest take consecutive offsets after
/// the head.
pub struct Plan<'a, 's> {
    topic: &'a str,
    locked: Locked,
    next: i64,
    stored: &'s mut StoredIds,
    /// The new events, in offset order from `locked.head + 1`.
    pub fresh: Vec<&'a Event>,
}

impl<'a, 's> Plan<'a, 's> {
    pub fn new(topic: &'a str, locked: Locked, stored: &'s mut StoredIds) -> Self {
        Self {
            topic,
            locked,
            next: locked.head + 1,
            stored,
            fresh: Vec::new(),
        }
    }

    /// Refuses a request with an event over the topic's size limit.
    fn fits(&self, largest: Largest) -> Result<(), LogError> {
        let Some(limit) = self.locked.max_event_bytes.map(i32::unsigned_abs) else {
            return Ok(());
        };
        if largest.bytes <= limit as usize {
            return Ok(());
        }
        Err(LogError::EventTooLarge {
            topic: self.topic.to_owned(),
            index: largest.index,
            bytes: largest.bytes,
            limit,
        })
    }

    /// Plans one request; nothing of it is taken if an event is over the topic's size
    /// limit or any of its ids lives in another topic.
    pub fn add(&mut self, batch: Batch<'a>) -> Result<Vec<Appended>, LogError> {
        self.fits(batch.largest)?;
        if let Some((id, other)) = batch.events.iter().find_map(|e| {
            self.stored
                .get(&e.id)
                .filter(|s| s.0 != self.topic)
                .map(|s| (e.id, &s.0))
        }) {
            return Err(LogError::IdInOtherTopic {
                id,
                other_topic: other.clone(),
            });
        }
        Ok(batch.events.iter().map(|e| self.place(e)).collect())
    }

    fn place(&mut self, event: &'a Event) -> Appended {
        let (offset, duplicate, appended_at) = match self.stored.get(&event.id) {
            Some((_, offset, at)) => (*offset, true, *at),
            None => {
                let offset = self.next;
                self.next += 1;
                self.fresh.push(event);
                let now = self.locked.now;
                self.stored
                    .insert(event.id, (self.topic.to_owned(), offset, now));
                (offset, false, now)
            }
        };
        Appended {
            id: event.id,
            offset,
            duplicate,
            appended_at,
        }
    }
}
