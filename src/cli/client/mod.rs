//! The operator's client commands: talk to a running server the way a service would,
//! and print what comes back as JSON lines (pipe them into `jq`). One command is one
//! struct with its own `run`, and each takes the [`Connection`] flags.

mod ack;
mod consumers;
mod publish;
mod read;
mod seek;
mod tail;
mod topics;

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::{Value, json};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

use crate::proto::pulsebus::v1 as pb;
use crate::proto::pulsebus::v1::event_bus_client::EventBusClient;

/// Where the server is and how to reach it.
#[derive(Debug, Clone, Args)]
pub struct Connection {
    /// Server: a URL (https:// for TLS), or host:port (then http://, or https:// with --ca).
    #[arg(
        long,
        env = "PULSEBUS_SERVER",
        default_value = "http://127.0.0.1:50051"
    )]
    pub server: String,
    /// Bearer token, when the server has --auth-file.
    #[arg(long, env = "PULSEBUS_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// PEM CA to trust for https:// servers (default: the system roots are not used).
    #[arg(long, env = "PULSEBUS_CA")]
    pub ca: Option<PathBuf>,
}

impl Connection {
    /// The URL to dial: `--server` as given when it has a scheme, else with `http://`
    /// (or `https://` when a CA is given) in front.
    pub fn url(&self) -> String {
        if self.server.contains("://") {
            return self.server.clone();
        }
        let scheme = if self.ca.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.server)
    }
}

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

/// Why a client command failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// `--server` is not a URL.
    #[error("invalid --server {server:?}: {source}")]
    BadServer {
        /// The URL tried.
        server: String,
        /// What is wrong with it.
        source: tonic::codegen::http::uri::InvalidUri,
    },
    /// The `--ca` file could not be read.
    #[error("cannot read --ca {path}: {source}")]
    ReadCa {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// TLS could not be set up with the given CA.
    #[error("cannot set up TLS: {0}")]
    Tls(tonic::transport::Error),
    /// No connection to the server (the message gives every cause: tonic's own
    /// "transport error" alone does not say that a certificate was refused).
    #[error("cannot reach {server}: {}", with_causes(source))]
    Unreachable {
        /// The URL dialled.
        server: String,
        /// The transport's error.
        source: tonic::transport::Error,
    },
    /// The token cannot be sent as an HTTP header.
    #[error("--token is not a valid header value (printable ASCII only)")]
    BadToken,
    /// The server answered with an error.
    #[error(transparent)]
    Status(#[from] tonic::Status),
    /// Printing the output failed.
    #[error("cannot write to stdout: {0}")]
    Output(std::io::Error),
}

impl ClientError {
    /// Whether only stdout was closed early (`| head -1`).
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, Self::Output(e) if e.kind() == std::io::ErrorKind::BrokenPipe)
    }
}

/// Client commands.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// List topics with their head offsets.
    Topics(topics::Topics),
    /// Publish one event with a JSON (or plain text) payload.
    Publish(publish::Publish),
    /// Print a page of a topic's log.
    Read(read::Read),
    /// Stream a topic (Ctrl-C to stop); with --consumer, as that durable consumer.
    Tail(tail::Tail),
    /// List a topic's durable consumers with their lag.
    Consumers(consumers::Consumers),
    /// Commit a consumer's offset.
    Ack(ack::Ack),
    /// Move a consumer to an offset (replay or skip).
    Seek(seek::Seek),
}

impl ClientCommand {
    /// Runs the command against the server, `legacy` flags overriding its own.
    pub async fn run(mut self, legacy: LegacyConnection) -> Result<(), ClientError> {
        legacy.apply_to(self.connection_mut());
        match self {
            Self::Topics(c) => c.run().await,
            Self::Publish(c) => c.run().await,
            Self::Read(c) => c.run().await,
            Self::Tail(c) => c.run().await,
            Self::Consumers(c) => c.run().await,
            Self::Ack(c) => c.run().await,
            Self::Seek(c) => c.run().await,
        }
    }

    fn connection_mut(&mut self) -> &mut Connection {
        match self {
            Self::Topics(c) => &mut c.connection,
            Self::Publish(c) => &mut c.connection,
            Self::Read(c) => &mut c.connection,
            Self::Tail(c) => &mut c.connection,
            Self::Consumers(c) => &mut c.connection,
            Self::Ack(c) => &mut c.connection,
            Self::Seek(c) => &mut c.connection,
        }
    }
}

/// `error` and its chain of sources, `: `-separated, each message once (some layers
/// repeat their source's message in their own).
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        let message = e.to_string();
        if !text.contains(&message) {
            text.push_str(": ");
            text.push_str(&message);
        }
        cause = e.source();
    }
    text
}

/// A connected EventBus client that adds the bearer token to every request.
struct Client {
    bus: EventBusClient<Channel>,
    token: Option<MetadataValue<Ascii>>,
}

impl Client {
    async fn connect(conn: &Connection) -> Result<Self, ClientError> {
        let server = conn.url();
        let mut endpoint =
            Channel::from_shared(server.clone()).map_err(|source| ClientError::BadServer {
                server: server.clone(),
                source,
            })?;
        if let Some(path) = &conn.ca {
            let pem = std::fs::read(path).map_err(|source| ClientError::ReadCa {
                path: path.clone(),
                source,
            })?;
            let tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem));
            endpoint = endpoint.tls_config(tls).map_err(ClientError::Tls)?;
        }
        let channel = endpoint
            .connect()
            .await
            .map_err(|source| ClientError::Unreachable { server, source })?;
        let token = conn
            .token
            .as_ref()
            .map(|t| format!("Bearer {t}").parse())
            .transpose()
            .map_err(|_| ClientError::BadToken)?;
        Ok(Self {
            bus: EventBusClient::new(channel),
            token,
        })
    }

    /// `message` as a request carrying the token, if any.
    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        if let Some(token) = &self.token {
            request
                .metadata_mut()
                .insert("authorization", token.clone());
        }
        request
    }
}

/// A record as one JSON object: JSON payloads inline, text as a string, bytes counted.
fn record_json(r: pb::Record) -> Value {
    let e = r.event.unwrap_or_default();
    let data = match e.data {
        Some(pb::event::Data::TextData(t)) => serde_json::from_str(&t).unwrap_or(Value::String(t)),
        Some(pb::event::Data::BinaryData(b)) => json!({"bytes": b.len()}),
        Some(pb::event::Data::ProtoData(any)) => {
            json!({"type_url": any.type_url, "bytes": any.value.len()})
        }
        None => Value::Null,
    };
    json!({"offset": r.offset, "id": e.id, "type": e.r#type, "subject": e.subject, "source": e.source, "data": data})
}

/// Prints one JSON line; a closed stdout is an error the caller stops on.
fn print_json(value: &Value) -> Result<(), ClientError> {
    writeln!(std::io::stdout().lock(), "{value}").map_err(ClientError::Output)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connection(server: &str, ca: Option<&str>) -> Connection {
        Connection {
            server: server.to_owned(),
            token: None,
            ca: ca.map(PathBuf::from),
        }
    }

    #[test]
    fn a_bare_host_and_port_gets_http_or_with_a_ca_https() {
        assert_eq!(
            connection("127.0.0.1:50051", None).url(),
            "http://127.0.0.1:50051"
        );
        assert_eq!(
            connection("localhost:50051", Some("ca.pem")).url(),
            "https://localhost:50051"
        );
        assert_eq!(
            connection("http://10.0.0.1:1", Some("ca.pem")).url(),
            "http://10.0.0.1:1"
        );
    }
}
