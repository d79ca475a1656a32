//! Retention: the background sweeper that removes the events each topic's config no
//! longer keeps (`sweeper.rs`), one replica at a time, in small batches (the storage
//! side, one batch, is `log::retention`).
//!
//! One replica at a time: a sweep holds a session-level PostgreSQL advisory lock
//! ([`LOCK_KEY`]) on a connection of its own, opened for the sweep and closed after it.
//! A session lock on a dedicated connection, rather than `pg_try_advisory_xact_lock`
//! per batch, so that a whole pass belongs to one replica (no two replicas alternating
//! batches of the same topics, each re-reading the same configs), and so that a
//! replica that dies or is cancelled mid-sweep releases the lock with its connection;
//! never a pooled connection, which would go back to the pool still holding the lock.
//! The batches themselves are single statements that are correct even if two ran at
//! once (both delete the same primary-key range; the second finds nothing and
//! `first_offset` only moves forward), so the lock saves work, not correctness.

mod sweeper;

pub use sweeper::{Sweep, spawn, sweep_once};

/// The advisory lock key of the sweeper (`pg_try_advisory_lock(bigint)`): "pulsebus"
/// retention, spelled in ASCII, so it is recognisable in `pg_locks`.
pub const LOCK_KEY: i64 = 0x7075_6c73_6572_6574; // "pulseret"
