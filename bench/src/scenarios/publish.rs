//! `publish` (N publishers, one event per call) and `publish-batch` (publishers
//! sending batches): closed loops, each publisher waiting for its durable ack before
//! the next call. Latency is the call's (publish start to ack).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use tokio::task::JoinSet;

use super::{Ctx, Meter, Outcome, labelled, limited};
use crate::report::Row;
use crate::stats::{Latencies, now_nanos, stamped};
use crate::systems::{Publisher, PublisherOpts, SystemKind, Topic};

/// What a closed-loop publishing run did.
pub struct Published {
    pub events: u64,
    pub elapsed: Duration,
    pub latency: Latencies,
    pub errors: u64,
    pub first_error: Option<String>,
    /// Events acknowledged per topic.
    pub per_topic: Vec<u64>,
    /// The publishers, still connected: close them after measuring the run's costs.
    pub publishers: Vec<Publisher>,
}

impl Published {
    pub fn note(&self) -> String {
        match &self.first_error {
            Some(e) => format!("{} failed calls, first: {e}", self.errors),
            None => String::new(),
        }
    }
}

/// `publishers` loops, each sending `batch` stamped events per call until `duration`
/// is up; publisher p's k-th call goes to topic (p + k) mod topics.
pub async fn closed_loop(
    publishers: Vec<Publisher>,
    topics: &[Topic],
    batch: usize,
    payload_bytes: usize,
    duration: Duration,
) -> Published {
    let per_topic: Arc<Vec<AtomicU64>> =
        Arc::new(topics.iter().map(|_| AtomicU64::new(0)).collect());
    let start = Instant::now();
    let deadline = start + duration;
    let mut set = JoinSet::new();
    for (p, mut publisher) in publishers.into_iter().enumerate() {
        let topics = topics.to_vec();
        let per_topic = Arc::clone(&per_topic);
        set.spawn(async move {
            let (mut lat, mut events, mut errors, mut first) = (Latencies::default(), 0, 0, None);
            let mut k = p;
            while Instant::now() < deadline {
                let t = k % topics.len();
                k += 1;
                let sent = now_nanos();
                let payloads = (0..batch).map(|_| stamped(payload_bytes, sent)).collect();
                let call = Instant::now();
                match publisher.publish(&topics[t], payloads).await {
                    Ok(()) => {
                        lat.record_n(call.elapsed(), batch as u64);
                        events += batch as u64;
                        per_topic[t].fetch_add(batch as u64, Ordering::Relaxed);
                    }
                    Err(e) => {
                        errors += 1;
                        first.get_or_insert_with(|| format!("{e:#}"));
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
            (publisher, lat, events, errors, first)
        });
    }
    let mut out = Published {
        events: 0,
        elapsed: Duration::ZERO,
        latency: Latencies::default(),
        errors: 0,
        first_error: None,
        per_topic: Vec::new(),
        publishers: Vec::new(),
    };
    while let Some(Ok((publisher, lat, events, errors, first))) = set.join_next().await {
        out.publishers.push(publisher);
        out.latency.merge(&lat);
        out.events += events;
        out.errors += errors;
        if out.first_error.is_none() {
            out.first_error = first;
        }
    }
    out.elapsed = start.elapsed();
    out.per_topic = per_topic
        .iter()
        .map(|c| c.load(Ordering::Relaxed))
        .collect();
    out
}

/// Connects `n` publishers (one connection each).
pub async fn connect(ctx: &Ctx, index: usize, n: usize, notify: bool) -> Result<Vec<Publisher>> {
    let opts = PublisherOpts {
        connections: 1,
        notify,
    };
    let mut publishers = Vec::with_capacity(n);
    for _ in 0..n {
        publishers.push(ctx.env.systems[index].publisher(opts).await?);
    }
    Ok(publishers)
}

async fn one(
    ctx: &mut Ctx,
    index: usize,
    publishers: usize,
    batch: usize,
    duration: Duration,
) -> Result<Row> {
    let run = ctx.next_run();
    let topic = Topic {
        run: run.clone(),
        name: "t".to_owned(),
    };
    let system = &ctx.env.systems[index];
    system.prepare(&run, std::slice::from_ref(&topic)).await?;
    let shape = (publishers, batch, ctx.settings.payload_bytes);
    let (row, _) = timed(ctx, index, &topic, shape, duration).await?;
    ctx.env.systems[index].finish(&run).await?;
    Ok(row)
}

/// One metered closed-loop run on `topic` of `(publishers, events per call, payload
/// bytes)` for `duration`, after an untimed warm-up call per publisher; the row and the
/// events stored (warm-up included).
pub async fn timed(
    ctx: &Ctx,
    index: usize,
    topic: &Topic,
    (publishers, batch, payload_bytes): (usize, usize, usize),
    duration: Duration,
) -> Result<(Row, u64)> {
    let system = &ctx.env.systems[index];
    let mut pubs = connect(ctx, index, publishers, false).await?;
    // Warm-up, untimed: creates the topic and opens every connection.
    for p in &mut pubs {
        p.publish(topic, vec![stamped(payload_bytes, now_nanos())])
            .await?;
    }
    let meter = Meter::start(ctx, system).await;
    let out = closed_loop(
        pubs,
        std::slice::from_ref(topic),
        batch,
        payload_bytes,
        duration,
    )
    .await;
    let outcome = Outcome {
        events: out.events,
        elapsed: out.elapsed,
        note: out.note(),
        failed: out.errors > 0 || out.events == 0,
        latency: Some(out.latency),
        latency_kind: "ack",
    };
    let row = meter.finish(system, outcome);
    let stored = out.events + publishers as u64;
    drop(out.publishers);
    Ok((row, stored))
}

/// `publish`: 1, 8 and 32 publishers (by default), one event per call.
pub async fn run(ctx: &mut Ctx) {
    let duration = ctx.settings.duration.unwrap_or(Duration::from_secs(15));
    for n in ctx.settings.publishers.clone() {
        let variant = format!("{n} pub x 1 evt");
        for i in 0..ctx.env.systems.len() {
            let limit = duration + Duration::from_secs(120);
            let row = limited(limit, one(ctx, i, n, 1, duration)).await;
            labelled(ctx, i, "publish", &variant, row).await;
        }
    }
}

/// `publish-batch`: 4 publishers (by default), 100 events per call.
pub async fn run_batch(ctx: &mut Ctx) {
    let duration = ctx.settings.duration.unwrap_or(Duration::from_secs(15));
    let (n, batch) = (ctx.settings.batch_publishers, ctx.settings.batch_size);
    let variant = format!("{n} pub x {batch} evt");
    for i in 0..ctx.env.systems.len() {
        let limit = duration + Duration::from_secs(120);
        let row = limited(limit, one(ctx, i, n, batch, duration)).await;
        labelled(ctx, i, "publish-batch", &variant, row).await;
    }
}

/// Whether a system takes part in scenarios that read (not the unlocked baseline).
pub fn reads(kind: SystemKind) -> bool {
    kind != SystemKind::PostgresNolock
}
