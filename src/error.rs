//! The errors a request can end with, and the one place they become a `tonic::Status`.
//!
//! Messages name the field and the rule so the caller can fix the request; internal
//! errors are logged here with their context and reach the caller only as INTERNAL,
//! without SQL or credentials.

use tonic::Status;

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

impl From<ApiError> for Status {
    fn from(err: ApiError) -> Self {
        let message = err.to_string();
        match err {
            ApiError::Invalid { .. } => Status::invalid_argument(message),
            ApiError::TooLarge { .. } => Status::resource_exhausted(message),
            ApiError::NotImplemented { .. } => Status::unimplemented(message),
            ApiError::Auth(auth) => auth_status(auth, message),
            ApiError::Log(log) => log_status(&log, message),
            ApiError::Subscribe(sub) => subscribe_status(sub, message),
        }
    }
}

fn auth_status(err: AuthError, message: String) -> Status {
    match err {
        AuthError::Missing | AuthError::Unknown => Status::unauthenticated(message),
        AuthError::Denied { .. } => Status::permission_denied(message),
    }
}

fn subscribe_status(err: SubscribeError, message: String) -> Status {
    match err {
        SubscribeError::ConsumerNotFound { .. } => Status::not_found(message),
        SubscribeError::Ephemeral
        | SubscribeError::AckPastHead { .. }
        | SubscribeError::StartPastHead { .. }
        | SubscribeError::ConsumerAttached { .. } => Status::failed_precondition(message),
        SubscribeError::LeaseLost { .. } => Status::aborted(message),
        SubscribeError::TooManySubscriptions { .. } => Status::resource_exhausted(message),
        SubscribeError::ShuttingDown => Status::unavailable(message),
        SubscribeError::Log(log) => log_status(&log, message),
    }
}

fn log_status(err: &LogError, message: String) -> Status {
    match err {
        LogError::Shared(inner) => log_status(inner, message),
        LogError::TopicNotFound { .. } => Status::not_found(message),
        LogError::IdInOtherTopic { .. } => Status::already_exists(message),
        LogError::Unavailable { source } => {
            tracing::warn!(error = %source, "database unavailable");
            Status::unavailable("the database is unavailable; retry later")
        }
        LogError::FlushLost(lost) => {
            tracing::error!(error = %lost, "a grouped write was lost");
            Status::internal(
                "internal error: a write was lost before it answered; see the server log",
            )
        }
        LogError::Database { context, source } => {
            tracing::error!(error = %source, context = *context, "database error");
            Status::internal(format!(
                "internal error while {context}; see the server log"
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use tonic::Code;
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
