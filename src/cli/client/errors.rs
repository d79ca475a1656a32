//! Why a client command failed, what it prints about it, and the exit code a script can
//! test (documented in the README's CLI section and in [`ExitCode`]).

use crate::proto::code_name;
use std::path::PathBuf;

use tonic::Code;
use tonic_types::StatusExt;

/// The exit codes of the client commands. Clap's own usage errors also exit with 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ExitCode {
    /// Anything not listed below (internal errors, unreadable files, UNIMPLEMENTED).
    Failure = 1,
    /// The command line is wrong (bad flag combination, unparsable position).
    Usage = 2,
    /// NOT_FOUND: no such topic or consumer.
    NotFound = 3,
    /// The server cannot be reached or asks to come back later (UNAVAILABLE,
    /// DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED), or `health` found it not serving.
    Unavailable = 4,
    /// UNAUTHENTICATED or PERMISSION_DENIED: the token is missing, wrong or too weak.
    Permission = 5,
    /// INVALID_ARGUMENT or OUT_OF_RANGE, or a payload that does not fit its type.
    InvalidArgument = 6,
    /// ALREADY_EXISTS, FAILED_PRECONDITION or ABORTED: the state forbids it now.
    Conflict = 7,
}

impl ExitCode {
    /// The exit code a gRPC status code maps to.
    pub fn of_status(code: Code) -> Self {
        match code {
            Code::NotFound => Self::NotFound,
            Code::Unavailable | Code::DeadlineExceeded | Code::ResourceExhausted => {
                Self::Unavailable
            }
            Code::Unauthenticated | Code::PermissionDenied => Self::Permission,
            Code::InvalidArgument | Code::OutOfRange => Self::InvalidArgument,
            Code::AlreadyExists | Code::FailedPrecondition | Code::Aborted => Self::Conflict,
            Code::Ok
            | Code::Cancelled
            | Code::Unknown
            | Code::Unimplemented
            | Code::Internal
            | Code::DataLoss => Self::Failure,
        }
    }
}

/// Why a client command failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// `--server` is not a URL.
    #[error("invalid --server {server:?}: {source}")]
    BadServer {
        /// The URL tried.
        server: String,
        /// What is wrong with it.
        source: tonic::codegen::http::uri::InvalidUri,
    },
    /// A PEM file named by a flag could not be read.
    #[error("cannot read {flag} {path}: {source}")]
    ReadFile {
        /// The flag that named it.
        flag: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// TLS could not be set up with the given files.
    #[error("cannot set up TLS: {}", with_causes(.0))]
    Tls(tonic::transport::Error),
    /// No connection to the server. The message gives every cause, because tonic's
    /// own "transport error" alone does not say that a certificate was refused, or why.
    #[error("cannot reach {server}: {}", with_causes(source))]
    Unreachable {
        /// The URL dialled.
        server: String,
        /// The transport's error.
        source: tonic::transport::Error,
    },
    /// The token cannot be sent as an HTTP header.
    #[error("--token is not a valid header value (printable ASCII only)")]
    BadToken,
    /// The command line makes no sense, found after clap accepted it.
    #[error("{0}")]
    Usage(String),
    /// `publish --data` does not fit the message type `--type` names.
    #[error("--data is not a valid {message_type}: {reason}")]
    BadPayload {
        /// The full name of the message type.
        message_type: String,
        /// What does not fit, naming the field.
        reason: String,
    },
    /// `health`: the server answered, but is not serving.
    #[error("{service} is {status}")]
    NotServing {
        /// The service asked about ("" for the whole server).
        service: String,
        /// The status it reported.
        status: String,
    },
    /// The server answered with an error.
    #[error("{}", describe_status(.0))]
    Status(#[from] tonic::Status),
    /// Printing the output failed.
    #[error("cannot write to stdout: {0}")]
    Output(std::io::Error),
}

impl ClientError {
    /// Whether only stdout was closed early (`| head -1`).
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, Self::Output(e) if e.kind() == std::io::ErrorKind::BrokenPipe)
    }

    /// The exit code for this failure.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Self::Status(status) => ExitCode::of_status(status.code()),
            Self::Unreachable { .. } | Self::NotServing { .. } => ExitCode::Unavailable,
            Self::BadServer { .. } | Self::BadToken | Self::Usage(_) => ExitCode::Usage,
            Self::BadPayload { .. } => ExitCode::InvalidArgument,
            Self::ReadFile { .. } | Self::Tls(_) | Self::Output(_) => ExitCode::Failure,
        }
    }
}

/// `error` and its chain of sources, `: `-separated, each message once (some layers
/// repeat their source's message in their own).
pub fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        let message = e.to_string();
        if !text.contains(&message) {
            text.push_str(": ");
            text.push_str(&message);
        }
        cause = e.source();
    }
    text
}

/// The server's message with its code, then the google.rpc details that say more: the
/// fields and rules of a bad request, the reason of an ErrorInfo, precondition
/// violations, and when to retry. Transport failures inside a status (the server went
/// away mid-call) show their causes.
pub fn describe_status(status: &tonic::Status) -> String {
    let mut text = format!("{}: {}", code_name(status.code()), status.message());
    if let Some(source) = std::error::Error::source(status)
        && status.message().is_empty()
    {
        text.push_str(&with_causes(source));
    }
    let details = status.get_error_details();
    for v in details
        .bad_request()
        .map(|b| &b.field_violations[..])
        .unwrap_or(&[])
    {
        text.push_str(&format!("\n  field {}: {}", v.field, v.description));
    }
    if let Some(info) = details.error_info() {
        text.push_str(&format!("\n  reason: {}", info.reason));
        let mut meta: Vec<_> = info.metadata.iter().collect();
        meta.sort();
        for (key, value) in meta {
            text.push_str(&format!("\n  {key}: {value}"));
        }
    }
    for v in details
        .precondition_failure()
        .map(|p| &p.violations[..])
        .unwrap_or(&[])
    {
        text.push_str(&format!(
            "\n  precondition {} {}: {}",
            v.r#type, v.subject, v.description
        ));
    }
    if let Some(delay) = details.retry_info().and_then(|r| r.retry_delay) {
        text.push_str(&format!(
            "\n  retry after: {}",
            humantime::format_duration(delay)
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic_types::ErrorDetails;

    #[test]
    fn a_status_prints_its_message_code_and_field_violations_not_tonics_description() {
        let details = ErrorDetails::with_bad_request_violation("topic", "must not be empty");
        let status = tonic::Status::with_error_details(
            Code::InvalidArgument,
            "topic: must not be empty",
            details,
        );
        assert_eq!(
            describe_status(&status),
            "INVALID_ARGUMENT: topic: must not be empty\n  field topic: must not be empty"
        );
        assert_eq!(
            ExitCode::of_status(status.code()),
            ExitCode::InvalidArgument
        );
    }
}
