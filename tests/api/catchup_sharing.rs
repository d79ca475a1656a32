//! Subscribers behind the tail window share their catch-up reads: a burst of
//! subscribers at nearby positions costs one PostgreSQL read per run of offsets, not
//! one per subscriber per page.

use crate::helpers::probes::{statements, track_statements};
use crate::helpers::*;
use tokio::task::JoinSet;

const EVENTS: i64 = 3000;
const SUBSCRIBERS: usize = 20;
/// A fragment of the page query's text only.
const PAGE_QUERY: &str = "(cardinality($4::text[])";

/// 20 subscribers replaying 3,000 stored events (none of them in the fresh server's
/// window) each get every record in order, from a handful of reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn subscribers_replaying_together_get_everything_in_order_from_shared_reads() {
    let writer = TestServer::start().await;
    let mut client = writer.client().await;
    for _ in 0..EVENTS / 500 {
        publish(&mut client, "lessons", events("lesson.published", 500)).await;
    }
    let url = writer.database_url.clone();
    writer.stop().await;
    let server = TestServer::start_on(url, |_| {}).await;
    let sql = server.sql().await;
    track_statements(&sql).await;
    let (before, _) = statements(&sql, PAGE_QUERY).await;

    let mut replays = JoinSet::new();
    for _ in 0..SUBSCRIBERS {
        let mut client = server.client().await;
        replays.spawn(async move {
            let mut stream = subscribe(&mut client, sub_req("lessons", "")).await;
            next_offsets(&mut stream, EVENTS as usize).await
        });
    }
    while let Some(offsets) = replays.join_next().await {
        assert_eq!(offsets.unwrap(), (1..=EVENTS).collect::<Vec<_>>());
    }

    let (after, _) = statements(&sql, PAGE_QUERY).await;
    let reads = after - before;
    let alone = SUBSCRIBERS as i64 * EVENTS / 500;
    assert!(
        reads <= 2 * EVENTS / 1000,
        "{reads} page reads for {SUBSCRIBERS} subscribers (each alone would take {alone})"
    );
}
