//! A group of requests for one topic: the common case in one autocommit statement,
//! and a step-by-step transaction when that statement cannot decide.

use chrono::{DateTime, Utc};
use sqlx::{Postgres, Transaction};

use super::plan::{Batch, Locked, Plan, Unique, find_ids};
use super::{AppendJob, Writer, fail_all};
use crate::log::columns::Columns;
use crate::log::error::is_id_conflict;
use crate::log::{Appended, LogError, TopicPolicy};

/// How often a lone append is retried when a concurrent append to another topic stored
/// one of its ids first (the retry then reports that precisely).
const ID_CONFLICT_RETRIES: usize = 2;

const LOCK_TOPIC: &str = "SELECT head, clock_timestamp(), max_event_bytes FROM topics \
                          WHERE name = $1 FOR NO KEY UPDATE";

impl Writer {
    /// Writes one topic's jobs together and answers each.
    pub(super) async fn write_topic(&self, topic: &str, jobs: Vec<AppendJob>) {
        let batches: Vec<Batch> = jobs.iter().map(Batch::of).collect();
        match self.try_one_statement(topic, &batches).await {
            Ok(Some(outcomes)) => {
                for (job, outcome) in jobs.into_iter().zip(outcomes) {
                    job.answer(Ok(outcome));
                }
                return;
            }
            Err(err @ LogError::Unavailable { .. }) => return fail_all(jobs, err),
            // Nothing was written: a new topic, an id stored elsewhere, or a refused row.
            Ok(None) => tracing::debug!(topic, "append falls back to a transaction"),
            Err(err) => tracing::debug!(topic, error = %err, "append falls back to a transaction"),
        }
        match self.try_group(topic, &batches).await {
            Ok(outcomes) => {
                for (job, outcome) in jobs.into_iter().zip(outcomes) {
                    job.answer(outcome);
                }
            }
            // One request's rows were refused (or another topic stored one of these ids
            // concurrently): write the requests one at a time, so only the culprit
            // fails. An unreachable database fails them all at once.
            Err(err)
                if jobs.len() > 1 && !matches!(err, LogError::Unavailable { .. })
                    || is_conflict(&err) =>
            {
                for job in jobs {
                    let outcome = self.append_alone(topic, Batch::of(&job)).await;
                    job.answer(outcome);
                }
            }
            Err(err) => fail_all(jobs, err),
        }
    }

    /// The common case in one round trip (see `Columns::append_in_one_statement`);
    /// `None` when the step-by-step transaction must decide.
    async fn try_one_statement(
        &self,
        topic: &str,
        batches: &[Batch<'_>],
    ) -> Result<Option<Vec<Vec<Appended>>>, LogError> {
        let unique = Unique::of(batches);
        let Some((head, now)) = Columns::from_events(&unique.events)
            .append_in_one_statement(&self.pool, topic, Unique::largest(batches))
            .await
            .map_err(|e| LogError::from_sqlx("appending events", e))?
        else {
            return Ok(None);
        };
        self.announce(topic, head, now, &unique.events);
        Ok(Some(unique.outcomes(batches, head, now)))
    }

    /// Writes one request on its own, retrying when a concurrent append to another
    /// topic stored one of its ids first (the retry then names that topic).
    async fn append_alone(&self, topic: &str, batch: Batch<'_>) -> Result<Vec<Appended>, LogError> {
        let mut attempt = 0;
        loop {
            match self.try_group(topic, &[batch]).await {
                Ok(mut outcomes) => return outcomes.remove(0),
                Err(err) if is_conflict(&err) && attempt < ID_CONFLICT_RETRIES => attempt += 1,
                Err(err) => return Err(err),
            }
        }
    }

    /// One transaction for all `batches`; the outer error fails them all, an inner one
    /// fails only its batch.
    async fn try_group(
        &self,
        topic: &str,
        batches: &[Batch<'_>],
    ) -> Result<Vec<Result<Vec<Appended>, LogError>>, LogError> {
        let err = |ctx| move |e| LogError::from_sqlx(ctx, e);
        let mut tx = self.pool.begin().await.map_err(err("starting an append"))?;
        let locked = lock_topic(&mut tx, topic, &self.policy).await?;
        let mut stored = find_ids(&mut tx, batches).await?;
        let mut plan = Plan::new(topic, locked, &mut stored);
        let outcomes: Vec<_> = batches.iter().map(|batch| plan.add(*batch)).collect();
        let fresh = std::mem::take(&mut plan.fresh);
        if !fresh.is_empty() {
            Columns::from_events(&fresh)
                .insert(&mut tx, topic, locked.head, locked.now)
                .await?;
        }
        tx.commit().await.map_err(err("committing an append"))?;
        self.announce(topic, locked.head, locked.now, &fresh);
        Ok(outcomes)
    }
}

pub(super) fn is_conflict(err: &LogError) -> bool {
    matches!(err, LogError::Database { source, .. } if is_id_conflict(source))
}

/// Locks the topic row (creating it if `policy` allows).
async fn lock_topic(
    tx: &mut Transaction<'static, Postgres>,
    topic: &str,
    policy: &TopicPolicy,
) -> Result<Locked, LogError> {
    let err = |e| LogError::from_sqlx("locking the topic", e);
    type Row = (i64, DateTime<Utc>, Option<i32>);
    let lock = || sqlx::query_as::<_, Row>(LOCK_TOPIC).bind(topic);
    let row = match lock().fetch_optional(&mut **tx).await.map_err(err)? {
        Some(row) => row,
        None => {
            policy.create(&mut **tx, topic).await?;
            lock().fetch_one(&mut **tx).await.map_err(err)?
        }
    };
    let (head, now, max_event_bytes) = row;
    Ok(Locked {
        head,
        now,
        max_event_bytes,
    })
}
