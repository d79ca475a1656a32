//! [`Consumer::run`]: a handler over a consumer. The handler says what became of each
//! record ([`Outcome`]); the runner acks, nacks or dead-letters it, extends its ack
//! deadline while the handler works (shared modes), runs up to `concurrency` handlers
//! at once in lanes that keep each subject's records in order, and shuts down
//! gracefully when told.

use std::collections::hash_map::DefaultHasher;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::consume::{Consumer, Message};
use crate::error::ClientError;
use crate::proto::pulsebus::v1::{DeliveryMode, Record};

/// What became of a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Handled: ack it.
    Ack,
    /// Not now: redeliver after this delay, or the consumer's back-off.
    Retry(Option<Duration>),
    /// Never: park it in the dead-letter topic with this reason.
    Fail(String),
}

/// How [`Consumer::run`] runs the handler.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Handlers running at once. Records with the same subject go through one lane,
    /// in order; records without a subject are spread over all lanes. Default 1.
    pub concurrency: usize,
    /// Stops the runner: no new records, the ones in hand finish and are settled.
    pub shutdown: CancellationToken,
    /// On shutdown, nack the records in hand at once instead of finishing them.
    pub nack_on_shutdown: bool,
    /// How long shutdown waits for handlers to finish. Default 30 s.
    pub grace: Duration,
    /// Shared modes: extend a record's ack deadline this often while its handler
    /// runs. Default: half the configured ack deadline, else 10 s.
    pub extend_every: Option<Duration>,
    /// ... for at most this long after the delivery. Default 10 min.
    pub max_extension: Duration,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            concurrency: 1,
            shutdown: CancellationToken::new(),
            nack_on_shutdown: false,
            grace: Duration::from_secs(30),
            extend_every: None,
            max_extension: Duration::from_secs(600),
        }
    }
}

/// Records queued for one lane beyond the one in its handler.
const LANE_QUEUE: usize = 16;

impl Consumer {
    /// Runs `handler` on every record until `options.shutdown` is cancelled (then
    /// returns `Ok`) or the consumer stops for good (the error). A handler that panics
    /// counts as `Retry(None)`.
    pub async fn run<H, Fut>(mut self, handler: H, options: RunOptions) -> Result<(), ClientError>
    where
        H: Fn(Record) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Outcome> + Send + 'static,
    {
        let handler = Arc::new(handler);
        let extend = self.extension(&options);
        let stop_now = CancellationToken::new();
        let mut workers = JoinSet::new();
        let lanes: Vec<mpsc::Sender<Message>> = (0..options.concurrency.max(1))
            .map(|_| {
                let (tx, rx) = mpsc::channel(LANE_QUEUE);
                workers.spawn(lane(rx, handler.clone(), extend, stop_now.clone()));
                tx
            })
            .collect();
        let mut spread = 0usize;
        let result = loop {
            let next = tokio::select! {
                _ = options.shutdown.cancelled() => break Ok(()),
                next = self.next() => next,
            };
            let message = match next {
                None => break Ok(()),
                Some(Err(e)) => break Err(e),
                Some(Ok(message)) => message,
            };
            let lane = lane_of(&message, lanes.len(), &mut spread);
            if lanes[lane].send(message).await.is_err() {
                break Err(ClientError::Closed);
            }
        };
        self.stop_handing_out();
        drop(lanes);
        if options.nack_on_shutdown {
            stop_now.cancel();
        }
        let finished = async { while workers.join_next().await.is_some() {} };
        if tokio::time::timeout(options.grace, finished).await.is_err() {
            workers.abort_all(); // their messages are dropped, hence nacked
        }
        self.shutdown(Duration::ZERO).await;
        result
    }

    /// When to extend deadlines: shared modes only (exclusive consumers have none).
    fn extension(&self, options: &RunOptions) -> Option<(Duration, Duration)> {
        if self.options.delivery_mode() == DeliveryMode::Exclusive {
            return None;
        }
        let deadline = self
            .options
            .config
            .as_ref()
            .and_then(|c| c.ack_deadline)
            .and_then(|d| {
                u64::try_from(d.seconds)
                    .ok()
                    .map(|s| Duration::from_secs(s) + Duration::from_nanos(d.nanos.max(0) as u64))
            });
        let every = options
            .extend_every
            .or(deadline.map(|d| d / 2))
            .unwrap_or(Duration::from_secs(10))
            .max(Duration::from_millis(100));
        Some((every, options.max_extension))
    }
}

/// The lane of a record: by subject, so one subject's records stay in order; records
/// without a subject go round the lanes.
fn lane_of(message: &Message, lanes: usize, spread: &mut usize) -> usize {
    let subject = &message.event().subject;
    if subject.is_empty() {
        *spread = spread.wrapping_add(1);
        return *spread % lanes;
    }
    let mut hasher = DefaultHasher::new();
    subject.hash(&mut hasher);
    (hasher.finish() % lanes as u64) as usize
}

/// One lane: its records one after another.
async fn lane<H, Fut>(
    mut rx: mpsc::Receiver<Message>,
    handler: Arc<H>,
    extend: Option<(Duration, Duration)>,
    stop_now: CancellationToken,
) where
    H: Fn(Record) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    while let Some(message) = rx.recv().await {
        if stop_now.is_cancelled() {
            continue; // dropped: nacked
        }
        let work = AssertUnwindSafe(handler(message.record().clone())).catch_unwind();
        let outcome = tokio::select! {
            outcome = with_extensions(&message, work, extend) => outcome.unwrap_or_else(|_| {
                tracing::error!(offset = message.offset(), "the handler panicked; the record is redelivered");
                Outcome::Retry(None)
            }),
            _ = stop_now.cancelled() => continue,
        };
        let settled = match outcome {
            Outcome::Ack => message.ack().await,
            Outcome::Retry(delay) => message.nack(delay).await,
            Outcome::Fail(reason) => message.dead_letter(reason).await,
        };
        if let Err(e) = settled {
            tracing::warn!(error = %e, "could not settle a record; it comes again");
        }
    }
}

/// Runs `work`, extending the message's ack deadline every `every` for up to `max`.
async fn with_extensions<F: Future>(
    message: &Message,
    work: F,
    extend: Option<(Duration, Duration)>,
) -> F::Output {
    let Some((every, max)) = extend else {
        return work.await;
    };
    tokio::pin!(work);
    let started = tokio::time::Instant::now();
    let mut tick = tokio::time::interval_at(started + every, every);
    loop {
        tokio::select! {
            out = &mut work => return out,
            _ = tick.tick(), if started.elapsed() < max => {
                if let Err(e) = message.in_progress(None).await {
                    tracing::debug!(error = %e, "could not extend an ack deadline");
                }
            }
        }
    }
}
