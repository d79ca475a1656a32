//! Settling records: acks are coalesced (gathered for a linger time, or until a batch
//! is full, then sent as one `Ack { offsets }` per seek epoch), nacks and deadline
//! extensions go out at once. Every call is retried with back-off while the server is
//! unreachable; an ack that finally fails is logged, and its record comes again (never
//! lost, at worst handled twice).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use backon::Retryable;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::held::{Held, Key};
use crate::connect::Client;
use crate::error::{ClientError, is_retryable};
use crate::proto::pulsebus::v1::{AckRequest, ExtendAckDeadlineRequest, NackRequest};

/// What to do with a record.
#[derive(Debug)]
pub enum Command {
    /// Done with it.
    Ack(Key),
    /// Give it back for redelivery after `delay` (None: the consumer's back-off), or
    /// park it in the dead-letter topic.
    Nack {
        key: Key,
        delay: Option<Duration>,
        dead_letter: Option<String>,
        reply: Option<oneshot::Sender<Result<(), ClientError>>>,
    },
    /// Still working on it: its ack deadline starts again.
    Extend {
        offsets: Vec<i64>,
        deadline: Option<Duration>,
        reply: oneshot::Sender<Result<(), ClientError>>,
    },
    /// Send the gathered acks now; answers once they are answered.
    Flush(oneshot::Sender<()>),
}

/// How acks are gathered.
#[derive(Debug, Clone, Copy)]
pub struct AckBatching {
    /// How long the first ack of a batch waits for company.
    pub linger: Duration,
    /// Most offsets in one Ack.
    pub max_offsets: usize,
}

/// Sends settle commands of one consumer, in order.
pub struct Settler {
    client: Client,
    topic: String,
    consumer: String,
    held: Arc<Held>,
    batching: AckBatching,
    pending: Vec<Key>,
}

impl Settler {
    pub fn new(
        client: Client,
        topic: &str,
        consumer: &str,
        held: Arc<Held>,
        batching: AckBatching,
    ) -> Self {
        Self {
            client,
            topic: topic.to_owned(),
            consumer: consumer.to_owned(),
            held,
            batching,
            pending: Vec::new(),
        }
    }

    /// Runs until every sender is gone, then sends what is gathered.
    pub async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let mut due: Option<Instant> = None;
        loop {
            let wait = async {
                match due {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                command = commands.recv() => match command {
                    Some(Command::Ack(key)) => {
                        self.pending.push(key);
                        due.get_or_insert_with(|| Instant::now() + self.batching.linger);
                        if self.pending.len() >= self.batching.max_offsets {
                            self.flush().await;
                            due = None;
                        }
                    }
                    Some(Command::Flush(reply)) => {
                        self.flush().await;
                        due = None;
                        let _ = reply.send(());
                    }
                    Some(Command::Nack { key, delay, dead_letter, reply }) => {
                        let result = self.nack(key.0, delay, dead_letter).await;
                        if let Some(reply) = reply {
                            let _ = reply.send(result);
                        } else if let Err(e) = result {
                            tracing::warn!(error = %e, offset = key.0, "could not nack a dropped message; it comes again after its deadline or on reconnect");
                        }
                    }
                    Some(Command::Extend { offsets, deadline, reply }) => {
                        let _ = reply.send(self.extend(offsets, deadline).await);
                    }
                    None => break,
                },
                _ = wait => {
                    self.flush().await;
                    due = None;
                }
            }
        }
        self.flush().await;
    }

    /// Sends the gathered acks, one request per seek epoch.
    async fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let mut by_epoch: BTreeMap<Option<i64>, Vec<i64>> = BTreeMap::new();
        for (offset, epoch) in self.pending.drain(..) {
            by_epoch.entry(epoch).or_default().push(offset);
        }
        for (epoch, offsets) in by_epoch {
            let request = AckRequest {
                topic: self.topic.clone(),
                consumer: self.consumer.clone(),
                offsets: offsets.clone(),
                seek_epoch: epoch,
                ..Default::default()
            };
            let result = self.call(|mut stub| {
                let request = request.clone();
                async move { stub.ack(request).await.map(drop) }
            });
            let keys: Vec<Key> = offsets.iter().map(|&o| (o, epoch)).collect();
            match result.await {
                Ok(()) => self.held.confirmed(&keys),
                Err(e) => {
                    tracing::warn!(error = %e, count = keys.len(), "acks failed; those records come again");
                    self.held.refused(&keys);
                }
            }
        }
    }

    async fn nack(
        &self,
        offset: i64,
        delay: Option<Duration>,
        dead_letter: Option<String>,
    ) -> Result<(), ClientError> {
        let request = NackRequest {
            topic: self.topic.clone(),
            consumer: self.consumer.clone(),
            offsets: vec![offset],
            delay: delay.map(proto_duration),
            dead_letter: dead_letter.is_some(),
            reason: dead_letter.unwrap_or_default(),
        };
        self.call(|mut stub| {
            let request = request.clone();
            async move { stub.nack(request).await.map(drop) }
        })
        .await
    }

    async fn extend(
        &self,
        offsets: Vec<i64>,
        deadline: Option<Duration>,
    ) -> Result<(), ClientError> {
        let request = ExtendAckDeadlineRequest {
            topic: self.topic.clone(),
            consumer: self.consumer.clone(),
            offsets,
            deadline: deadline.map(proto_duration),
        };
        self.call(|mut stub| {
            let request = request.clone();
            async move { stub.extend_ack_deadline(request).await.map(drop) }
        })
        .await
    }

    /// One unary call, retried with back-off while it fails with a retryable code.
    async fn call<F, Fut>(&self, f: F) -> Result<(), ClientError>
    where
        F: Fn(crate::connect::Stub) -> Fut,
        Fut: Future<Output = Result<(), tonic::Status>>,
    {
        let attempt = || f(self.client.stub());
        attempt
            .retry(self.client.retry.unary())
            .when(|status: &tonic::Status| is_retryable(status.code()))
            .await
            .map_err(ClientError::from)
    }
}

/// A protobuf Duration.
pub fn proto_duration(d: Duration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
    }
}
