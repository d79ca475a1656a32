//! Subscribe streams that asked for batches (`SubscribeRequest.batch_records` > 0):
//! after an item arrives, the records already waiting in the subscription's channel
//! go out with it as one `SubscribeResponse.batch`, so a subscriber that is behind
//! pays the per-message costs (HTTP/2 frames, wake-ups, a client's decode loop) once
//! per batch instead of once per record.
//!
//! Batching never waits: it takes only what is ready (one poll that is not Pending),
//! so a lone live record goes out as soon as it would unbatched. Everything decided per
//! record (flow control, the type filter, acks, attempts, work-queue modes) happened
//! before the channel and is untouched. Anything that is not a record ends the batch
//! and goes out after it, so the order of the stream is kept. Memory stays bounded:
//! a batch holds at most `max` records and stops growing past [`MAX_BATCH_BYTES`].

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;
use tokio_stream::Stream;
use tonic::Status;

use super::wire::{Encoded, RecordBatch};
use crate::error::ApiError;
use crate::subscribe::Item;

/// A batch takes no more records once its records hold this many bytes, so a batch
/// stays within one record of this size (and well under a client's usual 4 MiB
/// receive limit while events are at most the default 1 MiB).
pub const MAX_BATCH_BYTES: usize = 1024 * 1024;

/// Room reserved up front in a batch; it grows to its `max` only when records are
/// really waiting.
const INITIAL_CAPACITY: usize = 64;

/// One item as it goes out on its own.
pub fn encoded(item: Item) -> Result<Encoded, Status> {
    item.map(Encoded::from)
        .map_err(|e| Status::from(ApiError::from(e)))
}

pin_project! {
    /// `items` with the records that are ready at once sent as batches of at most
    /// `max` records.
    pub struct Batches<S> {
        #[pin]
        items: S,
        max: usize,
        // The item that ended the last batch: it goes out next.
        held: Option<Item>,
        ended: bool,
    }
}

impl<S> Batches<S> {
    /// Batches of at most `max` (> 0) records from `items`.
    pub fn new(items: S, max: usize) -> Self {
        Self {
            items,
            max: max.max(1),
            held: None,
            ended: false,
        }
    }
}

impl<S: Stream<Item = Item>> Stream for Batches<S> {
    type Item = Result<Encoded, Status>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut this = self.project();
        if let Some(item) = this.held.take() {
            return Poll::Ready(Some(encoded(item)));
        }
        if *this.ended {
            return Poll::Ready(None);
        }
        let mut batch = RecordBatch::with_capacity((*this.max).min(INITIAL_CAPACITY));
        while batch.len() < *this.max && batch.body_len() < MAX_BATCH_BYTES {
            let next = match batch.is_empty() {
                // Nothing yet: wait for the first item like an unbatched stream.
                true => ready!(this.items.as_mut().poll_next(cx)),
                // Something to send: take only what is ready, never wait.
                false => match this.items.as_mut().poll_next(cx) {
                    Poll::Ready(next) => next,
                    Poll::Pending => break,
                },
            };
            let Some(item) = next else {
                *this.ended = true;
                break;
            };
            match item.map(Encoded::record) {
                Ok(Ok(record)) => batch.push(record),
                Ok(Err(other)) => {
                    *this.held = Some(Ok(other));
                    break;
                }
                Err(error) => {
                    *this.held = Some(Err(error));
                    break;
                }
            }
        }
        if batch.is_empty() {
            // The stream ended, or its first item was not a record.
            return Poll::Ready(this.held.take().map(encoded));
        }
        Poll::Ready(Some(Ok(batch.into())))
    }
}

#[cfg(test)]
mod tests;
