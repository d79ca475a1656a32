//! How a subscription, ack, seek or consumer failure becomes a status.

use tonic::Code;

use super::{Mapped, RETRY_AFTER, info, log_status, retry};
use crate::subscribe::SubscribeError;

pub(super) fn subscribe_status(err: SubscribeError, message: String) -> Mapped {
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
