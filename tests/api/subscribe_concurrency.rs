//! Ordered, gapless delivery while many publishers write through several servers.

use crate::helpers::*;
use tokio::task::JoinSet;

const PUBLISHERS: usize = 8;
const PER_PUBLISHER: usize = 500;
const TOTAL: i64 = (PUBLISHERS * PER_PUBLISHER) as i64;

async fn publish_from(servers: &[&TestServer], topic: &str) -> JoinSet<()> {
    let mut tasks = JoinSet::new();
    for p in 0..PUBLISHERS {
        let mut client = servers[p % servers.len()].client().await;
        let topic = topic.to_owned();
        tasks.spawn(async move {
            for _ in 0..PER_PUBLISHER {
                publish(&mut client, &topic, events("tick", 1)).await;
            }
        });
    }
    tasks
}

/// Receives `TOTAL` records and checks they are exactly 1..=TOTAL in order; a durable
/// consumer acks every 100 records so `max_in_flight` lets it continue.
async fn assert_receives_all_in_order(
    stream: &mut tonic::Streaming<SubscribeResponse>,
    acker: Option<(&TestServer, &str)>,
) {
    let mut client = match acker {
        Some((server, _)) => Some(server.client().await),
        None => None,
    };
    for expected in 1..=TOTAL {
        let record = next_record(stream).await;
        assert_eq!(record.offset, expected, "skipped or reordered");
        if let (Some(client), Some((_, consumer))) = (client.as_mut(), acker)
            && expected % 100 == 0
        {
            ack(client, &record.topic, consumer, expected).await;
        }
    }
}

/// 8 concurrent publishers x 500 events while a subscriber tails: it receives offsets
/// 1..4000 exactly once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tailing_subscriber_sees_every_offset_once_in_order_under_concurrent_publishers() {
    let server = TestServer::start().await;
    let mut stream = subscribe(&mut server.client().await, sub_req("busy", "")).await;

    let publishers = publish_from(&[&server], "busy").await;
    assert_receives_all_in_order(&mut stream, None).await;

    publishers.join_all().await;
}

/// Subscribers on server B receive events published through server A (and both) on
/// the same database: the cross-process doorbell is LISTEN/NOTIFY.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_subscriber_on_one_server_receives_what_others_publish() {
    let a = TestServer::start().await;
    let b = TestServer::start_on(a.database_url.clone(), |_| {}).await;
    let mut on_b = subscribe(&mut b.client().await, sub_req("shared", "")).await;
    let mut durable_on_a = subscribe(&mut a.client().await, sub_req("shared", "auditor")).await;

    let publishers = publish_from(&[&a, &b], "shared").await;
    assert_receives_all_in_order(&mut on_b, None).await;
    assert_receives_all_in_order(&mut durable_on_a, Some((&b, "auditor"))).await;

    publishers.join_all().await;
}

/// Publishing through A wakes a subscriber on B by notification alone: B's heartbeat
/// (its only re-check of the head) is 1 h, so nothing else can deliver the record
/// within the test.
#[tokio::test]
async fn notifications_wake_subscribers_on_other_servers() {
    let slow_recheck = |c: &mut pulsebus::config::ServeConfig| {
        c.subscriptions.heartbeat_interval = std::time::Duration::from_secs(3600)
    };
    let a = TestServer::start_with(slow_recheck).await;
    let b = TestServer::start_on(a.database_url.clone(), slow_recheck).await;
    let mut client_a = a.client().await;
    publish(&mut client_a, "bell", events("x", 1)).await;
    let mut on_b = subscribe(&mut b.client().await, sub_req("bell", "")).await;
    assert_eq!(next_record(&mut on_b).await.offset, 1);

    publish(&mut client_a, "bell", events("x", 1)).await;

    assert_eq!(next_record(&mut on_b).await.offset, 2);
}
