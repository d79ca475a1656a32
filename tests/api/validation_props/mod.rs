//! Property tests of request validation: random Publish, Read, Subscribe, Ack, Seek and
//! DeleteConsumer requests, valid and invalid, checked against an independent reference
//! of the documented rules (`reference.rs`, no server needed).
//!
//! For every request each property checks that validation
//! - never panics;
//! - accepts exactly what the reference accepts, and converts it faithfully;
//! - rejects everything else with `ApiError::Invalid` (INVALID_ARGUMENT) or
//!   `ApiError::TooLarge` (RESOURCE_EXHAUSTED, for size and count limits) whose field is
//!   one the reference finds at fault, and whose status message starts with that field.
//!
//! The reference lists every fault of a request; the validator stops at the first one
//! it finds, so it must name one of them (the order of checks is not a documented rule).

mod reference;
mod strategies;

use proptest::prelude::*;
use pulsebus::config::Limits;
use pulsebus::error::ApiError;
use pulsebus::grpc::validate;
use pulsebus::log::{Event, Largest, Payload};
use pulsebus::proto::pulsebus::v1 as pb;
use std::collections::{HashMap, HashSet};
use tonic::{Code, Status};

use reference::*;
use strategies::*;

const CASES: u32 = 256;
/// Publish requests have the most rules; they get more cases (still about a second).
const PUBLISH_CASES: u32 = 512;

/// Failures print their minimal input; no regression files are written into tests/.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------
// Checking an outcome against the reference.
// ---------------------------------------------------------------------------------

/// A rejection must be a field error the reference expects, mapped to the right code,
/// with a message that starts with the field path.
fn check_rejection(err: ApiError, faults: &Faults) -> Result<(), TestCaseError> {
    let (kind, field) = match &err {
        ApiError::Invalid { field, .. } => (Kind::Invalid, field.clone()),
        ApiError::TooLarge { field, .. } => (Kind::TooLarge, field.clone()),
        other => return Err(TestCaseError::fail(format!("not a field error: {other:?}"))),
    };
    prop_assert!(
        faults.0.iter().any(|f| f.names(kind, &field)),
        "validator blamed {kind:?} {field:?} ({err}); the reference finds {:?}",
        faults.0
    );
    let status = Status::from(err);
    let code = match kind {
        Kind::Invalid => Code::InvalidArgument,
        Kind::TooLarge => Code::ResourceExhausted,
    };
    prop_assert_eq!(status.code(), code, "{:?}", status);
    prop_assert!(
        status.message().starts_with(&format!("{field}: ")),
        "message {:?} does not start with the field {:?}",
        status.message(),
        field
    );
    Ok(())
}

fn check<T>(
    outcome: Result<T, ApiError>,
    faults: &Faults,
    accepted: impl FnOnce(T) -> Result<(), TestCaseError>,
) -> Result<(), TestCaseError> {
    match outcome {
        Ok(value) => {
            prop_assert!(
                faults.0.is_empty(),
                "accepted although the reference finds {:?}",
                faults.0
            );
            accepted(value)
        }
        Err(err) => {
            prop_assert!(
                !faults.0.is_empty(),
                "rejected a request the reference accepts: {err}"
            );
            check_rejection(err, faults)
        }
    }
}

/// An accepted Publish keeps every field, fills in the defaults, has unique ids, and
/// names its largest event by encoded size.
fn check_converted(
    req: &pb::PublishRequest,
    (topic, events, largest): (String, Vec<Event>, Largest),
) -> Result<(), TestCaseError> {
    prop_assert_eq!(&topic, &req.topic);
    let sizes: Vec<usize> = req.events.iter().map(prost::Message::encoded_len).collect();
    prop_assert_eq!(largest.bytes, sizes.iter().copied().max().unwrap_or(0));
    prop_assert_eq!(sizes[largest.index], largest.bytes);
    prop_assert_eq!(events.len(), req.events.len());
    let mut ids = HashSet::new();
    for (got, sent) in events.iter().zip(&req.events) {
        match parse_uuid(&sent.id) {
            Some(id) => prop_assert_eq!(got.id.as_u128(), id),
            None => prop_assert_eq!(got.id.get_version_num(), 7, "an assigned id is a UUIDv7"),
        }
        prop_assert!(ids.insert(got.id), "id {} repeats", got.id);
        prop_assert_eq!(&got.event_type, &sent.r#type);
        prop_assert_eq!(&got.source, &sent.source);
        prop_assert_eq!(&got.subject, &sent.subject);
        prop_assert_eq!(&got.correlation_id, &sent.correlation_id);
        prop_assert_eq!(&got.causation_id, &sent.causation_id);
        prop_assert_eq!(&got.content_type, &sent.content_type);
        let version = if sent.schema_version == 0 {
            1
        } else {
            i64::from(sent.schema_version)
        };
        prop_assert_eq!(i64::from(got.schema_version), version);
        let time = got
            .time
            .map(|t| (t.timestamp(), t.timestamp_subsec_nanos() as i32));
        prop_assert_eq!(time, sent.time.map(|t| (t.seconds, t.nanos)));
        let attributes: HashMap<String, serde_json::Value> = got
            .attributes
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let sent_attributes: HashMap<String, serde_json::Value> = sent
            .attributes
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        prop_assert_eq!(attributes, sent_attributes);
        use pb::event::Data;
        match (&got.payload, &sent.data) {
            (Payload::None, None) => {}
            (Payload::Binary(a), Some(Data::BinaryData(b))) => prop_assert_eq!(a, b),
            (Payload::Json(a), Some(Data::TextData(b))) if json_type(&sent.content_type) => {
                prop_assert_eq!(a, b)
            }
            (Payload::Text(a), Some(Data::TextData(b))) if !json_type(&sent.content_type) => {
                prop_assert_eq!(a, b)
            }
            (
                Payload::Proto {
                    type_url,
                    value,
                    json,
                },
                Some(Data::ProtoData(any)),
            ) => {
                prop_assert_eq!(type_url, &any.type_url);
                prop_assert_eq!(value, &any.value);
                // Only a known type (here LessonPublished) gets a JSON rendering.
                let known = type_url.ends_with("/edupulse.events.v1.LessonPublished");
                prop_assert!(known || json.is_none(), "{json:?}");
                if let Some(json) = json {
                    prop_assert!(serde_json::from_str::<serde_json::Value>(json).is_ok());
                }
            }
            (got, sent) => {
                return Err(TestCaseError::fail(format!(
                    "payload {got:?} does not match {sent:?}"
                )));
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------
// The properties.
// ---------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(PUBLISH_CASES))]

    /// Publish: random requests under random (small or default) limits.
    #[test]
    fn publish_accepts_exactly_what_the_rules_allow(
        req in publish_request(false),
        limits in limits(),
    ) {
        let faults = publish_faults(&req, &limits);
        let outcome = validate::publish(req.clone(), &limits);
        check(outcome, &faults, |ok| check_converted(&req, ok))?;
    }

    /// Publish: strings stored in TEXT columns (type, source, subject, correlation_id,
    /// causation_id, content_type, proto_data.type_url) must not hold NUL, which
    /// PostgreSQL cannot store: the validator must reject it naming the field, not
    /// pass it on to fail the insert with INTERNAL.
    #[test]
    fn publish_rejects_nul_in_text_columns(
        req in publish_request(true),
        limits in limits(),
    ) {
        let faults = publish_faults(&req, &limits);
        let outcome = validate::publish(req.clone(), &limits);
        check(outcome, &faults, |ok| check_converted(&req, ok))?;
    }
}

proptest! {
    #![proptest_config(config(CASES))]

    /// The JSON rule alone: with an `application/json` content type, text_data must be
    /// JSON that JSONB can store.
    #[test]
    fn json_text_data_is_accepted_exactly_when_valid(
        text in json_text(),
        content_type in prop::sample::select(vec!["application/json", "application/x+json; v=1"]),
    ) {
        let req = pb::PublishRequest {
            topic: "t".into(),
            events: vec![pb::Event {
                r#type: "x".into(),
                content_type: content_type.into(),
                data: Some(pb::event::Data::TextData(text.clone())),
                ..Default::default()
            }],
        };
        let faults = publish_faults(&req, &Limits::default());
        prop_assert_eq!(faults.0.is_empty(), json_ok(&text));
        let outcome = validate::publish(req.clone(), &Limits::default());
        check(outcome, &faults, |ok| check_converted(&req, ok))?;
    }

    /// Read: topic, offset, page size and type filters.
    #[test]
    fn read_accepts_exactly_what_the_rules_allow(
        topic in name(),
        from_offset in prop_oneof![-3i64..5, any::<i64>()],
        limit in prop_oneof![0u32..3, 998u32..1003, any::<u32>()],
        types in types(false),
    ) {
        let req = pb::ReadRequest { topic, from_offset, limit, types };
        let faults = read_faults(&req);
        check(validate::read(req.clone()), &faults, |p| {
            prop_assert_eq!(&p.topic, &req.topic);
            // 0 stays 0: the log reads it as the first retained offset.
            prop_assert_eq!(p.from, req.from_offset);
            let limit = match req.limit { 0 => 100, n => i64::from(n).min(1000) };
            prop_assert_eq!(p.limit, limit);
            prop_assert_eq!(&p.types, &req.types);
            Ok(())
        })?;
    }

    /// Subscribe: topic, consumer, start position, type filters and max_in_flight.
    #[test]
    fn subscribe_accepts_exactly_what_the_rules_allow(
        topic in name(),
        consumer in consumer(),
        start in start(),
        types in types(false),
        max_in_flight in prop_oneof![0u32..3, 99_999u32..100_002, any::<u32>()],
    ) {
        let req = pb::SubscribeRequest { topic, consumer, start, types, max_in_flight, config: None, batch_records: 0, last_seen: None };
        let faults = subscribe_faults(&req);
        check(validate::subscribe(req.clone()), &faults, |p| {
            prop_assert_eq!(&p.topic, &req.topic);
            let consumer = Some(req.consumer.clone()).filter(|c| !c.is_empty());
            prop_assert_eq!(&p.consumer, &consumer);
            prop_assert_eq!(p.start, expected_start(&req.start));
            prop_assert_eq!(&p.types, &req.types);
            let max = match req.max_in_flight { 0 => 1000, n => n as usize };
            prop_assert_eq!(p.max_in_flight, max);
            Ok(())
        })?;
    }

    /// Read and Subscribe: a NUL in a type filter is refused naming the filter, not
    /// sent to PostgreSQL to fail the query with INTERNAL.
    #[test]
    fn read_and_subscribe_reject_nul_in_type_filters(
        topic in name(),
        types in types(true),
    ) {
        let read = pb::ReadRequest { topic: topic.clone(), types: types.clone(), ..Default::default() };
        let faults = read_faults(&read);
        check(validate::read(read), &faults, |_| Ok(()))?;
        let sub = pb::SubscribeRequest { topic, types, ..Default::default() };
        let faults = subscribe_faults(&sub);
        check(validate::subscribe(sub), &faults, |_| Ok(()))?;
    }

    /// Ack, Seek and DeleteConsumer share the topic, consumer and start rules.
    #[test]
    fn ack_seek_and_delete_accept_exactly_what_the_rules_allow(
        topic in name(),
        consumer in consumer(),
        offset in prop_oneof![-2i64..3, any::<i64>()],
        start in start(),
    ) {
        let ack = pb::AckRequest { topic: topic.clone(), consumer: consumer.clone(), offset, ..Default::default() };
        let mut faults = Faults::default();
        if !topic_ok(&topic) {
            faults.invalid("topic");
        }
        if offset < 0 {
            faults.invalid("offset");
        }
        consumer_faults(&mut faults, &consumer, false);
        check(validate::ack(&ack), &faults, |c| {
            prop_assert_eq!(c.0, Some(consumer.clone()).filter(|c| !c.is_empty()));
            prop_assert_eq!(c.1, validate::Acked::UpTo(offset));
            Ok(())
        })?;

        let seek = pb::SeekRequest { topic: topic.clone(), consumer: consumer.clone(), start };
        let mut faults = Faults::default();
        if !topic_ok(&topic) {
            faults.invalid("topic");
        }
        consumer_faults(&mut faults, &consumer, true);
        start_faults(&mut faults, &seek.start, true);
        check(validate::seek(seek.clone()), &faults, |(t, c, s)| {
            prop_assert_eq!(&t, &topic);
            prop_assert_eq!(&c, &consumer);
            prop_assert_eq!(s, expected_start(&seek.start));
            Ok(())
        })?;

        let delete = pb::DeleteConsumerRequest { topic: topic.clone(), consumer: consumer.clone() };
        let mut faults = Faults::default();
        if !topic_ok(&topic) {
            faults.invalid("topic");
        }
        consumer_faults(&mut faults, &consumer, true);
        check(validate::delete_consumer(delete), &faults, |(t, c)| {
            prop_assert_eq!((t, c), (topic.clone(), consumer.clone()));
            Ok(())
        })?;
    }
}

/// The reference's own edge cases, so a wrong reference cannot hide a wrong validator.
#[test]
fn the_reference_knows_the_edge_cases() {
    assert!(topic_ok("a") && topic_ok(&"x".repeat(128)) && topic_ok("A.b_c-9"));
    assert!(!topic_ok("") && !topic_ok(&"x".repeat(129)) && !topic_ok("-a") && !topic_ok("aé"));
    let u = "67e55044-10b1-426f-9247-bb680e5fe0c8";
    let n = parse_uuid(u).unwrap();
    for form in [
        u.to_uppercase(),
        u.replace('-', ""),
        format!("{{{u}}}"),
        format!("URN:uuid:{u}"),
    ] {
        assert_eq!(parse_uuid(&form), Some(n), "{form}");
    }
    for bad in [
        "",
        "67e55044",
        &u.replace('-', "_"),
        &format!("{u}0"),
        &format!("({u})"),
    ] {
        assert_eq!(parse_uuid(bad), None, "{bad}");
    }
    for good in [
        "0",
        "-0.5e-3",
        " [1, {\"a\": [true, null]}]\n",
        "\"\\ud83d\\ude00\\\\u0000\"",
        "1e308",
        "1e-400",
        &("[".repeat(127) + &"]".repeat(127)),
    ] {
        assert!(json_ok(good), "{good}");
    }
    for bad in [
        "",
        "01",
        "1.",
        "[1,]",
        "{\"a\"}",
        "\"\\u0000\"",
        "\"\\ud800\"",
        "\"\\udc00\"",
        "\"\t\"",
        "2e308",
        "[] []",
        "\u{a0}1",
        &("[".repeat(128) + &"]".repeat(128)),
    ] {
        assert!(!json_ok(bad), "{bad}");
    }
}
