//! PostgreSQL stops and comes back: requests fail fast with UNAVAILABLE, health turns
//! NOT_SERVING, and the server recovers without a restart, LISTEN connection included.

use std::time::{Duration, Instant};

use crate::helpers::*;
use pulsebus::embedded_pg::cluster_url;
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;

/// Stop PostgreSQL mid-stream: Publish fails with UNAVAILABLE (it does not hang; how
/// long it took, against the 1 s database timeout, is printed), health turns
/// NOT_SERVING, the open stream ends with UNAVAILABLE.
/// Start it again: health returns to SERVING without restarting pulsebus, the consumer
/// resumes after its ack, and a new event reaches it through the LISTEN connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_rides_out_a_postgres_restart() {
    // A cluster of the test's own, so stopping it disturbs no other test.
    let dir = DataDir::new();
    let pg = dir.cluster().with_setting("fsync", "off");
    let cluster = pg.clone();
    let port = tokio::task::spawn_blocking(move || cluster.ensure_running())
        .await
        .unwrap()
        .expect("the test's own cluster starts");
    pulsebus::db::create_database(&cluster_url(port, "postgres"), "outage")
        .await
        .unwrap();
    let server = TestServer::start_on(cluster_url(port, "outage"), |c| {
        c.database.db_timeout = Duration::from_secs(1);
        quick(c);
    })
    .await;
    let mut client = server.client().await;
    publish(&mut client, "t", events("before", 2)).await;
    let mut stream = subscribe(&mut client, sub_req("t", "c")).await;
    assert_eq!(next_offsets(&mut stream, 2).await, [1, 2]);
    ack(&mut client, "t", "c", 2).await;

    let cluster = pg.clone();
    tokio::task::spawn_blocking(move || cluster.stop())
        .await
        .unwrap()
        .unwrap();
    let started = Instant::now();
    let during = client.publish(PublishRequest {
        topic: "t".into(),
        events: events("during", 1),
    });
    let err = tokio::time::timeout(WAIT, during)
        .await
        .expect("publish answers while the database is down")
        .unwrap_err();
    let failed_after = started.elapsed();
    eprintln!("publish failed after {failed_after:?} while PostgreSQL was down (db timeout 1 s)");
    wait_for_health(&server, "", ServingStatus::NotServing).await;
    let ended = tokio::time::timeout(WAIT, async {
        loop {
            if let Err(status) = stream.message().await {
                return status;
            }
        }
    });
    let ended = ended
        .await
        .expect("the stream ends while the database is down");

    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert_eq!(ended.code(), Code::Unavailable, "{ended:?}");

    let cluster = pg.clone();
    let back = tokio::task::spawn_blocking(move || cluster.ensure_running())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back, port, "the cluster came back on its port");
    wait_for_health(&server, "", ServingStatus::Serving).await;
    let mut stream = subscribe(&mut client, sub_req("t", "c")).await;
    expect_heartbeat(&mut stream).await;
    publish(&mut client, "t", events("after", 1)).await;

    let record = next_record(&mut stream).await;
    assert_eq!(
        (record.offset, record.event.unwrap().r#type.as_str()),
        (3, "after")
    );
}
