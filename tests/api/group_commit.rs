//! Group commit across topics: publishes to many topics share transactions, and every
//! topic keeps its own gapless, commit-ordered offsets, also with two servers writing
//! overlapping sets of topics (their rows are locked in name order).

use std::collections::HashMap;

use crate::helpers::*;
use pulsebus::proto::pulsebus::v1::{CreateTopicRequest, TopicConfig};
use tokio::task::JoinSet;
use tonic::Code;

const TOPICS: usize = 8;
const PUBLISHERS: usize = 16;
const PER_PUBLISHER: usize = 80;

fn topic(i: usize) -> String {
    format!("course-{i}")
}

fn tagged(publisher: usize, seq: usize) -> Event {
    Event {
        subject: format!("publisher-{publisher}"),
        ..event("quiz.submitted", &format!(r#"{{"seq": {seq}}}"#))
    }
}

fn seq(record: &Record) -> (String, u64) {
    let e = record.event.as_ref().expect("an event");
    let Some(event::Data::TextData(json)) = &e.data else {
        panic!("payload missing at offset {}", record.offset)
    };
    let seq = serde_json::from_str::<serde_json::Value>(json).unwrap()["seq"]
        .as_u64()
        .unwrap();
    (e.subject.clone(), seq)
}

/// Every publisher walks all topics round robin from its own starting topic, one event
/// per call, through the servers in turn.
async fn publish_round_robin(servers: &[&TestServer]) {
    let mut tasks = JoinSet::new();
    for p in 0..PUBLISHERS {
        let mut client = servers[p % servers.len()].client().await;
        tasks.spawn(async move {
            for seq in 0..PER_PUBLISHER {
                let topic = topic((p + seq) % TOPICS);
                publish(&mut client, &topic, vec![tagged(p, seq)]).await;
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("publisher task succeeds");
    }
}

/// Each topic holds offsets 1..=n, and each publisher's events in it are in the order
/// it published them; all topics together hold every event once.
fn assert_each_topic_gapless_and_ordered(topics: &[Vec<Record>]) {
    let mut seen = 0;
    for (i, records) in topics.iter().enumerate() {
        let offsets: Vec<i64> = records.iter().map(|r| r.offset).collect();
        assert_eq!(
            offsets,
            (1..=records.len() as i64).collect::<Vec<_>>(),
            "{}",
            topic(i)
        );
        let mut last: HashMap<String, u64> = HashMap::new();
        let quizzes = records.iter().filter(|r| {
            let e = r.event.as_ref().expect("an event");
            e.r#type == "quiz.submitted"
        });
        for r in quizzes {
            let (publisher, seq) = seq(r);
            if let Some(before) = last.insert(publisher.clone(), seq) {
                assert!(before < seq, "{publisher} out of order in {}", topic(i));
            }
            seen += 1;
        }
    }
    assert_eq!(seen, PUBLISHERS * PER_PUBLISHER);
}

/// 16 publishers over 8 topics through two servers on one database: nothing lost or
/// repeated, gapless per topic, and a live subscriber of every topic sees the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn publishers_spread_over_topics_on_two_servers_get_gapless_offsets_per_topic() {
    let a = TestServer::start().await;
    let b = TestServer::start_on(a.database_url.clone(), |_| {}).await;
    let mut client = a.client().await;
    let mut streams = Vec::new();
    for i in 0..TOPICS {
        publish(&mut client, &topic(i), vec![event("course.opened", "{}")]).await;
        streams.push(subscribe(&mut client, sub_req(&topic(i), "")).await);
    }

    publish_round_robin(&[&a, &b]).await;

    let mut topics = Vec::new();
    for (i, stream) in streams.iter_mut().enumerate() {
        let stored = read_all(&mut client, &topic(i)).await;
        let live = next_offsets(stream, stored.len()).await;
        assert_eq!(
            live,
            (1..=stored.len() as i64).collect::<Vec<_>>(),
            "{}",
            topic(i)
        );
        topics.push(stored);
    }
    assert_each_topic_gapless_and_ordered(&topics);
}

/// The same id published to two topics at the same moment is stored in one of them;
/// the other publish is ALREADY_EXISTS naming the topic that has it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_id_sent_to_two_topics_at_once_is_stored_once() {
    let server = TestServer::start().await;
    let client = server.client().await;
    for t in ["grades-a", "grades-b"] {
        publish(&mut client.clone(), t, vec![event("grade.opened", "{}")]).await;
    }
    for round in 0..20 {
        let id = uuid::Uuid::now_v7().to_string();
        let sends = ["grades-a", "grades-b"].map(|t| {
            let mut client = client.clone();
            let request = PublishRequest {
                topic: t.to_owned(),
                events: vec![Event {
                    id: id.clone(),
                    ..event("grade.given", "{}")
                }],
            };
            tokio::spawn(async move { client.publish(request).await })
        });
        let mut stored = 0;
        for send in sends {
            match send.await.unwrap() {
                Ok(_) => stored += 1,
                Err(err) => assert_eq!(err.code(), Code::AlreadyExists, "round {round}: {err:?}"),
            }
        }
        assert_eq!(stored, 1, "round {round}: stored in exactly one topic");
    }
    let mut client = client;
    let a = read_all(&mut client, "grades-a").await.len();
    let b = read_all(&mut client, "grades-b").await.len();
    assert_eq!(a + b, 2 + 20);
}

/// One group can hold requests for a topic that does not exist yet, for a topic that
/// refuses their size, and for an ordinary one: each is answered as if it came alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn new_topics_refused_events_and_ordinary_ones_in_one_group_each_get_their_own_answer() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let essays = CreateTopicRequest {
        name: "essays".into(),
        config: Some(TopicConfig {
            max_event_bytes: Some(300),
            ..Default::default()
        }),
    };
    client.clone().create_topic(essays).await.unwrap();
    publish(
        &mut client.clone(),
        "grades",
        vec![event("grade.opened", "{}")],
    )
    .await;

    let big = format!("\"{}\"", "x".repeat(1000));
    let mut clients = Vec::new();
    for _ in 0..45 {
        clients.push(server.client().await);
    }
    let calls = clients.into_iter().enumerate().map(|(i, mut client)| {
        let (topic, json) = match i % 3 {
            0 => ("essays".to_owned(), big.clone()),
            1 => (format!("fresh-{}", i % 2), "{}".to_owned()),
            _ => ("grades".to_owned(), "{}".to_owned()),
        };
        tokio::spawn(async move {
            let request = PublishRequest {
                topic: topic.clone(),
                events: vec![event("x.happened", &json)],
            };
            (topic, client.publish(request).await)
        })
    });
    for call in calls.collect::<Vec<_>>() {
        match call.await.unwrap() {
            (topic, Err(err)) if topic == "essays" => {
                assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}")
            }
            (topic, Ok(_)) if topic != "essays" => {}
            (topic, outcome) => panic!("a publish to {topic} answered {outcome:?}"),
        }
    }
    let mut client = client;
    for (topic, n) in [
        ("essays", 0),
        ("fresh-0", 7),
        ("fresh-1", 8),
        ("grades", 16),
    ] {
        let offsets: Vec<i64> = read_all(&mut client, topic)
            .await
            .iter()
            .map(|r| r.offset)
            .collect();
        assert_eq!(offsets, (1..=n).collect::<Vec<_>>(), "{topic}");
    }
}
