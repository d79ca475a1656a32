//! One replica sweeps at a time; two sweeping one database leave a consistent log.

use std::time::Duration;

use pulsebus::config::RetentionConfig;
use pulsebus::retention::{LOCK_KEY, sweep_once};
use sqlx::Connection;

use super::*;

/// While another session holds the retention lock, a sweep does nothing; once it is
/// free, the sweep removes what it should.
#[tokio::test]
async fn a_sweep_skips_while_another_replica_holds_the_lock() {
    let server = TestServer::start_with(|c| c.retention.retention_interval = Duration::ZERO).await;
    let sql = server.sql().await;
    let mut client = server.client().await;
    publish(&mut client, "locked", events(10)).await;
    set_retention(&sql, "locked", None, Some(3)).await;
    let config = RetentionConfig::default();

    let mut other = sqlx::PgConnection::connect(&server.database_url)
        .await
        .unwrap();
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(LOCK_KEY)
        .execute(&mut other)
        .await
        .unwrap();
    assert_eq!(sweep_once(&sql, &config).await.unwrap(), None);
    assert_eq!(first_offset(&sql, "locked").await, 1);

    other.close().await.unwrap();
    let sweep = sweep_once(&sql, &config)
        .await
        .unwrap()
        .expect("the lock is free");
    assert_eq!((sweep.topics, sweep.events), (1, 7));
    assert_eq!(first_offset(&sql, "locked").await, 8);
    let again = sweep_once(&sql, &config)
        .await
        .unwrap()
        .expect("the lock is free");
    assert_eq!(again.events, 0, "sweeping again removes nothing more");
}

/// Two replicas sweeping the same database while events are published: every
/// publish succeeds, offsets are gapless, and exactly the newest events stay.
#[tokio::test]
async fn two_replicas_sweeping_one_database_keep_the_log_gapless() {
    let first = sweeping_server().await;
    let second = TestServer::start_on(first.database_url.clone(), |c| {
        c.retention.retention_interval = SWEEP_EVERY;
    })
    .await;
    let sql = first.sql().await;
    let mut a = first.client().await;
    let mut b = second.client().await;
    publish(&mut a, "shared", events(1)).await;
    set_retention(&sql, "shared", None, Some(50)).await;

    let mut offsets = vec![1];
    for round in 0..30 {
        let client = if round % 2 == 0 { &mut a } else { &mut b };
        let results = publish(client, "shared", events(10)).await;
        offsets.extend(results.iter().map(|r| r.offset));
    }
    assert_eq!(offsets, (1..=301).collect::<Vec<_>>());

    wait_first_offset(&sql, "shared", 252).await;
    assert_eq!(
        retained_offsets(&mut b, "shared").await,
        (252..=301).collect::<Vec<_>>()
    );
    assert_eq!(stored(&sql, "shared").await, 50);
}
