//! Retention: the sweeper removes what a topic's config no longer keeps, offsets stay
//! gapless from the first retained offset, reads below it are OUT_OF_RANGE, durable
//! consumers hold it up to the consumer hold, and only one replica sweeps at a time.
//! Configs are set with SQL (the columns of migration 0007), so these tests need only
//! the sweeper; the sweeper runs every 20 ms here and tests wait for its effect.

use std::time::Duration;

use sqlx::PgPool;

use crate::helpers::*;

mod age;
mod consumers;
mod count;
mod replicas;
mod window;

/// How often the tests' sweepers run.
const SWEEP_EVERY: Duration = Duration::from_millis(20);

/// A server whose sweeper runs every [`SWEEP_EVERY`] with the default consumer hold.
async fn sweeping_server() -> TestServer {
    TestServer::start_with(|c| c.retention.retention_interval = SWEEP_EVERY).await
}

/// `n` small events.
fn events(n: usize) -> Vec<Event> {
    (0..n)
        .map(|i| event("retained", &format!("{{\"i\":{i}}}")))
        .collect()
}

/// Sets `topic`'s retention limits (None: no limit of that kind).
async fn set_retention(sql: &PgPool, topic: &str, age_ms: Option<i64>, events: Option<i64>) {
    sqlx::query("UPDATE topics SET retention_age_ms = $2, retention_events = $3 WHERE name = $1")
        .bind(topic)
        .bind(age_ms)
        .bind(events)
        .execute(sql)
        .await
        .unwrap();
}

async fn first_offset(sql: &PgPool, topic: &str) -> i64 {
    sqlx::query_scalar("SELECT first_offset FROM topics WHERE name = $1")
        .bind(topic)
        .fetch_one(sql)
        .await
        .unwrap()
}

/// Waits until the topic's first retained offset is `expected` (fails the test if
/// it never gets there), and returns it.
async fn wait_first_offset(sql: &PgPool, topic: &str, expected: i64) -> i64 {
    let (got, _) = settle(
        Duration::from_millis(10),
        || first_offset(sql, topic),
        |&f| f == expected,
    )
    .await;
    assert_eq!(got, expected, "first retained offset of {topic}");
    got
}

/// The offsets `Read` returns from the start (the first retained offset), all pages.
async fn retained_offsets(client: &mut Client<tonic::transport::Channel>, topic: &str) -> Vec<i64> {
    read_all(client, topic)
        .await
        .iter()
        .map(|r| r.offset)
        .collect()
}

/// The rows of `events` left for `topic`, counted by SQL.
async fn stored(sql: &PgPool, topic: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events WHERE topic = $1")
        .bind(topic)
        .fetch_one(sql)
        .await
        .unwrap()
}
