//! Connecting to PostgreSQL and applying the schema in `migrations/`.

use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use crate::config::{DatabaseConfig, redact_url};

mod connect;
pub mod hosts;
pub mod primary;
pub mod replication;
pub mod session;

pub use connect::{Database, connect};
pub use replication::{Durability, Replication};

/// Why the database could not be made ready.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The URL is malformed or the server refused us.
    #[error("cannot connect to PostgreSQL at {url}: {source}")]
    Connect {
        /// The URL with any password masked.
        url: String,
        /// The driver's error.
        source: sqlx::Error,
    },
    /// The server kept refusing (or was starting up) until the timeout.
    #[error(
        "cannot connect to PostgreSQL at {url} (still failing after {}): {source}",
        humantime::format_duration(*waited)
    )]
    GaveUp {
        /// The URL with any password masked.
        url: String,
        /// How long we kept trying.
        waited: Duration,
        /// The last attempt's error.
        source: sqlx::Error,
    },
    /// Nothing answered at all within the timeout.
    #[error(
        "cannot connect to PostgreSQL at {url}: no answer within {} (is the host right, \
         and the port open?)",
        humantime::format_duration(*waited)
    )]
    NoAnswer {
        /// The URL with any password masked.
        url: String,
        /// How long we waited.
        waited: Duration,
    },
    /// `--require-sync-replication` is set and acknowledged publishes would not
    /// survive a failover.
    #[error(
        "refusing to serve (--require-sync-replication): acknowledged publishes would not \
         survive a PostgreSQL failover: {reason} (synchronous_commit = {synchronous_commit}, \
         synchronous_standby_names = {standby_names:?})"
    )]
    NotReplicated {
        /// Which setting.
        reason: &'static str,
        /// The sessions' `synchronous_commit`.
        synchronous_commit: String,
        /// The server's `synchronous_standby_names`.
        standby_names: String,
    },
    /// The URL's host list is malformed.
    #[error("cannot use DATABASE_URL {url}: {source}")]
    Hosts {
        /// The URL with any password masked.
        url: String,
        /// What is wrong with it.
        source: hosts::HostsError,
    },
    /// The one host given is a standby: pulsebus writes, so it needs the primary.
    #[error(
        "PostgreSQL at {url} is a standby (in recovery): pulsebus needs the primary; give \
         DATABASE_URL every host (postgres://user@db1,db2/pulsebus) and pulsebus finds it"
    )]
    Standby {
        /// The URL with any password masked.
        url: String,
    },
    /// None of several hosts was the primary within `--db-timeout`.
    #[error(
        "no PostgreSQL primary among the hosts of DATABASE_URL within {}: {answers}",
        humantime::format_duration(*waited)
    )]
    NoPrimary {
        /// How long we kept asking.
        waited: Duration,
        /// What each host answered last.
        answers: String,
    },
    /// The replication settings could not be read.
    #[error("cannot read PostgreSQL's replication settings: {source}")]
    ReadReplication {
        /// The driver's error.
        source: sqlx::Error,
    },
    /// A migration failed to apply.
    #[error("cannot apply migrations: {source}")]
    Migrate {
        /// The migrator's error.
        source: sqlx::migrate::MigrateError,
    },
}

/// The schema, embedded in the binary at build time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Reads and logs what the replication settings promise for acknowledged publishes
/// ([`replication`]); with `--require-sync-replication`, refuses unless they survive
/// a failover.
pub async fn check_replication(
    pool: &PgPool,
    config: &DatabaseConfig,
) -> Result<Replication, DbError> {
    let replication = Replication::read(pool)
        .await
        .map_err(|source| DbError::ReadReplication { source })?;
    match replication.durability() {
        Durability::PrimaryOnly(reason) if config.require_sync_replication => {
            Err(DbError::NotReplicated {
                reason,
                synchronous_commit: replication.synchronous_commit,
                standby_names: replication.standby_names,
            })
        }
        _ => {
            replication.log();
            Ok(replication)
        }
    }
}

/// Applies pending migrations; safe to run concurrently from several replicas
/// (sqlx takes an advisory lock).
pub async fn migrate(pool: &PgPool) -> Result<(), DbError> {
    MIGRATOR
        .run(pool)
        .await
        .map_err(|source| DbError::Migrate { source })
}

/// Creates database `name` on the server `admin_url` points at, unless it exists.
/// `name` must be a plain identifier (letters, digits, `_`): it cannot be a bound
/// parameter in `CREATE DATABASE`.
pub async fn create_database(admin_url: &str, name: &str) -> Result<(), DbError> {
    assert!(
        name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
        "database name {name:?} must be a plain identifier"
    );
    let connect_err = |source| DbError::Connect {
        url: redact_url(admin_url),
        source,
    };
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(admin_url)
        .await
        .map_err(connect_err)?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(name)
            .fetch_one(&pool)
            .await
            .map_err(connect_err)?;
    if !exists {
        let sql = format!("CREATE DATABASE \"{name}\"");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&pool)
            .await
            .map_err(connect_err)?;
    }
    pool.close().await;
    Ok(())
}
