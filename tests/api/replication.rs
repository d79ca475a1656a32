//! Acknowledged publishes and PostgreSQL replication (issue 16, G1): pulsebus says
//! whether its acks survive a failover, can refuse to serve when they would not, and
//! pins `synchronous_commit` so that no role or database default weakens its commits.

use std::time::Duration;

use crate::helpers::replicated::ReplicatedPair;
use crate::helpers::*;
use pulsebus::server::{SYNC_REPLICATION_HEALTH, Server};
use tonic_health::pb::health_check_response::ServingStatus;

/// The shared test cluster has no standby: the server serves, and says under its
/// replication health name that acks would not survive a failover.
#[tokio::test]
async fn a_server_without_a_synchronous_standby_reports_acks_as_not_durable_across_failover() {
    let server = TestServer::start().await;
    wait_for_health(&server, "", ServingStatus::Serving).await;
    wait_for_health(&server, SYNC_REPLICATION_HEALTH, ServingStatus::NotServing).await;
}

#[tokio::test]
async fn require_sync_replication_refuses_to_start_without_a_synchronous_standby() {
    let url = fresh_database().await;
    let mut config =
        pulsebus::config::ServeConfig::new("127.0.0.1:0".parse().unwrap(), url.clone());
    config.database.require_sync_replication = true;
    let err = Server::build(config, &url)
        .await
        .expect_err("no synchronous standby: the server must refuse");
    let message = err.to_string();
    assert!(message.contains("--require-sync-replication"), "{message}");
    assert!(message.contains("synchronous_standby_names"), "{message}");
}

/// The database's default is `synchronous_commit = local`, which would let a commit
/// return before the standby has it; pulsebus pins `on`, so with the standby stopped
/// a publish waits (its commit sits in `SyncRep`) and health says so, and once the
/// standby is back the publish answers OK and the event is on the standby.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_waits_for_a_stopped_synchronous_standby_even_when_the_default_is_local() {
    let pair = ReplicatedPair::start().await;
    let url = pair.create_database("replicated").await;
    let admin = pair.admin().await;
    sqlx::query("ALTER DATABASE replicated SET synchronous_commit = local")
        .execute(&admin)
        .await
        .unwrap();
    let server = TestServer::start_on(url, |c| c.database.require_sync_replication = true).await;
    wait_for_health(&server, SYNC_REPLICATION_HEALTH, ServingStatus::Serving).await;
    let mut client = server.client().await;
    publish(&mut client, "lessons", vec![event("before", "{}")]).await;

    pair.stop_standby().await;
    let waiting = spawn_publish(&client, "lessons", event("during", "{}"));
    wait_in_sync_rep(&admin, "replicated").await;
    assert!(
        !waiting.is_finished(),
        "no answer while the standby is away"
    );
    wait_for_health(&server, SYNC_REPLICATION_HEALTH, ServingStatus::NotServing).await;

    pair.start_standby().await;
    let reply = tokio::time::timeout(WAIT, waiting)
        .await
        .expect("the publish answers once the standby is back")
        .unwrap()
        .expect("the publish succeeds");
    let offset = reply.into_inner().results[0].offset;
    wait_for_health(&server, SYNC_REPLICATION_HEALTH, ServingStatus::Serving).await;
    let standby = pair.standby("replicated").await;
    let (on_standby, _) = settle(
        Duration::from_millis(20),
        || async {
            sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM events WHERE topic = 'lessons' AND \"offset\" = $1",
            )
            .bind(offset)
            .fetch_one(&standby)
            .await
            .unwrap()
        },
        |n| *n == 1,
    )
    .await;
    assert_eq!(on_standby, 1, "the acknowledged event is on the standby");
}

/// A commit whose wait for the standby is ended by `pg_terminate_backend` is committed
/// on the primary but maybe not on the standby: the publish must not answer OK (it gets
/// UNAVAILABLE), and a retry with the same id answers OK (as a duplicate, at the same
/// offset) only once the standby has it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_cut_off_while_waiting_for_the_standby_is_not_acknowledged_until_replicated() {
    let pair = ReplicatedPair::start().await;
    let url = pair.create_database("cutoff").await;
    let admin = pair.admin().await;
    let server = TestServer::start_on(url, |c| c.database.require_sync_replication = true).await;
    let client = server.client().await;
    let mut sent = event("cut-off", "{}");
    sent.id = uuid::Uuid::new_v4().to_string();
    pair.stop_standby().await;

    let first = spawn_publish(&client, "grades", sent.clone());
    let pid = wait_in_sync_rep(&admin, "cutoff").await;
    sqlx::query("SELECT pg_terminate_backend($1)")
        .bind(pid)
        .execute(&admin)
        .await
        .unwrap();
    let status = tokio::time::timeout(WAIT, first)
        .await
        .expect("the cut-off publish answers")
        .unwrap()
        .expect_err("a commit that may not be on the standby is not acknowledged");
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");

    let retry = spawn_publish(&client, "grades", sent.clone());
    wait_in_sync_rep(&admin, "cutoff").await;
    assert!(!retry.is_finished(), "the retry waits for the standby too");
    pair.start_standby().await;
    let results = tokio::time::timeout(WAIT, retry)
        .await
        .expect("the retry answers once the standby is back")
        .unwrap()
        .expect("the retry succeeds")
        .into_inner()
        .results;
    assert_eq!(results.len(), 1);
    assert!(
        results[0].duplicate,
        "the cut-off commit did happen on the primary"
    );
    let mut reader = server.client().await;
    let stored = read_all(&mut reader, "grades").await;
    assert_eq!(stored.len(), 1, "stored once");
    assert_eq!(stored[0].offset, results[0].offset);
}

fn spawn_publish(
    client: &Client<tonic::transport::Channel>,
    topic: &str,
    event: Event,
) -> tokio::task::JoinHandle<Result<tonic::Response<PublishResponse>, tonic::Status>> {
    let mut client = client.clone();
    let request = PublishRequest {
        topic: topic.to_owned(),
        events: vec![event],
    };
    tokio::spawn(async move { client.publish(request).await })
}

/// Waits until a session of database `db` waits for its synchronous standby; its pid.
async fn wait_in_sync_rep(admin: &sqlx::PgPool, db: &str) -> i32 {
    let (pid, _) = settle(
        Duration::from_millis(20),
        || async {
            sqlx::query_scalar::<_, i32>(
                "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND wait_event = 'SyncRep'",
            )
            .bind(db)
            .fetch_optional(admin)
            .await
            .unwrap()
        },
        Option::is_some,
    )
    .await;
    pid.expect("a commit waits in SyncRep")
}
