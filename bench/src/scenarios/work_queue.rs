//! `work-queue`: one topic with a backlog (`--wq-backlog` events, stored untimed), then
//! a publisher at a fixed rate (`--wq-rate`, open loop, one event per call, for
//! `--duration`) that starts together with the consumers, which handle every record
//! and settle it:
//! - **pulsebus-shared**: one shared consumer, `--wq-subscribers` subscribers spread
//!   over two pulsebus servers on one database, every record acked individually with
//!   the offsets batched by the client, as an SDK would (`Ack { offsets }`, at most
//!   `--wq-ack-batch` offsets, sent at most `--wq-ack-flush` after the first one was
//!   handled, up to `--wq-acks-in-flight` calls at once per subscriber);
//! - **pulsebus-exclusive**: one exclusive durable consumer with one subscriber, the
//!   same batching with cumulative acks (`Ack { offset }` of the batch's highest);
//! - **nats-sync**, **nats-lazy**: a JetStream work-queue stream with one pull
//!   consumer (explicit acks) shared by the subscribers, every message acked with
//!   `double_ack` (the server confirms each), in the same batches, all of a batch at
//!   once.
//!
//! A record counts as handled when the ack that settles it has returned. Each system
//! gets two rows: the drain (from the consumers' start until every backlog record is
//! handled, and then every live event whose publish had returned by that moment) and
//! keeping up (from then until the publisher stops), the latter with the latency from
//! publish to settled of the events published in that time (payload stamps). Every record must be handled within `--wq-timeout`.
//! pulsebus rows also give the statements its database ran per record
//! (pg_stat_statements, BEGIN and COMMIT not counted) and the rows written to table
//! `deliveries` per record (pg_stat_user_tables).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use futures::StreamExt;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::{
    Ctx, Meter, WorkQueueSettings, catchup, checked, failed_row, open_loop, record_row,
    sleep_until_opt,
};
use crate::procs::ProcGroup;
use crate::report::Row;
use crate::stats::{Latencies, now_nanos, stamp_of};
use crate::systems::{
    PublisherOpts, SystemKind, Target, Topic, WqAcker, WqDeliveries, WqToken, nats, pulsebus,
};

/// The durable consumer's name in every run.
const CONSUMER: &str = "wq";
/// The database pulsebus runs on (see `env`).
const PULSEBUS_DB: &str = "pulsebus";
/// How long PostgreSQL backends may keep table statistics before reporting them
/// (PGSTAT_IDLE_INTERVAL, 10 s), plus a margin.
const STATS_FLUSH: Duration = Duration::from_secs(11);
/// How long subscribers may take to finish their acks in flight once stopped.
const STOP_WAIT: Duration = Duration::from_secs(30);

/// What is measured on one system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    PulsebusShared,
    PulsebusExclusive,
    Nats,
}

impl Kind {
    fn label(self, system: SystemKind) -> String {
        match self {
            Self::PulsebusShared => "pulsebus-shared".to_owned(),
            Self::PulsebusExclusive => "pulsebus-exclusive".to_owned(),
            Self::Nats => system.label().to_owned(),
        }
    }

    fn is_pulsebus(self) -> bool {
        self != Self::Nats
    }
}

/// Which records are settled, and when.
#[derive(Default)]
struct Progress {
    /// Records 1..=backlog are the backlog.
    backlog: u64,
    /// By id - 1: (publish stamp, settled at), both `now_nanos`; settled 0: not yet.
    settled: Vec<(u64, u64)>,
    /// Records settled at least once.
    unique: u64,
    /// Backlog records settled at least once.
    backlog_done: u64,
    /// Settles of records already settled (redelivered, then acked again).
    duplicates: u64,
    /// Records 1..=contiguous are all settled.
    contiguous: u64,
}

impl Progress {
    fn settle(&mut self, batch: &[(u64, u64)], at: u64) {
        for &(id, stamp) in batch {
            let Some(i) = id.checked_sub(1).map(|i| i as usize) else {
                continue;
            };
            if self.settled.len() <= i {
                self.settled.resize(i + 1, (0, 0));
            }
            if self.settled[i].1 != 0 {
                self.duplicates += 1;
                continue;
            }
            self.settled[i] = (stamp, at);
            self.unique += 1;
            if id <= self.backlog {
                self.backlog_done += 1;
            }
        }
        while self
            .settled
            .get(self.contiguous as usize)
            .is_some_and(|&(_, at)| at != 0)
        {
            self.contiguous += 1;
        }
    }
}

/// How a subscriber batches its acks.
#[derive(Debug, Clone, Copy)]
struct Policy {
    batch: usize,
    flush: Duration,
    in_flight: usize,
}

/// What a subscriber did.
struct WorkerEnd {
    received: u64,
    redelivered: u64,
    error: Option<String>,
}

/// Receives records and settles them in batches until told to stop.
async fn work(
    mut deliveries: WqDeliveries,
    acker: WqAcker,
    progress: Arc<watch::Sender<Progress>>,
    mut stop: watch::Receiver<bool>,
    policy: Policy,
) -> WorkerEnd {
    let mut end = WorkerEnd {
        received: 0,
        redelivered: 0,
        error: None,
    };
    let permits = Arc::new(Semaphore::new(policy.in_flight.max(1)));
    let mut acks: JoinSet<Result<()>> = JoinSet::new();
    let (mut pending, mut tokens): (Vec<(u64, u64)>, Vec<WqToken>) = (Vec::new(), Vec::new());
    let mut flush_at: Option<Instant> = None;
    loop {
        let flush = tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => break,
            Some(joined) = acks.join_next() => match joined {
                Ok(Ok(())) => false,
                Ok(Err(e)) => { end.error = Some(format!("ack: {e:#}")); break; }
                Err(e) => { end.error = Some(format!("ack task: {e}")); break; }
            },
            _ = sleep_until_opt(flush_at) => true,
            item = deliveries.next() => match item {
                Some(Ok(d)) => {
                    end.received += 1;
                    if d.attempt > 1 {
                        end.redelivered += 1;
                    }
                    pending.push((d.id, stamp_of(&d.payload).unwrap_or(0)));
                    tokens.push(d.token);
                    flush_at.get_or_insert_with(|| Instant::now() + policy.flush);
                    pending.len() >= policy.batch
                }
                Some(Err(e)) => { end.error = Some(format!("{e:#}")); break; }
                None => { end.error = Some("stream ended".to_owned()); break; }
            },
        };
        if !flush || pending.is_empty() {
            continue;
        }
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => p.expect("the semaphore is never closed"),
            _ = stop.wait_for(|s| *s) => break,
        };
        let (batch, batch_tokens) = (std::mem::take(&mut pending), std::mem::take(&mut tokens));
        flush_at = None;
        let (acker, progress) = (acker.clone(), Arc::clone(&progress));
        acks.spawn(async move {
            acker.settle(batch_tokens).await?;
            let at = now_nanos().max(1);
            progress.send_modify(|p| p.settle(&batch, at));
            drop(permit);
            Ok(())
        });
    }
    let finish = async {
        while let Some(joined) = acks.join_next().await {
            let failed = match joined {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(format!("ack: {e:#}")),
                Err(e) => Some(format!("ack task: {e}")),
            };
            if let Some(e) = failed {
                end.error.get_or_insert(e);
            }
        }
    };
    if tokio::time::timeout(STOP_WAIT, finish).await.is_err() {
        end.error
            .get_or_insert(format!("acks still in flight {STOP_WAIT:?} after the stop"));
    }
    end
}

/// Waits until `done` holds for the progress, failing at `deadline` or when a
/// subscriber stops on its own.
async fn wait_until(
    progress: &mut watch::Receiver<Progress>,
    workers: &mut JoinSet<WorkerEnd>,
    deadline: Instant,
    what: &str,
    done: impl Fn(&Progress) -> bool,
) -> Result<()> {
    let reached = tokio::select! {
        r = tokio::time::timeout_at(deadline, progress.wait_for(|p| done(p))) => match r {
            Ok(Ok(_)) => true,
            Ok(Err(_)) => bail!("progress channel closed"),
            Err(_) => false,
        },
        Some(joined) = workers.join_next() => {
            let end = joined?;
            bail!(
                "a subscriber stopped while waiting for {what}: {}",
                end.error.unwrap_or_default()
            )
        }
    };
    if !reached {
        let p = progress.borrow();
        bail!(
            "timed out (--wq-timeout) waiting for {what}: {} records handled, {} of {} backlog",
            p.unique,
            p.backlog_done,
            p.backlog
        );
    }
    Ok(())
}

/// Statements per record, "-" without figures.
fn per_record(calls: Option<(i64, i64)>, records: u64) -> String {
    match calls {
        Some((a, b)) if records > 0 => format!("{:.2}", (b - a) as f64 / records as f64),
        _ => "-".to_owned(),
    }
}

fn pair(a: Option<i64>, b: Option<i64>) -> Option<(i64, i64)> {
    Some((a?, b?))
}

/// One system's run: the drain row and the keep-up row.
async fn one(ctx: &mut Ctx, index: usize, kind: Kind, duration: Duration) -> Result<(Row, Row)> {
    let wq: WorkQueueSettings = ctx.settings.wq.clone();
    let (payload_bytes, in_flight) = (ctx.settings.payload_bytes, ctx.settings.fanout_in_flight);
    let mut addrs = Vec::new();
    if let Target::Pulsebus { addr } = &ctx.env.systems[index].target {
        addrs.push(addr.clone());
    }
    let mut server = ctx.env.systems[index].server;
    if kind == Kind::PulsebusShared {
        let (addr, replica, _) = ctx.env.pulsebus_replica().await?;
        addrs.push(addr);
        if let (Some(ProcGroup::Pid(a)), ProcGroup::Pid(b)) = (server, replica) {
            server = Some(ProcGroup::Pair(a, b));
        }
    }
    let run = ctx.next_run();
    let topic = Topic {
        run: run.clone(),
        name: "t".to_owned(),
    };
    let system = &ctx.env.systems[index];
    if let Target::Nats { url } = &system.target {
        nats::prepare_work_queue(url, &run).await?;
    }
    let loaded_in = if wq.backlog > 0 {
        catchup::load(ctx, index, &topic, wq.backlog).await?
    } else {
        Duration::ZERO
    };
    let publisher = system
        .publisher(PublisherOpts {
            connections: 16,
            notify: true,
        })
        .await?;
    let env = &ctx.env;
    let pulsebus_db = kind.is_pulsebus();
    let statements = move || async move {
        match pulsebus_db {
            true => env.statement_calls(PULSEBUS_DB).await,
            false => None,
        }
    };
    let writes = move || async move {
        match pulsebus_db {
            true => env.table_writes(PULSEBUS_DB, "deliveries").await.ok(),
            false => None,
        }
    };
    let writes0 = writes().await;
    ctx.env.checkpoint().await;
    if pulsebus_db {
        env.reset_statements().await;
    }
    let calls0 = statements().await;

    // The consumers start, and so does the publisher.
    let meter = Meter::start_now(server, system.backing_pg);
    let (t0, start) = (now_nanos(), Instant::now());
    let deadline = start + wq.timeout;
    let (progress_tx, mut progress) = watch::channel(Progress {
        backlog: wq.backlog,
        ..Default::default()
    });
    let progress_tx = Arc::new(progress_tx);
    let (stop_tx, stop_rx) = watch::channel(false);
    let subscribers = match kind {
        Kind::PulsebusExclusive => 1,
        _ => wq.subscribers,
    };
    if let Target::Nats { url } = &system.target {
        let pending = i64::from(wq.max_in_flight) * subscribers as i64;
        nats::create_work_queue_consumer(url, &topic, CONSUMER, pending, wq.ack_deadline).await?;
    }
    let policy = Policy {
        batch: wq.ack_batch,
        flush: wq.ack_flush,
        in_flight: wq.acks_in_flight,
    };
    let mut workers = JoinSet::new();
    for i in 0..subscribers {
        let (deliveries, acker) = match &system.target {
            Target::Pulsebus { .. } => {
                let addr = &addrs[i % addrs.len()];
                let shared = kind == Kind::PulsebusShared;
                let mif = wq.max_in_flight;
                pulsebus::work_queue(addr, &topic, CONSUMER, shared, mif, wq.ack_deadline).await?
            }
            Target::Nats { url } => {
                nats::work_queue(url, &topic, CONSUMER, wq.max_in_flight).await?
            }
            Target::Postgres { .. } => bail!("no work-queue baseline for PostgreSQL"),
        };
        let (progress, stop) = (Arc::clone(&progress_tx), stop_rx.clone());
        workers.spawn(work(deliveries, acker, progress, stop, policy));
    }
    let total = (duration.as_secs_f64() * wq.rate as f64) as u64;
    let (live_topic, rate) = (topic.clone(), wq.rate);
    let published = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&published);
    let mut publishing = tokio::spawn(async move {
        let limits = (total, in_flight);
        let sent = open_loop(
            &publisher,
            &live_topic,
            rate,
            limits,
            payload_bytes,
            counter,
        )
        .await;
        (sent, now_nanos(), publisher)
    });

    // The drain: until every backlog record is handled, and then every record that was
    // acknowledged to the publisher by then (ids are gapless: ids 1..=backlog + n are
    // stored once n live publishes returned).
    let backlog = wq.backlog;
    wait_until(&mut progress, &mut workers, deadline, "the backlog", |p| {
        p.backlog_done >= backlog
    })
    .await?;
    let caught_up_at = backlog + published.load(Ordering::Relaxed);
    wait_until(&mut progress, &mut workers, deadline, "the catch-up", |p| {
        p.contiguous >= caught_up_at
    })
    .await?;
    let drain_row = meter.finish(system, Default::default());
    let calls1 = statements().await;

    // Keeping up: until the publisher stops.
    let keep_meter =
        (!publishing.is_finished()).then(|| Meter::start_now(server, system.backing_pg));
    let (sent, t_pub_end, publisher) =
        tokio::time::timeout_at(deadline, &mut publishing)
            .await
            .map_err(|_| anyhow!("the publisher did not finish within --wq-timeout"))??;
    let sent = sent?;
    let keep_row = keep_meter.map(|m| m.finish(system, Default::default()));
    let calls2 = statements().await;

    // The rest of the live events.
    let expected = wq.backlog + sent.acked;
    wait_until(&mut progress, &mut workers, deadline, "every record", |p| {
        p.unique >= expected
    })
    .await?;
    let t_end = now_nanos();
    let calls3 = statements().await;
    if pulsebus_db {
        // Where the statements went, for the curious (stderr, not the table).
        let handled = progress.borrow().unique.max(1) as f64;
        for (calls, rows, query) in env.top_statements(PULSEBUS_DB, 12).await {
            let text: String = query.chars().take(160).collect();
            eprintln!(
                "pulsebus-bench: work-queue / {}: {calls} calls ({:.3} per record), {rows} rows: {text}",
                kind.label(system.kind),
                calls as f64 / handled
            );
        }
    }
    stop_tx.send_replace(true);
    let mut ends = Vec::new();
    while let Some(joined) = workers.join_next().await {
        ends.push(joined.context("a subscriber task")?);
    }
    drop(publisher);
    system.finish(&run).await?;
    let writes1 = if kind.is_pulsebus() {
        tokio::time::sleep(STATS_FLUSH).await;
        writes().await
    } else {
        None
    };

    // The figures.
    let p = progress.borrow();
    let secs = |from: u64, to: u64| to.saturating_sub(from) as f64 / 1e9;
    let last_settled = |n: u64| {
        let n = (n as usize).min(p.settled.len());
        p.settled[..n]
            .iter()
            .map(|&(_, at)| at)
            .max()
            .unwrap_or(t0)
            .max(t0)
    };
    // The backlog's last record, and the catch-up's, were settled at:
    let (t_b, t_c) = (last_settled(wq.backlog), last_settled(caught_up_at));
    let drained = p
        .settled
        .iter()
        .filter(|&&(_, at)| at != 0 && at <= t_c)
        .count() as u64;
    let keep_up = (t_c < t_pub_end).then(|| {
        p.settled
            .iter()
            .filter(|&&(_, at)| at > t_c && at <= t_pub_end)
            .count() as u64
    });
    let mut latency = Latencies::default();
    let mut live_measured = 0u64;
    let live_records = p.settled.get(wq.backlog as usize..).unwrap_or_default();
    for &(stamp, at) in live_records {
        if stamp >= t_c && at > stamp {
            latency.record_n(Duration::from_nanos(at - stamp), 1);
            live_measured += 1;
        }
    }
    let errors: Vec<String> = ends.iter().filter_map(|e| e.error.clone()).collect();
    let received: u64 = ends.iter().map(|e| e.received).sum();
    let redelivered: u64 = ends.iter().map(|e| e.redelivered).sum();
    let failed = sent.failed > 0 || !errors.is_empty();

    let servers = if kind == Kind::PulsebusShared { 2 } else { 1 };
    let mut note = format!(
        "{subscribers} subscriber(s) on {servers} server(s); the {} backlog records were \
         handled {:.1} s after the start, and the {} live events published by then {:.1} s \
         after the start ({drained} records)",
        wq.backlog,
        secs(t0, t_b),
        caught_up_at - wq.backlog,
        secs(t0, t_c)
    );
    note.push_str(&format!(
        "; {} live events published in {:.1} s, every record handled {:.1} s after the \
         start ({:.1} s after publishing stopped); {received} deliveries, {redelivered} \
         redelivered, {} settled twice",
        sent.acked,
        secs(t0, t_pub_end),
        secs(t0, t_end),
        secs(t_pub_end, t_end),
        p.duplicates
    ));
    if kind.is_pulsebus() {
        note.push_str(&format!(
            "; statements per record: drain {}, whole run {}",
            per_record(pair(calls0, calls1), drained),
            per_record(pair(calls0, calls3), p.unique)
        ));
        if let (Some((i0, u0, d0)), Some((i1, u1, d1))) = (writes0, writes1) {
            let per = |a: i64, b: i64| (b - a) as f64 / p.unique.max(1) as f64;
            note.push_str(&format!(
                "; deliveries rows per record (whole run): {:.2} inserted, {:.2} updated, \
                 {:.2} deleted",
                per(i0, i1),
                per(u0, u1),
                per(d0, d1)
            ));
        }
    }
    note.push_str(&format!(
        "; backlog loaded untimed in {:.1} s",
        loaded_in.as_secs_f64()
    ));
    note.push_str(&sent.note(in_flight));
    if !errors.is_empty() {
        note.push_str(&format!(" subscriber errors: {}", errors.join("; ")));
    }

    let mut drain = drain_row;
    drain.rate = (t_c > t0).then(|| drained as f64 / secs(t0, t_c));
    drain.note = note;
    drain.failed = failed;
    let mut keep = match (keep_row, keep_up) {
        (Some(mut row), Some(handled)) => {
            let window = secs(t_c, t_pub_end);
            row.rate = (window > 0.0).then(|| handled as f64 / window);
            row.latency_kind = "settled";
            row.latency_ms = latency.percentiles_ms();
            row.note = format!(
                "{handled} records handled in the {window:.1} s from the drain's end to the \
                 publisher's; latency over the {live_measured} events published in that time"
            );
            if kind.is_pulsebus() {
                row.note.push_str(&format!(
                    "; statements per record: {}",
                    per_record(pair(calls1, calls2), handled)
                ));
            }
            row
        }
        _ => Row {
            note: format!(
                "not measured: the drain took {:.1} s, the publisher ran {:.1} s",
                secs(t0, t_c),
                secs(t0, t_pub_end)
            ),
            ..Default::default()
        },
    };
    keep.failed = failed;
    Ok((drain, keep))
}

/// `work-queue`: a backlog of `--wq-backlog` events, then `--wq-rate` events/s for
/// `--duration` (default 30 s) while the consumers work.
pub async fn run(ctx: &mut Ctx) {
    let duration = ctx.settings.duration.unwrap_or(Duration::from_secs(30));
    let wq = ctx.settings.wq.clone();
    let drain_variant = format!("drain {} (+{}/s)", wq.backlog, wq.rate);
    let keep_variant = format!("keep up {}/s", wq.rate);
    let limit = wq.timeout + Duration::from_secs(1800); // loading the backlog is extra
    let (mut drains, mut keeps) = (Vec::new(), Vec::new());
    for i in 0..ctx.env.systems.len() {
        let system = ctx.env.systems[i].kind;
        let kinds = match system {
            SystemKind::Pulsebus => vec![Kind::PulsebusShared, Kind::PulsebusExclusive],
            SystemKind::NatsSync | SystemKind::NatsLazy => vec![Kind::Nats],
            SystemKind::Postgres => {
                drains.push(Row {
                    scenario: "work-queue".to_owned(),
                    variant: drain_variant.clone(),
                    system: system.label().to_owned(),
                    note: "not run: no work-queue baseline on plain PostgreSQL".to_owned(),
                    ..Default::default()
                });
                continue;
            }
            SystemKind::PostgresNolock => continue,
        };
        for kind in kinds {
            let result = tokio::time::timeout(limit, one(ctx, i, kind, duration))
                .await
                .unwrap_or_else(|_| Err(anyhow!("did not finish within {limit:?}")));
            let (mut drain, mut keep) = result.unwrap_or_else(|e| {
                let row = failed_row(&ctx.env.systems[i], &e);
                (row.clone(), row)
            });
            for (row, variant) in [(&mut drain, &drain_variant), (&mut keep, &keep_variant)] {
                row.scenario = "work-queue".to_owned();
                row.variant = variant.clone();
                row.system = kind.label(system);
                checked(ctx, i, row);
            }
            if kind == Kind::PulsebusShared
                && let Ok((_, _, replica)) = ctx.env.pulsebus_replica().await
            {
                let (problems, alive) = ctx.env.problems_of(replica);
                if problems.count > 0 {
                    drain
                        .note
                        .push_str(&format!(" [second server's log: {}]", problems.summary()));
                }
                if let Err(e) = alive {
                    for row in [&mut drain, &mut keep] {
                        row.failed = true;
                        row.note.push_str(&format!(" [second server: {e:#}]"));
                    }
                }
            }
            drains.push(drain);
            keeps.push(keep);
        }
    }
    for row in drains.into_iter().chain(keeps) {
        record_row(ctx, row);
    }
}
