//! Bad input to the work-queue RPCs gets a status naming the field or the rule, with a
//! stable reason, and changes nothing.

use std::time::Duration;

use tonic::Code;
use tonic_types::StatusExt;

use super::{config, proto_duration, shared_sub};
use crate::helpers::*;

fn reason(status: &tonic::Status) -> String {
    status
        .get_details_error_info()
        .map(|i| i.reason)
        .unwrap_or_default()
}

/// Settings out of range are INVALID_ARGUMENT naming the field and its range, and no
/// consumer is created.
#[tokio::test]
async fn out_of_range_settings_are_refused_naming_the_field() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let mut cfg = config(
        DeliveryMode::Shared,
        Duration::from_secs(30),
        Duration::ZERO,
    );
    cfg.ack_deadline = Some(proto_duration(Duration::from_millis(10)));
    let err = client
        .subscribe(shared_sub("t", "c", &cfg))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message()
            .starts_with("config.ack_deadline: must be between 1s and 1h"),
        "{}",
        err.message()
    );
    let consumers: (i64,) = sqlx::query_as("SELECT count(*) FROM consumers")
        .fetch_one(&server.sql().await)
        .await
        .unwrap();
    assert_eq!(consumers.0, 0);
}

/// Subscribing to a consumer with another mode is FAILED_PRECONDITION naming both
/// modes; a cumulative ack on a shared consumer, ExtendAckDeadline on an exclusive one and a type
/// filter on a shared one are FAILED_PRECONDITION with their reasons; an unknown
/// consumer is NOT_FOUND; offset and offsets together are INVALID_ARGUMENT.
/// (ExtendAckDeadline stands for the RPCs of shared consumers: exclusive ones have no
/// deadline.)
#[tokio::test]
async fn rpcs_that_do_not_fit_the_mode_say_so() {
    let server = quick_server().await;
    let mut client = server.client().await;
    publish(&mut client, "t", events("e", 3)).await;
    let shared = config(
        DeliveryMode::Shared,
        Duration::from_secs(30),
        Duration::ZERO,
    );
    let _stream = subscribe(&mut client, shared_sub("t", "workers", &shared)).await;
    let _exclusive = subscribe(&mut client, sub_req("t", "audit")).await;

    let exclusive_cfg = ConsumerConfig {
        mode: DeliveryMode::Exclusive as i32,
        ..Default::default()
    };
    let err = client
        .subscribe(shared_sub("t", "workers", &exclusive_cfg))
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::FailedPrecondition, "MODE_MISMATCH")
    );
    assert!(
        err.message().contains("is shared") && err.message().contains("as exclusive"),
        "{}",
        err.message()
    );

    let cumulative = AckRequest {
        topic: "t".into(),
        consumer: "workers".into(),
        offset: 2,
        ..Default::default()
    };
    let err = client.ack(cumulative).await.unwrap_err();
    assert_eq!(reason(&err), "CUMULATIVE_ACK_ON_SHARED");

    let extend_exclusive = ExtendAckDeadlineRequest {
        topic: "t".into(),
        consumer: "audit".into(),
        offsets: vec![1],
        deadline: None,
    };
    let err = client
        .extend_ack_deadline(extend_exclusive)
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::FailedPrecondition, "NOT_SHARED")
    );

    let nack_unknown = NackRequest {
        topic: "t".into(),
        consumer: "nobody".into(),
        offsets: vec![1],
        ..Default::default()
    };
    let err = client.nack(nack_unknown).await.unwrap_err();
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::NotFound, "CONSUMER_NOT_FOUND")
    );

    let mut filtered = sub_req("t", "workers");
    filtered.types = vec!["e".into()];
    let err = client.subscribe(filtered).await.unwrap_err();
    assert_eq!(reason(&err), "TYPES_ON_SHARED");

    let both = AckRequest {
        topic: "t".into(),
        consumer: "workers".into(),
        offset: 1,
        offsets: vec![1],
        ..Default::default()
    };
    let err = client.ack(both).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().starts_with("offsets:"), "{}", err.message());
}

/// UpdateConsumer changes settings and returns the consumer; changing the mode while
/// records are in flight is FAILED_PRECONDITION and changes nothing.
#[tokio::test]
async fn update_consumer_changes_settings_but_not_the_mode_under_records_in_flight() {
    let server = quick_server().await;
    let mut client = server.client().await;
    let shared = config(
        DeliveryMode::Shared,
        Duration::from_secs(30),
        Duration::ZERO,
    );
    let mut stream = subscribe(&mut client, shared_sub("t", "workers", &shared)).await;
    publish(&mut client, "t", events("e", 1)).await;
    next_record(&mut stream).await;

    let mut longer = shared.clone();
    longer.ack_deadline = Some(proto_duration(Duration::from_secs(120)));
    longer.max_deliveries = 5;
    let update = |config| UpdateConsumerRequest {
        topic: "t".into(),
        consumer: "workers".into(),
        config: Some(config),
    };
    let info = client
        .update_consumer(update(longer))
        .await
        .unwrap()
        .into_inner();
    let stored = info.config.unwrap();
    assert_eq!(stored.ack_deadline.unwrap().seconds, 120);
    assert_eq!(stored.max_deliveries, 5);
    assert_eq!(info.in_flight, 1);

    let to_exclusive = ConsumerConfig {
        mode: DeliveryMode::Exclusive as i32,
        ..Default::default()
    };
    let err = client
        .update_consumer(update(to_exclusive))
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::FailedPrecondition, "RECORDS_IN_FLIGHT")
    );
}
