//! The spans the server opens for its work, named and attributed after OpenTelemetry's
//! messaging and RPC semantic conventions, so a tracing backend files them as a
//! message system's operations. Producers' trace context becomes their parent; a
//! consumer links its processing span to the producer's through the `traceparent`
//! attribute of the records it gets (links, not parents: one trace per publish).

use tracing::Span;

use super::TraceContext;

/// The span of one Publish call for `topic`, carrying `events` events; a child of the
/// caller's span when it sent a trace context.
pub fn publish_span(topic: &str, events: usize, remote: Option<&TraceContext>) -> Span {
    // An integer attribute (a usize would be exported as text).
    let events = i64::try_from(events).unwrap_or(i64::MAX);
    let span = tracing::info_span!(
        "publish",
        "otel.name" = %format_args!("publish {topic}"),
        "otel.kind" = "server",
        "messaging.system" = "pulsebus",
        "messaging.operation.type" = "send",
        "messaging.operation.name" = "publish",
        "messaging.destination.name" = %topic,
        "messaging.batch.message_count" = events,
        "rpc.system" = "grpc",
        "rpc.service" = "pulsebus.v1.EventBus",
        "rpc.method" = "Publish",
        "trace_id" = remote.map(TraceContext::trace_id),
    );
    if let Some(remote) = remote {
        super::export::continue_trace(&span, remote);
    }
    span
}
