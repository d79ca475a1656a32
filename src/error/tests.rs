use uuid::Uuid;

use super::*;

fn code(err: impl Into<ApiError>) -> (Code, String) {
    let status = Status::from(err.into());
    (status.code(), status.message().to_owned())
}

#[test]
fn invalid_fields_are_invalid_argument_naming_the_field() {
    let (c, m) = code(ApiError::invalid("events[1].id", "must be a UUID"));
    assert_eq!(c, Code::InvalidArgument);
    assert_eq!(m, "events[1].id: must be a UUID");
}

#[test]
fn limits_are_resource_exhausted_naming_the_flag() {
    let err = ApiError::TooLarge {
        field: "events[0]".into(),
        size: 10,
        limit: 5,
        unit: "bytes",
        flag: "max-event-bytes",
    };
    let (c, m) = code(err);
    assert_eq!(c, Code::ResourceExhausted);
    assert!(
        m.contains("events[0]") && m.contains("max-event-bytes"),
        "{m}"
    );
}

#[test]
fn an_existing_topic_already_exists_and_one_in_use_is_a_failed_precondition() {
    let (c, m) = code(LogError::TopicExists { topic: "t".into() });
    assert_eq!(
        (c, m.as_str()),
        (Code::AlreadyExists, "topic 't' already exists")
    );
    let (c, m) = code(LogError::TopicInUse {
        topic: "t".into(),
        consumers: 2,
    });
    assert_eq!(c, Code::FailedPrecondition);
    assert!(m.contains("2 consumer(s)") && m.contains("force"), "{m}");
}

#[test]
fn unknown_topics_are_not_found_and_foreign_ids_already_exist() {
    let (c, _) = code(LogError::TopicNotFound { topic: "t".into() });
    assert_eq!(c, Code::NotFound);
    let err = LogError::IdInOtherTopic {
        id: Uuid::nil(),
        other_topic: "x".into(),
    };
    assert_eq!(code(err).0, Code::AlreadyExists);
    assert_eq!(
        code(ApiError::NotImplemented { rpc: "X" }).0,
        Code::Unimplemented
    );
}

#[test]
fn subscription_errors_map_to_their_codes() {
    let cases = [
        (
            SubscribeError::ConsumerNotFound {
                topic: "t".into(),
                consumer: "c".into(),
            },
            Code::NotFound,
        ),
        (SubscribeError::Ephemeral, Code::FailedPrecondition),
        (
            SubscribeError::AckPastHead {
                topic: "t".into(),
                offset: 9,
                head: 3,
            },
            Code::FailedPrecondition,
        ),
        (
            SubscribeError::StartPastHead {
                topic: "t".into(),
                offset: 9,
                next: 4,
            },
            Code::FailedPrecondition,
        ),
        (
            SubscribeError::ConsumerAttached {
                topic: "t".into(),
                consumer: "c".into(),
            },
            Code::FailedPrecondition,
        ),
        (
            SubscribeError::LeaseLost {
                topic: "t".into(),
                consumer: "c".into(),
            },
            Code::Aborted,
        ),
        (SubscribeError::ShuttingDown, Code::Unavailable),
        (
            SubscribeError::TooManySubscriptions {
                scope: "this server",
                limit: 1,
                flag: "f",
            },
            Code::ResourceExhausted,
        ),
    ];
    for (err, expected) in cases {
        assert_eq!(code(err).0, expected);
    }
}

#[test]
fn auth_failures_are_unauthenticated_or_permission_denied() {
    assert_eq!(code(AuthError::Missing).0, Code::Unauthenticated);
    assert_eq!(code(AuthError::Unknown).0, Code::Unauthenticated);
    let denied = AuthError::Denied {
        principal: "p".into(),
        action: crate::auth::Action::Publish,
        topic: "t".into(),
    };
    assert_eq!(code(denied).0, Code::PermissionDenied);
}

/// Clients get machine-readable details: the field and rule of a bad request, a
/// stable reason with what it is about, and when to retry.
#[test]
fn statuses_carry_field_violations_reasons_and_retry_info() {
    let status = Status::from(ApiError::invalid("events[1].id", "must be a UUID"));
    let violation = &status.get_details_bad_request().unwrap().field_violations[0];
    assert_eq!(
        (violation.field.as_str(), violation.description.as_str()),
        ("events[1].id", "must be a UUID")
    );

    let status = Status::from(ApiError::from(SubscribeError::ConsumerNotFound {
        topic: "t".into(),
        consumer: "c".into(),
    }));
    let info = status.get_details_error_info().unwrap();
    assert_eq!(
        (info.reason.as_str(), info.domain.as_str()),
        ("CONSUMER_NOT_FOUND", ERROR_DOMAIN)
    );
    assert_eq!(info.metadata["consumer"], "c");
    assert!(
        status.message().contains("consumer 'c'"),
        "the message stays"
    );

    let status = Status::from(ApiError::from(LogError::Unavailable {
        source: sqlx::Error::PoolTimedOut,
    }));
    let retry = status.get_details_retry_info().unwrap();
    assert_eq!(retry.retry_delay, Some(RETRY_AFTER));
    let lost = Status::from(ApiError::from(LogError::FlushLost(crate::group::FlushLost)));
    assert_eq!(lost.code(), Code::Internal);
}

/// A read below the first retained offset names that offset, for a client to
/// resume there.
#[test]
fn offsets_removed_by_retention_are_out_of_range_naming_the_first_offset() {
    let status = Status::from(ApiError::from(LogError::OutOfRange {
        topic: "t".into(),
        offset: 3,
        first_offset: 11,
    }));
    assert_eq!(status.code(), Code::OutOfRange);
    assert!(status.message().contains("first retained offset 11"));
    let info = status.get_details_error_info().unwrap();
    assert_eq!(info.reason, "OFFSET_OUT_OF_RANGE");
    assert_eq!(info.metadata["first_offset"], "11");
    assert_eq!(info.metadata["offset"], "3");
}

#[test]
fn database_failures_hide_their_detail() {
    let source = sqlx::Error::Protocol("SELECT secret FROM creds".into());
    let (c, m) = code(LogError::Database {
        context: "reading events",
        source,
    });
    assert_eq!(c, Code::Internal);
    assert!(!m.contains("secret"), "{m}");
    let (c, m) = code(LogError::Unavailable {
        source: sqlx::Error::PoolTimedOut,
    });
    assert_eq!(c, Code::Unavailable);
    assert!(m.contains("retry"), "{m}");
}

#[test]
fn an_event_over_its_topics_limit_is_resource_exhausted_naming_event_topic_and_limit() {
    let status = Status::from(ApiError::from(LogError::EventTooLarge {
        topic: "essays".into(),
        index: 2,
        bytes: 900,
        limit: 300,
    }));
    assert_eq!(status.code(), Code::ResourceExhausted);
    let info = status.get_details_error_info().expect("an ErrorInfo");
    assert_eq!(info.reason, "LIMIT_EXCEEDED");
    assert_eq!(info.metadata["field"], "events[2]");
    assert_eq!(info.metadata["topic"], "essays");
    assert_eq!(info.metadata["limit"], "300");
    assert!(status.message().contains("900"), "{}", status.message());
}
