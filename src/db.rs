//! Connecting to PostgreSQL and applying the schema in `migrations/`.

use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection, PgPool};

use crate::config::{DatabaseConfig, redact_url};

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
    /// A migration failed to apply.
    #[error("cannot apply migrations: {source}")]
    Migrate {
        /// The migrator's error.
        source: sqlx::migrate::MigrateError,
    },
}

/// The schema, embedded in the binary at build time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// A connection idle longer than this is pinged before use (it may have been cut
/// while it sat in the pool); busier ones are not, which saves a round trip per query.
const PING_AFTER_IDLE: Duration = Duration::from_secs(1);

/// Longest pause between two connection attempts while the server refuses.
const MAX_RETRY_PAUSE: Duration = Duration::from_millis(500);

/// Opens a pool sized and timed out as configured.
///
/// One connection is opened on its own first, so that a wrong URL fails with the
/// driver's reason ("Connection refused", "password authentication failed",
/// "database ... does not exist") instead of the pool's "timed out".
pub async fn connect(url: &str, config: &DatabaseConfig) -> Result<PgPool, DbError> {
    let probe = first_connection(url, config.db_timeout).await?;
    // Only the probe's success matters; a failed goodbye changes nothing.
    let _ = probe.close().await;
    PgPoolOptions::new()
        .max_connections(config.db_max_connections)
        .acquire_timeout(config.db_timeout)
        .idle_timeout(Some(Duration::from_secs(300)))
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for > PING_AFTER_IDLE {
                    conn.ping().await?;
                }
                Ok(true)
            })
        })
        .connect(url)
        .await
        .map_err(|source| DbError::Connect {
            url: redact_url(url),
            source,
        })
}

/// Checks that PostgreSQL answers a trivial query (the health probe).
pub async fn ping(pool: &PgPool) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT 1").execute(pool).await.map(drop)
}

/// One connection, retried with exponential back-off (backon) while the server refuses
/// or is starting up, for about `timeout` in all; a non-retryable error fails at once.
async fn first_connection(url: &str, timeout: Duration) -> Result<PgConnection, DbError> {
    let backoff = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(10))
        .with_max_delay(MAX_RETRY_PAUSE)
        .without_max_times()
        .with_total_delay(Some(timeout))
        .with_jitter();
    let attempt = || async {
        match tokio::time::timeout(timeout, PgConnection::connect(url)).await {
            Ok(result) => result.map_err(Some),
            Err(_elapsed) => Err(None),
        }
    };
    let result = attempt
        .retry(backoff)
        .when(|e: &Option<sqlx::Error>| e.as_ref().is_some_and(worth_retrying))
        .await;
    let url = redact_url(url);
    match result {
        Ok(conn) => Ok(conn),
        Err(None) => Err(DbError::NoAnswer {
            url,
            waited: timeout,
        }),
        Err(Some(source)) if worth_retrying(&source) => Err(DbError::GaveUp {
            url,
            waited: timeout,
            source,
        }),
        Err(Some(source)) => Err(DbError::Connect { url, source }),
    }
}

/// Errors of a server that is not up yet (the ones sqlx's pool retries too).
fn worth_retrying(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(e) => e.kind() == std::io::ErrorKind::ConnectionRefused,
        // too_many_connections, cannot_connect_now (starting up)
        sqlx::Error::Database(e) => matches!(e.code().as_deref(), Some("53300" | "57P03")),
        _ => false,
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
