//! The `pulsebus` command line, in two halves:
//! - the launcher (`serve.rs`): `serve` runs the server, `migrate` applies the schema,
//!   `hash-token` hashes a bearer token for the auth file;
//! - the client (`client/`): `topics`, `publish`, `read`, `tail`, `consumers`,
//!   `consumer`, `ack`, `seek`, `top` and `health` talk to a running server; only they
//!   take `--server`, `--token` and the TLS flags.

mod client;
mod serve;

use std::ffi::OsString;
use std::io::IsTerminal;

use clap::{Parser, Subcommand, ValueEnum};

use crate::config::{DatabaseConfig, ServeConfig};
use crate::telemetry;
pub use client::ClientError;
pub use serve::ServeError;

/// pulsebus: the event backbone of EduPulse Live.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    /// Log format: human-readable text or one JSON object per line.
    #[arg(long, env = "PULSEBUS_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,

    /// The client flags in their old place, before the command name.
    #[command(flatten)]
    legacy: client::LegacyConnection,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// How logs are written (to stderr; the level comes from RUST_LOG, default `info`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines (coloured on a terminal, unless NO_COLOR is set).
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

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// `serve`, `migrate` or `hash-token` failed.
    #[error(transparent)]
    Serve(#[from] ServeError),
    /// A client command failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// `pulsebus --server ... serve`: the client flags mean nothing to the launcher.
    #[error(
        "--server, --token and --ca are for the client commands (topics, publish, read, \
         tail, consumers, consumer, ack, seek, top, health), not for `{0}`"
    )]
    ClientFlagsOnLauncher(&'static str),
}

impl CliError {
    /// Whether the command failed only because whoever read its output stopped reading
    /// (`pulsebus read lessons | head -1`): nothing is wrong, so nothing to report.
    pub fn is_broken_pipe(&self) -> bool {
        match self {
            Self::Serve(e) => e.is_broken_pipe(),
            Self::Client(e) => e.is_broken_pipe(),
            Self::ClientFlagsOnLauncher(_) => false,
        }
    }

    /// The process's exit code: the client's documented codes, 1 for the launcher,
    /// 2 (as clap's) for client flags given to it.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Serve(_) => 1,
            Self::Client(e) => e.exit_code() as u8,
            Self::ClientFlagsOnLauncher(_) => client::ExitCode::Usage as u8,
        }
    }
}

/// Runs the parsed command line to completion.
pub async fn run(cli: Cli) -> Result<(), CliError> {
    let _telemetry = init_telemetry(cli.log_format);
    let launcher = |name| {
        if cli.legacy.is_given() {
            Err(CliError::ClientFlagsOnLauncher(name))
        } else {
            Ok(())
        }
    };
    match cli.command {
        Command::Serve(config) => {
            launcher("serve")?;
            serve::serve(*config).await?;
        }
        Command::Migrate(config) => {
            launcher("migrate")?;
            serve::migrate(config).await?;
        }
        Command::HashToken => {
            launcher("hash-token")?;
            serve::hash_token()?;
        }
        Command::Client(command) => command.run(cli.legacy).await?,
    }
    Ok(())
}

fn init_telemetry(format: LogFormat) -> telemetry::Telemetry {
    let colour = use_colour(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR"),
    );
    telemetry::init(telemetry::LogStyle {
        json: format == LogFormat::Json,
        colour,
    })
}

/// Colour codes only for a person at a terminal: never into a file or a pipe, and
/// never when `NO_COLOR` is set to anything non-empty (<https://no-color.org>).
fn use_colour(stderr_is_terminal: bool, no_color: Option<OsString>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|v| v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_are_coloured_only_on_a_terminal_without_no_color() {
        assert!(use_colour(true, None));
        assert!(use_colour(true, Some(OsString::new())));
        assert!(!use_colour(true, Some("1".into())));
        assert!(!use_colour(false, None));
    }
}
