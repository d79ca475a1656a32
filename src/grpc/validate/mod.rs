//! Turning wire requests into the domain's types, rejecting what breaks a rule with an
//! error that names the field (`events[2].id`) and the rule, and changes nothing.
//! One file per side of the API, side by side: [`publish`](fn@publish) (events and
//! their payloads), [`subscribe`](fn@subscribe) and the consumer RPCs, [`read`](fn@read);
//! the rules they share (names, sizes, timestamps, type filters) are here.

mod known_types;
mod payload;
mod publish;
mod read;
mod subscribe;
#[cfg(test)]
mod tests;
mod topics;
mod work_queue;

pub use publish::publish;
pub use read::{DEFAULT_READ_LIMIT, MAX_READ_LIMIT, ReadParams, read};
pub use subscribe::{
    Acked, DEFAULT_MAX_IN_FLIGHT, MAX_BATCH_RECORDS, MAX_IN_FLIGHT, ack, batch_records,
    delete_consumer, last_seen, seek, subscribe,
};
pub use topics::{create_topic, delete_topic, topic_name, update_topic};
pub use work_queue::{MAX_OFFSETS, NackParams, extend, nack, update_consumer};

use std::time::Duration;

use chrono::{DateTime, Utc};
use prost::Message;

use crate::config::Limits;
use crate::error::ApiError;

/// Longest `type`, `source`, `subject`, id-like and attribute strings, in bytes.
const MAX_NAME_BYTES: usize = 1024;
/// Earliest and latest protobuf timestamps (0001-01-01 and 9999-12-31 UTC).
const MIN_SECONDS: i64 = -62_135_596_800;
const MAX_SECONDS: i64 = 253_402_300_799;

/// Checks a topic name: `[A-Za-z0-9][A-Za-z0-9._-]{0,127}`.
pub fn topic(field: &str, name: &str) -> Result<(), ApiError> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if first_ok && rest_ok && name.len() <= 128 {
        return Ok(());
    }
    Err(ApiError::invalid(
        field,
        format!(
            "topic name {name:?} is invalid: use 1-128 letters, digits, '.', '_' or '-', \
             starting with a letter or digit"
        ),
    ))
}

/// A consumer name: empty (none) or a name following the topic rules.
pub(super) fn consumer(name: &str) -> Result<Option<String>, ApiError> {
    if name.is_empty() {
        return Ok(None);
    }
    topic("consumer", name).map_err(|_| {
        ApiError::invalid(
            "consumer",
            format!("consumer name {name:?} is invalid: use 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit"),
        )
    })?;
    Ok(Some(name.to_owned()))
}

/// A consumer name that must be present.
pub(super) fn required_consumer(name: &str) -> Result<String, ApiError> {
    consumer(name)?.ok_or_else(|| ApiError::invalid("consumer", "is required"))
}

/// Any request: its encoded size must be within `--max-request-bytes`.
pub fn request_size(req: &impl Message, limits: &Limits) -> Result<(), ApiError> {
    let size = req.encoded_len();
    if size > limits.max_request_bytes {
        return Err(too_large(
            "request",
            size,
            limits.max_request_bytes,
            "bytes",
            "max-request-bytes",
        ));
    }
    Ok(())
}

/// A size or count over its limit.
fn too_large(
    field: &str,
    size: usize,
    limit: usize,
    unit: &'static str,
    flag: &'static str,
) -> ApiError {
    ApiError::TooLarge {
        field: field.to_owned(),
        size,
        limit,
        unit,
        flag,
    }
}

/// A name-like string: at most [`MAX_NAME_BYTES`], and no NUL (PostgreSQL text
/// cannot hold one).
fn short(field: &str, value: &str) -> Result<(), ApiError> {
    if value.contains('\0') {
        return Err(ApiError::invalid(field, "must not contain NUL characters"));
    }
    if value.len() > MAX_NAME_BYTES {
        return Err(ApiError::invalid(
            field,
            format!(
                "is {} bytes; at most {MAX_NAME_BYTES} are allowed",
                value.len()
            ),
        ));
    }
    Ok(())
}

/// Converts a protobuf timestamp, which must lie in years 1 to 9999.
pub fn timestamp(field: &str, t: &prost_types::Timestamp) -> Result<DateTime<Utc>, ApiError> {
    let in_range =
        (MIN_SECONDS..=MAX_SECONDS).contains(&t.seconds) && (0..1_000_000_000).contains(&t.nanos);
    in_range
        .then(|| DateTime::from_timestamp(t.seconds, t.nanos as u32))
        .flatten()
        .ok_or_else(|| {
            ApiError::invalid(field, "must be a valid timestamp between years 1 and 9999")
        })
}

/// Checks a type filter: each name non-empty.
pub fn types(field: &str, types: &[String]) -> Result<(), ApiError> {
    for (i, t) in types.iter().enumerate() {
        if t.is_empty() {
            return Err(ApiError::invalid(
                format!("{field}[{i}]"),
                "must not be empty",
            ));
        }
        short(&format!("{field}[{i}]"), t)?;
    }
    Ok(())
}

/// A protobuf duration within `min..=max`, or `default` when unset.
pub(super) fn duration(
    field: &str,
    value: Option<prost_types::Duration>,
    (min, max): (Duration, Duration),
    default: Duration,
) -> Result<Duration, ApiError> {
    let Some(d) = value else { return Ok(default) };
    let out_of_range = || {
        ApiError::invalid(
            field,
            format!(
                "must be between {} and {}",
                humantime::format_duration(min),
                humantime::format_duration(max)
            ),
        )
    };
    if d.seconds < 0 || d.nanos < 0 || d.nanos >= 1_000_000_000 {
        return Err(out_of_range());
    }
    let d = Duration::new(d.seconds as u64, d.nanos as u32);
    if d < min || d > max {
        return Err(out_of_range());
    }
    Ok(d)
}
