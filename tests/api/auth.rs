//! Bearer-token authentication and per-topic authorisation.

use crate::helpers::*;
use tonic::Code;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

const AUTH_FILE: &str = r#"
[[token]]
name = "lesson-service"
sha256 = "HASH_PUBLISHER"
publish = ["lessons.*"]

[[token]]
name = "search-indexer"
sha256 = "HASH_READER"
subscribe = ["lessons.*"]

[[token]]
name = "ops"
sha256 = "HASH_ADMIN"
admin = true
"#;

fn hashed(token: &str) -> String {
    hex::encode(pulsebus::auth::hash_token(token))
}

async fn secured() -> (TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.toml");
    let file = AUTH_FILE
        .replace("HASH_PUBLISHER", &hashed("pub-token"))
        .replace("HASH_READER", &hashed("read-token"))
        .replace("HASH_ADMIN", &hashed("admin-token"));
    std::fs::write(&path, file).unwrap();
    let server = TestServer::start_with(move |c| c.auth_file = Some(path)).await;
    (server, dir)
}

/// A request carrying `token` as a bearer token.
fn with_token<T>(message: T, token: Option<&str>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(token) = token {
        let value: MetadataValue<_> = format!("Bearer {token}").parse().unwrap();
        request.metadata_mut().insert("authorization", value);
    }
    request
}

async fn publish_as(
    client: &mut Client<Channel>,
    token: Option<&str>,
    topic: &str,
) -> Result<(), tonic::Status> {
    let req = PublishRequest {
        topic: topic.into(),
        events: events("x", 1),
    };
    client.publish(with_token(req, token)).await.map(|_| ())
}

/// No token or an unknown one: UNAUTHENTICATED; nothing is stored.
#[tokio::test]
async fn calls_without_a_valid_token_are_unauthenticated() {
    let (server, _dir) = secured().await;
    let mut client = server.client().await;

    assert_eq!(
        publish_as(&mut client, None, "lessons.math")
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );
    assert_eq!(
        publish_as(&mut client, Some("guess"), "lessons.math")
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );
    let err = client
        .list_topics(with_token(ListTopicsRequest::default(), None))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&server.sql().await)
        .await
        .unwrap();
    assert_eq!(count, 0);
}

/// Each token may do only what its patterns allow: PERMISSION_DENIED names who, what and where.
#[tokio::test]
async fn tokens_may_only_do_what_their_patterns_allow() {
    let (server, _dir) = secured().await;
    let mut client = server.client().await;

    publish_as(&mut client, Some("pub-token"), "lessons.math")
        .await
        .unwrap();
    let err = publish_as(&mut client, Some("pub-token"), "payments")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(
        err.message(),
        "'lesson-service' may not publish topic 'payments'"
    );
    let err = publish_as(&mut client, Some("read-token"), "lessons.math")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);

    let sub = client
        .subscribe(with_token(
            sub_req("lessons.math", "indexer"),
            Some("read-token"),
        ))
        .await;
    let mut stream = sub.unwrap().into_inner();
    assert_eq!(next_record(&mut stream).await.offset, 1);
    let ack = AckRequest {
        topic: "lessons.math".into(),
        consumer: "indexer".into(),
        offset: 1,
        ..Default::default()
    };
    client
        .ack(with_token(ack.clone(), Some("read-token")))
        .await
        .unwrap();
    let err = client
        .ack(with_token(ack, Some("pub-token")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = client
        .subscribe(with_token(sub_req("lessons.math", ""), Some("pub-token")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
}

/// Deleting consumers takes admin; ListTopics shows each token only its topics.
#[tokio::test]
async fn deleting_consumers_takes_admin_and_list_topics_shows_each_token_only_its_topics() {
    let (server, _dir) = secured().await;
    let mut client = server.client().await;
    publish_as(&mut client, Some("admin-token"), "lessons.math")
        .await
        .unwrap();
    publish_as(&mut client, Some("admin-token"), "payments")
        .await
        .unwrap();
    let seek = SeekRequest {
        topic: "lessons.math".into(),
        consumer: "c".into(),
        start: Some(StartPosition {
            position: Some(start_position::Position::Latest(Default::default())),
        }),
    };
    client
        .seek(with_token(seek, Some("read-token")))
        .await
        .unwrap();

    let delete = || DeleteConsumerRequest {
        topic: "lessons.math".into(),
        consumer: "c".into(),
    };
    let err = client
        .delete_consumer(with_token(delete(), Some("read-token")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    client
        .delete_consumer(with_token(delete(), Some("admin-token")))
        .await
        .unwrap();

    let names = |reply: tonic::Response<ListTopicsResponse>| {
        reply
            .into_inner()
            .topics
            .into_iter()
            .map(|t| t.name)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(
            client
                .list_topics(with_token(ListTopicsRequest::default(), Some("read-token")))
                .await
                .unwrap()
        ),
        ["lessons.math"]
    );
    assert_eq!(
        names(
            client
                .list_topics(with_token(
                    ListTopicsRequest::default(),
                    Some("admin-token")
                ))
                .await
                .unwrap()
        ),
        ["lessons.math", "payments"]
    );
}

/// Health stays open without a token.
#[tokio::test]
async fn health_needs_no_token() {
    let (server, _dir) = secured().await;
    let mut health = HealthClient::new(server.channel().await);

    let reply = health
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await;

    assert!(reply.is_ok(), "{reply:?}");
}

/// Creating, changing and deleting topics needs admin; a reader of the topic may get it.
#[tokio::test]
async fn topic_administration_needs_admin_and_reading_a_topic_needs_access_to_it() {
    use pulsebus::proto::pulsebus::v1::{CreateTopicRequest, DeleteTopicRequest, GetTopicRequest};
    let (server, _dir) = secured().await;
    let mut client = server.client().await;
    let create = || CreateTopicRequest {
        name: "lessons.math".into(),
        config: None,
    };

    let denied = client
        .create_topic(with_token(create(), Some("pub-token")))
        .await;
    assert_eq!(denied.unwrap_err().code(), Code::PermissionDenied);
    client
        .create_topic(with_token(create(), Some("admin-token")))
        .await
        .unwrap();
    let get = GetTopicRequest {
        name: "lessons.math".into(),
    };
    let info = client.get_topic(with_token(get, Some("read-token"))).await;
    assert_eq!(info.unwrap().into_inner().name, "lessons.math");
    let other = GetTopicRequest {
        name: "payments".into(),
    };
    let hidden = client
        .get_topic(with_token(other, Some("read-token")))
        .await;
    assert_eq!(hidden.unwrap_err().code(), Code::PermissionDenied);
    let delete = DeleteTopicRequest {
        name: "lessons.math".into(),
        force: false,
    };
    let denied = client
        .delete_topic(with_token(delete, Some("read-token")))
        .await;
    assert_eq!(denied.unwrap_err().code(), Code::PermissionDenied);
}
