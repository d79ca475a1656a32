//! Subscribe's codec, so fan-out scales with records rather than with records times
//! subscribers: a record goes out as the bytes of its `SubscribeResponse`, encoded once
//! and shared by every stream that sends it (`SharedRecord::wire`), instead of being
//! cloned, converted and encoded per subscriber. The generated `EventBus` server uses
//! this codec for Subscribe only (see build.rs); clients decode the bytes as an
//! ordinary `SubscribeResponse`.

use bytes::{BufMut, Bytes};
use prost::Message as _;
use tonic::Status;
use tonic::codec::{Codec, EncodeBuf, Encoder};
use tonic_prost::{ProstCodec, ProstDecoder};

use crate::log::Record;
use crate::proto::pulsebus::v1 as pb;
use crate::subscribe::Delivery;

/// One `SubscribeResponse`, already encoded.
pub struct Encoded(Bytes);

impl From<Delivery> for Encoded {
    fn from(delivery: Delivery) -> Self {
        match delivery {
            // First deliveries are the same for every stream: encoded once, shared.
            Delivery::Record { record, attempt: 1 } => Self(record.wire(|r| encode_record(r, 1))),
            Delivery::Record { record, attempt } => Self(encode_record(record.record(), attempt)),
            heartbeat => Self(
                pb::SubscribeResponse::from(heartbeat)
                    .encode_to_vec()
                    .into(),
            ),
        }
    }
}

fn encode_record(record: &Record, attempt: u32) -> Bytes {
    let mut wire = pb::Record::from(record.clone());
    wire.delivery_attempt = attempt;
    let message = pb::subscribe_response::Message::Record(wire);
    let response = pb::SubscribeResponse {
        message: Some(message),
    };
    response.encode_to_vec().into()
}

/// Sends `Encoded` as it is; decodes requests with prost like every other method.
#[derive(Debug, Default)]
pub struct SubscribeCodec {
    // Not a unit struct: the generated server makes it with `default()`.
    _private: (),
}

impl Codec for SubscribeCodec {
    type Encode = Encoded;
    type Decode = pb::SubscribeRequest;
    type Encoder = WireEncoder;
    type Decoder = ProstDecoder<pb::SubscribeRequest>;

    fn encoder(&mut self) -> Self::Encoder {
        WireEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstCodec::<pb::SubscribeResponse, pb::SubscribeRequest>::default().decoder()
    }
}

/// Writes pre-encoded responses.
#[derive(Debug)]
pub struct WireEncoder;

impl Encoder for WireEncoder {
    type Item = Encoded;
    type Error = Status;

    fn encode(&mut self, item: Encoded, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item.0);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::Utc;
    use uuid::Uuid;

    use super::*;
    use crate::log::{Event, Payload};
    use crate::subscribe::tail::SharedRecord;

    fn record() -> Record {
        Record {
            topic: "lessons".into(),
            offset: 7,
            appended_at: Utc::now(),
            event: Event {
                id: Uuid::now_v7(),
                event_type: "lesson.published".into(),
                source: "catalog".into(),
                subject: "lesson/42".into(),
                time: Some(Utc::now()),
                correlation_id: "c".into(),
                causation_id: String::new(),
                schema_version: 2,
                attributes: serde_json::Map::from_iter([("k".into(), "v".into())]),
                content_type: "application/json".into(),
                payload: Payload::Json(r#"{"a":1}"#.into()),
            },
        }
    }

    /// The shared encoding is exactly what prost would send for the same response.
    #[test]
    fn encoded_records_decode_as_the_generated_response() {
        let shared = SharedRecord::new(record());
        let delivery = |attempt| Delivery::Record {
            record: Arc::clone(&shared),
            attempt,
        };
        let first = Encoded::from(delivery(1));
        let again = Encoded::from(delivery(1));
        assert_eq!(
            first.0.as_ptr(),
            again.0.as_ptr(),
            "encoded once, then shared"
        );
        let expected = pb::SubscribeResponse::from(delivery(1));
        assert_eq!(pb::SubscribeResponse::decode(first.0).unwrap(), expected);
        let third = pb::SubscribeResponse::decode(Encoded::from(delivery(3)).0).unwrap();
        assert_eq!(
            third,
            pb::SubscribeResponse::from(delivery(3)),
            "redeliveries say so"
        );
    }

    #[test]
    fn heartbeats_are_encoded_like_prost_encodes_them() {
        let beat = || Delivery::Heartbeat {
            head: 9,
            committed: 4,
            in_flight: 2,
            at_max_in_flight: true,
            window_full: false,
        };
        let encoded = Encoded::from(beat());
        let decoded = pb::SubscribeResponse::decode(encoded.0).unwrap();
        assert_eq!(decoded, pb::SubscribeResponse::from(beat()));
    }
}
