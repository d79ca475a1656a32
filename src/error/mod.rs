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

mod log_status;
mod subscribe_status;
#[cfg(test)]
mod tests;

use log_status::log_status;
use subscribe_status::subscribe_status;

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

/// A `RetryInfo` asking to wait `after`.
fn retry(after: Duration) -> ErrorDetails {
    ErrorDetails::with_retry_info(Some(after))
}
