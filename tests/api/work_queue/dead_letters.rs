//! Dead letters: a poison record is parked in the dead-letter topic exactly once, with
//! its reason and where it came from, also when subscribers on two servers race on it.

use std::time::Duration;

use super::{ack_each, config, consumer_info, shared_sub};
use crate::helpers::*;

/// The events of the dead-letter topic.
async fn dead_letters(client: &mut Client<tonic::transport::Channel>, topic: &str) -> Vec<Record> {
    match client
        .read(ReadRequest {
            topic: topic.into(),
            ..Default::default()
        })
        .await
    {
        Ok(page) => page.into_inner().records,
        Err(status) if status.code() == tonic::Code::NotFound => Vec::new(),
        Err(status) => panic!("reading the dead letters failed: {status}"),
    }
}

/// A record nacked on every delivery by subscribers on two servers goes to
/// `<topic>.dlq` after max_deliveries, once: with the original's type, subject and
/// payload, the original id as causation, a deterministic id, and attributes naming the
/// topic, offset, consumer, reason and attempts. The other records are handled normally
/// and the consumer's committed offset passes the poison record.
#[tokio::test]
async fn a_poison_record_is_dead_lettered_once_while_two_servers_race_on_it() {
    let first = quick_server().await;
    let second = TestServer::start_on(first.database_url.clone(), quick).await;
    let mut cfg = config(
        DeliveryMode::Shared,
        Duration::from_secs(30),
        Duration::ZERO,
    );
    cfg.max_deliveries = 3;
    let mut client = first.client().await;
    let mut poison = event("mail", r#"{"to": "nobody"}"#);
    poison.subject = "student/s-1".into();
    publish(&mut client, "mails", vec![poison]).await;
    publish(&mut client, "mails", events("mail", 4)).await;

    let mut workers = Vec::new();
    for server in [&first, &second] {
        let mut c = server.client().await;
        let stream = subscribe(&mut c, shared_sub("mails", "sender", &cfg)).await;
        workers.push(tokio::spawn(work(stream, c)));
    }
    // Wait until the consumer settled everything (the poison by dead-lettering it).
    let settled = async {
        loop {
            let info = consumer_info(&mut client, "mails", "sender").await;
            if info.committed_offset == 5 && info.in_flight == 0 {
                return info;
            }
            tokio::task::yield_now().await;
        }
    };
    let info = tokio::time::timeout(WAIT, settled)
        .await
        .expect("everything settles in time");
    for w in workers {
        w.abort();
    }

    assert_eq!((info.dead_lettered, info.redelivered), (1, 2));
    let parked = dead_letters(&mut client, "mails.dlq").await;
    assert_eq!(parked.len(), 1, "dead-lettered exactly once");
    let original = read_all(&mut client, "mails").await.remove(0);
    let (dead, source) = (parked[0].event.clone().unwrap(), original.event.unwrap());
    assert_eq!(
        (dead.r#type.as_str(), dead.subject.as_str()),
        ("mail", "student/s-1")
    );
    assert_eq!(dead.data, source.data);
    assert_eq!(dead.causation_id, source.id);
    let expected_id = pulsebus::log::dead_letter_id("mails", "sender", source.id.parse().unwrap());
    assert_eq!(dead.id, expected_id.to_string());
    let attr = |k: &str| {
        dead.attributes
            .get(&format!("pulsebus.dead_letter.{k}"))
            .cloned()
    };
    assert_eq!(attr("topic").as_deref(), Some("mails"));
    assert_eq!(attr("offset").as_deref(), Some("1"));
    assert_eq!(attr("consumer").as_deref(), Some("sender"));
    assert_eq!(attr("attempts").as_deref(), Some("3"));
    assert!(
        attr("reason").unwrap().contains("cannot send"),
        "{:?}",
        attr("reason")
    );
}

/// A subscriber that nacks the poison record (offset 1) on every delivery and acks the
/// rest.
async fn work(
    mut stream: tonic::Streaming<SubscribeResponse>,
    mut c: Client<tonic::transport::Channel>,
) {
    loop {
        let r = next_record(&mut stream).await;
        if r.offset == 1 {
            let req = NackRequest {
                topic: "mails".into(),
                consumer: "sender".into(),
                offsets: vec![1],
                reason: "cannot send: mailbox unknown".into(),
                ..Default::default()
            };
            c.nack(req).await.unwrap();
        } else {
            ack_each(&mut c, "mails", "sender", &[r.offset]).await;
        }
    }
}

/// `Nack { dead_letter }` parks a record at once, with the given reason, whatever
/// max_deliveries says; a consumer-configured dead-letter topic is used.
#[tokio::test]
async fn a_dead_letter_nack_parks_the_record_at_once() {
    let server = quick_server().await;
    let mut client = server.client().await;
    let mut cfg = config(
        DeliveryMode::Shared,
        Duration::from_secs(30),
        Duration::ZERO,
    );
    cfg.dead_letter_topic = "parked".into();
    let mut stream = subscribe(&mut client, shared_sub("mails", "sender", &cfg)).await;
    publish(&mut client, "mails", events("mail", 1)).await;
    let r = next_record(&mut stream).await;
    let req = NackRequest {
        topic: "mails".into(),
        consumer: "sender".into(),
        offsets: vec![r.offset],
        dead_letter: true,
        reason: "invalid address".into(),
        ..Default::default()
    };
    client.nack(req).await.unwrap();

    let parked = dead_letters(&mut client, "parked").await;
    assert_eq!(parked.len(), 1);
    let attributes = &parked[0].event.as_ref().unwrap().attributes;
    assert_eq!(attributes["pulsebus.dead_letter.reason"], "invalid address");
    assert_eq!(attributes["pulsebus.dead_letter.attempts"], "1");
    let info = consumer_info(&mut client, "mails", "sender").await;
    assert_eq!(
        (info.committed_offset, info.dead_lettered, info.in_flight),
        (1, 1, 0)
    );
}
