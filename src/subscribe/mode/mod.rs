//! Subscription modes, side by side: how each one dispatches and settles records. The
//! loop every stream runs (`subscription.rs`) asks its mode where to start, whether it
//! has work, for the next records to send, whether a Seek moved the consumer, and lets
//! it keep its claim alive and settle what the stream skipped.
//!
//! - [`Ephemeral`]: no consumer, no acks, nothing kept; reads on from where the request
//!   says.
//! - [`Exclusive`]: a durable consumer with one active subscriber across all replicas
//!   (others wait as standbys), read in offset order from its committed offset;
//!   cumulative acks; `max_in_flight`.
//! - [`Shared`] (shared and key-shared): every subscriber, on any replica, is handed
//!   records one at a time by PostgreSQL (`log::deliveries`), each held until acked,
//!   nacked, or its deadline passes; key-shared holds one record per subject at a time.

mod ephemeral;
mod exclusive;
mod shared;

pub use ephemeral::Ephemeral;
pub use exclusive::Exclusive;
pub use shared::Shared;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::stream::Stream;
use super::tail::SharedRecord;
use super::{Delivery, SubscribeError};
use crate::config::SubscriptionConfig;
use crate::log::Position;

/// Records to send, each with its delivery attempt (1 first).
pub type Batch = Vec<(Arc<SharedRecord>, u32)>;

/// The rules of one subscription mode.
pub(super) trait Mode: Send + 'static {
    /// Waits until this stream may deliver and returns the position it delivers after;
    /// `None` when the client left while waiting.
    fn attach(
        &mut self,
        stream: &Stream,
    ) -> impl Future<Output = Result<Option<Position>, SubscribeError>> + Send;

    /// Whether [`Mode::fetch`] may find records now.
    fn has_work(&self, stream: &Stream) -> bool;

    /// The next records to send (empty when there are none now).
    fn fetch(
        &mut self,
        stream: &mut Stream,
    ) -> impl Future<Output = Result<Batch, SubscribeError>> + Send;

    /// A record at `offset` went out.
    fn delivered(&mut self, offset: i64);

    /// Whether a Seek moved the consumer and the stream must restart.
    fn has_reposition(&self) -> bool;

    /// Takes in the newest announcements (acks free budget); returns the position to
    /// restart after when a Seek moved the consumer.
    fn take_reposition(&mut self) -> Option<Position>;

    /// Resolves when the mode's doorbell rings (an ack, a seek) or a record it waits
    /// for becomes due.
    fn changed(&mut self) -> impl Future<Output = ()> + Send;

    /// How often [`Mode::keep_alive`] must run; `None` for never.
    fn keep_alive_every(&self, config: &SubscriptionConfig) -> Option<Duration>;

    /// Keeps the mode's claim alive (a durable consumer renews its lease).
    fn keep_alive(
        &mut self,
        stream: &Stream,
    ) -> impl Future<Output = Result<(), SubscribeError>> + Send;

    /// Runs when the stream is caught up: settles what the type filter skipped.
    fn idle(&mut self, stream: &Stream) -> impl Future<Output = Result<(), SubscribeError>> + Send;

    /// The committed offset heartbeats report (0 without a consumer).
    fn committed(&self) -> i64;

    /// What an idle stream's heartbeat says.
    fn heartbeat(&self, head: i64) -> Delivery {
        Delivery::Heartbeat {
            head,
            committed: self.committed(),
            in_flight: 0,
            at_max_in_flight: false,
            window_full: false,
        }
    }

    /// Lets go of what the mode holds (a lease, a doorbell) when the stream ends.
    fn detach(self, stream: &Stream) -> impl Future<Output = ()> + Send;
}
