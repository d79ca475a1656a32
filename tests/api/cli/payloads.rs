//! Protobuf payloads: publishing an EduPulse type by name from JSON, and reading it
//! back as JSON.

use super::*;
use pulsebus::proto::edupulse::events::v1::LessonPublished;
use pulsebus::proto::pulsebus::v1::event::Data;

/// `publish --type edupulse.events.v1.LessonPublished --data '{json}'` stores the
/// encoded message as proto_data, and `read` shows it as JSON.
#[tokio::test]
async fn a_known_protobuf_type_is_published_from_json_and_read_back_as_json() {
    let server = TestServer::start().await;
    let lesson = r#"{"lesson_id": "l-7", "title": "Fractions", "tags": ["maths"]}"#;

    let t = "edupulse.events.v1.LessonPublished";
    json(
        &server,
        &["publish", "lessons", "--type", t, "--data", lesson],
    )
    .await;
    let read = json(&server, &["read", "lessons"]).await;
    let mut client = server.client().await;
    let stored = read_all(&mut client, "lessons").await;

    let Some(Data::ProtoData(any)) = stored[0].event.clone().unwrap().data else {
        panic!("not proto_data: {stored:?}");
    };
    assert_eq!(any.type_url, format!("type.googleapis.com/{t}"));
    let decoded = <LessonPublished as prost::Message>::decode(any.value.as_slice()).unwrap();
    assert_eq!((decoded.lesson_id.as_str(), decoded.tags.len()), ("l-7", 1));
    assert_eq!(read[0]["data"]["title"], "Fractions");
    assert_eq!(read[0]["data"]["tags"][0], "maths");
}

/// JSON that does not fit the type is refused before anything is sent, naming the
/// field, with exit code 6.
#[tokio::test]
async fn json_that_does_not_fit_the_type_names_the_field_and_publishes_nothing() {
    let server = TestServer::start().await;
    seed(&server, "lessons", "lesson.note", 1).await;

    let t = "edupulse.events.v1.LessonPublished";
    let out = run(
        &server,
        &[
            "publish",
            "lessons",
            "--type",
            t,
            "--data",
            r#"{"titel": "x"}"#,
        ],
    )
    .await;
    let mut client = server.client().await;

    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(6), "{err}");
    assert!(err.contains("titel") && err.contains(t), "{err}");
    assert_eq!(read_all(&mut client, "lessons").await.len(), 1);
}
