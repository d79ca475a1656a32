//! Consumer throughput of the client against the raw generated stub, in one run.
//!
//! Publishes `N` events to two fresh topics, then drains one with the raw stub
//! (Subscribe, a cumulative Ack every 100 records, the way a hand-written consumer
//! does) and the other with `Consumer::run` and a handler that acks at once (individual
//! acks, coalesced by the client). Prints events/s for each and the ratio.
//!
//! ```sh
//! target/release/pulsebus serve &   # or any server
//! cargo run --release -p pulsebus-client --example throughput -- http://127.0.0.1:50051 50000
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use pulsebus_client::proto::pulsebus::v1::{AckRequest, SubscribeRequest, subscribe_response};
use pulsebus_client::{Client, ConsumerOptions, Outcome, RunOptions, event};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:50051".into());
    let n: usize = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(50_000);
    let client = Client::connect(url)?;
    let run = uuid_suffix();
    let (raw_topic, client_topic) = (format!("tp-raw-{run}"), format!("tp-client-{run}"));
    for topic in [&raw_topic, &client_topic] {
        load(&client, topic, n).await?;
    }

    let started = Instant::now();
    raw(&client, &raw_topic, n).await?;
    let raw_rate = n as f64 / started.elapsed().as_secs_f64();

    let started = Instant::now();
    with_client(&client, &client_topic, n).await?;
    let client_rate = n as f64 / started.elapsed().as_secs_f64();

    println!("raw stub (cumulative ack per 100): {raw_rate:.0} events/s");
    println!("pulsebus-client run() (individual acks, coalesced): {client_rate:.0} events/s");
    println!("client / raw: {:.2}x", client_rate / raw_rate);
    Ok(())
}

fn uuid_suffix() -> String {
    event::new_id()[..8].to_owned()
}

async fn load(client: &Client, topic: &str, n: usize) -> Result<(), Box<dyn std::error::Error>> {
    let payload = serde_json::json!({ "student_id": "s1", "score": 9 });
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        let events = chunk
            .iter()
            .map(|_| event::json("quiz.submitted", &payload))
            .collect::<Result<Vec<_>, _>>()?;
        client.publish(topic, events).await?;
    }
    Ok(())
}

async fn raw(client: &Client, topic: &str, n: usize) -> Result<(), Box<dyn std::error::Error>> {
    let mut stub = client.stub();
    let request = SubscribeRequest {
        topic: topic.into(),
        consumer: "raw".into(),
        max_in_flight: 1000,
        ..Default::default()
    };
    let mut stream = stub.subscribe(request).await?.into_inner();
    let mut seen = 0;
    while let Some(message) = stream.message().await? {
        if let Some(subscribe_response::Message::Record(record)) = message.message {
            seen += 1;
            if seen % 100 == 0 || seen == n {
                let ack = AckRequest {
                    topic: topic.into(),
                    consumer: "raw".into(),
                    offset: record.offset,
                    ..Default::default()
                };
                stub.ack(ack).await?;
            }
            if seen == n {
                break;
            }
        }
    }
    Ok(())
}

async fn with_client(
    client: &Client,
    topic: &str,
    n: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let consumer = client.consumer(ConsumerOptions::new(topic, "client"))?;
    let handled = Arc::new(AtomicUsize::new(0));
    let options = RunOptions::default();
    let shutdown = options.shutdown.clone();
    let counter = handled.clone();
    let handler = move |_record| {
        let counter = counter.clone();
        let shutdown = shutdown.clone();
        async move {
            if counter.fetch_add(1, Ordering::Relaxed) + 1 == n {
                shutdown.cancel();
            }
            Outcome::Ack
        }
    };
    consumer.run(handler, options).await?;
    Ok(())
}
