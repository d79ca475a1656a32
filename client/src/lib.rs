//! # pulsebus-client
//!
//! The Rust client of [pulsebus](https://github.com/edupulse/pulsebus): publish events
//! with retry-safe ids, and consume them with a durable consumer that reconnects,
//! resumes from its server-side position, coalesces acks and shuts down gracefully.
//!
//! ```no_run
//! use pulsebus_client::{Client, ConsumerOptions, Outcome, RunOptions, event};
//! use pulsebus_client::proto::edupulse::events::v1::LessonPublished;
//!
//! # async fn example() -> Result<(), pulsebus_client::ClientError> {
//! let client = Client::connect("http://127.0.0.1:50051")?;
//! let lesson = LessonPublished { lesson_id: "42".into(), title: "Fractions".into(), ..Default::default() };
//! client.publish("lessons", vec![event::proto(&lesson)]).await?;
//!
//! let consumer = client.consumer(ConsumerOptions::new("lessons", "search-indexer"))?;
//! let options = RunOptions::default();
//! consumer
//!     .run(|record| async move {
//!         println!("lesson at offset {}", record.offset);
//!         Outcome::Ack
//!     }, options)
//!     .await
//! # }
//! ```
//!
//! ## Layout
//! - [`connect`]: [`Client`] and [`ClientBuilder`]: the URL, TLS, a bearer token,
//!   keepalives; a lazily dialled channel that redials by itself.
//! - [`error`]: [`ClientError`], and which status codes are worth another try.
//! - [`retry`]: the back-off between attempts (backon, exponential with jitter).
//! - [`event`]: building events (JSON, protobuf `Any`, UUIDv7 ids) and reading
//!   payloads back.
//! - [`publish`]: `Client::publish` with retries, and [`Batcher`] for many callers.
//! - [`consume`]: [`Consumer`], its [`Message`]s and their settling (coalesced acks,
//!   nacks, deadline extensions), and the engine that reopens the stream.
//! - [`run`]: `Consumer::run`: a handler returning an [`Outcome`], lanes that keep a
//!   subject's records in order, deadline extension, graceful shutdown.
//! - `inbox` (feature `inbox`): exactly-once effects for handlers writing to their
//!   own PostgreSQL: the event id is recorded in the handler's transaction.
//! - [`proto`]: the generated messages and stub.

pub mod connect;
pub mod consume;
pub mod error;
pub mod event;
#[cfg(feature = "inbox")]
pub mod inbox;
pub mod proto;
pub mod publish;
pub mod retry;
pub mod run;

pub use connect::{Client, ClientBuilder};
pub use consume::{Consumer, ConsumerOptions, Message, State};
pub use error::ClientError;
pub use publish::{BatchOptions, Batcher};
pub use retry::RetryPolicy;
pub use run::{Outcome, RunOptions};
pub use tokio_util::sync::CancellationToken;
