//! `growth` (pulsebus only, not part of `all`): does pulsebus stay as fast when its
//! table holds tens of millions of events?
//!
//! For each topic layout of `--growth-topics` (default 1 and 1,000 topics), a fresh run
//! first stores two catch-up probes' worth (`2 × --growth-catchup-events`, default
//! 400,000) in the probed topic (the layout's first) and creates `--growth-consumers`
//! (100) durable consumers on it, then measures every probe on that nearly empty table:
//! the baseline (`… @ empty (400k)`). It then loads the table, in batches of
//! `--load-batch` by 4 publishers over the layout's topics (the emptiest first, so all
//! but the probed one grow evenly), to each total of `--growth-sizes` (default 10 M and
//! 50 M events of `--growth-payload-bytes`, default 100) and measures again. The probes,
//! each a row:
//! - `publish 1`, `publish 32`: closed-loop publishers, one event per call, on the
//!   probed topic for `--growth-probe` (5 s): rate, ack latency;
//! - `catch-up from 1`, `catch-up from middle`: a new durable consumer replays
//!   `--growth-catchup-events` from offset 1 and from the middle of the probed topic
//!   (events/s);
//! - `Read deep`: 200 `Read` calls of 10 records at offsets over the topic's second half;
//! - `start by time`: 50 Subscribes starting at the middle's append time, each to its
//!   first record;
//! - `ListConsumers`: 100 calls of a page of 100 consumers.
//!
//! (The call probes start no call after 120 s and say how many they made.) Each size
//! is probed after `VACUUM (ANALYZE)` of pulsebus's tables and a CHECKPOINT, so sizes
//! are compared in the same state, not by how recently their rows were written.
//!
//! Rows at a size carry their ratio to the same probe on the empty table in the notes
//! (`vs empty: rate 0.97x, p50 1.02x, p99 1.10x`), flagged when one is more than 20 %
//! worse: the goal. The notes get the tables' and indexes' sizes at each step
//! (`pg_relation_size`, `pg_indexes_size`, `pg_total_relation_size`, per index of
//! `events`) and bytes per event. After a layout its tables are emptied with TRUNCATE
//! (the notes show the sizes before and after), so the next starts empty too.
//!
//! Run it on its own (it loads for a long while):
//! `target/release/pulsebus-bench growth --systems pulsebus --out growth.md`.
//!
//! Disk: a debug run with 60,000 events of 100 bytes measured about 365 bytes per event
//! in pulsebus's tables (`events` heap ~265, its five indexes ~95: primary key, unique
//! id, three time indexes), the same over 1 and 3 topics. The default 50 M events then
//! take about 18 GB, plus WAL (`max_wal_size`, 1 GB by default) and the cluster's own
//! ~10 MB: have 25 GB free. The layouts run one after another and each is emptied
//! (TRUNCATE) before the next, so the largest size counts, not the sum. `--work-dir`
//! puts the cluster on another disk.

mod probes;
mod sizes;

use std::collections::HashMap;

use anyhow::{Context, Result};

use super::catchup::load_many;
use super::{Ctx, labelled};
use crate::report::Row;
use crate::systems::{SystemKind, Topic};

/// `growth`: each layout of `--growth-topics` on pulsebus; the other systems get a
/// "not run" row.
pub async fn run(ctx: &mut Ctx) {
    for index in 0..ctx.env.systems.len() {
        let kind = ctx.env.systems[index].kind;
        if kind != SystemKind::Pulsebus {
            ctx.record(Row {
                scenario: "growth".to_owned(),
                variant: "-".to_owned(),
                system: kind.label().to_owned(),
                note: "not run: growth measures pulsebus only".to_owned(),
                ..Default::default()
            });
            continue;
        }
        for topics in ctx.settings.growth.topics.clone() {
            if let Err(e) = layout(ctx, index, topics).await {
                let variant = format!("{}: setup", layout_label(topics));
                labelled(ctx, index, "growth", &variant, Err(e)).await;
            }
            if let Err(e) = empty(ctx, topics).await {
                eprintln!("pulsebus-bench: growth: emptying the tables: {e:#}");
            }
        }
    }
}

/// One layout: the baseline, then each size.
async fn layout(ctx: &mut Ctx, index: usize, n: usize) -> Result<()> {
    let run = ctx.next_run();
    let topics: Vec<Topic> = (0..n)
        .map(|t| Topic {
            run: run.clone(),
            name: format!("t{t}"),
        })
        .collect();
    let g = ctx.settings.growth.clone();
    let system = &ctx.env.systems[index];
    system.prepare(&run, &topics).await?;
    let mut counts = vec![0; n];
    let base = 2 * g.catchup_events;
    load_many(ctx, index, &[(topics[0].clone(), base)], g.payload_bytes)
        .await
        .context("loading the probed topic")?;
    counts[0] = base;
    probes::consumers(ctx, index, &topics[0], g.consumers)
        .await
        .context("creating consumers")?;
    let mut baseline = HashMap::new();
    let tag = format!("empty ({})", count_label(base));
    let mut probed = Probed {
        counts: &mut counts,
        baseline: &mut baseline,
        first: true,
    };
    measure(ctx, index, &topics, &tag, &mut probed).await?;
    for size in g.sizes {
        let adds = deficits(&counts, size);
        let calls: Vec<(Topic, u64)> = topics
            .iter()
            .cloned()
            .zip(adds.iter().copied())
            .filter(|(_, add)| *add > 0)
            .collect();
        let took = load_many(ctx, index, &calls, g.payload_bytes)
            .await
            .with_context(|| format!("loading to {size} events"))?;
        let added: u64 = adds.iter().sum();
        counts.iter_mut().zip(&adds).for_each(|(c, a)| *c += a);
        ctx.env.notes.push(format!(
            "growth {}: loaded {added} events to {} in {:.0} s ({:.0}/s)",
            layout_label(n),
            counts.iter().sum::<u64>(),
            took.as_secs_f64(),
            added as f64 / took.as_secs_f64().max(1e-9)
        ));
        let mut probed = Probed {
            counts: &mut counts,
            baseline: &mut baseline,
            first: false,
        };
        measure(ctx, index, &topics, &count_label(size), &mut probed).await?;
    }
    ctx.env.systems[index].finish(&run).await
}

/// What the measurements of a layout carry from one size to the next.
struct Probed<'a> {
    /// Events stored per topic (the probed topic's follows its head).
    counts: &'a mut Vec<u64>,
    /// The empty table's row of each probe.
    baseline: &'a mut HashMap<String, Row>,
    /// This is the empty table: fill `baseline`.
    first: bool,
}

/// Runs the probes at one size and records their rows (with the ratio to the baseline,
/// or as the baseline) and the table sizes.
async fn measure(
    ctx: &mut Ctx,
    index: usize,
    topics: &[Topic],
    tag: &str,
    probed: &mut Probed<'_>,
) -> Result<()> {
    let label = format!("{} @ {tag}", layout_label(topics.len()));
    let consumer_tag: String = tag.chars().filter(char::is_ascii_alphanumeric).collect();
    let url = ctx.env.db_url("pulsebus").context("no cluster")?;
    sizes::vacuum(&url).await?;
    ctx.env.checkpoint().await;
    let (rows, head) = probes::all(ctx, index, &topics[0], &consumer_tag).await;
    for (probe, row) in rows {
        let key = probe.split(" (").next().unwrap_or(&probe).to_owned();
        let row = row.map(|mut row| {
            if probed.first {
                probed.baseline.insert(key, row.clone());
            } else if let Some(base) = probed.baseline.get(&key).filter(|b| !b.failed) {
                let vs = vs_empty(&row, base);
                row.note = match row.note.is_empty() {
                    true => vs,
                    false => format!("{vs}; {}", row.note),
                };
            }
            row
        });
        labelled(ctx, index, "growth", &format!("{label}: {probe}"), row).await;
    }
    let head = u64::try_from(head?).unwrap_or(0);
    probed.counts[0] = head.max(probed.counts[0]);
    let sizes = sizes::sizes(&url).await?;
    let events = probed.counts.iter().sum::<u64>();
    ctx.env.notes.push(sizes.note(&label, events));
    Ok(())
}

/// Empties pulsebus's tables after a layout, noting how much that freed.
async fn empty(ctx: &mut Ctx, topics: usize) -> Result<()> {
    let url = ctx.env.db_url("pulsebus").context("no cluster")?;
    let before = sizes::sizes(&url).await?;
    sizes::truncate(&url).await?;
    let after = sizes::sizes(&url).await?;
    ctx.env.checkpoint().await;
    ctx.env.notes.push(format!(
        "growth {}: emptied pulsebus's tables with TRUNCATE (finish frees nothing on \
         pulsebus): all tables {} -> {}, database {} -> {}",
        layout_label(topics),
        sizes::mib(before.total()),
        sizes::mib(after.total()),
        sizes::mib(before.database),
        sizes::mib(after.database),
    ));
    Ok(())
}

/// "vs empty: rate 0.97x, p50 1.02x, p99 1.10x", flagged when the rate fell or a
/// latency rose by more than 20 %.
fn vs_empty(row: &Row, base: &Row) -> String {
    let mut parts = Vec::new();
    let mut worse = false;
    if let (Some(a), Some(b)) = (row.rate, base.rate)
        && b > 0.0
    {
        parts.push(format!("rate {:.2}x", a / b));
        worse |= a / b < 0.8;
    }
    if let (Some(a), Some(b)) = (row.latency_ms, base.latency_ms) {
        for (i, name) in [(0, "p50"), (1, "p99")] {
            if b[i] > 0.0 {
                parts.push(format!("{name} {:.2}x", a[i] / b[i]));
                worse |= a[i] / b[i] > 1.2;
            }
        }
    }
    let flag = if worse { " (over 20 % worse)" } else { "" };
    format!("vs empty: {}{flag}", parts.join(", "))
}

/// Events each topic gets so that together they hold `size`: the emptiest topics are
/// raised to one level (within one event) and topics above it get none.
fn deficits(counts: &[u64], size: u64) -> Vec<u64> {
    let mut adds = vec![0; counts.len()];
    let left = size.saturating_sub(counts.iter().sum());
    if left == 0 || counts.is_empty() {
        return adds;
    }
    let mut order: Vec<usize> = (0..counts.len()).collect();
    order.sort_by_key(|&i| counts[i]);
    let mut k = counts.len();
    let total = loop {
        let total = order[..k].iter().map(|&i| counts[i]).sum::<u64>() + left;
        if k == 1 || total / k as u64 >= counts[order[k - 1]] {
            break total;
        }
        k -= 1;
    };
    let (level, mut extra) = (total / k as u64, total % k as u64);
    for &i in &order[..k] {
        let target = level + u64::from(extra > 0);
        extra = extra.saturating_sub(1);
        adds[i] = target - counts[i];
    }
    adds
}

fn layout_label(topics: usize) -> String {
    match topics {
        1 => "1 topic".to_owned(),
        n => format!("{n} topics"),
    }
}

/// 10000000 -> "10M", 2500000 -> "2.5M", 400000 -> "400k", 1234 -> "1234".
fn count_label(n: u64) -> String {
    match n {
        n if n >= 1_000_000 && n.is_multiple_of(100_000) => {
            let m = format!("{:.1}", n as f64 / 1e6);
            format!("{}M", m.trim_end_matches(".0"))
        }
        n if n >= 1000 && n.is_multiple_of(1000) => format!("{}k", n / 1000),
        n => n.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loading_fills_the_emptiest_topics_to_one_level() {
        assert_eq!(deficits(&[400, 0, 0], 1000), [0, 300, 300]);
        assert_eq!(deficits(&[400, 0, 0], 3001), [600, 1001, 1000]);
        assert_eq!(deficits(&[400], 1000), [600]);
        assert_eq!(deficits(&[400, 0], 300), [0, 0]);
        assert_eq!(deficits(&[10, 0, 0], 15), [0, 3, 2]);
    }

    #[test]
    fn sizes_read_as_short_counts() {
        assert_eq!(count_label(10_000_000), "10M");
        assert_eq!(count_label(2_500_000), "2.5M");
        assert_eq!(count_label(400_000), "400k");
        assert_eq!(count_label(1234), "1234");
    }

    #[test]
    fn a_figure_more_than_a_fifth_worse_is_flagged() {
        let row = |rate, p99| Row {
            rate: Some(rate),
            latency_ms: Some([1.0, p99, 3.0]),
            ..Default::default()
        };
        assert_eq!(
            vs_empty(&row(90.0, 2.2), &row(100.0, 2.0)),
            "vs empty: rate 0.90x, p50 1.00x, p99 1.10x"
        );
        assert!(vs_empty(&row(70.0, 2.0), &row(100.0, 2.0)).ends_with("(over 20 % worse)"));
    }
}
