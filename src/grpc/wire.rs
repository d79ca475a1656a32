//! Subscribe's codec, so fan-out scales with records rather than with records times
//! subscribers: a record goes out as the bytes of its `SubscribeResponse`, encoded once
//! and shared by every stream that sends it (`SharedRecord::wire`), instead of being
//! cloned, converted and encoded per subscriber. The generated `EventBus` server uses
//! this codec for Subscribe only (see build.rs); clients decode the bytes as an
//! ordinary `SubscribeResponse`.
//!
//! A [`RecordBatch`] reuses those bytes as they are: `SubscribeResponse.record` and
//! `RecordBatch.records` are both field 1 and length-delimited, so the body of a
//! `RecordBatch` is exactly the records' shared `SubscribeResponse{record}` encodings
//! one after another, and the batch is `SubscribeResponse.batch` (field 3) around
//! them: a tag, a length, and the shared bytes, written without re-encoding.

use bytes::{BufMut, Bytes};
use prost::Message as _;
use tonic::Status;
use tonic::codec::{Codec, EncodeBuf, Encoder};
use tonic_prost::{ProstCodec, ProstDecoder};

use crate::log::Record;
use crate::proto::pulsebus::v1 as pb;
use crate::subscribe::Delivery;
use crate::telemetry::stages;

/// Tag of `SubscribeResponse.batch`: field 3, length-delimited.
const BATCH_TAG: u8 = 3 << 3 | 2;

/// One `SubscribeResponse`, already encoded: a single message, or a batch of records
/// whose parts are the records' own shared encodings.
pub struct Encoded(Parts);

enum Parts {
    One(Bytes),
    Batch(RecordBatch),
}

impl Encoded {
    /// The bytes a record delivery goes out as on its own (the delivery back, for anything that
    /// is not a record): the part a [`RecordBatch`] takes.
    pub fn record(delivery: Delivery) -> Result<Bytes, Delivery> {
        match delivery {
            Delivery::Record { .. } => match Self::from(delivery).0 {
                Parts::One(bytes) => Ok(bytes),
                Parts::Batch(_) => unreachable!("a record is encoded alone"),
            },
            other => Err(other),
        }
    }

    /// The whole message as one buffer (tests and tools; the encoder writes the parts).
    pub fn to_bytes(&self) -> Bytes {
        match &self.0 {
            Parts::One(bytes) => bytes.clone(),
            Parts::Batch(batch) => {
                let mut out = Vec::with_capacity(batch.encoded_len());
                batch.write(&mut out);
                out.into()
            }
        }
    }
}

/// Records' `SubscribeResponse{record}` encodings, to be sent as one
/// `SubscribeResponse{batch}`. Holds the shared bytes, not copies.
#[derive(Default)]
pub struct RecordBatch {
    records: Vec<Bytes>,
    body_len: usize,
}

impl RecordBatch {
    /// An empty batch with room for `records` records.
    pub fn with_capacity(records: usize) -> Self {
        Self {
            records: Vec::with_capacity(records),
            body_len: 0,
        }
    }

    /// Adds a record's encoding (from [`Encoded::record`]).
    pub fn push(&mut self, record: Bytes) {
        self.body_len += record.len();
        self.records.push(record);
    }

    /// Records in the batch.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// True when it holds no record.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Bytes of the records (the batch's body).
    pub fn body_len(&self) -> usize {
        self.body_len
    }

    fn encoded_len(&self) -> usize {
        1 + prost::encoding::encoded_len_varint(self.body_len as u64) + self.body_len
    }

    fn write(&self, dst: &mut impl BufMut) {
        dst.put_u8(BATCH_TAG);
        prost::encoding::encode_varint(self.body_len as u64, dst);
        self.records.iter().for_each(|r| dst.put_slice(r));
    }
}

impl From<RecordBatch> for Encoded {
    fn from(batch: RecordBatch) -> Self {
        Self(Parts::Batch(batch))
    }
}

impl From<Delivery> for Encoded {
    fn from(delivery: Delivery) -> Self {
        if let Delivery::Record { record, .. } = &delivery {
            let record = record.record();
            stages::taken(&record.topic, record.offset);
        }
        match delivery {
            // First deliveries are the same for every stream: encoded once, shared.
            Delivery::Record { record, attempt: 1 } => {
                Self(Parts::One(record.wire(|r| encode_record(r, 1))))
            }
            Delivery::Record { record, attempt } => {
                Self(Parts::One(encode_record(record.record(), attempt)))
            }
            heartbeat => Self(Parts::One(
                pb::SubscribeResponse::from(heartbeat)
                    .encode_to_vec()
                    .into(),
            )),
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
        match &item.0 {
            Parts::One(bytes) => dst.put_slice(bytes),
            Parts::Batch(batch) => batch.write(dst),
        }
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
        record_at(7)
    }

    fn record_at(offset: i64) -> Record {
        Record {
            topic: "lessons".into(),
            offset,
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
            first.to_bytes().as_ptr(),
            again.to_bytes().as_ptr(),
            "encoded once, then shared"
        );
        let expected = pb::SubscribeResponse::from(delivery(1));
        assert_eq!(
            pb::SubscribeResponse::decode(first.to_bytes()).unwrap(),
            expected
        );
        let third = pb::SubscribeResponse::decode(Encoded::from(delivery(3)).to_bytes()).unwrap();
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
        let decoded = pb::SubscribeResponse::decode(encoded.to_bytes()).unwrap();
        assert_eq!(decoded, pb::SubscribeResponse::from(beat()));
    }

    /// A batch spliced from the shared record bytes is what prost encodes for a
    /// `SubscribeResponse{batch}` holding the same records, redeliveries included.
    #[test]
    fn spliced_batches_decode_as_the_generated_batch() {
        let deliveries: Vec<_> = (1..=3)
            .map(|offset| Delivery::Record {
                record: SharedRecord::new(record_at(offset)),
                attempt: if offset == 2 { 4 } else { 1 },
            })
            .collect();
        let mut batch = RecordBatch::with_capacity(3);
        for d in deliveries.iter().cloned() {
            batch.push(Encoded::record(d).unwrap());
        }
        let records =
            deliveries
                .into_iter()
                .map(|d| match pb::SubscribeResponse::from(d).message {
                    Some(pb::subscribe_response::Message::Record(r)) => r,
                    other => panic!("not a record: {other:?}"),
                });
        let expected = pb::SubscribeResponse {
            message: Some(pb::subscribe_response::Message::Batch(pb::RecordBatch {
                records: records.collect(),
            })),
        };
        let spliced = Encoded::from(batch).to_bytes();
        assert_eq!(spliced, expected.encode_to_vec(), "byte for byte");
        assert_eq!(pb::SubscribeResponse::decode(spliced).unwrap(), expected);
    }

    #[test]
    fn only_records_go_into_batches() {
        let beat = Delivery::Heartbeat {
            head: 1,
            committed: 0,
            in_flight: 0,
            at_max_in_flight: false,
            window_full: false,
        };
        assert_eq!(Encoded::record(beat.clone()), Err(beat));
    }
}
