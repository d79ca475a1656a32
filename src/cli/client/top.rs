//! `pulsebus top`: a live view of topics (publish rate, head) and consumers (lag, in
//! flight, attached), redrawn every interval, as `nats top` does.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::json;

use super::consumers::list_consumers;
use super::output::{Output, OutputArgs, Table};
use super::topics::list_topics;
use super::{Client, ClientError, Connection};
use crate::proto::pulsebus::v1 as pb;

/// Clear the screen and go home: only sent to a terminal.
const CLEAR: &str = "\x1b[2J\x1b[H";

/// Show topics and consumers live (Ctrl-C to stop).
#[derive(Debug, Args)]
pub struct Top {
    /// Seconds between refreshes.
    #[arg(long, default_value_t = 1.0)]
    pub interval: f64,
    /// Refresh this many times, then exit (default: until Ctrl-C).
    #[arg(long, conflicts_with = "once")]
    pub iterations: Option<u64>,
    /// One snapshot, then exit (rates need two, so they show as `-`).
    #[arg(long)]
    pub once: bool,
    /// How to print (--json: one object per refresh).
    #[command(flatten)]
    pub output: OutputArgs,
    /// How to reach the server.
    #[command(flatten)]
    pub connection: Connection,
}

/// One refresh: topics with their rate since the last one, and every consumer.
struct Snapshot {
    topics: Vec<(pb::TopicInfo, Option<f64>)>,
    consumers: Vec<pb::ConsumerInfo>,
}

impl Top {
    /// Refreshes until the iterations are done.
    pub async fn run(self) -> Result<(), ClientError> {
        let mut client = Client::connect(&self.connection).await?;
        let iterations = if self.once { Some(1) } else { self.iterations };
        let output = Output::from(self.output);
        let clear = !output.json && std::io::stdout().is_terminal();
        let mut ticker = tokio::time::interval(Duration::from_secs_f64(self.interval.max(0.1)));
        let mut previous: HashMap<String, (i64, Instant)> = HashMap::new();
        let mut done = 0;
        while iterations.is_none_or(|n| done < n) {
            ticker.tick().await;
            let snapshot = snapshot(&mut client, &mut previous).await?;
            if clear {
                output.raw(CLEAR)?;
            }
            render(&output, &snapshot)?;
            done += 1;
        }
        Ok(())
    }
}

/// Lists topics and consumers; `previous` (this refresh's heads replace it) gives rates.
async fn snapshot(
    client: &mut Client,
    previous: &mut HashMap<String, (i64, Instant)>,
) -> Result<Snapshot, ClientError> {
    let now = Instant::now();
    let mut heads = HashMap::new();
    let mut topics = Vec::new();
    let mut consumers = Vec::new();
    for topic in list_topics(client).await? {
        let rate = previous.get(&topic.name).map(|(head, at)| {
            (topic.head_offset - head) as f64 / now.duration_since(*at).as_secs_f64().max(1e-3)
        });
        heads.insert(topic.name.clone(), (topic.head_offset, now));
        consumers.extend(list_consumers(client, &topic.name).await?);
        topics.push((topic, rate));
    }
    *previous = heads;
    Ok(Snapshot { topics, consumers })
}

fn render(output: &Output, s: &Snapshot) -> Result<(), ClientError> {
    let rate = |r: Option<f64>| r.map_or_else(|| "-".to_owned(), |r| format!("{r:.1}/s"));
    if output.json {
        let topics: Vec<_> = s.topics.iter().map(|(t, r)| json!({"topic": t.name, "head_offset": t.head_offset, "event_count": t.event_count, "rate": r})).collect();
        let consumers: Vec<_> = s.consumers.iter().map(|c| json!({"topic": c.topic, "consumer": c.name, "committed_offset": c.committed_offset, "lag": c.lag, "in_flight": c.in_flight, "attached": c.attached})).collect();
        return output.json_line(&json!({"topics": topics, "consumers": consumers}));
    }
    let mut topics = Table::new(["TOPIC", "HEAD", "EVENTS", "RATE"]);
    for (t, r) in &s.topics {
        topics.push([
            t.name.clone(),
            t.head_offset.to_string(),
            t.event_count.to_string(),
            rate(*r),
        ]);
    }
    output.rows(topics, &[], "no topics")?;
    output.line("")?;
    let mut consumers = Table::new([
        "TOPIC",
        "CONSUMER",
        "COMMITTED",
        "LAG",
        "IN FLIGHT",
        "ATTACHED",
    ]);
    for c in &s.consumers {
        consumers.push([
            c.topic.clone(),
            c.name.clone(),
            c.committed_offset.to_string(),
            c.lag.to_string(),
            c.in_flight.to_string(),
            if c.attached { "yes" } else { "no" }.to_owned(),
        ]);
    }
    output.rows(consumers, &[], "no consumers")
}
