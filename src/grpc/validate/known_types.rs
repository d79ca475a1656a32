//! Protobuf payloads of the types the server knows (every message in its descriptor
//! set, EduPulse events included): their bytes must decode, and the decoded message is
//! rendered as JSON for SQL. Payloads of other types stay opaque.

use std::io;

use prost_reflect::{DynamicMessage, MessageDescriptor, SerializeOptions};

use crate::error::ApiError;
use crate::proto::descriptor_pool;

/// How a known payload is rendered for SQL: the proto field names (`quiz_id`, the keys
/// JSON producers use), 64-bit integers as JSON numbers (PostgreSQL keeps every digit,
/// and SQL compares them as numbers), and scalar fields at their default value too (a
/// score of 0 reads as `0`, not NULL). Enums are their names, bytes base64, and unset
/// message fields are left out.
const RENDERING: SerializeOptions = SerializeOptions::new()
    .use_proto_field_name(true)
    .stringify_64_bit_integers(false)
    .skip_default_fields(false);

/// The message type a type URL names, when the server knows it: the name is the part
/// after the last `/`.
pub(super) fn known_type(type_url: &str) -> Option<MessageDescriptor> {
    let name = type_url.rsplit('/').next().unwrap_or(type_url);
    descriptor_pool().get_message_by_name(name)
}

/// Checks the payload `any` (at `field`) and returns its JSON rendering: `None` for
/// a type the server does not know, and for a rendering it does not keep (longer than
/// `max_bytes`, or holding a NUL character, which PostgreSQL's JSON operators refuse).
/// A known type whose bytes do not decode, or that has no JSON form (a timestamp
/// outside years 1 to 9999, a nested `Any` of an unknown type), is invalid.
pub(super) fn rendering(
    field: &str,
    any: &prost_types::Any,
    max_bytes: usize,
) -> Result<Option<String>, ApiError> {
    let Some(message_type) = known_type(&any.type_url) else {
        return Ok(None);
    };
    let name = message_type.full_name().to_owned();
    let message = DynamicMessage::decode(message_type, any.value.as_slice())
        .map_err(|e| ApiError::invalid(field, format!("bytes are not a valid {name} ({e})")))?;
    let mut out = Capped::new(max_bytes);
    match message.serialize_with_options(&mut serde_json::Serializer::new(&mut out), &RENDERING) {
        Ok(()) => {}
        Err(_) if out.overflowed => return Ok(None),
        Err(e) => {
            return Err(ApiError::invalid(
                field,
                format!("is a valid {name} but has no JSON form ({e})"),
            ));
        }
    }
    let json = String::from_utf8(out.buf).expect("serde_json writes UTF-8");
    Ok((!has_nul_escape(&json)).then_some(json))
}

/// Whether JSON text holds an escaped NUL character, `\u0000` (and not an escaped
/// backslash followed by `u0000`).
fn has_nul_escape(json: &str) -> bool {
    json.match_indices("\\u0000").any(|(at, _)| {
        let backslashes_before = json[..at].bytes().rev().take_while(|&b| b == b'\\');
        backslashes_before.count() % 2 == 0
    })
}

/// A buffer that refuses to grow past its limit: a rendering can be much longer than
/// its message (field names, default values, escapes), so it is cut off, not built.
struct Capped {
    buf: Vec<u8>,
    limit: usize,
    overflowed: bool,
}

impl Capped {
    fn new(limit: usize) -> Self {
        Self {
            buf: Vec::new(),
            limit,
            overflowed: false,
        }
    }
}

impl io::Write for Capped {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.len() + data.len() > self.limit {
            self.overflowed = true;
            return Err(io::Error::other("the JSON rendering is too long"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;
    use crate::proto::edupulse::events::v1 as edu;

    const QUIZ: &str = "type.googleapis.com/edupulse.events.v1.QuizSubmitted";

    fn any(type_url: &str, value: Vec<u8>) -> prost_types::Any {
        prost_types::Any {
            type_url: type_url.into(),
            value,
        }
    }

    fn render(any: &prost_types::Any) -> Result<Option<String>, ApiError> {
        rendering("events[0].proto_data", any, 1 << 20)
    }

    #[test]
    fn a_known_message_renders_with_proto_names_numbers_and_defaults() {
        let quiz = edu::QuizSubmitted {
            quiz_id: "q-2".into(),
            score: 55,
            ..Default::default()
        };
        let json = render(&any(QUIZ, quiz.encode_to_vec())).unwrap().unwrap();
        assert_eq!(
            json,
            r#"{"quiz_id":"q-2","lesson_id":"","student_id":"","score":55,"max_score":0,"attempt":0}"#
        );
        let payment = edu::PaymentProcessed {
            amount_cents: 9_007_199_254_740_993,
            status: edu::payment_processed::Status::Succeeded.into(),
            ..Default::default()
        };
        let url = "type.googleapis.com/edupulse.events.v1.PaymentProcessed";
        let json = render(&any(url, payment.encode_to_vec())).unwrap().unwrap();
        assert!(
            json.contains(r#""amount_cents":9007199254740993"#),
            "{json}"
        );
        assert!(json.contains(r#""status":"STATUS_SUCCEEDED""#), "{json}");
    }

    #[test]
    fn garbage_of_a_known_type_is_invalid_and_names_the_type() {
        let err = render(&any(QUIZ, b"not a protobuf".to_vec())).unwrap_err();
        let message = err.to_string();
        assert!(
            message.starts_with(
                "events[0].proto_data: bytes are not a valid edupulse.events.v1.QuizSubmitted ("
            ),
            "{message}"
        );
    }

    #[test]
    fn unknown_types_stay_opaque() {
        let opaque = any("type.googleapis.com/acme.Unknown", b"\xff\xff".to_vec());
        assert_eq!(render(&opaque).unwrap(), None);
        assert!(known_type("edupulse.events.v1.QuizSubmitted").is_some());
        assert!(known_type("example.com/x/y/pulsebus.v1.Event").is_some());
        assert!(known_type("type.googleapis.com/").is_none());
    }

    #[test]
    fn a_message_without_a_json_form_is_invalid() {
        let quiz = edu::QuizSubmitted {
            submitted_at: Some(prost_types::Timestamp {
                seconds: i64::MAX,
                nanos: 0,
            }),
            ..Default::default()
        };
        let err = render(&any(QUIZ, quiz.encode_to_vec())).unwrap_err();
        assert!(err.to_string().contains("has no JSON form"), "{err}");
    }

    #[test]
    fn renderings_too_long_or_holding_nul_are_not_kept() {
        let quiz = edu::QuizSubmitted {
            quiz_id: "q\0".into(),
            ..Default::default()
        };
        assert_eq!(render(&any(QUIZ, quiz.encode_to_vec())).unwrap(), None);
        let quiz = edu::QuizSubmitted {
            quiz_id: "q\\u0000".into(),
            ..Default::default()
        };
        assert!(render(&any(QUIZ, quiz.encode_to_vec())).unwrap().is_some());
        let short = rendering("f", &any(QUIZ, Vec::new()), 20).unwrap();
        assert_eq!(short, None);
    }
}
