//! `tail` across a server restart: it reconnects and resumes instead of exiting.

use std::process::Stdio;
use std::time::Duration;

use super::*;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::ChildStdout;

async fn next_offset(lines: &mut Lines<BufReader<ChildStdout>>) -> i64 {
    let line = tokio::time::timeout(WAIT, lines.next_line())
        .await
        .expect("a record in time")
        .unwrap()
        .expect("the tail is still running");
    let record: Value = serde_json::from_str(&line).unwrap();
    record["offset"].as_i64().unwrap()
}

/// Runs `tail` with `extra`, publishes 2, restarts the server on the same address and
/// database, publishes 2 more: the offsets printed in the end.
async fn tail_across_restart(extra: &[&str]) -> Vec<i64> {
    let server = TestServer::start().await;
    let (addr, database_url) = (server.addr, server.database_url.clone());
    seed(&server, "lessons", "lesson.published", 2).await;
    let mut child = pulsebus()
        .args([
            "tail",
            "lessons",
            "--json",
            "--count",
            "4",
            "--server",
            &addr.to_string(),
        ])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut offsets = vec![next_offset(&mut lines).await, next_offset(&mut lines).await];
    if extra.contains(&"--ack") {
        // The ack of 2 is sent after 2 is printed: let it land before the restart.
        let sql = server.sql().await;
        let committed = || async {
            sqlx::query_scalar::<_, i64>("SELECT committed FROM consumers")
                .fetch_optional(&sql)
                .await
                .unwrap()
        };
        let (last, _) = settle(Duration::from_millis(20), committed, |c| *c == Some(2)).await;
        assert_eq!(last, Some(2));
    }

    server.stop().await;
    let server = TestServer::start_on(database_url, |c| c.listen = addr).await;
    seed(&server, "lessons", "lesson.published", 2).await;
    offsets.push(next_offset(&mut lines).await);
    offsets.push(next_offset(&mut lines).await);
    let status = tokio::time::timeout(WAIT, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
    offsets
}

/// An ephemeral tail resumes after the last offset it printed: nothing twice,
/// nothing missed.
#[tokio::test]
async fn an_ephemeral_tail_resumes_after_its_last_offset_across_a_server_restart() {
    assert_eq!(tail_across_restart(&[]).await, [1, 2, 3, 4]);
}

/// A durable consumer that acks resumes from its committed offset on the server.
#[tokio::test]
async fn a_durable_tail_resumes_from_its_committed_offset_across_a_server_restart() {
    assert_eq!(
        tail_across_restart(&["--consumer", "ops", "--ack"]).await,
        [1, 2, 3, 4]
    );
}
