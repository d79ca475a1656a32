//! The Prometheus endpoint: scraped over real HTTP from a real server, its numbers
//! move exactly with what clients do, and the cross-replica gauges come from
//! PostgreSQL.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

/// One scrape: every sample by name and its labels (sorted `k=v` pairs, comma-joined).
#[derive(Debug)]
struct Scrape {
    samples: BTreeMap<(String, String), f64>,
}

impl Scrape {
    /// The sample `name{labels}`, labels given as `k=v` pairs in any order.
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let key = (name.to_owned(), label_key(labels));
        self.samples.get(&key).copied()
    }

    /// The sample, or 0 when the series does not exist (yet).
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels).unwrap_or(0.0)
    }

    /// Whether any sample of `name` exists.
    fn has(&self, name: &str) -> bool {
        self.samples.keys().any(|(n, _)| n == name)
    }
}

fn label_key(labels: &[(&str, &str)]) -> String {
    let mut pairs: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    pairs.sort();
    pairs.join(",")
}

/// Parses the text exposition format (enough of it for our metrics: no escapes in
/// label values, no timestamps or exemplars).
fn parse(text: &str) -> Scrape {
    let mut samples = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, value) = line.rsplit_once(' ').expect("a sample line has a value");
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => (name, rest.strip_suffix('}').expect("labels close")),
            None => (series, ""),
        };
        let mut pairs: Vec<(&str, &str)> = Vec::new();
        for pair in labels.split(',').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').expect("a label has a value");
            pairs.push((k, v.trim_matches('"')));
        }
        let value: f64 = value.parse().expect("a numeric sample value");
        samples.insert((name.to_owned(), label_key(&pairs)), value);
    }
    Scrape { samples }
}

/// GET `path` over HTTP/1.1; the status code and the body.
async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let exchange = async {
        let mut conn = TcpStream::connect(addr)
            .await
            .expect("metrics listener accepts");
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        conn.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        conn.read_to_string(&mut response).await.unwrap();
        response
    };
    let response = tokio::time::timeout(WAIT, exchange)
        .await
        .expect("scrape in time");
    let (head, body) = response
        .split_once("\r\n\r\n")
        .expect("a full HTTP response");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_owned())
}

/// Scrapes `server`'s `/metrics`.
async fn scrape(server: &TestServer) -> Scrape {
    let addr = server.metrics_addr.expect("the server serves metrics");
    let (status, body) = get(addr, "/metrics").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.trim_end().ends_with("# EOF"), "{body}");
    parse(&body)
}

fn with_metrics(c: &mut pulsebus::config::ServeConfig) {
    c.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
}

async fn metrics_server() -> TestServer {
    TestServer::start_with(with_metrics).await
}

const EVENTS: &str = "pulsebus_published_events_total";
const REQUESTS: &str = "pulsebus_publish_requests_total";
const CALLS: &str = "pulsebus_grpc_requests_total";
const PUBLISH: &str = "/pulsebus.v1.EventBus/Publish";

/// A publish of N events raises the topic's published-events counter by exactly N
/// and its request counter by one.
#[tokio::test]
async fn a_publish_of_n_events_raises_the_published_counter_by_exactly_n() {
    let server = metrics_server().await;
    let mut client = server.client().await;
    publish(&mut client, "lessons", events("lesson.published", 3)).await;
    let before = scrape(&server).await;

    publish(&mut client, "lessons", events("lesson.published", 7)).await;

    let after = scrape(&server).await;
    let ok = [("topic", "lessons"), ("outcome", "ok")];
    assert_eq!(before.value(EVENTS, &ok), 3.0);
    assert_eq!(after.value(EVENTS, &ok), 10.0);
    assert_eq!(after.value(REQUESTS, &ok), 2.0);
    assert_eq!(after.value("pulsebus_append_batch_events_sum", &[]), 10.0);
}

/// Publishing the same ids again counts the events and the request as duplicates,
/// not as published.
#[tokio::test]
async fn a_repeated_publish_is_counted_as_duplicate() {
    let server = metrics_server().await;
    let mut client = server.client().await;
    let batch: Vec<Event> = (0..4)
        .map(|_| Event {
            id: uuid::Uuid::new_v4().to_string(),
            ..event("quiz.submitted", "{}")
        })
        .collect();

    publish(&mut client, "quiz", batch.clone()).await;
    publish(&mut client, "quiz", batch).await;

    let s = scrape(&server).await;
    let ok = [("topic", "quiz"), ("outcome", "ok")];
    let duplicate = [("topic", "quiz"), ("outcome", "duplicate")];
    assert_eq!(s.value(EVENTS, &ok), 4.0);
    assert_eq!(s.value(EVENTS, &duplicate), 4.0);
    assert_eq!(s.value(REQUESTS, &ok), 1.0);
    assert_eq!(s.value(REQUESTS, &duplicate), 1.0);
}

/// A refused Publish counts as INVALID_ARGUMENT by method and code, and as an
/// invalid request; an invalid topic name does not become a label.
#[tokio::test]
async fn an_invalid_publish_is_counted_by_method_and_status_code() {
    let server = metrics_server().await;
    let mut client = server.client().await;
    let request = PublishRequest {
        topic: "no spaces allowed".into(),
        events: events("x", 2),
    };
    let status = client.publish(request).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    publish(&mut client, "fine", events("x", 1)).await;

    let invalid = [("method", PUBLISH), ("code", "INVALID_ARGUMENT")];
    let ok = [("method", PUBLISH), ("code", "OK")];
    let counted = |s: &Scrape| s.value(CALLS, &invalid) == 1.0 && s.value(CALLS, &ok) == 1.0;
    let (s, _) = settle(Duration::from_millis(20), || scrape(&server), counted).await;
    assert_eq!(s.value(CALLS, &invalid), 1.0, "{s:?}");
    assert_eq!(s.value(CALLS, &ok), 1.0, "{s:?}");
    let refused = [("topic", ""), ("outcome", "invalid")];
    assert_eq!(s.value(REQUESTS, &refused), 1.0);
    assert_eq!(s.value(EVENTS, &refused), 2.0);
}

/// Lag is head minus committed, read from PostgreSQL: a second replica on the same
/// database reports the consumer that the first one serves and commits.
#[tokio::test]
async fn lag_equals_head_minus_committed_on_every_replica() {
    let first = metrics_server().await;
    let second = TestServer::start_on(first.database_url.clone(), with_metrics).await;
    let mut client = first.client().await;
    publish(&mut client, "grades", events("grade.posted", 10)).await;
    let mut stream = subscribe(&mut client, sub_req("grades", "reporting")).await;
    assert_eq!(next_offsets(&mut stream, 10).await.len(), 10);

    ack(&mut client, "grades", "reporting", 4).await;

    let consumer = [("topic", "grades"), ("consumer", "reporting")];
    let lag = "pulsebus_consumer_lag_records";
    let committed = "pulsebus_consumer_committed_offset";
    for server in [&first, &second] {
        let at_four = |s: &Scrape| s.get(committed, &consumer) == Some(4.0);
        let (s, _) = settle(Duration::from_millis(100), || scrape(server), at_four).await;
        assert_eq!(s.get(committed, &consumer), Some(4.0), "{s:?}");
        assert_eq!(
            s.get("pulsebus_topic_head_offset", &[("topic", "grades")]),
            Some(10.0)
        );
        assert_eq!(s.get(lag, &consumer), Some(6.0));
        let age = s.value("pulsebus_consumer_oldest_unacked_age_seconds", &consumer);
        assert!(age >= 0.0, "{age}");
    }

    ack(&mut client, "grades", "reporting", 10).await;
    let caught_up = |s: &Scrape| s.get(lag, &consumer) == Some(0.0);
    let (s, _) = settle(Duration::from_millis(100), || scrape(&second), caught_up).await;
    assert_eq!(s.get(lag, &consumer), Some(0.0), "{s:?}");
    assert_eq!(
        s.value("pulsebus_consumer_oldest_unacked_age_seconds", &consumer),
        0.0
    );
    assert_eq!(s.value("pulsebus_stored_consumers", &[]), 1.0);
}

/// Records sent to a stream, acks and the attached-subscriber gauge move with a
/// durable subscription, and the gauge falls back when the stream ends.
#[tokio::test]
async fn deliveries_acks_and_attached_subscribers_are_counted() {
    let server = metrics_server().await;
    let mut client = server.client().await;
    publish(&mut client, "labs", events("lab.opened", 5)).await;
    let mut stream = subscribe(&mut client, sub_req("labs", "grader")).await;
    next_offsets(&mut stream, 5).await;
    ack(&mut client, "labs", "grader", 5).await;

    let s = scrape(&server).await;
    let consumer = [("topic", "labs"), ("consumer", "grader")];
    assert_eq!(s.value("pulsebus_delivered_records_total", &consumer), 5.0);
    assert_eq!(s.value("pulsebus_acks_total", &consumer), 1.0);
    let attached = [("topic", "labs")];
    assert_eq!(s.value("pulsebus_subscribers", &attached), 1.0);

    drop(stream);
    let gone = |s: &Scrape| s.value("pulsebus_subscribers", &attached) == 0.0;
    let (s, _) = settle(Duration::from_millis(20), || scrape(&server), gone).await;
    assert_eq!(s.value("pulsebus_subscribers", &attached), 0.0);
}

/// The pool and tail-window gauges are there, and only `/metrics` is served.
#[tokio::test]
async fn pool_and_window_gauges_are_exported_and_other_paths_are_not_found() {
    let server = metrics_server().await;
    let mut client = server.client().await;
    publish(&mut client, "t", events("x", 1)).await;

    let s = scrape(&server).await;
    assert!(s.value("pulsebus_db_pool_connections", &[]) >= 1.0, "{s:?}");
    assert!(s.has("pulsebus_db_pool_idle_connections"));
    assert_eq!(s.value("pulsebus_db_pool_max_connections", &[]), 8.0);
    assert!(s.has("pulsebus_tail_window_bytes"));
    let (status, _) = get(server.metrics_addr.unwrap(), "/other").await;
    assert_eq!(status, 404);
}

/// Without `--metrics-listen` there is no metrics listener.
#[tokio::test]
async fn the_endpoint_is_off_unless_asked_for() {
    let server = TestServer::start().await;
    assert_eq!(server.metrics_addr, None);
}

/// Concurrent publishers while another task scrapes: the final counter is exactly
/// what they published, and every scrape on the way saw it only grow.
#[tokio::test]
async fn under_load_the_final_counter_equals_what_was_published() {
    const PUBLISHERS: usize = 4;
    const REQUESTS_EACH: usize = 25;
    const EVENTS_EACH: usize = 4;
    let server = metrics_server().await;
    let ok = [("topic", "load"), ("outcome", "ok")];
    let mut publishers = Vec::new();
    for _ in 0..PUBLISHERS {
        let mut client = server.client().await;
        publishers.push(tokio::spawn(async move {
            for _ in 0..REQUESTS_EACH {
                publish(&mut client, "load", events("x", EVENTS_EACH)).await;
            }
        }));
    }
    let mut seen = Vec::new();
    while publishers.iter().any(|p| !p.is_finished()) {
        seen.push(scrape(&server).await.value(EVENTS, &ok));
    }
    for p in publishers {
        p.await.unwrap();
    }

    let s = scrape(&server).await;
    let total = (PUBLISHERS * REQUESTS_EACH * EVENTS_EACH) as f64;
    assert_eq!(s.value(EVENTS, &ok), total);
    assert_eq!(s.value(REQUESTS, &ok), (PUBLISHERS * REQUESTS_EACH) as f64);
    assert_eq!(s.value("pulsebus_append_batch_events_sum", &[]), total);
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
    println!("{} scrapes during the load", seen.len());
}

/// A work queue's redeliveries are counted by reason (a nack, the subscriber that
/// held them leaving), its dead letters by consumer, and the Subscribe call by the
/// status it ended with.
#[tokio::test]
async fn redeliveries_are_counted_by_reason_and_dead_letters_by_consumer() {
    use crate::work_queue::{config, nack, shared_sub};
    let server = metrics_server().await;
    let mut client = server.client().await;
    let cfg = config(DeliveryMode::Shared, WAIT, Duration::ZERO);
    let mut stream = subscribe(&mut client, shared_sub("jobs", "workers", &cfg)).await;
    publish(&mut client, "jobs", events("job", 3)).await;
    let mut first = next_offsets(&mut stream, 3).await;
    first.sort();

    nack(
        &mut client,
        "jobs",
        "workers",
        &[1, 2],
        Some(Duration::ZERO),
    )
    .await;
    let park = NackRequest {
        topic: "jobs".into(),
        consumer: "workers".into(),
        offsets: vec![3],
        dead_letter: true,
        ..Default::default()
    };
    client.nack(park).await.unwrap();
    let mut again = next_offsets(&mut stream, 2).await;
    again.sort();
    assert_eq!((first, again), (vec![1, 2, 3], vec![1, 2]));
    drop(stream);

    let reason = |r| [("topic", "jobs"), ("consumer", "workers"), ("reason", r)];
    let redeliveries = "pulsebus_redeliveries_total";
    let subscribe_ended = [
        ("method", "/pulsebus.v1.EventBus/Subscribe"),
        ("code", "CANCELLED"),
    ];
    let done = |s: &Scrape| {
        s.value(redeliveries, &reason("subscriber_gone")) == 2.0
            && s.value(CALLS, &subscribe_ended) == 1.0
    };
    let (s, _) = settle(Duration::from_millis(20), || scrape(&server), done).await;
    assert_eq!(s.value(redeliveries, &reason("nack")), 2.0, "{s:?}");
    assert_eq!(s.value(redeliveries, &reason("subscriber_gone")), 2.0);
    let consumer = [("topic", "jobs"), ("consumer", "workers")];
    assert_eq!(
        s.value("pulsebus_dead_lettered_records_total", &consumer),
        1.0
    );
    assert_eq!(s.value("pulsebus_delivered_records_total", &consumer), 5.0);
    assert_eq!(s.value(CALLS, &subscribe_ended), 1.0);
}
