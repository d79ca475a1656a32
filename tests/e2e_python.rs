//! End to end with a Python grpcio client (`tests/e2e/client.py`) using stubs generated
//! from `proto/` at run time: what a service written in another language sees.

mod common;
mod e2e_support;

use std::time::Duration;

use common::TestServer;
use e2e_support::{describe, manifest_dir, python, run};
use serde_json::Value;

/// Single-event publishes the client times after its checks.
const TIMED_PUBLISHES: i64 = 200;
/// Generating stubs, the checks and the timed loop, on a debug build of the server.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(180);

/// The Python client's batch, duplicate, read-back and error checks pass, and every
/// event it published is in the log with offsets 1..=3+N.
#[tokio::test]
async fn a_python_grpcio_client_publishes_reads_and_gets_field_errors() {
    let server = TestServer::start().await;
    let topic = "e2e-python";
    let client = manifest_dir().join("tests/e2e/client.py");
    let addr = server.addr.to_string();
    let count = TIMED_PUBLISHES.to_string();
    let args = [
        client.as_os_str(),
        "--addr".as_ref(),
        addr.as_ref(),
        "--topic".as_ref(),
        topic.as_ref(),
        "--count".as_ref(),
        count.as_ref(),
    ];

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
