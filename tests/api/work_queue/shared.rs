//! Shared consumers split a topic's records between subscribers on several servers.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::task::JoinSet;

use super::{ack_each, config, consumer_info, shared_sub};
use crate::helpers::probes::track_statements;
use crate::helpers::*;

const EVENTS: usize = 3000;

/// Three shared subscribers on two servers split 3,000 events: every event is handled
/// exactly once (each acked by the one subscriber it was handed to, none twice), every
/// subscriber gets a share, and the consumer's committed offset (its low-water mark)
/// reaches the head with nothing in flight.
#[tokio::test]
async fn three_shared_subscribers_on_two_servers_split_the_events_once_each() {
    let first = quick_server().await;
    let second = TestServer::start_on(first.database_url.clone(), quick).await;
    let cfg = config(
        DeliveryMode::Shared,
        Duration::from_secs(30),
        Duration::from_secs(1),
    );
    let mut client = first.client().await;
    let pool = first.sql().await;
    track_statements(&pool).await;
    // Create the consumer before the events exist, so all three start together.
    let mut streams = Vec::new();
    for server in [&first, &second, &first] {
        let mut c = server.client().await;
        streams.push((
            subscribe(&mut c, shared_sub("jobs", "workers", &cfg)).await,
            c,
        ));
    }
    for chunk in 0..(EVENTS / 500) {
        let batch = (0..500)
            .map(|i| event("job", &format!("{{\"n\": {}}}", chunk * 500 + i)))
            .collect();
        publish(&mut client, "jobs", batch).await;
    }

    // Workers stop once all events are handled between them.
    let total = Arc::new(AtomicUsize::new(0));
    let (all_done, done) = tokio::sync::watch::channel(false);
    let all_done = Arc::new(all_done);
    let mut workers = JoinSet::new();
    for (i, (mut stream, mut c)) in streams.into_iter().enumerate() {
        let (total, all_done, mut done) = (Arc::clone(&total), Arc::clone(&all_done), done.clone());
        workers.spawn(async move {
            let mut handled = Vec::new();
            loop {
                let message = tokio::select! {
                    m = stream.message() => m.expect("the stream is healthy").expect("open"),
                    _ = done.wait_for(|d| *d) => break,
                };
                if let Some(subscribe_response::Message::Record(r)) = message.message {
                    assert_eq!(r.delivery_attempt, 1, "nothing is redelivered here");
                    ack_each(&mut c, "jobs", "workers", &[r.offset]).await;
                    handled.push(r.offset);
                    if total.fetch_add(1, Ordering::SeqCst) + 1 == EVENTS {
                        all_done.send_replace(true);
                    }
                }
            }
            (i, handled)
        });
    }
    let mut by_worker = BTreeMap::new();
    let joined = async {
        while let Some(done) = workers.join_next().await {
            let (i, handled) = done.unwrap();
            by_worker.insert(i, handled);
        }
    };
    tokio::time::timeout(WAIT * 3, joined)
        .await
        .expect("the workers handle every event in time");

    let all: Vec<i64> = by_worker.values().flatten().copied().collect();
    let unique: BTreeSet<i64> = all.iter().copied().collect();
    assert_eq!(all.len(), unique.len(), "no record was handled twice");
    assert_eq!(
        unique,
        (1..=EVENTS as i64).collect(),
        "every record was handled"
    );
    let shares: Vec<usize> = by_worker.values().map(Vec::len).collect();
    eprintln!("split of {EVENTS} events over 3 shared subscribers: {shares:?}");
    assert!(
        shares.iter().all(|&n| n > 0),
        "every subscriber got a share: {shares:?}"
    );
    report_costs(&pool).await;
    let info = consumer_info(&mut client, "jobs", "workers").await;
    assert_eq!(info.committed_offset, EVENTS as i64);
    assert_eq!((info.in_flight, info.lag), (0, 0));
}

/// Prints what the work cost PostgreSQL per record: statements (all of them, the
/// publishes included) and row writes to `deliveries`.
async fn report_costs(pool: &sqlx::PgPool) {
    let (calls,): (i64,) = sqlx::query_as(
        "SELECT coalesce(sum(calls), 0)::int8 FROM pg_stat_statements \
         WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    // The statistics collector may lag a little; these are figures, not assertions.
    let (ins, upd, del): (i64, i64, i64) = sqlx::query_as(
        "SELECT n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_user_tables WHERE relname = 'deliveries'",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    let per = |n: i64| n as f64 / EVENTS as f64;
    eprintln!(
        "per record: {:.1} statements; deliveries rows {:.2} inserted, {:.2} updated, {:.2} deleted",
        per(calls),
        per(ins),
        per(upd),
        per(del)
    );
}
