//! Turning wire requests into the log's types, rejecting what breaks a rule with an
//! error that names the field (`events[2].id`), the rule, and changes nothing.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use prost::Message;
use uuid::Uuid;

use crate::config::Limits;
use crate::error::ApiError;
use crate::log::Event;
use crate::proto::pulsebus::v1 as pb;

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

/// Validates a whole Publish request and converts its events.
pub fn publish(req: pb::PublishRequest, limits: &Limits) -> Result<(String, Vec<Event>), ApiError> {
    request_size(&req, limits)?;
    topic("topic", &req.topic)?;
    if req.events.is_empty() {
        return Err(ApiError::invalid(
            "events",
            "at least one event is required",
        ));
    }
    if req.events.len() > limits.max_batch_events {
        let n = req.events.len();
        return Err(too_large(
            "events",
            n,
            limits.max_batch_events,
            "events",
            "max-batch-events",
        ));
    }
    let events = req
        .events
        .into_iter()
        .enumerate()
        .map(|(i, e)| event(i, e, limits))
        .collect::<Result<Vec<_>, _>>()?;
    no_repeated_ids(&events)?;
    Ok((req.topic, events))
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

fn no_repeated_ids(events: &[Event]) -> Result<(), ApiError> {
    let mut seen = HashMap::with_capacity(events.len());
    for (i, e) in events.iter().enumerate() {
        if let Some(first) = seen.insert(e.id, i) {
            return Err(ApiError::invalid(
                format!("events[{i}].id"),
                format!(
                    "{} repeats the id of events[{first}]: ids must be unique",
                    e.id
                ),
            ));
        }
    }
    Ok(())
}

/// Validates and converts one event; `i` is its index in the request.
fn event(i: usize, e: pb::Event, limits: &Limits) -> Result<Event, ApiError> {
    let size = e.encoded_len();
    if size > limits.max_event_bytes {
        return Err(too_large(
            &format!("events[{i}]"),
            size,
            limits.max_event_bytes,
            "bytes",
            "max-event-bytes",
        ));
    }
    let field = |name: &str| format!("events[{i}].{name}");
    if e.r#type.is_empty() {
        return Err(ApiError::invalid(
            field("type"),
            "is required (e.g. \"lesson.published\")",
        ));
    }
    for (name, value) in [
        ("type", &e.r#type),
        ("source", &e.source),
        ("subject", &e.subject),
        ("correlation_id", &e.correlation_id),
        ("causation_id", &e.causation_id),
        ("content_type", &e.content_type),
    ] {
        short(&field(name), value)?;
    }
    let schema_version = match e.schema_version {
        0 => 1,
        v => i32::try_from(v).map_err(|_| {
            ApiError::invalid(field("schema_version"), "must be at most 2147483647")
        })?,
    };
    Ok(Event {
        id: event_id(&field("id"), &e.id)?,
        time: e.time.map(|t| timestamp(&field("time"), &t)).transpose()?,
        attributes: attributes(&field("attributes"), e.attributes)?,
        payload: payload::payload(&field, &e.content_type, e.data, limits)?,
        event_type: e.r#type,
        source: e.source,
        subject: e.subject,
        correlation_id: e.correlation_id,
        causation_id: e.causation_id,
        schema_version,
        content_type: e.content_type,
    })
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

fn event_id(field: &str, id: &str) -> Result<Uuid, ApiError> {
    if id.is_empty() {
        return Ok(Uuid::now_v7());
    }
    Uuid::parse_str(id).map_err(|_| {
        ApiError::invalid(
            field,
            format!("{id:?} is not a UUID (leave it empty to have one assigned)"),
        )
    })
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

fn attributes(
    field: &str,
    attrs: HashMap<String, String>,
) -> Result<serde_json::Map<String, serde_json::Value>, ApiError> {
    let mut map = serde_json::Map::with_capacity(attrs.len());
    for (key, value) in attrs {
        if key.is_empty() || key.contains('\0') || value.contains('\0') {
            return Err(ApiError::invalid(
                field,
                format!("key {key:?}: keys must be non-empty and text must not contain NUL"),
            ));
        }
        short(&format!("{field}[{key:?}]"), &key)?;
        map.insert(key, serde_json::Value::String(value));
    }
    Ok(map)
}

/// A validated Read request.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadParams {
    /// The topic.
    pub topic: String,
    /// First offset (inclusive), at least 1.
    pub from: i64,
    /// Page size, 1 to [`MAX_READ_LIMIT`].
    pub limit: i64,
    /// Type filter; empty keeps all.
    pub types: Vec<String>,
}

/// Page size when a Read asks for 0.
pub const DEFAULT_READ_LIMIT: i64 = 100;
/// Largest page a Read returns.
pub const MAX_READ_LIMIT: i64 = 1000;

/// Validates a Read request: `from_offset` 0 means the start; `limit` 0 means 100 and is capped at 1000.
pub fn read(req: pb::ReadRequest) -> Result<ReadParams, ApiError> {
    topic("topic", &req.topic)?;
    if req.from_offset < 0 {
        return Err(ApiError::invalid(
            "from_offset",
            "must not be negative (0 or 1 means the start)",
        ));
    }
    types("types", &req.types)?;
    let limit = match i64::from(req.limit) {
        0 => DEFAULT_READ_LIMIT,
        n => n.min(MAX_READ_LIMIT),
    };
    Ok(ReadParams {
        topic: req.topic,
        from: req.from_offset.max(1),
        limit,
        types: req.types,
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

mod known_types;
mod payload;
#[cfg(test)]
mod tests;
