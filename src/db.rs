//! Connecting to PostgreSQL and applying the schema in `migrations/`.

use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgPool};

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

/// Opens a pool sized and timed out as configured.
pub async fn connect(url: &str, config: &DatabaseConfig) -> Result<PgPool, DbError> {
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
