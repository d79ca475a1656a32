//! End to end with a Python grpcio client (`tests/e2e/client.py`) using stubs generated
//! from `proto/` at run time: what a service written in another language sees.

use std::ffi::OsStr;
use std::time::Duration;

use super::{describe, manifest_dir, python, run};
use crate::helpers::TestServer;
use serde_json::{Value, json};

/// Single-event publishes the client times after its checks.
const TIMED_PUBLISHES: i64 = 200;
/// Generating stubs, the checks and the timed loop, on a debug build of the server.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(180);

/// Runs `python client.py args...`, expects success and returns its JSON summary line
/// (which says `"ok": true`).
async fn run_client<I, S>(args: I) -> Value
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let client = manifest_dir().join("tests/e2e/client.py");
    let args = std::iter::once(client.into_os_string())
        .chain(args.into_iter().map(|a| a.as_ref().to_owned()));

    let out = run(python(), args, CLIENT_TIMEOUT).await;

    assert!(
        out.status.success(),
        "the Python client failed\n{}",
        describe(&out)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default();
    let summary: Value = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("last line is not JSON ({e})\n{}", describe(&out)));
    assert_eq!(summary["ok"], Value::Bool(true), "{summary}");
    summary
}

/// The Python client's batch, duplicate, read-back and error checks pass, and every
/// event it published is in the log with offsets 1..=3+N.
#[tokio::test]
async fn a_python_grpcio_client_publishes_reads_and_gets_field_errors() {
    let server = TestServer::start().await;
    let topic = "e2e-python";
    let addr = server.addr.to_string();
    let count = TIMED_PUBLISHES.to_string();
    let args = ["--addr", &addr, "--topic", topic, "--count", &count];

    let summary = run_client(args).await;

    assert_eq!(
        summary["publishes"].as_i64(),
        Some(TIMED_PUBLISHES),
        "{summary}"
    );
    eprintln!(
        "python grpcio client: {} single-event publishes in {}s = {} publishes/s",
        summary["publishes"], summary["seconds"], summary["per_second"]
    );

    let pool = server.sql().await;
    let offsets: Vec<i64> =
        sqlx::query_scalar(r#"SELECT "offset" FROM events WHERE topic = $1 ORDER BY "offset""#)
            .bind(topic)
            .fetch_all(&pool)
            .await
            .unwrap();
    let expected: Vec<i64> = (1..=3 + TIMED_PUBLISHES).collect();
    assert_eq!(offsets, expected);
    let data_type: Option<String> =
        sqlx::query_scalar(r#"SELECT data_type FROM events WHERE topic = $1 AND "offset" = 1"#)
            .bind(topic)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        data_type.as_deref(),
        Some("type.googleapis.com/edupulse.events.v1.QuizSubmitted")
    );
}

/// A Python durable consumer (`client.py --scenario consumer`) reads 1..5, acks 5 and
/// cancels its stream; subscribing again under the same name resumes at 6 (the standby
/// takes over once the lease is released); after acking 10 the idle stream heartbeats
/// with committed 10 and head 10, and ListConsumers shows committed 10, lag 0. An Ack
/// without a consumer is FAILED_PRECONDITION. The committed offset is in the consumers
/// table.
#[tokio::test]
async fn a_python_durable_consumer_acks_reconnects_and_resumes() {
    let server = TestServer::start_with(|c| {
        c.subscriptions.heartbeat_interval = Duration::from_millis(200);
    })
    .await;
    let topic = "e2e-python-consumer";
    let addr = server.addr.to_string();
    let args = ["--addr", &addr, "--topic", topic, "--scenario", "consumer"];

    let summary = run_client(args).await;

    assert_eq!(summary["first"], json!([1, 2, 3, 4, 5]), "{summary}");
    assert_eq!(summary["second"], json!([6, 7, 8, 9, 10]), "{summary}");
    assert_eq!(summary["committed"], json!(10), "{summary}");
    assert_eq!(summary["lag"], json!(0), "{summary}");
    assert!(summary["heartbeats"].as_i64() >= Some(1), "{summary}");
    // Each of the two durable streams said it held the consumer, and caught up.
    assert!(
        summary["states"]["attached"].as_i64() >= Some(2),
        "{summary}"
    );
    assert!(
        summary["states"]["caught_up"].as_i64() >= Some(1),
        "{summary}"
    );
    let committed: i64 =
        sqlx::query_scalar("SELECT committed FROM consumers WHERE topic = $1 AND name = $2")
            .bind(topic)
            .bind("py-consumer")
            .fetch_one(&server.sql().await)
            .await
            .unwrap();
    assert_eq!(committed, 10);
}
