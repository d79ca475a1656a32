//! How the client commands reach a server: the `--server`, `--token` and TLS flags, and
//! the connected client that sends the token with every request.

use std::path::PathBuf;

use clap::Args;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use super::errors::ClientError;
use crate::proto::pulsebus::v1::event_bus_client::EventBusClient;

/// Where the server is and how to reach it.
#[derive(Debug, Clone, Args)]
pub struct Connection {
    /// Server: host:port (http://, or https:// with any TLS flag), or a URL.
    #[arg(long, env = "PULSEBUS_SERVER", default_value = "127.0.0.1:50051")]
    pub server: String,
    /// Bearer token, when the server has --auth-file.
    #[arg(long, env = "PULSEBUS_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// PEM CA to trust for the server's certificate (the system roots are not used).
    #[arg(long, visible_alias = "tls-ca", env = "PULSEBUS_CA")]
    pub ca: Option<PathBuf>,
    /// PEM client certificate, for a server with --tls-client-ca (mutual TLS).
    #[arg(
        long = "tls-cert",
        visible_alias = "cert",
        env = "PULSEBUS_CLIENT_CERT",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(
        long = "tls-key",
        visible_alias = "key",
        env = "PULSEBUS_CLIENT_KEY",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,
}

impl Connection {
    /// Whether any TLS flag is given: then a bare host:port means https://.
    fn wants_tls(&self) -> bool {
        self.ca.is_some() || self.tls_cert.is_some()
    }

    /// The URL to dial: `--server` as given when it has a scheme, else with `http://`
    /// (or `https://` when a TLS flag is given) in front.
    pub fn url(&self) -> String {
        if self.server.contains("://") {
            return self.server.clone();
        }
        let scheme = if self.wants_tls() { "https" } else { "http" };
        format!("{scheme}://{}", self.server)
    }

    /// The endpoint to dial, with TLS set up from the flags for https:// URLs.
    pub fn endpoint(&self) -> Result<Endpoint, ClientError> {
        let server = self.url();
        let endpoint =
            Channel::from_shared(server.clone()).map_err(|source| ClientError::BadServer {
                server: server.clone(),
                source,
            })?;
        if !server.starts_with("https://") {
            return Ok(endpoint);
        }
        let mut tls = ClientTlsConfig::new();
        if let Some(path) = &self.ca {
            tls = tls.ca_certificate(Certificate::from_pem(read_pem("--ca", path)?));
        }
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            let (cert, key) = (read_pem("--tls-cert", cert)?, read_pem("--tls-key", key)?);
            tls = tls.identity(Identity::from_pem(cert, key));
        }
        endpoint.tls_config(tls).map_err(ClientError::Tls)
    }
}

fn read_pem(flag: &'static str, path: &PathBuf) -> Result<Vec<u8>, ClientError> {
    std::fs::read(path).map_err(|source| ClientError::ReadFile {
        flag,
        path: path.clone(),
        source,
    })
}

/// A connected EventBus client that adds the bearer token to every request.
pub struct Client {
    /// The generated client.
    pub bus: EventBusClient<Channel>,
    /// The channel, for the health service.
    pub channel: Channel,
    token: Option<MetadataValue<Ascii>>,
}

impl Client {
    /// Dials the server now, so an unreachable server or a refused certificate is
    /// reported before anything is printed.
    pub async fn connect(conn: &Connection) -> Result<Self, ClientError> {
        let token = conn
            .token
            .as_ref()
            .map(|t| format!("Bearer {t}").parse())
            .transpose()
            .map_err(|_| ClientError::BadToken)?;
        let channel =
            conn.endpoint()?
                .connect()
                .await
                .map_err(|source| ClientError::Unreachable {
                    server: conn.url(),
                    source,
                })?;
        Ok(Self {
            bus: EventBusClient::new(channel.clone()),
            channel,
            token,
        })
    }

    /// `message` as a request carrying the token, if any.
    pub fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        if let Some(token) = &self.token {
            request
                .metadata_mut()
                .insert("authorization", token.clone());
        }
        request
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connection(server: &str, ca: Option<&str>) -> Connection {
        Connection {
            server: server.to_owned(),
            token: None,
            ca: ca.map(PathBuf::from),
            tls_cert: None,
            tls_key: None,
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
