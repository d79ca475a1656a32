//! The operator CLI: `pulsebus publish|read|topics|tail|consumers|ack|seek` against a server.

use crate::helpers::*;
use serde_json::Value;
use tokio::process::Command;

/// Runs `pulsebus <args>` against `server` and returns its stdout as JSON lines.
async fn cli(server: &TestServer, args: &[&str]) -> Vec<Value> {
    let out = tokio::time::timeout(
        WAIT,
        Command::new(env!("CARGO_BIN_EXE_pulsebus"))
            .args(["--server", &format!("http://{}", server.addr)])
            .args(args)
            .env_remove("PULSEBUS_TOKEN")
            .output(),
    )
    .await
    .expect("the CLI finishes in time")
    .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// An operator publishes, reads, lists, tails as a consumer with acks, seeks back,
/// and sees the consumer's lag, all from the command line.
#[tokio::test]
async fn an_operator_can_publish_read_tail_and_manage_consumers_from_the_cli() {
    let server = TestServer::start().await;

    let published = cli(
        &server,
        &[
            "publish",
            "lessons",
            "--type",
            "lesson.published",
            "--data",
            r#"{"title": "Fractions"}"#,
        ],
    )
    .await;
    cli(
        &server,
        &[
            "publish",
            "lessons",
            "--type",
            "lesson.note",
            "--data",
            "plain words",
            "--subject",
            "lesson/1",
        ],
    )
    .await;
    let read = cli(&server, &["read", "lessons"]).await;
    let topics = cli(&server, &["topics"]).await;
    let tailed = cli(
        &server,
        &[
            "tail",
            "lessons",
            "--consumer",
            "ops",
            "--ack",
            "--count",
            "2",
        ],
    )
    .await;
    let consumers = cli(&server, &["consumers", "lessons"]).await;
    let sought = cli(&server, &["seek", "lessons", "ops", "2"]).await;

    assert_eq!(published[0]["offset"], 1);
    assert_eq!(read.len(), 2);
    assert_eq!(read[0]["data"]["title"], "Fractions");
    assert_eq!(
        (read[1]["data"].as_str(), read[1]["subject"].as_str()),
        (Some("plain words"), Some("lesson/1"))
    );
    assert_eq!(
        (
            topics[0]["topic"].as_str(),
            topics[0]["head_offset"].as_i64()
        ),
        (Some("lessons"), Some(2))
    );
    assert_eq!(
        tailed
            .iter()
            .map(|r| r["offset"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        [1, 2]
    );
    assert_eq!(
        (
            consumers[0]["committed_offset"].as_i64(),
            consumers[0]["lag"].as_i64()
        ),
        (Some(2), Some(0))
    );
    assert_eq!(sought[0]["committed_offset"], 1);
}

/// Errors come back as a non-zero exit with the server's message.
#[tokio::test]
async fn cli_errors_show_the_server_message() {
    let server = TestServer::start().await;

    let out = Command::new(env!("CARGO_BIN_EXE_pulsebus"))
        .args([
            "--server",
            &format!("http://{}", server.addr),
            "read",
            "nobody-here",
        ])
        .output()
        .await
        .unwrap();

    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("topic 'nobody-here' does not exist"));
}
