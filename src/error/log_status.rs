//! How a failure of the event log becomes a status.

use tonic::Code;
use tonic_types::ErrorDetails;

use super::{Mapped, RETRY_AFTER, info, retry};
use crate::log::LogError;

pub(super) fn log_status(err: &LogError, message: String) -> Mapped {
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
        LogError::LogDiverged {
            topic,
            offset,
            head,
            seen_id,
        } => {
            let meta = [
                ("topic", topic.clone()),
                ("offset", offset.to_string()),
                ("head_offset", head.to_string()),
                ("last_seen_event_id", seen_id.to_string()),
            ];
            (
                Code::FailedPrecondition,
                message,
                info("LOG_DIVERGED", meta),
            )
        }
        LogError::EventTooLarge {
            topic,
            index,
            limit,
            ..
        } => {
            let meta = [
                ("field", format!("events[{index}]")),
                ("limit", limit.to_string()),
                ("topic", topic.clone()),
                ("setting", "max_event_bytes".to_owned()),
            ];
            (
                Code::ResourceExhausted,
                message,
                info("LIMIT_EXCEEDED", meta),
            )
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
