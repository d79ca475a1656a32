//! Reaching a server: its URL, TLS (a CA to trust, a client certificate), a bearer
//! token, keepalives. The channel dials lazily and redials after a failure, so a
//! service may start before the server; calls meanwhile fail with UNAVAILABLE, which
//! publishing and consuming retry with back-off.

use std::time::Duration;

use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::error::ClientError;
use crate::proto::pulsebus::v1::event_bus_client::EventBusClient;
use crate::retry::RetryPolicy;

/// The generated EventBus client, with the token attached to every call.
pub type Stub = EventBusClient<InterceptedService<Channel, Bearer>>;

/// How to reach a server; [`ClientBuilder::connect`] makes the [`Client`].
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    url: String,
    token: Option<String>,
    ca_pem: Option<Vec<u8>>,
    identity: Option<(Vec<u8>, Vec<u8>)>,
    retry: RetryPolicy,
    keepalive: Duration,
}

impl ClientBuilder {
    /// A server at `url` (`http://host:port`, or `https://` for TLS).
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            token: None,
            ca_pem: None,
            identity: None,
            retry: RetryPolicy::default(),
            keepalive: Duration::from_secs(20),
        }
    }

    /// Sends `authorization: Bearer <token>` with every call.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Trusts this PEM CA for `https://` servers.
    pub fn ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_pem = Some(pem.into());
        self
    }

    /// Presents this PEM client certificate and key (mutual TLS).
    pub fn identity_pem(mut self, cert: impl Into<Vec<u8>>, key: impl Into<Vec<u8>>) -> Self {
        self.identity = Some((cert.into(), key.into()));
        self
    }

    /// How calls and reconnects back off.
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// HTTP/2 keepalive pings this often (a dead connection is noticed within about
    /// twice that). Default 20 s.
    pub fn keepalive(mut self, every: Duration) -> Self {
        self.keepalive = every;
        self
    }

    /// The client. Fails only on settings that can never work (a bad URL, TLS files
    /// that do not parse, a token that is not ASCII); the server need not be up yet.
    pub fn connect(self) -> Result<Client, ClientError> {
        let invalid = |reason: String| ClientError::InvalidUrl {
            url: self.url.clone(),
            reason,
        };
        let mut endpoint = Endpoint::from_shared(self.url.clone())
            .map_err(|e| invalid(e.to_string()))?
            .connect_timeout(Duration::from_secs(5))
            .http2_keep_alive_interval(self.keepalive)
            .keep_alive_timeout(self.keepalive)
            .keep_alive_while_idle(true);
        if self.url.starts_with("https://") {
            endpoint = endpoint
                .tls_config(self.tls())
                .map_err(|e| ClientError::Tls(e.to_string()))?;
        } else if !self.url.starts_with("http://") {
            return Err(invalid("the scheme must be http:// or https://".into()));
        }
        let token = match &self.token {
            Some(t) => Some(
                format!("Bearer {t}")
                    .parse()
                    .map_err(|_| ClientError::InvalidToken)?,
            ),
            None => None,
        };
        Ok(Client {
            channel: endpoint.connect_lazy(),
            bearer: Bearer(token),
            retry: self.retry,
        })
    }

    fn tls(&self) -> ClientTlsConfig {
        let mut tls = ClientTlsConfig::new();
        if let Some(pem) = &self.ca_pem {
            tls = tls.ca_certificate(Certificate::from_pem(pem));
        }
        if let Some((cert, key)) = &self.identity {
            tls = tls.identity(Identity::from_pem(cert, key));
        }
        tls
    }
}

/// Adds the bearer token to every call.
#[derive(Debug, Clone)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

impl Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(token) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", token.clone());
        }
        Ok(request)
    }
}

/// A connection to a pulsebus server (cheap to clone; clones share the channel).
#[derive(Debug, Clone)]
pub struct Client {
    channel: Channel,
    bearer: Bearer,
    pub(crate) retry: RetryPolicy,
}

impl Client {
    /// A client for `url` with default settings (see [`ClientBuilder`] for TLS and
    /// tokens).
    pub fn connect(url: impl Into<String>) -> Result<Self, ClientError> {
        ClientBuilder::new(url).connect()
    }

    /// The generated stub, for calls this crate does not wrap (ListTopics, Read...).
    pub fn stub(&self) -> Stub {
        EventBusClient::with_interceptor(self.channel.clone(), self.bearer.clone())
            .max_decoding_message_size(64 * 1024 * 1024)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_url_without_a_usable_scheme_is_refused_at_once() {
        let err = Client::connect("127.0.0.1:50051").unwrap_err();
        assert!(matches!(err, ClientError::InvalidUrl { .. }), "{err}");
        assert!(Client::connect("http://127.0.0.1:50051").is_ok());
        let bad_token = ClientBuilder::new("http://127.0.0.1:1")
            .token("line\nbreak")
            .connect();
        assert!(matches!(bad_token, Err(ClientError::InvalidToken)));
    }
}
