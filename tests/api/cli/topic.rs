//! `topic create|describe|update|delete`: argument handling, and the server's answer
//! (the handlers may still be UNIMPLEMENTED on this branch: then the CLI says so with
//! exit code 1, else it shows the topic).

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

/// Each subcommand reaches its RPC: the answer is the topic (or what a delete removed),
/// or the server's UNIMPLEMENTED with exit code 1.
#[tokio::test]
async fn topic_subcommands_show_the_topic_or_say_the_server_does_not_implement_them() {
    let server = TestServer::start().await;
    seed(&server, "lessons", "lesson.published", 2).await;

    let commands: [&[&str]; 4] = [
        &[
            "topic",
            "create",
            "quizzes",
            "--retention-age",
            "7d",
            "--json",
        ],
        &["topic", "describe", "lessons", "--json"],
        &[
            "topic",
            "update",
            "lessons",
            "--retention-events",
            "1000",
            "--json",
        ],
        &["topic", "delete", "quizzes", "--force", "--json"],
    ];
    for args in commands {
        let out = run(&server, args).await;
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        if out.status.success() {
            let shown: Value = serde_json::from_str(stdout.trim()).unwrap();
            assert!(shown["topic"].is_string(), "{args:?}: {stdout}");
        } else {
            assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
            assert!(stderr.contains("UNIMPLEMENTED"), "{args:?}: {stderr}");
        }
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
