//! Failures print the server's message with its details and exit with the documented
//! code: 2 usage, 3 not found, 4 unavailable, 6 invalid argument.

use super::*;

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// An unknown topic is NOT_FOUND with the server's message and exit code 3, not
/// tonic's description of the code.
#[tokio::test]
async fn an_unknown_topic_prints_the_server_message_and_exits_3() {
    let server = TestServer::start().await;

    let out = run(&server, &["read", "nobody-here"]).await;

    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("NOT_FOUND: topic 'nobody-here' does not exist"),
        "{err}"
    );
    assert!(!err.contains("Some requested entity"), "{err}");
}

/// A request the server refuses as INVALID_ARGUMENT exits 6 and names the field.
#[tokio::test]
async fn an_invalid_argument_names_the_field_and_exits_6() {
    let server = TestServer::start().await;

    let out = run(&server, &["read", "lessons", "--from=-1"]).await;

    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("INVALID_ARGUMENT"), "{err}");
    assert!(
        err.contains("field from_offset: must not be negative"),
        "{err}"
    );
}

/// `tail --ack` without a consumer is a usage error (exit 2) before anything is read
/// or printed, although the topic has records.
#[tokio::test]
async fn tail_ack_without_a_consumer_is_a_usage_error_before_any_output() {
    let server = TestServer::start().await;
    seed(&server, "lessons", "lesson.published", 1).await;

    let out = run(&server, &["tail", "lessons", "--ack"]).await;

    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    assert!(stderr(&out).contains("--consumer"), "{}", stderr(&out));
}

/// No server listening: exit 4 with the address; a position that is none of the
/// accepted forms is a usage error naming them.
#[tokio::test]
async fn an_unreachable_server_exits_4_and_a_bad_position_is_a_usage_error() {
    let server = TestServer::start().await;
    let addr = server.addr;
    server.stop().await;

    let down = pulsebus()
        .args(["topics", "--server", &addr.to_string()])
        .output();
    let down = tokio::time::timeout(WAIT, down).await.unwrap().unwrap();
    let bad = pulsebus().args(["seek", "t", "c", "yesterday"]).output();
    let bad = tokio::time::timeout(WAIT, bad).await.unwrap().unwrap();

    assert_eq!(down.status.code(), Some(4), "{}", stderr(&down));
    assert!(stderr(&down).contains(&format!("cannot reach http://{addr}")));
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("RFC 3339"), "{}", stderr(&bad));
}
