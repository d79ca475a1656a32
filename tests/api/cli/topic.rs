//! `topic create|describe|update|delete`: argument handling, and the server's answers
//! with their exit codes.

use super::*;

/// Flags that cannot be parsed are usage errors (exit 2) before any request.
#[tokio::test]
async fn topic_flags_are_checked_before_any_request() {
    let server = TestServer::start().await;

    let age = run(
        &server,
        &["topic", "create", "lessons", "--retention-age", "soon"],
    )
    .await;
    let count = run(
        &server,
        &["topic", "update", "lessons", "--retention-events", "many"],
    )
    .await;
    let missing = run(&server, &["topic", "describe"]).await;

    for out in [&age, &count, &missing] {
        assert_eq!(
            out.status.code(),
            Some(2),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.stdout.is_empty());
    }
}

/// An operator creates, describes, changes and deletes a topic from the command line;
/// creating it twice exits 7 (ALREADY_EXISTS) and describing a deleted one exits 3.
#[tokio::test]
async fn an_operator_creates_describes_updates_and_deletes_a_topic() {
    let server = TestServer::start().await;
    seed(&server, "lessons", "lesson.published", 2).await;
    let json = |out: &std::process::Output| -> Value {
        assert!(out.status.success(), "{}", text(&out.stderr));
        serde_json::from_str(text(&out.stdout).trim()).unwrap()
    };

    let create = [
        "topic",
        "create",
        "quizzes",
        "--retention-age",
        "7d",
        "--json",
    ];
    let created = json(&run(&server, &create).await);
    assert_eq!(created["topic"], "quizzes");
    assert_eq!(created["retention_age"], "7days");
    assert_eq!(run(&server, &create).await.status.code(), Some(7));

    let described = json(&run(&server, &["topic", "describe", "lessons", "--json"]).await);
    assert_eq!(
        (
            described["head_offset"].as_i64(),
            described["event_count"].as_i64()
        ),
        (Some(2), Some(2))
    );
    let update = [
        "topic",
        "update",
        "lessons",
        "--retention-events",
        "1000",
        "--json",
    ];
    assert_eq!(json(&run(&server, &update).await)["retention_events"], 1000);

    let deleted = json(
        &run(
            &server,
            &["topic", "delete", "lessons", "--force", "--json"],
        )
        .await,
    );
    assert_eq!(deleted["events_deleted"], 2);
    let gone = run(&server, &["topic", "describe", "lessons"]).await;
    assert_eq!(gone.status.code(), Some(3), "{}", text(&gone.stderr));
    assert!(
        text(&gone.stderr).contains("lessons"),
        "{}",
        text(&gone.stderr)
    );
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
