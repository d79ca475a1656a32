//! OTLP span export (feature `otlp`), configured the standard way: spans go over
//! OTLP/gRPC to `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`),
//! batched by the SDK (`OTEL_BSP_*` tune the batches); `OTEL_SERVICE_NAME` defaults to
//! `pulsebus`. Unset endpoint: nothing is exported.

use std::str::FromStr;

use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState, TracerProvider,
};
use opentelemetry_otlp::{SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use tracing_opentelemetry::{OpenTelemetryLayer, OpenTelemetrySpanExt};
use tracing_subscriber::registry::LookupSpan;

use super::TraceContext;

/// The environment variables that turn export on.
const ENDPOINT_VARS: [&str; 2] = [
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
];

/// Why span export could not start.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The exporter rejected its configuration (a malformed endpoint, say).
    #[error("cannot export spans over OTLP: {0}")]
    Build(#[from] opentelemetry_otlp::ExporterBuildError),
}

/// The tracer provider; dropping it flushes and stops the batch exporter.
pub struct Guard {
    provider: Option<SdkTracerProvider>,
    failure: Option<ExportError>,
}

impl Guard {
    pub(super) fn failed(error: ExportError) -> Self {
        Self {
            provider: None,
            failure: Some(error),
        }
    }

    /// Logs whether spans are exported (once the subscriber is installed).
    pub(super) fn report(&self) {
        match (&self.provider, &self.failure) {
            (_, Some(error)) => tracing::error!(%error, "spans are not exported"),
            (Some(_), None) => tracing::info!("exporting spans over OTLP"),
            (None, None) => {}
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(error) = provider.shutdown()
        {
            eprintln!("pulsebus: flushing spans over OTLP failed: {error}");
        }
    }
}

/// The export layer when an endpoint is configured.
pub(super) fn from_env<S>() -> Result<(Option<OpenTelemetryLayer<S, SdkTracer>>, Guard), ExportError>
where
    S: tracing::Subscriber + for<'span> LookupSpan<'span>,
{
    if !ENDPOINT_VARS.iter().any(|v| std::env::var_os(v).is_some()) {
        let off = Guard {
            provider: None,
            failure: None,
        };
        return Ok((None, off));
    }
    // The endpoint, headers and timeout come from the OTEL_EXPORTER_OTLP_* variables.
    let exporter = SpanExporter::builder()
        .with_tonic()
        .with_protocol(opentelemetry_otlp::Protocol::Grpc)
        .build()?;
    let service = std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| "pulsebus".into());
    let provider = SdkTracerProvider::builder()
        .with_resource(Resource::builder().with_service_name(service).build())
        .with_batch_exporter(exporter)
        .build();
    let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("pulsebus"));
    let guard = Guard {
        provider: Some(provider),
        failure: None,
    };
    Ok((Some(layer), guard))
}

/// Makes the caller's span the parent of `span`, so the server's work shows up inside
/// the caller's trace.
pub(super) fn continue_trace(span: &tracing::Span, remote: &TraceContext) {
    let (Ok(trace_id), Ok(span_id)) = (
        TraceId::from_hex(remote.trace_id()),
        SpanId::from_hex(remote.parent_id()),
    ) else {
        return;
    };
    let state = remote
        .tracestate()
        .and_then(|s| TraceState::from_str(s).ok())
        .unwrap_or_default();
    let flags = TraceFlags::new(remote.flags());
    let parent = SpanContext::new(trace_id, span_id, flags, true, state);
    let context = opentelemetry::Context::new().with_remote_span_context(parent);
    let _ = span.set_parent(context);
}
