//! Building events: JSON payloads (serde), protobuf payloads packed as `Any` (the
//! EduPulse messages know their event type), and client-assigned UUIDv7 ids, so a
//! publish retried after an outage or a timeout is stored once.

use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::error::ClientError;
use crate::proto::edupulse::events::v1 as edupulse;
use crate::proto::pulsebus::v1::{Event, Record, event::Data};

/// The content type of JSON payloads.
pub const JSON: &str = "application/json";
/// The content type of protobuf payloads.
pub const PROTOBUF: &str = "application/protobuf";

/// A protobuf message that travels as `Event.proto_data`.
pub trait ProtoPayload: prost::Message + Default {
    /// Its full protobuf name, e.g. `edupulse.events.v1.LessonPublished`.
    const FULL_NAME: &'static str;
    /// The event type it is published as, e.g. `lesson.published`.
    const EVENT_TYPE: &'static str;

    /// The `Any` type URL.
    fn type_url() -> String {
        format!("type.googleapis.com/{}", Self::FULL_NAME)
    }
}

macro_rules! edupulse_payloads {
    ($($message:ident => $event_type:literal),* $(,)?) => {
        $(impl ProtoPayload for edupulse::$message {
            const FULL_NAME: &'static str = concat!("edupulse.events.v1.", stringify!($message));
            const EVENT_TYPE: &'static str = $event_type;
        })*
    };
}

edupulse_payloads! {
    LessonPublished => "lesson.published",
    QuizSubmitted => "quiz.submitted",
    PeerFeedbackGiven => "peer_feedback.given",
    BadgeAwarded => "badge.awarded",
    LearningPulseSubmitted => "learning_pulse.submitted",
    PaymentProcessed => "payment.processed",
}

/// A new event id: a UUIDv7 (time-ordered), assigned by the client so that sending the
/// same event again is a no-op on the server.
pub fn new_id() -> String {
    Uuid::now_v7().to_string()
}

/// An event of `event_type` whose payload is `value` as JSON, with a fresh id.
pub fn json<T: Serialize>(event_type: &str, value: &T) -> Result<Event, ClientError> {
    let text = serde_json::to_string(value).map_err(|e| ClientError::Payload(e.to_string()))?;
    Ok(Event {
        id: new_id(),
        r#type: event_type.to_owned(),
        content_type: JSON.to_owned(),
        data: Some(Data::TextData(text)),
        ..Default::default()
    })
}

/// An event carrying `message` as `proto_data`, of the message's event type, with a
/// fresh id.
pub fn proto<M: ProtoPayload>(message: &M) -> Event {
    Event {
        id: new_id(),
        r#type: M::EVENT_TYPE.to_owned(),
        content_type: PROTOBUF.to_owned(),
        data: Some(Data::ProtoData(prost_types::Any {
            type_url: M::type_url(),
            value: message.encode_to_vec(),
        })),
        ..Default::default()
    }
}

/// Reading payloads back out of what was delivered.
pub trait PayloadExt {
    /// The payload as `M`; an error when it is not an `M` in `proto_data`.
    fn decode_proto<M: ProtoPayload>(&self) -> Result<M, ClientError>;
    /// The payload as JSON of `T` (from `text_data` or `binary_data`).
    fn decode_json<T: DeserializeOwned>(&self) -> Result<T, ClientError>;
}

impl PayloadExt for Event {
    fn decode_proto<M: ProtoPayload>(&self) -> Result<M, ClientError> {
        match &self.data {
            Some(Data::ProtoData(any)) if any.type_url.ends_with(&format!("/{}", M::FULL_NAME)) => {
                M::decode(any.value.as_slice()).map_err(|e| ClientError::Payload(e.to_string()))
            }
            Some(Data::ProtoData(any)) => Err(ClientError::Payload(format!(
                "the payload is a {}, not a {}",
                any.type_url,
                M::FULL_NAME
            ))),
            _ => Err(ClientError::Payload(format!(
                "the payload is not proto_data (expected a {})",
                M::FULL_NAME
            ))),
        }
    }

    fn decode_json<T: DeserializeOwned>(&self) -> Result<T, ClientError> {
        let parsed = match &self.data {
            Some(Data::TextData(text)) => serde_json::from_str(text),
            Some(Data::BinaryData(bytes)) => serde_json::from_slice(bytes),
            _ => return Err(ClientError::Payload("the payload is not JSON text".into())),
        };
        parsed.map_err(|e| ClientError::Payload(e.to_string()))
    }
}

impl PayloadExt for Record {
    fn decode_proto<M: ProtoPayload>(&self) -> Result<M, ClientError> {
        event_of(self)?.decode_proto()
    }

    fn decode_json<T: DeserializeOwned>(&self) -> Result<T, ClientError> {
        event_of(self)?.decode_json()
    }
}

fn event_of(record: &Record) -> Result<&Event, ClientError> {
    record
        .event
        .as_ref()
        .ok_or_else(|| ClientError::Payload("the record has no event".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proto_event_round_trips_and_names_its_type() {
        let lesson = edupulse::LessonPublished {
            lesson_id: "42".into(),
            title: "Fractions".into(),
            ..Default::default()
        };
        let event = proto(&lesson);
        assert_eq!(event.r#type, "lesson.published");
        assert_eq!(
            event.decode_proto::<edupulse::LessonPublished>().unwrap(),
            lesson
        );
        assert!(event.decode_proto::<edupulse::BadgeAwarded>().is_err());
        assert!(Uuid::parse_str(&event.id).is_ok_and(|id| id.get_version_num() == 7));
    }

    #[test]
    fn a_json_event_round_trips() {
        let event = json("quiz.submitted", &serde_json::json!({"score": 9})).unwrap();
        let value: serde_json::Value = event.decode_json().unwrap();
        assert_eq!(value["score"], 9);
        assert_eq!(event.content_type, JSON);
    }
}
