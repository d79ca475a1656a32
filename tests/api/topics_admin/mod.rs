//! The topic admin RPCs: CreateTopic, GetTopic, UpdateTopic, DeleteTopic, and topics
//! created on first use or refused (`--auto-create-topics`).

mod delete;
mod event_size;
mod removed_records;

use crate::helpers::*;
use pulsebus::proto::pulsebus::v1::{
    CreateTopicRequest, GetTopicRequest, TopicConfig, TopicInfo, UpdateTopicRequest,
};
use tonic::Code;
use tonic::transport::Channel;
use tonic_types::StatusExt;

/// A config with a retention age in seconds, a count and a size.
pub fn config(age_s: Option<i64>, events: Option<i64>, bytes: Option<u32>) -> TopicConfig {
    TopicConfig {
        retention_age: age_s.map(|seconds| prost_types::Duration { seconds, nanos: 0 }),
        retention_events: events,
        max_event_bytes: bytes,
    }
}

pub async fn get(client: &mut Client<Channel>, name: &str) -> Result<TopicInfo, tonic::Status> {
    let req = GetTopicRequest { name: name.into() };
    client.get_topic(req).await.map(|r| r.into_inner())
}

pub fn reason(status: &tonic::Status) -> String {
    status
        .get_details_error_info()
        .expect("an ErrorInfo")
        .reason
}

/// CreateTopic stores the config, GetTopic shows it with the offsets, and creating it
/// again is ALREADY_EXISTS (TOPIC_EXISTS) without touching the first one.
#[tokio::test]
async fn a_created_topic_reports_its_config_and_cannot_be_created_twice() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let req = CreateTopicRequest {
        name: "grades".into(),
        config: Some(config(Some(3600), Some(1000), Some(4096))),
    };
    let created = client.create_topic(req.clone()).await.unwrap().into_inner();
    assert_eq!(
        created.config,
        Some(config(Some(3600), Some(1000), Some(4096)))
    );
    assert_eq!(
        (
            created.head_offset,
            created.first_offset,
            created.event_count
        ),
        (0, 1, 0)
    );

    let again = CreateTopicRequest {
        config: Some(config(None, Some(5), None)),
        ..req
    };
    let err = client.create_topic(again).await.unwrap_err();
    assert_eq!(
        (err.code(), reason(&err)),
        (Code::AlreadyExists, "TOPIC_EXISTS".into())
    );

    publish(&mut client, "grades", events("grade.given", 3)).await;
    let info = get(&mut client, "grades").await.unwrap();
    assert_eq!(
        info.config, created.config,
        "the second create changed nothing"
    );
    assert_eq!(
        (info.head_offset, info.first_offset, info.event_count),
        (3, 1, 3)
    );
}

/// UpdateTopic changes what is set, keeps what is unset and removes a limit set to 0;
/// a bad value is INVALID_ARGUMENT naming the field and changes nothing.
#[tokio::test]
async fn update_changes_set_fields_only_and_refuses_bad_values_whole() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let create = CreateTopicRequest {
        name: "grades".into(),
        config: Some(config(Some(3600), Some(1000), None)),
    };
    client.create_topic(create).await.unwrap();
    let update = |c| UpdateTopicRequest {
        name: "grades".into(),
        config: Some(c),
    };

    let updated = client
        .update_topic(update(config(None, Some(50), Some(2048))))
        .await;
    let updated = updated.unwrap().into_inner();
    assert_eq!(
        updated.config,
        Some(config(Some(3600), Some(50), Some(2048)))
    );

    let bad = client
        .update_topic(update(config(Some(0), Some(-1), None)))
        .await;
    let bad = bad.unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    let violations = bad
        .get_details_bad_request()
        .expect("BadRequest")
        .field_violations;
    assert_eq!(violations[0].field, "config.retention_events");
    let info = get(&mut client, "grades").await.unwrap();
    assert_eq!(
        info.config, updated.config,
        "nothing of the bad update was applied"
    );

    let cleared = client
        .update_topic(update(config(Some(0), None, Some(0))))
        .await;
    let cleared = cleared.unwrap().into_inner();
    assert_eq!(cleared.config, Some(config(None, Some(50), None)));
}

/// Unknown and malformed names: GetTopic is NOT_FOUND (TOPIC_NOT_FOUND), a bad name
/// INVALID_ARGUMENT naming `name`; UpdateTopic of an unknown topic creates nothing.
#[tokio::test]
async fn unknown_topics_are_not_found_and_bad_names_invalid() {
    let server = TestServer::start().await;
    let mut client = server.client().await;

    let err = get(&mut client, "nothing").await.unwrap_err();
    assert_eq!(
        (err.code(), reason(&err)),
        (Code::NotFound, "TOPIC_NOT_FOUND".into())
    );
    let err = get(&mut client, "no spaces").await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let update = UpdateTopicRequest {
        name: "nothing".into(),
        config: Some(config(None, Some(5), None)),
    };
    let err = client.update_topic(update).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(
        get(&mut client, "nothing").await.unwrap_err().code(),
        Code::NotFound
    );
}

/// With `--auto-create-topics false`, Publish and Subscribe to a topic nobody created
/// are NOT_FOUND and create nothing; after CreateTopic both work.
#[tokio::test]
async fn without_auto_creation_only_created_topics_take_events() {
    let server = TestServer::start_with(|c| c.topics.auto_create_topics = false).await;
    let mut client = server.client().await;

    let req = PublishRequest {
        topic: "grades".into(),
        events: events("grade.given", 1),
    };
    let err = client.publish(req.clone()).await.unwrap_err();
    assert_eq!(
        (err.code(), reason(&err)),
        (Code::NotFound, "TOPIC_NOT_FOUND".into())
    );
    let err = client
        .subscribe(sub_req("grades", "audit"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(
        get(&mut client, "grades").await.unwrap_err().code(),
        Code::NotFound
    );

    let create = CreateTopicRequest {
        name: "grades".into(),
        config: None,
    };
    client.create_topic(create).await.unwrap();
    let published = client.publish(req).await.unwrap().into_inner();
    assert_eq!(published.results[0].offset, 1);
    let mut stream = subscribe(&mut client, sub_req("grades", "audit")).await;
    assert_eq!(next_record(&mut stream).await.offset, 1);
}

/// Topics created on first use take the server's default config.
#[tokio::test]
async fn auto_created_topics_take_the_default_config() {
    let server = TestServer::start_with(|c| {
        c.topics.default_retention_age = Some(std::time::Duration::from_secs(86_400));
        c.topics.default_retention_events = Some(10_000);
    })
    .await;
    let mut client = server.client().await;
    publish(&mut client, "grades", events("grade.given", 1)).await;
    let info = get(&mut client, "grades").await.unwrap();
    assert_eq!(info.config, Some(config(Some(86_400), Some(10_000), None)));
}
