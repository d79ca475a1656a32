//! Publish latency against a running server, for the retention measurement
//! (`bench/retention/publish_p99.sh`): PUBLISHERS closed-loop publishers, one 1 KiB
//! binary event per Publish call, for SECONDS; prints calls, p50, p99 and max in ms.
//!
//!     cargo run --release --example publish_latency -- http://127.0.0.1:50051 TOPIC 8 20

use std::time::{Duration, Instant};

use pulsebus::proto::pulsebus::v1 as pb;
use pulsebus::proto::pulsebus::v1::event_bus_client::EventBusClient;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, topic, publishers, seconds] = &args[..] else {
        anyhow::bail!("usage: publish_latency URL TOPIC PUBLISHERS SECONDS");
    };
    let until = Instant::now() + Duration::from_secs(seconds.parse()?);
    let mut tasks = Vec::new();
    for _ in 0..publishers.parse::<usize>()? {
        let mut client = EventBusClient::connect(url.clone()).await?;
        let topic = topic.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < until {
                let event = pb::Event {
                    r#type: "bench".into(),
                    source: "publish_latency".into(),
                    data: Some(pb::event::Data::BinaryData(vec![7; 1024])),
                    ..Default::default()
                };
                let started = Instant::now();
                let request = pb::PublishRequest {
                    topic: topic.clone(),
                    events: vec![event],
                };
                client.publish(request).await?;
                latencies.push(started.elapsed());
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await??);
    }
    all.sort();
    let at = |q: f64| all[((all.len() as f64 * q) as usize).min(all.len() - 1)].as_secs_f64() * 1e3;
    println!(
        "calls={} p50_ms={:.2} p99_ms={:.2} max_ms={:.2}",
        all.len(),
        at(0.5),
        at(0.99),
        at(1.0)
    );
    Ok(())
}
