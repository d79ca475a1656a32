//! TLS and mutual TLS on the gRPC listener, with real certificates and a TLS client.

use std::path::{Path, PathBuf};

use crate::helpers::*;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

/// A CA, a server certificate for `localhost` and a client certificate, as PEM files.
struct Pki {
    dir: tempfile::TempDir,
    ca_pem: String,
    client_pem: (String, String),
}

impl Pki {
    fn new() -> Self {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_pem = ca_params.self_signed(&ca_key).unwrap().pem();
        let issuer = Issuer::new(ca_params, ca_key);
        let leaf = |name: &str| {
            let key = KeyPair::generate().unwrap();
            let cert = CertificateParams::new(vec![name.to_owned()])
                .unwrap()
                .signed_by(&key, &issuer)
                .unwrap();
            (cert.pem(), key.serialize_pem())
        };
        let (server_cert, server_key) = leaf("localhost");
        let dir = tempfile::tempdir().unwrap();
        for (name, pem) in [
            ("server.pem", &server_cert),
            ("server.key", &server_key),
            ("ca.pem", &ca_pem),
        ] {
            std::fs::write(dir.path().join(name), pem).unwrap();
        }
        Self {
            dir,
            ca_pem,
            client_pem: leaf("edupulse-client"),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

async fn server(pki: &Pki, mutual: bool) -> TestServer {
    let (cert, key, ca) = (
        pki.path("server.pem"),
        pki.path("server.key"),
        pki.path("ca.pem"),
    );
    TestServer::start_with(move |c| {
        c.tls.tls_cert = Some(cert);
        c.tls.tls_key = Some(key);
        c.tls.tls_client_ca = mutual.then_some(ca);
    })
    .await
}

async fn tls_client(
    server: &TestServer,
    pki: &Pki,
    with_identity: bool,
) -> Result<Client<Channel>, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&pki.ca_pem))
        .domain_name("localhost");
    if with_identity {
        tls = tls.identity(Identity::from_pem(&pki.client_pem.0, &pki.client_pem.1));
    }
    let channel = Channel::from_shared(format!("https://localhost:{}", server.addr.port()))
        .unwrap()
        .tls_config(tls)?
        .connect()
        .await?;
    Ok(Client::new(channel))
}

async fn can_publish(client: Result<Client<Channel>, tonic::transport::Error>) -> bool {
    let Ok(mut client) = client else { return false };
    let req = PublishRequest {
        topic: "secure".into(),
        events: events("x", 1),
    };
    client.publish(req).await.is_ok()
}

fn assert_is_pem(path: &Path) {
    assert!(
        std::fs::read_to_string(path).unwrap().contains("BEGIN"),
        "{}",
        path.display()
    );
}

/// With a certificate, the server speaks TLS: a TLS client trusting the CA publishes,
/// a plaintext client gets nothing.
#[tokio::test]
async fn tls_clients_are_served_and_plaintext_ones_are_not() {
    let pki = Pki::new();
    assert_is_pem(&pki.path("server.pem"));
    let server = server(&pki, false).await;

    assert!(can_publish(tls_client(&server, &pki, false).await).await);
    let plaintext = Channel::from_shared(format!("http://{}", server.addr))
        .unwrap()
        .connect()
        .await
        .map(Client::new);
    assert!(!can_publish(plaintext).await);
}

/// With a client CA, only clients presenting a certificate it signed are served.
#[tokio::test]
async fn mutual_tls_requires_a_client_certificate_signed_by_the_ca() {
    let pki = Pki::new();
    let server = server(&pki, true).await;

    assert!(can_publish(tls_client(&server, &pki, true).await).await);
    assert!(!can_publish(tls_client(&server, &pki, false).await).await);
}

/// A missing certificate file stops the server at start, naming the file.
#[tokio::test]
async fn a_missing_certificate_file_fails_the_start_clearly() {
    let mut config =
        pulsebus::config::ServeConfig::new("127.0.0.1:0".parse().unwrap(), fresh_database().await);
    config.tls.tls_cert = Some("/nonexistent/server.pem".into());
    config.tls.tls_key = Some("/nonexistent/server.key".into());
    let url = config.database.database_url.clone().unwrap();

    let err = pulsebus::server::Server::build(config, &url)
        .await
        .unwrap_err();

    assert!(err.to_string().contains("/nonexistent/server.pem"), "{err}");
}
