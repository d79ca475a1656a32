//! Built without the `otlp` feature: spans go to the log only.

use tracing_subscriber::layer::Identity;

/// Never happens without an exporter.
#[derive(Debug, thiserror::Error)]
#[error("unreachable")]
pub enum ExportError {}

/// Nothing to keep running.
pub struct Guard;

impl Guard {
    pub(super) fn failed(error: ExportError) -> Self {
        match error {}
    }

    /// Says once, when OTLP is configured, that this build cannot export.
    pub(super) fn report(&self) {
        if std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").is_some() {
            tracing::warn!(
                "OTEL_EXPORTER_OTLP_ENDPOINT is set, but this pulsebus was built without \
                 the `otlp` feature: spans are not exported (cargo build --features otlp)"
            );
        }
    }
}

/// No export layer.
pub(super) fn from_env() -> Result<(Option<Identity>, Guard), ExportError> {
    Ok((None, Guard))
}

/// Without export there is no parent to set: the trace id is still in the span's fields.
pub(super) fn continue_trace(_span: &tracing::Span, _remote: &super::TraceContext) {}
