//! `SubscribeRequest.last_seen`: a subscriber says which record it handled last, and
//! the server refuses with LOG_DIVERGED when the topic no longer holds it (issue 16,
//! G2). Here the log is shortened or changed by hand; `failover::*` makes it happen.

use crate::helpers::*;
use tonic::Code;
use tonic_types::StatusExt;

fn seen(offset: i64, event_id: &str) -> Option<LastSeen> {
    Some(LastSeen {
        offset,
        event_id: event_id.to_owned(),
    })
}

/// Subscribes with `last_seen`; the status it failed with.
async fn refused(
    client: &mut Client<tonic::transport::Channel>,
    last_seen: Option<LastSeen>,
) -> tonic::Status {
    let req = SubscribeRequest {
        last_seen,
        ..sub_req("t", "")
    };
    match client.subscribe(req).await {
        Ok(_) => panic!("the subscribe was accepted"),
        Err(status) => status,
    }
}

#[tokio::test]
async fn a_subscriber_whose_last_seen_record_is_still_there_is_served() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let results = publish(&mut client, "t", events("e", 3)).await;
    let req = SubscribeRequest {
        last_seen: seen(3, &results[2].id),
        ..sub_req("t", "")
    };
    let mut stream = subscribe(&mut client, req).await;
    assert_eq!(next_offsets(&mut stream, 3).await, [1, 2, 3]);
}

/// Another event at the offset, or an offset past the head: FAILED_PRECONDITION with
/// reason LOG_DIVERGED naming the topic, the offset and the head.
#[tokio::test]
async fn a_last_seen_record_the_topic_no_longer_holds_is_log_diverged() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    publish(&mut client, "t", events("e", 3)).await;
    let other = uuid::Uuid::new_v4().to_string();

    for (offset, diverged_at) in [(2, "2"), (5, "4")] {
        let status = refused(&mut client, seen(offset, &other)).await;
        assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
        assert!(
            status.message().contains("diverged"),
            "{}",
            status.message()
        );
        let info = status.get_details_error_info().expect("an ErrorInfo");
        assert_eq!(info.reason, "LOG_DIVERGED");
        assert_eq!(info.metadata["topic"], "t");
        assert_eq!(info.metadata["offset"], diverged_at, "seen at {offset}");
        assert_eq!(info.metadata["head_offset"], "3");
        assert_eq!(info.metadata["last_seen_event_id"], other);
    }
}

#[tokio::test]
async fn a_malformed_last_seen_is_invalid_argument_naming_the_field() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    publish(&mut client, "t", events("e", 1)).await;
    let id = uuid::Uuid::new_v4().to_string();
    for (last_seen, field) in [
        (seen(0, &id), "last_seen.offset"),
        (seen(1, "nope"), "last_seen.event_id"),
    ] {
        let status = refused(&mut client, last_seen).await;
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        let violations = status
            .get_details_bad_request()
            .expect("a BadRequest")
            .field_violations;
        assert_eq!(violations[0].field, field);
    }
}
