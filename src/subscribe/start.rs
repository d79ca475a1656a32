//! Where a new consumer or subscription starts, as the committed offset it implies
//! (the offset before the first one to deliver).

use chrono::{DateTime, Utc};

use super::SubscribeError;
use crate::log::{EventLog, LogError};

/// A start position, as asked for in Subscribe or Seek.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// From the first retained offset (1 until retention removed something).
    Earliest,
    /// After the current head.
    Latest,
    /// From this offset (at least 1).
    Offset {
        /// The first offset to deliver.
        offset: i64,
    },
    /// From the first event appended at or after this time.
    Time {
        /// The time.
        at: DateTime<Utc>,
    },
}

/// The committed offset that makes delivery begin at `start`, for a topic at `head`.
/// An explicit offset below the first retained one is `OutOfRange`, as in Read (the
/// caller asked for records that are gone); earliest is the first retained offset.
pub async fn committed_for(
    log: &EventLog,
    topic: &str,
    start: Start,
    head: i64,
) -> Result<i64, SubscribeError> {
    Ok(match start {
        Start::Earliest => log.bounds(topic).await?.0 - 1,
        Start::Latest => head,
        Start::Offset { offset } if offset > head + 1 => {
            return Err(SubscribeError::StartPastHead {
                topic: topic.to_owned(),
                offset,
                next: head + 1,
            });
        }
        Start::Offset { offset } => {
            let (first_offset, _) = log.bounds(topic).await?;
            if offset < first_offset {
                return Err(LogError::OutOfRange {
                    topic: topic.to_owned(),
                    offset,
                    first_offset,
                }
                .into());
            }
            offset - 1
        }
        Start::Time { at } => match log.first_offset_at(topic, at).await? {
            Some(offset) => offset - 1,
            None => head,
        },
    })
}
