//! What a client call can fail with, and whether trying again can help.

use tonic::Code;

/// An error of the client.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server URL does not parse, or names no usable scheme.
    #[error("invalid server URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    /// The TLS settings are not usable.
    #[error("invalid TLS settings: {0}")]
    Tls(String),
    /// The bearer token cannot be sent as gRPC metadata.
    #[error("invalid bearer token: it must be visible ASCII")]
    InvalidToken,
    /// The server answered with an error status (after retries, for retryable ones).
    #[error("{}: {}", .0.code(), .0.message())]
    Status(#[from] tonic::Status),
    /// A payload could not be encoded or decoded as the asked-for type.
    #[error("payload: {0}")]
    Payload(String),
    /// Options that cannot work, naming the field.
    #[error("invalid options: {0}")]
    InvalidOptions(String),
    /// The consumer or publisher was closed.
    #[error("closed")]
    Closed,
}

impl ClientError {
    /// The gRPC status code, when the server answered with one.
    pub fn code(&self) -> Option<Code> {
        match self {
            Self::Status(status) => Some(status.code()),
            _ => None,
        }
    }
}

/// Whether a failed unary call may succeed when sent again unchanged. Publishing is
/// safe to repeat (events carry client-assigned ids), so is acking.
pub fn is_retryable(code: Code) -> bool {
    matches!(
        code,
        Code::Unavailable | Code::DeadlineExceeded | Code::Aborted | Code::Unknown
    )
}

/// Whether a Subscribe stream that ended with `code` should be opened again: every
/// error except those that say the request itself is wrong (it would fail the same way).
pub fn is_resumable(code: Code) -> bool {
    !matches!(
        code,
        Code::InvalidArgument
            | Code::NotFound
            | Code::AlreadyExists
            | Code::PermissionDenied
            | Code::Unauthenticated
            | Code::FailedPrecondition
            | Code::OutOfRange
            | Code::Unimplemented
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outages_are_retried_and_bad_requests_are_not() {
        assert!(is_retryable(Code::Unavailable));
        assert!(!is_retryable(Code::InvalidArgument));
        assert!(
            is_resumable(Code::ResourceExhausted),
            "too many subscriptions passes"
        );
        assert!(is_resumable(Code::Aborted), "a lost lease is taken again");
        assert!(!is_resumable(Code::FailedPrecondition));
    }
}
