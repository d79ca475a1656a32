//! One subscription's task: the loop every mode shares. It reads the topic in pages
//! (from the tail window, else PostgreSQL) and pushes records into a bounded channel
//! that the gRPC stream drains; when the client stops reading, the channel fills and
//! the task waits. Once caught up it sleeps until the topic's head moves (in-process
//! watch, fed by local commits, NOTIFY and the periodic refresh), the mode's doorbell
//! rings (acks, seeks, releases), the mode must keep its claim alive, or a heartbeat is
//! due (one interval after the stream went idle).
//!
//! What differs between modes (where delivery starts, how much may be in flight, how
//! records settle, leases) sits behind [`Mode`], one implementation per mode in
//! `mode/`.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Interval;

use super::mode::Mode;
use super::stream::{Stream, ticker};
use super::tail::SharedRecord;
use super::{Delivery, SubscribeError};
use crate::telemetry::stages;

/// How long a subscription ending with an error waits to queue its final status.
const FINAL_STATUS_WAIT: Duration = Duration::from_secs(1);

/// One subscription: the shared loop over a mode.
pub(super) struct Subscription<M> {
    pub stream: Stream,
    pub mode: M,
}

impl<M: Mode> Subscription<M> {
    /// Runs the subscription to its end, then lets the mode let go of what it holds.
    pub async fn run(mut self) {
        if let Err(err) = self.attach_and_deliver().await {
            // The client may be slow to read; give the final status a moment to get in.
            let _ = tokio::time::timeout(FINAL_STATUS_WAIT, self.stream.tx.send(Err(err))).await;
        }
        let Self { stream, mode } = self;
        mode.detach(&stream).await;
    }

    async fn attach_and_deliver(&mut self) -> Result<(), SubscribeError> {
        match self.mode.attach(&self.stream).await? {
            Some(start) => {
                self.stream.restart_after(start);
                self.deliver().await
            }
            None => Ok(()),
        }
    }

    /// Delivers records until the client leaves, the server stops or an error occurs.
    async fn deliver(&mut self) -> Result<(), SubscribeError> {
        let mut beat = ticker(Some(self.stream.config.heartbeat_interval));
        let mut keep = ticker(self.mode.keep_alive_every(&self.stream.config));
        loop {
            self.take_reposition();
            self.stream.head.get_and_update();
            if self.mode.has_work(&self.stream) {
                if self.deliver_batch(&mut keep).await? {
                    beat.reset();
                }
                continue;
            }
            self.stream.caught_up();
            self.mode.idle(&self.stream).await?;
            let s = &mut self.stream;
            tokio::select! {
                _ = s.token.cancelled() => return Err(SubscribeError::ShuttingDown),
                _ = s.tx.closed() => return Ok(()),
                _ = s.head.changed() => {
                    if s.head.is_deleted() {
                        let topic = s.topic.clone();
                        return Err(crate::log::LogError::TopicNotFound { topic }.into());
                    }
                }
                _ = self.mode.changed() => {}
                _ = keep.tick() => self.mode.keep_alive(&self.stream).await?,
                _ = beat.tick() => s.tell(self.mode.heartbeat(s.head.get())),
            }
        }
    }

    /// Moves the stream when the mode learned of a Seek, and says so.
    fn take_reposition(&mut self) {
        if let Some(position) = self.mode.take_reposition() {
            self.stream.restart_after(position);
            self.stream.tell(Delivery::Repositioned {
                committed: position.committed,
                epoch: position.epoch,
            });
        }
    }

    /// Fetches the mode's next records and sends them; returns whether any were sent.
    async fn deliver_batch(&mut self, keep: &mut Interval) -> Result<bool, SubscribeError> {
        let batch = self.mode.fetch(&mut self.stream).await?;
        let sent = !batch.is_empty();
        for (record, attempt) in batch {
            let offset = record.record().offset;
            self.send(record, attempt, keep).await?;
            self.mode.delivered(offset);
            if self.mode.has_reposition() {
                return Ok(true); // a seek moved us while sending: re-read from there
            }
        }
        Ok(sent)
    }

    /// Sends one record, keeping the mode's claim alive while the client is slow.
    async fn send(
        &mut self,
        record: Arc<SharedRecord>,
        attempt: u32,
        keep: &mut Interval,
    ) -> Result<(), SubscribeError> {
        let tx = self.stream.tx.clone();
        loop {
            tokio::select! {
                permit = tx.reserve() => {
                    let Ok(permit) = permit else { return Err(SubscribeError::ShuttingDown) };
                    stages::queued(&self.stream.topic, record.record().offset);
                    permit.send(Ok(Delivery::Record { record, attempt }));
                    return Ok(());
                }
                _ = self.stream.token.cancelled() => return Err(SubscribeError::ShuttingDown),
                _ = keep.tick() => self.mode.keep_alive(&self.stream).await?,
            }
        }
    }
}
