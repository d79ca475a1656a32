//! Decodes arbitrary bytes as each request message pulsebus validates and runs the
//! validator on whatever decodes, with the server's default limits.
//!
//! Checks, besides "no panic, no hang, no runaway allocation":
//! - every rejection is a field error (INVALID_ARGUMENT or RESOURCE_EXHAUSTED) whose
//!   message starts with the field path;
//! - an accepted Publish converted back to the wire with the library's own conversion
//!   (`pb::Event: From<log::Event>`) re-encodes, decodes, and validates to the very same
//!   events (only a size limit may now be hit: assigned ids and the default
//!   schema_version make the events a few bytes longer).
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use pulsebus::config::Limits;
use pulsebus::error::ApiError;
use pulsebus::grpc::validate;
use pulsebus::proto::pulsebus::v1 as pb;
use tonic::{Code, Status};

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    if let Ok(req) = pb::PublishRequest::decode(data) {
        publish(req, &limits);
    }
    if let Ok(req) = pb::ReadRequest::decode(data) {
        let _ = outcome(validate::read(req));
    }
    if let Ok(req) = pb::SubscribeRequest::decode(data) {
        let _ = outcome(validate::subscribe(req));
    }
    if let Ok(req) = pb::AckRequest::decode(data) {
        let _ = outcome(validate::ack(&req));
    }
    if let Ok(req) = pb::SeekRequest::decode(data) {
        let _ = outcome(validate::seek(req));
    }
    if let Ok(req) = pb::DeleteConsumerRequest::decode(data) {
        let _ = outcome(validate::delete_consumer(req));
    }
});

fn publish(req: pb::PublishRequest, limits: &Limits) {
    let Some((topic, events)) = outcome(validate::publish(req, limits)) else {
        return;
    };
    let wire: Vec<pb::Event> = events.iter().cloned().map(pb::Event::from).collect();
    let bytes = pb::PublishRequest {
        topic: topic.clone(),
        events: wire,
    }
    .encode_to_vec();
    let again = pb::PublishRequest::decode(bytes.as_slice()).expect("a re-encoded request decodes");
    match validate::publish(again, limits) {
        Ok(round_trip) => assert_eq!(round_trip, (topic, events), "validate(to_wire(x)) != x"),
        Err(ApiError::TooLarge { .. }) => {}
        Err(other) => panic!("an accepted request converted back is rejected: {other}"),
    }
}

/// The accepted value, or `None` after checking the rejection is a proper field error.
fn outcome<T>(result: Result<T, ApiError>) -> Option<T> {
    let err = match result {
        Ok(value) => return Some(value),
        Err(err) => err,
    };
    let (field, code) = match &err {
        ApiError::Invalid { field, .. } => (field.clone(), Code::InvalidArgument),
        ApiError::TooLarge { field, .. } => (field.clone(), Code::ResourceExhausted),
        other => panic!("validation failed with a non-field error: {other:?}"),
    };
    let status = Status::from(err);
    assert_eq!(status.code(), code, "{status:?}");
    assert!(
        !field.is_empty() && status.message().starts_with(&format!("{field}: ")),
        "{status:?} does not start with its field {field:?}"
    );
    None
}
