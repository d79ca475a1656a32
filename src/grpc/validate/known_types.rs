//! Protobuf payloads of the types the server knows (every message in its descriptor
//! set, EduPulse events included): their bytes must decode, and the decoded message is
//! rendered as JSON for SQL. Payloads of other types stay opaque.

use std::io;

use prost_reflect::{DynamicMessage, MessageDescriptor, ReflectMessage, SerializeOptions, Value};

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

/// Deepest nesting of messages a payload may have, counting into the `Any`s it holds:
/// rendering recurses once per level, and the decoder's own limit (100) sees only one
/// `Any`'s bytes at a time.
const MAX_DEPTH: usize = 100;

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
    if too_deep(&message, 1) {
        let rule = format!("is a {name} nesting messages more than {MAX_DEPTH} levels deep");
        return Err(ApiError::invalid(field, rule));
    }
    json(&message, max_bytes).map_err(|e| {
        ApiError::invalid(
            field,
            format!("is a valid {name} but has no JSON form ({e})"),
        )
    })
}

/// The message as JSON text; `None` when that would be longer than `max_bytes` or hold
/// a NUL character.
fn json(message: &DynamicMessage, max_bytes: usize) -> Result<Option<String>, serde_json::Error> {
    let mut out = Capped::new(max_bytes);
    match message.serialize_with_options(&mut serde_json::Serializer::new(&mut out), &RENDERING) {
        Err(_) if out.overflowed => return Ok(None),
        result => result?,
    }
    let json = String::from_utf8(out.buf).expect("serde_json writes UTF-8");
    Ok((!has_nul_escape(&json)).then_some(json))
}

/// Whether `message`, at nesting level `depth`, holds messages deeper than
/// [`MAX_DEPTH`], counting into the `Any`s of known types it holds.
fn too_deep(message: &DynamicMessage, depth: usize) -> bool {
    if depth > MAX_DEPTH {
        return true;
    }
    if message.descriptor().full_name() == "google.protobuf.Any" {
        // An unknown or undecodable one fails the rendering instead.
        return any_contents(message).is_some_and(|inner| too_deep(&inner, depth + 1));
    }
    message
        .fields()
        .any(|(_, value)| value_too_deep(value, depth + 1))
}

/// The message a `google.protobuf.Any` holds, when its type is known and its bytes
/// decode. Its bytes fields share the Any's buffer: a chain of Anys is not copied.
fn any_contents(any: &DynamicMessage) -> Option<DynamicMessage> {
    let type_url = any.get_field_by_name("type_url")?;
    let value = any.get_field_by_name("value")?;
    let message_type = known_type(type_url.as_str()?)?;
    DynamicMessage::decode(message_type, value.as_bytes()?.clone()).ok()
}

fn value_too_deep(value: &Value, depth: usize) -> bool {
    match value {
        Value::Message(message) => too_deep(message, depth),
        Value::List(items) => items.iter().any(|v| value_too_deep(v, depth)),
        Value::Map(entries) => entries.values().any(|v| value_too_deep(v, depth)),
        _ => false,
    }
}

/// Whether JSON text holds an escaped NUL character, `\u0000` (and not an escaped
/// backslash followed by `u0000`).
pub(super) fn has_nul_escape(json: &str) -> bool {
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

    /// `depth` nested `Any`s around a QuizSubmitted.
    fn nested_anys(depth: usize) -> prost_types::Any {
        let mut any = any(QUIZ, Vec::new());
        for _ in 0..depth {
            any = any_of_any(any);
        }
        any
    }

    fn any_of_any(inner: prost_types::Any) -> prost_types::Any {
        any(
            "type.googleapis.com/google.protobuf.Any",
            inner.encode_to_vec(),
        )
    }

    #[test]
    fn nesting_through_anys_is_bounded_and_renders_within_a_worker_stack() {
        // The outermost Any is level 1 and the QuizSubmitted level 100: the deepest
        // accepted, rendered on a thread with a tokio worker's default stack (2 MiB).
        let deepest = nested_anys(MAX_DEPTH - 1);
        let rendered = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || render(&deepest).map(|json| json.is_some()))
            .unwrap()
            .join()
            .unwrap();
        assert!(rendered.unwrap());
        let err = render(&nested_anys(MAX_DEPTH)).unwrap_err();
        assert!(err.to_string().contains("100 levels deep"), "{err}");
        let err = render(&nested_anys(2000)).unwrap_err();
        assert!(err.to_string().contains("100 levels deep"), "{err}");
    }

    #[test]
    fn a_nested_any_of_an_unknown_type_has_no_json_form() {
        let unknown = any_of_any(any("type.example.com/acme.Unknown", vec![1, 2]));
        let err = render(&unknown).unwrap_err();
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
