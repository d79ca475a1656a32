//! `mixed`: publishers spread over many topics (one event per call, closed loop) while
//! durable consumers (spread evenly over the topics) receive and ack live. Every
//! consumer must receive everything published to its topic.

use std::time::Duration;

use anyhow::Result;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::{Ctx, Meter, Outcome, Target, join_counters, labelled, limited, spawn_counter};
use crate::report::Row;
use crate::scenarios::publish::{closed_loop, connect, reads};
use crate::stats::Latencies;
use crate::systems::Topic;

async fn one(ctx: &mut Ctx, index: usize, duration: Duration) -> Result<Row> {
    let run = ctx.next_run();
    let s = ctx.settings.clone();
    let topics: Vec<Topic> = (0..s.mixed_topics.max(1))
        .map(|t| Topic {
            run: run.clone(),
            name: format!("t{t}"),
        })
        .collect();
    let system = &ctx.env.systems[index];
    system.prepare(&run, &topics).await?;
    let pubs = connect(ctx, index, s.mixed_publishers, true).await?;
    let mut set = JoinSet::new();
    let consumers = s.mixed_consumers;
    let mut targets = Vec::with_capacity(consumers);
    for c in 0..consumers {
        let topic = &topics[c % topics.len()];
        let (stream, acker) = system.durable(topic, &format!("c{c}"), 1000, 0).await?;
        let (target_tx, target_rx) = watch::channel::<Target>(None);
        targets.push(target_tx);
        spawn_counter(
            &mut set,
            c,
            stream,
            target_rx,
            Some((acker, s.mixed_ack_every)),
        );
    }
    let meter = Meter::start(ctx, system).await;
    let mut out = closed_loop(pubs, &topics, 1, s.payload_bytes, duration).await;
    let drained_by = Instant::now() + s.drain_timeout;
    // Each consumer's own expected count: the per-topic totals, by consumer index.
    let expected: Vec<u64> = (0..consumers)
        .map(|c| out.per_topic[c % topics.len()])
        .collect();
    for (tx, &n) in targets.iter().zip(&expected) {
        tx.send(Some((n, drained_by)))?;
    }
    let counts = join_counters(set, consumers).await?;
    drop(targets);
    let mut latency = Latencies::default();
    counts.iter().for_each(|c| latency.merge(&c.latency));
    let short: Vec<usize> = (0..consumers)
        .filter(|&c| counts[c].got < expected[c])
        .collect();
    let acks: u64 = counts.iter().map(|c| c.acks).sum();
    let mut note = out.note();
    if !short.is_empty() {
        let c = short[0];
        let err = counts
            .iter()
            .find_map(|c| c.error.clone())
            .unwrap_or_default();
        note.push_str(&format!(
            " DELIVERY SHORTFALL: {}/{consumers} consumers incomplete after the drain \
             (e.g. c{c}: {} of {}) {err};",
            short.len(),
            counts[c].got,
            expected[c]
        ));
    }
    note.push_str(&format!(" {acks} acks"));
    let outcome = Outcome {
        events: out.events,
        elapsed: out.elapsed,
        latency: Some(latency),
        latency_kind: "e2e",
        failed: out.errors > 0 || !short.is_empty(),
        note,
    };
    let out_publishers = std::mem::take(&mut out.publishers);
    let row = meter.finish(system, outcome);
    drop((counts, out_publishers));
    system.finish(&run).await?;
    Ok(row)
}

/// `mixed`: 20 topics, 16 publishers, 40 durable consumers (by default), 60 s.
pub async fn run(ctx: &mut Ctx) {
    let duration = ctx.settings.duration.unwrap_or(Duration::from_secs(60));
    let s = &ctx.settings;
    let variant = format!(
        "{} topics, {} pub, {} cons",
        s.mixed_topics, s.mixed_publishers, s.mixed_consumers
    );
    for i in 0..ctx.env.systems.len() {
        if !reads(ctx.env.systems[i].kind) {
            continue;
        }
        let limit = duration + ctx.settings.drain_timeout + Duration::from_secs(180);
        let row = limited(limit, one(ctx, i, duration)).await;
        labelled(ctx, i, "mixed", &variant, row).await;
    }
}
