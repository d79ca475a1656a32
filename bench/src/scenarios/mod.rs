//! The scenarios, and what they share: the meter that turns a run into a table row,
//! closed-loop publishers, and counting subscribers.

pub mod catchup;
mod catchup_python;
pub mod fanout;
pub mod fanout_sweep;
pub mod growth;
pub mod mixed;
pub mod publish;
pub mod work_queue;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use futures::StreamExt;
use tokio::sync::{Semaphore, watch};
use tokio::task::{JoinHandle, JoinSet};

use crate::env::Env;
use crate::procs::{PeakSampler, ProcGroup, machine_ticks, ticks_per_second};
use crate::report::Row;
use crate::stats::{Latencies, now_nanos, stamped};
use crate::systems::{AckToken, Acker, Deliveries, Publisher, System, Topic};

/// Settings every scenario reads (from the command line).
#[derive(Debug, Clone)]
pub struct Settings {
    pub duration: Option<Duration>,
    pub payload_bytes: usize,
    pub publishers: Vec<usize>,
    pub batch_publishers: usize,
    pub batch_size: usize,
    pub rate: u64,
    pub subscribers: Vec<usize>,
    pub fanout_in_flight: usize,
    pub fanout_batch_records: u32,
    /// fanout: line deliveries up with pulsebus's stage log.
    pub fanout_stages: bool,
    pub sweep_subscribers: usize,
    pub sweep_rates: Vec<u64>,
    pub sweep_p99_ms: f64,
    pub pg_fanout_max: usize,
    pub catchup_events: u64,
    pub catchup_nats_sync: bool,
    /// pulsebus catch-up readers ask for batches of these sizes (a replay each).
    pub catchup_batch_records: Vec<u32>,
    /// Also replay pulsebus with the Python grpcio reader, run by this interpreter.
    pub catchup_python: Option<std::path::PathBuf>,
    pub ack_every: u64,
    pub load_batch: usize,
    pub mixed_topics: usize,
    pub mixed_publishers: usize,
    pub mixed_consumers: usize,
    pub mixed_ack_every: u64,
    pub drain_timeout: Duration,
    pub wq: WorkQueueSettings,
    pub growth: GrowthSettings,
}

/// The growth scenario's settings.
#[derive(Debug, Clone)]
pub struct GrowthSettings {
    /// Total events stored at each measured size, ascending.
    pub sizes: Vec<u64>,
    /// Topic layouts: a run each, its events spread over this many topics.
    pub topics: Vec<usize>,
    pub payload_bytes: usize,
    /// How long each publish probe runs.
    pub probe: Duration,
    /// Publisher counts of the publish probes.
    pub publishers: Vec<usize>,
    /// Events each catch-up probe replays.
    pub catchup_events: u64,
    /// Durable consumers on the probed topic.
    pub consumers: usize,
}

/// The work-queue scenario's settings.
#[derive(Debug, Clone)]
pub struct WorkQueueSettings {
    /// Events stored before the consumers start.
    pub backlog: u64,
    /// Events per second published while they work.
    pub rate: u64,
    /// Subscribers of the shared consumers (pulsebus, NATS).
    pub subscribers: usize,
    /// Unacked records per subscriber.
    pub max_in_flight: u32,
    /// Offsets per Ack call at most.
    pub ack_batch: usize,
    /// An Ack goes out at most this long after its first offset was handled.
    pub ack_flush: Duration,
    /// Ack calls in flight per subscriber at most.
    pub acks_in_flight: usize,
    /// The consumers' ack deadline (pulsebus) or ack wait (NATS).
    pub ack_deadline: Duration,
    /// The longest a run may take, backlog, publishing and the rest included.
    pub timeout: Duration,
}

/// Where finished rows go (shared with main, so an interrupted run still prints them).
pub type Rows = std::sync::Arc<std::sync::Mutex<Vec<Row>>>;

/// The running environment and settings, a counter naming each run, and the rows.
pub struct Ctx {
    pub env: Env,
    pub settings: Settings,
    runs: u32,
    rows: Rows,
}

impl Ctx {
    pub fn new(env: Env, settings: Settings, rows: Rows) -> Self {
        Self {
            env,
            settings,
            runs: 0,
            rows,
        }
    }

    /// Adds a finished row to the table.
    pub fn record(&self, row: Row) {
        self.rows.lock().unwrap().push(row);
    }

    /// A fresh run id: topics, NATS streams and consumers are new for every run.
    pub fn next_run(&mut self) -> String {
        self.runs += 1;
        format!("r{}", self.runs)
    }
}

/// What a run measured, before the meter adds the costs.
#[derive(Default)]
pub struct Outcome {
    pub events: u64,
    pub elapsed: Duration,
    pub latency: Option<Latencies>,
    pub latency_kind: &'static str,
    pub note: String,
    pub failed: bool,
}

/// CPU and memory of a system's processes over a run.
pub struct Meter {
    server: Option<ProcGroup>,
    pg: Option<ProcGroup>,
    cpu0: [Option<f64>; 3],
    machine0: (u64, u64),
    sampler: PeakSampler,
    start: Instant,
}

fn cpu(g: Option<ProcGroup>) -> Option<f64> {
    g.and_then(ProcGroup::cpu_seconds)
}

impl Meter {
    /// Checkpoints the cluster, then starts counting.
    pub async fn start(ctx: &Ctx, system: &System) -> Self {
        ctx.env.checkpoint().await;
        Self::start_now(system.server, system.backing_pg)
    }

    /// Starts counting a server's and its cluster's processes now (no checkpoint).
    pub fn start_now(server: Option<ProcGroup>, pg: Option<ProcGroup>) -> Self {
        let groups: Vec<ProcGroup> = [server, pg].into_iter().flatten().collect();
        Self {
            server,
            pg,
            cpu0: [cpu(server), cpu(pg), cpu(Some(ProcGroup::Myself))],
            machine0: machine_ticks(),
            sampler: PeakSampler::start(groups),
            start: Instant::now(),
        }
    }

    /// Stops counting and makes the row.
    pub fn finish(self, system: &System, outcome: Outcome) -> Row {
        let wall = self.start.elapsed();
        let cpu1 = [cpu(self.server), cpu(self.pg), cpu(Some(ProcGroup::Myself))];
        let delta = |i: usize| Some(cpu1[i]? - self.cpu0[i]?);
        let (busy1, total1) = machine_ticks();
        let busy_ticks = busy1.saturating_sub(self.machine0.0) as f64;
        let busy = (total1 > self.machine0.1)
            .then(|| 100.0 * busy_ticks / (total1 - self.machine0.1) as f64);
        let ours: f64 = (0..3).filter_map(delta).sum();
        let other = (busy_ticks / ticks_per_second() - ours).max(0.0);
        let peaks = self.sampler.finish();
        let mib = |kib: u64| Some(kib as f64 / 1024.0);
        let (server_peak, pg_peak) = match (self.server, self.pg) {
            (Some(_), Some(_)) => (mib(peaks[0]), mib(peaks[1])),
            (Some(_), None) => (mib(peaks[0]), None),
            _ => (None, None),
        };
        let rate = (outcome.elapsed > Duration::ZERO)
            .then(|| outcome.events as f64 / outcome.elapsed.as_secs_f64());
        Row {
            system: system.label().to_owned(),
            rate,
            latency_kind: outcome.latency_kind,
            latency_ms: outcome.latency.as_ref().and_then(Latencies::percentiles_ms),
            wall_s: wall.as_secs_f64(),
            server_cpu_s: delta(0),
            pg_cpu_s: delta(1),
            bench_cpu_s: delta(2),
            machine_busy_pct: busy,
            other_cpu_s: Some(other),
            server_peak_mib: server_peak,
            pg_peak_mib: pg_peak,
            note: outcome.note,
            failed: outcome.failed,
            ..Default::default()
        }
    }
}

/// What an ack task did; it hands its acker back so the connection stays open until
/// the run's costs are measured (a closing PostgreSQL backend's CPU time is invisible
/// until the postmaster reaps it).
pub type AckResult = (Result<u64>, Acker);

/// Acknowledges in the background: the consumer posts its latest token, the task acks
/// the newest one each time the previous ack returned. Ends (after a last ack) when the
/// sender is dropped; returns the number of acks.
pub fn spawn_acker(mut acker: Acker) -> (watch::Sender<Option<AckToken>>, JoinHandle<AckResult>) {
    let (tx, mut rx) = watch::channel(None::<AckToken>);
    let task = tokio::spawn(async move {
        let mut acks = 0;
        while rx.changed().await.is_ok() {
            let token = rx.borrow_and_update().clone();
            if let Some(token) = token {
                if let Err(e) = acker.ack(token).await {
                    return (Err(e), acker);
                }
                acks += 1;
            }
        }
        (Ok(acks), acker)
    });
    (tx, task)
}

/// When a counting subscriber may stop: once it has `expected` records, or at `deadline`.
pub type Target = Option<(u64, tokio::time::Instant)>;

/// What a counting subscriber got.
pub struct Count {
    pub got: u64,
    pub latency: Latencies,
    pub error: Option<String>,
    pub acks: u64,
    /// The subscription and acker, kept open until the run's costs are measured.
    pub keep: (Option<Deliveries>, Option<Acker>),
}

/// Receives until the target says stop, recording each payload's age; with an acker,
/// posts a token every `ack_every` records and once at the end.
/// The task joins `set` (aborted if the set is dropped) and yields `(id, Count)`.
pub fn spawn_counter(
    set: &mut JoinSet<(usize, Count)>,
    id: usize,
    mut stream: Deliveries,
    mut target: watch::Receiver<Target>,
    acker: Option<(Acker, u64)>,
) {
    set.spawn(async move {
        let (ack_tx, ack_task, ack_every) = match acker {
            Some((a, every)) => {
                let (tx, task) = spawn_acker(a);
                (Some(tx), Some(task), every.max(1))
            }
            None => (None, None, u64::MAX),
        };
        let mut count = Count {
            got: 0,
            latency: Latencies::default(),
            error: None,
            acks: 0,
            keep: (None, None),
        };
        let mut last = None;
        loop {
            let stop = *target.borrow();
            if let Some((expected, deadline)) = stop
                && (count.got >= expected || tokio::time::Instant::now() >= deadline)
            {
                break;
            }
            let deadline = stop.map(|(_, d)| d);
            tokio::select! {
                item = stream.next() => match item {
                    Some(Ok(d)) => {
                        count.latency.record_payload(&d.payload);
                        count.got += 1;
                        if count.got.is_multiple_of(ack_every) {
                            if let Some(tx) = &ack_tx {
                                let _ = tx.send(Some(d.token));
                            }
                        } else if ack_tx.is_some() {
                            last = Some(d.token);
                        }
                    }
                    Some(Err(e)) => { count.error = Some(format!("{e:#}")); break; }
                    None => { count.error = Some("stream ended".to_owned()); break; }
                },
                _ = target.changed() => {}
                _ = sleep_until_opt(deadline) => {}
            }
        }
        count.keep.0 = Some(stream);
        if let (Some(tx), Some(task)) = (ack_tx, ack_task) {
            if let Some(token) = last {
                let _ = tx.send(Some(token));
            }
            drop(tx);
            match task.await {
                Ok((Ok(n), acker)) => {
                    count.acks = n;
                    count.keep.1 = Some(acker);
                }
                Ok((Err(e), _)) => {
                    count.error.get_or_insert(format!("ack: {e:#}"));
                }
                Err(e) => count.error = Some(format!("ack task: {e}")),
            }
        }
        (id, count)
    });
}

/// Waits for every counter; results by id.
pub async fn join_counters(mut set: JoinSet<(usize, Count)>, n: usize) -> Result<Vec<Count>> {
    let mut counts: Vec<Option<Count>> = (0..n).map(|_| None).collect();
    while let Some(joined) = set.join_next().await {
        let (id, count) = joined?;
        counts[id] = Some(count);
    }
    Ok(counts
        .into_iter()
        .map(|c| c.expect("every counter reports"))
        .collect())
}

/// What an open-loop publisher did.
pub struct OpenLoop {
    /// Calls acknowledged (one event each).
    pub acked: u64,
    pub failed: u64,
    pub first_error: Option<String>,
    /// Calls that waited for the in-flight cap.
    pub behind: u64,
}

impl OpenLoop {
    /// What went wrong or late, for the notes ("" when nothing did).
    pub fn note(&self, in_flight: usize) -> String {
        let mut note = String::new();
        if self.failed > 0 {
            let first = self.first_error.clone().unwrap_or_default();
            note.push_str(&format!(
                " {} publish calls failed, first: {first};",
                self.failed
            ));
        }
        if self.behind > 0 {
            note.push_str(&format!(
                " publisher hit {in_flight} calls in flight {} times;",
                self.behind
            ));
        }
        note
    }
}

/// Publishes `total` stamped events to `topic`, one per call, a call starting every
/// 1/`rate` s whatever happened to the previous ones, at most `in_flight` at once;
/// returns when every call has finished. `acked` counts the acknowledged calls as
/// they return.
pub async fn open_loop(
    publisher: &Publisher,
    topic: &Topic,
    rate: u64,
    (total, in_flight): (u64, usize),
    payload_bytes: usize,
    acked: Arc<AtomicU64>,
) -> Result<OpenLoop> {
    let start = tokio::time::Instant::now();
    let period = Duration::from_secs_f64(1.0 / rate.max(1) as f64);
    let failed = Arc::new(AtomicU64::new(0));
    let first_error = Arc::new(std::sync::Mutex::new(None::<String>));
    let cap = Arc::new(Semaphore::new(in_flight.max(1)));
    let mut calls = JoinSet::new();
    let mut behind = 0u64;
    for i in 0..total {
        tokio::time::sleep_until(start + period.mul_f64(i as f64)).await;
        let permit = match cap.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                behind += 1;
                cap.clone().acquire_owned().await?
            }
        };
        let mut p = publisher.clone();
        let (topic, acked, failed, first_error) = (
            topic.clone(),
            acked.clone(),
            failed.clone(),
            first_error.clone(),
        );
        calls.spawn(async move {
            let payload = stamped(payload_bytes, now_nanos());
            match p.publish(&topic, vec![payload]).await {
                Ok(()) => acked.fetch_add(1, Ordering::Relaxed),
                Err(e) => {
                    first_error.lock().unwrap().get_or_insert(format!("{e:#}"));
                    failed.fetch_add(1, Ordering::Relaxed)
                }
            };
            drop(permit);
        });
    }
    while calls.join_next().await.is_some() {}
    let first_error = first_error.lock().unwrap().take();
    Ok(OpenLoop {
        acked: acked.load(Ordering::Relaxed),
        failed: failed.load(Ordering::Relaxed),
        first_error,
        behind,
    })
}

/// Runs a measurement under a time limit (a hung run becomes a failed row).
pub async fn limited(
    limit: Duration,
    run: impl std::future::Future<Output = Result<Row>>,
) -> Result<Row> {
    tokio::time::timeout(limit, run)
        .await
        .unwrap_or_else(|_| Err(anyhow::anyhow!("did not finish within {limit:?}")))
}

/// Sleeps until `deadline`, or forever without one.
pub async fn sleep_until_opt(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Turns a run's error into a failed row.
pub fn failed_row(system: &System, err: &anyhow::Error) -> Row {
    Row {
        system: system.label().to_owned(),
        note: format!("error: {err:#}").chars().take(300).collect(),
        failed: true,
        ..Default::default()
    }
}

/// Labels one (variant, system) run's row (or its error), adds what the server logged
/// and whether it died, and records it.
pub async fn labelled(
    ctx: &mut Ctx,
    index: usize,
    scenario: &str,
    variant: &str,
    row: Result<Row>,
) {
    let system = &ctx.env.systems[index];
    let mut row = row.unwrap_or_else(|e| failed_row(system, &e));
    row.scenario = scenario.to_owned();
    row.variant = variant.to_owned();
    checked(ctx, index, &mut row);
    record_row(ctx, row);
}

/// Adds to `row` what the system's server logged since the last call and whether it
/// died.
pub fn checked(ctx: &mut Ctx, index: usize, row: &mut Row) {
    let system = &ctx.env.systems[index];
    let problems = ctx.env.take_problems(system);
    if problems.count > 0 {
        row.note
            .push_str(&format!(" [server log: {}]", problems.summary()));
    }
    let proc_index = system.proc_index;
    if let Err(e) = ctx.env.check_alive(proc_index) {
        row.failed = true;
        row.note.push_str(&format!(" [{e:#}]"));
    }
}

/// Prints a one-line summary of a finished row and adds it to the table.
pub fn record_row(ctx: &Ctx, row: Row) {
    let scenario = &row.scenario;
    let variant = &row.variant;
    eprintln!(
        "pulsebus-bench: {scenario} / {variant} / {}: {} events/s{}",
        row.system,
        row.rate.map_or("-".to_owned(), |r| format!("{r:.0}")),
        if row.failed { " FAILED" } else { "" }
    );
    ctx.record(row);
}
