//! The Node.js client (`clients/node`, package `@edupulse/pulsebus`) against real
//! servers: one test per behaviour, each running one `node:test` file of
//! `clients/node/test/` through [`crate::e2e::driven`], which restarts or stops the
//! server when the file asks. The package must be built first (`scripts/test` runs
//! `npm ci` and `npm run build` in `clients/node`).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

use crate::e2e::driven::drive;
use crate::e2e::manifest_dir;
use crate::helpers::{TestServer, quick};

/// One test file: reconnects, back-offs and a restart or two, on a debug build.
const FILE_TIMEOUT: Duration = Duration::from_secs(180);

/// The `node` to run: `PULSEBUS_NODE`, else `node` on PATH; it must be Node 20 or later.
fn node() -> &'static Path {
    static FOUND: OnceLock<PathBuf> = OnceLock::new();
    FOUND.get_or_init(|| {
        let chosen = std::env::var_os("PULSEBUS_NODE")
            .filter(|v| !v.is_empty())
            .map_or_else(|| PathBuf::from("node"), PathBuf::from);
        let help = "Node.js 20 or later not found: install it (Debian: `apt-get install nodejs \
                    npm`; `.ci/run` does), or set PULSEBUS_NODE to a node binary";
        let out = std::process::Command::new(&chosen)
            .arg("--version")
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("{help}\n(cannot run `{}`: {e})", chosen.display()));
        let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        let major: u32 = version
            .trim_start_matches('v')
            .split('.')
            .next()
            .and_then(|m| m.parse().ok())
            .unwrap_or(0);
        assert!(
            out.status.success() && major >= 20,
            "{help}\n(`{} --version` said {version:?})",
            chosen.display()
        );
        chosen
    })
}

/// The package directory; panics with the build command when it was not built.
fn package() -> PathBuf {
    let dir = manifest_dir().join("clients/node");
    assert!(
        dir.join("dist/index.js").exists() && dir.join("node_modules").exists(),
        "the Node client is not built: run `scripts/test`, or `npm ci && npm run build` in {}",
        dir.display()
    );
    dir
}

/// Runs `clients/node/test/<file>` with node's test runner against `server`, its
/// report on stderr so stdout stays free for the harness's requests.
async fn run_test_file(file: &str, server: TestServer) {
    run_test_file_with(file, &[], server).await;
}

/// As [`run_test_file`], with arguments for the file (its `process.argv[2..]`).
async fn run_test_file_with(file: &str, file_args: &[&str], server: TestServer) {
    let dir = package();
    let path = format!("test/{file}");
    let mut args = vec![
        "--test-reporter=spec",
        "--test-reporter-destination=stderr",
        path.as_str(),
    ];
    args.extend_from_slice(file_args);
    let out = drive(node(), &args, &dir, server, FILE_TIMEOUT).await;
    out.assert_success(&path);
}

/// Publishing is retry-safe: the same event twice is one record with one offset, a
/// batching publisher tells each caller its own offset, a publish during an outage is
/// retried until the server is back and stored once, and a refused publish is an error
/// with its status code and message.
#[tokio::test]
async fn node_publish_with_client_ids_is_stored_once_across_retries() {
    let server = TestServer::start().await;
    run_test_file(
        "a_retried_publish_with_the_same_id_is_stored_once.test.mjs",
        server,
    )
    .await;
}

/// A typed EduPulse payload (proto_data) and a JSON payload come back decoded.
#[tokio::test]
async fn node_typed_edupulse_and_json_payloads_round_trip() {
    let server = TestServer::start().await;
    run_test_file(
        "typed_edupulse_and_json_payloads_round_trip.test.mjs",
        server,
    )
    .await;
}

/// Acking iterated messages moves the committed offset (ListConsumers), and what was
/// not acked comes next time.
#[tokio::test]
async fn node_acking_iterated_messages_moves_the_committed_offset() {
    let server = TestServer::start().await;
    run_test_file(
        "acking_iterated_messages_moves_the_committed_offset.test.mjs",
        server,
    )
    .await;
}

/// Consumers ask for batches by default and unpack them into single messages, in
/// order; with batchRecords 0 no batch comes.
#[tokio::test]
async fn node_consumers_request_batches_and_unpack_them_in_order() {
    let server = TestServer::start().await;
    run_test_file(
        "batches_are_requested_and_unpacked_in_order.test.mjs",
        server,
    )
    .await;
}

/// An exclusive consumer resumes after a server restart with nothing lost, nothing
/// skipped and nothing handed out twice, in order.
#[tokio::test]
async fn node_consumer_resumes_after_a_server_restart_losing_and_skipping_nothing() {
    let server = TestServer::start().await;
    run_test_file(
        "a_consumer_resumes_after_a_server_restart_losing_and_skipping_nothing.test.mjs",
        server,
    )
    .await;
}

/// Two shared subscribers in `run()` split the events, each handled once.
#[tokio::test]
async fn node_two_shared_consumers_split_the_events_each_handled_once() {
    let server = TestServer::start().await;
    run_test_file(
        "two_shared_consumers_split_the_events_and_each_is_handled_once.test.mjs",
        server,
    )
    .await;
}

/// `Retry` and a thrown error redeliver with attempt 2; `Fail` lands in `<topic>.dlq`.
#[tokio::test]
async fn node_run_retries_with_back_off_and_dead_letters_failures() {
    let server = TestServer::start().await;
    run_test_file(
        "run_retries_with_back_off_and_dead_letters_failures.test.mjs",
        server,
    )
    .await;
}

/// Key-shared `run()` with concurrency 8 keeps each subject in order, one at a time.
#[tokio::test]
async fn node_key_shared_run_with_concurrency_keeps_per_subject_order() {
    let server = TestServer::start().await;
    run_test_file(
        "key_shared_run_with_concurrency_keeps_per_subject_order.test.mjs",
        server,
    )
    .await;
}

/// Aborting `run()` finishes and acks the running handlers, gives the rest back.
#[tokio::test]
async fn node_graceful_shutdown_settles_the_messages_in_hand() {
    let server = TestServer::start().await;
    run_test_file(
        "graceful_shutdown_settles_the_messages_in_hand.test.mjs",
        server,
    )
    .await;
}

/// A second exclusive subscriber reports standby and takes over when the first leaves.
#[tokio::test]
async fn node_a_second_exclusive_subscriber_reports_standby() {
    let server = TestServer::start_with(quick).await;
    run_test_file(
        "a_second_exclusive_subscriber_reports_standby.test.mjs",
        server,
    )
    .await;
}

/// A stream that goes quiet (a frozen network path, no heartbeats) is left after the
/// heartbeat timeout; the consumer reconnects on a new connection and goes on.
#[tokio::test]
async fn node_a_quiet_stream_is_detected_by_the_heartbeat_watchdog() {
    let server = TestServer::start_with(quick).await;
    run_test_file(
        "a_stream_gone_quiet_is_detected_by_the_heartbeat_watchdog.test.mjs",
        server,
    )
    .await;
}

/// A permanent error (a mode mismatch) is not retried: the iterator and `run()` throw
/// it with its status code.
#[tokio::test]
async fn node_a_permanent_error_ends_the_consumer_with_its_status() {
    let server = TestServer::start().await;
    run_test_file(
        "a_permanent_error_ends_the_consumer_with_its_status.test.mjs",
        server,
    )
    .await;
}

/// With a private CA, a client certificate and a bearer token the client publishes and
/// consumes on a server that requires all three; without the token it is
/// UNAUTHENTICATED, without the certificate the connection is refused.
#[tokio::test]
async fn node_mutual_tls_and_a_bearer_token_are_used_when_given() {
    let dir = tempfile::tempdir().unwrap();
    write_pki(dir.path());
    let token = "node-client-token";
    let auth = dir.path().join("auth.toml");
    let hash = hex::encode(pulsebus::auth::hash_token(token));
    let rules = format!(
        "[[token]]\nname = \"node\"\nsha256 = \"{hash}\"\n\
         publish = [\"secure.*\"]\nsubscribe = [\"secure.*\"]\n"
    );
    std::fs::write(&auth, rules).unwrap();
    let path = |name: &str| Some(dir.path().join(name));
    let server = TestServer::start_with(|c| {
        c.tls.tls_cert = path("server.pem");
        c.tls.tls_key = path("server.key");
        c.tls.tls_client_ca = path("ca.pem");
        c.auth_file = Some(auth.clone());
    })
    .await;
    let pem_dir = dir.path().to_str().unwrap();
    run_test_file_with(
        "mutual_tls_and_a_bearer_token_are_used_when_given.test.mjs",
        &[pem_dir, token],
        server,
    )
    .await;
}

/// A CA (`ca.pem`), a server certificate for `localhost` (`server.pem`, `server.key`)
/// and a client certificate (`client.pem`, `client.key`) it signed, in `dir`.
fn write_pki(dir: &Path) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    // Names of their own: OpenSSL (Node) takes a leaf whose subject equals its issuer
    // (rcgen's default name for both) for self-signed.
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "pulsebus node test CA");
    let ca_pem = ca_params.self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::new(ca_params, ca_key);
    std::fs::write(dir.join("ca.pem"), ca_pem).unwrap();
    for (name, host) in [("server", "localhost"), ("client", "edupulse-node-client")] {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec![host.to_owned()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, host);
        let cert = params.signed_by(&key, &issuer).unwrap();
        std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).unwrap();
        std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).unwrap();
    }
}

/// `run()` extends the ack deadline of a record while its handler works (no
/// redelivery), and stops at `maxExtensionMs` (then it comes again).
#[tokio::test]
async fn node_run_extends_the_ack_deadline_while_a_handler_works() {
    let server = TestServer::start().await;
    run_test_file(
        "run_extends_the_ack_deadline_while_a_handler_works.test.mjs",
        server,
    )
    .await;
}

/// A consumer sends what it saw last on every resubscribe: after its log was cut back
/// (as an asynchronous failover would), it ends with LOG_DIVERGED.
#[tokio::test]
async fn node_consumer_whose_log_diverged_ends_with_log_diverged() {
    let server = TestServer::start().await;
    run_test_file(
        "a_consumer_whose_log_diverged_ends_with_log_diverged.test.mjs",
        server,
    )
    .await;
}
