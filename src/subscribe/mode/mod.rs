//! Subscription modes, side by side: what differs between an ephemeral reader and a
//! durable consumer. The shared loop (`stream.rs`) asks its mode where to start, how
//! much may be in flight, whether a Seek moved the consumer, and lets it keep its
//! claim alive and settle what the stream skipped.
//!
//! - [`Ephemeral`]: no consumer, no acks, nothing kept; starts where the request says.
//! - [`Exclusive`]: a durable consumer with one active subscriber across all replicas
//!   (others wait as standbys), a committed offset in PostgreSQL, `max_in_flight`.

mod ephemeral;
mod exclusive;

pub use ephemeral::Ephemeral;
pub use exclusive::Exclusive;

use std::future::Future;
use std::time::Duration;

use super::SubscribeError;
use super::stream::Stream;
use crate::config::SubscriptionConfig;
use crate::log::Position;

/// The rules of one subscription mode.
pub(super) trait Mode: Send + 'static {
    /// Waits until this stream may deliver and returns the position it delivers after;
    /// `None` when the client left while waiting.
    fn attach(
        &mut self,
        stream: &Stream,
    ) -> impl Future<Output = Result<Option<Position>, SubscribeError>> + Send;

    /// How many more records may be delivered now.
    fn budget(&self) -> usize;

    /// A record at `offset` went out.
    fn delivered(&mut self, offset: i64);

    /// Whether a Seek moved the consumer and the stream must restart.
    fn has_reposition(&self) -> bool;

    /// Takes in the newest announcements (acks free budget); returns the position to
    /// restart after when a Seek moved the consumer.
    fn take_reposition(&mut self) -> Option<Position>;

    /// Resolves when the mode's doorbell rings (an ack, a seek).
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

    /// Lets go of what the mode holds (a lease, a doorbell) when the stream ends.
    fn detach(self, stream: &Stream) -> impl Future<Output = ()> + Send;
}
