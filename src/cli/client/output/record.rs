//! A record as one JSON object (`--json`) or one line of text.

use serde_json::{Value, json};

use super::payload::payload_json;
use super::time::rfc3339;
use crate::proto::pulsebus::v1 as pb;

/// A record as one JSON object: the envelope, times in RFC 3339, and the payload as
/// JSON (see [`payload_json`]).
pub fn record_json(r: pb::Record) -> Value {
    let e = r.event.unwrap_or_default();
    json!({
        "offset": r.offset,
        "appended_at": rfc3339(r.appended_at.as_ref()),
        "id": e.id,
        "type": e.r#type,
        "subject": e.subject,
        "source": e.source,
        "time": rfc3339(e.time.as_ref()),
        "delivery_attempt": r.delivery_attempt,
        "data": payload_json(e.data),
    })
}

/// A record as one line: offset, append time, type, subject (or `-`), payload.
pub fn record_line(r: pb::Record) -> String {
    let e = r.event.unwrap_or_default();
    let subject = if e.subject.is_empty() {
        "-"
    } else {
        &e.subject
    };
    let data = match payload_json(e.data) {
        Value::String(s) => s,
        other => other.to_string(),
    };
    format!(
        "#{}  {}  {}  {}  {}",
        r.offset,
        rfc3339(r.appended_at.as_ref()),
        e.r#type,
        subject,
        data
    )
}
