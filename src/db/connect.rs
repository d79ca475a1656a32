//! Opening the pool: on the primary of the URL's hosts, with pulsebus's pinned session
//! settings, refusing connections that land on a standby and retiring those opened
//! before the primary moved (see [`super::primary`]).

use std::sync::Arc;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};

use super::DbError;
use super::hosts::Hosts;
use super::primary::{self, Answer, Primary};
use crate::config::{DatabaseConfig, redact_url};

/// A connection idle longer than this is pinged before use (it may have been cut
/// while it sat in the pool); busier ones are not, which saves a round trip per query.
const PING_AFTER_IDLE: Duration = Duration::from_secs(1);

/// Longest pause between two connection attempts while the server refuses.
const MAX_RETRY_PAUSE: Duration = Duration::from_millis(500);

/// The pool, and the hosts it follows when the primary moves.
#[derive(Debug)]
pub struct Database {
    /// Connections to the primary.
    pub pool: PgPool,
    /// The URL's hosts; [`primary::follow`] keeps the pool on the one that is primary.
    pub primary: Arc<Primary>,
}

/// Opens a pool sized and timed out as configured, on the primary.
///
/// With one host, one connection is opened on its own first, so that a wrong URL fails
/// with the driver's reason ("Connection refused", "password authentication failed",
/// "database ... does not exist") instead of the pool's "timed out". With several,
/// each is asked in turn until one is the primary, for `--db-timeout` in all.
pub async fn connect(url: &str, config: &DatabaseConfig) -> Result<Database, DbError> {
    let connect_err = |source| DbError::Connect {
        url: redact_url(url),
        source,
    };
    let hosts = Hosts::parse(url).map_err(|source| DbError::Hosts {
        url: redact_url(url),
        source,
    })?;
    let primary = Arc::new(Primary::new(&hosts, config.synchronous_commit).map_err(connect_err)?);
    if hosts.is_many() {
        find_primary(&primary, config.db_timeout).await?;
    } else {
        let mut probe = first_connection(url, &primary.current(), config.db_timeout).await?;
        let standby = primary::in_recovery(&mut probe)
            .await
            .map_err(connect_err)?;
        // Only the probe's answer matters; a failed goodbye changes nothing.
        let _ = probe.close().await;
        if standby {
            return Err(DbError::Standby {
                url: redact_url(url),
            });
        }
    }
    let follows = primary.clone();
    let pool = PgPoolOptions::new()
        .max_connections(config.db_max_connections)
        .acquire_timeout(config.db_timeout)
        .idle_timeout(Some(Duration::from_secs(300)))
        .test_before_acquire(false)
        .after_connect(|conn, _meta| Box::pin(primary::refuse_standby(conn)))
        .before_acquire(move |conn, meta| {
            let stale = follows.is_stale(meta.age);
            Box::pin(async move {
                if stale {
                    return Ok(false);
                }
                if meta.idle_for > PING_AFTER_IDLE {
                    conn.ping().await?;
                }
                Ok(true)
            })
        })
        .connect_with(primary.current())
        .await
        .map_err(connect_err)?;
    Ok(Database { pool, primary })
}

/// Exponential back-off with jitter from 10 ms to [`MAX_RETRY_PAUSE`], for `timeout`
/// in all.
fn retrying_for(timeout: Duration) -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(10))
        .with_max_delay(MAX_RETRY_PAUSE)
        .without_max_times()
        .with_total_delay(Some(timeout))
        .with_jitter()
}

/// Asks the hosts, with back-off (backon), until one is the primary or `timeout` has
/// passed; then fails naming what each host answered.
async fn find_primary(primary: &Primary, timeout: Duration) -> Result<(), DbError> {
    let backoff = retrying_for(timeout);
    let attempt = || async {
        match primary.find(timeout).await {
            (Some(index), _) => Ok(index),
            (None, answers) => Err(answers),
        }
    };
    match attempt.retry(backoff).await {
        Ok(index) => {
            primary.switch_to(index);
            tracing::info!(primary = %primary.current_label(), "found the PostgreSQL primary");
            Ok(())
        }
        Err(answers) => Err(DbError::NoPrimary {
            waited: timeout,
            answers: describe(primary, &answers),
        }),
    }
}

/// `host: answer; host: answer`, for the error.
fn describe(primary: &Primary, answers: &[(usize, Answer)]) -> String {
    let labels: Vec<&str> = primary.labels().collect();
    answers
        .iter()
        .map(|(index, answer)| {
            let said = match answer {
                Answer::Primary(_) => "primary".to_owned(),
                Answer::Standby => "a standby (in recovery)".to_owned(),
                Answer::Failed(e) => e.to_string(),
            };
            format!("{}: {said}", labels[*index])
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// One connection, retried with exponential back-off (backon) while the server refuses
/// or is starting up, for about `timeout` in all; a non-retryable error fails at once.
/// One connection, retried with exponential back-off (backon) while the server refuses
/// or is starting up, for about `timeout` in all; a non-retryable error fails at once.
async fn first_connection(
    url: &str,
    options: &PgConnectOptions,
    timeout: Duration,
) -> Result<PgConnection, DbError> {
    let backoff = retrying_for(timeout);
    let attempt = || async {
        match tokio::time::timeout(timeout, PgConnection::connect_with(options)).await {
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
