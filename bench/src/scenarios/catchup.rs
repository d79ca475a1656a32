//! `catchup`: one durable consumer replays a topic of stored events from the start,
//! acking as it goes. The events are loaded first, untimed, in big batches.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use futures::StreamExt;
use tokio::task::JoinSet;

use super::{Ctx, Meter, Outcome, labelled, limited, spawn_acker};
use crate::report::Row;
use crate::scenarios::publish::{connect, reads};
use crate::stats::{now_nanos, stamped};
use crate::systems::{SystemKind, Topic};

/// Publishers used to load the topic.
const LOADERS: usize = 4;

/// Stores `events` stamped events in `topic` (4 publishers, `--load-batch` per call);
/// returns how long it took.
pub async fn load(ctx: &Ctx, index: usize, topic: &Topic, events: u64) -> Result<Duration> {
    let s = &ctx.settings;
    let started = Instant::now();
    let pubs = connect(ctx, index, LOADERS, false).await?;
    let batches = events.div_ceil(s.load_batch as u64);
    let mut set = JoinSet::new();
    for (l, mut p) in pubs.into_iter().enumerate() {
        let (topic, batch, bytes) = (topic.clone(), s.load_batch as u64, s.payload_bytes);
        set.spawn(async move {
            let mut b = l as u64;
            while b < batches {
                let n = batch.min(events - b * batch);
                let payloads = (0..n).map(|_| stamped(bytes, now_nanos())).collect();
                p.publish(&topic, payloads).await?;
                b += LOADERS as u64;
            }
            Ok::<_, anyhow::Error>(())
        });
    }
    while let Some(joined) = set.join_next().await {
        joined??;
    }
    Ok(started.elapsed())
}

async fn one(ctx: &mut Ctx, index: usize) -> Result<Row> {
    let run = ctx.next_run();
    let topic = Topic {
        run: run.clone(),
        name: "t".to_owned(),
    };
    let s = ctx.settings.clone();
    let system = &ctx.env.systems[index];
    system.prepare(&run, std::slice::from_ref(&topic)).await?;
    let loaded_in = load(ctx, index, &topic, s.catchup_events).await?;
    let meter = Meter::start(ctx, system).await;
    let start = Instant::now();
    let max_in_flight = (4 * s.ack_every).min(100_000) as u32;
    let (mut stream, acker) = system.durable(&topic, "catchup", max_in_flight).await?;
    let (ack_tx, ack_task) = spawn_acker(acker);
    let mut got = 0u64;
    while got < s.catchup_events {
        let Some(item) = stream.next().await else {
            bail!(
                "the stream ended after {got} of {} events",
                s.catchup_events
            );
        };
        let d = item?;
        got += 1;
        if got.is_multiple_of(s.ack_every) || got == s.catchup_events {
            ack_tx.send(Some(d.token))?;
        }
    }
    let elapsed = start.elapsed();
    drop(ack_tx);
    let (acks, _acker) = ack_task.await?;
    let acks = acks?;
    let outcome = Outcome {
        events: got,
        elapsed,
        note: format!(
            "{got} events replayed, {acks} acks; loaded untimed in {:.1} s ({:.0}/s)",
            loaded_in.as_secs_f64(),
            s.catchup_events as f64 / loaded_in.as_secs_f64()
        ),
        ..Default::default()
    };
    let row = meter.finish(system, outcome);
    drop((stream, _acker));
    system.finish(&run).await?;
    Ok(row)
}

/// `catchup`: replay `--catchup-events` (default 1,000,000) stored events.
pub async fn run(ctx: &mut Ctx) {
    let variant = format!("{} events", ctx.settings.catchup_events);
    let limit = Duration::from_secs(600);
    for i in 0..ctx.env.systems.len() {
        let kind = ctx.env.systems[i].kind;
        if !reads(kind) {
            continue;
        }
        if kind == SystemKind::NatsSync && !ctx.settings.catchup_nats_sync {
            ctx.record(Row {
                scenario: "catchup".to_owned(),
                variant: variant.clone(),
                system: kind.label().to_owned(),
                note: "not run (--catchup-nats-sync runs it): loading fsyncs every message \
                       (~1k events/s here, so ~17 min for 1M); the replay reads the same \
                       file store as nats-lazy"
                    .to_owned(),
                ..Default::default()
            });
            continue;
        }
        let row = limited(limit, one(ctx, i)).await;
        labelled(ctx, i, "catchup", &variant, row).await;
    }
}
