//! Caps on open subscriptions: per connection and per server, freed when streams end.

use crate::helpers::*;
use tonic::Code;

/// The per-connection and server-wide caps answer RESOURCE_EXHAUSTED naming the flag,
/// and a closed stream frees its place.
#[tokio::test]
async fn subscription_caps_hold_and_free_up_when_streams_close() {
    let server = TestServer::start_with(|c| {
        quick(c);
        c.subscriptions.max_subscriptions = 3;
        c.subscriptions.max_subscriptions_per_connection = 2;
    })
    .await;
    let (mut one, mut other) = (server.client().await, server.client().await);
    let first = subscribe(&mut one, sub_req("t", "")).await;
    let _second = subscribe(&mut one, sub_req("t", "")).await;

    let err = one.subscribe(sub_req("t", "")).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert!(
        err.message().contains("max-subscriptions-per-connection"),
        "{}",
        err.message()
    );
    let _third = subscribe(&mut other, sub_req("t", "")).await;
    let err = other.subscribe(sub_req("t", "")).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert!(
        err.message().contains("--max-subscriptions)"),
        "{}",
        err.message()
    );

    drop(first);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match one.subscribe(sub_req("t", "")).await {
            Ok(_) => break,
            Err(e) => assert_eq!(e.code(), Code::ResourceExhausted),
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the closed stream never freed its place"
        );
        tokio::task::yield_now().await;
    }
}
