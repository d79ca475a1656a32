//! Seeded pseudo-random request bodies, and the status each should get.

use prost::Message;
use pulsebus::config::Limits;
use pulsebus::grpc::validate;
use tonic::Status;

use super::*;

// ---------------------------------------------------------------------------------
// Seeded pseudo-random bodies.
// ---------------------------------------------------------------------------------

pub fn valid_publish() -> Vec<u8> {
    PublishRequest {
        topic: "garbage".into(),
        events: vec![
            Event {
                id: uuid::Uuid::new_v4().to_string(),
                attributes: [("tenant".to_owned(), "t1".to_owned())].into(),
                time: Some(prost_types::Timestamp {
                    seconds: 1_700_000_000,
                    nanos: 5,
                }),
                ..event("lesson.published", "{\"lesson\":42,\"tags\":[\"a\",\"b\"]}")
            },
            Event {
                data: Some(event::Data::BinaryData(vec![1, 2, 3])),
                content_type: "application/octet-stream".into(),
                ..event("blob", "")
            },
        ],
    }
    .encode_to_vec()
}

pub fn valid_subscribe() -> Vec<u8> {
    SubscribeRequest {
        topic: "garbage".into(),
        consumer: String::new(),
        start: Some(StartPosition {
            position: Some(start_position::Position::Offset(1)),
        }),
        types: vec!["lesson.published".into()],
        max_in_flight: 10,
        config: None,
        batch_records: 0,
        last_seen: None,
    }
    .encode_to_vec()
}

/// Protobuf-shaped noise: random tags (any wire type, field numbers near the real
/// ones) with random varints or length-delimited chunks.
pub fn tag_soup(rng: &mut Rng) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..1 + rng.below(8) {
        let field = 1 + rng.below(14) as u64;
        let wire = rng.below(8) as u64;
        prost::encoding::encode_varint(field << 3 | wire, &mut out);
        match wire {
            0 => prost::encoding::encode_varint(rng.next_u64() >> rng.below(64), &mut out),
            2 => {
                let n = rng.below(40);
                prost::encoding::encode_varint(n as u64 + rng.below(3) as u64, &mut out);
                out.extend(rng.bytes(n));
            }
            _ => {
                let n = rng.below(9);
                out.extend(rng.bytes(n));
            }
        }
    }
    out
}

/// Not a valid request (mostly): noise, mutated valid requests, or tag soup.
pub fn garbage(rng: &mut Rng, valid: &[u8]) -> Vec<u8> {
    match rng.below(6) {
        0 => {
            let n = rng.below(256);
            rng.bytes(n)
        }
        1 => {
            let n = 1 + rng.below(64 * 1024);
            rng.bytes(n)
        }
        2 => {
            let mut b = valid.to_vec();
            for _ in 0..1 + rng.below(4) {
                let i = rng.below(b.len());
                b[i] ^= 1 << rng.below(8);
            }
            b
        }
        3 => valid[..rng.below(valid.len())].to_vec(),
        4 => {
            let mut b = valid.to_vec();
            let at = rng.below(b.len() + 1);
            let n = 1 + rng.below(16);
            b.splice(at..at, rng.bytes(n));
            b
        }
        _ => tag_soup(rng),
    }
}

/// What the server should answer to `body`, from local decoding and validation:
/// `None` when the request is valid (and may succeed).
pub fn expected(path: &str, body: &[u8]) -> Option<Status> {
    let limits = Limits::default();
    let decode_error = |e: prost::DecodeError| Some(Status::internal(e.to_string()));
    if path == PUBLISH {
        match PublishRequest::decode(body) {
            Err(e) => decode_error(e),
            Ok(req) => validate::publish(req, &limits).err().map(Status::from),
        }
    } else {
        match SubscribeRequest::decode(body) {
            Err(e) => decode_error(e),
            Ok(req) => validate::subscribe(req).err().map(Status::from),
        }
    }
}

pub fn assert_status(got: &Status, want: &Status, body: &[u8]) {
    assert_eq!(
        (got.code(), got.message()),
        (want.code(), want.message()),
        "body {body:02x?}"
    );
}
