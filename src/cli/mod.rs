//! The `pulsebus` command line: `serve` runs the server, `migrate` applies the schema,
//! and the client commands (`topics`, `publish`, `read`, `tail`, ...) talk to a server.

mod client;

use std::error::Error;

use clap::{Parser, Subcommand, ValueEnum};
use tracing_subscriber::EnvFilter;

use crate::config::{DatabaseConfig, ServeConfig, redact_url};
use crate::embedded_pg::EmbeddedPostgres;
use crate::server::Server;

/// The database name pulsebus uses inside its private PostgreSQL.
const EMBEDDED_DB: &str = "pulsebus";

/// pulsebus: the event backbone of EduPulse Live.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    /// Log format: human-readable text or one JSON object per line.
    #[arg(long, env = "PULSEBUS_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,

    #[command(flatten)]
    pub connection: client::Connection,

    #[command(subcommand)]
    pub command: Command,
}

/// How logs are written (to stderr; the level comes from RUST_LOG, default `info`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// JSON lines, for log shippers.
    Json,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gRPC server (applies pending migrations first).
    Serve(Box<ServeConfig>),
    /// Apply pending database migrations and exit.
    Migrate(DatabaseConfig),
    /// Read a bearer token from stdin and print the SHA-256 the auth file stores for it.
    HashToken,
    #[command(flatten)]
    Client(client::ClientCommand),
}

/// Runs the parsed command line to completion.
pub async fn run(cli: Cli) -> Result<(), Box<dyn Error>> {
    init_tracing(cli.log_format);
    match cli.command {
        Command::Serve(config) => serve(*config).await,
        Command::Migrate(config) => migrate(config).await,
        Command::HashToken => hash_token(),
        Command::Client(command) => client::run(cli.connection, command).await,
    }
}

fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// The database to use: the configured URL, or the private PostgreSQL (started here).
async fn database(
    config: &DatabaseConfig,
) -> Result<(String, Option<EmbeddedPostgres>), Box<dyn Error>> {
    if let Some(url) = &config.database_url {
        tracing::info!(url = %redact_url(url), "using PostgreSQL from DATABASE_URL");
        return Ok((url.clone(), None));
    }
    let dir = config.data_dir.clone();
    let pg = tokio::task::spawn_blocking(move || EmbeddedPostgres::start(&dir)).await??;
    crate::db::create_database(&pg.database_url(), EMBEDDED_DB).await?;
    let url = crate::embedded_pg::cluster_url(pg.port(), EMBEDDED_DB);
    tracing::info!(%url, data_dir = %config.data_dir.display(), "using the private PostgreSQL");
    Ok((url, Some(pg)))
}

async fn serve(config: ServeConfig) -> Result<(), Box<dyn Error>> {
    let (url, embedded) = database(&config.database).await?;
    let result = match Server::build(config, &url).await {
        Ok(server) => server
            .run_until(shutdown_signal())
            .await
            .map_err(Into::into),
        Err(e) => Err(e.into()),
    };
    if let Some(pg) = embedded {
        tokio::task::spawn_blocking(move || pg.stop()).await??;
    }
    result
}

async fn migrate(config: DatabaseConfig) -> Result<(), Box<dyn Error>> {
    let (url, embedded) = database(&config).await?;
    let pool = crate::db::connect(&url, &config).await?;
    crate::db::migrate(&pool).await?;
    pool.close().await;
    tracing::info!("migrations applied");
    if let Some(pg) = embedded {
        tokio::task::spawn_blocking(move || pg.stop()).await??;
    }
    Ok(())
}

fn hash_token() -> Result<(), Box<dyn Error>> {
    let mut token = String::new();
    std::io::stdin().read_line(&mut token)?;
    let token = token.trim();
    if token.is_empty() {
        return Err("no token on stdin: try `printf %s \"$TOKEN\" | pulsebus hash-token`".into());
    }
    println!("{}", hex::encode(crate::auth::hash_token(token)));
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
        _ = term.recv() => tracing::info!("SIGTERM received"),
    }
}
