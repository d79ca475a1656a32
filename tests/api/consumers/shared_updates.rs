//! Writes that queue behind an UPDATE in flight share the next one: lease renewals
//! and acks, proven with pg_stat_statements and a held row lock.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use super::list;
use crate::helpers::probes::{statements, track_statements, wait_for_blocked_statement};
use crate::helpers::*;

/// The lease renewal UPDATE (`RENEW_MANY` in src/log/renewals.rs), as
/// pg_stat_statements and pg_stat_activity show its text.
const RENEW_UPDATE: &str = "AS r(topic, name, owner, ttl_ms)";
/// The ack UPDATE (`ACK` in src/log/consumers.rs).
const ACK_UPDATE: &str = "THEN GREATEST(committed, $3)";

/// Holds `consumer`'s row lock in a transaction of its own, so an UPDATE of that row
/// waits until the transaction ends.
async fn lock_consumer_row<'c>(
    pool: &sqlx::PgPool,
    topic: &str,
    consumer: &str,
) -> sqlx::Transaction<'c, sqlx::Postgres> {
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM consumers WHERE topic = $1 AND name = $2 FOR UPDATE")
        .bind(topic)
        .bind(consumer)
        .fetch_one(&mut *tx)
        .await
        .expect("the consumer's row is locked");
    tx
}

/// Polls `future` once, without a waker to call (the caller awaits it later): an async
/// fn runs up to its first await that is not ready.
fn poll_once<F: Future + Unpin>(future: &mut F) -> Poll<F::Output> {
    Pin::new(future).poll(&mut Context::from_waker(Waker::noop()))
}

/// Lease renewals that arrive while a renewal UPDATE is in flight share the next
/// UPDATE: the first of 200 renewals is written alone and held on a row lock (seen
/// waiting in pg_stat_activity), the other 199 are queued meanwhile (each by its first
/// poll, while that UPDATE cannot finish), and pg_stat_statements then counts exactly
/// 2 renewal UPDATEs for the 200 renewals. Each renewal gets its own consumer's
/// position, every lease moved forward, and an owner that lost the lease gets `None`.
#[tokio::test]
async fn lease_renewals_queued_behind_an_update_share_the_next_one_and_each_get_their_own_answer() {
    use pulsebus::log::EventLog;
    use std::time::Duration;

    let server = TestServer::start().await;
    let pool = server.sql().await;
    track_statements(&pool).await;
    let tasks = pulsebus::tasks::Tasks::new();
    let log = EventLog::new(pool.clone(), std::sync::Arc::new(()), &tasks);
    log.ensure_topic("leases").await.unwrap();
    let short = Duration::from_secs(5);
    let mut owners = Vec::new();
    for i in 0..200i64 {
        let name = format!("c{i}");
        log.create_consumer("leases", &name, i).await.unwrap();
        let owner = uuid::Uuid::new_v4();
        assert!(
            log.acquire_lease("leases", &name, owner, short)
                .await
                .unwrap()
                .is_some()
        );
        owners.push((name, owner, i));
    }
    let long = Duration::from_secs(60);
    let mut renewals: Vec<_> = owners
        .iter()
        .map(|(name, owner, _)| Box::pin(log.renew_lease("leases", name, *owner, long)))
        .collect();

    let lock = lock_consumer_row(&pool, "leases", "c0").await;
    assert!(poll_once(&mut renewals[0]).is_pending());
    wait_for_blocked_statement(&pool, RENEW_UPDATE).await;
    for renewal in &mut renewals[1..] {
        assert!(poll_once(renewal).is_pending());
    }
    lock.rollback().await.unwrap();
    for ((name, _, committed), renewal) in owners.iter().zip(renewals) {
        let result = tokio::time::timeout(WAIT, renewal)
            .await
            .expect("the renewal is answered in time");
        let position = result
            .unwrap()
            .unwrap_or_else(|| panic!("{name} lost its lease"));
        assert_eq!(position.committed, *committed, "{name}");
    }
    let (updates, renewed) = statements(&pool, RENEW_UPDATE).await;
    let stranger = uuid::Uuid::new_v4();
    let lost = log
        .renew_lease("leases", "c0", stranger, short)
        .await
        .unwrap();

    eprintln!("200 renewals: {updates} UPDATEs renewing {renewed} leases");
    assert_eq!(
        (updates, renewed),
        (2, 200),
        "the first renewal alone, then the 199 queued behind it together"
    );
    assert_eq!(lost, None);
    let (extended,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM consumers \
         WHERE topic = 'leases' AND lease_expires_at > clock_timestamp() + interval '30 seconds'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(extended, 200);
}

/// Acks for one consumer that arrive while its ack UPDATE is in flight share the next
/// UPDATE (on the subscription engine, which the server's Ack calls): the first of 200
/// acks is written alone and held on the consumer's row lock (seen waiting in
/// pg_stat_activity), the other 199 are queued meanwhile, and pg_stat_statements then
/// counts exactly 2 ack UPDATEs. The first ack answers its own offset, every other one
/// the highest offset of the shared UPDATE, which is what is committed.
#[tokio::test]
async fn acks_queued_behind_an_ack_update_share_the_next_one() {
    use pulsebus::config::SubscriptionConfig;
    use pulsebus::log::EventLog;
    use pulsebus::subscribe::tail::Tail;
    use pulsebus::subscribe::{Engine, Start, SubscribeParams};
    use pulsebus::tasks::Tasks;

    let server = TestServer::start().await;
    let mut client = server.client().await;
    publish(&mut client, "t", events("x", 200)).await;
    let pool = server.sql().await;
    track_statements(&pool).await;
    let tasks = Tasks::new();
    let tail = Tail::new();
    let log = EventLog::new(pool.clone(), tail.clone(), &tasks);
    log.create_consumer("t", "c", 0).await.unwrap();
    let engine = Engine::start(log, tail, SubscriptionConfig::default(), &tasks);
    // A subscriber on the topic keeps its head known to the engine, so no ack up to it
    // queries the head before it is queued.
    let watching = SubscribeParams {
        topic: "t".into(),
        consumer: None,
        start: Start::Latest,
        types: vec![],
        max_in_flight: 1000,
        config: None,
    };
    let _subscription = engine.subscribe(watching, None).await.unwrap();
    let mut acks: Vec<_> = (1..=200)
        .map(|offset| Box::pin(engine.ack("t", Some("c"), offset, None)))
        .collect();

    let lock = lock_consumer_row(&pool, "t", "c").await;
    assert!(poll_once(&mut acks[0]).is_pending());
    wait_for_blocked_statement(&pool, ACK_UPDATE).await;
    for ack in &mut acks[1..] {
        assert!(poll_once(ack).is_pending());
    }
    lock.rollback().await.unwrap();
    let mut answers = Vec::new();
    for ack in acks {
        let answer = tokio::time::timeout(WAIT, ack)
            .await
            .expect("the ack is answered in time");
        answers.push(answer.expect("the ack succeeds").committed);
    }
    let (updates, _) = statements(&pool, ACK_UPDATE).await;
    tasks.cancel();

    eprintln!("200 acks: {updates} UPDATEs");
    assert_eq!(
        updates, 2,
        "the first ack alone, then the 199 queued behind it"
    );
    assert_eq!(answers[0], 1);
    assert!(answers[1..].iter().all(|&committed| committed == 200));
    assert_eq!(list(&mut client, "t").await[0].committed_offset, 200);
}
