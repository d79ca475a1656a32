//! Validation of Publish: each event's envelope and payload, and the batch as a whole.

use std::collections::HashMap;

use prost::Message;
use uuid::Uuid;

use super::{payload, request_size, short, timestamp, too_large, topic};
use crate::config::Limits;
use crate::error::ApiError;
use crate::log::{Event, Largest};
use crate::proto::pulsebus::v1 as pb;

/// A validated Publish request: its topic, its events and the largest of them.
pub type Validated = (String, Vec<Event>, Largest);

/// Validates a whole Publish request and converts its events; the largest event's
/// encoded size is kept for the topic's own limit, checked when the topic is locked.
pub fn publish(req: pb::PublishRequest, limits: &Limits) -> Result<Validated, ApiError> {
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
    let mut largest = Largest::default();
    let mut events = Vec::with_capacity(req.events.len());
    for (i, e) in req.events.into_iter().enumerate() {
        let bytes = e.encoded_len();
        if bytes > largest.bytes {
            largest = Largest { index: i, bytes };
        }
        events.push(event(i, e, limits)?);
    }
    no_repeated_ids(&events)?;
    Ok((req.topic, events, largest))
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
