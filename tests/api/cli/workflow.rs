//! The everyday commands: publish, read, topics, tail as a consumer, consumers, ack,
//! seek, consumer delete, top and health, as tables and as JSON lines.

use super::*;

/// An operator publishes, reads, lists, tails as a consumer with acks, seeks back,
/// and sees the consumer's lag, all from the command line (JSON lines for scripts).
#[tokio::test]
async fn an_operator_can_publish_read_tail_and_manage_consumers_from_the_cli() {
    let server = TestServer::start().await;
    let title = r#"{"title": "Fractions"}"#;

    let published = json(
        &server,
        &[
            "publish",
            "lessons",
            "--type",
            "lesson.published",
            "--data",
            title,
        ],
    )
    .await;
    let note = [
        "publish",
        "lessons",
        "--type",
        "lesson.note",
        "--data",
        "plain words",
        "--subject",
        "lesson/1",
    ];
    json(&server, &note).await;
    let read = json(&server, &["read", "lessons"]).await;
    let topics = json(&server, &["topics"]).await;
    let tailed = json(
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
    let consumers = json(&server, &["consumers", "lessons"]).await;
    let sought = json(&server, &["seek", "lessons", "ops", "2"]).await;

    assert_eq!(published[0]["offset"], 1);
    assert_eq!(read.len(), 2);
    assert_eq!(read[0]["data"]["title"], "Fractions");
    assert_eq!(
        (read[1]["data"].as_str(), read[1]["subject"].as_str()),
        (Some("plain words"), Some("lesson/1"))
    );
    let appended = read[0]["appended_at"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(appended).is_ok(),
        "{appended}"
    );
    assert_eq!(
        (
            topics[0]["topic"].as_str(),
            topics[0]["head_offset"].as_i64()
        ),
        (Some("lessons"), Some(2))
    );
    let offsets: Vec<_> = tailed
        .iter()
        .map(|r| r["offset"].as_i64().unwrap())
        .collect();
    assert_eq!(offsets, [1, 2]);
    assert_eq!(
        (
            consumers[0]["committed_offset"].as_i64(),
            consumers[0]["lag"].as_i64()
        ),
        (Some(2), Some(0))
    );
    assert_eq!(sought[0]["committed_offset"], 1);
}

/// Without --json the lists are aligned tables with a header, records are one line
/// each with their RFC 3339 append time, and an empty list says so.
#[tokio::test]
async fn tables_are_the_default_and_an_empty_list_says_it_is_empty() {
    let server = TestServer::start().await;
    seed(&server, "lessons", "lesson.published", 2).await;

    let topics = ok(&server, &["topics"]).await;
    let read = ok(&server, &["read", "lessons"]).await;
    let consumers = ok(&server, &["consumers", "lessons"]).await;
    let consumers_json = json(&server, &["consumers", "lessons"]).await;

    let lines: Vec<&str> = topics.lines().collect();
    assert!(
        lines[0].starts_with("TOPIC") && lines[0].contains("HEAD"),
        "{topics}"
    );
    assert!(
        lines[1].starts_with("lessons ") && lines[1].contains(" 2 "),
        "{topics}"
    );
    assert_eq!(read.lines().count(), 2, "{read}");
    assert!(read.starts_with("#1  20"), "{read}");
    assert_eq!(consumers.trim(), "no consumers on topic lessons");
    assert!(consumers_json.is_empty());
}

/// Seek takes earliest, latest, an offset or a time; consumer delete removes the
/// consumer, so it is gone from the list.
#[tokio::test]
async fn seek_takes_earliest_latest_an_offset_or_a_time_and_consumers_can_be_deleted() {
    let server = TestServer::start().await;
    seed(&server, "lessons", "lesson.published", 3).await;
    json(
        &server,
        &[
            "tail",
            "lessons",
            "--consumer",
            "ops",
            "--ack",
            "--count",
            "3",
        ],
    )
    .await;
    let before = chrono::Utc::now() - chrono::Duration::hours(1);

    let latest = json(&server, &["seek", "lessons", "ops", "latest"]).await;
    let earliest = json(&server, &["seek", "lessons", "ops", "earliest"]).await;
    let offset = json(&server, &["seek", "lessons", "ops", "3"]).await;
    let time = json(&server, &["seek", "lessons", "ops", &before.to_rfc3339()]).await;
    let deleted = json(&server, &["consumer", "delete", "lessons", "ops"]).await;
    let left = json(&server, &["consumers", "lessons"]).await;

    let committed = |v: &[serde_json::Value]| v[0]["committed_offset"].as_i64();
    assert_eq!(
        [
            committed(&latest),
            committed(&earliest),
            committed(&offset),
            committed(&time)
        ],
        [Some(3), Some(0), Some(2), Some(0)]
    );
    assert_eq!(deleted[0]["deleted"], true);
    assert!(left.is_empty());
}

/// `top --once` shows every topic with its head and every consumer with its lag;
/// `health` reports SERVING and exits 0.
#[tokio::test]
async fn top_shows_topics_and_consumer_lag_and_health_reports_serving() {
    let server = TestServer::start().await;
    seed(&server, "lessons", "lesson.published", 3).await;
    json(
        &server,
        &[
            "tail",
            "lessons",
            "--consumer",
            "ops",
            "--ack",
            "--count",
            "1",
        ],
    )
    .await;

    let top = json(&server, &["top", "--iterations", "2", "--interval", "0.1"]).await;
    let table = ok(&server, &["top", "--once"]).await;
    let health = ok(&server, &["health"]).await;

    assert_eq!(top.len(), 2);
    assert_eq!(top[1]["topics"][0]["head_offset"], 3);
    assert_eq!(top[1]["topics"][0]["rate"], 0.0);
    assert_eq!(
        (
            top[1]["consumers"][0]["consumer"].as_str(),
            top[1]["consumers"][0]["lag"].as_i64()
        ),
        (Some("ops"), Some(2))
    );
    assert!(
        table.contains("CONSUMER") && table.contains("ops"),
        "{table}"
    );
    assert_eq!(health.trim(), "SERVING");
}
