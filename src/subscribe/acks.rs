//! Group commit for acks: while one UPDATE for a consumer is in flight, further acks
//! for it wait and are folded into the next UPDATE with the highest offset among them.
//! Every Ack call answers only after an UPDATE covering its offset committed, so no
//! caller is told of a commit that has not happened. Acks carrying different seek
//! epochs are grouped apart (the UPDATE decides which epoch is current).

use std::sync::Arc;

use tokio::sync::oneshot;
use tokio_util::task::TaskTracker;

use super::SubscribeError;
use super::signals::Signals;
use crate::group::{Flush, Grouper, reply_channel};
use crate::log::{DeliveryMode, EventLog, LogError, Position};

type Outcome = Result<Option<(Position, DeliveryMode)>, Arc<LogError>>;

/// Whose acks share an UPDATE: a consumer, and the seek epoch the acks carry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    topic: String,
    consumer: String,
    epoch: Option<i64>,
}

/// One Ack call waiting for its UPDATE.
struct AckJob {
    offset: i64,
    reply: oneshot::Sender<Outcome>,
}

/// Coalesces concurrent acks per consumer.
pub struct AckCoalescer {
    grouper: Arc<Grouper<Key, AckJob>>,
}

impl AckCoalescer {
    /// A coalescer whose UPDATEs run on `tracker` (so shutdown waits for them).
    pub fn new(log: EventLog, signals: Arc<Signals>, tracker: TaskTracker) -> Self {
        let flush = move |key, jobs| -> Flush {
            Box::pin(flush(log.clone(), Arc::clone(&signals), key, jobs))
        };
        Self {
            grouper: Grouper::new(flush, |_| 1, usize::MAX, tracker),
        }
    }

    /// Commits `offset` for the consumer (unless `epoch` is older than the consumer's);
    /// `None` if the consumer does not exist.
    pub async fn ack(
        &self,
        topic: &str,
        consumer: &str,
        offset: i64,
        epoch: Option<i64>,
    ) -> Result<Option<(Position, DeliveryMode)>, SubscribeError> {
        let (reply, outcome) = reply_channel();
        let key = Key {
            topic: topic.to_owned(),
            consumer: consumer.to_owned(),
            epoch,
        };
        self.grouper.submit(key, AckJob { offset, reply });
        let outcome = outcome.wait().await.map_err(LogError::from)?;
        outcome.map_err(|e| LogError::Shared(e).into())
    }
}

/// One UPDATE with the highest offset of the batch; every caller gets its outcome.
async fn flush(log: EventLog, signals: Arc<Signals>, key: Key, jobs: Vec<AckJob>) {
    let offset = jobs.iter().map(|j| j.offset).max().unwrap_or(0);
    let outcome = log
        .ack(&key.topic, &key.consumer, offset, key.epoch)
        .await
        .map_err(Arc::new);
    if let Ok(Some((position, _))) = outcome {
        signals.moved(&key.topic, &key.consumer, position);
    }
    for job in jobs {
        let _ = job.reply.send(outcome.clone());
    }
}
