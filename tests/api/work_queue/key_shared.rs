//! Key-shared consumers: one subscriber at a time per subject, in offset order, across
//! nacks and subscribers leaving; different subjects in parallel.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{ack_each, config, nack, shared_sub};
use crate::helpers::*;

const SUBJECTS: usize = 20;
const PER_SUBJECT: usize = 100;

/// 20 subjects x 100 events, three key-shared subscribers that nack a random fifth of
/// what they get, one of which leaves midway: per subject, the order in which records
/// were first handled successfully is offset order, and every record is handled.
#[tokio::test]
async fn per_subject_order_holds_across_nacks_and_a_subscriber_leaving() {
    let server = quick_server().await;
    let mut client = server.client().await;
    let cfg = config(
        DeliveryMode::KeyShared,
        Duration::from_secs(30),
        Duration::ZERO,
    );
    let mut batch = Vec::new();
    for n in 0..SUBJECTS * PER_SUBJECT {
        let mut e = event("quiz.submitted", "{}");
        e.subject = format!("student/{}", n % SUBJECTS);
        batch.push(e);
    }
    for chunk in batch.chunks(500) {
        publish(&mut client, "quizzes", chunk.to_vec()).await;
    }

    let handled: Arc<Mutex<Vec<(String, i64)>>> = Arc::default();
    let (done_tx, done) = tokio::sync::watch::channel(false);
    let done_tx = Arc::new(done_tx);
    let mut workers = Vec::new();
    for i in 0..3u64 {
        let mut c = server.client().await;
        let stream = subscribe(&mut c, shared_sub("quizzes", "achievements", &cfg)).await;
        let leaves_after = (i == 2).then_some(60);
        let worker = Worker {
            handled: Arc::clone(&handled),
            done: done.clone(),
            done_tx: Arc::clone(&done_tx),
            rng: Rng::new(0x5eed + i),
            leaves_after,
        };
        workers.push(tokio::spawn(worker.run(stream, c)));
    }
    for w in workers {
        tokio::time::timeout(WAIT * 15, w)
            .await
            .expect("the workers finish in time")
            .unwrap();
    }

    let handled = handled.lock().unwrap();
    let mut first_at = BTreeMap::new();
    for (i, (_, offset)) in handled.iter().enumerate() {
        if let Some(first) = first_at.insert(*offset, i) {
            panic!(
                "offset {offset} was handled twice (at {first} and {i} of {})",
                handled.len()
            );
        }
    }
    assert_eq!(
        handled.len(),
        SUBJECTS * PER_SUBJECT,
        "every record handled once"
    );
    let mut by_subject: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for (subject, offset) in handled.iter() {
        by_subject.entry(subject).or_default().push(*offset);
    }
    for (subject, offsets) in by_subject {
        let mut sorted = offsets.clone();
        sorted.sort();
        assert_eq!(offsets, sorted, "{subject} was handled out of order");
        assert_eq!(offsets.len(), PER_SUBJECT);
    }
}

struct Worker {
    handled: Arc<Mutex<Vec<(String, i64)>>>,
    done: tokio::sync::watch::Receiver<bool>,
    done_tx: Arc<tokio::sync::watch::Sender<bool>>,
    rng: Rng,
    leaves_after: Option<usize>,
}

impl Worker {
    async fn run(
        mut self,
        mut stream: tonic::Streaming<SubscribeResponse>,
        mut c: Client<tonic::transport::Channel>,
    ) {
        let mut seen = 0;
        loop {
            let message = tokio::select! {
                m = stream.message() => m.expect("healthy").expect("open"),
                _ = self.done.wait_for(|d| *d) => return,
            };
            let Some(subscribe_response::Message::Record(r)) = message.message else {
                continue;
            };
            seen += 1;
            if self.leaves_after.is_some_and(|n| seen >= n) {
                return; // leaves holding this record: it goes to another subscriber
            }
            if self.rng.below(5) == 0 {
                nack(&mut c, "quizzes", "achievements", &[r.offset], None).await;
                continue;
            }
            // Handled (noted before the ack settles it, so the next record of the
            // subject cannot be handled before this is noted).
            let subject = r.event.unwrap().subject;
            let total = {
                let mut handled = self.handled.lock().unwrap();
                handled.push((subject, r.offset));
                handled.len()
            };
            ack_each(&mut c, "quizzes", "achievements", &[r.offset]).await;
            if total == SUBJECTS * PER_SUBJECT {
                self.done_tx.send_replace(true);
            }
        }
    }
}
