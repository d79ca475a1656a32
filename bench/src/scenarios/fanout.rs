//! `fanout`: one publisher at a fixed rate (open loop: calls start on schedule, up to
//! `--fanout-in-flight` at once, one event each) and N live subscribers on the topic.
//! Every subscriber must receive every acknowledged event; latency is publish start to
//! each subscriber's receipt.

use std::time::Duration;

use anyhow::{Result, bail};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::{
    Count, Ctx, Meter, Outcome, Target, join_counters, labelled, limited, open_loop, spawn_counter,
};
use crate::report::Row;
use crate::scenarios::publish::reads;
use crate::stages::{self, Receipts};
use crate::stats::{Latencies, now_nanos, stamped};
use crate::systems::{PublisherOpts, SystemKind, Topic};

/// One run: `subscribers` live subscribers, `rate` events/s for `duration`.
pub(super) async fn one(
    ctx: &mut Ctx,
    index: usize,
    (subscribers, rate): (usize, u64),
    duration: Duration,
) -> Result<Row> {
    let run = ctx.next_run();
    let topic = Topic {
        run: run.clone(),
        name: "t".to_owned(),
    };
    let s = ctx.settings.clone();
    let system = &ctx.env.systems[index];
    system.prepare(&run, std::slice::from_ref(&topic)).await?;
    let opts = PublisherOpts {
        connections: 16,
        notify: true,
    };
    let publisher = system.publisher(opts).await?;
    // Creates the topic before anyone subscribes (not delivered: subscribers start after it).
    publisher
        .clone()
        .publish(&topic, vec![stamped(s.payload_bytes, now_nanos())])
        .await?;
    let (target_tx, target_rx) = watch::channel::<Target>(None);
    let mut set = JoinSet::new();
    let traced = (s.fanout_stages && system.kind == SystemKind::Pulsebus).then(Receipts::default);
    if let (Some(_), Some(p)) = (&traced, system.proc_index) {
        ctx.env.stages_of(p); // only this run's stages
    }
    for id in 0..subscribers {
        let mut stream = system.live(&topic, s.fanout_batch_records).await?;
        if let (0, Some(receipts)) = (id, &traced) {
            stream = stages::noted(stream, receipts.clone());
        }
        spawn_counter(&mut set, id, stream, target_rx.clone(), None);
    }
    let meter = Meter::start(ctx, system).await;
    let start = Instant::now();
    let total = (duration.as_secs_f64() * rate as f64) as u64;
    let sent = open_loop(
        &publisher,
        &topic,
        rate,
        (total, s.fanout_in_flight),
        s.payload_bytes,
        Default::default(),
    )
    .await?;
    let publish_elapsed = start.elapsed();
    let expected = sent.acked;
    target_tx.send(Some((expected, Instant::now() + s.drain_timeout)))?;
    let counts = join_counters(set, subscribers).await?;
    let delivered_in = start.elapsed();
    drop(target_tx);
    let mut outcome = judge(&counts, expected, subscribers);
    outcome.elapsed = publish_elapsed;
    if sent.failed > 0 {
        outcome.failed = true;
    }
    outcome.note.push_str(&sent.note(s.fanout_in_flight));
    outcome.note.push_str(&format!(
        " {} deliveries in {:.1} s ({:.0}/s)",
        expected * subscribers as u64,
        delivered_in.as_secs_f64(),
        (expected * subscribers as u64) as f64 / delivered_in.as_secs_f64()
    ));
    let row = meter.finish(system, outcome);
    drop((counts, publisher));
    if let (Some(receipts), Some(p)) = (traced, system.proc_index) {
        let label = format!("fanout {subscribers} sub @ {rate}/s {}", system.label());
        let lines = ctx.env.stages_of(p);
        let receipts = receipts.lock().unwrap().clone();
        let notes = stages::report(&label, &lines, &topic.flat(), &receipts);
        ctx.env.notes.extend(notes);
    }
    let system = &ctx.env.systems[index];
    system.finish(&run).await?;
    if expected == 0 {
        bail!("no event was acknowledged");
    }
    Ok(row)
}

/// Checks that every subscriber got exactly `expected`; merges their latencies.
fn judge(counts: &[Count], expected: u64, subscribers: usize) -> Outcome {
    let mut latency = Latencies::default();
    counts.iter().for_each(|c| latency.merge(&c.latency));
    let short: Vec<&Count> = counts.iter().filter(|c| c.got != expected).collect();
    let mut note = String::new();
    if !short.is_empty() {
        let min = short.iter().map(|c| c.got).min().unwrap_or(0);
        let max = short.iter().map(|c| c.got).max().unwrap_or(0);
        let err = counts
            .iter()
            .find_map(|c| c.error.clone())
            .unwrap_or_default();
        note = format!(
            "DELIVERY MISMATCH: {}/{subscribers} subscribers did not get exactly {expected} \
             (got {min}..{max}) {err};",
            short.len()
        );
    }
    Outcome {
        events: expected,
        latency: Some(latency),
        latency_kind: "e2e",
        failed: !short.is_empty(),
        note,
        ..Default::default()
    }
}

/// `fanout`: 1, 100 and 500 subscribers (by default) at 2,000 events/s.
pub async fn run(ctx: &mut Ctx) {
    let duration = ctx.settings.duration.unwrap_or(Duration::from_secs(5));
    for n in ctx.settings.subscribers.clone() {
        let variant = format!("{n} sub @ {}/s", ctx.settings.rate);
        for i in 0..ctx.env.systems.len() {
            let kind = ctx.env.systems[i].kind;
            if !reads(kind) {
                continue;
            }
            if kind == SystemKind::Postgres && n > ctx.settings.pg_fanout_max {
                ctx.record(Row {
                    scenario: "fanout".to_owned(),
                    variant: variant.clone(),
                    system: kind.label().to_owned(),
                    note: format!(
                        "not run: over --pg-fanout-max {} LISTEN connections (every NOTIFY \
                         wakes every listener; takes minutes)",
                        ctx.settings.pg_fanout_max
                    ),
                    ..Default::default()
                });
                continue;
            }
            let limit = duration + ctx.settings.drain_timeout + Duration::from_secs(180);
            let rate = ctx.settings.rate;
            let row = limited(limit, one(ctx, i, (n, rate), duration)).await;
            labelled(ctx, i, "fanout", &variant, row).await;
        }
    }
}
