//! Flow control: max_in_flight, and bounded server memory for clients that never read.

use std::time::Duration;

use crate::helpers::process::ServerProcess;
use crate::helpers::*;

/// A durable subscription never has more than max_in_flight unacked records out; an
/// ack lets it continue by as many as were acknowledged.
#[tokio::test]
async fn a_durable_subscription_stops_at_max_in_flight_until_acked() {
    let server = quick_server().await;
    let mut client = server.client().await;
    publish(&mut client, "t", events("x", 20)).await;

    let req = SubscribeRequest {
        max_in_flight: 5,
        ..sub_req("t", "c")
    };
    let mut stream = subscribe(&mut client, req).await;
    assert_eq!(next_offsets(&mut stream, 5).await, [1, 2, 3, 4, 5]);
    expect_heartbeat(&mut stream).await;
    ack(&mut client, "t", "c", 3).await;

    assert_eq!(next_offsets(&mut stream, 3).await, [6, 7, 8]);
    expect_heartbeat(&mut stream).await;
}

/// Ephemeral subscriptions have no acks, so max_in_flight does not apply to them.
#[tokio::test]
async fn an_ephemeral_subscription_is_not_limited_by_max_in_flight() {
    let server = quick_server().await;
    let mut client = server.client().await;
    publish(&mut client, "t", events("x", 20)).await;

    let req = SubscribeRequest {
        max_in_flight: 5,
        ..sub_req("t", "")
    };
    let mut stream = subscribe(&mut client, req).await;

    assert_eq!(
        next_offsets(&mut stream, 20).await,
        (1..=20).collect::<Vec<_>>()
    );
}

const EVENTS: usize = 4000;
const PAYLOAD: usize = 16 * 1024;
const STALLED_STREAMS: usize = 4;
/// What each stalled stream may cost: one catch-up page (about 1 MiB), 16 buffered
/// records and the HTTP/2 send window, rounded up generously.
const BOUND_PER_STREAM_KIB: u64 = 6 * 1024;

/// Clients that open streams and never read them cost the server a bounded amount of
/// memory, far below the 64 MiB of events they could be buffered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_never_read_cost_the_server_bounded_memory() {
    let server =
        ServerProcess::on_database(&fresh_database().await, &["--heartbeat-interval", "100ms"])
            .await;
    let mut client = server.client().await;
    let blob = Event {
        data: Some(event::Data::BinaryData(vec![42; PAYLOAD])),
        ..event("blob", "")
    };
    for _ in 0..EVENTS / 50 {
        publish(&mut client, "big", vec![blob.clone(); 50]).await;
    }
    let before = server.rss_kib();

    let mut stalled = Vec::new();
    for i in 0..STALLED_STREAMS {
        let consumer = if i % 2 == 0 {
            String::new()
        } else {
            format!("stalled-{i}")
        };
        let req = SubscribeRequest {
            max_in_flight: 100_000,
            ..sub_req("big", &consumer)
        };
        stalled.push(subscribe(&mut server.client().await, req).await);
    }
    let mut peak = before;
    let mut samples = tokio::time::interval(Duration::from_millis(100));
    for _ in 0..30 {
        samples.tick().await;
        peak = peak.max(server.rss_kib());
    }

    let growth = peak.saturating_sub(before);
    eprintln!(
        "server RSS {before} KiB before, {peak} KiB peak with {STALLED_STREAMS} stalled streams (+{growth} KiB)"
    );
    assert!(
        growth < BOUND_PER_STREAM_KIB * STALLED_STREAMS as u64,
        "grew by {growth} KiB"
    );
    drop(stalled);
}
