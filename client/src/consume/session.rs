//! The consumer's engine: one Subscribe stream at a time, opened again (with back-off
//! and jitter) whenever it ends or fails with a code that is not about the request, so
//! the consumer resumes from its server-side position on any replica. A stream that
//! sends nothing, not even a heartbeat, for the heartbeat timeout is taken for dead.
//! Records already in hand (same offset, same seek epoch) are not handed out twice.

use std::sync::Arc;

use backon::BackoffBuilder;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tonic::Status;

use super::held::Held;
use super::message::Message;
use super::settle::Command;
use super::{ConsumerOptions, State};
use crate::connect::Client;
use crate::error::{ClientError, is_resumable};
use crate::proto::pulsebus::v1::{
    LastSeen, Record, SubscribeRequest, SubscribeResponse, subscribe_response::Message as Sent,
};

/// What the engine shares with the consumer handle.
pub(super) struct Engine {
    pub client: Client,
    pub options: ConsumerOptions,
    pub held: Arc<Held>,
    pub commands: mpsc::Sender<Command>,
    pub out: mpsc::Sender<Result<Message, ClientError>>,
    pub state: watch::Sender<State>,
    /// Stop handing records out (graceful shutdown); the stream stays open.
    pub drain: CancellationToken,
    /// Close the stream and stop.
    pub close: CancellationToken,
    /// The newest record handed out, sent as `last_seen` when a stream is opened
    /// again, so a log that diverged under us (an asynchronous PostgreSQL failover) is
    /// refused with LOG_DIVERGED instead of handing out other events at offsets seen.
    pub last_seen: std::sync::Mutex<Option<LastSeen>>,
}

/// How a stream ended.
enum Ended {
    /// The server ended it, or it failed in a way a new stream may not.
    Reopen {
        error: Option<Status>,
        attached: bool,
    },
    /// The request itself is refused, or the consumer is closing.
    Stop(Option<Status>),
}

impl Engine {
    pub async fn run(self) {
        let mut backoff = self.client.retry.reconnect().build();
        loop {
            let ended = tokio::select! {
                _ = self.close.cancelled() => Ended::Stop(None),
                ended = self.session() => ended,
            };
            match ended {
                Ended::Reopen { error, attached } => {
                    if attached {
                        backoff = self.client.retry.reconnect().build();
                    }
                    let delay = backoff.next().unwrap_or(self.client.retry.max_delay);
                    let error = error.map(|e| format!("{}: {}", e.code(), e.message()));
                    tracing::info!(topic = %self.options.topic, consumer = %self.options.consumer, ?delay, error = error.as_deref().unwrap_or("stream ended"), "reconnecting");
                    self.state.send_replace(State::Reconnecting { error });
                    tokio::select! {
                        _ = self.close.cancelled() => break,
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
                Ended::Stop(error) => {
                    if let Some(status) = error {
                        let _ = self.out.send(Err(status.into())).await;
                    }
                    break;
                }
            }
        }
        self.state.send_replace(State::Closed);
    }

    /// One stream, from opening it to its end.
    async fn session(&self) -> Ended {
        self.state.send_replace(State::Connecting);
        let last_seen = self.last_seen.lock().expect("never poisoned").clone();
        let opened = self
            .client
            .stub()
            .subscribe(request(&self.options, last_seen))
            .await;
        let mut stream = match opened {
            Ok(response) => response.into_inner(),
            Err(status) => return ended_by(status, false),
        };
        let mut epoch = None;
        let mut attached = false;
        loop {
            if self.drain.is_cancelled() {
                self.close.cancelled().await; // keeps the stream (and what it holds) open
                return Ended::Stop(None);
            }
            let next = tokio::select! {
                _ = self.drain.cancelled() => continue,
                next = tokio::time::timeout(self.options.heartbeat_timeout, stream.message()) => next,
            };
            let message = match next {
                Err(_) => {
                    let quiet = Status::unavailable(format!(
                        "nothing from the server for {:?}, not even a heartbeat",
                        self.options.heartbeat_timeout
                    ));
                    return ended_by(quiet, attached);
                }
                Ok(Err(status)) => return ended_by(status, attached),
                Ok(Ok(None)) => {
                    return Ended::Reopen {
                        error: None,
                        attached,
                    };
                }
                Ok(Ok(Some(SubscribeResponse { message: Some(m) }))) => m,
                Ok(Ok(Some(_))) => continue,
            };
            match message {
                Sent::Record(record) => {
                    if !self.deliver(record, epoch).await {
                        return Ended::Stop(None);
                    }
                }
                Sent::Batch(batch) => {
                    for record in batch.records {
                        if !self.deliver(record, epoch).await {
                            return Ended::Stop(None);
                        }
                    }
                }
                Sent::Attached(a) => {
                    attached = true;
                    epoch = Some(a.seek_epoch);
                    self.state.send_replace(State::Attached {
                        committed: a.committed_offset,
                    });
                }
                Sent::Repositioned(r) => epoch = Some(r.seek_epoch),
                Sent::Standby(_) => {
                    tracing::info!(topic = %self.options.topic, consumer = %self.options.consumer, "standby: another subscriber holds the consumer; waiting to take over");
                    self.state.send_replace(State::Standby);
                }
                Sent::CaughtUp(_) | Sent::Heartbeat(_) => {}
            }
        }
    }

    /// Hands `record` out, unless it is a redelivery of one in hand (that one settles
    /// it). False when the consumer is gone.
    async fn deliver(&self, record: Record, epoch: Option<i64>) -> bool {
        if !self.held.take((record.offset, epoch)) {
            return true;
        }
        self.note_seen(&record);
        let message = Message::new(record, epoch, self.commands.clone(), self.held.clone());
        self.hand_out(message).await
    }

    /// Keeps `record` as the last seen when it is the newest so far.
    fn note_seen(&self, record: &Record) {
        let Some(event) = &record.event else { return };
        let mut last = self.last_seen.lock().expect("never poisoned");
        if last.as_ref().is_none_or(|l| record.offset > l.offset) {
            *last = Some(LastSeen {
                offset: record.offset,
                event_id: event.id.clone(),
            });
        }
    }

    /// Gives the user a message, unless the consumer drains or is gone meanwhile.
    async fn hand_out(&self, message: Message) -> bool {
        let permit = tokio::select! {
            _ = self.drain.cancelled() => None,
            permit = self.out.reserve() => permit.ok(),
        };
        match permit {
            Some(permit) => {
                permit.send(Ok(message));
                true
            }
            None => {
                message.forget();
                self.drain.is_cancelled()
            }
        }
    }
}

/// The Subscribe request for `o`: batches of up to `o.batch_records` (the default asks
/// for them), which [`Engine::deliver`] unpacks one record at a time; `last_seen` the
/// newest record handed out by an earlier stream.
fn request(o: &ConsumerOptions, last_seen: Option<LastSeen>) -> SubscribeRequest {
    SubscribeRequest {
        topic: o.topic.clone(),
        consumer: o.consumer.clone(),
        start: o.start,
        types: o.types.clone(),
        max_in_flight: o.max_in_flight,
        config: o.config.clone(),
        batch_records: o.batch_records,
        last_seen,
    }
}

fn ended_by(status: Status, attached: bool) -> Ended {
    if is_resumable(status.code()) {
        Ended::Reopen {
            error: Some(status),
            attached,
        }
    } else {
        Ended::Stop(Some(status))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consume::DEFAULT_BATCH_RECORDS;

    #[test]
    fn consumers_ask_for_batches_by_default_and_zero_turns_them_off() {
        let mut options = ConsumerOptions::new("t", "c");
        assert_eq!(request(&options, None).batch_records, DEFAULT_BATCH_RECORDS);
        const { assert!(DEFAULT_BATCH_RECORDS > 1) };
        options.batch_records = 0;
        assert_eq!(request(&options, None).batch_records, 0);
    }
}
