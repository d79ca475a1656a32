//! Span export over OTLP, against an in-process OTLP/gRPC receiver (feature `otlp`).

use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_stream::wrappers::TcpListenerStream;

use super::{TRACEPARENT, traced};
use crate::helpers::process::{ServerProcess, serve_command};
use crate::helpers::*;

/// Every span the receiver was sent, and a bell rung on each export.
#[derive(Default, Clone)]
struct Receiver {
    spans: Arc<Mutex<Vec<Span>>>,
    arrived: Arc<Notify>,
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let spans = request
            .into_inner()
            .resource_spans
            .into_iter()
            .flat_map(|r| r.scope_spans)
            .flat_map(|s| s.spans);
        self.spans.lock().unwrap().extend(spans);
        self.arrived.notify_waiters();
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

impl Receiver {
    /// Serves OTLP/gRPC on an OS-assigned loopback port; returns its endpoint URL.
    async fn start(&self) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let service = TraceServiceServer::new(self.clone());
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(TcpListenerStream::new(listener)),
        );
        format!("http://{addr}")
    }

    /// Waits until a span named `name` has arrived and returns it.
    async fn span_named(&self, name: &str) -> Span {
        let wait = async {
            loop {
                let arrived = self.arrived.notified();
                if let Some(span) = self.spans.lock().unwrap().iter().find(|s| s.name == name) {
                    return span.clone();
                }
                arrived.await;
            }
        };
        tokio::time::timeout(WAIT, wait)
            .await
            .unwrap_or_else(|_| panic!("no span {name:?} was exported in time"))
    }
}

fn string_attribute(span: &Span, key: &str) -> Option<String> {
    let value = span
        .attributes
        .iter()
        .find(|kv| kv.key == key)?
        .value
        .as_ref()?;
    match value.value.as_ref()? {
        Value::StringValue(s) => Some(s.clone()),
        other => Some(format!("{other:?}")),
    }
}

/// A publish with a traceparent produces a server span in the producer's trace, as
/// the child of the producer's span, with the messaging attributes.
#[tokio::test]
async fn a_publish_is_exported_as_a_span_in_the_producers_trace() {
    let receiver = Receiver::default();
    let endpoint = receiver.start().await;
    let database = fresh_database().await;
    let mut cmd = serve_command(&["--database-url", &database]);
    cmd.env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)
        .env("OTEL_BSP_SCHEDULE_DELAY", "50");
    let server = ServerProcess::start(cmd).await;

    let events = vec![
        event("lesson.published", "{}"),
        event("lesson.published", "{}"),
    ];
    let request = traced("lessons", events, &[("traceparent", TRACEPARENT)]);
    server.client().await.publish(request).await.unwrap();

    let span = receiver.span_named("publish lessons").await;
    assert_eq!(
        hex::encode(&span.trace_id),
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    assert_eq!(hex::encode(&span.parent_span_id), "00f067aa0ba902b7");
    assert_eq!(span.kind, SpanKind::Server as i32);
    let attr = |key| string_attribute(&span, key);
    assert_eq!(attr("messaging.system").as_deref(), Some("pulsebus"));
    assert_eq!(attr("messaging.operation.type").as_deref(), Some("send"));
    assert_eq!(
        attr("messaging.destination.name").as_deref(),
        Some("lessons")
    );
    assert_eq!(attr("rpc.method").as_deref(), Some("Publish"));
    let count = span
        .attributes
        .iter()
        .find(|kv| kv.key == "messaging.batch.message_count")
        .and_then(|kv| kv.value.as_ref()?.value.clone());
    assert_eq!(count, Some(Value::IntValue(2)));
}
