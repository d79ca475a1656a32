//! The Python client package (`clients/python`, installed into the project `.venv` by
//! `scripts/test`): each test runs one program of `clients/python/tests/` against a
//! fresh server through `e2e::driven`, which restarts, stops or starts the server when
//! the program asks. The program's docstring says what it proves; it exits 0 when
//! every check passed.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use crate::e2e::driven::drive;
use crate::e2e::{manifest_dir, python};
use crate::helpers::{TestServer, quick};

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
    let server = TestServer::start_with(quick).await;
    let dir: PathBuf = manifest_dir().join("clients/python/tests");
    let program = format!("{name}.py");
    let out = drive(
        python_with_pulsebus(),
        &[&program],
        &dir,
        server,
        PROGRAM_TIMEOUT,
    )
    .await;
    out.assert_success(&program);
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
