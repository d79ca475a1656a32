//! `pulsebus read | head -1`: a reader that stops early is not an error.

use std::process::Stdio;

use super::*;
use tokio::io::{AsyncBufReadExt, BufReader};

/// The reader takes one line and closes the pipe: the CLI stops quietly with exit 0,
/// no panic and no message.
#[tokio::test]
async fn read_into_a_pipe_closed_after_one_line_exits_quietly() {
    let server = TestServer::start().await;
    // More than a pipe buffer holds, so the CLI is still writing when the pipe closes.
    for _ in 0..10 {
        seed(&server, "lessons", "lesson.published", 500).await;
    }
    let mut child = pulsebus()
        .args(["read", "lessons", "--limit", "5000", "--json"])
        .args(["--server", &server.addr.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(WAIT, lines.next_line())
        .await
        .unwrap()
        .unwrap();
    drop(lines);
    let out = tokio::time::timeout(WAIT, child.wait_with_output())
        .await
        .unwrap()
        .unwrap();

    assert!(first.unwrap().contains(r#""offset":1"#));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {err}", out.status);
    assert!(!err.contains("panicked"), "{err}");
}
