//! An event's payload as JSON: JSON text inline, other text as a string, protobuf
//! messages of a type in the descriptor set (EduPulse events) decoded to JSON with their
//! proto field names, and anything else described by its size.

use prost_reflect::{DynamicMessage, SerializeOptions};
use serde_json::{Value, json};

use crate::proto::descriptor_pool;
use crate::proto::pulsebus::v1 as pb;

/// The field names producers use in JSON (`lesson_id`), and fields at their default
/// value shown too, so a score of 0 reads as 0 rather than missing.
const RENDERING: SerializeOptions = SerializeOptions::new()
    .use_proto_field_name(true)
    .skip_default_fields(false);

/// The payload of an event as JSON.
pub fn payload_json(data: Option<pb::event::Data>) -> Value {
    match data {
        Some(pb::event::Data::TextData(t)) => serde_json::from_str(&t).unwrap_or(Value::String(t)),
        Some(pb::event::Data::BinaryData(b)) => json!({"bytes": b.len()}),
        Some(pb::event::Data::ProtoData(any)) => proto_json(&any)
            .unwrap_or_else(|| json!({"type_url": any.type_url, "bytes": any.value.len()})),
        None => Value::Null,
    }
}

/// A protobuf payload as JSON, when its type is known and its bytes decode.
fn proto_json(any: &prost_types::Any) -> Option<Value> {
    let name = any.type_url.rsplit('/').next()?;
    let descriptor = descriptor_pool().get_message_by_name(name)?;
    let message = DynamicMessage::decode(descriptor, any.value.as_slice()).ok()?;
    message
        .serialize_with_options(serde_json::value::Serializer, &RENDERING)
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn a_known_protobuf_payload_shows_as_json_and_an_unknown_one_by_size() {
        let lesson = crate::proto::edupulse::events::v1::LessonPublished {
            lesson_id: "l-1".into(),
            ..Default::default()
        };
        let known = prost_types::Any {
            type_url: "type.googleapis.com/edupulse.events.v1.LessonPublished".into(),
            value: lesson.encode_to_vec(),
        };
        let unknown = prost_types::Any {
            type_url: "type.googleapis.com/acme.Thing".into(),
            value: vec![1, 2, 3],
        };
        let shown = payload_json(Some(pb::event::Data::ProtoData(known)));
        assert_eq!(shown["lesson_id"], "l-1");
        assert_eq!(
            payload_json(Some(pb::event::Data::ProtoData(unknown))),
            json!({"type_url": "type.googleapis.com/acme.Thing", "bytes": 3})
        );
    }
}
