//! Errors carry google.rpc details a client can act on without parsing messages.

use crate::helpers::*;
use tonic::Code;
use tonic_types::StatusExt;

/// An unknown consumer is NOT_FOUND with ErrorInfo reason CONSUMER_NOT_FOUND naming
/// the topic and consumer; an unknown topic is TOPIC_NOT_FOUND; an ack past the head is
/// FAILED_PRECONDITION with reason ACK_PAST_HEAD.
#[tokio::test]
async fn not_found_and_failed_precondition_carry_a_stable_reason() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    publish(&mut client, "t", events("e", 2)).await;
    let ack_req = |topic: &str, offset| AckRequest {
        topic: topic.into(),
        consumer: "nobody".into(),
        offset,
        seek_epoch: None,
        offsets: vec![],
    };

    let err = client.ack(ack_req("t", 1)).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let info = err.get_details_error_info().expect("an ErrorInfo");
    assert_eq!(info.reason, "CONSUMER_NOT_FOUND");
    assert_eq!(info.domain, "pulsebus.v1");
    assert_eq!(
        (
            info.metadata["topic"].as_str(),
            info.metadata["consumer"].as_str()
        ),
        ("t", "nobody")
    );

    let err = client.ack(ack_req("no-such-topic", 1)).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(
        err.get_details_error_info().unwrap().reason,
        "TOPIC_NOT_FOUND"
    );

    let err = client.ack(ack_req("t", 9)).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(
        err.get_details_error_info().unwrap().reason,
        "ACK_PAST_HEAD"
    );
}

/// A publish with a bad field is INVALID_ARGUMENT with a BadRequest naming the field
/// path and the rule; the message text is unchanged.
#[tokio::test]
async fn invalid_arguments_carry_the_field_and_the_rule() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let mut bad = event("e", "{}");
    bad.id = "abc".into();
    let req = PublishRequest {
        topic: "t".into(),
        events: vec![event("e", "{}"), bad],
    };
    let err = client.publish(req).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let violation = &err.get_details_bad_request().unwrap().field_violations[0];
    assert_eq!(violation.field, "events[1].id");
    assert_eq!(
        err.message(),
        format!("{}: {}", violation.field, violation.description)
    );
}
