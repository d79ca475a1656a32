//! Prometheus metrics: what this server counts ([`Metrics`], one registry per server,
//! so servers in one test process keep their own numbers), what PostgreSQL says about
//! every replica's consumers ([`stored`]), the `/metrics` HTTP endpoint on its own
//! listener ([`http`]) and the tower layer that counts gRPC calls ([`grpc`]).
//!
//! The layers below gRPC only see [`Metrics`], a cheap-to-clone handle of counters;
//! nothing here below `http.rs` and `grpc.rs` knows about HTTP.

mod families;
pub mod grpc;
pub mod http;
mod labels;
pub mod stored;

pub use families::{Attached, Metrics};
pub use labels::{MAX_LABELLED_CONSUMERS, MAX_LABELLED_TOPICS, Outcome, RedeliveryReason};
