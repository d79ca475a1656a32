//! The payload rules: JSON text must be JSON that PostgreSQL can query, other text must
//! hold no NUL, and a protobuf `Any` needs a type URL (see `known_types`).

use super::{known_types, short};
use crate::config::Limits;
use crate::error::ApiError;
use crate::log::Payload;
use crate::proto::pulsebus::v1 as pb;

/// Validates and converts one event's payload; `field` names a field of the event.
pub(super) fn payload(
    field: &dyn Fn(&str) -> String,
    content_type: &str,
    data: Option<pb::event::Data>,
    limits: &Limits,
) -> Result<Payload, ApiError> {
    use pb::event::Data;
    Ok(match data {
        None => Payload::None,
        Some(Data::BinaryData(bytes)) => Payload::Binary(bytes),
        Some(Data::TextData(text)) if is_json(content_type) => {
            json_text(&field("text_data"), &text)?;
            Payload::Json(text)
        }
        Some(Data::TextData(text)) => {
            if text.contains('\0') {
                return Err(ApiError::invalid(
                    field("text_data"),
                    "must not contain NUL characters (send binary_data instead)",
                ));
            }
            Payload::Text(text)
        }
        Some(Data::ProtoData(any)) => {
            if any.type_url.is_empty() {
                return Err(ApiError::invalid(
                    field("proto_data.type_url"),
                    "is required (e.g. \"type.googleapis.com/edupulse.events.v1.LessonPublished\")",
                ));
            }
            short(&field("proto_data.type_url"), &any.type_url)?;
            let json = known_types::rendering(&field("proto_data"), &any, limits.max_event_bytes)?;
            Payload::Proto {
                type_url: any.type_url,
                value: any.value,
                json,
            }
        }
    })
}

/// `application/json`, or any `+json` media type, parameters ignored.
pub(super) fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json" || essence.ends_with("+json")
}

/// JSON text must parse, and hold no NUL character in any string: PostgreSQL's JSON
/// operators (`->>` on any key) and casts to JSONB refuse a document with `\u0000`.
/// The text itself is checked, not the parsed value: the text is stored as sent, and a
/// repeated key can hide a `\u0000` from the parsed value (the last key wins there).
fn json_text(field: &str, text: &str) -> Result<(), ApiError> {
    serde_json::from_str::<serde_json::Value>(text).map_err(|e| {
        ApiError::invalid(
            field,
            format!("content_type is JSON but the text is not valid JSON: {e}"),
        )
    })?;
    if known_types::has_nul_escape(text) {
        return Err(ApiError::invalid(
            field,
            "JSON strings must not contain \\u0000",
        ));
    }
    Ok(())
}
