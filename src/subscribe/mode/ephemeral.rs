//! An ephemeral subscription: no consumer, nothing kept, no limit on what is in flight.

use std::time::Duration;

use super::{Batch, Mode};
use crate::config::SubscriptionConfig;
use crate::log::Position;
use crate::subscribe::SubscribeError;
use crate::subscribe::stream::Stream;

/// Reads from a fixed start; nothing to acknowledge.
pub struct Ephemeral {
    /// The offset before the first one to deliver.
    pub after: i64,
}

impl Mode for Ephemeral {
    async fn attach(&mut self, _stream: &Stream) -> Result<Option<Position>, SubscribeError> {
        Ok(Some(Position {
            committed: self.after,
            epoch: 0,
        }))
    }

    fn has_work(&self, stream: &Stream) -> bool {
        stream.next <= stream.head.get()
    }

    async fn fetch(&mut self, stream: &mut Stream) -> Result<Batch, SubscribeError> {
        let records = stream.read_page(usize::MAX).await?;
        Ok(records.into_iter().map(|r| (r, 1)).collect())
    }

    fn delivered(&mut self, _offset: i64) {}

    fn has_reposition(&self) -> bool {
        false
    }

    fn take_reposition(&mut self) -> Option<Position> {
        None
    }

    async fn changed(&mut self) {
        std::future::pending::<()>().await
    }

    fn keep_alive_every(&self, _config: &SubscriptionConfig) -> Option<Duration> {
        None
    }

    async fn keep_alive(&mut self, _stream: &Stream) -> Result<(), SubscribeError> {
        Ok(())
    }

    async fn idle(&mut self, _stream: &Stream) -> Result<(), SubscribeError> {
        Ok(())
    }

    fn committed(&self) -> i64 {
        0
    }

    async fn detach(self, _stream: &Stream) {}
}
