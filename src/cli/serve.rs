//! The launcher commands: `serve`, `migrate` and `hash-token`, and the private
//! PostgreSQL they start when no `DATABASE_URL` is given.

use std::io::Write;

use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::config::{DatabaseConfig, ServeConfig, redact_url};
use crate::db::DbError;
use crate::embedded_pg::{EmbeddedError, EmbeddedPostgres};
use crate::server::{Server, ServerError};

/// The database name pulsebus uses inside its private PostgreSQL.
const EMBEDDED_DB: &str = "pulsebus";

/// Why `serve`, `migrate` or `hash-token` failed.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The private PostgreSQL could not be set up, started or stopped.
    #[error(transparent)]
    Embedded(#[from] EmbeddedError),
    /// The database could not be reached or migrated.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The server could not start, or failed while serving.
    #[error(transparent)]
    Server(#[from] ServerError),
    /// The SIGTERM handler could not be installed.
    #[error("cannot listen for SIGTERM: {0}")]
    Signal(std::io::Error),
    /// A blocking task (PostgreSQL start or stop) panicked.
    #[error("a background task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// `hash-token` could not read stdin.
    #[error("cannot read the token from stdin: {0}")]
    Stdin(std::io::Error),
    /// `hash-token` got an empty line.
    #[error("no token on stdin: try `printf %s \"$TOKEN\" | pulsebus hash-token`")]
    NoToken,
    /// `hash-token` could not print.
    #[error("cannot write to stdout: {0}")]
    Output(std::io::Error),
}

impl ServeError {
    /// Whether only stdout was closed early.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, Self::Output(e) if e.kind() == std::io::ErrorKind::BrokenPipe)
    }
}

/// `pulsebus serve`: serves until SIGINT or SIGTERM, then stops the private PostgreSQL.
pub async fn serve(config: ServeConfig) -> Result<(), ServeError> {
    let term = signal(SignalKind::terminate()).map_err(ServeError::Signal)?;
    let (url, embedded) = database(&config.database).await?;
    let result = match Server::build(config, &url).await {
        Ok(server) => server
            .run_until(shutdown_signal(term))
            .await
            .map_err(Into::into),
        Err(e) => Err(e.into()),
    };
    stop(embedded).await?;
    result
}

/// `pulsebus migrate`: applies pending migrations and exits.
pub async fn migrate(config: DatabaseConfig) -> Result<(), ServeError> {
    let (url, embedded) = database(&config).await?;
    let result = apply_migrations(&url, &config).await;
    stop(embedded).await?;
    result
}

async fn apply_migrations(url: &str, config: &DatabaseConfig) -> Result<(), ServeError> {
    let pool = crate::db::connect(url, config).await?.pool;
    crate::db::migrate(&pool).await?;
    pool.close().await;
    tracing::info!("migrations applied");
    Ok(())
}

/// `pulsebus hash-token`: the SHA-256 of the token on stdin, as the auth file wants it.
pub fn hash_token() -> Result<(), ServeError> {
    let mut token = String::new();
    std::io::stdin()
        .read_line(&mut token)
        .map_err(ServeError::Stdin)?;
    let token = token.trim();
    if token.is_empty() {
        return Err(ServeError::NoToken);
    }
    let hash = hex::encode(crate::auth::hash_token(token));
    writeln!(std::io::stdout().lock(), "{hash}").map_err(ServeError::Output)
}

/// The database to use: the configured URL, or the private PostgreSQL (started here).
async fn database(
    config: &DatabaseConfig,
) -> Result<(String, Option<EmbeddedPostgres>), ServeError> {
    if let Some(url) = &config.database_url {
        tracing::info!(url = %redact_url(url), "using PostgreSQL from DATABASE_URL");
        return Ok((url.clone(), None));
    }
    let dir = config.data_dir.clone();
    let pg = tokio::task::spawn_blocking(move || EmbeddedPostgres::start(&dir)).await??;
    if let Err(e) = crate::db::create_database(&pg.database_url(), EMBEDDED_DB).await {
        stop(Some(pg)).await?;
        return Err(e.into());
    }
    let url = crate::embedded_pg::cluster_url(pg.port(), EMBEDDED_DB);
    tracing::info!(%url, data_dir = %config.data_dir.display(), "using the private PostgreSQL");
    Ok((url, Some(pg)))
}

async fn stop(embedded: Option<EmbeddedPostgres>) -> Result<(), ServeError> {
    if let Some(pg) = embedded {
        tokio::task::spawn_blocking(move || pg.stop()).await??;
    }
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal(mut term: Signal) {
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
        _ = term.recv() => tracing::info!("SIGTERM received"),
    }
}
