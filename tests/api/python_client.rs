//! The Python client package (`clients/python`, installed into the project `.venv` by
//! `scripts/test`): each test runs one program of `clients/python/tests/` against a
//! fresh server through `e2e::driven`, which restarts, stops or starts the server when
//! the program asks. The program's docstring says what it proves; it exits 0 when
//! every check passed.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use crate::e2e::driven::drive;
use crate::e2e::{manifest_dir, python};
use crate::helpers::{TestServer, quick};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
};

/// Longest run of one program (a debug server, restarts included).
const PROGRAM_TIMEOUT: Duration = Duration::from_secs(150);

/// The Python that has the `pulsebus` package; panics with how to install it.
fn python_with_pulsebus() -> &'static std::path::Path {
    static CHECKED: OnceLock<()> = OnceLock::new();
    let python = python();
    CHECKED.get_or_init(|| {
        let out = std::process::Command::new(python)
            .args(["-c", "import pulsebus"])
            .output()
            .expect("python runs");
        assert!(
            out.status.success(),
            "the pulsebus Python package is not installed in {}: run `scripts/test`, or \
             `{} -m pip install ./clients/python`\n{}",
            python.display(),
            python.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    });
    python
}

/// Runs `clients/python/tests/<name>.py` against a server with short heartbeats and
/// leases, and expects it to pass.
async fn passes(name: &str) {
    passes_against(name, TestServer::start_with(quick).await, &[]).await;
}

/// Runs `clients/python/tests/<name>.py args...` against `server`.
async fn passes_against(name: &str, server: TestServer, args: &[&str]) {
    let dir: PathBuf = manifest_dir().join("clients/python/tests");
    let program = format!("{name}.py");
    let mut argv = vec![program.as_str()];
    argv.extend_from_slice(args);
    let out = drive(python_with_pulsebus(), &argv, &dir, server, PROGRAM_TIMEOUT).await;
    out.assert_success(&program);
}

/// Writes a CA, a server certificate for `localhost`, a client certificate and an
/// auth file (token `py-admin`: admin; `py-reader`: subscribe to `secure`) into `dir`.
fn write_pki_and_tokens(dir: &Path) {
    let ca_key = KeyPair::generate().unwrap();
    // Distinct subject names: OpenSSL (grpcio's BoringSSL) takes a leaf whose subject is
    // its issuer's for a self-signed certificate.
    let named = |params: &mut CertificateParams, cn: &str| {
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, cn);
    };
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    named(&mut ca_params, "pulsebus python test CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_pem = ca_params.self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf = |name: &str, file: &str| {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec![name.to_owned()]).unwrap();
        named(&mut params, name);
        let cert = params.signed_by(&key, &issuer).unwrap();
        std::fs::write(dir.join(format!("{file}.pem")), cert.pem()).unwrap();
        std::fs::write(dir.join(format!("{file}.key")), key.serialize_pem()).unwrap();
    };
    leaf("localhost", "server");
    leaf("python-client", "client");
    std::fs::write(dir.join("ca.pem"), ca_pem).unwrap();
    let hashed = |token: &str| hex::encode(pulsebus::auth::hash_token(token));
    let auth = format!(
        "[[token]]\nname = \"py-admin\"\nsha256 = \"{}\"\nadmin = true\n\n\
         [[token]]\nname = \"py-reader\"\nsha256 = \"{}\"\nsubscribe = [\"secure\"]\n",
        hashed("py-admin-token"),
        hashed("py-reader-token")
    );
    std::fs::write(dir.join("auth.toml"), auth).unwrap();
}

/// Publishing one event twice (a retry) stores one record; a publish made while the
/// server is down is retried until it is back, and stored once.
#[tokio::test]
async fn publishing_the_same_event_twice_stores_one_record() {
    passes("publishing_the_same_event_twice_stores_one_record").await;
}

/// EduPulse protobuf, JSON, text and binary payloads come back as they were published.
#[tokio::test]
async fn edupulse_and_json_payloads_round_trip() {
    passes("edupulse_and_json_payloads_round_trip").await;
}

/// Iterating and acking moves the committed offset (ListConsumers); unsettled
/// messages are not acked.
#[tokio::test]
async fn acking_messages_moves_the_committed_offset() {
    passes("acking_messages_moves_the_committed_offset").await;
}

/// An exclusive consumer resumes after a server restart with every offset once, in
/// order.
#[tokio::test]
async fn an_exclusive_consumer_resumes_after_a_server_restart_in_order() {
    passes("an_exclusive_consumer_resumes_after_a_server_restart_in_order").await;
}

/// Two subscribers of a shared consumer split the events, each handled once.
#[tokio::test]
async fn two_shared_consumers_split_the_events_each_handled_once() {
    passes("two_shared_consumers_split_the_events_each_handled_once").await;
}

/// run(): Retry redelivers with delivery_attempt 2, Fail lands in `<topic>.dlq`.
#[tokio::test]
async fn run_retries_a_message_and_dead_letters_a_failed_one() {
    passes("run_retries_a_message_and_dead_letters_a_failed_one").await;
}

/// A key-shared run with concurrency 4 keeps each subject's records in order.
#[tokio::test]
async fn key_shared_run_with_concurrency_keeps_per_subject_order() {
    passes("key_shared_run_with_concurrency_keeps_per_subject_order").await;
}

/// A graceful shutdown finishes and acks the messages in hand; nothing handled comes
/// again.
#[tokio::test]
async fn graceful_shutdown_settles_the_messages_in_hand() {
    passes("graceful_shutdown_settles_the_messages_in_hand").await;
}

/// A second exclusive subscriber reports STANDBY, then takes over.
#[tokio::test]
async fn a_second_exclusive_subscriber_reports_standby() {
    passes("a_second_exclusive_subscriber_reports_standby").await;
}

/// A consumer whose link goes silent gives up on it after its heartbeat timeout,
/// opens a new connection and gets what was published meanwhile.
#[tokio::test]
async fn a_silent_stream_is_reopened_by_the_heartbeat_watchdog() {
    passes("a_silent_stream_is_reopened_by_the_heartbeat_watchdog").await;
}

/// Concurrent publishes through the batching publisher share requests; each caller
/// gets its own offset.
#[tokio::test]
async fn a_batching_publisher_tells_each_caller_its_own_offset() {
    passes("a_batching_publisher_tells_each_caller_its_own_offset").await;
}

/// Errors are PulsebusError with the status code, message, field and reason.
#[tokio::test]
async fn errors_carry_the_status_code_and_reason() {
    passes("errors_carry_the_status_code_and_reason").await;
}

/// A message dropped unsettled is nacked (redelivered), never acked.
#[tokio::test]
async fn an_abandoned_message_is_nacked_not_acked() {
    passes("an_abandoned_message_is_nacked_not_acked").await;
}

/// Over mutual TLS with bearer tokens: the client with the CA, its certificate and a
/// token publishes and consumes; without a token it gets UNAUTHENTICATED, with a
/// read-only token PERMISSION_DENIED on publish, and without a client certificate no
/// connection.
#[tokio::test]
async fn connecting_with_mutual_tls_and_a_bearer_token() {
    let pki = tempfile::tempdir().unwrap();
    write_pki_and_tokens(pki.path());
    let dir = pki.path().to_owned();
    let server = TestServer::start_with(move |c| {
        quick(c);
        c.tls.tls_cert = Some(dir.join("server.pem"));
        c.tls.tls_key = Some(dir.join("server.key"));
        c.tls.tls_client_ca = Some(dir.join("ca.pem"));
        c.auth_file = Some(dir.join("auth.toml"));
    })
    .await;
    let dir = pki.path().to_str().unwrap();
    passes_against(
        "connecting_with_mutual_tls_and_a_bearer_token",
        server,
        &[dir],
    )
    .await;
}

/// Retry in exclusive mode rewinds: the record and those after it come again in order.
#[tokio::test]
async fn an_exclusive_retry_rewinds_and_delivers_in_order_again() {
    passes("an_exclusive_retry_rewinds_and_delivers_in_order_again").await;
}

/// A handler slower than the ack deadline keeps its record: the client extends it.
#[tokio::test]
async fn a_slow_handler_keeps_its_message_by_extending_the_deadline() {
    passes("a_slow_handler_keeps_its_message_by_extending_the_deadline").await;
}

/// Acks are coalesced and flushed before max_in_flight stalls the stream.
#[tokio::test]
async fn acks_are_batched_and_never_stall_the_stream() {
    passes("acks_are_batched_and_never_stall_the_stream").await;
}

/// run(drain=False) cancels the handlers and nacks their messages at once.
#[tokio::test]
async fn shutdown_without_draining_nacks_the_messages_in_hand() {
    passes("shutdown_without_draining_nacks_the_messages_in_hand").await;
}

/// Consumers ask for batches by default and hand records out one at a time, in order.
#[tokio::test]
async fn python_consumers_request_batches_and_unpack_them_in_order() {
    passes("batches_are_requested_and_unpacked_in_order").await;
}

/// A consumer sends what it saw last on every resubscribe: after its log was cut back
/// (as an asynchronous failover would), it ends with LOG_DIVERGED.
#[tokio::test]
async fn a_python_consumer_whose_log_diverged_ends_with_log_diverged() {
    passes("a_consumer_whose_log_diverged_ends_with_log_diverged").await;
}
