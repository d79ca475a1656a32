//! JSON into protobuf: `publish --type edupulse.events.v1.LessonPublished --data
//! '{"lesson_id": "l-1"}'` sends the message, encoded from the descriptor set, as
//! `proto_data`, so producers and the CLI put the same bytes on the bus.

use prost::Message;
use prost_reflect::{DeserializeOptions, DynamicMessage};

use super::errors::ClientError;
use crate::proto::descriptor_pool;

/// The prefix of the type URLs the CLI writes (the server reads the name after `/`).
const TYPE_URL_PREFIX: &str = "type.googleapis.com/";

/// `data` encoded as the message `message_type` names, when the descriptor set has
/// it (`None`: not a known message, send the text as it is). Unknown JSON fields are
/// refused, so a misspelt field is an error rather than lost.
pub fn proto_payload(
    message_type: &str,
    data: &str,
) -> Result<Option<prost_types::Any>, ClientError> {
    let Some(descriptor) = descriptor_pool().get_message_by_name(message_type) else {
        return Ok(None);
    };
    let bad = |reason: String| ClientError::BadPayload {
        message_type: message_type.to_owned(),
        reason,
    };
    let mut json = serde_json::Deserializer::from_str(data);
    let options = DeserializeOptions::new().deny_unknown_fields(true);
    let message = DynamicMessage::deserialize_with_options(descriptor, &mut json, &options)
        .map_err(|e| bad(e.to_string()))?;
    json.end().map_err(|e| bad(e.to_string()))?;
    Ok(Some(prost_types::Any {
        type_url: format!("{TYPE_URL_PREFIX}{message_type}"),
        value: message.encode_to_vec(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_for_a_known_type_is_encoded_and_a_misspelt_field_is_named() {
        let any = proto_payload(
            "edupulse.events.v1.LessonPublished",
            r#"{"lesson_id": "l-1", "title": "Fractions"}"#,
        )
        .unwrap()
        .unwrap();
        let lesson =
            crate::proto::edupulse::events::v1::LessonPublished::decode(any.value.as_slice())
                .unwrap();
        assert_eq!(
            (lesson.lesson_id.as_str(), lesson.title.as_str()),
            ("l-1", "Fractions")
        );

        let err = proto_payload("edupulse.events.v1.LessonPublished", r#"{"titel": "x"}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("titel"), "{err}");
        assert!(proto_payload("lesson.published", "{}").unwrap().is_none());
    }
}
