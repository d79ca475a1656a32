//! A shared subscriber whose server is SIGKILLed: what it held goes to the others once
//! the deadline passes, nothing is lost, and nothing was handed out twice before.

use std::collections::BTreeSet;
use std::time::Duration;

use nix::sys::signal::Signal;

use super::{ack_each, config, consumer_info, shared_sub};
use crate::helpers::process::ServerProcess;
use crate::helpers::*;

/// The victim, on a server process, holds 50 records when its server is SIGKILLed; the
/// survivor, on another server, holds the other 50 meanwhile and then gets the
/// victim's 50 again, each as attempt 2, after their deadline; everything is settled
/// at the end.
#[tokio::test]
async fn records_held_by_a_killed_server_go_to_the_others_after_the_deadline() {
    let survivor_server = quick_server().await;
    let victim_server = ServerProcess::on_database(&survivor_server.database_url, &[]).await;
    let mut client = survivor_server.client().await;
    publish(&mut client, "jobs", events("job", 100)).await;
    let cfg = config(DeliveryMode::Shared, Duration::from_secs(2), Duration::ZERO);

    let mut victim_client = victim_server.client().await;
    let mut req = shared_sub("jobs", "workers", &cfg);
    req.max_in_flight = 50;
    let mut victim = subscribe(&mut victim_client, req.clone()).await;
    let held: BTreeSet<i64> = next_offsets(&mut victim, 50).await.into_iter().collect();

    let mut survivor = subscribe(&mut client, req).await;
    let mut first = BTreeSet::new();
    for _ in 0..50 {
        let r = next_record(&mut survivor).await;
        assert_eq!(r.delivery_attempt, 1);
        first.insert(r.offset);
    }
    assert!(
        first.is_disjoint(&held),
        "nothing handed to both before the deadline"
    );
    let mine: Vec<i64> = first.iter().copied().collect();
    ack_each(&mut client, "jobs", "workers", &mine).await;

    victim_server.signal(Signal::SIGKILL);
    let mut again = BTreeSet::new();
    for _ in 0..50 {
        let r = next_record(&mut survivor).await;
        assert_eq!(r.delivery_attempt, 2, "offset {} is a redelivery", r.offset);
        again.insert(r.offset);
    }
    assert_eq!(again, held, "the survivor got exactly what the victim held");
    let redone: Vec<i64> = again.iter().copied().collect();
    ack_each(&mut client, "jobs", "workers", &redone).await;
    let info = consumer_info(&mut client, "jobs", "workers").await;
    assert_eq!(
        (info.committed_offset, info.in_flight, info.redelivered),
        (100, 0, 50)
    );
}
