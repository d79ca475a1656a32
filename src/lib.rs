//! pulsebus: the event backbone of EduPulse Live.
//!
//! # Layout
//! In the order data flows, from the wire to PostgreSQL:
//! - [`cli`]: the `pulsebus` command line: `serve.rs` launches the server (serve,
//!   migrate, hash-token); `client/` holds the client commands, one file each.
//! - [`server`]: builds the gRPC server (EventBus, health, reflection) and runs it until
//!   shutdown, all of it within one `--shutdown-timeout`.
//! - [`telemetry`]: logs and spans: the W3C trace context callers send (continued into
//!   the server's spans, stored on their events), OTLP export with the `otlp` feature.
//! - [`auth`]: bearer tokens and per-topic permissions, checked on every EventBus call.
//! - [`grpc`]: the EventBus service, one small function per RPC; `validate/` turns
//!   requests into domain types (publish, subscribe and read side by side, payloads of
//!   known protobuf types decoded), `wire.rs` is Subscribe's shared-encoding codec,
//!   `batching.rs` sends the records already waiting as one batch (`batch_records`),
//!   `paging.rs` the List RPCs' page tokens, `convert.rs` the replies.
//! - [`error`]: every layer's errors mapped to a `tonic::Status` (with google.rpc
//!   details) in one place.
//! - [`subscribe`]: the subscription engine: `subscription.rs` is the loop every stream
//!   runs, `mode/` what differs per mode (ephemeral, exclusive), `tail/` what this
//!   process knows of recent commits (heads, the window of recent records, their shared
//!   encodings, the periodic head refresh); acks, consumer doorbells, the NOTIFY
//!   listener, subscription caps, start positions.
//! - [`log`]: storage on PostgreSQL: appends with gapless offsets (group commit), reads,
//!   topics, durable consumers and their leases, the NOTIFY doorbells; it announces
//!   each commit to a [`log::CommitSink`].
//! - [`retention`]: the background sweeper that removes what each topic's retention
//!   config no longer keeps, one replica at a time (`sweeper.rs`); the batch itself is
//!   `log/retention.rs`.
//! - [`group`]: group commit: concurrent writes for one key share one transaction; a
//!   panicking flush fails only its own callers.
//! - [`metrics`]: Prometheus metrics: `families.rs` what this server counts (one
//!   registry per server), `stored.rs` the gauges read from PostgreSQL (true across
//!   replicas), `http.rs` the `/metrics` listener, `grpc.rs` the layer counting calls.
//! - [`tasks`]: the one cancellation tree every background task runs in.
//! - [`db`]: connecting to PostgreSQL and applying the migrations in `migrations/`:
//!   `hosts.rs` splits a URL naming several hosts, `primary.rs` finds the primary and
//!   follows it through a failover, `session.rs` the settings pinned on every session
//!   (`synchronous_commit`), `replication.rs` whether acks survive a failover.
//! - [`embedded_pg`]: the private PostgreSQL used when no `DATABASE_URL` is given.
//! - [`config`]: command-line flags and environment variables, each default once.
//! - [`proto`]: code generated from `proto/`, and its descriptor set for reflection and
//!   payload validation.

pub mod auth;
pub mod cli;
pub mod config;
pub mod db;
pub mod embedded_pg;
pub mod error;
pub mod group;
pub mod grpc;
pub mod log;
pub mod metrics;
pub mod proto;
pub mod retention;
pub mod server;
pub mod subscribe;
pub mod tasks;
pub mod telemetry;
