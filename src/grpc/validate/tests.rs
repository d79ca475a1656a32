use super::*;
use crate::config::Limits;
use crate::proto::pulsebus::v1 as pb;
use uuid::Uuid;

fn ok_event() -> pb::Event {
    pb::Event {
        r#type: "lesson.published".into(),
        ..Default::default()
    }
}

fn request(events: Vec<pb::Event>) -> pb::PublishRequest {
    pb::PublishRequest {
        topic: "lessons".into(),
        events,
    }
}

fn invalid_field(err: ApiError) -> String {
    match err {
        ApiError::Invalid { field, .. } | ApiError::TooLarge { field, .. } => field,
        other => panic!("expected a field error, got {other}"),
    }
}

#[test]
fn topic_names_follow_the_documented_pattern() {
    for good in ["a", "lessons", "edu.quiz-results_v2", "9", &"x".repeat(128)] {
        assert!(topic("topic", good).is_ok(), "{good}");
    }
    for bad in ["", ".a", "-a", "_a", "a b", "a/b", "ä", &"x".repeat(129)] {
        assert!(topic("topic", bad).is_err(), "{bad}");
    }
}

#[test]
fn errors_name_the_event_index_and_field() {
    let bad_id = pb::Event {
        id: "nope".into(),
        ..ok_event()
    };
    let err = publish(request(vec![ok_event(), bad_id]), &Limits::default()).unwrap_err();
    assert_eq!(invalid_field(err), "events[1].id");

    let no_type = pb::Event {
        r#type: String::new(),
        ..ok_event()
    };
    let err = publish(request(vec![no_type]), &Limits::default()).unwrap_err();
    assert_eq!(invalid_field(err), "events[0].type");
}

#[test]
fn json_content_must_be_valid_json_without_nul() {
    let json = |text: &str| pb::Event {
        content_type: "application/json; charset=utf-8".into(),
        data: Some(pb::event::Data::TextData(text.into())),
        ..ok_event()
    };
    assert!(publish(request(vec![json(r#"{"a":1}"#)]), &Limits::default()).is_ok());
    let err = publish(request(vec![json("{oops")]), &Limits::default()).unwrap_err();
    assert_eq!(invalid_field(err), "events[0].text_data");
    let err = publish(request(vec![json(r#"{"a":"\u0000"}"#)]), &Limits::default()).unwrap_err();
    assert_eq!(invalid_field(err), "events[0].text_data");
    // The text is stored as sent: a later repeated key does not hide the NUL.
    let hidden = json(r#"{"":"\u0000","":0}"#);
    let err = publish(request(vec![hidden]), &Limits::default()).unwrap_err();
    assert_eq!(invalid_field(err), "events[0].text_data");
    // An escaped backslash before "u0000" is text, not a NUL.
    assert!(
        publish(
            request(vec![json(r#"{"a":"\\u0000"}"#)]),
            &Limits::default()
        )
        .is_ok()
    );
}

#[test]
fn json_media_types_are_recognised() {
    assert!(payload::is_json("application/json"));
    assert!(payload::is_json("Application/JSON; charset=utf-8"));
    assert!(payload::is_json("application/cloudevents+json"));
    assert!(!payload::is_json("text/plain"));
    assert!(!payload::is_json(""));
}

#[test]
fn limits_are_enforced_per_event_per_request_and_per_batch() {
    let limits = Limits {
        max_event_bytes: 100,
        max_request_bytes: 250,
        max_batch_events: 2,
    };
    let big = pb::Event {
        data: Some(pb::event::Data::BinaryData(vec![0; 150])),
        ..ok_event()
    };
    let err = publish(request(vec![big]), &limits).unwrap_err();
    assert!(
        matches!(err, ApiError::TooLarge { ref field, .. } if field == "events[0]"),
        "{err}"
    );

    let err = publish(request(vec![ok_event(); 3]), &limits).unwrap_err();
    assert!(
        matches!(err, ApiError::TooLarge { ref field, .. } if field == "events"),
        "{err}"
    );

    let medium = pb::Event {
        data: Some(pb::event::Data::BinaryData(vec![0; 90])),
        ..ok_event()
    };
    let limits = Limits {
        max_batch_events: 10,
        ..limits
    };
    let err = publish(request(vec![medium; 3]), &limits).unwrap_err();
    assert!(
        matches!(err, ApiError::TooLarge { ref field, .. } if field == "request"),
        "{err}"
    );
}

#[test]
fn repeated_ids_in_one_batch_are_rejected() {
    let id = Uuid::new_v4().to_string();
    let e = pb::Event { id, ..ok_event() };
    let err = publish(request(vec![e.clone(), ok_event(), e]), &Limits::default()).unwrap_err();
    assert_eq!(invalid_field(err), "events[2].id");
}

#[test]
fn timestamps_outside_years_1_to_9999_are_rejected() {
    let t = |seconds, nanos| prost_types::Timestamp { seconds, nanos };
    assert!(timestamp("time", &t(0, 0)).is_ok());
    assert!(timestamp("time", &t(MAX_SECONDS, 999_999_999)).is_ok());
    assert!(timestamp("time", &t(MAX_SECONDS + 1, 0)).is_err());
    assert!(timestamp("time", &t(0, -1)).is_err());
    assert!(timestamp("time", &t(0, 1_000_000_000)).is_err());
}

#[test]
fn read_defaults_and_caps_the_page_size() {
    let req = |limit, from_offset| pb::ReadRequest {
        topic: "t".into(),
        from_offset,
        limit,
        types: vec![],
    };
    assert_eq!(read(req(0, 0)).unwrap().limit, DEFAULT_READ_LIMIT);
    assert_eq!(read(req(5000, 0)).unwrap().limit, MAX_READ_LIMIT);
    assert_eq!(read(req(7, 0)).unwrap().from, 0, "0 is the start");
    assert!(read(req(7, -1)).is_err());
}
