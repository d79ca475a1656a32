//! Where a delivery's time goes: trace events of target `pulsebus::stages`, one per
//! stage a record passes on its way from a Publish to a subscriber, each with the
//! wall-clock time (`at_ns`, nanoseconds since the Unix epoch) so that a client on the
//! same machine can line them up with its own send and receipt times.
//!
//! They are off unless the log filter enables them
//! (`RUST_LOG=info,pulsebus::stages=trace`); a disabled event costs one cached level
//! check. `pulsebus-bench fanout --fanout-stages` turns them on and reads them back.
//!
//! The stages, in order:
//! - `flush` (a span): the append grouper started writing a group (`flush_ns`);
//! - `committed`: its statement or transaction committed offsets `from..=to`;
//! - `queued`: a subscription put the record into its stream's channel;
//! - `taken`: the gRPC stream took it from the channel to encode and send it.

use std::time::{SystemTime, UNIX_EPOCH};

use tracing::Span;

/// The target every stage event and span has.
pub const TARGET: &str = "pulsebus::stages";

/// Nanoseconds since the Unix epoch, now.
fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// The span of one grouper flush; its `committed` events carry its start.
pub fn flush_span() -> Span {
    tracing::trace_span!(target: TARGET, "flush", flush_ns = now_ns())
}

/// `topic`'s offsets `from..=to` committed.
pub fn committed(topic: &str, from: i64, to: i64) {
    tracing::trace!(target: TARGET, stage = "committed", topic, from, to, at_ns = now_ns());
}

/// A record went into a subscription's channel.
pub fn queued(topic: &str, offset: i64) {
    tracing::trace!(target: TARGET, stage = "queued", topic, offset, at_ns = now_ns());
}

/// The gRPC stream took a record from the channel.
pub fn taken(topic: &str, offset: i64) {
    tracing::trace!(target: TARGET, stage = "taken", topic, offset, at_ns = now_ns());
}
