//! The operator's client commands: talk to a running server the way a service would,
//! and print tables for people or JSON lines (`--json`) for scripts. One command is one
//! struct with its own `run`, and each takes the [`Connection`] flags; failures exit
//! with the codes of [`ExitCode`].

mod ack;
mod connect;
mod consumer;
mod consumers;
mod encode;
mod errors;
mod health;
mod output;
mod position;
mod publish;
mod read;
mod seek;
mod tail;
mod top;
mod topic;
mod topics;

use std::path::PathBuf;

use clap::{Args, Subcommand};

pub use connect::{Client, Connection};
pub use errors::{ClientError, ExitCode};

/// `--server`, `--token` and `--ca` before the command name (`pulsebus --server URL
/// read lessons`), where earlier versions took them: still honoured by the client
/// commands, and hidden from help. Given there, they win over the command's own.
#[derive(Debug, Clone, Default, Args)]
pub struct LegacyConnection {
    #[arg(long = "server", id = "legacy_server", hide = true)]
    server: Option<String>,
    #[arg(long = "token", id = "legacy_token", hide = true)]
    token: Option<String>,
    #[arg(long = "ca", id = "legacy_ca", hide = true)]
    ca: Option<PathBuf>,
}

impl LegacyConnection {
    /// Whether any of the flags was given.
    pub fn is_given(&self) -> bool {
        self.server.is_some() || self.token.is_some() || self.ca.is_some()
    }

    fn apply_to(self, connection: &mut Connection) {
        if let Some(server) = self.server {
            connection.server = server;
        }
        if self.token.is_some() {
            connection.token = self.token;
        }
        if self.ca.is_some() {
            connection.ca = self.ca;
        }
    }
}

/// Client commands.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// List topics with their head offsets.
    Topics(topics::Topics),
    /// Manage one topic (`topic create|describe|update|delete`).
    Topic(topic::Topic),
    /// Publish one event: JSON, text, or a known protobuf type built from JSON.
    Publish(publish::Publish),
    /// Print records of a topic's log.
    Read(read::Read),
    /// Stream a topic (Ctrl-C to stop), reconnecting when the server goes away.
    Tail(tail::Tail),
    /// List a topic's durable consumers with their lag.
    Consumers(consumers::Consumers),
    /// Manage one durable consumer (`consumer delete TOPIC NAME`).
    Consumer(consumer::Consumer),
    /// Commit a consumer's offset.
    Ack(ack::Ack),
    /// Move a consumer to earliest, latest, an offset or a time.
    Seek(seek::Seek),
    /// Live view of topics and consumers, refreshed every second.
    Top(top::Top),
    /// Check the server's grpc.health.v1 status; exit 0 when serving.
    Health(health::Health),
}

impl ClientCommand {
    /// Runs the command against the server, `legacy` flags overriding its own.
    pub async fn run(mut self, legacy: LegacyConnection) -> Result<(), ClientError> {
        legacy.apply_to(self.connection_mut());
        match self {
            Self::Topics(c) => c.run().await,
            Self::Topic(c) => c.run().await,
            Self::Publish(c) => c.run().await,
            Self::Read(c) => c.run().await,
            Self::Tail(c) => c.run().await,
            Self::Consumers(c) => c.run().await,
            Self::Consumer(c) => c.run().await,
            Self::Ack(c) => c.run().await,
            Self::Seek(c) => c.run().await,
            Self::Top(c) => c.run().await,
            Self::Health(c) => c.run().await,
        }
    }

    fn connection_mut(&mut self) -> &mut Connection {
        match self {
            Self::Topics(c) => &mut c.connection,
            Self::Topic(c) => c.connection_mut(),
            Self::Publish(c) => &mut c.connection,
            Self::Read(c) => &mut c.connection,
            Self::Tail(c) => &mut c.connection,
            Self::Consumers(c) => &mut c.connection,
            Self::Consumer(c) => c.connection_mut(),
            Self::Ack(c) => &mut c.connection,
            Self::Seek(c) => &mut c.connection,
            Self::Top(c) => &mut c.connection,
            Self::Health(c) => &mut c.connection,
        }
    }
}
