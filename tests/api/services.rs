//! The EduPulse services (search indexer, achievements, notifications; crate
//! `pulsebus-services`, on the Rust client) end to end against one server, with
//! generated traffic, each service killed and restarted once midway.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use pulsebus_client as pc;
use pulsebus_services::traffic::{Expected, Shape, Traffic, generate};
use pulsebus_services::{achievements, notifications, search, topics};
use tokio::task::JoinHandle;

use crate::client::quick_retry;
use crate::helpers::*;

/// One running service: abort it to kill it.
struct Running {
    stop: pc::CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

/// How to start each service.
#[derive(Clone)]
struct Services {
    client: pc::Client,
    db: sqlx::PgPool,
    index: PathBuf,
}

impl Services {
    fn spawn<F, Fut>(&self, start: F) -> Running
    where
        F: FnOnce(Self, pc::CancellationToken) -> Fut,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let stop = pc::CancellationToken::new();
        let task = tokio::spawn(start(self.clone(), stop.clone()));
        Running { stop, task }
    }

    fn search(&self) -> Running {
        self.spawn(|s, stop| async move { search::run(&s.client, &s.index, stop).await })
    }

    fn achievements(&self) -> Running {
        self.spawn(|s, stop| async move {
            achievements::run(&s.client, s.db, achievements::Rules::default(), 4, stop).await
        })
    }

    fn notifications(&self) -> Running {
        self.spawn(|s, stop| async move {
            notifications::run(&s.client, s.db, Duration::from_millis(20), stop).await
        })
    }
}

impl Running {
    /// SIGKILL-like: the task is dropped where it is (nothing settled on the way out).
    fn kill(self) {
        self.task.abort();
    }

    async fn stop(self) {
        self.stop.cancel();
        tokio::time::timeout(WAIT, self.task)
            .await
            .expect("the service stops in time")
            .expect("the service task ends")
            .expect("the service ends cleanly");
    }
}

/// Publishes `events` in small requests, as producers do.
async fn publish_all(client: &pc::Client, topic: &str, events: &[pc::proto::pulsebus::v1::Event]) {
    for chunk in events.chunks(4) {
        client
            .publish(topic, chunk.to_vec())
            .await
            .expect("publish");
    }
}

async fn publish_half(client: &pc::Client, traffic: &Traffic, second: bool) {
    let half = |events: &[pc::proto::pulsebus::v1::Event]| {
        let mid = events.len() / 2;
        if second {
            events[mid..].to_vec()
        } else {
            events[..mid].to_vec()
        }
    };
    publish_all(client, topics::LESSONS, &half(&traffic.lessons)).await;
    publish_all(client, topics::QUIZZES, &half(&traffic.quizzes)).await;
    publish_all(client, topics::FEEDBACK, &half(&traffic.feedback)).await;
}

/// The records of `topic`; none while it does not exist yet.
async fn records(server: &TestServer, topic: &str) -> Vec<Record> {
    let mut bus = server.client().await;
    let exists = bus
        .list_topics(ListTopicsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .topics
        .iter()
        .any(|t| t.name == topic);
    if exists {
        read_all(&mut bus, topic).await
    } else {
        Vec::new()
    }
}

/// (lessons indexed, badges published, notifications written, dead letters).
async fn progress(server: &TestServer, services: &Services) -> (u64, usize, i64, usize) {
    let indexed = search::count(&services.index).unwrap_or(0);
    let badges = records(server, topics::BADGES).await.len();
    let notes: i64 = sqlx::query_scalar("SELECT count(*) FROM notifications")
        .fetch_one(&services.db)
        .await
        .unwrap_or(0);
    let parked = records(server, "feedback.dlq").await.len();
    (indexed, badges, notes, parked)
}

/// Generated traffic through all three services, each killed once midway and started
/// again: every lesson is searchable once, every deserved badge is awarded once (with
/// the triggering quiz as its cause), every notification is written once, and every
/// undeliverable one is in the dead-letter topic once.
#[tokio::test]
async fn the_services_end_with_exactly_the_right_state_after_each_is_killed_once() {
    let server = quick_server().await;
    let db = sqlx::PgPool::connect(&fresh_database().await)
        .await
        .unwrap();
    let index = tempfile::tempdir().unwrap();
    let client = pc::ClientBuilder::new(format!("http://{}", server.addr))
        .retry(quick_retry())
        .connect()
        .unwrap();
    let services = Services {
        client: client.clone(),
        db,
        index: index.path().to_owned(),
    };
    let shape = Shape {
        seed: 42,
        students: 12,
        lessons: 24,
        quizzes_per_student: 6,
        feedback: 30,
    };
    let (traffic, expected) = generate(shape, achievements::Rules::default());

    let (mut search_svc, mut achieve_svc) = (services.search(), services.achievements());
    let mut notify_svcs = vec![services.notifications(), services.notifications()];
    publish_half(&client, &traffic, false).await;
    let (seen, _) = settle(
        Duration::from_millis(50),
        || progress(&server, &services),
        |&(indexed, _, notes, _)| indexed > 0 && notes > 0,
    )
    .await;
    let consumers = server
        .client()
        .await
        .list_consumers(ListConsumersRequest {
            topic: topics::FEEDBACK.into(),
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner().consumers);
    assert!(
        seen.0 > 0 && seen.2 > 0,
        "the services made progress: {seen:?}; feedback consumers {consumers:?}; tasks done: {:?}",
        notify_svcs
            .iter()
            .map(|s| s.task.is_finished())
            .collect::<Vec<_>>()
    );

    search_svc.kill();
    search_svc = services.search();
    achieve_svc.kill();
    achieve_svc = services.achievements();
    notify_svcs.remove(0).kill();
    notify_svcs.push(services.notifications());
    publish_half(&client, &traffic, true).await;

    let want = (
        expected.lessons.len() as u64,
        expected.badges.len(),
        (expected.badges.len() + expected.feedback_notes.len()) as i64,
        expected.bounced.len(),
    );
    let (seen, took) = settle(
        Duration::from_millis(100),
        || progress(&server, &services),
        |p| *p == want,
    )
    .await;
    assert_eq!(seen, want, "final state after {took:?}");
    search_svc.stop().await;
    achieve_svc.stop().await;
    for svc in notify_svcs {
        svc.stop().await;
    }

    assert_exact(&server, &services, &traffic, &expected).await;
}

async fn assert_exact(
    server: &TestServer,
    services: &Services,
    traffic: &Traffic,
    expected: &Expected,
) {
    let hits = search::search(&services.index, "lesson", 1000).unwrap();
    let ids: Vec<&str> = hits.iter().map(|h| h.lesson_id.as_str()).collect();
    let unique: BTreeSet<String> = ids.iter().map(|s| s.to_string()).collect();
    assert_eq!(ids.len(), unique.len(), "each lesson once");
    assert_eq!(unique, expected.lessons);
    let fractions = search::search(&services.index, "fractions", 1000).unwrap();
    assert!(fractions.iter().all(|h| h.title.contains("fractions")));

    let mut bus = server.client().await;
    let badges = read_all(&mut bus, topics::BADGES).await;
    let quiz_ids: BTreeSet<&str> = traffic.quizzes.iter().map(|e| e.id.as_str()).collect();
    let mut students = BTreeSet::new();
    for badge in &badges {
        let event = badge.event.as_ref().unwrap();
        assert!(
            quiz_ids.contains(event.causation_id.as_str()),
            "caused by a quiz"
        );
        let cause = traffic
            .quizzes
            .iter()
            .find(|q| q.id == event.causation_id)
            .unwrap();
        assert_eq!(event.correlation_id, cause.correlation_id);
        students.insert(event.subject.trim_start_matches("student/").to_owned());
    }
    assert_eq!(students, expected.badges, "every deserved badge, once");

    let rows: Vec<(String, String)> = sqlx::query_as("SELECT event_id, kind FROM notifications")
        .fetch_all(&services.db)
        .await
        .unwrap();
    let feedback: BTreeSet<String> = rows
        .iter()
        .filter(|(_, k)| k == "feedback")
        .map(|(id, _)| id.clone())
        .collect();
    assert_eq!(feedback, expected.feedback_notes);
    assert_eq!(
        rows.iter().filter(|(_, k)| k == "badge").count(),
        badges.len()
    );

    let parked = read_all(&mut bus, "feedback.dlq").await;
    let causes: BTreeSet<String> = parked
        .iter()
        .map(|r| r.event.as_ref().unwrap().causation_id.clone())
        .collect();
    assert_eq!(parked.len(), causes.len(), "each dead letter once");
    assert_eq!(causes, expected.bounced);
}
