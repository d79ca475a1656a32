//! Group commit for individual acks of shared consumers: while one settle transaction
//! for a consumer is in flight, further Ack calls for it wait and are folded into the
//! next one, so acks arriving together take the consumer's row lock once. Every call
//! answers only after the transaction covering its offsets committed.

use std::sync::Arc;

use tokio::sync::oneshot;
use tokio_util::task::TaskTracker;

use super::SubscribeError;
use crate::group::{Flush, Grouper, reply_channel};
use crate::log::{Change, EventLog, LogError, Position};

type Outcome = Result<Change<Position>, Arc<LogError>>;

/// The consumer whose records are settled together.
type Key = (String, String);

/// One Ack call waiting for its settle.
struct SettleJob {
    offsets: Vec<i64>,
    reply: oneshot::Sender<Outcome>,
}

/// Most offsets settled in one transaction.
const MAX_OFFSETS: usize = 10_000;

/// Coalesces concurrent individual acks per consumer.
pub struct SettleCoalescer {
    grouper: Arc<Grouper<Key, SettleJob>>,
}

impl SettleCoalescer {
    /// A coalescer whose transactions run on `tracker` (so shutdown waits for them).
    pub fn new(log: EventLog, tracker: TaskTracker) -> Self {
        let flush = move |key, jobs| -> Flush { Box::pin(flush(log.clone(), key, jobs)) };
        Self {
            grouper: Grouper::new(flush, |j| j.offsets.len(), MAX_OFFSETS, tracker),
        }
    }

    /// Settles `offsets` of the consumer, together with whatever else arrives meanwhile.
    pub async fn settle(
        &self,
        topic: &str,
        consumer: &str,
        offsets: Vec<i64>,
    ) -> Result<Change<Position>, SubscribeError> {
        let (reply, outcome) = reply_channel();
        let key = (topic.to_owned(), consumer.to_owned());
        self.grouper.submit(key, SettleJob { offsets, reply });
        let outcome = outcome.wait().await.map_err(LogError::from)?;
        outcome.map_err(|e| LogError::Shared(e).into())
    }
}

/// One transaction for every job's offsets; every caller gets its outcome.
async fn flush(log: EventLog, (topic, consumer): Key, jobs: Vec<SettleJob>) {
    let offsets: Vec<i64> = jobs
        .iter()
        .flat_map(|j| j.offsets.iter().copied())
        .collect();
    let outcome = log
        .settle(&topic, &consumer, &offsets)
        .await
        .map_err(Arc::new);
    for job in jobs {
        let _ = job.reply.send(outcome.clone());
    }
}
