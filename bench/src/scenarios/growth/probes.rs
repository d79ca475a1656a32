//! The growth scenario's probes: each one short, metered run on the probed topic that
//! makes a row. Publishing reuses `publish`'s closed loop, catching up `catchup`'s
//! replay; Read, start-by-time and ListConsumers are calls timed one by one.

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

use crate::report::Row;
use crate::scenarios::catchup::rust_replay;
use crate::scenarios::{Ctx, Meter, Outcome, limited, publish};
use crate::stats::Latencies;
use crate::systems::pulsebus::{PbProbe, durable_from};
use crate::systems::{System, Target, Topic};

/// `Read` calls in the deep-read probe.
const READS: u64 = 200;
/// Records per `Read` call.
const READ_LIMIT: u32 = 10;
/// Subscribe calls in the start-by-time probe.
const BY_TIME: u64 = 50;
/// `ListConsumers` calls, and the page size of each.
const LISTS: u64 = 100;
const LIST_PAGE: u32 = 100;
/// No call probe starts a call after this long.
const CALLS_BUDGET: Duration = Duration::from_secs(120);

/// One probe's name (the end of its row's variant) and its row.
pub type Probed = (String, Result<Row>);

fn addr(system: &System) -> Result<&str> {
    match &system.target {
        Target::Pulsebus { addr } => Ok(addr),
        _ => bail!("growth probes pulsebus only"),
    }
}

/// Creates `n` durable consumers of `topic` (`c0000`, ...) at offset 1 with `Seek`.
pub async fn consumers(ctx: &Ctx, index: usize, topic: &Topic, n: usize) -> Result<()> {
    let mut probe = PbProbe::connect(addr(&ctx.env.systems[index])?).await?;
    for c in 0..n {
        probe.seek_to_start(topic, &format!("c{c:04}")).await?;
    }
    Ok(())
}

/// Runs every probe on `topic` (`tag` names this size in consumer names); returns the
/// rows in table order and the topic's head afterwards.
pub async fn all(ctx: &Ctx, index: usize, topic: &Topic, tag: &str) -> (Vec<Probed>, Result<i64>) {
    let g = &ctx.settings.growth;
    let mut rows = Vec::new();
    for &n in &g.publishers {
        let limit = g.probe + Duration::from_secs(120);
        let shape = (n, 1, g.payload_bytes);
        let row = limited(limit, async {
            Ok(publish::timed(ctx, index, topic, shape, g.probe).await?.0)
        })
        .await;
        rows.push((format!("publish {n}"), row));
    }
    let head = match head(ctx, index, topic).await {
        Ok(head) => head,
        Err(e) => return (rows, Err(e)),
    };
    let mid = head / 2;
    let limit = Duration::from_secs(600);
    let start = catchup(ctx, index, topic, 1, format!("growth-start-{tag}"));
    rows.push(("catch-up from 1".to_owned(), limited(limit, start).await));
    let middle = catchup(ctx, index, topic, mid, format!("growth-middle-{tag}"));
    let name = format!("catch-up from middle ({mid})");
    rows.push((name, limited(limit, middle).await));
    let limit = Duration::from_secs(300);
    let deep = deep_read(ctx, index, topic, mid, head);
    rows.push(("Read deep".to_owned(), limited(limit, deep).await));
    let by_time = by_time(ctx, index, topic, mid);
    rows.push(("start by time".to_owned(), limited(limit, by_time).await));
    let lists = list_consumers(ctx, index, topic);
    rows.push(("ListConsumers".to_owned(), limited(limit, lists).await));
    (rows, Ok(head))
}

/// The topic's head offset.
pub async fn head(ctx: &Ctx, index: usize, topic: &Topic) -> Result<i64> {
    let mut probe = PbProbe::connect(addr(&ctx.env.systems[index])?).await?;
    Ok(probe.read(topic, 1, 1).await?.2)
}

/// A new durable consumer replays `--growth-catchup-events` from offset `from`.
async fn catchup(ctx: &Ctx, index: usize, topic: &Topic, from: i64, name: String) -> Result<Row> {
    let s = &ctx.settings;
    let system = &ctx.env.systems[index];
    let max_in_flight = (4 * s.ack_every).min(100_000) as u32;
    let batch = s.catchup_batch_records.first().copied().unwrap_or(256);
    let meter = Meter::start(ctx, system).await;
    let start = Instant::now();
    let (stream, acker) =
        durable_from(addr(system)?, topic, &name, (max_in_flight, batch), from).await?;
    let events = s.growth.catchup_events;
    let mut outcome = rust_replay(start, stream, acker, events, s.ack_every).await?;
    outcome.note.push_str(&format!(" from offset {from}"));
    Ok(meter.finish(system, outcome))
}

/// `READS` Read calls of `READ_LIMIT` records at offsets spread over the topic's
/// second half (`mid` to `head`), each call timed.
async fn deep_read(ctx: &Ctx, index: usize, topic: &Topic, mid: i64, head: i64) -> Result<Row> {
    let probe = PbProbe::connect(addr(&ctx.env.systems[index])?).await?;
    let last = (head - i64::from(READ_LIMIT) + 1).max(mid.max(1));
    let span = (last - mid.max(1)).max(0);
    let at = move |k: u64| mid.max(1) + span * k as i64 / READS as i64;
    let note = format!(
        "{READS} Read calls of {READ_LIMIT} records at offsets {} to {last}",
        at(0)
    );
    calls(ctx, index, READS, note, |k| {
        let (mut probe, topic) = (probe.clone(), topic.clone());
        async move {
            let (got, _, _) = probe.read(&topic, at(k), READ_LIMIT).await?;
            ensure!(got > 0, "Read at offset {} returned no records", at(k));
            Ok(())
        }
    })
    .await
}

/// `BY_TIME` ephemeral Subscribes starting at the append time of offset `mid`, each
/// timed from the call to its first record.
async fn by_time(ctx: &Ctx, index: usize, topic: &Topic, mid: i64) -> Result<Row> {
    let mut probe = PbProbe::connect(addr(&ctx.env.systems[index])?).await?;
    let (_, at, _) = probe.read(topic, mid.max(1), 1).await?;
    let at = at.with_context(|| format!("no append time at offset {mid}"))?;
    let note =
        format!("{BY_TIME} Subscribes from the append time of offset {mid}, to the first record");
    calls(ctx, index, BY_TIME, note, |_| {
        let (mut probe, topic) = (probe.clone(), topic.clone());
        async move {
            let first = probe.first_from_time(&topic, at).await?;
            ensure!(first <= mid, "started at {first}, after offset {mid}");
            Ok(())
        }
    })
    .await
}

/// `LISTS` ListConsumers calls of a page of `LIST_PAGE`.
async fn list_consumers(ctx: &Ctx, index: usize, topic: &Topic) -> Result<Row> {
    let mut probe = PbProbe::connect(addr(&ctx.env.systems[index])?).await?;
    let listed = probe.list_consumers(topic, LIST_PAGE).await?;
    let note = format!("{LISTS} ListConsumers calls, pages of {listed} consumers");
    calls(ctx, index, LISTS, note, |_| {
        let (mut probe, topic) = (probe.clone(), topic.clone());
        async move {
            probe.list_consumers(&topic, LIST_PAGE).await?;
            Ok(())
        }
    })
    .await
}

/// Makes `n` calls one after another, `call(k)` for k = 0..n, timing each, but none
/// after [`CALLS_BUDGET`] (a lookup that scans grows with the table: its few slow calls
/// are the figure, not a timeout); the row's rate is calls per second, its latency the
/// calls'.
async fn calls<F, Fut>(ctx: &Ctx, index: usize, n: u64, note: String, mut call: F) -> Result<Row>
where
    F: FnMut(u64) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let system = &ctx.env.systems[index];
    let meter = Meter::start(ctx, system).await;
    let mut latency = Latencies::default();
    let start = Instant::now();
    let mut made = 0;
    while made < n && (made == 0 || start.elapsed() < CALLS_BUDGET) {
        let began = Instant::now();
        call(made).await?;
        latency.record_n(began.elapsed(), 1);
        made += 1;
    }
    let mut note = note;
    if made < n {
        note.push_str(&format!(" (only {made} made: {CALLS_BUDGET:?} budget)"));
    }
    let outcome = Outcome {
        events: made,
        elapsed: start.elapsed(),
        latency: Some(latency),
        latency_kind: "call",
        note,
        failed: false,
    };
    Ok(meter.finish(system, outcome))
}
