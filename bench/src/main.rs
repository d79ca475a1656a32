//! pulsebus-bench: runs named load scenarios against pulsebus and its baselines (the
//! same rows written straight into PostgreSQL, and NATS JetStream with and without
//! fsync-per-ack) on this machine, and prints one markdown table.
//!
//! Layout: `env` starts and stops the servers (`servers`: processes; `procs`: their
//! CPU and memory from /proc), `systems` adapts each system to one interface,
//! `scenarios` drive the load, `stats` and `report` make the table.

mod env;
mod procs;
mod report;
mod scenarios;
mod servers;
mod stages;
mod standby;
mod stats;
mod systems;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, ValueEnum};

use crate::env::{Env, EnvConfig};
use crate::scenarios::{Ctx, GrowthSettings, Rows, Settings, WorkQueueSettings};
use crate::systems::SystemKind;

/// A scenario to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// Every scenario below but work-queue, fanout-sweep and growth, in this order.
    All,
    /// 1, 8 and 32 publishers, one event per call.
    Publish,
    /// 4 publishers, 100 events per call.
    PublishBatch,
    /// One publisher at a fixed rate, 1 / 100 / 500 live subscribers.
    Fanout,
    /// 500 live subscribers at rising publish rates: the highest rate with p99 < 50 ms.
    /// Not part of `all` (a minute or more per system).
    FanoutSweep,
    /// One durable consumer replays 1,000,000 stored events.
    Catchup,
    /// 20 topics, 16 publishers, 40 durable consumers acking.
    Mixed,
    /// A backlog, then a publisher at a fixed rate, drained by shared consumers (3
    /// subscribers on 2 pulsebus servers, individual acks), against one exclusive
    /// consumer and a JetStream work queue. Not part of `all`: it preloads
    /// pg_stat_statements in the cluster.
    WorkQueue,
    /// pulsebus only: the table grows to each --growth-sizes (10M, 50M events) over 1
    /// and over 1,000 topics; publish, catch-ups, a deep Read, start-by-time and
    /// ListConsumers are measured on the empty table and at each size, with table and
    /// index sizes. Not part of `all`: it loads for a long while and needs ~25 GB of disk
    /// (see the module doc of `scenarios::growth`).
    Growth,
}

/// Scenarios `all` leaves out.
const NOT_IN_ALL: [Scenario; 3] = [Scenario::FanoutSweep, Scenario::WorkQueue, Scenario::Growth];

const ORDER: [Scenario; 8] = [
    Scenario::Publish,
    Scenario::PublishBatch,
    Scenario::Fanout,
    Scenario::FanoutSweep,
    Scenario::Catchup,
    Scenario::Mixed,
    Scenario::WorkQueue,
    Scenario::Growth,
];

/// Load generator for pulsebus and its baselines (PostgreSQL, NATS JetStream).
/// Starts every server it needs on loopback and stops them on exit.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Scenarios to run (`all` for every one).
    #[arg(value_enum, required = true)]
    scenarios: Vec<Scenario>,

    /// Systems to measure, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = SystemKind::ALL)]
    systems: Vec<SystemKind>,

    /// Length of every timed run (default: 15s publish, 5s fanout, 60s mixed, 30s of
    /// publishing in work-queue).
    #[arg(long, value_parser = humantime::parse_duration)]
    duration: Option<Duration>,

    /// Payload bytes per event (binary; the first 8 are the send timestamp).
    #[arg(long, default_value_t = 1024)]
    payload_bytes: usize,

    /// publish: publisher counts, one run each.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 8, 32])]
    publishers: Vec<usize>,

    /// publish-batch: publishers.
    #[arg(long, default_value_t = 4)]
    batch_publishers: usize,

    /// publish-batch: events per call.
    #[arg(long, default_value_t = 100)]
    batch_size: usize,

    /// fanout: events per second published.
    #[arg(long, default_value_t = 2000)]
    rate: u64,

    /// fanout: subscriber counts, one run each.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 100, 500])]
    subscribers: Vec<usize>,

    /// fanout: most publish calls in flight (the publisher is open-loop).
    #[arg(long, default_value_t = 256)]
    fanout_in_flight: usize,

    /// fanout: pulsebus subscribers ask for batches of up to this many records
    /// (`SubscribeRequest.batch_records`; 0, the default, is one record per message).
    #[arg(long, default_value_t = 0)]
    fanout_batch_records: u32,

    /// fanout: line every delivery of each pulsebus run's first subscriber up with the
    /// server's stage log (`pulsebus::stages` trace events, turned on for the whole
    /// run) and note where its time went; meant for `--subscribers 1`, since the server
    /// logs a line per record per stream.
    #[arg(long)]
    fanout_stages: bool,

    /// fanout-sweep: live subscribers.
    #[arg(long, default_value_t = 500)]
    sweep_subscribers: usize,

    /// fanout-sweep: publish rates to try, rising; a system stops at its first miss.
    #[arg(long, value_delimiter = ',', default_values_t = [250, 500, 1000, 2000, 4000, 8000])]
    sweep_rates: Vec<u64>,

    /// fanout-sweep: the p99 bound, in milliseconds.
    #[arg(long, default_value_t = 50.0)]
    sweep_p99_ms: f64,

    /// fanout: most subscribers for the PostgreSQL LISTEN/NOTIFY baseline (one
    /// connection each; 500 take minutes).
    #[arg(long, default_value_t = 100)]
    pg_fanout_max: usize,

    /// catchup: stored events to replay.
    #[arg(long, default_value_t = 1_000_000)]
    catchup_events: u64,

    /// catchup: also run nats-sync (loading it fsyncs every message: slow).
    #[arg(long)]
    catchup_nats_sync: bool,

    /// catchup: pulsebus replays with batches of up to this many records
    /// (`SubscribeRequest.batch_records`), one replay (a row) each; 0 is one record
    /// per message. `--catchup-batch-records 0,256` compares them.
    #[arg(long, value_delimiter = ',', default_values_t = [256])]
    catchup_batch_records: Vec<u32>,

    /// catchup: also replay pulsebus with a Python grpcio reader (bench/python/
    /// catchup.py) run by this interpreter, once per --catchup-batch-records; it needs
    /// grpcio and grpcio-tools (`.venv/bin/python` after scripts/test has them).
    #[arg(long)]
    catchup_python: Option<PathBuf>,

    /// catchup: ack every this many events.
    #[arg(long, default_value_t = 1000)]
    ack_every: u64,

    /// catchup: events per publish call when loading (untimed).
    #[arg(long, default_value_t = 1000)]
    load_batch: usize,

    /// mixed: topics.
    #[arg(long, default_value_t = 20)]
    mixed_topics: usize,

    /// mixed: publishers.
    #[arg(long, default_value_t = 16)]
    mixed_publishers: usize,

    /// mixed: durable consumers (spread evenly over the topics).
    #[arg(long, default_value_t = 40)]
    mixed_consumers: usize,

    /// mixed: each consumer acks every this many events.
    #[arg(long, default_value_t = 100)]
    mixed_ack_every: u64,

    /// work-queue: events stored before the consumers start.
    #[arg(long, default_value_t = 100_000)]
    wq_backlog: u64,

    /// work-queue: events per second published (one per call, open loop) from the
    /// moment the consumers start, for --duration.
    #[arg(long, default_value_t = 1000)]
    wq_rate: u64,

    /// work-queue: subscribers of the shared consumer (pulsebus: spread over 2 servers;
    /// NATS: of one pull consumer).
    #[arg(long, default_value_t = 3)]
    wq_subscribers: usize,

    /// work-queue: unacked records per subscriber (pulsebus max_in_flight; NATS
    /// max_ack_pending is this times the subscribers).
    #[arg(long, default_value_t = 200)]
    wq_max_in_flight: u32,

    /// work-queue: most offsets per Ack call (pulsebus).
    #[arg(long, default_value_t = 100)]
    wq_ack_batch: usize,

    /// work-queue: an Ack goes out at most this long after the first record it settles
    /// was handled (pulsebus).
    #[arg(long, default_value = "10ms", value_parser = humantime::parse_duration)]
    wq_ack_flush: Duration,

    /// work-queue: Ack calls in flight per subscriber at most (NATS: 100 per-message
    /// acks).
    #[arg(long, default_value_t = 4)]
    wq_acks_in_flight: usize,

    /// work-queue: the shared consumers' ack deadline (NATS: ack wait).
    #[arg(long, default_value = "300s", value_parser = humantime::parse_duration)]
    wq_ack_deadline: Duration,

    /// work-queue: the longest one system's run may take, loading excluded, before it
    /// fails.
    #[arg(long, default_value = "600s", value_parser = humantime::parse_duration)]
    wq_timeout: Duration,

    /// growth: total events stored at each measured size, in order (comma-separated).
    #[arg(long, value_delimiter = ',', default_values_t = [10_000_000, 50_000_000])]
    growth_sizes: Vec<u64>,

    /// growth: topic layouts, one fresh run each: the events spread over this many
    /// topics (comma-separated).
    #[arg(long, value_delimiter = ',', default_values_t = [1, 1000])]
    growth_topics: Vec<usize>,

    /// growth: payload bytes per event (loaded and probed; small, for the disk).
    #[arg(long, default_value_t = 100)]
    growth_payload_bytes: usize,

    /// growth: how long each publish probe runs.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    growth_probe: Duration,

    /// growth: publisher counts of the publish probes (closed loops, one topic).
    #[arg(long, value_delimiter = ',', default_values_t = [1, 32])]
    growth_publishers: Vec<usize>,

    /// growth: events each catch-up probe replays (from the start, from the middle).
    #[arg(long, default_value_t = 200_000)]
    growth_catchup_events: u64,

    /// growth: durable consumers present on the probed topic (for ListConsumers).
    #[arg(long, default_value_t = 100)]
    growth_consumers: usize,

    /// fanout and mixed: how long subscribers may take to receive everything after
    /// publishing stopped before the run fails.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    drain_timeout: Duration,

    /// The pulsebus binary (default: `pulsebus` next to this binary).
    #[arg(long)]
    pulsebus_bin: Option<PathBuf>,

    /// Extra argument for `pulsebus serve` (repeatable), e.g. --pulsebus-arg=--db-max-connections=32.
    #[arg(long, allow_hyphen_values = true)]
    pulsebus_arg: Vec<String>,

    /// nats-server binary (default: .venv-bench/bin/nats-server in the repository, then PATH).
    #[arg(long)]
    nats_server: Option<PathBuf>,

    /// PostgreSQL setting NAME=VALUE for the one cluster pulsebus and the baseline share
    /// (repeatable).
    #[arg(long, value_parser = parse_setting, default_values = ["max_connections=700"])]
    pg_setting: Vec<(String, String)>,

    /// Give the cluster a synchronous streaming standby on loopback, so every commit
    /// (pulsebus's and the baselines') waits for it; pair with
    /// --pulsebus-arg=--synchronous-commit=local|on|remote_apply to compare levels.
    #[arg(long)]
    pg_sync_standby: bool,

    /// Where the scratch directory (cluster, NATS stores) goes.
    #[arg(long, default_value_os_t = std::env::temp_dir())]
    work_dir: PathBuf,

    /// Also write the table to this file.
    #[arg(long)]
    out: Option<PathBuf>,
}

fn parse_setting(s: &str) -> Result<(String, String), String> {
    let (k, v) = s.split_once('=').ok_or("expected NAME=VALUE")?;
    Ok((k.to_owned(), v.to_owned()))
}

impl Cli {
    fn settings(&self) -> Settings {
        Settings {
            duration: self.duration,
            payload_bytes: self.payload_bytes.max(8),
            publishers: self.publishers.clone(),
            batch_publishers: self.batch_publishers,
            batch_size: self.batch_size.max(1),
            rate: self.rate.max(1),
            subscribers: self.subscribers.clone(),
            fanout_in_flight: self.fanout_in_flight.max(1),
            fanout_batch_records: self.fanout_batch_records,
            fanout_stages: self.fanout_stages,
            sweep_subscribers: self.sweep_subscribers.max(1),
            sweep_rates: self.sweep_rates.clone(),
            sweep_p99_ms: self.sweep_p99_ms,
            pg_fanout_max: self.pg_fanout_max,
            catchup_events: self.catchup_events.max(1),
            catchup_nats_sync: self.catchup_nats_sync,
            catchup_batch_records: self.catchup_batch_records.clone(),
            catchup_python: self.catchup_python.clone(),
            ack_every: self.ack_every.max(1),
            load_batch: self.load_batch.max(1),
            mixed_topics: self.mixed_topics.max(1),
            mixed_publishers: self.mixed_publishers,
            mixed_consumers: self.mixed_consumers,
            mixed_ack_every: self.mixed_ack_every.max(1),
            drain_timeout: self.drain_timeout,
            wq: WorkQueueSettings {
                backlog: self.wq_backlog,
                rate: self.wq_rate.max(1),
                subscribers: self.wq_subscribers.max(1),
                max_in_flight: self.wq_max_in_flight.max(1),
                ack_batch: self.wq_ack_batch.max(1),
                ack_flush: self.wq_ack_flush,
                acks_in_flight: self.wq_acks_in_flight.max(1),
                ack_deadline: self.wq_ack_deadline,
                timeout: self.wq_timeout,
            },
            growth: GrowthSettings {
                sizes: self.growth_sizes.clone(),
                topics: self.growth_topics.iter().map(|&t| t.max(1)).collect(),
                payload_bytes: self.growth_payload_bytes.max(8),
                probe: self.growth_probe,
                publishers: self.growth_publishers.clone(),
                catchup_events: self.growth_catchup_events.max(1),
                consumers: self.growth_consumers,
            },
        }
    }

    fn scenarios(&self) -> Vec<Scenario> {
        let all = self.scenarios.contains(&Scenario::All);
        ORDER
            .into_iter()
            .filter(|s| self.scenarios.contains(s) || (all && !NOT_IN_ALL.contains(s)))
            .collect()
    }
}

async fn run(cli: &Cli, rows: Rows) -> Result<Vec<String>> {
    let mut kinds = cli.systems.clone();
    kinds.sort();
    kinds.dedup();
    let env = Env::start(EnvConfig {
        kinds,
        work_parent: cli.work_dir.clone(),
        pulsebus_bin: cli.pulsebus_bin.clone(),
        pulsebus_args: cli.pulsebus_arg.clone(),
        nats_server: cli.nats_server.clone(),
        pg_settings: cli.pg_setting.clone(),
        stat_statements: cli.scenarios().contains(&Scenario::WorkQueue),
        trace_stages: cli.fanout_stages,
        sync_standby: cli.pg_sync_standby,
    })
    .await
    .context("starting the systems")?;
    let mut ctx = Ctx::new(env, cli.settings(), rows);
    for scenario in cli.scenarios() {
        match scenario {
            Scenario::Publish => scenarios::publish::run(&mut ctx).await,
            Scenario::PublishBatch => scenarios::publish::run_batch(&mut ctx).await,
            Scenario::Fanout => scenarios::fanout::run(&mut ctx).await,
            Scenario::FanoutSweep => scenarios::fanout_sweep::run(&mut ctx).await,
            Scenario::Catchup => scenarios::catchup::run(&mut ctx).await,
            Scenario::Mixed => scenarios::mixed::run(&mut ctx).await,
            Scenario::WorkQueue => scenarios::work_queue::run(&mut ctx).await,
            Scenario::Growth => scenarios::growth::run(&mut ctx).await,
            Scenario::All => unreachable!("expanded"),
        };
    }
    let mut notes = std::mem::take(&mut ctx.env.notes);
    notes.extend(ctx.env.high_water_notes());
    Ok(notes)
}

/// Resolves on Ctrl-C or SIGTERM.
async fn interrupted() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "interrupted (SIGINT)",
        _ = term.recv() => "terminated (SIGTERM)",
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let shared = Rows::default();
    // Dropping the run future (on a signal) drops the environment, which stops servers.
    let result = runtime.block_on(async {
        tokio::select! {
            r = run(&cli, shared.clone()) => r,
            why = interrupted() => Err(anyhow::anyhow!(why)),
        }
    });
    runtime.shutdown_timeout(Duration::from_secs(5));
    let rows = std::mem::take(&mut *shared.lock().unwrap());
    let table = report::table(&rows);
    println!("{table}");
    let notes = match &result {
        Ok(notes) => notes.clone(),
        Err(_) => Vec::new(),
    };
    for note in &notes {
        println!("- {note}");
    }
    if let Some(path) = &cli.out {
        let text = format!(
            "{table}\n{}",
            notes.iter().map(|n| format!("- {n}\n")).collect::<String>()
        );
        if let Err(e) = std::fs::write(path, text) {
            eprintln!("pulsebus-bench: writing {}: {e}", path.display());
        }
    }
    match result {
        Err(e) => {
            eprintln!("pulsebus-bench: {e:#}");
            ExitCode::FAILURE
        }
        Ok(_) if rows.iter().any(|r| r.failed) => {
            eprintln!("pulsebus-bench: some runs FAILED (see the notes column)");
            ExitCode::FAILURE
        }
        Ok(_) => ExitCode::SUCCESS,
    }
}
