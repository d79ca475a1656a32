//! pulsebus: the event backbone of EduPulse Live.
//!
//! # Layout
//! In the order data flows, from the wire to PostgreSQL:
//! - [`server`]: builds the gRPC server (EventBus, health, reflection) and runs it until shutdown.
//! - [`auth`]: bearer tokens and per-topic permissions, checked on every EventBus call.
//! - [`grpc`]: the EventBus service: validates requests and converts to and from the wire.
//! - [`error`]: every layer's errors mapped to a `tonic::Status` in one place.
//! - [`subscribe`]: the subscription engine: streams, acks, seeks, consumer leases, doorbells.
//! - [`log`]: the event log on PostgreSQL: appends with gapless offsets, reads, topics.
//! - [`group`]: group commit: concurrent writes for one key share one transaction.
//! - [`db`]: connecting to PostgreSQL and applying the migrations in `migrations/`.
//! - [`embedded_pg`]: the private PostgreSQL used when no `DATABASE_URL` is given.
//! - [`cli`]: the `pulsebus` command line (serve, migrate).
//! - [`config`]: command-line flags and environment variables.
//! - [`proto`]: code generated from `proto/`, and its descriptor set for reflection.

pub mod auth;
pub mod cli;
pub mod config;
pub mod db;
pub mod embedded_pg;
pub mod error;
pub mod group;
pub mod grpc;
pub mod log;
pub mod proto;
pub mod server;
pub mod subscribe;
pub mod tasks;
