//! A delivered record and the ways to settle it. A message dropped without being
//! settled is nacked (redelivered after the consumer's back-off), never acked.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::held::{Held, Key};
use super::settle::Command;
use crate::error::ClientError;
use crate::proto::pulsebus::v1::{Event, Record};

/// One record handed to the user.
#[derive(Debug)]
pub struct Message {
    record: Record,
    epoch: Option<i64>,
    commands: mpsc::Sender<Command>,
    held: Arc<Held>,
    settled: bool,
}

impl Message {
    pub(crate) fn new(
        record: Record,
        epoch: Option<i64>,
        commands: mpsc::Sender<Command>,
        held: Arc<Held>,
    ) -> Self {
        Self {
            record,
            epoch,
            commands,
            held,
            settled: false,
        }
    }

    /// The record as delivered.
    pub fn record(&self) -> &Record {
        &self.record
    }

    /// The event it carries.
    pub fn event(&self) -> &Event {
        static EMPTY: std::sync::LazyLock<Event> = std::sync::LazyLock::new(Event::default);
        self.record.event.as_ref().unwrap_or(&EMPTY)
    }

    /// Its offset in the topic.
    pub fn offset(&self) -> i64 {
        self.record.offset
    }

    /// Which delivery of the record this is: 1, then 2, 3... on redeliveries.
    pub fn attempt(&self) -> u32 {
        self.record.delivery_attempt
    }

    /// The producer's W3C trace context (`traceparent`), when the event carries one:
    /// the server stores the publisher's gRPC `traceparent` metadata on each event
    /// that has none of its own. Link the span that processes this message to it
    /// (OpenTelemetry messaging conventions: a link, not a parent).
    pub fn traceparent(&self) -> Option<&str> {
        self.event()
            .attributes
            .get("traceparent")
            .map(String::as_str)
    }

    /// The producer's W3C `tracestate`, when the event carries one.
    pub fn tracestate(&self) -> Option<&str> {
        self.event()
            .attributes
            .get("tracestate")
            .map(String::as_str)
    }

    fn key(&self) -> Key {
        (self.record.offset, self.epoch)
    }

    /// Done with it. The ack is gathered with others and sent within the consumer's
    /// linger time ([`super::Consumer::flush`] sends at once).
    pub async fn ack(mut self) -> Result<(), ClientError> {
        self.settled = true;
        self.held.release(self.key(), true);
        let command = Command::Ack(self.key());
        self.commands
            .send(command)
            .await
            .map_err(|_| ClientError::Closed)
    }

    /// Give it back: redelivered after `delay`, or the consumer's back-off for the
    /// attempt when `None`.
    pub async fn nack(self, delay: Option<Duration>) -> Result<(), ClientError> {
        self.give_back(delay, None).await
    }

    /// Don't retry: park it in the consumer's dead-letter topic with `reason`.
    pub async fn dead_letter(self, reason: impl Into<String>) -> Result<(), ClientError> {
        self.give_back(None, Some(reason.into())).await
    }

    /// Still working on it: its ack deadline (shared modes) starts again, for
    /// `deadline` or the consumer's ack deadline.
    pub async fn in_progress(&self, deadline: Option<Duration>) -> Result<(), ClientError> {
        let (reply, answer) = oneshot::channel();
        let command = Command::Extend {
            offsets: vec![self.record.offset],
            deadline,
            reply,
        };
        self.commands
            .send(command)
            .await
            .map_err(|_| ClientError::Closed)?;
        answer.await.map_err(|_| ClientError::Closed)?
    }

    async fn give_back(
        mut self,
        delay: Option<Duration>,
        dead_letter: Option<String>,
    ) -> Result<(), ClientError> {
        self.settled = true;
        self.held.release(self.key(), false);
        let (reply, answer) = oneshot::channel();
        let command = Command::Nack {
            key: self.key(),
            delay,
            dead_letter,
            reply: Some(reply),
        };
        self.commands
            .send(command)
            .await
            .map_err(|_| ClientError::Closed)?;
        answer.await.map_err(|_| ClientError::Closed)?
    }

    /// Lets go without settling or nacking: for records a closing consumer never handed
    /// out (the server gives them back when the stream ends).
    pub(crate) fn forget(mut self) {
        self.settled = true;
        self.held.release(self.key(), false);
    }
}

impl Drop for Message {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        self.held.release(self.key(), false);
        let command = Command::Nack {
            key: self.key(),
            delay: None,
            dead_letter: None,
            reply: None,
        };
        if self.commands.try_send(command).is_err() {
            tracing::warn!(
                offset = self.record.offset,
                "a dropped message could not be nacked; it comes again after its deadline or on reconnect"
            );
        }
    }
}
