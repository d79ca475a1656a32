//! Telemetry: logs and spans through `tracing`, the W3C trace context that callers
//! send (continued into the server's spans and stored with their events), and, with
//! the `otlp` cargo feature, span export over OTLP.
//!
//! - `trace_context.rs`: `traceparent` / `tracestate`, checked and stamped on events;
//! - `spans.rs`: the spans the server opens, with OpenTelemetry's messaging attributes;
//! - `stages.rs`: trace events timing each stage of a delivery (off by default);
//! - `export.rs` (feature `otlp`) or `no_export.rs`: where spans go besides the log.

#[cfg(feature = "otlp")]
#[path = "export.rs"]
mod export;
#[cfg(not(feature = "otlp"))]
#[path = "no_export.rs"]
mod export;
mod spans;
pub mod stages;
mod trace_context;

pub use export::ExportError;
pub use spans::publish_span;
pub use trace_context::{MAX_TRACESTATE_LEN, TRACEPARENT, TRACESTATE, TraceContext};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy)]
pub struct LogStyle {
    /// One JSON object per line instead of text.
    pub json: bool,
    /// ANSI colours (text only).
    pub colour: bool,
}

/// Keeps span export running; dropping it sends what is still buffered.
#[must_use = "dropping the guard stops span export"]
pub struct Telemetry {
    _export: export::Guard,
}

/// Installs the global subscriber: the RUST_LOG filter (default `info`), the log lines,
/// and span export when it is built in and configured. An export that cannot start
/// is reported in the log and the process runs on without it.
pub fn init(style: LogStyle) -> Telemetry {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let text = (!style.json).then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(style.colour)
    });
    let json = style.json.then(|| {
        tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
    });
    let (spans, guard) = match export::from_env() {
        Ok(found) => found,
        Err(error) => (None, export::Guard::failed(error)),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(text)
        .with(json)
        .with(spans)
        .init();
    guard.report();
    Telemetry { _export: guard }
}
