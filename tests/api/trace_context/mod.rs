//! W3C trace context: a producer's `traceparent` / `tracestate` are stored with its
//! events (the CloudEvents distributed-tracing attributes) and delivered with them;
//! with the `otlp` feature, the server's publish span is exported as a child of the
//! producer's span.

#[cfg(feature = "otlp")]
mod otlp;

use crate::helpers::*;
use pulsebus::proto::pulsebus::v1::{Event, PublishRequest, Record};
use tonic::metadata::MetadataValue;

pub const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// A Publish request for `topic` carrying `metadata` (key, value) pairs.
pub fn traced(
    topic: &str,
    events: Vec<Event>,
    metadata: &[(&'static str, &str)],
) -> tonic::Request<PublishRequest> {
    let mut request = tonic::Request::new(PublishRequest {
        topic: topic.into(),
        events,
    });
    for (key, value) in metadata {
        request
            .metadata_mut()
            .insert(*key, MetadataValue::try_from(*value).unwrap());
    }
    request
}

fn attribute<'r>(record: &'r Record, key: &str) -> Option<&'r str> {
    record
        .event
        .as_ref()?
        .attributes
        .get(key)
        .map(String::as_str)
}

/// The trace context a producer sends in gRPC metadata is stored on every event of the
/// request that has none of its own, and a subscriber gets it with the record.
#[tokio::test]
async fn a_publishers_trace_context_is_stored_with_its_events_and_delivered_with_them() {
    let server = TestServer::start().await;
    let mut own = event("lesson.published", "{}");
    own.attributes.insert(
        "traceparent".into(),
        "00-11111111111111111111111111111111-2222222222222222-00".into(),
    );
    let events = vec![event("lesson.published", "{}"), own];
    let metadata = [
        ("traceparent", TRACEPARENT),
        ("tracestate", "congo=t61rcWkgMzE"),
    ];
    let mut client = server.client().await;
    client
        .publish(traced("lessons", events, &metadata))
        .await
        .unwrap();

    let records = read_all(&mut client, "lessons").await;
    assert_eq!(attribute(&records[0], "traceparent"), Some(TRACEPARENT));
    assert_eq!(
        attribute(&records[0], "tracestate"),
        Some("congo=t61rcWkgMzE")
    );
    assert_eq!(
        attribute(&records[1], "traceparent"),
        Some("00-11111111111111111111111111111111-2222222222222222-00"),
        "an event's own trace context is kept"
    );
    assert_eq!(attribute(&records[1], "tracestate"), None);

    let mut stream = subscribe(&mut client, sub_req("lessons", "audit")).await;
    let delivered = next_record(&mut stream).await;
    assert_eq!(attribute(&delivered, "traceparent"), Some(TRACEPARENT));
}

/// A malformed traceparent is ignored, as the W3C spec asks: the publish succeeds and
/// stores no trace context (rather than a broken one).
#[tokio::test]
async fn a_malformed_traceparent_is_ignored_and_the_publish_succeeds() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let metadata = [
        ("traceparent", "00-not-a-trace-01"),
        ("tracestate", "congo=t61rcWkgMzE"),
    ];
    let events = vec![event("lesson.published", "{}")];
    client
        .publish(traced("lessons", events, &metadata))
        .await
        .unwrap();

    let records = read_all(&mut client, "lessons").await;
    assert_eq!(attribute(&records[0], "traceparent"), None);
    assert_eq!(attribute(&records[0], "tracestate"), None);
}

/// The Rust client hands a consumer the producer's trace context to link its span to.
#[tokio::test]
async fn a_client_consumer_sees_the_producers_trace_context() {
    let server = TestServer::start().await;
    let metadata = [
        ("traceparent", TRACEPARENT),
        ("tracestate", "congo=t61rcWkgMzE"),
    ];
    let events = vec![event("lesson.published", "{}")];
    let mut raw = server.client().await;
    raw.publish(traced("lessons", events, &metadata))
        .await
        .unwrap();

    let client = crate::client::client_of(&server);
    let options = pulsebus_client::ConsumerOptions::new("lessons", "search");
    let mut consumer = client.consumer(options).unwrap();
    let message = crate::client::next_message(&mut consumer).await;
    assert_eq!(message.traceparent(), Some(TRACEPARENT));
    assert_eq!(message.tracestate(), Some("congo=t61rcWkgMzE"));
    message.ack().await.unwrap();
}
