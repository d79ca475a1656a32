//! Publishing: every event gets a client-assigned id before the first attempt, so a
//! publish retried after UNAVAILABLE or a timeout is stored once (the server answers
//! `duplicate` with the original offset). [`Batcher`] gathers single events from many
//! callers into one request per topic, waiting at most a linger time.

use std::collections::BTreeMap;
use std::time::Duration;

use backon::Retryable;
use tokio::sync::{mpsc, oneshot};
use tonic::Code;

use crate::connect::Client;
use crate::error::{ClientError, is_retryable};
use crate::event::new_id;
use crate::proto::pulsebus::v1::{Event, PublishRequest, PublishResult};

impl Client {
    /// Appends `events` to `topic`, all or none, and returns one result per event in
    /// order (`duplicate` when the id was already stored). Events without an id get a
    /// UUIDv7; retryable failures are retried with back-off.
    pub async fn publish(
        &self,
        topic: &str,
        mut events: Vec<Event>,
    ) -> Result<Vec<PublishResult>, ClientError> {
        for event in &mut events {
            if event.id.is_empty() {
                event.id = new_id();
            }
        }
        let request = PublishRequest {
            topic: topic.to_owned(),
            events,
        };
        let call = || {
            let mut stub = self.stub();
            let request = request.clone();
            async move { stub.publish(request).await }
        };
        let response = call
            .retry(self.retry.unary())
            .when(|status: &tonic::Status| is_retryable(status.code()))
            .await?;
        Ok(response.into_inner().results)
    }
}

/// How a [`Batcher`] gathers events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchOptions {
    /// How long the first event of a batch waits for company.
    pub linger: Duration,
    /// Most events in one request.
    pub max_events: usize,
    /// Most events waiting to be sent; callers wait for room beyond it.
    pub queue: usize,
}

impl Default for BatchOptions {
    /// 5 ms, 500 events, 10,000 waiting.
    fn default() -> Self {
        Self {
            linger: Duration::from_millis(5),
            max_events: 500,
            queue: 10_000,
        }
    }
}

struct Job {
    topic: String,
    event: Event,
    reply: oneshot::Sender<Result<PublishResult, ClientError>>,
}

/// Publishes single events in batches: events sent within the linger time go out
/// together, one request per topic, and each caller gets its own result. A batch the
/// server refuses as a whole (one bad event) is sent again event by event, so only the
/// bad event's caller gets the error. Dropping the batcher sends what is queued, then
/// stops.
#[derive(Debug, Clone)]
pub struct Batcher {
    jobs: mpsc::Sender<Job>,
}

impl Batcher {
    /// A batcher publishing through `client`; its task runs on the current runtime.
    pub fn new(client: Client, options: BatchOptions) -> Self {
        let (jobs, rx) = mpsc::channel(options.queue.max(1));
        tokio::spawn(run(client, options, rx));
        Self { jobs }
    }

    /// Publishes `event` to `topic` with whatever else is sent meanwhile.
    pub async fn publish(
        &self,
        topic: &str,
        mut event: Event,
    ) -> Result<PublishResult, ClientError> {
        if event.id.is_empty() {
            event.id = new_id();
        }
        let (reply, result) = oneshot::channel();
        let job = Job {
            topic: topic.to_owned(),
            event,
            reply,
        };
        self.jobs.send(job).await.map_err(|_| ClientError::Closed)?;
        result.await.map_err(|_| ClientError::Closed)?
    }
}

async fn run(client: Client, options: BatchOptions, mut rx: mpsc::Receiver<Job>) {
    while let Some(first) = rx.recv().await {
        let mut jobs = vec![first];
        let linger = tokio::time::sleep(options.linger);
        tokio::pin!(linger);
        while jobs.len() < options.max_events {
            tokio::select! {
                job = rx.recv() => match job {
                    Some(job) => jobs.push(job),
                    None => break,
                },
                _ = &mut linger => break,
            }
        }
        let mut by_topic: BTreeMap<String, Vec<Job>> = BTreeMap::new();
        for job in jobs {
            by_topic.entry(job.topic.clone()).or_default().push(job);
        }
        for (topic, jobs) in by_topic {
            send(&client, &topic, jobs).await;
        }
    }
}

/// Sends one topic's jobs as one request; when the server refuses the batch for an
/// event's sake, each job alone.
async fn send(client: &Client, topic: &str, jobs: Vec<Job>) {
    let events: Vec<Event> = jobs.iter().map(|j| j.event.clone()).collect();
    match client.publish(topic, events).await {
        Ok(results) => {
            for (job, result) in jobs.into_iter().zip(results) {
                let _ = job.reply.send(Ok(result));
            }
        }
        Err(ClientError::Status(status))
            if jobs.len() > 1
                && matches!(
                    status.code(),
                    Code::InvalidArgument | Code::ResourceExhausted
                ) =>
        {
            for job in jobs {
                let result = client.publish(topic, vec![job.event]).await;
                let _ = job
                    .reply
                    .send(result.and_then(|mut r| r.pop().ok_or(ClientError::Closed)));
            }
        }
        Err(err) => {
            let message = err.to_string();
            let code = err.code().unwrap_or(Code::Unavailable);
            for job in jobs {
                let _ = job
                    .reply
                    .send(Err(tonic::Status::new(code, message.clone()).into()));
            }
        }
    }
}
