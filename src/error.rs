//! The errors a request can end with, and the one place they become a `tonic::Status`.
//!
//! Messages name the field and the rule so the caller can fix the request; internal
//! errors are logged here with their context and reach the caller only as INTERNAL,
//! without SQL or credentials.

use std::collections::HashMap;
use std::time::Duration;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::auth::AuthError;
use crate::log::LogError;
use crate::subscribe::SubscribeError;

/// Why a request failed, as the gRPC layer sees it.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A field breaks a rule.
    #[error("{field}: {rule}")]
    Invalid {
        /// The field path, e.g. `events[2].id`.
        field: String,
        /// The rule it breaks, phrased so the caller can fix it.
        rule: String,
    },
    /// A size or count limit was exceeded.
    #[error("{field}: {size} exceeds the limit of {limit} {unit} (raise it with --{flag})")]
    TooLarge {
        /// The field path, e.g. `events[2]` or `events`.
        field: String,
        /// What was sent.
        size: usize,
        /// The configured limit.
        limit: usize,
        /// `bytes` or `events`.
        unit: &'static str,
        /// The server flag that sets the limit.
        flag: &'static str,
    },
    /// The RPC belongs to a part of the API not served yet.
    #[error("{rpc} is not implemented by this server yet")]
    NotImplemented {
        /// The RPC name.
        rpc: &'static str,
    },
    /// The caller is not authenticated, or not allowed to do this.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The event log failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// A subscription, ack, seek or consumer operation failed.
    #[error(transparent)]
    Subscribe(#[from] SubscribeError),
}

impl ApiError {
    /// Shorthand for [`ApiError::Invalid`].
    pub fn invalid(field: impl Into<String>, rule: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            rule: rule.into(),
        }
    }
}

/// The domain of every `ErrorInfo` this server sends.
pub const ERROR_DOMAIN: &str = "pulsebus.v1";

/// How long a client should wait before retrying an UNAVAILABLE call.
const RETRY_AFTER: Duration = Duration::from_secs(1);

impl From<ApiError> for Status {
    fn from(err: ApiError) -> Self {
        let message = err.to_string();
        let (code, message, details) = match err {
            ApiError::Invalid { field, rule } => (
                Code::InvalidArgument,
                message,
                ErrorDetails::with_bad_request_violation(field, rule),
            ),
            ApiError::TooLarge {
                field, limit, flag, ..
            } => {
                let meta = [
                    ("field", field),
                    ("limit", limit.to_string()),
                    ("flag", flag.into()),
                ];
                (
                    Code::ResourceExhausted,
                    message,
                    info("LIMIT_EXCEEDED", meta),
                )
            }
            ApiError::NotImplemented { .. } => (Code::Unimplemented, message, ErrorDetails::new()),
            ApiError::Auth(auth) => auth_status(auth, message),
            ApiError::Log(log) => log_status(&log, message),
            ApiError::Subscribe(sub) => subscribe_status(sub, message),
        };
        Status::with_error_details(code, message, details)
    }
}

/// A code, the message, and the google.rpc details that go with it.
type Mapped = (Code, String, ErrorDetails);

/// An `ErrorInfo` with a stable `reason` and what it is about.
fn info<const N: usize>(reason: &str, meta: [(&str, String); N]) -> ErrorDetails {
    let meta: HashMap<String, String> = meta.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    ErrorDetails::with_error_info(reason, ERROR_DOMAIN, meta)
}

fn auth_status(err: AuthError, message: String) -> Mapped {
    match err {
        AuthError::Missing => (Code::Unauthenticated, message, info("TOKEN_MISSING", [])),
        AuthError::Unknown => (Code::Unauthenticated, message, info("TOKEN_UNKNOWN", [])),
        AuthError::Denied {
            principal, topic, ..
        } => {
            let meta = [("principal", principal), ("topic", topic)];
            (
                Code::PermissionDenied,
                message,
                info("PERMISSION_DENIED", meta),
            )
        }
    }
}

fn subscribe_status(err: SubscribeError, message: String) -> Mapped {
    use SubscribeError as E;
    let (code, details) = match err {
        E::ConsumerNotFound { topic, consumer } => (
            Code::NotFound,
            info(
                "CONSUMER_NOT_FOUND",
                [("topic", topic), ("consumer", consumer)],
            ),
        ),
        E::Ephemeral => (Code::FailedPrecondition, info("EPHEMERAL_SUBSCRIPTION", [])),
        E::AckPastHead {
            topic,
            offset,
            head,
        } => {
            let meta = [
                ("topic", topic),
                ("offset", offset.to_string()),
                ("head", head.to_string()),
            ];
            (Code::FailedPrecondition, info("ACK_PAST_HEAD", meta))
        }
        E::StartPastHead {
            topic,
            offset,
            next,
        } => {
            let meta = [
                ("topic", topic),
                ("offset", offset.to_string()),
                ("next", next.to_string()),
            ];
            (Code::FailedPrecondition, info("START_PAST_HEAD", meta))
        }
        E::ConsumerAttached { topic, consumer } => (
            Code::FailedPrecondition,
            info(
                "CONSUMER_ATTACHED",
                [("topic", topic), ("consumer", consumer)],
            ),
        ),
        E::LeaseLost { topic, consumer } => (
            Code::Aborted,
            info("LEASE_LOST", [("topic", topic), ("consumer", consumer)]),
        ),
        E::TooManySubscriptions { limit, flag, .. } => {
            let meta = [("limit", limit.to_string()), ("flag", flag.to_owned())];
            (
                Code::ResourceExhausted,
                info("TOO_MANY_SUBSCRIPTIONS", meta),
            )
        }
        E::ModeMismatch {
            topic,
            consumer,
            stored,
            requested,
        } => {
            let meta = [
                ("topic", topic),
                ("consumer", consumer),
                ("mode", stored.name().to_owned()),
                ("requested", requested.name().to_owned()),
            ];
            (Code::FailedPrecondition, info("MODE_MISMATCH", meta))
        }
        E::NotShared {
            topic, consumer, ..
        } => (
            Code::FailedPrecondition,
            info("NOT_SHARED", [("topic", topic), ("consumer", consumer)]),
        ),
        E::CumulativeAckOnShared {
            topic, consumer, ..
        } => (
            Code::FailedPrecondition,
            info(
                "CUMULATIVE_ACK_ON_SHARED",
                [("topic", topic), ("consumer", consumer)],
            ),
        ),
        E::TypesOnShared { topic, consumer } => (
            Code::FailedPrecondition,
            info(
                "TYPES_ON_SHARED",
                [("topic", topic), ("consumer", consumer)],
            ),
        ),
        E::RecordsInFlight {
            topic, consumer, ..
        } => (
            Code::FailedPrecondition,
            info(
                "RECORDS_IN_FLIGHT",
                [("topic", topic), ("consumer", consumer)],
            ),
        ),
        E::ShuttingDown => (Code::Unavailable, retry(RETRY_AFTER)),
        E::Log(log) => return log_status(&log, message),
    };
    (code, message, details)
}

fn log_status(err: &LogError, message: String) -> Mapped {
    match err {
        LogError::Shared(inner) => log_status(inner, message),
        LogError::TopicNotFound { topic } => (
            Code::NotFound,
            message,
            info("TOPIC_NOT_FOUND", [("topic", topic.clone())]),
        ),
        LogError::TopicExists { topic } => (
            Code::AlreadyExists,
            message,
            info("TOPIC_EXISTS", [("topic", topic.clone())]),
        ),
        LogError::TopicInUse { topic, consumers } => {
            let meta = [
                ("topic", topic.clone()),
                ("consumers", consumers.to_string()),
            ];
            (
                Code::FailedPrecondition,
                message,
                info("SUBSCRIBERS_ATTACHED", meta),
            )
        }
        LogError::OutOfRange {
            topic,
            offset,
            first_offset,
        } => {
            let meta = [
                ("topic", topic.clone()),
                ("offset", offset.to_string()),
                ("first_offset", first_offset.to_string()),
            ];
            (Code::OutOfRange, message, info("OFFSET_OUT_OF_RANGE", meta))
        }
        LogError::IdInOtherTopic { id, other_topic } => {
            let meta = [("id", id.to_string()), ("topic", other_topic.clone())];
            (
                Code::AlreadyExists,
                message,
                info("ID_IN_OTHER_TOPIC", meta),
            )
        }
        LogError::Unavailable { source } => {
            tracing::warn!(error = %source, "database unavailable");
            let message = "the database is unavailable; retry later".to_owned();
            (Code::Unavailable, message, retry(RETRY_AFTER))
        }
        LogError::FlushLost(lost) => {
            tracing::error!(error = %lost, "a grouped write was lost");
            let message = "internal error: a write was lost before it answered; see the server log";
            (Code::Internal, message.to_owned(), ErrorDetails::new())
        }
        LogError::Database { context, source } => {
            tracing::error!(error = %source, context = *context, "database error");
            let message = format!("internal error while {context}; see the server log");
            (Code::Internal, message, ErrorDetails::new())
        }
    }
}

/// A `RetryInfo` asking to wait `after`.
fn retry(after: Duration) -> ErrorDetails {
    ErrorDetails::with_retry_info(Some(after))
}

#[cfg(test)]
mod tests {
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
}
