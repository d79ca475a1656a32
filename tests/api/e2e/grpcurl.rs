//! End to end with the real grpcurl binary: reflection, JSON encoding of requests and
//! Any payloads, status codes, and the health service, as an operator would see them.

use std::process::Output;
use std::time::Duration;

use super::{GRPCURL_TIMEOUT, describe, grpcurl, run};
use crate::helpers::TestServer;
use serde_json::{Value, json};

const LESSON_PUBLISHED_URL: &str = "type.googleapis.com/edupulse.events.v1.LessonPublished";

/// Runs `grpcurl -plaintext [flags] <server> [rest]`.
async fn grpcurl_call(server: &TestServer, flags: &[&str], rest: &[&str]) -> Output {
    let addr = server.addr.to_string();
    let mut args = vec!["-plaintext", "-connect-timeout", "10"];
    args.extend_from_slice(flags);
    args.push(&addr);
    args.extend_from_slice(rest);
    run(grpcurl(), args, GRPCURL_TIMEOUT).await
}

/// Calls `method` with the JSON `body`, expects success and parses the JSON reply.
async fn call_ok(server: &TestServer, method: &str, body: &Value) -> Value {
    let out = grpcurl_call(server, &["-d", &body.to_string()], &[method]).await;
    assert!(
        out.status.success(),
        "grpcurl {method} failed\n{}",
        describe(&out)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("grpcurl {method} printed no JSON ({e})\n{}", describe(&out)))
}

/// Calls `method` with the JSON `body` and expects grpcurl to fail; returns its stderr.
async fn call_err(server: &TestServer, method: &str, body: &Value) -> String {
    let out = grpcurl_call(server, &["-d", &body.to_string()], &[method]).await;
    assert!(
        !out.status.success(),
        "grpcurl {method} should fail\n{}",
        describe(&out)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// An int64 from protobuf JSON, which writes them as strings (and omits zeros).
fn int64(value: &Value) -> i64 {
    match value {
        Value::Null => 0,
        Value::String(s) => s
            .parse()
            .unwrap_or_else(|_| panic!("not an int64: {value}")),
        other => other
            .as_i64()
            .unwrap_or_else(|| panic!("not an int64: {other}")),
    }
}

/// Runs `grpcurl -max-time <seconds>` on a Subscribe with the JSON `body` and returns
/// every message it printed, in order. The stream never ends by itself, so grpcurl stops
/// at the deadline: that (and only that) status is expected.
async fn subscribe_for(server: &TestServer, body: &Value, seconds: u32) -> Vec<Value> {
    let max_time = seconds.to_string();
    let body = body.to_string();
    let out = grpcurl_call(
        server,
        &["-max-time", &max_time, "-d", &body],
        &["pulsebus.v1.EventBus/Subscribe"],
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() || stderr.contains("Code: DeadlineExceeded"),
        "grpcurl Subscribe ended with something other than its own deadline\n{}",
        describe(&out)
    );
    serde_json::Deserializer::from_slice(&out.stdout)
        .into_iter::<Value>()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| {
            panic!(
                "grpcurl Subscribe printed bad JSON ({e})\n{}",
                describe(&out)
            )
        })
}

/// The kinds of message a Subscribe stream sends besides records.
const NOT_RECORDS: [&str; 5] = [
    "heartbeat",
    "attached",
    "standby",
    "caughtUp",
    "repositioned",
];

/// The records among streamed Subscribe messages (each is a record, a heartbeat or a
/// stream state message).
fn records(messages: &[Value]) -> Vec<&Value> {
    messages
        .iter()
        .filter_map(|m| {
            let keys: Vec<&String> = m
                .as_object()
                .map(|o| o.keys().collect())
                .unwrap_or_default();
            match keys.as_slice() {
                [k] if *k == "record" => Some(&m["record"]),
                [k] if NOT_RECORDS.contains(&k.as_str()) => None,
                _ => panic!("not exactly one known message kind: {m}"),
            }
        })
        .collect()
}

/// `grpcurl list` shows the EventBus, the health service and server reflection.
#[tokio::test]
async fn grpcurl_lists_the_event_bus_health_and_reflection_services() {
    let server = TestServer::start().await;

    let out = grpcurl_call(&server, &[], &["list"]).await;

    assert!(out.status.success(), "{}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let services: Vec<&str> = stdout.lines().map(str::trim).collect();
    for expected in [
        "pulsebus.v1.EventBus",
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    ] {
        assert!(
            services.contains(&expected),
            "{expected} missing from `list`\n{}",
            describe(&out)
        );
    }
}

/// `grpcurl describe pulsebus.v1.Event` prints the envelope with its Any payload field.
#[tokio::test]
async fn grpcurl_describes_the_event_message() {
    let server = TestServer::start().await;

    let out = grpcurl_call(&server, &[], &["describe", "pulsebus.v1.Event"]).await;

    assert!(out.status.success(), "{}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("pulsebus.v1.Event is a message"),
        "{}",
        describe(&out)
    );
    for field in [
        "string type = 2;",
        "map<string, string> attributes = 9;",
        ".google.protobuf.Any proto_data = 13;",
    ] {
        assert!(
            stdout.contains(field),
            "{field:?} missing\n{}",
            describe(&out)
        );
    }
}

/// Publishing a JSON body with a JSON text payload gives offset 1, then offset 2.
#[tokio::test]
async fn publishing_json_through_grpcurl_returns_offset_one_then_two() {
    let server = TestServer::start().await;
    let body = |lesson: &str| {
        json!({
            "topic": "lessons",
            "events": [{
                "type": "lesson.published",
                "source": "grpcurl",
                "contentType": "application/json",
                "textData": json!({"lessonId": lesson}).to_string(),
            }],
        })
    };

    let first = call_ok(&server, "pulsebus.v1.EventBus/Publish", &body("l-1")).await;
    let second = call_ok(&server, "pulsebus.v1.EventBus/Publish", &body("l-2")).await;

    for (reply, offset) in [(&first, 1), (&second, 2)] {
        let results = reply["results"].as_array().expect("results");
        assert_eq!(results.len(), 1, "{reply}");
        assert_eq!(int64(&results[0]["offset"]), offset, "{reply}");
        assert!(
            uuid::Uuid::parse_str(results[0]["id"].as_str().unwrap_or("")).is_ok(),
            "{reply}"
        );
        assert_eq!(results[0].get("duplicate"), None, "{reply}");
    }
}

/// An EduPulse payload written as JSON with "@type" is encoded into an Any by grpcurl,
/// stored with its type URL, and decoded back to JSON by a Read.
#[tokio::test]
async fn an_any_payload_published_as_json_reads_back_decoded_and_is_stored_with_its_type_url() {
    let server = TestServer::start().await;
    let lesson = json!({
        "@type": LESSON_PUBLISHED_URL,
        "lessonId": "l-42",
        "courseId": "c-7",
        "title": "Fractions",
        "tags": ["math", "grade-5"],
        "publishedAt": "2025-01-02T03:04:05Z",
    });
    let publish = json!({
        "topic": "lessons",
        "events": [{
            "type": "lesson.published",
            "source": "lesson-service",
            "subject": "lesson/l-42",
            "contentType": "application/protobuf",
            "protoData": lesson,
        }],
    });

    let published = call_ok(&server, "pulsebus.v1.EventBus/Publish", &publish).await;
    let read = call_ok(
        &server,
        "pulsebus.v1.EventBus/Read",
        &json!({"topic": "lessons"}),
    )
    .await;

    assert_eq!(int64(&published["results"][0]["offset"]), 1, "{published}");
    let records = read["records"].as_array().expect("records");
    assert_eq!(records.len(), 1, "{read}");
    assert_eq!(int64(&records[0]["offset"]), 1, "{read}");
    assert_eq!(int64(&read["headOffset"]), 1, "{read}");
    let event = &records[0]["event"];
    assert_eq!(event["id"], published["results"][0]["id"], "{read}");
    assert_eq!(event["protoData"], lesson, "{read}");
    let (data_type, bytes): (Option<String>, Option<i32>) = sqlx::query_as(
        r#"SELECT data_type, octet_length(data_bytes) FROM events WHERE topic = 'lessons' AND "offset" = 1"#,
    )
    .fetch_one(&server.sql().await)
    .await
    .unwrap();
    assert_eq!(data_type.as_deref(), Some(LESSON_PUBLISHED_URL));
    assert!(
        bytes.unwrap_or(0) > 0,
        "the encoded message is stored in data_bytes"
    );
}

/// Reading a topic nobody published to makes grpcurl exit non-zero with NotFound.
#[tokio::test]
async fn reading_an_unknown_topic_fails_with_not_found() {
    let server = TestServer::start().await;

    let stderr = call_err(
        &server,
        "pulsebus.v1.EventBus/Read",
        &json!({"topic": "nobody-here"}),
    )
    .await;

    assert!(stderr.contains("Code: NotFound"), "{stderr}");
    assert!(stderr.contains("nobody-here"), "{stderr}");
}

/// A publish to an invalid topic name fails with InvalidArgument naming the field.
#[tokio::test]
async fn an_invalid_topic_name_fails_with_invalid_argument_naming_the_field() {
    let server = TestServer::start().await;
    let body = json!({
        "topic": "no spaces!",
        "events": [{"type": "lesson.published", "contentType": "application/json", "textData": "{}"}],
    });

    let stderr = call_err(&server, "pulsebus.v1.EventBus/Publish", &body).await;

    assert!(stderr.contains("Code: InvalidArgument"), "{stderr}");
    assert!(
        stderr.contains("Message: topic: "),
        "the message names the field: {stderr}"
    );
}

/// `grpc.health.v1.Health/Check` answers SERVING.
#[tokio::test]
async fn the_health_check_says_serving() {
    let server = TestServer::start().await;

    let reply = call_ok(&server, "grpc.health.v1.Health/Check", &json!({})).await;

    assert_eq!(reply, json!({"status": "SERVING"}));
}

/// A durable Subscribe through grpcurl streams the stored records as JSON, offsets 1, 2,
/// 3 in order with their event types, then heartbeats with the head while idle.
#[tokio::test]
async fn grpcurl_subscribe_streams_json_records() {
    let server = TestServer::start_with(|c| {
        c.subscriptions.heartbeat_interval = Duration::from_millis(200);
    })
    .await;
    let types = ["lesson.published", "quiz.submitted", "lesson.archived"];
    let mut client = server.client().await;
    let events = types
        .iter()
        .map(|t| crate::helpers::event(t, "{}"))
        .collect();
    crate::helpers::publish(&mut client, "lessons", events).await;

    let messages = subscribe_for(
        &server,
        &json!({"topic": "lessons", "consumer": "grpcurl-reader"}),
        3,
    )
    .await;

    let records = records(&messages);
    let got: Vec<(i64, &str)> = records
        .iter()
        .map(|r| {
            (
                int64(&r["offset"]),
                r["event"]["type"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![(1, types[0]), (2, types[1]), (3, types[2])],
        "{messages:#?}"
    );
    assert!(
        records.iter().all(|r| r["topic"] == "lessons"),
        "{messages:#?}"
    );
    let heartbeats: Vec<&Value> = messages.iter().filter_map(|m| m.get("heartbeat")).collect();
    assert!(
        !heartbeats.is_empty(),
        "an idle stream heartbeats every 200 ms: {messages:#?}"
    );
    for heartbeat in heartbeats {
        assert_eq!(int64(&heartbeat["headOffset"]), 3, "{messages:#?}");
        assert_eq!(int64(&heartbeat["committedOffset"]), 0, "{messages:#?}");
    }
}

/// Ack through grpcurl commits the consumer's offset, and ListConsumers through grpcurl
/// shows it with the lag behind the head (int64s as JSON strings).
#[tokio::test]
async fn grpcurl_ack_commits_and_list_consumers_shows_the_offset_and_lag() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    crate::helpers::publish(
        &mut client,
        "lessons",
        crate::helpers::events("lesson.published", 3),
    )
    .await;
    let delivered = subscribe_for(
        &server,
        &json!({"topic": "lessons", "consumer": "grpcurl-reader"}),
        2,
    )
    .await;
    assert_eq!(records(&delivered).len(), 3, "{delivered:#?}");

    let acked = call_ok(
        &server,
        "pulsebus.v1.EventBus/Ack",
        &json!({"topic": "lessons", "consumer": "grpcurl-reader", "offset": 2}),
    )
    .await;
    let listed = call_ok(
        &server,
        "pulsebus.v1.EventBus/ListConsumers",
        &json!({"topic": "lessons"}),
    )
    .await;

    assert_eq!(acked, json!({"committedOffset": "2"}));
    let consumers = listed["consumers"].as_array().expect("consumers");
    assert_eq!(consumers.len(), 1, "{listed}");
    let consumer = &consumers[0];
    assert_eq!(consumer["topic"], "lessons", "{listed}");
    assert_eq!(consumer["name"], "grpcurl-reader", "{listed}");
    assert_eq!(consumer["committedOffset"], "2", "{listed}");
    assert_eq!(consumer["lag"], "1", "{listed}");
}
