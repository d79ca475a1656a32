//! The TLS flags: a mutual-TLS server reached with --ca, --tls-cert and --tls-key,
//! and a refused server certificate explained.

use std::path::{Path, PathBuf};

use super::*;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

/// A CA, a `localhost` server certificate and a client certificate it signed, and a
/// self-signed `localhost` certificate that is a CA (wrongly used as a server's).
fn write_pki(dir: &Path) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf = |name: &str, file: &str| {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec![name.to_owned()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        std::fs::write(dir.join(format!("{file}.pem")), cert.pem()).unwrap();
        std::fs::write(dir.join(format!("{file}.key")), key.serialize_pem()).unwrap();
    };
    leaf("localhost", "server");
    leaf("edupulse-client", "client");
    std::fs::write(dir.join("ca.pem"), ca).unwrap();

    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    std::fs::write(
        dir.join("ca-leaf.pem"),
        params.self_signed(&key).unwrap().pem(),
    )
    .unwrap();
    std::fs::write(dir.join("ca-leaf.key"), key.serialize_pem()).unwrap();
}

async fn tls_server(dir: &Path, cert: &str, client_ca: bool) -> TestServer {
    let path = |f: &str| -> PathBuf { dir.join(f) };
    let (cert, key, ca) = (
        path(&format!("{cert}.pem")),
        path(&format!("{cert}.key")),
        path("ca.pem"),
    );
    TestServer::start_with(move |c| {
        c.tls.tls_cert = Some(cert);
        c.tls.tls_key = Some(key);
        c.tls.tls_client_ca = client_ca.then_some(ca);
    })
    .await
}

async fn cli_at(server: &TestServer, args: &[&str]) -> Output {
    let addr = format!("localhost:{}", server.addr.port());
    let cmd = pulsebus().args(args).args(["--server", &addr]).output();
    tokio::time::timeout(WAIT, cmd).await.unwrap().unwrap()
}

/// A mutual-TLS server is reached with a bare host:port and the CA, client
/// certificate and key flags; without the client certificate it is not.
#[tokio::test]
async fn the_cli_reaches_a_mutual_tls_server_with_a_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    write_pki(dir.path());
    let server = tls_server(dir.path(), "server", true).await;
    let p = |f: &str| dir.path().join(f).to_str().unwrap().to_owned();

    let (ca, cert, key) = (p("ca.pem"), p("client.pem"), p("client.key"));
    let with = cli_at(
        &server,
        &[
            "topics",
            "--json",
            "--ca",
            &ca,
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
        ],
    )
    .await;
    let without = cli_at(&server, &["topics", "--ca", &ca]).await;

    assert!(
        with.status.success(),
        "{}",
        String::from_utf8_lossy(&with.stderr)
    );
    assert!(!without.status.success());
}

/// A server certificate that is a CA (CA:TRUE) used as the leaf: the error says so,
/// not only "transport error".
#[tokio::test]
async fn a_ca_certificate_used_as_the_server_certificate_is_explained() {
    let dir = tempfile::tempdir().unwrap();
    write_pki(dir.path());
    let server = tls_server(dir.path(), "ca-leaf", false).await;
    let ca = dir.path().join("ca-leaf.pem");

    let out = cli_at(&server, &["topics", "--ca", ca.to_str().unwrap()]).await;

    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(err.contains("CaUsedAsEndEntity"), "{err}");
}
